/*
 * arch.h - the architecture table: what each model family is made of.
 *
 * Two tables drive every loader, writer, converter, pruner and the context
 * sizing, so that a new family is one entry here (plus, where its block
 * computes something new, a few marked lines in forward.c):
 *
 *   bn_archs[]        one entry per general.architecture: flags saying how its
 *                     block differs from the Llama block (norm placement,
 *                     sub-norms, q/k norms, FFN activation, RoPE layout, ...)
 *                     and its Hugging Face name;
 *   bn_layer_roles[]  one entry per tensor a layer may have: its GGUF name
 *                     (blk.N.<gguf>.weight), its Hugging Face name
 *                     (model.layers.N.<hf>.weight), its shape from the
 *                     hyper-parameters, the field of bn_layer it lands in,
 *                     and the architecture flag that makes it present.
 *
 * docs/adding-an-architecture.md walks through adding a family.
 */
#ifndef BN_ARCH_H
#define BN_ARCH_H

#include <stddef.h>
#include <stdint.h>

/* How an architecture's layer differs from the Llama block
 *   x += Wo·attn(RoPE(Wq·n(x)), RoPE(Wk·n(x)), Wv·n(x));  x += Wdown·(act(Wgate·n(x)) * Wup·n(x)). */
enum {
    BN_AF_LAYER_NORMS = 1u << 0, /* attn_norm / ffn_norm RMSNorm weights in front of attention / FFN   */
    BN_AF_SUB_NORMS = 1u << 1,   /* BitNet: attn_sub_norm before Wo, ffn_sub_norm before Wdown         */
    BN_AF_QK_NORM = 1u << 2,     /* qwen3, gemma3: per-head RMSNorm of q and k before RoPE             */
    BN_AF_POST_NORMS = 1u << 3,  /* gemma3: RMSNorm of the attention / FFN output before the residual  */
    BN_AF_EMBD_SCALE = 1u << 4,  /* gemma: the input embedding is multiplied by sqrt(n_embd)           */
    BN_AF_ROPE_NEOX = 1u << 5,   /* RoPE rotates (x_i, x_i+d/2) (GPT-NeoX, Hugging Face rotate_half);
                                    else interleaved pairs (x_2i, x_2i+1) as Meta's Llama / llama2.c  */
    BN_AF_TERNARY = 1u << 6,     /* linears are ternary: float tensors with a NAME.scale are packed to
                                    I2, and Hugging Face latent weights are ternarised (absmean)        */
    BN_AF_AK42 = 1u << 7,        /* legacy ak42 arithmetic (ak42_math.h): every linear normalises its
                                    own input, double-precision RoPE and attention, f32 KV cache       */
    BN_AF_SWA = 1u << 8,         /* gemma3: sliding-window layers (attention.sliding_window_pattern)   */
    BN_AF_MOE = 1u << 9,         /* qwen3moe: a routed mixture of experts instead of the dense FFN      */
};

typedef enum {
    BN_ACT_SILU = 0,    /* silu(gate) * up: Llama, Qwen, llama.cpp's 1bitLLM "bitnet"      */
    BN_ACT_RELU_SQ = 1, /* relu(gate)^2 * up: BitNet b1.58 (bitnet.cpp, 2B-4T)             */
    BN_ACT_GELU_TANH = 2 /* gelu_tanh(gate) * up: Gemma                                      */
} bn_ffn_act;

typedef struct bn_arch {
    const char *name;    /* general.architecture, as GGUF files spell it                   */
    unsigned flags;      /* BN_AF_*                                                         */
    bn_ffn_act act;
    const char *hf_name; /* config.json "architectures"[0] this entry is loaded for, or NULL */
    const char *hf_act;  /* its "hidden_act" (NULL: any; the first matching entry wins)     */
    const char *hf_type; /* config.json "model_type" our safetensors writer puts beside it  */
    int hf_norm_plus1;   /* Hugging Face stores RMSNorm weights as w - 1 (Gemma's x * (1 + w));
                            GGUF stores w, as llama.cpp's converter adds the 1          */
    /* Hugging Face names that differ from a role's default, as {role gguf name,
     * hf name} pairs ending in {NULL, NULL} (gemma3 names its norms otherwise). */
    const char *const (*hf_renames)[2];
} bn_arch;

/* The known architectures, ending with an entry whose name is NULL. */
extern const bn_arch bn_archs[];
/* By general.architecture, or NULL. */
const bn_arch *bn_arch_by_name(const char *name);
/* By Hugging Face class name and hidden_act (NULL when absent), or NULL. */
const bn_arch *bn_arch_by_hf(const char *hf_name, const char *hidden_act);
/* "llama, bitnet, ..." for error messages (static storage). */
const char *bn_arch_names(void);

/* ---- tensor roles of a layer ------------------------------------------------- */

/* A length from the hyper-parameters (bn_hparams in model.h). */
typedef enum {
    BN_DIM_NONE = 0,
    BN_DIM_EMBD,  /* n_embd                       */
    BN_DIM_FF,    /* feed-forward length          */
    BN_DIM_Q,     /* n_heads * head_dim           */
    BN_DIM_KV,    /* n_kv_heads * head_dim        */
    BN_DIM_HEAD,  /* head_dim                     */
    BN_DIM_EXPERTS, /* n_expert (BN_AF_MOE)        */
    BN_DIM_FF_EXP,  /* one expert's FFN length     */
} bn_dim;

/* What a role holds in bn_layer. */
enum { BN_ROLE_VECTOR = 0, BN_ROLE_MATRIX = 1, BN_ROLE_EXPERTS = 2 /* one matrix per expert: a 3-D GGUF tensor */ };

typedef struct {
    const char *gguf;    /* blk.N.<gguf>.weight                               */
    const char *hf;      /* model.layers.N.<hf>.weight (unless renamed); experts:
                          * model.layers.N.mlp.experts.E.<hf>.weight           */
    bn_dim rows, cols;   /* matrix: rows (outputs) x cols (inputs); vector: rows */
    unsigned need;       /* present iff the architecture has this flag (0: all) */
    unsigned absent;     /* ... and has not this one (the dense FFN of a MoE model) */
    uint8_t is_matrix;   /* BN_ROLE_*                                          */
    uint8_t rope_rows;   /* q or k: Hugging Face rows are in the neox order (see safetensors_model.c) */
    size_t offset;       /* of the bn_matrix or `const float *` in bn_layer   */
} bn_role;

enum { BN_N_LAYER_ROLES = 19 };
extern const bn_role bn_layer_roles[BN_N_LAYER_ROLES];

/* Whether architecture a has tensor role r in every layer. */
static inline int bn_role_present(const bn_arch *a, const bn_role *r) {
    return (!r->need || (a->flags & r->need)) && !(a->flags & r->absent);
}
/* The role whose GGUF name is `gguf` ("attn_q"), or NULL. */
const bn_role *bn_role_by_gguf(const char *gguf);
/* The Hugging Face name of role r in architecture a. */
const char *bn_role_hf_name(const bn_arch *a, const bn_role *r);

#endif
