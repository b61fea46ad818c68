/*
 * gguf.h - GGUF v3 reader (mmap, zero-copy) and writer.
 *
 * Reader: every byte of the file is treated as hostile. All counts, lengths,
 * offsets and tensor extents are overflow-checked and bounds-checked against
 * the file size before use; a bad file yields BITNET_ERR_FORMAT with a one-line
 * message "FILE: what is wrong" (see bitnet_last_error()).
 * Strings returned by the reader point into the mapping and are NOT
 * NUL-terminated: use gguf_str.len.
 */
#ifndef BN_GGUF_H
#define BN_GGUF_H

#include <stdbool.h>
#include <stdint.h>

#include "common.h"

#define GGUF_MAGIC 0x46554747u /* "GGUF" little-endian */
#define GGUF_VERSION 3
#define GGUF_DEFAULT_ALIGNMENT 32

/* Limits that keep a hostile file from making us allocate without bound. */
#define GGUF_MAX_TENSORS (1u << 20)
#define GGUF_MAX_KV (1u << 20)
#define GGUF_MAX_DIMS 4
#define GGUF_MAX_ARRAY_DEPTH 8

typedef enum {
    GGUF_TYPE_UINT8 = 0,
    GGUF_TYPE_INT8 = 1,
    GGUF_TYPE_UINT16 = 2,
    GGUF_TYPE_INT16 = 3,
    GGUF_TYPE_UINT32 = 4,
    GGUF_TYPE_INT32 = 5,
    GGUF_TYPE_FLOAT32 = 6,
    GGUF_TYPE_BOOL = 7,
    GGUF_TYPE_STRING = 8,
    GGUF_TYPE_ARRAY = 9,
    GGUF_TYPE_UINT64 = 10,
    GGUF_TYPE_INT64 = 11,
    GGUF_TYPE_FLOAT64 = 12,
    GGUF_TYPE_COUNT
} gguf_vtype;

/* ggml tensor type ids as upstream llama.cpp numbers them. bitnet.cpp's fork
 * reuses some numbers (I2_S = 36, TL1 = 38, TL2 = 39, clashing with upstream
 * 39 = MXFP4): see gguf_tensor_type_resolve(). */
enum {
    GGML_TYPE_F32 = 0,
    GGML_TYPE_F16 = 1,
    GGML_TYPE_Q4_0 = 2,
    GGML_TYPE_Q4_1 = 3,
    GGML_TYPE_Q5_0 = 6,
    GGML_TYPE_Q5_1 = 7,
    GGML_TYPE_Q8_0 = 8,
    GGML_TYPE_Q8_1 = 9,
    GGML_TYPE_Q2_K = 10,
    GGML_TYPE_Q3_K = 11,
    GGML_TYPE_Q4_K = 12,
    GGML_TYPE_Q5_K = 13,
    GGML_TYPE_Q6_K = 14,
    GGML_TYPE_Q8_K = 15,
    GGML_TYPE_I8 = 24,
    GGML_TYPE_I16 = 25,
    GGML_TYPE_I32 = 26,
    GGML_TYPE_I64 = 27,
    GGML_TYPE_F64 = 28,
    GGML_TYPE_BF16 = 30,
    GGML_TYPE_TQ1_0 = 34,
    GGML_TYPE_TQ2_0 = 35,
    GGML_TYPE_MXFP4 = 39,
    /* bitnet.cpp fork numbering */
    GGML_TYPE_BITNETCPP_I2_S = 36,
    GGML_TYPE_BITNETCPP_TL1 = 38,
    GGML_TYPE_BITNETCPP_TL2 = 39,
};

/* Our own resolved tensor types (independent of any file's numbering). */
typedef enum {
    BN_TT_UNKNOWN = 0,
    BN_TT_F32,
    BN_TT_F16,
    BN_TT_BF16,
    BN_TT_Q8_0,
    BN_TT_TQ1_0,
    BN_TT_TQ2_0,
    BN_TT_I2_S,
    BN_TT_TL1,
    BN_TT_TL2,
    BN_TT_MXFP4,
    BN_TT_Q4_0,
    BN_TT_Q5_0,
    BN_TT_Q4_K,
    BN_TT_Q5_K,
    BN_TT_Q6_K,
    BN_TT_COUNT
} bn_tensor_type;

/* Which numbering a file uses for its tensor type ids. */
typedef enum {
    GGUF_FLAVOR_UPSTREAM = 0, /* llama.cpp / ggml                           */
    GGUF_FLAVOR_BITNETCPP = 1 /* microsoft/BitNet fork (I2_S=36, TL1/TL2)   */
} gguf_flavor;

typedef struct {
    uint64_t len;
    const char *data; /* not NUL-terminated */
} gguf_str;

typedef struct gguf_value gguf_value;
struct gguf_value {
    gguf_vtype type;
    union {
        uint8_t u8;
        int8_t i8;
        uint16_t u16;
        int16_t i16;
        uint32_t u32;
        int32_t i32;
        float f32;
        bool b;
        uint64_t u64;
        int64_t i64;
        double f64;
        gguf_str str;
        struct {
            gguf_vtype type; /* element type                                       */
            uint64_t n;      /* element count                                      */
            const void *data;/* fixed-size elements: raw little-endian bytes in file */
            gguf_value *items; /* STRING or ARRAY elements: n parsed values; else NULL */
        } arr;
    };
};

typedef struct {
    gguf_str key;
    gguf_value value;
} gguf_kv;

typedef struct {
    gguf_str name;
    uint32_t n_dims;
    uint64_t ne[GGUF_MAX_DIMS]; /* ne[0] = row length (fastest varying); unused dims = 1 */
    uint32_t ggml_type;         /* raw id as stored in the file                    */
    bn_tensor_type type;        /* resolved with the file's flavor                 */
    uint64_t offset;            /* relative to the start of the data section       */
    uint64_t nbytes;            /* size of the tensor data                         */
    const void *data;           /* points into the mapping                         */
} gguf_tensor;

typedef struct gguf_file {
    char *path;         /* for error messages                      */
    const uint8_t *base;/* mapping or caller's buffer                */
    uint64_t size;
    int owns_mapping;   /* 1 if we must munmap base                 */
    uint32_t version;
    uint64_t alignment;
    gguf_flavor flavor;
    uint64_t n_kv;
    gguf_kv *kv;
    uint64_t n_tensors;
    gguf_tensor *tensors;
    uint64_t data_offset; /* start of the tensor data section in the file */
} gguf_file;

/* Opens and validates a GGUF file (mmap). */
bitnet_status gguf_open(const char *path, gguf_file **out);
/* Same over a caller-owned buffer that must outlive the gguf_file (embedded
 * model, fuzzing). `name` is used in error messages. */
bitnet_status gguf_open_memory(const void *data, uint64_t size, const char *name, gguf_file **out);
void gguf_close(gguf_file *f);

const gguf_kv *gguf_find_kv(const gguf_file *f, const char *key);
const gguf_tensor *gguf_find_tensor(const gguf_file *f, const char *name);
int gguf_str_eq(gguf_str s, const char *c);

/* Typed getters: return 1 and set *out if the key exists and its value
 * converts losslessly to the requested type; 0 if absent; -1 if present with
 * an incompatible type or out of range (bn_error already set, naming the key). */
int gguf_get_u32(const gguf_file *f, const char *key, uint32_t *out);
int gguf_get_f32(const gguf_file *f, const char *key, float *out);
int gguf_get_bool(const gguf_file *f, const char *key, bool *out);
/* Copies the string value into buf (NUL-terminated, truncated to cap-1). */
int gguf_get_str(const gguf_file *f, const char *key, char *buf, size_t cap);
/* Returns the array kv if it exists and has element type `elem_type`. */
const gguf_value *gguf_get_arr(const gguf_file *f, const char *key, gguf_vtype elem_type);

/* Metadata value types: encoded size of a fixed-size value (0 for STRING,
 * ARRAY and invalid types) and a name for messages ("uint32", "string"...). */
uint64_t gguf_vtype_size(gguf_vtype t);
const char *gguf_vtype_name(gguf_vtype t);
/* Whether two values have the same type and the same contents (arrays element
 * by element, nested arrays too): 1 or 0. */
int gguf_value_equal(const gguf_value *a, const gguf_value *b);

/* Type traits of our resolved tensor types. */
typedef struct {
    const char *name;     /* "f32", "tq2_0", "i2_s", ... */
    uint32_t block_elems; /* weights per block          */
    uint32_t block_bytes; /* bytes per block            */
} bn_type_traits;
const bn_type_traits *bn_type_get_traits(bn_tensor_type t);
/* Resolves a file's raw type id with its flavor; BN_TT_UNKNOWN if unknown. */
bn_tensor_type gguf_tensor_type_resolve(uint32_t ggml_type, gguf_flavor flavor);
/* Raw id to write for a resolved type in the given flavor (UINT32_MAX if none). */
uint32_t gguf_tensor_type_id(bn_tensor_type t, gguf_flavor flavor);
/* Bytes a tensor of this type and shape occupies; 0 on overflow or when
 * ne[0] is not a multiple of the block size. I2_S adds its trailing scale. */
uint64_t bn_tensor_nbytes(bn_tensor_type t, const uint64_t ne[GGUF_MAX_DIMS]);

/* ---- writer ---------------------------------------------------------- */
typedef struct gguf_writer gguf_writer;

gguf_writer *gguf_writer_new(void);
void gguf_writer_free(gguf_writer *w);
/* gguf_writer_write reports fn(user, lo + (hi - lo) * bytes written / total)
 * after each tensor (a tool's progress line). */
void gguf_writer_set_progress(gguf_writer *w, void (*fn)(void *user, double frac), void *user, double lo, double hi);
void gguf_writer_set_flavor(gguf_writer *w, gguf_flavor flavor);
/* Key setters copy their arguments. Setting an existing key replaces it. */
void gguf_writer_set_u32(gguf_writer *w, const char *key, uint32_t v);
void gguf_writer_set_i32(gguf_writer *w, const char *key, int32_t v);
void gguf_writer_set_u64(gguf_writer *w, const char *key, uint64_t v);
void gguf_writer_set_f32(gguf_writer *w, const char *key, float v);
void gguf_writer_set_bool(gguf_writer *w, const char *key, bool v);
void gguf_writer_set_str(gguf_writer *w, const char *key, const char *v);
void gguf_writer_set_arr_str(gguf_writer *w, const char *key, const char *const *v,
                             const uint64_t *lens, uint64_t n); /* lens may be NULL (strlen) */
/* Array of fixed-size elements copied from raw little-endian bytes. */
void gguf_writer_set_arr_data(gguf_writer *w, const char *key, gguf_vtype elem_type,
                              const void *data, uint64_t n);
/* Copies any parsed value (including nested arrays) from a reader. */
void gguf_writer_set_value(gguf_writer *w, const char *key, const gguf_value *v);
/* Adds a tensor; `data` (nbytes long) is referenced, not copied, and must stay
 * valid until gguf_writer_write() returns. ne has n_dims entries. */
void gguf_writer_add_tensor(gguf_writer *w, const char *name, uint32_t n_dims, const uint64_t *ne,
                            bn_tensor_type type, const void *data, uint64_t nbytes);
/* Writes the file atomically (a temporary beside PATH, then rename; atomic_file.h). */
bitnet_status gguf_writer_write(gguf_writer *w, const char *path);
/* Writes into a malloc'd buffer (tests, fuzz seeds). */
bitnet_status gguf_writer_write_memory(gguf_writer *w, uint8_t **out, uint64_t *size);

#endif
