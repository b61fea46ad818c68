/* kv_scalar.c - the KV-cache head-row formats: quantiser, dequantiser and
 * the scalar attention kernels (the reference every SIMD table, kv_avx2.c and
 * kv_neon.c, is tested against). */
#include "kernels/kv_kernels.h"

#include <math.h>

/* ---- layout --------------------------------------------------------------- */

size_t bn_kv_row_bytes(bitnet_kv_type t, int hd) {
    size_t b;
    switch (t) {
    case BITNET_KV_F32: b = (size_t)hd * 4; break;
    case BITNET_KV_F16: b = (size_t)hd * 2; break;
    case BITNET_KV_Q8: b = 4 + (size_t)hd; break;
    case BITNET_KV_Q4: b = 8 + ((size_t)hd + 1) / 2; break;
    case BITNET_KV_Q2: b = 8 + ((size_t)hd + 3) / 4; break;
    default: return 0;
    }
    return (b + 3) & ~(size_t)3; /* keeps the float header of the next row aligned */
}

/* ---- quantiser ------------------------------------------------------------ */

/* Header floats are read and written with memcpy: rows are 4-byte aligned,
 * but this keeps the code free of aliasing questions. */
static inline void wr_f32(uint8_t *p, float f) { memcpy(p, &f, 4); }

/* round(v) clamped to [lo, hi]; NaN gives lo. No libm: the bytes must not
 * depend on the rounding mode. */
static inline int quant_clamp(float v, int lo, int hi) {
    if (!(v >= (float)lo)) return lo;
    if (v >= (float)hi) return hi;
    return v >= 0.0f ? (int)(v + 0.5f) : -(int)(0.5f - v);
}

/* Asymmetric min/max quantisation to codes 0..qmax, x = m + d * code, packed
 * `bits` to a byte as the header describes. Using the row's own minimum
 * instead of -max|x| makes the step smaller whenever a row is lopsided
 * (docs/kv-cache.md has the measurement). */
static void quant_minmax(const float *x, int hd, int bits, uint8_t *dst) {
    const int qmax = (1 << bits) - 1, span = (hd + 8 / bits - 1) / (8 / bits);
    float mn = x[0], mx = x[0];
    for (int i = 1; i < hd; i++) {
        mn = x[i] < mn ? x[i] : mn;
        mx = x[i] > mx ? x[i] : mx;
    }
    const float d = (mx - mn) / (float)qmax, id = d > 0.0f ? 1.0f / d : 0.0f;
    wr_f32(dst, d);
    wr_f32(dst + 4, mn);
    for (int i = 0; i < hd; i++)
        dst[8 + i % span] |= (uint8_t)(quant_clamp((x[i] - mn) * id, 0, qmax) << (bits * (i / span)));
}

void bn_kv_quantize_row(bitnet_kv_type t, const float *x, int hd, uint8_t *dst) {
    memset(dst, 0, bn_kv_row_bytes(t, hd));
    switch (t) {
    case BITNET_KV_F32: memcpy(dst, x, (size_t)hd * sizeof(float)); break;
    case BITNET_KV_F16:
        for (int i = 0; i < hd; i++) {
            uint16_t h = bn_fp32_to_fp16(x[i]);
            memcpy(dst + 2 * (size_t)i, &h, 2);
        }
        break;
    case BITNET_KV_Q8: {
        float amax = 0.0f;
        for (int i = 0; i < hd; i++) amax = fabsf(x[i]) > amax ? fabsf(x[i]) : amax;
        const float d = amax / 127.0f, id = d > 0.0f ? 1.0f / d : 0.0f;
        wr_f32(dst, d);
        for (int i = 0; i < hd; i++) dst[4 + i] = (uint8_t)(int8_t)quant_clamp(x[i] * id, -127, 127);
        break;
    }
    case BITNET_KV_Q4: quant_minmax(x, hd, 4, dst); break;
    case BITNET_KV_Q2: quant_minmax(x, hd, 2, dst); break;
    default: BN_ASSERT(0);
    }
}

/* Code of value i of a q4 (bits = 4) or q2 (bits = 2) row's data. */
static inline int code_at(const uint8_t *data, int i, int span, int bits) {
    return (data[i % span] >> (bits * (i / span))) & ((1 << bits) - 1);
}

void bn_kv_dequantize_row(bitnet_kv_type t, const uint8_t *src, int hd, float *x) {
    switch (t) {
    case BITNET_KV_F32: memcpy(x, src, (size_t)hd * sizeof(float)); break;
    case BITNET_KV_F16:
        for (int i = 0; i < hd; i++) {
            uint16_t h;
            memcpy(&h, src + 2 * (size_t)i, 2);
            x[i] = bn_fp16_to_fp32(h);
        }
        break;
    case BITNET_KV_Q8: {
        const float d = bn_kv_rd_f32(src);
        for (int i = 0; i < hd; i++) x[i] = d * (float)(int8_t)src[4 + i];
        break;
    }
    case BITNET_KV_Q4:
    case BITNET_KV_Q2: {
        const int bits = t == BITNET_KV_Q4 ? 4 : 2, span = (hd + 8 / bits - 1) / (8 / bits);
        const float d = bn_kv_rd_f32(src), m = bn_kv_rd_f32(src + 4);
        for (int i = 0; i < hd; i++) x[i] = m + d * (float)code_at(src + 8, i, span, bits);
        break;
    }
    default: BN_ASSERT(0);
    }
}

/* ---- scalar attention kernels --------------------------------------------- */

/* f32: q.k for four positions at a time, four independent dependency chains,
 * each summed in the same sequential order as llama2.c (same bits). This is
 * the reference arithmetic of the float models: the SIMD versions vectorise
 * across positions and must give exactly these bits. */
static void scores_f32(const bn_kv_query *qy, const uint8_t *k, size_t stride, int n, int hd, float scale,
                       float *att) {
    const float *q = qy->f;
    int s = 0;
    for (; s + 4 <= n; s += 4) {
        const float *k0 = (const float *)(k + (size_t)s * stride), *k1 = (const float *)((const uint8_t *)k0 + stride);
        const float *k2 = (const float *)((const uint8_t *)k1 + stride), *k3 = (const float *)((const uint8_t *)k2 + stride);
        float a0 = 0.0f, a1 = 0.0f, a2 = 0.0f, a3 = 0.0f;
        for (int i = 0; i < hd; i++) {
            a0 += q[i] * k0[i];
            a1 += q[i] * k1[i];
            a2 += q[i] * k2[i];
            a3 += q[i] * k3[i];
        }
        att[s] = a0 * scale;
        att[s + 1] = a1 * scale;
        att[s + 2] = a2 * scale;
        att[s + 3] = a3 * scale;
    }
    for (; s < n; s++) {
        const float *kr = (const float *)(k + (size_t)s * stride);
        float score = 0.0f;
        for (int i = 0; i < hd; i++) score += q[i] * kr[i];
        att[s] = score * scale;
    }
}

static void wsum_f32(const float *att, const uint8_t *v, size_t stride, int n, int hd, float *out) {
    for (int u = 0; u < n; u++) {
        const float *vr = (const float *)(v + (size_t)u * stride);
        const float a = att[u];
        for (int i = 0; i < hd; i++) out[i] += a * vr[i];
    }
}

static void scores_f16(const bn_kv_query *qy, const uint8_t *k, size_t stride, int n, int hd, float scale,
                       float *att) {
    const float *q = qy->f;
    for (int s = 0; s < n; s++) {
        const uint8_t *kr = k + (size_t)s * stride;
        float a = 0.0f;
        for (int i = 0; i < hd; i++) {
            uint16_t h;
            memcpy(&h, kr + 2 * (size_t)i, 2);
            a += q[i] * bn_fp16_to_fp32(h);
        }
        att[s] = a * scale;
    }
}

static void wsum_f16(const float *att, const uint8_t *v, size_t stride, int n, int hd, float *out) {
    for (int u = 0; u < n; u++) {
        const uint8_t *vr = v + (size_t)u * stride;
        for (int i = 0; i < hd; i++) {
            uint16_t h;
            memcpy(&h, vr + 2 * (size_t)i, 2);
            out[i] += att[u] * bn_fp16_to_fp32(h);
        }
    }
}

/* q8: q.k = (d_k d_q) * sum_i c_i q8_i with the query also in int8: an exact
 * integer dot product, so every ISA gives the same bits. The int8 query costs
 * no measurable accuracy (docs/kv-cache.md). */
static void scores_q8(const bn_kv_query *q, const uint8_t *k, size_t stride, int n, int hd, float scale,
                      float *att) {
    for (int s = 0; s < n; s++) {
        const uint8_t *kr = k + (size_t)s * stride;
        const int8_t *c = (const int8_t *)(kr + 4);
        int32_t a = 0;
        for (int i = 0; i < hd; i++) a += (int32_t)q->i8[i] * c[i];
        att[s] = bn_kv_q8_score(a, bn_kv_rd_f32(kr), q->d, scale);
    }
}

static void wsum_q8(const float *att, const uint8_t *v, size_t stride, int n, int hd, float *out) {
    for (int u = 0; u < n; u++) {
        const uint8_t *vr = v + (size_t)u * stride;
        const int8_t *c = (const int8_t *)(vr + 4);
        const float w = att[u] * bn_kv_rd_f32(vr);
        for (int i = 0; i < hd; i++) out[i] += w * (float)c[i];
    }
}

/* q4/q2: q.(m + d c) = d (q.c) + m sum(q), and sum_s a_s (m_s + d_s c_s)
 * = sum_s (a_s d_s) c_s + sum_s a_s m_s: the minimum costs one term per row. */
static void scores_qlow(const bn_kv_query *qy, const uint8_t *k, size_t stride, int n, int hd, float scale,
                        float *att, int bits) {
    const int span = (hd + 8 / bits - 1) / (8 / bits);
    const float *q = qy->f, qsum = qy->sum;
    for (int s = 0; s < n; s++) {
        const uint8_t *kr = k + (size_t)s * stride;
        float a = 0.0f;
        for (int i = 0; i < hd; i++) a += q[i] * (float)code_at(kr + 8, i, span, bits);
        att[s] = (bn_kv_rd_f32(kr) * a + bn_kv_rd_f32(kr + 4) * qsum) * scale;
    }
}

static void wsum_qlow(const float *att, const uint8_t *v, size_t stride, int n, int hd, float *out, int bits) {
    const int span = (hd + 8 / bits - 1) / (8 / bits);
    float msum = 0.0f;
    for (int u = 0; u < n; u++) {
        const uint8_t *vr = v + (size_t)u * stride;
        const float w = att[u] * bn_kv_rd_f32(vr);
        msum += att[u] * bn_kv_rd_f32(vr + 4);
        for (int i = 0; i < hd; i++) out[i] += w * (float)code_at(vr + 8, i, span, bits);
    }
    for (int i = 0; i < hd; i++) out[i] += msum;
}

BN_KV_QLOW_ENTRIES(, scores_qlow, wsum_qlow, 1, 1)

const bn_kv_ops bn_kv_ops_scalar = {
    .isa = "scalar",
    .scores = {scores_f32, scores_f16, scores_q8, scores_q4, scores_q2},
    .wsum = {wsum_f32, wsum_f16, wsum_q8, wsum_q4, wsum_q2},
};

void bn_kv_prepare_query(bitnet_kv_type t, const float *qf, int hd, void *scratch, bn_kv_query *q) {
    q->f = qf;
    q->sum = 0.0f;
    q->i8 = NULL;
    q->d = 0.0f;
    if (t == BITNET_KV_Q4 || t == BITNET_KV_Q2)
        for (int i = 0; i < hd; i++) q->sum += qf[i];
    if (t == BITNET_KV_Q8) {
        int8_t *i8 = scratch;
        float amax = 0.0f;
        for (int i = 0; i < hd; i++) amax = fabsf(qf[i]) > amax ? fabsf(qf[i]) : amax;
        const float d = amax / 127.0f, id = d > 0.0f ? 1.0f / d : 0.0f;
        for (int i = 0; i < hd; i++) i8[i] = (int8_t)quant_clamp(qf[i] * id, -127, 127);
        q->i8 = i8;
        q->d = d;
    }
}

