/*
 * kv_cache.h - the KV cache: storage formats, writing one token's keys and
 * values, and the attention arithmetic that reads them (q.k scores and the
 * softmax-weighted sum of V), dequantising inside those loops: there is never
 * a float copy of the cache.
 *
 * Layout: K and V are each [seq][layer][pos][kv_head] "head-rows" of head_dim
 * values, a head-row being row_bytes bytes in one of these formats
 * (docs/kv-cache.md has the table):
 *
 *   f32  head_dim floats (the reference arithmetic, bit for bit llama2.c's)
 *   f16  head_dim IEEE halves
 *   q8   float d, then head_dim int8 q:             x = d * q,      q in -127..127
 *   q4   float d, float m, then ceil(hd/2) bytes:   x = m + d * q,  q in 0..15;
 *        byte j holds value j (low nibble) and value j + ceil(hd/2) (high nibble)
 *   q2   float d, float m, then ceil(hd/4) bytes:   x = m + d * q,  q in 0..3;
 *        byte j holds values j + k*ceil(hd/4) in bits 2k..2k+1, k = 0..3
 *
 * Rows are padded to a multiple of 4 bytes so the float header stays aligned.
 * Splitting a row into halves (q4) or quarters (q2) instead of packing
 * neighbours lets SIMD code unpack a whole vector of codes with one shift and
 * mask, in element order.
 *
 * The SIMD kernels (kernels/kv_simd.c) are picked from the kernel set in use
 * (bn_kernels.isa), so BITNET_ISA=scalar also gives the scalar KV code. The
 * quantiser (bn_kv_write) is scalar on every ISA: the stored bytes are the
 * same everywhere.
 */
#ifndef BN_KV_CACHE_H
#define BN_KV_CACHE_H

#include "common.h"
#include "kernels/kernels.h"

#define BN_KV_N_TYPES 5

/* One query head as the score kernels take it: the float vector, its sum
 * (for the q4/q2 minimum term), and for q8 caches an int8 copy q ~ d * i8
 * (symmetric, per head) so that q.k is an integer dot product. */
typedef struct {
    const float *f;
    float sum;
    const int8_t *i8; /* q8 caches only */
    float d;
} bn_kv_query;

/* Per-ISA attention kernels over one (sequence, layer, kv-head) slice.
 * k/v point at position 0's head-row; position s is `stride` bytes further.
 *   scores: att[s] = scale * (q . k_s), s < n
 *   wsum:   out[i] += sum_{s<n} att[s] * v_s[i], i < hd
 * Entries may be NULL where the scalar version is used. f32 entries must give
 * the scalar bits exactly (its arithmetic is the reference, see kv_cache.c). */
typedef struct {
    const char *isa;
    void (*scores[BN_KV_N_TYPES])(const bn_kv_query *q, const uint8_t *k, size_t stride, int n, int hd,
                                  float scale, float *att);
    void (*wsum[BN_KV_N_TYPES])(const float *att, const uint8_t *v, size_t stride, int n, int hd, float *out);
} bn_kv_ops;

/* The q8 score from the integer dot product, one expression for every ISA. */
static inline float bn_kv_q8_score(int32_t dot, float d_k, float d_q, float scale) {
    return (float)dot * (d_k * d_q) * scale;
}

/* Fills q (in scratch, for q8) for one query head of a type-t cache. */
void bn_kv_prepare_query(bitnet_kv_type t, const float *qf, int hd, void *scratch, bn_kv_query *q);

typedef struct {
    bitnet_kv_type type;
    int n_seq, n_layers, n_ctx, n_kv_heads, head_dim;
    size_t row_bytes;  /* one head-row                          */
    size_t pos_bytes;  /* one position: n_kv_heads head-rows     */
    uint8_t *k, *v;    /* [seq][layer][pos][kv_head] head-rows   */
    const bn_kv_ops *ops;
} bn_kv_cache;

/* Bytes of one head-row of head_dim values stored as type t. */
size_t bn_kv_row_bytes(bitnet_kv_type t, int head_dim);
/* Fills the shape fields of kv (not k, v); returns the bytes of K (= of V). */
size_t bn_kv_init(bn_kv_cache *kv, bitnet_kv_type t, int n_seq, int n_layers, int n_ctx, int n_kv_heads,
                  int head_dim, const bn_kernels *kern);
/* Per-thread scratch bytes bn_kv_attend / bn_kv_attend_ak42 need. */
size_t bn_kv_scratch_bytes(int head_dim);

/* Head-row of (seq, layer, pos, kv_head) in base (kv->k or kv->v). */
static inline uint8_t *bn_kv_row(const bn_kv_cache *kv, uint8_t *base, int seq, int layer, int pos, int head) {
    return base + (((size_t)seq * kv->n_layers + layer) * kv->n_ctx + pos) * kv->pos_bytes +
           (size_t)head * kv->row_bytes;
}

/* Quantises one head-row x[hd] into dst (row_bytes bytes), and back. */
void bn_kv_quantize_row(bitnet_kv_type t, const float *x, int hd, uint8_t *dst);
void bn_kv_dequantize_row(bitnet_kv_type t, const uint8_t *src, int hd, float *x);

/* Stores one token's keys and values (kv_dim = n_kv_heads * head_dim floats
 * each) at position pos of sequence seq, layer `layer`. */
void bn_kv_write(bn_kv_cache *kv, int seq, int layer, int pos, const float *k, const float *v);

/* One query head against positions 0..n_pos-1 of (seq, layer, kv_head):
 * out[hd] = sum_s softmax(q.k_s / sqrt(hd))_s v_s, with llama2.c's float
 * arithmetic. att holds n_pos floats; scratch bn_kv_scratch_bytes. */
void bn_kv_attend(const bn_kv_cache *kv, int seq, int layer, int kv_head, const float *q, int n_pos, float *att,
                  void *scratch, float *out);
/* The same for ak42 models: bn_ak42_attention's double arithmetic on the
 * dequantised values (exactly bn_ak42_attention for f32). dscratch holds n_pos
 * doubles. */
void bn_kv_attend_ak42(const bn_kv_cache *kv, int seq, int layer, int kv_head, const float *q, int n_pos,
                       double *dscratch, void *scratch, float *out);

/* Kernel tables: the scalar reference and the SIMD ones (kernels/kv_simd.c). */
extern const bn_kv_ops bn_kv_ops_scalar;
/* Table for a kernel set name ("avx2", "avx512vnni", "neon-dotprod", ...):
 * its SIMD family if compiled in, else scalar. The caller has checked the
 * CPU (bn_kernels_by_name only returns usable sets). */
const bn_kv_ops *bn_kv_ops_for_isa(const char *isa);

#endif
