/*
 * tokenizer.h - the tokenizers, as llama.cpp implements them (docs/tokenizer.md):
 *  - SentencePiece-style (scores + byte fallback; tokenizer.ggml.model "llama"),
 *    from GGUF metadata or a llama2.c `tokenizer.bin` (tokenizer.c);
 *  - byte-level BPE (tokenizer.ggml.model "gpt2": GPT-2 and Llama-3
 *    pre-tokenizers), from GGUF metadata or a tiktoken rank file (tokenizer_bpe.c).
 *
 * SentencePiece pieces are stored with U+2581 ("▁") already turned into ' ' so
 * that GGUF and llama2.c vocabularies behave alike; BPE pieces as in GGUF.
 */
#ifndef BN_TOKENIZER_H
#define BN_TOKENIZER_H

#include <stdint.h>

#include "common.h"

struct bn_gguf_file;

typedef enum {
    BN_TOKEN_NORMAL = 1,       /* as tokenizer.ggml.token_type */
    BN_TOKEN_UNKNOWN = 2,
    BN_TOKEN_CONTROL = 3,
    BN_TOKEN_USER_DEFINED = 4,
    BN_TOKEN_UNUSED = 5,
    BN_TOKEN_BYTE = 6
} bn_token_type;

typedef enum {
    BN_TOK_SPM = 0, /* SentencePiece-style */
    BN_TOK_BPE = 1  /* byte-level BPE      */
} bn_tokenizer_kind;

typedef struct bn_tokenizer bn_tokenizer;
struct bn_gguf_writer;

/* From GGUF tokenizer.ggml.* metadata, dispatching on tokenizer.ggml.model:
 * "llama" (tokens, scores, token_type, special ids, add_bos_token,
 * add_space_prefix) or "gpt2" (tokens, token_type, merges, pre, special ids).
 * Both keep tokenizer.chat_template. Errors name f->path and the key. */
bitnet_status bn_tokenizer_from_gguf(const struct bn_gguf_file *f, bn_tokenizer **out);
/* From a tiktoken rank file (one "base64-token rank" per line), as Llama-3
 * ships it: the 128000 ranks plus Llama-3's 256 special tokens, the Llama-3
 * pre-tokenizer and merges derived from the ranks. */
bitnet_status bn_tokenizer_from_tiktoken(const char *path, bn_tokenizer **out);
bitnet_status bn_tokenizer_from_tiktoken_memory(const void *data, uint64_t size, const char *name,
                                               bn_tokenizer **out);
/* From a Hugging Face tokenizer.json (byte-level BPE with Llama-3's or
 * GPT-2's pre-tokenizer) and the tokenizer_config.json beside it, as
 * convert_hf_to_gguf.py would write them into GGUF (tokenizer_hf.c). */
bitnet_status bn_tokenizer_from_hf_json(const char *path, bn_tokenizer **out);
/* The same over a tokenizer.json in memory, without the files beside it (fuzzing). */
bitnet_status bn_tokenizer_from_hf_json_memory(const char *json, size_t len, const char *name, bn_tokenizer **out);
/* Any vocabulary file: GGUF (model or vocab-only), tokenizer.json, tiktoken
 * rank file or llama2.c tokenizer.bin (all of its entries), told apart by
 * their content. */
bitnet_status bn_tokenizer_load_file(const char *path, bn_tokenizer **out);
/* The same, reading the first n_vocab entries of a llama2.c tokenizer.bin (the
 * file has no count: the model's vocabulary size says how many). */
bitnet_status bn_tokenizer_load_file_n(const char *path, int n_vocab, bn_tokenizer **out);
/* From a llama2.c tokenizer.bin (int32 max_token_length, then per token: f32 score,
 * int32 len, bytes). Special ids: 0 unk, 1 BOS, 2 EOS; <0xXX> pieces are byte tokens.
 * n_vocab 0 reads every entry of the file. */
bitnet_status bn_tokenizer_from_llama2c(const char *path, int n_vocab, bn_tokenizer **out);
/* Same over a buffer (fuzzing). */
bitnet_status bn_tokenizer_from_llama2c_memory(const void *data, uint64_t size, const char *name,
                                              int n_vocab, bn_tokenizer **out);
void bn_tokenizer_free(bn_tokenizer *t);

bn_tokenizer_kind bn_tokenizer_get_kind(const bn_tokenizer *t);
int bn_tokenizer_n_vocab(const bn_tokenizer *t);
int32_t bn_tokenizer_bos(const bn_tokenizer *t);
int32_t bn_tokenizer_eos(const bn_tokenizer *t);
/* End-of-turn token (tokenizer.ggml.eot_token_id, else "<|eot_id|>" and the
 * other texts llama.cpp recognises), or -1. */
int32_t bn_tokenizer_eot(const bn_tokenizer *t);
/* Whether `token` ends a generation: EOS, EOT, EOM and the end-of-text /
 * end-of-turn tokens llama.cpp lists (its special_eog_ids). */
int bn_tokenizer_is_eog(const bn_tokenizer *t, int32_t token);
/* tokenizer.chat_template (NUL-terminated), or NULL. */
const char *bn_tokenizer_chat_template(const bn_tokenizer *t);
/* Token id of a piece given as stored (see bn_tokenizer_get_entry), or -1. */
int32_t bn_tokenizer_find(const bn_tokenizer *t, const char *text, size_t len);
/* tokenizer.ggml.add_bos_token (default 1; 1 for llama2.c files): whether callers
 * should pass add_bos for this vocabulary. */
int bn_tokenizer_add_bos(const bn_tokenizer *t);

/* Encodes `len` bytes of UTF-8 `text`. With add_bos the BOS id comes first.
 * A space is prefixed to the text (SentencePiece's add_dummy_prefix), as
 * llama2.c and llama.cpp do for llama vocabularies. Returns the number of tokens
 * or BITNET_ERR_ARG if more than max_tokens would be needed. */
int bn_tokenizer_encode(const bn_tokenizer *t, const char *text, uint64_t len, int add_bos,
                        int32_t *out, int max_tokens);
/* The same with llama.cpp's special-token handling: the text of USER_DEFINED
 * tokens always becomes that token, the text of CONTROL / UNKNOWN tokens
 * ("<|eot_id|>", "<s>") only with parse_special, longest first; the rest is
 * encoded piece by piece (SPM puts its dummy-prefix space before each piece
 * that follows a special token). BPE vocabularies get no dummy prefix. */
int bn_tokenizer_encode_ex(const bn_tokenizer *t, const char *text, uint64_t len, int add_bos, int parse_special,
                           int32_t *out, int max_tokens);
/* The same, except that control tokens are not matched across a byte with
 * plain[i] != 0 (plain: len bytes, or NULL): chat message content stays text. */
int bn_tokenizer_encode_plain(const bn_tokenizer *t, const char *text, uint64_t len, const uint8_t *plain, int add_bos,
                              int parse_special, int32_t *out, int max_tokens);

/* Piece bytes of `token` as printed after `prev`. SPM: llama2.c's rule (strip
 * one leading space when prev is BOS; <0xXX> gives the raw byte). BPE: the
 * token's bytes (GPT-2 byte decoding; control tokens give their text, unused
 * ones nothing). *out_len gets the length. Returns NULL for an out-of-range id.
 * The pointer stays valid until free. */
const char *bn_tokenizer_piece(const bn_tokenizer *t, int32_t prev, int32_t token, int *out_len);

/* Raw vocabulary entry access (for writing GGUF metadata). SPM text has ' '
 * (not ▁); BPE text is as in GGUF (GPT-2 byte-encoded: "Ġworld"). */
void bn_tokenizer_get_entry(const bn_tokenizer *t, int32_t id, const char **text, int *len,
                            float *score, int *type);
/* Writes the vocabulary as GGUF tokenizer.ggml.* metadata (model, tokens,
 * scores / merges, token_type, special ids, flags, chat template) in the form
 * bn_tokenizer_from_gguf reads back to the same tokenizer. */
bitnet_status bn_tokenizer_write_gguf(const bn_tokenizer *t, struct bn_gguf_writer *w);

#endif
