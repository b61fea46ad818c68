/*
 * ak42_math.h - the float arithmetic of the legacy ak42 BitNet b1.58 models
 * (BN_ARCH_AK42), exactly as it reproduces the published greedy reference
 * byte for byte. See docs/ak42.md for the evidence behind every choice.
 *
 * Rule: every *stored* activation (residual stream x, q/k/v, RoPE'd q/k, the
 * KV cache, the attention output, the SwiGLU product, BitLinear outputs) is
 * float32; every value is *computed* in double from float32 inputs and rounded
 * ONCE to float32. Double evaluation errors (~1e-16) are 9 orders of magnitude
 * below what flips a token, so summation order, SIMD width, threads and FMA
 * contraction do not matter inside these functions; what matters is WHERE the
 * float32 roundings happen, and that nothing in between is float32.
 *
 * The int8 quantiser is exact: xq[i] = nearest integer to 127*x[i]/max|x|,
 * computed as (double)x*127/(double)amax. x*127 is exact in double and the
 * quotient is correctly rounded, so it lands on the right side of every .5
 * (distance to a .5 boundary is >= 2^29/254 double ulps unless it is an exact
 * tie, which needs x/amax == (2k+1)/254 exactly; ties go to even, as np.round).
 * The weightless RMS norm of the ak42 BitLinear cancels out of xq and survives
 * only in the dequantisation factor.
 *
 * One token through one layer (dim = n_heads*head_dim, kv_dim, hidden):
 *
 *   a = bn_ak42_quantize(x, dim, xq);                    // shared by q, k, v
 *   acc = Wq xq (exact int32); bn_ak42_dequant(acc, dim,    a, s_wq, dim, q);
 *   acc = Wk xq;               bn_ak42_dequant(acc, kv_dim, a, s_wk, dim, k);
 *   acc = Wv xq;               bn_ak42_dequant(acc, kv_dim, a, s_wv, dim, v);
 *   bn_ak42_rope_table(pos, head_dim, cs);               // once per position
 *   bn_ak42_rope(q, n_heads, head_dim, cs); bn_ak42_rope(k, n_kv_heads, head_dim, cs);
 *   store k, v in a FLOAT32 KV cache (an f16/q8 cache does not reproduce)
 *   for h: bn_ak42_attention(q + h*head_dim, kcache + (h/(n_heads/n_kv_heads))*head_dim,
 *                            vcache + ..., pos+1, kv_dim, head_dim, scratch, att + h*head_dim);
 *   a = bn_ak42_quantize(att, dim, xq); acc = Wo xq;
 *   bn_ak42_dequant_add(acc, dim, a, s_wo, dim, x);      // x += (float)y
 *   a = bn_ak42_quantize(x, dim, xq);                    // shared by w1, w3
 *   acc = W1 xq; bn_ak42_dequant(acc, hidden, a, s_w1, dim, g);
 *   acc = W3 xq; bn_ak42_dequant(acc, hidden, a, s_w3, dim, u);
 *   bn_ak42_swiglu(g, u, hidden, hb);
 *   a = bn_ak42_quantize(hb, hidden, xq); acc = W2 xq;
 *   bn_ak42_dequant_add(acc, dim, a, s_w2, hidden, x);   // fan-in = hidden
 * After the last layer:
 *   bn_ak42_final_norm(x, final_norm, dim, 1e-5, xb);    // eps 1e-5, weight = final_norm
 *   logits = tok_embeddings . xb  (float32 GEMV in any order: the logits are not fed
 *   back, and the smallest top-2 margin, 3.5e-3, is >> float32 summation noise ~1e-6)
 *
 * fan_in is the LOGICAL number of input columns (not an I2 padded width).
 * Compile without -ffast-math (it is not needed for correctness here, but it
 * lets the compiler replace divisions and reorder anything).
 */
#ifndef BN_AK42_MATH_H
#define BN_AK42_MATH_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define BN_AK42_ROPE_THETA 10000.0
#define BN_AK42_NORM_EPS 1e-5

/* BitLinear input quantisation (weightless RMS norm with NO eps + per-token
 * absmax + int8): xq[i] = round_half_even((double)x[i] * 127 / amax) with
 * amax = max|x[i]|, all |xq| <= 127. Returns the activation factor
 *     act = (amax / sqrt(sum(x^2) / n)) / 127         (double)
 * i.e. a/127 with a = max|u|, u = x / rms(x): the integer dot products must be
 * multiplied by act * w_scale / fan_in (bn_ak42_dequant). An all-zero or
 * non-finite input gives xq = 0 and returns 0 (the reference would produce
 * NaN). Exact: the result does not depend on the order of the sum. */
double bn_ak42_quantize(const float *x, int n, int8_t *xq);

/* The per-tensor dequantisation factor k = act * (double)w_scale / fan_in. */
double bn_ak42_factor(double act, float w_scale, int fan_in);

/* y[r] = (float)((double)acc[r] * k), k = bn_ak42_factor(act, w_scale, fan_in):
 * one rounding to float32 per output. */
void bn_ak42_dequant(const int32_t *acc, int rows, double act, float w_scale, int fan_in,
                     float *y);

/* Residual update x[r] = x[r] + (float)((double)acc[r] * k): the BitLinear output
 * is rounded to float32 FIRST, then added in float32 (two roundings, as when the
 * output is stored in a buffer). Do not fuse into one double expression. */
void bn_ak42_dequant_add(const int32_t *acc, int rows, double act, float w_scale, int fan_in,
                         float *x);

/* RoPE table for position pos: cs[2i] = cos(pos * theta^(-2i/head_dim)),
 * cs[2i+1] = sin(...), i < head_dim/2, theta = 10000, in double (kept double). */
void bn_ak42_rope_table(int pos, int head_dim, double *cs);

/* llama2.c interleaved RoPE on n_heads heads of head_dim floats, computed in
 * double with the double table: (v0, v1) -> ((float)(v0 c - v1 s), (float)(v0 s + v1 c)). */
void bn_ak42_rope(float *vec, int n_heads, int head_dim, const double *cs);

/* One attention head over positions 0..n_pos-1 (causal: n_pos = pos + 1):
 *   s_t = (sum_j q[j] * k_t[j]) / sqrt(head_dim)  in double,
 *   p_t = exp(s_t - max s) / sum exp(s - max s)  in double,
 *   out[j] = (float)(sum_t p_t * v_t[j]).
 * k_t = k + t*stride, v_t = v + t*stride (stride in floats, e.g. kv_dim);
 * scratch holds n_pos doubles. */
void bn_ak42_attention(const float *q, const float *k, const float *v, int n_pos, int stride,
                       int head_dim, double *scratch, float *out);

/* SwiGLU: out[i] = (float)(g / (1 + exp(-g)) * u) in double (w1 = gate, w3 = up).
 * out may alias g or u. */
void bn_ak42_swiglu(const float *g, const float *u, int n, float *out);

/* Final RMS norm (with weight and eps): out[i] = (float)(w[i] * (x[i] / sqrt(sum(x^2)/n + eps)))
 * in double. eps = BN_AK42_NORM_EPS. out may alias x. */
void bn_ak42_final_norm(const float *x, const float *w, int n, double eps, float *out);

/* Unpacks one row of an ak42 tensor (2 bits per weight, MSB first; 00 = 0,
 * 01 = +1, 11 = -1) into cols values in {-1, 0, 1}. Returns the number of
 * invalid 10 codes met (they are written as 0); a valid file has none. */
int bn_ak42_unpack_row(const uint8_t *packed, int cols, int8_t *t);

#ifdef __cplusplus
}
#endif

#endif
