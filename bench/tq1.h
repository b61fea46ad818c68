/* tq1.h - a GEMV straight on llama.cpp's TQ1_0 blocks (5 trits per byte,
 * 1.69 bits per weight), for bench --kernels' question "would a 1.6-bit
 * layout decode fast enough to beat the 2-bit one?" (issue 17). No model uses
 * it: the runtime repacks TQ1_0 to its 2-bit I2 layout at load, because on the
 * machines measured (bench/README.md) this decode runs at a third of the I2
 * kernel's speed and far below the read bandwidth. It lives with the benchmark
 * until a machine shows it faster.
 *
 * W is `rows` rows of cols/256 blocks of 54 bytes (kernels.h, docs/kernels.md:
 * qs[48], qh[4], fp16 d); the integer result ignores d:
 * y[r] = sum_c (digit_c - 1) * x[c], the digit read as llama.cpp reads it,
 * ((uint8_t)(byte * 3^n) * 3) >> 8, which every byte value defines. */
#ifndef BN_BENCH_TQ1_H
#define BN_BENCH_TQ1_H

#include <stdint.h>

#include "kernels/kernels.h"

typedef void (*bn_tq1_gemv_fn)(int rows, int cols, const uint8_t *W, const int8_t *x, int32_t *y);

void bn_tq1_gemv_scalar(int rows, int cols, const uint8_t *W, const int8_t *x, int32_t *y);
/* The AVX2 version for the avx2 and avx512 tables, else the scalar one. */
bn_tq1_gemv_fn bn_tq1_gemv_for(const bn_kernels *k);

#endif
