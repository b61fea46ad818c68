/* seeds.c - writes tiny valid model files for the fuzz seed corpora
 * (fuzz/make-corpus.sh). Small inputs let libFuzzer reach the deep checks
 * (shapes, types, the forward pass) within a few mutations; the real models
 * are too big to mutate quickly. Every file here loads and evaluates.
 *
 *   seeds OUTDIR    writes OUTDIR/llama-f32.gguf, llama-f16.gguf, llama-q8_0.gguf,
 *                   tiny8.ak42.bin, tiny256.ak42.bin, tiny.tok.bin, bpe.gguf (a
 *                   GPT-2 style vocabulary), llama-f32.safetensors and
 *                   ak42-tiny8.safetensors
 */
#include <sys/stat.h>

#include "formats/gguf.h"
#include "kernels/kernels.h"
#include "model/model.h"
#include "formats/safetensors.h"
#include "tokenizer/tokenizer.h"

#define VOCAB 8
static const char *const k_pieces[VOCAB] = {"<unk>", "<s>", "</s>", " a", "b", " ", "ab", "c"};

static uint64_t g_rng = 0x9e3779b97f4a7c15ull;
static uint32_t rnd(void) { return (uint32_t)(bn_xorshift64(&g_rng) >> 32); }
static float rnd_f(void) { return (float)(rnd() % 2001) / 1000.0f - 1.0f; } /* [-1, 1] */

/* The writer references tensor data until it writes: keep it all here. */
static void *g_keep[256];
static int g_n_keep;
static void *keep(size_t n) {
    if (g_n_keep == 256) abort();
    void *p = calloc(1, n ? n : 1);
    if (!p) abort();
    return g_keep[g_n_keep++] = p;
}
static void free_kept(void) {
    while (g_n_keep > 0) free(g_keep[--g_n_keep]);
}

static void add_f32(bn_gguf_writer *w, const char *name, int ne0, int ne1, float fill) {
    uint64_t ne[2] = {(uint64_t)ne0, (uint64_t)ne1};
    float *d = keep((size_t)ne0 * ne1 * sizeof(float));
    for (int i = 0; i < ne0 * ne1; i++) d[i] = fill != 0.0f ? fill : 0.1f * rnd_f();
    bn_gguf_writer_add_tensor(w, name, ne1 > 1 ? 2 : 1, ne, BN_TT_F32, d, (uint64_t)ne0 * ne1 * 4);
}

static void add_matrix(bn_gguf_writer *w, const char *name, int rows, int cols, bn_tensor_type type) {
    uint64_t ne[2] = {(uint64_t)cols, (uint64_t)rows};
    uint64_t n = (uint64_t)rows * cols;
    if (type == BN_TT_F32) {
        add_f32(w, name, cols, rows, 0.0f);
    } else if (type == BN_TT_F16) {
        uint16_t *d = keep(n * 2);
        for (uint64_t i = 0; i < n; i++) d[i] = bn_fp32_to_fp16(0.1f * rnd_f());
        bn_gguf_writer_add_tensor(w, name, 2, ne, BN_TT_F16, d, n * 2);
    } else {
        bn_block_q8_0 *b = keep(n / BN_Q8_BLOCK * sizeof *b);
        for (uint64_t i = 0; i < n / BN_Q8_BLOCK; i++) {
            b[i].d = bn_fp32_to_fp16(0.001f);
            for (int j = 0; j < BN_Q8_BLOCK; j++) b[i].qs[j] = (int8_t)(rnd() % 255 - 127);
        }
        bn_gguf_writer_add_tensor(w, name, 2, ne, BN_TT_Q8_0, b, n / BN_Q8_BLOCK * sizeof *b);
    }
}

static int write_llama(const char *dir, const char *file, int dim, bn_tensor_type type, int tied) {
    const int ff = 2 * dim, heads = 2, kv_heads = 1, kv_dim = dim / heads * kv_heads;
    bn_gguf_writer *w = bn_gguf_writer_new();
    bn_gguf_writer_set_str(w, "general.architecture", "llama");
    bn_gguf_writer_set_str(w, "general.name", file);
    bn_gguf_writer_set_u32(w, "llama.context_length", 16);
    bn_gguf_writer_set_u32(w, "llama.embedding_length", (uint32_t)dim);
    bn_gguf_writer_set_u32(w, "llama.feed_forward_length", (uint32_t)ff);
    bn_gguf_writer_set_u32(w, "llama.block_count", 1);
    bn_gguf_writer_set_u32(w, "llama.attention.head_count", heads);
    bn_gguf_writer_set_u32(w, "llama.attention.head_count_kv", kv_heads);
    bn_gguf_writer_set_u32(w, "llama.rope.dimension_count", (uint32_t)(dim / heads));
    bn_gguf_writer_set_f32(w, "llama.attention.layer_norm_rms_epsilon", 1e-5f);
    bn_gguf_writer_set_f32(w, "llama.rope.freq_base", 10000.0f);
    float scores[VOCAB];
    int32_t types[VOCAB];
    for (int i = 0; i < VOCAB; i++) {
        scores[i] = -(float)i;
        types[i] = i == 0 ? BN_TOKEN_UNKNOWN : i < 3 ? BN_TOKEN_CONTROL : BN_TOKEN_NORMAL;
    }
    bn_gguf_writer_set_str(w, "tokenizer.ggml.model", "llama");
    bn_gguf_writer_set_arr_str(w, "tokenizer.ggml.tokens", k_pieces, NULL, VOCAB);
    bn_gguf_writer_set_arr_data(w, "tokenizer.ggml.scores", BN_GGUF_TYPE_FLOAT32, scores, VOCAB);
    bn_gguf_writer_set_arr_data(w, "tokenizer.ggml.token_type", BN_GGUF_TYPE_INT32, types, VOCAB);
    bn_gguf_writer_set_u32(w, "tokenizer.ggml.bos_token_id", 1);
    bn_gguf_writer_set_u32(w, "tokenizer.ggml.eos_token_id", 2);
    add_matrix(w, "token_embd.weight", VOCAB, dim, type == BN_TT_Q8_0 ? BN_TT_Q8_0 : BN_TT_F32);
    add_f32(w, "output_norm.weight", dim, 1, 1.0f);
    if (!tied) add_matrix(w, "output.weight", VOCAB, dim, type);
    add_f32(w, "blk.0.attn_norm.weight", dim, 1, 1.0f);
    add_f32(w, "blk.0.ffn_norm.weight", dim, 1, 1.0f);
    add_matrix(w, "blk.0.attn_q.weight", dim, dim, type);
    add_matrix(w, "blk.0.attn_k.weight", kv_dim, dim, type);
    add_matrix(w, "blk.0.attn_v.weight", kv_dim, dim, type);
    add_matrix(w, "blk.0.attn_output.weight", dim, dim, type);
    add_matrix(w, "blk.0.ffn_gate.weight", ff, dim, type);
    add_matrix(w, "blk.0.ffn_up.weight", ff, dim, type);
    add_matrix(w, "blk.0.ffn_down.weight", dim, ff, type);
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, file);
    bitnet_status st = bn_gguf_writer_write(w, path);
    if (st != BITNET_OK) fprintf(stderr, "seeds: %s\n", bitnet_last_error());
    bn_gguf_writer_free(w);
    free_kept();
    return st == BITNET_OK ? 0 : 1;
}

static void put32(FILE *f, uint32_t v) {
    uint8_t b[4] = {(uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16), (uint8_t)(v >> 24)};
    fwrite(b, 1, 4, f);
}
static void putf(FILE *f, float x) {
    uint32_t v;
    memcpy(&v, &x, 4);
    put32(f, v);
}

/* ak42 (docs/ak42.md): 256-byte header, final norm, embeddings, then each of
 * the 7 ternary tensors for every layer: fp32 scale + 2-bit MSB-first codes. */
static int write_ak42(const char *dir, const char *file, int dim, int layers) {
    const int hidden = dim, heads = 2, kv_heads = 1, kv_dim = dim / heads * kv_heads;
    const int shape[7][2] = {{dim, dim}, {kv_dim, dim}, {kv_dim, dim}, {dim, dim},
                             {hidden, dim}, {dim, hidden}, {hidden, dim}};
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, file);
    FILE *f = fopen(path, "wb");
    if (!f) return 1;
    const uint32_t hdr[9] = {0x616b3432u, 1, (uint32_t)dim, (uint32_t)hidden, (uint32_t)layers, heads, kv_heads, VOCAB, 16};
    for (int i = 0; i < 9; i++) put32(f, hdr[i]);
    fputc(1, f); /* shared classifier */
    for (int i = 37; i < 256; i++) fputc(0, f);
    for (int i = 0; i < dim; i++) putf(f, 1.0f);
    for (int i = 0; i < VOCAB * dim; i++) putf(f, 0.1f * rnd_f());
    static const uint8_t codes[3] = {0, 1, 3}; /* 0, +1, -1 */
    for (int t = 0; t < 7; t++)
        for (int l = 0; l < layers; l++) {
            putf(f, 0.05f);
            for (int i = 0; i < shape[t][0] * shape[t][1] / 4; i++) {
                uint8_t b = 0;
                for (int j = 0; j < 4; j++) b = (uint8_t)(b << 2 | codes[rnd() % 3]);
                fputc(b, f);
            }
        }
    return fclose(f) != 0;
}

/* llama2.c tokenizer.bin with the same pieces. */
static int write_tok(const char *dir, const char *file) {
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, file);
    FILE *f = fopen(path, "wb");
    if (!f) return 1;
    put32(f, 8);
    for (int i = 0; i < VOCAB; i++) {
        putf(f, -(float)i);
        put32(f, (uint32_t)strlen(k_pieces[i]));
        fputs(k_pieces[i], f);
    }
    return fclose(f) != 0;
}

/* UTF-8 of GPT-2's printable stand-in for byte b (its bytes_to_unicode). */
static int gpt2_char(int b, char *out) {
    int cp = b;
    if (!((b >= '!' && b <= '~') || (b >= 0xa1 && b <= 0xac) || (b >= 0xae && b <= 0xff))) {
        int n = 0; /* the i-th byte without a printable form maps to U+0100 + i */
        for (int c = 0; c < b; c++) n += !((c >= '!' && c <= '~') || (c >= 0xa1 && c <= 0xac) || (c >= 0xae && c <= 0xff));
        cp = 0x100 + n;
    }
    if (cp < 0x80) {
        out[0] = (char)cp;
        return 1;
    }
    out[0] = (char)(0xc0 | cp >> 6);
    out[1] = (char)(0x80 | (cp & 0x3f));
    return 2;
}

/* A byte-level BPE vocabulary ("gpt2" model, gpt-2 pre-tokenizer): the 256
 * byte tokens, a few merges, and <|endoftext|>. */
static int write_bpe(const char *dir, const char *file) {
    static const char *merges[] = {"h e", "l l", "\xc4\xa0 t", "he ll", "t h"};
    static const char *merged[] = {"he", "ll", "\xc4\xa0t", "hell", "th"};
    char *tok[256 + 5 + 1];
    uint64_t len[256 + 5 + 1];
    int32_t types[256 + 5 + 1];
    char bytes[256][2];
    int n = 0;
    for (int b = 0; b < 256; b++, n++) {
        len[n] = (uint64_t)gpt2_char(b, bytes[b]);
        tok[n] = bytes[b];
        types[n] = BN_TOKEN_NORMAL;
    }
    for (int i = 0; i < 5; i++, n++) {
        tok[n] = (char *)merged[i];
        len[n] = strlen(merged[i]);
        types[n] = BN_TOKEN_NORMAL;
    }
    tok[n] = "<|endoftext|>";
    len[n] = strlen(tok[n]);
    types[n++] = BN_TOKEN_CONTROL;
    bn_gguf_writer *w = bn_gguf_writer_new();
    bn_gguf_writer_set_str(w, "tokenizer.ggml.model", "gpt2");
    bn_gguf_writer_set_str(w, "tokenizer.ggml.pre", "gpt-2");
    bn_gguf_writer_set_arr_str(w, "tokenizer.ggml.tokens", (const char *const *)tok, len, (uint64_t)n);
    bn_gguf_writer_set_arr_data(w, "tokenizer.ggml.token_type", BN_GGUF_TYPE_INT32, types, (uint64_t)n);
    bn_gguf_writer_set_arr_str(w, "tokenizer.ggml.merges", merges, NULL, 5);
    bn_gguf_writer_set_u32(w, "tokenizer.ggml.bos_token_id", (uint32_t)n - 1);
    bn_gguf_writer_set_u32(w, "tokenizer.ggml.eos_token_id", (uint32_t)n - 1);
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, file);
    bitnet_status st = bn_gguf_writer_write(w, path);
    if (st != BITNET_OK) fprintf(stderr, "seeds: %s\n", bitnet_last_error());
    bn_gguf_writer_free(w);
    return st != BITNET_OK;
}

/* Loads a model written above and writes it as safetensors (config embedded). */
static int write_safetensors(const char *dir, const char *in, const char *tok, const char *out) {
    char ip[4096], tp[4096], op[4096];
    snprintf(ip, sizeof ip, "%s/%s", dir, in);
    snprintf(tp, sizeof tp, "%s/%s", dir, tok ? tok : "");
    snprintf(op, sizeof op, "%s/%s", dir, out);
    bitnet_model_params p = bitnet_model_default_params();
    p.tokenizer_path = tok ? tp : NULL;
    bitnet_model *m = NULL;
    bitnet_status st = bitnet_model_load(ip, &p, &m);
    if (st == BITNET_OK) st = bn_safetensors_write_model(m, op);
    if (st != BITNET_OK) fprintf(stderr, "seeds: %s\n", bitnet_last_error());
    bitnet_model_free(m);
    return st != BITNET_OK;
}

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: seeds OUTDIR\n");
        return 2;
    }
    const char *dir = argv[1];
    mkdir(dir, 0755);
    int bad = write_llama(dir, "llama-f32.gguf", 8, BN_TT_F32, 0);
    bad |= write_llama(dir, "llama-f16.gguf", 8, BN_TT_F16, 1);
    bad |= write_llama(dir, "llama-q8_0.gguf", 32, BN_TT_Q8_0, 0);
    bad |= write_ak42(dir, "tiny8.ak42.bin", 8, 2);
    bad |= write_ak42(dir, "tiny256.ak42.bin", 256, 1);
    bad |= write_tok(dir, "tiny.tok.bin");
    bad |= write_bpe(dir, "bpe.gguf");
    bad |= write_safetensors(dir, "llama-f32.gguf", NULL, "llama-f32.safetensors");
    bad |= write_safetensors(dir, "tiny8.ak42.bin", "tiny.tok.bin", "ak42-tiny8.safetensors");
    return bad;
}
