/* grammar.c - constrained sampling: which tokens can continue a grammar.
 *
 * The recogniser is llama.cpp's: the state is a set of stacks of element
 * positions, each stack one way the text so far can be read; its top is the
 * character class the next code point must match (references are expanded
 * eagerly, so tops are always classes), and an empty stack means the text can
 * end here. A code point advances every stack whose class matches it. Bytes
 * arrive one at a time: a UTF-8 sequence cut between two tokens is kept in the
 * state (cp, left) and checked against the classes' ranges as far as it goes.
 *
 * The mask walks the vocabulary in byte order (sorted once per grammar), so
 * tokens that share a prefix share the states after it, and a prefix that no
 * stack can read rules out every token that starts with it at once. */
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"
#include "grammar/grammar.h"

#define MAX_STACK_LEN 256  /* deeper nesting is not followed (the stack is dropped) */
#define MAX_STACKS 4096    /* more readings at once: the grammar is too ambiguous */
#define TR_DEAD (-2)       /* a transition no reading survives */
#define TR_TOO_MUCH (-3)   /* the work budget ran out */
/* Stack words compared or copied, and expansions, for one mask or one accepted
 * token. A grammar with many readings that overlap ("(" x ")" | "(" x ")" nested)
 * can take exponential work; past this budget the call fails (a request error)
 * instead of holding the thread that decodes for everyone. */
#define WORK_LIMIT ((uint64_t)1 << 25)
#define CACHE_MAX_STATES 65536

typedef struct {
    uint32_t *w;       /* the stacks, each as [len, e_0 .. e_len-1] (top last) */
    size_t n, cap;     /* words used / allocated                               */
    uint32_t n_stacks;
    uint32_t cp;       /* a UTF-8 sequence in progress: its bits so far        */
    uint8_t left;      /* continuation bytes it still needs                    */
    uint8_t overflow;  /* MAX_STACKS was reached                               */
} gstate;

/* The model's vocabulary as the mask reads it: immutable once built, shared by
 * the grammars made with bitnet_grammar_new_sharing (reference counted). */
typedef struct {
    atomic_int refs;
    bn_vocab_pieces v;
    int32_t *order;    /* text tokens in byte order of their pieces */
    uint16_t *lcp;     /* common prefix with the previous token in order (capped) */
    int n_order, max_len;
    uint8_t *eog;      /* end-of-generation tokens, allowed once the text is complete */
    const bitnet_model *model;
} gvocab;

struct bitnet_grammar {
    bn_gbnf g;
    gvocab *voc;
    gstate cur, tmp;
    int32_t *lv;       /* the mask's states by depth (max_len + 1), as cache ids */
    /* The mask's cache: states interned by content, and (state, byte) -> state
     * transitions. Most tokens lead through the same few states (inside a
     * string, a letter leaves the state as it was), so a walk of the whole
     * vocabulary computes each transition once and looks the rest up. Kept
     * across steps; emptied at the start of one when it grows too large. */
    gstate *st;
    int n_st, cap_st;
    int32_t *st_slot;  /* open addressing on the state's hash: id + 1, 0 empty */
    uint32_t n_st_slot;
    uint64_t *tr_key;  /* (id << 8 | byte) + 1, 0 empty */
    int32_t *tr_val;   /* the next state's id, or TR_DEAD */
    uint32_t n_tr_slot, n_tr;
    gstate scratch_state;
    uint32_t *scratch; /* expand(): one stack per recursion level */
    uint64_t work;     /* spent in this call, against WORK_LIMIT */
    int scratch_levels;
};

static int set_reserve(gstate *s, size_t more) {
    if (s->n + more <= s->cap) return 0;
    size_t cap = s->cap ? s->cap : 64;
    while (cap < s->n + more) cap *= 2;
    uint32_t *nw = realloc(s->w, cap * sizeof *nw);
    if (!nw) return -1;
    s->w = nw;
    s->cap = cap;
    return 0;
}

static void set_clear(gstate *s) {
    s->n = s->n_stacks = 0;
    s->cp = s->left = s->overflow = 0;
}

static int set_copy(gstate *dst, const gstate *src) {
    dst->n = 0;
    if (set_reserve(dst, src->n)) return -1;
    if (src->n) memcpy(dst->w, src->w, src->n * sizeof *dst->w);
    dst->n = src->n;
    dst->n_stacks = src->n_stacks;
    dst->cp = src->cp;
    dst->left = src->left;
    dst->overflow = src->overflow;
    return 0;
}

/* Adds a stack unless the set has it already. */
static int set_add(bitnet_grammar *G, gstate *s, const uint32_t *st, uint32_t len) {
    G->work += s->n + len + 1;
    if (G->work > WORK_LIMIT) return 0; /* the caller sees the budget spent */
    for (size_t i = 0; i < s->n; i += 1 + s->w[i])
        if (s->w[i] == len && (!len || !memcmp(s->w + i + 1, st, len * sizeof *st))) return 0;
    if (s->n_stacks >= MAX_STACKS) {
        s->overflow = 1;
        return 0;
    }
    if (set_reserve(s, 1 + (size_t)len)) return -1;
    s->w[s->n] = len;
    if (len) memcpy(s->w + s->n + 1, st, len * sizeof *st);
    s->n += 1 + len;
    s->n_stacks++;
    return 0;
}

static int is_end(const bn_gelem *e) { return e->type == BN_GE_END || e->type == BN_GE_ALT; }

/* Adds st (len positions) to out with every reference on top expanded into
 * the alternatives of its rule, until each top is a character class. */
static int expand(bitnet_grammar *G, gstate *out, const uint32_t *st, uint32_t len, int level) {
    if (++G->work > WORK_LIMIT) return 0;
    if (!len || G->g.e[st[len - 1]].type != BN_GE_REF) return set_add(G, out, st, len);
    if (level >= G->scratch_levels) return 0; /* cannot happen without left recursion, which the parser refuses */
    const uint32_t pos = st[len - 1];
    uint32_t *ns = G->scratch + (size_t)level * (MAX_STACK_LEN + 2);
    for (uint32_t a = G->g.start[G->g.e[pos].value];;) {
        uint32_t n = len - 1;
        memcpy(ns, st, n * sizeof *ns);
        if (!is_end(&G->g.e[pos + 1])) ns[n++] = pos + 1; /* what follows the reference, once the rule is read */
        if (!is_end(&G->g.e[a])) ns[n++] = a;
        if (n <= MAX_STACK_LEN && expand(G, out, ns, n, level + 1)) return -1;
        while (!is_end(&G->g.e[a])) a++;
        if (G->g.e[a].type == BN_GE_END) break;
        a++;
    }
    return 0;
}

/* Whether the class at pos contains a code point in [lo, hi]; *end: the element after the class. */
static int class_meets(const bn_gelem *e0, uint32_t pos, uint32_t lo, uint32_t hi, uint32_t *end) {
    const bn_gelem *e = e0 + pos;
    if (e->type == BN_GE_CHAR_ANY) {
        *end = pos + 1;
        return 1;
    }
    const int negated = e->type == BN_GE_CHAR_NOT;
    int inside = 0, covers = 0; /* some code point of [lo,hi] is in the class / all of them are */
    do {
        uint32_t a = e->value, b = e->value;
        if (e[1].type == BN_GE_RNG_UPPER) {
            b = e[1].value;
            e += 2;
        } else {
            e++;
        }
        inside |= a <= hi && lo <= b;
        covers |= a <= lo && hi <= b;
    } while (e->type == BN_GE_CHAR_ALT);
    *end = (uint32_t)(e - e0);
    /* a negated class accepts [lo,hi] unless one of its ranges covers it all (a safe over-estimate) */
    return negated ? !covers : inside;
}

/* out = in after the code point cp (out's UTF-8 fields cleared). */
static int accept_cp(bitnet_grammar *G, const gstate *in, gstate *out, uint32_t cp) {
    set_clear(out);
    out->overflow = in->overflow;
    uint32_t ns[MAX_STACK_LEN];
    for (size_t i = 0; i < in->n; i += 1 + in->w[i]) {
        const uint32_t len = in->w[i];
        const uint32_t *st = in->w + i + 1;
        uint32_t end;
        if (!len || !class_meets(G->g.e, st[len - 1], cp, cp, &end)) continue;
        uint32_t n = len - 1;
        memcpy(ns, st, n * sizeof *ns);
        if (!is_end(&G->g.e[end])) ns[n++] = end;
        if (expand(G, out, ns, n, 0)) return -1;
    }
    return 0;
}

/* out = in after one byte; returns 1 if some reading survives, 0 if none, -1 out of memory. */
static int feed_byte(bitnet_grammar *G, const gstate *in, gstate *out, uint8_t b) {
    uint32_t cp;
    int left;
    if (in->left) {
        if ((b & 0xC0) != 0x80) return 0;
        /* the second byte rules out overlong forms (E0 80.., F0 80..), surrogates (ED A0..) and > U+10FFFF */
        if (in->left == 2 && in->cp == 0 && b < 0xA0) return 0;
        if (in->left == 2 && in->cp == 0xD && b > 0x9F) return 0;
        if (in->left == 3 && in->cp == 0 && b < 0x90) return 0;
        if (in->left == 3 && in->cp == 4 && b > 0x8F) return 0;
        cp = in->cp << 6 | (b & 0x3Fu);
        left = in->left - 1;
    } else if (b < 0x80) {
        cp = b;
        left = 0;
    } else if (b >= 0xC2 && b <= 0xDF) {
        cp = b & 0x1Fu;
        left = 1;
    } else if (b >= 0xE0 && b <= 0xEF) {
        cp = b & 0x0Fu;
        left = 2;
    } else if (b >= 0xF0 && b <= 0xF4) {
        cp = b & 0x07u;
        left = 3;
    } else {
        return 0;
    }
    if (!left) {
        if (accept_cp(G, in, out, cp)) return -1;
        return out->n_stacks > 0;
    }
    /* in the middle of a sequence: the code points it can still become */
    uint32_t lo = cp << (6 * left), hi = lo | ((1u << (6 * left)) - 1);
    if (!in->left && left == 2 && lo < 0x800) lo = 0x800; /* E0: no overlong form */
    if (!in->left && left == 3 && lo < 0x10000) lo = 0x10000; /* F0 */
    if (hi > 0x10FFFF) hi = 0x10FFFF;
    if (lo > hi) return 0;
    int any = 0;
    for (size_t i = 0; i < in->n && !any; i += 1 + in->w[i]) {
        uint32_t end;
        any = in->w[i] && class_meets(G->g.e, in->w[i + in->w[i]], lo, hi, &end);
    }
    if (!any) return 0;
    if (set_copy(out, in)) return -1;
    out->cp = cp;
    out->left = (uint8_t)left;
    return 1;
}

static int state_complete(const gstate *s) {
    if (s->left) return 0;
    for (size_t i = 0; i < s->n; i += 1 + s->w[i])
        if (!s->w[i]) return 1;
    return 0;
}

/* ---- vocabulary in byte order --------------------------------------------- */
static const bn_vocab_pieces *g_sort_v; /* qsort has no context argument: set under index_lock */

static int cmp_piece(const void *a, const void *b) {
    const bn_vocab_pieces *v = g_sort_v;
    const int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
    const uint32_t lx = v->off[x + 1] - v->off[x], ly = v->off[y + 1] - v->off[y];
    int c = memcmp(v->pieces + v->off[x], v->pieces + v->off[y], lx < ly ? lx : ly);
    return c ? c : lx < ly ? -1 : lx > ly ? 1 : (x > y) - (x < y);
}

static pthread_mutex_t index_lock = PTHREAD_MUTEX_INITIALIZER;

static void vocab_release(gvocab *V) {
    if (!V || atomic_fetch_sub(&V->refs, 1) != 1) return;
    bn_vocab_pieces_free(&V->v);
    free(V->order);
    free(V->lcp);
    free(V->eog);
    free(V);
}

static gvocab *vocab_build(const bitnet_model *m) {
    gvocab *V = calloc(1, sizeof *V);
    if (!V) return NULL;
    atomic_init(&V->refs, 1);
    V->model = m;
    const bn_vocab_pieces *v = &V->v;
    if (bn_vocab_pieces_init(&V->v, m) != 0) {
        free(V);
        return NULL;
    }
    V->order = malloc((size_t)v->n_vocab * sizeof *V->order);
    V->lcp = malloc((size_t)v->n_vocab * sizeof *V->lcp);
    V->eog = calloc((size_t)v->n_vocab, 1);
    if (!V->order || !V->lcp || !V->eog) {
        vocab_release(V);
        return NULL;
    }
    for (int t = 0; t < v->n_vocab; t++) {
        const uint32_t len = v->off[t + 1] - v->off[t];
        V->eog[t] = bitnet_token_is_eog(m, t) || t == bitnet_token_eos(m);
        if (v->special[t] || !len) continue; /* never text */
        V->order[V->n_order++] = t;
        if ((int)len > V->max_len) V->max_len = (int)len;
    }
    pthread_mutex_lock(&index_lock);
    g_sort_v = v;
    qsort(V->order, (size_t)V->n_order, sizeof *V->order, cmp_piece);
    pthread_mutex_unlock(&index_lock);
    for (int i = 0; i < V->n_order; i++) {
        uint32_t k = 0;
        if (i) {
            const int32_t x = V->order[i - 1], y = V->order[i];
            const uint32_t lx = v->off[x + 1] - v->off[x], ly = v->off[y + 1] - v->off[y];
            while (k < lx && k < ly && k < 65535 && v->pieces[v->off[x] + k] == v->pieces[v->off[y] + k]) k++;
        }
        V->lcp[i] = (uint16_t)k;
    }
    return V;
}

/* ---- the mask's cache ----------------------------------------------------------- */
static uint64_t state_hash(const gstate *s) {
    uint64_t h = 1469598103934665603ull ^ s->cp ^ ((uint64_t)s->left << 32) ^ ((uint64_t)s->overflow << 40);
    for (size_t i = 0; i < s->n; i++) h = (h ^ s->w[i]) * 1099511628211ull;
    return h ^ (h >> 29);
}

static int state_eq(const gstate *a, const gstate *b) {
    return a->n == b->n && a->n_stacks == b->n_stacks && a->cp == b->cp && a->left == b->left &&
           a->overflow == b->overflow && (!a->n || !memcmp(a->w, b->w, a->n * sizeof *a->w));
}

static void cache_clear(bitnet_grammar *G) {
    for (int i = 0; i < G->n_st; i++) free(G->st[i].w);
    G->n_st = 0;
    G->n_tr = 0;
    if (G->st_slot) memset(G->st_slot, 0, G->n_st_slot * sizeof *G->st_slot);
    if (G->tr_key) memset(G->tr_key, 0, G->n_tr_slot * sizeof *G->tr_key);
}

/* Grows the state table to hold one more at load <= 1/2. */
static int st_table_room(bitnet_grammar *G) {
    if (G->n_st + 1 <= G->cap_st && (uint32_t)(G->n_st + 1) * 2 <= G->n_st_slot) return 0;
    if (G->n_st + 1 > G->cap_st) {
        const int cap = G->cap_st ? G->cap_st * 2 : 256;
        gstate *ns = realloc(G->st, (size_t)cap * sizeof *ns);
        if (!ns) return -1;
        G->st = ns;
        G->cap_st = cap;
    }
    if ((uint32_t)(G->n_st + 1) * 2 > G->n_st_slot) {
        const uint32_t n = G->n_st_slot ? G->n_st_slot * 2 : 1024;
        int32_t *slot = calloc(n, sizeof *slot);
        if (!slot) return -1;
        for (int i = 0; i < G->n_st; i++) {
            uint32_t h = (uint32_t)state_hash(&G->st[i]) & (n - 1);
            while (slot[h]) h = (h + 1) & (n - 1);
            slot[h] = i + 1;
        }
        free(G->st_slot);
        G->st_slot = slot;
        G->n_st_slot = n;
    }
    return 0;
}

/* The id of a state with s's content (a copy is made if it is new), or -1 out of memory. */
static int32_t intern(bitnet_grammar *G, const gstate *s) {
    if (st_table_room(G)) return -1;
    uint32_t h = (uint32_t)state_hash(s) & (G->n_st_slot - 1);
    for (; G->st_slot[h]; h = (h + 1) & (G->n_st_slot - 1))
        if (state_eq(&G->st[G->st_slot[h] - 1], s)) return G->st_slot[h] - 1;
    gstate *c = &G->st[G->n_st];
    memset(c, 0, sizeof *c);
    if (set_copy(c, s)) {
        free(c->w);
        return -1;
    }
    G->st_slot[h] = ++G->n_st;
    return G->n_st - 1;
}

/* The state after byte b from state id: an id, TR_DEAD, or -1 out of memory. */
static int32_t step(bitnet_grammar *G, int32_t id, uint8_t b) {
    if ((G->n_tr + 1) * 2 > G->n_tr_slot) {
        const uint32_t n = G->n_tr_slot ? G->n_tr_slot * 2 : 4096;
        uint64_t *key = calloc(n, sizeof *key);
        int32_t *val = malloc(n * sizeof *val);
        if (!key || !val) {
            free(key);
            free(val);
            return -1;
        }
        for (uint32_t i = 0; i < G->n_tr_slot; i++) {
            if (!G->tr_key[i]) continue;
            uint32_t h = (uint32_t)((G->tr_key[i] * 0x9E3779B97F4A7C15ull) >> 32) & (n - 1);
            while (key[h]) h = (h + 1) & (n - 1);
            key[h] = G->tr_key[i];
            val[h] = G->tr_val[i];
        }
        free(G->tr_key);
        free(G->tr_val);
        G->tr_key = key;
        G->tr_val = val;
        G->n_tr_slot = n;
    }
    const uint64_t k = ((uint64_t)id << 8 | b) + 1;
    uint32_t h = (uint32_t)((k * 0x9E3779B97F4A7C15ull) >> 32) & (G->n_tr_slot - 1);
    for (; G->tr_key[h]; h = (h + 1) & (G->n_tr_slot - 1))
        if (G->tr_key[h] == k) return G->tr_val[h];
    const int r = feed_byte(G, &G->st[id], &G->scratch_state, b);
    if (r < 0) return -1;
    if (G->work > WORK_LIMIT) return TR_TOO_MUCH;
    const int32_t next = r ? intern(G, &G->scratch_state) : TR_DEAD;
    if (next == -1) return -1;
    G->tr_key[h] = k;
    G->tr_val[h] = next;
    G->n_tr++;
    return next;
}

/* ---- public API -------------------------------------------------------------- */
/* A grammar over vocabulary V (one reference taken). */
static bitnet_status grammar_make(gvocab *V, const char *gbnf, bitnet_grammar **out) {
    bitnet_grammar *G = calloc(1, sizeof *G);
    if (!G) return bn_error(BITNET_ERR_NOMEM, "out of memory");
    char err[256];
    if (bn_gbnf_parse(gbnf, &G->g, err, sizeof err) != 0) {
        free(G);
        return bn_error(strstr(err, "out of memory") ? BITNET_ERR_NOMEM : BITNET_ERR_ARG, "%s", err);
    }
    atomic_fetch_add(&V->refs, 1);
    G->voc = V;
    G->scratch_levels = G->g.n_rules + 2;
    G->scratch = malloc((size_t)G->scratch_levels * (MAX_STACK_LEN + 2) * sizeof *G->scratch);
    G->lv = calloc((size_t)V->max_len + 1, sizeof *G->lv);
    bitnet_status st = G->scratch && G->lv ? bitnet_grammar_reset(G) : bn_error(BITNET_ERR_NOMEM, "out of memory");
    if (st != BITNET_OK) {
        bitnet_grammar_free(G);
        return st;
    }
    *out = G;
    return BITNET_OK;
}

bitnet_status bitnet_grammar_new(const bitnet_model *model, const char *gbnf, bitnet_grammar **out) {
    *out = NULL;
    if (!model || !gbnf) return bn_error(BITNET_ERR_ARG, "bitnet_grammar_new: NULL model or grammar");
    gvocab *V = vocab_build(model);
    if (!V) return bn_error(BITNET_ERR_NOMEM, "out of memory");
    bitnet_status st = grammar_make(V, gbnf, out);
    vocab_release(V);
    return st;
}

bitnet_status bitnet_grammar_new_sharing(const bitnet_grammar *like, const char *gbnf, bitnet_grammar **out) {
    *out = NULL;
    if (!like || !gbnf) return bn_error(BITNET_ERR_ARG, "bitnet_grammar_new_sharing: NULL grammar");
    return grammar_make(like->voc, gbnf, out);
}

static bitnet_status too_ambiguous(bitnet_grammar *G) {
    cache_clear(G); /* states cut short by the budget must not be looked up later */
    return bn_error(BITNET_ERR_ARG, "the grammar is too ambiguous to follow (more than %llu steps for one token)",
                    (unsigned long long)WORK_LIMIT);
}

bitnet_status bitnet_grammar_reset(bitnet_grammar *G) {
    G->work = 0;
    set_clear(&G->cur);
    /* one stack per alternative of root, holding where it starts (an empty one if it is empty) */
    for (uint32_t a = G->g.start[G->g.root];;) {
        if (is_end(&G->g.e[a])) {
            if (set_add(G, &G->cur, NULL, 0)) return bn_error(BITNET_ERR_NOMEM, "out of memory");
        } else if (expand(G, &G->cur, &a, 1, 0)) {
            return bn_error(BITNET_ERR_NOMEM, "out of memory");
        }
        while (!is_end(&G->g.e[a])) a++;
        if (G->g.e[a].type == BN_GE_END) break;
        a++;
    }
    return G->work > WORK_LIMIT ? too_ambiguous(G) : BITNET_OK;
}

int bitnet_grammar_apply(bitnet_grammar *G, float *logits) {
    const bn_vocab_pieces *v = &G->voc->v;
    const int complete = state_complete(&G->cur);
    int left = 0;
    if (G->cur.overflow) return bn_error(BITNET_ERR_ARG, "the grammar is too ambiguous (over %d readings at once)", MAX_STACKS);
    for (int t = 0; t < v->n_vocab; t++) {
        if (G->voc->eog[t] && complete) left += logits[t] > -INFINITY;
        else if (G->voc->eog[t] || v->special[t] || v->off[t + 1] == v->off[t]) logits[t] = -INFINITY;
    }
    /* only end-of-text can follow: every text token goes */
    int only_end = complete && G->cur.n_stacks == 1;
    int valid = 0, dead = 0; /* lv[0..valid] hold the states after the last walked token's first bytes */
    if (G->n_st > CACHE_MAX_STATES) cache_clear(G);
    G->work = 0;
    if ((G->lv[0] = intern(G, &G->cur)) < 0) return bn_error(BITNET_ERR_NOMEM, "out of memory");
    for (int i = 0; i < G->voc->n_order; i++) {
        const int32_t t = G->voc->order[i];
        const int l = G->voc->lcp[i];
        if (l < valid) valid = l;
        if (dead && l < dead) dead = 0;
        if (only_end || dead) {
            logits[t] = -INFINITY;
            continue;
        }
        if (logits[t] == -INFINITY) continue; /* banned already (a bias): nothing to learn from it */
        const uint8_t *p = (const uint8_t *)v->pieces + v->off[t];
        const int len = (int)(v->off[t + 1] - v->off[t]);
        int ok = 1;
        for (int k = valid; k < len; k++) {
            const int32_t next = step(G, G->lv[k], p[k]);
            if (next == -1) return bn_error(BITNET_ERR_NOMEM, "out of memory");
            if (next == TR_TOO_MUCH) return too_ambiguous(G);
            if (next == TR_DEAD) {
                dead = k + 1; /* every token starting with p[0..k] is out too */
                valid = k;
                ok = 0;
                break;
            }
            G->lv[k + 1] = next;
            valid = k + 1;
        }
        if (ok) left++;
        else logits[t] = -INFINITY;
    }
    return left;
}

bitnet_status bitnet_grammar_accept(bitnet_grammar *G, bitnet_token token) {
    const bn_vocab_pieces *v = &G->voc->v;
    if (token < 0 || token >= v->n_vocab) return bn_error(BITNET_ERR_ARG, "bitnet_grammar_accept: token %d out of range", token);
    if (G->voc->eog[token]) {
        if (state_complete(&G->cur)) return BITNET_OK;
        return bn_error(BITNET_ERR_ARG, "end of text before the grammar is complete");
    }
    const uint8_t *p = (const uint8_t *)v->pieces + v->off[token];
    const uint32_t len = v->off[token + 1] - v->off[token];
    if (v->special[token] || !len) return bn_error(BITNET_ERR_ARG, "token %d is not text the grammar can read", token);
    G->work = 0;
    for (uint32_t k = 0; k < len; k++) {
        int r = feed_byte(G, &G->cur, &G->tmp, p[k]);
        if (r < 0) return bn_error(BITNET_ERR_NOMEM, "out of memory");
        if (G->work > WORK_LIMIT) return too_ambiguous(G);
        if (!r) return bn_error(BITNET_ERR_ARG, "token %d ('%.*s') cannot continue the grammar", token, (int)len, (const char *)p);
        gstate t = G->cur;
        G->cur = G->tmp;
        G->tmp = t;
    }
    return BITNET_OK;
}

int bn_grammar_feed_text(bitnet_grammar *G, const char *text, size_t n) {
    gstate a = {0}, b = {0};
    if (set_copy(&a, &G->cur)) return -1;
    int r = 1;
    G->work = 0;
    for (size_t k = 0; k < n && r == 1; k++) {
        r = feed_byte(G, &a, &b, (uint8_t)text[k]);
        if (G->work > WORK_LIMIT) r = -1;
        gstate t = a;
        a = b;
        b = t;
    }
    if (r == 1) {
        gstate t = G->cur;
        G->cur = a;
        a = t;
    }
    free(a.w);
    free(b.w);
    return r;
}

int bitnet_grammar_is_complete(const bitnet_grammar *G) {
    if (!state_complete(&G->cur)) return 0;
    return G->cur.n_stacks == 1 ? 2 : 1;
}

void bitnet_grammar_free(bitnet_grammar *G) {
    if (!G) return;
    bn_gbnf_free(&G->g);
    vocab_release(G->voc);
    free(G->lv);
    cache_clear(G);
    free(G->st);
    free(G->st_slot);
    free(G->tr_key);
    free(G->tr_val);
    free(G->scratch_state.w);
    free(G->cur.w);
    free(G->tmp.w);
    free(G->scratch);
    free(G);
}

/* ---- the vocabulary's pieces (also the server's JSON mode) -------------------- */
int bn_vocab_pieces_init(bn_vocab_pieces *v, const bitnet_model *m) {
    memset(v, 0, sizeof *v);
    const int nv = bitnet_n_vocab(m);
    size_t cap = (size_t)nv * 8, len = 0;
    v->n_vocab = nv;
    v->off = malloc(((size_t)nv + 1) * sizeof *v->off);
    v->special = calloc((size_t)nv, 1);
    v->pieces = malloc(cap);
    if (!v->off || !v->special || !v->pieces) {
        bn_vocab_pieces_free(v);
        return -1;
    }
    char piece[512];
    for (int t = 0; t < nv; t++) {
        int n = bitnet_token_to_piece(m, -1, t, piece, sizeof piece);
        n = n < 0 ? 0 : n > (int)sizeof piece - 1 ? (int)sizeof piece - 1 : n;
        if (len + (size_t)n > cap) {
            char *np = realloc(v->pieces, cap * 2 + (size_t)n);
            if (!np) {
                bn_vocab_pieces_free(v);
                return -1;
            }
            v->pieces = np;
            cap = cap * 2 + (size_t)n;
        }
        v->off[t] = (uint32_t)len;
        memcpy(v->pieces + len, piece, (size_t)n);
        len += (size_t)n;
        /* a control token (<|im_start|>, <s>, ...) is not text, whatever it spells */
        if (n >= 3 && piece[0] == '<' && piece[n - 1] == '>') {
            bitnet_token one[2];
            if (bitnet_tokenize_ex(m, piece, (size_t)n, 0, 1, one, 2) == 1 && one[0] == t &&
                !(bitnet_tokenize_ex(m, piece, (size_t)n, 0, 0, one, 2) == 1 && one[0] == t))
                v->special[t] = 1;
        }
        if (bitnet_token_is_eog(m, t) || t == bitnet_token_bos(m)) v->special[t] = 1;
    }
    v->off[nv] = (uint32_t)len;
    return 0;
}

void bn_vocab_pieces_free(bn_vocab_pieces *v) {
    free(v->pieces);
    free(v->off);
    free(v->special);
    memset(v, 0, sizeof *v);
}
