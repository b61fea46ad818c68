/* json_mode.h - output that is always JSON (OpenAI's response_format
 * {"type": "json_object"}): a pushdown recogniser of RFC 8259 JSON that says,
 * byte by byte, whether a text can still be completed into one JSON object,
 * and the token mask the sampler applies with it.
 *
 * The state is small and copyable: the sampler tries each candidate token's
 * bytes on a copy and masks the tokens that would make the text invalid;
 * end-of-text is allowed only once the object is complete, and then it is the
 * only choice. Strings take any UTF-8 (bytes >= 0x20 and escapes); numbers,
 * literals and nesting (up to BN_JSON_MODE_DEPTH) as RFC 8259 says;
 * whitespace between tokens is bounded (BN_JSON_MODE_MAX_WS). */
#ifndef BN_JSON_MODE_H
#define BN_JSON_MODE_H

#include <stddef.h>
#include <stdint.h>

#include "bitnet.h"
#include "grammar/grammar.h" /* bn_vocab_pieces */

#define BN_JSON_MODE_DEPTH 32
/* Whitespace between tokens: at most this many bytes in a row (as llama.cpp's
 * json.gbnf bounds it): a model that likes newlines must still write JSON. */
#define BN_JSON_MODE_MAX_WS 2

typedef struct {
    uint8_t stack[BN_JSON_MODE_DEPTH]; /* 'o' object, 'a' array */
    uint8_t depth;
    uint8_t expect;  /* what may come next in the current container (json_mode.c) */
    uint8_t lex;     /* inside a token: string, escape, \u digits, number part, literal */
    uint8_t lit_pos; /* literal: index of the next byte in lit */
    uint8_t ws_run;  /* whitespace bytes in a row outside tokens */
    const char *lit; /* "true", "false", "null" while one is read */
} bn_json_mode;

void bn_json_mode_init(bn_json_mode *s);
/* Feeds n bytes; returns 1 if the text is still a prefix of some JSON object
 * (s advanced), 0 if not (s then undefined: feed a copy). */
int bn_json_mode_feed(bn_json_mode *s, const char *p, size_t n);
/* The object is complete (only whitespace may follow). */
int bn_json_mode_done(const bn_json_mode *s);


/* Sets logits[t] = -inf for every token that cannot continue s; when s is
 * complete, for every token but eos. Returns the number of tokens left. */
int bn_json_mode_mask(const bn_json_mode *s, const bn_vocab_pieces *v, bitnet_token eos, float *logits);

#endif
