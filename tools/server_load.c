/* server_load - load generator for build/server (used by bench/server-load.sh).
 *
 *   build/server_load http://127.0.0.1:8080 K S [--max-tokens N] [--api-key KEY]
 *
 * K client threads each send streaming /v1/completions requests back to back for
 * S seconds (requests running at the deadline are finished, and counted). Every
 * SSE event with text is timestamped on arrival: per-token latency is the gap
 * between consecutive events of a request, time to first token the time from
 * sending the request to its first event. Tokens are counted from the usage chunk
 * (stream_options.include_usage), so "tokens/event" shows whether events ever
 * carried more than one token. Prints one line of results. */
#include <arpa/inet.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define TOOL_NAME "server_load"
#include "util.h"

typedef struct {
    double *v;
    size_t n, cap;
} samples;

static void push(samples *s, double x) {
    if (s->n == s->cap) {
        size_t cap = s->cap ? 2 * s->cap : 1024;
        double *nv = realloc(s->v, cap * sizeof *nv);
        if (!nv) return;
        s->v = nv;
        s->cap = cap;
    }
    s->v[s->n++] = x;
}

static struct {
    char host[256], port[16], auth[300];
    int max_tokens;
    uint64_t deadline;
} g;

typedef struct {
    samples gaps, ttft;
    long long tokens, events, requests, failures;
    uint64_t t_end;
    int index;
} client;

static int connect_to(void) {
    struct sockaddr_in a = {0};
    a.sin_family = AF_INET;
    a.sin_port = htons((uint16_t)atoi(g.port));
    if (inet_pton(AF_INET, strcmp(g.host, "localhost") ? g.host : "127.0.0.1", &a.sin_addr) != 1) return -1;
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd >= 0 && connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
        close(fd);
        fd = -1;
    }
    return fd;
}

/* One streaming request; returns 0 if it ended with data: [DONE]. */
static int one_request(client *c, int id) {
    char body[256], req[1024];
    int bn = snprintf(body, sizeof body,
                      "{\"prompt\":\"Once upon a time\",\"max_tokens\":%d,\"ignore_eos\":true,\"temperature\":0.8,"
                      "\"seed\":%d,\"stream\":true,\"stream_options\":{\"include_usage\":true}}", g.max_tokens, id);
    int rn = snprintf(req, sizeof req,
                      "POST /v1/completions HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\n%s"
                      "Content-Length: %d\r\n\r\n%s", g.host, g.auth, bn, body);
    int fd = connect_to();
    if (fd < 0) return -1;
    uint64_t t0 = now_ns(), t_prev = 0;
    if (send(fd, req, (size_t)rn, MSG_NOSIGNAL) != rn) {
        close(fd);
        return -1;
    }
    char buf[1 << 16];
    size_t len = 0, scan = 0;
    int header_done = 0, done = 0;
    long long usage = -1, events = 0;
    for (;;) {
        if (len == sizeof buf) break; /* an event larger than the buffer: give up */
        ssize_t r = recv(fd, buf + len, sizeof buf - len, 0);
        if (r <= 0) break;
        uint64_t t = now_ns();
        len += (size_t)r;
        if (!header_done) {
            char *e = memmem(buf, len, "\r\n\r\n", 4);
            if (!e) continue;
            if (strncmp(buf, "HTTP/1.1 200", 12) != 0) break;
            header_done = 1;
            scan = (size_t)(e + 4 - buf);
        }
        char *ev;
        while ((ev = memmem(buf + scan, len - scan, "\n\n", 2))) {
            size_t n = (size_t)(ev - (buf + scan));
            const char *p = buf + scan;
            if (n >= 12 && !strncmp(p, "data: [DONE]", 12)) done = 1;
            const char *u = memmem(p, n, "\"completion_tokens\":", 20);
            if (u) usage = atoll(u + 20);
            else if (memmem(p, n, "\"text\":\"", 8) && !memmem(p, n, "\"text\":\"\"", 9)) {
                events++;
                if (t_prev) push(&c->gaps, (double)(t - t_prev) * 1e-6);
                else push(&c->ttft, (double)(t - t0) * 1e-6);
                t_prev = t;
            }
            scan += n + 2;
        }
        memmove(buf, buf + scan, len - scan); /* keep the unfinished event */
        len -= scan;
        scan = 0;
    }
    close(fd);
    c->t_end = now_ns();
    if (!done || usage < 0) return -1;
    c->tokens += usage;
    c->events += events;
    return 0;
}

static void *client_main(void *arg) {
    client *c = arg;
    for (int i = 0; now_ns() < g.deadline; i++) {
        if (one_request(c, c->index * 100000 + i) == 0) c->requests++;
        else c->failures++;
        if (c->failures > 100) break;
    }
    return NULL;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double pct(const samples *s, double p) {
    if (!s->n) return 0.0;
    size_t i = (size_t)(p * (double)(s->n - 1) + 0.5);
    return s->v[i];
}

int main(int argc, char **argv) {
    handle_version(argc, argv);
    if (argc < 4 || !strcmp(argv[1], "-h") || !strcmp(argv[1], "--help")) {
        fprintf(argc < 4 ? stderr : stdout,
                "usage: server_load URL K S [--max-tokens N] [--api-key KEY]\n"
                "K concurrent streaming clients against build/server at URL (http://IPV4:PORT) for S seconds;\n"
                "prints tokens/s and per-token latency percentiles (see bench/server-load.sh).\n");
        return argc < 4 ? 2 : 0;
    }
    const char *url = argv[1];
    int k = atoi(argv[2]);
    double secs = atof(argv[3]);
    g.max_tokens = 128;
    for (int i = 4; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--max-tokens")) g.max_tokens = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--api-key")) snprintf(g.auth, sizeof g.auth, "Authorization: Bearer %s\r\n", argv[i + 1]);
        else {
            fprintf(stderr, "server_load: unknown option '%s'\n", argv[i]);
            return 2;
        }
    }
    if (strncmp(url, "http://", 7) != 0 || sscanf(url + 7, "%255[^:/]:%15[0-9]", g.host, g.port) != 2 || k < 1 ||
        k > 1024 || !(secs > 0) || g.max_tokens < 1) {
        fprintf(stderr, "server_load: expected http://HOST:PORT K>=1 S>0, got '%s' '%s' '%s'\n", argv[1], argv[2], argv[3]);
        return 2;
    }
    client *cl = calloc((size_t)k, sizeof *cl);
    pthread_t *th = calloc((size_t)k, sizeof *th);
    uint64_t t0 = now_ns();
    g.deadline = t0 + (uint64_t)(secs * 1e9);
    for (int i = 0; i < k; i++) {
        cl[i].index = i;
        if (pthread_create(&th[i], NULL, client_main, &cl[i]) != 0) {
            fprintf(stderr, "server_load: cannot start client thread %d\n", i);
            return 1;
        }
    }
    samples gaps = {0}, ttft = {0};
    long long tokens = 0, events = 0, requests = 0, failures = 0;
    uint64_t t_end = t0;
    for (int i = 0; i < k; i++) {
        pthread_join(th[i], NULL);
        for (size_t j = 0; j < cl[i].gaps.n; j++) push(&gaps, cl[i].gaps.v[j]);
        for (size_t j = 0; j < cl[i].ttft.n; j++) push(&ttft, cl[i].ttft.v[j]);
        tokens += cl[i].tokens;
        events += cl[i].events;
        requests += cl[i].requests;
        failures += cl[i].failures;
        if (cl[i].t_end > t_end) t_end = cl[i].t_end;
        free(cl[i].gaps.v);
        free(cl[i].ttft.v);
    }
    qsort(gaps.v, gaps.n, sizeof(double), cmp_double);
    qsort(ttft.v, ttft.n, sizeof(double), cmp_double);
    double wall = (double)(t_end - t0) * 1e-9;
    printf("K=%d  %.1f s  requests %lld (failed %lld)  tokens %lld  total %.1f tok/s  per-token latency ms "
           "p50 %.2f p95 %.2f p99 %.2f  ttft p50 %.1f ms  tokens/event %.2f\n",
           k, wall, requests, failures, tokens, tokens / wall, pct(&gaps, 0.5), pct(&gaps, 0.95), pct(&gaps, 0.99),
           pct(&ttft, 0.5), events ? (double)tokens / (double)events : 0.0);
    free(gaps.v);
    free(ttft.v);
    free(cl);
    free(th);
    return failures && !requests ? 1 : 0;
}
