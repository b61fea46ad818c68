/*
 * kernels_bench.c - kernel micro-benchmarks and a memory-bandwidth probe.
 *
 * Shapes: two cache-resident ones (256x256, 1024x1024: one matrix, hot in
 * L2) and the BitNet-2B-4T projections (2560x2560, 2560x6912, 6912x2560).
 * For the latter the benchmark rotates through as many copies of the matrix
 * as fit in a 96 MB arena (3x the 32 MB L3 of the machine this was tuned on),
 * so every call streams its weights from DRAM, as decoding does.
 * Rows are split across threads (bn_pool) in multiples of 16.
 *
 * GB/s counts the weight bytes of one call (I2: rows*cols/4, Q8_0:
 * rows*cols/32*34, 1-bit: rows*cols/8) over its time; "% BW" divides that by
 * bn_bench_membw_gbs() measured in the same run with the same thread count.
 */
#include "bench.h"
#include "bench_kernels.h"

#include <math.h>
#include <unistd.h>

#include "common.h"
#include "os.h"
#include "kernels/kernels.h"
#include "threadpool.h"

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#elif defined(__aarch64__)
#include <arm_neon.h>
#endif

/* ---- memory bandwidth ----------------------------------------------------- */

#define MEMBW_BYTES ((size_t)256 << 20)

#if defined(__x86_64__)
__attribute__((target("avx2"))) static uint64_t sum_bytes_avx2(const uint8_t *p, size_t n) {
    __m256i a0 = _mm256_setzero_si256(), a1 = a0, a2 = a0, a3 = a0;
    for (size_t i = 0; i < n; i += 128) {
        a0 = _mm256_add_epi64(a0, _mm256_load_si256((const __m256i *)(p + i)));
        a1 = _mm256_add_epi64(a1, _mm256_load_si256((const __m256i *)(p + i + 32)));
        a2 = _mm256_add_epi64(a2, _mm256_load_si256((const __m256i *)(p + i + 64)));
        a3 = _mm256_add_epi64(a3, _mm256_load_si256((const __m256i *)(p + i + 96)));
    }
    a0 = _mm256_add_epi64(_mm256_add_epi64(a0, a1), _mm256_add_epi64(a2, a3));
    uint64_t t[4];
    _mm256_storeu_si256((__m256i *)t, a0);
    return t[0] + t[1] + t[2] + t[3];
}
static uint64_t sum_bytes_sse2(const uint8_t *p, size_t n) {
    __m128i a0 = _mm_setzero_si128(), a1 = a0, a2 = a0, a3 = a0;
    for (size_t i = 0; i < n; i += 64) {
        a0 = _mm_add_epi64(a0, _mm_load_si128((const __m128i *)(p + i)));
        a1 = _mm_add_epi64(a1, _mm_load_si128((const __m128i *)(p + i + 16)));
        a2 = _mm_add_epi64(a2, _mm_load_si128((const __m128i *)(p + i + 32)));
        a3 = _mm_add_epi64(a3, _mm_load_si128((const __m128i *)(p + i + 48)));
    }
    a0 = _mm_add_epi64(_mm_add_epi64(a0, a1), _mm_add_epi64(a2, a3));
    uint64_t t[2];
    _mm_storeu_si128((__m128i *)t, a0);
    return t[0] + t[1];
}
static uint64_t sum_bytes(const uint8_t *p, size_t n) {
    return __builtin_cpu_supports("avx2") ? sum_bytes_avx2(p, n) : sum_bytes_sse2(p, n);
}
#elif defined(__aarch64__)
static uint64_t sum_bytes(const uint8_t *p, size_t n) {
    uint64x2_t a0 = vdupq_n_u64(0), a1 = a0, a2 = a0, a3 = a0;
    for (size_t i = 0; i < n; i += 64) {
        a0 = vaddq_u64(a0, vld1q_u64((const uint64_t *)(const void *)(p + i)));
        a1 = vaddq_u64(a1, vld1q_u64((const uint64_t *)(const void *)(p + i + 16)));
        a2 = vaddq_u64(a2, vld1q_u64((const uint64_t *)(const void *)(p + i + 32)));
        a3 = vaddq_u64(a3, vld1q_u64((const uint64_t *)(const void *)(p + i + 48)));
    }
    return vaddvq_u64(vaddq_u64(vaddq_u64(a0, a1), vaddq_u64(a2, a3)));
}
#else
static uint64_t sum_bytes(const uint8_t *p, size_t n) {
    uint64_t s = 0;
    for (size_t i = 0; i < n; i += 8) {
        uint64_t v;
        memcpy(&v, p + i, 8);
        s += v;
    }
    return s;
}
#endif

typedef struct {
    const uint8_t *buf;
    size_t bytes;
    uint64_t sink[64 * 8]; /* one cache line per thread */
} membw_job;

static void membw_worker(void *arg, int ith, int nth) {
    membw_job *j = arg;
    size_t per = j->bytes / (size_t)nth / 4096 * 4096;
    j->sink[ith * 8] += sum_bytes(j->buf + (size_t)ith * per, per);
}

double bn_bench_membw_gbs(int n_threads, double seconds) {
    if (n_threads < 1) n_threads = 1;
    if (n_threads > 64) n_threads = 64;
    uint8_t *buf = bn_aligned_alloc(MEMBW_BYTES);
    bn_pool *pool = NULL;
    bn_pool_new(n_threads, NULL, &pool);
    if (!buf || !pool) {
        bn_aligned_free(buf);
        bn_pool_free(pool);
        return 0;
    }
    for (size_t i = 0; i < MEMBW_BYTES; i += 64) memset(buf + i, (int)(i >> 12), 64); /* fault in */
    membw_job job;
    memset(&job, 0, sizeof job);
    job.buf = buf;
    job.bytes = MEMBW_BYTES;
    const size_t per = MEMBW_BYTES / (size_t)n_threads / 4096 * 4096;
    double best = 0;
    uint64_t t_end = bn_time_ns() + (uint64_t)(seconds * 1e9);
    int passes = 0;
    do {
        uint64_t t0 = bn_time_ns();
        bn_pool_run(pool, membw_worker, &job);
        double dt = (double)(bn_time_ns() - t0) * 1e-9;
        double gbs = (double)(per * (size_t)n_threads) / dt * 1e-9;
        if (passes > 0 && gbs > best) best = gbs; /* pass 0 is a warm-up */
        passes++;
    } while (bn_time_ns() < t_end || passes < 3);
    uint64_t s = 0;
    for (int i = 0; i < n_threads; i++) s += job.sink[i * 8];
    if (s == 42) fprintf(stderr, " ");
    bn_pool_free(pool);
    bn_aligned_free(buf);
    return best;
}

/* ---- kernel jobs --------------------------------------------------------- */

typedef enum { K_I2_GEMV, K_I2_GEMM, K_Q8_0, K_B1, K_TQ1 } kernel_kind;

typedef struct {
    const bn_kernels *k;
    kernel_kind kind;
    int rows, cols, n;
    const void *W; /* current matrix */
    const int8_t *x;
    const float *xd;
    const uint8_t *xbits;
    int32_t *yi;
    float *yf;
} job;

static void job_worker(void *arg, int ith, int nth) {
    const job *j = arg;
    /* rows split in multiples of 16 (keeps every kernel on its 4-row path) */
    int units = (j->rows + 15) / 16;
    int r0 = BN_MIN(j->rows, (int)((long)units * ith / nth) * 16);
    int r1 = BN_MIN(j->rows, (int)((long)units * (ith + 1) / nth) * 16);
    if (r1 <= r0) return;
    const int nr = r1 - r0;
    switch (j->kind) {
    case K_I2_GEMV:
        j->k->i2_gemv(nr, j->cols, (const uint8_t *)j->W + (size_t)r0 * j->cols / 4, j->x, j->yi + r0);
        break;
    case K_I2_GEMM:
        j->k->i2_gemm(nr, j->cols, (const uint8_t *)j->W + (size_t)r0 * j->cols / 4, j->n, j->x, j->yi + r0,
                      j->rows);
        break;
    case K_Q8_0:
        j->k->q8_0_gemv(nr, j->cols, (const bn_block_q8_0 *)j->W + (size_t)r0 * (j->cols / 32), j->x, j->xd,
                        j->yf + r0);
        break;
    case K_B1:
        bn_b1_gemv_for(j->k)(nr, j->cols, (const uint8_t *)j->W + (size_t)r0 * j->cols / 8, j->xbits, j->yi + r0);
        break;
    case K_TQ1:
        bn_tq1_gemv_for(j->k)(nr, j->cols, (const uint8_t *)j->W + (size_t)r0 * (j->cols / BN_QK_K) * BN_TQ1_0_BYTES, j->x,
                              j->yi + r0);
        break;
    }
}

static size_t kind_bytes(kernel_kind kind, int rows, int cols) {
    switch (kind) {
    case K_Q8_0: return (size_t)rows * (cols / 32) * sizeof(bn_block_q8_0);
    case K_B1: return (size_t)rows * cols / 8;
    case K_TQ1: return (size_t)rows * (cols / BN_QK_K) * BN_TQ1_0_BYTES;
    default: return (size_t)rows * cols / 4;
    }
}

typedef struct {
    double sec_per_call, gbs, gmacs;
    double probe_gbs; /* best read bandwidth seen in between the windows, or 0 */
} result;

/* One pass of the bandwidth probe over `probe` with the pool's threads. */
static double probe_pass(bn_pool *pool, membw_job *probe) {
    const int nth = bn_pool_size(pool);
    const size_t per = probe->bytes / (size_t)nth / 4096 * 4096;
    const uint64_t t0 = bn_time_ns();
    bn_pool_run(pool, membw_worker, probe);
    return (double)(per * (size_t)nth) / ((double)(bn_time_ns() - t0) * 1e-9) * 1e-9;
}

/* Runs the job over `count` matrices laid out back to back in `arena`,
 * cycling through them. The budget is split into windows and the best window
 * counts (as STREAM reports its best pass); when `probe` is given, one probe
 * pass runs before every window, so that "% BW" compares the kernel with the
 * bandwidth available at the same moment: on a shared machine the load of
 * other processes drifts over a run. */
static result measure(bn_pool *pool, job *j, const uint8_t *arena, int count, int warm, double seconds,
                      membw_job *probe) {
    const size_t bytes = kind_bytes(j->kind, j->rows, j->cols);
    /* warm-up: `warm` calls (a pass over every matrix: page tables, clocks) */
    for (int m = 0; m < warm; m++) {
        j->W = arena + (size_t)m * bytes;
        bn_pool_run(pool, job_worker, j);
    }
    const int windows = 5;
    const uint64_t budget = (uint64_t)(seconds * 1e9 / windows);
    double best = 0, best_probe = 0;
    int m = 0;
    for (int w = 0; w < windows; w++) {
        if (probe) {
            double g = probe_pass(pool, probe);
            if (g > best_probe) best_probe = g;
        }
        long calls = 0;
        const uint64_t t0 = bn_time_ns();
        uint64_t t;
        do {
            j->W = arena + (size_t)m * bytes;
            bn_pool_run(pool, job_worker, j);
            calls++;
            if (++m == count) m = 0;
            t = bn_time_ns() - t0;
        } while (t < budget);
        double per = (double)t * 1e-9 / (double)calls;
        if (best == 0 || per < best) best = per;
        if ((double)t > 4.0 * (double)budget) break; /* slow (scalar): one window is enough */
    }
    result r;
    r.sec_per_call = best;
    r.gbs = (double)bytes / r.sec_per_call * 1e-9;
    r.gmacs = (double)j->rows * j->cols * (j->kind == K_I2_GEMM ? j->n : 1) / r.sec_per_call * 1e-9;
    r.probe_gbs = best_probe;
    return r;
}

/* ---- driver ----------------------------------------------------------------- */

typedef struct {
    int rows, cols, cached;
} shape;

static void cpu_name(char *out, size_t cap) {
    snprintf(out, cap, "unknown CPU");
    FILE *f = fopen("/proc/cpuinfo", "r");
    if (!f) return;
    char line[512];
    while (fgets(line, sizeof line, f)) {
        if (strncmp(line, "model name", 10) == 0 || strncmp(line, "Model", 5) == 0) {
            char *p = strchr(line, ':');
            if (p) {
                p++;
                while (*p == ' ' || *p == '\t') p++;
                p[strcspn(p, "\n")] = 0;
                snprintf(out, cap, "%s", p);
                break;
            }
        }
    }
    fclose(f);
}

static void usage(void) {
    fprintf(stderr, "usage: bench --kernels [--quick] [--threads N] [--isa NAME] [--seconds S] [--only KERNEL]\n");
}

int bn_bench_kernels(int argc, char **argv) {
    int quick = 0, max_threads = bn_os_cpu_count();
    const char *isa = NULL, *only = NULL;
    double seconds = -1;
    for (int i = 0; i < argc; i++) {
        if (strcmp(argv[i], "--quick") == 0) quick = 1;
        else if (strcmp(argv[i], "--threads") == 0 && i + 1 < argc) max_threads = atoi(argv[++i]);
        else if (strcmp(argv[i], "--isa") == 0 && i + 1 < argc) isa = argv[++i];
        else if (strcmp(argv[i], "--seconds") == 0 && i + 1 < argc) seconds = atof(argv[++i]);
        else if (strcmp(argv[i], "--only") == 0 && i + 1 < argc) only = argv[++i];
        else if (strcmp(argv[i], "--kernels") == 0) continue;
        else if (i > 0 || argv[i][0] == '-') {
            usage();
            return 2;
        }
    }
    if (max_threads < 1) max_threads = 1;
    if (max_threads > 64) max_threads = 64;
    if (seconds <= 0) seconds = quick ? 0.02 : 0.25;

    /* tables: scalar (the baseline) + all others, or the one asked for */
    const bn_kernels *all[8], *tabs[8];
    int nall = bn_kernels_list(all, 8), nt = 0;
    for (int i = 0; i < nall; i++)
        if (i == 0 || !isa || strcmp(all[i]->isa, isa) == 0 ||
            (bn_kernels_by_name(isa) == all[i]))
            tabs[nt++] = all[i];
    if (isa && nt == 1 && strcmp(isa, "scalar") != 0) {
        fprintf(stderr, "bench: ISA '%s' is not available here\n", isa);
        return 2;
    }

    const shape full[] = {{256, 256, 1}, {1024, 1024, 1}, {2560, 2560, 0}, {2560, 6912, 0}, {6912, 2560, 0}};
    const shape tiny[] = {{256, 256, 1}, {512, 1024, 1}};
    const shape *shapes = quick ? tiny : full;
    const int nshapes = quick ? 2 : 5;
    int thr[2] = {1, max_threads}, nthr = max_threads > 1 ? 2 : 1;

    /* one arena per weight format, each holding many copies' worth */
    const size_t arena_bytes = quick ? ((size_t)8 << 20) : ((size_t)256 << 20);
    uint8_t *arena = bn_aligned_alloc(arena_bytes);
    uint8_t *arena_q8 = bn_aligned_alloc(arena_bytes);
    const int max_cols = 6912, max_n = 64;
    int8_t *X = bn_aligned_alloc((size_t)max_n * max_cols);
    float *xd = bn_aligned_alloc(sizeof(float) * max_cols / 32);
    uint8_t *xbits = bn_aligned_alloc(max_cols / 8);
    int32_t *yi = bn_aligned_alloc(sizeof(int32_t) * max_n * 6912);
    float *yf = bn_aligned_alloc(sizeof(float) * 6912);
    /* probe buffer for the interleaved bandwidth passes (DRAM shapes only) */
    const size_t probe_bytes = quick ? ((size_t)16 << 20) : MEMBW_BYTES;
    uint8_t *probe_buf = bn_aligned_alloc(probe_bytes);
    if (!arena || !arena_q8 || !X || !xd || !xbits || !yi || !yf || !probe_buf) {
        fprintf(stderr, "bench: out of memory\n");
        return 2;
    }
    uint64_t s = 0x1234567;
    for (size_t i = 0; i < arena_bytes; i++) { /* I2 bytes with codes 0..2 (also fine as 1-bit data) */
        s = s * 6364136223846793005ull + 1442695040888963407ull;
        uint32_t v = (uint32_t)(s >> 33);
        arena[i] = (uint8_t)((v % 3) | (((v >> 2) % 3) << 2) | (((v >> 4) % 3) << 4) | (((v >> 6) % 3) << 6));
    }
    bn_block_q8_0 *qb = (bn_block_q8_0 *)(void *)arena_q8;
    for (size_t i = 0; i < arena_bytes / sizeof(bn_block_q8_0); i++) {
        qb[i].d = bn_fp32_to_fp16(0.01f);
        for (int k = 0; k < 32; k++) qb[i].qs[k] = (int8_t)(arena[(i * 32 + k) % arena_bytes] - 100);
    }
    for (int i = 0; i < max_n * max_cols; i++) X[i] = (int8_t)(arena[i] ^ 0x5a);
    for (int i = 0; i < max_cols / 32; i++) xd[i] = 0.02f;
    for (int i = 0; i < max_cols / 8; i++) xbits[i] = arena[i + 77];
    for (size_t i = 0; i < probe_bytes; i += 64) memset(probe_buf + i, (int)(i >> 12), 64);
    membw_job probe;
    memset(&probe, 0, sizeof probe);
    probe.buf = probe_buf;
    probe.bytes = probe_bytes;

    char cpu[256];
    cpu_name(cpu, sizeof cpu);
    double bw[2];
    for (int t = 0; t < nthr; t++) bw[t] = bn_bench_membw_gbs(thr[t], quick ? 0.1 : 1.0);
    printf("## Kernel benchmark\n\n");
    printf("CPU: %s, %d online CPUs. Read bandwidth (%zu MB, SIMD sum):", cpu,
           bn_os_cpu_count(), MEMBW_BYTES >> 20);
    for (int t = 0; t < nthr; t++) printf(" %.1f GB/s with %d thread%s%s", bw[t], thr[t], thr[t] > 1 ? "s" : "",
                                          t + 1 < nthr ? "," : ".");
    printf("\nDRAM shapes rotate through %zu MB of weights per format; (L2) shapes use one hot matrix.\n",
           arena_bytes >> 20);
    printf("GB/s = weight bytes per call / time. %% BW = GB/s / read bandwidth with the same threads: for DRAM\n"
           "shapes the best probe pass interleaved with that row's timing windows (\"probe GB/s\"), for (L2)\n"
           "shapes the figure above.\n\n");
    printf("| kernel | rows x cols | ISA | thr | us/call | GB/s | GMAC/s | x scalar | %% BW | probe GB/s |\n");
    printf("|---|---|---|---:|---:|---:|---:|---:|---:|---:|\n");

    struct {
        kernel_kind kind;
        int n;
        const char *name;
    } kernels[] = {{K_I2_GEMV, 1, "i2_gemv"}, {K_I2_GEMM, 8, "i2_gemm n=8"}, {K_I2_GEMM, 64, "i2_gemm n=64"},
                   {K_Q8_0, 1, "q8_0_gemv"}, {K_B1, 1, "b1_gemv"},
                   {K_TQ1, 1, "tq1_0_gemv"}};
    const int nkern = (int)(sizeof kernels / sizeof kernels[0]);

    for (int t = 0; t < nthr; t++) {
        bn_pool *pool = NULL;
        bn_pool_new(thr[t], NULL, &pool);
        if (!pool) {
            fprintf(stderr, "bench: cannot start %d threads\n", thr[t]);
            return 2;
        }
        for (int ki = 0; ki < nkern; ki++) {
            if (only && !strstr(kernels[ki].name, only)) continue;
            for (int si = 0; si < nshapes; si++) {
                const shape sh = shapes[si];
                if ((kernels[ki].kind == K_B1 && sh.cols % 512 != 0) || (kernels[ki].kind == K_TQ1 && sh.cols % BN_QK_K != 0))
                    continue;
                double scalar_rate = 0;
                for (int k = 0; k < nt; k++) {
                    job j;
                    memset(&j, 0, sizeof j);
                    j.k = tabs[k];
                    j.kind = kernels[ki].kind;
                    j.rows = sh.rows, j.cols = sh.cols, j.n = kernels[ki].n;
                    j.x = X, j.xd = xd, j.xbits = xbits, j.yi = yi, j.yf = yf;
                    const size_t bytes = kind_bytes(j.kind, sh.rows, sh.cols);
                    const uint8_t *base = j.kind == K_Q8_0 ? arena_q8 : arena;
                    int count = sh.cached ? 1 : (int)(arena_bytes / bytes);
                    if (count < 1) continue;
                    /* the scalar reference is slow (compute-bound anyway): one
                     * warm-up call and a shorter budget for its GEMM */
                    double secs = seconds;
                    int warm = count;
                    if (k == 0) {
                        warm = 1;
                        if (j.kind == K_I2_GEMM) secs = seconds / 4;
                    }
                    result r = measure(pool, &j, base, count, warm, secs, sh.cached ? NULL : &probe);
                    const double ref_bw = r.probe_gbs > 0 ? r.probe_gbs : bw[t];
                    if (k == 0) scalar_rate = r.gmacs;
                    char shape_s[64];
                    snprintf(shape_s, sizeof shape_s, "%dx%d%s", sh.rows, sh.cols, sh.cached ? " (L2)" : "");
                    char probe_s[32] = "-";
                    if (r.probe_gbs > 0) snprintf(probe_s, sizeof probe_s, "%.1f", r.probe_gbs);
                    printf("| %s | %s | %s | %d | %.1f | %.2f | %.2f | %.1f | %.0f%% | %s |\n", kernels[ki].name, shape_s,
                           tabs[k]->isa, thr[t], r.sec_per_call * 1e6, r.gbs, r.gmacs,
                           scalar_rate > 0 ? r.gmacs / scalar_rate : 0.0, ref_bw > 0 ? 100.0 * r.gbs / ref_bw : 0.0,
                           probe_s);
                    fflush(stdout);
                }
            }
        }
        bn_pool_free(pool);
    }
    bn_aligned_free(arena), bn_aligned_free(arena_q8), bn_aligned_free(X), bn_aligned_free(xd);
    bn_aligned_free(xbits), bn_aligned_free(yi), bn_aligned_free(yf), bn_aligned_free(probe_buf);
    return 0;
}
