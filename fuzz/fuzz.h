/* fuzz.h - helpers shared by the libFuzzer targets in fuzz/ (header-only).
 *
 * Besides the sanitizers (ASan, UBSan, libFuzzer's leak and OOM checks), each
 * target checks the library's error contract, so a violation is reported as a
 * crash with the offending input: a failed load returns one of the documented
 * status codes, and bitnet_last_error() is one line that starts with the
 * name the buffer was given ("fuzz.gguf: ..."). */
#ifndef BN_FUZZ_H
#define BN_FUZZ_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bitnet.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static inline void fuzz_fail(const char *what, const char *detail) {
    fprintf(stderr, "fuzz: contract violated: %s: %s\n", what, detail ? detail : "");
    abort();
}

/* A load of hostile bytes failed: check the status and the message. */
static inline void fuzz_check_error(bitnet_status st, const char *name) {
    const char *e = bitnet_last_error();
    if (st != BITNET_ERR_FORMAT && st != BITNET_ERR_UNSUPPORTED && st != BITNET_ERR_NOMEM)
        fuzz_fail("unexpected status for bad input", e);
    if (strchr(e, '\n') || strchr(e, '\r')) fuzz_fail("error message is not one line", e);
    size_t n = strlen(name);
    if (strncmp(e, name, n) != 0 || strncmp(e + n, ": ", 2) != 0 || e[n + 2] == 0)
        fuzz_fail("error message does not start with the file name and say what is wrong", e);
}

/* A file loaded: it must also run. Evaluates a batch of two tokens (the GEMM
 * path) and then one (the GEMV path) with a 4-position cache (the file
 * decides the layer count and widths: keep the KV cache small), samples an id
 * inside the vocabulary, and turns ids into text and text into ids. */
static inline void fuzz_run_loaded_model(bitnet_model *m) {
    bitnet_context_params cp = bitnet_context_default_params();
    cp.n_ctx = 4;
    cp.n_batch = 2;
    cp.n_threads = 1;
    bitnet_context *ctx = NULL;
    bitnet_status st = bitnet_context_new(m, &cp, &ctx);
    if (st != BITNET_OK) {
        if (st != BITNET_ERR_NOMEM) fuzz_fail("context_new failed for a loaded model", bitnet_last_error());
        return;
    }
    const int vocab = bitnet_n_vocab(m);
    bitnet_token toks[2] = {0, vocab - 1};
    st = bitnet_eval(ctx, toks, 2, 0);
    if (st == BITNET_OK) st = bitnet_eval(ctx, toks, 1, 2);
    if (st != BITNET_OK) fuzz_fail("eval failed for a loaded model", bitnet_last_error());
    bitnet_sampler *s = NULL;
    bitnet_sampler_new(NULL, vocab, &s);
    if (s) {
        bitnet_token t = bitnet_sampler_sample(s, bitnet_get_logits(ctx));
        if (t < 0 || t >= vocab) fuzz_fail("sampler returned an id outside the vocabulary", "");
        bitnet_sampler_free(s);
    }
    char piece[64];
    bitnet_token_to_piece(m, toks[0], toks[1], piece, sizeof piece);
    bitnet_token out[16];
    bitnet_tokenize(m, "ab c\xff", 1, out, 16);
    bitnet_context_free(ctx);
}

/* Reads every byte of [p, p+n): ASan reports any that is out of bounds. */
static inline unsigned fuzz_touch(const void *p, uint64_t n) {
    const volatile uint8_t *b = p;
    unsigned x = 0;
    for (uint64_t i = 0; i < n; i++) x += b[i];
    return x;
}

#endif
