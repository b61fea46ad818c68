/* b1.h - the 1-bit (+-1 weights, +-1 activations) XNOR-popcount GEMV, for
 * bench --kernels' binary-vs-ternary comparison only: no model uses it, so it
 * lives with the benchmark, not in the runtime's kernel tables.
 *
 * Bit c of a row is bit (c % 8) of byte c / 8, 1 = +1, 0 = -1; cols % 512 == 0,
 * each row is cols/8 bytes; y[r] = cols - 2 * popcount(W_r XOR x).
 * One file per ISA (b1_avx2.c, b1_avx512.c, b1_neon.c), compiled with its own
 * flags like the runtime's kernels. */
#ifndef BN_BENCH_B1_H
#define BN_BENCH_B1_H

#include <stdint.h>

#include "kernels/kernels.h"

typedef void (*bn_b1_gemv_fn)(int rows, int cols, const uint8_t *W, const uint8_t *xbits, int32_t *y);

void bn_b1_gemv_scalar(int rows, int cols, const uint8_t *W, const uint8_t *xbits, int32_t *y);
/* The variant for a runtime kernel table's ISA (checked for the CPU by dispatch.c);
 * AVX-512 uses VPOPCNTQ when the CPU has AVX512_VPOPCNTDQ, a byte lookup otherwise. */
bn_b1_gemv_fn bn_b1_gemv_for(const bn_kernels *k);

#endif
