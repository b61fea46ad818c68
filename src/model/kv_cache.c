/* kv_cache.c - the KV cache: sizes, writing a token, attention over it.
 * The formats and their kernels are in kernels/kv_kernels.h; docs/kv-cache.md
 * has their measured cost. */
#include "model/kv_cache.h"

#include <math.h>

#include "model/ak42_math.h"

/* ---- names (public API) -------------------------------------------------- */

static const char *const kv_names[BN_KV_N_TYPES] = {"f32", "f16", "q8", "q4", "q2"};

const char *bitnet_kv_type_name(bitnet_kv_type t) {
    if (t == BITNET_KV_DEFAULT) return "default";
    return (int)t >= 0 && (int)t < BN_KV_N_TYPES ? kv_names[t] : "?";
}

int bitnet_kv_type_from_name(const char *name, bitnet_kv_type *out) {
    if (!name) return -1;
    if (strcmp(name, "default") == 0) {
        *out = BITNET_KV_DEFAULT;
        return 0;
    }
    for (int i = 0; i < BN_KV_N_TYPES; i++)
        if (strcmp(name, kv_names[i]) == 0) {
            *out = (bitnet_kv_type)i;
            return 0;
        }
    /* llama.cpp's names for its cache types (-ctk q8_0): the nearest type here.
     * The bits per value match; the scale is per head row, not per 32 values. */
    static const struct { const char *name; bitnet_kv_type type; } aliases[] = {
        {"q8_0", BITNET_KV_Q8}, {"q4_0", BITNET_KV_Q4}, {"q4_1", BITNET_KV_Q4}};
    for (size_t i = 0; i < sizeof aliases / sizeof aliases[0]; i++)
        if (strcmp(name, aliases[i].name) == 0) {
            *out = aliases[i].type;
            return 0;
        }
    return -1;
}

/* ---- layout --------------------------------------------------------------- */

size_t bn_kv_init(bn_kv_cache *kv, bitnet_kv_type t, int n_seq, int n_layers, int n_ctx, int n_kv_heads,
                  int head_dim, const bn_kernels *kern) {
    const size_t row_bytes = bn_kv_row_bytes(t, head_dim);
    *kv = (bn_kv_cache){.type = t, .n_seq = n_seq, .n_layers = n_layers, .n_ctx = n_ctx, .n_kv_heads = n_kv_heads,
                        .head_dim = head_dim, .row_bytes = row_bytes, .pos_bytes = row_bytes * (size_t)n_kv_heads,
                        .ops = kern && kern->kv ? kern->kv : &bn_kv_ops_scalar};
    return (size_t)n_seq * n_layers * n_ctx * kv->pos_bytes;
}

/* The ak42 path scores AK42_ROWS positions at once (independent sums, each in
 * the reference's order): that many float rows, then a double accumulator
 * row; 64-byte rounded. */
enum { AK42_ROWS = 4 };
static size_t row_f32_bytes(int hd) { return ((size_t)hd * sizeof(float) + 63) & ~(size_t)63; }
size_t bn_kv_scratch_bytes(int head_dim) {
    return AK42_ROWS * row_f32_bytes(head_dim) + (size_t)head_dim * sizeof(double) + 64;
}

void bn_kv_seq_copy(bn_kv_cache *kv, int src, int dst, int p0, int p1) {
    const size_t n = (size_t)(p1 - p0) * kv->pos_bytes;
    for (int l = 0; l < kv->n_layers && n; l++) {
        memcpy(bn_kv_row(kv, kv->k, dst, l, p0, 0), bn_kv_row(kv, kv->k, src, l, p0, 0), n);
        memcpy(bn_kv_row(kv, kv->v, dst, l, p0, 0), bn_kv_row(kv, kv->v, src, l, p0, 0), n);
    }
}

void bn_kv_seq_clear(bn_kv_cache *kv, int seq, int p0, int p1) {
    const size_t n = (size_t)(p1 - p0) * kv->pos_bytes;
    for (int l = 0; l < kv->n_layers && n; l++) {
        memset(bn_kv_row(kv, kv->k, seq, l, p0, 0), 0, n);
        memset(bn_kv_row(kv, kv->v, seq, l, p0, 0), 0, n);
    }
}

void bn_kv_write(bn_kv_cache *kv, int seq, int layer, int pos, const float *k, const float *v) {
    const int hd = kv->head_dim;
    for (int h = 0; h < kv->n_kv_heads; h++) {
        bn_kv_quantize_row(kv->type, k + (size_t)h * hd, hd, bn_kv_row(kv, kv->k, seq, layer, pos, h));
        bn_kv_quantize_row(kv->type, v + (size_t)h * hd, hd, bn_kv_row(kv, kv->v, seq, layer, pos, h));
    }
}

/* ---- attention ------------------------------------------------------------ */

void bn_kv_attend(const bn_kv_cache *kv, int seq, int layer, int kv_head, const float *qf, int first, int n_pos,
                  float *att, void *scratch, float *out) {
    const int hd = kv->head_dim, t = kv->type;
    const float inv_sqrt = 1.0f / sqrtf((float)hd);
    const uint8_t *k = bn_kv_row(kv, kv->k, seq, layer, first, kv_head), *v = bn_kv_row(kv, kv->v, seq, layer, first, kv_head);
    n_pos -= first;
    const bn_kv_ops *ops = kv->ops ? kv->ops : &bn_kv_ops_scalar;
    bn_kv_query q;
    bn_kv_prepare_query(kv->type, qf, hd, scratch, &q);
    (ops->scores[t] ? ops->scores[t] : bn_kv_ops_scalar.scores[t])(&q, k, kv->pos_bytes, n_pos, hd, inv_sqrt, att);
    /* softmax, as llama2.c writes it */
    float max = att[0];
    for (int u = 1; u < n_pos; u++) max = att[u] > max ? att[u] : max;
    float sum = 0.0f;
    for (int u = 0; u < n_pos; u++) {
        att[u] = expf(att[u] - max);
        sum += att[u];
    }
    for (int u = 0; u < n_pos; u++) att[u] /= sum;
    memset(out, 0, (size_t)hd * sizeof(float));
    (ops->wsum[t] ? ops->wsum[t] : bn_kv_ops_scalar.wsum[t])(att, v, kv->pos_bytes, n_pos, hd, out);
}

void bn_kv_attend_ak42(const bn_kv_cache *kv, int seq, int layer, int kv_head, const float *q, int n_pos,
                       double *dscratch, void *scratch, float *out) {
    const int hd = kv->head_dim;
    const uint8_t *k = bn_kv_row(kv, kv->k, seq, layer, 0, kv_head), *v = bn_kv_row(kv, kv->v, seq, layer, 0, kv_head);
    /* a head-row of an f32 cache as it is, of another dequantised into one of
     * rows; acc: the output's double sums (all in scratch) */
    const size_t row_floats = row_f32_bytes(hd) / sizeof(float);
    float *rows = scratch;
    double *acc = (double *)((uint8_t *)scratch + AK42_ROWS * row_f32_bytes(hd));
    const int f32 = kv->type == BITNET_KV_F32;
    const double sq = sqrt((double)hd);
    for (int s = 0; s < n_pos; s += AK42_ROWS) {
        /* AK42_ROWS dot products side by side: one chain of dependent adds
         * each, in j order as the reference's (a short tail repeats row 0) */
        const float *kr[AK42_ROWS];
        for (int i = 0; i < AK42_ROWS; i++) {
            const uint8_t *ks = k + (size_t)(s + (s + i < n_pos ? i : 0)) * kv->pos_bytes;
            float *row = rows + (size_t)i * row_floats;
            kr[i] = f32 ? (const float *)ks : (bn_kv_dequantize_row(kv->type, ks, hd, row), row);
        }
        double a[AK42_ROWS] = {0.0};
        for (int j = 0; j < hd; j++)
            for (int i = 0; i < AK42_ROWS; i++) a[i] += (double)q[j] * (double)kr[i][j];
        for (int i = 0; i < AK42_ROWS && s + i < n_pos; i++) dscratch[s + i] = a[i] / sq;
    }
    bn_ak42_softmax_f64(dscratch, n_pos);
    /* position-major, so that the hd sums are independent (vectorised); each
     * still adds its terms in position order, the reference's rounding */
    for (int j = 0; j < hd; j++) acc[j] = 0.0;
    for (int s = 0; s < n_pos; s++) {
        const uint8_t *vs = v + (size_t)s * kv->pos_bytes;
        const float *vr = f32 ? (const float *)vs : (bn_kv_dequantize_row(kv->type, vs, hd, rows), rows);
        for (int j = 0; j < hd; j++) acc[j] += dscratch[s] * (double)vr[j];
    }
    for (int j = 0; j < hd; j++) out[j] = (float)acc[j];
}
