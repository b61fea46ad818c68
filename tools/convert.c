/* convert - write a model as GGUF with ternary tensors packed.
 *
 *   build/convert IN -o OUT.gguf --type tq2_0|tq1_0|i2_s|f16|f32 [--tokenizer tok512.bin]
 *
 * IN is anything the runtime loads (ak42, GGUF). The ternary linears are
 * written in the chosen layout; embeddings and norms stay f32. For a ternary
 * model, f32/f16 store the exact values -1/0/+1 with the per-tensor scale in a
 * companion `NAME.scale` f32 tensor, as do tq2_0/tq1_0 (whose fp16 block
 * scales are then 1.0, so no precision is lost); i2_s carries its scale after
 * the data as bitnet.cpp does. TQ1_0/TQ2_0 need rows that are a multiple of
 * 256 weights: other tensors fall back to i2_s with a warning.
 * The vocabulary goes into the GGUF metadata, so OUT runs without --tokenizer. */
#include <math.h>

#include "gguf.h"
#include "kernels.h"
#include "model.h"
#include "util.h"

static void usage(FILE *out) {
    fprintf(out,
            "usage: convert IN -o OUT.gguf [--type tq2_0|tq1_0|i2_s|f16|f32] [--tokenizer tokenizer.bin]\n"
            "Converts a model (ak42 or GGUF) to GGUF. Ternary linears are stored packed\n"
            "(default i2_s); the linears of a float model are f32, or f16 with --type f16;\n"
            "embeddings and norms are f32. The vocabulary is embedded.\n"
            "  -o FILE        output GGUF (written atomically)\n"
            "  --type T       layout of the ternary linear layers (default i2_s)\n"
            "  --tokenizer F  llama2.c tokenizer.bin for inputs without a vocabulary (ak42)\n"
            "\n"
            "       convert --synthetic PRESET [--type T] -o OUT.gguf\n"
            "       convert --synthetic custom --dim D --ff F --layers L --heads H --kv-heads K --vocab-size V -o OUT.gguf\n"
            "Writes a bitnet-b1.58 model with random ternary weights (--type, default i2_s), a tied Q8_0\n"
            "embedding/classifier and a placeholder vocabulary, with the shapes of a real\n"
            "model, to measure speed without downloading one. Presets:\n"
            "  bitnet-b1.58-2B-4T  dim 2560, 30 layers, ff 6912, 20/5 heads, vocab 128256\n"
            "  bitnet-700M         dim 1536, 24 layers, ff 4096, 16/16 heads, vocab 32002\n"
            "  tiny                dim 256, 2 layers, ff 512, 4/2 heads, vocab 512 (tests)\n");
}

/* Everything the writer references must live until gguf_writer_write. */
typedef struct {
    void **bufs;
    int n, cap;
} keep_list;

static void *keep(keep_list *k, size_t bytes) {
    if (k->n == k->cap) {
        k->cap = k->cap ? 2 * k->cap : 64;
        k->bufs = realloc(k->bufs, (size_t)k->cap * sizeof(void *));
        if (!k->bufs) { fprintf(stderr, "convert: out of memory\n"); exit(1); }
    }
    void *p = calloc(1, bytes ? bytes : 1);
    if (!p) { fprintf(stderr, "convert: out of memory\n"); exit(1); }
    return k->bufs[k->n++] = p;
}

static void add_f32(gguf_writer *w, keep_list *k, const char *name, const float *data, uint64_t ne0, uint64_t ne1) {
    uint64_t ne[2] = {ne0, ne1};
    float *copy = keep(k, ne0 * ne1 * sizeof(float));
    memcpy(copy, data, ne0 * ne1 * sizeof(float));
    gguf_writer_add_tensor(w, name, ne1 > 1 ? 2 : 1, ne, BN_TT_F32, copy, ne0 * ne1 * sizeof(float));
}

/* Writes a float matrix as f32, or as f16 when `f16` is set. */
static void add_float_matrix_as(gguf_writer *w, keep_list *k, const char *name, const bn_matrix *m, int f16) {
    const size_t n = (size_t)m->rows * m->cols;
    float *row = keep(k, n * sizeof(float));
    for (int r = 0; r < m->rows; r++) bn_matrix_get_row(m, r, row + (size_t)r * m->cols);
    uint64_t ne[2] = {(uint64_t)m->cols, (uint64_t)m->rows};
    if (!f16) {
        gguf_writer_add_tensor(w, name, 2, ne, BN_TT_F32, row, n * sizeof(float));
        return;
    }
    uint16_t *h = keep(k, n * sizeof(uint16_t));
    for (size_t i = 0; i < n; i++) h[i] = bn_fp32_to_fp16(row[i]);
    gguf_writer_add_tensor(w, name, 2, ne, BN_TT_F16, h, n * sizeof(uint16_t));
}

static void add_float_matrix(gguf_writer *w, keep_list *k, const char *name, const bn_matrix *m) {
    add_float_matrix_as(w, k, name, m, 0);
}

/* Writes a ternary matrix in layout `type`, plus NAME.scale where the layout needs it. */
static void add_ternary(gguf_writer *w, keep_list *k, const char *name, const bn_matrix *m, bn_tensor_type type) {
    const int rows = m->rows, cols = m->cols, cp = m->cols_padded;
    if ((type == BN_TT_TQ2_0 || type == BN_TT_TQ1_0) && cols % BN_QK_K != 0) {
        fprintf(stderr, "convert: warning: %s has rows of %d weights, not a multiple of 256 as %s needs; stored as i2_s\n",
                name, cols, type == BN_TT_TQ2_0 ? "tq2_0" : "tq1_0");
        type = BN_TT_I2_S;
    }
    if (type == BN_TT_I2_S && cols % BN_I2_BLOCK != 0) {
        fprintf(stderr, "convert: %s has rows of %d weights; i2_s needs a multiple of 128\n", name, cols);
        exit(1);
    }
    uint64_t ne[4] = {(uint64_t)cols, (uint64_t)rows, 1, 1};
    uint64_t nbytes = bn_tensor_nbytes(type, ne);
    uint8_t *out = keep(k, nbytes);
    const uint8_t *src = m->data;
    int8_t *t = malloc((size_t)cp);
    float *d = malloc((size_t)(cols / BN_QK_K + 1) * sizeof(float));
    for (int i = 0; i <= cols / BN_QK_K; i++) d[i] = 1.0f;
    for (int r = 0; r < rows; r++) {
        bn_i2_unpack_row(src + (size_t)r * (cp / 4), cols, t);
        switch (type) {
        case BN_TT_I2_S: bn_i2_pack(t, 1, cols, out + (size_t)r * (cols / 4)); break;
        case BN_TT_TQ2_0: bn_tq2_0_pack_row(t, cols, d, out + (size_t)r * (cols / BN_QK_K) * BN_TQ2_0_BYTES); break;
        case BN_TT_TQ1_0: bn_tq1_0_pack_row(t, cols, d, out + (size_t)r * (cols / BN_QK_K) * BN_TQ1_0_BYTES); break;
        case BN_TT_F32:
            for (int c = 0; c < cols; c++) ((float *)out)[(size_t)r * cols + c] = (float)t[c];
            break;
        case BN_TT_F16:
            for (int c = 0; c < cols; c++) ((uint16_t *)out)[(size_t)r * cols + c] = bn_fp32_to_fp16((float)t[c]);
            break;
        default: fprintf(stderr, "convert: unsupported output type\n"); exit(1);
        }
    }
    free(t);
    free(d);
    if (type == BN_TT_I2_S) {
        memcpy(out + (size_t)rows * cols / 4, &m->scale, sizeof(float));
    } else {
        char sname[192];
        size_t len = strlen(name);
        snprintf(sname, sizeof sname, "%.*s.scale", (int)(len - 7), name);
        float *s = keep(k, sizeof(float));
        *s = m->scale;
        uint64_t one = 1;
        gguf_writer_add_tensor(w, sname, 1, &one, BN_TT_F32, s, sizeof(float));
    }
    gguf_writer_add_tensor(w, name, 2, ne, type, out, nbytes);
}

static void write_vocab(gguf_writer *w, keep_list *k, const bn_tokenizer *tok) {
    int n = bn_tokenizer_n_vocab(tok);
    char **texts = keep(k, (size_t)n * sizeof(char *));
    uint64_t *lens = keep(k, (size_t)n * sizeof(uint64_t));
    float *scores = keep(k, (size_t)n * sizeof(float));
    int32_t *types = keep(k, (size_t)n * sizeof(int32_t));
    for (int i = 0; i < n; i++) {
        const char *text;
        int len, type;
        bn_tokenizer_get_entry(tok, i, &text, &len, &scores[i], &type);
        types[i] = type;
        /* GGUF vocabularies spell spaces as U+2581 (3 bytes in UTF-8) */
        char *s = keep(k, (size_t)len * 3 + 1);
        int o = 0;
        for (int j = 0; j < len; j++) {
            if (text[j] == ' ') { memcpy(s + o, "\xe2\x96\x81", 3); o += 3; }
            else s[o++] = text[j];
        }
        texts[i] = s;
        lens[i] = (uint64_t)o;
    }
    gguf_writer_set_str(w, "tokenizer.ggml.model", "llama");
    gguf_writer_set_arr_str(w, "tokenizer.ggml.tokens", (const char *const *)texts, lens, (uint64_t)n);
    gguf_writer_set_arr_data(w, "tokenizer.ggml.scores", GGUF_TYPE_FLOAT32, scores, (uint64_t)n);
    gguf_writer_set_arr_data(w, "tokenizer.ggml.token_type", GGUF_TYPE_INT32, types, (uint64_t)n);
    gguf_writer_set_u32(w, "tokenizer.ggml.bos_token_id", (uint32_t)bn_tokenizer_bos(tok));
    gguf_writer_set_u32(w, "tokenizer.ggml.eos_token_id", (uint32_t)bn_tokenizer_eos(tok));
    gguf_writer_set_u32(w, "tokenizer.ggml.unknown_token_id", 0);
    gguf_writer_set_bool(w, "tokenizer.ggml.add_bos_token", true);
}

static int parse_type(const char *s, bn_tensor_type *t) {
    static const struct { const char *name; bn_tensor_type t; } types[] = {
        {"tq2_0", BN_TT_TQ2_0}, {"tq1_0", BN_TT_TQ1_0}, {"i2_s", BN_TT_I2_S}, {"f16", BN_TT_F16}, {"f32", BN_TT_F32}};
    for (size_t i = 0; i < sizeof types / sizeof types[0]; i++)
        if (!strcmp(s, types[i].name)) { *t = types[i].t; return 1; }
    return 0;
}

/* The ARCH.* hyper-parameter keys llama.cpp reads. */
static void write_hparams(gguf_writer *w, const char *arch, const bn_hparams *hp) {
    char key[128];
#define SETU(suffix, v) (snprintf(key, sizeof key, "%s." suffix, arch), gguf_writer_set_u32(w, key, (uint32_t)(v)))
#define SETF(suffix, v) (snprintf(key, sizeof key, "%s." suffix, arch), gguf_writer_set_f32(w, key, (v)))
    SETU("context_length", hp->ctx_train);
    SETU("embedding_length", hp->dim);
    SETU("feed_forward_length", hp->ff);
    SETU("block_count", hp->n_layers);
    SETU("attention.head_count", hp->n_heads);
    SETU("attention.head_count_kv", hp->n_kv_heads);
    SETU("rope.dimension_count", hp->rope_dim);
    SETF("attention.layer_norm_rms_epsilon", hp->norm_eps);
    SETF("rope.freq_base", hp->rope_theta);
#undef SETU
#undef SETF
}

/* ---- --synthetic: random ternary models with the shapes of real ones ---- */

typedef struct {
    const char *name;
    int dim, layers, ff, heads, kv_heads, vocab, ctx;
    float rope_theta;
} preset;

static const preset presets[] = {
    /* microsoft/BitNet-b1.58-2B-4T */
    {"bitnet-b1.58-2B-4T", 2560, 30, 6912, 20, 5, 128256, 4096, 500000.0f},
    /* 1bitLLM/bitnet_b1_58-large (~700M) */
    {"bitnet-700M", 1536, 24, 4096, 16, 16, 32002, 2048, 10000.0f},
    /* a small one for CI */
    {"tiny", 256, 2, 512, 4, 2, 512, 256, 10000.0f},
};

static uint64_t rng_state = 0x853c49e6748fea9bull;
static uint64_t rng_next(void) {
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

/* Random I2_S tensor: codes uniform over {-1, 0, +1}, scale after the data. */
static void add_random_i2s(gguf_writer *w, keep_list *k, const char *name, int rows, int cols, float scale) {
    static uint8_t table[81];
    for (int i = 0; i < 81; i++) table[i] = (uint8_t)((i % 3) << 6 | (i / 3 % 3) << 4 | (i / 9 % 3) << 2 | (i / 27 % 3));
    uint64_t ne[4] = {(uint64_t)cols, (uint64_t)rows, 1, 1};
    uint64_t nbytes = bn_tensor_nbytes(BN_TT_I2_S, ne), data = (uint64_t)rows * cols / 4;
    uint8_t *out = keep(k, nbytes);
    for (uint64_t i = 0; i < data; i += 8) {
        uint64_t r = rng_next();
        for (int j = 0; j < 8 && i + j < data; j++, r >>= 8) out[i + j] = table[(r & 0xff) % 81];
    }
    memcpy(out + data, &scale, sizeof scale);
    gguf_writer_add_tensor(w, name, 2, ne, BN_TT_I2_S, out, nbytes);
}

/* Random ternary tensor in any layout: draws an I2 matrix and lets
 * add_ternary() write it (with a companion .scale where the layout needs it). */
static void add_random_ternary(gguf_writer *w, keep_list *k, const char *name, int rows, int cols, float scale,
                               bn_tensor_type type) {
    if (type == BN_TT_I2_S) {
        add_random_i2s(w, k, name, rows, cols, scale);
        return;
    }
    const int cp = bn_i2_cols_padded(cols);
    uint8_t *data = keep(k, (size_t)rows * cp / 4);
    int8_t *t = malloc((size_t)cols);
    for (int r = 0; r < rows; r++) {
        for (int c = 0; c < cols; c++) t[c] = (int8_t)((int)(rng_next() % 3) - 1);
        bn_i2_pack(t, 1, cols, data + (size_t)r * cp / 4);
    }
    free(t);
    bn_matrix m = {BN_W_I2, rows, cols, cp, data, scale, NULL};
    add_ternary(w, k, name, &m, type);
}

static void add_random_q8_0(gguf_writer *w, keep_list *k, const char *name, int rows, int cols) {
    uint64_t ne[4] = {(uint64_t)cols, (uint64_t)rows, 1, 1};
    uint64_t nb = (uint64_t)rows * cols / BN_Q8_BLOCK;
    bn_block_q8_0 *b = keep(k, nb * sizeof *b);
    uint16_t d = bn_fp32_to_fp16(0.02f / 127.0f);
    for (uint64_t i = 0; i < nb; i++) {
        b[i].d = d;
        for (int j = 0; j < BN_Q8_BLOCK; j += 8) {
            uint64_t r = rng_next();
            memcpy(b[i].qs + j, &r, 8);
        }
    }
    gguf_writer_add_tensor(w, name, 2, ne, BN_TT_Q8_0, b, nb * sizeof *b);
}

static void add_const_f32(gguf_writer *w, keep_list *k, const char *name, int n, float v) {
    float *x = keep(k, (size_t)n * sizeof(float));
    for (int i = 0; i < n; i++) x[i] = v;
    uint64_t ne = (uint64_t)n;
    gguf_writer_add_tensor(w, name, 1, &ne, BN_TT_F32, x, (uint64_t)n * sizeof(float));
}

/* A placeholder SentencePiece vocabulary of `n` tokens: <unk> <s> </s>, the 256
 * byte tokens, then single letters and filler pieces, so that any text
 * tokenizes (byte fallback) and any id decodes. */
static void add_synthetic_vocab(gguf_writer *w, keep_list *k, int n) {
    char **texts = keep(k, (size_t)n * sizeof(char *));
    float *scores = keep(k, (size_t)n * sizeof(float));
    int32_t *types = keep(k, (size_t)n * sizeof(int32_t));
    for (int i = 0; i < n; i++) {
        char *s = keep(k, 24);
        if (i == 0) strcpy(s, "<unk>"), types[i] = 2;
        else if (i == 1) strcpy(s, "<s>"), types[i] = 3;
        else if (i == 2) strcpy(s, "</s>"), types[i] = 3;
        else if (i < 259) snprintf(s, 24, "<0x%02X>", i - 3), types[i] = 6;
        else snprintf(s, 24, "\xe2\x96\x81t%d", i), types[i] = 1;
        texts[i] = s;
        scores[i] = -(float)i;
    }
    gguf_writer_set_str(w, "tokenizer.ggml.model", "llama");
    gguf_writer_set_arr_str(w, "tokenizer.ggml.tokens", (const char *const *)texts, NULL, (uint64_t)n);
    gguf_writer_set_arr_data(w, "tokenizer.ggml.scores", GGUF_TYPE_FLOAT32, scores, (uint64_t)n);
    gguf_writer_set_arr_data(w, "tokenizer.ggml.token_type", GGUF_TYPE_INT32, types, (uint64_t)n);
    gguf_writer_set_u32(w, "tokenizer.ggml.bos_token_id", 1);
    gguf_writer_set_u32(w, "tokenizer.ggml.eos_token_id", 2);
    gguf_writer_set_u32(w, "tokenizer.ggml.unknown_token_id", 0);
}

static int write_synthetic(const preset *ps, bn_tensor_type type, const char *out) {
    gguf_writer *w = gguf_writer_new();
    keep_list k = {0};
    const char *arch = "bitnet-b1.58";
    char name[96];
    const int kv_dim = ps->dim / ps->heads * ps->kv_heads;
    const bn_hparams hp = {.dim = ps->dim, .ff = ps->ff, .n_layers = ps->layers, .n_heads = ps->heads,
                           .n_kv_heads = ps->kv_heads, .head_dim = ps->dim / ps->heads,
                           .rope_dim = ps->dim / ps->heads, .vocab = ps->vocab, .ctx_train = ps->ctx,
                           .norm_eps = 1e-5f, .rope_theta = ps->rope_theta};
    gguf_writer_set_str(w, "general.architecture", arch);
    gguf_writer_set_str(w, "general.name", ps->name);
    write_hparams(w, arch, &hp);
    add_synthetic_vocab(w, &k, ps->vocab);
    /* tied 8-bit embedding / classifier, as a Q8_0 head */
    add_random_q8_0(w, &k, "token_embd.weight", ps->vocab, ps->dim);
    add_const_f32(w, &k, "output_norm.weight", ps->dim, 1.0f);
    for (int l = 0; l < ps->layers; l++) {
#define N(s) (snprintf(name, sizeof name, "blk.%d." s, l), name)
        add_const_f32(w, &k, N("attn_norm.weight"), ps->dim, 1.0f);
        add_const_f32(w, &k, N("ffn_norm.weight"), ps->dim, 1.0f);
        add_const_f32(w, &k, N("attn_sub_norm.weight"), ps->dim, 1.0f);
        add_const_f32(w, &k, N("ffn_sub_norm.weight"), ps->ff, 1.0f);
        add_random_ternary(w, &k, N("attn_q.weight"), ps->dim, ps->dim, 0.02f, type);
        add_random_ternary(w, &k, N("attn_k.weight"), kv_dim, ps->dim, 0.02f, type);
        add_random_ternary(w, &k, N("attn_v.weight"), kv_dim, ps->dim, 0.02f, type);
        add_random_ternary(w, &k, N("attn_output.weight"), ps->dim, ps->dim, 0.02f, type);
        add_random_ternary(w, &k, N("ffn_gate.weight"), ps->ff, ps->dim, 0.02f, type);
        add_random_ternary(w, &k, N("ffn_up.weight"), ps->ff, ps->dim, 0.02f, type);
        add_random_ternary(w, &k, N("ffn_down.weight"), ps->dim, ps->ff, 0.02f, type);
#undef N
    }
    bitnet_status st = gguf_writer_write(w, out);
    if (st != BITNET_OK) fprintf(stderr, "convert: %s\n", bitnet_last_error());
    else fprintf(stderr, "convert: wrote synthetic %s model to %s\n", ps->name, out);
    gguf_writer_free(w);
    for (int i = 0; i < k.n; i++) free(k.bufs[i]);
    free(k.bufs);
    return st == BITNET_OK ? 0 : 1;
}

int main(int argc, char **argv) {
    const char *in = NULL, *out = NULL, *tokenizer = NULL, *synthetic = NULL;
    bn_tensor_type type = BN_TT_I2_S;
    preset custom = {"custom", 0, 0, 0, 0, 0, 0, 2048, 10000.0f};
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) { usage(stdout); return 0; }
        else if (!strcmp(argv[i], "-o") && i + 1 < argc) out = argv[++i];
        else if (!strcmp(argv[i], "--tokenizer") && i + 1 < argc) tokenizer = argv[++i];
        else if (!strcmp(argv[i], "--synthetic") && i + 1 < argc) synthetic = argv[++i];
        else if (!strcmp(argv[i], "--dim") && i + 1 < argc) custom.dim = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--layers") && i + 1 < argc) custom.layers = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--ff") && i + 1 < argc) custom.ff = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--heads") && i + 1 < argc) custom.heads = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--kv-heads") && i + 1 < argc) custom.kv_heads = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--vocab-size") && i + 1 < argc) custom.vocab = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--type") && i + 1 < argc) {
            if (!parse_type(argv[++i], &type)) { fprintf(stderr, "convert: unknown --type '%s' (tq2_0, tq1_0, i2_s, f16, f32)\n", argv[i]); return 2; }
        } else if (argv[i][0] == '-') { fprintf(stderr, "convert: unknown option '%s' (see --help)\n", argv[i]); return 2; }
        else if (!in) in = argv[i];
        else { fprintf(stderr, "convert: more than one input file\n"); return 2; }
    }
    if (synthetic && out) {
        if (!strcmp(synthetic, "custom")) {
            if (custom.dim <= 0 || custom.layers <= 0 || custom.ff <= 0 || custom.heads <= 0 || custom.kv_heads <= 0 ||
                custom.vocab < 260 || custom.dim % custom.heads || custom.heads % custom.kv_heads ||
                custom.dim % BN_I2_BLOCK || custom.ff % BN_I2_BLOCK || (custom.dim / custom.heads) % 2) {
                fprintf(stderr, "convert: custom needs --dim, --ff (multiples of 128), --layers, --heads, --kv-heads "
                                "(dividing heads, even head size) and --vocab-size >= 260\n");
                return 2;
            }
            return write_synthetic(&custom, type, out);
        }
        for (size_t i = 0; i < sizeof presets / sizeof presets[0]; i++)
            if (!strcmp(synthetic, presets[i].name)) return write_synthetic(&presets[i], type, out);
        fprintf(stderr, "convert: unknown preset '%s' (bitnet-b1.58-2B-4T, bitnet-700M, tiny)\n", synthetic);
        return 2;
    }
    if (!in || !out) { usage(stderr); return 2; }

    bitnet_model_params mp = bitnet_model_default_params();
    mp.tokenizer_path = tokenizer;
    bitnet_model *m = NULL;
    if (bitnet_model_load(in, &mp, &m) != BITNET_OK) { fprintf(stderr, "convert: %s\n", bitnet_last_error()); return 1; }
    const bn_hparams *hp = &m->hp;
    static const char *arch_names[] = {"llama", "bitnet-b1.58", "bitnet-ak42"};
    const char *arch = arch_names[m->arch];

    gguf_writer *w = gguf_writer_new();
    keep_list k = {0};
    gguf_writer_set_str(w, "general.architecture", arch);
    gguf_writer_set_str(w, "general.name", m->name);
    gguf_writer_set_u32(w, "general.alignment", 32);
    write_hparams(w, arch, hp);
    if (m->arch == BN_ARCH_AK42) {
        /* the BitLinear variant, spelled out so nothing has to be guessed (docs/formats.md) */
        gguf_writer_set_str(w, "bitnet-ak42.bitlinear.input_norm", "rms_no_eps_no_weight");
        gguf_writer_set_u32(w, "bitnet-ak42.bitlinear.activation_bits", 8);
        gguf_writer_set_str(w, "bitnet-ak42.bitlinear.dequant", "acc*(absmax/127)*scale/fan_in");
    }
    write_vocab(w, &k, m->tok);

    add_float_matrix(w, &k, "token_embd.weight", &m->tok_embd);
    add_f32(w, &k, "output_norm.weight", m->output_norm, (uint64_t)hp->dim, 1);
    if (m->output.data != m->tok_embd.data) add_float_matrix(w, &k, "output.weight", &m->output);
    for (int l = 0; l < hp->n_layers; l++) {
        const bn_layer *L = &m->layers[l];
        char name[96];
        if (L->attn_norm) { snprintf(name, sizeof name, "blk.%d.attn_norm.weight", l); add_f32(w, &k, name, L->attn_norm, (uint64_t)hp->dim, 1); }
        if (L->ffn_norm) { snprintf(name, sizeof name, "blk.%d.ffn_norm.weight", l); add_f32(w, &k, name, L->ffn_norm, (uint64_t)hp->dim, 1); }
        if (L->attn_sub_norm) { snprintf(name, sizeof name, "blk.%d.attn_sub_norm.weight", l); add_f32(w, &k, name, L->attn_sub_norm, (uint64_t)hp->dim, 1); }
        if (L->ffn_sub_norm) { snprintf(name, sizeof name, "blk.%d.ffn_sub_norm.weight", l); add_f32(w, &k, name, L->ffn_sub_norm, (uint64_t)hp->ff, 1); }
        const struct { const char *n; const bn_matrix *m; } ms[] = {
            {"attn_q", &L->wq}, {"attn_k", &L->wk}, {"attn_v", &L->wv}, {"attn_output", &L->wo},
            {"ffn_gate", &L->w_gate}, {"ffn_up", &L->w_up}, {"ffn_down", &L->w_down}};
        for (int i = 0; i < 7; i++) {
            snprintf(name, sizeof name, "blk.%d.%s.weight", l, ms[i].n);
            if (ms[i].m->type == BN_W_I2) add_ternary(w, &k, name, ms[i].m, type);
            else add_float_matrix_as(w, &k, name, ms[i].m, type == BN_TT_F16); /* float models: --type f16 halves them */
        }
    }
    bitnet_status st = gguf_writer_write(w, out);
    if (st != BITNET_OK) fprintf(stderr, "convert: %s\n", bitnet_last_error());
    else fprintf(stderr, "convert: wrote %s (%s, linear layers %s)\n", out, arch, bn_type_get_traits(type)->name);
    gguf_writer_free(w);
    for (int i = 0; i < k.n; i++) free(k.bufs[i]);
    free(k.bufs);
    bitnet_model_free(m);
    return st == BITNET_OK ? 0 : 1;
}
