/* bench_kernels.h - kernels that only bench --kernels runs, to answer a
 * question about a layout no model uses; they live with the benchmark, not in
 * the runtime's kernel tables. One file per ISA, compiled with its own flags
 * like the runtime's kernels; each is tested against its scalar reference
 * (tests/test_kernels.c).
 *
 * 1-bit (+-1 weights, +-1 activations), XNOR-popcount: how much faster than
 * ternary would binary weights be? Bit c of a row is bit (c % 8) of byte c / 8,
 * 1 = +1, 0 = -1; cols % 512 == 0, each row is cols/8 bytes;
 * y[r] = cols - 2 * popcount(W_r XOR x). (b1_*.c)
 *
 * TQ1_0 in place (5 trits per byte, 1.69 bits per weight): would a 1.6-bit
 * layout decode fast enough to beat the 2-bit one (issue 17)? The runtime
 * repacks TQ1_0 to I2 at load, because on the machines measured
 * (bench/README.md, session 9) this decode runs at a third of the I2 kernel's
 * speed. W is `rows` rows of cols/256 blocks of 54 bytes (qs[48], qh[4], fp16
 * d; docs/kernels.md); the integer result ignores d:
 * y[r] = sum_c (digit_c - 1) * x[c], the digit read as llama.cpp reads it,
 * ((uint8_t)(byte * 3^n) * 3) >> 8, which every byte value defines. (tq1_*.c) */
#ifndef BN_BENCH_KERNELS_H
#define BN_BENCH_KERNELS_H

#include <stdint.h>

#include "kernels/kernels.h"

typedef void (*bn_b1_gemv_fn)(int rows, int cols, const uint8_t *W, const uint8_t *xbits, int32_t *y);
void bn_b1_gemv_scalar(int rows, int cols, const uint8_t *W, const uint8_t *xbits, int32_t *y);
/* The variant for a runtime kernel table's ISA (checked for the CPU by dispatch.c);
 * AVX-512 uses VPOPCNTQ when the CPU has AVX512_VPOPCNTDQ, a byte lookup otherwise. */
bn_b1_gemv_fn bn_b1_gemv_for(const bn_kernels *k);

typedef void (*bn_tq1_gemv_fn)(int rows, int cols, const uint8_t *W, const int8_t *x, int32_t *y);
void bn_tq1_gemv_scalar(int rows, int cols, const uint8_t *W, const int8_t *x, int32_t *y);
/* The AVX2 version for the avx2 and avx512 tables, else the scalar one. */
bn_tq1_gemv_fn bn_tq1_gemv_for(const bn_kernels *k);

#endif
