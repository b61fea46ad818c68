/*
 * gguf.h - GGUF v3 reader (mmap, zero-copy) and writer.
 *
 * Reader: every byte of the file is treated as hostile. All counts, lengths,
 * offsets and tensor extents are overflow-checked and bounds-checked against
 * the file size before use; a bad file yields BITNET_ERR_FORMAT with a one-line
 * message "FILE: what is wrong" (see bitnet_last_error()).
 * Strings returned by the reader point into the mapping and are NOT
 * NUL-terminated: use bn_gguf_str.len.
 */
#ifndef BN_GGUF_H
#define BN_GGUF_H

#include <stdbool.h>
#include <stdint.h>

#include "common.h"

#define BN_GGUF_MAGIC 0x46554747u /* "GGUF" little-endian */
#define BN_GGUF_VERSION 3
#define BN_GGUF_DEFAULT_ALIGNMENT 32

/* Limits that keep a hostile file from making us allocate without bound. */
#define BN_GGUF_MAX_TENSORS (1u << 20)
#define BN_GGUF_MAX_KV (1u << 20)
#define BN_GGUF_MAX_DIMS 4
#define BN_GGUF_MAX_ARRAY_DEPTH 8

typedef enum {
    BN_GGUF_TYPE_UINT8 = 0,
    BN_GGUF_TYPE_INT8 = 1,
    BN_GGUF_TYPE_UINT16 = 2,
    BN_GGUF_TYPE_INT16 = 3,
    BN_GGUF_TYPE_UINT32 = 4,
    BN_GGUF_TYPE_INT32 = 5,
    BN_GGUF_TYPE_FLOAT32 = 6,
    BN_GGUF_TYPE_BOOL = 7,
    BN_GGUF_TYPE_STRING = 8,
    BN_GGUF_TYPE_ARRAY = 9,
    BN_GGUF_TYPE_UINT64 = 10,
    BN_GGUF_TYPE_INT64 = 11,
    BN_GGUF_TYPE_FLOAT64 = 12,
    BN_GGUF_TYPE_COUNT
} bn_gguf_vtype;

/* ggml tensor type ids as upstream llama.cpp numbers them. bitnet.cpp's fork
 * reuses some numbers (I2_S = 36, TL1 = 38, TL2 = 39, clashing with upstream
 * 39 = MXFP4): see bn_gguf_tensor_type_resolve(). */
enum {
    BN_GGML_TYPE_F32 = 0,
    BN_GGML_TYPE_F16 = 1,
    BN_GGML_TYPE_Q4_0 = 2,
    BN_GGML_TYPE_Q4_1 = 3,
    BN_GGML_TYPE_Q5_0 = 6,
    BN_GGML_TYPE_Q5_1 = 7,
    BN_GGML_TYPE_Q8_0 = 8,
    BN_GGML_TYPE_Q8_1 = 9,
    BN_GGML_TYPE_Q2_K = 10,
    BN_GGML_TYPE_Q3_K = 11,
    BN_GGML_TYPE_Q4_K = 12,
    BN_GGML_TYPE_Q5_K = 13,
    BN_GGML_TYPE_Q6_K = 14,
    BN_GGML_TYPE_Q8_K = 15,
    BN_GGML_TYPE_I8 = 24,
    BN_GGML_TYPE_I16 = 25,
    BN_GGML_TYPE_I32 = 26,
    BN_GGML_TYPE_I64 = 27,
    BN_GGML_TYPE_F64 = 28,
    BN_GGML_TYPE_BF16 = 30,
    BN_GGML_TYPE_TQ1_0 = 34,
    BN_GGML_TYPE_TQ2_0 = 35,
    BN_GGML_TYPE_MXFP4 = 39,
    /* bitnet.cpp fork numbering */
    BN_GGML_TYPE_BITNETCPP_I2_S = 36,
    BN_GGML_TYPE_BITNETCPP_TL1 = 38,
    BN_GGML_TYPE_BITNETCPP_TL2 = 39,
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
    BN_GGUF_FLAVOR_UPSTREAM = 0, /* llama.cpp / ggml                           */
    BN_GGUF_FLAVOR_BITNETCPP = 1 /* microsoft/BitNet fork (I2_S=36, TL1/TL2)   */
} bn_gguf_flavor;

typedef struct {
    uint64_t len;
    const char *data; /* not NUL-terminated */
} bn_gguf_str;

typedef struct bn_gguf_value bn_gguf_value;
struct bn_gguf_value {
    bn_gguf_vtype type;
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
        bn_gguf_str str;
        struct {
            bn_gguf_vtype type; /* element type                                       */
            uint64_t n;      /* element count                                      */
            const void *data;/* fixed-size elements: raw little-endian bytes in file */
            bn_gguf_value *items; /* STRING or ARRAY elements: n parsed values; else NULL */
        } arr;
    };
};

typedef struct {
    bn_gguf_str key;
    bn_gguf_value value;
} bn_gguf_kv;

typedef struct {
    bn_gguf_str name;
    uint32_t n_dims;
    uint64_t ne[BN_GGUF_MAX_DIMS]; /* ne[0] = row length (fastest varying); unused dims = 1 */
    uint32_t ggml_type;         /* raw id as stored in the file                    */
    bn_tensor_type type;        /* resolved with the file's flavor                 */
    uint64_t offset;            /* relative to the start of the data section       */
    uint64_t nbytes;            /* size of the tensor data                         */
    const void *data;           /* points into the mapping                         */
} bn_gguf_tensor;

typedef struct bn_gguf_file {
    char *path;         /* for error messages                      */
    const uint8_t *base;/* mapping or caller's buffer                */
    uint64_t size;
    int owns_mapping;   /* 1 if we must munmap base                 */
    uint32_t version;
    uint64_t alignment;
    bn_gguf_flavor flavor;
    uint64_t n_kv;
    bn_gguf_kv *kv;
    uint64_t n_tensors;
    bn_gguf_tensor *tensors;
    uint64_t data_offset; /* start of the tensor data section in the file */
} bn_gguf_file;

/* Opens and validates a GGUF file (mmap). */
bitnet_status bn_gguf_open(const char *path, bn_gguf_file **out);
/* Same over a caller-owned buffer that must outlive the bn_gguf_file (embedded
 * model, fuzzing). `name` is used in error messages. */
bitnet_status bn_gguf_open_memory(const void *data, uint64_t size, const char *name, bn_gguf_file **out);
void bn_gguf_close(bn_gguf_file *f);

const bn_gguf_kv *bn_gguf_find_kv(const bn_gguf_file *f, const char *key);
const bn_gguf_tensor *bn_gguf_find_tensor(const bn_gguf_file *f, const char *name);
int bn_gguf_str_eq(bn_gguf_str s, const char *c);

/* Typed getters: return 1 and set *out if the key exists and its value
 * converts losslessly to the requested type; 0 if absent; -1 if present with
 * an incompatible type or out of range (bn_error already set, naming the key). */
int bn_gguf_get_u32(const bn_gguf_file *f, const char *key, uint32_t *out);
int bn_gguf_get_f32(const bn_gguf_file *f, const char *key, float *out);
int bn_gguf_get_bool(const bn_gguf_file *f, const char *key, bool *out);
/* Copies the string value into buf (NUL-terminated, truncated to cap-1). */
int bn_gguf_get_str(const bn_gguf_file *f, const char *key, char *buf, size_t cap);
/* Returns the array kv if it exists and has element type `elem_type`. */
const bn_gguf_value *bn_gguf_get_arr(const bn_gguf_file *f, const char *key, bn_gguf_vtype elem_type);

/* Metadata value types: encoded size of a fixed-size value (0 for STRING,
 * ARRAY and invalid types) and a name for messages ("uint32", "string"...). */
uint64_t bn_gguf_vtype_size(bn_gguf_vtype t);
const char *bn_gguf_vtype_name(bn_gguf_vtype t);
/* Whether two values have the same type and the same contents (arrays element
 * by element, nested arrays too): 1 or 0. */
int bn_gguf_value_equal(const bn_gguf_value *a, const bn_gguf_value *b);

/* Type traits of our resolved tensor types. */
typedef struct {
    const char *name;     /* "f32", "tq2_0", "i2_s", ... */
    uint32_t block_elems; /* weights per block          */
    uint32_t block_bytes; /* bytes per block            */
} bn_type_traits;
const bn_type_traits *bn_type_get_traits(bn_tensor_type t);
/* Resolves a file's raw type id with its flavor; BN_TT_UNKNOWN if unknown. */
bn_tensor_type bn_gguf_tensor_type_resolve(uint32_t ggml_type, bn_gguf_flavor flavor);
/* Raw id to write for a resolved type in the given flavor (UINT32_MAX if none). */
uint32_t bn_gguf_tensor_type_id(bn_tensor_type t, bn_gguf_flavor flavor);
/* Bytes a tensor of this type and shape occupies; 0 on overflow or when
 * ne[0] is not a multiple of the block size. I2_S adds its trailing scale. */
uint64_t bn_tensor_nbytes(bn_tensor_type t, const uint64_t ne[BN_GGUF_MAX_DIMS]);

/* ---- writer ---------------------------------------------------------- */
typedef struct bn_gguf_writer bn_gguf_writer;

bn_gguf_writer *bn_gguf_writer_new(void);
void bn_gguf_writer_free(bn_gguf_writer *w);
/* bn_gguf_writer_write reports fn(user, lo + (hi - lo) * bytes written / total)
 * after each tensor (a tool's progress line). */
void bn_gguf_writer_set_progress(bn_gguf_writer *w, void (*fn)(void *user, double frac), void *user, double lo, double hi);
void bn_gguf_writer_set_flavor(bn_gguf_writer *w, bn_gguf_flavor flavor);
/* Key setters copy their arguments. Setting an existing key replaces it. */
void bn_gguf_writer_set_u32(bn_gguf_writer *w, const char *key, uint32_t v);
void bn_gguf_writer_set_i32(bn_gguf_writer *w, const char *key, int32_t v);
void bn_gguf_writer_set_u64(bn_gguf_writer *w, const char *key, uint64_t v);
void bn_gguf_writer_set_f32(bn_gguf_writer *w, const char *key, float v);
void bn_gguf_writer_set_bool(bn_gguf_writer *w, const char *key, bool v);
void bn_gguf_writer_set_str(bn_gguf_writer *w, const char *key, const char *v);
void bn_gguf_writer_set_arr_str(bn_gguf_writer *w, const char *key, const char *const *v,
                             const uint64_t *lens, uint64_t n); /* lens may be NULL (strlen) */
/* Array of fixed-size elements copied from raw little-endian bytes. */
void bn_gguf_writer_set_arr_data(bn_gguf_writer *w, const char *key, bn_gguf_vtype elem_type,
                              const void *data, uint64_t n);
/* Copies any parsed value (including nested arrays) from a reader. */
void bn_gguf_writer_set_value(bn_gguf_writer *w, const char *key, const bn_gguf_value *v);
/* Adds a tensor; `data` (nbytes long) is referenced, not copied, and must stay
 * valid until bn_gguf_writer_write() returns. ne has n_dims entries. */
void bn_gguf_writer_add_tensor(bn_gguf_writer *w, const char *name, uint32_t n_dims, const uint64_t *ne,
                            bn_tensor_type type, const void *data, uint64_t nbytes);
/* Writes the file atomically (a temporary beside PATH, then rename; atomic_file.h). */
bitnet_status bn_gguf_writer_write(bn_gguf_writer *w, const char *path);
/* Writes into a malloc'd buffer (tests, fuzz seeds). */
bitnet_status bn_gguf_writer_write_memory(bn_gguf_writer *w, uint8_t **out, uint64_t *size);

#endif
