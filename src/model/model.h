/*
 * model.h - the in-memory model: hyper-parameters, weight views and tokenizer.
 *
 * Loaders (gguf_model.c for GGUF, ak42.c for legacy ak42 files) fill a
 * bitnet_model; the forward pass (forward.c) only reads it. Weight data points
 * into the file mapping wherever the file layout is the compute layout
 * (F32, F16, Q8_0, I2_S); other ternary layouts (TQ2_0, TQ1_0) are repacked
 * once at load into the native I2 layout (still 2 bits per weight).
 */
#ifndef BN_MODEL_H
#define BN_MODEL_H

#include <stdint.h>

#include "common.h"
#include "formats/gguf.h"
#include "model/arch.h"
#include "kernels/kernels.h"
#include "tokenizer/tokenizer.h"

/* How a weight matrix is stored for compute. */
typedef enum {
    BN_W_F32 = 0,
    BN_W_F16,
    BN_W_Q8_0,
    BN_W_I2,     /* native ternary layout, see kernels.h */
    BN_W_QUANT   /* a ggml block-quantised float format (bn_matrix.quant): Q4_0..Q6_K, BF16 */
} bn_wtype;

/* A 2-D weight matrix of `rows` outputs by `cols` inputs (PyTorch Linear shape). */
typedef struct {
    bn_wtype type;
    int rows, cols;     /* logical shape                                           */
    int cols_padded;    /* I2: cols rounded up to 128 (row stride = cols_padded/4) */
    const void *data;
    float scale;        /* I2: per-tensor scale (y = scale * T x); else 1           */
    /* I2 with a scale per block of block_cols weights of a row (TQ1_0/TQ2_0
     * files whose block scales differ): rows * cols/block_cols floats, and the
     * data is block-major, for each block b the rows' block_cols/4 bytes of
     * it ([b][row][block_cols/4]), so that each block is a matrix the kernels
     * take. NULL: one scale (scale) for the whole matrix, rows row-major. */
    const float *block_scales;
    int block_cols;
    bn_quant quant;     /* BN_W_QUANT: which format (kernels.h)                    */
} bn_matrix;

/* One layer: its tensors are the roles of arch.h (bn_layer_roles), each NULL
 * (vectors) or of type 0 with no data (matrices) where the architecture has none. */
typedef struct {
    const float *attn_norm;      /* [dim], BN_AF_LAYER_NORMS              */
    const float *ffn_norm;       /* [dim], BN_AF_LAYER_NORMS              */
    const float *attn_sub_norm;  /* [q_dim], BN_AF_SUB_NORMS (BitNet)     */
    const float *ffn_sub_norm;   /* [ff],  BN_AF_SUB_NORMS                */
    const float *attn_q_norm;    /* [head_dim], BN_AF_QK_NORM             */
    const float *attn_k_norm;    /* [head_dim], BN_AF_QK_NORM             */
    const float *post_attn_norm; /* [dim], BN_AF_POST_NORMS               */
    const float *post_ffn_norm;  /* [dim], BN_AF_POST_NORMS               */
    bn_matrix wq, wk, wv, wo;
    bn_matrix w_gate, w_up, w_down;
    /* BN_AF_MOE */
    bn_matrix ffn_gate_inp;      /* router [n_expert][dim]                */
    bn_matrix *gate_exps, *up_exps, *down_exps; /* [n_expert] each, into bitnet_model.experts */
} bn_layer;

/* The bn_matrix or vector of layer L that role r (a bn_layer_roles entry) names. */
static inline bn_matrix *bn_layer_matrix(bn_layer *L, const bn_role *r) { return (bn_matrix *)(void *)((char *)L + r->offset); }
static inline const bn_matrix *bn_layer_matrix_c(const bn_layer *L, const bn_role *r) {
    return (const bn_matrix *)(const void *)((const char *)L + r->offset);
}
static inline const float **bn_layer_vector(bn_layer *L, const bn_role *r) {
    return (const float **)(void *)((char *)L + r->offset);
}
static inline bn_matrix **bn_layer_experts(bn_layer *L, const bn_role *r) {
    return (bn_matrix **)(void *)((char *)L + r->offset);
}
/* Walks the matrices of a layer: the linears and, with experts, the router
 * and every expert's matrices (those the architecture has):
 *   bn_matrix_iter it = {0, 0};
 *   for (const bn_matrix *W; (W = bn_layer_next_matrix(L, hp->n_expert, &it));) ... */
typedef struct {
    int role, expert;
} bn_matrix_iter;
const bn_matrix *bn_layer_next_matrix(const bn_layer *L, int n_expert, bn_matrix_iter *it);

typedef struct {
    int dim;          /* embedding length                           */
    int ff;           /* feed-forward hidden length                 */
    int n_layers;
    int n_heads;
    int n_kv_heads;
    int head_dim;     /* per head (attention.key_length; usually dim / n_heads) */
    int rope_dim;     /* rotated dimensions per head (<= head_dim)  */
    int vocab;
    int ctx_train;    /* context length the model was trained with  */
    float norm_eps;
    float rope_theta;
    /* BN_AF_SWA (gemma3): layer l is a sliding-window layer when
     * l % swa_pattern < swa_pattern - 1 (llama.cpp's rule); it attends to the
     * last swa_window positions and uses RoPE base rope_theta_swa. */
    int swa_window, swa_pattern;
    float rope_theta_swa;
    /* BN_AF_MOE: experts per layer, experts used per token, one expert's FFN length */
    int n_expert, n_expert_used, ff_exp;
    int pooling;      /* ARCH.pooling_type (bitnet_pooling), -1 when the file names none */
} bn_hparams;

static inline int bn_layer_is_swa(const bn_hparams *hp, int l) {
    return hp->swa_window > 0 && hp->swa_pattern > 0 && l % hp->swa_pattern < hp->swa_pattern - 1;
}

/* A length of arch.h's bn_dim from the hyper-parameters. */
static inline int bn_hp_dim(const bn_hparams *hp, bn_dim d) {
    switch (d) {
    case BN_DIM_EMBD: return hp->dim;
    case BN_DIM_FF: return hp->ff;
    case BN_DIM_Q: return hp->n_heads * hp->head_dim;
    case BN_DIM_KV: return hp->n_kv_heads * hp->head_dim;
    case BN_DIM_HEAD: return hp->head_dim;
    case BN_DIM_EXPERTS: return hp->n_expert;
    case BN_DIM_FF_EXP: return hp->ff_exp;
    default: return 1;
    }
}

struct bitnet_model {
    const bn_arch *arch;         /* its entry in arch.h's table               */
    bn_hparams hp;
    char name[128];
    char path[512];

    bn_matrix tok_embd;          /* [vocab][dim]: rows are token embeddings  */
    bn_matrix output;            /* [vocab][dim]: may alias tok_embd          */
    const float *output_norm;    /* [dim]                                    */
    bn_layer *layers;            /* [n_layers]                               */
    bn_matrix *experts;          /* BN_AF_MOE: [n_layers][3][n_expert], or NULL */

    bn_tokenizer *tok;

    /* storage */
    bn_gguf_file *gguf;             /* when loaded from GGUF (owns the mapping)  */
    void *map;                   /* other mapped file (ak42), or NULL         */
    uint64_t map_size;
    void **shard_map;            /* a sharded safetensors checkpoint: shards 1..n_shards (shard 0 is map) */
    uint64_t *shard_size;
    int n_shards;
    void *owned;                 /* repacked / converted weights, or NULL     */
    uint64_t owned_size;
    uint64_t n_params;
    uint64_t weight_bytes;
    int locked;                  /* --mlock succeeded: release munlocks what free() or the binary keeps */
};

/* GGUF loader (gguf_model.c): fills m from an opened file, taking ownership of f. */
bitnet_status bn_model_from_gguf(bn_gguf_file *f, const bitnet_model_params *p, bitnet_model *m);
/* ak42 loader (ak42.c): `path` is an ak42 file. */
bitnet_status bn_model_from_ak42(const char *path, const bitnet_model_params *p, bitnet_model *m);
/* The same over a buffer (fuzzing, tests): without p->tokenizer_path it loads
 * the weights only (m->tok stays NULL). The buffer must outlive m. */
bitnet_status bn_model_from_ak42_memory(const void *data, uint64_t size, const char *name,
                                        const bitnet_model_params *p, bitnet_model *m);
/* Puts the file's bytes in m->map / m->map_size: mapped read-only, or with
 * use_mmap == 0 read into one anonymous mapping (--no-mmap). Either way
 * bn_model_release unmaps it. */
bitnet_status bn_model_map_file(const char *path, int use_mmap, bitnet_model *m);
/* Releases what a loader put in m (not m itself). */
void bn_model_release(bitnet_model *m);

/* general.architecture of m (m->arch->name). */
const char *bn_model_arch_name(const bitnet_model *m);
/* Whether m's architecture has flag f (BN_AF_*). */
static inline int bn_model_has(const bitnet_model *m, unsigned f) { return (m->arch->flags & f) != 0; }

/* Bytes of one row of a BN_W_QUANT matrix. */
static inline size_t bn_quant_row_bytes(const bn_matrix *w) {
    const bn_quant_traits *q = bn_quant_get(w->quant);
    return (size_t)(w->cols / (int)q->block_elems) * q->block_bytes;
}

/* Bytes between consecutive rows of w. */
static inline size_t bn_matrix_row_bytes(const bn_matrix *w) {
    switch (w->type) {
    case BN_W_F32: return (size_t)w->cols * 4;
    case BN_W_F16: return (size_t)w->cols * 2;
    case BN_W_Q8_0: return (size_t)(w->cols / BN_Q8_BLOCK) * sizeof(bn_block_q8_0);
    case BN_W_I2: return (size_t)w->cols_padded / 4; /* block-major (block_scales): not rows apart */
    case BN_W_QUANT: return bn_quant_row_bytes(w);
    }
    return 0;
}

/* Ternary values t[cols] of row r of an I2 matrix, either layout; with
 * block_d (cols/256 floats for TQ blocks, or NULL) the scale of each block. */
void bn_matrix_get_ternary_row(const bn_matrix *w, int r, int8_t *t, float *block_d, int block);

/* Embedding row of token t into out[dim] (any weight type). */
void bn_matrix_get_row(const bn_matrix *w, int row, float *out);

/* Ternary values of one row of float weights, shared by the GGUF and safetensors
 * loaders (model.c). iscale == 0: the values must already be -1, 0 or +1
 * (ternary tensors stored as floats with a NAME.scale); returns the column of the
 * first that is not, else -1. iscale > 0: BitNet b1.58 absmean quantisation of
 * latent weights, t = clamp(round_half_even(v * iscale), -1, 1); returns -1. */
int bn_ternarize_row(const float *v, int cols, float iscale, int8_t *t);

#endif
