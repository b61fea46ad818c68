/* gguf_copy.c - writing models as GGUF (see gguf_copy.h).
 *
 * bn_model_write_gguf is what build/convert always did, moved here so that
 * build/prune writes ak42 input the same way: the vocabulary goes into the
 * metadata, embeddings and norms are f32, ternary linears are written in the
 * chosen packed layout. For a ternary model, f32/f16/tq2_0/tq1_0 store the
 * exact values -1/0/+1 with the per-tensor scale in a companion NAME.scale f32
 * tensor (tq*_0 block scales are then 1.0, so no precision is lost); i2_s
 * carries its scale after the data as bitnet.cpp does. */
#include "model/gguf_copy.h"

#include "kernels/kernels.h"

void *bn_keep(bn_keep_list *k, size_t bytes) {
    if (k->n == k->cap) {
        int cap = k->cap ? 2 * k->cap : 64;
        void **nb = realloc(k->bufs, (size_t)cap * sizeof(void *));
        if (!nb) return NULL;
        k->bufs = nb;
        k->cap = cap;
    }
    void *p = calloc(1, bytes ? bytes : 1);
    if (p) k->bufs[k->n++] = p;
    return p;
}

void bn_keep_free(bn_keep_list *k) {
    for (int i = 0; i < k->n; i++) free(k->bufs[i]);
    free(k->bufs);
    memset(k, 0, sizeof *k);
}

void bn_keep_report(const bn_keep_list *k) {
    if (k->n_fallback)
        bn_warn("warning: %d tensor%s (%s%s: rows of %d weights) not a multiple of 256 as %s needs: stored as i2_s",
                k->n_fallback, k->n_fallback > 1 ? "s" : "", k->fallback_first, k->n_fallback > 1 ? ", ..." : "",
                k->fallback_cols, k->fallback_type);
}

static bitnet_status oom(const char *what) { return bn_error(BITNET_ERR_NOMEM, "out of memory writing %s", what); }

void bn_gguf_set_hparams(bn_gguf_writer *w, const char *arch, const bn_hparams *hp) {
    char key[128];
#define SETU(suffix, v) (snprintf(key, sizeof key, "%s." suffix, arch), bn_gguf_writer_set_u32(w, key, (uint32_t)(v)))
#define SETF(suffix, v) (snprintf(key, sizeof key, "%s." suffix, arch), bn_gguf_writer_set_f32(w, key, (v)))
    SETU("context_length", hp->ctx_train);
    SETU("embedding_length", hp->dim);
    SETU("feed_forward_length", hp->ff);
    SETU("block_count", hp->n_layers);
    SETU("attention.head_count", hp->n_heads);
    SETU("attention.head_count_kv", hp->n_kv_heads);
    SETU("rope.dimension_count", hp->rope_dim);
    SETF("attention.layer_norm_rms_epsilon", hp->norm_eps);
    SETF("rope.freq_base", hp->rope_theta);
    if (hp->head_dim * hp->n_heads != hp->dim) { /* qwen3, gemma3: a head size of their own */
        SETU("attention.key_length", hp->head_dim);
        SETU("attention.value_length", hp->head_dim);
    }
    if (hp->swa_window > 0) {
        SETU("attention.sliding_window", hp->swa_window);
        SETU("attention.sliding_window_pattern", hp->swa_pattern);
        SETF("rope.freq_base_swa", hp->rope_theta_swa);
    }
    if (hp->n_expert > 0) {
        SETU("expert_count", hp->n_expert);
        SETU("expert_used_count", hp->n_expert_used);
        SETU("expert_feed_forward_length", hp->ff_exp);
    }
#undef SETU
#undef SETF
}

static bitnet_status add_f32(bn_gguf_writer *w, bn_keep_list *k, const char *name, const float *data, uint64_t n) {
    float *copy = bn_keep(k, n * sizeof(float));
    if (!copy) return oom(name);
    memcpy(copy, data, n * sizeof(float));
    bn_gguf_writer_add_tensor(w, name, 1, &n, BN_TT_F32, copy, n * sizeof(float));
    return BITNET_OK;
}

/* Writes a float matrix (any compute type) as f32, or as f16 when `f16` is set. */
/* A float (or Q8_0) matrix re-encoded as type: F32, F16, or Q8_0 (rows that
 * are not a multiple of 32 stay F32, with a warning). */
/* The GGUF type of a block-quantised matrix as it is stored. */
static bn_tensor_type quant_tensor_type(bn_quant q) {
    switch (q) {
    case BN_QUANT_Q4_0: return BN_TT_Q4_0;
    case BN_QUANT_Q5_0: return BN_TT_Q5_0;
    case BN_QUANT_Q8_0: return BN_TT_Q8_0;
    case BN_QUANT_Q4_K: return BN_TT_Q4_K;
    case BN_QUANT_Q5_K: return BN_TT_Q5_K;
    case BN_QUANT_Q6_K: return BN_TT_Q6_K;
    case BN_QUANT_BF16: return BN_TT_BF16;
    default: return BN_TT_UNKNOWN;
    }
}

/* type BN_TT_COUNT: as m stores it, its bytes copied (f32, f16, q8_0 and the
 * block formats: a Q6_K embedding stays Q6_K, computed as before). */
static bitnet_status add_float_matrix(bn_gguf_writer *w, bn_keep_list *k, const char *name, const bn_matrix *m,
                                      bn_tensor_type type) {
    if (type == BN_TT_COUNT) {
        uint64_t ne[2] = {(uint64_t)m->cols, (uint64_t)m->rows};
        const bn_tensor_type t = m->type == BN_W_F32 ? BN_TT_F32 : m->type == BN_W_F16 ? BN_TT_F16
                               : m->type == BN_W_Q8_0 ? BN_TT_Q8_0 : m->type == BN_W_QUANT ? quant_tensor_type(m->quant)
                                                                                             : BN_TT_UNKNOWN;
        if (t != BN_TT_UNKNOWN) {
            bn_gguf_writer_add_tensor(w, name, 2, ne, t, m->data, (uint64_t)m->rows * bn_matrix_row_bytes(m));
            return BITNET_OK;
        }
        type = BN_TT_F32; /* a ternary embedding: as floats */
    }
    const size_t n = (size_t)m->rows * m->cols;
    float *row = bn_keep(k, n * sizeof(float));
    if (!row) return oom(name);
    for (int r = 0; r < m->rows; r++) bn_matrix_get_row(m, r, row + (size_t)r * m->cols);
    uint64_t ne[2] = {(uint64_t)m->cols, (uint64_t)m->rows};
    if ((type == BN_TT_Q6_K || type == BN_TT_Q4_K) && m->cols % BN_QK_K != 0) {
        bn_warn("warning: %s has rows of %d values, not a multiple of 256 as %s needs; stored as q8_0", name,
                m->cols, type == BN_TT_Q6_K ? "q6_k" : "q4_k");
        type = BN_TT_Q8_0;
    }
    if (type == BN_TT_Q6_K || type == BN_TT_Q4_K) {
        const size_t rb = (size_t)m->cols / BN_QK_K * (type == BN_TT_Q6_K ? BN_Q6_K_BYTES : BN_Q4_K_BYTES);
        uint8_t *q = bn_keep(k, (size_t)m->rows * rb);
        if (!q) return oom(name);
        for (int r = 0; r < m->rows; r++)
            (type == BN_TT_Q6_K ? bn_quantize_q6_k_row : bn_quantize_q4_k_row)(row + (size_t)r * m->cols, m->cols, q + r * rb);
        bn_gguf_writer_add_tensor(w, name, 2, ne, type, q, (uint64_t)m->rows * rb);
        return BITNET_OK;
    }
    if (type == BN_TT_Q8_0 && m->cols % BN_Q8_BLOCK != 0) {
        bn_warn("warning: %s has rows of %d values, not a multiple of 32 as q8_0 needs; stored as f32", name,
                m->cols);
        type = BN_TT_F32;
    }
    if (type == BN_TT_Q8_0) {
        const size_t nb = (size_t)m->cols / BN_Q8_BLOCK;
        bn_block_q8_0 *q = bn_keep(k, (size_t)m->rows * nb * sizeof *q);
        if (!q) return oom(name);
        for (int r = 0; r < m->rows; r++) bn_quantize_q8_0_row(row + (size_t)r * m->cols, m->cols, q + (size_t)r * nb);
        bn_gguf_writer_add_tensor(w, name, 2, ne, BN_TT_Q8_0, q, (size_t)m->rows * nb * sizeof *q);
        return BITNET_OK;
    }
    if (type != BN_TT_F16) {
        bn_gguf_writer_add_tensor(w, name, 2, ne, BN_TT_F32, row, n * sizeof(float));
        return BITNET_OK;
    }
    uint16_t *h = bn_keep(k, n * sizeof(uint16_t));
    if (!h) return oom(name);
    for (size_t i = 0; i < n; i++) h[i] = bn_fp32_to_fp16(row[i]);
    bn_gguf_writer_add_tensor(w, name, 2, ne, BN_TT_F16, h, n * sizeof(uint16_t));
    return BITNET_OK;
}

bitnet_status bn_gguf_add_ternary(bn_gguf_writer *w, bn_keep_list *k, const char *name, const bn_matrix *m,
                                  bn_tensor_type type) {
    const int rows = m->rows, cols = m->cols, cp = m->cols_padded;
    if ((type == BN_TT_TQ2_0 || type == BN_TT_TQ1_0) && cols % BN_QK_K != 0) {
        if (k->n_fallback++ == 0) {
            snprintf(k->fallback_first, sizeof k->fallback_first, "%s", name);
            k->fallback_cols = cols;
            k->fallback_type = type == BN_TT_TQ2_0 ? "tq2_0" : "tq1_0";
        }
        type = BN_TT_I2_S;
    }
    if (m->block_scales && ((type != BN_TT_TQ2_0 && type != BN_TT_TQ1_0) || m->block_cols != BN_QK_K))
        return bn_error(BITNET_ERR_UNSUPPORTED, "%s has a scale per block of %d weights, which only tq2_0 and tq1_0 "
                        "(blocks of 256) store; convert with --type tq2_0 or tq1_0", name, m->block_cols);
    if (type == BN_TT_I2_S && cols % BN_I2_BLOCK != 0)
        return bn_error(BITNET_ERR_UNSUPPORTED, "%s has rows of %d weights; i2_s needs a multiple of 128", name, cols);
    if (type != BN_TT_I2_S && type != BN_TT_TQ2_0 && type != BN_TT_TQ1_0 && type != BN_TT_F32 && type != BN_TT_F16)
        return bn_error(BITNET_ERR_ARG, "%s: unsupported ternary layout %s", name, bn_type_get_traits(type)->name);
    uint64_t ne[4] = {(uint64_t)cols, (uint64_t)rows, 1, 1};
    uint64_t nbytes = bn_tensor_nbytes(type, ne);
    uint8_t *out = bn_keep(k, nbytes);
    int8_t *t = malloc((size_t)cp);
    float *d = malloc((size_t)(cols / BN_QK_K + 1) * sizeof(float));
    if (!out || !t || !d) {
        free(t);
        free(d);
        return oom(name);
    }
    for (int i = 0; i <= cols / BN_QK_K; i++) d[i] = 1.0f;
    for (int r = 0; r < rows; r++) {
        /* a scale per block goes into the TQ blocks; else 1.0 there and NAME.scale */
        bn_matrix_get_ternary_row(m, r, t, m->block_scales ? d : NULL, BN_QK_K);
        switch (type) {
        case BN_TT_I2_S: bn_i2_pack(t, 1, cols, out + (size_t)r * (cols / 4)); break;
        case BN_TT_TQ2_0: bn_tq2_0_pack_row(t, cols, d, out + (size_t)r * (cols / BN_QK_K) * BN_TQ2_0_BYTES); break;
        case BN_TT_TQ1_0: bn_tq1_0_pack_row(t, cols, d, out + (size_t)r * (cols / BN_QK_K) * BN_TQ1_0_BYTES); break;
        case BN_TT_F32:
            for (int c = 0; c < cols; c++) ((float *)out)[(size_t)r * cols + c] = (float)t[c];
            break;
        default: /* F16 */
            for (int c = 0; c < cols; c++) ((uint16_t *)out)[(size_t)r * cols + c] = bn_fp32_to_fp16((float)t[c]);
            break;
        }
    }
    free(t);
    free(d);
    if (type == BN_TT_I2_S) {
        memcpy(out + (size_t)rows * cols / 4, &m->scale, sizeof(float));
    } else if (!m->block_scales) {
        char sname[192];
        size_t len = strlen(name);
        snprintf(sname, sizeof sname, "%.*s.scale", (int)(len > 7 ? len - 7 : 0), name); /* drop ".weight" */
        float *s = bn_keep(k, sizeof(float));
        if (!s) return oom(name);
        *s = m->scale;
        uint64_t one = 1;
        bn_gguf_writer_add_tensor(w, sname, 1, &one, BN_TT_F32, s, sizeof(float));
    }
    bn_gguf_writer_add_tensor(w, name, 2, ne, type, out, nbytes);
    return BITNET_OK;
}

/* The n experts of one role as a 3-D tensor [cols, rows, n] (llama.cpp's
 * ffn_*_exps). Ternary experts: TQ2_0 or TQ1_0 only (bitnet.cpp's I2_S has no
 * 3-D form; another type asked for gives TQ2_0, with a warning), each expert's
 * rows with block scales 1.0 and its scale in NAME.scale, one f32 per expert
 * (an expert with per-block scales keeps them in its blocks and has 1.0
 * there). Float experts: F32, or F16 when asked for. */
static bitnet_status add_experts(bn_gguf_writer *w, bn_keep_list *k, const char *name, const bn_matrix *e, int n,
                                 bn_tensor_type type) {
    const int rows = e[0].rows, cols = e[0].cols;
    uint64_t ne[4] = {(uint64_t)cols, (uint64_t)rows, (uint64_t)n, 1};
    if (e[0].type != BN_W_I2) {
        const int f16 = type == BN_TT_F16;
        const size_t per = (size_t)rows * cols;
        void *out = bn_keep(k, (size_t)n * per * (f16 ? 2 : 4));
        float *row = malloc((size_t)cols * sizeof *row);
        if (!out || !row) {
            free(row);
            return oom(name);
        }
        for (int x = 0; x < n; x++)
            for (int r = 0; r < rows; r++) {
                bn_matrix_get_row(&e[x], r, row);
                const size_t at = (size_t)x * per + (size_t)r * cols;
                for (int c = 0; c < cols; c++)
                    if (f16) ((uint16_t *)out)[at + c] = bn_fp32_to_fp16(row[c]);
                    else ((float *)out)[at + c] = row[c];
            }
        free(row);
        bn_gguf_writer_add_tensor(w, name, 3, ne, f16 ? BN_TT_F16 : BN_TT_F32, out, (uint64_t)n * per * (f16 ? 2 : 4));
        return BITNET_OK;
    }
    if (type != BN_TT_TQ2_0 && type != BN_TT_TQ1_0) {
        if (k->n_expert_fallback++ == 0)
            bn_warn("warning: %s and the other expert tensors stored as tq2_0 (%s has no form for experts)", name,
                    bn_type_get_traits(type)->name);
        type = BN_TT_TQ2_0;
    }
    if (cols % BN_QK_K != 0)
        return bn_error(BITNET_ERR_UNSUPPORTED, "%s: experts with rows of %d weights cannot be stored (%s needs a "
                        "multiple of 256)", name, cols, bn_type_get_traits(type)->name);
    const size_t row_bytes = (size_t)(cols / BN_QK_K) * (type == BN_TT_TQ2_0 ? BN_TQ2_0_BYTES : BN_TQ1_0_BYTES);
    uint8_t *out = bn_keep(k, (size_t)n * rows * row_bytes);
    float *scales = bn_keep(k, (size_t)n * sizeof(float));
    int8_t *t = malloc((size_t)e[0].cols_padded);
    float *d = malloc((size_t)(cols / BN_QK_K) * sizeof(float));
    if (!out || !scales || !t || !d) {
        free(t);
        free(d);
        return oom(name);
    }
    for (int x = 0; x < n; x++) {
        for (int i = 0; i < cols / BN_QK_K; i++) d[i] = 1.0f;
        scales[x] = e[x].block_scales ? 1.0f : e[x].scale;
        for (int r = 0; r < rows; r++) {
            bn_matrix_get_ternary_row(&e[x], r, t, e[x].block_scales ? d : NULL, BN_QK_K);
            uint8_t *dst = out + ((size_t)x * rows + r) * row_bytes;
            if (type == BN_TT_TQ2_0) bn_tq2_0_pack_row(t, cols, d, dst);
            else bn_tq1_0_pack_row(t, cols, d, dst);
        }
    }
    free(t);
    free(d);
    char sname[192];
    const size_t len = strlen(name);
    snprintf(sname, sizeof sname, "%.*s.scale", (int)(len > 7 ? len - 7 : 0), name); /* drop ".weight" */
    uint64_t n_scales = (uint64_t)n;
    bn_gguf_writer_add_tensor(w, sname, 1, &n_scales, BN_TT_F32, scales, (uint64_t)n * sizeof(float));
    bn_gguf_writer_add_tensor(w, name, 3, ne, type, out, (uint64_t)n * rows * row_bytes);
    return BITNET_OK;
}

/* The tensors of one layer of m, named blk.<out>. */
static bitnet_status add_layer(bn_gguf_writer *w, bn_keep_list *k, const bitnet_model *m, const bn_layer *L, int out,
                               bn_tensor_type type) {
    char name[96];
    bitnet_status st = BITNET_OK;
    for (int i = 0; i < BN_N_LAYER_ROLES && st == BITNET_OK; i++) { /* norms first, then the linears */
        const bn_role *r = &bn_layer_roles[i];
        if (!bn_role_present(m->arch, r)) continue; /* ak42 has no per-layer norms, llama no sub-norms */
        snprintf(name, sizeof name, "blk.%d.%s.weight", out, r->gguf);
        if (r->is_matrix == BN_ROLE_EXPERTS) {
            st = add_experts(w, k, name, *bn_layer_experts((bn_layer *)L, r), m->hp.n_expert, type);
            continue;
        }
        if (!r->is_matrix) {
            st = add_f32(w, k, name, *bn_layer_vector((bn_layer *)L, r), (uint64_t)bn_hp_dim(&m->hp, r->rows));
            continue;
        }
        const bn_matrix *mat = bn_layer_matrix_c(L, r);
        if (mat->type == BN_W_I2)
            st = bn_gguf_add_ternary(w, k, name, mat, type);
        else /* float models: --type f16 halves them */
            st = add_float_matrix(w, k, name, mat, type == BN_TT_F16 ? BN_TT_F16 : BN_TT_F32);
    }
    return st;
}

bitnet_status bn_model_write_gguf(const bitnet_model *m, const int *layers, int n_layers, bn_tensor_type ternary_type,
                                  bn_tensor_type head_type, const char *path, void (*progress)(void *user, double frac),
                                  void *progress_user) {
    const char *arch = bn_model_arch_name(m);
    if (!layers) n_layers = m->hp.n_layers;
    for (int i = 0; layers && i < n_layers; i++)
        if (layers[i] < 0 || layers[i] >= m->hp.n_layers)
            return bn_error(BITNET_ERR_ARG, "%s: layer %d does not exist (%d layers)", path, layers[i], m->hp.n_layers);
    bn_hparams hp = m->hp;
    hp.n_layers = n_layers;

    bn_gguf_writer *w = bn_gguf_writer_new();
    if (!w) return oom(path);
    bn_keep_list k = {0};
    bn_gguf_writer_set_str(w, "general.architecture", arch);
    bn_gguf_writer_set_str(w, "general.name", m->name);
    bn_gguf_writer_set_u32(w, "general.alignment", 32);
    bn_gguf_set_hparams(w, arch, &hp);
    if (bn_model_has(m, BN_AF_AK42)) {
        /* the BitLinear variant, spelled out so nothing has to be guessed (docs/formats.md) */
        bn_gguf_writer_set_str(w, "bitnet-ak42.bitlinear.input_norm", "rms_no_eps_no_weight");
        bn_gguf_writer_set_u32(w, "bitnet-ak42.bitlinear.activation_bits", 8);
        bn_gguf_writer_set_str(w, "bitnet-ak42.bitlinear.dequant", "acc*(absmax/127)*scale/fan_in");
    }
    bitnet_status st = bn_tokenizer_write_gguf(m->tok, w); /* SPM or BPE, as loaded */
    if (st == BITNET_OK) st = add_float_matrix(w, &k, "token_embd.weight", &m->tok_embd, head_type);
    if (st == BITNET_OK) st = add_f32(w, &k, "output_norm.weight", m->output_norm, (uint64_t)hp.dim);
    if (st == BITNET_OK && m->output.data != m->tok_embd.data)
        st = add_float_matrix(w, &k, "output.weight", &m->output, head_type);
    for (int i = 0; i < n_layers && st == BITNET_OK; i++) {
        st = add_layer(w, &k, m, &m->layers[layers ? layers[i] : i], i, ternary_type);
        if (progress) progress(progress_user, 0.5 * (i + 1) / n_layers); /* packing: the first half */
    }
    bn_keep_report(&k);
    bn_gguf_writer_set_progress(w, progress, progress_user, 0.5, 1.0);
    if (st == BITNET_OK) st = bn_gguf_writer_write(w, path);
    bn_gguf_writer_free(w);
    bn_keep_free(&k);
    return st;
}

/* ---- pruned copy of a GGUF file ---------------------------------------------------- */

/* v with its integer value replaced by n, in v's own type (block_count is
 * uint32 in llama.cpp's files; other integer types are kept as they are). */
static int set_count(bn_gguf_value *v, uint32_t n) {
    switch (v->type) {
    case BN_GGUF_TYPE_UINT8: if (n > UINT8_MAX) return 0; v->u8 = (uint8_t)n; return 1;
    case BN_GGUF_TYPE_INT8: if (n > INT8_MAX) return 0; v->i8 = (int8_t)n; return 1;
    case BN_GGUF_TYPE_UINT16: if (n > UINT16_MAX) return 0; v->u16 = (uint16_t)n; return 1;
    case BN_GGUF_TYPE_INT16: if (n > INT16_MAX) return 0; v->i16 = (int16_t)n; return 1;
    case BN_GGUF_TYPE_UINT32: v->u32 = n; return 1;
    case BN_GGUF_TYPE_INT32: if (n > INT32_MAX) return 0; v->i32 = (int32_t)n; return 1;
    case BN_GGUF_TYPE_UINT64: v->u64 = n; return 1;
    case BN_GGUF_TYPE_INT64: v->i64 = n; return 1;
    default: return 0;
    }
}

/* If `name` is "blk.N.REST", returns N and points *rest at REST; else -1. */
static long block_of(const char *name, const char **rest) {
    if (strncmp(name, "blk.", 4) != 0) return -1;
    const char *p = name + 4;
    long n = 0;
    if (*p < '0' || *p > '9') return -1;
    for (; *p >= '0' && *p <= '9'; p++)
        if ((n = n * 10 + (*p - '0')) > (1L << 24)) return -1;
    if (*p != '.') return -1;
    *rest = p + 1;
    return n;
}

bitnet_status bn_gguf_write_pruned(const bn_gguf_file *f, const int *layers, int n_layers, const char *path) {
    char arch[64], count_key[96];
    uint32_t n_in = 0;
    if (bn_gguf_get_str(f, "general.architecture", arch, sizeof arch) != 1)
        return bn_error(BITNET_ERR_FORMAT, "%s: missing general.architecture", f->path);
    snprintf(count_key, sizeof count_key, "%s.block_count", arch);
    int got = bn_gguf_get_u32(f, count_key, &n_in);
    if (got < 0) return BITNET_ERR_FORMAT;
    if (got == 0) return bn_error(BITNET_ERR_FORMAT, "%s: missing %s", f->path, count_key);
    if (n_layers < 1) return bn_error(BITNET_ERR_ARG, "%s: a pruned model needs at least one block", path);
    for (int i = 0; i < n_layers; i++)
        if (layers[i] < 0 || (uint32_t)layers[i] >= n_in || (i > 0 && layers[i] <= layers[i - 1]))
            return bn_error(BITNET_ERR_ARG, "%s: block list must be increasing indices below %u (entry %d is %d)", path,
                            n_in, i, layers[i]);
    /* new index of each old block, -1 for the removed ones */
    int *new_index = malloc(n_in * sizeof(int));
    bn_gguf_writer *w = bn_gguf_writer_new();
    char *name = NULL;
    bitnet_status st = BITNET_OK;
    if (!new_index || !w) {
        st = oom(path);
        goto done;
    }
    for (uint32_t b = 0; b < n_in; b++) new_index[b] = -1;
    for (int i = 0; i < n_layers; i++) new_index[layers[i]] = i;
    bn_gguf_writer_set_flavor(w, f->flavor); /* same type ids as the input (bitnet.cpp's I2_S = 36) */

    for (uint64_t i = 0; i < f->n_kv; i++) {
        const bn_gguf_kv *kv = &f->kv[i];
        char *key = malloc(kv->key.len + 1);
        if (!key) {
            st = oom(path);
            goto done;
        }
        memcpy(key, kv->key.data, kv->key.len);
        key[kv->key.len] = 0;
        bn_gguf_value v = kv->value;
        if (strcmp(key, count_key) == 0 && !set_count(&v, (uint32_t)n_layers)) {
            st = bn_error(BITNET_ERR_FORMAT, "%s: %s has type %s, not an integer", f->path, key,
                          bn_gguf_vtype_name(v.type));
            free(key);
            goto done;
        }
        bn_gguf_writer_set_value(w, key, &v);
        free(key);
    }

    for (uint64_t i = 0; i < f->n_tensors; i++) {
        const bn_gguf_tensor *t = &f->tensors[i];
        free(name);
        if (!(name = malloc(t->name.len + 32))) {
            st = oom(path);
            goto done;
        }
        memcpy(name, t->name.data, t->name.len);
        name[t->name.len] = 0;
        const char *rest = NULL;
        long b = block_of(name, &rest);
        if (b >= (long)n_in) {
            st = bn_error(BITNET_ERR_FORMAT, "%s: tensor '%s' belongs to block %ld, but %s is %u", f->path, name, b,
                          count_key, n_in);
            goto done;
        }
        if (b >= 0) {
            if (new_index[b] < 0) continue; /* a removed block */
            char *renamed = malloc(t->name.len + 32);
            if (!renamed) {
                st = oom(path);
                goto done;
            }
            snprintf(renamed, t->name.len + 32, "blk.%d.%s", new_index[b], rest);
            free(name);
            name = renamed;
        }
        bn_gguf_writer_add_tensor(w, name, t->n_dims, t->ne, t->type, t->data, t->nbytes);
    }
    st = bn_gguf_writer_write(w, path);
done:
    free(name);
    free(new_index);
    bn_gguf_writer_free(w);
    return st;
}
