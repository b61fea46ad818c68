/*
 * avx2.c - AVX2 kernels (compiled with -mavx2 -mfma -mf16c -mbmi2; used only
 * after dispatch.c checked the CPU and the OS), plus an AVX-VNNI variant of
 * the integer kernels (functions compiled with target("avxvnni"), offered as
 * the "avx2-vnni" table only when CPUID reports AVX-VNNI: Alder Lake and
 * later Intel client cores, Zen 5). See docs/kernels.md.
 *
 * Ternary: an I2 block is 32 bytes = 128 weights, byte p holding weights p,
 * p+32, p+64, p+96 in bits 7-6, 5-4, 3-2, 1-0. One 32-byte load therefore
 * unpacks into four code vectors (shift + AND 3), each lined up with 32
 * consecutive activations, and pmaddubsw multiplies the unsigned codes (0..2)
 * by the signed activations. The -1 offset is applied once per row:
 *     sum (code - 1) * x  =  sum code * x  -  sum x.
 * Bounds: a pmaddubsw lane is code0*x0 + code1*x1 with code <= 3 and
 * |x| <= 128, so |lane| <= 768 (no saturation); the four groups of a block sum
 * to <= 3072 per int16 lane, so int16 accumulators are flushed (pmaddwd by 1)
 * into int32 every 8 blocks (<= 24576).
 *
 * GEMV streaming order: four rows share every activation load, but they are
 * taken from the four quarters of the row range (rows r, r+q, r+2q, r+3q),
 * not four adjacent rows: adjacent rows are four interleaved streams in the
 * same pages, which the hardware prefetcher follows badly (measured ~45% of
 * the read bandwidth against ~85% for four independent streams).
 */
#include <immintrin.h>
#include <math.h>

#include "common.h"
#include "kernels/kernels.h"
#include "kernels/i2_gemm_blocking.h"

#define FLUSH_BLOCKS 8 /* int16 accumulation span, see the bound above */
#define GEMM_X_BYTES 24576 /* activation bytes per GEMM chunk: stays in L1 (bn_gemm_chunk_l1) */

extern const bn_kernels bn_kernels_avx2_vnni;

static inline int32_t hsum_epi32(__m256i v) {
    __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
    s = _mm_add_epi32(s, _mm_unpackhi_epi64(s, s));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, _MM_SHUFFLE(2, 3, 0, 1)));
    return _mm_cvtsi128_si32(s);
}

/* The four totals of four 8-lane int32 vectors, in order. */
static inline __m128i hsum4_epi32(__m256i v0, __m256i v1, __m256i v2, __m256i v3) {
    const __m256i h = _mm256_hadd_epi32(_mm256_hadd_epi32(v0, v1), _mm256_hadd_epi32(v2, v3));
    return _mm_add_epi32(_mm256_castsi256_si128(h), _mm256_extracti128_si256(h, 1));
}

static inline float hsum_ps(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

/* Stores the four lanes of t to y[r], y[r+q], y[r+2q], y[r+3q]. */
static inline void store_quarters_i32(int32_t *y, int r, int q, __m128i t) {
    y[r] = _mm_cvtsi128_si32(t);
    y[r + q] = _mm_extract_epi32(t, 1);
    y[r + 2 * q] = _mm_extract_epi32(t, 2);
    y[r + 3 * q] = _mm_extract_epi32(t, 3);
}


/* sum of cols (multiple of 32) int8 values */
static int32_t sum_i8(const int8_t *x, int cols) {
    const __m256i ones8 = _mm256_set1_epi8(1), ones16 = _mm256_set1_epi16(1);
    __m256i acc = _mm256_setzero_si256();
    for (int c = 0; c < cols; c += 32) {
        __m256i v = _mm256_loadu_si256((const __m256i *)(x + c));
        acc = _mm256_add_epi32(acc, _mm256_madd_epi16(_mm256_maddubs_epi16(ones8, v), ones16));
    }
    return hsum_epi32(acc);
}

/* ---- I2, plain AVX2 --------------------------------------------------------- */

/* The four code vectors of one I2 block (32 bytes at w). */
typedef struct {
    __m256i g0, g1, g2, g3;
} i2_codes;

static inline i2_codes i2_unpack(const uint8_t *w) {
    const __m256i m3 = _mm256_set1_epi8(3);
    const __m256i v = _mm256_loadu_si256((const __m256i *)w);
    i2_codes c;
    c.g0 = _mm256_and_si256(_mm256_srli_epi16(v, 6), m3);
    c.g1 = _mm256_and_si256(_mm256_srli_epi16(v, 4), m3);
    c.g2 = _mm256_and_si256(_mm256_srli_epi16(v, 2), m3);
    c.g3 = _mm256_and_si256(v, m3);
    return c;
}

/* int16 lanes of sum code * x over one block (x = the block's 128 activations). */
static inline __m256i i2_dot16(i2_codes c, __m256i x0, __m256i x1, __m256i x2, __m256i x3) {
    __m256i p01 = _mm256_add_epi16(_mm256_maddubs_epi16(c.g0, x0), _mm256_maddubs_epi16(c.g1, x1));
    __m256i p23 = _mm256_add_epi16(_mm256_maddubs_epi16(c.g2, x2), _mm256_maddubs_epi16(c.g3, x3));
    return _mm256_add_epi16(p01, p23);
}

#define LOAD_X4(xb)                                                    \
    const __m256i x0 = _mm256_loadu_si256((const __m256i *)(xb));      \
    const __m256i x1 = _mm256_loadu_si256((const __m256i *)((xb) + 32)); \
    const __m256i x2 = _mm256_loadu_si256((const __m256i *)((xb) + 64)); \
    const __m256i x3 = _mm256_loadu_si256((const __m256i *)((xb) + 96))

/* one row alone (leftovers): sum code * x */
static int32_t i2_row_dot(const uint8_t *w, const int8_t *x, int nb) {
    const __m256i ones16 = _mm256_set1_epi16(1);
    __m256i a = _mm256_setzero_si256();
    for (int b0 = 0; b0 < nb; b0 += FLUSH_BLOCKS) {
        const int b1 = BN_MIN(nb, b0 + FLUSH_BLOCKS);
        __m256i s = _mm256_setzero_si256();
        for (int b = b0; b < b1; b++) {
            LOAD_X4(x + (size_t)b * BN_I2_BLOCK);
            s = _mm256_add_epi16(s, i2_dot16(i2_unpack(w + (size_t)b * BN_I2_BLOCK_BYTES), x0, x1, x2, x3));
        }
        a = _mm256_add_epi32(a, _mm256_madd_epi16(s, ones16));
    }
    return hsum_epi32(a);
}

static void avx2_i2_gemv(int rows, int cols, const uint8_t *W, const int8_t *x, int32_t *y) {
    const int nb = cols / BN_I2_BLOCK;
    const size_t rb = (size_t)cols / 4;
    const __m256i ones16 = _mm256_set1_epi16(1);
    const int32_t sx = sum_i8(x, cols);
    const int q = rows / 4;
    for (int r = 0; r < q; r++) {
        const uint8_t *w0 = W + (size_t)r * rb, *w1 = w0 + (size_t)q * rb, *w2 = w1 + (size_t)q * rb,
                      *w3 = w2 + (size_t)q * rb;
        __m256i a0 = _mm256_setzero_si256(), a1 = a0, a2 = a0, a3 = a0;
        for (int b0 = 0; b0 < nb; b0 += FLUSH_BLOCKS) {
            const int b1 = BN_MIN(nb, b0 + FLUSH_BLOCKS);
            __m256i s0 = _mm256_setzero_si256(), s1 = s0, s2 = s0, s3 = s0;
            for (int b = b0; b < b1; b++) {
                LOAD_X4(x + (size_t)b * BN_I2_BLOCK);
                const size_t o = (size_t)b * BN_I2_BLOCK_BYTES;
                s0 = _mm256_add_epi16(s0, i2_dot16(i2_unpack(w0 + o), x0, x1, x2, x3));
                s1 = _mm256_add_epi16(s1, i2_dot16(i2_unpack(w1 + o), x0, x1, x2, x3));
                s2 = _mm256_add_epi16(s2, i2_dot16(i2_unpack(w2 + o), x0, x1, x2, x3));
                s3 = _mm256_add_epi16(s3, i2_dot16(i2_unpack(w3 + o), x0, x1, x2, x3));
            }
            a0 = _mm256_add_epi32(a0, _mm256_madd_epi16(s0, ones16));
            a1 = _mm256_add_epi32(a1, _mm256_madd_epi16(s1, ones16));
            a2 = _mm256_add_epi32(a2, _mm256_madd_epi16(s2, ones16));
            a3 = _mm256_add_epi32(a3, _mm256_madd_epi16(s3, ones16));
        }
        store_quarters_i32(y, r, q, _mm_sub_epi32(hsum4_epi32(a0, a1, a2, a3), _mm_set1_epi32(sx)));
    }
    for (int r = 4 * q; r < rows; r++) y[r] = i2_row_dot(W + (size_t)r * rb, x, nb) - sx;
}

/* One row against NJ (1..BN_GEMM_TILE_N) activation vectors: every block is unpacked
 * once and used NJ times. */
static inline __attribute__((always_inline)) void i2_gemm_tile(int NJ, int cols, const uint8_t *w,
                                                                const int8_t *X, const int32_t *sx,
                                                                int32_t *Y, int ldy) {
    const int nb = cols / BN_I2_BLOCK;
    const __m256i ones16 = _mm256_set1_epi16(1);
    __m256i acc[BN_GEMM_TILE_N];
    for (int j = 0; j < NJ; j++) acc[j] = _mm256_setzero_si256();
    for (int b = 0; b < nb; b++) {
        const i2_codes c = i2_unpack(w + (size_t)b * BN_I2_BLOCK_BYTES);
#pragma GCC unroll 4
        for (int j = 0; j < NJ; j++) {
            LOAD_X4(X + (size_t)j * cols + (size_t)b * BN_I2_BLOCK);
            acc[j] = _mm256_add_epi32(acc[j], _mm256_madd_epi16(i2_dot16(c, x0, x1, x2, x3), ones16));
        }
    }
    for (int j = 0; j < NJ; j++) Y[(size_t)j * ldy] = hsum_epi32(acc[j]) - sx[j];
}

#define AVX2_TILE(R, NJ, cols, w, rb, X, sx, Y, ldy, pf) i2_gemm_tile(NJ, cols, w, X, sx, Y, ldy)

static void avx2_i2_gemm(int rows, int cols, const uint8_t *W, int n, const int8_t *X, int32_t *Y,
                         int ldy) {
    if (n == 1) { /* a single vector streams the weights: the GEMV order is faster */
        avx2_i2_gemv(rows, cols, W, X, Y);
        return;
    }
    /* one row per register tile (i2_gemm_blocking.h): the vectors' chunk stays in L1 */
    BN_I2_GEMM_BLOCKING(1, bn_gemm_chunk_l1(cols, GEMM_X_BYTES), sum_i8, AVX2_TILE);
}

/* ---- I2 with AVX-VNNI ---------------------------------------------------------
 * VPDPBUSD (u8 x s8, four products per int32 lane, no saturation) lets the
 * codes stay in place instead of being shifted down: with v the 32 block
 * bytes, v & 0xC0 = 64*code(group 0), v & 0x30 = 16*code(group 1), and v << 4
 * (16-bit lanes; the bits crossing into the next byte land in bits the masks
 * clear) gives 64*code(group 2) and 16*code(group 3) the same way. Products
 * with factor 64 and factor 16 go to separate accumulators, which are
 * combined exactly at the end: (acc64 + 4 * acc16) >> 6. Per block: one
 * load, one shift, four ANDs, four VPDPBUSD (plain AVX2: 15 ALU ops). Lane
 * bound as in avx512.c: exact for cols < 699,000. */

#define VNNI_STEP(h, l, wp)                                                           \
    do {                                                                               \
        const __m256i v_ = _mm256_loadu_si256((const __m256i *)(wp));                  \
        const __m256i v4_ = _mm256_slli_epi16(v_, 4);                                  \
        (h) = _mm256_dpbusd_avx_epi32((h), _mm256_and_si256(v_, MC), x0);              \
        (l) = _mm256_dpbusd_avx_epi32((l), _mm256_and_si256(v_, M3), x1);              \
        (h) = _mm256_dpbusd_avx_epi32((h), _mm256_and_si256(v4_, MC), x2);             \
        (l) = _mm256_dpbusd_avx_epi32((l), _mm256_and_si256(v4_, M3), x3);             \
    } while (0)

static inline __m256i vnni_fold(__m256i h, __m256i l) {
    return _mm256_srai_epi32(_mm256_add_epi32(h, _mm256_slli_epi32(l, 2)), 6);
}

__attribute__((target("avxvnni"))) static int32_t vnni_sum_i8(const int8_t *x, int cols) {
    const __m256i ones = _mm256_set1_epi8(1);
    __m256i acc = _mm256_setzero_si256();
    for (int c = 0; c < cols; c += 32)
        acc = _mm256_dpbusd_avx_epi32(acc, ones, _mm256_loadu_si256((const __m256i *)(x + c)));
    return hsum_epi32(acc);
}

__attribute__((target("avxvnni"))) static void vnni_i2_gemv(int rows, int cols, const uint8_t *W,
                                                            const int8_t *x, int32_t *y) {
    const int nb = cols / BN_I2_BLOCK;
    const size_t rb = (size_t)cols / 4;
    const __m256i MC = _mm256_set1_epi8((char)0xC0), M3 = _mm256_set1_epi8(0x30);
    const int32_t sx = vnni_sum_i8(x, cols);
    const int q = rows / 4;
    for (int r = 0; r < q; r++) { /* rows r, r+q, r+2q, r+3q: see the header */
        const uint8_t *w0 = W + (size_t)r * rb, *w1 = w0 + (size_t)q * rb, *w2 = w1 + (size_t)q * rb,
                      *w3 = w2 + (size_t)q * rb;
        __m256i h0 = _mm256_setzero_si256(), h1 = h0, h2 = h0, h3 = h0, l0 = h0, l1 = h0, l2 = h0, l3 = h0;
        for (int b = 0; b < nb; b++) {
            LOAD_X4(x + (size_t)b * BN_I2_BLOCK);
            const size_t o = (size_t)b * BN_I2_BLOCK_BYTES;
            VNNI_STEP(h0, l0, w0 + o);
            VNNI_STEP(h1, l1, w1 + o);
            VNNI_STEP(h2, l2, w2 + o);
            VNNI_STEP(h3, l3, w3 + o);
        }
        const __m128i t = hsum4_epi32(vnni_fold(h0, l0), vnni_fold(h1, l1), vnni_fold(h2, l2), vnni_fold(h3, l3));
        store_quarters_i32(y, r, q, _mm_sub_epi32(t, _mm_set1_epi32(sx)));
    }
    for (int r = 4 * q; r < rows; r++) {
        const uint8_t *w = W + (size_t)r * rb;
        __m256i h0 = _mm256_setzero_si256(), l0 = h0;
        for (int b = 0; b < nb; b++) {
            LOAD_X4(x + (size_t)b * BN_I2_BLOCK);
            VNNI_STEP(h0, l0, w + (size_t)b * BN_I2_BLOCK_BYTES);
        }
        y[r] = hsum_epi32(vnni_fold(h0, l0)) - sx;
    }
}

/* GEMM tile: one row x NJ vectors. Here every group is brought to the same
 * factor 64 ((v << 2k) & 0xC0), so each (row, vector) pair needs a single
 * accumulator; the extra shifts are paid once per block and shared by NJ. */
static inline __attribute__((always_inline, target("avxvnni"))) void
vnni_gemm_tile(int NJ, int cols, const uint8_t *w, const int8_t *X, const int32_t *sx, int32_t *Y, int ldy) {
    const int nb = cols / BN_I2_BLOCK;
    const __m256i MC = _mm256_set1_epi8((char)0xC0);
    /* two accumulators per vector (groups 0-1, groups 2-3): twice as many
     * independent VPDPBUSD chains */
    __m256i acc[BN_GEMM_TILE_N], acd[BN_GEMM_TILE_N];
    for (int j = 0; j < NJ; j++) acc[j] = acd[j] = _mm256_setzero_si256();
    for (int b = 0; b < nb; b++) {
        const __m256i v = _mm256_loadu_si256((const __m256i *)(w + (size_t)b * BN_I2_BLOCK_BYTES));
        const __m256i g0 = _mm256_and_si256(v, MC);
        const __m256i g1 = _mm256_and_si256(_mm256_slli_epi16(v, 2), MC);
        const __m256i g2 = _mm256_and_si256(_mm256_slli_epi16(v, 4), MC);
        const __m256i g3 = _mm256_and_si256(_mm256_slli_epi16(v, 6), MC);
#pragma GCC unroll 4
        for (int j = 0; j < NJ; j++) {
            LOAD_X4(X + (size_t)j * cols + (size_t)b * BN_I2_BLOCK);
            acc[j] = _mm256_dpbusd_avx_epi32(acc[j], g0, x0);
            acd[j] = _mm256_dpbusd_avx_epi32(acd[j], g2, x2);
            acc[j] = _mm256_dpbusd_avx_epi32(acc[j], g1, x1);
            acd[j] = _mm256_dpbusd_avx_epi32(acd[j], g3, x3);
        }
    }
    for (int j = 0; j < NJ; j++)
        Y[(size_t)j * ldy] = hsum_epi32(_mm256_srai_epi32(_mm256_add_epi32(acc[j], acd[j]), 6)) - sx[j];
}

#define VNNI_TILE(R, NJ, cols, w, rb, X, sx, Y, ldy, pf) vnni_gemm_tile(NJ, cols, w, X, sx, Y, ldy)

__attribute__((target("avxvnni"))) static void vnni_i2_gemm(int rows, int cols, const uint8_t *W, int n,
                                                            const int8_t *X, int32_t *Y, int ldy) {
    if (n == 1) { /* a single vector streams the weights: the GEMV order is faster */
        vnni_i2_gemv(rows, cols, W, X, Y);
        return;
    }
    BN_I2_GEMM_BLOCKING(1, bn_gemm_chunk_l1(cols, GEMM_X_BYTES), vnni_sum_i8, VNNI_TILE);
}

/* ---- Q8_0 -------------------------------------------------------------------- */

static inline float fp16_scalar(uint16_t h) { return _cvtsh_ss(h); }

/* Exact int8 x int8 products through sign extension to int16 and pmaddwd
 * (valid for the whole int8 range, -128 included). */
static inline __m256i q8_block_dot(const int8_t *w, __m256i xlo, __m256i xhi) {
    const __m256i wlo = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)w));
    const __m256i whi = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(w + 16)));
    return _mm256_add_epi32(_mm256_madd_epi16(wlo, xlo), _mm256_madd_epi16(whi, xhi));
}

/* Four row streams: every other block (two per cache line), ask for each
 * stream's bytes a few KB ahead (+5% decode on a 2B-4T Q8_0 head, bench). */
#define Q8_PREFETCH_BYTES 4096
#define Q8_PREFETCH4(b)                                                                  \
    do {                                                                                 \
        if (!((b) & 1)) {                                                                \
            _mm_prefetch((const char *)(w0 + (b)) + Q8_PREFETCH_BYTES, _MM_HINT_T0);     \
            _mm_prefetch((const char *)(w1 + (b)) + Q8_PREFETCH_BYTES, _MM_HINT_T0);     \
            _mm_prefetch((const char *)(w2 + (b)) + Q8_PREFETCH_BYTES, _MM_HINT_T0);     \
            _mm_prefetch((const char *)(w3 + (b)) + Q8_PREFETCH_BYTES, _MM_HINT_T0);     \
        }                                                                                \
    } while (0)

/* The Q8_0 GEMV: four row streams, then the leftover rows. PREP(xb) declares
 * what a block's 32 activations give the step ACC(acc, blk, dx). */
#define Q8_GEMV(PREP, ACC)                                                                               \
    const int nb = cols / BN_Q8_BLOCK;                                                                   \
    const int q = rows / 4;                                                                              \
    for (int r = 0; r < q; r++) { /* rows r, r+q, r+2q, r+3q: four streams */                             \
        const bn_block_q8_0 *w0 = W + (size_t)r * nb, *w1 = w0 + (size_t)q * nb, *w2 = w1 + (size_t)q * nb, \
                            *w3 = w2 + (size_t)q * nb;                                                   \
        __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;                                     \
        for (int b = 0; b < nb; b++) {                                                                   \
            PREP(xq + (size_t)b * BN_Q8_BLOCK);                                                          \
            const float d = xd[b];                                                                       \
            Q8_PREFETCH4(b);                                                                             \
            ACC(a0, w0 + b, d);                                                                          \
            ACC(a1, w1 + b, d);                                                                          \
            ACC(a2, w2 + b, d);                                                                          \
            ACC(a3, w3 + b, d);                                                                          \
        }                                                                                                \
        y[r] = hsum_ps(a0), y[r + q] = hsum_ps(a1), y[r + 2 * q] = hsum_ps(a2), y[r + 3 * q] = hsum_ps(a3); \
    }                                                                                                    \
    for (int r = 4 * q; r < rows; r++) {                                                                 \
        const bn_block_q8_0 *w = W + (size_t)r * nb;                                                     \
        __m256 a = _mm256_setzero_ps();                                                                  \
        for (int b = 0; b < nb; b++) {                                                                   \
            PREP(xq + (size_t)b * BN_Q8_BLOCK);                                                          \
            ACC(a, w + b, xd[b]);                                                                        \
        }                                                                                                \
        y[r] = hsum_ps(a);                                                                               \
    }

/* plain AVX2: the activations sign-extended to int16 once per block */
#define Q8_PREP(xb)                                                                    \
    const __m256i xlo = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(xb))); \
    const __m256i xhi = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)((xb) + 16)))
#define Q8_ACC(acc, blk, dx) \
    (acc) = _mm256_fmadd_ps(_mm256_cvtepi32_ps(q8_block_dot((blk)->qs, xlo, xhi)), _mm256_set1_ps(fp16_scalar((blk)->d) * (dx)), (acc))

static void avx2_q8_0_gemv(int rows, int cols, const bn_block_q8_0 *W, const int8_t *xq,
                           const float *xd, float *y) {
    Q8_GEMV(Q8_PREP, Q8_ACC)
}

/* AVX-VNNI Q8_0: weights biased to unsigned (w ^ 0x80 = w + 128), the bias
 * removed by starting each block's accumulator at -128 * (4-lane sums of x),
 * computed once per block for all rows. Exact for every int8 value. */
#define Q8V_PREP(p)                                                      \
    const __m256i xb = _mm256_loadu_si256((const __m256i *)(p));         \
    const __m256i ncorr = _mm256_sub_epi32(                              \
        _mm256_setzero_si256(), _mm256_slli_epi32(_mm256_dpbusd_avx_epi32(_mm256_setzero_si256(), ones, xb), 7))
#define Q8V_ACC(acc, blk, dx)                                                                           \
    do {                                                                                                 \
        const __m256i wv_ = _mm256_xor_si256(_mm256_loadu_si256((const __m256i *)(blk)->qs), bias);      \
        (acc) = _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_dpbusd_avx_epi32(ncorr, wv_, xb)),             \
                                _mm256_set1_ps(fp16_scalar((blk)->d) * (dx)), (acc));                   \
    } while (0)

__attribute__((target("avxvnni"))) static void vnni_q8_0_gemv(int rows, int cols, const bn_block_q8_0 *W,
                                                              const int8_t *xq, const float *xd, float *y) {
    const __m256i ones = _mm256_set1_epi8(1), bias = _mm256_set1_epi8((char)0x80);
    Q8_GEMV(Q8V_PREP, Q8V_ACC)
}

/* ---- float -------------------------------------------------------------------- */

static inline __m256 load_f16x8(const uint16_t *p) {
    return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)p));
}
/* Element i of a float (f16 = 0) or fp16 (f16 = 1) matrix: 8 lanes, or one. */
static inline __attribute__((always_inline)) __m256 load_w8(const void *W, size_t i, int f16) {
    return f16 ? load_f16x8((const uint16_t *)W + i) : _mm256_loadu_ps((const float *)W + i);
}
static inline __attribute__((always_inline)) float load_w1(const void *W, size_t i, int f16) {
    return f16 ? fp16_scalar(((const uint16_t *)W)[i]) : ((const float *)W)[i];
}

/* The float and fp16 GEMVs: one body, specialised by the constant `f16`. */
static inline __attribute__((always_inline)) void float_gemv(int rows, int cols, const void *W, int f16, const float *x,
                                                             float *y) {
    const int c8 = cols & ~7;
    const int q = rows / 4;
    const size_t qc = (size_t)q * cols;
    for (int r = 0; r < q; r++) { /* rows r, r+q, r+2q, r+3q: four sequential streams */
        const size_t w0 = (size_t)r * cols, w1 = w0 + qc, w2 = w1 + qc, w3 = w2 + qc;
        __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
        for (int c = 0; c < c8; c += 8) {
            const __m256 xv = _mm256_loadu_ps(x + c);
            a0 = _mm256_fmadd_ps(load_w8(W, w0 + c, f16), xv, a0);
            a1 = _mm256_fmadd_ps(load_w8(W, w1 + c, f16), xv, a1);
            a2 = _mm256_fmadd_ps(load_w8(W, w2 + c, f16), xv, a2);
            a3 = _mm256_fmadd_ps(load_w8(W, w3 + c, f16), xv, a3);
        }
        float s0 = hsum_ps(a0), s1 = hsum_ps(a1), s2 = hsum_ps(a2), s3 = hsum_ps(a3);
        for (int c = c8; c < cols; c++) {
            s0 += load_w1(W, w0 + c, f16) * x[c];
            s1 += load_w1(W, w1 + c, f16) * x[c];
            s2 += load_w1(W, w2 + c, f16) * x[c];
            s3 += load_w1(W, w3 + c, f16) * x[c];
        }
        y[r] = s0, y[r + q] = s1, y[r + 2 * q] = s2, y[r + 3 * q] = s3;
    }
    for (int r = 4 * q; r < rows; r++) {
        const size_t w = (size_t)r * cols;
        __m256 a = _mm256_setzero_ps(), b = a;
        int c = 0;
        for (; c + 16 <= c8; c += 16) {
            a = _mm256_fmadd_ps(load_w8(W, w + c, f16), _mm256_loadu_ps(x + c), a);
            b = _mm256_fmadd_ps(load_w8(W, w + c + 8, f16), _mm256_loadu_ps(x + c + 8), b);
        }
        for (; c < c8; c += 8) a = _mm256_fmadd_ps(load_w8(W, w + c, f16), _mm256_loadu_ps(x + c), a);
        float s = hsum_ps(_mm256_add_ps(a, b));
        for (; c < cols; c++) s += load_w1(W, w + c, f16) * x[c];
        y[r] = s;
    }
}

static void avx2_f32_gemv(int rows, int cols, const float *W, const float *x, float *y) {
    float_gemv(rows, cols, W, 0, x, y);
}
static void avx2_f16_gemv(int rows, int cols, const uint16_t *W, const float *x, float *y) {
    float_gemv(rows, cols, W, 1, x, y);
}

/* ---- K-quants with Q8_K activations (kernels.h: q4_k_gemv, q6_k_gemv) ------------
 * One row at a time, its blocks in order: each block's integer dot product in
 * int32 lanes (maddubs: unsigned 4/6-bit weights times int8 activations, then
 * madd with the sub-block scales), one horizontal sum, then the same fmaf as
 * the scalar reference. Also the AVX-512 table's (avx512.c). */

static inline float f16_load(const uint8_t *p) { return fp16_scalar(bn_load_f16_bits(p)); }

/* The rows are one stream: ask for the bytes a few blocks ahead (one block
 * spans up to four cache lines). */
#define K_PREFETCH_BYTES 2048
#define K_PREFETCH(p)                                                                  \
    do {                                                                               \
        for (int pf_ = 0; pf_ < 256; pf_ += 64)                                        \
            _mm_prefetch((const char *)(p) + K_PREFETCH_BYTES + pf_, _MM_HINT_T0);      \
    } while (0)

/* Two 16-bit scales: a for the low 128-bit lane, b for the high one. */
static inline __m256i lane_scales(int a, int b) { return _mm256_set_m128i(_mm_set1_epi16((short)b), _mm_set1_epi16((short)a)); }

/* Q4_K: the integer sums of one block, sum_j sc_j * dot_j (8 lanes) and
 * sum_j m_j * (bsums[2j] + bsums[2j+1]). */
static inline __m256i q4k_block(const uint8_t *blk, const int8_t *x, const int16_t *bs, int32_t *msum) {
    const __m256i m4 = _mm256_set1_epi8(0x0F);
    const uint8_t *q = blk + 16;
    uint8_t sm[16]; /* scales sc[0..7], then mins m[0..7] */
    bn_k4_unpack_scales(blk + 4, sm);
    const __m128i pairs = _mm_hadd_epi16(_mm_loadu_si128((const __m128i *)bs), _mm_loadu_si128((const __m128i *)(bs + 8)));
    __m128i ms = _mm_madd_epi16(pairs, _mm_cvtepu8_epi16(_mm_loadl_epi64((const __m128i *)(sm + 8))));
    ms = _mm_add_epi32(ms, _mm_shuffle_epi32(ms, 0x4e));
    *msum = _mm_cvtsi128_si32(_mm_add_epi32(ms, _mm_shuffle_epi32(ms, 0xb1)));
    __m256i acc = _mm256_setzero_si256();
    for (int j = 0; j < 4; j++) { /* 32 bytes: sub-block 2j in the low nibbles, 2j+1 in the high */
        const __m256i qv = _mm256_loadu_si256((const __m256i *)(q + 32 * j));
        const __m256i lo = _mm256_and_si256(qv, m4), hi = _mm256_and_si256(_mm256_srli_epi16(qv, 4), m4);
        const __m256i p0 = _mm256_maddubs_epi16(lo, _mm256_loadu_si256((const __m256i *)(x + 64 * j)));
        const __m256i p1 = _mm256_maddubs_epi16(hi, _mm256_loadu_si256((const __m256i *)(x + 64 * j + 32)));
        acc = _mm256_add_epi32(acc, _mm256_madd_epi16(p0, _mm256_set1_epi16(sm[2 * j])));
        acc = _mm256_add_epi32(acc, _mm256_madd_epi16(p1, _mm256_set1_epi16(sm[2 * j + 1])));
    }
    return acc;
}

/* Q6_K: the integer sum of one block, sum_g sc_g * sum (q - 32) * x (8 lanes). */
static inline __m256i q6k_block(const uint8_t *blk, const int8_t *x, const int16_t *bs) {
    const __m256i m4 = _mm256_set1_epi8(0x0F), m2 = _mm256_set1_epi8(3);
    const int8_t *sc = (const int8_t *)(blk + 192);
    /* the -32 offset: 32 * sum_g sc[g] * bsums[g], from 16-bit lanes */
    const __m256i sc16 = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)sc));
    const __m256i bias = _mm256_madd_epi16(sc16, _mm256_loadu_si256((const __m256i *)bs));
    __m256i acc = _mm256_sub_epi32(_mm256_setzero_si256(), _mm256_slli_epi32(bias, 5));
    for (int h = 0; h < 2; h++) {
        const uint8_t *ql = blk + 64 * h, *qh = blk + 128 + 32 * h;
        const __m256i l0 = _mm256_loadu_si256((const __m256i *)ql);
        const __m256i l1 = _mm256_loadu_si256((const __m256i *)(ql + 32));
        const __m256i hb = _mm256_loadu_si256((const __m256i *)qh);
        __m256i q[4];
        q[0] = _mm256_or_si256(_mm256_and_si256(l0, m4), _mm256_slli_epi16(_mm256_and_si256(hb, m2), 4));
        q[1] = _mm256_or_si256(_mm256_and_si256(l1, m4), _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(hb, 2), m2), 4));
        q[2] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l0, 4), m4),
                               _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(hb, 4), m2), 4));
        q[3] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l1, 4), m4),
                               _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(hb, 6), m2), 4));
        for (int k = 0; k < 4; k++) { /* values 32k..32k+31: groups 8h+2k (low lane) and +1 (high) */
            const __m256i p = _mm256_maddubs_epi16(q[k], _mm256_loadu_si256((const __m256i *)(x + 128 * h + 32 * k)));
            acc = _mm256_add_epi32(acc, _mm256_madd_epi16(p, lane_scales(sc[8 * h + 2 * k], sc[8 * h + 2 * k + 1])));
        }
    }
    return acc;
}

/* Rows r, r+q, r+2q, r+3q (q = rows/4) as four streams: one horizontal sum
 * for the four rows' blocks, and the per-row fmaf as one 4-lane FMA (the
 * same rounding per lane); the remaining rows one at a time. */
#define K_GEMV(NAME, BYTES, IS_Q4)                                                                           \
    void NAME(int rows, int cols, const uint8_t *W, const int8_t *xq, const float *xd, const int16_t *bsums, \
              float *y) {                                                                                    \
        const int nb = cols / BN_QK_K, q = rows / 4;                                                         \
        const size_t rb = (size_t)nb * (BYTES);                                                              \
        for (int r = 0; r < q + (rows - 4 * q); r++) {                                                       \
            const int four = r < q, n = four ? 4 : 1, row0 = four ? r : 3 * q + r;                          \
            const uint8_t *w[4];                                                                             \
            for (int i = 0; i < n; i++) w[i] = W + (size_t)(row0 + i * q) * rb;                              \
            __m128 s = _mm_setzero_ps();                                                                     \
            for (int b = 0; b < nb; b++) {                                                                   \
                const int8_t *x = xq + (size_t)b * BN_QK_K;                                                  \
                const int16_t *bs = bsums + (size_t)b * 16;                                                  \
                __m256i a[4];                                                                                \
                int32_t ms[4] = {0, 0, 0, 0};                                                                \
                float dd[4] = {0, 0, 0, 0}, dm[4] = {0, 0, 0, 0};                                            \
                for (int i = 0; i < 4; i++) {                                                                \
                    if (i >= n) { a[i] = _mm256_setzero_si256(); continue; }                                 \
                    const uint8_t *blk = w[i] + (size_t)b * (BYTES);                                         \
                    K_PREFETCH(blk);                                                                         \
                    if (IS_Q4) {                                                                             \
                        a[i] = q4k_block(blk, x, bs, &ms[i]);                                                \
                        dd[i] = f16_load(blk) * xd[b];                                                       \
                        dm[i] = -(f16_load(blk + 2) * xd[b]);                                                \
                    } else {                                                                                 \
                        a[i] = q6k_block(blk, x, bs);                                                        \
                        dd[i] = f16_load(blk + 208) * xd[b];                                                 \
                    }                                                                                        \
                }                                                                                            \
                s = _mm_fmadd_ps(_mm_loadu_ps(dd), _mm_cvtepi32_ps(hsum4_epi32(a[0], a[1], a[2], a[3])), s); \
                if (IS_Q4) s = _mm_fmadd_ps(_mm_loadu_ps(dm), _mm_cvtepi32_ps(_mm_loadu_si128((const __m128i *)ms)), s); \
            }                                                                                                \
            float out[4];                                                                                    \
            _mm_storeu_ps(out, s);                                                                           \
            for (int i = 0; i < n; i++) y[row0 + i * q] = out[i];                                            \
        }                                                                                                    \
    }

K_GEMV(bn_avx2_q4_k_gemv, BN_Q4_K_BYTES, 1)
K_GEMV(bn_avx2_q6_k_gemv, BN_Q6_K_BYTES, 0)

/* ---- activation quantisation (kernels.h: quantize_i8) --------------------------- */

/* 8 floats times s, rounded half to even, NaN -> 0, clamped to [-128, 127]. */
static inline __m256i quant_lanes(__m256 x, __m256 s) {
    const __m256 v = _mm256_mul_ps(x, s);
    __m256 r = _mm256_round_ps(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    r = _mm256_and_ps(r, _mm256_cmp_ps(v, v, _CMP_ORD_Q));
    r = _mm256_min_ps(_mm256_max_ps(r, _mm256_set1_ps(-128.0f)), _mm256_set1_ps(127.0f));
    return _mm256_cvtps_epi32(r);
}

static inline void store8_i8(int8_t *q, __m256i v) {
    __m128i p = _mm_packs_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
    _mm_storel_epi64((__m128i *)q, _mm_packs_epi16(p, p));
}

static float avx2_quantize_i8(const float *x, int n, int n_padded, int8_t *q) {
    const __m256 absmask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));
    const int n8 = n & ~7;
    float tail[8] = {0}; /* the last n % 8 values, zero-padded: zeros change no maximum */
    memcpy(tail, x + n8, (size_t)(n - n8) * sizeof(float));
    __m256 m = _mm256_setzero_ps();
    /* max_ps returns its second operand when the first is NaN: NaN is skipped */
    for (int i = 0; i < n8; i += 8) m = _mm256_max_ps(_mm256_and_ps(_mm256_loadu_ps(x + i), absmask), m);
    m = _mm256_max_ps(_mm256_and_ps(_mm256_loadu_ps(tail), absmask), m);
    __m128 h = _mm_max_ps(_mm256_castps256_ps128(m), _mm256_extractf128_ps(m, 1));
    h = _mm_max_ps(h, _mm_movehl_ps(h, h));
    const float amax = _mm_cvtss_f32(_mm_max_ss(h, _mm_movehdup_ps(h)));
    if (!(amax > 0.0f) || !isfinite(amax)) {
        memset(q, 0, (size_t)n_padded);
        return 0.0f;
    }
    const __m256 s = _mm256_set1_ps(127.0f / amax);
    for (int i = 0; i < n8; i += 8) store8_i8(q + i, quant_lanes(_mm256_loadu_ps(x + i), s));
    if (n8 < n) {
        int8_t t8[8];
        store8_i8(t8, quant_lanes(_mm256_loadu_ps(tail), s));
        memcpy(q + n8, t8, (size_t)(n - n8));
    }
    memset(q + n, 0, (size_t)(n_padded - n));
    return amax / 127.0f;
}

const bn_kernels bn_kernels_avx2 = BN_KERNEL_TABLE("avx2", &bn_kv_ops_avx2,
    avx2_i2_gemv, avx2_i2_gemm, avx2_q8_0_gemv,
    bn_avx2_q4_k_gemv, bn_avx2_q6_k_gemv, avx2_quantize_i8, avx2_f32_gemv, avx2_f16_gemv);

const bn_kernels bn_kernels_avx2_vnni = BN_KERNEL_TABLE("avx2-vnni", &bn_kv_ops_avx2,
    vnni_i2_gemv, vnni_i2_gemm, vnni_q8_0_gemv,
    bn_avx2_q4_k_gemv, bn_avx2_q6_k_gemv, avx2_quantize_i8, avx2_f32_gemv, avx2_f16_gemv);
