/* model.c - public model API: format detection, default model, info, tokenizer wrappers. */
#include "model/model.h"
#include "formats/safetensors.h"
#include "formats/mapped_file.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>


extern const uint8_t bn_default_model_data[];
extern const uint64_t bn_default_model_size;

bitnet_model_params bitnet_model_default_params(void) {
    bitnet_model_params p;
    memset(&p, 0, sizeof p);
    p.use_mmap = 1;
    return p;
}

static uint64_t matrix_bytes(const bn_matrix *w) {
    switch (w->type) {
    case BN_W_F32: return (uint64_t)w->rows * w->cols * 4;
    case BN_W_F16: return (uint64_t)w->rows * w->cols * 2;
    case BN_W_Q8_0: return (uint64_t)w->rows * (w->cols / BN_Q8_BLOCK) * sizeof(bn_block_q8_0);
    case BN_W_I2: return (uint64_t)w->rows * w->cols_padded / 4;
    }
    return 0;
}

static void count_weights(bitnet_model *m) {
    uint64_t params = 0, bytes = 0;
    for (int l = 0; l < m->hp.n_layers; l++) {
        const bn_layer *L = &m->layers[l];
        const bn_matrix *ws[] = {&L->wq, &L->wk, &L->wv, &L->wo, &L->w_gate, &L->w_up, &L->w_down};
        for (int i = 0; i < 7; i++) {
            params += (uint64_t)ws[i]->rows * ws[i]->cols;
            bytes += matrix_bytes(ws[i]);
        }
    }
    params += (uint64_t)m->tok_embd.rows * m->tok_embd.cols;
    if (m->output.data != m->tok_embd.data) params += (uint64_t)m->output.rows * m->output.cols;
    bytes += matrix_bytes(&m->output); /* the classifier is read every token; the embedding only one row */
    m->n_params = params;
    m->weight_bytes = bytes;
}

static bitnet_status finish_load(bitnet_model *m, bitnet_status st, bitnet_model **out) {
    if (st != BITNET_OK) {
        bn_model_release(m);
        free(m);
        return st;
    }
    count_weights(m);
    *out = m;
    return BITNET_OK;
}

/* Locks [p, p+size) in RAM; on failure one warning line, and the model runs unlocked. */
static int lock_weights(const void *p, uint64_t size, const char *what) {
    if (!p || !size || mlock(p, (size_t)size) == 0) return 1;
    const int e = errno;
    fprintf(stderr, "warning: cannot lock the %.1f MiB of %s in RAM (%s%s); continuing unlocked\n", size / 1048576.0,
            what, strerror(e), e == ENOMEM || e == EPERM ? ": RLIMIT_MEMLOCK too low, see ulimit -l" : "");
    return 0;
}

/* --mlock: every byte the forward pass reads, wherever it lives (file mapping,
 * memory read with --no-mmap, the binary's copy of the default model, repacked
 * tensors). One warning at most: the second lock fails for the same reason. */
static bitnet_status maybe_lock(bitnet_model *m, const bitnet_model_params *p) {
    if (!p || !p->use_mlock) return BITNET_OK;
    int ok = lock_weights(m->map, m->map_size, "model weights");
    if (ok && m->gguf && (const void *)m->gguf->base != m->map) ok = lock_weights(m->gguf->base, m->gguf->size, "model weights");
    if (ok) ok = lock_weights(m->owned, m->owned_size, "repacked weights");
    m->locked = ok;
    return BITNET_OK;
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

bitnet_status bitnet_model_load(const char *path, const bitnet_model_params *params, bitnet_model **out) {
    if (!path || !out) return bn_error(BITNET_ERR_ARG, "model_load: NULL argument");
    *out = NULL;
    if (bn_safetensors_detect(path)) { /* a directory or a safetensors file: it has no magic number */
        bitnet_model *m = calloc(1, sizeof *m);
        if (!m) return bn_error(BITNET_ERR_NOMEM, "%s: out of memory", path);
        bitnet_status st = bn_model_from_safetensors(path, params, m);
        if (st == BITNET_OK) st = maybe_lock(m, params);
        return finish_load(m, st, out);
    }
    FILE *fp = fopen(path, "rb");
    if (!fp) return bn_error(BITNET_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    uint8_t magic[4] = {0};
    size_t got = fread(magic, 1, 4, fp);
    fclose(fp);
    if (got < 4) return bn_error(BITNET_ERR_FORMAT, "%s: file is too short to be a model (%zu bytes)", path, got);

    bitnet_model *m = calloc(1, sizeof *m);
    if (!m) return bn_error(BITNET_ERR_NOMEM, "%s: out of memory", path);
    bitnet_status st;
    if (memcmp(magic, "GGUF", 4) == 0) {
        gguf_file *f = NULL;
        if (params && !params->use_mmap) { /* --no-mmap: parse the copy in memory (m->map owns it) */
            st = bn_model_map_file(path, 0, m);
            if (st == BITNET_OK) st = gguf_open_memory(m->map, m->map_size, path, &f);
        } else {
            st = gguf_open(path, &f);
        }
        if (st == BITNET_OK) st = bn_model_from_gguf(f, params, m);
    } else if (memcmp(magic, "24ka", 4) == 0) {
        st = bn_model_from_ak42(path, params, m);
    } else {
        st = bn_error(BITNET_ERR_FORMAT, "%s: unknown file format (magic %02x %02x %02x %02x; expected GGUF, ak42 or safetensors)",
                      path, magic[0], magic[1], magic[2], magic[3]);
    }
    if (st == BITNET_OK) st = maybe_lock(m, params);
    return finish_load(m, st, out);
}

bitnet_status bitnet_model_load_default(const bitnet_model_params *params, bitnet_model **out) {
    *out = NULL;
    bitnet_model *m = calloc(1, sizeof *m);
    if (!m) return bn_error(BITNET_ERR_NOMEM, "out of memory");
    gguf_file *f = NULL;
    bitnet_model_params p = params ? *params : bitnet_model_default_params();
    p.tokenizer_path = NULL;
    bitnet_status st = gguf_open_memory(bn_default_model_data, bn_default_model_size, "(embedded default model)", &f);
    if (st == BITNET_OK) st = bn_model_from_gguf(f, &p, m);
    if (st == BITNET_OK) st = maybe_lock(m, &p);
    return finish_load(m, st, out);
}

void bn_model_release(bitnet_model *m) {
    if (!m) return;
    bn_tokenizer_free(m->tok);
    free(m->layers);
    /* munmap unlocks mappings; heap blocks and the binary's default model stay locked unless told */
    if (m->locked && m->owned) munlock(m->owned, m->owned_size);
    if (m->locked && m->gguf && !m->gguf->owns_mapping && (const void *)m->gguf->base != m->map)
        munlock(m->gguf->base, m->gguf->size);
    bn_aligned_free(m->owned);
    if (m->map) munmap(m->map, m->map_size);
    gguf_close(m->gguf);
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
    }
    return "?";
}

const char *bn_model_arch_name(const bitnet_model *m) {
    static const char *arch_names[] = {"llama", "bitnet-b1.58", "bitnet-ak42"};
    return m->arch_name[0] ? m->arch_name : arch_names[m->arch];
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
    case BN_W_I2: {
        int8_t t[BN_I2_BLOCK];
        const uint8_t *r = (const uint8_t *)w->data + (size_t)row * (w->cols_padded / 4);
        for (int b = 0; b < w->cols; b += BN_I2_BLOCK) {
            bn_i2_unpack_row(r + b / 4, BN_I2_BLOCK, t);
            for (int i = 0; i < BN_I2_BLOCK && b + i < w->cols; i++) out[b + i] = w->scale * t[i];
        }
        break;
    }
    }
}
