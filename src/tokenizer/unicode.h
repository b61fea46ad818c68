/*
 * unicode.h - the Unicode pieces the byte-level BPE tokenizers need, with
 * llama.cpp's exact behaviour (src/unicode.cpp there):
 *  - UTF-8 decoding where an invalid sequence becomes U+FFFD and consumes one byte,
 *  - letter / number / whitespace classes (tables: src/tokenizer/unicode_data.h, Unicode 15.1),
 *  - the GPT-2 byte <-> code point mapping,
 *  - the GPT-2 and Llama-3 pre-tokenizer regexes, as llama.cpp's hand-written
 *    splitters (unicode_regex_split_custom_gpt2 / _llama3) implement them.
 */
#ifndef BN_UNICODE_H
#define BN_UNICODE_H

#include <stddef.h>
#include <stdint.h>

enum {
    BN_U_LETTER = 1, /* \p{L} */
    BN_U_NUMBER = 2, /* \p{N} */
    BN_U_SPACE = 4,  /* \s (White_Space) */
    BN_U_VALID = 8   /* set for every code point; 0 marks "past the end" in the splitters */
};

/* BN_U_* flags of a code point (BN_U_VALID always set). */
uint8_t bn_unicode_flags(uint32_t cp);

/* Decodes len bytes into code points (out must hold len entries); returns the
 * count. As llama.cpp's unicode_cpts_from_utf8: the lead byte announces the
 * length, continuation bytes must be 10xxxxxx and present; anything else gives
 * U+FFFD and skips one byte. Overlong forms and surrogates decode as llama.cpp
 * decodes them. Code points above U+10FFFF (lead bytes F5..F7), on which
 * llama.cpp throws while re-encoding, are treated as invalid here. */
size_t bn_utf8_decode(const char *s, size_t len, uint32_t *out);
/* Writes cp (<= 0x10FFFF) as 1-4 UTF-8 bytes; returns the count. */
int bn_utf8_encode(uint32_t cp, char *out);

/* GPT-2's bytes_to_unicode: every byte is shown as one printable code point
 * ('!'..'~', U+00A1..U+00AC, U+00AE..U+00FF as themselves, the rest U+0100+). */
uint32_t bn_gpt2_byte_to_cp(uint8_t b);
/* Inverse of the above; -1 for a code point outside the image. */
int bn_gpt2_cp_to_byte(uint32_t cp);

typedef enum {
    BN_PRETOK_GPT2 = 0,  /* 's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+ */
    BN_PRETOK_LLAMA3 = 1, /* (?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}|
                             ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+ */
    BN_PRETOK_QWEN2 = 2   /* Llama-3's with \p{N} instead of \p{N}{1,3}: one digit a word (Qwen2/Qwen3) */
} bn_pretok;

/* Splits cps[0..n) (flags[i] = bn_unicode_flags(cps[i])) into words and
 * writes the end offset of each word into ends (n entries suffice); returns
 * the number of words. */
size_t bn_pretokenize(bn_pretok kind, const uint32_t *cps, const uint8_t *flags, size_t n, uint32_t *ends);

#endif
