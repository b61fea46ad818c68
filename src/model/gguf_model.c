/* gguf_model.c - builds a bitnet_model from a GGUF file.
 *
 * Architectures: "llama" (float Llama), "bitnet" / "bitnet-b1.58" (BitNet
 * b1.58 as llama.cpp and bitnet.cpp write it) and "bitnet-ak42" (our
 * conversion of the legacy ak42 files, docs/formats.md). Hyper-parameters come
 * from the `ARCH.*` keys, tensors use llama.cpp's names (token_embd,
 * blk.N.attn_q, ...). Every shape is checked against the hyper-parameters.
 *
 * Compute layouts: F32, F16, Q8_0 and I2_S are used in place (zero-copy from
 * the mapping); TQ2_0 and TQ1_0 are repacked once into the native I2 layout
 * (2 bits per weight, the same size in memory). */
#include <math.h>

#include "model/model.h"

typedef struct {
    bn_gguf_file *f;
    bitnet_model *m;
    const char *arch_key; /* prefix for hyper-parameter keys */
    uint8_t *owned_cur;   /* next free byte of m->owned     */
} loader;

static bitnet_status get_u32_req(loader *ld, const char *suffix, uint32_t *out, int required, uint32_t def) {
    char key[160];
    snprintf(key, sizeof key, "%s.%s", ld->arch_key, suffix);
    int r = bn_gguf_get_u32(ld->f, key, out);
    if (r < 0) return BITNET_ERR_FORMAT;
    if (r == 0) {
        if (required) return bn_error(BITNET_ERR_FORMAT, "%s: missing metadata key '%s'", ld->f->path, key);
        *out = def;
    }
    return BITNET_OK;
}

static bitnet_status get_f32_opt(loader *ld, const char *suffix, float *out, float def) {
    char key[160];
    snprintf(key, sizeof key, "%s.%s", ld->arch_key, suffix);
    int r = bn_gguf_get_f32(ld->f, key, out);
    if (r < 0) return BITNET_ERR_FORMAT;
    if (r == 0) *out = def;
    return BITNET_OK;
}

/* Finds a tensor and checks its shape: ne0 = row length (cols), ne1 = rows,
 * ne2 = experts (1 for a matrix). */
static const bn_gguf_tensor *find3(loader *ld, const char *name, int required, uint64_t ne0, uint64_t ne1, uint64_t ne2,
                                bitnet_status *st) {
    const bn_gguf_tensor *t = bn_gguf_find_tensor(ld->f, name);
    if (!t) {
        if (required) *st = bn_error(BITNET_ERR_FORMAT, "%s: missing tensor '%s'", ld->f->path, name);
        return NULL;
    }
    uint64_t want[4] = {ne0, ne1 ? ne1 : 1, ne2, 1};
    for (int i = 0; i < 4; i++) {
        if (t->ne[i] != want[i]) {
            char exp[64];
            snprintf(exp, sizeof exp, ne2 > 1 ? "%llu, %llu, %llu" : "%llu, %llu", (unsigned long long)ne0,
                     (unsigned long long)want[1], (unsigned long long)ne2);
            *st = bn_error(BITNET_ERR_FORMAT,
                           "%s: tensor '%s' has shape [%llu, %llu, %llu, %llu], expected [%s] from the metadata",
                           ld->f->path, name, (unsigned long long)t->ne[0], (unsigned long long)t->ne[1],
                           (unsigned long long)t->ne[2], (unsigned long long)t->ne[3], exp);
            return NULL;
        }
    }
    return t;
}

/* Finds a tensor and checks its shape: ne0 = row length (cols), ne1 = rows. */
static const bn_gguf_tensor *find(loader *ld, const char *name, int required, uint64_t ne0, uint64_t ne1,
                               bitnet_status *st) {
    return find3(ld, name, required, ne0, ne1, 1, st);
}

static bitnet_status load_vector(loader *ld, const char *name, int required, uint64_t n, const float **out) {
    bitnet_status st = BITNET_OK;
    *out = NULL;
    const bn_gguf_tensor *t = find(ld, name, required, n, 1, &st);
    if (!t) return st;
    if (t->type != BN_TT_F32)
        return bn_error(BITNET_ERR_UNSUPPORTED, "%s: tensor '%s' must be f32 (it is %s)", ld->f->path, name,
                        bn_type_get_traits(t->type) ? bn_type_get_traits(t->type)->name : "unknown");
    /* Norm weights are small: a NaN or infinity here is a corrupt file, not a model. */
    const float *v = t->data;
    for (uint64_t i = 0; i < n; i++)
        if (!isfinite(v[i]))
            return bn_error(BITNET_ERR_FORMAT, "%s: tensor '%s' has a non-finite value (%g) at [%llu]", ld->f->path,
                            name, (double)v[i], (unsigned long long)i);
    *out = v;
    return BITNET_OK;
}

/* A float tensor NAME.weight with a companion NAME.scale holds exact ternary
 * values (-1, 0, +1): that is how `convert --type f32|f16` stores a ternary
 * model. It is packed back into I2 at load. */
static int is_float_ternary(const bn_gguf_file *f, const bn_gguf_tensor *t) {
    if (t->type != BN_TT_F32 && t->type != BN_TT_F16) return 0;
    if (t->name.len < 7 || t->name.len > 180 || memcmp(t->name.data + t->name.len - 7, ".weight", 7) != 0) return 0;
    char sname[192];
    snprintf(sname, sizeof sname, "%.*s.scale", (int)(t->name.len - 7), t->name.data);
    return bn_gguf_find_tensor(f, sname) != NULL;
}

/* Whether the loader reads this tensor as a matrix: token_embd, output, or one
 * of the 7 linears of a layer < n_layers, by its exact name. Only those may
 * count towards m->owned: a hostile file could list a million unused tensors
 * over the same bytes (an allocation the file does not pay for, and a
 * quadratic is_float_ternary scan). */
static int is_model_matrix(bn_gguf_str s, int n_layers) {
    char name[96], what[24], canon[96];
    int layer, n = 0;
    if (s.len >= sizeof name) return 0;
    memcpy(name, s.data, s.len);
    name[s.len] = 0;
    if (strcmp(name, "token_embd.weight") == 0 || strcmp(name, "output.weight") == 0) return 1;
    if (sscanf(name, "blk.%d.%23[a-z_].weight%n", &layer, what, &n) != 2 || n == 0 || layer < 0 || layer >= n_layers)
        return 0;
    snprintf(canon, sizeof canon, "blk.%d.%s.weight", layer, what); /* "blk.00.", "blk.+0." are not weights */
    const bn_role *r = bn_role_by_gguf(what);
    return r && r->is_matrix && strcmp(canon, name) == 0;
}

static int tq_raw_scales_equal(const bn_gguf_tensor *t);
/* Per-block scales of a block-scaled repack, rounded so the next tensor stays 64-byte aligned. */
static uint64_t block_scale_bytes(uint64_t rows, uint64_t cols) { return (rows * (cols / BN_QK_K) * 4 + 63) & ~(uint64_t)63; }

static int is_tq(const bn_gguf_tensor *t) { return t->type == BN_TT_TQ2_0 || t->type == BN_TT_TQ1_0; }

/* Expert e of a 3-D tensor [cols, rows, n] as a 2-D tensor of its own: TQ
 * experts are repacked one by one, each with its own scale (or block scales). */
static bn_gguf_tensor expert_view(const bn_gguf_tensor *t, uint64_t e) {
    bn_gguf_tensor v = *t;
    const uint64_t ne[4] = {t->ne[0], t->ne[1], 1, 1};
    v.ne[2] = 1;
    v.nbytes = bn_tensor_nbytes(t->type, ne);
    v.data = (const uint8_t *)t->data + e * v.nbytes;
    return v;
}

/* Bytes of m->owned needed to repack this tensor (0 if used in place). */
static uint64_t repack_bytes(const bn_gguf_file *f, const bn_gguf_tensor *t) {
    if (is_tq(t) && t->ne[2] > 1 && t->ne[2] <= 4096 && t->ne[3] == 1) { /* experts: each as load_experts repacks it */
        uint64_t sum = 0;
        for (uint64_t e = 0; e < t->ne[2]; e++) {
            const bn_gguf_tensor v = expert_view(t, e);
            sum += repack_bytes(f, &v);
        }
        return sum;
    }
    if (is_tq(t) || is_float_ternary(f, t)) {
        if (t->ne[0] > (1u << 24) || t->ne[1] > (1u << 24) || t->ne[2] > 4096 || t->ne[3] != 1)
            return 0; /* rejected later by the shape check */
        const uint64_t rows = t->ne[1] * t->ne[2], packed = rows * (uint64_t)bn_i2_cols_padded((int)t->ne[0]) / 4;
        if (t->type != BN_TT_F32 && t->type != BN_TT_F16 && !tq_raw_scales_equal(t))
            return packed + block_scale_bytes(rows, t->ne[0]); /* a scale per block */
        return packed;
    }
    return 0;
}

/* One scratch buffer for repacking a tensor: n_i8 trits, then n_f32 floats.
 * Returns it (free it), or NULL with the error set. */
static void *repack_scratch(const loader *ld, const char *name, size_t n_i8, size_t n_f32, int8_t **i8, float **f32) {
    const size_t off = (n_i8 + 15) & ~(size_t)15;
    uint8_t *b = malloc(off + n_f32 * sizeof(float));
    if (!b) {
        bn_error(BITNET_ERR_NOMEM, "%s: out of memory repacking '%s'", ld->f->path, name);
        return NULL;
    }
    *i8 = (int8_t *)b;
    *f32 = (float *)(void *)(b + off);
    return b;
}

/* Packs a float tensor of exact ternary values into I2 (see is_float_ternary). */
static bitnet_status repack_float_ternary(loader *ld, const char *name, const bn_gguf_tensor *t, bn_matrix *w) {
    const int rows = (int)t->ne[1], cols = (int)t->ne[0], cp = bn_i2_cols_padded(cols);
    int8_t *tern;
    float *v;
    void *scratch = repack_scratch(ld, name, (size_t)cols, (size_t)cols, &tern, &v);
    if (!scratch) return BITNET_ERR_NOMEM;
    uint8_t *out = ld->owned_cur;
    for (int r = 0; r < rows; r++) {
        for (int c = 0; c < cols; c++) {
            size_t i = (size_t)r * cols + c;
            v[c] = t->type == BN_TT_F32 ? ((const float *)t->data)[i] : bn_fp16_to_fp32(((const uint16_t *)t->data)[i]);
        }
        int bad = bn_ternarize_row(v, cols, 0.0f, tern);
        if (bad >= 0) {
            bitnet_status st = bn_error(BITNET_ERR_FORMAT, "%s: tensor '%s' has a scale tensor but value %g at [%d, %d] is not -1, 0 or 1",
                                        ld->f->path, name, (double)v[bad], r, bad);
            free(scratch);
            return st;
        }
        bn_i2_pack(tern, 1, cols, out + (size_t)r * (cp / 4));
    }
    free(scratch);
    w->type = BN_W_I2;
    w->data = out;
    w->cols_padded = cp;
    w->scale = 1.0f;
    ld->owned_cur += (size_t)rows * (cp / 4);
    return BITNET_OK;
}

/* Whether the fp16 block scales of a TQ2_0/TQ1_0 tensor are all equal (as
 * BitNet b1.58 trains one scale per tensor). Decides the memory reserved for
 * per-block scales; repack_tq then looks at the values too (all-zero blocks
 * may carry any scale). */
static int tq_raw_scales_equal(const bn_gguf_tensor *t) {
    const size_t bytes = t->type == BN_TT_TQ2_0 ? BN_TQ2_0_BYTES : BN_TQ1_0_BYTES, d_off = bytes - 2;
    const uint64_t n = t->nbytes / bytes;
    const uint8_t *p = t->data;
    for (uint64_t i = 1; i < n; i++)
        if (memcmp(p + i * bytes + d_off, p + d_off, 2) != 0) return 0;
    return 1;
}

/* Row r of a TQ2_0/TQ1_0 tensor (in_row bytes a row) as ternary values and block scales. */
static void tq_unpack_row(const bn_gguf_tensor *t, int r, size_t in_row, int cols, int8_t *tern, float *d) {
    const uint8_t *in = (const uint8_t *)t->data + (size_t)r * in_row;
    if (t->type == BN_TT_TQ2_0)
        bn_tq2_0_unpack_row(in, cols, tern, d);
    else
        bn_tq1_0_unpack_row(in, cols, tern, d);
}

/* Repacks a TQ2_0/TQ1_0 tensor into I2: row-major with one scale when the
 * blocks' scales agree (all-zero blocks aside), else block-major with a scale
 * per 256-weight block (bn_matrix.block_scales), which linear.c applies. */
static bitnet_status repack_tq(loader *ld, const char *name, const bn_gguf_tensor *t, bn_matrix *w) {
    const int rows = (int)t->ne[1], cols = (int)t->ne[0];
    const int nb = cols / BN_QK_K;
    const size_t in_row = (size_t)nb * (t->type == BN_TT_TQ2_0 ? BN_TQ2_0_BYTES : BN_TQ1_0_BYTES);
    int8_t *tern;
    float *d;
    void *scratch = repack_scratch(ld, name, (size_t)cols, (size_t)nb, &tern, &d);
    if (!scratch) return BITNET_ERR_NOMEM;
    /* pass 1: the scales, and whether one serves the whole tensor */
    float scale = 0.0f;
    int uniform = 1;
    bitnet_status st = BITNET_OK;
    for (int r = 0; r < rows && st == BITNET_OK; r++) {
        tq_unpack_row(t, r, in_row, cols, tern, d);
        for (int b = 0; b < nb; b++) {
            if (!isfinite(d[b])) {
                st = bn_error(BITNET_ERR_FORMAT, "%s: tensor '%s' has a non-finite block scale", ld->f->path, name);
                break;
            }
            int nonzero = 0;
            for (int i = 0; i < BN_QK_K; i++) nonzero |= tern[b * BN_QK_K + i];
            if (!nonzero || d[b] == 0.0f) continue;
            if (scale == 0.0f) scale = d[b];
            else if (d[b] != scale) uniform = 0;
        }
    }
    /* pass 2: pack, row-major with one scale or block-major with a scale per block */
    uint8_t *out = ld->owned_cur;
    const int cp = bn_i2_cols_padded(cols);
    float *scales = uniform ? NULL : (float *)(void *)(out + (size_t)rows * (cp / 4));
    if (!uniform) BN_ASSERT(!tq_raw_scales_equal(t)); /* the memory for the scales was reserved */
    for (int r = 0; r < rows && st == BITNET_OK; r++) {
        tq_unpack_row(t, r, in_row, cols, tern, d);
        if (uniform) {
            bn_i2_pack(tern, 1, cols, out + (size_t)r * (cp / 4));
            continue;
        }
        for (int b = 0; b < nb; b++) {
            bn_i2_pack(tern + b * BN_QK_K, 1, BN_QK_K, out + ((size_t)b * rows + r) * (BN_QK_K / 4));
            scales[(size_t)r * nb + b] = d[b];
        }
    }
    free(scratch);
    if (st != BITNET_OK) return st;
    w->type = BN_W_I2;
    w->data = out;
    w->cols_padded = cp;
    w->scale = uniform && scale != 0.0f ? scale : 1.0f;
    w->block_scales = scales;
    w->block_cols = uniform ? 0 : BN_QK_K;
    ld->owned_cur += (size_t)rows * (cp / 4) + (uniform ? 0 : (size_t)block_scale_bytes((uint64_t)rows, (uint64_t)cols));
    return BITNET_OK;
}

static bitnet_status tensor_to_matrix(loader *ld, const char *name, const bn_gguf_tensor *t, int rows, int cols,
                                      bn_matrix *w, int expert, int n_expert);

static bitnet_status load_matrix(loader *ld, const char *name, int required, int rows, int cols, bn_matrix *w) {
    bitnet_status st = BITNET_OK;
    memset(w, 0, sizeof *w);
    const bn_gguf_tensor *t = find(ld, name, required, (uint64_t)cols, (uint64_t)rows, &st);
    if (!t) return st;
    return tensor_to_matrix(ld, name, t, rows, cols, w, -1, 0);
}

/* A 3-D tensor [cols, rows, n] of n experts' matrices (BN_AF_MOE) into
 * out[0..n). TQ2_0/TQ1_0: each expert repacked on its own, so that each keeps
 * its scale (experts are trained apart; block scales differ between them).
 * Other types: converted as one matrix of n * rows rows, then cut. */
static bitnet_status load_experts(loader *ld, const char *name, int rows, int cols, int n, bn_matrix *out) {
    bitnet_status st = BITNET_OK;
    const bn_gguf_tensor *t = find3(ld, name, 1, (uint64_t)cols, (uint64_t)rows, (uint64_t)n, &st);
    if (!t) return st;
    if (is_tq(t)) {
        for (int e = 0; e < n && st == BITNET_OK; e++) {
            const bn_gguf_tensor v = expert_view(t, (uint64_t)e);
            memset(&out[e], 0, sizeof out[e]);
            st = tensor_to_matrix(ld, name, &v, rows, cols, &out[e], e, n);
        }
        return st;
    }
    bn_gguf_tensor flat = *t;
    flat.ne[1] = (uint64_t)rows * (uint64_t)n;
    flat.ne[2] = 1;
    bn_matrix all;
    memset(&all, 0, sizeof all);
    if ((st = tensor_to_matrix(ld, name, &flat, rows * n, cols, &all, -1, 0))) return st;
    const size_t per = (size_t)rows * bn_matrix_row_bytes(&all);
    for (int e = 0; e < n; e++) {
        out[e] = all;
        out[e].rows = rows;
        out[e].data = (const uint8_t *)all.data + (size_t)e * per;
    }
    return BITNET_OK;
}

/* The compute form of tensor t ([cols, rows]) named `name`; expert e of
 * n_expert for an expert's view (load_experts), whose NAME.scale may hold one
 * scale per expert; else expert -1. */
static bitnet_status tensor_to_matrix(loader *ld, const char *name, const bn_gguf_tensor *t, int rows, int cols,
                                      bn_matrix *w, int expert, int n_expert) {
    bitnet_status st = BITNET_OK;
    w->rows = rows;
    w->cols = cols;
    w->cols_padded = cols;
    w->scale = 1.0f;
    w->data = t->data;
    if (is_float_ternary(ld->f, t)) { /* any family: the NAME.scale companion marks it */
        if ((st = repack_float_ternary(ld, name, t, w))) return st;
    } else switch (t->type) {
    case BN_TT_F32: w->type = BN_W_F32; break;
    case BN_TT_F16: w->type = BN_W_F16; break;
    case BN_TT_Q8_0: w->type = BN_W_Q8_0; break;
    /* ggml's block formats of real files' embeddings and heads: multiplied as
     * floats, a row dequantised at a time (linear.c) */
    case BN_TT_Q4_0: w->type = BN_W_QUANT, w->quant = BN_QUANT_Q4_0; break;
    case BN_TT_Q5_0: w->type = BN_W_QUANT, w->quant = BN_QUANT_Q5_0; break;
    case BN_TT_Q4_K: w->type = BN_W_QUANT, w->quant = BN_QUANT_Q4_K; break;
    case BN_TT_Q5_K: w->type = BN_W_QUANT, w->quant = BN_QUANT_Q5_K; break;
    case BN_TT_Q6_K: w->type = BN_W_QUANT, w->quant = BN_QUANT_Q6_K; break;
    case BN_TT_BF16: w->type = BN_W_QUANT, w->quant = BN_QUANT_BF16; break;
    case BN_TT_I2_S: {
        if (cols % BN_I2_BLOCK != 0)
            return bn_error(BITNET_ERR_FORMAT, "%s: i2_s tensor '%s' has %d columns, not a multiple of %d",
                            ld->f->path, name, cols, BN_I2_BLOCK);
        float s;
        memcpy(&s, (const uint8_t *)t->data + (size_t)rows * cols / 4, sizeof s);
        if (!isfinite(s) || s < 0.0f)
            return bn_error(BITNET_ERR_FORMAT, "%s: i2_s tensor '%s' has an invalid scale %g", ld->f->path, name, (double)s);
        w->type = BN_W_I2;
        w->scale = s;
        break;
    }
    case BN_TT_TQ2_0:
    case BN_TT_TQ1_0:
        st = repack_tq(ld, name, t, w);
        if (st != BITNET_OK) return st;
        break;
    default: {
        const bn_type_traits *tr = bn_type_get_traits(t->type);
        return bn_error(BITNET_ERR_UNSUPPORTED, "%s: tensor '%s' has type %s, which this runtime cannot compute",
                        ld->f->path, name, tr ? tr->name : "unknown");
    }
    }
    /* optional extra per-tensor scale ("NAME.scale" with NAME ending in .weight replaced) */
    char sname[192];
    size_t len = strlen(name);
    if (len > 7 && strcmp(name + len - 7, ".weight") == 0) {
        snprintf(sname, sizeof sname, "%.*s.scale", (int)(len - 7), name);
        const bn_gguf_tensor *sc = bn_gguf_find_tensor(ld->f, sname);
        if (sc) {
            const int per_expert = expert >= 0 && sc->ne[0] > 1; /* our writer's experts: one f32 each */
            if (sc->type != BN_TT_F32 || sc->ne[1] != 1 || sc->ne[0] != (per_expert ? (uint64_t)n_expert : 1))
                return bn_error(BITNET_ERR_FORMAT, "%s: scale tensor '%s' must be one f32%s", ld->f->path, sname,
                                expert >= 0 ? " or one per expert" : "");
            float s;
            memcpy(&s, (const float *)sc->data + (per_expert ? expert : 0), sizeof s);
            if (!isfinite(s)) return bn_error(BITNET_ERR_FORMAT, "%s: scale tensor '%s' is not finite", ld->f->path, sname);
            if (w->block_scales) /* folded into the per-block scales (m->owned, written by repack_tq) */
                for (size_t i = 0; i < (size_t)w->rows * (size_t)(w->cols / w->block_cols); i++)
                    ((float *)(uintptr_t)w->block_scales)[i] *= s;
            else
                w->scale *= s;
        }
    }
    if (w->type != BN_W_I2 && w->scale != 1.0f)
        return bn_error(BITNET_ERR_UNSUPPORTED, "%s: a scale tensor is only supported for ternary '%s'", ld->f->path, name);
    return BITNET_OK;
}

static bitnet_status read_hparams(loader *ld) {
    bitnet_model *m = ld->m;
    bn_hparams *hp = &m->hp;
    uint32_t dim, ff, nl, nh, nkv, rope_dim, ctx;
    bitnet_status st;
    if ((st = get_u32_req(ld, "embedding_length", &dim, 1, 0)) ||
        (st = get_u32_req(ld, "feed_forward_length", &ff, 1, 0)) ||
        (st = get_u32_req(ld, "block_count", &nl, 1, 0)) ||
        (st = get_u32_req(ld, "attention.head_count", &nh, 1, 0)) ||
        (st = get_u32_req(ld, "attention.head_count_kv", &nkv, 0, nh)) ||
        (st = get_u32_req(ld, "context_length", &ctx, 0, 2048)))
        return st;
    if (dim == 0 || dim > 65536 || ff == 0 || ff > 262144 || nl == 0 || nl > 1024 || nh == 0 || nh > dim ||
        nkv == 0 || nkv > nh || dim % nh != 0 || nh % nkv != 0)
        return bn_error(BITNET_ERR_FORMAT,
                        "%s: inconsistent hyper-parameters (dim %u, ff %u, layers %u, heads %u, kv heads %u)",
                        ld->f->path, dim, ff, nl, nh, nkv);
    /* head size: attention.key_length (qwen3, gemma3 may differ from dim / heads) */
    uint32_t head_dim, value_len;
    if ((st = get_u32_req(ld, "attention.key_length", &head_dim, 0, dim / nh)) ||
        (st = get_u32_req(ld, "attention.value_length", &value_len, 0, head_dim)))
        return st;
    if (head_dim == 0 || head_dim > 4096 || head_dim % 2 || value_len != head_dim)
        return bn_error(BITNET_ERR_FORMAT, "%s: attention.key_length %u / value_length %u are not one even head size",
                        ld->f->path, head_dim, value_len);
    if ((st = get_u32_req(ld, "rope.dimension_count", &rope_dim, 0, head_dim))) return st;
    if (rope_dim == 0 || rope_dim > head_dim || rope_dim % 2)
        return bn_error(BITNET_ERR_FORMAT, "%s: rope.dimension_count %u does not fit head size %u", ld->f->path,
                        rope_dim, head_dim);
    if ((st = get_f32_opt(ld, "attention.layer_norm_rms_epsilon", &hp->norm_eps, 1e-5f)) ||
        (st = get_f32_opt(ld, "rope.freq_base", &hp->rope_theta, 10000.0f)))
        return st;
    if (!(hp->norm_eps >= 0.0f && hp->norm_eps < 1.0f) || !(hp->rope_theta > 0.0f && isfinite(hp->rope_theta)))
        return bn_error(BITNET_ERR_FORMAT, "%s: bad norm epsilon or rope base", ld->f->path);
    hp->dim = (int)dim;
    hp->ff = (int)ff;
    hp->n_layers = (int)nl;
    hp->n_heads = (int)nh;
    hp->n_kv_heads = (int)nkv;
    hp->head_dim = (int)head_dim;
    hp->rope_dim = (int)rope_dim;
    uint32_t pooling;
    if ((st = get_u32_req(ld, "pooling_type", &pooling, 0, UINT32_MAX))) return st;
    hp->pooling = pooling <= BITNET_POOLING_LAST ? (int)pooling : -1; /* rank (4) etc.: not an embedding we pool */
    if (bn_model_has(m, BN_AF_MOE)) { /* qwen3moe */
        uint32_t ne, nu, ffe;
        if ((st = get_u32_req(ld, "expert_count", &ne, 1, 0)) || (st = get_u32_req(ld, "expert_used_count", &nu, 1, 0)) ||
            (st = get_u32_req(ld, "expert_feed_forward_length", &ffe, 1, 0)))
            return st;
        if (ne == 0 || ne > 1024 || nu == 0 || nu > ne || ffe == 0 || ffe > 262144)
            return bn_error(BITNET_ERR_FORMAT, "%s: inconsistent experts (%u experts, %u used, length %u)", ld->f->path,
                            ne, nu, ffe);
        hp->n_expert = (int)ne;
        hp->n_expert_used = (int)nu;
        hp->ff_exp = (int)ffe;
    }
    if (bn_model_has(m, BN_AF_SWA)) { /* gemma3: sliding-window layers, llama.cpp's defaults */
        uint32_t window, pattern;
        if ((st = get_u32_req(ld, "attention.sliding_window", &window, 1, 0)) ||
            (st = get_u32_req(ld, "attention.sliding_window_pattern", &pattern, 0, 6)) ||
            (st = get_f32_opt(ld, "rope.freq_base_swa", &hp->rope_theta_swa, 10000.0f)))
            return st;
        if (window == 0 || pattern == 0 || !(hp->rope_theta_swa > 0.0f && isfinite(hp->rope_theta_swa)))
            return bn_error(BITNET_ERR_FORMAT, "%s: bad sliding window (%u, pattern %u) or rope.freq_base_swa", ld->f->path,
                            window, pattern);
        hp->swa_window = (int)BN_MIN(window, 1u << 24);
        hp->swa_pattern = (int)pattern;
    }
    hp->ctx_train = (int)ctx;
    const bn_gguf_tensor *emb = bn_gguf_find_tensor(ld->f, "token_embd.weight");
    if (!emb) return bn_error(BITNET_ERR_FORMAT, "%s: missing tensor 'token_embd.weight'", ld->f->path);
    if (emb->ne[1] == 0 || emb->ne[1] > (1u << 24))
        return bn_error(BITNET_ERR_FORMAT, "%s: token_embd.weight has a bad vocabulary size", ld->f->path);
    hp->vocab = (int)emb->ne[1];
    return BITNET_OK;
}

bitnet_status bn_model_from_gguf(bn_gguf_file *f, const bitnet_model_params *p, bitnet_model *m) {
    loader ld = {f, m, NULL, NULL};
    char arch[64];
    m->gguf = f;
    snprintf(m->path, sizeof m->path, "%s", f->path);
    if (bn_gguf_get_str(f, "general.architecture", arch, sizeof arch) != 1)
        return bn_error(BITNET_ERR_FORMAT, "%s: missing general.architecture", f->path);
    /* What each architecture computes is in arch.c's table (RoPE layout, FFN
     * activation, norms), as llama.cpp and bitnet.cpp compute it. */
    m->arch = bn_arch_by_name(arch);
    if (!m->arch)
        return bn_error(BITNET_ERR_UNSUPPORTED, "%s: architecture '%s' is not supported (%s)", f->path, arch,
                        bn_arch_names());
    ld.arch_key = arch;
    if (bn_gguf_get_str(f, "general.name", m->name, sizeof m->name) != 1) snprintf(m->name, sizeof m->name, "%s", arch);

    bitnet_status st = read_hparams(&ld);
    if (st) return st;
    bn_hparams *hp = &m->hp;

    /* room for repacked TQ tensors */
    uint64_t need = 0;
    for (uint64_t i = 0; i < f->n_tensors; i++)
        if (is_model_matrix(f->tensors[i].name, hp->n_layers)) need += repack_bytes(f, &f->tensors[i]);
    if (need) {
        m->owned = bn_aligned_alloc((size_t)need);
        if (!m->owned) return bn_error(BITNET_ERR_NOMEM, "%s: cannot allocate %llu bytes to repack ternary tensors", f->path, (unsigned long long)need);
        m->owned_size = need;
        ld.owned_cur = m->owned;
    }

    m->layers = calloc((size_t)hp->n_layers, sizeof(bn_layer));
    if (!m->layers) return bn_error(BITNET_ERR_NOMEM, "%s: out of memory", f->path);
    if (hp->n_expert && !(m->experts = calloc((size_t)hp->n_layers * 3 * (size_t)hp->n_expert, sizeof(bn_matrix))))
        return bn_error(BITNET_ERR_NOMEM, "%s: out of memory", f->path);
    if ((st = load_matrix(&ld, "token_embd.weight", 1, hp->vocab, hp->dim, &m->tok_embd))) return st;
    if (m->tok_embd.type == BN_W_I2) return bn_error(BITNET_ERR_UNSUPPORTED, "%s: a ternary token_embd is not supported", f->path);
    if ((st = load_vector(&ld, "output_norm.weight", 1, (uint64_t)hp->dim, &m->output_norm))) return st;
    if (bn_gguf_find_tensor(f, "output.weight")) {
        if ((st = load_matrix(&ld, "output.weight", 1, hp->vocab, hp->dim, &m->output))) return st;
    } else {
        m->output = m->tok_embd; /* tied classifier */
    }

    for (int l = 0; l < hp->n_layers; l++) {
        bn_layer *L = &m->layers[l];
        int expert_slot = 0; /* gate, up, down: their third of m->experts for this layer */
        for (int i = 0; i < BN_N_LAYER_ROLES; i++) {
            const bn_role *r = &bn_layer_roles[i];
            const int present = bn_role_present(m->arch, r);
            char n[96];
            snprintf(n, sizeof n, "blk.%d.%s.weight", l, r->gguf);
            if (r->is_matrix == BN_ROLE_EXPERTS) {
                if (!present) continue;
                bn_matrix *e = m->experts + ((size_t)l * 3 + (size_t)expert_slot++) * (size_t)hp->n_expert;
                *bn_layer_experts(L, r) = e;
                if ((st = load_experts(&ld, n, bn_hp_dim(hp, r->rows), bn_hp_dim(hp, r->cols), hp->n_expert, e))) return st;
            } else if (r->is_matrix) {
                if (!present) continue;
                bn_matrix *w = bn_layer_matrix(L, r);
                if ((st = load_matrix(&ld, n, 1, bn_hp_dim(hp, r->rows), bn_hp_dim(hp, r->cols), w))) return st;
                if (bn_model_has(m, BN_AF_AK42) && (w->type != BN_W_I2 || w->block_scales))
                    return bn_error(BITNET_ERR_FORMAT, "%s: bitnet-ak42 layer %d has a non-ternary linear", f->path, l);
            } else if ((st = load_vector(&ld, n, present, (uint64_t)bn_hp_dim(hp, r->rows), bn_layer_vector(L, r)))) {
                return st;
            } else if (!present) {
                *bn_layer_vector(L, r) = NULL; /* a tensor this architecture does not compute is not read */
            }
        }
    }

    /* tokenizer: embedded, or from --tokenizer */
    if (p && p->tokenizer_path) {
        st = bn_tokenizer_from_llama2c(p->tokenizer_path, hp->vocab, &m->tok);
    } else if (bn_gguf_find_kv(f, "tokenizer.ggml.tokens")) {
        st = bn_tokenizer_from_gguf(f, &m->tok);
    } else {
        st = bn_error(BITNET_ERR_FORMAT, "%s: the file has no vocabulary; pass --tokenizer tokenizer.bin", f->path);
    }
    if (st) return st;
    if (bn_tokenizer_n_vocab(m->tok) < hp->vocab)
        return bn_error(BITNET_ERR_FORMAT, "%s: the tokenizer has %d tokens but the model has %d", f->path,
                        bn_tokenizer_n_vocab(m->tok), hp->vocab);
    /* as llama.cpp: a token the tokenizer can produce must have an embedding row */
    if (bn_tokenizer_n_vocab(m->tok) > hp->vocab)
        return bn_error(BITNET_ERR_FORMAT, "%s: the tokenizer has %d tokens but token_embd.weight only %d rows",
                        f->path, bn_tokenizer_n_vocab(m->tok), hp->vocab);
    return BITNET_OK;
}
