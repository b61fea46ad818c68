/* quants.c - ggml's block-quantised float formats, dequantised row by row
 * (the scalar reference; the layouts are llama.cpp's ggml-common.h). They
 * appear in real files' embeddings and heads (a default `llama-quantize ...
 * TQ2_0` writes a Q4_K token_embd and a Q6_K output, bitnet.cpp's
 * --quant-embd a Q6_K one). Ternary and Q8_0 weights have their own kernels. */
#include "common.h"
#include "kernels/kernels.h"

static float f16(const uint8_t *p) {
    uint16_t h;
    memcpy(&h, p, 2);
    return bn_fp16_to_fp32(h);
}

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
