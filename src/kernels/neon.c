/*
 * neon.c - ARM64 kernels. Compiled for plain armv8-a (Advanced SIMD is part
 * of the base ISA); the SDOT variants are separate functions compiled with
 * target("arch=armv8.2-a+dotprod") and reached only through the
 * "neon-dotprod" table, which dispatch.c offers only when getauxval(AT_HWCAP)
 * has HWCAP_ASIMDDP. See docs/kernels.md.
 *
 * Ternary: an I2 block (32 bytes, 128 weights) is two 16-byte vectors; byte p
 * of the first holds weights p, p+32, p+64, p+96 and byte p of the second
 * weights 16+p, 48+p, 80+p, 112+p, so each (half, group) code vector lines up
 * with 16 consecutive activations. Codes 0..2 multiply signed activations
 * and the -1 offset is applied once per row:
 *     sum (code - 1) * x  =  sum code * x  -  sum x.
 * Without SDOT, products go through SMULL/SMLAL2 into int16 lanes (a lane sums
 * 2 products of at most 3 * 128 per (half, group) pair, 16 per block: <= 6144)
 * and are widened into int32 once per block with SADALP.
 *
 * GEMV streaming order: four rows share the activation loads and are taken
 * from the four quarters of the row range (rows r, r+q, r+2q, r+3q), four
 * independent sequential streams, as on x86.
 *
 * 32-bit ARM (armhf with NEON, e.g. 32-bit Raspberry Pi OS): the plain ternary
 * GEMV/GEMM below compile there too, with the two AArch64 instructions they
 * use spelled as 32-bit NEON does (bn_addv_s32, bn_mlal_high_s8), and form
 * the "neon" table with the scalar table's other entries
 * (bn_kernels_neon32_init, chosen when AT_HWCAP has HWCAP_NEON).
 */
#if defined(__aarch64__) || (defined(__arm__) && defined(__ARM_NEON) && defined(BN_HAVE_NEON32))

#include <arm_neon.h>
#include <math.h>

#include "common.h"
#include "kernels/kernels.h"
#include "kernels/i2_gemm_blocking.h"
#include "kernels/k_quant_gemv.h"

#if defined(__aarch64__)
#define bn_addv_s32 vaddvq_s32
#define bn_addv_f32 vaddvq_f32
#define bn_mlal_high_s8 vmlal_high_s8
#define bn_mull_high_s8 vmull_high_s8
#define bn_fma_f32 vfmaq_f32
#define bn_fma_n_f32 vfmaq_n_f32
#else
static inline int32_t bn_addv_s32(int32x4_t v) {
    const int32x2_t s = vadd_s32(vget_low_s32(v), vget_high_s32(v));
    return vget_lane_s32(vpadd_s32(s, s), 0);
}
static inline float bn_addv_f32(float32x4_t v) {
    const float32x2_t s = vadd_f32(vget_low_f32(v), vget_high_f32(v));
    return vget_lane_f32(vpadd_f32(s, s), 0);
}
static inline int16x8_t bn_mlal_high_s8(int16x8_t acc, int8x16_t a, int8x16_t b) {
    return vmlal_s8(acc, vget_high_s8(a), vget_high_s8(b));
}
static inline int16x8_t bn_mull_high_s8(int8x16_t a, int8x16_t b) { return vmull_s8(vget_high_s8(a), vget_high_s8(b)); }
/* -mfpu=neon has no fused multiply-add: multiply, then add (float kernels may
 * round differently from the scalar ones; tests/test_kernels.c allows for it) */
#define bn_fma_f32 vmlaq_f32
#define bn_fma_n_f32 vmlaq_n_f32
#endif

#define GEMM_X_BYTES 24576 /* activation bytes per GEMM chunk: stays in L1 (bn_gemm_chunk_l1) */
#if !defined(__aarch64__)
#elif defined(__clang__)
/* clang spells the feature "dotprod" and (clang <= 14) declares vdotq_s32
 * only when the whole unit is built for dotprod, hence the asm */
#define DOTPROD __attribute__((target("dotprod")))
static inline int32x4_t bn_sdot(int32x4_t acc, int8x16_t a, int8x16_t b) {
    __asm__("sdot %0.4s, %1.16b, %2.16b" : "+w"(acc) : "w"(a), "w"(b));
    return acc;
}
#else
#define DOTPROD __attribute__((target("arch=armv8.2-a+dotprod")))
#define bn_sdot vdotq_s32
#endif

extern const bn_kernels bn_kernels_neon_dotprod;


/* sum of cols (multiple of 16) int8 values */
static int32_t sum_i8(const int8_t *x, int cols) {
    int32x4_t acc = vdupq_n_s32(0);
    for (int c = 0; c < cols; c += 16) acc = vpadalq_s16(acc, vpaddlq_s8(vld1q_s8(x + c)));
    return bn_addv_s32(acc);
}

/* The eight code vectors of one block: c[2g + h] = group g, half h. */
typedef struct {
    int8x16_t c[8];
} i2_codes;

static inline i2_codes i2_unpack(const uint8_t *w) {
    const uint8x16_t m3 = vdupq_n_u8(3);
    i2_codes k;
    for (int h = 0; h < 2; h++) {
        const uint8x16_t v = vld1q_u8(w + 16 * h);
        k.c[0 + h] = vreinterpretq_s8_u8(vshrq_n_u8(v, 6));
        k.c[2 + h] = vreinterpretq_s8_u8(vandq_u8(vshrq_n_u8(v, 4), m3));
        k.c[4 + h] = vreinterpretq_s8_u8(vandq_u8(vshrq_n_u8(v, 2), m3));
        k.c[6 + h] = vreinterpretq_s8_u8(vandq_u8(v, m3));
    }
    return k;
}

/* The eight activation vectors of one block, in the same order. */
typedef struct {
    int8x16_t x[8];
} i2_acts;

static inline i2_acts i2_load_x(const int8_t *xb) {
    i2_acts a;
    for (int g = 0; g < 4; g++) {
        a.x[2 * g] = vld1q_s8(xb + 32 * g);
        a.x[2 * g + 1] = vld1q_s8(xb + 32 * g + 16);
    }
    return a;
}

/* plain NEON: int32 lanes of sum code * x over one block */
static inline int32x4_t i2_block_mla(int32x4_t acc, const i2_codes *k, const i2_acts *a) {
    int16x8_t p = vmull_s8(vget_low_s8(k->c[0]), vget_low_s8(a->x[0]));
    p = bn_mlal_high_s8(p, k->c[0], a->x[0]);
    for (int i = 1; i < 8; i++) {
        p = vmlal_s8(p, vget_low_s8(k->c[i]), vget_low_s8(a->x[i]));
        p = bn_mlal_high_s8(p, k->c[i], a->x[i]);
    }
    return vpadalq_s16(acc, p);
}

static inline void store_quarters(int32_t *y, int r, int q, int32_t s0, int32_t s1, int32_t s2, int32_t s3) {
    y[r] = s0, y[r + q] = s1, y[r + 2 * q] = s2, y[r + 3 * q] = s3;
}

static void neon_i2_gemv(int rows, int cols, const uint8_t *W, const int8_t *x, int32_t *y) {
    const int nb = cols / BN_I2_BLOCK;
    const size_t rb = (size_t)cols / 4;
    const int32_t sx = sum_i8(x, cols);
    const int q = rows / 4;
    for (int r = 0; r < q; r++) {
        const uint8_t *w0 = W + (size_t)r * rb, *w1 = w0 + (size_t)q * rb, *w2 = w1 + (size_t)q * rb,
                      *w3 = w2 + (size_t)q * rb;
        int32x4_t a0 = vdupq_n_s32(0), a1 = a0, a2 = a0, a3 = a0;
        for (int b = 0; b < nb; b++) {
            const i2_acts xa = i2_load_x(x + (size_t)b * BN_I2_BLOCK);
            const size_t o = (size_t)b * BN_I2_BLOCK_BYTES;
            i2_codes k = i2_unpack(w0 + o);
            a0 = i2_block_mla(a0, &k, &xa);
            k = i2_unpack(w1 + o);
            a1 = i2_block_mla(a1, &k, &xa);
            k = i2_unpack(w2 + o);
            a2 = i2_block_mla(a2, &k, &xa);
            k = i2_unpack(w3 + o);
            a3 = i2_block_mla(a3, &k, &xa);
        }
        store_quarters(y, r, q, bn_addv_s32(a0) - sx, bn_addv_s32(a1) - sx, bn_addv_s32(a2) - sx, bn_addv_s32(a3) - sx);
    }
    for (int r = 4 * q; r < rows; r++) {
        const uint8_t *w = W + (size_t)r * rb;
        int32x4_t a = vdupq_n_s32(0);
        for (int b = 0; b < nb; b++) {
            const i2_acts xa = i2_load_x(x + (size_t)b * BN_I2_BLOCK);
            const i2_codes k = i2_unpack(w + (size_t)b * BN_I2_BLOCK_BYTES);
            a = i2_block_mla(a, &k, &xa);
        }
        y[r] = bn_addv_s32(a) - sx;
    }
}

static inline __attribute__((always_inline)) void i2_gemm_tile(int NJ, int cols, const uint8_t *w,
                                                                const int8_t *X, const int32_t *sx,
                                                                int32_t *Y, int ldy) {
    const int nb = cols / BN_I2_BLOCK;
    int32x4_t acc[BN_GEMM_TILE_N];
    for (int j = 0; j < NJ; j++) acc[j] = vdupq_n_s32(0);
    for (int b = 0; b < nb; b++) {
        const i2_codes k = i2_unpack(w + (size_t)b * BN_I2_BLOCK_BYTES);
        for (int j = 0; j < NJ; j++) {
            const i2_acts xa = i2_load_x(X + (size_t)j * cols + (size_t)b * BN_I2_BLOCK);
            acc[j] = i2_block_mla(acc[j], &k, &xa);
        }
    }
    for (int j = 0; j < NJ; j++) Y[(size_t)j * ldy] = bn_addv_s32(acc[j]) - sx[j];
}

#define NEON_TILE(R, NJ, cols, w, rb, X, sx, Y, ldy, pf) i2_gemm_tile(NJ, cols, w, X, sx, Y, ldy)

static void neon_i2_gemm(int rows, int cols, const uint8_t *W, int n, const int8_t *X, int32_t *Y, int ldy) {
    if (n == 1) { /* a single vector streams the weights: the GEMV order is faster */
        neon_i2_gemv(rows, cols, W, X, Y);
        return;
    }
    BN_I2_GEMM_BLOCKING(1, bn_gemm_chunk_l1(cols, GEMM_X_BYTES), sum_i8, NEON_TILE); /* i2_gemm_blocking.h */
}

#if defined(__aarch64__)
/* ---- SDOT variants ------------------------------------------------------------ */

DOTPROD static int32_t dot_sum_i8(const int8_t *x, int cols) {
    const int8x16_t ones = vdupq_n_s8(1);
    int32x4_t acc = vdupq_n_s32(0);
    for (int c = 0; c < cols; c += 16) acc = bn_sdot(acc, ones, vld1q_s8(x + c));
    return vaddvq_s32(acc);
}

/* two accumulators (one per half) keep the SDOT chains short */
#define DOT_BLOCK(lo, hi, k, xa)                                    \
    do {                                                            \
        for (int i_ = 0; i_ < 8; i_ += 2) {                         \
            (lo) = bn_sdot((lo), (k).c[i_], (xa).x[i_]);          \
            (hi) = bn_sdot((hi), (k).c[i_ + 1], (xa).x[i_ + 1]);  \
        }                                                           \
    } while (0)

DOTPROD static void dot_i2_gemv(int rows, int cols, const uint8_t *W, const int8_t *x, int32_t *y) {
    const int nb = cols / BN_I2_BLOCK;
    const size_t rb = (size_t)cols / 4;
    const int32_t sx = dot_sum_i8(x, cols);
    const int q = rows / 4;
    for (int r = 0; r < q; r++) {
        const uint8_t *w0 = W + (size_t)r * rb, *w1 = w0 + (size_t)q * rb, *w2 = w1 + (size_t)q * rb,
                      *w3 = w2 + (size_t)q * rb;
        int32x4_t l0 = vdupq_n_s32(0), l1 = l0, l2 = l0, l3 = l0, h0 = l0, h1 = l0, h2 = l0, h3 = l0;
        for (int b = 0; b < nb; b++) {
            const i2_acts xa = i2_load_x(x + (size_t)b * BN_I2_BLOCK);
            const size_t o = (size_t)b * BN_I2_BLOCK_BYTES;
            i2_codes k = i2_unpack(w0 + o);
            DOT_BLOCK(l0, h0, k, xa);
            k = i2_unpack(w1 + o);
            DOT_BLOCK(l1, h1, k, xa);
            k = i2_unpack(w2 + o);
            DOT_BLOCK(l2, h2, k, xa);
            k = i2_unpack(w3 + o);
            DOT_BLOCK(l3, h3, k, xa);
        }
        store_quarters(y, r, q, vaddvq_s32(vaddq_s32(l0, h0)) - sx, vaddvq_s32(vaddq_s32(l1, h1)) - sx,
                       vaddvq_s32(vaddq_s32(l2, h2)) - sx, vaddvq_s32(vaddq_s32(l3, h3)) - sx);
    }
    for (int r = 4 * q; r < rows; r++) {
        const uint8_t *w = W + (size_t)r * rb;
        int32x4_t lo = vdupq_n_s32(0), hi = lo;
        for (int b = 0; b < nb; b++) {
            const i2_acts xa = i2_load_x(x + (size_t)b * BN_I2_BLOCK);
            const i2_codes k = i2_unpack(w + (size_t)b * BN_I2_BLOCK_BYTES);
            DOT_BLOCK(lo, hi, k, xa);
        }
        y[r] = vaddvq_s32(vaddq_s32(lo, hi)) - sx;
    }
}

DOTPROD static inline __attribute__((always_inline)) void dot_gemm_tile(int NJ, int cols, const uint8_t *w,
                                                                        const int8_t *X, const int32_t *sx,
                                                                        int32_t *Y, int ldy) {
    const int nb = cols / BN_I2_BLOCK;
    int32x4_t lo[BN_GEMM_TILE_N], hi[BN_GEMM_TILE_N];
    for (int j = 0; j < NJ; j++) lo[j] = hi[j] = vdupq_n_s32(0);
    for (int b = 0; b < nb; b++) {
        const i2_codes k = i2_unpack(w + (size_t)b * BN_I2_BLOCK_BYTES);
        for (int j = 0; j < NJ; j++) {
            const i2_acts xa = i2_load_x(X + (size_t)j * cols + (size_t)b * BN_I2_BLOCK);
            DOT_BLOCK(lo[j], hi[j], k, xa);
        }
    }
    for (int j = 0; j < NJ; j++) Y[(size_t)j * ldy] = vaddvq_s32(vaddq_s32(lo[j], hi[j])) - sx[j];
}

#define DOT_TILE(R, NJ, cols, w, rb, X, sx, Y, ldy, pf) dot_gemm_tile(NJ, cols, w, X, sx, Y, ldy)

DOTPROD static void dot_i2_gemm(int rows, int cols, const uint8_t *W, int n, const int8_t *X, int32_t *Y,
                                int ldy) {
    if (n == 1) { /* a single vector streams the weights: the GEMV order is faster */
        dot_i2_gemv(rows, cols, W, X, Y);
        return;
    }
    BN_I2_GEMM_BLOCKING(1, bn_gemm_chunk_l1(cols, GEMM_X_BYTES), dot_sum_i8, DOT_TILE);
}
#endif /* __aarch64__: SDOT */

/* ---- Q8_0 --------------------------------------------------------------------- */

#if defined(__aarch64__)
static inline float fp16_scalar(uint16_t h) {
    __fp16 f;
    memcpy(&f, &h, sizeof f);
    return (float)f;
}
#else
#define fp16_scalar bn_fp16_to_fp32 /* __fp16 needs -mfp16-format on 32-bit ARM */
#endif

/* exact for all int8 values: single products (<= 16384) fit int16 */
static inline int32x4_t q8_block_mul(const int8_t *w, const int8_t *xb) {
    const int8x16_t w0 = vld1q_s8(w), w1 = vld1q_s8(w + 16), x0 = vld1q_s8(xb), x1 = vld1q_s8(xb + 16);
    int32x4_t s = vpaddlq_s16(vmull_s8(vget_low_s8(w0), vget_low_s8(x0)));
    s = vpadalq_s16(s, bn_mull_high_s8(w0, x0));
    s = vpadalq_s16(s, vmull_s8(vget_low_s8(w1), vget_low_s8(x1)));
    return vpadalq_s16(s, bn_mull_high_s8(w1, x1));
}

#if defined(__aarch64__)
DOTPROD static inline int32x4_t q8_block_dot(const int8_t *w, const int8_t *xb) {
    const int32x4_t s = bn_sdot(vdupq_n_s32(0), vld1q_s8(w), vld1q_s8(xb));
    return bn_sdot(s, vld1q_s8(w + 16), vld1q_s8(xb + 16));
}
#endif

#define Q8_GEMV(BLOCK)                                                                                   \
    const int nb = cols / BN_Q8_BLOCK;                                                                   \
    const int q = rows / 4;                                                                              \
    for (int r = 0; r < q; r++) {                                                                        \
        const bn_block_q8_0 *w0 = W + (size_t)r * nb, *w1 = w0 + (size_t)q * nb, *w2 = w1 + (size_t)q * nb, \
                            *w3 = w2 + (size_t)q * nb;                                                   \
        float32x4_t a0 = vdupq_n_f32(0), a1 = a0, a2 = a0, a3 = a0;                                     \
        for (int b = 0; b < nb; b++) {                                                                   \
            const int8_t *xb = xq + (size_t)b * BN_Q8_BLOCK;                                             \
            const float d = xd[b];                                                                       \
            a0 = bn_fma_n_f32(a0, vcvtq_f32_s32(BLOCK(w0[b].qs, xb)), fp16_scalar(w0[b].d) * d);          \
            a1 = bn_fma_n_f32(a1, vcvtq_f32_s32(BLOCK(w1[b].qs, xb)), fp16_scalar(w1[b].d) * d);          \
            a2 = bn_fma_n_f32(a2, vcvtq_f32_s32(BLOCK(w2[b].qs, xb)), fp16_scalar(w2[b].d) * d);          \
            a3 = bn_fma_n_f32(a3, vcvtq_f32_s32(BLOCK(w3[b].qs, xb)), fp16_scalar(w3[b].d) * d);          \
        }                                                                                                \
        y[r] = bn_addv_f32(a0), y[r + q] = bn_addv_f32(a1), y[r + 2 * q] = bn_addv_f32(a2);                 \
        y[r + 3 * q] = bn_addv_f32(a3);                                                                   \
    }                                                                                                    \
    for (int r = 4 * q; r < rows; r++) {                                                                 \
        const bn_block_q8_0 *w = W + (size_t)r * nb;                                                     \
        float32x4_t a = vdupq_n_f32(0);                                                                  \
        for (int b = 0; b < nb; b++)                                                                     \
            a = bn_fma_n_f32(a, vcvtq_f32_s32(BLOCK(w[b].qs, xq + (size_t)b * BN_Q8_BLOCK)),              \
                            fp16_scalar(w[b].d) * xd[b]);                                                \
        y[r] = bn_addv_f32(a);                                                                            \
    }

static void neon_q8_0_gemv(int rows, int cols, const bn_block_q8_0 *W, const int8_t *xq, const float *xd,
                           float *y) {
    Q8_GEMV(q8_block_mul)
}

#if defined(__aarch64__)
DOTPROD static void dot_q8_0_gemv(int rows, int cols, const bn_block_q8_0 *W, const int8_t *xq,
                                  const float *xd, float *y) {
    Q8_GEMV(q8_block_dot)
}
#endif

/* ---- float --------------------------------------------------------------------- */


#define FLOAT_GEMV(T, LOAD4, SCALAR)                                                                     \
    const int c4 = cols & ~3;                                                                            \
    const int q = rows / 4;                                                                              \
    for (int r = 0; r < q; r++) {                                                                        \
        const T *w0 = W + (size_t)r * cols, *w1 = w0 + (size_t)q * cols, *w2 = w1 + (size_t)q * cols,    \
                *w3 = w2 + (size_t)q * cols;                                                             \
        float32x4_t a0 = vdupq_n_f32(0), a1 = a0, a2 = a0, a3 = a0;                                     \
        for (int c = 0; c < c4; c += 4) {                                                                \
            const float32x4_t xv = vld1q_f32(x + c);                                                     \
            a0 = bn_fma_f32(a0, LOAD4(w0 + c), xv);                                                       \
            a1 = bn_fma_f32(a1, LOAD4(w1 + c), xv);                                                       \
            a2 = bn_fma_f32(a2, LOAD4(w2 + c), xv);                                                       \
            a3 = bn_fma_f32(a3, LOAD4(w3 + c), xv);                                                       \
        }                                                                                                \
        float s0 = bn_addv_f32(a0), s1 = bn_addv_f32(a1), s2 = bn_addv_f32(a2), s3 = bn_addv_f32(a3);        \
        for (int c = c4; c < cols; c++) {                                                                \
            s0 += SCALAR(w0[c]) * x[c];                                                                  \
            s1 += SCALAR(w1[c]) * x[c];                                                                  \
            s2 += SCALAR(w2[c]) * x[c];                                                                  \
            s3 += SCALAR(w3[c]) * x[c];                                                                  \
        }                                                                                                \
        y[r] = s0, y[r + q] = s1, y[r + 2 * q] = s2, y[r + 3 * q] = s3;                                  \
    }                                                                                                    \
    for (int r = 4 * q; r < rows; r++) {                                                                 \
        const T *w = W + (size_t)r * cols;                                                               \
        float32x4_t a = vdupq_n_f32(0), b = a;                                                           \
        int c = 0;                                                                                       \
        for (; c + 8 <= c4; c += 8) {                                                                    \
            a = bn_fma_f32(a, LOAD4(w + c), vld1q_f32(x + c));                                            \
            b = bn_fma_f32(b, LOAD4(w + c + 4), vld1q_f32(x + c + 4));                                    \
        }                                                                                                \
        for (; c < c4; c += 4) a = bn_fma_f32(a, LOAD4(w + c), vld1q_f32(x + c));                         \
        float s = bn_addv_f32(vaddq_f32(a, b));                                                           \
        for (; c < cols; c++) s += SCALAR(w[c]) * x[c];                                                  \
        y[r] = s;                                                                                        \
    }

#define F32_SCALAR(v) (v)
static void neon_f32_gemv(int rows, int cols, const float *W, const float *x, float *y) {
    FLOAT_GEMV(float, vld1q_f32, F32_SCALAR)
}

#if defined(__aarch64__) /* 32-bit ARM converts fp16 only with the fp16 extension: scalar there */
static inline float32x4_t load_f16_lo(const uint16_t *p) {
    return vcvt_f32_f16(vreinterpret_f16_u16(vld1_u16(p)));
}

static void neon_f16_gemv(int rows, int cols, const uint16_t *W, const float *x, float *y) {
    FLOAT_GEMV(uint16_t, load_f16_lo, fp16_scalar)
}
#endif

/* ---- K-quants with Q8_K activations (kernels.h: q4_k_gemv, q6_k_gemv) ------
 * Per block the exact int32 dot product from widening multiplies (weights
 * below 64 times int8: two products fit int16), then the scalar's fmaf. */

/* Partial sums of w[i] * x[i], i < 16 (w unsigned and < 64). */
static inline int32x4_t dot16_u6(uint8x16_t w, int8x16_t x) {
    const int8x16_t ws = vreinterpretq_s8_u8(w);
    return vpaddlq_s16(vmlal_s8(vmull_s8(vget_low_s8(ws), vget_low_s8(x)), vget_high_s8(ws), vget_high_s8(x)));
}

static inline void q4k_sums(const uint8_t *blk, const int8_t *x, const int16_t *bs, int32_t *isum, int32_t *msum) {
    const uint8x16_t m4 = vdupq_n_u8(0x0F);
    const uint8_t *q = blk + 16;
    int32x4_t acc = vdupq_n_s32(0);
    *msum = 0;
    for (int j = 0; j < 4; j++) { /* bytes 32j..: sub-block 2j in the low nibbles, 2j+1 in the high */
        int s0, m0, s1, m1;
        bn_k4_scale_min(2 * j, blk + 4, &s0, &m0);
        bn_k4_scale_min(2 * j + 1, blk + 4, &s1, &m1);
        *msum += m0 * (bs[4 * j] + bs[4 * j + 1]) + m1 * (bs[4 * j + 2] + bs[4 * j + 3]);
        for (int o = 0; o < 32; o += 16) {
            const uint8x16_t qv = vld1q_u8(q + 32 * j + o);
            acc = vmlaq_n_s32(acc, dot16_u6(vandq_u8(qv, m4), vld1q_s8(x + 64 * j + o)), s0);
            acc = vmlaq_n_s32(acc, dot16_u6(vshrq_n_u8(qv, 4), vld1q_s8(x + 64 * j + 32 + o)), s1);
        }
    }
    *isum = bn_addv_s32(acc);
}

static inline int32_t q6k_sum(const uint8_t *blk, const int8_t *x) {
    const uint8x16_t m4 = vdupq_n_u8(0x0F), m2 = vdupq_n_u8(3);
    const int8_t *sc = (const int8_t *)(blk + 192);
    int32x4_t acc = vdupq_n_s32(0);
    for (int h = 0; h < 2; h++) {
        const uint8_t *ql = blk + 64 * h, *qh = blk + 128 + 32 * h;
        for (int o = 0; o < 32; o += 16) { /* values l = o..o+15 of each quarter: group 8h + 2k + o/16 */
            const uint8x16_t l0 = vld1q_u8(ql + o), l1 = vld1q_u8(ql + 32 + o), hb = vld1q_u8(qh + o);
            uint8x16_t q[4];
            q[0] = vorrq_u8(vandq_u8(l0, m4), vshlq_n_u8(vandq_u8(hb, m2), 4));
            q[1] = vorrq_u8(vandq_u8(l1, m4), vshlq_n_u8(vandq_u8(vshrq_n_u8(hb, 2), m2), 4));
            q[2] = vorrq_u8(vshrq_n_u8(l0, 4), vshlq_n_u8(vandq_u8(vshrq_n_u8(hb, 4), m2), 4));
            q[3] = vorrq_u8(vshrq_n_u8(l1, 4), vshlq_n_u8(vshrq_n_u8(hb, 6), 4));
            for (int k = 0; k < 4; k++)
                acc = vmlaq_n_s32(acc, dot16_u6(q[k], vld1q_s8(x + 128 * h + 32 * k + o)), sc[8 * h + 2 * k + o / 16]);
        }
    }
    return bn_addv_s32(acc);
}

BN_Q4_K_GEMV(neon_q4_k_gemv, q4k_sums, fmaf)
BN_Q6_K_GEMV(neon_q6_k_gemv, q6k_sum, fmaf)

#if defined(__aarch64__)
/* ---- activation quantisation (kernels.h: quantize_i8; vrndnq_f32 is ARMv8) -- */

/* 8 floats (two vectors) times s, rounded half to even, NaN -> 0, saturated to int8. */
static inline int8x8_t quant8(float32x4_t a, float32x4_t b, float32x4_t s) {
    const float32x4_t lo = vdupq_n_f32(-128.0f), hi = vdupq_n_f32(127.0f);
    float32x4_t va = vmulq_f32(a, s), vb = vmulq_f32(b, s);
    float32x4_t ra = vreinterpretq_f32_u32(vandq_u32(vreinterpretq_u32_f32(vrndnq_f32(va)), vceqq_f32(va, va)));
    float32x4_t rb = vreinterpretq_f32_u32(vandq_u32(vreinterpretq_u32_f32(vrndnq_f32(vb)), vceqq_f32(vb, vb)));
    ra = vminq_f32(vmaxq_f32(ra, lo), hi);
    rb = vminq_f32(vmaxq_f32(rb, lo), hi);
    return vqmovn_s16(vcombine_s16(vqmovn_s32(vcvtq_s32_f32(ra)), vqmovn_s32(vcvtq_s32_f32(rb))));
}

/* max(m, |x|) per lane where |x| > m: false for NaN, so NaN is skipped */
static inline float32x4_t max_abs_skip_nan(float32x4_t m, float32x4_t x) {
    const float32x4_t a = vabsq_f32(x);
    return vbslq_f32(vcgtq_f32(a, m), a, m);
}

static float neon_quantize_i8(const float *x, int n, int n_padded, int8_t *q) {
    const int n8 = n & ~7;
    float tail[8] = {0}; /* the last n % 8 values, zero-padded: zeros change no maximum */
    memcpy(tail, x + n8, (size_t)(n - n8) * sizeof(float));
    float32x4_t m = vdupq_n_f32(0.0f);
    for (int i = 0; i < n8; i += 4) m = max_abs_skip_nan(m, vld1q_f32(x + i));
    m = max_abs_skip_nan(m, vld1q_f32(tail));
    m = max_abs_skip_nan(m, vld1q_f32(tail + 4));
    const float amax = vmaxvq_f32(m);
    if (!(amax > 0.0f) || !isfinite(amax)) {
        memset(q, 0, (size_t)n_padded);
        return 0.0f;
    }
    const float32x4_t s = vdupq_n_f32(127.0f / amax);
    for (int i = 0; i < n8; i += 8) vst1_s8(q + i, quant8(vld1q_f32(x + i), vld1q_f32(x + i + 4), s));
    if (n8 < n) {
        int8_t t8[8];
        vst1_s8(t8, quant8(vld1q_f32(tail), vld1q_f32(tail + 4), s));
        memcpy(q + n8, t8, (size_t)(n - n8));
    }
    memset(q + n, 0, (size_t)(n_padded - n));
    return amax / 127.0f;
}

const bn_kernels bn_kernels_neon = BN_KERNEL_TABLE("neon", &bn_kv_ops_neon,
    neon_i2_gemv, neon_i2_gemm, neon_q8_0_gemv,
    neon_q4_k_gemv, neon_q6_k_gemv, neon_quantize_i8, neon_f32_gemv, neon_f16_gemv);

const bn_kernels bn_kernels_neon_dotprod = BN_KERNEL_TABLE("neon-dotprod", &bn_kv_ops_neon,
    dot_i2_gemv, dot_i2_gemm, dot_q8_0_gemv,
    neon_q4_k_gemv, neon_q6_k_gemv, neon_quantize_i8, neon_f32_gemv, neon_f16_gemv);
#else
/* 32-bit ARM: the scalar table with the kernels above that build there (the
 * ternary, Q8_0, K-quant and f32 GEMVs); dispatch.c fills it once. */
void bn_kernels_neon32_init(bn_kernels *t) {
    *t = bn_kernels_scalar;
    t->isa = "neon";
    t->i2_gemv = neon_i2_gemv, t->i2_gemm = neon_i2_gemm, t->q8_0_gemv = neon_q8_0_gemv;
    t->q4_k_gemv = neon_q4_k_gemv, t->q6_k_gemv = neon_q6_k_gemv, t->f32_gemv = neon_f32_gemv;
}
#endif /* __aarch64__ */

#else
/* Neither ARM64 nor 32-bit ARM with NEON: nothing to compile (the Makefile adds
 * this file for those targets only; the typedef keeps ISO C happy about an
 * empty unit). */
typedef int bn_neon_unused;
#endif
