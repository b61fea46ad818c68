/* kv_avx2.c - AVX2 + F16C + FMA attention kernels over the KV-cache formats
 * (kv_kernels.h). Compiled with -mavx2 -mfma -mf16c -ffp-contract=off like
 * the other x86 kernel files, and reached only through the avx2/avx512
 * kernel tables (bn_kernels.kv), which dispatch.c hands out after checking
 * the CPU.
 *
 * Each kernel handles the head sizes whose code vectors fill whole registers
 * (f32/f16/q8: hd % 8 == 0, q8 scores hd % 16, q4 hd % 16, q2 hd % 32) and
 * calls the scalar reference otherwise. The f16, q4 and q2 float sums run in
 * another order than the scalar code (tests/test_kv_cache.c bounds the
 * difference); f32 keeps the scalar order (separate multiply and add: this
 * file is compiled without contraction) and the q8 scores are integer dot
 * products: both match the scalar bits. */
#include <immintrin.h>

#include "kernels/kv_kernels.h"

#define AVX2 /* the file is compiled for AVX2 + FMA + F16C */

AVX2 static inline float hsum_ps(__m256 v) {
    __m128 x = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    x = _mm_add_ps(x, _mm_movehl_ps(x, x));
    x = _mm_add_ss(x, _mm_movehdup_ps(x));
    return _mm_cvtss_f32(x);
}

AVX2 static inline int32_t hsum_epi32(__m256i v) {
    __m128i x = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
    x = _mm_add_epi32(x, _mm_shuffle_epi32(x, 0x4e));
    x = _mm_add_epi32(x, _mm_shuffle_epi32(x, 0xb1));
    return _mm_cvtsi128_si32(x);
}

/* 8 halves / 8 int8 / 8 uint8 codes -> 8 floats */
AVX2 static inline __m256 load_f16(const uint8_t *p) { return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)p)); }
AVX2 static inline __m256 load_i8(const uint8_t *p) {
    return _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i *)p)));
}
AVX2 static inline __m256 codes_ps(__m128i bytes, int shift, int mask) {
    __m128i c = _mm_and_si128(_mm_srli_epi16(bytes, shift), _mm_set1_epi8((char)mask));
    return _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(c));
}

/* ---- f32: the reference arithmetic, vectorised across positions ----------
 * Lane j of a vector holds position s + j, and sums q[i] * k[i] for i = 0, 1,
 * ... in order with a separate multiply and add: per position exactly the
 * scalar code's float operations, so the bits are the same. The keys of 8
 * positions are loaded 8 values at a time and transposed. Compiled without
 * FMA so that nothing can be contracted. */
#define AVX2_EXACT /* exact: no FMA contraction (-ffp-contract=off) */

AVX2_EXACT static inline void transpose8(__m256 r[8]) {
    const __m256 t0 = _mm256_unpacklo_ps(r[0], r[1]), t1 = _mm256_unpackhi_ps(r[0], r[1]);
    const __m256 t2 = _mm256_unpacklo_ps(r[2], r[3]), t3 = _mm256_unpackhi_ps(r[2], r[3]);
    const __m256 t4 = _mm256_unpacklo_ps(r[4], r[5]), t5 = _mm256_unpackhi_ps(r[4], r[5]);
    const __m256 t6 = _mm256_unpacklo_ps(r[6], r[7]), t7 = _mm256_unpackhi_ps(r[6], r[7]);
    const __m256 u0 = _mm256_shuffle_ps(t0, t2, 0x44), u1 = _mm256_shuffle_ps(t0, t2, 0xEE);
    const __m256 u2 = _mm256_shuffle_ps(t1, t3, 0x44), u3 = _mm256_shuffle_ps(t1, t3, 0xEE);
    const __m256 u4 = _mm256_shuffle_ps(t4, t6, 0x44), u5 = _mm256_shuffle_ps(t4, t6, 0xEE);
    const __m256 u6 = _mm256_shuffle_ps(t5, t7, 0x44), u7 = _mm256_shuffle_ps(t5, t7, 0xEE);
    r[0] = _mm256_permute2f128_ps(u0, u4, 0x20);
    r[1] = _mm256_permute2f128_ps(u1, u5, 0x20);
    r[2] = _mm256_permute2f128_ps(u2, u6, 0x20);
    r[3] = _mm256_permute2f128_ps(u3, u7, 0x20);
    r[4] = _mm256_permute2f128_ps(u0, u4, 0x31);
    r[5] = _mm256_permute2f128_ps(u1, u5, 0x31);
    r[6] = _mm256_permute2f128_ps(u2, u6, 0x31);
    r[7] = _mm256_permute2f128_ps(u3, u7, 0x31);
}

/* acc (8 positions from k) += q[i0..i0+8) . k_j[i0..i0+8), in order of i */
AVX2_EXACT static inline __m256 f32_block(__m256 acc, const float *q, const uint8_t *k, size_t stride, int i0) {
    __m256 r[8];
    for (int j = 0; j < 8; j++) r[j] = _mm256_loadu_ps((const float *)(const void *)(k + (size_t)j * stride) + i0);
    transpose8(r);
    for (int i = 0; i < 8; i++) acc = _mm256_add_ps(acc, _mm256_mul_ps(_mm256_set1_ps(q[i0 + i]), r[i]));
    return acc;
}

AVX2_EXACT static void avx2_scores_f32(const bn_kv_query *qy, const uint8_t *k, size_t stride, int n, int hd,
                                       float scale, float *att) {
    const float *q = qy->f;
    const __m256 sc = _mm256_set1_ps(scale);
    int s = 0;
    for (; hd % 8 == 0 && s + 32 <= n; s += 32) { /* four blocks: four independent add chains */
        const uint8_t *k0 = k + (size_t)s * stride;
        __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
        for (int i0 = 0; i0 < hd; i0 += 8) {
            a0 = f32_block(a0, q, k0, stride, i0);
            a1 = f32_block(a1, q, k0 + 8 * stride, stride, i0);
            a2 = f32_block(a2, q, k0 + 16 * stride, stride, i0);
            a3 = f32_block(a3, q, k0 + 24 * stride, stride, i0);
        }
        _mm256_storeu_ps(att + s, _mm256_mul_ps(a0, sc));
        _mm256_storeu_ps(att + s + 8, _mm256_mul_ps(a1, sc));
        _mm256_storeu_ps(att + s + 16, _mm256_mul_ps(a2, sc));
        _mm256_storeu_ps(att + s + 24, _mm256_mul_ps(a3, sc));
    }
    for (; hd % 8 == 0 && s + 8 <= n; s += 8) {
        __m256 a = _mm256_setzero_ps();
        for (int i0 = 0; i0 < hd; i0 += 8) a = f32_block(a, q, k + (size_t)s * stride, stride, i0);
        _mm256_storeu_ps(att + s, _mm256_mul_ps(a, sc));
    }
    if (s < n) SCALAR_SCORES(BITNET_KV_F32)(qy, k + (size_t)s * stride, stride, n - s, hd, scale, att + s);
}

/* out[i] += a * v[i]: element-wise, so any vector width gives the scalar bits */
AVX2_EXACT static void avx2_wsum_f32(const float *att, const uint8_t *v, size_t stride, int n, int hd, float *out) {
    if (hd % 8) {
        SCALAR_WSUM(BITNET_KV_F32)(att, v, stride, n, hd, out);
        return;
    }
    for (int u = 0; u < n; u++) {
        const float *vr = (const float *)(const void *)(v + (size_t)u * stride);
        const __m256 a = _mm256_set1_ps(att[u]);
        for (int i = 0; i < hd; i += 8)
            _mm256_storeu_ps(out + i, _mm256_add_ps(_mm256_loadu_ps(out + i), _mm256_mul_ps(a, _mm256_loadu_ps(vr + i))));
    }
}

AVX2 static void avx2_scores_f16(const bn_kv_query *qy, const uint8_t *k, size_t stride, int n, int hd, float scale,
                                 float *att) {
    if (hd % 8) {
        SCALAR_SCORES(BITNET_KV_F16)(qy, k, stride, n, hd, scale, att);
        return;
    }
    const float *q = qy->f;
    int s = 0;
    for (; s + 4 <= n; s += 4) { /* four positions: four independent FMA chains */
        const uint8_t *k0 = k + (size_t)s * stride, *k1 = k0 + stride, *k2 = k1 + stride, *k3 = k2 + stride;
        __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
        for (int i = 0; i < hd; i += 8) {
            const __m256 qv = _mm256_loadu_ps(q + i);
            a0 = _mm256_fmadd_ps(qv, load_f16(k0 + 2 * i), a0);
            a1 = _mm256_fmadd_ps(qv, load_f16(k1 + 2 * i), a1);
            a2 = _mm256_fmadd_ps(qv, load_f16(k2 + 2 * i), a2);
            a3 = _mm256_fmadd_ps(qv, load_f16(k3 + 2 * i), a3);
        }
        att[s] = hsum_ps(a0) * scale;
        att[s + 1] = hsum_ps(a1) * scale;
        att[s + 2] = hsum_ps(a2) * scale;
        att[s + 3] = hsum_ps(a3) * scale;
    }
    for (; s < n; s++) {
        const uint8_t *kr = k + (size_t)s * stride;
        __m256 a = _mm256_setzero_ps();
        for (int i = 0; i < hd; i += 8) a = _mm256_fmadd_ps(_mm256_loadu_ps(q + i), load_f16(kr + 2 * i), a);
        att[s] = hsum_ps(a) * scale;
    }
}

/* q8 scores: int8 query x int8 keys, widened to int16 and summed in pairs by
 * vpmaddwd (exact: |q c| <= 127^2); 16 values per step, four positions at once. */
AVX2 static void avx2_scores_q8(const bn_kv_query *qy, const uint8_t *k, size_t stride, int n, int hd, float scale,
                                float *att) {
    if (hd % 16) {
        SCALAR_SCORES(BITNET_KV_Q8)(qy, k, stride, n, hd, scale, att);
        return;
    }
#define KQ(p, i) _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)((p) + 4 + (i))))
    const int8_t *q = qy->i8;
    int s = 0;
    for (; s + 4 <= n; s += 4) {
        const uint8_t *k0 = k + (size_t)s * stride, *k1 = k0 + stride, *k2 = k1 + stride, *k3 = k2 + stride;
        __m256i a0 = _mm256_setzero_si256(), a1 = a0, a2 = a0, a3 = a0;
        for (int i = 0; i < hd; i += 16) {
            const __m256i qv = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(q + i)));
            a0 = _mm256_add_epi32(a0, _mm256_madd_epi16(qv, KQ(k0, i)));
            a1 = _mm256_add_epi32(a1, _mm256_madd_epi16(qv, KQ(k1, i)));
            a2 = _mm256_add_epi32(a2, _mm256_madd_epi16(qv, KQ(k2, i)));
            a3 = _mm256_add_epi32(a3, _mm256_madd_epi16(qv, KQ(k3, i)));
        }
        att[s] = bn_kv_q8_score(hsum_epi32(a0), bn_kv_rd_f32(k0), qy->d, scale);
        att[s + 1] = bn_kv_q8_score(hsum_epi32(a1), bn_kv_rd_f32(k1), qy->d, scale);
        att[s + 2] = bn_kv_q8_score(hsum_epi32(a2), bn_kv_rd_f32(k2), qy->d, scale);
        att[s + 3] = bn_kv_q8_score(hsum_epi32(a3), bn_kv_rd_f32(k3), qy->d, scale);
    }
    for (; s < n; s++) {
        const uint8_t *kr = k + (size_t)s * stride;
        __m256i a = _mm256_setzero_si256();
        for (int i = 0; i < hd; i += 16)
            a = _mm256_add_epi32(a, _mm256_madd_epi16(_mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(q + i))),
                                                      KQ(kr, i)));
        att[s] = bn_kv_q8_score(hsum_epi32(a), bn_kv_rd_f32(kr), qy->d, scale);
    }
#undef KQ
}

/* q4 (bits 4) / q2 (bits 2) scores with the float query: codes of 8 values
 * come from one 8-byte load, shifted by bits*j for the j-th part of the row. */
AVX2 static inline void avx2_scores_qlow(const bn_kv_query *qy, const uint8_t *k, size_t stride, int n, int hd,
                                         float scale, float *att, int bits) {
    const int parts = 8 / bits, span = hd / parts, mask = (1 << bits) - 1;
    const float *q = qy->f;
    for (int s = 0; s < n; s++) {
        const uint8_t *kr = k + (size_t)s * stride;
        __m256 a = _mm256_setzero_ps(), b = a;
        for (int j = 0; j < span; j += 8) {
            const __m128i bytes = _mm_loadl_epi64((const __m128i *)(kr + 8 + j));
            for (int p = 0; p < parts; p += 2) { /* parts is 2 or 4: two chains */
                a = _mm256_fmadd_ps(_mm256_loadu_ps(q + p * span + j), codes_ps(bytes, bits * p, mask), a);
                b = _mm256_fmadd_ps(_mm256_loadu_ps(q + (p + 1) * span + j), codes_ps(bytes, bits * (p + 1), mask), b);
            }
        }
        att[s] = (bn_kv_rd_f32(kr) * hsum_ps(_mm256_add_ps(a, b)) + bn_kv_rd_f32(kr + 4) * qy->sum) * scale;
    }
}

/* Weighted sums: out stays in L1; two positions per pass halve its traffic. */
AVX2 static void avx2_wsum_f16(const float *att, const uint8_t *v, size_t stride, int n, int hd, float *out) {
    if (hd % 8) {
        SCALAR_WSUM(BITNET_KV_F16)(att, v, stride, n, hd, out);
        return;
    }
    int u = 0;
    for (; u + 2 <= n; u += 2) {
        const uint8_t *v0 = v + (size_t)u * stride, *v1 = v0 + stride;
        const __m256 w0 = _mm256_set1_ps(att[u]), w1 = _mm256_set1_ps(att[u + 1]);
        for (int i = 0; i < hd; i += 8) {
            __m256 o = _mm256_fmadd_ps(w0, load_f16(v0 + 2 * i), _mm256_loadu_ps(out + i));
            _mm256_storeu_ps(out + i, _mm256_fmadd_ps(w1, load_f16(v1 + 2 * i), o));
        }
    }
    for (; u < n; u++) {
        const uint8_t *vr = v + (size_t)u * stride;
        const __m256 w = _mm256_set1_ps(att[u]);
        for (int i = 0; i < hd; i += 8)
            _mm256_storeu_ps(out + i, _mm256_fmadd_ps(w, load_f16(vr + 2 * i), _mm256_loadu_ps(out + i)));
    }
}

AVX2 static void avx2_wsum_q8(const float *att, const uint8_t *v, size_t stride, int n, int hd, float *out) {
    if (hd % 8) {
        SCALAR_WSUM(BITNET_KV_Q8)(att, v, stride, n, hd, out);
        return;
    }
    int u = 0;
    for (; u + 2 <= n; u += 2) {
        const uint8_t *v0 = v + (size_t)u * stride, *v1 = v0 + stride;
        const __m256 w0 = _mm256_set1_ps(att[u] * bn_kv_rd_f32(v0)), w1 = _mm256_set1_ps(att[u + 1] * bn_kv_rd_f32(v1));
        for (int i = 0; i < hd; i += 8) {
            __m256 o = _mm256_fmadd_ps(w0, load_i8(v0 + 4 + i), _mm256_loadu_ps(out + i));
            _mm256_storeu_ps(out + i, _mm256_fmadd_ps(w1, load_i8(v1 + 4 + i), o));
        }
    }
    for (; u < n; u++) {
        const uint8_t *vr = v + (size_t)u * stride;
        const __m256 w = _mm256_set1_ps(att[u] * bn_kv_rd_f32(vr));
        for (int i = 0; i < hd; i += 8)
            _mm256_storeu_ps(out + i, _mm256_fmadd_ps(w, load_i8(vr + 4 + i), _mm256_loadu_ps(out + i)));
    }
}

AVX2 static inline void avx2_wsum_qlow(const float *att, const uint8_t *v, size_t stride, int n, int hd, float *out,
                                       int bits) {
    const int parts = 8 / bits, span = hd / parts, mask = (1 << bits) - 1;
    float msum = 0.0f;
    for (int u = 0; u < n; u++) {
        const uint8_t *vr = v + (size_t)u * stride;
        const __m256 w = _mm256_set1_ps(att[u] * bn_kv_rd_f32(vr));
        msum += att[u] * bn_kv_rd_f32(vr + 4);
        for (int j = 0; j < span; j += 8) {
            const __m128i bytes = _mm_loadl_epi64((const __m128i *)(vr + 8 + j));
            for (int p = 0; p < parts; p++) {
                float *o = out + p * span + j;
                _mm256_storeu_ps(o, _mm256_fmadd_ps(w, codes_ps(bytes, bits * p, mask), _mm256_loadu_ps(o)));
            }
        }
    }
    const __m256 m = _mm256_set1_ps(msum);
    for (int i = 0; i < hd; i += 8) _mm256_storeu_ps(out + i, _mm256_add_ps(_mm256_loadu_ps(out + i), m));
}

/* whole vectors of codes: 16 values (q4) or 32 (q2) a step */
BN_KV_QLOW_ENTRIES(avx2_, avx2_scores_qlow, avx2_wsum_qlow, 16, 32)

const bn_kv_ops bn_kv_ops_avx2 = {
    .isa = "avx2",
    .scores = {avx2_scores_f32, avx2_scores_f16, avx2_scores_q8, avx2_scores_q4, avx2_scores_q2},
    .wsum = {avx2_wsum_f32, avx2_wsum_f16, avx2_wsum_q8, avx2_wsum_q4, avx2_wsum_q2},
};
