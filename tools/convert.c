/* convert - write a model as GGUF with ternary tensors packed.
 *
 *   build/convert IN -o OUT.gguf --type tq2_0|tq1_0|i2_s|f16|f32 [--tokenizer tok512.bin]
 *
 * IN is anything the runtime loads (ak42, GGUF, safetensors). The ternary linears are
 * written in the chosen layout; embeddings and norms stay f32. For a ternary
 * model, f32/f16 store the exact values -1/0/+1 with the per-tensor scale in a
 * companion `NAME.scale` f32 tensor, as do tq2_0/tq1_0 (whose fp16 block
 * scales are then 1.0, so no precision is lost); i2_s carries its scale after
 * the data as bitnet.cpp does. TQ1_0/TQ2_0 need rows that are a multiple of
 * 256 weights: other tensors fall back to i2_s with a warning.
 * The vocabulary goes into the GGUF metadata, so OUT runs without --tokenizer. */
#include <math.h>

#include "formats/gguf.h"
#include "model/gguf_copy.h"
#include "kernels/kernels.h"
#include "tokenizer/chat.h"
#include "model/model.h"
#define TOOL_NAME "convert"
#include "util.h"

static void usage(FILE *out) {
    fprintf(out,
            "usage: convert IN -o OUT.gguf [--type tq2_0|tq1_0|i2_s|f16|f32] [--head-type f32|f16|q8_0]\n"
            "               [--tokenizer tokenizer.bin]\n"
            "       convert IN OUT.gguf [TYPE]   (llama-quantize's form, TYPE as above in any case)\n"
            "Converts a model (ak42, GGUF or safetensors) to GGUF. Ternary linears are stored packed\n"
            "(default i2_s); the linears of a float model are f32, or f16 with --type f16;\n"
            "norms are f32, embedding/classifier f32 unless --head-type. The vocabulary is embedded.\n"
            "  -o FILE        output GGUF (written atomically)\n"
            "  --type T       layout of the ternary linear layers (default i2_s)\n"
            "  --head-type T  token embedding and classifier: f32 (default), f16 or q8_0\n"
            "                 (also --token-embedding-type, --output-tensor-type)\n"
            "                 (8-bit head: less memory read per token; docs/perplexity.md has its cost)\n"
            "  --tokenizer F  vocabulary for inputs without one: llama2.c tokenizer.bin (ak42,\n"
            "                 safetensors), a GGUF file that has one or a tokenizer.json\n"
            "                 (safetensors; a Hugging Face directory's own tokenizer.json is read)\n"
            "\n"
            "       convert --synthetic PRESET [--type T] [--vocab FILE] -o OUT.gguf\n"
            "       convert --synthetic custom --dim D --ff F --layers L --heads H --kv-heads K --vocab-size V -o OUT.gguf\n"
            "Writes a bitnet-b1.58 model with random ternary weights (--type, default i2_s), a tied Q8_0\n"
            "embedding/classifier and a placeholder vocabulary, with the shapes of a real\n"
            "model, to measure speed without downloading one. Presets:\n"
            "  bitnet-b1.58-2B-4T  dim 2560, 30 layers, ff 6912, 20/5 heads, vocab 128256\n"
            "  bitnet-700M         dim 1536, 24 layers, ff 4096, 16/16 heads, vocab 32002\n"
            "  tiny                dim 256, 2 layers, ff 512, 4/2 heads, vocab 512 (tests)\n"
            "  --vocab FILE   write this real vocabulary instead of the placeholder, e.g. Llama-3's\n"
            "                 tiktoken tokenizer.model (as tokenizer.ggml.model gpt2, pre llama-bpe,\n"
            "                 merges, BOS/EOS/EOT and the BitNet-b1.58-2B-4T chat template) or any\n"
            "                 GGUF / tokenizer.bin that `tokenize -m` reads; its size must equal\n"
            "                 the model's vocabulary (128256 for bitnet-b1.58-2B-4T)\n");
}

/* Everything the writer references must live until gguf_writer_write. */
typedef bn_keep_list keep_list;

static void *keep(keep_list *k, size_t bytes) {
    void *p = bn_keep(k, bytes);
    if (!p) { fprintf(stderr, "convert: out of memory\n"); exit(1); }
    return p;
}

/* Writes a ternary matrix in layout `type` (src/model/gguf_copy.c); exits on error. */
static void add_ternary(gguf_writer *w, keep_list *k, const char *name, const bn_matrix *m, bn_tensor_type type) {
    if (bn_gguf_add_ternary(w, k, name, m, type) != BITNET_OK) {
        fprintf(stderr, "convert: %s\n", bitnet_last_error());
        exit(1);
    }
}

static int parse_type(const char *s, bn_tensor_type *t) {
    static const struct { const char *name; bn_tensor_type t; } types[] = {
        {"tq2_0", BN_TT_TQ2_0}, {"tq1_0", BN_TT_TQ1_0}, {"i2_s", BN_TT_I2_S}, {"f16", BN_TT_F16}, {"f32", BN_TT_F32}};
    for (size_t i = 0; i < sizeof types / sizeof types[0]; i++)
        if (!strcmp(s, types[i].name)) { *t = types[i].t; return 1; }
    return 0;
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
    bn_matrix m = {.type = BN_W_I2, .rows = rows, .cols = cols, .cols_padded = cp, .data = data, .scale = scale};
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

/* --vocab: a real vocabulary (e.g. Llama-3's tokenizer.model) instead of the
 * placeholder; it must have exactly the model's n tokens. Files without a chat
 * template (tiktoken) get BitNet-b1.58-2B-4T's. Returns 0, or 1 with a message. */
static int add_real_vocab(gguf_writer *w, const char *path, int n) {
    bn_tokenizer *tok = NULL;
    if (bn_tokenizer_load_file(path, &tok) != BITNET_OK) {
        fprintf(stderr, "convert: %s\n", bitnet_last_error());
        return 1;
    }
    int rc = 0;
    if (bn_tokenizer_n_vocab(tok) != n) {
        fprintf(stderr, "convert: %s has %d tokens but the model's vocabulary size is %d\n", path,
                bn_tokenizer_n_vocab(tok), n);
        rc = 1;
    } else if (bn_tokenizer_write_gguf(tok, w) != BITNET_OK) {
        fprintf(stderr, "convert: %s\n", bitnet_last_error());
        rc = 1;
    } else if (!bn_tokenizer_chat_template(tok)) {
        gguf_writer_set_str(w, "tokenizer.chat_template", bn_chat_template_bitnet_2b4t);
    }
    bn_tokenizer_free(tok);
    return rc;
}

static int write_synthetic(const preset *ps, bn_tensor_type type, const char *out, const char *vocab) {
    gguf_writer *w = gguf_writer_new();
    keep_list k = {0};
    const char *arch = "bitnet-b1.58";
    char name[96];
    const bn_hparams hp = {.dim = ps->dim, .ff = ps->ff, .n_layers = ps->layers, .n_heads = ps->heads,
                           .n_kv_heads = ps->kv_heads, .head_dim = ps->dim / ps->heads,
                           .rope_dim = ps->dim / ps->heads, .vocab = ps->vocab, .ctx_train = ps->ctx,
                           .norm_eps = 1e-5f, .rope_theta = ps->rope_theta};
    gguf_writer_set_str(w, "general.architecture", arch);
    gguf_writer_set_str(w, "general.name", ps->name);
    bn_gguf_set_hparams(w, arch, &hp);
    if (!vocab) add_synthetic_vocab(w, &k, ps->vocab);
    else if (add_real_vocab(w, vocab, ps->vocab)) {
        gguf_writer_free(w);
        for (int i = 0; i < k.n; i++) free(k.bufs[i]);
        free(k.bufs);
        return 1;
    }
    /* tied 8-bit embedding / classifier, as a Q8_0 head */
    add_random_q8_0(w, &k, "token_embd.weight", ps->vocab, ps->dim);
    add_const_f32(w, &k, "output_norm.weight", ps->dim, 1.0f);
    const bn_arch *a = bn_arch_by_name(arch);
    for (int l = 0; l < ps->layers; l++)
        for (int i = 0; i < BN_N_LAYER_ROLES; i++) { /* arch.h's tensors of a layer, in its order */
            const bn_role *r = &bn_layer_roles[i];
            if (!bn_role_present(a, r)) continue;
            snprintf(name, sizeof name, "blk.%d.%s.weight", l, r->gguf);
            if (r->is_matrix)
                add_random_ternary(w, &k, name, bn_hp_dim(&hp, r->rows), bn_hp_dim(&hp, r->cols), 0.02f, type);
            else
                add_const_f32(w, &k, name, bn_hp_dim(&hp, r->rows), 1.0f);
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
    const char *in = NULL, *out = NULL, *tokenizer = NULL, *synthetic = NULL, *vocab = NULL, *pos_type = NULL;
    bn_tensor_type type = BN_TT_I2_S, head_type = BN_TT_F32;
    preset custom = {"custom", 0, 0, 0, 0, 0, 0, 2048, 10000.0f};
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) { usage(stdout); return 0; }
        else if (!strcmp(argv[i], "-o") && i + 1 < argc) out = argv[++i];
        else if (!strcmp(argv[i], "--tokenizer") && i + 1 < argc) tokenizer = argv[++i];
        else if (!strcmp(argv[i], "--synthetic") && i + 1 < argc) synthetic = argv[++i];
        else if (!strcmp(argv[i], "--vocab") && i + 1 < argc) vocab = argv[++i];
        else if (!strcmp(argv[i], "--dim") && i + 1 < argc) custom.dim = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--layers") && i + 1 < argc) custom.layers = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--ff") && i + 1 < argc) custom.ff = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--heads") && i + 1 < argc) custom.heads = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--kv-heads") && i + 1 < argc) custom.kv_heads = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--vocab-size") && i + 1 < argc) custom.vocab = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--type") && i + 1 < argc) {
            if (!parse_type(argv[++i], &type)) { fprintf(stderr, "convert: unknown --type '%s' (tq2_0, tq1_0, i2_s, f16, f32)\n", argv[i]); return 2; }
        } else if ((!strcmp(argv[i], "--head-type") || !strcmp(argv[i], "--token-embedding-type") ||
                    !strcmp(argv[i], "--output-tensor-type")) && i + 1 < argc) { /* llama-quantize's names too */
            const char *h = argv[++i];
            if (!strcmp(h, "f32")) head_type = BN_TT_F32;
            else if (!strcmp(h, "f16")) head_type = BN_TT_F16;
            else if (!strcmp(h, "q8_0")) head_type = BN_TT_Q8_0;
            else { fprintf(stderr, "convert: unknown --head-type '%s' (f32, f16, q8_0)\n", h); return 2; }
        } else if (argv[i][0] == '-') { fprintf(stderr, "convert: unknown option '%s' (see --help)\n", argv[i]); return 2; }
        else if (!in) in = argv[i];
        else if (!out) out = argv[i]; /* llama-quantize's positional form: IN OUT TYPE */
        else if (!pos_type) pos_type = argv[i];
        else { fprintf(stderr, "convert: too many arguments: '%s' (convert IN OUT [TYPE], or IN -o OUT --type TYPE)\n", argv[i]); return 2; }
    }
    if (pos_type) {
        char lower[16];
        size_t k = 0;
        for (; pos_type[k] && k < sizeof lower - 1; k++) lower[k] = (char)(pos_type[k] | (pos_type[k] >= 'A' && pos_type[k] <= 'Z' ? 32 : 0));
        lower[k] = 0;
        if (!parse_type(lower, &type)) {
            fprintf(stderr, "convert: unknown type '%s' (TQ2_0, TQ1_0, I2_S, F16, F32)\n", pos_type);
            return 2;
        }
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
            return write_synthetic(&custom, type, out, vocab);
        }
        for (size_t i = 0; i < sizeof presets / sizeof presets[0]; i++)
            if (!strcmp(synthetic, presets[i].name)) return write_synthetic(&presets[i], type, out, vocab);
        fprintf(stderr, "convert: unknown preset '%s' (bitnet-b1.58-2B-4T, bitnet-700M, tiny)\n", synthetic);
        return 2;
    }
    if (!in || !out) { usage(stderr); return 2; }

    bitnet_model_params mp = bitnet_model_default_params();
    mp.tokenizer_path = tokenizer;
    bitnet_model *m = NULL;
    if (bitnet_model_load(in, &mp, &m) != BITNET_OK) { fprintf(stderr, "convert: %s\n", bitnet_last_error()); return 1; }
    bitnet_model_info info;
    bitnet_model_get_info(m, &info);
    bitnet_status st = bn_model_write_gguf(m, NULL, 0, type, head_type, out);
    if (st != BITNET_OK) fprintf(stderr, "convert: %s\n", bitnet_last_error());
    else fprintf(stderr, "convert: wrote %s (%s, linear layers %s)\n", out, info.arch, bn_type_get_traits(type)->name);
    bitnet_model_free(m);
    return st == BITNET_OK ? 0 : 1;
}
