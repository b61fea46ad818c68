/*
 * tokenizer_api.c - vocabulary files in and out (any format in, GGUF out) and
 * the public bitnet.h calls for special tokens, special-aware tokenizing and
 * the chat template.
 */
#include <ctype.h>
#include <errno.h>

#include "model/model.h"
#include "tokenizer/tokenizer_impl.h"

/* Tells the vocabulary files apart: GGUF by its magic, tokenizer.json by its
 * opening brace, a tiktoken rank file by its first line ("base64 rank"), else
 * a llama2.c tokenizer.bin (n_vocab entries; 0: all of them). */
bitnet_status bn_tokenizer_load_file_n(const char *path, int n_vocab, bn_tokenizer **out) {
    if (!out || !path) return bn_error(BITNET_ERR_ARG, "tokenizer: NULL argument");
    *out = NULL;
    FILE *fp = fopen(path, "rb");
    if (!fp) return bn_error(BITNET_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    char head[80];
    size_t got = fread(head, 1, sizeof head, fp);
    fclose(fp);
    if (got >= 4 && memcmp(head, "GGUF", 4) == 0) {
        bn_gguf_file *f;
        bitnet_status st = bn_gguf_open(path, &f);
        if (st != BITNET_OK) return st;
        st = bn_tokenizer_from_gguf(f, out);
        bn_gguf_close(f);
        return st;
    }
    size_t i = 0;
    while (i < got && isspace((unsigned char)head[i])) i++;
    if (i < got && head[i] == '{') return bn_tokenizer_from_hf_json(path, out);
    i = 0;
    while (i < got && (isalnum((unsigned char)head[i]) || head[i] == '+' || head[i] == '/' || head[i] == '=')) i++;
    if (i > 0 && i < got && head[i] == ' ' && i + 1 < got && head[i + 1] >= '0' && head[i + 1] <= '9')
        return bn_tokenizer_from_tiktoken(path, out);
    return bn_tokenizer_from_llama2c(path, n_vocab, out);
}

bitnet_status bn_tokenizer_load_file(const char *path, bn_tokenizer **out) { return bn_tokenizer_load_file_n(path, 0, out); }

/* ---- GGUF output ------------------------------------------------------------ */

bitnet_status bn_tokenizer_write_gguf(const bn_tokenizer *t, bn_gguf_writer *w) {
    const int n = t->n_vocab;
    const char **texts = malloc((size_t)n * sizeof *texts);
    uint64_t *lens = malloc((size_t)n * sizeof *lens);
    int32_t *types = malloc((size_t)n * sizeof *types);
    /* SPM: ' ' back to ▁ (3 bytes), so at most 3x the pool */
    char *spm = t->kind == BN_TOK_SPM ? malloc(3 * (t->off[n - 1] + (size_t)t->len[n - 1]) + 1) : NULL;
    if (!texts || !lens || !types || (t->kind == BN_TOK_SPM && !spm)) {
        free(texts);
        free(lens);
        free(types);
        free(spm);
        return bn_error(BITNET_ERR_NOMEM, "tokenizer: out of memory writing the vocabulary");
    }
    size_t o = 0;
    for (int i = 0; i < n; i++) {
        const char *s = t->pool + t->off[i];
        types[i] = t->type[i];
        if (!spm) {
            texts[i] = s;
            lens[i] = (uint64_t)t->len[i];
            continue;
        }
        texts[i] = spm + o;
        for (int j = 0; j < t->len[i]; j++) {
            if (s[j] == ' ') memcpy(spm + o, "\xe2\x96\x81", 3), o += 3;
            else spm[o++] = s[j];
        }
        lens[i] = (uint64_t)(spm + o - texts[i]);
    }
    bn_gguf_writer_set_str(w, "tokenizer.ggml.model", t->kind == BN_TOK_SPM ? "llama" : "gpt2");
    bn_gguf_writer_set_arr_str(w, "tokenizer.ggml.tokens", texts, lens, (uint64_t)n);
    if (t->kind == BN_TOK_SPM) bn_gguf_writer_set_arr_data(w, "tokenizer.ggml.scores", BN_GGUF_TYPE_FLOAT32, t->score, (uint64_t)n);
    bn_gguf_writer_set_arr_data(w, "tokenizer.ggml.token_type", BN_GGUF_TYPE_INT32, types, (uint64_t)n);
    free(texts);
    free(lens);
    free(types);
    free(spm);
    bitnet_status st = t->kind == BN_TOK_BPE ? bn_bpe_write_gguf(t, w) : BITNET_OK;
    if (t->bos >= 0) bn_gguf_writer_set_u32(w, "tokenizer.ggml.bos_token_id", (uint32_t)t->bos);
    if (t->eos >= 0) bn_gguf_writer_set_u32(w, "tokenizer.ggml.eos_token_id", (uint32_t)t->eos);
    if (t->unk >= 0) bn_gguf_writer_set_u32(w, "tokenizer.ggml.unknown_token_id", (uint32_t)t->unk);
    if (t->eot >= 0) bn_gguf_writer_set_u32(w, "tokenizer.ggml.eot_token_id", (uint32_t)t->eot);
    bn_gguf_writer_set_bool(w, "tokenizer.ggml.add_bos_token", t->add_bos != 0);
    if (t->kind == BN_TOK_SPM) bn_gguf_writer_set_bool(w, "tokenizer.ggml.add_space_prefix", t->add_space_prefix != 0);
    if (t->chat_template) bn_gguf_writer_set_str(w, "tokenizer.chat_template", t->chat_template);
    return st;
}

/* ---- public API ---------------------------------------------------------------- */

int bitnet_tokenize_ex(const bitnet_model *m, const char *text, size_t len, int add_bos, int parse_special,
                       bitnet_token *tokens, int max_tokens) {
    if (!m || (!text && len) || (!tokens && max_tokens > 0) || max_tokens < 0)
        return bn_error(BITNET_ERR_ARG, "tokenize: bad argument");
    return bn_tokenizer_encode_ex(m->tok, text, len, add_bos, parse_special, tokens, max_tokens);
}

int bitnet_tokenize_chat(const bitnet_model *m, const char *text, size_t len, const unsigned char *plain, int add_bos,
                         bitnet_token *tokens, int max_tokens) {
    if (!m || (!text && len) || (!tokens && max_tokens > 0) || max_tokens < 0)
        return bn_error(BITNET_ERR_ARG, "tokenize: bad argument");
    return bn_tokenizer_encode_plain(m->tok, text, len, plain, add_bos, 1, tokens, max_tokens);
}

bitnet_token bitnet_token_eot(const bitnet_model *m) { return bn_tokenizer_eot(m->tok); }
int bitnet_token_is_eog(const bitnet_model *m, bitnet_token token) { return bn_tokenizer_is_eog(m->tok, token); }
const char *bitnet_model_chat_template(const bitnet_model *m) { return bn_tokenizer_chat_template(m->tok); }
