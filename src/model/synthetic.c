/* synthetic.c - random bitnet-b1.58 models with the shapes of real ones
 * (convert --synthetic; see model_writer.h), to measure speed without
 * downloading a model. The weights come from a fixed xorshift stream, so the
 * same shape always gives the same file. */
#include "model/model_writer.h"

#include "kernels/kernels.h"
#include "model/gguf_copy.h"
#include "tokenizer/chat.h"

typedef struct {
    bn_gguf_writer *w;
    bn_keep_list keep; /* everything w references until bn_gguf_writer_write */
    uint64_t rng;
    bitnet_status st;  /* first error; later adds do nothing */
} synth;

static uint64_t rng_next(synth *s) { return bn_xorshift64(&s->rng); }

static void *keep(synth *s, size_t bytes) {
    void *p = bn_keep(&s->keep, bytes);
    if (!p && s->st == BITNET_OK) s->st = bn_error(BITNET_ERR_NOMEM, "out of memory for a synthetic model");
    return p;
}

/* Random I2_S tensor: codes uniform over {-1, 0, +1}, scale after the data. */
static void add_random_i2s(synth *s, const char *name, int rows, int cols, float scale) {
    static uint8_t table[81];
    for (int i = 0; i < 81; i++) table[i] = (uint8_t)((i % 3) << 6 | (i / 3 % 3) << 4 | (i / 9 % 3) << 2 | (i / 27 % 3));
    uint64_t ne[4] = {(uint64_t)cols, (uint64_t)rows, 1, 1};
    uint64_t nbytes = bn_tensor_nbytes(BN_TT_I2_S, ne), data = (uint64_t)rows * cols / 4;
    uint8_t *out = keep(s, nbytes);
    if (!out) return;
    for (uint64_t i = 0; i < data; i += 8) {
        uint64_t r = rng_next(s);
        for (int j = 0; j < 8 && i + j < data; j++, r >>= 8) out[i + j] = table[(r & 0xff) % 81];
    }
    memcpy(out + data, &scale, sizeof scale);
    bn_gguf_writer_add_tensor(s->w, name, 2, ne, BN_TT_I2_S, out, nbytes);
}

/* Random ternary tensor in any layout: an I2 matrix that bn_gguf_add_ternary
 * writes (with a companion .scale where the layout needs it). */
static void add_random_ternary(synth *s, const char *name, int rows, int cols, float scale, bn_tensor_type type) {
    if (type == BN_TT_I2_S) {
        add_random_i2s(s, name, rows, cols, scale);
        return;
    }
    const int cp = bn_i2_cols_padded(cols);
    uint8_t *data = keep(s, (size_t)rows * cp / 4);
    int8_t *t = keep(s, (size_t)cols);
    if (!data || !t) return;
    for (int r = 0; r < rows; r++) {
        for (int c = 0; c < cols; c++) t[c] = (int8_t)((int)(rng_next(s) % 3) - 1);
        bn_i2_pack(t, 1, cols, data + (size_t)r * cp / 4);
    }
    bn_matrix m = {.type = BN_W_I2, .rows = rows, .cols = cols, .cols_padded = cp, .data = data, .scale = scale};
    bitnet_status st = bn_gguf_add_ternary(s->w, &s->keep, name, &m, type);
    if (st != BITNET_OK && s->st == BITNET_OK) s->st = st;
}

static void add_random_q8_0(synth *s, const char *name, int rows, int cols) {
    uint64_t ne[4] = {(uint64_t)cols, (uint64_t)rows, 1, 1};
    uint64_t nb = (uint64_t)rows * cols / BN_Q8_BLOCK;
    bn_block_q8_0 *b = keep(s, nb * sizeof *b);
    if (!b) return;
    uint16_t d = bn_fp32_to_fp16(0.02f / 127.0f);
    for (uint64_t i = 0; i < nb; i++) {
        b[i].d = d;
        for (int j = 0; j < BN_Q8_BLOCK; j += 8) {
            uint64_t r = rng_next(s);
            memcpy(b[i].qs + j, &r, 8);
        }
    }
    bn_gguf_writer_add_tensor(s->w, name, 2, ne, BN_TT_Q8_0, b, nb * sizeof *b);
}

static void add_const_f32(synth *s, const char *name, int n, float v) {
    float *x = keep(s, (size_t)n * sizeof(float));
    if (!x) return;
    for (int i = 0; i < n; i++) x[i] = v;
    uint64_t ne = (uint64_t)n;
    bn_gguf_writer_add_tensor(s->w, name, 1, &ne, BN_TT_F32, x, (uint64_t)n * sizeof(float));
}

/* A placeholder SentencePiece vocabulary of `n` tokens: <unk> <s> </s>, the 256
 * byte tokens, then filler pieces, so that any text tokenizes (byte fallback)
 * and any id decodes. */
static void add_placeholder_vocab(synth *s, int n) {
    char **texts = keep(s, (size_t)n * sizeof(char *));
    float *scores = keep(s, (size_t)n * sizeof(float));
    int32_t *types = keep(s, (size_t)n * sizeof(int32_t));
    char *pool = keep(s, (size_t)n * 24);
    if (!texts || !scores || !types || !pool) return;
    for (int i = 0; i < n; i++) {
        char *t = pool + (size_t)i * 24;
        if (i == 0) strcpy(t, "<unk>"), types[i] = 2;
        else if (i == 1) strcpy(t, "<s>"), types[i] = 3;
        else if (i == 2) strcpy(t, "</s>"), types[i] = 3;
        else if (i < 259) snprintf(t, 24, "<0x%02X>", i - 3), types[i] = 6;
        else snprintf(t, 24, "\xe2\x96\x81t%d", i), types[i] = 1;
        texts[i] = t;
        scores[i] = -(float)i;
    }
    bn_gguf_writer_set_str(s->w, "tokenizer.ggml.model", "llama");
    bn_gguf_writer_set_arr_str(s->w, "tokenizer.ggml.tokens", (const char *const *)texts, NULL, (uint64_t)n);
    bn_gguf_writer_set_arr_data(s->w, "tokenizer.ggml.scores", BN_GGUF_TYPE_FLOAT32, scores, (uint64_t)n);
    bn_gguf_writer_set_arr_data(s->w, "tokenizer.ggml.token_type", BN_GGUF_TYPE_INT32, types, (uint64_t)n);
    bn_gguf_writer_set_u32(s->w, "tokenizer.ggml.bos_token_id", 1);
    bn_gguf_writer_set_u32(s->w, "tokenizer.ggml.eos_token_id", 2);
    bn_gguf_writer_set_u32(s->w, "tokenizer.ggml.unknown_token_id", 0);
}

/* A real vocabulary (e.g. Llama-3's tokenizer.model) of exactly n tokens.
 * Files without a chat template (tiktoken) get BitNet-b1.58-2B-4T's. */
static bitnet_status add_real_vocab(bn_gguf_writer *w, const char *path, int n) {
    bn_tokenizer *tok = NULL;
    bitnet_status st = bn_tokenizer_load_file(path, &tok);
    if (st != BITNET_OK) return st;
    if (bn_tokenizer_n_vocab(tok) != n)
        st = bn_error(BITNET_ERR_ARG, "%s has %d tokens but the model's vocabulary size is %d", path,
                      bn_tokenizer_n_vocab(tok), n);
    else if ((st = bn_tokenizer_write_gguf(tok, w)) == BITNET_OK && !bn_tokenizer_chat_template(tok))
        bn_gguf_writer_set_str(w, "tokenizer.chat_template", bn_chat_template_bitnet_2b4t);
    bn_tokenizer_free(tok);
    return st;
}

int bn_synthetic_shape_ok(const bn_synthetic_shape *p) {
    return p->dim > 0 && p->n_layers > 0 && p->ff > 0 && p->n_heads > 0 && p->n_kv_heads > 0 && p->n_vocab >= 260 &&
           p->n_ctx_train > 0 && p->dim % p->n_heads == 0 && p->n_heads % p->n_kv_heads == 0 &&
           p->dim % BN_I2_BLOCK == 0 && p->ff % BN_I2_BLOCK == 0 && (p->dim / p->n_heads) % 2 == 0;
}

bitnet_status bn_write_synthetic(const bn_synthetic_shape *p, const char *linear_type, const char *vocab_path,
                                 const char *path) {
    if (!p || !path) return bn_error(BITNET_ERR_ARG, "bn_write_synthetic: NULL argument");
    if (!bn_synthetic_shape_ok(p))
        return bn_error(BITNET_ERR_ARG, "synthetic %s: dim and ff must be multiples of %d, heads divide dim into an "
                                        "even head size, kv-heads divide heads, the vocabulary has >= 260 tokens",
                        p->name ? p->name : "model", BN_I2_BLOCK);
    bn_tensor_type type = BN_TT_I2_S;
    if (linear_type && !bn_layout_by_name(linear_type, 0, &type))
        return bn_error(BITNET_ERR_ARG, "unknown linear layout '%s' (i2_s, tq2_0, tq1_0, f16, f32)", linear_type);
    synth s = {.w = bn_gguf_writer_new(), .keep = {0}, .rng = 0x853c49e6748fea9bull, .st = BITNET_OK};
    if (!s.w) return bn_error(BITNET_ERR_NOMEM, "out of memory writing %s", path);
    const char *arch = "bitnet-b1.58";
    const bn_hparams hp = {.dim = p->dim, .ff = p->ff, .n_layers = p->n_layers, .n_heads = p->n_heads,
                           .n_kv_heads = p->n_kv_heads, .head_dim = p->dim / p->n_heads,
                           .rope_dim = p->dim / p->n_heads, .vocab = p->n_vocab, .ctx_train = p->n_ctx_train,
                           .norm_eps = 1e-5f, .rope_theta = p->rope_theta};
    bn_gguf_writer_set_str(s.w, "general.architecture", arch);
    bn_gguf_writer_set_str(s.w, "general.name", p->name ? p->name : "synthetic");
    bn_gguf_set_hparams(s.w, arch, &hp);
    if (!vocab_path) add_placeholder_vocab(&s, p->n_vocab);
    else s.st = add_real_vocab(s.w, vocab_path, p->n_vocab);
    /* tied 8-bit embedding / classifier, as a Q8_0 head */
    if (s.st == BITNET_OK) add_random_q8_0(&s, "token_embd.weight", p->n_vocab, p->dim);
    if (s.st == BITNET_OK) add_const_f32(&s, "output_norm.weight", p->dim, 1.0f);
    const bn_arch *a = bn_arch_by_name(arch);
    char name[96];
    for (int l = 0; l < p->n_layers && s.st == BITNET_OK; l++)
        for (int i = 0; i < BN_N_LAYER_ROLES && s.st == BITNET_OK; i++) { /* arch.h's tensors of a layer, in order */
            const bn_role *r = &bn_layer_roles[i];
            if (!bn_role_present(a, r)) continue;
            snprintf(name, sizeof name, "blk.%d.%s.weight", l, r->gguf);
            if (r->is_matrix)
                add_random_ternary(&s, name, bn_hp_dim(&hp, r->rows), bn_hp_dim(&hp, r->cols), 0.02f, type);
            else
                add_const_f32(&s, name, bn_hp_dim(&hp, r->rows), 1.0f);
        }
    bn_keep_report(&s.keep);
    if (s.st == BITNET_OK) s.st = bn_gguf_writer_write(s.w, path);
    bn_gguf_writer_free(s.w);
    bn_keep_free(&s.keep);
    return s.st;
}
