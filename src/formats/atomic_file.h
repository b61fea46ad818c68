/*
 * atomic_file.h - write a file so that readers never see half of it.
 *
 * Output goes to PATH.tmp; commit fsyncs it, renames it over PATH and fsyncs
 * the directory (best effort), so a crash or a failed run leaves either the
 * old file or the complete new one, never a truncated model. Errors are
 * sticky: write calls after a failure do nothing, and commit reports the
 * first error as "PATH: write failed: <reason>" and removes the temp file.
 * Used by the GGUF and safetensors writers.
 */
#ifndef BN_ATOMIC_FILE_H
#define BN_ATOMIC_FILE_H

#include "common.h"

typedef struct {
    int fd;
    int err;          /* first errno seen, 0 while all is well */
    const char *path;
    char *tmp;        /* PATH.tmp (malloc'd) */
} bn_atomic_file;

/* Creates PATH.tmp; on failure returns an error naming it. */
bitnet_status bn_atomic_open(bn_atomic_file *f, const char *path);
/* Appends n bytes (all of them, retrying short writes and EINTR). */
void bn_atomic_write(bn_atomic_file *f, const void *p, uint64_t n);
void bn_atomic_write_zeros(bn_atomic_file *f, uint64_t n);
/* Records a failure that happened outside (e.g. ENOMEM while producing data). */
void bn_atomic_fail(bn_atomic_file *f, int err);
/* fsync + rename + directory fsync, or unlink the temp file after an error. */
bitnet_status bn_atomic_commit(bn_atomic_file *f);

#endif
