/* gguf_edit.c - see gguf_edit.h. */
#include "gguf_edit.h"

#include <stdio.h>
#include <string.h>

int bn_test_gguf_copy(const char *src, const char *dst, const bn_gguf_edit *e) {
    bn_gguf_file *f = NULL;
    if (bn_gguf_open(src, &f) != BITNET_OK) return 0;
    bn_gguf_writer *w = bn_gguf_writer_new();
    for (uint64_t i = 0; i < f->n_kv; i++) {
        char key[256];
        snprintf(key, sizeof key, "%.*s", (int)f->kv[i].key.len, f->kv[i].key.data);
        if (strcmp(key, "general.alignment") != 0) bn_gguf_writer_set_value(w, key, &f->kv[i].value);
    }
    for (uint64_t i = 0; i < f->n_tensors; i++) {
        const bn_gguf_tensor *t = &f->tensors[i];
        char name[256];
        snprintf(name, sizeof name, "%.*s", (int)t->name.len, t->name.data);
        if (e->drop && strcmp(name, e->drop) == 0) continue;
        if (e->name && strcmp(name, e->name) == 0)
            bn_gguf_writer_add_tensor(w, name, e->ne ? 2 : t->n_dims, e->ne ? e->ne : t->ne, e->type, e->data, e->nbytes);
        else
            bn_gguf_writer_add_tensor(w, name, t->n_dims, t->ne, t->type, t->data, t->nbytes);
    }
    const int ok = bn_gguf_writer_write(w, dst) == BITNET_OK;
    bn_gguf_writer_free(w);
    bn_gguf_close(f);
    return ok;
}
