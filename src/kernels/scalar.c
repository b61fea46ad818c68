/*
 * scalar.c - portable reference kernels: plain loops, the ground truth every
 * SIMD table is tested against (see tests/test_kernels.c). Integer kernels
 * define the exact result; float kernels define the semantics (SIMD versions
 * may sum in another order). Written for clarity, not speed.
 */
#include <math.h>

#include "common.h"
#include "kernels/kernels.h"

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

const bn_kernels bn_kernels_scalar = {
    .isa = "scalar",
    .kv = &bn_kv_ops_scalar,
    .i2_gemv = scalar_i2_gemv,
    .i2_gemm = scalar_i2_gemm,
    .q8_0_gemv = scalar_q8_0_gemv,
    .quantize_i8 = scalar_quantize_i8,
    .f32_gemv = scalar_f32_gemv,
    .f16_gemv = scalar_f16_gemv,
};
