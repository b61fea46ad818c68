/*
 * tokenizer.h - SentencePiece-style tokenizer (scores + byte fallback), loaded
 * from GGUF `tokenizer.ggml.*` metadata or from a llama2.c `tokenizer.bin`.
 *
 * Pieces are stored with SentencePiece's U+2581 (LOWER ONE EIGHTH BLOCK, "▁")
 * already turned into ' ' so that GGUF and llama2.c vocabularies behave alike.
 */
#ifndef BN_TOKENIZER_H
#define BN_TOKENIZER_H

#include <stdint.h>

#include "common.h"

struct gguf_file;

typedef enum {
    BN_TOKEN_NORMAL = 1,       /* as tokenizer.ggml.token_type */
    BN_TOKEN_UNKNOWN = 2,
    BN_TOKEN_CONTROL = 3,
    BN_TOKEN_USER_DEFINED = 4,
    BN_TOKEN_UNUSED = 5,
    BN_TOKEN_BYTE = 6
} bn_token_type;

typedef struct bn_tokenizer bn_tokenizer;

/* From tokenizer.ggml.model == "llama" (tokens, scores, token_type, special ids,
 * add_bos_token, add_space_prefix). Errors name f->path and the key. */
bitnet_status bn_tokenizer_from_gguf(const struct gguf_file *f, bn_tokenizer **out);
/* From a llama2.c tokenizer.bin (int32 max_token_length, then per token: f32 score,
 * int32 len, bytes). Special ids: 0 unk, 1 BOS, 2 EOS; <0xXX> pieces are byte tokens. */
bitnet_status bn_tokenizer_from_llama2c(const char *path, int n_vocab, bn_tokenizer **out);
/* Same over a buffer (fuzzing). */
bitnet_status bn_tokenizer_from_llama2c_memory(const void *data, uint64_t size, const char *name,
                                              int n_vocab, bn_tokenizer **out);
void bn_tokenizer_free(bn_tokenizer *t);

int bn_tokenizer_n_vocab(const bn_tokenizer *t);
int32_t bn_tokenizer_bos(const bn_tokenizer *t);
int32_t bn_tokenizer_eos(const bn_tokenizer *t);
/* tokenizer.ggml.add_bos_token (default 1; 1 for llama2.c files): whether callers
 * should pass add_bos for this vocabulary. */
int bn_tokenizer_add_bos(const bn_tokenizer *t);

/* Encodes `len` bytes of UTF-8 `text`. With add_bos the BOS id comes first.
 * A space is prefixed to the text (SentencePiece's add_dummy_prefix), as
 * llama2.c and llama.cpp do for llama vocabularies. Returns the number of tokens
 * or BITNET_ERR_ARG if more than max_tokens would be needed. */
int bn_tokenizer_encode(const bn_tokenizer *t, const char *text, uint64_t len, int add_bos,
                        int32_t *out, int max_tokens);

/* Piece bytes of `token` as printed after `prev` (llama2.c rule: strip one leading
 * space when prev is BOS; <0xXX> gives the raw byte). *out_len gets the length.
 * Returns NULL for an out-of-range id. The pointer stays valid until free. */
const char *bn_tokenizer_piece(const bn_tokenizer *t, int32_t prev, int32_t token, int *out_len);

/* Raw vocabulary entry access (for writing GGUF metadata). text has ' ' (not ▁). */
void bn_tokenizer_get_entry(const bn_tokenizer *t, int32_t id, const char **text, int *len,
                            float *score, int *type);

#endif
