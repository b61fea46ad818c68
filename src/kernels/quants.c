/* quants.c - ggml's block-quantised float formats, dequantised row by row
 * (the scalar reference; the layouts are llama.cpp's ggml-common.h). They
 * appear in real files' embeddings and heads (a default `llama-quantize ...
 * TQ2_0` writes a Q4_K token_embd and a Q6_K output, bitnet.cpp's
 * --quant-embd a Q6_K one). Ternary and Q8_0 weights have their own kernels. */
#include <math.h>

#include "common.h"
#include "kernels/kernels.h"

static float f16(const uint8_t *p) { return bn_fp16_to_fp32(bn_load_f16_bits(p)); }

/* Q4_0: {f16 d; u8 qs[16]}, x = d * (q - 8); low nibbles are values 0..15, high 16..31 */
static void deq_q4_0(const uint8_t *b, float *y) {
    const float d = f16(b);
    for (int j = 0; j < 16; j++) {
        y[j] = d * (float)((b[2 + j] & 0x0F) - 8);
        y[j + 16] = d * (float)((b[2 + j] >> 4) - 8);
    }
}

/* Q5_0: {f16 d; u8 qh[4]; u8 qs[16]}, the fifth bit of value j in bit j of qh */
static void deq_q5_0(const uint8_t *b, float *y) {
    const float d = f16(b);
    uint32_t qh;
    memcpy(&qh, b + 2, 4);
    for (int j = 0; j < 16; j++) {
        const int h0 = ((qh >> j) << 4) & 0x10, h1 = (qh >> (j + 12)) & 0x10;
        y[j] = d * (float)(((b[6 + j] & 0x0F) | h0) - 16);
        y[j + 16] = d * (float)(((b[6 + j] >> 4) | h1) - 16);
    }
}

/* Q4_K: {f16 d; f16 dmin; u8 scales[12]; u8 qs[128]}: 8 sub-blocks of 32,
 * x = d * sc * q - dmin * m */
static void deq_q4_K(const uint8_t *b, float *y) {
    const float d = f16(b), dmin = f16(b + 2);
    const uint8_t *sc = b + 4, *q = b + 16;
    for (int j = 0, is = 0; j < BN_QK_K; j += 64, is += 2, q += 32) {
        int s, m;
        bn_k4_scale_min(is, sc, &s, &m);
        const float d1 = d * (float)s, m1 = dmin * (float)m;
        bn_k4_scale_min(is + 1, sc, &s, &m);
        const float d2 = d * (float)s, m2 = dmin * (float)m;
        for (int l = 0; l < 32; l++) *y++ = d1 * (float)(q[l] & 0x0F) - m1;
        for (int l = 0; l < 32; l++) *y++ = d2 * (float)(q[l] >> 4) - m2;
    }
}

/* Q5_K: {f16 d; f16 dmin; u8 scales[12]; u8 qh[32]; u8 qs[128]} */
static void deq_q5_K(const uint8_t *b, float *y) {
    const float d = f16(b), dmin = f16(b + 2);
    const uint8_t *sc = b + 4, *qh = b + 16, *ql = b + 48;
    uint8_t u1 = 1, u2 = 2;
    for (int j = 0, is = 0; j < BN_QK_K; j += 64, is += 2, ql += 32, u1 <<= 2, u2 <<= 2) {
        int s, m;
        bn_k4_scale_min(is, sc, &s, &m);
        const float d1 = d * (float)s, m1 = dmin * (float)m;
        bn_k4_scale_min(is + 1, sc, &s, &m);
        const float d2 = d * (float)s, m2 = dmin * (float)m;
        for (int l = 0; l < 32; l++) *y++ = d1 * (float)((ql[l] & 0x0F) + (qh[l] & u1 ? 16 : 0)) - m1;
        for (int l = 0; l < 32; l++) *y++ = d2 * (float)((ql[l] >> 4) + (qh[l] & u2 ? 16 : 0)) - m2;
    }
}

/* Q6_K: {u8 ql[128]; u8 qh[64]; i8 scales[16]; f16 d}: 16 sub-blocks of 16,
 * x = d * sc * (q - 32) */
static void deq_q6_K(const uint8_t *b, float *y) {
    const uint8_t *ql = b, *qh = b + 128;
    const int8_t *sc = (const int8_t *)(b + 192);
    const float d = f16(b + 208);
    for (int n = 0; n < BN_QK_K; n += 128, y += 128, ql += 64, qh += 32, sc += 8) {
        for (int l = 0; l < 32; l++) {
            const int is = l / 16;
            const int q1 = ((ql[l] & 0x0F) | (((qh[l] >> 0) & 3) << 4)) - 32;
            const int q2 = ((ql[l + 32] & 0x0F) | (((qh[l] >> 2) & 3) << 4)) - 32;
            const int q3 = ((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32;
            const int q4 = ((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32;
            y[l] = d * (float)sc[is] * (float)q1;
            y[l + 32] = d * (float)sc[is + 2] * (float)q2;
            y[l + 64] = d * (float)sc[is + 4] * (float)q3;
            y[l + 96] = d * (float)sc[is + 6] * (float)q4;
        }
    }
}

static void deq_bf16(const uint8_t *b, float *y) {
    uint16_t h;
    memcpy(&h, b, 2);
    const uint32_t bits = (uint32_t)h << 16;
    memcpy(y, &bits, 4);
}

static void deq_q8_0(const uint8_t *b, float *y) {
    const float d = f16(b);
    for (int j = 0; j < BN_Q8_BLOCK; j++) y[j] = d * (float)(int8_t)b[2 + j];
}

static const bn_quant_traits k_quants[BN_QUANT_COUNT] = {
    [BN_QUANT_Q4_0] = {"q4_0", 32, 18, deq_q4_0},
    [BN_QUANT_Q5_0] = {"q5_0", 32, 22, deq_q5_0},
    [BN_QUANT_Q8_0] = {"q8_0", 32, 34, deq_q8_0},
    [BN_QUANT_Q4_K] = {"q4_K", 256, 144, deq_q4_K},
    [BN_QUANT_Q5_K] = {"q5_K", 256, 176, deq_q5_K},
    [BN_QUANT_Q6_K] = {"q6_K", 256, 210, deq_q6_K},
    [BN_QUANT_BF16] = {"bf16", 1, 2, deq_bf16},
};

const bn_quant_traits *bn_quant_get(bn_quant q) { return (unsigned)q < BN_QUANT_COUNT ? &k_quants[q] : NULL; }

void bn_dequant_row(bn_quant q, const void *row, int cols, float *y) {
    const bn_quant_traits *t = &k_quants[q];
    const uint8_t *b = row;
    BN_ASSERT(cols % (int)t->block_elems == 0);
    for (int i = 0; i < cols; i += (int)t->block_elems, b += t->block_bytes) t->dequant_block(b, y + i);
}

void bn_quantize_q8_k_act(const bn_kernels *k, const float *x, int n, int8_t *xq, float *xd, int16_t *bsums) {
    BN_ASSERT(n % BN_QK_K == 0);
    for (int b = 0; b < n / BN_QK_K; b++) {
        const int8_t *q = xq + (size_t)b * BN_QK_K;
        xd[b] = k->quantize_i8(x + (size_t)b * BN_QK_K, BN_QK_K, BN_QK_K, xq + (size_t)b * BN_QK_K);
        for (int g = 0; g < BN_QK_K / 16; g++) {
            int s = 0;
            for (int i = 0; i < 16; i++) s += q[g * 16 + i];
            bsums[b * (BN_QK_K / 16) + g] = (int16_t)s;
        }
    }
}

/* ---- writing Q6_K and Q4_K (convert --head-type q6_k|q4_k) ----
 * Our own quantisers of ggml's layouts: per group, the scale that minimises
 * the squared error among a few candidates around the one that just covers
 * the group's range; the scales themselves quantised per block (8-bit for
 * Q6_K, 6-bit scales and mins for Q4_K), then every value rounded to the
 * nearest point of its group's final grid. */

static int clampi(int v, int lo, int hi) { return v < lo ? lo : v > hi ? hi : v; }

/* Signed scale s for n values so that x ~ s*q, q in [-32, 31]: the candidate
 * with the least squared error. */
static float q6_group_scale(const float *x, int n) {
    float amax = 0.0f, vmax = 0.0f;
    for (int i = 0; i < n; i++)
        if (fabsf(x[i]) > amax) amax = fabsf(x[i]), vmax = x[i];
    if (amax == 0.0f) return 0.0f;
    float best = 0.0f;
    double best_err = INFINITY;
    for (int k = -6; k <= 6; k++) {
        const float s = vmax / (-32.0f + 0.25f * (float)k); /* the largest value at q = -32 (+ a little slack) */
        double err = 0;
        for (int i = 0; i < n; i++) {
            const float d = x[i] - s * (float)clampi((int)lrintf(x[i] / s), -32, 31);
            err += (double)d * d;
        }
        if (err < best_err) best_err = err, best = s;
    }
    return best;
}

void bn_quantize_q6_k_row(const float *x, int cols, uint8_t *out) {
    BN_ASSERT(cols % BN_QK_K == 0);
    for (int b = 0; b < cols / BN_QK_K; b++, x += BN_QK_K, out += BN_Q6_K_BYTES) {
        float gs[16], smax = 0.0f;
        for (int g = 0; g < 16; g++) {
            gs[g] = q6_group_scale(x + 16 * g, 16);
            if (fabsf(gs[g]) > smax) smax = fabsf(gs[g]);
        }
        const uint16_t dh = bn_fp32_to_fp16(smax / 127.0f);
        const float d = bn_fp16_to_fp32(dh);
        int8_t *sc = (int8_t *)(out + 192);
        uint8_t q[BN_QK_K];
        for (int g = 0; g < 16; g++) {
            sc[g] = (int8_t)(d > 0.0f ? clampi((int)lrintf(gs[g] / d), -127, 127) : 0);
            const float s = d * (float)sc[g];
            for (int i = 0; i < 16; i++)
                q[16 * g + i] = (uint8_t)(s != 0.0f ? clampi((int)lrintf(x[16 * g + i] / s), -32, 31) + 32 : 32);
        }
        memcpy(out + 208, &dh, 2);
        /* the layout deq_q6_K reads: per half of 128, value 32k + l has its low
         * 4 bits in ql[l + 32*(k&1)] (nibble k>>1) and its high 2 in qh[l] (bits 2k) */
        memset(out, 0, 192);
        for (int h = 0; h < 2; h++)
            for (int k = 0; k < 4; k++)
                for (int l = 0; l < 32; l++) {
                    const int v = q[128 * h + 32 * k + l];
                    out[64 * h + l + 32 * (k & 1)] |= (uint8_t)((v & 15) << (4 * (k >> 1)));
                    out[128 + 32 * h + l] |= (uint8_t)((v >> 4) << (2 * k));
                }
    }
}

static double q4_group_err(const float *x, float s, float m) {
    double err = 0;
    for (int i = 0; i < 32; i++) {
        const float d = x[i] - (s * (float)(s > 0.0f ? clampi((int)lrintf((x[i] + m) / s), 0, 15) : 0) - m);
        err += (double)d * d;
    }
    return err;
}

/* x ~ s*q - m for 32 values, q in [0, 15], m >= 0: start from the range
 * (which always includes 0, as ggml's), then a few least-squares refits of
 * (s, m) to the current q, kept while they lower the squared error. */
static void q4_group_fit(const float *x, float *s_out, float *m_out) {
    float lo = 0.0f, hi = 0.0f;
    for (int i = 0; i < 32; i++) {
        lo = x[i] < lo ? x[i] : lo;
        hi = x[i] > hi ? x[i] : hi;
    }
    float s = (hi - lo) / 15.0f, m = -lo;
    double err = q4_group_err(x, s, m);
    for (int it = 0; it < 4 && s > 0.0f; it++) {
        double sq = 0, sqq = 0, sx = 0, sqx = 0;
        for (int i = 0; i < 32; i++) {
            const double q = clampi((int)lrintf((x[i] + m) / s), 0, 15);
            sq += q, sqq += q * q, sx += x[i], sqx += q * x[i];
        }
        const double det = 32 * sqq - sq * sq;
        if (det <= 0) break;
        double ns = (32 * sqx - sq * sx) / det, nc = (sx - ns * sq) / 32; /* x ~ ns*q + nc */
        if (nc > 0) ns = sqq > 0 ? sqx / sqq : 0, nc = 0; /* m = -nc must be >= 0 */
        if (!(ns > 0)) break;
        const double e = q4_group_err(x, (float)ns, (float)-nc);
        if (e >= err) break;
        err = e, s = (float)ns, m = (float)-nc;
    }
    *s_out = s;
    *m_out = m;
}

void bn_quantize_q4_k_row(const float *x, int cols, uint8_t *out) {
    BN_ASSERT(cols % BN_QK_K == 0);
    for (int b = 0; b < cols / BN_QK_K; b++, x += BN_QK_K, out += BN_Q4_K_BYTES) {
        /* per sub-block of 32: x ~ scale * q - min, q in [0, 15], min >= 0 */
        float scale[8], mins[8], smax = 0.0f, mmax = 0.0f;
        for (int j = 0; j < 8; j++) {
            q4_group_fit(x + 32 * j, &scale[j], &mins[j]);
            smax = scale[j] > smax ? scale[j] : smax;
            mmax = mins[j] > mmax ? mins[j] : mmax;
        }
        const uint16_t dh = bn_fp32_to_fp16(smax / 63.0f), mh = bn_fp32_to_fp16(mmax / 63.0f);
        const float d = bn_fp16_to_fp32(dh), dmin = bn_fp16_to_fp32(mh);
        int sc[8], mq[8];
        for (int j = 0; j < 8; j++) {
            sc[j] = d > 0.0f ? clampi((int)lrintf(scale[j] / d), 0, 63) : 0;
            mq[j] = dmin > 0.0f ? clampi((int)lrintf(mins[j] / dmin), 0, 63) : 0;
        }
        memcpy(out, &dh, 2);
        memcpy(out + 2, &mh, 2);
        uint8_t *s12 = out + 4, *qs = out + 16;
        for (int j = 0; j < 4; j++) { /* the inverse of bn_k4_scale_min */
            s12[j] = (uint8_t)(sc[j] | (sc[j + 4] >> 4) << 6);
            s12[j + 4] = (uint8_t)(mq[j] | (mq[j + 4] >> 4) << 6);
            s12[j + 8] = (uint8_t)((sc[j + 4] & 15) | (mq[j + 4] & 15) << 4);
        }
        memset(qs, 0, 128);
        for (int j = 0; j < 8; j++) {
            const float s = d * (float)sc[j], m = dmin * (float)mq[j];
            for (int i = 0; i < 32; i++) {
                const int v = s > 0.0f ? clampi((int)lrintf((x[32 * j + i] + m) / s), 0, 15) : 0;
                qs[32 * (j / 2) + i] |= (uint8_t)(v << (4 * (j % 2)));
            }
        }
    }
}
