/* tq1_scalar.c - the TQ1_0 GEMV reference and the choice of variant (bench_kernels.h). */
#include "bench_kernels.h"

#include <string.h>

static int digit(uint8_t byte, int n) {
    static const uint8_t pow3[5] = {1, 3, 9, 27, 81};
    return (int)(((unsigned)(uint8_t)(byte * pow3[n]) * 3) >> 8);
}

void bn_tq1_gemv_scalar(int rows, int cols, const uint8_t *W, const int8_t *x, int32_t *y) {
    const int nb = cols / BN_QK_K;
    for (int r = 0; r < rows; r++) {
        int32_t sum = 0;
        for (int b = 0; b < nb; b++) {
            const uint8_t *blk = W + ((size_t)r * nb + b) * BN_TQ1_0_BYTES;
            const int8_t *xb = x + (size_t)b * BN_QK_K;
            for (int n = 0; n < 5; n++)
                for (int m = 0; m < 32; m++) sum += (digit(blk[m], n) - 1) * xb[m + 32 * n];
            for (int n = 0; n < 5; n++)
                for (int m = 0; m < 16; m++) sum += (digit(blk[32 + m], n) - 1) * xb[160 + m + 16 * n];
            for (int n = 0; n < 4; n++)
                for (int m = 0; m < 4; m++) sum += (digit(blk[48 + m], n) - 1) * xb[240 + m + 4 * n];
        }
        y[r] = sum;
    }
}

#if defined(__x86_64__)
void bn_tq1_gemv_avx2(int rows, int cols, const uint8_t *W, const int8_t *x, int32_t *y);
#endif

bn_tq1_gemv_fn bn_tq1_gemv_for(const bn_kernels *k) {
#if defined(__x86_64__)
    if (!strncmp(k->isa, "avx", 3)) return bn_tq1_gemv_avx2;
#endif
    (void)k;
    return bn_tq1_gemv_scalar;
}
