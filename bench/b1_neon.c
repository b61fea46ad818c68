/* b1_neon.c - 1-bit GEMV with NEON (bench_kernels.h). */
#if defined(__aarch64__)
#include <arm_neon.h>

#include "bench_kernels.h"

void bn_b1_gemv_neon(int rows, int cols, const uint8_t *W, const uint8_t *xbits, int32_t *y) {
    const size_t rb = (size_t)cols / 8; /* multiple of 64 */
    for (int r = 0; r < rows; r++) {
        const uint8_t *w = W + (size_t)r * rb;
        uint32x4_t acc = vdupq_n_u32(0);
        for (size_t i = 0; i < rb; i += 64) {
            /* per-byte counts (<= 8) of four vectors: <= 32 per byte lane */
            uint8x16_t c = vcntq_u8(veorq_u8(vld1q_u8(w + i), vld1q_u8(xbits + i)));
            c = vaddq_u8(c, vcntq_u8(veorq_u8(vld1q_u8(w + i + 16), vld1q_u8(xbits + i + 16))));
            c = vaddq_u8(c, vcntq_u8(veorq_u8(vld1q_u8(w + i + 32), vld1q_u8(xbits + i + 32))));
            c = vaddq_u8(c, vcntq_u8(veorq_u8(vld1q_u8(w + i + 48), vld1q_u8(xbits + i + 48))));
            acc = vpadalq_u16(acc, vpaddlq_u8(c));
        }
        y[r] = cols - 2 * (int32_t)vaddvq_u32(acc);
    }
}

#endif
