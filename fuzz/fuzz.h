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

/* Reads every byte of [p, p+n): ASan reports any that is out of bounds. */
static inline unsigned fuzz_touch(const void *p, uint64_t n) {
    const volatile uint8_t *b = p;
    unsigned x = 0;
    for (uint64_t i = 0; i < n; i++) x += b[i];
    return x;
}

#endif
