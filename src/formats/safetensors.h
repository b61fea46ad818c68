/*
 * safetensors.h - safetensors reader (mmap, zero-copy) and writer, and the
 * Hugging Face model loader / writer built on them (safetensors_model.c).
 *
 * File layout: an 8-byte little-endian header length N, N bytes of JSON
 * {"__metadata__": {"k": "v", ...}, "NAME": {"dtype": "F32", "shape": [2, 3],
 * "data_offsets": [begin, end]}, ...}, then the data section; offsets are
 * relative to the start of the data section.
 *
 * Reader: every byte is hostile. The header length is bounded, the JSON is
 * parsed strictly (json.h), every shape product and byte size is overflow
 * checked, and each tensor must occupy exactly product(shape) * dtype size
 * bytes inside the data section. Tensors may overlap or leave gaps (the format
 * forbids holes, but nothing here depends on it). Errors are one line,
 * "FILE: what is wrong", with BITNET_ERR_FORMAT (BITNET_ERR_UNSUPPORTED for
 * valid dtypes we cannot address, such as the sub-byte F4).
 */
#ifndef BN_SAFETENSORS_H
#define BN_SAFETENSORS_H

#include <stdint.h>

#include "common.h"
#include "formats/json.h"

#define BN_ST_MAX_HEADER 100000000ull /* as the reference implementation */
#define BN_ST_MAX_DIMS 8

typedef enum {
    BN_ST_BOOL = 0,
    BN_ST_U8,
    BN_ST_I8,
    BN_ST_F8_E5M2,
    BN_ST_F8_E4M3,
    BN_ST_F8_E8M0,
    BN_ST_I16,
    BN_ST_U16,
    BN_ST_F16,
    BN_ST_BF16,
    BN_ST_I32,
    BN_ST_U32,
    BN_ST_F32,
    BN_ST_I64,
    BN_ST_U64,
    BN_ST_F64,
    BN_ST_DTYPE_COUNT
} bn_st_dtype;

const char *bn_st_dtype_name(bn_st_dtype t); /* "F32", ...; "?" if invalid */
uint64_t bn_st_dtype_size(bn_st_dtype t);    /* bytes per element; 0 if invalid */

typedef struct {
    const char *name;     /* NUL-terminated, points into the parsed header        */
    bn_st_dtype dtype;
    uint32_t n_dims;      /* 0 for a scalar                                       */
    uint64_t shape[BN_ST_MAX_DIMS]; /* PyTorch order: shape[n_dims-1] varies fastest */
    uint64_t n_elems;
    uint64_t begin, nbytes; /* data_offsets[0] and end - begin                    */
    const void *data;     /* into the mapping; aligned only as the file made it   */
} bn_st_tensor;

typedef struct {
    char *path;             /* for error messages                            */
    const uint8_t *base;    /* mapping or caller's buffer                    */
    uint64_t size;
    int owns_mapping;
    uint64_t header_len;    /* N                                             */
    uint64_t data_offset;   /* 8 + N                                         */
    bn_json *header;
    size_t n_tensors;
    bn_st_tensor *tensors;  /* in header order                               */
    size_t *sorted;         /* tensor indices sorted by name (lookups)       */
    const bn_json *metadata;/* the "__metadata__" object (string values), or NULL */
} bn_safetensors;

/* Opens and validates a file (mmap). */
bitnet_status bn_safetensors_open(const char *path, bn_safetensors **out);
/* Same over a caller-owned buffer that must outlive the result (fuzzing, models
 * read without mmap). `name` is used in error messages. */
bitnet_status bn_safetensors_open_memory(const void *data, uint64_t size, const char *name, bn_safetensors **out);
void bn_safetensors_close(bn_safetensors *f);

const bn_st_tensor *bn_safetensors_find(const bn_safetensors *f, const char *name);
/* A "__metadata__" value, or NULL if absent. */
const char *bn_safetensors_meta(const bn_safetensors *f, const char *key);

/* ---- writer ----------------------------------------------------------------- */
typedef struct bn_st_out bn_st_out;
struct bn_st_out {
    const char *name;
    bn_st_dtype dtype;
    uint32_t n_dims;
    uint64_t shape[BN_ST_MAX_DIMS];
    const void *data; /* product(shape) * dtype size bytes, read during the write; or NULL and: */
    /* fill(self, dst) writes those bytes into dst when the writer reaches the tensor, so
     * that converted tensors need not all be in memory at once; user is for fill. */
    void (*fill)(const bn_st_out *self, void *dst);
    const void *user;
};

/* Writes tensors t[0..n) and the string map meta[2i] -> meta[2i+1] (i < n_meta) as
 * "__metadata__". The header is padded with spaces so that the data section
 * starts at a multiple of 8; tensors are laid out without gaps, larger dtypes
 * first (stable), so each is aligned to its element size, as the reference
 * writer does. Names must be unique, non-empty, valid UTF-8 and not
 * "__metadata__". Written atomically (a temporary beside PATH, fsync, rename). */
bitnet_status bn_safetensors_write(const char *path, const bn_st_out *t, size_t n, const char *const *meta,
                                   size_t n_meta);
bitnet_status bn_safetensors_write_memory(const bn_st_out *t, size_t n, const char *const *meta, size_t n_meta,
                                          uint8_t **out, uint64_t *size);

/* ---- models (safetensors_model.c, safetensors_model_write.c) ---------------------- */
struct bitnet_model;

/* 1 if bitnet_model_load should hand `path` to the safetensors loader: a
 * directory, or a file whose first bytes are a plausible safetensors header. */
int bn_safetensors_detect(const char *path);
/* Loads a Hugging Face style model: PATH is a directory holding model.safetensors
 * and config.json, or a .safetensors file (its config comes from the embedded
 * "bitnet.config" metadata that bn_safetensors_write_model writes, else from
 * config.json beside it). See docs/formats.md, "safetensors". */
bitnet_status bn_model_from_safetensors(const char *path, const bitnet_model_params *p, struct bitnet_model *m);
/* Writes m as a Hugging Face style safetensors file with its config embedded
 * (docs/formats.md, "safetensors"); bn_model_from_safetensors reads it back to
 * the same weights, bit for bit. */
bitnet_status bn_safetensors_write_model(const struct bitnet_model *m, const char *path);

#endif
