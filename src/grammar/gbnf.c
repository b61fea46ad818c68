/* gbnf.c - the GBNF parser: text -> bn_gbnf (grammar.h), as llama.cpp's
 * llama-grammar.cpp parses it, with one-line errors that name the line.
 *
 * Repetitions are rewritten as llama.cpp does: S{m,n} is m copies of S, then
 * a chain of n-m nested optional rules (R1 ::= S R2 | ..., the last R ::= S |);
 * S* is R ::= S R | . Groups become rules of their own. */
#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"
#include "grammar/grammar.h"

#define GBNF_MAX_ELEMS (1u << 20) /* a grammar larger than this is refused, not expanded */
#define GBNF_MAX_REPEAT 1000      /* {m,n}: m and n at most this */

typedef struct {
    bn_gelem *e;
    size_t n, cap;
} gvec;

typedef struct {
    gvec *rules;
    char **names;
    uint8_t *defined;
    int n_rules, cap_rules;
    size_t total;     /* elements in every rule so far */
    const char *text; /* for line numbers */
    char *err;
    size_t errlen;
    int failed;
} parser;

static int fail(parser *p, const char *at, const char *fmt, ...) {
    if (p->failed) return -1;
    p->failed = 1;
    int line = 1;
    for (const char *s = p->text; at && s < at && *s; s++) line += *s == '\n';
    int n = snprintf(p->err, p->errlen, "grammar line %d: ", line);
    if (n < 0 || (size_t)n >= p->errlen) return -1;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(p->err + n, p->errlen - (size_t)n, fmt, ap);
    va_end(ap);
    bn_one_line(p->err); /* the grammar's text quoted in it */
    return -1;
}

static int push(parser *p, int r, uint32_t type, uint32_t value) {
    gvec *v = &p->rules[r];
    if (p->total >= GBNF_MAX_ELEMS) return fail(p, NULL, "the grammar is too large (over %u elements)", GBNF_MAX_ELEMS);
    if (v->n == v->cap) {
        size_t cap = v->cap ? v->cap * 2 : 16;
        bn_gelem *ne = realloc(v->e, cap * sizeof *ne);
        if (!ne) return fail(p, NULL, "out of memory");
        v->e = ne;
        v->cap = cap;
    }
    v->e[v->n++] = (bn_gelem){type, value};
    p->total++;
    return 0;
}

static int new_rule(parser *p, const char *name, size_t len) {
    if (p->n_rules == p->cap_rules) {
        int cap = p->cap_rules ? p->cap_rules * 2 : 32;
        gvec *nr = realloc(p->rules, (size_t)cap * sizeof *nr);
        if (nr) p->rules = nr;
        char **nn = realloc(p->names, (size_t)cap * sizeof *nn);
        if (nn) p->names = nn;
        uint8_t *nd = realloc(p->defined, (size_t)cap);
        if (nd) p->defined = nd;
        if (!nr || !nn || !nd) return fail(p, NULL, "out of memory");
        p->cap_rules = cap;
    }
    char *copy = malloc(len + 1);
    if (!copy) return fail(p, NULL, "out of memory");
    memcpy(copy, name, len);
    copy[len] = 0;
    const int r = p->n_rules++;
    p->rules[r] = (gvec){0};
    p->names[r] = copy;
    p->defined[r] = 0;
    return r;
}

/* The rule named name[0..len), created (undefined) on first mention. */
static int rule_id(parser *p, const char *name, size_t len) {
    for (int r = 0; r < p->n_rules; r++)
        if (strlen(p->names[r]) == len && !memcmp(p->names[r], name, len)) return r;
    return new_rule(p, name, len);
}

/* A rule for a group or a repetition of rule `parent`: "parent_N". */
static int generated_rule(parser *p, int parent) {
    char name[160];
    int n = snprintf(name, sizeof name, "%.120s_%d", p->names[parent], p->n_rules);
    int r = new_rule(p, name, n < 0 ? 0 : (size_t)n < sizeof name ? (size_t)n : sizeof name - 1);
    if (r >= 0) p->defined[r] = 1;
    return r;
}

static const char *skip_space(const char *s, int newlines) {
    for (;;) {
        if (*s == '#')
            while (*s && *s != '\n' && *s != '\r') s++;
        else if (*s == ' ' || *s == '\t' || (newlines && (*s == '\n' || *s == '\r')))
            s++;
        else
            return s;
    }
}

static int is_word(char c) { return isalnum((unsigned char)c) || c == '-' || c == '_'; }

static int hexval(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* One character of a literal or class: an escape or a UTF-8 sequence. */
static const char *parse_char(parser *p, const char *s, uint32_t *cp) {
    const unsigned char *u = (const unsigned char *)s;
    if (u[0] == '\\') {
        int digits = 0;
        switch (u[1]) {
        case 'x': digits = 2; break;
        case 'u': digits = 4; break;
        case 'U': digits = 8; break;
        case 'n': *cp = '\n'; return s + 2;
        case 'r': *cp = '\r'; return s + 2;
        case 't': *cp = '\t'; return s + 2;
        case '\\': case '"': case '[': case ']': case '-': case '^': case '/': *cp = u[1]; return s + 2;
        default: fail(p, s, "unknown escape '\\%c'", u[1] ? u[1] : '0'); return NULL;
        }
        uint32_t v = 0;
        for (int i = 0; i < digits; i++) {
            int h = hexval(s[2 + i]);
            if (h < 0) {
                fail(p, s, "'\\%c' needs %d hexadecimal digits", u[1], digits);
                return NULL;
            }
            v = v << 4 | (uint32_t)h;
        }
        if (v > 0x10FFFF) {
            fail(p, s, "code point U+%X is past U+10FFFF", v);
            return NULL;
        }
        *cp = v;
        return s + 2 + digits;
    }
    const size_t k = bn_utf8_next(s, strnlen(s, 4), cp);
    if (!k) {
        fail(p, s, "invalid UTF-8");
        return NULL;
    }
    return s + k;
}

static const char *parse_alternates(parser *p, const char *s, int r, int nested);

/* S{min,max} (max -1: unbounded) for the elements rules[r].e[last..]. */
static int repeat(parser *p, int r, size_t last, int min, int max) {
    gvec *v = &p->rules[r];
    const size_t np = v->n - last;
    if (np == 0) return 0; /* an empty item ("") repeated is empty */
    bn_gelem *prev = malloc(np * sizeof *prev);
    if (!prev) return fail(p, NULL, "out of memory");
    memcpy(prev, v->e + last, np * sizeof *prev);
    int rc = 0;
    if (min == 0) {
        p->total -= np;
        v->n = last;
    }
    for (int i = 1; i < min && !rc; i++)
        for (size_t k = 0; k < np && !rc; k++) rc = push(p, r, prev[k].type, prev[k].value);
    const int n_opt = max < 0 ? 1 : max - min;
    int last_rec = -1;
    for (int i = 0; i < n_opt && !rc; i++) {
        const int id = generated_rule(p, r);
        if (id < 0) rc = -1;
        for (size_t k = 0; k < np && !rc; k++) rc = push(p, id, prev[k].type, prev[k].value);
        if (!rc && (i > 0 || max < 0)) rc = push(p, id, BN_GE_REF, (uint32_t)(max < 0 ? id : last_rec));
        if (!rc) rc = push(p, id, BN_GE_ALT, 0);
        if (!rc) rc = push(p, id, BN_GE_END, 0);
        last_rec = id;
    }
    if (!rc && n_opt > 0) rc = push(p, r, BN_GE_REF, (uint32_t)last_rec);
    free(prev);
    return rc;
}

static const char *parse_int(const char *s, int *out) {
    long v = 0;
    const char *b = s;
    while (*s >= '0' && *s <= '9' && v <= GBNF_MAX_REPEAT) v = v * 10 + (*s++ - '0');
    *out = (int)v;
    return s == b ? NULL : s;
}

static const char *parse_sequence(parser *p, const char *s, int r, int nested) {
    size_t last = (size_t)-1; /* where the item a repetition applies to starts */
    while (*s && !p->failed) {
        const char *at = s;
        if (*s == '"') {
            s++;
            last = p->rules[r].n;
            while (*s != '"') {
                uint32_t cp;
                if (!*s || *s == '\n') return fail(p, at, "unterminated string"), NULL;
                if (!(s = parse_char(p, s, &cp)) || push(p, r, BN_GE_CHAR, cp)) return NULL;
            }
            s = skip_space(s + 1, nested);
        } else if (*s == '[') {
            s++;
            uint32_t type = BN_GE_CHAR;
            if (*s == '^') {
                s++;
                type = BN_GE_CHAR_NOT;
            }
            last = p->rules[r].n;
            while (*s != ']') {
                uint32_t cp;
                if (!*s || *s == '\n') return fail(p, at, "unterminated character class"), NULL;
                if (!(s = parse_char(p, s, &cp)) || push(p, r, p->rules[r].n == last ? type : BN_GE_CHAR_ALT, cp))
                    return NULL;
                if (s[0] == '-' && s[1] && s[1] != ']') {
                    uint32_t hi;
                    if (!(s = parse_char(p, s + 1, &hi)) || push(p, r, BN_GE_RNG_UPPER, hi)) return NULL;
                    if (hi < cp) return fail(p, at, "range %04X-%04X runs backwards", cp, hi), NULL;
                }
            }
            if (p->rules[r].n == last) return fail(p, at, "empty character class"), NULL;
            s = skip_space(s + 1, nested);
        } else if (is_word(*s)) {
            const char *b = s;
            while (is_word(*s)) s++;
            const int id = rule_id(p, b, (size_t)(s - b));
            if (id < 0) return NULL;
            last = p->rules[r].n;
            if (push(p, r, BN_GE_REF, (uint32_t)id)) return NULL;
            s = skip_space(s, nested);
        } else if (*s == '(') {
            const int id = generated_rule(p, r);
            if (id < 0) return NULL;
            s = parse_alternates(p, skip_space(s + 1, 1), id, 1);
            if (!s) return NULL;
            if (*s != ')') return fail(p, at, "'(' without its ')'"), NULL;
            last = p->rules[r].n;
            if (push(p, r, BN_GE_REF, (uint32_t)id)) return NULL;
            s = skip_space(s + 1, nested);
        } else if (*s == '.') {
            last = p->rules[r].n;
            if (push(p, r, BN_GE_CHAR_ANY, 0)) return NULL;
            s = skip_space(s + 1, nested);
        } else if (*s == '*' || *s == '+' || *s == '?' || *s == '{') {
            if (last == (size_t)-1) return fail(p, at, "'%c' has no item before it to repeat", *s), NULL;
            int min = 0, max = -1;
            if (*s == '+') min = 1;
            else if (*s == '?') max = 1;
            else if (*s == '{') {
                s = skip_space(s + 1, nested);
                if (!(s = parse_int(s, &min))) return fail(p, at, "'{' needs a count"), NULL;
                s = skip_space(s, nested);
                max = min;
                if (*s == ',') {
                    s = skip_space(s + 1, nested);
                    max = -1;
                    if (*s >= '0' && *s <= '9') s = parse_int(s, &max);
                    s = skip_space(s, nested);
                }
                if (*s != '}') return fail(p, at, "'{' without its '}'"), NULL;
                if (min > GBNF_MAX_REPEAT || max > GBNF_MAX_REPEAT)
                    return fail(p, at, "a repetition count over %d", GBNF_MAX_REPEAT), NULL;
                if (max >= 0 && max < min) return fail(p, at, "{%d,%d}: the maximum is below the minimum", min, max), NULL;
            }
            if (repeat(p, r, last, min, max)) return NULL;
            last = (size_t)-1;
            s = skip_space(s + 1, nested);
        } else {
            break;
        }
    }
    return p->failed ? NULL : s;
}

static const char *parse_alternates(parser *p, const char *s, int r, int nested) {
    if (!(s = parse_sequence(p, s, r, nested))) return NULL;
    while (*s == '|') {
        if (push(p, r, BN_GE_ALT, 0)) return NULL;
        if (!(s = parse_sequence(p, skip_space(s + 1, 1), r, nested))) return NULL;
    }
    return push(p, r, BN_GE_END, 0) ? NULL : s;
}

/* No rule may reach itself before consuming a character: the recogniser
 * expands references depth first and would never stop (llama.cpp refuses
 * these grammars too). nullable[r]: rule r can match the empty text. */
static int check_left_recursion(parser *p, const bn_gbnf *g) {
    const int n = g->n_rules;
    uint8_t *nullable = calloc((size_t)n, 1), *state = calloc((size_t)n, 1);
    int *stack = malloc((size_t)n * 2 * sizeof *stack), rc = 0;
    if (!nullable || !state || !stack) rc = fail(p, NULL, "out of memory");
    for (int changed = 1; changed && !rc;) {
        changed = 0;
        for (int r = 0; r < n; r++) {
            if (nullable[r]) continue;
            int all = 1; /* the current alternative so far consists of nullable rules */
            for (const bn_gelem *e = g->e + g->start[r];; e++) {
                if (e->type == BN_GE_ALT || e->type == BN_GE_END) {
                    if (all) nullable[r] = 1, changed = 1;
                    if (e->type == BN_GE_END || nullable[r]) break;
                    all = 1;
                } else if (e->type != BN_GE_REF || !nullable[e->value]) {
                    all = 0;
                }
            }
        }
    }
    /* depth-first search over "r may start with s" edges: 1 = on the path, 2 = done */
    for (int root = 0; root < n && !rc; root++) {
        if (state[root]) continue;
        int sp = 0;
        stack[sp++] = root;
        stack[sp++] = (int)g->start[root];
        state[root] = 1;
        while (sp && !rc) {
            const int r = stack[sp - 2];
            int pos = stack[sp - 1], next = -1, lead = 1; /* lead: pos is still at the start, after nullable refs */
            /* find the next leading reference of r at or after pos */
            for (int q = (int)g->start[r]; q < pos; q++) { /* is pos still leading? recompute from the alternative */
                const bn_gelem *e = g->e + q;
                if (e->type == BN_GE_ALT) lead = 1;
                else if (e->type != BN_GE_REF || !nullable[e->value]) lead = 0;
            }
            for (; g->e[pos].type != BN_GE_END; pos++) {
                const bn_gelem *e = g->e + pos;
                if (e->type == BN_GE_ALT) lead = 1;
                else if (e->type == BN_GE_REF && lead) {
                    next = (int)e->value;
                    lead = nullable[e->value];
                    pos++;
                    break;
                } else lead = 0;
            }
            stack[sp - 1] = pos;
            if (next < 0) {
                state[r] = 2;
                sp -= 2;
            } else if (state[next] == 1) {
                rc = fail(p, NULL, "rule '%s' is left-recursive (it can reach itself before reading a character)",
                          g->names[next]);
            } else if (!state[next]) {
                state[next] = 1;
                stack[sp++] = next;
                stack[sp++] = (int)g->start[next];
            }
        }
    }
    free(nullable);
    free(state);
    free(stack);
    return rc;
}

int bn_gbnf_parse(const char *text, bn_gbnf *out, char *err, size_t errlen) {
    parser p = {0};
    p.text = text;
    p.err = err;
    p.errlen = errlen;
    memset(out, 0, sizeof *out);
    const char *s = skip_space(text, 1);
    while (*s && !p.failed) {
        const char *b = s;
        while (is_word(*s)) s++;
        if (s == b) {
            fail(&p, b, "expected a rule name, found '%.10s'", b);
            break;
        }
        const int r = rule_id(&p, b, (size_t)(s - b));
        if (r < 0) break;
        if (p.defined[r]) {
            fail(&p, b, "rule '%s' is defined twice", p.names[r]);
            break;
        }
        p.defined[r] = 1;
        s = skip_space(s, 0);
        if (strncmp(s, "::=", 3)) {
            fail(&p, s, "expected '::=' after '%s'", p.names[r]);
            break;
        }
        if (!(s = parse_alternates(&p, skip_space(s + 3, 1), r, 0))) break;
        if (*s && *s != '\n' && *s != '\r') {
            fail(&p, s, "unexpected '%.10s' in rule '%s'", s, p.names[r]);
            break;
        }
        s = skip_space(s, 1);
    }
    int rc = p.failed ? -1 : 0;
    if (!rc && !p.n_rules) rc = fail(&p, s, "the grammar is empty");
    for (int r = 0; r < p.n_rules && !rc; r++)
        if (!p.defined[r]) rc = fail(&p, NULL, "rule '%s' is used but never defined", p.names[r]);
    if (!rc) {
        out->root = -1;
        for (int r = 0; r < p.n_rules; r++)
            if (!strcmp(p.names[r], "root")) out->root = r;
        if (out->root < 0) rc = fail(&p, NULL, "there is no rule 'root' (where the text starts)");
    }
    if (!rc) { /* flatten */
        out->e = malloc((p.total + 1) * sizeof *out->e);
        out->start = malloc((size_t)p.n_rules * sizeof *out->start);
        if (!out->e || !out->start) rc = fail(&p, NULL, "out of memory");
        for (int r = 0; r < p.n_rules && !rc; r++) {
            out->start[r] = (uint32_t)out->n;
            memcpy(out->e + out->n, p.rules[r].e, p.rules[r].n * sizeof *out->e);
            out->n += p.rules[r].n;
        }
    }
    for (int r = 0; r < p.n_rules; r++) free(p.rules[r].e);
    free(p.rules);
    free(p.defined);
    out->names = p.names;
    out->n_rules = p.n_rules;
    if (!rc) rc = check_left_recursion(&p, out);
    if (rc) bn_gbnf_free(out);
    return rc;
}

void bn_gbnf_free(bn_gbnf *g) {
    for (int r = 0; r < g->n_rules && g->names; r++) free(g->names[r]);
    free(g->names);
    free(g->e);
    free(g->start);
    memset(g, 0, sizeof *g);
}
