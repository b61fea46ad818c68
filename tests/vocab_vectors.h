/* vocab_vectors.h - reader for llama.cpp's tokenizer test vectors
 * (models/ggml-vocab-*.gguf.inp / .out, as its test-tokenizer-0 reads them).
 *
 * Every input in the .inp file is followed by "\n__ggml_vocab_test__\n"; the
 * .out file has one line per input: each expected id preceded by a space.
 * The ids are what llama.cpp's tokenizer gives with add_special = false and
 * parse_special = false (no BOS). */
#ifndef BN_VOCAB_VECTORS_H
#define BN_VOCAB_VECTORS_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
    char *inp, *out; /* whole files */
    size_t n_inp, n_out;
    char *ip, *op;   /* next input / next output line */
} bn_vocab_vectors;

/* Opens ../shared/tokenizers/NAME.inp and NAME.out; 0 if either is missing. */
int bn_vocab_vectors_open(bn_vocab_vectors *v, const char *name);
/* Next case: its text (not NUL-terminated) and expected ids. Returns 1, 0 at
 * the end of the inputs, -1 if the .out file has no line for this input or a
 * line holds more than max_ids ids. */
int bn_vocab_vectors_next(bn_vocab_vectors *v, const char **text, size_t *len, int32_t *ids, int max_ids, int *n_ids);
/* 1 if every .out line was consumed. */
int bn_vocab_vectors_done(const bn_vocab_vectors *v);
void bn_vocab_vectors_close(bn_vocab_vectors *v);

#endif
