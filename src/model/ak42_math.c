/*
 * ak42_math.c - the arithmetic of BN_AF_AK42 (see ak42_math.h and
 * docs/ak42.md). Two paths with the same formulas:
 *   _f64      exact real arithmetic realised in double, activations kept in
 *             double (tools/train/ak42_reference.py "spec");
 *   float32   computed in double, rounded once to float32 where stored
 *             (ak42_reference.py --variant store=f32).
 * Neither depends on loop order, SIMD, FMA contraction or -O level: double
 * evaluation error (~1e-16) is far below the closest quantiser near-tie
 * (8e-9 relative for the _f64 path on the shipped models).
 */
#include "model/ak42_math.h"

#include <math.h>
#include <stddef.h>

/* Round half to even of |v| <= 127 (a quantised activation) without
 * depending on the floating-point environment: r = floor(v) by truncation, and
 * v - r is exact. Without branches or libm calls: the signs and fractions of
 * activations are random, and mispredicted branches were most of the time of
 * the quantiser. */
static inline int round_half_even(double v) {
    int r = (int)v;       /* toward zero */
    r -= (double)r > v;   /* floor */
    const double d = v - (double)r;
    return r + ((d > 0.5) | ((d == 0.5) & r & 1));
}

double bn_ak42_factor(double act, float w_scale, int fan_in) {
    return act * (double)w_scale / (double)fan_in;
}

void bn_ak42_rope_table(int pos, int head_dim, double *cs) {
    for (int i = 0; i < head_dim / 2; i++) {
        double freq = pow(BN_AK42_ROPE_THETA, -((double)(2 * i) / (double)head_dim));
        double ang = (double)pos * freq;
        cs[2 * i] = cos(ang);
        cs[2 * i + 1] = sin(ang);
    }
}

int bn_ak42_unpack_row(const uint8_t *packed, int cols, int8_t *t) {
    static const int8_t lut[4] = {0, 1, 0, -1};
    int bad = 0;
    for (int j = 0; j < cols; j++) {
        int code = (packed[j >> 2] >> (6 - 2 * (j & 3))) & 3;
        bad += code == 2;
        t[j] = lut[code];
    }
    return bad;
}

/* ---- exact path: double activations ------------------------------------ */

void bn_ak42_embed_f64(const float *row, int n, double *x) {
    for (int i = 0; i < n; i++) x[i] = (double)row[i];
}

double bn_ak42_quantize_f64(const double *x, int n, int8_t *xq) {
    double amax = 0.0, ss = 0.0;
    int finite = 1;
    for (int i = 0; i < n; i++) {
        double a = fabs(x[i]);
        if (!isfinite(a)) finite = 0;
        if (a > amax) amax = a;
        ss += x[i] * x[i];
    }
    if (!finite || !(amax > 0.0) || !(ss > 0.0)) {
        for (int i = 0; i < n; i++) xq[i] = 0;
        return 0.0;
    }
    for (int i = 0; i < n; i++) xq[i] = (int8_t)round_half_even(x[i] * 127.0 / amax); /* |v| <= 127 */
    return amax / sqrt(ss / (double)n) / 127.0;
}

void bn_ak42_dequant_f64(const int32_t *acc, int rows, double act, float w_scale, int fan_in,
                         double *y) {
    const double k = bn_ak42_factor(act, w_scale, fan_in);
    for (int r = 0; r < rows; r++) y[r] = (double)acc[r] * k;
}

void bn_ak42_dequant_add_f64(const int32_t *acc, int rows, double act, float w_scale, int fan_in,
                             double *x) {
    const double k = bn_ak42_factor(act, w_scale, fan_in);
    for (int r = 0; r < rows; r++) x[r] += (double)acc[r] * k;
}

/* Element i of a float (f32 = 1) or double vector, as a double (exact), and
 * a store to one (rounded once to float on the float path). */
static inline __attribute__((always_inline)) double at(const void *p, size_t i, int f32) {
    return f32 ? (double)((const float *)p)[i] : ((const double *)p)[i];
}
static inline __attribute__((always_inline)) void put(void *p, size_t i, double v, int f32) {
    if (f32) ((float *)p)[i] = (float)v;
    else ((double *)p)[i] = v;
}

/* Both RoPE paths: the rotation in double on float or double storage. */
static inline __attribute__((always_inline)) void rope(void *vec, int n_heads, int head_dim, const double *cs, int f32) {
    for (int h = 0; h < n_heads; h++) {
        const size_t v = (size_t)h * head_dim;
        for (int i = 0; i < head_dim / 2; i++) {
            const double c = cs[2 * i], s = cs[2 * i + 1];
            const double v0 = at(vec, v + 2 * i, f32), v1 = at(vec, v + 2 * i + 1, f32);
            put(vec, v + 2 * i, v0 * c - v1 * s, f32);
            put(vec, v + 2 * i + 1, v0 * s + v1 * c, f32);
        }
    }
}

void bn_ak42_rope_f64(double *vec, int n_heads, int head_dim, const double *cs) { rope(vec, n_heads, head_dim, cs, 0); }

void bn_ak42_softmax_f64(double *s, int n) {
    double mx = -INFINITY;
    for (int t = 0; t < n; t++)
        if (s[t] > mx) mx = s[t];
    double sum = 0.0;
    for (int t = 0; t < n; t++) {
        s[t] = exp(s[t] - mx);
        sum += s[t];
    }
    for (int t = 0; t < n; t++) s[t] /= sum;
}

void bn_ak42_attention_f64(const double *q, const double *k, const double *v, int n_pos,
                           int stride, int head_dim, double *scratch, double *out) {
    const double sq = sqrt((double)head_dim);
    for (int t = 0; t < n_pos; t++) {
        double s = 0.0;
        for (int j = 0; j < head_dim; j++) s += q[j] * k[(size_t)t * stride + j];
        scratch[t] = s / sq;
    }
    bn_ak42_softmax_f64(scratch, n_pos);
    /* position-major: the head_dim sums are independent, each in position order */
    for (int j = 0; j < head_dim; j++) out[j] = 0.0;
    for (int t = 0; t < n_pos; t++)
        for (int j = 0; j < head_dim; j++) out[j] += scratch[t] * v[(size_t)t * stride + j];
}

void bn_ak42_swiglu_f64(const double *g, const double *u, int n, double *out) {
    for (int i = 0; i < n; i++) out[i] = g[i] / (1.0 + exp(-g[i])) * u[i];
}

void bn_ak42_final_norm_f64(const double *x, const float *w, int n, double eps, float *out) {
    double ss = 0.0;
    for (int i = 0; i < n; i++) ss += x[i] * x[i];
    const double r = sqrt(ss / (double)n + eps);
    for (int i = 0; i < n; i++) out[i] = (float)((double)w[i] * (x[i] / r));
}

/* ---- float32-storage path ------------------------------------------------ */

double bn_ak42_quantize(const float *x, int n, int8_t *xq) {
    float amax = 0.0f;
    double ss = 0.0;
    int finite = 1;
    for (int i = 0; i < n; i++) {
        float a = fabsf(x[i]);
        if (!isfinite(a)) finite = 0;
        if (a > amax) amax = a;
        ss += (double)x[i] * (double)x[i]; /* exact products */
    }
    if (!finite || !(amax > 0.0f) || !(ss > 0.0)) {
        for (int i = 0; i < n; i++) xq[i] = 0;
        return 0.0;
    }
    const double am = (double)amax;
    /* (double)x * 127 is exact and the division correctly rounded, so xq is
     * exactly round(127 x / amax): an exact tie needs x/amax == (2k+1)/254. */
    for (int i = 0; i < n; i++) xq[i] = (int8_t)round_half_even((double)x[i] * 127.0 / am);
    return am / sqrt(ss / (double)n) / 127.0;
}

void bn_ak42_dequant(const int32_t *acc, int rows, double act, float w_scale, int fan_in,
                     float *y) {
    const double k = bn_ak42_factor(act, w_scale, fan_in);
    for (int r = 0; r < rows; r++) y[r] = (float)((double)acc[r] * k);
}

void bn_ak42_dequant_add(const int32_t *acc, int rows, double act, float w_scale, int fan_in,
                         float *x) {
    const double k = bn_ak42_factor(act, w_scale, fan_in);
    for (int r = 0; r < rows; r++) {
        float y = (float)((double)acc[r] * k); /* the stored BitLinear output */
        x[r] = x[r] + y;                        /* float32 residual add */
    }
}

void bn_ak42_rope(float *vec, int n_heads, int head_dim, const double *cs) { rope(vec, n_heads, head_dim, cs, 1); }

void bn_ak42_swiglu(const float *g, const float *u, int n, float *out) {
    for (int i = 0; i < n; i++) {
        const double gd = g[i];
        out[i] = (float)(gd / (1.0 + exp(-gd)) * (double)u[i]);
    }
}

void bn_ak42_final_norm(const float *x, const float *w, int n, double eps, float *out) {
    double ss = 0.0;
    for (int i = 0; i < n; i++) ss += (double)x[i] * (double)x[i];
    const double r = sqrt(ss / (double)n + eps);
    for (int i = 0; i < n; i++) out[i] = (float)((double)w[i] * ((double)x[i] / r));
}
