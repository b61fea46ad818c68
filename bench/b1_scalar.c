/* b1_scalar.c - the 1-bit GEMV reference and the choice of variant (bench_kernels.h). */
#include "bench_kernels.h"

#include <string.h>

/* Bit c of a row is bit (c % 8) of byte c / 8; 1 = +1, 0 = -1. The product of
 * two +-1 values is +1 where the bits agree, so the dot product is
 * cols - 2 * (number of disagreeing bits). */
void bn_b1_gemv_scalar(int rows, int cols, const uint8_t *W, const uint8_t *xbits, int32_t *y) {
    const size_t row_bytes = (size_t)cols / 8;
    for (int r = 0; r < rows; r++) {
        const uint8_t *row = W + (size_t)r * row_bytes;
        int32_t sum = 0;
        for (int c = 0; c < cols; c++) {
            int w = (row[c / 8] >> (c % 8)) & 1;
            int xv = (xbits[c / 8] >> (c % 8)) & 1;
            sum += (w == xv) ? 1 : -1;
        }
        y[r] = sum;
    }
}


#if defined(__x86_64__)
void bn_b1_gemv_avx2(int rows, int cols, const uint8_t *W, const uint8_t *xbits, int32_t *y);
void bn_b1_gemv_avx512(int rows, int cols, const uint8_t *W, const uint8_t *xbits, int32_t *y);
void bn_b1_gemv_avx512_lut(int rows, int cols, const uint8_t *W, const uint8_t *xbits, int32_t *y);
#elif defined(__aarch64__)
void bn_b1_gemv_neon(int rows, int cols, const uint8_t *W, const uint8_t *xbits, int32_t *y);
#endif

bn_b1_gemv_fn bn_b1_gemv_for(const bn_kernels *k) {
#if defined(__x86_64__)
    if (!strncmp(k->isa, "avx512", 6))
        return __builtin_cpu_supports("avx512vpopcntdq") ? bn_b1_gemv_avx512 : bn_b1_gemv_avx512_lut;
    if (!strncmp(k->isa, "avx2", 4)) return bn_b1_gemv_avx2;
#elif defined(__aarch64__)
    if (!strncmp(k->isa, "neon", 4)) return bn_b1_gemv_neon;
#endif
    return bn_b1_gemv_scalar;
}
