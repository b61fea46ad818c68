/*
 * atomic_file.h - write a file so that readers never see half of it, and no
 * one else's file is ever touched.
 *
 * Output goes to a temporary in PATH's directory named
 *   .BASENAME.bitnet-tmp.PID.N
 * created with O_EXCL | O_NOFOLLOW (a planted file or symlink of that name
 * makes the next N be tried, never followed); commit fsyncs it, renames it over
 * PATH and fsyncs the directory, so a crash or a failed run leaves either the
 * old file or the complete new one. Errors are sticky: write calls after a
 * failure do nothing, and commit reports the first error as "PATH: write
 * failed: <reason>" and removes the temporary. A temporary whose PID is no
 * longer running (the writer was killed, e.g. kill -9) is removed by the next
 * bn_atomic_open for a file in the same directory.
 * Used by the GGUF and safetensors writers and build/prune.
 */
#ifndef BN_ATOMIC_FILE_H
#define BN_ATOMIC_FILE_H

#include "common.h"

typedef struct {
    int fd;
    int err;          /* first errno seen, 0 while all is well */
    const char *path;
    char *tmp;        /* the temporary (malloc'd) */
} bn_atomic_file;

/* Creates the temporary for PATH; on failure returns an error naming PATH's
 * directory and the reason. */
bitnet_status bn_atomic_open(bn_atomic_file *f, const char *path);
/* Appends n bytes (all of them, retrying short writes and EINTR). */
void bn_atomic_write(bn_atomic_file *f, const void *p, uint64_t n);
void bn_atomic_write_zeros(bn_atomic_file *f, uint64_t n);
/* Records a failure that happened outside (e.g. ENOMEM while producing data). */
void bn_atomic_fail(bn_atomic_file *f, int err);
/* fsync + rename + directory fsync, or unlink the temporary after an error. */
bitnet_status bn_atomic_commit(bn_atomic_file *f);
/* Closes and removes the temporary without touching PATH. */
void bn_atomic_abort(bn_atomic_file *f);
/* fsync, close, and leave the complete temporary in place (f->tmp, still
 * owned by f) for a later bn_atomic_publish: a tool that must check its
 * output before replacing PATH (build/prune) renames only at the very end. */
bitnet_status bn_atomic_finish(bn_atomic_file *f);
/* Renames a finished temporary over PATH and fsyncs the directory; after an
 * error the temporary is removed and PATH is untouched. */
bitnet_status bn_atomic_publish(bn_atomic_file *f);

/* Creates the temporary and closes it again, for a writer that takes a path:
 * it writes f->tmp (atomically itself), then bn_atomic_publish or
 * bn_atomic_abort. */
bitnet_status bn_atomic_reserve(bn_atomic_file *f, const char *path);

/* The whole of data[0..n) to path, atomically. */
bitnet_status bn_atomic_write_file(const char *path, const void *data, uint64_t n);

#endif
