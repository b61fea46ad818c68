/* fuzz_gguf.c - libFuzzer target for the GGUF reader (src/formats/gguf.c).
 *
 * Parses the input with bn_gguf_open_memory. A rejected file must give a clean
 * one-line error; an accepted one must be self-consistent: every tensor's
 * data lies inside the buffer (its first and last byte are read, so ASan
 * checks them), the typed getters work on every key, and writing the file
 * back with the GGUF writer and reading it again gives the same keys, values
 * and tensor bytes. */
#include "fuzz.h"
#include "formats/gguf.h"

#define NAME "fuzz.gguf"

static int has_nul(bn_gguf_str s) { return s.len && memchr(s.data, 0, s.len) != NULL; }

static char *cstr(bn_gguf_str s) {
    char *c = malloc(s.len + 1);
    if (!c) abort();
    memcpy(c, s.data, s.len);
    c[s.len] = 0;
    return c;
}

/* Writes f back and re-reads it. Skipped when the writer cannot express the
 * file: names with NUL bytes (the writer takes C strings) or so many entries
 * or bytes that one run would take too long. */
static void round_trip(const bn_gguf_file *f) {
    uint64_t total = 0;
    if (f->n_kv + f->n_tensors > 4096) return;
    for (uint64_t i = 0; i < f->n_kv; i++)
        if (has_nul(f->kv[i].key)) return;
    for (uint64_t i = 0; i < f->n_tensors; i++) {
        if (has_nul(f->tensors[i].name)) return;
        total += f->tensors[i].nbytes + f->alignment; /* the writer pads each one */
    }
    if (total > (64u << 20)) return;

    bn_gguf_writer *w = bn_gguf_writer_new();
    bn_gguf_writer_set_flavor(w, f->flavor);
    for (uint64_t i = 0; i < f->n_kv; i++) {
        char *k = cstr(f->kv[i].key);
        bn_gguf_writer_set_value(w, k, &f->kv[i].value);
        free(k);
    }
    for (uint64_t i = 0; i < f->n_tensors; i++) {
        const bn_gguf_tensor *t = &f->tensors[i];
        char *n = cstr(t->name);
        bn_gguf_writer_add_tensor(w, n, t->n_dims, t->ne, t->type, t->data, t->nbytes);
        free(n);
    }
    uint8_t *out = NULL;
    uint64_t size = 0;
    bitnet_status st = bn_gguf_writer_write_memory(w, &out, &size);
    bn_gguf_writer_free(w);
    if (st != BITNET_OK) fuzz_fail("writer rejected a file the reader accepted", bitnet_last_error());
    bn_gguf_file *g = NULL;
    st = bn_gguf_open_memory(out, size, "rewritten.gguf", &g);
    if (st != BITNET_OK) fuzz_fail("reader rejected the writer's output", bitnet_last_error());
    if (g->n_kv != f->n_kv || g->n_tensors != f->n_tensors) fuzz_fail("round trip changed the counts", "");
    for (uint64_t i = 0; i < f->n_kv; i++)
        if (f->kv[i].key.len != g->kv[i].key.len || memcmp(f->kv[i].key.data, g->kv[i].key.data, f->kv[i].key.len) ||
            !bn_gguf_value_equal(&f->kv[i].value, &g->kv[i].value))
            fuzz_fail("round trip changed a key or value", "");
    for (uint64_t i = 0; i < f->n_tensors; i++) {
        const bn_gguf_tensor *a = &f->tensors[i], *b = &g->tensors[i];
        if (a->type != b->type || a->nbytes != b->nbytes || memcmp(a->ne, b->ne, sizeof a->ne) ||
            memcmp(a->data, b->data, a->nbytes))
            fuzz_fail("round trip changed a tensor", "");
    }
    bn_gguf_close(g);
    free(out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    bn_gguf_file *f = NULL;
    bitnet_status st = bn_gguf_open_memory(data, size, NAME, &f);
    if (st != BITNET_OK) {
        if (f) fuzz_fail("failed open left *out set", "");
        fuzz_check_error(st, NAME);
        return 0;
    }
    unsigned sink = 0;
    for (uint64_t i = 0; i < f->n_tensors; i++) {
        const bn_gguf_tensor *t = &f->tensors[i];
        const uint8_t *p = t->data;
        if (p < f->base || t->nbytes > f->size || (uint64_t)(p - f->base) > f->size - t->nbytes)
            fuzz_fail("tensor data outside the buffer", "");
        sink += fuzz_touch(p, 1) + fuzz_touch(p + t->nbytes - 1, 1);
        if (bn_gguf_find_tensor(f, "token_embd.weight") == t) sink++;
    }
    for (uint64_t i = 0; i < f->n_kv && i < 256; i++) {
        char *k = cstr(f->kv[i].key);
        uint32_t u;
        float x;
        bool b;
        char s[64];
        bn_gguf_get_u32(f, k, &u);
        bn_gguf_get_f32(f, k, &x);
        bn_gguf_get_bool(f, k, &b);
        bn_gguf_get_str(f, k, s, sizeof s);
        bn_gguf_get_arr(f, k, BN_GGUF_TYPE_STRING);
        free(k);
    }
    round_trip(f);
    bn_gguf_close(f);
    return (int)(sink & 0);
}
