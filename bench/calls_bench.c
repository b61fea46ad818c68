/*
 * calls_bench.c - build/bench --calls: one kernel called N times on fixed
 * inputs, nothing else, so that an instruction counter around the process
 * (bench/insn_count.sh: qemu's TCG plugin, or perf stat) gives the kernel's
 * instructions per call as I(2N) - I(N) over N. No timing.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"
#include "common.h"
#include "kernels/kernels.h"

static uint64_t g_rng = 0x9E3779B97F4A7C15ull;
static uint32_t next_u32(void) { return (uint32_t)(bn_xorshift64(&g_rng) >> 32); }

int bn_bench_calls(int argc, char **argv) {
    const char *kernel = NULL, *isa = "scalar";
    int rows = 256, cols = 2560, calls = 10;
    for (int i = 0; i < argc; i++) {
        if (!strcmp(argv[i], "--calls") && i + 1 < argc) kernel = argv[++i];
        else if (!strcmp(argv[i], "--isa") && i + 1 < argc) isa = argv[++i];
        else if (!strcmp(argv[i], "--shape") && i + 1 < argc) {
            if (sscanf(argv[++i], "%dx%d", &rows, &cols) != 2) rows = 0;
        } else if (!strcmp(argv[i], "-n") && i + 1 < argc) calls = atoi(argv[++i]);
    }
    const bn_kernels *k = bn_kernels_by_name(isa);
    const int gemm = kernel && !strcmp(kernel, "i2_gemm"), n_vec = gemm ? 8 : 1;
    if (!k || !kernel || (strcmp(kernel, "i2_gemv") && !gemm && strcmp(kernel, "q8_0_gemv")) || rows < 1 || cols < 256 ||
        cols % 256 || calls < 1) {
        fprintf(stderr, "usage: bench --calls i2_gemv|i2_gemm|q8_0_gemv [--isa NAME] [--shape ROWSxCOLS] [-n CALLS]\n"
                        "(cols a multiple of 256; the ISA must run here: %s)\n", k ? "yes" : "no");
        return 2;
    }
    const size_t wbytes = !strcmp(kernel, "q8_0_gemv") ? (size_t)rows * (cols / BN_Q8_BLOCK) * sizeof(bn_block_q8_0)
                                                      : (size_t)rows * cols / 4;
    uint8_t *w = malloc(wbytes);
    int8_t *x = malloc((size_t)n_vec * cols);
    float *xd = malloc((size_t)(cols / BN_Q8_BLOCK) * sizeof(float)), *yf = malloc((size_t)rows * sizeof(float));
    int32_t *y = malloc((size_t)n_vec * rows * sizeof(int32_t));
    if (!w || !x || !xd || !yf || !y) {
        fprintf(stderr, "bench: out of memory\n");
        return 2;
    }
    for (size_t i = 0; i < wbytes; i++) {
        uint8_t b = 0;
        for (int j = 0; j < 4; j++) b = (uint8_t)(b << 2 | next_u32() % 3); /* I2 codes 0..2 (q8: any byte) */
        w[i] = b;
    }
    if (!strcmp(kernel, "q8_0_gemv"))
        for (int r = 0; r < rows * (cols / BN_Q8_BLOCK); r++) ((bn_block_q8_0 *)w)[r].d = 0x2e66; /* fp16 0.1 */
    for (int i = 0; i < n_vec * cols; i++) x[i] = (int8_t)(next_u32() % 255 - 127);
    for (int i = 0; i < cols / BN_Q8_BLOCK; i++) xd[i] = 0.01f;
    int64_t check = 0;
    for (int c = 0; c < calls; c++) {
        if (!strcmp(kernel, "i2_gemv")) k->i2_gemv(rows, cols, w, x, y);
        else if (gemm) k->i2_gemm(rows, cols, w, n_vec, x, y, rows);
        else k->q8_0_gemv(rows, cols, (const bn_block_q8_0 *)w, x, xd, yf);
        check += gemm || !strcmp(kernel, "i2_gemv") ? y[c % rows] : (int64_t)yf[c % rows];
    }
    printf("%s %s %dx%d x%d: %d calls, check %lld\n", kernel, k->isa, rows, cols, n_vec, calls, (long long)check);
    free(w);
    free(x);
    free(xd);
    free(yf);
    free(y);
    return 0;
}
