/*
 * ak42_math.h - the arithmetic of the legacy ak42 BitNet b1.58 models
 * (BN_AF_AK42) that reproduces the published greedy reference byte for byte.
 * Evidence for every choice: docs/ak42.md; numpy twin: tools/train/ak42_reference.py.
 *
 * RULE: exact real arithmetic, realised in double. Every activation of the
 * ak42 forward pass - residual stream x, q/k/v, RoPE'd q/k, the KV CACHE, the
 * attention output, g/u and the SwiGLU product - is a double and stays a
 * double. float32 only appears in the file data (embeddings, final_norm,
 * per-tensor scales) and in the final normed vector fed to the classifier.
 *
 * Why: greedy decoding of these models hits quantiser near-ties. Along the
 * greedy runs of both shipped models the closest int8 quantiser input to a
 * .5 rounding boundary is 8e-9 (relative) away. Double evaluation error
 * (~1e-16) is 7 orders of magnitude below that, so ANY double implementation
 * (summation order, SIMD width, threads, FMA contraction, -O level) rounds
 * every element as exact arithmetic does and produces the same tokens. Storing
 * activations in float32 (rounding 6e-8) does not: it reproduces the 1M
 * reference by luck but changes the 3M text at step 223 (KV cache alone in
 * float32: step 166). An f16/q8 KV cache is out of the question for ak42.
 *
 * One token through one layer with the exact (_f64) API (dim = n_heads*head_dim,
 * kv_dim, hidden); all vectors are double[] except int8 xq, int32 acc, float xb.
 * The float32-storage API at the end takes the same sequence with float[] vectors:
 *
 *   x = (double) tok_embeddings[token]                   // bn_ak42_embed_f64
 *   a = bn_ak42_quantize_f64(x, dim, xq);                    // one xq for q, k and v
 *   acc = Wq xq (exact int32); bn_ak42_dequant_f64(acc, dim,    a, s_wq, dim, q);
 *   acc = Wk xq;               bn_ak42_dequant_f64(acc, kv_dim, a, s_wk, dim, k);
 *   acc = Wv xq;               bn_ak42_dequant_f64(acc, kv_dim, a, s_wv, dim, v);
 *   bn_ak42_rope_table(pos, head_dim, cs);               // once per position
 *   bn_ak42_rope_f64(q, n_heads, head_dim, cs); bn_ak42_rope_f64(k, n_kv_heads, head_dim, cs);
 *   store k, v in the double KV cache at pos
 *   for h < n_heads: kh = h / (n_heads / n_kv_heads);
 *       bn_ak42_attention_f64(q + h*head_dim, kcache + kh*head_dim, vcache + kh*head_dim,
 *                         pos + 1, kv_dim, head_dim, scratch, att + h*head_dim);
 *   a = bn_ak42_quantize_f64(att, dim, xq); acc = Wo xq;
 *   bn_ak42_dequant_add_f64(acc, dim, a, s_wo, dim, x);      // x += y
 *   a = bn_ak42_quantize_f64(x, dim, xq);                    // one xq for w1 and w3
 *   acc = W1 xq; bn_ak42_dequant_f64(acc, hidden, a, s_w1, dim, g);
 *   acc = W3 xq; bn_ak42_dequant_f64(acc, hidden, a, s_w3, dim, u);
 *   bn_ak42_swiglu_f64(g, u, hidden, hb);                    // w1 = gate, w3 = up
 *   a = bn_ak42_quantize_f64(hb, hidden, xq); acc = W2 xq;
 *   bn_ak42_dequant_add_f64(acc, dim, a, s_w2, hidden, x);   // fan-in = hidden
 * After the last layer:
 *   bn_ak42_final_norm_f64(x, final_norm, dim, BN_AK42_NORM_EPS, xb);   // float xb[dim]
 *   logits = tok_embeddings . xb  with the float32 GEMV, any order: logits are
 *   not fed back, and the smallest top-2 margin (3.5e-3) is far above its ~1e-6 noise.
 *
 * fan_in is the LOGICAL number of input columns (not an I2 padded width); the
 * int8 xq entries beyond it (I2 padding) multiply zero weights, any value works.
 * Prompt batches: apply the same per-token sequence to each token in order.
 * No -ffast-math needed or wanted; -ffp-contract=fast/FMA is harmless here.
 */
#ifndef BN_AK42_MATH_H
#define BN_AK42_MATH_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define BN_AK42_ROPE_THETA 10000.0
#define BN_AK42_NORM_EPS 1e-5 /* final norm only; the BitLinear norm has NO eps */

/* ======================================================================
 * Shared by both paths
 * ====================================================================== */

/* The per-tensor dequantisation factor k = act * w_scale / fan_in (double). */
double bn_ak42_factor(double act, float w_scale, int fan_in);

/* RoPE table for position pos: cs[2i] = cos(pos * theta^(-2i/head_dim)),
 * cs[2i+1] = sin(...), i < head_dim/2, theta = 10000, in double. */
void bn_ak42_rope_table(int pos, int head_dim, double *cs);

/* Unpacks one row of an ak42 tensor (2 bits per weight, MSB first; 00 = 0,
 * 01 = +1, 11 = -1) into cols values in {-1, 0, 1}. Returns the number of
 * invalid 10 codes met (written as 0); a valid file has none. */
int bn_ak42_unpack_row(const uint8_t *packed, int cols, int8_t *t);

/* ======================================================================
 * EXACT path (recommended): activations and KV cache in double.
 * Same call sequence as in the comment at the top, with double vectors.
 * ====================================================================== */

/* x[i] = (double)row[i]: the embedding row of a token (no scaling). */
void bn_ak42_embed_f64(const float *row, int n, double *x);

/* xq[i] = round_half_even(x[i] * 127 / amax), amax = max|x[i]| (|xq| <= 127;
 * the weightless RMS norm cancels out of xq). Returns the activation factor
 *     act = (amax / sqrt(sum(x^2) / n)) / 127     (= a/127, a = max|x/rms(x)|)
 * that the integer dot products are multiplied by, with w_scale / fan_in.
 * An all-zero or non-finite input gives xq = 0 and returns 0. */
double bn_ak42_quantize_f64(const double *x, int n, int8_t *xq);
/* y[r] = acc[r] * k, k = bn_ak42_factor(act, w_scale, fan_in). */
void bn_ak42_dequant_f64(const int32_t *acc, int rows, double act, float w_scale, int fan_in,
                         double *y);
/* Residual update x[r] += acc[r] * k. */
void bn_ak42_dequant_add_f64(const int32_t *acc, int rows, double act, float w_scale, int fan_in,
                             double *x);
/* llama2.c interleaved RoPE: (v0, v1) -> (v0 c - v1 s, v0 s + v1 c) per pair (2i, 2i+1). */
void bn_ak42_rope_f64(double *vec, int n_heads, int head_dim, const double *cs);
/* One attention head over positions 0..n_pos-1 (causal: n_pos = pos + 1):
 * s_t = q.k_t / sqrt(head_dim); p = softmax(s) (max-subtracted); out = sum_t p_t v_t.
 * k_t = k + t*stride, v_t = v + t*stride (stride in doubles, e.g. kv_dim);
 * scratch holds n_pos doubles; out (head_dim doubles) aliases none of q, k, v. */
void bn_ak42_attention_f64(const double *q, const double *k, const double *v, int n_pos,
                           int stride, int head_dim, double *scratch, double *out);
/* In place: s = softmax(s), max-subtracted (the attention weights above). */
void bn_ak42_softmax_f64(double *s, int n);
/* SwiGLU: out[i] = g[i] / (1 + exp(-g[i])) * u[i] (w1 = gate, w3 = up); out may alias. */
void bn_ak42_swiglu_f64(const double *g, const double *u, int n, double *out);
/* Final RMS norm with weight and eps, rounded to float for the classifier:
 * out[i] = (float)(w[i] * (x[i] / sqrt(sum(x^2)/n + eps))). */
void bn_ak42_final_norm_f64(const double *x, const float *w, int n, double eps, float *out);

/* ======================================================================
 * FLOAT32-STORAGE path (what src/model/forward.c used first): the same formulas
 * computed in double from float inputs, each result rounded ONCE to float32
 * where it is stored (residual, q/k/v, KV cache, attention output, SwiGLU).
 * Reproduces the 1M reference byte for byte, and is deterministic across
 * compilers/ISAs, but its 3M text differs from exact arithmetic from step
 * 223 on (see docs/ak42.md). Kept for compatibility; prefer the _f64 path.
 * ====================================================================== */

/* As bn_ak42_quantize_f64 on float input (x*127 is exact in double, so xq is
 * exactly round(127 x / amax)). */
double bn_ak42_quantize(const float *x, int n, int8_t *xq);
/* y[r] = (float)(acc[r] * k). */
void bn_ak42_dequant(const int32_t *acc, int rows, double act, float w_scale, int fan_in,
                     float *y);
/* x[r] = x[r] + (float)(acc[r] * k): output rounded to float first, then a float add. */
void bn_ak42_dequant_add(const int32_t *acc, int rows, double act, float w_scale, int fan_in,
                         float *x);
/* RoPE in double, each result rounded to float. */
void bn_ak42_rope(float *vec, int n_heads, int head_dim, const double *cs);
/* Attention: bn_ak42_attention_f64's formula in double from float q/k/v, out
 * rounded to float, is bn_kv_attend_ak42 (model/kv_cache.h), on the cache. */
/* SwiGLU in double, rounded to float; out may alias g or u. */
void bn_ak42_swiglu(const float *g, const float *u, int n, float *out);
/* Final norm in double from float x; out may alias x. */
void bn_ak42_final_norm(const float *x, const float *w, int n, double eps, float *out);

#ifdef __cplusplus
}
#endif

#endif
