/* gguf.c - GGUF v3 (and v2) reader over an mmap or a caller buffer, typed
 * getters, and the tensor type tables (traits, sizes, flavor resolution).
 *
 * Every byte of the input is hostile. All reads go through a bounds-checked
 * cursor; every count is compared with the bytes actually left in the file
 * before anything is allocated for it, so a lying count fails fast. See
 * docs/gguf.md for the rules and the flavor (type numbering) decision. */
#include "formats/gguf.h"
#include "formats/mapped_file.h"

#include <errno.h>
#include <stdarg.h>

/* Smallest possible encodings: they turn a count into a byte budget. */
#define KV_MIN_BYTES 13     /* key length (8) + value type (4) + 1-byte value     */
#define TENSOR_MIN_BYTES 32 /* name length (8) + n_dims (4) + ne[0] (8) + type (4) + offset (8) */
/* Parsed STRING/ARRAY array elements in one file. Each costs a bn_gguf_value
 * (40 bytes) in memory while it may cost only 8 bytes of file, so this keeps
 * a hostile file from making us allocate ~5x its size. Real vocabularies
 * have < 300k entries. */
#define MAX_ARRAY_ITEMS (1u << 25)

#define TRY(x)                                  \
    do {                                        \
        bitnet_status s_ = (x);                 \
        if (s_ != BITNET_OK) return s_;         \
    } while (0)

typedef unsigned long long ull; /* for printf */

/* ---- value types --------------------------------------------------------- */

static const struct {
    const char *name;
    uint8_t size; /* 0: variable (string, array) */
} k_vtypes[BN_GGUF_TYPE_COUNT] = {
    [BN_GGUF_TYPE_UINT8] = {"uint8", 1},     [BN_GGUF_TYPE_INT8] = {"int8", 1},
    [BN_GGUF_TYPE_UINT16] = {"uint16", 2},   [BN_GGUF_TYPE_INT16] = {"int16", 2},
    [BN_GGUF_TYPE_UINT32] = {"uint32", 4},   [BN_GGUF_TYPE_INT32] = {"int32", 4},
    [BN_GGUF_TYPE_FLOAT32] = {"float32", 4}, [BN_GGUF_TYPE_BOOL] = {"bool", 1},
    [BN_GGUF_TYPE_STRING] = {"string", 0},   [BN_GGUF_TYPE_ARRAY] = {"array", 0},
    [BN_GGUF_TYPE_UINT64] = {"uint64", 8},   [BN_GGUF_TYPE_INT64] = {"int64", 8},
    [BN_GGUF_TYPE_FLOAT64] = {"float64", 8},
};

uint64_t bn_gguf_vtype_size(bn_gguf_vtype t) { return (unsigned)t < BN_GGUF_TYPE_COUNT ? k_vtypes[t].size : 0; }
const char *bn_gguf_vtype_name(bn_gguf_vtype t) {
    return (unsigned)t < BN_GGUF_TYPE_COUNT ? k_vtypes[t].name : "invalid";
}

int bn_gguf_value_equal(const bn_gguf_value *a, const bn_gguf_value *b) {
    if (a->type != b->type) return 0;
    if (a->type == BN_GGUF_TYPE_STRING)
        return a->str.len == b->str.len && (!a->str.len || !memcmp(a->str.data, b->str.data, a->str.len));
    if (a->type != BN_GGUF_TYPE_ARRAY) {
        uint64_t n = bn_gguf_vtype_size(a->type);
        return n && !memcmp(&a->u64, &b->u64, n); /* the union's first n bytes hold the value */
    }
    if (a->arr.type != b->arr.type || a->arr.n != b->arr.n) return 0;
    uint64_t es = bn_gguf_vtype_size(a->arr.type);
    if (es) return !a->arr.n || !memcmp(a->arr.data, b->arr.data, a->arr.n * es);
    for (uint64_t i = 0; i < a->arr.n; i++)
        if (!bn_gguf_value_equal(&a->arr.items[i], &b->arr.items[i])) return 0;
    return 1;
}

/* ---- tensor types --------------------------------------------------------- */

static const bn_type_traits k_traits[BN_TT_COUNT] = {
    [BN_TT_UNKNOWN] = {"unknown", 0, 0},
    [BN_TT_F32] = {"f32", 1, 4},
    [BN_TT_F16] = {"f16", 1, 2},
    [BN_TT_BF16] = {"bf16", 1, 2},
    [BN_TT_Q8_0] = {"q8_0", 32, 34},   /* f16 scale + 32 x int8            */
    [BN_TT_TQ1_0] = {"tq1_0", 256, 54}, /* 48 + 4 bytes of base-3 trits + f16 */
    [BN_TT_TQ2_0] = {"tq2_0", 256, 66}, /* 64 bytes of 2-bit codes + f16    */
    /* bitnet.cpp types: 4 codes per byte, but the tensor size is not blocks x
     * bytes (a 32-byte tail holding the fp32 scale, or TL2's own formula): see
     * bn_tensor_nbytes. (4, 1) is what bitnet.cpp's gguf-py lists for them. */
    [BN_TT_I2_S] = {"i2_s", 4, 1},
    [BN_TT_TL1] = {"tl1", 4, 1},
    [BN_TT_TL2] = {"tl2", 4, 1},
    [BN_TT_MXFP4] = {"mxfp4", 32, 17}, /* E8M0 exponent + 16 bytes of E2M1 */
    [BN_TT_Q4_0] = {"q4_0", 32, 18},   /* f16 d + 16 bytes of nibbles       */
    [BN_TT_Q5_0] = {"q5_0", 32, 22},   /* f16 d + 4 bytes of fifth bits + 16 */
    [BN_TT_Q4_K] = {"q4_K", 256, 144}, /* f16 d, dmin, 12 bytes of scales, 128 */
    [BN_TT_Q5_K] = {"q5_K", 256, 176}, /* as q4_K + 32 bytes of fifth bits    */
    [BN_TT_Q6_K] = {"q6_K", 256, 210}, /* 128 + 64 bytes of codes, 16 scales, f16 d */
};

const bn_type_traits *bn_type_get_traits(bn_tensor_type t) {
    return &k_traits[(unsigned)t < BN_TT_COUNT ? t : BN_TT_UNKNOWN];
}

bn_tensor_type bn_gguf_tensor_type_resolve(uint32_t id, bn_gguf_flavor flavor) {
    switch (id) { /* ids 0..35 mean the same in both numberings */
    case BN_GGML_TYPE_F32: return BN_TT_F32;
    case BN_GGML_TYPE_F16: return BN_TT_F16;
    case BN_GGML_TYPE_Q8_0: return BN_TT_Q8_0;
    case BN_GGML_TYPE_BF16: return BN_TT_BF16;
    case BN_GGML_TYPE_TQ1_0: return BN_TT_TQ1_0;
    case BN_GGML_TYPE_TQ2_0: return BN_TT_TQ2_0;
    case BN_GGML_TYPE_Q4_0: return BN_TT_Q4_0;
    case BN_GGML_TYPE_Q5_0: return BN_TT_Q5_0;
    case BN_GGML_TYPE_Q4_K: return BN_TT_Q4_K;
    case BN_GGML_TYPE_Q5_K: return BN_TT_Q5_K;
    case BN_GGML_TYPE_Q6_K: return BN_TT_Q6_K;
    default: break;
    }
    if (flavor == BN_GGUF_FLAVOR_BITNETCPP) {
        if (id == BN_GGML_TYPE_BITNETCPP_I2_S) return BN_TT_I2_S;
        if (id == BN_GGML_TYPE_BITNETCPP_TL1) return BN_TT_TL1;
        if (id == BN_GGML_TYPE_BITNETCPP_TL2) return BN_TT_TL2;
    } else if (id == BN_GGML_TYPE_MXFP4) {
        return BN_TT_MXFP4;
    }
    return BN_TT_UNKNOWN;
}

uint32_t bn_gguf_tensor_type_id(bn_tensor_type t, bn_gguf_flavor flavor) {
    int fork = flavor == BN_GGUF_FLAVOR_BITNETCPP;
    switch (t) {
    case BN_TT_F32: return BN_GGML_TYPE_F32;
    case BN_TT_F16: return BN_GGML_TYPE_F16;
    case BN_TT_BF16: return BN_GGML_TYPE_BF16;
    case BN_TT_Q8_0: return BN_GGML_TYPE_Q8_0;
    case BN_TT_TQ1_0: return BN_GGML_TYPE_TQ1_0;
    case BN_TT_TQ2_0: return BN_GGML_TYPE_TQ2_0;
    case BN_TT_Q4_0: return BN_GGML_TYPE_Q4_0;
    case BN_TT_Q5_0: return BN_GGML_TYPE_Q5_0;
    case BN_TT_Q4_K: return BN_GGML_TYPE_Q4_K;
    case BN_TT_Q5_K: return BN_GGML_TYPE_Q5_K;
    case BN_TT_Q6_K: return BN_GGML_TYPE_Q6_K;
    case BN_TT_I2_S: return fork ? BN_GGML_TYPE_BITNETCPP_I2_S : UINT32_MAX;
    case BN_TT_TL1: return fork ? BN_GGML_TYPE_BITNETCPP_TL1 : UINT32_MAX;
    case BN_TT_TL2: return fork ? BN_GGML_TYPE_BITNETCPP_TL2 : UINT32_MAX;
    case BN_TT_MXFP4: return fork ? UINT32_MAX : BN_GGML_TYPE_MXFP4;
    default: return UINT32_MAX;
    }
}

/* bitnet.cpp's TL2 size (its ggml_nbytes): only defined for 2-D tensors whose
 * rows hold at least one 256-weight two-bit tail; C integer division kept. */
static uint64_t tl2_nbytes(const uint64_t ne[BN_GGUF_MAX_DIMS]) {
    uint64_t a, b, n;
    if (ne[2] != 1 || ne[3] != 1 || ne[0] < 256) return 0;
    if (!bn_mul_ok(ne[0] - 256, ne[1], &a) || !bn_mul_ok(a / 3, 5, &a)) return 0;
    if (!bn_mul_ok(256, ne[1], &b) || !bn_mul_ok(b / 2, 4, &b)) return 0;
    if (!bn_add_ok(a / 8, b / 8, &n) || !bn_add_ok(n, (32 - n % 32) % 32, &n)) return 0;
    return bn_add_ok(n, 32, &n) ? n : 0;
}

uint64_t bn_tensor_nbytes(bn_tensor_type t, const uint64_t ne[BN_GGUF_MAX_DIMS]) {
    const bn_type_traits *tr = bn_type_get_traits(t);
    uint64_t n = 1, bytes;
    if (tr->block_elems == 0) return 0;
    for (int i = 0; i < BN_GGUF_MAX_DIMS; i++)
        if (ne[i] == 0 || !bn_mul_ok(n, ne[i], &n)) return 0;
    if (n > INT64_MAX || ne[0] % tr->block_elems != 0) return 0;
    /* bitnet.cpp (ggml.c ggml_nbytes, quantize_i2_s): n/4 bytes of 2-bit
     * codes, then 32 bytes whose first 4 are the per-tensor fp32 scale. */
    if (t == BN_TT_I2_S || t == BN_TT_TL1) return n / 4 + 32;
    if (t == BN_TT_TL2) return tl2_nbytes(ne);
    if (!bn_mul_ok(n / tr->block_elems, tr->block_bytes, &bytes)) return 0;
    return bytes;
}

/* Names of upstream ids we recognise but do not compute, for messages. */
static const char *upstream_type_name(uint32_t id) {
    static const char *const names[] = {
        [2] = "q4_0",     [3] = "q4_1",    [6] = "q5_0",     [7] = "q5_1",     [9] = "q8_1",
        [10] = "q2_K",    [11] = "q3_K",   [12] = "q4_K",    [13] = "q5_K",    [14] = "q6_K",
        [15] = "q8_K",    [16] = "iq2_xxs", [17] = "iq2_xs", [18] = "iq3_xxs", [19] = "iq1_s",
        [20] = "iq4_nl",  [21] = "iq3_s",  [22] = "iq2_s",   [23] = "iq4_xs",  [24] = "i8",
        [25] = "i16",     [26] = "i32",    [27] = "i64",     [28] = "f64",     [29] = "iq1_m",
        [31] = "q4_0_4_4", [32] = "q4_0_4_8", [33] = "q4_0_8_8", [40] = "nvfp4", [41] = "q1_0",
    };
    return id < sizeof names / sizeof names[0] ? names[id] : NULL;
}

/* ---- cursor ------------------------------------------------------------------ */

typedef struct {
    const char *path;
    const uint8_t *base;
    uint64_t size, pos;
    uint64_t n_items;  /* STRING/ARRAY array elements parsed so far */
    char where[112];   /* "key 'x'" / "tensor 'y'": prefix of messages */
} parser;

/* A printable, bounded copy of a (hostile) name for messages. */
static void fmt_name(char *out, size_t cap, const char *s, uint64_t len) {
    size_t o = 0;
    uint64_t i = 0;
    for (; i < len && i < 64 && o + 5 < cap; i++) {
        unsigned char c = (unsigned char)s[i];
        out[o++] = (c >= 0x20 && c < 0x7f) ? (char)c : '?';
    }
    if (i < len && o + 4 <= cap) {
        memcpy(out + o, "...", 3);
        o += 3;
    }
    out[o] = 0;
}

static void set_where(parser *P, const char *what, bn_gguf_str name) {
    char buf[80];
    fmt_name(buf, sizeof buf, name.data, name.len);
    snprintf(P->where, sizeof P->where, "%s '%s'", what, buf);
}

static bitnet_status perr(const parser *P, bitnet_status code, const char *fmt, ...) BN_PRINTF(3, 4);
static bitnet_status perr(const parser *P, bitnet_status code, const char *fmt, ...) {
    char msg[360];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (P->where[0]) return bn_error(code, "%s: %s: %s", P->path, P->where, msg);
    return bn_error(code, "%s: %s", P->path, msg);
}

static uint64_t left(const parser *P) { return P->size - P->pos; }

static bitnet_status need(const parser *P, uint64_t n, const char *what) {
    if (n <= left(P)) return BITNET_OK;
    return perr(P, BITNET_ERR_FORMAT, "file truncated: %s at offset %llu needs %llu bytes, %llu left",
                what, (ull)P->pos, (ull)n, (ull)left(P));
}

/* Reads an n-byte little-endian unsigned integer (byte by byte: portable,
 * and the mapping carries no alignment guarantee). */
static bitnet_status rd_uint(parser *P, unsigned n, const char *what, uint64_t *out) {
    TRY(need(P, n, what));
    uint64_t v = 0;
    for (unsigned i = n; i-- > 0;) v = v << 8 | P->base[P->pos + i];
    P->pos += n;
    *out = v;
    return BITNET_OK;
}

static bitnet_status rd_u32(parser *P, const char *what, uint32_t *out) {
    uint64_t v;
    TRY(rd_uint(P, 4, what, &v));
    *out = (uint32_t)v;
    return BITNET_OK;
}

static bitnet_status rd_u64(parser *P, const char *what, uint64_t *out) { return rd_uint(P, 8, what, out); }

static bitnet_status rd_str(parser *P, const char *what, bn_gguf_str *s) {
    char lw[64];
    uint64_t len;
    snprintf(lw, sizeof lw, "%s length", what);
    TRY(rd_u64(P, lw, &len));
    if (len > left(P))
        return perr(P, BITNET_ERR_FORMAT, "%s length %llu at offset %llu exceeds the %llu bytes left in the file",
                    what, (ull)len, (ull)(P->pos - 8), (ull)left(P));
    s->len = len;
    s->data = (const char *)P->base + P->pos;
    P->pos += len;
    return BITNET_OK;
}

/* ---- metadata values ---------------------------------------------------------- */

static void free_value(bn_gguf_value *v) {
    if (v->type != BN_GGUF_TYPE_ARRAY || !v->arr.items) return;
    for (uint64_t i = 0; i < v->arr.n; i++) free_value(&v->arr.items[i]);
    free(v->arr.items);
    v->arr.items = NULL;
}

static bitnet_status parse_scalar(parser *P, bn_gguf_vtype t, bn_gguf_value *v) {
    uint64_t x;
    TRY(rd_uint(P, k_vtypes[t].size, "value", &x));
    switch (t) {
    case BN_GGUF_TYPE_UINT8: v->u8 = (uint8_t)x; break;
    case BN_GGUF_TYPE_INT8: v->i8 = (int8_t)(uint8_t)x; break;
    case BN_GGUF_TYPE_UINT16: v->u16 = (uint16_t)x; break;
    case BN_GGUF_TYPE_INT16: v->i16 = (int16_t)(uint16_t)x; break;
    case BN_GGUF_TYPE_UINT32: v->u32 = (uint32_t)x; break;
    case BN_GGUF_TYPE_INT32: v->i32 = (int32_t)(uint32_t)x; break;
    case BN_GGUF_TYPE_UINT64: v->u64 = x; break;
    case BN_GGUF_TYPE_INT64: v->i64 = (int64_t)x; break;
    case BN_GGUF_TYPE_FLOAT32: {
        uint32_t b = (uint32_t)x;
        memcpy(&v->f32, &b, 4);
        break;
    }
    case BN_GGUF_TYPE_FLOAT64: memcpy(&v->f64, &x, 8); break;
    case BN_GGUF_TYPE_BOOL:
        if (x > 1) return perr(P, BITNET_ERR_FORMAT, "bool value at offset %llu is %llu, must be 0 or 1",
                               (ull)(P->pos - 1), (ull)x);
        v->b = x != 0;
        break;
    default: break;
    }
    return BITNET_OK;
}

static bitnet_status parse_array(parser *P, int depth, bn_gguf_value *v);

static bitnet_status parse_value(parser *P, int depth, bn_gguf_value *v) {
    if (v->type == BN_GGUF_TYPE_STRING) return rd_str(P, "string value", &v->str);
    if (v->type == BN_GGUF_TYPE_ARRAY) return parse_array(P, depth + 1, v);
    return parse_scalar(P, v->type, v);
}

/* Fixed-size elements stay in the file (arr.data); strings and arrays are
 * parsed into arr.items. `depth` is this array's nesting level (1 = top). */
static bitnet_status parse_array(parser *P, int depth, bn_gguf_value *v) {
    uint32_t et;
    uint64_t n, bytes;
    v->arr.n = 0;
    v->arr.data = NULL;
    v->arr.items = NULL;
    TRY(rd_u32(P, "array element type", &et));
    if (et >= BN_GGUF_TYPE_COUNT)
        return perr(P, BITNET_ERR_FORMAT, "array element type %u at offset %llu is not a GGUF value type",
                    et, (ull)(P->pos - 4));
    if (et == BN_GGUF_TYPE_ARRAY && depth >= BN_GGUF_MAX_ARRAY_DEPTH)
        return perr(P, BITNET_ERR_FORMAT, "arrays nested deeper than %d levels", BN_GGUF_MAX_ARRAY_DEPTH);
    TRY(rd_u64(P, "array length", &n));
    v->arr.type = (bn_gguf_vtype)et;
    uint64_t es = k_vtypes[et].size;
    if (es) {
        if (!bn_mul_ok(n, es, &bytes) || bytes > left(P))
            return perr(P, BITNET_ERR_FORMAT, "array of %llu %s elements at offset %llu exceeds the %llu bytes left in the file",
                        (ull)n, k_vtypes[et].name, (ull)(P->pos - 8), (ull)left(P));
        for (uint64_t i = 0; et == BN_GGUF_TYPE_BOOL && i < n; i++)
            if (P->base[P->pos + i] > 1)
                return perr(P, BITNET_ERR_FORMAT, "bool array element %llu is %u, must be 0 or 1", (ull)i,
                            P->base[P->pos + i]);
        v->arr.n = n;
        v->arr.data = P->base + P->pos;
        P->pos += bytes;
        return BITNET_OK;
    }
    uint64_t min = et == BN_GGUF_TYPE_STRING ? 8 : 12; /* length / type + length */
    if (n > left(P) / min)
        return perr(P, BITNET_ERR_FORMAT, "array length %llu at offset %llu exceeds what the %llu bytes left in the file can hold (%s elements need >= %llu bytes each)",
                    (ull)n, (ull)(P->pos - 8), (ull)left(P), k_vtypes[et].name, (ull)min);
    if (n > MAX_ARRAY_ITEMS - P->n_items)
        return perr(P, BITNET_ERR_FORMAT, "more than %u string/array elements in arrays", MAX_ARRAY_ITEMS);
    if (n == 0) return BITNET_OK;
    v->arr.items = calloc(n, sizeof *v->arr.items);
    if (!v->arr.items) return perr(P, BITNET_ERR_NOMEM, "out of memory for %llu array elements", (ull)n);
    v->arr.n = n; /* from here free_value() owns the items */
    P->n_items += n;
    for (uint64_t i = 0; i < n; i++) {
        v->arr.items[i].type = (bn_gguf_vtype)et;
        TRY(parse_value(P, depth, &v->arr.items[i]));
    }
    return BITNET_OK;
}

/* ---- file structure --------------------------------------------------------------- */

static bitnet_status parse_header(parser *P, bn_gguf_file *f) {
    uint32_t magic;
    TRY(rd_u32(P, "magic", &magic));
    if (magic != BN_GGUF_MAGIC) {
        const uint8_t *m = P->base;
        return perr(P, BITNET_ERR_FORMAT, "not a GGUF file (magic bytes %02x %02x %02x %02x, expected \"GGUF\")",
                    m[0], m[1], m[2], m[3]);
    }
    TRY(rd_u32(P, "version", &f->version));
    if (f->version == 1)
        return perr(P, BITNET_ERR_FORMAT, "GGUF version 1 is not supported (32-bit counts); re-convert the model to version 3");
    if (f->version == 0x02000000u || f->version == 0x03000000u)
        return perr(P, BITNET_ERR_FORMAT, "big-endian GGUF files are not supported");
    if (f->version != 2 && f->version != BN_GGUF_VERSION) /* v2 has the v3 layout */
        return perr(P, BITNET_ERR_FORMAT, "unsupported GGUF version %u (expected 3)", f->version);
    TRY(rd_u64(P, "tensor count", &f->n_tensors));
    TRY(rd_u64(P, "key/value count", &f->n_kv));
    if (f->n_tensors > BN_GGUF_MAX_TENSORS)
        return perr(P, BITNET_ERR_FORMAT, "tensor count %llu exceeds the limit of %u", (ull)f->n_tensors, BN_GGUF_MAX_TENSORS);
    if (f->n_kv > BN_GGUF_MAX_KV)
        return perr(P, BITNET_ERR_FORMAT, "key/value count %llu exceeds the limit of %u", (ull)f->n_kv, BN_GGUF_MAX_KV);
    /* both are small now: this cannot overflow */
    if (f->n_tensors * TENSOR_MIN_BYTES + f->n_kv * KV_MIN_BYTES > left(P))
        return perr(P, BITNET_ERR_FORMAT, "tensor count %llu and key/value count %llu need more than the %llu bytes left in the file",
                    (ull)f->n_tensors, (ull)f->n_kv, (ull)left(P));
    return BITNET_OK;
}

static bitnet_status parse_kvs(parser *P, bn_gguf_file *f) {
    uint64_t n = f->n_kv;
    f->n_kv = 0;
    if (n && !(f->kv = calloc(n, sizeof *f->kv))) return perr(P, BITNET_ERR_NOMEM, "out of memory for %llu keys", (ull)n);
    f->n_kv = n;
    for (uint64_t i = 0; i < n; i++) {
        bn_gguf_kv *kv = &f->kv[i];
        uint32_t t;
        snprintf(P->where, sizeof P->where, "key #%llu", (ull)i);
        TRY(rd_str(P, "key", &kv->key));
        set_where(P, "key", kv->key);
        TRY(rd_u32(P, "value type", &t));
        if (t >= BN_GGUF_TYPE_COUNT)
            return perr(P, BITNET_ERR_FORMAT, "value type %u at offset %llu is not a GGUF value type", t, (ull)(P->pos - 4));
        kv->value.type = (bn_gguf_vtype)t;
        TRY(parse_value(P, 0, &kv->value));
    }
    P->where[0] = 0;
    return BITNET_OK;
}

static bitnet_status parse_tensor_info(parser *P, bn_gguf_tensor *t, uint64_t idx) {
    snprintf(P->where, sizeof P->where, "tensor #%llu", (ull)idx);
    TRY(rd_str(P, "tensor name", &t->name));
    set_where(P, "tensor", t->name);
    TRY(rd_u32(P, "n_dims", &t->n_dims));
    if (t->n_dims == 0 || t->n_dims > BN_GGUF_MAX_DIMS)
        return perr(P, BITNET_ERR_FORMAT, "n_dims is %u, must be 1..%d", t->n_dims, BN_GGUF_MAX_DIMS);
    uint64_t n = 1;
    for (int i = 0; i < BN_GGUF_MAX_DIMS; i++) t->ne[i] = 1;
    for (uint32_t i = 0; i < t->n_dims; i++) {
        TRY(rd_u64(P, "dimension", &t->ne[i]));
        if (t->ne[i] == 0) /* ggml allows empty tensors; no model needs one */
            return perr(P, BITNET_ERR_FORMAT, "ne[%u] is 0 (empty tensors are not accepted)", i);
        if (t->ne[i] > INT64_MAX)
            return perr(P, BITNET_ERR_FORMAT, "ne[%u] = %llu is negative as a signed 64-bit count", i, (ull)t->ne[i]);
        if (!bn_mul_ok(n, t->ne[i], &n) || n > INT64_MAX)
            return perr(P, BITNET_ERR_FORMAT, "element count overflows 64 bits at ne[%u] = %llu", i, (ull)t->ne[i]);
    }
    TRY(rd_u32(P, "tensor type", &t->ggml_type));
    return rd_u64(P, "tensor offset", &t->offset);
}

static int str_cmp(const bn_gguf_str *a, const bn_gguf_str *b) {
    if (a->len != b->len) return a->len < b->len ? -1 : 1;
    return a->len ? memcmp(a->data, b->data, a->len) : 0;
}

typedef struct {
    bn_gguf_str s;
    uint64_t idx;
} named;

static int named_cmp(const void *a, const void *b) {
    const named *x = a, *y = b;
    int c = str_cmp(&x->s, &y->s);
    return c ? c : (x->idx < y->idx ? -1 : x->idx > y->idx);
}

/* Finds a repeated name in O(n log n) (n may be 2^20). Returns 1 and the
 * later index of a duplicate, 0 if all are distinct, -1 out of memory. */
static int find_duplicate(const void *items, size_t stride, size_t name_off, uint64_t n, uint64_t *dup) {
    if (n < 2) return 0;
    named *v = malloc(n * sizeof *v);
    if (!v) return -1;
    for (uint64_t i = 0; i < n; i++) {
        memcpy(&v[i].s, (const char *)items + i * stride + name_off, sizeof(bn_gguf_str));
        v[i].idx = i;
    }
    qsort(v, n, sizeof *v, named_cmp);
    int found = 0;
    for (uint64_t i = 1; i < n && !found; i++)
        if (str_cmp(&v[i - 1].s, &v[i].s) == 0) {
            found = 1;
            *dup = v[i].idx;
        }
    free(v);
    return found;
}

static bitnet_status check_unique(parser *P, const void *items, size_t stride, size_t name_off, uint64_t n,
                                  const char *what) {
    uint64_t dup = 0;
    int r = find_duplicate(items, stride, name_off, n, &dup);
    if (r < 0) return perr(P, BITNET_ERR_NOMEM, "out of memory checking %s names", what);
    if (r == 0) return BITNET_OK;
    bn_gguf_str name;
    memcpy(&name, (const char *)items + dup * stride + name_off, sizeof name);
    set_where(P, what, name);
    return perr(P, BITNET_ERR_FORMAT, "duplicate %s name (entry #%llu)", what, (ull)dup);
}

static bitnet_status read_alignment(parser *P, bn_gguf_file *f) {
    const bn_gguf_kv *kv = bn_gguf_find_kv(f, "general.alignment");
    f->alignment = BN_GGUF_DEFAULT_ALIGNMENT;
    if (!kv) return BITNET_OK;
    snprintf(P->where, sizeof P->where, "key 'general.alignment'");
    if (kv->value.type != BN_GGUF_TYPE_UINT32)
        return perr(P, BITNET_ERR_FORMAT, "has type %s, must be uint32", bn_gguf_vtype_name(kv->value.type));
    uint32_t a = kv->value.u32;
    if (a == 0 || (a & (a - 1)))
        return perr(P, BITNET_ERR_FORMAT, "alignment %u is not a non-zero power of two", a);
    f->alignment = a;
    P->where[0] = 0;
    return BITNET_OK;
}

/* Which numbering the file's type ids use (docs/gguf.md, "Flavor"):
 * ids 36 (I2_S) and 38 (TL1) exist only in bitnet.cpp (upstream retired
 * 36..38 from GGUF files), so they mark the file as bitnet.cpp. Id 39 is
 * MXFP4 upstream and in newer bitnet.cpp forks, but TL2 in the original
 * bitnet.cpp numbering: it is attributed only with positive evidence. */
static bitnet_status decide_flavor(parser *P, bn_gguf_file *f) {
    int has36 = 0, has38 = 0;
    const bn_gguf_tensor *t39 = NULL;
    for (uint64_t i = 0; i < f->n_tensors; i++) {
        uint32_t id = f->tensors[i].ggml_type;
        has36 |= id == BN_GGML_TYPE_BITNETCPP_I2_S;
        has38 |= id == BN_GGML_TYPE_BITNETCPP_TL1;
        if (id == BN_GGML_TYPE_MXFP4 && !t39) t39 = &f->tensors[i];
    }
    f->flavor = (has36 || has38) ? BN_GGUF_FLAVOR_BITNETCPP : BN_GGUF_FLAVOR_UPSTREAM;
    if (!t39 || has38) return BITNET_OK; /* TL1 beside it: original numbering, 39 = TL2 */
    char arch[64] = "";
    int has_arch = bn_gguf_get_str(f, "general.architecture", arch, sizeof arch) == 1;
    int bitnet_arch = has_arch && strncmp(arch, "bitnet", 6) == 0;
    if (!has36 && has_arch && !bitnet_arch) return BITNET_OK; /* upstream MXFP4 */
    const char *why = has36 ? "the file also has I2_S (36) tensors but no TL1 (38) tensor"
                      : has_arch ? "general.architecture is a bitnet one but the file has no TL1 (38) tensor"
                                 : "the file has no general.architecture";
    set_where(P, "tensor", t39->name);
    return perr(P, BITNET_ERR_UNSUPPORTED,
                "type id 39 is ambiguous (MXFP4 in llama.cpp and newer bitnet.cpp, TL2 in the original bitnet.cpp) and %s",
                why);
}

/* Resolves the type, computes the size and checks the data extent. */
static bitnet_status place_tensor(parser *P, bn_gguf_file *f, bn_gguf_tensor *t) {
    set_where(P, "tensor", t->name);
    t->type = bn_gguf_tensor_type_resolve(t->ggml_type, f->flavor);
    if (t->type == BN_TT_UNKNOWN) {
        const char *name = upstream_type_name(t->ggml_type);
        if (name) return perr(P, BITNET_ERR_UNSUPPORTED, "tensor type %s (id %u) is not supported", name, t->ggml_type);
        return perr(P, BITNET_ERR_FORMAT, "unknown tensor type id %u", t->ggml_type);
    }
    const bn_type_traits *tr = bn_type_get_traits(t->type);
    if (t->ne[0] % tr->block_elems != 0)
        return perr(P, BITNET_ERR_FORMAT, "row length ne[0] = %llu is not a multiple of the %s block size %u",
                    (ull)t->ne[0], tr->name, tr->block_elems);
    t->nbytes = bn_tensor_nbytes(t->type, t->ne);
    if (t->nbytes == 0)
        return perr(P, BITNET_ERR_FORMAT, "size of a %s tensor of shape [%llu, %llu, %llu, %llu] cannot be computed",
                    tr->name, (ull)t->ne[0], (ull)t->ne[1], (ull)t->ne[2], (ull)t->ne[3]);
    if (t->offset % f->alignment != 0)
        return perr(P, BITNET_ERR_FORMAT, "data offset %llu is not a multiple of the alignment %llu", (ull)t->offset,
                    (ull)f->alignment);
    uint64_t start, end;
    if (!bn_add_ok(f->data_offset, t->offset, &start) || !bn_add_ok(start, t->nbytes, &end) || end > P->size)
        return perr(P, BITNET_ERR_FORMAT, "data [offset %llu, %llu bytes] lies outside the file (data section at %llu, size %llu)",
                    (ull)t->offset, (ull)t->nbytes, (ull)f->data_offset, (ull)P->size);
    t->data = f->base + start;
    /* Tensors are used in place as float / fp16 arrays (Q8_0 blocks start with an
     * fp16): whatever general.alignment says, the address must suit the type. */
    unsigned elem = t->type == BN_TT_F32 ? 4 : (t->type == BN_TT_F16 || t->type == BN_TT_BF16 || t->type == BN_TT_Q8_0) ? 2 : 1;
    if (t->type >= BN_TT_Q4_0 && t->type <= BN_TT_Q6_K) elem = 2; /* blocks with f16 fields */
    if ((uintptr_t)t->data % elem)
        return perr(P, BITNET_ERR_FORMAT, "data (file offset %llu) is not aligned to the %u bytes a %s tensor needs (general.alignment %llu)",
                    (ull)start, elem, tr->name, (ull)f->alignment);
    return BITNET_OK;
}

static bitnet_status parse_tensors(parser *P, bn_gguf_file *f) {
    uint64_t n = f->n_tensors;
    f->n_tensors = 0;
    if (n && !(f->tensors = calloc(n, sizeof *f->tensors)))
        return perr(P, BITNET_ERR_NOMEM, "out of memory for %llu tensors", (ull)n);
    f->n_tensors = n;
    for (uint64_t i = 0; i < n; i++) TRY(parse_tensor_info(P, &f->tensors[i], i));
    P->where[0] = 0;
    TRY(check_unique(P, f->tensors, sizeof *f->tensors, offsetof(bn_gguf_tensor, name), n, "tensor"));
    TRY(read_alignment(P, f));
    /* The data section starts at the next multiple of the alignment. A file
     * without tensors may end right after its metadata (gguf-py writes no
     * padding then). */
    uint64_t pad = (f->alignment - P->pos % f->alignment) % f->alignment;
    f->data_offset = P->pos + pad; /* pos <= size <= INT64_MAX: no overflow */
    if (n == 0) {
        f->data_offset = BN_MIN(f->data_offset, P->size);
        return BITNET_OK;
    }
    if (f->data_offset > P->size)
        return perr(P, BITNET_ERR_FORMAT, "file truncated: data section would start at %llu, past the end (size %llu)",
                    (ull)f->data_offset, (ull)P->size);
    TRY(decide_flavor(P, f));
    for (uint64_t i = 0; i < n; i++) TRY(place_tensor(P, f, &f->tensors[i]));
    return BITNET_OK;
}

static bitnet_status parse_file(bn_gguf_file *f) {
    parser P = {.path = f->path, .base = f->base, .size = f->size};
    TRY(parse_header(&P, f));
    TRY(parse_kvs(&P, f));
    TRY(check_unique(&P, f->kv, sizeof *f->kv, offsetof(bn_gguf_kv, key), f->n_kv, "key"));
    return parse_tensors(&P, f);
}

/* ---- open / close ------------------------------------------------------------------ */

/* data == NULL: map the file `name`; else parse the caller's buffer. */
static bitnet_status open_input(const char *name, const void *data, uint64_t size, bn_gguf_file **out) {
    bn_gguf_file *f = calloc(1, sizeof *f);
    if (!f) return bn_error(BITNET_ERR_NOMEM, "%s: out of memory", name);
    bitnet_status st = bn_input_acquire(name, data, size, &f->path, &f->base, &f->size, &f->owns_mapping);
    if (st == BITNET_OK && (st = parse_file(f)) == BITNET_OK) *out = f;
    else bn_gguf_close(f);
    return st;
}

bitnet_status bn_gguf_open_memory(const void *data, uint64_t size, const char *name, bn_gguf_file **out) {
    if (!out) return bn_error(BITNET_ERR_ARG, "bn_gguf_open_memory: out is NULL");
    *out = NULL;
    if (!data && size) return bn_error(BITNET_ERR_ARG, "%s: NULL buffer of %llu bytes", name ? name : "(memory)", (ull)size);
    static const uint8_t empty[1]; /* a non-NULL pointer for an empty buffer */
    return open_input(name, data ? data : empty, size, out);
}

bitnet_status bn_gguf_open(const char *path, bn_gguf_file **out) {
    if (!out) return bn_error(BITNET_ERR_ARG, "bn_gguf_open: out is NULL");
    *out = NULL;
    if (!path) return bn_error(BITNET_ERR_ARG, "bn_gguf_open: path is NULL");
    return open_input(path, NULL, 0, out);
}

void bn_gguf_close(bn_gguf_file *f) {
    if (!f) return;
    for (uint64_t i = 0; f->kv && i < f->n_kv; i++) free_value(&f->kv[i].value);
    free(f->kv);
    free(f->tensors);
    bn_input_release(f->path, f->base, f->size, f->owns_mapping);
    free(f);
}

/* ---- lookups and typed getters -------------------------------------------------------- */

int bn_gguf_str_eq(bn_gguf_str s, const char *c) {
    size_t n = strlen(c);
    return s.len == n && (n == 0 || memcmp(s.data, c, n) == 0);
}

const bn_gguf_kv *bn_gguf_find_kv(const bn_gguf_file *f, const char *key) {
    for (uint64_t i = 0; f && key && i < f->n_kv; i++)
        if (bn_gguf_str_eq(f->kv[i].key, key)) return &f->kv[i];
    return NULL;
}

const bn_gguf_tensor *bn_gguf_find_tensor(const bn_gguf_file *f, const char *name) {
    for (uint64_t i = 0; f && name && i < f->n_tensors; i++)
        if (bn_gguf_str_eq(f->tensors[i].name, name)) return &f->tensors[i];
    return NULL;
}

/* Integer value as (negative?, magnitude); 0 if not an integer type. */
static int value_int(const bn_gguf_value *v, int *neg, uint64_t *mag) {
    int64_t s;
    *neg = 0;
    switch (v->type) {
    case BN_GGUF_TYPE_UINT8: *mag = v->u8; return 1;
    case BN_GGUF_TYPE_UINT16: *mag = v->u16; return 1;
    case BN_GGUF_TYPE_UINT32: *mag = v->u32; return 1;
    case BN_GGUF_TYPE_UINT64: *mag = v->u64; return 1;
    case BN_GGUF_TYPE_INT8: s = v->i8; break;
    case BN_GGUF_TYPE_INT16: s = v->i16; break;
    case BN_GGUF_TYPE_INT32: s = v->i32; break;
    case BN_GGUF_TYPE_INT64: s = v->i64; break;
    default: return 0;
    }
    *neg = s < 0;
    *mag = s < 0 ? (uint64_t)0 - (uint64_t)s : (uint64_t)s;
    return 1;
}

static int get_err(const bn_gguf_file *f, const char *key, const char *what, const bn_gguf_value *v) {
    bn_error(BITNET_ERR_FORMAT, "%s: key '%s' has type %s, expected %s", f->path, key, bn_gguf_vtype_name(v->type), what);
    return -1;
}

int bn_gguf_get_u32(const bn_gguf_file *f, const char *key, uint32_t *out) {
    const bn_gguf_kv *kv = bn_gguf_find_kv(f, key);
    int neg;
    uint64_t mag;
    if (!kv) return 0;
    if (!value_int(&kv->value, &neg, &mag)) return get_err(f, key, "an unsigned integer", &kv->value);
    if (neg || mag > UINT32_MAX) {
        bn_error(BITNET_ERR_FORMAT, "%s: key '%s' value %s%llu does not fit in uint32", f->path, key, neg ? "-" : "",
                 (ull)mag);
        return -1;
    }
    *out = (uint32_t)mag;
    return 1;
}

int bn_gguf_get_f32(const bn_gguf_file *f, const char *key, float *out) {
    const bn_gguf_kv *kv = bn_gguf_find_kv(f, key);
    const bn_gguf_value *v = kv ? &kv->value : NULL;
    int neg;
    uint64_t mag;
    if (!kv) return 0;
    if (v->type == BN_GGUF_TYPE_FLOAT32) {
        *out = v->f32;
        return 1;
    }
    if (v->type == BN_GGUF_TYPE_FLOAT64 && ((double)(float)v->f64 == v->f64 || v->f64 != v->f64)) {
        *out = (float)v->f64; /* exact (or NaN) */
        return 1;
    }
    if (value_int(v, &neg, &mag) && mag <= (1u << 24)) { /* exactly representable */
        *out = neg ? -(float)mag : (float)mag;
        return 1;
    }
    if (v->type == BN_GGUF_TYPE_FLOAT64 || value_int(v, &neg, &mag)) {
        bn_error(BITNET_ERR_FORMAT, "%s: key '%s' value does not convert exactly to float32", f->path, key);
        return -1;
    }
    return get_err(f, key, "a float", v);
}

int bn_gguf_get_bool(const bn_gguf_file *f, const char *key, bool *out) {
    const bn_gguf_kv *kv = bn_gguf_find_kv(f, key);
    if (!kv) return 0;
    if (kv->value.type != BN_GGUF_TYPE_BOOL) return get_err(f, key, "bool", &kv->value);
    *out = kv->value.b;
    return 1;
}

int bn_gguf_get_str(const bn_gguf_file *f, const char *key, char *buf, size_t cap) {
    const bn_gguf_kv *kv = bn_gguf_find_kv(f, key);
    if (!kv) return 0;
    if (kv->value.type != BN_GGUF_TYPE_STRING) return get_err(f, key, "string", &kv->value);
    if (buf && cap) {
        size_t n = (size_t)BN_MIN(kv->value.str.len, (uint64_t)(cap - 1));
        if (n) memcpy(buf, kv->value.str.data, n);
        buf[n] = 0;
    }
    return 1;
}

const bn_gguf_value *bn_gguf_get_arr(const bn_gguf_file *f, const char *key, bn_gguf_vtype elem_type) {
    const bn_gguf_kv *kv = bn_gguf_find_kv(f, key);
    if (!kv) return NULL;
    if (kv->value.type != BN_GGUF_TYPE_ARRAY || kv->value.arr.type != elem_type) {
        bn_error(BITNET_ERR_FORMAT, "%s: key '%s' is %s%s%s, expected an array of %s", f->path, key,
                 bn_gguf_vtype_name(kv->value.type), kv->value.type == BN_GGUF_TYPE_ARRAY ? " of " : "",
                 kv->value.type == BN_GGUF_TYPE_ARRAY ? bn_gguf_vtype_name(kv->value.arr.type) : "",
                 bn_gguf_vtype_name(elem_type));
        return NULL;
    }
    return &kv->value;
}
