/* http.c - strict HTTP/1.1 request parser and response-head formatting (see http.h).
 *
 * Written for build/server, which only ever talks to local clients, but the
 * parser assumes hostile input: every byte is classified, every length is
 * bounded before it is used, and anything ambiguous (bare CR or LF, obs-fold,
 * whitespace before the colon, two different Content-Lengths, Transfer-Encoding)
 * is refused instead of guessed at. */
#include "http.h"

#include <stdio.h>
#include <string.h>

bn_http_limits bn_http_default_limits(void) {
    bn_http_limits l = {8192, 1 << 20};
    return l;
}

/* tchar of RFC 9110 5.6.2: the characters of methods and header names. */
static int is_tchar(unsigned char c) {
    if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')) return 1;
    return c && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

/* field-value characters: VCHAR, obs-text, SP, HTAB. */
static int is_value_char(unsigned char c) { return c == ' ' || c == '\t' || (c >= 0x21 && c != 0x7f); }

static unsigned char lower(unsigned char c) { return (c >= 'A' && c <= 'Z') ? (unsigned char)(c + 32) : c; }

int bn_http_eq_nocase(const char *s, size_t n, const char *lit) {
    size_t m = strlen(lit);
    if (n != m) return 0;
    for (size_t i = 0; i < n; i++)
        if (lower((unsigned char)s[i]) != lower((unsigned char)lit[i])) return 0;
    return 1;
}

int bn_http_has_token(const char *value, size_t len, const char *token) {
    size_t i = 0;
    while (i < len) {
        while (i < len && (value[i] == ' ' || value[i] == '\t' || value[i] == ',')) i++;
        size_t start = i;
        while (i < len && value[i] != ',') i++;
        size_t end = i;
        while (end > start && (value[end - 1] == ' ' || value[end - 1] == '\t')) end--;
        if (end > start && bn_http_eq_nocase(value + start, end - start, token)) return 1;
    }
    return 0;
}

const bn_http_header *bn_http_find_header(const bn_http_request *r, const char *name) {
    for (int i = 0; i < r->n_headers; i++)
        if (bn_http_eq_nocase(r->headers[i].name, r->headers[i].name_len, name)) return &r->headers[i];
    return NULL;
}

static bn_http_result fail(bn_http_request *out, int status, const char *why) {
    out->status = status;
    out->error = why;
    return BN_HTTP_ERROR;
}

/* Finds the end of the header block ("\r\n\r\n") within the first max bytes,
 * refusing a bare CR or LF anywhere before it. Returns the block length
 * (including the blank line), 0 if not there yet, or -1 for a bare CR/LF. */
static long find_header_end(const char *buf, size_t len, size_t max) {
    size_t n = len < max ? len : max;
    for (size_t i = 0; i < n; i++) {
        if (buf[i] == '\r') {
            if (i + 1 < len && buf[i + 1] != '\n') return -1;
        } else if (buf[i] == '\n') {
            if (i == 0 || buf[i - 1] != '\r') return -1;
            if (i >= 3 && buf[i - 2] == '\n' && buf[i - 3] == '\r') return (long)(i + 1);
        }
    }
    return 0;
}

/* Parses the request line "METHOD SP target SP HTTP/x.y CRLF"; returns the
 * offset after its CRLF, or 0 after recording an error in out. */
static size_t parse_request_line(const char *buf, size_t end, bn_http_request *out) {
    size_t i = 0;
    while (i < end && is_tchar((unsigned char)buf[i])) i++;
    if (i == 0 || i >= end || buf[i] != ' ') return fail(out, 400, "malformed request line (method)"), 0;
    out->method = buf;
    out->method_len = i++;
    size_t t0 = i;
    while (i < end && (unsigned char)buf[i] > 0x20 && (unsigned char)buf[i] != 0x7f) i++;
    if (i == t0 || i >= end || buf[i] != ' ') return fail(out, 400, "malformed request line (target)"), 0;
    if (buf[t0] != '/') return fail(out, 400, "request target must be an absolute path (origin-form)"), 0;
    out->target = buf + t0;
    out->target_len = i - t0;
    out->path = out->target;
    out->path_len = out->target_len;
    const char *q = memchr(out->target, '?', out->target_len);
    if (q) out->path_len = (size_t)(q - out->target);
    i++;
    /* "HTTP/" DIGIT "." DIGIT CRLF */
    if (end - i < 10 || memcmp(buf + i, "HTTP/", 5) != 0) return fail(out, 400, "malformed request line (version)"), 0;
    char major = buf[i + 5], dot = buf[i + 6], minor = buf[i + 7];
    if (major < '0' || major > '9' || dot != '.' || minor < '0' || minor > '9' || buf[i + 8] != '\r')
        return fail(out, 400, "malformed request line (version)"), 0;
    if (major != '1') return fail(out, 505, "only HTTP/1.0 and HTTP/1.1 are supported"), 0;
    out->version_minor = minor == '0' ? 0 : 1; /* HTTP/1.x with x > 1 is handled as 1.1 (RFC 9110 2.5) */
    return i + 10;
}

/* Content-Length = 1*DIGIT. Values beyond 10^15 are kept as "huge": they are
 * only ever compared against the body limit. Returns -1 if not a number. */
static long long parse_length(const char *v, size_t n) {
    if (n == 0) return -1;
    long long x = 0;
    for (size_t i = 0; i < n; i++) {
        if (v[i] < '0' || v[i] > '9') return -1;
        if (x < 1000000000000000LL) x = x * 10 + (v[i] - '0');
    }
    return x;
}

bn_http_result bn_http_parse_request(const char *buf, size_t len, bn_http_request *out,
                                     const bn_http_limits *limits) {
    bn_http_limits lim = limits ? *limits : bn_http_default_limits();
    memset(out, 0, sizeof *out);
    out->content_length = -1;
    if (!buf) len = 0;

    long hend = find_header_end(buf, len, lim.max_header_bytes);
    if (hend < 0) return fail(out, 400, "bare CR or LF in the header block (lines must end in CRLF)");
    if (hend == 0) {
        if (len >= lim.max_header_bytes) return fail(out, 431, "request line and headers are too large");
        return BN_HTTP_NEED_MORE;
    }
    const size_t end = (size_t)hend; /* buf[end-4..end) == "\r\n\r\n" */
    size_t i = parse_request_line(buf, end, out);
    if (i == 0) return BN_HTTP_ERROR;

    int n_host = 0, has_te = 0;
    while (i < end - 2) { /* each field line; the final CRLF (blank line) ends the block */
        size_t n0 = i;
        while (i < end && is_tchar((unsigned char)buf[i])) i++;
        if (i == n0) {
            if (buf[i] == ' ' || buf[i] == '\t') return fail(out, 400, "obsolete header line folding");
            return fail(out, 400, "malformed header field name");
        }
        if (buf[i] != ':') return fail(out, 400, "header field name not followed by ':'");
        size_t name_len = i - n0;
        i++;
        while (buf[i] == ' ' || buf[i] == '\t') i++;
        size_t v0 = i;
        while (buf[i] != '\r') {
            if (!is_value_char((unsigned char)buf[i])) return fail(out, 400, "control character in a header value");
            i++;
        }
        size_t v1 = i;
        while (v1 > v0 && (buf[v1 - 1] == ' ' || buf[v1 - 1] == '\t')) v1--;
        i += 2; /* CRLF, guaranteed by find_header_end */
        if (out->n_headers == BN_HTTP_MAX_HEADERS) return fail(out, 431, "too many header fields");
        bn_http_header *h = &out->headers[out->n_headers++];
        h->name = buf + n0;
        h->name_len = name_len;
        h->value = buf + v0;
        h->value_len = v1 - v0;

        if (bn_http_eq_nocase(h->name, name_len, "content-length")) {
            long long cl = parse_length(h->value, h->value_len);
            if (cl < 0) return fail(out, 400, "Content-Length is not a decimal number");
            if (out->content_length >= 0 && out->content_length != cl)
                return fail(out, 400, "conflicting Content-Length headers");
            out->content_length = cl;
        } else if (bn_http_eq_nocase(h->name, name_len, "transfer-encoding")) {
            has_te = 1;
        } else if (bn_http_eq_nocase(h->name, name_len, "host")) {
            n_host++;
        } else if (bn_http_eq_nocase(h->name, name_len, "expect")) {
            if (bn_http_eq_nocase(h->value, h->value_len, "100-continue")) out->expect_continue = 1;
        }
    }

    out->keep_alive = out->version_minor >= 1;
    const bn_http_header *conn = bn_http_find_header(out, "connection");
    if (conn && bn_http_has_token(conn->value, conn->value_len, "close")) out->keep_alive = 0;
    if (conn && out->version_minor == 0 && bn_http_has_token(conn->value, conn->value_len, "keep-alive"))
        out->keep_alive = 1;

    if (out->version_minor >= 1 && n_host != 1) return fail(out, 400, "HTTP/1.1 request needs exactly one Host header");
    if (has_te) return fail(out, 411, "Transfer-Encoding (chunked) request bodies are not supported: send Content-Length");
    int wants_body = bn_http_eq_nocase(out->method, out->method_len, "POST") ||
                     bn_http_eq_nocase(out->method, out->method_len, "PUT") ||
                     bn_http_eq_nocase(out->method, out->method_len, "PATCH");
    if (wants_body && out->content_length < 0) return fail(out, 411, "request body needs a Content-Length header");
    if (out->content_length > (long long)lim.max_body_bytes) return fail(out, 413, "request body is too large");

    out->header_len = end;
    size_t body = out->content_length > 0 ? (size_t)out->content_length : 0;
    if (len - end < body) return BN_HTTP_NEED_MORE;
    out->body = buf + end;
    out->total_len = end + body;
    return BN_HTTP_COMPLETE;
}

const char *bn_http_reason(int status) {
    switch (status) {
    case 100: return "Continue";
    case 200: return "OK";
    case 204: return "No Content";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 411: return "Length Required";
    case 413: return "Content Too Large";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 503: return "Service Unavailable";
    case 505: return "HTTP Version Not Supported";
    default: return "Unknown";
    }
}

int bn_http_format_head(char *buf, size_t cap, int status, const char *content_type,
                        long long content_length, int keep_alive, const char *extra) {
    char len_line[48] = "";
    if (content_length >= 0) snprintf(len_line, sizeof len_line, "Content-Length: %lld\r\n", content_length);
    int n = snprintf(buf, cap, "HTTP/1.1 %d %s\r\nContent-Type: %s\r\n%sConnection: %s\r\n%s\r\n", status,
                     bn_http_reason(status), content_type ? content_type : "application/json", len_line,
                     keep_alive ? "keep-alive" : "close", extra ? extra : "");
    return (n < 0 || (size_t)n >= cap) ? -1 : n;
}
