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

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    bn_gguf_file *f = NULL;
    bitnet_status st = bn_gguf_open_memory(data, size, NAME, &f);
    if (st != BITNET_OK) {
        fuzz_check_error(st, NAME);
        return 0;
    }
    bitnet_model *m = calloc(1, sizeof *m);
    if (!m) abort();
    st = bn_model_from_gguf(f, NULL, m); /* m owns f from here */
    if (st != BITNET_OK) fuzz_check_error(st, NAME);
    else fuzz_run_loaded_model(m);
    bn_model_release(m);
    free(m);
    return 0;
}
