/*
 * avx512.c - AVX-512 kernels (compiled with -mavx512f -mavx512bw -mavx512vl
 * -mavx512dq -mavx512vnni; offered by dispatch.c only on
 * CPUs with F+BW+VL+DQ+VNNI and OS-enabled ZMM state). See docs/kernels.md.
 *
 * Ternary dot products use VPDPBUSD (u8 x s8, four products summed into each
 * int32 lane, no saturation) and the unsigned-code trick
 *     sum (code - 1) * x  =  sum code * x  -  sum x.
 * The codes are not shifted down to 0..3: one I2 block (32 bytes, 128
 * weights) is broadcast into both halves of a zmm register and masked with
 *     M = [0xC0 x 32 | 0x30 x 32]
 * which leaves code(group 0) * 64 in the low half and code(group 1) * 16 in the
 * high half, lined up with the 64 contiguous activations x[0..63] of the
 * block. The same register shifted left by 4 (16-bit lanes: the bits that
 * cross into the next byte land in its low nibble, which M clears) and masked
 * again gives code(group 2) * 64 | code(group 3) * 16 against x[64..127]. So a
 * block costs one load, one shift, two ANDs and two VPDPBUSD; int32 lanes 0-7
 * always carry a factor 64 and lanes 8-15 a factor 16, which the final
 * reduction divides out exactly (lo / 64 + hi / 16).
 * Lane bound: 8 products of |192 * 128| per block, so int32 lanes are exact
 * for cols < 1.39M (code 3 included); the halves are reduced in int64.
 */
#include <immintrin.h>
#include <math.h>

#include "common.h"
#include "kernels/kernels.h"
#include "kernels/i2_gemm_blocking.h"

/* Every AVX-512 CPU has these; the pragma keeps the file independent of
 * whether the build line also passes -mavx2 -mfma -mf16c (GCC's -mavx512f
 * does not imply FMA/F16C; clang's does). */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC target("avx2,fma,f16c,bmi2,popcnt")
#endif

#ifndef PREFETCH_BYTES
#define PREFETCH_BYTES 16384 /* software prefetch distance for streamed weights */
#endif
#define TILE_R 4              /* i2_gemm register tile: rows ... */
/* ... x BN_GEMM_TILE_N activation vectors (16 accumulators) */
#define GEMM_CHUNK 64         /* vectors per chunk: a row tile (4 rows) stays in L1 meanwhile */


static inline __m512i i2_mask(void) {
    return _mm512_inserti64x4(_mm512_set1_epi8((char)0xC0), _mm256_set1_epi8(0x30), 1);
}

static inline __m512i bcast_block(const uint8_t *w) {
    return _mm512_broadcast_i64x4(_mm256_loadu_si256((const __m256i *)w));
}

/* sum of cols (multiple of 64) int8 values */
static int32_t sum_i8(const int8_t *x, int cols) {
    const __m512i ones = _mm512_set1_epi8(1);
    __m512i acc = _mm512_setzero_si512();
    for (int c = 0; c < cols; c += 64)
        acc = _mm512_dpbusd_epi32(acc, ones, _mm512_loadu_si512((const void *)(x + c)));
    return _mm512_reduce_add_epi32(acc);
}

/* Folds a scaled accumulator (lanes 0-7 carry x64, lanes 8-15 x16) into 8
 * exact int32 partial sums: lo + 4*hi is a multiple of 64 in every lane, so
 * the arithmetic shift is an exact division. Lane bound: per block a lane
 * gains at most 8 * (192 + 4*48) * 128 = 393216, so this is exact for
 * cols < 699,000 (code 3 included). */
static inline __m256i i2_fold(__m512i acc) {
    const __m256i lo = _mm512_castsi512_si256(acc), hi = _mm512_extracti64x4_epi64(acc, 1);
    return _mm256_srai_epi32(_mm256_add_epi32(lo, _mm256_slli_epi32(hi, 2)), 6);
}

/* The four totals of four 8-lane vectors, in order. */
static inline __m128i hsum4(__m256i v0, __m256i v1, __m256i v2, __m256i v3) {
    const __m256i h = _mm256_hadd_epi32(_mm256_hadd_epi32(v0, v1), _mm256_hadd_epi32(v2, v3));
    return _mm_add_epi32(_mm256_castsi256_si128(h), _mm256_extracti128_si256(h, 1));
}

static inline int32_t hsum8(__m256i v) {
    __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
    s = _mm_add_epi32(s, _mm_unpackhi_epi64(s, s));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, _MM_SHUFFLE(2, 3, 0, 1)));
    return _mm_cvtsi128_si32(s);
}

/* One block of one row into that row's two accumulators. */
#define I2_STEP(a, c, wp, x01, x23)                                                          \
    do {                                                                                      \
        const __m512i v_ = bcast_block(wp);                                                   \
        (a) = _mm512_dpbusd_epi32((a), _mm512_and_si512(v_, M), (x01));                       \
        (c) = _mm512_dpbusd_epi32((c), _mm512_and_si512(_mm512_slli_epi16(v_, 4), M), (x23)); \
    } while (0)

#define I2_STEP4(o, xb)                                                    \
    do {                                                                   \
        const __m512i x01_ = _mm512_loadu_si512((const void *)(xb));       \
        const __m512i x23_ = _mm512_loadu_si512((const void *)((xb) + 64)); \
        I2_STEP(a0, c0, w0 + (o), x01_, x23_);                             \
        I2_STEP(a1, c1, w1 + (o), x01_, x23_);                             \
        I2_STEP(a2, c2, w2 + (o), x01_, x23_);                             \
        I2_STEP(a3, c3, w3 + (o), x01_, x23_);                             \
    } while (0)

#define I2_STEP4_ODD(o, xb)                                                \
    do {                                                                   \
        const __m512i x01_ = _mm512_loadu_si512((const void *)(xb));       \
        const __m512i x23_ = _mm512_loadu_si512((const void *)((xb) + 64)); \
        I2_STEP(e0, f0, w0 + (o), x01_, x23_);                             \
        I2_STEP(e1, f1, w1 + (o), x01_, x23_);                             \
        I2_STEP(e2, f2, w2 + (o), x01_, x23_);                             \
        I2_STEP(e3, f3, w3 + (o), x01_, x23_);                             \
    } while (0)

/* GEMV streaming order. Four rows share each activation load, but four
 * ADJACENT rows would be four interleaved streams inside the same pages,
 * which defeats the hardware prefetcher (measured: ~45% of the read
 * bandwidth, and software prefetching only recovers part of it). So the
 * rows are split into four quarters and row i of every quarter is processed
 * together: four independent sequential streams, each prefetched well by
 * the hardware. */
static void avx512_i2_gemv(int rows, int cols, const uint8_t *W, const int8_t *x, int32_t *y) {
    const int nb = cols / BN_I2_BLOCK;
    const size_t rb = (size_t)cols / 4;
    const __m512i M = i2_mask();
    const int32_t sx = sum_i8(x, cols);
    const int q = rows / 4;
    for (int r = 0; r < q; r++) {
        const uint8_t *w0 = W + (size_t)r * rb, *w1 = w0 + (size_t)q * rb, *w2 = w1 + (size_t)q * rb,
                      *w3 = w2 + (size_t)q * rb;
        /* two accumulators per row (groups 0|1 and 2|3), and a second set
         * for odd blocks: 16 independent VPDPBUSD chains */
        __m512i a0 = _mm512_setzero_si512(), a1 = a0, a2 = a0, a3 = a0, c0 = a0, c1 = a0, c2 = a0, c3 = a0;
        __m512i e0 = a0, e1 = a0, e2 = a0, e3 = a0, f0 = a0, f1 = a0, f2 = a0, f3 = a0;
        int b = 0;
        for (; b + 2 <= nb; b += 2) {
            I2_STEP4((size_t)b * BN_I2_BLOCK_BYTES, x + (size_t)b * BN_I2_BLOCK);
            I2_STEP4_ODD((size_t)(b + 1) * BN_I2_BLOCK_BYTES, x + (size_t)(b + 1) * BN_I2_BLOCK);
        }
        if (b < nb) I2_STEP4((size_t)b * BN_I2_BLOCK_BYTES, x + (size_t)b * BN_I2_BLOCK);
        a0 = _mm512_add_epi32(a0, e0), a1 = _mm512_add_epi32(a1, e1), a2 = _mm512_add_epi32(a2, e2);
        a3 = _mm512_add_epi32(a3, e3), c0 = _mm512_add_epi32(c0, f0), c1 = _mm512_add_epi32(c1, f1);
        c2 = _mm512_add_epi32(c2, f2), c3 = _mm512_add_epi32(c3, f3);
        const __m128i t = hsum4(i2_fold(_mm512_add_epi32(a0, c0)), i2_fold(_mm512_add_epi32(a1, c1)),
                                i2_fold(_mm512_add_epi32(a2, c2)), i2_fold(_mm512_add_epi32(a3, c3)));
        y[r] = _mm_extract_epi32(t, 0) - sx;
        y[r + q] = _mm_extract_epi32(t, 1) - sx;
        y[r + 2 * q] = _mm_extract_epi32(t, 2) - sx;
        y[r + 3 * q] = _mm_extract_epi32(t, 3) - sx;
    }
    for (int r = 4 * q; r < rows; r++) { /* 0..3 leftover rows: one stream each, 4 chains */
        const uint8_t *w = W + (size_t)r * rb;
        __m512i a0 = _mm512_setzero_si512(), a1 = a0, c0 = a0, c1 = a0;
        int b = 0;
        for (; b + 2 <= nb; b += 2) {
            const int8_t *xb = x + (size_t)b * BN_I2_BLOCK;
            const uint8_t *wb = w + (size_t)b * BN_I2_BLOCK_BYTES;
            I2_STEP(a0, c0, wb, _mm512_loadu_si512((const void *)xb), _mm512_loadu_si512((const void *)(xb + 64)));
            I2_STEP(a1, c1, wb + 32, _mm512_loadu_si512((const void *)(xb + 128)),
                    _mm512_loadu_si512((const void *)(xb + 192)));
        }
        if (b < nb) {
            const int8_t *xb = x + (size_t)b * BN_I2_BLOCK;
            I2_STEP(a0, c0, w + (size_t)b * BN_I2_BLOCK_BYTES, _mm512_loadu_si512((const void *)xb),
                    _mm512_loadu_si512((const void *)(xb + 64)));
        }
        y[r] = hsum8(i2_fold(_mm512_add_epi32(_mm512_add_epi32(a0, a1), _mm512_add_epi32(c0, c1)))) - sx;
    }
}

/* R rows x N vectors register tile: each weight block is loaded and masked
 * once per tile and used N times; each activation load is used R times.
 * `pf` (or NULL) is prefetched at the weights' consumption rate: the caller
 * points it at the next row tile while the first vector tile runs. */
static inline __attribute__((always_inline)) void i2_tile(int R, int N, int cols, const uint8_t *w,
                                                           size_t rb, const int8_t *X, const int32_t *sx,
                                                           int32_t *Y, int ldy, const char *pf) {
    const int nb = cols / BN_I2_BLOCK;
    const __m512i M = i2_mask();
    __m512i acc[TILE_R][BN_GEMM_TILE_N];
#pragma GCC unroll 4
    for (int i = 0; i < R; i++)
#pragma GCC unroll 4
        for (int j = 0; j < N; j++) acc[i][j] = _mm512_setzero_si512();
    for (int b = 0; b < nb; b++) {
        if (pf) {
            _mm_prefetch(pf, _MM_HINT_T0);
            if (R > 2) _mm_prefetch(pf + 64, _MM_HINT_T0);
            pf += R * BN_I2_BLOCK_BYTES;
        }
        __m512i a[TILE_R], c[TILE_R];
#pragma GCC unroll 4
        for (int i = 0; i < R; i++) {
            const __m512i v = bcast_block(w + i * rb + (size_t)b * BN_I2_BLOCK_BYTES);
            a[i] = _mm512_and_si512(v, M);
            c[i] = _mm512_and_si512(_mm512_slli_epi16(v, 4), M);
        }
#pragma GCC unroll 4
        for (int j = 0; j < N; j++) {
            const int8_t *xb = X + (size_t)j * cols + (size_t)b * BN_I2_BLOCK;
            const __m512i x01 = _mm512_loadu_si512((const void *)xb);
            const __m512i x23 = _mm512_loadu_si512((const void *)(xb + 64));
#pragma GCC unroll 4
            for (int i = 0; i < R; i++) {
                acc[i][j] = _mm512_dpbusd_epi32(acc[i][j], a[i], x01);
                acc[i][j] = _mm512_dpbusd_epi32(acc[i][j], c[i], x23);
            }
        }
    }
    if (R == 4) {
#pragma GCC unroll 4
        for (int j = 0; j < N; j++) {
            const __m128i t = hsum4(i2_fold(acc[0][j]), i2_fold(acc[1][j]), i2_fold(acc[2][j]), i2_fold(acc[3][j]));
            _mm_storeu_si128((__m128i *)(Y + (size_t)j * ldy), _mm_sub_epi32(t, _mm_set1_epi32(sx[j])));
        }
    } else {
#pragma GCC unroll 4
        for (int i = 0; i < R; i++)
#pragma GCC unroll 4
            for (int j = 0; j < N; j++) Y[(size_t)j * ldy + i] = hsum8(i2_fold(acc[i][j])) - sx[j];
    }
}

static void avx512_i2_gemm(int rows, int cols, const uint8_t *W, int n, const int8_t *X, int32_t *Y,
                           int ldy) {
    if (n == 1) { /* a single vector streams the weights: the GEMV order is faster */
        avx512_i2_gemv(rows, cols, W, X, Y);
        return;
    }
    /* row tiles outside and vector tiles inside (i2_gemm_blocking.h): a tile's
     * 4 weight rows (cols bytes) stay in L1 while every vector of the chunk
     * passes over them, so the weights are streamed from memory once per chunk */
    BN_I2_GEMM_BLOCKING(TILE_R, GEMM_CHUNK, sum_i8, i2_tile);
}

/* ---- Q8_0 ------------------------------------------------------------------
 * Exact for every int8 value: VPDPBUSD needs an unsigned operand, so the
 * weights are biased by 128 (w ^ 0x80 = w + 128 in 0..255) and the bias is
 * removed by starting the accumulator at -128 * (sum of x over 4 lanes), which
 * is computed once per block and shared by all rows. */

static inline float fp16_scalar(uint16_t h) { return _cvtsh_ss(h); }

static inline __m256 q8_block(__m256 acc, const bn_block_q8_0 *wb, __m256i xb, __m256i ncorr,
                              float xd) {
    const __m256i wv = _mm256_xor_si256(_mm256_loadu_si256((const __m256i *)wb->qs),
                                        _mm256_set1_epi8((char)0x80));
    const __m256i dot = _mm256_dpbusd_epi32(ncorr, wv, xb);
    return _mm256_fmadd_ps(_mm256_cvtepi32_ps(dot), _mm256_set1_ps(fp16_scalar(wb->d) * xd), acc);
}

static inline float hsum256_ps(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

#define Q8_PREFETCH_BYTES 4096

static void avx512_q8_0_gemv(int rows, int cols, const bn_block_q8_0 *W, const int8_t *xq,
                             const float *xd, float *y) {
    const int nb = cols / BN_Q8_BLOCK;
    const __m256i ones = _mm256_set1_epi8(1);
    const int q = rows / 4;
    for (int r = 0; r < q; r++) { /* rows r, r+q, r+2q, r+3q: four sequential streams */
        const bn_block_q8_0 *w0 = W + (size_t)r * nb, *w1 = w0 + (size_t)q * nb, *w2 = w1 + (size_t)q * nb,
                            *w3 = w2 + (size_t)q * nb;
        __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
        for (int b = 0; b < nb; b++) {
            const __m256i xb = _mm256_loadu_si256((const __m256i *)(xq + (size_t)b * BN_Q8_BLOCK));
            const __m256i ncorr = _mm256_sub_epi32(
                _mm256_setzero_si256(),
                _mm256_slli_epi32(_mm256_dpbusd_epi32(_mm256_setzero_si256(), ones, xb), 7));
            const float d = xd[b];
            if (!(b & 1)) { /* four row streams: ask for each one's bytes ahead (two blocks per line; +5% decode) */
                _mm_prefetch((const char *)(w0 + b) + Q8_PREFETCH_BYTES, _MM_HINT_T0);
                _mm_prefetch((const char *)(w1 + b) + Q8_PREFETCH_BYTES, _MM_HINT_T0);
                _mm_prefetch((const char *)(w2 + b) + Q8_PREFETCH_BYTES, _MM_HINT_T0);
                _mm_prefetch((const char *)(w3 + b) + Q8_PREFETCH_BYTES, _MM_HINT_T0);
            }
            a0 = q8_block(a0, w0 + b, xb, ncorr, d);
            a1 = q8_block(a1, w1 + b, xb, ncorr, d);
            a2 = q8_block(a2, w2 + b, xb, ncorr, d);
            a3 = q8_block(a3, w3 + b, xb, ncorr, d);
        }
        y[r] = hsum256_ps(a0), y[r + q] = hsum256_ps(a1), y[r + 2 * q] = hsum256_ps(a2), y[r + 3 * q] = hsum256_ps(a3);
    }
    for (int r = 4 * q; r < rows; r++) {
        const bn_block_q8_0 *w = W + (size_t)r * nb;
        __m256 a = _mm256_setzero_ps();
        for (int b = 0; b < nb; b++) {
            const __m256i xb = _mm256_loadu_si256((const __m256i *)(xq + (size_t)b * BN_Q8_BLOCK));
            const __m256i ncorr = _mm256_sub_epi32(
                _mm256_setzero_si256(),
                _mm256_slli_epi32(_mm256_dpbusd_epi32(_mm256_setzero_si256(), ones, xb), 7));
            a = q8_block(a, w + b, xb, ncorr, xd[b]);
        }
        y[r] = hsum256_ps(a);
    }
}

/* ---- float ---------------------------------------------------------------- */

static inline __m512 load_f16x16(const uint16_t *p) {
    return _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)p));
}
/* 16 weights from element i of a float (f16 = 0) or fp16 (f16 = 1) matrix;
 * the _tail form loads the lanes of `m` and zeroes the others */
static inline __attribute__((always_inline)) __m512 load_w16(const void *W, size_t i, int f16) {
    return f16 ? load_f16x16((const uint16_t *)W + i) : _mm512_loadu_ps((const float *)W + i);
}
static inline __attribute__((always_inline)) __m512 load_w16_tail(__mmask16 m, const void *W, size_t i, int f16) {
    return f16 ? _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(m, (const uint16_t *)W + i))
               : _mm512_maskz_loadu_ps(m, (const float *)W + i);
}

/* The float and fp16 GEMVs: one body, specialised by the constant `f16`. */
static inline __attribute__((always_inline)) void float_gemv(int rows, int cols, const void *W, int f16, const float *x,
                                                             float *y) {
    const int c16 = cols & ~15;
    const __mmask16 tail = (__mmask16)((1u << (cols & 15)) - 1);
    const int q = rows / 4;
    const size_t qc = (size_t)q * cols;
    for (int r = 0; r < q; r++) { /* rows r, r+q, r+2q, r+3q: four sequential streams */
        const size_t w0 = (size_t)r * cols;
        __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
        for (int c = 0; c < c16; c += 16) {
            const __m512 xv = _mm512_loadu_ps(x + c);
            a0 = _mm512_fmadd_ps(load_w16(W, w0 + c, f16), xv, a0);
            a1 = _mm512_fmadd_ps(load_w16(W, w0 + qc + c, f16), xv, a1);
            a2 = _mm512_fmadd_ps(load_w16(W, w0 + 2 * qc + c, f16), xv, a2);
            a3 = _mm512_fmadd_ps(load_w16(W, w0 + 3 * qc + c, f16), xv, a3);
        }
        if (tail) {
            const __m512 xv = _mm512_maskz_loadu_ps(tail, x + c16);
            a0 = _mm512_fmadd_ps(load_w16_tail(tail, W, w0 + c16, f16), xv, a0);
            a1 = _mm512_fmadd_ps(load_w16_tail(tail, W, w0 + qc + c16, f16), xv, a1);
            a2 = _mm512_fmadd_ps(load_w16_tail(tail, W, w0 + 2 * qc + c16, f16), xv, a2);
            a3 = _mm512_fmadd_ps(load_w16_tail(tail, W, w0 + 3 * qc + c16, f16), xv, a3);
        }
        y[r] = _mm512_reduce_add_ps(a0), y[r + q] = _mm512_reduce_add_ps(a1);
        y[r + 2 * q] = _mm512_reduce_add_ps(a2), y[r + 3 * q] = _mm512_reduce_add_ps(a3);
    }
    for (int r = 4 * q; r < rows; r++) {
        const size_t w = (size_t)r * cols;
        __m512 a = _mm512_setzero_ps(), b = a;
        int c = 0;
        for (; c + 32 <= c16; c += 32) {
            a = _mm512_fmadd_ps(load_w16(W, w + c, f16), _mm512_loadu_ps(x + c), a);
            b = _mm512_fmadd_ps(load_w16(W, w + c + 16, f16), _mm512_loadu_ps(x + c + 16), b);
        }
        for (; c < c16; c += 16) a = _mm512_fmadd_ps(load_w16(W, w + c, f16), _mm512_loadu_ps(x + c), a);
        if (tail) a = _mm512_fmadd_ps(load_w16_tail(tail, W, w + c16, f16), _mm512_maskz_loadu_ps(tail, x + c16), a);
        y[r] = _mm512_reduce_add_ps(_mm512_add_ps(a, b));
    }
}

static void avx512_f32_gemv(int rows, int cols, const float *W, const float *x, float *y) {
    float_gemv(rows, cols, W, 0, x, y);
}
static void avx512_f16_gemv(int rows, int cols, const uint16_t *W, const float *x, float *y) {
    float_gemv(rows, cols, W, 1, x, y);
}

/* ---- K-quants: avx2.c's kernels (their blocks are 256-bit shaped) ---------- */
void bn_avx2_q4_k_gemv(int rows, int cols, const uint8_t *W, const int8_t *xq, const float *xd, const int16_t *bsums,
                       float *y);
void bn_avx2_q6_k_gemv(int rows, int cols, const uint8_t *W, const int8_t *xq, const float *xd, const int16_t *bsums,
                       float *y);

/* ---- activation quantisation (kernels.h: quantize_i8) ---------------------- */

static float avx512_quantize_i8(const float *x, int n, int n_padded, int8_t *q) {
    const int n16 = n & ~15;
    const __mmask16 tail = (__mmask16)((1u << (n & 15)) - 1);
    __m512 m = _mm512_setzero_ps();
    /* max_ps returns its second operand when the first is NaN: NaN is skipped */
    for (int i = 0; i < n16; i += 16) m = _mm512_max_ps(_mm512_abs_ps(_mm512_loadu_ps(x + i)), m);
    m = _mm512_max_ps(_mm512_abs_ps(_mm512_maskz_loadu_ps(tail, x + n16)), m);
    const float amax = _mm512_reduce_max_ps(m);
    if (!(amax > 0.0f) || !isfinite(amax)) {
        memset(q, 0, (size_t)n_padded);
        return 0.0f;
    }
    const __m512 s = _mm512_set1_ps(127.0f / amax), lo = _mm512_set1_ps(-128.0f), hi = _mm512_set1_ps(127.0f);
    for (int i = 0; i < n; i += 16) {
        const __mmask16 k = i < n16 ? (__mmask16)0xffff : tail;
        const __m512 v = _mm512_mul_ps(_mm512_maskz_loadu_ps(k, x + i), s);
        __m512 r = _mm512_roundscale_ps(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
        r = _mm512_maskz_mov_ps(_mm512_cmp_ps_mask(v, v, _CMP_ORD_Q), r); /* NaN -> 0 */
        r = _mm512_min_ps(_mm512_max_ps(r, lo), hi);
        _mm_mask_storeu_epi8(q + i, k, _mm512_cvtsepi32_epi8(_mm512_cvtps_epi32(r)));
    }
    memset(q + n, 0, (size_t)(n_padded - n));
    return amax / 127.0f;
}

const bn_kernels bn_kernels_avx512 = BN_KERNEL_TABLE("avx512", &bn_kv_ops_avx2,
    avx512_i2_gemv, avx512_i2_gemm, avx512_q8_0_gemv,
    bn_avx2_q4_k_gemv, bn_avx2_q6_k_gemv, avx512_quantize_i8, avx512_f32_gemv, avx512_f16_gemv);
