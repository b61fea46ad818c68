/* server - OpenAI-compatible HTTP server with batched decoding of concurrent requests.
 *
 *   build/server                          # embedded default model on 127.0.0.1:8080
 *   build/server -m model.gguf --slots 4 --port 8080 -t 2
 *
 * Threads: the main thread accepts; each connection gets a thread (bounded by
 * --max-connections, and --max-connections-per-client for one address) that
 * reads requests with poll() deadlines (shorter while the server is nearly
 * full), parses them
 * (server/http.c, server/server_api.c), submits generation jobs to the scheduler
 * (server/server_sched.c) and writes the answers, polling its socket while it
 * waits so that a client that goes away frees its slot at once. One decode
 * thread runs all slots in one batched forward pass per step. A connection over
 * a limit gets no thread: the accept loop itself reads its request (1 s at
 * most), answers GET /health and /metrics (so a flood never hides the server's
 * health) and everything else with a 503 it lets the client read before
 * closing. See docs/server.md. */
#include "net.h" /* first: winsock2.h must come before windows.h */

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "formats/json.h"
#include "server_main.h"

/* status codes counted in /metrics; anything else is "other" */
const int k_codes[N_CODES] = {200, 400, 401, 404, 405, 408, 411, 413, 431, 500, 503, 505};

server_state g;

static void usage(FILE *out) {
    fprintf(out,
            "usage: server [options]\n"
            "OpenAI-compatible HTTP server. With no -m, serves the model embedded in the binary.\n\n"
            "  -m, --model FILE          GGUF or ak42 model (default: embedded model)\n"
            "      --alias NAME          model id reported by the API (default: the model's name)\n"
            "      --host ADDR           IPv4/IPv6 address to bind (default 127.0.0.1; 0.0.0.0 exposes it)\n"
            "      --port N              TCP port, 0 = any free port (default 8080)\n"
            "      --slots K             requests decoded together in one batch (default 4)\n"
            "      --queue N             requests that may wait for a slot, then 503 (default 16)\n"
            "  -c, --ctx-size N          context per slot in tokens, prompt included (default 512)\n"
            "  -b, --batch N             tokens per forward pass (prompt chunks + one per slot;\n"
            "                            default 64, at least --slots)\n"
            "  -t, --threads N           threads of the forward pass (default 1)\n"
            "      --kv-type T           KV cache: f32, f16, q8, q4, q2 (default: per model,\n"
            "                            docs/kv-cache.md); also -ctk/-ctv (q8_0 = q8, one type)\n"
            "      --cpu-affinity L      pin threads to CPUs, taskset syntax: 2-3 or 0,2\n"
            "      --api-key KEY         require 'Authorization: Bearer KEY' (not for /health)\n"
            "      --max-body BYTES      largest request body, else 413 (default 1048576)\n"
            "      --max-connections N   open connections, beyond that 503 (default 64)\n"
            "      --max-connections-per-client N\n"
            "                            open connections from one address, beyond that 503\n"
            "                            (default: a quarter of --max-connections, at least 4)\n"
            "      --timeout S           seconds to receive a request's headers, and its body,\n"
            "                            and to send a response (default 10)\n"
            "      --embeddings          also serve POST /v1/embeddings and /embedding (a context of\n"
            "                            its own; for embedding models, e.g. BitNet-embedding)\n"
            "      --shutdown-grace MS   on SIGINT/SIGTERM, time running requests get to finish\n"
            "                            before their streams are ended (default 5000)\n"
            "      --lookup N            speculative decoding by prompt lookup in every slot: draft\n"
            "                            the tokens that followed the last N..1 tokens earlier in\n"
            "                            the slot's text (same output, faster on repetitive text)\n"
            "      --draft-max N         tokens drafted per slot and step (default 8, at most 16)\n"
            "      --context-shift       a generation that fills its slot's context drops half of the\n"
            "                            tokens after the request's n_keep and goes on (llama-server's;\n"
            "                            default off: it ends with finish_reason \"length\")\n"
            "      --slot-save-path DIR  allow POST /slots/{id}?action=save|restore|erase (files in DIR,\n"
            "                            body {\"filename\": \"NAME\"}), as llama-server\n"
            "      --tokenizer FILE      llama2.c tokenizer.bin for files without a vocabulary\n"
            "                            (safetensors: also a tokenizer.json or GGUF vocabulary)\n"
            "  -h, --help                this help\n\n"
            "Endpoints: GET / (a chat page to try it), POST /v1/completions, POST /v1/chat/completions (\"stream\": true for\n"
            "Server-Sent Events), GET /v1/models, GET /health, GET /metrics (Prometheus); llama-server's\n"
            "POST /completion, /tokenize, /detokenize, /apply-template, /slots/{id}?action=, GET /props, /slots, and\n"
            "/completions, /chat/completions, /models without /v1.\n"
            "Listens at once ('server: loading ...'; every request, /health too, gets 503\n"
            "until the model is loaded), then prints 'server: listening on http://HOST:PORT'\n"
            "on stderr when ready. SIGINT/SIGTERM: 503 to new requests while running ones\n"
            "finish (--shutdown-grace), then exit 0.\n");
}

static int parse_args(int argc, char **argv, options *o) {
    *o = (options){
        .m = MODEL_OPTIONS_DEFAULT,
        .host = "127.0.0.1",
        .port = 8080,
        .slots = 4,
        .queue = 16,
        .n_ctx = 512,
        .n_batch = 64,
        .max_body = 1 << 20,
        .max_conns = 64,
        .timeout_s = 10,
        .grace_ms = 5000,
        .draft_max = 8,
    };
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--embedding") || !strcmp(argv[i], "--embeddings")) { /* llama-server's flag, no value */
            o->embeddings = 1;
            continue;
        }
        if (!strcmp(argv[i], "--context-shift") || !strcmp(argv[i], "--no-context-shift")) {
            o->context_shift = argv[i][2] == 'c';
            continue;
        }
        const char *a = argv[i], *v = option_value(argc, argv, &i, usage);
        if (!v) return 0;
        int ok = 1;
        if (!strcmp(a, "--alias")) o->alias = v;
        else if (!strcmp(a, "--host")) o->host = v;
        else if (!strcmp(a, "--api-key")) o->api_key = v;
        else if (!strcmp(a, "--cpu-affinity")) o->cpu_affinity = v;
        else if (!strcmp(a, "--port")) ok = parse_int(a, v, 0, 65535, &o->port);
        else if (!strcmp(a, "--slots")) ok = parse_int(a, v, 1, 256, &o->slots);
        else if (!strcmp(a, "--queue")) ok = parse_int(a, v, 0, 4096, &o->queue);
        else if (!strcmp(a, "-c") || !strcmp(a, "--ctx-size")) ok = parse_int(a, v, 2, 1 << 20, &o->n_ctx);
        else if (!strcmp(a, "-b") || !strcmp(a, "--batch")) ok = parse_int(a, v, 1, 4096, &o->n_batch);
        else if (!strcmp(a, "--max-body")) ok = parse_long(a, v, 1, 1L << 30, &o->max_body);
        else if (!strcmp(a, "--max-connections")) ok = parse_int(a, v, 1, 65536, &o->max_conns);
        else if (!strcmp(a, "--max-connections-per-client")) ok = parse_int(a, v, 1, 65536, &o->max_per_client);
        else if (!strcmp(a, "--timeout")) ok = parse_int(a, v, 1, 3600, &o->timeout_s);
        else if (!strcmp(a, "--shutdown-grace")) ok = parse_int(a, v, 0, 3600000, &o->grace_ms);
        else if (!strcmp(a, "--slot-save-path")) o->slot_save_path = v;
        else if (!strcmp(a, "--lookup")) ok = parse_int(a, v, 0, 64, &o->lookup);
        else if (!strcmp(a, "--draft-max") || !strcmp(a, "--draft-n") || !strcmp(a, "--draft"))
            ok = parse_int(a, v, 1, BN_SPEC_MAX, &o->draft_max);
        else ok = model_option(a, v, &o->m); /* -m, -t, ..., or an unknown option */
        if (!ok) return 0;
    }
    if (o->n_batch < o->slots) o->n_batch = o->slots; /* every slot decodes each step */
    if (!o->max_per_client) o->max_per_client = o->max_conns / 4 > 4 ? o->max_conns / 4 : 4;
    return 1;
}

/* ---- sending ------------------------------------------------------------------------ */

int send_all(bn_socket fd, const char *p, size_t n) {
    while (n) {
        const long w = send(fd, p, n, MSG_NOSIGNAL);
        if (w < 0 && net_interrupted()) continue;
        if (w <= 0) return -1; /* error, or SO_SNDTIMEO passed: the client does not read */
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

void count_status(int status) {
    int k = N_CODES;
    for (int i = 0; i < N_CODES; i++)
        if (k_codes[i] == status) k = i;
    pthread_mutex_lock(&g.mu);
    g.requests[k]++;
    pthread_mutex_unlock(&g.mu);
}

/* Sends a whole response; returns keep_alive, or 0 if the connection must close. */
int respond(conn *c, int status, const char *type, const char *body, size_t n, int keep_alive,
                   const char *extra) {
    char head[1024];
    if (atomic_load(&g.stopping)) keep_alive = 0;
    int h = bn_http_format_head(head, sizeof head, status, type, (long long)n, keep_alive, extra);
    count_status(status);
    if (h < 0 || send_all(c->fd, head, (size_t)h) != 0 || send_all(c->fd, body, n) != 0) return 0;
    return keep_alive;
}

int respond_buf(conn *c, int status, const char *type, bn_buf *b, int keep_alive, const char *extra) {
    int rc = b->data ? respond(c, status, type, b->data, b->len, keep_alive, extra) : respond(c, 500, NULL, "", 0, 0, NULL);
    bn_buf_free(b);
    return rc;
}

int respond_error(conn *c, int status, const char *msg, int keep_alive, const char *extra) {
    bn_buf b = {0};
    if (bn_server_json_error(&b, status, msg) != 0) bn_buf_free(&b);
    return respond_buf(c, status, "application/json", &b, keep_alive, extra);
}

/* The client closed (or reset) its end. Pipelined bytes waiting to be read are not a close. */
int peer_gone(bn_socket fd) {
    struct pollfd p = {fd, POLLIN | POLLRDHUP, 0};
    if (net_poll(&p, 1, 0) <= 0) return 0;
    if (p.revents & (POLLERR | POLLHUP | POLLRDHUP | POLLNVAL)) return 1;
    char b;
    const long r = net_recv_now(fd, &b, 1, 1);
    return r == 0 || (r < 0 && !net_retry());
}

/* ---- connections --------------------------------------------------------------------------- */

/* Connection slots: --max-connections in all, --max-connections-per-client
 * for one address. At most max_conns addresses hold slots at once, so a table
 * of that size, scanned under a lock at accept and release, is enough. */
static struct {
    pthread_mutex_t mu;
    struct {
        unsigned char addr[16];
        int count;
    } *e;
} g_slots = {PTHREAD_MUTEX_INITIALIZER, NULL};

static int slot_acquire(conn *c) {
    int ok = 0, free_i = -1, found = -1;
    pthread_mutex_lock(&g_slots.mu);
    if (atomic_load(&g.n_conns) < g.o.max_conns) {
        for (int i = 0; i < g.o.max_conns && found < 0; i++) {
            if (g_slots.e[i].count == 0) {
                if (free_i < 0) free_i = i;
            } else if (!memcmp(g_slots.e[i].addr, c->addr, 16)) {
                found = i;
            }
        }
        if (found < 0 && free_i >= 0) memcpy(g_slots.e[found = free_i].addr, c->addr, 16);
        if (found >= 0 && g_slots.e[found].count < g.o.max_per_client) {
            g_slots.e[found].count++;
            atomic_fetch_add(&g.n_conns, 1);
            ok = c->counted = 1;
        }
    }
    pthread_mutex_unlock(&g_slots.mu);
    return ok;
}

/* Gives the slot back as soon as the last response is written (not after the
 * lingering close): a client that reconnects at once finds it free. */
static void slot_release(conn *c) {
    if (!c->counted) return;
    pthread_mutex_lock(&g_slots.mu);
    for (int i = 0; i < g.o.max_conns; i++)
        if (g_slots.e[i].count > 0 && !memcmp(g_slots.e[i].addr, c->addr, 16)) {
            g_slots.e[i].count--;
            break;
        }
    atomic_fetch_sub(&g.n_conns, 1);
    c->counted = 0;
    pthread_mutex_unlock(&g_slots.mu);
}

/* Nearly full (3/4 of the slots, in all or for this client): requests must
 * send their headers within 2 s, so slow clients cannot hold the rest. */
static int near_limit(const conn *c) {
    if (atomic_load(&g.n_conns) * 4 >= g.o.max_conns * 3) return 1;
    int mine = 0;
    pthread_mutex_lock(&g_slots.mu);
    for (int i = 0; i < g.o.max_conns; i++)
        if (g_slots.e[i].count > 0 && !memcmp(g_slots.e[i].addr, c->addr, 16)) mine = g_slots.e[i].count;
    pthread_mutex_unlock(&g_slots.mu);
    return mine * 4 >= g.o.max_per_client * 3 && g.o.max_per_client > 1;
}

/* Reads until buf holds one whole request (or the deadline passes). Returns
 * BN_HTTP_COMPLETE, BN_HTTP_ERROR (answered already), or BN_HTTP_NEED_MORE
 * when the connection should just close (client gone, idle, shutting down). */
static int read_request(conn *c, bn_http_request *rq) {
    const uint64_t start = now_ns(), short_ns = 2000000000ull;
    uint64_t deadline = start + (uint64_t)g.o.timeout_s * 1000000000ull;
    int body_phase = 0, sent_continue = 0;
    for (;;) {
        if (!body_phase && deadline > start + short_ns && near_limit(c)) deadline = start + short_ns;
        bn_http_result r = bn_http_parse_request(c->buf, c->len, rq, &g.limits);
        if (r == BN_HTTP_COMPLETE) return r;
        if (r == BN_HTTP_ERROR) {
            respond_error(c, rq->status, rq->error, 0, NULL);
            return r;
        }
        if (rq->header_len && !body_phase) { /* headers done: the body gets its own deadline */
            body_phase = 1;
            deadline = now_ns() + (uint64_t)g.o.timeout_s * 1000000000ull;
            size_t need = rq->header_len + (size_t)rq->content_length;
            if (need > c->cap) {
                char *nb = realloc(c->buf, need);
                if (!nb) {
                    respond_error(c, 500, "out of memory", 0, NULL);
                    return BN_HTTP_ERROR;
                }
                c->buf = nb;
                c->cap = need;
            }
            if (rq->expect_continue && !sent_continue) {
                sent_continue = 1;
                const char *cont = "HTTP/1.1 100 Continue\r\n\r\n";
                if (send_all(c->fd, cont, strlen(cont)) != 0) return BN_HTTP_NEED_MORE;
            }
        }
        if (c->len == c->cap) { /* cannot happen: the parser bounds both parts */
            respond_error(c, 500, "request buffer full", 0, NULL);
            return BN_HTTP_ERROR;
        }
        uint64_t now = now_ns();
        if (now >= deadline) {
            if (c->len) respond_error(c, 408, "timed out reading the request", 0, NULL);
            return BN_HTTP_NEED_MORE;
        }
        if (atomic_load(&g.stopping) && c->len == 0) return BN_HTTP_NEED_MORE;
        uint64_t left_ms = (deadline - now) / 1000000 + 1;
        struct pollfd p = {c->fd, POLLIN, 0};
        int pr = net_poll(&p, 1, left_ms < 100 ? (int)left_ms : 100);
        if (pr < 0 && !net_interrupted()) return BN_HTTP_NEED_MORE;
        if (pr <= 0) continue;
        const long n = recv(c->fd, c->buf + c->len, c->cap - c->len, 0);
        if (n < 0 && net_retry()) continue;
        if (n <= 0) return BN_HTTP_NEED_MORE;
        c->len += (size_t)n;
    }
}

/* Closing a socket with unread input makes the kernel send a reset, which can
 * destroy the response (a 413 sent before the body was read) before the client
 * reads it. So: end our side, discard what the client still sends for a moment
 * (at most 1 s and 4 MiB), then close. */
static void linger_close(bn_socket fd) {
    shutdown(fd, SHUT_WR);
    uint64_t end = now_ns() + 1000000000ull;
    size_t drained = 0;
    char sink[4096];
    while (drained < (4u << 20)) {
        uint64_t now = now_ns();
        struct pollfd p = {fd, POLLIN, 0};
        if (now >= end || net_poll(&p, 1, (int)((end - now) / 1000000) + 1) <= 0) break;
        const long n = net_recv_now(fd, sink, sizeof sink, 0);
        if (n <= 0 && !(n < 0 && net_retry())) break;
        if (n > 0) drained += (size_t)n;
    }
    net_close(fd);
}

static void *conn_main(void *arg) {
    conn *c = arg;
    bn_http_request *rq = malloc(sizeof *rq);
    c->cap = g.limits.max_header_bytes + 1;
    c->buf = malloc(c->cap);
    const int one = 1;
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, (const void *)&one, sizeof one); /* each SSE event leaves at once */
    net_set_send_timeout(c->fd, g.o.timeout_s);
    while (rq && c->buf && read_request(c, rq) == BN_HTTP_COMPLETE) {
        size_t used = rq->total_len;
        if (!route(c, rq)) break;
        memmove(c->buf, c->buf + used, c->len - used); /* a pipelined next request */
        c->len -= used;
        if (c->cap > 4 * (g.limits.max_header_bytes + 1) && c->len <= g.limits.max_header_bytes) {
            char *nb = realloc(c->buf, g.limits.max_header_bytes + 1); /* give a big body's room back */
            if (nb) c->buf = nb, c->cap = g.limits.max_header_bytes + 1;
        }
    }
    slot_release(c); /* the last response is written */
    linger_close(c->fd);
    free(c->buf);
    free(c);
    free(rq);
    return NULL;
}

/* ---- main ------------------------------------------------------------------------------------ */

static void on_signal(int sig) {
    (void)sig;
    atomic_store(&g.stopping, 1);
    net_wake(g.wake[1]);
}

/* Numeric IPv4/IPv6 addresses only (and "localhost"): no resolver, so that the
 * static build needs no NSS libraries at run time. */
static bn_socket listen_on(const char *host, int port) {
    struct sockaddr_storage ss = {0};
    socklen_t len;
    struct sockaddr_in *v4 = (struct sockaddr_in *)&ss;
    struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)&ss;
    const char *h = strcmp(host, "localhost") ? host : "127.0.0.1";
    if (inet_pton(AF_INET, h, &v4->sin_addr) == 1) {
        v4->sin_family = AF_INET;
        v4->sin_port = htons((uint16_t)port);
        len = sizeof *v4;
    } else if (inet_pton(AF_INET6, h, &v6->sin6_addr) == 1) {
        v6->sin6_family = AF_INET6;
        v6->sin6_port = htons((uint16_t)port);
        len = sizeof *v6;
    } else {
        fprintf(stderr, "server: --host '%s' is not a numeric IPv4 or IPv6 address\n", host);
        return BN_NO_SOCKET;
    }
    const bn_socket fd = net_socket(ss.ss_family);
    const int one = 1;
    /* a restart may bind while old connections wait out TIME_WAIT; not on Windows,
     * where SO_REUSEADDR would let another process bind the same port */
#ifndef _WIN32
    if (fd != BN_NO_SOCKET) setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, (const void *)&one, sizeof one);
#else
    (void)one;
#endif
    if (fd == BN_NO_SOCKET || bind(fd, (struct sockaddr *)&ss, len) != 0 || listen(fd, 128) != 0) {
        fprintf(stderr, "server: cannot listen on %s port %d: %s\n", host, port, net_error());
        if (fd != BN_NO_SOCKET) net_close(fd);
        return BN_NO_SOCKET;
    }
    return fd;
}

static int bound_port(bn_socket fd) {
    struct sockaddr_storage ss;
    socklen_t n = sizeof ss;
    if (getsockname(fd, (struct sockaddr *)&ss, &n) != 0) return -1;
    if (ss.ss_family == AF_INET6) return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
    return ntohs(((struct sockaddr_in *)&ss)->sin_port);
}

/* ---- connections over a limit, or while loading / draining -------------------------------------
 * They get no thread. The accept loop reads each one's request for at most
 * 1 s, answers GET /health and /metrics as usual and anything else with a 503
 * (why: too many connections, loading, shutting down), then shuts its side and
 * discards what the client still sends (up to 1 s) before closing, so that the
 * client reads the answer instead of a reset. */

#define OVF_MAX 256
#define OVF_BUF 2048

typedef struct {
    bn_socket fd;
    int draining;
    uint64_t deadline;
    size_t len;
    char buf[OVF_BUF];
} overflow_conn;

static overflow_conn *g_ovf[OVF_MAX];
static int g_n_ovf;

static void overflow_close(int i) {
    net_close(g_ovf[i]->fd);
    free(g_ovf[i]);
    g_ovf[i] = g_ovf[--g_n_ovf];
}

static void overflow_add(bn_socket fd) {
    overflow_conn *o = g_n_ovf < OVF_MAX ? calloc(1, sizeof *o) : NULL;
    if (!o) { /* too many even for this: nothing more can be done cheaply */
        net_close(fd);
        return;
    }
    net_set_nonblocking(fd, 1);
    o->fd = fd;
    o->deadline = now_ns() + 1000000000ull;
    g_ovf[g_n_ovf++] = o;
}

/* The request is in (or the time is up): answer it, start draining. */
static void overflow_answer(overflow_conn *o, int complete) {
    net_set_nonblocking(o->fd, 0);
    net_set_send_timeout(o->fd, 1);
    conn tmp = {o->fd, NULL, 0, 0, {0}, 0, 0};
    bn_http_request *rq = complete ? malloc(sizeof *rq) : NULL;
    const int phase = atomic_load(&g.phase);
    int served = 0;
    if (rq && bn_http_parse_request(o->buf, o->len, rq, &g.limits) == BN_HTTP_COMPLETE &&
        bn_http_eq_nocase(rq->method, rq->method_len, "GET")) {
        if (rq->path_len == 7 && !memcmp(rq->path, "/health", 7)) served = (handle_health(&tmp, 0), 1);
        else if (phase != PHASE_LOADING && rq->path_len == 8 && !memcmp(rq->path, "/metrics", 8))
            served = (route(&tmp, rq), 1); /* /metrics still needs the API key */
    }
    free(rq);
    if (!served)
        respond_error(&tmp, 503,
                      phase == PHASE_LOADING    ? "loading model"
                      : phase == PHASE_DRAINING ? "the server is shutting down"
                                                : "too many open connections",
                      0, "Retry-After: 1\r\n");
    shutdown(o->fd, SHUT_WR);
    net_set_nonblocking(o->fd, 1);
    o->draining = 1;
    o->deadline = now_ns() + 1000000000ull;
}

/* Input or time for overflow connection i; returns 1 if it was closed. */
static int overflow_step(int i, int readable) {
    overflow_conn *o = g_ovf[i];
    if (readable) {
        char sink[4096];
        char *dst = o->draining ? sink : o->buf + o->len;
        size_t room = o->draining ? sizeof sink : OVF_BUF - 1 - o->len;
        const long n = room ? recv(o->fd, dst, room, 0) : 0;
        if (n == 0 || (n < 0 && !net_retry())) { /* EOF or error: done */
            if (!o->draining) overflow_answer(o, 0);
            overflow_close(i);
            return 1;
        }
        if (n > 0 && !o->draining) {
            o->len += (size_t)n;
            o->buf[o->len] = 0;
            if (strstr(o->buf, "\r\n\r\n") || o->len == OVF_BUF - 1) overflow_answer(o, 1);
        }
    }
    if (now_ns() >= o->deadline) {
        if (!o->draining) overflow_answer(o, 0); /* slow: a 503 without reading on */
        else {
            overflow_close(i);
            return 1;
        }
    }
    return 0;
}

/* The model, its context and the scheduler, made by a thread of their own so
 * that the server answers (503) while they load. */
static struct {
    bitnet_context *ctx;
    bitnet_status status;
    atomic_int done;
} g_load;

static void *load_main(void *arg) {
    (void)arg;
    /* tests only: a load that takes a while, to see the 503 of the loading phase */
    const char *delay = getenv("BITNET_SERVER_TEST_LOAD_DELAY_MS");
    if (delay) usleep((useconds_t)atoi(delay) * 1000u);
    bitnet_model_params mp = bitnet_model_default_params();
    mp.tokenizer_path = g.o.m.tokenizer;
    bitnet_status st = g.o.m.model ? bitnet_model_load(g.o.m.model, &mp, &g.model) : bitnet_model_load_default(&mp, &g.model);
    if (st == BITNET_OK) {
        bitnet_model_info info;
        bitnet_model_get_info(g.model, &info);
        snprintf(g.model_name, sizeof g.model_name, "%s",
                 g.o.alias ? g.o.alias : info.name && *info.name ? info.name : "default");
        bitnet_context_params cp = bitnet_context_default_params();
        cp.n_ctx = g.o.n_ctx;
        cp.n_batch = g.o.n_batch;
        cp.n_threads = g.o.m.n_threads;
        cp.cpu_affinity = g.o.cpu_affinity;
        cp.n_seq = g.o.slots;
        cp.kv_type = g.o.m.kv.type;
        if ((st = bitnet_context_new(g.model, &cp, &g_load.ctx)) == BITNET_OK)
            st = bn_sched_new(g.model, g_load.ctx, g.o.n_batch, g.o.queue, g.o.lookup, g.o.draft_max, &g.sched);
        if (st == BITNET_OK) bn_sched_set_context_shift(g.sched, g.o.context_shift);
        if (st == BITNET_OK && g.o.embeddings) {
            cp.n_seq = 1;
            cp.n_batch = g.o.n_ctx; /* an input in one pass */
            st = bitnet_context_new(g.model, &cp, &g.embd_ctx);
        }
    }
    if (st == BITNET_OK) {
        g.n_ctx = bitnet_n_ctx(g_load.ctx);
        g.n_vocab = bitnet_n_vocab(g.model);
    } else {
        fprintf(stderr, "server: %s\n", bitnet_last_error()); /* the message is per thread */
    }
    g_load.status = st;
    atomic_store(&g_load.done, 1);
    net_wake(g.wake[1]);
    return NULL;
}

/* Accepts until the server has drained after SIGINT/SIGTERM (or was stopped
 * while loading); returns the exit status. */
static int accept_loop(bn_socket lfd) {
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    pthread_attr_setstacksize(&attr, 256 * 1024);
    static struct pollfd p[2 + OVF_MAX];
    uint64_t drain_deadline = 0;
    int rc = 0;
    for (;;) {
        int phase = atomic_load(&g.phase);
        if (phase == PHASE_LOADING && atomic_load(&g_load.done)) {
            if (g_load.status != BITNET_OK) {
                rc = 1;
                break;
            }
            atomic_store(&g.phase, phase = PHASE_READY);
            int v6 = strchr(g.o.host, ':') != NULL; /* URLs write IPv6 addresses in brackets */
            fprintf(stderr, "server: listening on http://%s%s%s:%d (model %s, %d slots, ctx %d, queue %d, %d threads, isa %s)\n",
                    v6 ? "[" : "", g.o.host, v6 ? "]" : "", bound_port(lfd), g.model_name, g.o.slots, g.n_ctx, g.o.queue,
                    g.o.m.n_threads, bitnet_isa_name());
        }
        if (atomic_load(&g.stopping)) {
            if (phase == PHASE_LOADING) break; /* nothing runs yet */
            if (phase == PHASE_READY) { /* new requests get 503 from now on; running ones may finish */
                bn_sched_stop(g.sched);
                atomic_store(&g.phase, phase = PHASE_DRAINING);
                drain_deadline = now_ns() + (uint64_t)g.o.grace_ms * 1000000ull;
                fprintf(stderr, "server: draining (%d connections open, %d ms grace)\n", atomic_load(&g.n_conns),
                        g.o.grace_ms);
            }
            bn_sched_stats st;
            bn_sched_get_stats(g.sched, &st);
            if ((st.slots_busy == 0 && st.queued == 0) || now_ns() >= drain_deadline) break;
        }
        p[0] = (struct pollfd){lfd, POLLIN, 0};
        p[1] = (struct pollfd){g.wake[0], POLLIN, 0};
        const int n_ovf = g_n_ovf;
        for (int i = 0; i < n_ovf; i++) p[2 + i] = (struct pollfd){g_ovf[i]->fd, POLLIN, 0};
        if (net_poll(p, (unsigned)(2 + n_ovf), n_ovf || phase == PHASE_DRAINING ? 50 : -1) < 0) {
            if (net_interrupted()) continue;
            break;
        }
        if (p[1].revents & POLLIN) net_wake_drain(g.wake[0]); /* a signal or the loader: looked at above */
        for (int i = n_ovf - 1; i >= 0; i--) /* backwards: closing moves the last entry into i */
            overflow_step(i, (p[2 + i].revents & (POLLIN | POLLHUP | POLLERR)) != 0);
        if (!(p[0].revents & POLLIN)) continue;
        struct sockaddr_storage ss;
        const bn_socket fd = net_accept(lfd, &ss);
        if (fd == BN_NO_SOCKET) continue;
        if (phase != PHASE_READY) { /* loading or draining: a 503 from this thread */
            overflow_add(fd);
            continue;
        }
        conn *c = calloc(1, sizeof *c);
        if (!c) {
            net_close(fd);
            continue;
        }
        c->fd = fd;
        c->started = now_ns();
        if (ss.ss_family == AF_INET) memcpy(c->addr, &((struct sockaddr_in *)&ss)->sin_addr, 4);
        else if (ss.ss_family == AF_INET6) memcpy(c->addr, &((struct sockaddr_in6 *)&ss)->sin6_addr, 16);
        if (!slot_acquire(c)) { /* over a limit: no thread */
            free(c);
            overflow_add(fd);
            continue;
        }
        pthread_t t;
        if (pthread_create(&t, &attr, conn_main, c) != 0) {
            slot_release(c);
            net_close(fd);
            free(c);
        }
    }
    while (g_n_ovf > 0) overflow_close(g_n_ovf - 1);
    pthread_attr_destroy(&attr);
    return rc;
}

int main(int argc, char **argv) {
    handle_version(argc, argv);
    if (!parse_args(argc, argv, &g.o)) return 2;
    pthread_mutex_init(&g.mu, NULL);
    pthread_mutex_init(&g.embd_mu, NULL);
    pthread_mutex_init(&g.grammar_mu, NULL);
    g.limits = bn_http_default_limits();
    if (!(g_slots.e = calloc((size_t)g.o.max_conns, sizeof *g_slots.e))) {
        fprintf(stderr, "server: out of memory\n");
        return 1;
    }
    g.limits.max_body_bytes = (size_t)g.o.max_body;
    g.started = (long long)time(NULL);

    /* listen first: /health answers 503 while the model loads */
    bn_socket lfd = BN_NO_SOCKET;
    if (net_start() != 0 || net_wake_open(g.wake) != 0) {
        fprintf(stderr, "server: cannot set up the sockets: %s\n", net_error());
        return 1;
    }
    if ((lfd = listen_on(g.o.host, g.o.port)) == BN_NO_SOCKET) return 1;
#ifdef _WIN32
    signal(SIGINT, on_signal); /* Ctrl-C (run by the C runtime on a thread of its own) */
    signal(SIGTERM, on_signal);
#else
    struct sigaction sa = {0};
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
#endif
    fprintf(stderr, "server: loading %s (port %d answers 503 until it is ready)\n", g.o.m.model ? g.o.m.model : "the default model",
            bound_port(lfd));
    pthread_t loader;
    if (pthread_create(&loader, NULL, load_main, NULL) != 0) {
        fprintf(stderr, "server: cannot start the loading thread\n");
        return 1;
    }

    int rc = accept_loop(lfd);
    net_close(lfd); /* stop accepting: new connections are refused by the kernel */
    pthread_join(loader, NULL); /* stopped while loading: the load finishes first */
    if (g_load.status != BITNET_OK) {
        bitnet_context_free(g_load.ctx);
        bitnet_context_free(g.embd_ctx);
        bitnet_model_free(g.model);
        free(g_slots.e);
        return rc ? rc : 0;
    }
    fprintf(stderr, "server: shutting down (%d connections open)\n", atomic_load(&g.n_conns));
    bn_sched_drain(g.sched, 0); /* what still runs after the grace: its streams are ended */
    uint64_t until = now_ns() + (uint64_t)(g.o.timeout_s + 1) * 1000000000ull;
    while (atomic_load(&g.n_conns) > 0 && now_ns() < until) usleep(10000); /* writers finish */
    int left = atomic_load(&g.n_conns);
    if (left == 0) { /* with writers still blocked in send() the context must stay alive: just exit */
        bn_sched_free(g.sched);
        bitnet_context_free(g_load.ctx);
        bitnet_context_free(g.embd_ctx);
        bitnet_grammar_free(g.grammar_base);
        bitnet_model_free(g.model);
        free(g_slots.e);
    }
    fprintf(stderr, "server: stopped%s\n", left ? " (some clients did not read their last bytes)" : "");
    return 0;
}
