/* gguf_edit.h - test helper: copy a GGUF file with one tensor replaced or
 * dropped (hostile and variant files for tests). */
#ifndef BN_TESTS_GGUF_EDIT_H
#define BN_TESTS_GGUF_EDIT_H

#include "formats/gguf.h"

typedef struct {
    const char *name;      /* tensor to replace (or NULL)                           */
    bn_tensor_type type;   /* its new type                                          */
    const void *data;      /* its new data, nbytes long                             */
    uint64_t nbytes;
    const uint64_t *ne;    /* its new shape (4 dims), or NULL to keep the old one    */
    const char *drop;      /* a tensor to leave out (or NULL)                       */
} bn_gguf_edit;

/* Writes dst as src with e applied (all metadata but general.alignment kept);
 * 1 on success. */
int bn_test_gguf_copy(const char *src, const char *dst, const bn_gguf_edit *e);

#endif
