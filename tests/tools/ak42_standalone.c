/*
 * ak42_standalone.c - self-contained C reference for the legacy ak42 BitNet
 * b1.58 files: loads the file directly, unpacks the ternary weights to int8,
 * runs the forward pass with plain loops and the src/ak42_math.c arithmetic
 * (activations and KV cache in double),
 * decodes with a llama2.c tokenizer.bin, and prints the greedy generation the
 * way llama2.c run.c does (BOS at pos 0, pos < steps, stop on BOS, no newline).
 * Not part of the library.
 *
 *   gcc -O2 -std=c11 -D_GNU_SOURCE -Iinclude -Isrc src/ak42_math.c \
 *       tests/tools/ak42_standalone.c -lm -o /tmp/ak42
 *   /tmp/ak42 MODEL.ak42.bin tok512.bin [steps=256] [--margins] [--margins-all]
 *             [--dot-order=fwd|rev|stride] [--dump-logits FILE]
 *
 * --margins      the 5 smallest top-2 logit margins on stderr
 * --margins-all  also every step's margin on stderr ("margin POS VALUE TOKEN")
 * --dot-order    order of the integer dot products (exact in any order; for testing)
 * --dump-logits  raw float64 logits of every step (steps x vocab), as
 *                tools/train/ak42_reference.py --dump writes them
 *
 * main() is weak so that a test runner that links every tests/ subfolder file
 * keeps its own main(); better, exclude tests/tools/ from the test build.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model/ak42_math.h"

#define AK42_MAGIC 0x616b3432u
#define AK42_HEADER 256

typedef struct {
    int8_t *t; /* rows*cols ternary values */
    float scale;
    int rows, cols;
} ak_tensor;

typedef struct {
    int dim, hidden, n_layers, n_heads, n_kv_heads, vocab, seq_len, head_dim, kv_dim;
    float *final_norm, *emb;
    ak_tensor *w[7]; /* wq wk wv wo w1 w2 w3, each [n_layers] */
    unsigned char *file;
} ak_model;

enum { WQ, WK, WV, WO, W1, W2, W3 };
static const char *const k_tnames[7] = {"wq", "wk", "wv", "wo", "w1", "w2", "w3"};

static int g_dot_order; /* 0 forward, 1 reverse, 2 strided */

static void die(const char *msg, const char *path) {
    fprintf(stderr, "ak42_standalone: %s: %s\n", path, msg);
    exit(1);
}

static unsigned char *read_all(const char *path, long *len) {
    FILE *f = fopen(path, "rb");
    if (!f) die("cannot open", path);
    if (fseek(f, 0, SEEK_END) != 0) die("cannot seek", path);
    long n = ftell(f);
    if (n < 0 || fseek(f, 0, SEEK_SET) != 0) die("cannot seek", path);
    unsigned char *b = malloc((size_t)n + 1);
    if (!b || fread(b, 1, (size_t)n, f) != (size_t)n) die("cannot read", path);
    fclose(f);
    *len = n;
    return b;
}

static int32_t rd_i32(const unsigned char *p) {
    uint32_t v = (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
    int32_t r;
    memcpy(&r, &v, 4);
    return r;
}

static float rd_f32(const unsigned char *p) {
    uint32_t v = (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
    float r;
    memcpy(&r, &v, 4);
    return r;
}

static float *rd_f32_array(const unsigned char *p, size_t n) {
    float *a = malloc(n * sizeof(float));
    if (!a) die("out of memory", "load");
    for (size_t i = 0; i < n; i++) a[i] = rd_f32(p + 4 * i);
    return a;
}

static void load_model(const char *path, ak_model *m) {
    long len;
    unsigned char *b = read_all(path, &len);
    if (len < AK42_HEADER) die("too short for an ak42 header", path);
    if ((uint32_t)rd_i32(b) != AK42_MAGIC) die("bad magic (not an ak42 file)", path);
    if (rd_i32(b + 4) != 1) die("version is not 1", path);
    m->dim = rd_i32(b + 8);
    m->hidden = rd_i32(b + 12);
    m->n_layers = rd_i32(b + 16);
    m->n_heads = rd_i32(b + 20);
    m->n_kv_heads = rd_i32(b + 24);
    m->vocab = rd_i32(b + 28);
    m->seq_len = rd_i32(b + 32);
    if (m->dim <= 0 || m->hidden <= 0 || m->n_layers <= 0 || m->n_heads <= 0 ||
        m->n_kv_heads <= 0 || m->vocab <= 0 || m->seq_len <= 0 || m->dim > 65536 ||
        m->hidden > 262144 || m->n_layers > 1024 || m->vocab > 1 << 20 || m->seq_len > 1 << 20 ||
        m->dim % m->n_heads || m->n_heads % m->n_kv_heads || (m->dim / m->n_heads) % 2 ||
        m->dim % 4 || m->hidden % 4 || b[36] != 1)
        die("bad header", path);
    m->head_dim = m->dim / m->n_heads;
    m->kv_dim = m->n_kv_heads * m->head_dim;
    int rows[7] = {m->dim, m->kv_dim, m->kv_dim, m->dim, m->hidden, m->dim, m->hidden};
    int cols[7] = {m->dim, m->dim, m->dim, m->dim, m->dim, m->hidden, m->dim};
    uint64_t size = AK42_HEADER + 4ull * m->dim + 4ull * m->vocab * m->dim;
    for (int k = 0; k < 7; k++) size += (uint64_t)m->n_layers * (4 + (uint64_t)rows[k] * cols[k] / 4);
    if ((uint64_t)len != size) die("file size does not match the header", path);

    const unsigned char *p = b + AK42_HEADER;
    m->final_norm = rd_f32_array(p, (size_t)m->dim);
    p += 4 * (size_t)m->dim;
    m->emb = rd_f32_array(p, (size_t)m->vocab * m->dim);
    p += 4 * (size_t)m->vocab * m->dim;
    for (int k = 0; k < 7; k++) {
        m->w[k] = calloc((size_t)m->n_layers, sizeof(ak_tensor));
        if (!m->w[k]) die("out of memory", path);
        for (int l = 0; l < m->n_layers; l++) {
            ak_tensor *t = &m->w[k][l];
            t->rows = rows[k];
            t->cols = cols[k];
            t->scale = rd_f32(p);
            p += 4;
            if (!isfinite(t->scale) || !(t->scale > 0.0f)) die("bad tensor scale", path);
            t->t = malloc((size_t)rows[k] * cols[k]);
            if (!t->t) die("out of memory", path);
            for (int r = 0; r < rows[k]; r++) {
                if (bn_ak42_unpack_row(p + (size_t)r * cols[k] / 4, cols[k], t->t + (size_t)r * cols[k]))
                    die("invalid 2-bit code 10 in a weight", path);
            }
            p += (size_t)rows[k] * cols[k] / 4;
        }
    }
    (void)k_tnames;
    m->file = b;
}

/* ---- tokenizer (decode only) ----------------------------------------- */
typedef struct {
    char **piece;
    int *len;
    int n;
} ak_vocab;

static void load_vocab(const char *path, int n, ak_vocab *v) {
    long len;
    unsigned char *b = read_all(path, &len);
    long off = 4;
    v->n = n;
    v->piece = calloc((size_t)n, sizeof(char *));
    v->len = calloc((size_t)n, sizeof(int));
    if (!v->piece || !v->len) die("out of memory", path);
    for (int i = 0; i < n; i++) {
        if (off + 8 > len) die("truncated tokenizer", path);
        int32_t l = rd_i32(b + off + 4);
        off += 8;
        if (l < 0 || l > len - off) die("bad piece length", path);
        v->piece[i] = malloc((size_t)l + 1);
        if (!v->piece[i]) die("out of memory", path);
        memcpy(v->piece[i], b + off, (size_t)l);
        v->piece[i][l] = 0;
        v->len[i] = l;
        off += l;
    }
    free(b);
}

/* llama2.c decode(): strip one leading space after BOS; <0xXX> -> raw byte. */
static void print_piece(const ak_vocab *v, int prev, int tok) {
    const char *p = v->piece[tok];
    int n = v->len[tok];
    if (prev == 1 && n > 0 && p[0] == ' ') {
        p++;
        n--;
    }
    unsigned int byte;
    if (n == 6 && p[0] == '<' && p[1] == '0' && p[2] == 'x' && p[5] == '>' &&
        sscanf(p, "<0x%02X>", &byte) == 1) {
        putchar((int)byte);
        return;
    }
    fwrite(p, 1, (size_t)n, stdout);
}

/* ---- forward ------------------------------------------------------------ */
typedef struct {
    double *x, *q, *k, *v, *att, *g, *u, *hb; /* activations: double (see ak42_math.h) */
    float *xb;                                /* final normed vector for the classifier */
    int8_t *xq;
    int32_t *acc;
    double *scores, *rope;
    double *logits;
    double *kc, *vc; /* [n_layers][seq][kv_dim], double */
} ak_state;

static void matvec_i8(const ak_tensor *t, const int8_t *xq, int32_t *acc) {
    for (int r = 0; r < t->rows; r++) {
        const int8_t *w = t->t + (size_t)r * t->cols;
        int32_t s = 0;
        if (g_dot_order == 0) {
            for (int c = 0; c < t->cols; c++) s += w[c] * xq[c];
        } else if (g_dot_order == 1) {
            for (int c = t->cols - 1; c >= 0; c--) s += w[c] * xq[c];
        } else {
            for (int o = 0; o < 7; o++)
                for (int c = o; c < t->cols; c += 7) s += w[c] * xq[c];
        }
        acc[r] = s;
    }
}

static void forward(const ak_model *m, ak_state *s, int tok, int pos) {
    const int dim = m->dim, hd = m->head_dim, kvd = m->kv_dim, hid = m->hidden;
    const int group = m->n_heads / m->n_kv_heads;
    bn_ak42_embed_f64(m->emb + (size_t)tok * dim, dim, s->x);
    bn_ak42_rope_table(pos, hd, s->rope);
    for (int l = 0; l < m->n_layers; l++) {
        const ak_tensor *wq = &m->w[WQ][l], *wk = &m->w[WK][l], *wv = &m->w[WV][l];
        const ak_tensor *wo = &m->w[WO][l], *w1 = &m->w[W1][l], *w2 = &m->w[W2][l];
        const ak_tensor *w3 = &m->w[W3][l];
        double *kc = s->kc + (size_t)l * m->seq_len * kvd, *vc = s->vc + (size_t)l * m->seq_len * kvd;

        double a = bn_ak42_quantize_f64(s->x, dim, s->xq);
        matvec_i8(wq, s->xq, s->acc);
        bn_ak42_dequant_f64(s->acc, dim, a, wq->scale, dim, s->q);
        matvec_i8(wk, s->xq, s->acc);
        bn_ak42_dequant_f64(s->acc, kvd, a, wk->scale, dim, s->k);
        matvec_i8(wv, s->xq, s->acc);
        bn_ak42_dequant_f64(s->acc, kvd, a, wv->scale, dim, s->v);
        bn_ak42_rope_f64(s->q, m->n_heads, hd, s->rope);
        bn_ak42_rope_f64(s->k, m->n_kv_heads, hd, s->rope);
        memcpy(kc + (size_t)pos * kvd, s->k, (size_t)kvd * sizeof(double));
        memcpy(vc + (size_t)pos * kvd, s->v, (size_t)kvd * sizeof(double));
        for (int h = 0; h < m->n_heads; h++) {
            int kh = h / group;
            bn_ak42_attention_f64(s->q + (size_t)h * hd, kc + (size_t)kh * hd, vc + (size_t)kh * hd,
                              pos + 1, kvd, hd, s->scores, s->att + (size_t)h * hd);
        }
        a = bn_ak42_quantize_f64(s->att, dim, s->xq);
        matvec_i8(wo, s->xq, s->acc);
        bn_ak42_dequant_add_f64(s->acc, dim, a, wo->scale, dim, s->x);

        a = bn_ak42_quantize_f64(s->x, dim, s->xq);
        matvec_i8(w1, s->xq, s->acc);
        bn_ak42_dequant_f64(s->acc, hid, a, w1->scale, dim, s->g);
        matvec_i8(w3, s->xq, s->acc);
        bn_ak42_dequant_f64(s->acc, hid, a, w3->scale, dim, s->u);
        bn_ak42_swiglu_f64(s->g, s->u, hid, s->hb);
        a = bn_ak42_quantize_f64(s->hb, hid, s->xq);
        matvec_i8(w2, s->xq, s->acc);
        bn_ak42_dequant_add_f64(s->acc, dim, a, w2->scale, hid, s->x);
    }
    bn_ak42_final_norm_f64(s->x, m->final_norm, dim, BN_AK42_NORM_EPS, s->xb);
    for (int v = 0; v < m->vocab; v++) { /* tied classifier; double for reproducible dumps */
        const float *e = m->emb + (size_t)v * dim;
        double acc = 0.0;
        for (int j = 0; j < dim; j++) acc += (double)e[j] * (double)s->xb[j];
        s->logits[v] = acc;
    }
}

static void *xcalloc(size_t n, size_t sz) {
    void *p = calloc(n ? n : 1, sz);
    if (!p) die("out of memory", "state");
    return p;
}

typedef struct {
    int pos;
    double margin;
} ak_margin;

static int cmp_margin(const void *a, const void *b) {
    const ak_margin *x = a, *y = b;
    if (x->margin != y->margin) return x->margin < y->margin ? -1 : 1;
    return x->pos - y->pos;
}

__attribute__((weak)) int main(int argc, char **argv) {
    const char *paths[2] = {0, 0};
    const char *dump = NULL;
    int steps = 256, n_pos = 0, margins = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--margins")) margins = margins ? margins : 1;
        else if (!strcmp(argv[i], "--margins-all")) margins = 2;
        else if (!strncmp(argv[i], "--dot-order=", 12)) {
            const char *o = argv[i] + 12;
            g_dot_order = !strcmp(o, "rev") ? 1 : !strcmp(o, "stride") ? 2 : 0;
        } else if (!strcmp(argv[i], "--dump-logits") && i + 1 < argc) dump = argv[++i];
        else if (n_pos < 2) paths[n_pos++] = argv[i];
        else if (n_pos == 2) {
            steps = atoi(argv[i]);
            n_pos++;
        } else {
            fprintf(stderr, "ak42_standalone: unexpected argument %s\n", argv[i]);
            return 2;
        }
    }
    if (n_pos < 2) {
        fprintf(stderr, "usage: %s MODEL.ak42.bin tokenizer.bin [steps] [--margins|--margins-all] "
                        "[--dot-order=fwd|rev|stride] [--dump-logits FILE]\n", argv[0]);
        return 2;
    }
    ak_model m;
    load_model(paths[0], &m);
    ak_vocab voc;
    load_vocab(paths[1], m.vocab, &voc);
    if (steps <= 0 || steps > m.seq_len) steps = m.seq_len;

    ak_state s;
    int maxd = m.dim > m.hidden ? m.dim : m.hidden;
    s.x = xcalloc((size_t)m.dim, sizeof(double));
    s.xb = xcalloc((size_t)m.dim, sizeof(float));
    s.q = xcalloc((size_t)m.dim, sizeof(double));
    s.k = xcalloc((size_t)m.kv_dim, sizeof(double));
    s.v = xcalloc((size_t)m.kv_dim, sizeof(double));
    s.att = xcalloc((size_t)m.dim, sizeof(double));
    s.g = xcalloc((size_t)m.hidden, sizeof(double));
    s.u = xcalloc((size_t)m.hidden, sizeof(double));
    s.hb = xcalloc((size_t)m.hidden, sizeof(double));
    s.xq = xcalloc((size_t)maxd, 1);
    s.acc = xcalloc((size_t)maxd, sizeof(int32_t));
    s.scores = xcalloc((size_t)m.seq_len, sizeof(double));
    s.rope = xcalloc((size_t)m.head_dim, sizeof(double));
    s.logits = xcalloc((size_t)m.vocab, sizeof(double));
    s.kc = xcalloc((size_t)m.n_layers * m.seq_len * m.kv_dim, sizeof(double));
    s.vc = xcalloc((size_t)m.n_layers * m.seq_len * m.kv_dim, sizeof(double));
    ak_margin *mg = xcalloc((size_t)steps, sizeof(ak_margin));
    FILE *df = NULL;
    if (dump && !(df = fopen(dump, "wb"))) die("cannot create", dump);

    int tok = 1, n_steps = 0;
    for (int pos = 0; pos < steps; pos++) {
        forward(&m, &s, tok, pos);
        if (df) fwrite(s.logits, sizeof(double), (size_t)m.vocab, df);
        int best = 0, second = -1;
        for (int v = 1; v < m.vocab; v++) {
            if (s.logits[v] > s.logits[best]) {
                second = best;
                best = v;
            } else if (second < 0 || s.logits[v] > s.logits[second]) {
                second = v;
            }
        }
        mg[pos].pos = pos;
        mg[pos].margin = s.logits[best] - s.logits[second];
        if (margins == 2) fprintf(stderr, "margin %d %.6f %d\n", pos, mg[pos].margin, best);
        n_steps++;
        if (best == 1) break;
        print_piece(&voc, tok, best);
        tok = best;
    }
    fflush(stdout);
    if (df) fclose(df);
    if (margins) {
        qsort(mg, (size_t)n_steps, sizeof(ak_margin), cmp_margin);
        fprintf(stderr, "\n%d steps; 5 smallest top-2 margins (pos: margin):\n", n_steps);
        for (int i = 0; i < 5 && i < n_steps; i++)
            fprintf(stderr, "  %4d: %.6f\n", mg[i].pos, mg[i].margin);
    }
    return 0;
}
