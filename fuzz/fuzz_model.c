/* fuzz_model.c - libFuzzer target for the whole GGUF model path: reader
 * (gguf.c) -> model loader (gguf_model.c: hyper-parameters, shape and type
 * checks, TQ repacking) -> tokenizer (tokenizer.c) -> context -> forward pass
 * of two tokens -> sampler.
 *
 * Whatever the file says, a model that loads must evaluate without a
 * sanitizer report, and the sampler must return an id inside the vocabulary
 * even when hostile weights make the logits NaN or infinite. */
#include "fuzz.h"
#include "model/model.h"

#define NAME "fuzz.gguf"

static void run_model(bitnet_model *m) {
    bitnet_context_params cp = bitnet_context_default_params();
    cp.n_ctx = 4; /* the file decides the layer count and widths: keep the KV cache small */
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
    st = bitnet_eval(ctx, toks, 2, 0); /* a batch: the GEMM path */
    if (st == BITNET_OK) st = bitnet_eval(ctx, toks, 1, 2); /* one token: the GEMV path */
    if (st != BITNET_OK) fuzz_fail("eval failed for a loaded model", bitnet_last_error());
    float *logits = bitnet_get_logits(ctx);
    bitnet_sampler_params sp = bitnet_sampler_default_params();
    bitnet_sampler *s = bitnet_sampler_new(&sp, vocab);
    if (s) {
        bitnet_token t = bitnet_sampler_sample(s, logits);
        if (t < 0 || t >= vocab) fuzz_fail("sampler returned an id outside the vocabulary", "");
        bitnet_sampler_free(s);
    }
    char piece[64];
    bitnet_token_to_piece(m, toks[0], toks[1], piece, sizeof piece);
    bitnet_token out[16];
    bitnet_tokenize(m, "ab c\xff", 1, out, 16);
    bitnet_context_free(ctx);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    gguf_file *f = NULL;
    bitnet_status st = gguf_open_memory(data, size, NAME, &f);
    if (st != BITNET_OK) {
        fuzz_check_error(st, NAME);
        return 0;
    }
    bitnet_model *m = calloc(1, sizeof *m);
    if (!m) abort();
    st = bn_model_from_gguf(f, NULL, m); /* m owns f from here */
    if (st != BITNET_OK) fuzz_check_error(st, NAME);
    else run_model(m);
    bn_model_release(m);
    free(m);
    return 0;
}
