/* test_kernels.c - every kernel table usable on this machine against the
 * scalar reference (itself checked against a naive unpack-and-multiply), the
 * packing helpers (round trips + one worked example per format, the same as
 * in docs/kernels.md), Q8_0 quantisation and dispatch. */
#include "bench_kernels.h"
#include <float.h>
#include <stdint.h>

#include "common.h"
#include "kernels/kernels.h"
#include "test.h"

/* dispatch.c: resolves a BITNET_ISA-style request without the cache */
const bn_kernels *bn_kernels_resolve(const char *request);
#if defined(__x86_64__)
void bn_b1_gemv_avx512_lut(int rows, int cols, const uint8_t *W, const uint8_t *xbits, int32_t *y); /* bench/b1_avx512.c */
#endif

/* ---- helpers ----------------------------------------------------------- */

static uint64_t g_rng = 0x9E3779B97F4A7C15ull;
static void rng_seed(uint64_t s) { g_rng = s * 0x9E3779B97F4A7C15ull + 1; }
static uint32_t rnd(void) { /* splitmix64 */
    uint64_t z = (g_rng += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return (uint32_t)((z ^ (z >> 31)) >> 32);
}
static float rndf(void) { return (float)rnd() / 4294967296.0f * 2.0f - 1.0f; } /* [-1, 1) */

/* Tables to test: everything bn_kernels_list offers on this CPU. */
static int tables(const bn_kernels **t, int cap) { return bn_kernels_list(t, cap); }

/* Fills `rows` I2 rows: mode 0 random codes 0..2, 1 all code 1 (zero weights)
 * on every third row, 2 random codes 0..3 (3 is "+2" for every kernel),
 * 3 all code 0 (-1), 4 all code 2 (+1). */
static void fill_i2(uint8_t *W, int rows, int cols, int mode) {
    const size_t rb = (size_t)cols / 4;
    for (int r = 0; r < rows; r++) {
        for (size_t i = 0; i < rb; i++) {
            unsigned b = 0;
            for (int k = 0; k < 4; k++) {
                unsigned code;
                switch (mode) {
                case 1: code = (r % 3 == 0) ? 1 : rnd() % 3; break;
                case 2: code = rnd() % 4; break;
                case 3: code = 0; break;
                case 4: code = 2; break;
                default: code = rnd() % 3; break;
                }
                b |= code << (2 * k);
            }
            W[r * rb + i] = (uint8_t)b;
        }
    }
}

/* x mode: 0 random, 1 all -128, 2 all 127, 3 random in {-128, 127} */
static void fill_x(int8_t *x, int n, int mode) {
    for (int i = 0; i < n; i++) {
        switch (mode) {
        case 1: x[i] = -128; break;
        case 2: x[i] = 127; break;
        case 3: x[i] = (rnd() & 1) ? 127 : -128; break;
        default: x[i] = (int8_t)(rnd() & 0xff); break;
        }
    }
}

static const int k_rows[] = {1, 2, 3, 4, 5, 7, 8, 9, 16, 33, 129};
static const int k_cols[] = {128, 256, 384, 640, 2560, 6912};
#define N_ROWS ((int)(sizeof k_rows / sizeof k_rows[0]))
#define N_COLS ((int)(sizeof k_cols / sizeof k_cols[0]))

/* ---- dispatch ----------------------------------------------------------- */

TEST(kernels_dispatch) {
    const bn_kernels *t[8];
    int n = bn_kernels_list(t, 8);
    CHECK(n >= 1);
    CHECK_STR(t[0]->isa, "scalar");
    CHECK(bn_kernels_by_name("scalar") == &bn_kernels_scalar);
    CHECK(bn_kernels_by_name("no-such-isa") == NULL);
    CHECK(bn_kernels_by_name(NULL) == NULL);
    for (int i = 0; i < n; i++) {
        const bn_kernels *k = t[i];
        CHECK(k->i2_gemv && k->i2_gemm && k->q8_0_gemv && k->quantize_i8 && k->q4_k_gemv && k->q6_k_gemv && k->f32_gemv && k->f16_gemv && k->kv);
        /* every listed table is reachable by a name */
        CHECK(bn_kernels_by_name(k->isa) != NULL);
        CHECK(bn_kernels_resolve(k->isa) != NULL);
    }
    /* best = last listed; empty request = best; get() is cached and agrees
     * with whatever BITNET_ISA the test process was started with */
    CHECK(bn_kernels_resolve(NULL) == t[n - 1]);
    CHECK(bn_kernels_resolve("") == t[n - 1]);
    CHECK(bn_kernels_resolve("scalar") == &bn_kernels_scalar);
    CHECK(bn_kernels_get() == bn_kernels_resolve(getenv("BITNET_ISA")));
    CHECK(bn_kernels_get() == bn_kernels_get());
    /* an unsupported request falls back to the best table (with a warning) */
    fprintf(stderr, "    (expected warning follows)\n");
    CHECK(bn_kernels_resolve("no-such-isa") == t[n - 1]);
#if defined(__x86_64__)
    if (bn_kernels_by_name("avx512")) CHECK(bn_kernels_by_name("avx2") != NULL);
    CHECK(bn_kernels_by_name("neon") == NULL);
    CHECK(bn_kernels_by_name("avx512vnni") == bn_kernels_by_name("avx512"));
#elif defined(__aarch64__)
    CHECK(bn_kernels_by_name("neon") != NULL);
    CHECK(bn_kernels_by_name("avx2") == NULL);
    if (bn_kernels_by_name("neon-dotprod")) CHECK(bn_kernels_by_name("neon") == bn_kernels_by_name("neon-dotprod"));
#endif
    printf("    tables:");
    for (int i = 0; i < n; i++) printf(" %s", t[i]->isa);
    printf("; bn_kernels_get() = %s\n", bn_kernels_get()->isa);
}

/* ---- I2 GEMV / GEMM ----------------------------------------------------- */

/* The scalar reference against a naive unpack + multiply. */
TEST(kernels_i2_scalar_reference) {
    rng_seed(1);
    const int rows = 9, cols = 384;
    uint8_t *W = malloc((size_t)rows * cols / 4);
    int8_t *x = malloc(cols), *t = malloc(cols);
    int32_t y[9];
    for (int mode = 0; mode < 5; mode++) {
        fill_i2(W, rows, cols, mode);
        fill_x(x, cols, mode % 4);
        bn_kernels_scalar.i2_gemv(rows, cols, W, x, y);
        for (int r = 0; r < rows; r++) {
            const uint8_t *row = W + (size_t)r * cols / 4;
            int32_t ref = 0;
            for (int c = 0; c < cols; c++) {
                int code = (row[(c / 128) * 32 + c % 32] >> (6 - 2 * ((c % 128) / 32))) & 3;
                ref += (code - 1) * x[c];
            }
            CHECK_EQ_INT(y[r], ref);
            if (mode != 2) { /* codes 0..2: unpack agrees */
                bn_i2_unpack_row(row, cols, t);
                int32_t ref2 = 0;
                for (int c = 0; c < cols; c++) ref2 += t[c] * x[c];
                CHECK_EQ_INT(y[r], ref2);
            }
        }
    }
    free(W), free(x), free(t);
}

TEST(kernels_i2_gemv_vs_scalar) {
    const bn_kernels *t[8];
    int nt = tables(t, 8);
    rng_seed(2);
    int cases = 0;
    for (int ri = 0; ri < N_ROWS; ri++) {
        for (int ci = 0; ci < N_COLS; ci++) {
            const int rows = k_rows[ri], cols = k_cols[ci];
            /* exact-size allocations so ASan sees any over-read */
            uint8_t *W = malloc((size_t)rows * cols / 4);
            int8_t *x = malloc(cols);
            int32_t *ref = malloc(sizeof(int32_t) * rows), *y = malloc(sizeof(int32_t) * rows);
            for (int wm = 0; wm < 5; wm++) {
                for (int xm = 0; xm < 4; xm++) {
                    fill_i2(W, rows, cols, wm);
                    fill_x(x, cols, xm);
                    bn_kernels_scalar.i2_gemv(rows, cols, W, x, ref);
                    for (int k = 1; k < nt; k++) {
                        for (int r = 0; r < rows; r++) y[r] = 0x7eadbeef;
                        t[k]->i2_gemv(rows, cols, W, x, y);
                        for (int r = 0; r < rows; r++)
                            if (y[r] != ref[r]) {
                                CHECK_MSG(0, "%s i2_gemv rows=%d cols=%d wmode=%d xmode=%d row %d: %d != %d",
                                          t[k]->isa, rows, cols, wm, xm, r, y[r], ref[r]);
                                break;
                            }
                        cases++;
                    }
                }
            }
            free(W), free(x), free(ref), free(y);
        }
    }
    /* extremes: all -1 against all -128 is the largest positive result */
    {
        const int rows = 5, cols = 6912;
        uint8_t *W = malloc((size_t)rows * cols / 4);
        int8_t *x = malloc(cols);
        int32_t y[5];
        fill_i2(W, rows, cols, 3);
        fill_x(x, cols, 1);
        for (int k = 0; k < nt; k++) {
            t[k]->i2_gemv(rows, cols, W, x, y);
            for (int r = 0; r < rows; r++) CHECK_EQ_INT(y[r], 128 * cols);
        }
        fill_i2(W, rows, cols, 4);
        for (int k = 0; k < nt; k++) {
            t[k]->i2_gemv(rows, cols, W, x, y);
            for (int r = 0; r < rows; r++) CHECK_EQ_INT(y[r], -128 * cols);
        }
        free(W), free(x);
    }
    if (nt == 1) printf("    (scalar only on this CPU)\n");
    else printf("    %d comparisons across %d SIMD tables\n", cases, nt - 1);
}

/* The row pointer may start at any row of a matrix (the caller splits rows
 * across threads): results must not depend on where the slice starts. */
TEST(kernels_i2_gemv_row_slices) {
    const bn_kernels *t[8];
    int nt = tables(t, 8);
    rng_seed(3);
    const int rows = 37, cols = 2560;
    const size_t rb = (size_t)cols / 4;
    uint8_t *W = malloc(rows * rb);
    int8_t *x = malloc(cols);
    int32_t ref[37], y[37];
    fill_i2(W, rows, cols, 1);
    fill_x(x, cols, 0);
    bn_kernels_scalar.i2_gemv(rows, cols, W, x, ref);
    for (int k = 0; k < nt; k++) {
        for (int start = 0; start < rows; start += 5) {
            int len = BN_MIN(11, rows - start);
            t[k]->i2_gemv(len, cols, W + start * rb, x, y);
            for (int i = 0; i < len; i++) CHECK_EQ_INT(y[i], ref[start + i]);
        }
    }
    free(W), free(x);
}

TEST(kernels_i2_gemm_vs_gemv) {
    const bn_kernels *t[8];
    int nt = tables(t, 8);
    rng_seed(4);
    static const int rows_list[] = {1, 3, 4, 7, 33};
    static const int cols_list[] = {128, 384, 2560};
    int cases = 0;
    for (int k = 0; k < nt; k++) {
        for (int ri = 0; ri < 5; ri++) {
            for (int ci = 0; ci < 3; ci++) {
                const int rows = rows_list[ri], cols = cols_list[ci];
                const int ldy = rows + 3; /* ldy > rows: the gap must stay untouched */
                for (int n = 1; n <= 9; n++) {
                    uint8_t *W = malloc((size_t)rows * cols / 4);
                    int8_t *X = malloc((size_t)n * cols);
                    int32_t *Y = malloc(sizeof(int32_t) * n * ldy), *y = malloc(sizeof(int32_t) * rows);
                    fill_i2(W, rows, cols, n % 3 == 0 ? 2 : 1);
                    fill_x(X, n * cols, n == 5 ? 3 : 0);
                    for (int i = 0; i < n * ldy; i++) Y[i] = 0x5a5a5a5a;
                    t[k]->i2_gemm(rows, cols, W, n, X, Y, ldy);
                    for (int j = 0; j < n; j++) {
                        bn_kernels_scalar.i2_gemv(rows, cols, W, X + (size_t)j * cols, y);
                        for (int r = 0; r < rows; r++)
                            if (Y[j * ldy + r] != y[r]) {
                                CHECK_MSG(0, "%s i2_gemm rows=%d cols=%d n=%d: Y[%d][%d] = %d, gemv %d",
                                          t[k]->isa, rows, cols, n, j, r, Y[j * ldy + r], y[r]);
                                break;
                            }
                        for (int r = rows; r < ldy; r++) CHECK_EQ_INT(Y[j * ldy + r], 0x5a5a5a5a);
                    }
                    cases++;
                    free(W), free(X), free(Y), free(y);
                }
            }
        }
    }
    /* n across the internal chunk of 64 vectors */
    {
        const int rows = 6, cols = 256, n = 70;
        uint8_t *W = malloc((size_t)rows * cols / 4);
        int8_t *X = malloc((size_t)n * cols);
        int32_t *Y = malloc(sizeof(int32_t) * n * rows), y[6];
        fill_i2(W, rows, cols, 0);
        fill_x(X, n * cols, 0);
        for (int k = 0; k < nt; k++) {
            t[k]->i2_gemm(rows, cols, W, n, X, Y, rows);
            for (int j = 0; j < n; j++) {
                bn_kernels_scalar.i2_gemv(rows, cols, W, X + (size_t)j * cols, y);
                for (int r = 0; r < rows; r++) CHECK_EQ_INT(Y[j * rows + r], y[r]);
            }
        }
        free(W), free(X), free(Y);
    }
    printf("    %d gemm cases\n", cases);
}

/* ---- Q8_0 ---------------------------------------------------------------- */

/* Float results: |y - ref| <= tol * sum |terms| (sum order differs by ISA). */
static void check_close(const char *what, const char *isa, int rows, int cols, const float *y,
                        const float *ref, const double *sumabs, double tol) {
    for (int r = 0; r < rows; r++) {
        double err = fabs((double)y[r] - (double)ref[r]);
        if (!(err <= tol * sumabs[r] + 1e-30)) {
            CHECK_MSG(0, "%s %s rows=%d cols=%d row %d: %.9g vs %.9g (err %.3g, bound %.3g)", isa, what,
                      rows, cols, r, y[r], ref[r], err, tol * sumabs[r]);
            return;
        }
    }
}

TEST(kernels_q8_0_gemv_vs_scalar) {
    const bn_kernels *t[8];
    int nt = tables(t, 8);
    rng_seed(5);
    static const int cols_list[] = {32, 64, 96, 256, 2560, 6912};
    for (int ri = 0; ri < N_ROWS; ri++) {
        for (int ci = 0; ci < 6; ci++) {
            const int rows = k_rows[ri], cols = cols_list[ci], nb = cols / 32;
            bn_block_q8_0 *W = malloc(sizeof(bn_block_q8_0) * rows * nb);
            float *wf = malloc(sizeof(float) * cols), *xf = malloc(sizeof(float) * cols);
            int8_t *xq = malloc(cols);
            float *xd = malloc(sizeof(float) * nb), *ref = malloc(sizeof(float) * rows),
                  *y = malloc(sizeof(float) * rows);
            double *sumabs = malloc(sizeof(double) * rows);
            for (int mode = 0; mode < 2; mode++) {
                for (int r = 0; r < rows; r++) {
                    for (int c = 0; c < cols; c++) wf[c] = rndf() * (float)(1 + r % 3);
                    bn_quantize_q8_0_row(wf, cols, W + (size_t)r * nb);
                    if (mode == 1) /* the full int8 range, -128 included */
                        for (int b = 0; b < nb; b++)
                            for (int i = 0; i < 32; i++) W[(size_t)r * nb + b].qs[i] = (int8_t)(rnd() & 0xff);
                }
                for (int c = 0; c < cols; c++) xf[c] = rndf() * 3.0f;
                bn_quantize_q8_0_act(xf, cols, xq, xd);
                if (mode == 1) fill_x(xq, cols, 3);
                for (int r = 0; r < rows; r++) {
                    double s = 0;
                    for (int b = 0; b < nb; b++) {
                        const bn_block_q8_0 *blk = W + (size_t)r * nb + b;
                        double sc = fabs((double)bn_fp16_to_fp32(blk->d) * xd[b]);
                        for (int i = 0; i < 32; i++) s += sc * abs(blk->qs[i] * xq[b * 32 + i]);
                    }
                    sumabs[r] = s;
                }
                bn_kernels_scalar.q8_0_gemv(rows, cols, W, xq, xd, ref);
                /* the scalar itself against a double-precision reference */
                for (int r = 0; r < rows; r++) {
                    double d = 0;
                    for (int b = 0; b < nb; b++) {
                        const bn_block_q8_0 *blk = W + (size_t)r * nb + b;
                        long s = 0;
                        for (int i = 0; i < 32; i++) s += blk->qs[i] * xq[b * 32 + i];
                        d += (double)s * bn_fp16_to_fp32(blk->d) * xd[b];
                    }
                    CHECK(fabs(d - ref[r]) <= 1e-5 * sumabs[r] + 1e-30);
                }
                for (int k = 1; k < nt; k++) {
                    t[k]->q8_0_gemv(rows, cols, W, xq, xd, y);
                    check_close("q8_0_gemv", t[k]->isa, rows, cols, y, ref, sumabs, 2e-5);
                }
            }
            free(W), free(wf), free(xf), free(xq), free(xd), free(ref), free(y), free(sumabs);
        }
    }
}

TEST(kernels_q8_0_quantize) {
    rng_seed(6);
    float x[100];
    int8_t q[100];
    float d[4];
    for (int i = 0; i < 100; i++) x[i] = rndf() * 10.0f;
    x[5] = -12.5f; /* amax of block 0 */
    for (int i = 64; i < 96; i++) x[i] = 0.0f; /* an all-zero block */
    bn_quantize_q8_0_act(x, 100, q, d);
    CHECK(d[0] == bn_fp16_to_fp32(bn_fp32_to_fp16(12.5f / 127.0f)));
    CHECK_EQ_INT(q[5], -127);
    CHECK(d[2] == 0.0f);
    for (int i = 64; i < 96; i++) CHECK_EQ_INT(q[i], 0);
    for (int i = 0; i < 100; i++) {
        CHECK(q[i] >= -127 && q[i] <= 127);
        if (d[i / 32] > 0) CHECK(fabsf(q[i] * d[i / 32] - x[i]) <= 0.5f * d[i / 32] * 1.01f + 1e-3f * fabsf(x[i]));
    }
    bn_block_q8_0 blk[3];
    bn_quantize_q8_0_row(x, 96, blk);
    for (int b = 0; b < 3; b++) {
        CHECK(bn_fp16_to_fp32(blk[b].d) == d[b]);
        for (int i = 0; i < 32; i++) CHECK_EQ_INT(blk[b].qs[i], q[b * 32 + i]);
    }
    CHECK_EQ_INT(sizeof(bn_block_q8_0), 34);
}

/* quantize_i8: the scalar reference on a worked example, then every ISA
 * bit-exact against it (codes and returned scale) on odd lengths, tails and
 * special values (NaN, inf, -0, denormals, ties at .5, all zeros). */
TEST(kernels_quantize_i8_vs_scalar) {
    int8_t q[8];
    const float ex[5] = {1.0f, -2.0f, 0.5f, NAN, 254.0f}; /* s = 0.5: 0.5, -1, 0.25, NaN, 127 */
    float f = bn_kernels_scalar.quantize_i8(ex, 5, 8, q);
    CHECK(f == 254.0f / 127.0f);
    CHECK(q[0] == 0 && q[1] == -1 && q[2] == 0 && q[3] == 0 && q[4] == 127); /* 0.5 -> 0: half to even */
    CHECK(q[5] == 0 && q[6] == 0 && q[7] == 0);

    const bn_kernels *t[8];
    const int nt = bn_kernels_list(t, 8);
    rng_seed(17);
    static const int lens[] = {1, 3, 7, 8, 9, 15, 16, 17, 31, 33, 100, 128, 255, 2560, 6913};
    enum { MAXN = 7040 };
    float *x = malloc(MAXN * sizeof *x);
    int8_t *ref = malloc(MAXN), *got = malloc(MAXN);
    REQUIRE(x && ref && got);
    for (int mode = 0; mode < 7; mode++)
        for (size_t li = 0; li < sizeof lens / sizeof lens[0]; li++) {
            const int n = lens[li], np = (n + 127) / 128 * 128;
            for (int i = 0; i < n; i++) {
                x[i] = rndf() * 8.0f;
                if (mode == 1 && i % 5 == 0) x[i] = NAN;                        /* NaN skipped, codes 0 */
                if (mode == 2 && i == n / 2) x[i] = INFINITY;                   /* amax inf: all zero */
                if (mode == 3) x[i] = i % 3 ? 0.0f : -0.0f;                     /* amax 0: all zero */
                if (mode == 4) x[i] = (float)((int)(rnd() % 255) - 127) * 0.5f; /* ties at .5 */
                if (mode == 5) x[i] = rndf() * 1e-39f;                          /* denormal amax: s = inf */
                if (mode == 6) x[i] = rndf() * 3e38f;                           /* huge */
            }
            const float fr = bn_kernels_scalar.quantize_i8(x, n, np, ref);
            for (int k = 1; k < nt; k++) {
                memset(got, 0x55, (size_t)np);
                const float fg = t[k]->quantize_i8(x, n, np, got);
                CHECK_MSG(memcmp(&fr, &fg, sizeof fr) == 0, "%s: mode %d n %d: scale %g vs %g", t[k]->isa, mode, n,
                          (double)fg, (double)fr);
                CHECK_MSG(memcmp(ref, got, (size_t)np) == 0, "%s: mode %d n %d: codes differ", t[k]->isa, mode, n);
            }
        }
    free(x);
    free(ref);
    free(got);
}

/* ---- K-quants with Q8_K activations ---------------------------------------- */

/* Random K-quant rows: random bytes, the f16 scales (d, and Q4_K's dmin) set to
 * small finite values. */
static void random_k_rows(int q6, int rows, int cols, uint8_t *W) {
    const int bb = q6 ? BN_Q6_K_BYTES : BN_Q4_K_BYTES, nb = rows * cols / BN_QK_K;
    for (int i = 0; i < nb * bb; i++) W[i] = (uint8_t)rnd();
    for (int b = 0; b < nb; b++) {
        uint8_t *blk = W + (size_t)b * bb;
        const uint16_t d = bn_fp32_to_fp16(0.001f + 0.01f * (rndf() + 1.0f)), dm = bn_fp32_to_fp16(0.002f * (rndf() + 1.0f));
        memcpy(blk + (q6 ? 208 : 0), &d, 2);
        if (!q6) memcpy(blk + 2, &dm, 2);
    }
}

/* The scalar K-quant GEMVs against the float dot product of the dequantised
 * weights (quants.c, itself checked against the format description in
 * test_quants.c) and the dequantised Q8_K activations, in double; then every
 * ISA bit-exact against the scalar one on odd row counts. */
TEST(kernels_k_quant_gemv_vs_scalar) {
    static const int rows_list[] = {1, 2, 3, 5, 8, 17, 64};
    static const int cols_list[] = {256, 512, 2560};
    const bn_kernels *t[8];
    const int nt = bn_kernels_list(t, 8);
    rng_seed(23);
    for (int q6 = 0; q6 < 2; q6++)
        for (size_t ci = 0; ci < sizeof cols_list / sizeof cols_list[0]; ci++)
            for (size_t ri = 0; ri < sizeof rows_list / sizeof rows_list[0]; ri++) {
                const int rows = rows_list[ri], cols = cols_list[ci], nb = cols / BN_QK_K;
                const int bb = q6 ? BN_Q6_K_BYTES : BN_Q4_K_BYTES;
                uint8_t *W = malloc((size_t)rows * nb * bb);
                float *x = malloc(cols * sizeof *x), *xd = malloc(nb * sizeof *xd), *row = malloc(cols * sizeof *row);
                float *ref = malloc(rows * sizeof *ref), *y = malloc(rows * sizeof *y);
                int8_t *xq = malloc(cols);
                int16_t *bs = malloc(cols / 16 * sizeof *bs);
                REQUIRE(W && x && xd && row && ref && y && xq && bs);
                random_k_rows(q6, rows, cols, W);
                for (int i = 0; i < cols; i++) x[i] = rndf() * (i % 7 == 0 ? 4.0f : 1.0f);
                bn_quantize_q8_k_act(&bn_kernels_scalar, x, cols, xq, xd, bs);
                for (int g = 0; g < cols / 16; g++) { /* bsums as the description says */
                    int s = 0;
                    for (int i = 0; i < 16; i++) s += xq[g * 16 + i];
                    CHECK_EQ_INT(bs[g], s);
                }
                const bn_quant_traits *qt = bn_quant_get(q6 ? BN_QUANT_Q6_K : BN_QUANT_Q4_K);
                (q6 ? bn_kernels_scalar.q6_k_gemv : bn_kernels_scalar.q4_k_gemv)(rows, cols, W, xq, xd, bs, ref);
                for (int r = 0; r < rows; r++) {
                    bn_dequant_row(q6 ? BN_QUANT_Q6_K : BN_QUANT_Q4_K, W + (size_t)r * nb * bb, cols, row);
                    double want = 0, mag = 0;
                    for (int i = 0; i < cols; i++) {
                        const double v = (double)row[i] * ((double)xq[i] * xd[i / BN_QK_K]);
                        want += v;
                        mag += fabs(v);
                    }
                    CHECK_MSG(fabs(ref[r] - want) <= 1e-5 * mag + 1e-6, "%s scalar %dx%d row %d: %.9g vs %.9g", qt->name,
                              rows, cols, r, (double)ref[r], want);
                }
                for (int k = 1; k < nt; k++) {
                    memset(y, 0xff, rows * sizeof *y);
                    (q6 ? t[k]->q6_k_gemv : t[k]->q4_k_gemv)(rows, cols, W, xq, xd, bs, y);
                    CHECK_MSG(memcmp(y, ref, rows * sizeof *y) == 0, "%s %s %dx%d: not the scalar's bits", qt->name,
                              t[k]->isa, rows, cols);
                }
                free(W), free(x), free(xd), free(row), free(ref), free(y), free(xq), free(bs);
            }
}

/* ---- float --------------------------------------------------------------- */

TEST(kernels_f32_f16_gemv_vs_scalar) {
    const bn_kernels *t[8];
    int nt = tables(t, 8);
    rng_seed(7);
    static const int cols_list[] = {1, 7, 8, 15, 16, 17, 33, 100, 256, 2560};
    for (int ri = 0; ri < N_ROWS; ri++) {
        for (int ci = 0; ci < 10; ci++) {
            const int rows = k_rows[ri], cols = cols_list[ci];
            float *W = malloc(sizeof(float) * rows * cols), *x = malloc(sizeof(float) * cols);
            uint16_t *H = malloc(sizeof(uint16_t) * rows * cols);
            float *ref = malloc(sizeof(float) * rows), *y = malloc(sizeof(float) * rows);
            double *sa32 = malloc(sizeof(double) * rows), *sa16 = malloc(sizeof(double) * rows);
            for (int i = 0; i < rows * cols; i++) {
                W[i] = rndf();
                H[i] = bn_fp32_to_fp16(W[i] * 4.0f);
            }
            for (int c = 0; c < cols; c++) x[c] = rndf() * 2.0f;
            for (int r = 0; r < rows; r++) {
                double a = 0, b = 0;
                for (int c = 0; c < cols; c++) {
                    a += fabs((double)W[r * cols + c] * x[c]);
                    b += fabs((double)bn_fp16_to_fp32(H[r * cols + c]) * x[c]);
                }
                sa32[r] = a, sa16[r] = b;
            }
            bn_kernels_scalar.f32_gemv(rows, cols, W, x, ref);
            for (int k = 1; k < nt; k++) {
                t[k]->f32_gemv(rows, cols, W, x, y);
                check_close("f32_gemv", t[k]->isa, rows, cols, y, ref, sa32, 2e-5);
            }
            bn_kernels_scalar.f16_gemv(rows, cols, H, x, ref);
            for (int k = 1; k < nt; k++) {
                t[k]->f16_gemv(rows, cols, H, x, y);
                check_close("f16_gemv", t[k]->isa, rows, cols, y, ref, sa16, 2e-5);
            }
            free(W), free(x), free(H), free(ref), free(y), free(sa32), free(sa16);
        }
    }
}

TEST(kernels_f16_special_values) {
    /* fp16 subnormals, +-0, the largest finite value: every ISA converts exactly */
    const bn_kernels *t[8];
    int nt = tables(t, 8);
    const int cols = 24;
    uint16_t H[24];
    float x[24], y;
    static const uint16_t vals[] = {0x0001, 0x03ff, 0x8001, 0x0000, 0x8000, 0x7bff, 0xfbff, 0x3c00};
    for (int i = 0; i < cols; i++) {
        H[i] = 0;
        x[i] = 0.0f;
    }
    for (int v = 0; v < 8; v++) {
        H[v * 3] = vals[v];
        x[v * 3] = 1.0f;
        for (int k = 0; k < nt; k++) {
            t[k]->f16_gemv(1, cols, H, x, &y);
            CHECK_MSG(y == bn_fp16_to_fp32(vals[v]), "%s f16 0x%04x: %g", t[k]->isa, vals[v], y);
        }
        H[v * 3] = 0;
        x[v * 3] = 0.0f;
    }
}

/* ---- 1-bit -------------------------------------------------------------- */

/* The benchmark's 1-bit GEMV (bench/bench_kernels.h), each ISA's against its scalar reference. */
TEST(kernels_b1_gemv_vs_scalar) {
    const bn_kernels *t[8];
    int nt = tables(t, 8);
    rng_seed(8);
    static const int cols_list[] = {512, 1024, 2560, 6912 / 512 * 512};
    for (int ri = 0; ri < N_ROWS; ri++) {
        for (int ci = 0; ci < 4; ci++) {
            const int rows = k_rows[ri], cols = cols_list[ci];
            const size_t rb = (size_t)cols / 8;
            uint8_t *W = malloc(rows * rb), *x = malloc(rb);
            int32_t *ref = malloc(sizeof(int32_t) * rows), *y = malloc(sizeof(int32_t) * rows);
            for (size_t i = 0; i < rows * rb; i++) W[i] = (uint8_t)rnd();
            for (size_t i = 0; i < rb; i++) x[i] = (uint8_t)rnd();
            if (rows > 2) {
                memcpy(W, x, rb); /* row 0 == x: +cols */
                for (size_t i = 0; i < rb; i++) W[rb + i] = (uint8_t)~x[i]; /* row 1: -cols */
            }
            bn_b1_gemv_scalar(rows, cols, W, x, ref);
            if (rows > 2) {
                CHECK_EQ_INT(ref[0], cols);
                CHECK_EQ_INT(ref[1], -cols);
            }
            for (int k = 1; k < nt; k++) {
                bn_b1_gemv_for(t[k])(rows, cols, W, x, y);
#if defined(__x86_64__)
                if (!strcmp(t[k]->isa, "avx512")) { /* and the variant without VPOPCNTQ */
                    int32_t *y2 = malloc(sizeof(int32_t) * rows);
                    bn_b1_gemv_avx512_lut(rows, cols, W, x, y2);
                    CHECK_MSG(memcmp(y2, ref, sizeof(int32_t) * rows) == 0, "avx512 lut b1_gemv rows=%d cols=%d", rows, cols);
                    free(y2);
                }
#endif
                for (int r = 0; r < rows; r++)
                    if (y[r] != ref[r]) {
                        CHECK_MSG(0, "%s b1_gemv rows=%d cols=%d row %d: %d != %d", t[k]->isa, rows, cols, r,
                                  y[r], ref[r]);
                        break;
                    }
            }
            free(W), free(x), free(ref), free(y);
        }
    }
}

/* ---- packing --------------------------------------------------------------- */

static void ternary_fill(int8_t *t, int n) {
    for (int i = 0; i < n; i++) t[i] = (int8_t)((int)(rnd() % 3) - 1);
}

TEST(kernels_i2_pack_round_trip) {
    rng_seed(9);
    static const int cols_list[] = {1, 100, 128, 129, 300, 2560};
    for (int ci = 0; ci < 6; ci++) {
        const int rows = 3, cols = cols_list[ci], cp = bn_i2_cols_padded(cols);
        int8_t *t = malloc((size_t)rows * cols), *u = malloc(cp);
        uint8_t *p = malloc((size_t)rows * cp / 4);
        ternary_fill(t, rows * cols);
        CHECK_EQ_INT(bn_i2_pack(t, rows, cols, p), (size_t)rows * cp / 4);
        for (int r = 0; r < rows; r++) {
            bn_i2_unpack_row(p + (size_t)r * cp / 4, cp, u);
            CHECK(memcmp(u, t + (size_t)r * cols, cols) == 0);
            for (int c = cols; c < cp; c++) CHECK_EQ_INT(u[c], 0); /* padding is weight 0 */
        }
        /* packed data through the kernel = plain dot product */
        int8_t *x = malloc(cp);
        int32_t y[3];
        fill_x(x, cp, 0);
        bn_kernels_get()->i2_gemv(rows, cp, p, x, y);
        for (int r = 0; r < rows; r++) {
            int32_t s = 0;
            for (int c = 0; c < cols; c++) s += t[r * cols + c] * x[c];
            CHECK_EQ_INT(y[r], s);
        }
        free(t), free(u), free(p), free(x);
    }
    CHECK_EQ_INT(bn_i2_cols_padded(2560), 2560);
    CHECK_EQ_INT(bn_i2_cols_padded(2561), 2688);
}

/* The worked example of docs/kernels.md: a 128-weight block whose weights
 * 0, 32, 64, 96 are +1, -1, 0, +1 and all others 0. */
TEST(kernels_i2_worked_example) {
    int8_t t[128] = {0};
    t[0] = 1, t[32] = -1, t[64] = 0, t[96] = 1;
    uint8_t p[32];
    bn_i2_pack(t, 1, 128, p);
    CHECK_EQ_INT(p[0], 0x86); /* 10 00 01 10 */
    for (int i = 1; i < 32; i++) CHECK_EQ_INT(p[i], 0x55);
    /* weight 97 = +1 goes to byte 1, bits 1-0 */
    t[97] = 1;
    bn_i2_pack(t, 1, 128, p);
    CHECK_EQ_INT(p[1], 0x56);
}

TEST(kernels_tq2_0_round_trip_and_example) {
    rng_seed(10);
    const int cols = 768, nb = cols / 256;
    int8_t t[768], u[768];
    float d[3] = {1.0f, 0.0123f, -3.5f}, d2[3];
    uint8_t p[3 * BN_TQ2_0_BYTES];
    ternary_fill(t, cols);
    bn_tq2_0_pack_row(t, cols, d, p);
    bn_tq2_0_unpack_row(p, cols, u, d2);
    CHECK(memcmp(t, u, cols) == 0);
    for (int b = 0; b < nb; b++) CHECK(d2[b] == bn_fp16_to_fp32(bn_fp32_to_fp16(d[b])));
    CHECK(d2[0] == 1.0f && d2[2] == -3.5f);
    /* llama.cpp dequantize_row_tq2_0: weight 128j + 32l + m = ((qs[32j+m] >> 2l) & 3) - 1 */
    for (int b = 0; b < nb; b++)
        for (int j = 0; j < 2; j++)
            for (int l = 0; l < 4; l++)
                for (int m = 0; m < 32; m++)
                    CHECK_EQ_INT(((p[b * 66 + 32 * j + m] >> (2 * l)) & 3) - 1, t[b * 256 + 128 * j + 32 * l + m]);
    /* worked example: weights 0, 32, 64, 96 = +1, -1, 0, +1, the rest 0, d = 1 */
    int8_t e[256] = {0};
    e[0] = 1, e[32] = -1, e[64] = 0, e[96] = 1;
    float one = 1.0f;
    uint8_t q[BN_TQ2_0_BYTES];
    bn_tq2_0_pack_row(e, 256, &one, q);
    CHECK_EQ_INT(q[0], 0x92); /* 10 01 00 10: weight 96 in the top bits */
    for (int i = 1; i < 64; i++) CHECK_EQ_INT(q[i], 0x55);
    CHECK_EQ_INT(q[64], 0x00); /* d = 1.0 = fp16 0x3c00, little-endian */
    CHECK_EQ_INT(q[65], 0x3c);
}

/* llama.cpp's dequantize_row_tq1_0 digit extraction, written out independently */
static int tq1_digit_ref(uint8_t byte, int n) {
    unsigned q = byte;
    for (int i = 0; i < n; i++) q = (q * 3) & 0xff;
    return (int)((q * 3) >> 8);
}

TEST(kernels_tq1_0_round_trip_and_example) {
    rng_seed(11);
    const int cols = 512, nb = 2;
    int8_t t[512], u[512];
    float d[2] = {0.5f, 1e-3f}, d2[2];
    uint8_t p[2 * BN_TQ1_0_BYTES];
    for (int rep = 0; rep < 50; rep++) {
        ternary_fill(t, cols);
        bn_tq1_0_pack_row(t, cols, d, p);
        bn_tq1_0_unpack_row(p, cols, u, d2);
        CHECK(memcmp(t, u, cols) == 0);
        for (int b = 0; b < nb; b++) CHECK(d2[b] == bn_fp16_to_fp32(bn_fp32_to_fp16(d[b])));
        /* the layout read the way llama.cpp reads it */
        for (int b = 0; b < nb; b++) {
            const uint8_t *blk = p + b * 54;
            const int8_t *w = t + b * 256;
            for (int n = 0; n < 5; n++)
                for (int m = 0; m < 32; m++) CHECK_EQ_INT(tq1_digit_ref(blk[m], n) - 1, w[32 * n + m]);
            for (int n = 0; n < 5; n++)
                for (int m = 0; m < 16; m++) CHECK_EQ_INT(tq1_digit_ref(blk[32 + m], n) - 1, w[160 + 16 * n + m]);
            for (int n = 0; n < 4; n++)
                for (int m = 0; m < 4; m++) CHECK_EQ_INT(tq1_digit_ref(blk[48 + m], n) - 1, w[240 + 4 * n + m]);
        }
    }
    /* exhaustive: every 5-trit pattern in the first byte survives */
    int8_t e[256];
    for (int v = 0; v < 243; v++) {
        memset(e, 0, sizeof e);
        int digits = v;
        for (int n = 4; n >= 0; n--) {
            e[32 * n] = (int8_t)(digits % 3 - 1);
            digits /= 3;
        }
        float one = 1.0f, dd;
        uint8_t q[BN_TQ1_0_BYTES];
        int8_t back[256];
        bn_tq1_0_pack_row(e, 256, &one, q);
        bn_tq1_0_unpack_row(q, 256, back, &dd);
        CHECK(memcmp(e, back, 256) == 0);
    }
    /* worked example: weights 0, 32, 64, 96, 128 = +1, -1, 0, +1, -1, rest 0:
     * digits 2 0 1 2 0 -> q = 2*81 + 0*27 + 1*9 + 2*3 + 0 = 177,
     * stored ceil(177 * 256 / 243) = 187 = 0xbb; an all-zero byte holds
     * 11111 (base 3) = 121 -> 128 = 0x80; an all-zero qh byte holds 1111 and a
     * 0 digit: 120 -> 127 = 0x7f; d = 1.0 -> 00 3c. */
    memset(e, 0, sizeof e);
    e[0] = 1, e[32] = -1, e[64] = 0, e[96] = 1, e[128] = -1;
    float one = 1.0f;
    uint8_t q[BN_TQ1_0_BYTES];
    bn_tq1_0_pack_row(e, 256, &one, q);
    CHECK_EQ_INT(q[0], 0xbb);
    for (int i = 1; i < 48; i++) CHECK_EQ_INT(q[i], 0x80);
    for (int i = 48; i < 52; i++) CHECK_EQ_INT(q[i], 0x7f);
    CHECK_EQ_INT(q[52], 0x00);
    CHECK_EQ_INT(q[53], 0x3c);
}

/* ---- TQ1_0 in place ------------------------------------------------------ */

/* The benchmark's GEMV on llama.cpp's TQ1_0 blocks (bench/bench_kernels.h): the scalar
 * one equals the I2 kernel on the same weights (packed by bn_tq1_0_pack_row
 * and bn_i2_pack), and every ISA's equals the scalar one, also on random bytes
 * (every byte value decodes to digits 0..2, the 5th qh digit is no weight). */
TEST(kernels_tq1_gemv_vs_scalar) {
    const bn_kernels *t[8];
    int nt = tables(t, 8);
    rng_seed(17);
    static const int cols_list[] = {256, 512, 2560, 6912};
    for (int ri = 0; ri < N_ROWS; ri++) {
        for (int ci = 0; ci < 4; ci++) {
            const int rows = k_rows[ri], cols = cols_list[ci];
            const size_t rb = (size_t)cols / BN_QK_K * BN_TQ1_0_BYTES;
            int8_t *tr = malloc((size_t)rows * cols), *x = malloc(cols);
            uint8_t *W = malloc(rows * rb), *Wi = malloc((size_t)rows * cols / 4);
            int32_t *ref = malloc(sizeof(int32_t) * rows), *y = malloc(sizeof(int32_t) * rows);
            for (size_t i = 0; i < (size_t)rows * cols; i++) tr[i] = (int8_t)(rnd() % 3) - 1;
            for (int i = 0; i < cols; i++) x[i] = (int8_t)rnd();
            for (int r = 0; r < rows; r++) bn_tq1_0_pack_row(tr + (size_t)r * cols, cols, NULL, W + r * rb);
            bn_i2_pack(tr, rows, cols, Wi);
            bn_tq1_gemv_scalar(rows, cols, W, x, ref);
            bn_kernels_scalar.i2_gemv(rows, cols, Wi, x, y);
            CHECK_MSG(memcmp(y, ref, sizeof(int32_t) * rows) == 0, "tq1 vs i2 rows=%d cols=%d", rows, cols);
            for (int pass = 0; pass < 2; pass++) {
                if (pass) { /* random bytes */
                    for (size_t i = 0; i < rows * rb; i++) W[i] = (uint8_t)rnd();
                    bn_tq1_gemv_scalar(rows, cols, W, x, ref);
                }
                for (int k = 1; k < nt; k++) {
                    bn_tq1_gemv_for(t[k])(rows, cols, W, x, y);
                    CHECK_MSG(memcmp(y, ref, sizeof(int32_t) * rows) == 0, "%s tq1_gemv rows=%d cols=%d pass %d", t[k]->isa,
                              rows, cols, pass);
                }
            }
            free(tr), free(x), free(W), free(Wi), free(ref), free(y);
        }
    }
}
