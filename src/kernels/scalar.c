/*
 * scalar.c - portable reference kernels: plain loops, the ground truth every
 * SIMD table is tested against (see tests/test_kernels.c). Integer kernels
 * define the exact result; float kernels define the semantics (SIMD versions
 * may sum in another order). Written for clarity, not speed.
 */
#include <math.h>

#include "common.h"
#include "kernels/kernels.h"
#include "kernels/k_quant_gemv.h"

/* x * y + z rounded once, as the SIMD kernels' FMA instructions compute it.
 * The C library's fmaf does that everywhere but in mingw-w64's runtime, whose
 * fmaf rounds twice (about one call in four differs under Wine). There, musl's
 * method: the product of two floats is exact in double, the double sum is
 * rounded once, and rounding that to float can only go wrong when it lies
 * exactly halfway between two floats; then step it towards the error. Exact
 * for results in the normal float range (the kernels make no subnormals). */
#ifdef _WIN32
static float fma_once(float x, float y, float z) {
    const double xy = (double)x * y, r = xy + z;
    uint64_t u;
    memcpy(&u, &r, sizeof u);
    if ((u & 0x1fffffff) != 0x10000000 || (u >> 52 & 0x7ff) == 0x7ff || (r - xy == z && r - z == xy))
        return (float)r; /* not halfway, not finite, or exact: one rounding */
    const int neg = (int)(u >> 63);
    const double err = neg == (z > xy) ? xy - r + z : z - r + xy;
    u += neg == (err < 0) ? 1 : (uint64_t)-1;
    double fixed;
    memcpy(&fixed, &u, sizeof fixed);
    return (float)fixed;
}
#else
#define fma_once fmaf
#endif

/* Weight c of one I2 row, as an int in {-1, 0, 1} (code 3 reads as +2). */
static inline int i2_weight(const uint8_t *row, int c) {
    int byte = (c / BN_I2_BLOCK) * BN_I2_BLOCK_BYTES + c % 32;
    int shift = 6 - 2 * ((c % BN_I2_BLOCK) / 32);
    return ((row[byte] >> shift) & 3) - 1;
}

static void scalar_i2_gemv(int rows, int cols, const uint8_t *W, const int8_t *x, int32_t *y) {
    const size_t row_bytes = (size_t)cols / 4;
    for (int r = 0; r < rows; r++) {
        const uint8_t *row = W + (size_t)r * row_bytes;
        int32_t sum = 0;
        for (int c = 0; c < cols; c++) sum += i2_weight(row, c) * x[c];
        y[r] = sum;
    }
}

static void scalar_i2_gemm(int rows, int cols, const uint8_t *W, int n, const int8_t *X, int32_t *Y,
                           int ldy) {
    const size_t row_bytes = (size_t)cols / 4;
    for (int r = 0; r < rows; r++) {
        const uint8_t *row = W + (size_t)r * row_bytes;
        for (int j = 0; j < n; j++) {
            const int8_t *x = X + (size_t)j * cols;
            int32_t sum = 0;
            for (int c = 0; c < cols; c++) sum += i2_weight(row, c) * x[c];
            Y[(size_t)j * ldy + r] = sum;
        }
    }
}

static void scalar_q8_0_gemv(int rows, int cols, const bn_block_q8_0 *W, const int8_t *xq,
                             const float *xd, float *y) {
    const int nb = cols / BN_Q8_BLOCK;
    for (int r = 0; r < rows; r++) {
        const bn_block_q8_0 *row = W + (size_t)r * nb;
        float sum = 0.0f;
        for (int b = 0; b < nb; b++) {
            int32_t s = 0;
            for (int i = 0; i < BN_Q8_BLOCK; i++) s += row[b].qs[i] * xq[b * BN_Q8_BLOCK + i];
            sum += (float)s * (bn_fp16_to_fp32(row[b].d) * xd[b]);
        }
        y[r] = sum;
    }
}

/* ---- K-quants with Q8_K activations (kernels.h) ---- */

/* Q4_K: x = d * sc_j * q - dmin * m_j over 8 sub-blocks of 32, q = 4 bits. */
static inline void q4k_sums(const uint8_t *blk, const int8_t *x, const int16_t *bs, int32_t *isum, int32_t *msum) {
    const uint8_t *q = blk + 16;
    *isum = *msum = 0;
    for (int j = 0; j < 8; j++) { /* sub-block j: nibble j%2 of bytes 32*(j/2) .. +31 */
        int sc, m, dot = 0;
        bn_k4_scale_min(j, blk + 4, &sc, &m);
        for (int l = 0; l < 32; l++) dot += ((q[32 * (j / 2) + l] >> (4 * (j % 2))) & 15) * x[32 * j + l];
        *isum += sc * dot;
        *msum += m * (bs[2 * j] + bs[2 * j + 1]);
    }
}

/* Q6_K: x = d * sc_g * (q - 32) over 16 groups of 16, q = 4 low bits (ql) + 2 high (qh). */
static inline int32_t q6k_sum(const uint8_t *blk, const int8_t *x) {
    const int8_t *sc = (const int8_t *)(blk + 192);
    int32_t isum = 0;
    for (int h = 0; h < 2; h++) { /* halves of 128: ql[64h..], qh[32h..] */
        const uint8_t *ql = blk + 64 * h, *qh = blk + 128 + 32 * h;
        for (int k = 0; k < 4; k++) /* quarter k: values 32k .. 32k+31 of the half */
            for (int g = 0; g < 2; g++) {
                int dot = 0;
                for (int i = 0; i < 16; i++) {
                    const int l = 16 * g + i, lo = ql[l + 32 * (k & 1)] >> (4 * (k >> 1)) & 15;
                    dot += (lo | ((qh[l] >> (2 * k)) & 3) << 4) * x[128 * h + 32 * k + l];
                }
                isum += sc[8 * h + 2 * k + g] * dot;
            }
    }
    return isum;
}

BN_Q4_K_GEMV(scalar_q4_k_gemv, q4k_sums, fma_once)
BN_Q6_K_GEMV(scalar_q6_k_gemv, q6k_sum, fma_once)

/* Compiled with -ffp-contract=off (Makefile): x*s is rounded to float before
 * the rounding to an integer, as the SIMD versions compute it. */
static float scalar_quantize_i8(const float *x, int n, int n_padded, int8_t *q) {
    float amax = 0.0f;
    for (int i = 0; i < n; i++) {
        float v = fabsf(x[i]); /* NaN compares false and is skipped, like fmaxf */
        amax = v > amax ? v : amax;
    }
    if (!(amax > 0.0f) || !isfinite(amax)) {
        memset(q, 0, (size_t)n_padded);
        return 0.0f;
    }
    const float s = 127.0f / amax;
    /* Round half to even without a libm call: adding and subtracting 1.5*2^23
     * rounds any |v| < 2^22 to an integer in the current (nearest-even) mode,
     * exactly as nearbyintf does. |x*s| <= 127 here (or inf for a denormal amax). */
    const float magic = 12582912.0f;
    for (int i = 0; i < n; i++) {
        float v = x[i] * s;
        v = (v + magic) - magic;
        q[i] = (int8_t)(v > 127.0f ? 127 : v < -128.0f ? -128 : v == v ? v : 0); /* NaN: 0 */
    }
    memset(q + n, 0, (size_t)(n_padded - n));
    return amax / 127.0f;
}

static void scalar_f32_gemv(int rows, int cols, const float *W, const float *x, float *y) {
    for (int r = 0; r < rows; r++) {
        const float *row = W + (size_t)r * cols;
        float sum = 0.0f;
        for (int c = 0; c < cols; c++) sum += row[c] * x[c];
        y[r] = sum;
    }
}

static void scalar_f16_gemv(int rows, int cols, const uint16_t *W, const float *x, float *y) {
    for (int r = 0; r < rows; r++) {
        const uint16_t *row = W + (size_t)r * cols;
        float sum = 0.0f;
        for (int c = 0; c < cols; c++) sum += bn_fp16_to_fp32(row[c]) * x[c];
        y[r] = sum;
    }
}

const bn_kernels bn_kernels_scalar = BN_KERNEL_TABLE("scalar", &bn_kv_ops_scalar,
    scalar_i2_gemv, scalar_i2_gemm, scalar_q8_0_gemv,
    scalar_q4_k_gemv, scalar_q6_k_gemv, scalar_quantize_i8, scalar_f32_gemv, scalar_f16_gemv);
