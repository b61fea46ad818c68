/* arch.c - the architecture table (arch.h): the families this runtime runs and
 * the tensors a layer is made of. Adding a family: docs/adding-an-architecture.md. */
#include "model/arch.h"

#include <strings.h>

#include "model/model.h"

static const char *const gemma3_hf[][2] = {
    {"ffn_norm", "pre_feedforward_layernorm"},
    {"post_attention_norm", "post_attention_layernorm"},
    {"post_ffw_norm", "post_feedforward_layernorm"},
    {NULL, NULL},
};

#define BITNET_FLAGS (BN_AF_LAYER_NORMS | BN_AF_SUB_NORMS | BN_AF_ROPE_NEOX | BN_AF_TERNARY)

/* The order matters only for bn_arch_by_hf: the first entry whose Hugging
 * Face name and hidden_act match wins. */
const bn_arch bn_archs[] = {
    /* Meta Llama and the ternary models llama.cpp writes as "llama"
     * (Falcon3-1.58bit, TriLM, Llama3-8B-1.58): GGUF q/k rows are permuted to
     * interleaved RoPE pairs by llama.cpp's converter. */
    {"llama", BN_AF_LAYER_NORMS, BN_ACT_SILU, "LlamaForCausalLM", "silu", "llama", 0, NULL},
    /* bitnet.cpp's BitNet b1.58 (microsoft/BitNet-b1.58-2B-4T): sub-norms,
     * squared-ReLU gate, neox RoPE (their converters keep HF's row order). */
    {"bitnet-b1.58", BITNET_FLAGS, BN_ACT_RELU_SQ, "BitNetForCausalLM", "relu2", "bitnet", 0, NULL},
    {"bitnet-25", BITNET_FLAGS, BN_ACT_RELU_SQ, "BitNetForCausalLM", "relu2", "bitnet", 0, NULL},
    /* llama.cpp's "bitnet" (1bitLLM bitnet_b1_58-large/3B): the same with SiLU */
    {"bitnet", BITNET_FLAGS, BN_ACT_SILU, "BitNetForCausalLM", "silu", "bitnet", 0, NULL},
    /* Qwen3 (BitNet-embedding-0.6B, Ternary-Bonsai): per-head q/k RMSNorm */
    {"qwen3", BN_AF_LAYER_NORMS | BN_AF_QK_NORM | BN_AF_ROPE_NEOX, BN_ACT_SILU, "Qwen3ForCausalLM", NULL, "qwen3", 0, NULL},
    /* Qwen3-MoE (ternary MoE): qwen3 attention, routed experts (softmax, top-k,
     * weights renormalised), no shared expert */
    {"qwen3moe", BN_AF_LAYER_NORMS | BN_AF_QK_NORM | BN_AF_ROPE_NEOX | BN_AF_MOE, BN_ACT_SILU, "Qwen3MoeForCausalLM", NULL,
     "qwen3_moe", 0, NULL},
    /* Gemma 3 (BitNet-embedding-270M): q/k norms, post-norms, GELU, scaled
     * embedding, sliding-window layers */
    {"gemma3", BN_AF_LAYER_NORMS | BN_AF_QK_NORM | BN_AF_POST_NORMS | BN_AF_EMBD_SCALE | BN_AF_ROPE_NEOX | BN_AF_SWA,
     BN_ACT_GELU_TANH, "Gemma3ForCausalLM", NULL, "gemma3_text", 1, gemma3_hf},
    /* our conversion of the legacy ak42 files (docs/formats.md) */
    {"bitnet-ak42", BN_AF_AK42 | BN_AF_TERNARY, BN_ACT_SILU, "BitNetAK42ForCausalLM", NULL, "bitnet_ak42", 0, NULL},
    {NULL, 0, BN_ACT_SILU, NULL, NULL, NULL, 0, NULL},
};

#define VEC(field, gguf, hf, len, need) {gguf, hf, len, BN_DIM_NONE, need, 0, BN_ROLE_VECTOR, 0, offsetof(bn_layer, field)}
#define MAT(field, gguf, hf, rows, cols, rope, absent) \
    {gguf, hf, rows, cols, 0, absent, BN_ROLE_MATRIX, rope, offsetof(bn_layer, field)}
/* experts: model.layers.N.mlp.experts.E.<hf>.weight in Hugging Face checkpoints */
#define EXPERTS(field, gguf, hf, rows, cols) {gguf, hf, rows, cols, BN_AF_MOE, 0, BN_ROLE_EXPERTS, 0, offsetof(bn_layer, field)}

/* Norms first, then the linears in llama.cpp's order, then the experts. */
const bn_role bn_layer_roles[BN_N_LAYER_ROLES] = {
    VEC(attn_norm, "attn_norm", "input_layernorm", BN_DIM_EMBD, BN_AF_LAYER_NORMS),
    VEC(ffn_norm, "ffn_norm", "post_attention_layernorm", BN_DIM_EMBD, BN_AF_LAYER_NORMS),
    VEC(attn_sub_norm, "attn_sub_norm", "self_attn.attn_sub_norm", BN_DIM_Q, BN_AF_SUB_NORMS),
    VEC(ffn_sub_norm, "ffn_sub_norm", "mlp.ffn_sub_norm", BN_DIM_FF, BN_AF_SUB_NORMS),
    VEC(attn_q_norm, "attn_q_norm", "self_attn.q_norm", BN_DIM_HEAD, BN_AF_QK_NORM),
    VEC(attn_k_norm, "attn_k_norm", "self_attn.k_norm", BN_DIM_HEAD, BN_AF_QK_NORM),
    VEC(post_attn_norm, "post_attention_norm", "post_attention_layernorm", BN_DIM_EMBD, BN_AF_POST_NORMS),
    VEC(post_ffn_norm, "post_ffw_norm", "post_feedforward_layernorm", BN_DIM_EMBD, BN_AF_POST_NORMS),
    MAT(wq, "attn_q", "self_attn.q_proj", BN_DIM_Q, BN_DIM_EMBD, 1, 0),
    MAT(wk, "attn_k", "self_attn.k_proj", BN_DIM_KV, BN_DIM_EMBD, 1, 0),
    MAT(wv, "attn_v", "self_attn.v_proj", BN_DIM_KV, BN_DIM_EMBD, 0, 0),
    MAT(wo, "attn_output", "self_attn.o_proj", BN_DIM_EMBD, BN_DIM_Q, 0, 0),
    MAT(w_gate, "ffn_gate", "mlp.gate_proj", BN_DIM_FF, BN_DIM_EMBD, 0, BN_AF_MOE),
    MAT(w_up, "ffn_up", "mlp.up_proj", BN_DIM_FF, BN_DIM_EMBD, 0, BN_AF_MOE),
    MAT(w_down, "ffn_down", "mlp.down_proj", BN_DIM_EMBD, BN_DIM_FF, 0, BN_AF_MOE),
    /* BN_AF_MOE: the router (kept float) and the experts' FFNs, a 3-D tensor each */
    {"ffn_gate_inp", "mlp.gate", BN_DIM_EXPERTS, BN_DIM_EMBD, BN_AF_MOE, 0, BN_ROLE_MATRIX, 0, offsetof(bn_layer, ffn_gate_inp)},
    EXPERTS(gate_exps, "ffn_gate_exps", "gate_proj", BN_DIM_FF_EXP, BN_DIM_EMBD),
    EXPERTS(up_exps, "ffn_up_exps", "up_proj", BN_DIM_FF_EXP, BN_DIM_EMBD),
    EXPERTS(down_exps, "ffn_down_exps", "down_proj", BN_DIM_EMBD, BN_DIM_FF_EXP),
};

const bn_arch *bn_arch_by_name(const char *name) {
    for (const bn_arch *a = bn_archs; name && a->name; a++)
        if (strcmp(a->name, name) == 0) return a;
    return NULL;
}

const bn_arch *bn_arch_by_hf(const char *hf_name, const char *hidden_act) {
    for (const bn_arch *a = bn_archs; hf_name && a->name; a++)
        if (a->hf_name && strcasecmp(a->hf_name, hf_name) == 0 && /* BitNet and Bitnet both occur */
            (!a->hf_act || !hidden_act || strcmp(a->hf_act, hidden_act) == 0))
            return a;
    return NULL;
}

const char *bn_arch_names(void) {
    static _Thread_local char buf[256];
    size_t n = 0;
    buf[0] = 0;
    for (const bn_arch *a = bn_archs; a->name; a++) {
        if (bn_arch_by_name(a->name) != a) continue; /* listed once */
        n += (size_t)snprintf(buf + n, sizeof buf - n, "%s%s", n ? ", " : "", a->name);
        if (n >= sizeof buf) break;
    }
    return buf;
}

const char *bn_role_hf_name(const bn_arch *a, const bn_role *r) {
    for (const char *const(*p)[2] = a->hf_renames; p && (*p)[0]; p++)
        if (strcmp((*p)[0], r->gguf) == 0) return (*p)[1];
    return r->hf;
}

const bn_role *bn_role_by_gguf(const char *gguf) {
    for (int i = 0; i < BN_N_LAYER_ROLES; i++)
        if (strcmp(bn_layer_roles[i].gguf, gguf) == 0) return &bn_layer_roles[i];
    return NULL;
}
