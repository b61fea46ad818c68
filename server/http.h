/* http.h - a small, strict HTTP/1.1 request parser and response helpers (for build/server).
 *
 * The parser is a pure function over a byte buffer: it never reads past len,
 * never allocates, and points into the caller's buffer. Call it again with the
 * whole buffer each time more bytes arrive; it answers "complete", "need more"
 * or "error" with the status code to send. What it accepts (RFC 9112, strictly):
 *   request line   METHOD SP origin-form SP HTTP/1.0|HTTP/1.1 CRLF
 *   header fields  token ":" OWS value OWS CRLF   (no obs-fold, no bare CR or LF)
 *   body           Content-Length only; Transfer-Encoding is refused (411), so a
 *                  message has exactly one length and cannot be smuggled.
 * Limits: the request line plus headers (max_header_bytes, else 431), at most
 * BN_HTTP_MAX_HEADERS fields (431), and the body (max_body_bytes, else 413, which
 * is known from Content-Length before the body is read). */
#ifndef BN_HTTP_H
#define BN_HTTP_H

#include <stddef.h>

#define BN_HTTP_MAX_HEADERS 64

typedef enum { BN_HTTP_ERROR = -1, BN_HTTP_NEED_MORE = 0, BN_HTTP_COMPLETE = 1 } bn_http_result;

typedef struct {
    const char *name, *value; /* not NUL-terminated: use the lengths */
    size_t name_len, value_len;
} bn_http_header;

typedef struct {
    size_t max_header_bytes; /* request line + fields + blank line (default 8192)  */
    size_t max_body_bytes;   /* Content-Length limit (default 1 MiB)              */
} bn_http_limits;

typedef struct {
    const char *method, *target, *path; /* path: target without "?query" */
    size_t method_len, target_len, path_len;
    int version_minor;                  /* HTTP/1.<version_minor>: 0 or 1 */
    bn_http_header headers[BN_HTTP_MAX_HEADERS];
    int n_headers;
    long long content_length;           /* -1 when absent (no body)                         */
    int keep_alive;                     /* HTTP/1.1 unless "Connection: close"; 1.0 if "keep-alive" */
    int expect_continue;                /* "Expect: 100-continue" was sent                  */
    size_t header_len;                  /* bytes up to and including the blank line (0 until known) */
    size_t total_len;                   /* header_len + body: where the next request starts  */
    const char *body;                   /* content_length bytes (when complete)              */
    int status;                         /* BN_HTTP_ERROR: 400, 411, 413, 431 or 505          */
    const char *error;                  /* BN_HTTP_ERROR: static one-line reason             */
} bn_http_request;

bn_http_limits bn_http_default_limits(void);

/* Parses the request at the start of buf[0..len). BN_HTTP_COMPLETE: *out describes it
 * and the next request (pipelining) starts at buf + out->total_len. BN_HTTP_NEED_MORE:
 * read more bytes; once the header block is complete, out->header_len and
 * out->content_length are already set, so the caller knows how many bytes to wait for.
 * BN_HTTP_ERROR: out->status and out->error say what to answer; close afterwards.
 * limits may be NULL (defaults). */
bn_http_result bn_http_parse_request(const char *buf, size_t len, bn_http_request *out,
                                     const bn_http_limits *limits);

/* First header named name (ASCII case-insensitive), or NULL. */
const bn_http_header *bn_http_find_header(const bn_http_request *r, const char *name);
/* 1 if the comma-separated header value list contains token (case-insensitive). */
int bn_http_has_token(const char *value, size_t len, const char *token);
/* 1 if s[0..n) equals the NUL-terminated lit, ASCII case-insensitively. */
int bn_http_eq_nocase(const char *s, size_t n, const char *lit);

/* "OK", "Not Found", ... ("Unknown" for codes this server never sends). */
const char *bn_http_reason(int status);
/* Writes a status line and headers ending in the blank line into buf (cap bytes).
 * content_length < 0 omits Content-Length (a body that ends when the connection
 * closes, as for Server-Sent Events). extra: more "Name: value\r\n" lines or NULL.
 * Returns the length, or -1 if it does not fit. */
int bn_http_format_head(char *buf, size_t cap, int status, const char *content_type,
                        long long content_length, int keep_alive, const char *extra);

#endif
