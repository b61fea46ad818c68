/*
 * ak42_math.c - the arithmetic of BN_ARCH_AK42 (see ak42_math.h and
 * docs/ak42.md): exact real arithmetic realised in double, activations kept in
 * double. Mirrors tools/train/ak42_reference.py (arithmetic "spec"); the
 * results do not depend on loop order, SIMD, FMA contraction or -O level
 * because no quantiser input of the shipped models' greedy runs is closer than
 * 8e-9 (relative) to a rounding boundary, against ~1e-16 evaluation error.
 */
#include "ak42_math.h"

#include <math.h>
#include <stddef.h>

/* Round half to even without depending on the floating-point environment:
 * v - floor(v) is exact for any double. */
static double round_half_even(double v) {
    double r = floor(v);
    double d = v - r;
    if (d > 0.5 || (d == 0.5 && fmod(r, 2.0) != 0.0)) r += 1.0;
    return r;
}

void bn_ak42_embed(const float *row, int n, double *x) {
    for (int i = 0; i < n; i++) x[i] = (double)row[i];
}

double bn_ak42_quantize(const double *x, int n, int8_t *xq) {
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
    for (int i = 0; i < n; i++) {
        double v = x[i] * 127.0 / amax; /* |v| <= 127 */
        xq[i] = (int8_t)round_half_even(v);
    }
    double rms = sqrt(ss / (double)n);
    return amax / rms / 127.0;
}

double bn_ak42_factor(double act, float w_scale, int fan_in) {
    return act * (double)w_scale / (double)fan_in;
}

void bn_ak42_dequant(const int32_t *acc, int rows, double act, float w_scale, int fan_in,
                     double *y) {
    const double k = bn_ak42_factor(act, w_scale, fan_in);
    for (int r = 0; r < rows; r++) y[r] = (double)acc[r] * k;
}

void bn_ak42_dequant_add(const int32_t *acc, int rows, double act, float w_scale, int fan_in,
                         double *x) {
    const double k = bn_ak42_factor(act, w_scale, fan_in);
    for (int r = 0; r < rows; r++) x[r] += (double)acc[r] * k;
}

void bn_ak42_rope_table(int pos, int head_dim, double *cs) {
    for (int i = 0; i < head_dim / 2; i++) {
        double freq = pow(BN_AK42_ROPE_THETA, -((double)(2 * i) / (double)head_dim));
        double ang = (double)pos * freq;
        cs[2 * i] = cos(ang);
        cs[2 * i + 1] = sin(ang);
    }
}

void bn_ak42_rope(double *vec, int n_heads, int head_dim, const double *cs) {
    for (int h = 0; h < n_heads; h++) {
        double *v = vec + (size_t)h * head_dim;
        for (int i = 0; i < head_dim / 2; i++) {
            double c = cs[2 * i], s = cs[2 * i + 1];
            double v0 = v[2 * i], v1 = v[2 * i + 1];
            v[2 * i] = v0 * c - v1 * s;
            v[2 * i + 1] = v0 * s + v1 * c;
        }
    }
}

void bn_ak42_attention(const double *q, const double *k, const double *v, int n_pos, int stride,
                       int head_dim, double *scratch, double *out) {
    const double sq = sqrt((double)head_dim);
    double mx = -INFINITY;
    for (int t = 0; t < n_pos; t++) {
        const double *kt = k + (size_t)t * stride;
        double s = 0.0;
        for (int j = 0; j < head_dim; j++) s += q[j] * kt[j];
        s /= sq;
        scratch[t] = s;
        if (s > mx) mx = s;
    }
    double sum = 0.0;
    for (int t = 0; t < n_pos; t++) {
        scratch[t] = exp(scratch[t] - mx);
        sum += scratch[t];
    }
    for (int t = 0; t < n_pos; t++) scratch[t] /= sum;
    for (int j = 0; j < head_dim; j++) {
        double o = 0.0;
        for (int t = 0; t < n_pos; t++) o += scratch[t] * v[(size_t)t * stride + j];
        out[j] = o;
    }
}

void bn_ak42_swiglu(const double *g, const double *u, int n, double *out) {
    for (int i = 0; i < n; i++) out[i] = g[i] / (1.0 + exp(-g[i])) * u[i];
}

void bn_ak42_final_norm(const double *x, const float *w, int n, double eps, float *out) {
    double ss = 0.0;
    for (int i = 0; i < n; i++) ss += x[i] * x[i];
    const double r = sqrt(ss / (double)n + eps);
    for (int i = 0; i < n; i++) out[i] = (float)((double)w[i] * (x[i] / r));
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
