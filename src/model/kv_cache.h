/*
 * kv_cache.h - the KV cache: [seq][layer][pos][kv_head] head-rows in one of
 * the formats of kernels/kv_kernels.h, writing one token's keys and values,
 * and the attention that reads them (q.k scores and the softmax-weighted sum
 * of V), dequantising inside those loops: there is never a float copy of the
 * cache. The per-ISA score/sum kernels come with the kernel table in use
 * (bn_kernels.kv), so BITNET_ISA=scalar also gives the scalar KV code.
 */
#ifndef BN_KV_CACHE_H
#define BN_KV_CACHE_H

#include "common.h"
#include "kernels/kernels.h"
#include "kernels/kv_kernels.h"

typedef struct {
    bitnet_kv_type type;
    int n_seq, n_layers, n_ctx, n_kv_heads, head_dim;
    size_t row_bytes;  /* one head-row                          */
    size_t pos_bytes;  /* one position: n_kv_heads head-rows     */
    uint8_t *k, *v;    /* [seq][layer][pos][kv_head] head-rows   */
    const bn_kv_ops *ops;
} bn_kv_cache;

/* Fills the shape fields of kv (not k, v); returns the bytes of K (= of V). */
size_t bn_kv_init(bn_kv_cache *kv, bitnet_kv_type t, int n_seq, int n_layers, int n_ctx, int n_kv_heads,
                  int head_dim, const bn_kernels *kern);
/* Per-thread scratch bytes bn_kv_attend / bn_kv_attend_ak42 need. */
size_t bn_kv_scratch_bytes(int head_dim);

/* Head-row of (seq, layer, pos, kv_head) in base (kv->k or kv->v). */
static inline uint8_t *bn_kv_row(const bn_kv_cache *kv, uint8_t *base, int seq, int layer, int pos, int head) {
    return base + (((size_t)seq * kv->n_layers + layer) * kv->n_ctx + pos) * kv->pos_bytes +
           (size_t)head * kv->row_bytes;
}

/* Stores one token's keys and values (kv_dim = n_kv_heads * head_dim floats
 * each) at position pos of sequence seq, layer `layer`. */
void bn_kv_write(bn_kv_cache *kv, int seq, int layer, int pos, const float *k, const float *v);

/* Copies positions [p0, p1) of sequence src to sequence dst (src != dst), every
 * layer, keys and values. */
void bn_kv_seq_copy(bn_kv_cache *kv, int src, int dst, int p0, int p1);
/* Zeroes positions [p0, p1) of sequence seq in every layer. */
void bn_kv_seq_clear(bn_kv_cache *kv, int seq, int p0, int p1);

/* One query head against positions first..n_pos-1 of (seq, layer, kv_head)
 * (first > 0: a sliding-window layer):
 * out[hd] = sum_s softmax(q.k_s / sqrt(hd))_s v_s, with llama2.c's float
 * arithmetic. att holds n_pos floats; scratch bn_kv_scratch_bytes. */
void bn_kv_attend(const bn_kv_cache *kv, int seq, int layer, int kv_head, const float *q, int first, int n_pos,
                  float *att, void *scratch, float *out);
/* The same for ak42 models, in double from the float (or dequantised) q/k/v,
 * out rounded once to float: the ak42 reference's attention (ak42_math.h).
 * dscratch holds n_pos doubles. */
void bn_kv_attend_ak42(const bn_kv_cache *kv, int seq, int layer, int kv_head, const float *q, int n_pos,
                       double *dscratch, void *scratch, float *out);

#endif
