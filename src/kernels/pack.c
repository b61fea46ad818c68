/*
 * pack.c - scalar packing helpers: native I2 rows, llama.cpp's TQ2_0 / TQ1_0
 * blocks, and Q8_0 quantisation. Used by loaders and the converter, never on
 * the per-token path. The byte layouts are spelled out in docs/kernels.md,
 * with one worked example per format (also checked by tests/test_kernels.c).
 */
#include <math.h>

#include "common.h"
#include "kernels/kernels.h"

/* ---- I2 (bitnet.cpp I2_S data) ----------------------------------------- */

size_t bn_i2_pack(const int8_t *t, int rows, int cols, uint8_t *out) {
    BN_ASSERT(rows >= 0 && cols >= 0);
    const int cp = bn_i2_cols_padded(cols);
    const size_t row_bytes = (size_t)cp / 4;
    for (int r = 0; r < rows; r++) {
        uint8_t *dst = out + (size_t)r * row_bytes;
        const int8_t *src = t + (size_t)r * cols;
        for (int blk = 0; blk < cp / BN_I2_BLOCK; blk++) {
            for (int p = 0; p < BN_I2_BLOCK_BYTES; p++) {
                unsigned byte = 0;
                for (int g = 0; g < 4; g++) {
                    int c = blk * BN_I2_BLOCK + g * 32 + p;
                    int v = c < cols ? src[c] : 0;           /* padding: weight 0 */
                    unsigned code = (unsigned)(v + 1) & 3u; /* -1,0,1 -> 0,1,2 */
                    byte |= code << (6 - 2 * g);
                }
                dst[blk * BN_I2_BLOCK_BYTES + p] = (uint8_t)byte;
            }
        }
    }
    return (size_t)rows * row_bytes;
}

void bn_i2_unpack_row(const uint8_t *row, int cols, int8_t *t) {
    for (int c = 0; c < cols; c++) {
        int byte = (c / BN_I2_BLOCK) * BN_I2_BLOCK_BYTES + c % 32;
        int shift = 6 - 2 * ((c % BN_I2_BLOCK) / 32);
        t[c] = (int8_t)(((row[byte] >> shift) & 3) - 1);
    }
}

/* ---- llama.cpp TQ2_0: { uint8_t qs[64]; fp16 d; } = 66 bytes ------------
 * Weights 128*j + 32*n + m (j < 2, n < 4, m < 32) live in qs[32*j + m], bits
 * 2n+1..2n (the first 32 weights in the LOW bits: the opposite of I2). */

static void put_fp16(uint8_t *p, float f) {
    uint16_t h = bn_fp32_to_fp16(f);
    p[0] = (uint8_t)(h & 0xff);
    p[1] = (uint8_t)(h >> 8);
}

static float get_fp16(const uint8_t *p) { return bn_fp16_to_fp32((uint16_t)(p[0] | (p[1] << 8))); }

void bn_tq2_0_pack_row(const int8_t *t, int cols, const float *block_d, uint8_t *out) {
    BN_ASSERT(cols % BN_QK_K == 0);
    for (int b = 0; b < cols / BN_QK_K; b++) {
        const int8_t *src = t + (size_t)b * BN_QK_K;
        uint8_t *blk = out + (size_t)b * BN_TQ2_0_BYTES;
        for (int j = 0; j < 2; j++) {
            for (int m = 0; m < 32; m++) {
                unsigned q = 0;
                for (int n = 0; n < 4; n++) q |= ((unsigned)(src[128 * j + 32 * n + m] + 1) & 3u) << (2 * n);
                blk[32 * j + m] = (uint8_t)q;
            }
        }
        put_fp16(blk + 64, block_d ? block_d[b] : 1.0f);
    }
}

void bn_tq2_0_unpack_row(const uint8_t *in, int cols, int8_t *t, float *block_d) {
    BN_ASSERT(cols % BN_QK_K == 0);
    for (int b = 0; b < cols / BN_QK_K; b++) {
        const uint8_t *blk = in + (size_t)b * BN_TQ2_0_BYTES;
        int8_t *dst = t + (size_t)b * BN_QK_K;
        for (int j = 0; j < 2; j++)
            for (int n = 0; n < 4; n++)
                for (int m = 0; m < 32; m++)
                    dst[128 * j + 32 * n + m] = (int8_t)(((blk[32 * j + m] >> (2 * n)) & 3) - 1);
        if (block_d) block_d[b] = get_fp16(blk + 64);
    }
}

/* ---- llama.cpp TQ1_0: { uint8_t qs[48]; uint8_t qh[4]; fp16 d; } = 54 bytes
 * Base-3 digits (t+1), most significant first, 5 per byte (3^5 = 243 <= 256),
 * the 5-digit number q then stored as ceil(q * 256 / 243) so that digit n can
 * be read back with 8-bit arithmetic: ((uint8_t)(byte * 3^n) * 3) >> 8.
 *   qs[m],      m < 32: weights m + 32n        (n < 5): weights   0..159
 *   qs[32 + m], m < 16: weights 160 + m + 16n  (n < 5): weights 160..239
 *   qh[m],      m < 4 : weights 240 + m + 4n   (n < 4): weights 240..255,
 *                       with a 5th (least significant) digit 0. */

static uint8_t tq1_encode(const int *digits, int n_digits) {
    unsigned q = 0;
    for (int i = 0; i < n_digits; i++) q = q * 3 + (unsigned)digits[i];
    for (int i = n_digits; i < 5; i++) q *= 3; /* pad with low zero digits */
    return (uint8_t)((q * 256 + 242) / 243); /* ceiling division */
}

static int tq1_digit(uint8_t byte, int n) {
    static const uint8_t pow3[5] = {1, 3, 9, 27, 81};
    uint8_t q = (uint8_t)(byte * pow3[n]); /* keeps the fraction of digit n on top */
    return (int)(((unsigned)q * 3) >> 8);
}

void bn_tq1_0_pack_row(const int8_t *t, int cols, const float *block_d, uint8_t *out) {
    BN_ASSERT(cols % BN_QK_K == 0);
    int dg[5];
    for (int b = 0; b < cols / BN_QK_K; b++) {
        const int8_t *src = t + (size_t)b * BN_QK_K;
        uint8_t *blk = out + (size_t)b * BN_TQ1_0_BYTES;
        for (int m = 0; m < 32; m++) {
            for (int n = 0; n < 5; n++) dg[n] = (src[m + 32 * n] + 1) & 3;
            blk[m] = tq1_encode(dg, 5);
        }
        for (int m = 0; m < 16; m++) {
            for (int n = 0; n < 5; n++) dg[n] = (src[160 + m + 16 * n] + 1) & 3;
            blk[32 + m] = tq1_encode(dg, 5);
        }
        for (int m = 0; m < 4; m++) {
            for (int n = 0; n < 4; n++) dg[n] = (src[240 + m + 4 * n] + 1) & 3;
            blk[48 + m] = tq1_encode(dg, 4);
        }
        put_fp16(blk + 52, block_d ? block_d[b] : 1.0f);
    }
}

void bn_tq1_0_unpack_row(const uint8_t *in, int cols, int8_t *t, float *block_d) {
    BN_ASSERT(cols % BN_QK_K == 0);
    for (int b = 0; b < cols / BN_QK_K; b++) {
        const uint8_t *blk = in + (size_t)b * BN_TQ1_0_BYTES;
        int8_t *dst = t + (size_t)b * BN_QK_K;
        for (int n = 0; n < 5; n++)
            for (int m = 0; m < 32; m++) dst[m + 32 * n] = (int8_t)(tq1_digit(blk[m], n) - 1);
        for (int n = 0; n < 5; n++)
            for (int m = 0; m < 16; m++) dst[160 + m + 16 * n] = (int8_t)(tq1_digit(blk[32 + m], n) - 1);
        for (int n = 0; n < 4; n++)
            for (int m = 0; m < 4; m++) dst[240 + m + 4 * n] = (int8_t)(tq1_digit(blk[48 + m], n) - 1);
        if (block_d) block_d[b] = get_fp16(blk + 52);
    }
}

/* ---- Q8_0 ---------------------------------------------------------------
 * As llama.cpp's quantize_row_q8_0_ref: d = amax / 127, q = round(x / d),
 * d stored as fp16. Values therefore lie in [-127, 127]. */

static float q8_0_block(const float *x, int n, int8_t *q) {
    float amax = 0.0f;
    for (int i = 0; i < n; i++) amax = BN_MAX(amax, fabsf(x[i]));
    const float d = amax / 127.0f;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    for (int i = 0; i < n; i++) {
        float v = roundf(x[i] * id);
        v = v > 127.0f ? 127.0f : (v < -127.0f ? -127.0f : v);
        q[i] = (int8_t)(v == v ? v : 0.0f); /* NaN (hostile weights; d is NaN then too): casting it is UB */
    }
    return d;
}

void bn_quantize_q8_0_act(const float *x, int n, int8_t *xq, float *xd) {
    for (int b = 0; b * BN_Q8_BLOCK < n; b++) {
        int len = BN_MIN(BN_Q8_BLOCK, n - b * BN_Q8_BLOCK);
        float d = q8_0_block(x + b * BN_Q8_BLOCK, len, xq + b * BN_Q8_BLOCK);
        /* the scale the dot product uses is the fp16-rounded one, as in llama.cpp */
        xd[b] = bn_fp16_to_fp32(bn_fp32_to_fp16(d));
    }
}

void bn_quantize_q8_0_row(const float *w, int cols, bn_block_q8_0 *out) {
    BN_ASSERT(cols % BN_Q8_BLOCK == 0);
    for (int b = 0; b < cols / BN_Q8_BLOCK; b++) {
        float d = q8_0_block(w + b * BN_Q8_BLOCK, BN_Q8_BLOCK, out[b].qs);
        out[b].d = bn_fp32_to_fp16(d);
    }
}
