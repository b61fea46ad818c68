/* test_http.c - the HTTP/1.1 request parser (server/http.c): valid requests, every
 * malformed case it must refuse (with the status code), limits, incremental input
 * and pipelining. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "http.h"
#include "test.h"

static bn_http_result parse(const char *s, bn_http_request *r) { return bn_http_parse_request(s, strlen(s), r, NULL); }

static int header_is(const bn_http_request *r, const char *name, const char *value) {
    const bn_http_header *h = bn_http_find_header(r, name);
    return h && h->value_len == strlen(value) && memcmp(h->value, value, h->value_len) == 0;
}

TEST(http_parse_get) {
    bn_http_request r;
    const char *req = "GET /v1/models?x=1 HTTP/1.1\r\nHost: localhost\r\nUser-Agent:  curl/8  \r\nAccept:*/*\r\n\r\n";
    CHECK_EQ_INT(parse(req, &r), BN_HTTP_COMPLETE);
    CHECK(bn_http_eq_nocase(r.method, r.method_len, "GET"));
    CHECK(r.target_len == strlen("/v1/models?x=1") && !memcmp(r.target, "/v1/models?x=1", r.target_len));
    CHECK(r.path_len == strlen("/v1/models") && !memcmp(r.path, "/v1/models", r.path_len));
    CHECK_EQ_INT(r.version_minor, 1);
    CHECK_EQ_INT(r.n_headers, 3);
    CHECK(header_is(&r, "user-agent", "curl/8")); /* OWS trimmed on both sides */
    CHECK(header_is(&r, "ACCEPT", "*/*"));
    CHECK(header_is(&r, "Host", "localhost"));
    CHECK(!bn_http_find_header(&r, "content-length"));
    CHECK_EQ_INT(r.content_length, -1);
    CHECK_EQ_INT(r.keep_alive, 1);
    CHECK_EQ_INT(r.total_len, strlen(req));
    CHECK_EQ_INT(r.header_len, strlen(req));
}

TEST(http_parse_post_body_and_pipelining) {
    const char *two = "POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello"
                      "GET /health HTTP/1.0\r\n\r\n";
    bn_http_request r;
    CHECK_EQ_INT(parse(two, &r), BN_HTTP_COMPLETE);
    CHECK_EQ_INT(r.content_length, 5);
    CHECK(r.body && !memcmp(r.body, "hello", 5));
    CHECK_EQ_INT(r.keep_alive, 0);
    const char *next = two + r.total_len;
    CHECK(!strncmp(next, "GET /health", 11));
    CHECK_EQ_INT(parse(next, &r), BN_HTTP_COMPLETE);
    CHECK_EQ_INT(r.version_minor, 0);
    CHECK_EQ_INT(r.keep_alive, 0); /* HTTP/1.0 closes by default; no Host needed */
    CHECK_EQ_INT(parse("GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n", &r), BN_HTTP_COMPLETE);
    CHECK_EQ_INT(r.keep_alive, 1);
    CHECK_EQ_INT(parse("GET / HTTP/1.1\r\nHost: a\r\nConnection: upgrade, Close\r\n\r\n", &r), BN_HTTP_COMPLETE);
    CHECK_EQ_INT(r.keep_alive, 0);
    CHECK_EQ_INT(parse("GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\nContent-Length: 0\r\n\r\n", &r), BN_HTTP_COMPLETE);
    CHECK_EQ_INT(parse("GET / HTTP/1.2\r\nHost: a\r\n\r\n", &r), BN_HTTP_COMPLETE); /* 1.x > 1: as 1.1 */
    CHECK_EQ_INT(r.version_minor, 1);
    CHECK_EQ_INT(parse("POST /a HTTP/1.1\r\nHost: a\r\nExpect: 100-Continue\r\nContent-Length: 3\r\n\r\n", &r),
                 BN_HTTP_NEED_MORE);
    CHECK_EQ_INT(r.expect_continue, 1);
}

/* Every prefix of a valid request needs more; the whole is complete. */
TEST(http_parse_incremental) {
    const char *req = "POST /v1/chat/completions HTTP/1.1\r\nHost: h\r\nContent-Length: 11\r\n\r\n{\"a\": true}";
    size_t n = strlen(req);
    bn_http_request r;
    for (size_t i = 0; i < n; i++) {
        bn_http_result res = bn_http_parse_request(req, i, &r, NULL);
        CHECK_MSG(res == BN_HTTP_NEED_MORE, "prefix of %zu bytes gave %d", i, (int)res);
        if (i >= n - 11) { /* headers complete: the lengths are known already */
            CHECK_EQ_INT(r.header_len, n - 11);
            CHECK_EQ_INT(r.content_length, 11);
        }
    }
    CHECK_EQ_INT(bn_http_parse_request(req, n, &r, NULL), BN_HTTP_COMPLETE);
    CHECK_EQ_INT(bn_http_parse_request(NULL, 0, &r, NULL), BN_HTTP_NEED_MORE);
}

typedef struct {
    const char *req;
    int status;
} bad_case;

TEST(http_parse_malformed) {
    static const bad_case cases[] = {
        {"GET / HTTP/1.1\nHost: a\r\n\r\n", 400},                /* bare LF */
        {"GET / HTTP/1.1\r\nHost: a\n\n", 400},                  /* bare LF at the end */
        {"GET / HTTP/1.1\r\nHost: a\rb\r\n\r\n", 400},           /* bare CR */
        {"GET  / HTTP/1.1\r\nHost: a\r\n\r\n", 400},             /* two spaces */
        {" GET / HTTP/1.1\r\nHost: a\r\n\r\n", 400},             /* leading space */
        {"\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n", 400},          /* empty line first */
        {"GET / HTTP/1.1 \r\nHost: a\r\n\r\n", 400},             /* space after the version */
        {"GET /\r\nHost: a\r\n\r\n", 400},                       /* HTTP/0.9 style */
        {"GET / HTTP/1.1\r\n\r\n", 400},                         /* no Host in 1.1 */
        {"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400},   /* two Hosts */
        {"GET / HTTP/1\r\nHost: a\r\n\r\n", 400},                /* short version */
        {"GET / HTTP/1.x\r\nHost: a\r\n\r\n", 400},
        {"GET / http/1.1\r\nHost: a\r\n\r\n", 400},              /* protocol name is case-sensitive */
        {"GET / HTTP/2.0\r\nHost: a\r\n\r\n", 505},
        {"GET / HTTP/0.9\r\nHost: a\r\n\r\n", 505},
        {"GET http://a/ HTTP/1.1\r\nHost: a\r\n\r\n", 400},      /* absolute-form */
        {"OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n", 400},          /* asterisk-form */
        {"G(T / HTTP/1.1\r\nHost: a\r\n\r\n", 400},              /* non-token method */
        {"GET /a\x01 HTTP/1.1\r\nHost: a\r\n\r\n", 400},         /* control char in the target */
        {"GET / HTTP/1.1\r\nHost : a\r\n\r\n", 400},             /* space before the colon */
        {"GET / HTTP/1.1\r\nHost a\r\n\r\n", 400},               /* no colon */
        {"GET / HTTP/1.1\r\n: a\r\nHost: a\r\n\r\n", 400},       /* empty name */
        {"GET / HTTP/1.1\r\nHost: a\r\n folded\r\n\r\n", 400},   /* obs-fold */
        {"GET / HTTP/1.1\r\nHost: a\r\n\tfolded\r\n\r\n", 400},  /* obs-fold with a tab */
        {"GET / HTTP/1.1\r\nHost: a\x7f\r\n\r\n", 400},          /* DEL in a value */
        {"GET / HTTP/1.1\r\nX\x80: a\r\nHost: a\r\n\r\n", 400},  /* non-token name byte */
        {"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: -1\r\n\r\n", 400},
        {"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1x\r\n\r\n", 400},
        {"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: \r\n\r\n", 400},
        {"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5, 5\r\n\r\n", 400},
        {"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: +5\r\n\r\n", 400},
        {"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n", 400},
        {"POST / HTTP/1.1\r\nHost: a\r\n\r\n", 411},             /* POST without a length */
        {"PUT / HTTP/1.1\r\nHost: a\r\n\r\n", 411},
        {"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n", 411},
        {"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n\r\n", 411},
        {"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n", 411}, /* smuggling */
        {"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1048577\r\n\r\n", 413},
        {"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 99999999999999999999999999\r\n\r\n", 413},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        bn_http_request r;
        bn_http_result res = parse(cases[i].req, &r);
        CHECK_MSG(res == BN_HTTP_ERROR && r.status == cases[i].status, "case %zu: result %d status %d, want error %d",
                  i, (int)res, r.status, cases[i].status);
        CHECK_MSG(res != BN_HTTP_ERROR || (r.error && *r.error), "case %zu has no error message", i);
    }
    /* a NUL byte inside the header block (strlen would stop at it) */
    const char nul[] = "GET / HTTP/1.1\r\nHost: a\0b\r\n\r\n";
    bn_http_request r;
    CHECK_EQ_INT(bn_http_parse_request(nul, sizeof nul - 1, &r, NULL), BN_HTTP_ERROR);
    CHECK_EQ_INT(r.status, 400);
    const char nul_name[] = "GET / HTTP/1.1\r\nHo\0st: a\r\n\r\n";
    CHECK_EQ_INT(bn_http_parse_request(nul_name, sizeof nul_name - 1, &r, NULL), BN_HTTP_ERROR);
}

TEST(http_parse_limits) {
    bn_http_limits lim = {64, 10};
    bn_http_request r;
    /* a header block that does not end within the limit: 431, even before it ends */
    char big[200];
    memset(big, 'a', sizeof big);
    memcpy(big, "GET / HTTP/1.1\r\nHost: a\r\nX: ", 28);
    CHECK_EQ_INT(bn_http_parse_request(big, 63, &r, &lim), BN_HTTP_NEED_MORE);
    CHECK_EQ_INT(bn_http_parse_request(big, 64, &r, &lim), BN_HTTP_ERROR);
    CHECK_EQ_INT(r.status, 431);
    CHECK_EQ_INT(bn_http_parse_request(big, sizeof big, &r, &lim), BN_HTTP_ERROR);
    CHECK_EQ_INT(r.status, 431);
    /* exactly at the limit is fine */
    const char *fit = "GET / HTTP/1.1\r\nHost: a\r\nX: 01234567890123456789012345678901\r\n\r\n";
    CHECK_EQ_INT((long)strlen(fit), 64);
    CHECK_EQ_INT(bn_http_parse_request(fit, strlen(fit), &r, &lim), BN_HTTP_COMPLETE);
    /* body: 10 allowed, 11 refused from the header alone */
    const char *b10 = "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n\r\n0123456789";
    const char *b11 = "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 11\r\n\r\n";
    CHECK_EQ_INT(bn_http_parse_request(b10, strlen(b10), &r, &lim), BN_HTTP_COMPLETE);
    CHECK_EQ_INT(bn_http_parse_request(b11, strlen(b11), &r, &lim), BN_HTTP_ERROR);
    CHECK_EQ_INT(r.status, 413);
    /* too many header fields */
    char many[4096] = "GET / HTTP/1.1\r\nHost: a\r\n";
    for (int i = 0; i < BN_HTTP_MAX_HEADERS; i++) strcat(many, "X-A: b\r\n");
    strcat(many, "\r\n");
    CHECK_EQ_INT(parse(many, &r), BN_HTTP_ERROR);
    CHECK_EQ_INT(r.status, 431);
}

TEST(http_helpers) {
    CHECK(bn_http_has_token("keep-alive, Upgrade", 19, "upgrade"));
    CHECK(bn_http_has_token(" close ", 7, "close"));
    CHECK(!bn_http_has_token("closed", 6, "close"));
    CHECK(!bn_http_has_token("", 0, "close"));
    CHECK(bn_http_eq_nocase("Content-LENGTH", 14, "content-length"));
    CHECK(!bn_http_eq_nocase("Content-Lengt", 13, "content-length"));
    CHECK_STR(bn_http_reason(413), "Content Too Large");
    CHECK_STR(bn_http_reason(299), "Unknown");
    char head[256];
    int n = bn_http_format_head(head, sizeof head, 404, "application/json", 17, 1, "X-A: b\r\n");
    CHECK_STR(head, "HTTP/1.1 404 Not Found\r\nContent-Type: application/json\r\nContent-Length: 17\r\n"
                    "Connection: keep-alive\r\nX-A: b\r\n\r\n");
    CHECK_EQ_INT(n, (long)strlen(head));
    n = bn_http_format_head(head, sizeof head, 200, "text/event-stream", -1, 0, NULL);
    CHECK_STR(head, "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nConnection: close\r\n\r\n");
    CHECK_EQ_INT(bn_http_format_head(head, 20, 200, NULL, 1, 0, NULL), -1); /* does not fit */
}

/* Random bytes and random mutations of a valid request: never a crash or a read
 * past len (ASan checks), and the answer is one of the three results. */
TEST(http_parse_random_bytes) {
    const char *valid = "POST /v1/completions HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\n\r\nbody";
    size_t n = strlen(valid);
    uint64_t rng = 12345;
    for (int it = 0; it < 20000; it++) {
        char *buf = malloc(n); /* exact size: ASan sees any overread */
        memcpy(buf, valid, n);
        int edits = 1 + it % 4;
        for (int e = 0; e < edits; e++) {
            rng = rng * 6364136223846793005ull + 1442695040888963407ull;
            buf[(rng >> 33) % n] = (char)(rng >> 17);
        }
        size_t len = (size_t)((rng >> 40) % (n + 1));
        bn_http_request r;
        bn_http_result res = bn_http_parse_request(buf, len, &r, NULL);
        CHECK(res == BN_HTTP_ERROR || res == BN_HTTP_NEED_MORE || res == BN_HTTP_COMPLETE);
        if (res == BN_HTTP_COMPLETE) CHECK(r.total_len <= len);
        if (res == BN_HTTP_ERROR) CHECK(r.status >= 400 && r.status < 600);
        free(buf);
    }
}
