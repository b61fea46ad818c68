/* load.c - bitnet_model_load: picks the loader by the file's magic number
 * (GGUF, ak42) or its shape (safetensors file or Hugging Face directory),
 * then does what every format needs after loading: count the weights and
 * lock them in RAM with --mlock. The loaders (gguf_model.c, ak42.c,
 * safetensors_model.c) know nothing of each other or of this file. */
#include <errno.h>

#include "formats/safetensors.h"
#include "model/model.h"
#include "os.h"

extern const uint8_t bn_default_model_data[];
extern const uint64_t bn_default_model_size;

static uint64_t matrix_bytes(const bn_matrix *w) {
    switch (w->type) {
    case BN_W_F32: return (uint64_t)w->rows * w->cols * 4;
    case BN_W_F16: return (uint64_t)w->rows * w->cols * 2;
    case BN_W_Q8_0: return (uint64_t)w->rows * (w->cols / BN_Q8_BLOCK) * sizeof(bn_block_q8_0);
    case BN_W_I2:
        return (uint64_t)w->rows * w->cols_padded / 4 +
               (w->block_scales ? (uint64_t)w->rows * (w->cols / w->block_cols) * sizeof(float) : 0);
    case BN_W_QUANT: return (uint64_t)w->rows * bn_quant_row_bytes(w);
    }
    return 0;
}

static void count_weights(bitnet_model *m) {
    uint64_t params = 0, bytes = 0;
    for (int l = 0; l < m->hp.n_layers; l++) {
        bn_matrix_iter it = {0, 0};
        for (const bn_matrix *W; (W = bn_layer_next_matrix(&m->layers[l], m->hp.n_expert, &it));) {
            params += (uint64_t)W->rows * W->cols;
            bytes += matrix_bytes(W); /* with experts: all of them, though a token reads n_expert_used */
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
    int e;
    if (!p || !size || (e = bn_os_lock(p, (size_t)size)) == 0) return 1;
    bn_warn("warning: cannot lock the %.1f MiB of %s in RAM (%s%s); continuing unlocked", size / 1048576.0,
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
    for (int i = 0; ok && i < m->n_shards; i++) ok = lock_weights(m->shard_map[i], m->shard_size[i], "model weights");
    if (ok) ok = lock_weights(m->owned, m->owned_size, "repacked weights");
    m->locked = ok;
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
        bn_gguf_file *f = NULL;
        if (params && !params->use_mmap) { /* --no-mmap: parse the copy in memory (m->map owns it) */
            st = bn_model_map_file(path, 0, m);
            if (st == BITNET_OK) st = bn_gguf_open_memory(m->map, m->map_size, path, &f);
        } else {
            st = bn_gguf_open(path, &f);
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
    bn_gguf_file *f = NULL;
    bitnet_model_params p = params ? *params : bitnet_model_default_params();
    p.tokenizer_path = NULL;
    bitnet_status st = bn_gguf_open_memory(bn_default_model_data, bn_default_model_size, "(embedded default model)", &f);
    if (st == BITNET_OK) st = bn_model_from_gguf(f, &p, m);
    if (st == BITNET_OK) st = maybe_lock(m, &p);
    return finish_load(m, st, out);
}

