/* regex_gbnf.c - a JSON Schema "pattern" (a regular expression over a
 * string's value) -> the body of a GBNF rule over the string's JSON text.
 *
 * The ECMAScript subset llama.cpp's converter takes: the pattern anchored
 * (^...$), literals, escapes (\d \w \s and their negations, \. and the other
 * metacharacters, \n \t \r \f \v, \uHHHH), '.', classes [...] and [^...] with
 * ranges, groups (...), (?:...), (?<name>...), alternation |, quantifiers * + ?
 * {m} {m,} {m,n}. Lazy quantifiers, lookaround, backreferences and word
 * boundaries are refused. The regex speaks of the string's value, the grammar
 * writes its JSON text: a '"', '\' or control character the regex allows is
 * written as its JSON escape. '.', negated classes and \D \W \S never write
 * '"', '\' or a control character (a narrower language: every output still
 * matches). */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"
#include "formats/json.h"
#include "grammar/grammar.h"

#define MAX_COUNT 1000 /* {m,n} above this is refused (the grammar would grow with it) */

typedef struct {
    bn_buf *out;
    const char *start, *p, *end;
    int depth, failed;
    char *err;
    size_t errlen;
} rx;

static int rx_fail(rx *x, const char *what) {
    if (!x->failed) snprintf(x->err, x->errlen, "%s (at character %d)", what, (int)(x->p - x->start));
    x->failed = 1;
    return -1;
}

/* The next code point of the pattern (UTF-8 the JSON parser checked; a byte
 * that is not would stand for itself). */
static uint32_t rx_cp(rx *x) {
    uint32_t cp = (unsigned char)*x->p;
    const size_t k = bn_utf8_next(x->p, (size_t)(x->end - x->p), &cp);
    x->p += k ? k : 1;
    return cp;
}

/* A code point as a GBNF escape (\xHH, \uHHHH or \UHHHHHHHH): what a class
 * or literal holds, whatever the character. */
static const char *cp_escape(uint32_t cp, char buf[12]) {
    if (cp < 0x100) snprintf(buf, 12, "\\x%02X", (unsigned)cp);
    else if (cp < 0x10000) snprintf(buf, 12, "\\u%04X", (unsigned)cp);
    else snprintf(buf, 12, "\\U%08X", (unsigned)cp);
    return buf;
}

/* A character of the value, as grammar: its JSON text as a literal. */
static int rx_char(bn_buf *b, uint32_t cp) {
    static const char esc[] = {['\b'] = 'b', ['\f'] = 'f', ['\n'] = 'n', ['\r'] = 'r', ['\t'] = 't'};
    if (cp == '"') return bn_buf_printf(b, "\"\\\\\\\"\"");
    if (cp == '\\') return bn_buf_printf(b, "\"\\\\\\\\\"");
    if (cp < 0x20 && cp < sizeof esc && esc[cp]) return bn_buf_printf(b, "\"\\\\%c\"", esc[cp]);
    if (cp < 0x20 || cp == 0x7F) return bn_buf_printf(b, "\"\\\\u%04x\"", (unsigned)cp);
    char e[12];
    if (cp < 0x80 && (isalnum((int)cp) || strchr(" -_.,:;!?@#%&'()[]{}<>=+*/|~^$`", (int)cp))) return bn_buf_printf(b, "\"%c\"", (int)cp);
    return bn_buf_printf(b, "\"%s\"", cp_escape(cp, e));
}

/* Code-point ranges of a class, before it is written. */
typedef struct {
    uint32_t lo[64], hi[64];
    int n, negated;
} rx_set;

static int rx_add(rx *x, rx_set *s, uint32_t lo, uint32_t hi) {
    if (s->n == 64) return rx_fail(x, "a class of more than 64 ranges");
    s->lo[s->n] = lo, s->hi[s->n++] = hi;
    return 0;
}

/* \d \w \s (sign > 0) or \D \W \S (sign < 0) into s; 0 if e is none of them. */
static int rx_shorthand(rx *x, rx_set *s, char e, int *done) {
    *done = 1;
    switch (e) {
    case 'd': return rx_add(x, s, '0', '9');
    case 'w': return rx_add(x, s, '0', '9') || rx_add(x, s, 'A', 'Z') || rx_add(x, s, '_', '_') || rx_add(x, s, 'a', 'z');
    case 's': return rx_add(x, s, ' ', ' ') || rx_add(x, s, '\t', '\r');
    }
    *done = 0;
    return 0;
}

/* The code point an escape stands for (after the backslash), or -1 when the
 * escape is not a single character. */
static long rx_escape_cp(rx *x) {
    const char e = *x->p;
    static const char meta[] = ".*+?()[]{}|\\/^$-\"' ";
    if (e && strchr(meta, e)) return x->p++, (long)(unsigned char)e;
    switch (e) {
    case 'n': return x->p++, '\n';
    case 't': return x->p++, '\t';
    case 'r': return x->p++, '\r';
    case 'f': return x->p++, '\f';
    case 'v': return x->p++, '\v';
    case '0': return x->p++, 0;
    case 'u':
        if (x->end - x->p >= 5 && strspn(x->p + 1, "0123456789abcdefABCDEF") >= 4) {
            char h[5] = {x->p[1], x->p[2], x->p[3], x->p[4], 0};
            x->p += 5;
            return strtol(h, NULL, 16);
        }
    }
    return -1;
}

/* Writes a class: the printable ranges as one GBNF class, and each '"', '\'
 * or control character it holds as its JSON escape. A negated class keeps
 * those out. */
static int rx_write_set(rx *x, const rx_set *s) {
    bn_buf cls = {0}, *b = &cls;
    int rc = 0, plain = 0;
    for (int i = 0; i < s->n && !rc; i++)
        for (uint32_t lo = s->lo[i]; lo <= s->hi[i] && !rc;) { /* split around the characters JSON escapes */
            if (lo < 0x20 || lo == '"' || lo == '\\' || lo == 0x7F) {
                lo++;
                continue;
            }
            uint32_t hi = lo >= 0x80 ? s->hi[i] : lo; /* past ASCII nothing is escaped: the whole rest at once */
            while (hi < s->hi[i] && !(hi + 1 < 0x20 || hi + 1 == '"' || hi + 1 == '\\' || hi + 1 == 0x7F)) hi++;
            char e1[12], e2[12];
            rc = hi == lo ? bn_buf_printf(b, "%s", cp_escape(lo, e1)) : bn_buf_printf(b, "%s-%s", cp_escape(lo, e1), cp_escape(hi, e2));
            plain = 1;
            lo = hi + 1;
        }
    bn_buf *out = x->out;
    if (!rc && s->negated) rc = bn_buf_printf(out, "[^%.*s\"\\\\\\x00-\\x1F\\x7F]", (int)cls.len, cls.data ? cls.data : "");
    else if (!rc) { /* ( [printable] | "escape" | ... ) */
        int any = 0;
        rc = bn_buf_printf(out, "(");
        if (!rc && plain) rc = bn_buf_printf(out, " [%.*s]", (int)cls.len, cls.data), any = 1;
        for (int i = 0; i < s->n && !rc; i++)
            for (uint32_t cp = s->lo[i]; cp <= s->hi[i] && cp <= 0x7F && !rc; cp++)
                if (cp < 0x20 || cp == '"' || cp == '\\' || cp == 0x7F) {
                    rc = bn_buf_printf(out, any ? " | " : " ");
                    if (!rc) rc = rx_char(out, cp);
                    any = 1;
                }
        if (!rc) rc = bn_buf_printf(out, " )");
    }
    bn_buf_free(&cls);
    return rc;
}

static int rx_class(rx *x) {
    rx_set s = {.n = 0};
    if (*x->p == '^') s.negated = 1, x->p++;
    int first = 1;
    while (x->p < x->end && (*x->p != ']' || first)) {
        first = 0;
        long lo;
        if (*x->p == '\\') {
            x->p++;
            int done = 0;
            if (x->p >= x->end) break; /* (the anchoring check leaves no backslash before the end) */
            const char e = *x->p;
            if (e == 'D' || e == 'W' || e == 'S') return rx_fail(x, "a negated shorthand inside a class");
            if (rx_shorthand(x, &s, e, &done)) return -1;
            if (done) {
                x->p++;
                continue;
            }
            if ((lo = rx_escape_cp(x)) < 0) return rx_fail(x, "an escape that is not one character");
        } else {
            lo = (long)rx_cp(x);
        }
        long hi = lo;
        if (x->p + 1 < x->end && *x->p == '-' && x->p[1] != ']') {
            x->p++;
            if (*x->p == '\\') {
                x->p++;
                if ((hi = rx_escape_cp(x)) < 0) return rx_fail(x, "a range that ends in a class escape");
            } else {
                hi = (long)rx_cp(x);
            }
            if (hi < lo) return rx_fail(x, "a range whose end comes before its start");
        }
        if (rx_add(x, &s, (uint32_t)lo, (uint32_t)hi)) return -1;
    }
    if (x->p >= x->end) return rx_fail(x, "a class without its ']'");
    x->p++;
    return rx_write_set(x, &s);
}

static int rx_alt(rx *x, int *nullable);

/* One atom, then its quantifier; *nullable: whether it can match nothing. A
 * group that can match nothing is not repeated without bound: the grammar's
 * repetition would loop without reading a character (llama.cpp's GBNF
 * refuses that as left recursion). */
static int rx_atom(rx *x, int *nullable) {
    bn_buf *b = x->out;
    const char ch = *x->p;
    int rc;
    *nullable = 0;
    if (ch == '(') {
        x->p++;
        if (*x->p == '?') {
            if (x->p[1] == ':') x->p += 2;
            else if (x->p[1] == '<' && x->p[2] != '=' && x->p[2] != '!') x->p = strchr(x->p, '>') ? strchr(x->p, '>') + 1 : x->end;
            else return rx_fail(x, "lookaround and other (?...) groups are not supported");
        }
        if (++x->depth > 32) return rx_fail(x, "groups nested deeper than 32");
        rc = bn_buf_printf(b, "(");
        if (!rc) rc = rx_alt(x, nullable);
        x->depth--;
        if (rc) return rc;
        if (*x->p != ')') return rx_fail(x, "a group without its ')'");
        x->p++;
        rc = bn_buf_printf(b, " )");
    } else if (ch == '[') {
        x->p++;
        rc = rx_class(x);
    } else if (ch == '.') {
        x->p++;
        rc = bn_buf_printf(b, "[^\"\\\\\\x00-\\x1F\\x7F]");
    } else if (ch == '\\') {
        x->p++;
        if (x->p >= x->end) return rx_fail(x, "a pattern that ends in a backslash");
        const char e = *x->p;
        rx_set s = {.n = 0};
        int done = 0;
        if (e == 'D' || e == 'W' || e == 'S') { /* the complement, without what JSON escapes */
            s.negated = 1;
            if (rx_shorthand(x, &s, (char)(e + 'a' - 'A'), &done)) return -1;
            x->p++;
            rc = rx_write_set(x, &s);
        } else if (rx_shorthand(x, &s, e, &done) || done) {
            if (!done) return -1;
            x->p++;
            rc = rx_write_set(x, &s);
        } else if (e == 'b' || e == 'B' || (e >= '1' && e <= '9') || e == 'k') {
            return rx_fail(x, "word boundaries and backreferences are not supported");
        } else {
            const long cp = rx_escape_cp(x);
            if (cp < 0) return rx_fail(x, "an unknown escape");
            rc = rx_char(b, (uint32_t)cp);
        }
    } else if (ch == '^' || ch == '$') {
        return rx_fail(x, "'^' or '$' inside the pattern");
    } else if (ch == '*' || ch == '+' || ch == '?' || ch == '{' || ch == ')' || ch == ']' || ch == '}') {
        return rx_fail(x, "a quantifier or bracket with nothing before it");
    } else {
        rc = rx_char(b, rx_cp(x));
    }
    if (rc) return rc;
    /* quantifier */
    const char q = x->p < x->end ? *x->p : 0;
    if ((q == '*' || q == '+') && *nullable) return rx_fail(x, "a repeated group that can match the empty string");
    if (q == '*' || q == '+' || q == '?') {
        x->p++;
        rc = bn_buf_printf(b, "%c", q);
        *nullable |= q != '+';
    } else if (q == '{') {
        char *e;
        const long m = strtol(x->p + 1, &e, 10);
        long n = m;
        if (e == x->p + 1) return rx_fail(x, "a '{' that is not a quantifier {m}, {m,} or {m,n}");
        if (*e == ',') n = e[1] == '}' ? -1 : strtol(e + 1, &e, 10), e += n < 0;
        if (*e != '}' || m < 0 || m > MAX_COUNT || n > MAX_COUNT || (n >= 0 && n < m))
            return rx_fail(x, "a quantifier {m,n} outside 0..1000 or with n < m");
        if (n < 0 && *nullable) return rx_fail(x, "a repeated group that can match the empty string");
        *nullable |= m == 0;
        x->p = e + 1;
        rc = n < 0 ? bn_buf_printf(b, "{%ld,}", m) : n == m ? bn_buf_printf(b, "{%ld}", m) : bn_buf_printf(b, "{%ld,%ld}", m, n);
    }
    if (!rc && x->p < x->end && (*x->p == '?' || *x->p == '+') && (q == '*' || q == '+' || q == '?' || q == '{'))
        return rx_fail(x, "lazy and possessive quantifiers are not supported");
    return rc;
}

/* Alternatives of sequences up to ')' or the end; *nullable: whether one of
 * them can match nothing (an empty one, or one of nullable atoms only). */
static int rx_alt(rx *x, int *nullable) {
    int rc = 0, seq_nullable = 1;
    *nullable = 0;
    while (!rc && x->p < x->end && *x->p != ')') {
        if (*x->p == '|') {
            x->p++;
            *nullable |= seq_nullable;
            seq_nullable = 1;
            rc = bn_buf_printf(x->out, " |");
            continue;
        }
        int atom_nullable = 0;
        rc = bn_buf_printf(x->out, " ");
        if (!rc) rc = rx_atom(x, &atom_nullable);
        seq_nullable &= atom_nullable;
    }
    *nullable |= seq_nullable;
    return rc;
}

int bn_regex_gbnf(bn_buf *out, const char *pattern, size_t len, char *err, size_t errlen) {
    size_t bs = 0; /* backslashes before the final '$': an odd count escapes it */
    while (len >= 2 + bs && pattern[len - 2 - bs] == '\\') bs++;
    rx x = {out, pattern + 1, pattern + 1, pattern + (len ? len - 1 : 0), 0, 0, err, errlen};
    if (len < 2 || pattern[0] != '^' || pattern[len - 1] != '$' || bs % 2) {
        snprintf(err, errlen, "must be anchored: \"^...$\" (as llama.cpp requires)");
        return -1;
    }
    int nullable, rc = rx_alt(&x, &nullable);
    if (!rc && x.p < x.end) rc = rx_fail(&x, "a ')' without its '('");
    if (rc && !x.failed) snprintf(err, errlen, "out of memory");
    return rc ? -1 : 0;
}
