/* server_main.h - what the parts of build/server share (not libbitnet-server):
 * its options, its state, a connection, and the functions that answer on one.
 *
 *   main.c       options, connections and their limits, the accept loop, the
 *                loading / ready / draining life, main()
 *   endpoints.c  the routes and the endpoints' handlers */
#ifndef BN_SERVER_MAIN_H
#define BN_SERVER_MAIN_H

#include "net.h" /* first: winsock2.h must come before windows.h */

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#include "bitnet.h"
#include "http.h"
#include "server.h"
#define TOOL_NAME "server"
#include "util.h"

typedef struct {
    model_options m; /* -m, --tokenizer, -t, --kv-type / -ctk / -ctv */
    const char *host, *api_key, *alias, *cpu_affinity;
    const char *slot_save_path; /* --slot-save-path DIR: POST /slots/{id}?action=save|restore files */
    int port, slots, n_ctx, n_batch, queue, max_conns, max_per_client, timeout_s, grace_ms;
    int lookup, draft_max; /* --lookup N, --draft-max: speculative decoding per slot */
    int context_shift;     /* --context-shift: generations go on past a full context */
    int embeddings; /* --embeddings: serve /embedding and /v1/embeddings */
    long max_body;
} options;

/* The server's life: it listens at once and answers 503 while the model
 * loads, serves, and on SIGINT/SIGTERM drains (503 to new requests, running
 * ones finish within --shutdown-grace) before it exits. */
enum { PHASE_LOADING, PHASE_READY, PHASE_DRAINING };

/* status codes counted in /metrics; anything else is "other" */
#define N_CODES 12
extern const int k_codes[N_CODES];

typedef struct {
    options o;
    bitnet_model *model;
    bn_sched *sched;
    char model_name[256];
    int n_ctx, n_vocab;
    long long started;
    bn_http_limits limits;
    atomic_int stopping, n_conns;
    atomic_int phase;   /* PHASE_*: what /health says and who gets a thread */
    atomic_ullong next_id;
    pthread_mutex_t mu; /* guards requests[] */
    unsigned long long requests[N_CODES + 1];
    bn_socket wake[2];  /* the signal handler and the loader write here to wake the accept loop (net.h) */
    bitnet_context *embd_ctx; /* --embeddings: one sequence, used under embd_mu */
    pthread_mutex_t embd_mu;
    bitnet_grammar *grammar_base; /* the vocabulary index every request's grammar shares (grammar_mu) */
    pthread_mutex_t grammar_mu;
} server_state;

extern server_state g; /* the one server of this process (main.c) */

typedef struct {
    bn_socket fd;
    char *buf;
    size_t len, cap;
    unsigned char addr[16]; /* the client's address (IPv4 in the first 4 bytes) */
    uint64_t started;       /* bn: when it was accepted                        */
    int counted;            /* holds a connection slot (n_conns, per client)   */
} conn;

/* ---- main.c: sending on a connection ---- */
/* Sends a whole response; returns keep_alive, or 0 if the connection must close. */
int respond(conn *c, int status, const char *type, const char *body, size_t n, int keep_alive, const char *extra);
int respond_buf(conn *c, int status, const char *type, bn_buf *b, int keep_alive, const char *extra);
int respond_error(conn *c, int status, const char *msg, int keep_alive, const char *extra);
int send_all(bn_socket fd, const char *p, size_t n);
void count_status(int status);
/* The client closed (or reset) its end. Pipelined bytes waiting to be read are not a close. */
int peer_gone(bn_socket fd);

/* ---- endpoints.c ---- */
/* Answers one complete request; returns 1 to keep the connection open. */
int route(conn *c, const bn_http_request *rq);
/* GET /health, also for connections the accept loop answers itself. */
int handle_health(conn *c, int ka);

#endif
