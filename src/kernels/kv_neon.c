/* kv_neon.c - NEON attention kernels over the KV-cache formats
 * (kv_kernels.h) for ARM64, reached through the neon kernel tables
 * (bn_kernels.kv). NEON and its fp16<->fp32 conversion are baseline.
 *
 * Each kernel handles the head sizes whose code vectors fill whole registers
 * (f32 hd % 4, f16/q8 hd % 8, q8 scores hd % 16, q4 hd % 16, q2 hd % 32) and
 * calls the scalar reference otherwise; f32 keeps the scalar order and the
 * q8 scores are integer dot products (both match the scalar bits), the other
 * sums run in another order (tests/test_kv_cache.c bounds the difference). */
#include <arm_neon.h>

#include "kernels/kv_kernels.h"

static inline float32x4_t load_f16(const uint8_t *p) {
    return vcvt_f32_f16(vreinterpret_f16_u16(vld1_u16((const uint16_t *)(const void *)p)));
}
/* 8 int8 -> two float32x4 */
static inline void load_i8(const uint8_t *p, float32x4_t *lo, float32x4_t *hi) {
    const int16x8_t w = vmovl_s8(vld1_s8((const int8_t *)p));
    *lo = vcvtq_f32_s32(vmovl_s16(vget_low_s16(w)));
    *hi = vcvtq_f32_s32(vmovl_s16(vget_high_s16(w)));
}
static inline void codes_f32(uint8x8_t c, float32x4_t *lo, float32x4_t *hi) {
    const uint16x8_t w = vmovl_u8(c);
    *lo = vcvtq_f32_u32(vmovl_u16(vget_low_u16(w)));
    *hi = vcvtq_f32_u32(vmovl_u16(vget_high_u16(w)));
}

/* f32, bit for bit the scalar arithmetic (see the x86 version): 4 positions
 * per vector, 4x4 transposes, separate multiply and add. */
static inline float32x4_t f32_block(float32x4_t acc, const float *q, const uint8_t *k, size_t stride, int i0) {
    const float32x4_t r0 = vld1q_f32((const float *)(const void *)k + i0);
    const float32x4_t r1 = vld1q_f32((const float *)(const void *)(k + stride) + i0);
    const float32x4_t r2 = vld1q_f32((const float *)(const void *)(k + 2 * stride) + i0);
    const float32x4_t r3 = vld1q_f32((const float *)(const void *)(k + 3 * stride) + i0);
    const float32x4x2_t t01 = vtrnq_f32(r0, r1), t23 = vtrnq_f32(r2, r3);
    const float32x4_t c0 = vcombine_f32(vget_low_f32(t01.val[0]), vget_low_f32(t23.val[0]));
    const float32x4_t c1 = vcombine_f32(vget_low_f32(t01.val[1]), vget_low_f32(t23.val[1]));
    const float32x4_t c2 = vcombine_f32(vget_high_f32(t01.val[0]), vget_high_f32(t23.val[0]));
    const float32x4_t c3 = vcombine_f32(vget_high_f32(t01.val[1]), vget_high_f32(t23.val[1]));
    acc = vaddq_f32(acc, vmulq_f32(vdupq_n_f32(q[i0]), c0));
    acc = vaddq_f32(acc, vmulq_f32(vdupq_n_f32(q[i0 + 1]), c1));
    acc = vaddq_f32(acc, vmulq_f32(vdupq_n_f32(q[i0 + 2]), c2));
    return vaddq_f32(acc, vmulq_f32(vdupq_n_f32(q[i0 + 3]), c3));
}

static void neon_scores_f32(const bn_kv_query *qy, const uint8_t *k, size_t stride, int n, int hd, float scale,
                            float *att) {
    const float *q = qy->f;
    int s = 0;
    for (; hd % 4 == 0 && s + 8 <= n; s += 8) { /* two independent add chains */
        const uint8_t *k0 = k + (size_t)s * stride, *k1 = k0 + 4 * stride;
        float32x4_t a0 = vdupq_n_f32(0.0f), a1 = a0;
        for (int i0 = 0; i0 < hd; i0 += 4) {
            a0 = f32_block(a0, q, k0, stride, i0);
            a1 = f32_block(a1, q, k1, stride, i0);
        }
        vst1q_f32(att + s, vmulq_n_f32(a0, scale));
        vst1q_f32(att + s + 4, vmulq_n_f32(a1, scale));
    }
    if (s < n) SCALAR_SCORES(BITNET_KV_F32)(qy, k + (size_t)s * stride, stride, n - s, hd, scale, att + s);
}

static void neon_wsum_f32(const float *att, const uint8_t *v, size_t stride, int n, int hd, float *out) {
    if (hd % 4) {
        SCALAR_WSUM(BITNET_KV_F32)(att, v, stride, n, hd, out);
        return;
    }
    for (int u = 0; u < n; u++) {
        const float *vr = (const float *)(const void *)(v + (size_t)u * stride);
        for (int i = 0; i < hd; i += 4)
            vst1q_f32(out + i, vaddq_f32(vld1q_f32(out + i), vmulq_n_f32(vld1q_f32(vr + i), att[u])));
    }
}

static void neon_scores_f16(const bn_kv_query *qy, const uint8_t *k, size_t stride, int n, int hd, float scale,
                            float *att) {
    if (hd % 8) {
        SCALAR_SCORES(BITNET_KV_F16)(qy, k, stride, n, hd, scale, att);
        return;
    }
    const float *q = qy->f;
    for (int s = 0; s < n; s++) {
        const uint8_t *kr = k + (size_t)s * stride;
        float32x4_t a = vdupq_n_f32(0.0f), b = a;
        for (int i = 0; i < hd; i += 8) {
            a = vfmaq_f32(a, vld1q_f32(q + i), load_f16(kr + 2 * i));
            b = vfmaq_f32(b, vld1q_f32(q + i + 4), load_f16(kr + 2 * i + 8));
        }
        att[s] = vaddvq_f32(vaddq_f32(a, b)) * scale;
    }
}

static void neon_scores_q8(const bn_kv_query *qy, const uint8_t *k, size_t stride, int n, int hd, float scale,
                           float *att) {
    if (hd % 16) {
        SCALAR_SCORES(BITNET_KV_Q8)(qy, k, stride, n, hd, scale, att);
        return;
    }
    const int8_t *q = qy->i8;
    for (int s = 0; s < n; s++) {
        const uint8_t *kr = k + (size_t)s * stride;
        int32x4_t a = vdupq_n_s32(0);
        for (int i = 0; i < hd; i += 16) {
            const int8x16_t qv = vld1q_s8(q + i), kv = vld1q_s8((const int8_t *)(kr + 4 + i));
            a = vpadalq_s16(a, vmull_s8(vget_low_s8(qv), vget_low_s8(kv)));
            a = vpadalq_s16(a, vmull_s8(vget_high_s8(qv), vget_high_s8(kv)));
        }
        att[s] = bn_kv_q8_score(vaddvq_s32(a), bn_kv_rd_f32(kr), qy->d, scale);
    }
}

static inline void neon_scores_qlow(const bn_kv_query *qy, const uint8_t *k, size_t stride, int n, int hd,
                                    float scale, float *att, int bits) {
    const int parts = 8 / bits, span = hd / parts;
    const uint8x8_t mask = vdup_n_u8((uint8_t)((1 << bits) - 1));
    const float *q = qy->f;
    for (int s = 0; s < n; s++) {
        const uint8_t *kr = k + (size_t)s * stride;
        float32x4_t a = vdupq_n_f32(0.0f), b = a;
        for (int j = 0; j < span; j += 8) {
            const uint8x8_t bytes = vld1_u8(kr + 8 + j);
            for (int p = 0; p < parts; p++) {
                float32x4_t lo, hi;
                /* vshl by a negative count shifts right; the count is not a constant here */
                codes_f32(vand_u8(vshl_u8(bytes, vdup_n_s8((int8_t)(-bits * p))), mask), &lo, &hi);
                a = vfmaq_f32(a, vld1q_f32(q + p * span + j), lo);
                b = vfmaq_f32(b, vld1q_f32(q + p * span + j + 4), hi);
            }
        }
        att[s] = (bn_kv_rd_f32(kr) * vaddvq_f32(vaddq_f32(a, b)) + bn_kv_rd_f32(kr + 4) * qy->sum) * scale;
    }
}

static void neon_wsum_f16(const float *att, const uint8_t *v, size_t stride, int n, int hd, float *out) {
    if (hd % 8) {
        SCALAR_WSUM(BITNET_KV_F16)(att, v, stride, n, hd, out);
        return;
    }
    for (int u = 0; u < n; u++) {
        const uint8_t *vr = v + (size_t)u * stride;
        for (int i = 0; i < hd; i += 4) vst1q_f32(out + i, vfmaq_n_f32(vld1q_f32(out + i), load_f16(vr + 2 * i), att[u]));
    }
}

static void neon_wsum_q8(const float *att, const uint8_t *v, size_t stride, int n, int hd, float *out) {
    if (hd % 8) {
        SCALAR_WSUM(BITNET_KV_Q8)(att, v, stride, n, hd, out);
        return;
    }
    for (int u = 0; u < n; u++) {
        const uint8_t *vr = v + (size_t)u * stride;
        const float w = att[u] * bn_kv_rd_f32(vr);
        for (int i = 0; i < hd; i += 8) {
            float32x4_t lo, hi;
            load_i8(vr + 4 + i, &lo, &hi);
            vst1q_f32(out + i, vfmaq_n_f32(vld1q_f32(out + i), lo, w));
            vst1q_f32(out + i + 4, vfmaq_n_f32(vld1q_f32(out + i + 4), hi, w));
        }
    }
}

static inline void neon_wsum_qlow(const float *att, const uint8_t *v, size_t stride, int n, int hd, float *out,
                                  int bits) {
    const int parts = 8 / bits, span = hd / parts;
    const uint8x8_t mask = vdup_n_u8((uint8_t)((1 << bits) - 1));
    float msum = 0.0f;
    for (int u = 0; u < n; u++) {
        const uint8_t *vr = v + (size_t)u * stride;
        const float w = att[u] * bn_kv_rd_f32(vr);
        msum += att[u] * bn_kv_rd_f32(vr + 4);
        for (int j = 0; j < span; j += 8) {
            const uint8x8_t bytes = vld1_u8(vr + 8 + j);
            for (int p = 0; p < parts; p++) {
                float32x4_t lo, hi;
                codes_f32(vand_u8(vshl_u8(bytes, vdup_n_s8((int8_t)(-bits * p))), mask), &lo, &hi);
                float *o = out + p * span + j;
                vst1q_f32(o, vfmaq_n_f32(vld1q_f32(o), lo, w));
                vst1q_f32(o + 4, vfmaq_n_f32(vld1q_f32(o + 4), hi, w));
            }
        }
    }
    for (int i = 0; i < hd; i += 4) vst1q_f32(out + i, vaddq_f32(vld1q_f32(out + i), vdupq_n_f32(msum)));
}

/* whole vectors of codes: 16 values (q4) or 32 (q2) a step */
BN_KV_QLOW_ENTRIES(neon_, neon_scores_qlow, neon_wsum_qlow, 16, 32)

const bn_kv_ops bn_kv_ops_neon = {
    .isa = "neon",
    .scores = {neon_scores_f32, neon_scores_f16, neon_scores_q8, neon_scores_q4, neon_scores_q2},
    .wsum = {neon_wsum_f32, neon_wsum_f16, neon_wsum_q8, neon_wsum_q4, neon_wsum_q2},
};
