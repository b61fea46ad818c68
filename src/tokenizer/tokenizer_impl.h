/*
 * tokenizer_impl.h - the tokenizer object, shared by tokenizer.c (common
 * parts, SentencePiece) and tokenizer_bpe.c (byte-level BPE). Not for other
 * modules: they use tokenizer.h.
 */
#ifndef BN_TOKENIZER_IMPL_H
#define BN_TOKENIZER_IMPL_H

#include "tokenizer/tokenizer.h"

/* Caps that keep a hostile file from making us allocate without bound. Real
 * pieces are a few dozen bytes; vocabularies are < 1M entries. */
#define TOK_MAX_PIECE (1 << 16)
#define TOK_MAX_VOCAB (1 << 24)
/* Symbols and heap entries are indexed with int32_t. */
#define TOK_MAX_TEXT ((uint64_t)1 << 28)
#define TOK_MAX_EOG 16
#define BN_TOK_MAX_FILE ((size_t)1 << 31) /* a vocabulary file read whole (bn_read_file) */

struct bn_bpe;

/* tokenizer_bpe.c */

struct bn_tokenizer {
    bn_tokenizer_kind kind;
    int n_vocab;
    char *pool;     /* every piece, NUL-terminated: SPM with ▁ turned into ' ',
                       BPE as stored in GGUF (GPT-2 byte-encoded)             */
    size_t *off;    /* piece i is pool + off[i], len[i] bytes                  */
    int32_t *len;
    float *score;
    uint8_t *type;  /* bn_token_type                                          */
    int32_t *table; /* open addressing over the pieces: token id or -1        */
    uint32_t mask;
    int32_t max_len;       /* longest piece: longer merges cannot exist      */
    int32_t byte_id[256];  /* SPM byte fallback token of each byte           */
    unsigned char raw[256];/* backing store for the byte pieces we return    */
    int32_t bos, eos, unk, eot; /* -1 where the vocabulary has none           */
    int32_t eog[TOK_MAX_EOG];   /* tokens that end a generation               */
    int n_eog;
    int add_bos, add_space_prefix;
    int space_split; /* SPM: no piece has a space right after a non-space byte */
    int32_t *special; /* CONTROL / USER_DEFINED / UNKNOWN ids, longest text first */
    int n_special, n_user_defined;
    char *chat_template; /* tokenizer.chat_template, NUL-terminated, or NULL */
    struct bn_bpe *bpe;  /* BN_TOK_BPE only */
    void (*bpe_free)(struct bn_bpe *); /* set with bpe: vocab.c frees it without knowing BPE */
};

uint32_t bn_tok_hash(const char *s, size_t n);
/* The byte of a "<0xXX>" piece of length n, else -1. */
int bn_tok_parse_byte_piece(const char *s, int n);
int32_t bn_tok_lookup(const bn_tokenizer *t, const char *s, size_t n);
/* Allocates a tokenizer for n pieces whose bytes total at most pool_bytes. */
bitnet_status bn_tok_alloc(int n, uint64_t pool_bytes, bn_tokenizer **out);
/* Appends piece i at *used, turning every ▁ into ' ' if sp is set. */
void bn_tok_set_piece(bn_tokenizer *t, int i, const char *s, size_t n, int sp, size_t *used);
/* Builds the piece hash table; duplicate pieces are an error when
 * reject_duplicates is set, else the last one wins. */
bitnet_status bn_tok_build_table(bn_tokenizer *t, const char *name, int reject_duplicates);
/* Checks the special ids, finds EOT / end-of-generation tokens (llama.cpp's
 * rules) and lists the special tokens for bn_tokenizer_encode_ex. f may be NULL. */
bitnet_status bn_tok_finish_special(bn_tokenizer *t, const struct bn_gguf_file *f, const char *name);
/* Optional u32 token id key into *id (left as is when absent); -1 on a bad
 * value (error set), else 0. */
int bn_tok_get_id(const struct bn_gguf_file *f, const char *key, int32_t *id);
/* Array key of element type et: 1 and *out set, 0 if absent, -1 (error set)
 * if of another type. */
int bn_tok_gguf_arr(const struct bn_gguf_file *f, const char *key, int et, const struct bn_gguf_value **out);
/* Reads tokenizer.ggml.tokens / scores / token_type into a new tokenizer
 * (SPM pieces get ▁ -> ' ' when sp is set) and tokenizer.chat_template. */
bitnet_status bn_tok_load_gguf_pieces(const struct bn_gguf_file *f, int sp, bn_tokenizer **out);

/* tokenizer_bpe.c */
bitnet_status bn_bpe_from_gguf(const struct bn_gguf_file *f, bn_tokenizer **out);
void bn_bpe_free(struct bn_bpe *b);
/* Encodes one text fragment (no special tokens in it); appends ids to out
 * (counting past max_tokens); returns the new count or a negative status. */
int bn_bpe_encode(const bn_tokenizer *t, const char *text, size_t len, int32_t *out, int max_tokens, int n_out);
const char *bn_bpe_piece(const bn_tokenizer *t, int32_t token, int *len);
bitnet_status bn_bpe_write_gguf(const bn_tokenizer *t, struct bn_gguf_writer *w);

#endif
