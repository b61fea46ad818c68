/* json.c - strict RFC 8259 parser (recursive descent, depth-limited), JSON string
 * writer and the JSON Lines / paragraph reader for calibration texts.
 *
 * The parser never reads past `len` (the text need not be NUL-terminated) and
 * reports the first problem as "line L, column C: what is wrong". */
#include "formats/json.h"

#include <errno.h>
#include <locale.h>
#include <math.h>
#include <stdarg.h>

#include "common.h"

/* ---- parser ------------------------------------------------------------------ */

typedef struct {
    const unsigned char *s;
    size_t len, pos;
    char *err;
    size_t errlen;
} parser;

/* Records the error at byte offset `at`; always returns 0 so callers can `return fail(...)`. */
BN_PRINTF(3, 4) static int fail(parser *p, size_t at, const char *fmt, ...) {
    if (!p->err || p->errlen == 0) return 0;
    size_t line = 1, line_start = 0;
    for (size_t i = 0; i < at && i < p->len; i++)
        if (p->s[i] == '\n') {
            line++;
            line_start = i + 1;
        }
    int k = snprintf(p->err, p->errlen, "line %zu, column %zu: ", line, at - line_start + 1);
    if (k >= 0 && (size_t)k < p->errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(p->err + k, p->errlen - (size_t)k, fmt, ap);
        va_end(ap);
    }
    /* one line whatever the input quoted in it (a key with a newline, ...) */
    for (char *c = p->err; *c; c++)
        if ((unsigned char)*c < 0x20) *c = '?';
    return 0;
}

static int oom(parser *p) { return fail(p, p->pos, "out of memory"); }

static void skip_ws(parser *p) {
    while (p->pos < p->len) {
        unsigned char c = p->s[p->pos];
        if (c != ' ' && c != '\t' && c != '\n' && c != '\r') break;
        p->pos++;
    }
}

/* Describes the byte at pos for "unexpected ..." messages. */
static int fail_unexpected(parser *p, const char *context) {
    if (p->pos >= p->len) return fail(p, p->pos, "unexpected end of input%s", context);
    unsigned char c = p->s[p->pos];
    if (c >= 0x21 && c < 0x7f) return fail(p, p->pos, "unexpected character '%c'%s", c, context);
    return fail(p, p->pos, "unexpected byte 0x%02x%s", c, context);
}

static void free_inner(bn_json *v) {
    free(v->str);
    for (size_t i = 0; i < v->n; i++) {
        if (v->items) free_inner(&v->items[i]);
        if (v->keys) free(v->keys[i]);
    }
    free(v->items);
    free(v->keys);
    memset(v, 0, sizeof *v);
}

static int parse_value(parser *p, bn_json *out, int depth);

static int parse_literal(parser *p, bn_json *out) {
    static const struct { const char *word; bn_json_type type; int b; } lits[] = {
        {"true", BN_JSON_BOOL, 1}, {"false", BN_JSON_BOOL, 0}, {"null", BN_JSON_NULL, 0}};
    for (size_t i = 0; i < sizeof lits / sizeof lits[0]; i++) {
        if (p->s[p->pos] != (unsigned char)lits[i].word[0]) continue;
        size_t n = strlen(lits[i].word);
        if (p->len - p->pos < n || memcmp(p->s + p->pos, lits[i].word, n) != 0)
            return fail(p, p->pos, "invalid literal (expected '%s')", lits[i].word);
        p->pos += n;
        out->type = lits[i].type;
        out->boolean = lits[i].b;
        return 1;
    }
    return fail_unexpected(p, " (expected a value)");
}

static int is_digit(parser *p, size_t at) { return at < p->len && p->s[at] >= '0' && p->s[at] <= '9'; }

static int starts_with(parser *p, size_t at, const char *w) {
    size_t n = strlen(w);
    return p->len - at >= n && memcmp(p->s + at, w, n) == 0;
}

/* number = [ minus ] int [ frac ] [ exp ]; the grammar is checked here, strtod converts. */
static int parse_number(parser *p, bn_json *out) {
    size_t start = p->pos, i = p->pos;
    if (p->s[i] == '-') i++;
    if (!is_digit(p, i)) {
        if (starts_with(p, i, "Infinity")) return fail(p, start, "NaN and Infinity are not valid JSON");
        p->pos = i;
        return fail_unexpected(p, " (expected a digit after '-')");
    }
    if (p->s[i] == '0' && is_digit(p, i + 1)) return fail(p, i, "leading zero in number");
    while (is_digit(p, i)) i++;
    if (i < p->len && p->s[i] == '.') {
        if (!is_digit(p, ++i)) {
            p->pos = i;
            return fail_unexpected(p, " (expected a digit after '.')");
        }
        while (is_digit(p, i)) i++;
    }
    if (i < p->len && (p->s[i] == 'e' || p->s[i] == 'E')) {
        i++;
        if (i < p->len && (p->s[i] == '+' || p->s[i] == '-')) i++;
        if (!is_digit(p, i)) {
            p->pos = i;
            return fail_unexpected(p, " (expected a digit in the exponent)");
        }
        while (is_digit(p, i)) i++;
    }
    size_t n = i - start;
    char small[64], *buf = n < sizeof small ? small : malloc(n + 1);
    if (!buf) return oom(p);
    memcpy(buf, p->s + start, n);
    buf[n] = 0;
    char *end;
    double v = strtod(buf, &end);
    if (end != buf + n) { /* a locale whose decimal point is not '.' (set by the application) */
        char *dot = strchr(buf, '.');
        const char *dp = localeconv()->decimal_point;
        if (dot && dp && strlen(dp) == 1) *dot = dp[0];
        v = strtod(buf, &end);
    }
    int ok = end == buf + n;
    if (buf != small) free(buf);
    if (!ok) return fail(p, start, "cannot convert number");
    if (isinf(v)) return fail(p, start, "number out of range");
    out->type = BN_JSON_NUMBER;
    out->number = v;
    out->integer = !memchr(p->s + start, '.', n) && !memchr(p->s + start, 'e', n) && !memchr(p->s + start, 'E', n);
    p->pos = i;
    return 1;
}

static int hex4(parser *p, size_t at, unsigned *out) {
    if (p->len - at < 4) return 0;
    unsigned v = 0;
    for (int k = 0; k < 4; k++) {
        unsigned char c = p->s[at + (size_t)k];
        unsigned d;
        if (c >= '0' && c <= '9') d = c - '0';
        else if (c >= 'a' && c <= 'f') d = c - 'a' + 10;
        else if (c >= 'A' && c <= 'F') d = c - 'A' + 10;
        else return 0;
        v = v * 16 + d;
    }
    *out = v;
    return 1;
}

static size_t put_utf8(unsigned char *o, unsigned cp) {
    if (cp < 0x80) { o[0] = (unsigned char)cp; return 1; }
    if (cp < 0x800) {
        o[0] = (unsigned char)(0xc0 | (cp >> 6));
        o[1] = (unsigned char)(0x80 | (cp & 0x3f));
        return 2;
    }
    if (cp < 0x10000) {
        o[0] = (unsigned char)(0xe0 | (cp >> 12));
        o[1] = (unsigned char)(0x80 | ((cp >> 6) & 0x3f));
        o[2] = (unsigned char)(0x80 | (cp & 0x3f));
        return 3;
    }
    o[0] = (unsigned char)(0xf0 | (cp >> 18));
    o[1] = (unsigned char)(0x80 | ((cp >> 12) & 0x3f));
    o[2] = (unsigned char)(0x80 | ((cp >> 6) & 0x3f));
    o[3] = (unsigned char)(0x80 | (cp & 0x3f));
    return 4;
}

/* Length (1..4) of the valid UTF-8 sequence at s[0..n), or 0 if it is not one. */
static size_t utf8_seq_len(const unsigned char *s, size_t n) {
    uint32_t cp;
    return bn_utf8_next((const char *)s, n, &cp);
}

/* Parses the string starting at the opening quote into a malloc'd buffer. */
static int parse_string(parser *p, char **out, size_t *out_len) {
    size_t start = p->pos++;
    /* The decoded string is never longer than its source, so find the closing
     * quote first (skipping escaped characters) to size the buffer once. */
    size_t end = p->pos;
    while (end < p->len && p->s[end] != '"') end += p->s[end] == '\\' ? 2 : 1;
    if (end >= p->len) return fail(p, start, "unterminated string");
    unsigned char *buf = malloc(end - p->pos + 1);
    if (!buf) return oom(p);
    size_t n = 0;
    while (p->pos < end) {
        unsigned char c = p->s[p->pos];
        if (c < 0x20) {
            free(buf);
            return fail(p, p->pos, "control character 0x%02x in string (must be escaped)", c);
        }
        if (c >= 0x80) {
            size_t k = utf8_seq_len(p->s + p->pos, end - p->pos);
            if (!k) {
                free(buf);
                return fail(p, p->pos, "invalid UTF-8 byte 0x%02x in string", c);
            }
            memcpy(buf + n, p->s + p->pos, k);
            n += k;
            p->pos += k;
            continue;
        }
        if (c != '\\') {
            buf[n++] = c;
            p->pos++;
            continue;
        }
        size_t esc = p->pos;
        unsigned char e = p->s[p->pos + 1]; /* exists: the closing quote follows */
        p->pos += 2;
        const char *simple = strchr("\"\\/bfnrt", e);
        if (e && simple) {
            static const char map[] = "\"\\/\b\f\n\r\t";
            buf[n++] = (unsigned char)map[simple - "\"\\/bfnrt"];
            continue;
        }
        if (e != 'u') {
            free(buf);
            if (e >= 0x21 && e < 0x7f) return fail(p, esc, "invalid escape '\\%c' in string", e);
            return fail(p, esc, "invalid escape (byte 0x%02x after '\\') in string", e);
        }
        unsigned cp, lo;
        if (end - p->pos < 4 || !hex4(p, p->pos, &cp)) {
            free(buf);
            return fail(p, esc, "invalid \\u escape (expected 4 hex digits)");
        }
        p->pos += 4;
        if (cp >= 0xdc00 && cp <= 0xdfff) {
            free(buf);
            return fail(p, esc, "lone surrogate \\u%04X in string", cp);
        }
        if (cp >= 0xd800 && cp <= 0xdbff) {
            /* a high surrogate must be followed at once by an escaped low one */
            if (end - p->pos < 6 || p->s[p->pos] != '\\' || p->s[p->pos + 1] != 'u' ||
                !hex4(p, p->pos + 2, &lo) || lo < 0xdc00 || lo > 0xdfff) {
                free(buf);
                return fail(p, esc, "lone surrogate \\u%04X in string", cp);
            }
            p->pos += 6;
            cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
        }
        n += put_utf8(buf + n, cp);
    }
    p->pos = end + 1;
    buf[n] = 0;
    *out = (char *)buf;
    *out_len = n;
    return 1;
}

/* Makes room for one more child (and key) in a container. */
static int grow(parser *p, bn_json *v, size_t *cap) {
    if (v->n < *cap) return 1;
    size_t nc = *cap ? *cap * 2 : 4;
    bn_json *items = realloc(v->items, nc * sizeof *items);
    if (!items) return oom(p);
    v->items = items;
    if (v->type == BN_JSON_OBJECT) {
        char **keys = realloc(v->keys, nc * sizeof *keys);
        if (!keys) return oom(p);
        v->keys = keys;
    }
    *cap = nc;
    return 1;
}

/* Children are counted in v->n only once complete, so free_inner(v) is always safe. */
static int parse_array(parser *p, bn_json *v, int depth) {
    size_t cap = 0;
    v->type = BN_JSON_ARRAY;
    p->pos++;
    skip_ws(p);
    if (p->pos < p->len && p->s[p->pos] == ']') {
        p->pos++;
        return 1;
    }
    for (;;) {
        if (!grow(p, v, &cap)) return 0;
        memset(&v->items[v->n], 0, sizeof v->items[0]);
        if (!parse_value(p, &v->items[v->n], depth)) return 0;
        v->n++;
        skip_ws(p);
        if (p->pos < p->len && p->s[p->pos] == ',') {
            p->pos++;
            skip_ws(p);
            if (p->pos < p->len && p->s[p->pos] == ']') return fail(p, p->pos, "trailing comma before ']'");
            continue;
        }
        if (p->pos < p->len && p->s[p->pos] == ']') {
            p->pos++;
            return 1;
        }
        return fail_unexpected(p, " (expected ',' or ']' after an array element)");
    }
}

static int cmp_key(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* The object that starts at `at` is complete: a key that occurs twice is an
 * error (sorted copy of the keys: O(n log n) for hostile objects too). */
static int check_duplicates(parser *p, const bn_json *v, size_t at) {
    if (v->n < 2) return 1;
    char **k = malloc(v->n * sizeof *k);
    if (!k) return oom(p);
    memcpy(k, v->keys, v->n * sizeof *k);
    qsort(k, v->n, sizeof *k, cmp_key);
    const char *dup = NULL;
    for (size_t i = 1; i < v->n && !dup; i++)
        if (strcmp(k[i - 1], k[i]) == 0) dup = k[i];
    int ok = 1;
    if (dup) {
        char msg[96];
        snprintf(msg, sizeof msg, "duplicate key \"%.40s%s\" in an object", dup, strlen(dup) > 40 ? "..." : "");
        ok = fail(p, at, "%s", msg);
    }
    free(k);
    return ok;
}

static int parse_object(parser *p, bn_json *v, int depth) {
    size_t cap = 0, at = p->pos;
    v->type = BN_JSON_OBJECT;
    p->pos++;
    skip_ws(p);
    if (p->pos < p->len && p->s[p->pos] == '}') {
        p->pos++;
        return 1;
    }
    for (;;) {
        if (p->pos >= p->len || p->s[p->pos] != '"') return fail_unexpected(p, " (expected a string key)");
        size_t key_at = p->pos, key_len;
        char *key;
        if (!parse_string(p, &key, &key_len)) return 0;
        if (strlen(key) != key_len) {
            free(key);
            return fail(p, key_at, "object key contains \\u0000");
        }
        skip_ws(p);
        if (p->pos >= p->len || p->s[p->pos] != ':') {
            free(key);
            return fail_unexpected(p, " (expected ':' after an object key)");
        }
        p->pos++;
        if (!grow(p, v, &cap)) {
            free(key);
            return 0;
        }
        memset(&v->items[v->n], 0, sizeof v->items[0]);
        if (!parse_value(p, &v->items[v->n], depth)) {
            free(key);
            return 0;
        }
        v->keys[v->n++] = key;
        skip_ws(p);
        if (p->pos < p->len && p->s[p->pos] == ',') {
            p->pos++;
            skip_ws(p);
            if (p->pos < p->len && p->s[p->pos] == '}') return fail(p, p->pos, "trailing comma before '}'");
            continue;
        }
        if (p->pos < p->len && p->s[p->pos] == '}') {
            p->pos++;
            return check_duplicates(p, v, at);
        }
        return fail_unexpected(p, " (expected ',' or '}' after an object member)");
    }
}

/* Parses one value into *out (zeroed by the caller); on failure *out is freed and zeroed. */
static int parse_value(parser *p, bn_json *out, int depth) {
    skip_ws(p);
    if (p->pos >= p->len) return fail_unexpected(p, " (expected a value)");
    unsigned char c = p->s[p->pos];
    int ok;
    if (c == '[' || c == '{') {
        if (depth >= BN_JSON_MAX_DEPTH)
            return fail(p, p->pos, "nesting deeper than %d levels", BN_JSON_MAX_DEPTH);
        ok = c == '[' ? parse_array(p, out, depth + 1) : parse_object(p, out, depth + 1);
    } else if (c == '"') {
        out->type = BN_JSON_STRING;
        ok = parse_string(p, &out->str, &out->len);
    } else if (c == '-' || (c >= '0' && c <= '9')) {
        ok = parse_number(p, out);
    } else if (starts_with(p, p->pos, "NaN") || starts_with(p, p->pos, "Infinity")) {
        ok = fail(p, p->pos, "NaN and Infinity are not valid JSON");
    } else {
        ok = parse_literal(p, out);
    }
    if (!ok) free_inner(out);
    return ok;
}

bn_json *bn_json_parse(const char *text, size_t len, char *err, size_t errlen) {
    parser p = {(const unsigned char *)text, len, 0, err, errlen};
    if (err && errlen) err[0] = 0;
    if (!text && len) {
        fail(&p, 0, "no input");
        return NULL;
    }
    bn_json *v = calloc(1, sizeof *v);
    if (!v) {
        oom(&p);
        return NULL;
    }
    if (!parse_value(&p, v, 0)) {
        free(v);
        return NULL;
    }
    skip_ws(&p);
    if (p.pos < p.len) {
        fail_unexpected(&p, " after the JSON value");
        bn_json_free(v);
        return NULL;
    }
    return v;
}

void bn_json_free(bn_json *v) {
    if (!v) return;
    free_inner(v);
    free(v);
}

const bn_json *bn_json_get(const bn_json *obj, const char *key) {
    if (!obj || obj->type != BN_JSON_OBJECT || !key) return NULL;
    for (size_t i = 0; i < obj->n; i++)
        if (strcmp(obj->keys[i], key) == 0) return &obj->items[i];
    return NULL;
}

const char *bn_json_type_name(bn_json_type t) {
    switch (t) {
    case BN_JSON_NULL: return "null";
    case BN_JSON_BOOL: return "boolean";
    case BN_JSON_NUMBER: return "number";
    case BN_JSON_STRING: return "string";
    case BN_JSON_ARRAY: return "array";
    case BN_JSON_OBJECT: return "object";
    }
    return "?";
}

const char *bn_json_type_desc(bn_json_type t) {
    switch (t) {
    case BN_JSON_NULL: return "null";
    case BN_JSON_BOOL: return "a boolean";
    case BN_JSON_NUMBER: return "a number";
    case BN_JSON_STRING: return "a string";
    case BN_JSON_ARRAY: return "an array";
    case BN_JSON_OBJECT: return "an object";
    }
    return "?";
}

/* ---- writer ------------------------------------------------------------------ */

static int buf_reserve(bn_buf *b, size_t n) {
    if (n > SIZE_MAX - 1 - b->len) return -1;
    size_t need = b->len + n + 1; /* + the terminating NUL */
    if (need <= b->cap) return 0;
    size_t nc = b->cap ? b->cap : 64;
    while (nc < need) nc = nc > SIZE_MAX / 2 ? need : nc * 2;
    char *d = realloc(b->data, nc);
    if (!d) return -1;
    b->data = d;
    b->cap = nc;
    return 0;
}

int bn_buf_append(bn_buf *b, const void *p, size_t n) {
    if (buf_reserve(b, n) != 0) return -1;
    if (n) memcpy(b->data + b->len, p, n);
    b->len += n;
    b->data[b->len] = 0;
    return 0;
}

int bn_buf_printf(bn_buf *b, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0 || buf_reserve(b, (size_t)n) != 0) return -1;
    va_start(ap, fmt);
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
    return 0;
}

int bn_json_append_string(bn_buf *b, const char *s, size_t len) {
    const unsigned char *u = (const unsigned char *)s;
    if (bn_buf_append(b, "\"", 1) != 0) return -1;
    size_t run = 0; /* start of the pending run of bytes copied verbatim */
    for (size_t i = 0; i < len;) {
        unsigned char c = u[i];
        size_t k = c >= 0x80 ? utf8_seq_len(u + i, len - i) : 1;
        char esc[8];
        const char *rep = NULL;
        if (c == '"') rep = "\\\"";
        else if (c == '\\') rep = "\\\\";
        else if (c == '\n') rep = "\\n";
        else if (c == '\r') rep = "\\r";
        else if (c == '\t') rep = "\\t";
        else if (c == '\b') rep = "\\b";
        else if (c == '\f') rep = "\\f";
        else if (c < 0x20) {
            snprintf(esc, sizeof esc, "\\u%04x", c);
            rep = esc;
        } else if (k == 0) {
            rep = "\\ufffd";
            k = 1;
        }
        if (rep) {
            if (bn_buf_append(b, s + run, i - run) != 0 || bn_buf_append(b, rep, strlen(rep)) != 0) return -1;
            run = i + k;
        }
        i += k;
    }
    if (bn_buf_append(b, s + run, len - run) != 0) return -1;
    return bn_buf_append(b, "\"", 1);
}

int bn_utf8_valid(const char *s, size_t len) {
    const unsigned char *u = (const unsigned char *)s;
    for (size_t i = 0; i < len;) {
        size_t k = utf8_seq_len(u + i, len - i);
        if (!k) return 0;
        i += k;
    }
    return 1;
}

void bn_buf_free(bn_buf *b) {
    free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}

/* ---- calibration texts: JSON Lines or paragraphs --------------------------------- */

typedef struct {
    char **v;
    int n, cap;
} text_list;

static int list_push(text_list *l, const char *s, size_t n) {
    if (l->n == l->cap) {
        if (l->cap > (1 << 29)) return -1;
        int nc = l->cap ? l->cap * 2 : 16;
        char **v = realloc(l->v, (size_t)nc * sizeof *v);
        if (!v) return -1;
        l->v = v;
        l->cap = nc;
    }
    char *c = malloc(n + 1);
    if (!c) return -1;
    memcpy(c, s, n);
    c[n] = 0;
    l->v[l->n++] = c;
    return 0;
}

static int is_blank(const char *s, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (s[i] != ' ' && s[i] != '\t' && s[i] != '\r' && s[i] != '\v' && s[i] != '\f') return 0;
    return 1;
}

static bitnet_status read_whole(const char *path, char **data, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) return bn_error(BITNET_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    bn_buf b = {0};
    char chunk[1 << 16];
    size_t got;
    while ((got = fread(chunk, 1, sizeof chunk, f)) > 0) {
        if (bn_buf_append(&b, chunk, got) != 0) {
            fclose(f);
            bn_buf_free(&b);
            return bn_error(BITNET_ERR_NOMEM, "%s: out of memory reading the file", path);
        }
    }
    int bad = ferror(f);
    fclose(f);
    if (bad) {
        bn_buf_free(&b);
        return bn_error(BITNET_ERR_IO, "%s: read error", path);
    }
    *data = b.data;
    *len = b.len;
    return BITNET_OK;
}

static bitnet_status jsonl_line(const char *path, size_t lineno, const char *s, size_t n, text_list *l) {
    char err[256];
    bn_json *v = bn_json_parse(s, n, err, sizeof err);
    if (!v) {
        /* a line is one JSON document: drop the parser's "line 1, " */
        const char *msg = strncmp(err, "line 1, ", 8) == 0 ? err + 8 : err;
        return bn_error(BITNET_ERR_FORMAT, "%s:%zu: %s", path, lineno, msg);
    }
    bitnet_status st = BITNET_OK;
    const bn_json *t = bn_json_get(v, "text");
    if (v->type != BN_JSON_OBJECT)
        st = bn_error(BITNET_ERR_FORMAT, "%s:%zu: expected an object {\"text\": ...}, got %s", path, lineno,
                      bn_json_type_desc(v->type));
    else if (!t)
        st = bn_error(BITNET_ERR_FORMAT, "%s:%zu: object has no \"text\" member", path, lineno);
    else if (t->type != BN_JSON_STRING)
        st = bn_error(BITNET_ERR_FORMAT, "%s:%zu: \"text\" is %s, expected a string", path, lineno,
                      bn_json_type_desc(t->type));
    else if (strlen(t->str) != t->len)
        st = bn_error(BITNET_ERR_FORMAT, "%s:%zu: \"text\" contains \\u0000", path, lineno);
    else if (list_push(l, t->str, t->len) != 0)
        st = bn_error(BITNET_ERR_NOMEM, "%s: out of memory", path);
    bn_json_free(v);
    return st;
}

bitnet_status bn_jsonl_read_texts(const char *path, char ***texts, int *n) {
    if (!path || !texts || !n) return bn_error(BITNET_ERR_ARG, "bn_jsonl_read_texts: NULL argument");
    *texts = NULL;
    *n = 0;
    char *data;
    size_t len;
    bitnet_status st = read_whole(path, &data, &len);
    if (st != BITNET_OK) return st;
    size_t pl = strlen(path);
    int jsonl = pl >= 6 && strcmp(path + pl - 6, ".jsonl") == 0;
    text_list l = {0};
    size_t pos = len >= 3 && memcmp(data, "\xef\xbb\xbf", 3) == 0 ? 3 : 0;
    size_t lineno = 0, para_start = 0, para_end = 0;
    int in_para = 0;
    while (st == BITNET_OK && pos < len) {
        const char *nl = memchr(data + pos, '\n', len - pos);
        size_t end = nl ? (size_t)(nl - data) : len; /* line is data[pos..end) */
        lineno++;
        int blank = is_blank(data + pos, end - pos);
        if (jsonl) {
            if (!blank) st = jsonl_line(path, lineno, data + pos, end - pos, &l);
        } else if (blank) {
            if (in_para && list_push(&l, data + para_start, para_end - para_start) != 0)
                st = bn_error(BITNET_ERR_NOMEM, "%s: out of memory", path);
            in_para = 0;
        } else {
            if (!in_para) para_start = pos;
            in_para = 1;
            para_end = end > pos && data[end - 1] == '\r' ? end - 1 : end;
        }
        pos = end + 1;
    }
    if (st == BITNET_OK && in_para && list_push(&l, data + para_start, para_end - para_start) != 0)
        st = bn_error(BITNET_ERR_NOMEM, "%s: out of memory", path);
    free(data);
    if (st == BITNET_OK && l.n == 0) st = bn_error(BITNET_ERR_FORMAT, "%s: no texts", path);
    if (st != BITNET_OK) {
        bn_jsonl_free_texts(l.v, l.n);
        return st;
    }
    *texts = l.v;
    *n = l.n;
    return BITNET_OK;
}

void bn_jsonl_free_texts(char **texts, int n) {
    if (!texts) return;
    for (int i = 0; i < n; i++) free(texts[i]);
    free(texts);
}

int bn_json_write(bn_buf *b, const bn_json *v) {
    switch (v->type) {
    case BN_JSON_NULL: return bn_buf_printf(b, "null");
    case BN_JSON_BOOL: return bn_buf_printf(b, v->boolean ? "true" : "false");
    case BN_JSON_NUMBER:
        if (v->integer && fabs(v->number) < 1e15) return bn_buf_printf(b, "%.0f", v->number);
        for (int digits = 15; digits <= 17; digits++) { /* the shortest of these that reads back the same */
            char t[40];
            snprintf(t, sizeof t, "%.*g", digits, v->number);
            if (strtod(t, NULL) == v->number || digits == 17) return bn_buf_printf(b, "%s", t);
        }
        return -1;
    case BN_JSON_STRING: return bn_json_append_string(b, v->str, v->len);
    case BN_JSON_ARRAY:
    case BN_JSON_OBJECT: {
        const int obj = v->type == BN_JSON_OBJECT;
        int rc = bn_buf_append(b, obj ? "{" : "[", 1);
        for (size_t i = 0; i < v->n && !rc; i++) {
            if (i) rc = bn_buf_append(b, ",", 1);
            if (!rc && obj) rc = bn_json_append_string(b, v->keys[i], strlen(v->keys[i]));
            if (!rc && obj) rc = bn_buf_append(b, ":", 1);
            if (!rc) rc = bn_json_write(b, &v->items[i]);
        }
        return rc ? rc : bn_buf_append(b, obj ? "}" : "]", 1);
    }
    }
    return -1;
}
