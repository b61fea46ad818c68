/* vocab_vectors.c - see vocab_vectors.h. */
#include "vocab_vectors.h"

#include "test.h"

static const char sep[] = "\n__ggml_vocab_test__\n";

int bn_vocab_vectors_open(bn_vocab_vectors *v, const char *name) {
    char rel[256];
    memset(v, 0, sizeof *v);
    snprintf(rel, sizeof rel, "tokenizers/%s.inp", name);
    const char *p = bn_test_shared(rel);
    v->inp = p ? bn_test_read_file(p, &v->n_inp) : NULL;
    snprintf(rel, sizeof rel, "tokenizers/%s.out", name);
    p = bn_test_shared(rel);
    v->out = p ? bn_test_read_file(p, &v->n_out) : NULL;
    if (!v->inp || !v->out) {
        bn_vocab_vectors_close(v);
        return 0;
    }
    v->ip = v->inp;
    v->op = v->out;
    return 1;
}

int bn_vocab_vectors_next(bn_vocab_vectors *v, const char **text, size_t *len, int32_t *ids, int max_ids, int *n_ids) {
    if (v->ip >= v->inp + v->n_inp) return 0;
    char *e = strstr(v->ip, sep);
    *text = v->ip;
    *len = e ? (size_t)(e - v->ip) : strlen(v->ip);
    v->ip = e ? e + sizeof sep - 1 : v->ip + *len;
    char *eol = strchr(v->op, '\n');
    if (!eol) return -1;
    *n_ids = 0;
    for (char *q = v->op; q < eol;) {
        char *end;
        long x = strtol(q, &end, 10);
        if (end == q || end > eol) break;
        if (*n_ids == max_ids) return -1;
        ids[(*n_ids)++] = (int32_t)x;
        q = end;
    }
    v->op = eol + 1;
    return 1;
}

int bn_vocab_vectors_done(const bn_vocab_vectors *v) { return v->op && *v->op == 0; }

void bn_vocab_vectors_close(bn_vocab_vectors *v) {
    free(v->inp);
    free(v->out);
    memset(v, 0, sizeof *v);
}
