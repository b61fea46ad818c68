/* b1_avx2.c - 1-bit GEMV with POPCNT (bench_kernels.h); compiled with -mavx2 -mpopcnt. */
#if defined(__x86_64__)
#include <immintrin.h>
#include <string.h>

#include "bench_kernels.h"

/* XNOR-popcount with the scalar POPCNT instruction, four independent chains;
 * each row is one sequential stream. */
void bn_b1_gemv_avx2(int rows, int cols, const uint8_t *W, const uint8_t *xbits, int32_t *y) {
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

#endif
