/*
 * avx2.c - AVX2 kernels (compiled with -mavx2 -mfma -mf16c -mbmi2; used only
 * after dispatch.c checked the CPU and the OS). See docs/kernels.md.
 *
 * Ternary: an I2 block is 32 bytes = 128 weights, byte p holding weights p,
 * p+32, p+64, p+96 in bits 7-6, 5-4, 3-2, 1-0. One 32-byte load therefore
 * unpacks into four code vectors (shift + AND 3), each lined up with 32
 * consecutive activations, and pmaddubsw multiplies the unsigned codes (0..2)
 * by the signed activations. The -1 offset is applied once per row:
 *     sum (code - 1) * x  =  sum code * x  -  sum x.
 * Bounds: a pmaddubsw lane is code0*x0 + code1*x1 with code <= 3 and
 * |x| <= 128, so |lane| <= 768 (no saturation); the four groups of a block sum
 * to <= 3072 per int16 lane, so int16 accumulators are flushed (pmaddwd by 1)
 * into int32 every 8 blocks (<= 24576).
 */
#include <immintrin.h>

#include "common.h"
#include "kernels.h"

#define ROWS_PER_STEP 4 /* rows that share one activation load in i2_gemv */
#define FLUSH_BLOCKS 8  /* int16 accumulation span, see the bound above */
#define GEMM_N 4        /* activation vectors per i2_gemm tile */
#define GEMM_CHUNK 64   /* vectors whose sums are kept on the stack */

static inline int32_t hsum_epi32(__m256i v) {
    __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
    s = _mm_add_epi32(s, _mm_unpackhi_epi64(s, s));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, _MM_SHUFFLE(2, 3, 0, 1)));
    return _mm_cvtsi128_si32(s);
}

static inline float hsum_ps(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

/* sum of cols (multiple of 32) int8 values */
static int32_t sum_i8(const int8_t *x, int cols) {
    const __m256i ones8 = _mm256_set1_epi8(1), ones16 = _mm256_set1_epi16(1);
    __m256i acc = _mm256_setzero_si256();
    for (int c = 0; c < cols; c += 32) {
        __m256i v = _mm256_loadu_si256((const __m256i *)(x + c));
        acc = _mm256_add_epi32(acc, _mm256_madd_epi16(_mm256_maddubs_epi16(ones8, v), ones16));
    }
    return hsum_epi32(acc);
}

/* The four code vectors of one I2 block (32 bytes at w). */
typedef struct {
    __m256i g0, g1, g2, g3;
} i2_codes;

static inline i2_codes i2_unpack(const uint8_t *w) {
    const __m256i m3 = _mm256_set1_epi8(3);
    const __m256i v = _mm256_loadu_si256((const __m256i *)w);
    i2_codes c;
    c.g0 = _mm256_and_si256(_mm256_srli_epi16(v, 6), m3);
    c.g1 = _mm256_and_si256(_mm256_srli_epi16(v, 4), m3);
    c.g2 = _mm256_and_si256(_mm256_srli_epi16(v, 2), m3);
    c.g3 = _mm256_and_si256(v, m3);
    return c;
}

/* int16 lanes of sum code * x over one block (x = the block's 128 activations). */
static inline __m256i i2_dot16(i2_codes c, __m256i x0, __m256i x1, __m256i x2, __m256i x3) {
    __m256i p01 = _mm256_add_epi16(_mm256_maddubs_epi16(c.g0, x0), _mm256_maddubs_epi16(c.g1, x1));
    __m256i p23 = _mm256_add_epi16(_mm256_maddubs_epi16(c.g2, x2), _mm256_maddubs_epi16(c.g3, x3));
    return _mm256_add_epi16(p01, p23);
}

static void avx2_i2_gemv(int rows, int cols, const uint8_t *W, const int8_t *x, int32_t *y) {
    const int nb = cols / BN_I2_BLOCK;
    const size_t rb = (size_t)cols / 4;
    const __m256i ones16 = _mm256_set1_epi16(1);
    const int32_t sx = sum_i8(x, cols);
    int r = 0;
    for (; r + ROWS_PER_STEP <= rows; r += ROWS_PER_STEP) {
        const uint8_t *w0 = W + (size_t)r * rb, *w1 = w0 + rb, *w2 = w1 + rb, *w3 = w2 + rb;
        __m256i a0 = _mm256_setzero_si256(), a1 = a0, a2 = a0, a3 = a0;
        for (int b0 = 0; b0 < nb; b0 += FLUSH_BLOCKS) {
            const int b1 = BN_MIN(nb, b0 + FLUSH_BLOCKS);
            __m256i s0 = _mm256_setzero_si256(), s1 = s0, s2 = s0, s3 = s0;
            for (int b = b0; b < b1; b++) {
                const int8_t *xb = x + (size_t)b * BN_I2_BLOCK;
                const __m256i x0 = _mm256_loadu_si256((const __m256i *)xb);
                const __m256i x1 = _mm256_loadu_si256((const __m256i *)(xb + 32));
                const __m256i x2 = _mm256_loadu_si256((const __m256i *)(xb + 64));
                const __m256i x3 = _mm256_loadu_si256((const __m256i *)(xb + 96));
                const size_t o = (size_t)b * BN_I2_BLOCK_BYTES;
                s0 = _mm256_add_epi16(s0, i2_dot16(i2_unpack(w0 + o), x0, x1, x2, x3));
                s1 = _mm256_add_epi16(s1, i2_dot16(i2_unpack(w1 + o), x0, x1, x2, x3));
                s2 = _mm256_add_epi16(s2, i2_dot16(i2_unpack(w2 + o), x0, x1, x2, x3));
                s3 = _mm256_add_epi16(s3, i2_dot16(i2_unpack(w3 + o), x0, x1, x2, x3));
            }
            a0 = _mm256_add_epi32(a0, _mm256_madd_epi16(s0, ones16));
            a1 = _mm256_add_epi32(a1, _mm256_madd_epi16(s1, ones16));
            a2 = _mm256_add_epi32(a2, _mm256_madd_epi16(s2, ones16));
            a3 = _mm256_add_epi32(a3, _mm256_madd_epi16(s3, ones16));
        }
        y[r + 0] = hsum_epi32(a0) - sx;
        y[r + 1] = hsum_epi32(a1) - sx;
        y[r + 2] = hsum_epi32(a2) - sx;
        y[r + 3] = hsum_epi32(a3) - sx;
    }
    for (; r < rows; r++) {
        const uint8_t *w = W + (size_t)r * rb;
        __m256i a = _mm256_setzero_si256();
        for (int b0 = 0; b0 < nb; b0 += FLUSH_BLOCKS) {
            const int b1 = BN_MIN(nb, b0 + FLUSH_BLOCKS);
            __m256i s = _mm256_setzero_si256();
            for (int b = b0; b < b1; b++) {
                const int8_t *xb = x + (size_t)b * BN_I2_BLOCK;
                s = _mm256_add_epi16(
                    s, i2_dot16(i2_unpack(w + (size_t)b * BN_I2_BLOCK_BYTES),
                                _mm256_loadu_si256((const __m256i *)xb),
                                _mm256_loadu_si256((const __m256i *)(xb + 32)),
                                _mm256_loadu_si256((const __m256i *)(xb + 64)),
                                _mm256_loadu_si256((const __m256i *)(xb + 96))));
            }
            a = _mm256_add_epi32(a, _mm256_madd_epi16(s, ones16));
        }
        y[r] = hsum_epi32(a) - sx;
    }
}

/* One row against NJ (1..GEMM_N) activation vectors: every block is unpacked
 * once and used NJ times. */
static inline __attribute__((always_inline)) void i2_gemm_tile(int NJ, int cols, const uint8_t *w,
                                                                const int8_t *X, const int32_t *sx,
                                                                int32_t *Y, int ldy) {
    const int nb = cols / BN_I2_BLOCK;
    const __m256i ones16 = _mm256_set1_epi16(1);
    __m256i acc[GEMM_N];
    for (int j = 0; j < NJ; j++) acc[j] = _mm256_setzero_si256();
    for (int b = 0; b < nb; b++) {
        const i2_codes c = i2_unpack(w + (size_t)b * BN_I2_BLOCK_BYTES);
#pragma GCC unroll 4
        for (int j = 0; j < NJ; j++) {
            const int8_t *xb = X + (size_t)j * cols + (size_t)b * BN_I2_BLOCK;
            __m256i p = i2_dot16(c, _mm256_loadu_si256((const __m256i *)xb),
                                 _mm256_loadu_si256((const __m256i *)(xb + 32)),
                                 _mm256_loadu_si256((const __m256i *)(xb + 64)),
                                 _mm256_loadu_si256((const __m256i *)(xb + 96)));
            acc[j] = _mm256_add_epi32(acc[j], _mm256_madd_epi16(p, ones16));
        }
    }
    for (int j = 0; j < NJ; j++) Y[(size_t)j * ldy] = hsum_epi32(acc[j]) - sx[j];
}

static void avx2_i2_gemm(int rows, int cols, const uint8_t *W, int n, const int8_t *X, int32_t *Y,
                         int ldy) {
    const size_t rb = (size_t)cols / 4;
    int32_t sxs[GEMM_CHUNK];
    /* Vectors in chunks of GEMM_CHUNK; inside a chunk each weight row is read
     * once (and stays in L1) while the chunk's vectors pass over it. */
    for (int c0 = 0; c0 < n; c0 += GEMM_CHUNK) {
        const int nc = BN_MIN(GEMM_CHUNK, n - c0);
        for (int j = 0; j < nc; j++) sxs[j] = sum_i8(X + (size_t)(c0 + j) * cols, cols);
        for (int r = 0; r < rows; r++) {
            const uint8_t *w = W + (size_t)r * rb;
            for (int j0 = c0; j0 < c0 + nc; j0 += GEMM_N) {
                const int nj = BN_MIN(GEMM_N, c0 + nc - j0);
                const int8_t *Xj = X + (size_t)j0 * cols;
                int32_t *Yj = Y + (size_t)j0 * ldy + r;
                const int32_t *sx = sxs + (j0 - c0);
                switch (nj) {
                case 4: i2_gemm_tile(4, cols, w, Xj, sx, Yj, ldy); break;
                case 3: i2_gemm_tile(3, cols, w, Xj, sx, Yj, ldy); break;
                case 2: i2_gemm_tile(2, cols, w, Xj, sx, Yj, ldy); break;
                default: i2_gemm_tile(1, cols, w, Xj, sx, Yj, ldy); break;
                }
            }
        }
    }
}

/* Q8_0: exact int8 x int8 products through sign extension to int16 and
 * pmaddwd (valid for the whole int8 range, -128 included). */
static inline __m256i q8_block_dot(const int8_t *w, __m256i xlo, __m256i xhi) {
    const __m256i wlo = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)w));
    const __m256i whi = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(w + 16)));
    return _mm256_add_epi32(_mm256_madd_epi16(wlo, xlo), _mm256_madd_epi16(whi, xhi));
}

static inline float fp16_scalar(uint16_t h) { return _cvtsh_ss(h); }

static void avx2_q8_0_gemv(int rows, int cols, const bn_block_q8_0 *W, const int8_t *xq,
                           const float *xd, float *y) {
    const int nb = cols / BN_Q8_BLOCK;
    int r = 0;
    for (; r + 4 <= rows; r += 4) {
        const bn_block_q8_0 *w0 = W + (size_t)r * nb, *w1 = w0 + nb, *w2 = w1 + nb, *w3 = w2 + nb;
        __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
        for (int b = 0; b < nb; b++) {
            const int8_t *xb = xq + (size_t)b * BN_Q8_BLOCK;
            const __m256i xlo = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)xb));
            const __m256i xhi = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(xb + 16)));
            const float d = xd[b];
            a0 = _mm256_fmadd_ps(_mm256_cvtepi32_ps(q8_block_dot(w0[b].qs, xlo, xhi)),
                                 _mm256_set1_ps(fp16_scalar(w0[b].d) * d), a0);
            a1 = _mm256_fmadd_ps(_mm256_cvtepi32_ps(q8_block_dot(w1[b].qs, xlo, xhi)),
                                 _mm256_set1_ps(fp16_scalar(w1[b].d) * d), a1);
            a2 = _mm256_fmadd_ps(_mm256_cvtepi32_ps(q8_block_dot(w2[b].qs, xlo, xhi)),
                                 _mm256_set1_ps(fp16_scalar(w2[b].d) * d), a2);
            a3 = _mm256_fmadd_ps(_mm256_cvtepi32_ps(q8_block_dot(w3[b].qs, xlo, xhi)),
                                 _mm256_set1_ps(fp16_scalar(w3[b].d) * d), a3);
        }
        y[r + 0] = hsum_ps(a0);
        y[r + 1] = hsum_ps(a1);
        y[r + 2] = hsum_ps(a2);
        y[r + 3] = hsum_ps(a3);
    }
    for (; r < rows; r++) {
        const bn_block_q8_0 *w = W + (size_t)r * nb;
        __m256 a = _mm256_setzero_ps();
        for (int b = 0; b < nb; b++) {
            const int8_t *xb = xq + (size_t)b * BN_Q8_BLOCK;
            const __m256i xlo = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)xb));
            const __m256i xhi = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(xb + 16)));
            a = _mm256_fmadd_ps(_mm256_cvtepi32_ps(q8_block_dot(w[b].qs, xlo, xhi)),
                                _mm256_set1_ps(fp16_scalar(w[b].d) * xd[b]), a);
        }
        y[r] = hsum_ps(a);
    }
}

static void avx2_f32_gemv(int rows, int cols, const float *W, const float *x, float *y) {
    const int c8 = cols & ~7;
    int r = 0;
    for (; r + 4 <= rows; r += 4) {
        const float *w0 = W + (size_t)r * cols, *w1 = w0 + cols, *w2 = w1 + cols, *w3 = w2 + cols;
        __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
        for (int c = 0; c < c8; c += 8) {
            const __m256 xv = _mm256_loadu_ps(x + c);
            a0 = _mm256_fmadd_ps(_mm256_loadu_ps(w0 + c), xv, a0);
            a1 = _mm256_fmadd_ps(_mm256_loadu_ps(w1 + c), xv, a1);
            a2 = _mm256_fmadd_ps(_mm256_loadu_ps(w2 + c), xv, a2);
            a3 = _mm256_fmadd_ps(_mm256_loadu_ps(w3 + c), xv, a3);
        }
        float s0 = hsum_ps(a0), s1 = hsum_ps(a1), s2 = hsum_ps(a2), s3 = hsum_ps(a3);
        for (int c = c8; c < cols; c++) {
            s0 += w0[c] * x[c];
            s1 += w1[c] * x[c];
            s2 += w2[c] * x[c];
            s3 += w3[c] * x[c];
        }
        y[r] = s0, y[r + 1] = s1, y[r + 2] = s2, y[r + 3] = s3;
    }
    for (; r < rows; r++) {
        const float *w = W + (size_t)r * cols;
        __m256 a = _mm256_setzero_ps(), b = a;
        int c = 0;
        for (; c + 16 <= c8; c += 16) {
            a = _mm256_fmadd_ps(_mm256_loadu_ps(w + c), _mm256_loadu_ps(x + c), a);
            b = _mm256_fmadd_ps(_mm256_loadu_ps(w + c + 8), _mm256_loadu_ps(x + c + 8), b);
        }
        for (; c < c8; c += 8) a = _mm256_fmadd_ps(_mm256_loadu_ps(w + c), _mm256_loadu_ps(x + c), a);
        float s = hsum_ps(_mm256_add_ps(a, b));
        for (; c < cols; c++) s += w[c] * x[c];
        y[r] = s;
    }
}

static inline __m256 load_f16x8(const uint16_t *p) {
    return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)p));
}

static void avx2_f16_gemv(int rows, int cols, const uint16_t *W, const float *x, float *y) {
    const int c8 = cols & ~7;
    int r = 0;
    for (; r + 4 <= rows; r += 4) {
        const uint16_t *w0 = W + (size_t)r * cols, *w1 = w0 + cols, *w2 = w1 + cols, *w3 = w2 + cols;
        __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
        for (int c = 0; c < c8; c += 8) {
            const __m256 xv = _mm256_loadu_ps(x + c);
            a0 = _mm256_fmadd_ps(load_f16x8(w0 + c), xv, a0);
            a1 = _mm256_fmadd_ps(load_f16x8(w1 + c), xv, a1);
            a2 = _mm256_fmadd_ps(load_f16x8(w2 + c), xv, a2);
            a3 = _mm256_fmadd_ps(load_f16x8(w3 + c), xv, a3);
        }
        float s0 = hsum_ps(a0), s1 = hsum_ps(a1), s2 = hsum_ps(a2), s3 = hsum_ps(a3);
        for (int c = c8; c < cols; c++) {
            s0 += fp16_scalar(w0[c]) * x[c];
            s1 += fp16_scalar(w1[c]) * x[c];
            s2 += fp16_scalar(w2[c]) * x[c];
            s3 += fp16_scalar(w3[c]) * x[c];
        }
        y[r] = s0, y[r + 1] = s1, y[r + 2] = s2, y[r + 3] = s3;
    }
    for (; r < rows; r++) {
        const uint16_t *w = W + (size_t)r * cols;
        __m256 a = _mm256_setzero_ps();
        for (int c = 0; c < c8; c += 8) a = _mm256_fmadd_ps(load_f16x8(w + c), _mm256_loadu_ps(x + c), a);
        float s = hsum_ps(a);
        for (int c = c8; c < cols; c++) s += fp16_scalar(w[c]) * x[c];
        y[r] = s;
    }
}

/* XNOR-popcount with the scalar POPCNT instruction, four independent chains. */
__attribute__((target("popcnt"))) static void avx2_b1_gemv(int rows, int cols, const uint8_t *W,
                                                           const uint8_t *xbits, int32_t *y) {
    const size_t row_bytes = (size_t)cols / 8;
    for (int r = 0; r < rows; r++) {
        const uint8_t *w = W + (size_t)r * row_bytes;
        uint64_t c0 = 0, c1 = 0, c2 = 0, c3 = 0;
        for (size_t i = 0; i < row_bytes; i += 32) { /* cols % 512 == 0: row_bytes % 64 == 0 */
            uint64_t w4[4], x4[4];
            memcpy(w4, w + i, 32);
            memcpy(x4, xbits + i, 32);
            c0 += (uint64_t)_mm_popcnt_u64(w4[0] ^ x4[0]);
            c1 += (uint64_t)_mm_popcnt_u64(w4[1] ^ x4[1]);
            c2 += (uint64_t)_mm_popcnt_u64(w4[2] ^ x4[2]);
            c3 += (uint64_t)_mm_popcnt_u64(w4[3] ^ x4[3]);
        }
        y[r] = cols - 2 * (int32_t)(c0 + c1 + c2 + c3);
    }
}

const bn_kernels bn_kernels_avx2 = {
    .isa = "avx2",
    .i2_gemv = avx2_i2_gemv,
    .i2_gemm = avx2_i2_gemm,
    .q8_0_gemv = avx2_q8_0_gemv,
    .f32_gemv = avx2_f32_gemv,
    .f16_gemv = avx2_f16_gemv,
    .b1_gemv = avx2_b1_gemv,
};
