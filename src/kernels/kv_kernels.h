/*
 * kv_kernels.h - KV-cache head-row formats, their quantiser, and the
 * attention kernels over them (scalar reference in kv_scalar.c, AVX2 in
 * kv_avx2.c, NEON in kv_neon.c), reached through bn_kernels.kv.
 *
 * A head-row (head_dim values of one kv head at one position) is row_bytes bytes in one of these formats
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
 * The quantiser is scalar on every ISA: the stored bytes are the same everywhere.
 */
#ifndef BN_KV_KERNELS_H
#define BN_KV_KERNELS_H

#include "common.h"

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
typedef struct bn_kv_ops {
    const char *isa;
    void (*scores[BN_KV_N_TYPES])(const bn_kv_query *q, const uint8_t *k, size_t stride, int n, int hd,
                                  float scale, float *att);
    void (*wsum[BN_KV_N_TYPES])(const float *att, const uint8_t *v, size_t stride, int n, int hd, float *out);
} bn_kv_ops;

/* The float at p (a head-row's d or m; any alignment). */
static inline float bn_kv_rd_f32(const uint8_t *p) {
    float f;
    memcpy(&f, p, 4);
    return f;
}

/* The q8 score from the integer dot product, one expression for every ISA. */
static inline float bn_kv_q8_score(int32_t dot, float d_k, float d_q, float scale) {
    return (float)dot * (d_k * d_q) * scale;
}

/* Fills q (in scratch, for q8) for one query head of a type-t cache. */
void bn_kv_prepare_query(bitnet_kv_type t, const float *qf, int hd, void *scratch, bn_kv_query *q);

/* Bytes of one head-row of head_dim values stored as type t. */
size_t bn_kv_row_bytes(bitnet_kv_type t, int head_dim);
/* Quantises one head-row x[hd] into dst (row_bytes bytes), and back. */
void bn_kv_quantize_row(bitnet_kv_type t, const float *x, int hd, uint8_t *dst);
void bn_kv_dequantize_row(bitnet_kv_type t, const uint8_t *src, int hd, float *x);

/* The scalar reference table (kv_scalar.c); the SIMD ones are reached
 * through their ISA's bn_kernels table. */
extern const bn_kv_ops bn_kv_ops_scalar;
#define SCALAR_SCORES(t) bn_kv_ops_scalar.scores[t] /* a SIMD table's fallback for odd head sizes */
#define SCALAR_WSUM(t) bn_kv_ops_scalar.wsum[t]

/* A table's q4 and q2 entries (P##scores_q4, P##scores_q2, P##wsum_q4,
 * P##wsum_q2) from its kernels that take the code width as their last
 * argument, SCORES(q, k, stride, n, hd, scale, att, bits) and
 * WSUM(att, v, stride, n, hd, out, bits); a head of a length that is not a
 * multiple of VEC4 (q4) or VEC2 (q2) values goes to the scalar table
 * (VEC 1: never). */
#define BN_KV_QLOW_ENTRIES(P, SCORES, WSUM, VEC4, VEC2)                                                          \
    static void P##scores_q4(const bn_kv_query *q, const uint8_t *k, size_t stride, int n, int hd, float scale,  \
                             float *att) {                                                                       \
        if (hd % (VEC4)) SCALAR_SCORES(BITNET_KV_Q4)(q, k, stride, n, hd, scale, att);                 \
        else SCORES(q, k, stride, n, hd, scale, att, 4);                                                          \
    }                                                                                                             \
    static void P##scores_q2(const bn_kv_query *q, const uint8_t *k, size_t stride, int n, int hd, float scale,  \
                             float *att) {                                                                       \
        if (hd % (VEC2)) SCALAR_SCORES(BITNET_KV_Q2)(q, k, stride, n, hd, scale, att);                 \
        else SCORES(q, k, stride, n, hd, scale, att, 2);                                                          \
    }                                                                                                             \
    static void P##wsum_q4(const float *att, const uint8_t *v, size_t stride, int n, int hd, float *out) {       \
        if (hd % (VEC4)) SCALAR_WSUM(BITNET_KV_Q4)(att, v, stride, n, hd, out);                        \
        else WSUM(att, v, stride, n, hd, out, 4);                                                                 \
    }                                                                                                             \
    static void P##wsum_q2(const float *att, const uint8_t *v, size_t stride, int n, int hd, float *out) {       \
        if (hd % (VEC2)) SCALAR_WSUM(BITNET_KV_Q2)(att, v, stride, n, hd, out);                        \
        else WSUM(att, v, stride, n, hd, out, 2);                                                                 \
    }

#endif
