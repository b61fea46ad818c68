/* fuzz_safetensors.c - libFuzzer target for the safetensors reader
 * (src/formats/safetensors.c: header length, strict JSON header, dtypes, shapes,
 * data offsets) and, for files that embed a "bitnet.config" (as
 * bn_safetensors_write_model writes them), the Hugging Face model loader
 * (src/model/safetensors_model.c) followed by a forward pass of two tokens.
 *
 * The model loader reads a path, so those inputs go through a temp file
 * (in /dev/shm when it exists); a llama2.c tokenizer.bin with 1024 pieces is
 * written next to it once. */
#include <unistd.h>

#include "fuzz.h"
#include "model/model.h"
#include "formats/safetensors.h"

#define NAME "fuzz.safetensors"

static char g_dir[200], g_model[256], g_tok[256];

static void put32(FILE *f, uint32_t v) {
    uint8_t b[4] = {(uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16), (uint8_t)(v >> 24)};
    fwrite(b, 1, 4, f);
}

static void remove_tokenizer(void) { unlink(g_tok); }

static void init(void) {
    if (g_dir[0]) return;
    const char *tmp = getenv("TMPDIR");
    snprintf(g_dir, sizeof g_dir, "%s", access("/dev/shm", W_OK) == 0 ? "/dev/shm" : tmp && *tmp ? tmp : "/tmp");
    snprintf(g_model, sizeof g_model, "%s/fuzz-st-%d.safetensors", g_dir, (int)getpid());
    snprintf(g_tok, sizeof g_tok, "%s/fuzz-st-%d.tok.bin", g_dir, (int)getpid());
    FILE *f = fopen(g_tok, "wb");
    if (!f) abort();
    put32(f, 16);
    for (int i = 0; i < 1024; i++) {
        char piece[16];
        int n = i == 0 ? snprintf(piece, sizeof piece, "<unk>") : i == 1 ? snprintf(piece, sizeof piece, "<s>")
              : i == 2 ? snprintf(piece, sizeof piece, "</s>") : snprintf(piece, sizeof piece, " t%d", i);
        put32(f, 0);
        put32(f, (uint32_t)n);
        fwrite(piece, 1, (size_t)n, f);
    }
    if (fclose(f) != 0) abort();
    atexit(remove_tokenizer);
}

static void run_model(const uint8_t *data, size_t size) {
    FILE *f = fopen(g_model, "wb");
    if (!f || fwrite(data, 1, size, f) != size || fclose(f) != 0) abort();
    bitnet_model_params p = bitnet_model_default_params();
    p.tokenizer_path = g_tok;
    bitnet_model *m = calloc(1, sizeof *m);
    if (!m) abort();
    bitnet_status st = bn_model_from_safetensors(g_model, &p, m);
    if (st != BITNET_OK) {
        const char *e = bitnet_last_error();
        /* the message names the weights file, or the tokenizer when that is what disagrees */
        if (strncmp(e, g_model, strlen(g_model)) && strncmp(e, g_tok, strlen(g_tok))) fuzz_check_error(st, g_model);
        if (st != BITNET_ERR_FORMAT && st != BITNET_ERR_UNSUPPORTED && st != BITNET_ERR_NOMEM)
            fuzz_fail("unexpected status", e);
        if (strchr(e, '\n')) fuzz_fail("error message is not one line", e);
    } else {
        fuzz_run_loaded_model(m);
    }
    bn_model_release(m);
    free(m);
    unlink(g_model);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    init();
    bn_safetensors *f = NULL;
    bitnet_status st = bn_safetensors_open_memory(data, size, NAME, &f);
    if (st != BITNET_OK) {
        fuzz_check_error(st, NAME);
        return 0;
    }
    for (size_t i = 0; i < f->n_tensors; i++) {
        const bn_st_tensor *t = &f->tensors[i];
        uint64_t want;
        if (t->n_dims > BN_ST_MAX_DIMS || __builtin_mul_overflow(t->n_elems, bn_st_dtype_size(t->dtype), &want) ||
            want != t->nbytes)
            fuzz_fail("tensor size is not shape x dtype size", t->name);
        const uint8_t *p = t->data;
        if (t->nbytes && (p < f->base || t->nbytes > f->size || (uint64_t)(p - f->base) > f->size - t->nbytes))
            fuzz_fail("tensor data outside the buffer", t->name);
        if (t->nbytes) fuzz_touch(p, 1), fuzz_touch(p + t->nbytes - 1, 1);
        if (bn_safetensors_find(f, t->name) == NULL) fuzz_fail("a tensor is not found by its name", t->name);
    }
    int has_config = bn_safetensors_meta(f, "bitnet.config") != NULL;
    bn_safetensors_close(f);
    if (has_config) run_model(data, size);
    return 0;
}
