/*
 * kv_rvv.c - RISC-V Vector 1.0 attention kernels over the KV-cache formats
 * (kv_kernels.h), reached through the rvv table (rvv.c).
 *
 * Every kernel here gives the scalar table's bits (kv_scalar.c), so the
 * reference texts hold with it:
 *   scores f32/f16  positions in lanes (strided loads), each lane summing its
 *                   position's q.k in index order, multiply then add (this
 *                   file is compiled with -ffp-contract=off): the scalar order;
 *   scores q8       an integer dot product per position (vwmul + vwredsum);
 *   scores q4/q2    positions in lanes (strided byte loads), each lane summing
 *                   q[i] * code in index order, then d * a + m * sum(q);
 *   wsum            dimensions in lanes, positions in order: the scalar order
 *                   per output element (q4/q2: a plane of codes, those at one
 *                   shift of the row's bytes, at a time).
 * Halves are widened with integer operations (the base V extension has no
 * half-precision arithmetic, that is Zvfh): the magnitude bits moved to the
 * float's place and multiplied by 2^112 (exact for normals and subnormals),
 * the exponent forced to 255 for infinities and NaNs, the sign put back.
 */
#include "common.h"
#include "kernels/kv_kernels.h"
#include "kernels/rvv_compat.h"

/* vl halves (as u16) to floats, exactly as bn_fp16_to_fp32. */
static inline vfloat32m4_t half_to_f32(vuint16m2_t h, size_t vl) {
    const vuint32m4_t w = RV(vzext_vf2_u32m4)(h, vl);
    const vuint32m4_t sign = RV(vsll_vx_u32m4)(RV(vand_vx_u32m4)(w, 0x8000u, vl), 16, vl);
    const vuint32m4_t mag = RV(vsll_vx_u32m4)(RV(vand_vx_u32m4)(w, 0x7fffu, vl), 13, vl);
    const vfloat32m4_t f = RV(vfmul_vf_f32m4)(RV(vreinterpret_v_u32m4_f32m4)(mag), 0x1p112f, vl);
    /* exponent 31 -> all ones: (e + 1) >> 5 is 1 there and 0 below; 0 - that is the mask */
    const vuint32m4_t e = RV(vand_vx_u32m4)(RV(vsrl_vx_u32m4)(w, 10, vl), 31u, vl);
    const vuint32m4_t special = RV(vrsub_vx_u32m4)(RV(vsrl_vx_u32m4)(RV(vadd_vx_u32m4)(e, 1u, vl), 5, vl), 0u, vl);
    vuint32m4_t bits = RV(vreinterpret_v_f32m4_u32m4)(f);
    bits = RV(vor_vv_u32m4)(bits, RV(vand_vx_u32m4)(special, 0x7f800000u, vl), vl);
    return RV(vreinterpret_v_u32m4_f32m4)(RV(vor_vv_u32m4)(bits, sign, vl));
}

/* Element i of vl rows `stride` bytes apart from base (f32 or f16 rows), as floats. */
static inline vfloat32m4_t load_strided(const uint8_t *base, size_t stride, int i, int f16, size_t vl) {
    if (f16)
        return half_to_f32(RV(vlse16_v_u16m2)((const uint16_t *)(const void *)(base + 2 * (size_t)i), (ptrdiff_t)stride, vl), vl);
    return RV(vlse32_v_f32m4)((const float *)(const void *)(base + 4 * (size_t)i), (ptrdiff_t)stride, vl);
}

/* f32 and f16 scores: vl positions a pass, each lane its position's q.k in index order. */
static inline void scores_float(const bn_kv_query *qy, const uint8_t *k, size_t stride, int n, int hd, float scale,
                                float *att, int f16) {
    const float *q = qy->f;
    for (int s = 0; s < n;) {
        const size_t vl = RV(vsetvl_e32m4)((size_t)(n - s));
        const uint8_t *base = k + (size_t)s * stride;
        vfloat32m4_t acc = RV(vfmv_v_f_f32m4)(0.0f, vl);
        for (int i = 0; i < hd; i++)
            acc = RV(vfadd_vv_f32m4)(acc, RV(vfmul_vf_f32m4)(load_strided(base, stride, i, f16, vl), q[i], vl), vl);
        RV(vse32_v_f32m4)(att + s, RV(vfmul_vf_f32m4)(acc, scale, vl), vl);
        s += (int)vl;
    }
}

static void rvv_scores_f32(const bn_kv_query *qy, const uint8_t *k, size_t stride, int n, int hd, float scale,
                           float *att) {
    scores_float(qy, k, stride, n, hd, scale, att, 0);
}
static void rvv_scores_f16(const bn_kv_query *qy, const uint8_t *k, size_t stride, int n, int hd, float scale,
                           float *att) {
    scores_float(qy, k, stride, n, hd, scale, att, 1);
}

static void rvv_scores_q8(const bn_kv_query *q, const uint8_t *k, size_t stride, int n, int hd, float scale,
                          float *att) {
    const vint32m1_t zero = RV(vmv_v_x_i32m1)(0, 1);
    for (int s = 0; s < n; s++) {
        const uint8_t *kr = k + (size_t)s * stride;
        const int8_t *c = (const int8_t *)(kr + 4);
        int32_t a = 0;
        for (int i = 0; i < hd;) {
            const size_t vl = RV(vsetvl_e8m2)((size_t)(hd - i));
            const vint16m4_t p = RV(vwmul_vv_i16m4)(RV(vle8_v_i8m2)(q->i8 + i, vl), RV(vle8_v_i8m2)(c + i, vl), vl);
            a += RV(vmv_x_s_i32m1_i32)(WREDSUM_I16M4(p, zero, vl));
            i += (int)vl;
        }
        att[s] = bn_kv_q8_score(a, bn_kv_rd_f32(kr), q->d, scale);
    }
}

/* Weighted sums: dimensions i..i+vl-1 in lanes, positions in order, each row
 * (t: f32, f16 or q8) times its weight: att[u], or att[u] * d for q8, as kv_scalar.c. */
static inline void wsum(const float *att, const uint8_t *v, size_t stride, int n, int hd, float *out, int t) {
    for (int i = 0; i < hd;) {
        const size_t vl = RV(vsetvl_e32m4)((size_t)(hd - i));
        vfloat32m4_t o = RV(vle32_v_f32m4)(out + i, vl);
        for (int u = 0; u < n; u++) {
            const uint8_t *vr = v + (size_t)u * stride;
            float w = att[u];
            vfloat32m4_t x;
            if (t == BITNET_KV_F32) {
                x = RV(vle32_v_f32m4)((const float *)(const void *)vr + i, vl);
            } else if (t == BITNET_KV_F16) {
                x = half_to_f32(RV(vle16_v_u16m2)((const uint16_t *)(const void *)vr + i, vl), vl);
            } else {
                w = att[u] * bn_kv_rd_f32(vr);
                x = RV(vfcvt_f_x_v_f32m4)(RV(vsext_vf4_i32m4)(RV(vle8_v_i8m1)((const int8_t *)(vr + 4) + i, vl), vl), vl);
            }
            o = RV(vfadd_vv_f32m4)(o, RV(vfmul_vf_f32m4)(x, w, vl), vl);
        }
        RV(vse32_v_f32m4)(out + i, o, vl);
        i += (int)vl;
    }
}

static void rvv_wsum_f32(const float *att, const uint8_t *v, size_t stride, int n, int hd, float *out) {
    wsum(att, v, stride, n, hd, out, BITNET_KV_F32);
}
static void rvv_wsum_f16(const float *att, const uint8_t *v, size_t stride, int n, int hd, float *out) {
    wsum(att, v, stride, n, hd, out, BITNET_KV_F16);
}
static void rvv_wsum_q8(const float *att, const uint8_t *v, size_t stride, int n, int hd, float *out) {
    wsum(att, v, stride, n, hd, out, BITNET_KV_Q8);
}

/* q4 (bits 4) and q2 (bits 2): value i is (data[i % span] >> bits * (i / span))
 * & mask, data after the row's d and m (kv_scalar.c: code_at). */
static inline void scores_qlow(const bn_kv_query *qy, const uint8_t *k, size_t stride, int n, int hd, float scale,
                               float *att, int bits) {
    const int span = (hd + 8 / bits - 1) / (8 / bits), mask = (1 << bits) - 1;
    const float *q = qy->f;
    for (int s = 0; s < n;) {
        const size_t vl = RV(vsetvl_e32m4)((size_t)(n - s));
        const uint8_t *base = k + (size_t)s * stride;
        vfloat32m4_t acc = RV(vfmv_v_f_f32m4)(0.0f, vl);
        for (int i = 0; i < hd; i++) {
            const vuint8m1_t b = RV(vlse8_v_u8m1)(base + 8 + i % span, (ptrdiff_t)stride, vl);
            const vuint8m1_t c = RV(vand_vx_u8m1)(RV(vsrl_vx_u8m1)(b, (size_t)(bits * (i / span)), vl), (uint8_t)mask, vl);
            const vfloat32m4_t x = RV(vfcvt_f_xu_v_f32m4)(RV(vzext_vf4_u32m4)(c, vl), vl);
            acc = RV(vfadd_vv_f32m4)(acc, RV(vfmul_vf_f32m4)(x, q[i], vl), vl);
        }
        const vfloat32m4_t d = RV(vlse32_v_f32m4)((const float *)(const void *)base, (ptrdiff_t)stride, vl);
        const vfloat32m4_t m = RV(vlse32_v_f32m4)((const float *)(const void *)(base + 4), (ptrdiff_t)stride, vl);
        const vfloat32m4_t a = RV(vfadd_vv_f32m4)(RV(vfmul_vv_f32m4)(d, acc, vl), RV(vfmul_vf_f32m4)(m, qy->sum, vl), vl);
        RV(vse32_v_f32m4)(att + s, RV(vfmul_vf_f32m4)(a, scale, vl), vl);
        s += (int)vl;
    }
}

static inline void wsum_qlow(const float *att, const uint8_t *v, size_t stride, int n, int hd, float *out, int bits) {
    const int span = (hd + 8 / bits - 1) / (8 / bits), mask = (1 << bits) - 1;
    float msum = 0.0f;
    for (int u = 0; u < n; u++) msum += att[u] * bn_kv_rd_f32(v + (size_t)u * stride + 4);
    for (int plane = 0; plane * span < hd; plane++) /* out[plane * span + j] holds byte j's code at this shift */
        for (int j = 0; j < span && plane * span + j < hd;) {
            const size_t vl = RV(vsetvl_e32m4)((size_t)BN_MIN(span - j, hd - plane * span - j));
            float *o_at = out + plane * span + j;
            vfloat32m4_t o = RV(vle32_v_f32m4)(o_at, vl);
            for (int u = 0; u < n; u++) {
                const uint8_t *vr = v + (size_t)u * stride;
                const vuint8m1_t b = RV(vle8_v_u8m1)(vr + 8 + j, vl);
                const vuint8m1_t c = RV(vand_vx_u8m1)(RV(vsrl_vx_u8m1)(b, (size_t)(bits * plane), vl), (uint8_t)mask, vl);
                const vfloat32m4_t x = RV(vfcvt_f_xu_v_f32m4)(RV(vzext_vf4_u32m4)(c, vl), vl);
                o = RV(vfadd_vv_f32m4)(o, RV(vfmul_vf_f32m4)(x, att[u] * bn_kv_rd_f32(vr), vl), vl);
            }
            RV(vse32_v_f32m4)(o_at, o, vl);
            j += (int)vl;
        }
    for (int i = 0; i < hd; i++) out[i] += msum;
}

BN_KV_QLOW_ENTRIES(rvv_, scores_qlow, wsum_qlow, 1, 1)

const bn_kv_ops bn_kv_ops_rvv = {
    .isa = "rvv",
    .scores = {rvv_scores_f32, rvv_scores_f16, rvv_scores_q8, rvv_scores_q4, rvv_scores_q2},
    .wsum = {rvv_wsum_f32, rvv_wsum_f16, rvv_wsum_q8, rvv_wsum_q4, rvv_wsum_q2},
};
