/*
 * context.h - per-sequence state: KV cache, activations, thread pool.
 *
 * Everything a token needs is carved out of one arena allocated at context
 * creation (sized from the model and n_ctx/n_batch), so the token loop never
 * allocates.
 */
#ifndef BN_CONTEXT_H
#define BN_CONTEXT_H

#include "common.h"
#include "kernels/kernels.h"
#include "model/kv_cache.h"
#include "model/model.h"
#include "threadpool.h"

#define BN_MAX_SEQ 256    /* sequences (server slots) per context          */
#define BN_EVAL_CHUNK 512 /* bitnet_eval builds positions in pieces of this */

struct bitnet_context {
    bitnet_model *model;
    bitnet_context_params params;
    int n_ctx;
    int n_batch;
    const bn_kernels *kern;
    bn_pool *pool;

    /* arena */
    uint8_t *arena;
    size_t arena_size;   /* bytes used by the buffers                    */
    size_t arena_mapped; /* bytes mapped (rounded up to 2 MiB with MAP_HUGETLB) */
    int arena_is_mmap;
    int arena_hugetlb;   /* 1 if backed by explicit huge pages (Linux MAP_HUGETLB) */

    /* KV cache, [seq][layer][pos][kv_head] head-rows (kv_cache.h) */
    int n_seq;
    bn_kv_cache kv;
    uint8_t *kv_scratch;      /* [n_threads][kv_scratch_bytes] attention scratch */
    size_t kv_scratch_bytes;

    /* per-token bookkeeping of the batch being evaluated */
    int *tok_pos;   /* [n_batch] position of each token          */
    int *tok_seq;   /* [n_batch] sequence of each token           */
    int *seq_n;     /* [n_seq] positions each sequence holds (0..seq_n-1)  */
    int *seq_last;  /* [n_seq] index of each sequence's last token in the current batch, or -1 */
    float *head_out;/* [n_seq][vocab] classifier output of a multi-sequence step (n_seq > 1) */

    /* Optional instrumentation for analysis tools (build/prune); NULL in normal use.
     * layer_hook is called after the embedding (layer -1) and after every layer
     * with the residual stream x[n][dim] of the n tokens being evaluated;
     * skip_layer[l] != 0 leaves layer l out of the forward pass. */
    bitnet_layer_hook layer_hook;
    void *layer_hook_user;
    /* bitnet_embed: when set, a chunk's final-norm hidden states are pooled
     * into embd_out (embd_pooling) instead of being classified */
    float *embd_out;
    int embd_pooling, embd_total;
    const uint8_t *skip_layer;

    /* activations for up to n_batch tokens */
    float *x;       /* [B][dim]  residual stream          */
    float *xb;      /* [B][max(dim, ff)] normed input     */
    float *xb2;     /* [B][dim]  attention output         */
    float *q;       /* [B][dim]                           */
    float *k;       /* [B][kv_dim]                        */
    float *v;       /* [B][kv_dim]                        */
    float *hb;      /* [B][ff]                            */
    float *hb2;     /* [B][ff]                            */
    float *att;     /* [n_threads][n_ctx] attention scores */
    float *logits;  /* [vocab]                            */
    float *rope_cos, *rope_sin; /* [n_ctx][rope_dim/2]    */
    float *rope_cos_swa, *rope_sin_swa; /* the same for sliding-window layers (BN_AF_SWA), else NULL */
    /* ak42 only: its arithmetic is double with float32 storage (ak42_math.h) */
    double *ak_act;      /* [B] activation factors      */
    double *ak_rope;     /* [n_ctx][head_dim] cos/sin    */
    double *ak_scratch;  /* [n_threads][n_ctx]          */

    /* quantised activations for the ternary / q8 kernels */
    int8_t *xq;     /* [B][max_cols_padded]               */
    float *xq_f;    /* [B] per-token factor, or per-32 scales for q8 */
    int32_t *acc;   /* [B][max_rows]                      */
    int max_cols, max_rows;
    /* BN_AF_MOE: router output, each token's chosen experts and weights, the
     * gathered inputs of one expert and each (token, choice)'s output */
    float *moe_logits;  /* [B][n_expert]                 */
    int *moe_sel;       /* [B][n_expert_used]            */
    float *moe_w;       /* [B][n_expert_used]            */
    int *moe_tok;       /* [B] tokens routed to an expert */
    int *moe_slot;      /* [B] their choice index         */
    float *moe_in;      /* [B][dim]                      */
    float *moe_out;     /* [B][n_expert_used][dim]       */
    float *deq_row; /* [n_threads][max_cols] a dequantised row of a BN_W_QUANT matrix, or NULL */
    int16_t *xq_bsum; /* [B][max_cols/16] Q8_K group sums for the K-quant kernels, or NULL */
    int has_quant;  /* the model has a BN_W_QUANT matrix */
};

/* Runs n tokens through the model: token i at position pos[i] of sequence
 * seq[i] (see bitnet_eval_batch). With rows NULL only each sequence's last
 * token is classified, into its logits row. Else rows receives the logits of
 * every token (want NULL) or of each token with want[i] != 0, n_vocab floats
 * each, packed in batch order; a sequence's logits row gets its last token's
 * when that token is among them. */
bitnet_status bn_forward(bitnet_context *ctx, const bitnet_token *tokens, const int *pos, const int *seq,
                         int n, const int8_t *want, float *rows);

/* Moves the keys k[n_kv_heads][head_dim] of layer `layer` from position p to
 * p - d (d < n_ctx) by turning their RoPE rotation; scratch: head_dim doubles. */
void bn_rope_shift_keys(const bitnet_context *ctx, int layer, float *k, int d, double *scratch);

/* y[t][rows] = W x[t][cols] for t < n, using the thread pool. The activation
 * quantisation for ternary weights follows the model's architecture. */
void bn_linear(bitnet_context *ctx, const bn_matrix *W, const float *x, int n, float *y);
/* As bn_linear; with reuse != 0 the int8 activations of the previous call are
 * used as they are (same x, same n, I2 weights of the same width): q/k/v and
 * gate/up share one quantisation. */
void bn_linear_ex(bitnet_context *ctx, const bn_matrix *W, const float *x, int n, float *y, int reuse);
/* True if W2 can reuse the activations quantised for W1 (see bn_linear_ex). */
static inline int bn_can_share_quant(const bn_matrix *w1, const bn_matrix *w2) {
    return w1->type == BN_W_I2 && w2->type == BN_W_I2 && w1->cols == w2->cols && w1->cols_padded == w2->cols_padded;
}

#endif
