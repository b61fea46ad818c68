/* json_schema.c - JSON Schema -> GBNF, for the keywords docs/grammar.md lists.
 *
 * Every schema node becomes one rule; primitives (string, number, ...) are
 * shared rules written once at the end, as llama.cpp's json-schema-to-grammar
 * writes them. A keyword this converter cannot enforce is refused with its
 * path, never ignored: a schema whose constraint is dropped would let through
 * output the caller's validator then rejects. Objects list the required
 * properties first (in the schema's order), then any subset of the optional
 * ones, in order; no other keys (additionalProperties: true allows them, so
 * leaving them out still satisfies it). */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"
#include "formats/json.h"
#include "grammar/grammar.h"

#define MAX_COUNT 1000 /* minItems/maxItems/minLength/maxLength above this are refused */

enum {
    P_SPACE = 1, P_BOOLEAN = 2, P_NULL = 4, P_INTEGER = 8, P_NUMBER = 16, P_STRING = 32, P_VALUE = 64,
    P_DATE = 128, P_TIME = 256, P_UUID = 512, /* the string formats' rules */
    P_KEY_CHAR = 1024                         /* a character of an extra key (additionalProperties) */
};

typedef struct {
    bn_buf out;
    const bn_json *root;
    int n_rules, prims, failed, depth;
    struct {
        const char *ref;
        int rule;
    } refs[256];
    int n_refs;
    char err[256];
} conv;

static int fail(conv *c, const char *path, const char *fmt, ...) {
    if (c->failed) return -1;
    c->failed = 1;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(c->err, sizeof c->err, fmt, ap);
    va_end(ap);
    if (n >= 0 && (size_t)n < sizeof c->err) snprintf(c->err + n, sizeof c->err - (size_t)n, " at %s", path);
    bn_one_line(c->err); /* keys and names quoted from the schema */
    return -1;
}

/* A GBNF literal for the bytes s[0..n): "..." with ", \ and control bytes escaped. */
static int literal(bn_buf *b, const char *s, size_t n) {
    int rc = bn_buf_append(b, "\"", 1);
    for (size_t i = 0; i < n && !rc; i++) {
        const unsigned char ch = (unsigned char)s[i];
        if (ch == '"' || ch == '\\') rc = bn_buf_printf(b, "\\%c", ch);
        else if (ch < 0x20 || ch == 0x7F) rc = bn_buf_printf(b, "\\x%02X", ch);
        else rc = bn_buf_append(b, s + i, 1);
    }
    return rc ? rc : bn_buf_append(b, "\"", 1);
}

/* `literal space` for a JSON value: one alternative of an enum, or a const. */
static int value_literal(conv *c, const bn_json *v) {
    bn_buf t = {0};
    int rc = bn_json_write(&t, v); /* enum and const values are matched as this text */
    if (!rc) rc = literal(&c->out, t.data, t.len);
    bn_buf_free(&t);
    return rc ? rc : bn_buf_printf(&c->out, " space");
}

static int visit(conv *c, const bn_json *s, const char *path, const char *type_only);

static int new_rule(conv *c) { return ++c->n_rules; }

static int count_kw(conv *c, const bn_json *s, const char *key, const char *path, int dflt) {
    const bn_json *v = bn_json_get(s, key);
    if (!v) return dflt;
    if (v->type != BN_JSON_NUMBER || !v->integer || v->number < 0) return fail(c, path, "'%s' must be a non-negative integer", key), -2;
    if (v->number > MAX_COUNT) return fail(c, path, "'%s' over %d is not supported", key, MAX_COUNT), -2;
    return (int)v->number;
}

/* Appends the rule for a subschema at path.sub and returns its number (or -1). */
static int sub(conv *c, const bn_json *s, const char *path, const char *fmt, ...) {
    char p[512];
    size_t n = strlen(path);
    if (n >= sizeof p) n = sizeof p - 1;
    memcpy(p, path, n);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(p + n, sizeof p - n, fmt, ap);
    va_end(ap);
    return visit(c, s, p, NULL);
}

/* The rule for "#/$defs/NAME" or "#/definitions/NAME", visited once (recursion allowed). */
static int ref_rule(conv *c, const char *ref, const char *path) {
    for (int i = 0; i < c->n_refs; i++)
        if (!strcmp(c->refs[i].ref, ref)) return c->refs[i].rule;
    const char *name = NULL, *where = NULL;
    if (!strncmp(ref, "#/$defs/", 8)) name = ref + 8, where = "$defs";
    else if (!strncmp(ref, "#/definitions/", 14)) name = ref + 14, where = "definitions";
    const bn_json *defs = where ? bn_json_get(c->root, where) : NULL, *def = defs ? bn_json_get(defs, name) : NULL;
    if (!name || strchr(name, '/') || strchr(name, '~'))
        return fail(c, path, "'$ref' \"%.80s\": only \"#/$defs/NAME\" and \"#/definitions/NAME\" are supported", ref);
    if (!def) return fail(c, path, "'$ref' \"%.80s\" names no definition", ref);
    if (c->n_refs == (int)(sizeof c->refs / sizeof c->refs[0])) return fail(c, path, "too many '$ref' targets");
    const int r = new_rule(c);
    c->refs[c->n_refs].ref = ref;
    c->refs[c->n_refs++].rule = r;
    char p[512];
    snprintf(p, sizeof p, "$.%s.%.200s", where, name);
    const int body = visit(c, def, p, NULL);
    if (body < 0 || bn_buf_printf(&c->out, "r%d ::= r%d\n", r, body)) return -1;
    return r;
}

static const char *const known[] = {
    "type", "properties", "required", "additionalProperties", "items", "prefixItems", "additionalItems", "minItems",
    "maxItems", "enum", "const", "anyOf", "oneOf", "allOf", "minLength", "maxLength", "format", "pattern", "minimum", "maximum",
    "exclusiveMinimum", "exclusiveMaximum", "$ref", "$defs", "definitions", "title", "description", "$schema", "$id",
    "$comment", "default", "examples", "deprecated", "readOnly", "writeOnly", NULL};

/* Keywords that constrain one kind of value only: a schema that lets other
 * kinds through ("type" absent) cannot say which rule they belong to. */
static const char *kind_keyword(const bn_json *s, const char *const *keys) {
    for (int k = 0; keys[k]; k++)
        if (bn_json_get(s, keys[k])) return keys[k];
    return NULL;
}
static const char *const number_keys[] = {"minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", NULL};
static const char *const annotations[] = {"title", "description", "$schema", "$id", "$comment", "default", "examples",
                                          "deprecated", "readOnly", "writeOnly", "$defs", "definitions", NULL};

/* The first key of s that constrains (neither an annotation nor `except`), or NULL. */
static const char *constraining_key(const bn_json *s, const char *except) {
    for (size_t i = 0; i < s->n; i++) {
        int note = !strcmp(s->keys[i], except);
        for (int k = 0; annotations[k] && !note; k++) note = !strcmp(s->keys[i], annotations[k]);
        if (!note) return s->keys[i];
    }
    return NULL;
}

/* ---- integer ranges -------------------------------------------------------
 * minimum/maximum (and the exclusive forms, draft 4's booleans too) of an
 * integer become digit patterns that accept exactly the integers in range, in
 * JSON's spelling (no leading zeros, "-" before the negative ones), as
 * llama.cpp's json-schema-to-grammar builds them. Bounds are limited to 15
 * digits (the integer rule's 16 hold every such value and then some). */
#define INT_LIMIT 999999999999999LL

/* A lower (or upper) bound: the tighter of minimum and exclusiveMinimum (or
 * maximum and exclusiveMaximum; draft 4's boolean beside the bound makes it
 * exclusive) as its value, whether it is excluded, and the keyword it came
 * from. 0 when absent, 1 when set, -1 failed. */
static int bound(conv *c, const bn_json *s, const char *path, int lower, double *out, int *excl, const char **key_out) {
    const char *key = lower ? "minimum" : "maximum", *ex_key = lower ? "exclusiveMinimum" : "exclusiveMaximum";
    const bn_json *v = bn_json_get(s, key), *ex = bn_json_get(s, ex_key);
    if (v && v->type != BN_JSON_NUMBER) return fail(c, path, "'%s' must be a number", key);
    if (ex && ex->type != BN_JSON_NUMBER && ex->type != BN_JSON_BOOL) return fail(c, path, "'%s' must be a number", ex_key);
    const bn_json *num[2] = {v, ex && ex->type == BN_JSON_NUMBER ? ex : NULL};
    int set = 0;
    for (int k = 0; k < 2; k++) {
        if (!num[k]) continue;
        const double x = num[k]->number;
        const int e = k ? 1 : ex && ex->type == BN_JSON_BOOL && ex->boolean;
        if (!set || (lower ? x > *out : x < *out) || (x == *out && e)) *out = x, *excl = e, *key_out = k ? ex_key : key;
        set = 1;
    }
    return set;
}

/* An integer's bound: the nearest integer inside it. */
static int int_bound(conv *c, const bn_json *s, const char *path, int lower, long long *out) {
    double x = 0;
    int excl = 0;
    const char *key = NULL;
    const int set = bound(c, s, path, lower, &x, &excl, &key);
    if (set <= 0) return set;
    x = lower ? (excl ? floor(x) + 1 : ceil(x)) : (excl ? ceil(x) - 1 : floor(x));
    if (!(fabs(x) <= (double)INT_LIMIT)) return fail(c, path, "'%s' beyond 15 digits is not supported", key);
    *out = (long long)x;
    return 1;
}

/* A number's bound: a whole number here, and whether it is excluded. */
static int num_bound(conv *c, const bn_json *s, const char *path, int lower, long long *out, int *excl) {
    double x = 0;
    const char *key = NULL;
    const int set = bound(c, s, path, lower, &x, excl, &key);
    if (set <= 0) return set;
    for (int k = 0; k < 2; k++) { /* every bound given, not only the tighter one */
        const char *name = lower ? (k ? "exclusiveMinimum" : "minimum") : (k ? "exclusiveMaximum" : "maximum");
        const bn_json *v = bn_json_get(s, name);
        if (v && v->type == BN_JSON_NUMBER && (v->number != floor(v->number) || !(fabs(v->number) <= (double)INT_LIMIT)))
            return fail(c, path, "'%s' of a number: only whole numbers of at most 15 digits are supported", name);
    }
    *out = (long long)x;
    return 1;
}

static int number_rule(conv *c, const bn_json *s, const char *path) {
    long long lo = 0, hi = 0;
    int lo_ex = 0, hi_ex = 0;
    const int has_lo = num_bound(c, s, path, 1, &lo, &lo_ex), has_hi = has_lo < 0 ? -1 : num_bound(c, s, path, 0, &hi, &hi_ex);
    if (has_lo < 0 || has_hi < 0) return -1;
    c->prims |= has_lo || has_hi ? P_SPACE : P_NUMBER;
    const int r = new_rule(c);
    if (!has_lo && !has_hi) return bn_buf_printf(&c->out, "r%d ::= number\n", r) ? -1 : r;
    if (has_lo && has_hi && (lo > hi || (lo == hi && (lo_ex || hi_ex))))
        return fail(c, path, "no number lies between 'minimum' and 'maximum'");
    int rc = bn_buf_printf(&c->out, "r%d ::= (", r);
    if (!rc) rc = bn_gbnf_numbers(&c->out, has_lo, lo, lo_ex, has_hi, hi, hi_ex);
    if (!rc) rc = bn_buf_printf(&c->out, " ) space\n");
    return rc ? -1 : r;
}

static int integer_rule(conv *c, const bn_json *s, const char *path) {
    long long lo = 0, hi = 0;
    const int has_lo = int_bound(c, s, path, 1, &lo), has_hi = has_lo < 0 ? -1 : int_bound(c, s, path, 0, &hi);
    if (has_lo < 0 || has_hi < 0) return -1;
    c->prims |= has_lo || has_hi ? P_SPACE : P_INTEGER;
    const int r = new_rule(c);
    if (!has_lo && !has_hi) return bn_buf_printf(&c->out, "r%d ::= integer\n", r) ? -1 : r;
    if (has_lo && has_hi && lo > hi) return fail(c, path, "no integer lies between 'minimum' and 'maximum'");
    int rc = bn_buf_printf(&c->out, "r%d ::= (", r);
    if (!rc) rc = bn_gbnf_integers(&c->out, has_lo, lo, has_hi, hi);
    if (!rc) rc = bn_buf_printf(&c->out, " ) space\n");
    return rc ? -1 : r;
}

/* ---- keys other than the listed ones -----------------------------------------
 * additionalProperties as a schema: an extra key must not be a listed
 * property's name (a repeated key would meet a second schema). Extra keys are
 * written without escapes (so their text is their value) and walk a trie of
 * the listed names: at a node, a character that is not a child's leaves the
 * names behind for good; a child's goes on; the key may end where no name
 * does. */
typedef struct key_node {
    uint32_t cp;
    int first_child, next, is_name, rule;
} key_node;

/* The rule for a string key that is none of names[0..n) (nodes: room for every
 * code point of them plus one). */
static int other_key_rule(conv *c, const char *const *names, size_t n, key_node *nodes) {
    int n_nodes = 1;
    nodes[0] = (key_node){0, -1, -1, 0, 0};
    for (size_t k = 0; k < n; k++) {
        const char *p = names[k], *end = p + strlen(p);
        int at = 0, ok = 1;
        for (const char *q = p; q < end; q++) ok &= (unsigned char)*q >= 0x20 && *q != '"' && *q != '\\' && *q != 0x7F;
        if (!ok) continue; /* written with an escape: an unescaped key never equals it */
        while (p < end) {
            uint32_t cp;
            const size_t len = bn_utf8_next(p, (size_t)(end - p), &cp);
            if (!len) break;
            p += len;
            int ch = nodes[at].first_child;
            while (ch >= 0 && nodes[ch].cp != cp) ch = nodes[ch].next;
            if (ch < 0) {
                ch = n_nodes++;
                nodes[ch] = (key_node){cp, -1, nodes[at].first_child, 0, 0};
                nodes[at].first_child = ch;
            }
            at = ch;
        }
        if (p == end) nodes[at].is_name = 1;
    }
    for (int i = 0; i < n_nodes; i++) nodes[i].rule = new_rule(c);
    c->prims |= P_SPACE | P_KEY_CHAR;
    int rc = 0;
    for (int i = 0; i < n_nodes && !rc; i++) {
        rc = bn_buf_printf(&c->out, "r%d ::= [^\"\\\\\\x00-\\x1F\\x7F", nodes[i].rule);
        for (int ch = nodes[i].first_child; ch >= 0 && !rc; ch = nodes[ch].next)
            rc = bn_buf_printf(&c->out, "\\U%08X", (unsigned)nodes[ch].cp);
        if (!rc) rc = bn_buf_printf(&c->out, "] key-char* \"\\\"\"");
        for (int ch = nodes[i].first_child; ch >= 0 && !rc; ch = nodes[ch].next)
            rc = bn_buf_printf(&c->out, " | \"\\U%08X\" r%d", (unsigned)nodes[ch].cp, nodes[ch].rule);
        if (!rc && !nodes[i].is_name) rc = bn_buf_printf(&c->out, " | \"\\\"\"");
        if (!rc) rc = bn_buf_printf(&c->out, "\n");
    }
    const int r = new_rule(c);
    return rc || bn_buf_printf(&c->out, "r%d ::= \"\\\"\" r%d space\n", r, nodes[0].rule) ? -1 : r;
}

static int object_rule(conv *c, const bn_json *s, const char *path) {
    const bn_json *props = bn_json_get(s, "properties"), *req = bn_json_get(s, "required");
    const bn_json *add = bn_json_get(s, "additionalProperties");
    if (props && props->type != BN_JSON_OBJECT) return fail(c, path, "'properties' must be an object");
    if (req && req->type != BN_JSON_ARRAY) return fail(c, path, "'required' must be an array of names");
    const size_t np = props ? props->n : 0, nr = req ? req->n : 0;
    const int extra_schema = add && add->type != BN_JSON_BOOL;
    if (!np && !nr && !extra_schema && !(add && !add->boolean)) { /* any object */
        c->prims |= P_VALUE;
        const int r = new_rule(c);
        return bn_buf_printf(&c->out, "r%d ::= object\n", r) ? -1 : r;
    }
    /* one rule per key/value: "key" space ":" space value */
    int *kv = calloc(np + nr + 1, sizeof *kv);
    uint8_t *is_req = calloc(np + nr + 1, 1);
    const char **names = calloc(np + nr + 1, sizeof *names);
    int rc = kv && is_req && names ? 0 : fail(c, path, "out of memory");
    size_t n = 0;
    for (size_t i = 0; i < np && !rc; i++) names[n++] = props->keys[i];
    for (size_t i = 0; i < nr && !rc; i++) {
        if (req->items[i].type != BN_JSON_STRING) rc = fail(c, path, "'required' must be an array of names");
        size_t k = 0;
        while (!rc && k < n && strcmp(names[k], req->items[i].str)) k++;
        if (rc) break;
        if (k == n) names[n++] = req->items[i].str; /* required, with any value */
        is_req[k] = 1;
    }
    for (size_t k = 0; k < n && !rc; k++) {
        const bn_json *ps = props ? bn_json_get(props, names[k]) : NULL;
        int v;
        if (ps) v = sub(c, ps, path, ".properties.%.100s", names[k]);
        else {
            c->prims |= P_VALUE;
            v = 0;
        }
        if (v < 0) rc = -1;
        kv[k] = new_rule(c);
        c->prims |= P_SPACE;
        bn_buf key = {0};
        if (!rc && (bn_json_append_string(&key, names[k], strlen(names[k])) || bn_buf_printf(&c->out, "r%d ::= ", kv[k]) ||
                    literal(&c->out, key.data, key.len)))
            rc = fail(c, path, "out of memory");
        bn_buf_free(&key);
        if (!rc && (v ? bn_buf_printf(&c->out, " space \":\" space r%d\n", v) : bn_buf_printf(&c->out, " space \":\" space value\n")))
            rc = fail(c, path, "out of memory");
    }
    /* the optional ones: P_i ::= kv_i ( "," space P_{i+1} )? | P_{i+1}; P_last ::= kv_last */
    int first_opt = 0, next = 0;
    for (size_t k = n; k-- > 0 && !rc;) {
        if (is_req[k]) continue;
        const int pr = new_rule(c);
        if (!next) rc = bn_buf_printf(&c->out, "r%d ::= r%d\n", pr, kv[k]);
        else rc = bn_buf_printf(&c->out, "r%d ::= r%d ( \",\" space r%d )? | r%d\n", pr, kv[k], next, next);
        next = first_opt = pr;
    }
    /* additionalProperties as a schema: "key-not-listed" : value, after the listed ones */
    int extra = 0;
    if (!rc && extra_schema) {
        key_node *nodes = NULL;
        size_t cps = 1;
        for (size_t k = 0; k < n; k++) cps += strlen(names[k]);
        const int v = (nodes = calloc(cps, sizeof *nodes)) ? sub(c, add, path, ".additionalProperties") : -1;
        const int key = v < 0 ? -1 : other_key_rule(c, names, n, nodes);
        free(nodes);
        if (v < 0 || key < 0) rc = -1;
        else if (bn_buf_printf(&c->out, "r%d ::= r%d \":\" space r%d\n", extra = new_rule(c), key, v)) rc = -1;
    }
    const int r = new_rule(c);
    int any_req = 0;
    if (!rc) rc = bn_buf_printf(&c->out, "r%d ::= \"{\" space", r);
    for (size_t k = 0; k < n && !rc; k++) {
        if (!is_req[k]) continue;
        rc = bn_buf_printf(&c->out, any_req ? " \",\" space r%d" : " r%d", kv[k]);
        any_req = 1;
    }
    if (!rc && any_req) {
        if (first_opt) rc = bn_buf_printf(&c->out, " ( \",\" space r%d )?", first_opt);
        if (!rc && extra) rc = bn_buf_printf(&c->out, " ( \",\" space r%d )*", extra);
    } else if (!rc) { /* nothing required: the optional ones, then the extra ones, each part may be empty */
        if (first_opt && extra) rc = bn_buf_printf(&c->out, " ( r%d ( \",\" space r%d )* | r%d ( \",\" space r%d )* )?", first_opt, extra, extra, extra);
        else if (first_opt) rc = bn_buf_printf(&c->out, " r%d?", first_opt);
        else if (extra) rc = bn_buf_printf(&c->out, " ( r%d ( \",\" space r%d )* )?", extra, extra);
    }
    if (!rc) rc = bn_buf_printf(&c->out, " \"}\" space\n");
    free(kv);
    free(is_req);
    free(names);
    return rc ? (c->failed ? -1 : fail(c, path, "out of memory")) : r;
}

/* A tuple: prefixItems (or draft 4's "items" as an array), each item in its
 * place, no more (additional items are allowed by the schema but not needed). */
static int tuple_rule(conv *c, const bn_json *s, const bn_json *tuple, const char *key, int min, int max, const char *path) {
    const bn_json *more = bn_json_get(s, strcmp(key, "items") ? "items" : "additionalItems");
    if (more && !(more->type == BN_JSON_BOOL))
        return fail(c, path, "'%s' with a schema for further items is not supported", key);
    if ((size_t)min > tuple->n || (max >= 0 && (size_t)max < tuple->n))
        return fail(c, path, "'minItems'/'maxItems' other than the %zu items of '%s' are not supported", tuple->n, key);
    int *it = calloc(tuple->n + 1, sizeof *it), rc = it ? 0 : -1;
    for (size_t i = 0; i < tuple->n && !rc; i++)
        if ((it[i] = sub(c, &tuple->items[i], path, ".%s[%zu]", key, i)) < 0) rc = -1;
    c->prims |= P_SPACE;
    const int r = rc ? -1 : new_rule(c);
    if (!rc) rc = bn_buf_printf(&c->out, "r%d ::= \"[\" space", r);
    for (size_t i = 0; i < tuple->n && !rc; i++) rc = bn_buf_printf(&c->out, i ? " \",\" space r%d" : " r%d", it[i]);
    if (!rc) rc = bn_buf_printf(&c->out, " \"]\" space\n");
    free(it);
    return rc ? -1 : r;
}

static int array_rule(conv *c, const bn_json *s, const char *path) {
    const bn_json *items = bn_json_get(s, "items"), *prefix = bn_json_get(s, "prefixItems");
    const int min = count_kw(c, s, "minItems", path, 0), max = count_kw(c, s, "maxItems", path, -1);
    if (min < -1 || max < -1) return -1;
    if (max >= 0 && max < min) return fail(c, path, "'maxItems' is below 'minItems'");
    if (prefix && prefix->type != BN_JSON_ARRAY) return fail(c, path, "'prefixItems' must be an array of schemas");
    if (prefix) return tuple_rule(c, s, prefix, "prefixItems", min, max, path);
    if (items && items->type == BN_JSON_ARRAY) return tuple_rule(c, s, items, "items", min, max, path);
    int it = items ? sub(c, items, path, ".items") : 0;
    if (it < 0) return -1;
    char item[32];
    if (it) snprintf(item, sizeof item, "r%d", it);
    else {
        snprintf(item, sizeof item, "value");
        c->prims |= P_VALUE;
    }
    c->prims |= P_SPACE;
    const int r = new_rule(c);
    char rep[48];
    int rc;
    if (max == 0) return bn_buf_printf(&c->out, "r%d ::= \"[\" space \"]\" space\n", r) ? -1 : r;
    const int lo = min ? min - 1 : 0, hi = max < 0 ? -1 : max - 1;
    if (hi < 0) snprintf(rep, sizeof rep, "{%d,}", lo);
    else snprintf(rep, sizeof rep, "{%d,%d}", lo, hi);
    if (min == 0) rc = bn_buf_printf(&c->out, "r%d ::= \"[\" space ( %s ( \",\" space %s )%s )? \"]\" space\n", r, item, item, rep);
    else rc = bn_buf_printf(&c->out, "r%d ::= \"[\" space %s ( \",\" space %s )%s \"]\" space\n", r, item, item, rep);
    return rc ? -1 : r;
}

/* pattern: the regular expression (regex_gbnf.c) inside the string's quotes. */
static int pattern_rule(conv *c, const bn_json *s, const bn_json *pat, const char *path) {
    if (pat->type != BN_JSON_STRING) return fail(c, path, "'pattern' must be a string");
    if (bn_json_get(s, "format") || bn_json_get(s, "minLength") || bn_json_get(s, "maxLength"))
        return fail(c, path, "'pattern' with 'format' or a length bound is not supported");
    c->prims |= P_SPACE;
    const int r = new_rule(c);
    char err[200];
    if (bn_buf_printf(&c->out, "r%d ::= \"\\\"\" (", r)) return -1;
    if (bn_regex_gbnf(&c->out, pat->str, pat->len, err, sizeof err)) return fail(c, path, "'pattern': %s", err);
    return bn_buf_printf(&c->out, " ) \"\\\"\" space\n") ? -1 : r;
}

/* "format" of a string: the RFC 3339 date and time forms and UUIDs, as
 * llama.cpp's converter has them (a date's day is not checked against its
 * month); any other format is refused. */
static int format_rule(conv *c, const bn_json *s, const bn_json *f, const char *path) {
    static const struct { const char *name, *body; int prims; } formats[] = {
        {"date", "date", P_DATE}, {"time", "time", P_TIME}, {"date-time", "date \"T\" time", P_DATE | P_TIME},
        {"uuid", "uuid", P_UUID}};
    if (f->type != BN_JSON_STRING) return fail(c, path, "'format' must be a name");
    if (bn_json_get(s, "minLength") || bn_json_get(s, "maxLength")) return fail(c, path, "'format' with a length bound is not supported");
    for (size_t k = 0; k < sizeof formats / sizeof formats[0]; k++)
        if (!strcmp(f->str, formats[k].name)) {
            c->prims |= formats[k].prims | P_SPACE;
            const int r = new_rule(c);
            return bn_buf_printf(&c->out, "r%d ::= \"\\\"\" %s \"\\\"\" space\n", r, formats[k].body) ? -1 : r;
        }
    return fail(c, path, "unsupported JSON Schema format '%.40s' (date, time, date-time and uuid are)", f->str);
}

static int string_rule(conv *c, const bn_json *s, const char *path) {
    const bn_json *f = bn_json_get(s, "format"), *pat = bn_json_get(s, "pattern");
    if (pat) return pattern_rule(c, s, pat, path);
    if (f) return format_rule(c, s, f, path);
    const int min = count_kw(c, s, "minLength", path, 0), max = count_kw(c, s, "maxLength", path, -1);
    if (min < -1 || max < -1) return -1;
    if (max >= 0 && max < min) return fail(c, path, "'maxLength' is below 'minLength'");
    c->prims |= P_STRING;
    const int r = new_rule(c);
    if (!min && max < 0) return bn_buf_printf(&c->out, "r%d ::= string\n", r) ? -1 : r;
    int rc = max < 0 ? bn_buf_printf(&c->out, "r%d ::= \"\\\"\" char{%d,} \"\\\"\" space\n", r, min)
                     : bn_buf_printf(&c->out, "r%d ::= \"\\\"\" char{%d,%d} \"\\\"\" space\n", r, min, max);
    return rc ? -1 : r;
}

/* One schema node; type_only: visit it as if "type" were that one name. */
static int visit(conv *c, const bn_json *s, const char *path, const char *type_only) {
    if (c->failed) return -1;
    if (++c->depth > 64) return fail(c, path, "the schema nests deeper than 64");
    int r = -1;
    if (s->type == BN_JSON_BOOL) {
        if (!s->boolean) r = fail(c, path, "the schema 'false' matches nothing");
        else {
            c->prims |= P_VALUE;
            r = new_rule(c);
            if (bn_buf_printf(&c->out, "r%d ::= value\n", r)) r = -1;
        }
        c->depth--;
        return r;
    }
    if (s->type != BN_JSON_OBJECT) {
        c->depth--;
        return fail(c, path, "a schema must be an object or a boolean, not %s", bn_json_type_desc(s->type));
    }
    for (size_t i = 0; i < s->n; i++) {
        int ok = 0;
        for (int k = 0; known[k] && !ok; k++) ok = !strcmp(s->keys[i], known[k]);
        if (!ok) {
            c->depth--;
            return fail(c, path, "unsupported JSON Schema keyword '%.60s'", s->keys[i]);
        }
    }
    const bn_json *type = bn_json_get(s, "type"), *en = bn_json_get(s, "enum"), *cn = bn_json_get(s, "const");
    const bn_json *any = bn_json_get(s, "anyOf");
    if (!any) any = bn_json_get(s, "oneOf"); /* as llama.cpp: oneOf read as anyOf (the branches should not overlap) */
    const bn_json *ref = bn_json_get(s, "$ref"), *all = bn_json_get(s, "allOf");
    if (all) { /* one schema wrapped for its annotations (Pydantic's {"allOf": [{"$ref": ...}], "description": ...}) */
        const char *other = constraining_key(s, "allOf");
        if (all->type != BN_JSON_ARRAY || all->n != 1) r = fail(c, path, "'allOf' of other than one schema is not supported");
        else if (other) r = fail(c, path, "'allOf' beside '%.40s' is not supported", other);
        else r = sub(c, &all->items[0], path, ".allOf[0]");
    } else if (ref) {
        if (ref->type != BN_JSON_STRING) r = fail(c, path, "'$ref' must be a string");
        else r = ref_rule(c, ref->str, path);
    } else if (cn || en) {
        if (en && (en->type != BN_JSON_ARRAY || !en->n)) r = fail(c, path, "'enum' must be a non-empty array");
        else {
            c->prims |= P_SPACE;
            r = new_rule(c);
            int rc = bn_buf_printf(&c->out, "r%d ::= ", r);
            const size_t n = cn ? 1 : en->n;
            for (size_t i = 0; i < n && !rc; i++) {
                if (i) rc = bn_buf_printf(&c->out, " | ");
                if (!rc) rc = value_literal(c, cn ? cn : &en->items[i]);
            }
            if (rc || bn_buf_printf(&c->out, "\n")) r = -1;
        }
    } else if (any) {
        if (any->type != BN_JSON_ARRAY || !any->n) r = fail(c, path, "'anyOf'/'oneOf' must be a non-empty array");
        else {
            int *alts = calloc(any->n, sizeof *alts), rc = alts ? 0 : -1;
            for (size_t i = 0; i < any->n && !rc; i++)
                if ((alts[i] = sub(c, &any->items[i], path, ".anyOf[%zu]", i)) < 0) rc = -1;
            r = rc ? -1 : new_rule(c);
            if (!rc) rc = bn_buf_printf(&c->out, "r%d ::=", r);
            for (size_t i = 0; i < any->n && !rc; i++) rc = bn_buf_printf(&c->out, "%s r%d", i ? " |" : "", alts[i]);
            if (rc || bn_buf_printf(&c->out, "\n")) r = -1;
            free(alts);
        }
    } else if (type && type->type == BN_JSON_ARRAY && !type_only) {
        int *alts = calloc(type->n + 1, sizeof *alts), rc = alts && type->n ? 0 : fail(c, path, "'type' is an empty list");
        for (size_t i = 0; i < type->n && !rc; i++) {
            if (type->items[i].type != BN_JSON_STRING) rc = fail(c, path, "'type' lists something that is not a name");
            else if ((alts[i] = visit(c, s, path, type->items[i].str)) < 0) rc = -1;
        }
        r = rc ? -1 : new_rule(c);
        if (!rc) rc = bn_buf_printf(&c->out, "r%d ::=", r);
        for (size_t i = 0; i < type->n && !rc; i++) rc = bn_buf_printf(&c->out, "%s r%d", i ? " |" : "", alts[i]);
        if (rc || bn_buf_printf(&c->out, "\n")) r = -1;
        free(alts);
    } else {
        const char *t = type_only ? type_only : type && type->type == BN_JSON_STRING ? type->str : NULL;
        if (type && !t) r = fail(c, path, "'type' must be a name or a list of names");
        else if (!t)
            t = bn_json_get(s, "properties") || bn_json_get(s, "required") ||
                        bn_json_get(s, "additionalProperties")                    ? "object"
                : bn_json_get(s, "items") || bn_json_get(s, "prefixItems")       ? "array"
                : bn_json_get(s, "format") || bn_json_get(s, "pattern")          ? "string"
                : kind_keyword(s, number_keys)                                    ? "integer?"
                                                                                  : "any";
        if (!t) {
        } else if (!strcmp(t, "integer?")) {
            r = fail(c, path, "'%s' without a 'type' of number or integer is not supported", kind_keyword(s, number_keys));
        } else if (!strcmp(t, "object")) r = object_rule(c, s, path);
        else if (!strcmp(t, "array")) r = array_rule(c, s, path);
        else if (!strcmp(t, "string")) r = string_rule(c, s, path);
        else if (!strcmp(t, "integer")) r = integer_rule(c, s, path);
        else if (!strcmp(t, "number")) r = number_rule(c, s, path);
        else {
            static const struct { const char *name, *rule; int prim; } simple[] = {
                {"number", "number", P_NUMBER}, {"integer", "integer", P_INTEGER}, {"boolean", "boolean", P_BOOLEAN},
                {"null", "null", P_NULL}, {"any", "value", P_VALUE}};
            int k = 0;
            while (k < 5 && strcmp(t, simple[k].name)) k++;
            if (k == 5) r = fail(c, path, "unknown type '%.40s'", t);
            else {
                c->prims |= simple[k].prim;
                r = new_rule(c);
                if (bn_buf_printf(&c->out, "r%d ::= %s\n", r, simple[k].rule)) r = -1;
            }
        }
    }
    c->depth--;
    if (r < 0 && !c->failed) fail(c, path, "out of memory");
    return r;
}

static const char *const prim_text[] = {
    /* P_SPACE */ "space ::= \" \"?\n",
    /* P_BOOLEAN */ "boolean ::= (\"true\" | \"false\") space\n",
    /* P_NULL */ "null ::= \"null\" space\n",
    /* P_INTEGER */ "integer ::= \"-\"? integral-part space\n",
    /* P_NUMBER */ "number ::= \"-\"? integral-part (\".\" decimal-part)? ([eE] [-+]? integral-part)? space\n"
                   "decimal-part ::= [0-9]{1,16}\n",
    /* P_STRING */ "string ::= \"\\\"\" char* \"\\\"\" space\n",
    /* P_VALUE */ "value ::= object | array | string | number | boolean | null\n"
                  "object ::= \"{\" space ( string \":\" space value ( \",\" space string \":\" space value )* )? \"}\" space\n"
                  "array ::= \"[\" space ( value ( \",\" space value )* )? \"]\" space\n",
    /* P_DATE */ "date ::= [0-9]{4} \"-\" ( \"0\" [1-9] | \"1\" [0-2] ) \"-\" ( \"0\" [1-9] | [12] [0-9] | \"3\" [01] )\n",
    /* P_TIME */ "time ::= ( [01] [0-9] | \"2\" [0-3] ) \":\" [0-5] [0-9] \":\" [0-5] [0-9] ( \".\" [0-9]{1,9} )? "
                 "( [zZ] | [+-] ( [01] [0-9] | \"2\" [0-3] ) \":\" [0-5] [0-9] )\n",
    /* P_UUID */ "uuid ::= [0-9a-fA-F]{8} \"-\" [0-9a-fA-F]{4} \"-\" [0-9a-fA-F]{4} \"-\" [0-9a-fA-F]{4} \"-\" [0-9a-fA-F]{12}\n",
    /* P_KEY_CHAR */ "key-char ::= [^\"\\\\\\x00-\\x1F\\x7F]\n",
};

int bn_json_schema_gbnf(const bn_json *root, char **gbnf, char *err, size_t errlen) {
    *gbnf = NULL;
    conv c = {0};
    c.root = root;
    const int r = visit(&c, root, "$", NULL);
    int rc = r < 0 ? -1 : bn_buf_printf(&c.out, "root ::= r%d\n", r);
    /* what each primitive needs */
    if (c.prims & P_VALUE) c.prims |= P_STRING | P_NUMBER | P_BOOLEAN | P_NULL | P_SPACE;
    if (c.prims & (P_STRING | P_NUMBER | P_INTEGER | P_BOOLEAN | P_NULL)) c.prims |= P_SPACE;
    for (int k = 0; k < (int)(sizeof prim_text / sizeof prim_text[0]) && !rc; k++)
        if (c.prims & (1 << k)) rc = bn_buf_printf(&c.out, "%s", prim_text[k]);
    if (!rc && (c.prims & (P_NUMBER | P_INTEGER))) rc = bn_buf_printf(&c.out, "integral-part ::= [0] | [1-9] [0-9]{0,15}\n");
    if (!rc && (c.prims & P_STRING))
        /* no \u escape of a surrogate: a lone one is not valid JSON text for strict parsers */
        rc = bn_buf_printf(&c.out, "char ::= [^\"\\\\\\x7F\\x00-\\x1F] | \"\\\\\" ([\"\\\\/bfnrt] | \"u\" ([0-9a-cA-CefEF] "
                                   "[0-9a-fA-F]{3} | [dD] [0-7] [0-9a-fA-F]{2}))\n");
    if (rc) {
        bn_buf_free(&c.out);
        snprintf(err, errlen, "JSON Schema: %s", c.failed ? c.err : "out of memory");
        return -1;
    }
    *gbnf = c.out.data;
    return 0;
}

bitnet_status bitnet_json_schema_to_grammar(const char *schema, size_t len, char **gbnf) {
    *gbnf = NULL;
    char err[300];
    bn_json *root = bn_json_parse(schema, len, err, sizeof err - 20);
    if (!root) return bn_error(BITNET_ERR_ARG, "JSON Schema: %s", err);
    const int rc = bn_json_schema_gbnf(root, gbnf, err, sizeof err);
    bn_json_free(root);
    return rc ? bn_error(strstr(err, "out of memory") ? BITNET_ERR_NOMEM : BITNET_ERR_ARG, "%s", err) : BITNET_OK;
}
