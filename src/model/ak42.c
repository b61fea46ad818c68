/* ak42.c - loader for the legacy ak42 BitNet b1.58 files (docs/ak42.md).
 *
 * Layout: a 256-byte llama2.c "version 1" header (magic "24ka"), fp32
 * final_norm[dim], fp32 tok_embeddings[vocab][dim] (also the tied
 * classifier), then 7 x n_layers BitLinear tensors in tensor-major order
 * (wq for every layer, then wk, wv, wo, w1, w2, w3), each an fp32 scale
 * followed by rows*cols/4 bytes of 2-bit MSB-first codes (00 = 0, 01 = +1,
 * 11 = -1). The norms and embeddings are used in place from the mapping; the
 * ternary tensors are repacked once into the native I2 layout. */
#include <math.h>

#include "model/ak42_math.h"
#include "model/model.h"

#define AK42_MAGIC 0x616b3432u
#define AK42_HEADER 256

typedef struct {
    uint32_t magic;
    int32_t version, dim, hidden, n_layers, n_heads, n_kv_heads, vocab, max_seq;
    uint8_t shared_classifier;
} ak42_header;

static int32_t rd_i32(const uint8_t *p) {
    int32_t v;
    memcpy(&v, p, 4);
    return v;
}

static bitnet_status ak42_parse(const uint8_t *b, uint64_t size, const char *path, const bitnet_model_params *p,
                                int need_tokenizer, bitnet_model *m);

bitnet_status bn_model_from_ak42(const char *path, const bitnet_model_params *p, bitnet_model *m) {
    snprintf(m->path, sizeof m->path, "%s", path);
    m->arch = bn_arch_by_name("bitnet-ak42");
    bitnet_status st = bn_model_map_file(path, p ? p->use_mmap : 1, m); /* --no-mmap reads it */
    if (st != BITNET_OK) return st;
    return ak42_parse(m->map, m->map_size, path, p, 1, m);
}

bitnet_status bn_model_from_ak42_memory(const void *data, uint64_t size, const char *name,
                                        const bitnet_model_params *p, bitnet_model *m) {
    if (!name) name = "(memory)";
    snprintf(m->path, sizeof m->path, "%s", name);
    m->arch = bn_arch_by_name("bitnet-ak42");
    if (!data && size) return bn_error(BITNET_ERR_ARG, "%s: NULL buffer of %llu bytes", name, (unsigned long long)size);
    return ak42_parse(data, size, name, p, 0, m);
}

/* Validates the header against the size, then repacks the ternary tensors.
 * Norms and embeddings point into b, which must outlive m. */
static bitnet_status ak42_parse(const uint8_t *b, uint64_t size, const char *path, const bitnet_model_params *p,
                                int need_tokenizer, bitnet_model *m) {
    if (size < AK42_HEADER)
        return bn_error(BITNET_ERR_FORMAT, "%s: file is %llu bytes, shorter than the 256-byte ak42 header", path,
                        (unsigned long long)size);
    ak42_header h;
    memcpy(&h.magic, b, 4);
    h.version = rd_i32(b + 4);
    h.dim = rd_i32(b + 8);
    h.hidden = rd_i32(b + 12);
    h.n_layers = rd_i32(b + 16);
    h.n_heads = rd_i32(b + 20);
    h.n_kv_heads = rd_i32(b + 24);
    h.vocab = rd_i32(b + 28);
    h.max_seq = rd_i32(b + 32);
    h.shared_classifier = b[36];
    if (h.magic != AK42_MAGIC) return bn_error(BITNET_ERR_FORMAT, "%s: bad magic 0x%08x (expected ak42 0x%08x)", path, h.magic, AK42_MAGIC);
    if (h.version != 1) return bn_error(BITNET_ERR_FORMAT, "%s: ak42 version %d is not supported (only 1)", path, h.version);
    if (h.dim <= 0 || h.dim > 65536 || h.hidden <= 0 || h.hidden > 262144 || h.n_layers <= 0 || h.n_layers > 1024 ||
        h.n_heads <= 0 || h.n_kv_heads <= 0 || h.n_kv_heads > h.n_heads || h.dim % h.n_heads != 0 ||
        h.n_heads % h.n_kv_heads != 0 || (h.dim / h.n_heads) % 2 != 0 || h.vocab <= 0 || h.vocab > (1 << 24) ||
        h.max_seq <= 0 || h.max_seq > (1 << 24) || h.dim % 4 || h.hidden % 4)
        return bn_error(BITNET_ERR_FORMAT,
                        "%s: inconsistent header (dim %d, hidden %d, layers %d, heads %d, kv heads %d, vocab %d, seq %d)",
                        path, h.dim, h.hidden, h.n_layers, h.n_heads, h.n_kv_heads, h.vocab, h.max_seq);
    for (int i = 37; i < AK42_HEADER; i++) /* the header's padding: zero, as the writer leaves it */
        if (b[i] != 0)
            return bn_error(BITNET_ERR_FORMAT, "%s: ak42 header byte %d is 0x%02x; the padding after the header fields must be zero",
                            path, i, b[i]);
    if (h.shared_classifier != 1)
        return bn_error(BITNET_ERR_UNSUPPORTED, "%s: only ak42 files with a shared classifier are supported", path);

    const uint64_t dim = (uint64_t)h.dim, hid = (uint64_t)h.hidden, kv_dim = dim / h.n_heads * h.n_kv_heads;
    /* rows, cols of wq wk wv wo w1 w2 w3 (w1 = gate, w2 = down, w3 = up) */
    const uint64_t shape[7][2] = {{dim, dim}, {kv_dim, dim}, {kv_dim, dim}, {dim, dim}, {hid, dim}, {dim, hid}, {hid, dim}};
    uint64_t expect = AK42_HEADER + dim * 4 + (uint64_t)h.vocab * dim * 4, owned = 0;
    for (int t = 0; t < 7; t++) {
        expect += (uint64_t)h.n_layers * (4 + shape[t][0] * shape[t][1] / 4);
        owned += (uint64_t)h.n_layers * shape[t][0] * (uint64_t)bn_i2_cols_padded((int)shape[t][1]) / 4;
    }
    if (expect != size)
        return bn_error(BITNET_ERR_FORMAT, "%s: file is %llu bytes but its header describes %llu bytes", path,
                        (unsigned long long)size, (unsigned long long)expect);

    bn_hparams *hp = &m->hp;
    hp->dim = h.dim;
    hp->ff = h.hidden;
    hp->n_layers = h.n_layers;
    hp->n_heads = h.n_heads;
    hp->n_kv_heads = h.n_kv_heads;
    hp->head_dim = h.dim / h.n_heads;
    hp->rope_dim = hp->head_dim;
    hp->vocab = h.vocab;
    hp->ctx_train = h.max_seq;
    hp->norm_eps = 1e-5f;
    hp->rope_theta = 10000.0f;
    hp->pooling = -1; /* (not an embedding model) */
    const char *slash = strrchr(path, '/');
    snprintf(m->name, sizeof m->name, "%s", slash ? slash + 1 : path);

    m->output_norm = (const float *)(b + AK42_HEADER);
    m->tok_embd = (bn_matrix){.type = BN_W_F32, .rows = h.vocab, .cols = h.dim, .cols_padded = h.dim,
                              .data = b + AK42_HEADER + dim * 4, .scale = 1.0f};
    m->output = m->tok_embd;
    for (int i = 0; i < h.dim; i++)
        if (!isfinite(m->output_norm[i])) return bn_error(BITNET_ERR_FORMAT, "%s: final_norm[%d] is not finite", path, i);

    m->layers = calloc((size_t)h.n_layers, sizeof(bn_layer));
    m->owned = bn_aligned_alloc((size_t)owned);
    int8_t *row = malloc((size_t)BN_MAX(dim, hid));
    if (!m->layers || !m->owned || !row) {
        free(row);
        return bn_error(BITNET_ERR_NOMEM, "%s: out of memory", path);
    }
    m->owned_size = owned;
    static const char *names[7] = {"wq", "wk", "wv", "wo", "w1", "w2", "w3"};
    static const char *file_roles[7] = {"attn_q", "attn_k", "attn_v", "attn_output", "ffn_gate", "ffn_down", "ffn_up"};
    const uint8_t *cur = b + AK42_HEADER + dim * 4 + (uint64_t)h.vocab * dim * 4;
    uint8_t *out = m->owned;
    for (int t = 0; t < 7; t++) {
        const int rows = (int)shape[t][0], cols = (int)shape[t][1], cp = bn_i2_cols_padded(cols);
        for (int l = 0; l < h.n_layers; l++) {
            float scale;
            memcpy(&scale, cur, 4);
            cur += 4;
            if (!isfinite(scale) || scale <= 0.0f) {
                free(row);
                return bn_error(BITNET_ERR_FORMAT, "%s: %s of layer %d has an invalid scale %g", path, names[t], l, (double)scale);
            }
            for (int r = 0; r < rows; r++) {
                if (bn_ak42_unpack_row(cur + (size_t)r * cols / 4, cols, row) != 0) {
                    free(row);
                    return bn_error(BITNET_ERR_FORMAT, "%s: %s of layer %d row %d has an invalid 2-bit code 10", path,
                                    names[t], l, r);
                }
                bn_i2_pack(row, 1, cols, out + (size_t)r * (cp / 4));
            }
            bn_matrix w = {.type = BN_W_I2, .rows = rows, .cols = cols, .cols_padded = cp, .data = out, .scale = scale};
            *bn_layer_matrix(&m->layers[l], bn_role_by_gguf(file_roles[t])) = w;
            cur += (size_t)rows * cols / 4;
            out += (size_t)rows * (cp / 4);
        }
    }
    free(row);

    if (!p || !p->tokenizer_path) {
        if (!need_tokenizer) return BITNET_OK; /* memory loads (fuzzing): ids only, m->tok stays NULL */
        return bn_error(BITNET_ERR_ARG, "%s: ak42 files have no vocabulary; pass --tokenizer tok512.bin", path);
    }
    return bn_tokenizer_from_llama2c(p->tokenizer_path, h.vocab, &m->tok);
}
