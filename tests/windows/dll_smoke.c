/* dll_smoke.c - a program that uses libbitnet as Windows programs do: through
 * bitnet.dll and its import library (make test-windows links and runs it under
 * Wine). Greedy text of the embedded default model for a prompt, which
 * tests/windows/smoke.sh compares with infer.exe's. Only bitnet.h. */
#include <stdio.h>
#include <stdlib.h>

#include "bitnet.h"

int main(int argc, char **argv) {
    const char *prompt = argc > 1 ? argv[1] : "Once upon a time";
    const int n_gen = argc > 2 ? atoi(argv[2]) : 24;
    bitnet_model *m = NULL;
    bitnet_context *ctx = NULL;
    bitnet_context_params cp = bitnet_context_default_params();
    if (bitnet_model_load_default(NULL, &m) != BITNET_OK || bitnet_context_new(m, &cp, &ctx) != BITNET_OK) {
        fprintf(stderr, "dll_smoke: %s\n", bitnet_last_error());
        return 1;
    }
    bitnet_token toks[512];
    int n = bitnet_tokenize(m, prompt, 1, toks, 512), pos = 0;
    const int n_vocab = bitnet_n_vocab(m);
    for (int i = 0; n > 0 && i < n_gen; i++) {
        if (bitnet_eval(ctx, toks + pos, n, pos) != BITNET_OK) break;
        pos += n;
        const float *logits = bitnet_get_logits(ctx);
        bitnet_token best = 0;
        for (bitnet_token t = 1; t < n_vocab; t++)
            if (logits[t] > logits[best]) best = t;
        if (bitnet_token_is_eog(m, best)) break;
        char piece[256];
        const int len = bitnet_token_to_piece(m, toks[pos - 1], best, piece, sizeof piece);
        if (len > 0) fwrite(piece, 1, (size_t)len, stdout);
        toks[pos] = best;
        n = 1;
    }
    bitnet_context_free(ctx);
    bitnet_model_free(m);
    return 0;
}
