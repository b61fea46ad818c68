/* model.c - what every loader and the public API share about a loaded model:
 * mapping its file, releasing it, reading a weight row, info and tokenizer
 * wrappers. Loading (format detection) is in load.c, above the loaders. */
#include "model/model.h"
#include "formats/mapped_file.h"
#include "os.h"

#include <errno.h>
#include <math.h>


bitnet_model_params bitnet_model_default_params(void) {
    bitnet_model_params p;
    memset(&p, 0, sizeof p);
    p.use_mmap = 1;
    return p;
}

bitnet_status bn_model_map_file(const char *path, int use_mmap, bitnet_model *m) {
    void *map;
    uint64_t size;
    bitnet_status st = bn_map_file(path, use_mmap, &map, &size);
    if (st != BITNET_OK) return st;
    m->map = map;
    m->map_size = (size_t)size;
    return BITNET_OK;
}

void bn_model_release(bitnet_model *m) {
    if (!m) return;
    bn_tokenizer_free(m->tok);
    free(m->layers);
    free(m->experts);
    /* unmapping unlocks mappings; heap blocks and the binary's default model stay locked unless told */
    if (m->locked && m->owned) bn_os_unlock(m->owned, m->owned_size);
    if (m->locked && m->gguf && !m->gguf->owns_mapping && (const void *)m->gguf->base != m->map)
        bn_os_unlock(m->gguf->base, m->gguf->size);
    bn_aligned_free(m->owned);
    if (m->map) bn_os_unmap(m->map, m->map_size);
    for (int i = 0; i < m->n_shards; i++)
        if (m->shard_map[i]) bn_os_unmap(m->shard_map[i], m->shard_size[i]);
    free(m->shard_map);
    free(m->shard_size);
    bn_gguf_close(m->gguf);
    memset(m, 0, sizeof *m);
}

void bitnet_model_free(bitnet_model *model) {
    bn_model_release(model);
    free(model);
}

static const char *wtype_name(const bn_matrix *w) {
    switch (w->type) {
    case BN_W_F32: return "f32";
    case BN_W_F16: return "f16";
    case BN_W_Q8_0: return "q8_0";
    case BN_W_I2: return "i2 (ternary)";
    case BN_W_QUANT: return bn_quant_get(w->quant)->name;
    }
    return "?";
}

const char *bn_model_arch_name(const bitnet_model *m) {
    return m->arch->name;
}

void bitnet_model_get_info(const bitnet_model *m, bitnet_model_info *info) {
    memset(info, 0, sizeof *info);
    info->arch = bn_model_arch_name(m);
    info->name = m->name;
    info->n_vocab = m->hp.vocab;
    info->n_embd = m->hp.dim;
    info->n_ff = m->hp.ff;
    info->n_layer = m->hp.n_layers;
    info->n_head = m->hp.n_heads;
    info->n_head_kv = m->hp.n_kv_heads;
    info->n_ctx_train = m->hp.ctx_train;
    info->n_params = m->n_params;
    info->weight_bytes = m->weight_bytes;
    info->weight_type = m->hp.n_layers ? wtype_name(&m->layers[0].wq) : "?";
}

int bitnet_n_vocab(const bitnet_model *m) { return m->hp.vocab; }
int bitnet_n_embd(const bitnet_model *m) { return m->hp.dim; }
bitnet_pooling bitnet_model_pooling(const bitnet_model *m) { return (bitnet_pooling)m->hp.pooling; }
bitnet_token bitnet_token_bos(const bitnet_model *m) { return bn_tokenizer_bos(m->tok); }
bitnet_token bitnet_token_eos(const bitnet_model *m) { return bn_tokenizer_eos(m->tok); }

int bitnet_tokenize(const bitnet_model *m, const char *text, int add_bos, bitnet_token *tokens, int max_tokens) {
    if (!m || !text || !tokens || max_tokens < 0) return bn_error(BITNET_ERR_ARG, "tokenize: bad argument");
    return bn_tokenizer_encode(m->tok, text, strlen(text), add_bos, tokens, max_tokens);
}

int bitnet_token_to_piece(const bitnet_model *m, bitnet_token prev, bitnet_token token, char *buf, int len) {
    int n = 0;
    const char *p = bn_tokenizer_piece(m->tok, prev, token, &n);
    if (!p) return bn_error(BITNET_ERR_ARG, "token id %d is out of range", token);
    if (len <= 0) return n;
    int c = BN_MIN(n, len - 1);
    memcpy(buf, p, (size_t)c);
    buf[c] = 0;
    return n;
}

void bn_matrix_get_row(const bn_matrix *w, int row, float *out) {
    switch (w->type) {
    case BN_W_F32:
        memcpy(out, (const float *)w->data + (size_t)row * w->cols, (size_t)w->cols * sizeof(float));
        break;
    case BN_W_F16: {
        const uint16_t *r = (const uint16_t *)w->data + (size_t)row * w->cols;
        for (int i = 0; i < w->cols; i++) out[i] = bn_fp16_to_fp32(r[i]);
        break;
    }
    case BN_W_Q8_0: {
        const bn_block_q8_0 *b = (const bn_block_q8_0 *)w->data + (size_t)row * (w->cols / BN_Q8_BLOCK);
        for (int i = 0; i < w->cols; i++) out[i] = bn_fp16_to_fp32(b[i / BN_Q8_BLOCK].d) * b[i / BN_Q8_BLOCK].qs[i % BN_Q8_BLOCK];
        break;
    }
    case BN_W_QUANT:
        bn_dequant_row(w->quant, (const uint8_t *)w->data + (size_t)row * bn_quant_row_bytes(w), w->cols, out);
        break;
    case BN_W_I2: {
        int8_t t[BN_I2_BLOCK];
        if (w->block_scales) { /* block-major, a scale per block */
            const int bc = w->block_cols, nb = w->cols / bc;
            for (int b = 0; b < nb; b++) {
                const uint8_t *blk = (const uint8_t *)w->data + ((size_t)b * w->rows + row) * (size_t)(bc / 4);
                const float d = w->block_scales[(size_t)row * nb + b];
                for (int c = 0; c < bc; c += BN_I2_BLOCK) {
                    bn_i2_unpack_row(blk + c / 4, BN_I2_BLOCK, t);
                    for (int i = 0; i < BN_I2_BLOCK; i++) out[b * bc + c + i] = d * t[i];
                }
            }
            break;
        }
        const uint8_t *r = (const uint8_t *)w->data + (size_t)row * (w->cols_padded / 4);
        for (int b = 0; b < w->cols; b += BN_I2_BLOCK) {
            bn_i2_unpack_row(r + b / 4, BN_I2_BLOCK, t);
            for (int i = 0; i < BN_I2_BLOCK && b + i < w->cols; i++) out[b + i] = w->scale * t[i];
        }
        break;
    }
    }
}

int bn_ternarize_row(const float *v, int cols, float iscale, int8_t *t) {
    for (int c = 0; c < cols; c++) {
        if (iscale == 0.0f) {
            if (v[c] != 0.0f && v[c] != 1.0f && v[c] != -1.0f) return c;
            t[c] = (int8_t)v[c];
        } else {
            float q = rintf(v[c] * iscale); /* the default rounding mode: half to even, as torch.round */
            t[c] = (int8_t)(q >= 1.0f ? 1 : q <= -1.0f ? -1 : 0); /* NaN gives 0, never UB */
        }
    }
    return -1;
}

const bn_matrix *bn_layer_next_matrix(const bn_layer *L, int n_expert, bn_matrix_iter *it) {
    for (; it->role < BN_N_LAYER_ROLES; it->role++, it->expert = 0) {
        const bn_role *r = &bn_layer_roles[it->role];
        if (r->is_matrix == BN_ROLE_MATRIX && it->expert == 0) {
            it->expert = 1; /* visited */
            const bn_matrix *w = bn_layer_matrix_c(L, r);
            if (w->data) return w;
        } else if (r->is_matrix == BN_ROLE_EXPERTS) {
            bn_matrix *const *e = (bn_matrix *const *)(const void *)((const char *)L + r->offset);
            if (*e && it->expert < n_expert) return &(*e)[it->expert++];
        }
    }
    return NULL;
}

void bn_matrix_get_ternary_row(const bn_matrix *w, int r, int8_t *t, float *block_d, int block) {
    BN_ASSERT(w->type == BN_W_I2);
    if (!w->block_scales) {
        bn_i2_unpack_row((const uint8_t *)w->data + (size_t)r * (w->cols_padded / 4), w->cols, t);
        for (int b = 0; block_d && b < w->cols / block; b++) block_d[b] = w->scale;
        return;
    }
    const int bc = w->block_cols, nb = w->cols / bc;
    for (int b = 0; b < nb; b++)
        bn_i2_unpack_row((const uint8_t *)w->data + ((size_t)b * w->rows + r) * (size_t)(bc / 4), bc, t + b * bc);
    BN_ASSERT(!block_d || block == bc);
    for (int b = 0; block_d && b < nb; b++) block_d[b] = w->block_scales[(size_t)r * nb + b];
}
