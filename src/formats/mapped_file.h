/*
 * mapped_file.h - a whole file in memory, for the model and vocabulary readers.
 *
 * By default the file is mapped read-only (zero-copy: weights are used where
 * they lie, and pages are shared between processes); with use_mmap == 0
 * (--no-mmap) it is read into one private anonymous mapping instead, so that
 * munmap(data, size) releases either kind. An empty file gives data == NULL.
 */
#ifndef BN_MAPPED_FILE_H
#define BN_MAPPED_FILE_H

#include "common.h"

/* Errors name the path: "cannot open: <reason>", "not a regular file",
 * "file too large to map", "cannot map|allocate N bytes: <reason>",
 * "read error: <reason>". */
bitnet_status bn_map_file(const char *path, int use_mmap, void **data, uint64_t *size);

/* The input of a format parser (gguf.c, safetensors.c): with data == NULL the file at `name` is mapped read-only (*owns = 1 unless
 * it is empty); else the caller's buffer of `size` bytes is used in place
 * (*owns = 0) and `name` (NULL: "(memory)") only names it in messages.
 * *path is a malloc'd copy of the name; *base is never NULL (an empty input
 * points at a static byte). Release with bn_input_release. */
bitnet_status bn_input_acquire(const char *name, const void *data, uint64_t size, char **path, const uint8_t **base,
                               uint64_t *out_size, int *owns);
void bn_input_release(char *path, const uint8_t *base, uint64_t size, int owns);

/* Reads a whole file (pipes and /proc files too: to EOF, never trusting its
 * size) into a malloc'd buffer with a NUL after the last byte, for the small
 * files beside a model (config.json, tokenizer.json, an index). A file longer
 * than max bytes is an error, found while reading. Errors name the path:
 * "cannot open: <reason>", "larger than N bytes", "read error: <reason>",
 * "out of memory". missing (may be NULL) is set when the file does not exist. */
bitnet_status bn_read_file(const char *path, size_t max, char **out, size_t *len, int *missing);

#endif
