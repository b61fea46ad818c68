/* tq1_avx2.c - the TQ1_0 GEMV (bench_kernels.h) with AVX2, decoding as llama.cpp's
 * ggml_vec_dot_tq1_0_q8_K does: byte * 3^n by shifts and adds (no 8-bit
 * multiply in AVX2), then the top digit (3m) >> 8 by two averages and a shift;
 * pmaddubsw with the activations, the -1 applied once per row as for I2. Four
 * rows from the four quarters of the range share each activation load (the
 * I2 GEMV's streaming order). Compiled with -mavx2. */
#if defined(__x86_64__)
#include <immintrin.h>
#include <string.h>

#include "bench_kernels.h"

static inline __m256i mul3(__m256i v) { return _mm256_add_epi8(v, _mm256_add_epi8(v, v)); }
static inline __m256i mul9(__m256i v) {
    return _mm256_add_epi8(_mm256_and_si256(_mm256_slli_epi16(v, 3), _mm256_set1_epi8(-8)), v);
}
/* (3m) >> 8 per byte: m - 1 (saturating) then avg(t, avg(t, 0)) ~ 3t/4, top 2 bits */
static inline __m256i top_digit(__m256i m) {
    const __m256i t = _mm256_subs_epu8(m, _mm256_set1_epi8(1));
    const __m256i a = _mm256_avg_epu8(t, _mm256_avg_epu8(t, _mm256_setzero_si256()));
    return _mm256_and_si256(_mm256_srli_epi16(a, 6), _mm256_set1_epi8(3));
}
static inline __m256i dot(__m256i m, const int8_t *x) {
    return _mm256_maddubs_epi16(top_digit(m), _mm256_loadu_si256((const __m256i *)x));
}

/* int32 lanes of sum digit * x over one 256-weight block. Lane bound: eight
 * pmaddubsw vectors of |lane| <= 512 sum to <= 4096 in int16. */
static inline __m256i block_dot(const uint8_t *b, const int8_t *x) {
    const __m256i q0 = _mm256_loadu_si256((const __m256i *)b), q9 = mul9(q0);
    __m256i s = dot(q0, x);
    s = _mm256_add_epi16(s, dot(mul3(q0), x + 32));
    s = _mm256_add_epi16(s, dot(q9, x + 64));
    s = _mm256_add_epi16(s, dot(mul3(q9), x + 96));
    s = _mm256_add_epi16(s, dot(mul9(q9), x + 128));
    /* qs[32..47] in both halves: digits (0 | 1), (2 | 3), then (4 | the qh digits) */
    const __m256i p = _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)(b + 32))), p9 = mul9(p);
    int32_t h;
    memcpy(&h, b + 48, 4);
    const __m256i qh = _mm256_set1_epi32(h), qh9 = mul9(qh); /* qh byte k: digit k/4 for weight 240 + k */
    const __m256i qhm = _mm256_blend_epi32(_mm256_blend_epi32(qh, mul3(qh), 0x22), _mm256_blend_epi32(qh9, mul3(qh9), 0x88), 0xCC);
    s = _mm256_add_epi16(s, dot(_mm256_blend_epi32(p, mul3(p), 0xF0), x + 160));
    s = _mm256_add_epi16(s, dot(_mm256_blend_epi32(p9, mul3(p9), 0xF0), x + 192));
    s = _mm256_add_epi16(s, dot(_mm256_blend_epi32(mul9(p9), qhm, 0xF0), x + 224));
    return _mm256_madd_epi16(s, _mm256_set1_epi16(1));
}

static inline int32_t hsum(__m256i v) {
    __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
    s = _mm_add_epi32(s, _mm_unpackhi_epi64(s, s));
    return _mm_cvtsi128_si32(_mm_add_epi32(s, _mm_shuffle_epi32(s, 1)));
}

static int32_t row_dot(const uint8_t *w, const int8_t *x, int nb) {
    __m256i a = _mm256_setzero_si256();
    for (int b = 0; b < nb; b++) a = _mm256_add_epi32(a, block_dot(w + (size_t)b * BN_TQ1_0_BYTES, x + (size_t)b * BN_QK_K));
    return hsum(a);
}

void bn_tq1_gemv_avx2(int rows, int cols, const uint8_t *W, const int8_t *x, int32_t *y) {
    const int nb = cols / BN_QK_K, q = rows / 4;
    const size_t rb = (size_t)nb * BN_TQ1_0_BYTES;
    int32_t sx = 0;
    for (int c = 0; c < cols; c++) sx += x[c];
    for (int r = 0; r < q; r++) {
        const uint8_t *w0 = W + (size_t)r * rb, *w1 = w0 + (size_t)q * rb, *w2 = w1 + (size_t)q * rb, *w3 = w2 + (size_t)q * rb;
        __m256i a0 = _mm256_setzero_si256(), a1 = a0, a2 = a0, a3 = a0;
        for (int b = 0; b < nb; b++) {
            const size_t o = (size_t)b * BN_TQ1_0_BYTES;
            const int8_t *xb = x + (size_t)b * BN_QK_K;
            a0 = _mm256_add_epi32(a0, block_dot(w0 + o, xb));
            a1 = _mm256_add_epi32(a1, block_dot(w1 + o, xb));
            a2 = _mm256_add_epi32(a2, block_dot(w2 + o, xb));
            a3 = _mm256_add_epi32(a3, block_dot(w3 + o, xb));
        }
        y[r] = hsum(a0) - sx, y[r + q] = hsum(a1) - sx, y[r + 2 * q] = hsum(a2) - sx, y[r + 3 * q] = hsum(a3) - sx;
    }
    for (int r = 4 * q; r < rows; r++) y[r] = row_dot(W + (size_t)r * rb, x, nb) - sx;
}

#endif
