/* safetensors_model.c - builds a bitnet_model from a Hugging Face style
 * checkpoint: model.safetensors (or the shards model.safetensors.index.json
 * names) plus config.json (or the config embedded by bn_safetensors_write_model)
 * and tokenizer.json. docs/formats.md, "safetensors", has the rules.
 *
 * Architectures (config "architectures"[0]): the Hugging Face names of the
 * architecture table (src/model/arch.c): LlamaForCausalLM, BitNetForCausalLM
 * (latent float weights, ternarised here with the b1.58 absmean rule, or
 * ternary I8 values with a NAME.scale tensor as we write them),
 * Qwen3ForCausalLM, Gemma3ForCausalLM and BitNetAK42ForCausalLM (our name for
 * the legacy ak42 semantics).
 *
 * Two conventions differ from GGUF: shapes are PyTorch's [out, in] (the same
 * bytes as GGUF's ne = {in, out}), and Hugging Face applies RoPE to the two
 * halves of each head (rotate_half). Llama models run interleaved pairs here
 * (as llama.cpp's GGUFs), so their q_proj/k_proj rows are permuted at load
 * exactly as llama.cpp's convert_hf_to_gguf.py permutes them (and back by the
 * writer); BitNet models keep the halves layout (BN_AF_ROPE_NEOX), as llama.cpp's
 * and bitnet.cpp's BitNet converters do.
 *
 * Loading runs twice over the same code: pass 1 validates every shape and
 * dtype and sums the memory needed for converted tensors, pass 2 allocates
 * that once (m->owned) and converts. F32/F16 tensors that need no change are
 * used in place from the mapping. */
#include <errno.h>
#include <math.h>
#include <sys/stat.h>
#include <unistd.h>

#include "model/model.h"
#include "formats/mapped_file.h"
#include "formats/safetensors.h"

typedef unsigned long long ull;

#define BN_ST_MAX_SHARDS 1024

typedef struct {
    bitnet_model *m;
    bn_safetensors *f;      /* the first file: metadata (bitnet.config, bitnet.name) */
    bn_safetensors **files; /* every shard (f is files[0]) */
    int n_files;
    const char *path;       /* for messages: the file, or the index of a sharded checkpoint */
    int counting;       /* pass 1 */
    uint64_t need;      /* pass 1: bytes of m->owned */
    uint8_t *cur;       /* pass 2: next free byte of m->owned */
    float *row;         /* pass 2: one row of floats (max cols) */
    int8_t *tern;       /* pass 2: one row of ternary values */
} loader;

/* Memory for a converted tensor (64-byte aligned pieces of m->owned). */
static void *carve(loader *ld, uint64_t bytes) {
    bytes = (bytes + 63) & ~(uint64_t)63;
    if (ld->counting) {
        ld->need += bytes;
        return NULL;
    }
    void *p = ld->cur;
    ld->cur += bytes;
    return p;
}

/* ---- element access ------------------------------------------------------------ */

static float bf16_to_f32(uint16_t h) {
    uint32_t bits = (uint32_t)h << 16;
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

/* Element i of a float (or I8) tensor; memcpy because the file may leave it unaligned. */
static float elem(const bn_st_tensor *t, uint64_t i) {
    const uint8_t *p = (const uint8_t *)t->data;
    switch (t->dtype) {
    case BN_ST_F32: {
        float f;
        memcpy(&f, p + i * 4, 4);
        return f;
    }
    case BN_ST_F16:
    case BN_ST_BF16: {
        uint16_t h;
        memcpy(&h, p + i * 2, 2);
        return t->dtype == BN_ST_F16 ? bn_fp16_to_fp32(h) : bf16_to_f32(h);
    }
    case BN_ST_I8: return (float)(int8_t)p[i];
    default: return 0.0f;
    }
}

static int is_float(bn_st_dtype d) { return d == BN_ST_F32 || d == BN_ST_F16 || d == BN_ST_BF16; }

/* Source row of our row r for q/k projections: HF keeps each head's rotated
 * dimensions as two halves [x_0..x_{d/2}) [x_{d/2}..x_d), we as pairs
 * (x_2j, x_2j+1) (llama.cpp's permute()). Other rows map to themselves. */
static int src_row(int r, int permute, const bn_hparams *hp) {
    if (!permute) return r;
    int h = r / hp->head_dim, i = r % hp->head_dim, rd = hp->rope_dim;
    if (i < rd) i = (i % 2) * (rd / 2) + i / 2;
    return h * hp->head_dim + i;
}

/* ---- tensors ------------------------------------------------------------------ */

/* A tensor of any shard (an index names each in exactly one; see open_shards). */
static const bn_st_tensor *lookup(const loader *ld, const char *name) {
    for (int i = 0; i < ld->n_files; i++) {
        const bn_st_tensor *t = bn_safetensors_find(ld->files[i], name);
        if (t) return t;
    }
    return NULL;
}

static const bn_st_tensor *find(loader *ld, const char *name, int required, uint64_t d0, uint64_t d1, int n_dims,
                                bitnet_status *st) {
    const bn_st_tensor *t = lookup(ld, name);
    if (!t) {
        if (required) *st = bn_error(BITNET_ERR_FORMAT, "%s: missing tensor '%s'", ld->path, name);
        return NULL;
    }
    uint64_t want[2] = {d0, d1};
    int ok = (int)t->n_dims == n_dims;
    for (int i = 0; ok && i < n_dims; i++) ok = t->shape[i] == want[i];
    if (!ok) {
        char got[96] = "";
        for (uint32_t i = 0; i < t->n_dims && strlen(got) < 60; i++)
            snprintf(got + strlen(got), sizeof got - strlen(got), "%s%llu", i ? ", " : "", (ull)t->shape[i]);
        if (n_dims == 1)
            *st = bn_error(BITNET_ERR_FORMAT, "%s: tensor '%s' has shape [%s], expected [%llu] from the config",
                           ld->path, name, got, (ull)d0);
        else
            *st = bn_error(BITNET_ERR_FORMAT, "%s: tensor '%s' has shape [%s], expected [%llu, %llu] from the config",
                           ld->path, name, got, (ull)d0, (ull)d1);
        return NULL;
    }
    return t;
}

static bitnet_status unsupported_dtype(loader *ld, const char *name, const bn_st_tensor *t, const char *what) {
    return bn_error(BITNET_ERR_UNSUPPORTED, "%s: tensor '%s' has dtype %s; %s", ld->path, name,
                    bn_st_dtype_name(t->dtype), what);
}

/* A norm weight as floats: in place when it is aligned F32, else converted. */
static bitnet_status load_vector(loader *ld, const char *name, int required, int n, const float **out) {
    bitnet_status st = BITNET_OK;
    *out = NULL;
    const bn_st_tensor *t = find(ld, name, required, (uint64_t)n, 0, 1, &st);
    if (!t) return st;
    if (!is_float(t->dtype)) return unsupported_dtype(ld, name, t, "norm weights must be F32, F16 or BF16");
    /* as the GGUF loader: a NaN or infinity in a norm is a corrupt file, not a model */
    for (int i = 0; i < n; i++) {
        const float x = elem(t, (uint64_t)i);
        if (!isfinite(x))
            return bn_error(BITNET_ERR_FORMAT, "%s: tensor '%s' has a non-finite value (%g) at [%d]", ld->path, name,
                            (double)x, i);
    }
    const float plus = ld->m->arch->hf_norm_plus1 ? 1.0f : 0.0f; /* Gemma: stored as w - 1 */
    if (t->dtype == BN_ST_F32 && (uintptr_t)t->data % 4 == 0 && plus == 0.0f) {
        *out = t->data;
        return BITNET_OK;
    }
    float *v = carve(ld, (uint64_t)n * sizeof(float));
    for (int i = 0; v && i < n; i++) v[i] = elem(t, (uint64_t)i) + plus;
    *out = v;
    return BITNET_OK;
}

/* NAME.scale beside NAME.weight: a ternary tensor stored as exact -1/0/+1 values. */
static bitnet_status find_scale(loader *ld, const char *name, const bn_st_tensor **sc) {
    char sname[256];
    size_t len = strlen(name);
    *sc = NULL;
    if (len < 8 || len > 200 || strcmp(name + len - 7, ".weight") != 0) return BITNET_OK;
    snprintf(sname, sizeof sname, "%.*s.scale", (int)(len - 7), name);
    const bn_st_tensor *t = lookup(ld, sname);
    if (!t) return BITNET_OK;
    if (!is_float(t->dtype) || t->n_elems != 1 || t->n_dims > 1)
        return bn_error(BITNET_ERR_FORMAT, "%s: scale tensor '%s' must hold one F32, F16 or BF16 value", ld->path,
                        sname);
    float s = elem(t, 0);
    if (!isfinite(s) || s < 0.0f)
        return bn_error(BITNET_ERR_FORMAT, "%s: scale tensor '%s' is %g, not a finite value >= 0", ld->path, sname,
                        (double)s);
    *sc = t;
    return BITNET_OK;
}

/* A ternary linear layer into native I2: exact values with a scale tensor, or
 * latent float weights ternarised with absmean (s = max(mean|W|, 1e-5)). */
static bitnet_status load_ternary(loader *ld, const char *name, const bn_st_tensor *t, const bn_st_tensor *sc,
                                  int permute, bn_matrix *w) {
    const int rows = w->rows, cols = w->cols, cp = bn_i2_cols_padded(cols);
    if (!sc && !is_float(t->dtype))
        return unsupported_dtype(ld, name, t, "ternary weights are I8 or float values with a scale tensor, or float latent weights");
    if (sc && !is_float(t->dtype) && t->dtype != BN_ST_I8)
        return unsupported_dtype(ld, name, t, "ternary values with a scale tensor must be I8, F32, F16 or BF16");
    if (bn_model_has(ld->m, BN_AF_AK42) && !sc)
        return bn_error(BITNET_ERR_FORMAT, "%s: '%s' has no scale tensor; BitNetAK42 weights are stored ternary",
                        ld->path, name);
    uint8_t *out = carve(ld, (uint64_t)rows * (uint64_t)(cp / 4));
    w->type = BN_W_I2;
    w->cols_padded = cp;
    if (ld->counting) return BITNET_OK;
    float iscale = 0.0f;
    if (sc) {
        w->scale = elem(sc, 0);
    } else {
        double sum = 0.0; /* in double: torch sums float32 pairwise, the difference is below one ulp of the mean */
        for (uint64_t i = 0; i < t->n_elems; i++) sum += fabs((double)elem(t, i));
        float s = (float)(sum / (double)t->n_elems);
        if (!isfinite(s))
            return bn_error(BITNET_ERR_FORMAT, "%s: tensor '%s' has non-finite weights", ld->path, name);
        iscale = 1.0f / BN_MAX(s, 1e-5f);
        w->scale = 1.0f / iscale; /* W_q = T / iscale, as llama.cpp's and Hugging Face's weight_quant */
    }
    for (int r = 0; r < rows; r++) {
        const uint64_t base = (uint64_t)src_row(r, permute, &ld->m->hp) * (uint64_t)cols;
        for (int c = 0; c < cols; c++) ld->row[c] = elem(t, base + (uint64_t)c);
        int bad = bn_ternarize_row(ld->row, cols, iscale, ld->tern);
        if (bad >= 0)
            return bn_error(BITNET_ERR_FORMAT, "%s: tensor '%s' has a scale tensor but value %g at [%d, %d] is not -1, 0 or 1",
                            ld->path, name, (double)ld->row[bad], src_row(r, permute, &ld->m->hp), bad);
        bn_i2_pack(ld->tern, 1, cols, out + (size_t)r * (size_t)(cp / 4));
    }
    w->data = out;
    return BITNET_OK;
}

/* A [rows, cols] weight. `linear`: a projection, ternary in BitNet models;
 * `permute`: a q/k projection (RoPE layout, see src_row). */
static bitnet_status load_matrix(loader *ld, const char *name, int required, int rows, int cols, int linear,
                                 int permute, bn_matrix *w) {
    bitnet_status st = BITNET_OK;
    memset(w, 0, sizeof *w);
    const bn_st_tensor *t = find(ld, name, required, (uint64_t)rows, (uint64_t)cols, 2, &st);
    if (!t) return st;
    const bn_st_tensor *sc;
    if ((st = find_scale(ld, name, &sc))) return st;
    w->rows = rows;
    w->cols = cols;
    w->cols_padded = cols;
    w->scale = 1.0f;
    /* ternary: latent weights of a BitNet family, or exact values with a NAME.scale in any family
     * (a ternary llama/qwen3/gemma3 model written back by our writer) */
    if (sc || (bn_model_has(ld->m, BN_AF_TERNARY) && linear)) return load_ternary(ld, name, t, sc, permute, w);
    if (sc) return bn_error(BITNET_ERR_UNSUPPORTED, "%s: a scale tensor is only supported for ternary '%s'", ld->path, name);
    if (!is_float(t->dtype)) return unsupported_dtype(ld, name, t, "float weights must be F32, F16 or BF16");
    /* F32 and F16 keep their type; BF16 widens to F32 (exact) */
    const int f16 = t->dtype == BN_ST_F16;
    const uint64_t esize = f16 ? 2 : 4;
    w->type = f16 ? BN_W_F16 : BN_W_F32;
    if (!permute && t->dtype != BN_ST_BF16 && (uintptr_t)t->data % esize == 0) {
        w->data = t->data; /* zero-copy */
        return BITNET_OK;
    }
    uint8_t *out = carve(ld, (uint64_t)rows * (uint64_t)cols * esize);
    for (int r = 0; out && r < rows; r++) {
        const uint64_t src = (uint64_t)src_row(r, permute, &ld->m->hp) * (uint64_t)cols;
        uint8_t *dst = out + (size_t)r * (size_t)cols * esize;
        if (t->dtype == BN_ST_BF16)
            for (int c = 0; c < cols; c++) ((float *)dst)[c] = elem(t, src + (uint64_t)c);
        else
            memcpy(dst, (const uint8_t *)t->data + src * esize, (size_t)cols * esize);
    }
    w->data = out;
    return BITNET_OK;
}

/* Every tensor of the model, in either pass. */
static bitnet_status load_tensors(loader *ld, int tied) {
    bitnet_model *m = ld->m;
    const bn_hparams *hp = &m->hp;
    bitnet_status st;
    if ((st = load_matrix(ld, "model.embed_tokens.weight", 1, hp->vocab, hp->dim, 0, 0, &m->tok_embd)) ||
        (st = load_vector(ld, "model.norm.weight", 1, hp->dim, &m->output_norm)))
        return st;
    if (m->tok_embd.type == BN_W_I2)
        return bn_error(BITNET_ERR_UNSUPPORTED, "%s: a ternary embed_tokens is not supported", ld->path);
    if (tied) m->output = m->tok_embd;
    else if ((st = load_matrix(ld, "lm_head.weight", 1, hp->vocab, hp->dim, 0, 0, &m->output))) return st;
    const int neox = bn_model_has(m, BN_AF_ROPE_NEOX);
    for (int l = 0; l < hp->n_layers; l++) {
        bn_layer *L = &m->layers[l];
        char n[160];
        int expert_slot = 0; /* gate, up, down: their third of m->experts for this layer */
        for (int i = 0; i < BN_N_LAYER_ROLES; i++) {
            const bn_role *r = &bn_layer_roles[i];
            if (!bn_role_present(m->arch, r)) continue;
            snprintf(n, sizeof n, "model.layers.%d.%s.weight", l, bn_role_hf_name(m->arch, r));
            if (r->is_matrix == BN_ROLE_EXPERTS) { /* one 2-D tensor per expert */
                bn_matrix *e = m->experts + ((size_t)l * 3 + (size_t)expert_slot++) * (size_t)hp->n_expert;
                *bn_layer_experts(L, r) = e;
                for (int x = 0; x < hp->n_expert && !st; x++) {
                    snprintf(n, sizeof n, "model.layers.%d.mlp.experts.%d.%s.weight", l, x, r->hf);
                    st = load_matrix(ld, n, 1, bn_hp_dim(hp, r->rows), bn_hp_dim(hp, r->cols), 1, 0, &e[x]);
                }
            } else if (r->is_matrix)
                /* (the router, mlp.gate, stays float: not a linear of the ternary families) */
                st = load_matrix(ld, n, 1, bn_hp_dim(hp, r->rows), bn_hp_dim(hp, r->cols), r->rows != BN_DIM_EXPERTS,
                                 r->rope_rows && !neox, bn_layer_matrix(L, r));
            else
                st = load_vector(ld, n, 1, bn_hp_dim(hp, r->rows), bn_layer_vector(L, r));
            if (st) return st;
        }
        snprintf(n, sizeof n, "model.layers.%d.self_attn.q_proj.bias", l);
        const int q_bias = lookup(ld, n) != NULL;
        snprintf(n, sizeof n, "model.layers.%d.mlp.up_proj.bias", l);
        if (q_bias || lookup(ld, n))
            return bn_error(BITNET_ERR_UNSUPPORTED, "%s: layer %d has bias tensors, which this runtime does not compute",
                            ld->path, l);
    }
    return BITNET_OK;
}

/* ---- config -------------------------------------------------------------------- */

/* An integer config value in [1, max]; absent or null gives def (0 = required). */
static bitnet_status cfg_int(const char *cfg_name, const bn_json *cfg, const char *key, int def, int max, int *out) {
    const bn_json *v = bn_json_get(cfg, key);
    if (!v || v->type == BN_JSON_NULL) {
        if (!def) return bn_error(BITNET_ERR_FORMAT, "%s: missing \"%s\"", cfg_name, key);
        *out = def;
        return BITNET_OK;
    }
    if (v->type != BN_JSON_NUMBER || !(v->number >= 1 && v->number <= max) || v->number != floor(v->number))
        return bn_error(BITNET_ERR_FORMAT, "%s: \"%s\" must be an integer in [1, %d]", cfg_name, key, max);
    *out = (int)v->number;
    return BITNET_OK;
}

static bitnet_status cfg_float(const char *cfg_name, const bn_json *cfg, const char *key, float def, float *out) {
    const bn_json *v = bn_json_get(cfg, key);
    if (!v || v->type == BN_JSON_NULL) {
        *out = def;
        return BITNET_OK;
    }
    if (v->type != BN_JSON_NUMBER || !isfinite((float)v->number))
        return bn_error(BITNET_ERR_FORMAT, "%s: \"%s\" must be a finite number", cfg_name, key);
    *out = (float)v->number;
    return BITNET_OK;
}

/* Qwen3MoeConfig: experts, experts per token, their FFN size; every layer
 * sparse, with the chosen experts' weights renormalised (what forward.c does). */
static bitnet_status read_moe_config(const char *cfg_name, const bn_json *cfg, bn_hparams *hp) {
    int ne = 0, used = 0, ffe = 0, step = 1;
    bitnet_status st;
    if ((st = cfg_int(cfg_name, cfg, "num_experts", 0, 1024, &ne)) || /* as the GGUF loader */
        (st = cfg_int(cfg_name, cfg, "num_experts_per_tok", 0, 4096, &used)) ||
        (st = cfg_int(cfg_name, cfg, "moe_intermediate_size", 0, 262144, &ffe)) ||
        (st = cfg_int(cfg_name, cfg, "decoder_sparse_step", 1, 1024, &step)))
        return st;
    if (used > ne) return bn_error(BITNET_ERR_FORMAT, "%s: num_experts_per_tok %d exceeds num_experts %d", cfg_name, used, ne);
    const bn_json *only = bn_json_get(cfg, "mlp_only_layers"), *norm = bn_json_get(cfg, "norm_topk_prob");
    if (step != 1 || (only && !(only->type == BN_JSON_ARRAY && only->n == 0) && only->type != BN_JSON_NULL))
        return bn_error(BITNET_ERR_UNSUPPORTED, "%s: dense layers among the experts' (decoder_sparse_step %d, "
                        "mlp_only_layers) are not supported", cfg_name, step);
    if (!norm || norm->type != BN_JSON_BOOL || !norm->boolean)
        return bn_error(BITNET_ERR_UNSUPPORTED, "%s: \"norm_topk_prob\" must be true (the chosen experts' weights "
                        "renormalised, as llama.cpp's qwen3moe computes them)", cfg_name);
    hp->n_expert = ne;
    hp->n_expert_used = used;
    hp->ff_exp = ffe;
    return BITNET_OK;
}

/* Architecture and hyper-parameters; *tied: the classifier is the embedding. */
static bitnet_status read_config(const char *cfg_name, const bn_json *cfg, bitnet_model *m, int *tied) {
    if (!cfg || cfg->type != BN_JSON_OBJECT) return bn_error(BITNET_ERR_FORMAT, "%s: the config is not a JSON object", cfg_name);
    const bn_json *archs = bn_json_get(cfg, "architectures");
    if (!archs || archs->type != BN_JSON_ARRAY || archs->n != 1 || archs->items[0].type != BN_JSON_STRING)
        return bn_error(BITNET_ERR_FORMAT, "%s: \"architectures\" must be an array of one string", cfg_name);
    const char *a = archs->items[0].str;
    const bn_json *act = bn_json_get(cfg, "hidden_act"), *rs = bn_json_get(cfg, "rope_scaling");
    if (act && act->type != BN_JSON_STRING) return bn_error(BITNET_ERR_FORMAT, "%s: \"hidden_act\" must be a string", cfg_name);
    /* arch.c's table: BitNetForCausalLM is bitnet-b1.58 with relu2 (the
     * default, 2B-4T) and llama.cpp's "bitnet" with silu (1bitLLM) */
    m->arch = bn_arch_by_hf(a, act ? act->str : NULL);
    if (!m->arch) {
        char nm[64], list[256] = "";
        snprintf(nm, sizeof nm, "%s", a);
        for (const bn_arch *e = bn_archs; e->name; e++)
            if (e->hf_name && !strstr(list, e->hf_name))
                snprintf(list + strlen(list), sizeof list - strlen(list), "%s%s", list[0] ? ", " : "", e->hf_name);
        if (bn_arch_by_hf(a, NULL))
            return bn_error(BITNET_ERR_UNSUPPORTED, "%s: \"hidden_act\" \"%s\" is not supported for %s", cfg_name,
                            act->str, nm);
        return bn_error(BITNET_ERR_UNSUPPORTED, "%s: architecture '%s' is not supported (%s)", cfg_name, nm, list);
    }
    /* the config defaults of each family (LlamaConfig, BitNetConfig, ...) */
    const int bitnet = bn_model_has(m, BN_AF_SUB_NORMS);
    const float eps_def = strcmp(m->arch->name, "llama") == 0 ? 1e-6f : 1e-5f;
    const float theta_def = bitnet ? 500000.0f : 10000.0f;
    if (rs && rs->type != BN_JSON_NULL)
        return bn_error(BITNET_ERR_UNSUPPORTED, "%s: \"rope_scaling\" is not supported", cfg_name);
    if (bn_json_get(cfg, "quantization_config"))
        return bn_error(BITNET_ERR_UNSUPPORTED,
                        "%s: pre-quantized checkpoints (\"quantization_config\") are not supported; use the float (e.g. -bf16) weights",
                        cfg_name);
    bn_hparams *hp = &m->hp;
    int dim = 0, ff = 0, nl = 0, nh = 0, nkv = 0, vocab = 0, ctx = 0, head_dim = 0;
    bitnet_status st;
    if ((st = cfg_int(cfg_name, cfg, "hidden_size", 0, 65536, &dim)) ||
        (st = cfg_int(cfg_name, cfg, "intermediate_size", 0, 262144, &ff)) ||
        (st = cfg_int(cfg_name, cfg, "num_hidden_layers", 0, 1024, &nl)) ||
        (st = cfg_int(cfg_name, cfg, "num_attention_heads", 0, 65536, &nh)) ||
        (st = cfg_int(cfg_name, cfg, "num_key_value_heads", nh, 65536, &nkv)) ||
        (st = cfg_int(cfg_name, cfg, "vocab_size", 0, 1 << 24, &vocab)) ||
        (st = cfg_int(cfg_name, cfg, "max_position_embeddings", 2048, 1 << 24, &ctx)) ||
        (st = cfg_float(cfg_name, cfg, "rms_norm_eps", eps_def, &hp->norm_eps)) ||
        (st = cfg_float(cfg_name, cfg, "rope_theta", theta_def, &hp->rope_theta)))
        return st;
    if (nh > dim || dim % nh != 0 || nkv > nh || nh % nkv != 0 || (dim / nh) % 2 != 0)
        return bn_error(BITNET_ERR_FORMAT, "%s: inconsistent heads (hidden_size %d, heads %d, kv heads %d)", cfg_name,
                        dim, nh, nkv);
    if ((st = cfg_int(cfg_name, cfg, "head_dim", dim / nh, 65536, &head_dim))) return st;
    if (head_dim % 2 || (!bn_model_has(m, BN_AF_QK_NORM) && head_dim != dim / nh))
        return bn_error(BITNET_ERR_UNSUPPORTED, "%s: head_dim %d differs from hidden_size / heads = %d", cfg_name,
                        head_dim, dim / nh);
    const bn_json *prf = bn_json_get(cfg, "partial_rotary_factor");
    double rd = head_dim; /* rotated dimensions per head */
    if (prf && prf->type != BN_JSON_NULL) {
        rd = prf->type == BN_JSON_NUMBER ? floor(prf->number * head_dim + 0.5) : 0.0;
        if (!(rd >= 2.0 && rd <= head_dim) || fabs(prf->number * head_dim - rd) > 1e-6 || (int)rd % 2)
            return bn_error(BITNET_ERR_FORMAT, "%s: \"partial_rotary_factor\" does not give an even rotary size", cfg_name);
    }
    if (!(hp->norm_eps >= 0.0f && hp->norm_eps < 1.0f) || !(hp->rope_theta > 0.0f))
        return bn_error(BITNET_ERR_FORMAT, "%s: bad rms_norm_eps or rope_theta", cfg_name);
    hp->dim = dim;
    hp->ff = ff;
    hp->n_layers = nl;
    hp->n_heads = nh;
    hp->n_kv_heads = nkv;
    hp->head_dim = head_dim;
    hp->rope_dim = (int)rd;
    hp->vocab = vocab;
    hp->ctx_train = ctx;
    hp->pooling = -1; /* config.json names none (sentence-transformers keep it elsewhere) */
    if (bn_model_has(m, BN_AF_SWA)) { /* Gemma3Config: sliding_window, its pattern, the local RoPE base */
        int window = 0, pattern = 0;
        if ((st = cfg_int(cfg_name, cfg, "sliding_window", 0, 1 << 24, &window)) ||
            (st = cfg_int(cfg_name, cfg, "sliding_window_pattern", 6, 1 << 16, &pattern)) ||
            (st = cfg_float(cfg_name, cfg, "rope_local_base_freq", 10000.0f, &hp->rope_theta_swa)))
            return st;
        hp->swa_window = window;
        hp->swa_pattern = pattern;
    }
    if (bn_model_has(m, BN_AF_MOE) && (st = read_moe_config(cfg_name, cfg, hp))) return st;
    const bn_json *tie = bn_json_get(cfg, "tie_word_embeddings");
    if (tie && tie->type != BN_JSON_BOOL && tie->type != BN_JSON_NULL)
        return bn_error(BITNET_ERR_FORMAT, "%s: \"tie_word_embeddings\" must be a boolean", cfg_name);
    *tied = tie && tie->type == BN_JSON_BOOL ? tie->boolean : 0; /* the default of both configs */
    return BITNET_OK;
}

/* ---- files --------------------------------------------------------------------- */

/* The vocabulary: --tokenizer FILE (GGUF, tokenizer.json or llama2.c
 * tokenizer.bin), else the tokenizer.json a Hugging Face checkpoint ships
 * beside its weights. */
static bitnet_status load_tokenizer(const char *path, const char *dir, const bitnet_model_params *p, bitnet_model *m) {
    const char *tp = p ? p->tokenizer_path : NULL;
    char hf[1100];
    snprintf(hf, sizeof hf, "%s/tokenizer.json", dir);
    if (!tp && access(hf, F_OK) == 0) tp = hf;
    if (!tp)
        return bn_error(BITNET_ERR_ARG,
                        "%s: no vocabulary: there is no tokenizer.json beside it; pass --tokenizer with a "
                        "tokenizer.json, a GGUF file that has the vocabulary or a llama2.c tokenizer.bin",
                        path);
    bitnet_status st = bn_tokenizer_load_file_n(tp, m->hp.vocab, &m->tok);
    if (st != BITNET_OK) return st;
    if (bn_tokenizer_n_vocab(m->tok) != m->hp.vocab)
        return bn_error(BITNET_ERR_FORMAT, "%s: the tokenizer %s has %d tokens but the model has %d", path, tp,
                        bn_tokenizer_n_vocab(m->tok), m->hp.vocab);
    return BITNET_OK;
}

int bn_safetensors_detect(const char *path) {
    struct stat sb;
    if (!path || stat(path, &sb) != 0) return 0;
    if (S_ISDIR(sb.st_mode)) return 1;
    size_t len = strlen(path);
    if (len >= 12 && strcmp(path + len - 12, ".safetensors") == 0) return 1;
    uint8_t b[9];
    FILE *fp = fopen(path, "rb");
    if (!fp) return 0;
    size_t got = fread(b, 1, sizeof b, fp);
    fclose(fp);
    if (got < 9 || b[8] != '{') return 0;
    uint64_t hl = 0;
    for (int i = 7; i >= 0; i--) hl = hl << 8 | b[i];
    return hl >= 2 && hl <= BN_ST_MAX_HEADER && hl <= (uint64_t)sb.st_size - 8;
}

/* A sharded checkpoint: model.safetensors.index.json's weight_map names, for
 * each tensor, the shard (a file beside the index) that holds it. Every shard
 * is mapped (the first as m->map, the rest in m->shard_map) and must hold what
 * the index puts in it; a shard name is a plain file name, never a path. */
static bitnet_status open_shards(loader *ld, const char *dir, const char *index, int use_mmap) {
    bitnet_model *m = ld->m;
    size_t len = 0;
    char *text = NULL, err[200], path[1400];
    bitnet_status st = bn_read_file(index, 64u << 20, &text, &len, NULL);
    if (st) return st;
    bn_json *idx = bn_json_parse(text, len, err, sizeof err);
    free(text);
    if (!idx) return bn_error(BITNET_ERR_FORMAT, "%s: %s", index, err);
    const bn_json *wm = bn_json_get(idx, "weight_map");
    const char **names = calloc(BN_ST_MAX_SHARDS, sizeof *names);
    int n = 0, *which = wm && wm->type == BN_JSON_OBJECT ? calloc(wm->n + 1, sizeof *which) : NULL;
    if (!wm || wm->type != BN_JSON_OBJECT || wm->n == 0)
        st = bn_error(BITNET_ERR_FORMAT, "%s: \"weight_map\" is missing, empty or not an object", index);
    else if (!names || !which)
        st = bn_error(BITNET_ERR_NOMEM, "%s: out of memory", index);
    for (size_t i = 0; !st && i < wm->n; i++) {
        const bn_json *v = &wm->items[i];
        if (v->type != BN_JSON_STRING || v->len == 0 || v->len > 255 || strlen(v->str) != v->len || strchr(v->str, '/') ||
            !strcmp(v->str, ".") || !strcmp(v->str, "..")) {
            st = bn_error(BITNET_ERR_FORMAT, "%s: weight_map[\"%.80s\"] is not the name of a file beside the index", index,
                          wm->keys[i]);
            break;
        }
        int k = i > 0 && !strcmp(names[which[i - 1]], v->str) ? which[i - 1] : 0; /* shards come in runs */
        while (k < n && strcmp(names[k], v->str)) k++;
        if (k == n && n == BN_ST_MAX_SHARDS)
            st = bn_error(BITNET_ERR_FORMAT, "%s: more than %d shards", index, BN_ST_MAX_SHARDS);
        else if (k == n)
            names[n++] = v->str;
        which[i] = k;
    }
    if (!st && (!(ld->files = calloc((size_t)n, sizeof *ld->files)) ||
                !(m->shard_map = calloc((size_t)n, sizeof *m->shard_map)) ||
                !(m->shard_size = calloc((size_t)n, sizeof *m->shard_size))))
        st = bn_error(BITNET_ERR_NOMEM, "%s: out of memory", index);
    for (int k = 0; !st && k < n; k++) {
        snprintf(path, sizeof path, "%s/%s", dir, names[k]);
        void *base = NULL;
        uint64_t size = 0;
        if ((st = bn_map_file(path, use_mmap, &base, &size))) break;
        if (k == 0) {
            m->map = base;
            m->map_size = size;
        } else {
            m->shard_map[k - 1] = base;
            m->shard_size[k - 1] = size;
            m->n_shards = k;
        }
        static const uint8_t empty[1];
        if ((st = bn_safetensors_open_memory(base ? base : empty, size, path, &ld->files[k]))) break;
        ld->n_files = k + 1;
    }
    for (size_t i = 0; !st && i < wm->n; i++)
        if (!bn_safetensors_find(ld->files[which[i]], wm->keys[i]))
            st = bn_error(BITNET_ERR_FORMAT, "%s: weight_map puts '%.80s' in %s, which does not hold it", index, wm->keys[i],
                          names[which[i]]);
    if (!st) ld->f = ld->files[0];
    free(names);
    free(which);
    bn_json_free(idx);
    return st;
}

static void close_files(loader *ld) {
    for (int i = 0; ld->files && i < ld->n_files; i++) bn_safetensors_close(ld->files[i]);
    if (ld->files != &ld->f) free(ld->files);
    ld->files = NULL;
}

bitnet_status bn_model_from_safetensors(const char *path, const bitnet_model_params *p, bitnet_model *m) {
    char file[1100], dir[1024], cfg_path[1100], index[1100];
    int sharded = 0;
    struct stat sb;
    if (stat(path, &sb) != 0) return bn_error(BITNET_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    if (S_ISDIR(sb.st_mode)) {
        snprintf(dir, sizeof dir, "%s", path);
        snprintf(file, sizeof file, "%s/model.safetensors", path);
        if (access(file, F_OK) != 0) {
            snprintf(index, sizeof index, "%s/model.safetensors.index.json", path);
            if (access(index, F_OK) != 0)
                return bn_error(BITNET_ERR_IO, "%s: directory has no model.safetensors or model.safetensors.index.json", path);
            sharded = 1;
        }
    } else {
        const char *slash = strrchr(path, '/');
        snprintf(file, sizeof file, "%s", path);
        snprintf(dir, sizeof dir, "%.*s", slash ? (int)(slash - path) : 1, slash ? path : ".");
    }
    loader ld = {.m = m, .path = sharded ? index : file, .n_files = sharded ? 0 : 1};
    bitnet_status st;
    if (sharded) {
        st = open_shards(&ld, dir, index, p ? p->use_mmap : 1);
        if (!st) snprintf(file, sizeof file, "%s", index);
    } else {
        static const uint8_t empty[1];
        st = bn_model_map_file(file, p ? p->use_mmap : 1, m);
        if (!st) st = bn_safetensors_open_memory(m->map ? m->map : empty, m->map_size, file, &ld.f);
        ld.files = &ld.f;
    }
    snprintf(m->path, sizeof m->path, "%.511s", file);
    if (st) {
        close_files(&ld);
        return st;
    }

    /* the config: embedded by our writer, else config.json beside the weights */
    const char *emb = bn_safetensors_meta(ld.f, "bitnet.config"), *cfg_name = file;
    char *text = NULL, err[200];
    size_t len = 0;
    snprintf(cfg_path, sizeof cfg_path, "%s/config.json", dir);
    if (!emb) {
        cfg_name = cfg_path;
        if (bn_read_file(cfg_path, 1 << 20, &text, &len, NULL))
            st = bn_error(BITNET_ERR_IO, "%s: cannot read %s (at most 1 MB) and the file embeds no config", file, cfg_path);
    }
    bn_json *cfg = st ? NULL : bn_json_parse(emb ? emb : text, emb ? strlen(emb) : len, err, sizeof err);
    if (!st && !cfg) st = bn_error(BITNET_ERR_FORMAT, "%s%s: %s", cfg_name, emb ? " (bitnet.config)" : "", err);
    int tied = 0;
    if (!st) st = read_config(emb ? file : cfg_path, cfg, m, &tied);
    bn_json_free(cfg);
    free(text);
    const char *name = bn_safetensors_meta(ld.f, "bitnet.name"), *base = strrchr(dir, '/');
    snprintf(m->name, sizeof m->name, "%.127s", name ? name : base ? base + 1 : dir);

    if (!st && !(m->layers = calloc((size_t)m->hp.n_layers, sizeof(bn_layer))))
        st = bn_error(BITNET_ERR_NOMEM, "%s: out of memory", file);
    if (!st && m->hp.n_expert &&
        !(m->experts = calloc((size_t)m->hp.n_layers * 3 * (size_t)m->hp.n_expert, sizeof(bn_matrix))))
        st = bn_error(BITNET_ERR_NOMEM, "%s: out of memory", file);
    ld.counting = 1;
    if (!st) st = load_tensors(&ld, tied); /* pass 1: validate, size m->owned */
    if (!st && ld.need) {
        m->owned = bn_aligned_alloc((size_t)ld.need);
        if (!m->owned) st = bn_error(BITNET_ERR_NOMEM, "%s: cannot allocate %llu bytes for converted tensors", file, (ull)ld.need);
        m->owned_size = ld.need;
    }
    if (!st) {
        const int maxc = BN_MAX(BN_MAX(m->hp.dim, m->hp.ff), m->hp.ff_exp);
        ld.row = malloc((size_t)maxc * sizeof(float));
        ld.tern = malloc((size_t)maxc);
        ld.cur = m->owned;
        ld.counting = 0;
        st = ld.row && ld.tern ? load_tensors(&ld, tied) : bn_error(BITNET_ERR_NOMEM, "%s: out of memory", file);
    }
    free(ld.row);
    free(ld.tern);
    close_files(&ld); /* the weights point into m->map and m->shard_map, which m owns */
    if (!st) st = load_tokenizer(file, dir, p, m);
    return st;
}

/* ---- writer -------------------------------------------------------------------- */

typedef struct {
    const bitnet_model *m;
    const bn_matrix *w; /* matrices and scales */
    const float *vec;   /* norm weights       */
    int n, permute;
    float vec_offset;   /* added to norm weights (-1 for Gemma's w - 1 form) */
} wsrc;

/* Produces one tensor's bytes (bn_st_out.fill): floats as F32/F16, ternary I2
 * as I8 values, and q/k rows moved back to the Hugging Face RoPE layout. */
static void fill_tensor(const bn_st_out *o, void *dst) {
    const wsrc *s = o->user;
    if (s->vec) {
        for (int i = 0; i < s->n; i++) ((float *)dst)[i] = s->vec[i] + s->vec_offset;
        return;
    }
    const bn_matrix *w = s->w;
    if (o->dtype == BN_ST_F32 && o->n_dims == 1) { /* NAME.scale */
        memcpy(dst, &w->scale, sizeof(float));
        return;
    }
    for (int r = 0; r < w->rows; r++) {
        const size_t out_row = (size_t)src_row(r, s->permute, &s->m->hp) * (size_t)w->cols;
        if (o->dtype == BN_ST_I8) {
            int8_t t[BN_I2_BLOCK];
            const uint8_t *row = (const uint8_t *)w->data + (size_t)r * (size_t)(w->cols_padded / 4);
            for (int b = 0; b < w->cols; b += BN_I2_BLOCK) {
                bn_i2_unpack_row(row + b / 4, BN_I2_BLOCK, t);
                memcpy((int8_t *)dst + out_row + b, t, (size_t)BN_MIN(BN_I2_BLOCK, w->cols - b));
            }
        } else if (o->dtype == BN_ST_F16) { /* an F16 matrix stays F16: bit-exact */
            memcpy((uint16_t *)dst + out_row, (const uint16_t *)w->data + (size_t)r * (size_t)w->cols,
                   (size_t)w->cols * 2);
        } else {
            bn_matrix_get_row(w, r, (float *)dst + out_row);
        }
    }
}

typedef struct {
    const bitnet_model *m;
    bn_st_out *t;
    wsrc *src;
    char (*names)[128];
    int n, cap;
} wlist;

static void add_out(wlist *W, const char *name, bn_st_dtype dt, uint32_t n_dims, uint64_t d0, uint64_t d1, wsrc s) {
    BN_ASSERT(W->n < W->cap);
    snprintf(W->names[W->n], sizeof W->names[0], "%s", name);
    W->src[W->n] = s;
    W->t[W->n] = (bn_st_out){W->names[W->n], dt, n_dims, {d0, d1}, NULL, fill_tensor, &W->src[W->n]};
    W->n++;
}

static void add_vec(wlist *W, const char *name, const float *v, int len) {
    if (v) add_out(W, name, BN_ST_F32, 1, (uint64_t)len, 0,
                   (wsrc){W->m, NULL, v, len, 0, W->m->arch->hf_norm_plus1 ? -1.0f : 0.0f});
}

/* BASE.weight, and BASE.scale for a ternary matrix. */
static void add_mat(wlist *W, const char *base, const bn_matrix *w, int permute) {
    char name[128];
    bn_st_dtype dt = w->type == BN_W_I2 ? BN_ST_I8 : w->type == BN_W_F16 ? BN_ST_F16 : BN_ST_F32;
    snprintf(name, sizeof name, "%s.weight", base);
    add_out(W, name, dt, 2, (uint64_t)w->rows, (uint64_t)w->cols, (wsrc){W->m, w, NULL, 0, permute, 0.0f});
    if (w->type != BN_W_I2) return;
    snprintf(name, sizeof name, "%s.scale", base);
    add_out(W, name, BN_ST_F32, 1, 1, 0, (wsrc){W->m, w, NULL, 0, 0, 0.0f});
}

bitnet_status bn_safetensors_write_model(const bitnet_model *m, const char *path) {
    if (!m || !path) return bn_error(BITNET_ERR_ARG, "bn_safetensors_write_model: NULL argument");
    /* the Hugging Face names come from the architecture table; a family without them (bitnet-ak42's) is not written */
    if (!m->arch->hf_name)
        return bn_error(BITNET_ERR_UNSUPPORTED, "%s: architecture %s has no Hugging Face form here", path, m->arch->name);
    const bn_hparams *hp = &m->hp;
    /* embedding, norm, classifier + scale; per layer every role and every expert's matrices, + scales */
    const int n_max = 5 + 2 * (BN_N_LAYER_ROLES + 3 * hp->n_expert) * hp->n_layers;
    wlist W = {m, calloc((size_t)n_max, sizeof(bn_st_out)), calloc((size_t)n_max, sizeof(wsrc)),
               calloc((size_t)n_max, sizeof W.names[0]), 0, n_max};
    if (!W.t || !W.src || !W.names) {
        free(W.t);
        free(W.src);
        free(W.names);
        return bn_error(BITNET_ERR_NOMEM, "%s: out of memory", path);
    }
    bitnet_status st = BITNET_OK;
    const int tied = m->output.data == m->tok_embd.data;
    add_mat(&W, "model.embed_tokens", &m->tok_embd, 0);
    add_vec(&W, "model.norm.weight", m->output_norm, hp->dim);
    if (!tied) add_mat(&W, "lm_head", &m->output, 0);
    for (int l = 0; l < hp->n_layers; l++) {
        const bn_layer *L = &m->layers[l];
        char nm[128];
        for (int i = 0; i < BN_N_LAYER_ROLES; i++) {
            const bn_role *r = &bn_layer_roles[i];
            if (!bn_role_present(m->arch, r)) continue;
            snprintf(nm, sizeof nm, "model.layers.%d.%s", l, bn_role_hf_name(m->arch, r));
            if (r->is_matrix == BN_ROLE_EXPERTS) {
                const bn_matrix *e = *bn_layer_experts((bn_layer *)L, r);
                for (int x = 0; x < hp->n_expert; x++) {
                    snprintf(nm, sizeof nm, "model.layers.%d.mlp.experts.%d.%s", l, x, r->hf);
                    add_mat(&W, nm, &e[x], 0);
                }
            } else if (r->is_matrix) {
                add_mat(&W, nm, bn_layer_matrix_c(L, r), r->rope_rows && !bn_model_has(m, BN_AF_ROPE_NEOX));
            } else {
                strcat(nm, ".weight");
                add_vec(&W, nm, *bn_layer_vector((bn_layer *)L, r), bn_hp_dim(hp, r->rows));
            }
        }
    }
    for (int i = 0; i < W.n; i++)
        if (W.src[i].w && W.src[i].w->type == BN_W_I2 && W.src[i].w->block_scales)
            st = bn_error(BITNET_ERR_UNSUPPORTED, "%s: '%s' has per-block scales, which cannot be written", path, W.names[i]);

    /* the Hugging Face config, embedded so that the file stands alone */
    bn_buf cfg = {0};
    int ok = bn_buf_printf(&cfg,
                           "{\"architectures\": [\"%s\"], \"model_type\": \"%s\", \"hidden_size\": %d, "
                           "\"intermediate_size\": %d, \"num_hidden_layers\": %d, \"num_attention_heads\": %d, "
                           "\"num_key_value_heads\": %d, \"head_dim\": %d, \"max_position_embeddings\": %d, "
                           "\"rms_norm_eps\": %.9g, \"rope_theta\": %.9g, \"vocab_size\": %d, "
                           "\"tie_word_embeddings\": %s, \"torch_dtype\": \"float32\"",
                           m->arch->hf_name ? m->arch->hf_name : "", m->arch->hf_type ? m->arch->hf_type : "", hp->dim, hp->ff, hp->n_layers, hp->n_heads,
                           hp->n_kv_heads, hp->head_dim, hp->ctx_train, (double)hp->norm_eps,
                           (double)hp->rope_theta, hp->vocab, tied ? "true" : "false") == 0;
    static const char *const acts[] = {"silu", "relu2", "gelu_pytorch_tanh"};
    if (!bn_model_has(m, BN_AF_AK42))
        ok = ok && bn_buf_printf(&cfg, ", \"hidden_act\": \"%s\"", acts[m->arch->act]) == 0;
    if (hp->rope_dim != hp->head_dim)
        ok = ok && bn_buf_printf(&cfg, ", \"partial_rotary_factor\": %.17g", (double)hp->rope_dim / hp->head_dim) == 0;
    if (hp->swa_window > 0)
        ok = ok && bn_buf_printf(&cfg, ", \"sliding_window\": %d, \"sliding_window_pattern\": %d, \"rope_local_base_freq\": %.9g, "
                                       "\"query_pre_attn_scalar\": %d", hp->swa_window, hp->swa_pattern,
                                 (double)hp->rope_theta_swa, hp->head_dim) == 0;
    if (hp->n_expert > 0)
        ok = ok && bn_buf_printf(&cfg, ", \"num_experts\": %d, \"num_experts_per_tok\": %d, \"moe_intermediate_size\": %d, "
                                       "\"norm_topk_prob\": true, \"decoder_sparse_step\": 1, \"mlp_only_layers\": []",
                                 hp->n_expert, hp->n_expert_used, hp->ff_exp) == 0;
    if (m->tok)
        ok = ok && bn_buf_printf(&cfg, ", \"bos_token_id\": %d, \"eos_token_id\": %d", (int)bn_tokenizer_bos(m->tok),
                                 (int)bn_tokenizer_eos(m->tok)) == 0;
    ok = ok && bn_buf_append(&cfg, "}", 1) == 0;
    if (!ok && st == BITNET_OK) st = bn_error(BITNET_ERR_NOMEM, "%s: out of memory", path);
    const char *meta[] = {"format", "pt", "bitnet.config", cfg.data, "bitnet.name", m->name};
    if (st == BITNET_OK) st = bn_safetensors_write(path, W.t, (size_t)W.n, meta, 3);
    bn_buf_free(&cfg);
    free(W.t);
    free(W.src);
    free(W.names);
    return st;
}
