/*
 * k_quant_gemv.h - the ISA-independent loop of the Q4_K and Q6_K GEMVs
 * (kernels.h: q4_k_gemv, q6_k_gemv), written once for the tables that sum one
 * block at a time (scalar.c, neon.c, rvv.c; avx2.c takes four rows a pass and
 * has its own). An ISA supplies the exact integer sums of one block; this walks
 * the rows and blocks and applies the float steps in the same order for all,
 * so every table gives the scalar table's bits:
 *   Q4_K  sum = fma(d * xd, isum, sum); sum = fma(-(dmin * xd), msum, sum)
 *         with isum = sum_j sc_j * dot_j and msum = sum_j m_j * (bsums of j);
 *   Q6_K  sum = fma(d * xd, isum - 32 * sum_g sc_g * bsums_g, sum)
 *         with isum = sum_g sc_g * dot_g over the unsigned 6-bit codes.
 *
 *   BN_Q4_K_GEMV(name, SUMS, FMA)  SUMS(blk, x, bs, &isum, &msum)
 *   BN_Q6_K_GEMV(name, SUM, FMA)   isum = SUM(blk, x)
 * (each defines the static function name).
 * FMA is a once-rounded fused multiply-add (fmaf, or scalar.c's fma_once).
 */
#ifndef BN_K_QUANT_GEMV_H
#define BN_K_QUANT_GEMV_H

#include "common.h"
#include "kernels/kernels.h"

static inline float bn_k_f16(const uint8_t *p) { return bn_fp16_to_fp32(bn_load_f16_bits(p)); }

/* The row and block loop; STEP(blk, x, bsums, xd, sum) adds one block. */
#define BN_K_GEMV(NAME, BLOCK_BYTES, STEP)                                                                \
    static void NAME(int rows, int cols, const uint8_t *W, const int8_t *xq, const float *xd,              \
                     const int16_t *bsums, float *y) {                                                    \
        const int nb = cols / BN_QK_K;                                                                    \
        for (int r = 0; r < rows; r++) {                                                                  \
            float sum = 0.0f;                                                                             \
            for (int b = 0; b < nb; b++)                                                                  \
                sum = STEP(W + ((size_t)r * nb + b) * (BLOCK_BYTES), xq + (size_t)b * BN_QK_K,            \
                           bsums + (size_t)b * 16, xd[b], sum);                                           \
            y[r] = sum;                                                                                   \
        }                                                                                                 \
    }

#define BN_Q4_K_GEMV(NAME, SUMS, FMA)                                                                     \
    static inline float NAME##_block(const uint8_t *blk, const int8_t *x, const int16_t *bs, float xd,    \
                                     float sum) {                                                         \
        int32_t isum, msum;                                                                               \
        SUMS(blk, x, bs, &isum, &msum);                                                                   \
        sum = FMA(bn_k_f16(blk) * xd, (float)isum, sum);                                                  \
        return FMA(-(bn_k_f16(blk + 2) * xd), (float)msum, sum);                                          \
    }                                                                                                     \
    BN_K_GEMV(NAME, BN_Q4_K_BYTES, NAME##_block)

#define BN_Q6_K_GEMV(NAME, SUM, FMA)                                                                      \
    static inline float NAME##_block(const uint8_t *blk, const int8_t *x, const int16_t *bs, float xd,    \
                                     float sum) {                                                         \
        const int8_t *sc = (const int8_t *)(blk + 192);                                                   \
        int32_t isum = SUM(blk, x);                                                                       \
        for (int g = 0; g < 16; g++) isum -= 32 * sc[g] * bs[g]; /* q - 32 */                             \
        return FMA(bn_k_f16(blk + 208) * xd, (float)isum, sum);                                           \
    }                                                                                                     \
    BN_K_GEMV(NAME, BN_Q6_K_BYTES, NAME##_block)

#endif
