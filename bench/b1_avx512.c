/* b1_avx512.c - 1-bit GEMV with AVX-512 (bench_kernels.h); compiled with -mavx512f
 * -mavx512bw -mavx512vpopcntdq, called only after the CPU was checked. */
#if defined(__x86_64__)
#include <immintrin.h>

#include "bench_kernels.h"

/* Bits set in each 64-bit lane of d: VPOPCNTQ where the CPU has
 * AVX512_VPOPCNTDQ, else (e.g. Cascade Lake) a nibble lookup with VPSHUFB,
 * bytes summed with VPSADBW. */
static inline __attribute__((always_inline)) __m512i popcount64(__m512i d, int vpopcnt) {
    if (vpopcnt) return _mm512_popcnt_epi64(d);
    const __m512i lut = _mm512_broadcast_i32x4(_mm_setr_epi8(0, 1, 1, 2, 1, 2, 2, 3, 1, 2, 2, 3, 2, 3, 3, 4));
    const __m512i m4 = _mm512_set1_epi8(0x0f);
    const __m512i cnt = _mm512_add_epi8(_mm512_shuffle_epi8(lut, _mm512_and_si512(d, m4)),
                                        _mm512_shuffle_epi8(lut, _mm512_and_si512(_mm512_srli_epi16(d, 4), m4)));
    return _mm512_sad_epu8(cnt, _mm512_setzero_si512());
}

/* y[r] = cols - 2 popcount(W[r] ^ x): the +-1 dot product of sign bits. */
static inline __attribute__((always_inline)) void b1_gemv(int rows, int cols, const uint8_t *W, const uint8_t *xbits,
                                                          int32_t *y, int vpopcnt) {
    const size_t rb = (size_t)cols / 8; /* multiple of 64 */
    for (int r = 0; r < rows; r++) {
        const uint8_t *w = W + (size_t)r * rb;
        __m512i acc = _mm512_setzero_si512();
        for (size_t i = 0; i < rb; i += 64) {
            const __m512i d = _mm512_xor_si512(_mm512_loadu_si512((const void *)(w + i)),
                                               _mm512_loadu_si512((const void *)(xbits + i)));
            acc = _mm512_add_epi64(acc, popcount64(d, vpopcnt));
        }
        y[r] = cols - 2 * (int32_t)_mm512_reduce_add_epi64(acc);
    }
}

void bn_b1_gemv_avx512(int rows, int cols, const uint8_t *W, const uint8_t *xbits, int32_t *y) {
    b1_gemv(rows, cols, W, xbits, y, 1);
}
void bn_b1_gemv_avx512_lut(int rows, int cols, const uint8_t *W, const uint8_t *xbits, int32_t *y) {
    b1_gemv(rows, cols, W, xbits, y, 0);
}

#endif
