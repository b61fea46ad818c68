/* fuzz_ak42.c - libFuzzer target for the legacy ak42 loader (src/model/ak42.c):
 * header checks, the size the header implies, scales, 2-bit codes, repacking;
 * a file that loads is then evaluated (two tokens, then one). */
#include "fuzz.h"
#include "model/model.h"

#define NAME "fuzz.ak42"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    bitnet_model *m = calloc(1, sizeof *m);
    if (!m) abort();
    bitnet_status st = bn_model_from_ak42_memory(data, size, NAME, NULL, m);
    if (st != BITNET_OK) {
        fuzz_check_error(st, NAME);
    } else {
        bitnet_context_params cp = bitnet_context_default_params();
        cp.n_ctx = 4;
        cp.n_batch = 2;
        bitnet_context *ctx = NULL;
        st = bitnet_context_new(m, &cp, &ctx);
        if (st != BITNET_OK && st != BITNET_ERR_NOMEM) fuzz_fail("context_new failed", bitnet_last_error());
        if (ctx) {
            bitnet_token toks[2] = {0, bitnet_n_vocab(m) - 1};
            if (bitnet_eval(ctx, toks, 2, 0) != BITNET_OK || bitnet_eval(ctx, toks, 1, 2) != BITNET_OK)
                fuzz_fail("eval failed for a loaded model", bitnet_last_error());
            bitnet_context_free(ctx);
        }
    }
    bn_model_release(m);
    free(m);
    return 0;
}
