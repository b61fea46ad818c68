/*
 * rvv.c - RISC-V Vector 1.0 kernels for the ternary I2 layout (kernels.h),
 * vector-length agnostic: one I2 block (32 bytes, 128 weights) is one vector
 * of 32 bytes at LMUL 2, which every VLEN >= 128 holds (the V extension's
 * minimum). The integer arithmetic is exact, so the results are the scalar
 * table's bit for bit (tests/test_kernels.c checks every table).
 *
 * Per block: the codes of weights p + 32k are bits 7-6, 5-4, 3-2, 1-0 of byte
 * p (k = 0..3): a shift and a mask each; vwmulsu / vwmaccsu multiply them
 * (unsigned, 0..2) with the int8 activations into 16-bit lanes (at most
 * 4 * 2 * 128 per lane), which vwadd.wv folds into 32-bit accumulators; one
 * reduction per row. sum (code - 1) * x = sum code * x - sum x.
 *
 * Q8_0 (the usual 8-bit head): each block's integer dot product in vectors
 * (vwmul + vwredsum), the float sum over blocks in the scalar table's order,
 * so the bits are the scalar table's too.
 *
 * Activation quantisation: absmax by vfredmax (NaN skipped, as the scalar
 * comparison does), x * (127 / amax) rounded half to even by vfcvt (the
 * default rounding mode, as the scalar's 1.5 * 2^23 trick), clamped, NaN to 0:
 * the scalar bits.
 *
 * Q4_K and Q6_K heads: the integer sums in vectors, the float steps as the
 * scalar table's. The KV-cache kernels are kv_rvv.c's; the float GEMVs are
 * the scalar table's.
 *
 * Built only for riscv64 with a compiler that has the RVV intrinsics (the
 * Makefile compiles this file with clang when gcc lacks them); chosen at run
 * time when AT_HWCAP has V (dispatch.c). Both intrinsic spellings are
 * accepted (rvv_compat.h).
 */
#include <math.h>

#include "common.h"
#include "kernels/kernels.h"
#include "kernels/k_quant_gemv.h"
#include "kernels/kv_kernels.h"
#include "kernels/rvv_compat.h"

extern const bn_kv_ops bn_kv_ops_rvv; /* kv_rvv.c */

/* acc (32 lanes of int32) += the 128 products of one block. */
static inline vint32m8_t block_dot(vint32m8_t acc, const uint8_t *w, const int8_t *x) {
    const size_t vl = BN_I2_BLOCK_BYTES;
    const vuint8m2_t v = RV(vle8_v_u8m2)(w, vl);
    const vuint8m2_t c0 = RV(vsrl_vx_u8m2)(v, 6, vl);
    const vuint8m2_t c1 = RV(vand_vx_u8m2)(RV(vsrl_vx_u8m2)(v, 4, vl), 3, vl);
    const vuint8m2_t c2 = RV(vand_vx_u8m2)(RV(vsrl_vx_u8m2)(v, 2, vl), 3, vl);
    const vuint8m2_t c3 = RV(vand_vx_u8m2)(v, 3, vl);
    vint16m4_t s = RV(vwmulsu_vv_i16m4)(RV(vle8_v_i8m2)(x, vl), c0, vl);
    s = RV(vwmaccsu_vv_i16m4)(s, RV(vle8_v_i8m2)(x + 32, vl), c1, vl);
    s = RV(vwmaccsu_vv_i16m4)(s, RV(vle8_v_i8m2)(x + 64, vl), c2, vl);
    s = RV(vwmaccsu_vv_i16m4)(s, RV(vle8_v_i8m2)(x + 96, vl), c3, vl);
    return RV(vwadd_wv_i32m8)(acc, s, vl);
}

/* sum_c code_c * x_c over one row of nb blocks. */
static int32_t row_dot(const uint8_t *w, const int8_t *x, int nb) {
    const size_t vl = BN_I2_BLOCK_BYTES;
    vint32m8_t acc = RV(vmv_v_x_i32m8)(0, vl);
    for (int b = 0; b < nb; b++) acc = block_dot(acc, w + (size_t)b * BN_I2_BLOCK_BYTES, x + (size_t)b * BN_I2_BLOCK);
    const vint32m1_t zero = RV(vmv_v_x_i32m1)(0, 1);
    return RV(vmv_x_s_i32m1_i32)(REDSUM_I32M8(acc, zero, vl));
}

static int32_t sum_i8(const int8_t *x, int n) {
    int32_t s = 0;
    for (int i = 0; i < n; i++) s += x[i];
    return s;
}

static void rvv_i2_gemv(int rows, int cols, const uint8_t *W, const int8_t *x, int32_t *y) {
    const int nb = cols / BN_I2_BLOCK;
    const size_t rb = (size_t)cols / 4;
    const int32_t sx = sum_i8(x, cols);
    for (int r = 0; r < rows; r++) y[r] = row_dot(W + (size_t)r * rb, x, nb) - sx;
}

static void rvv_i2_gemm(int rows, int cols, const uint8_t *W, int n, const int8_t *X, int32_t *Y, int ldy) {
    for (int j = 0; j < n; j++) rvv_i2_gemv(rows, cols, W, X + (size_t)j * cols, Y + (size_t)j * ldy);
}

static void rvv_q8_0_gemv(int rows, int cols, const bn_block_q8_0 *W, const int8_t *xq, const float *xd, float *y) {
    const int nb = cols / BN_Q8_BLOCK;
    const size_t vl = BN_Q8_BLOCK;
    const vint32m1_t zero = RV(vmv_v_x_i32m1)(0, 1);
    for (int r = 0; r < rows; r++) {
        const bn_block_q8_0 *row = W + (size_t)r * nb;
        float sum = 0.0f;
        for (int b = 0; b < nb; b++) {
            const vint16m4_t p = RV(vwmul_vv_i16m4)(RV(vle8_v_i8m2)(row[b].qs, vl),
                                                    RV(vle8_v_i8m2)(xq + (size_t)b * BN_Q8_BLOCK, vl), vl);
            const int32_t s = RV(vmv_x_s_i32m1_i32)(WREDSUM_I16M4(p, zero, vl));
            sum += (float)s * (bn_fp16_to_fp32(row[b].d) * xd[b]);
        }
        y[r] = sum;
    }
}

static float rvv_quantize_i8(const float *x, int n, int n_padded, int8_t *q) {
    vfloat32m1_t amax_v = RV(vfmv_v_f_f32m1)(0.0f, 1);
    for (int i = 0; i < n;) {
        const size_t vl = RV(vsetvl_e32m4)((size_t)(n - i));
        amax_v = REDMAX_F32M4(RV(vfabs_v_f32m4)(RV(vle32_v_f32m4)(x + i, vl), vl), amax_v, vl);
        i += (int)vl;
    }
    const float amax = RV(vfmv_f_s_f32m1_f32)(amax_v);
    if (!(amax > 0.0f) || !isfinite(amax)) {
        memset(q, 0, (size_t)n_padded);
        return 0.0f;
    }
    const float s = 127.0f / amax;
    for (int i = 0; i < n;) {
        const size_t vl = RV(vsetvl_e32m4)((size_t)(n - i));
        const vfloat32m4_t v = RV(vfmul_vf_f32m4)(RV(vle32_v_f32m4)(x + i, vl), s, vl);
        vint32m4_t r = RV(vfcvt_x_f_v_i32m4)(v, vl); /* +-inf saturate, then clamp as the scalar */
        r = RV(vmin_vx_i32m4)(RV(vmax_vx_i32m4)(r, -128, vl), 127, vl);
        r = MERGE_VXM_I32M4(RV(vmfne_vv_f32m4_b8)(v, v, vl), r, 0, vl); /* NaN: 0 */
        RV(vse8_v_i8m1)(q + i, RV(vncvt_x_x_w_i8m1)(RV(vncvt_x_x_w_i16m2)(r, vl), vl), vl);
        i += (int)vl;
    }
    memset(q + n, 0, (size_t)(n_padded - n));
    return amax / 127.0f;
}

/* ---- K-quants with Q8_K activations (kernels.h: q4_k_gemv, q6_k_gemv) ----------
 * Each block's integer sums in vectors (vwmulsu: the unsigned codes times the
 * int8 activations, then vwredsum per sub-block), scaled and added as the
 * scalar table does; then the same fmaf per block in the same order: the
 * scalar bits. */

/* sum of x[i] * c[i] over vl (<= 32) values: int8 activations, unsigned codes */
static inline int32_t dot_su(const int8_t *x, vuint8m2_t c, size_t vl) {
    const vint32m1_t zero = RV(vmv_v_x_i32m1)(0, 1);
    const vint16m4_t p = RV(vwmulsu_vv_i16m4)(RV(vle8_v_i8m2)(x, vl), c, vl);
    return RV(vmv_x_s_i32m1_i32)(WREDSUM_I16M4(p, zero, vl));
}

static inline void q4k_sums(const uint8_t *blk, const int8_t *x, const int16_t *bs, int32_t *isum, int32_t *msum) {
    const size_t vl = 32;
    const uint8_t *q = blk + 16;
    *isum = *msum = 0;
    for (int j = 0; j < 8; j += 2) { /* 32 bytes: sub-block j in the low nibbles, j+1 in the high */
        const vuint8m2_t v = RV(vle8_v_u8m2)(q + 16 * j, vl);
        int sc, m;
        bn_k4_scale_min(j, blk + 4, &sc, &m);
        *isum += sc * dot_su(x + 32 * j, RV(vand_vx_u8m2)(v, 15, vl), vl);
        *msum += m * (bs[2 * j] + bs[2 * j + 1]);
        bn_k4_scale_min(j + 1, blk + 4, &sc, &m);
        *isum += sc * dot_su(x + 32 * j + 32, RV(vsrl_vx_u8m2)(v, 4, vl), vl);
        *msum += m * (bs[2 * j + 2] + bs[2 * j + 3]);
    }
}

static inline int32_t q6k_sum(const uint8_t *blk, const int8_t *x) {
    const size_t vl = 16; /* a group: one scale */
    const int8_t *sc = (const int8_t *)(blk + 192);
    int32_t isum = 0;
    for (int h = 0; h < 2; h++) { /* halves of 128: ql[64h..], qh[32h..] */
        const uint8_t *ql = blk + 64 * h, *qh = blk + 128 + 32 * h;
        for (int k = 0; k < 4; k++) /* quarter k: values 32k .. 32k+31 of the half */
            for (int g = 0; g < 2; g++) {
                const vuint8m2_t lo = RV(vand_vx_u8m2)(
                    RV(vsrl_vx_u8m2)(RV(vle8_v_u8m2)(ql + 16 * g + 32 * (k & 1), vl), (size_t)(4 * (k >> 1)), vl), 15, vl);
                const vuint8m2_t hi =
                    RV(vand_vx_u8m2)(RV(vsrl_vx_u8m2)(RV(vle8_v_u8m2)(qh + 16 * g, vl), (size_t)(2 * k), vl), 3, vl);
                const vuint8m2_t c = RV(vor_vv_u8m2)(lo, RV(vsll_vx_u8m2)(hi, 4, vl), vl);
                isum += sc[8 * h + 2 * k + g] * dot_su(x + 128 * h + 32 * k + 16 * g, c, vl);
            }
    }
    return isum;
}

BN_Q4_K_GEMV(rvv_q4_k_gemv, q4k_sums, fmaf)
BN_Q6_K_GEMV(rvv_q6_k_gemv, q6k_sum, fmaf)

/* The scalar table with the RVV kernels (dispatch.c fills it once). */
void bn_kernels_rvv_init(bn_kernels *t) {
    *t = bn_kernels_scalar;
    t->isa = "rvv";
    t->i2_gemv = rvv_i2_gemv, t->i2_gemm = rvv_i2_gemm, t->q8_0_gemv = rvv_q8_0_gemv;
    t->q4_k_gemv = rvv_q4_k_gemv, t->q6_k_gemv = rvv_q6_k_gemv, t->quantize_i8 = rvv_quantize_i8;
    t->kv = &bn_kv_ops_rvv;
}
