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
        fuzz_run_loaded_model(m);
    }
    bn_model_release(m);
    free(m);
    return 0;
}
