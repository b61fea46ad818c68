/* gguf_writer.c - builds a GGUF v3 file in memory and writes it atomically.
 *
 * Setters never fail visibly: the first problem (bad argument, out of
 * memory) is remembered and reported by bn_gguf_writer_write*(), so a caller can
 * issue a batch of calls and check once. Metadata values are deep copies;
 * tensor data is referenced and streamed out at write time. */
#include "formats/gguf.h"

#include "formats/atomic_file.h"

#include <errno.h>
#include <stdarg.h>

typedef unsigned long long ull;

typedef struct {
    char *key; /* NUL-terminated copy */
    bn_gguf_value v; /* owns every pointer in it */
} wkv;

typedef struct {
    char *name;
    uint32_t n_dims;
    uint64_t ne[BN_GGUF_MAX_DIMS];
    bn_tensor_type type;
    const void *data;
    uint64_t nbytes;
} wtensor;

struct bn_gguf_writer {
    wkv *kv;
    size_t n_kv, cap_kv;
    wtensor *t;
    size_t n_t, cap_t;
    int flavor; /* -1: chosen from the tensor types at write time */
    void (*progress)(void *user, double frac);
    void *progress_user;
    double progress_lo, progress_hi;
    bitnet_status err;
    char errmsg[320];
};

static void werr(bn_gguf_writer *w, bitnet_status code, const char *fmt, ...) BN_PRINTF(3, 4);
static void werr(bn_gguf_writer *w, bitnet_status code, const char *fmt, ...) {
    if (w->err) return; /* keep the first */
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(w->errmsg, sizeof w->errmsg, fmt, ap);
    va_end(ap);
    w->err = code;
}

static char *dup_bytes(const void *p, uint64_t n) {
    if (n >= SIZE_MAX) return NULL;
    char *d = malloc((size_t)n + 1);
    if (!d) return NULL;
    if (n) memcpy(d, p, (size_t)n);
    d[n] = 0;
    return d;
}

/* Grows *arr (elements of `size` bytes) to hold one more; 0 on failure. */
static int grow(void **arr, size_t *cap, size_t n, size_t size) {
    if (n < *cap) return 1;
    size_t nc = *cap ? *cap * 2 : 16;
    void *p = nc <= SIZE_MAX / size ? realloc(*arr, nc * size) : NULL;
    if (!p) return 0;
    *arr = p;
    *cap = nc;
    return 1;
}

/* ---- owned values ------------------------------------------------------------ */

static void val_free(bn_gguf_value *v) {
    if (v->type == BN_GGUF_TYPE_STRING) {
        free((void *)v->str.data);
    } else if (v->type == BN_GGUF_TYPE_ARRAY) {
        free((void *)v->arr.data);
        for (uint64_t i = 0; v->arr.items && i < v->arr.n; i++) val_free(&v->arr.items[i]);
        free(v->arr.items);
    }
    memset(v, 0, sizeof *v);
}

/* Deep copy; `depth` counts enclosing arrays (the reader accepts
 * BN_GGUF_MAX_ARRAY_DEPTH levels). Returns NULL on success or what is wrong
 * (then dst is still safe to val_free). */
static const char *val_copy(bn_gguf_value *dst, const bn_gguf_value *src, int depth) {
    memset(dst, 0, sizeof *dst);
    if ((unsigned)src->type >= BN_GGUF_TYPE_COUNT) return "invalid value type";
    if (src->type == BN_GGUF_TYPE_STRING) {
        if (src->str.len && !src->str.data) return "string with NULL data";
        char *d = dup_bytes(src->str.data, src->str.len);
        if (!d) return "out of memory";
        dst->type = BN_GGUF_TYPE_STRING;
        dst->str.len = src->str.len;
        dst->str.data = d;
        return NULL;
    }
    if (src->type != BN_GGUF_TYPE_ARRAY) {
        *dst = *src;
        return NULL;
    }
    bn_gguf_vtype et = src->arr.type;
    uint64_t n = src->arr.n, es = bn_gguf_vtype_size(et), bytes;
    if ((unsigned)et >= BN_GGUF_TYPE_COUNT) return "invalid array element type";
    if (depth >= BN_GGUF_MAX_ARRAY_DEPTH) return "arrays nested deeper than the reader accepts";
    dst->type = BN_GGUF_TYPE_ARRAY;
    dst->arr.type = et;
    if (es) {
        if (!bn_mul_ok(n, es, &bytes) || (bytes && !src->arr.data)) return "array without data";
        for (uint64_t i = 0; et == BN_GGUF_TYPE_BOOL && i < n; i++)
            if (((const uint8_t *)src->arr.data)[i] > 1) return "bool array element not 0/1";
        if (bytes && !(dst->arr.data = dup_bytes(src->arr.data, bytes))) return "out of memory";
        dst->arr.n = n;
        return NULL;
    }
    if (n && !src->arr.items) return "string/array array without items";
    if (n && !(dst->arr.items = calloc(n, sizeof *dst->arr.items))) return "out of memory";
    dst->arr.n = n;
    for (uint64_t i = 0; i < n; i++) {
        if (src->arr.items[i].type != et) return "array element of the wrong type";
        const char *e = val_copy(&dst->arr.items[i], &src->arr.items[i], depth + 1);
        if (e) return e;
    }
    return NULL;
}

/* ---- building -------------------------------------------------------------------- */

bn_gguf_writer *bn_gguf_writer_new(void) {
    bn_gguf_writer *w = calloc(1, sizeof *w);
    if (w) w->flavor = -1;
    return w;
}

void bn_gguf_writer_free(bn_gguf_writer *w) {
    if (!w) return;
    for (size_t i = 0; i < w->n_kv; i++) {
        free(w->kv[i].key);
        val_free(&w->kv[i].v);
    }
    for (size_t i = 0; i < w->n_t; i++) free(w->t[i].name);
    free(w->kv);
    free(w->t);
    free(w);
}

void bn_gguf_writer_set_flavor(bn_gguf_writer *w, bn_gguf_flavor flavor) {
    if (w) w->flavor = (int)flavor;
}

/* Takes ownership of *v (frees it on failure). Existing keys keep their place. */
static void set_owned(bn_gguf_writer *w, const char *key, bn_gguf_value *v) {
    if (!key) {
        werr(w, BITNET_ERR_ARG, "gguf writer: NULL key");
        val_free(v);
        return;
    }
    for (size_t i = 0; i < w->n_kv; i++)
        if (strcmp(w->kv[i].key, key) == 0) {
            val_free(&w->kv[i].v);
            w->kv[i].v = *v;
            return;
        }
    char *k = dup_bytes(key, strlen(key));
    if (!k || !grow((void **)&w->kv, &w->cap_kv, w->n_kv, sizeof *w->kv)) {
        free(k);
        val_free(v);
        werr(w, BITNET_ERR_NOMEM, "gguf writer: out of memory adding key '%s'", key);
        return;
    }
    w->kv[w->n_kv].key = k;
    w->kv[w->n_kv].v = *v;
    w->n_kv++;
}

void bn_gguf_writer_set_value(bn_gguf_writer *w, const char *key, const bn_gguf_value *v) {
    bn_gguf_value c;
    if (!w) return;
    const char *e = v ? val_copy(&c, v, 0) : "NULL value";
    if (e) {
        if (v) val_free(&c);
        werr(w, strcmp(e, "out of memory") ? BITNET_ERR_ARG : BITNET_ERR_NOMEM, "gguf writer: key '%s': %s",
             key ? key : "(null)", e);
        return;
    }
    set_owned(w, key, &c);
}

static void set_scalar(bn_gguf_writer *w, const char *key, bn_gguf_value v) {
    if (w) set_owned(w, key, &v);
}

void bn_gguf_writer_set_u32(bn_gguf_writer *w, const char *key, uint32_t v) {
    set_scalar(w, key, (bn_gguf_value){.type = BN_GGUF_TYPE_UINT32, .u32 = v});
}
void bn_gguf_writer_set_i32(bn_gguf_writer *w, const char *key, int32_t v) {
    set_scalar(w, key, (bn_gguf_value){.type = BN_GGUF_TYPE_INT32, .i32 = v});
}
void bn_gguf_writer_set_u64(bn_gguf_writer *w, const char *key, uint64_t v) {
    set_scalar(w, key, (bn_gguf_value){.type = BN_GGUF_TYPE_UINT64, .u64 = v});
}
void bn_gguf_writer_set_f32(bn_gguf_writer *w, const char *key, float v) {
    set_scalar(w, key, (bn_gguf_value){.type = BN_GGUF_TYPE_FLOAT32, .f32 = v});
}
void bn_gguf_writer_set_bool(bn_gguf_writer *w, const char *key, bool v) {
    set_scalar(w, key, (bn_gguf_value){.type = BN_GGUF_TYPE_BOOL, .b = v});
}

void bn_gguf_writer_set_str(bn_gguf_writer *w, const char *key, const char *v) {
    bn_gguf_value s = {.type = BN_GGUF_TYPE_STRING};
    s.str = (bn_gguf_str){v ? strlen(v) : 0, v ? v : ""};
    bn_gguf_writer_set_value(w, key, &s);
}

void bn_gguf_writer_set_arr_str(bn_gguf_writer *w, const char *key, const char *const *v, const uint64_t *lens, uint64_t n) {
    if (!w) return;
    if (n && !v) {
        werr(w, BITNET_ERR_ARG, "gguf writer: key '%s': NULL string array", key ? key : "(null)");
        return;
    }
    bn_gguf_value *items = n <= SIZE_MAX / sizeof *items ? calloc(n ? n : 1, sizeof *items) : NULL;
    if (!items) {
        werr(w, BITNET_ERR_NOMEM, "gguf writer: out of memory for %llu strings", (ull)n);
        return;
    }
    for (uint64_t i = 0; i < n; i++) {
        items[i].type = BN_GGUF_TYPE_STRING;
        items[i].str.data = v[i] ? v[i] : "";
        items[i].str.len = lens ? lens[i] : strlen(items[i].str.data);
    }
    bn_gguf_value a = {.type = BN_GGUF_TYPE_ARRAY};
    a.arr.type = BN_GGUF_TYPE_STRING;
    a.arr.n = n;
    a.arr.items = items;
    bn_gguf_writer_set_value(w, key, &a); /* copies; items only borrowed the strings */
    free(items);
}

void bn_gguf_writer_set_arr_data(bn_gguf_writer *w, const char *key, bn_gguf_vtype elem_type, const void *data, uint64_t n) {
    if (!w) return;
    if (bn_gguf_vtype_size(elem_type) == 0) {
        werr(w, BITNET_ERR_ARG, "gguf writer: key '%s': element type %s is not fixed-size", key ? key : "(null)",
             bn_gguf_vtype_name(elem_type));
        return;
    }
    bn_gguf_value a = {.type = BN_GGUF_TYPE_ARRAY};
    a.arr.type = elem_type;
    a.arr.n = n;
    a.arr.data = data;
    bn_gguf_writer_set_value(w, key, &a);
}

void bn_gguf_writer_add_tensor(bn_gguf_writer *w, const char *name, uint32_t n_dims, const uint64_t *ne, bn_tensor_type type,
                            const void *data, uint64_t nbytes) {
    if (!w) return;
    const char *nm = name ? name : "(null)";
    if (!name || n_dims == 0 || n_dims > BN_GGUF_MAX_DIMS || !ne || (!data && nbytes)) {
        werr(w, BITNET_ERR_ARG, "gguf writer: tensor '%s': bad name, n_dims (%u), shape or data", nm, n_dims);
        return;
    }
    wtensor t = {.n_dims = n_dims, .type = type, .data = data, .nbytes = nbytes};
    for (int i = 0; i < BN_GGUF_MAX_DIMS; i++) t.ne[i] = (uint32_t)i < n_dims ? ne[i] : 1;
    uint64_t want = bn_tensor_nbytes(type, t.ne);
    if (want == 0 || want != nbytes) {
        werr(w, BITNET_ERR_ARG, "gguf writer: tensor '%s': %llu bytes given, a %s tensor of this shape needs %llu", nm,
             (ull)nbytes, bn_type_get_traits(type)->name, (ull)want);
        return;
    }
    for (size_t i = 0; i < w->n_t; i++)
        if (strcmp(w->t[i].name, name) == 0) {
            werr(w, BITNET_ERR_ARG, "gguf writer: duplicate tensor name '%s'", nm);
            return;
        }
    if (!(t.name = dup_bytes(name, strlen(name))) || !grow((void **)&w->t, &w->cap_t, w->n_t, sizeof *w->t)) {
        free(t.name);
        werr(w, BITNET_ERR_NOMEM, "gguf writer: out of memory adding tensor '%s'", nm);
        return;
    }
    w->t[w->n_t++] = t;
}

/* ---- serialisation ------------------------------------------------------------------ */

typedef struct {
    uint8_t *d;
    uint64_t len, cap;
    int oom;
} bbuf;

static void bb_put(bbuf *b, const void *p, uint64_t n) {
    if (b->oom || n == 0) return;
    if (n > b->cap - b->len) {
        uint64_t nc = b->cap ? b->cap : 4096;
        while (nc - b->len < n && nc <= UINT64_MAX / 2) nc *= 2;
        uint8_t *d = (nc - b->len >= n && nc <= SIZE_MAX) ? realloc(b->d, (size_t)nc) : NULL;
        if (!d) {
            b->oom = 1;
            return;
        }
        b->d = d;
        b->cap = nc;
    }
    if (p)
        memcpy(b->d + b->len, p, (size_t)n);
    else
        memset(b->d + b->len, 0, (size_t)n);
    b->len += n;
}

static void bb_le(bbuf *b, uint64_t v, unsigned n) { /* little-endian on any host */
    uint8_t x[8];
    for (unsigned i = 0; i < n; i++) x[i] = (uint8_t)(v >> (8 * i));
    bb_put(b, x, n);
}

static void bb_str(bbuf *b, const char *s, uint64_t n) {
    bb_le(b, n, 8);
    bb_put(b, s, n);
}

static uint64_t scalar_bits(const bn_gguf_value *v) {
    uint32_t f;
    uint64_t d;
    switch (v->type) {
    case BN_GGUF_TYPE_UINT8: return v->u8;
    case BN_GGUF_TYPE_INT8: return (uint8_t)v->i8;
    case BN_GGUF_TYPE_UINT16: return v->u16;
    case BN_GGUF_TYPE_INT16: return (uint16_t)v->i16;
    case BN_GGUF_TYPE_UINT32: return v->u32;
    case BN_GGUF_TYPE_INT32: return (uint32_t)v->i32;
    case BN_GGUF_TYPE_BOOL: return v->b;
    case BN_GGUF_TYPE_UINT64: return v->u64;
    case BN_GGUF_TYPE_INT64: return (uint64_t)v->i64;
    case BN_GGUF_TYPE_FLOAT32: memcpy(&f, &v->f32, 4); return f;
    case BN_GGUF_TYPE_FLOAT64: memcpy(&d, &v->f64, 8); return d;
    default: return 0;
    }
}

/* Arrays: element type, count, then the elements without type tags (an
 * element array carries its own element type and count). */
static void put_value(bbuf *b, const bn_gguf_value *v) {
    if (v->type == BN_GGUF_TYPE_STRING) {
        bb_str(b, v->str.data, v->str.len);
    } else if (v->type == BN_GGUF_TYPE_ARRAY) {
        bb_le(b, (uint32_t)v->arr.type, 4);
        bb_le(b, v->arr.n, 8);
        uint64_t es = bn_gguf_vtype_size(v->arr.type);
        if (es)
            bb_put(b, v->arr.data, v->arr.n * es); /* raw little-endian bytes already */
        else
            for (uint64_t i = 0; i < v->arr.n; i++) put_value(b, &v->arr.items[i]);
    } else {
        bb_le(b, scalar_bits(v), (unsigned)bn_gguf_vtype_size(v->type));
    }
}

static uint64_t pad_of(uint64_t n, uint64_t align) { return (align - n % align) % align; }

/* Alignment from a general.alignment key, flavor, and per-tensor type ids. */
static bitnet_status resolve(bn_gguf_writer *w, uint64_t *align, bn_gguf_flavor *flavor) {
    *align = BN_GGUF_DEFAULT_ALIGNMENT;
    for (size_t i = 0; i < w->n_kv; i++) {
        if (strcmp(w->kv[i].key, "general.alignment") != 0) continue;
        const bn_gguf_value *v = &w->kv[i].v;
        if (v->type != BN_GGUF_TYPE_UINT32 || v->u32 == 0 || (v->u32 & (v->u32 - 1)))
            return bn_error(BITNET_ERR_ARG, "gguf writer: general.alignment must be a uint32 power of two");
        *align = v->u32;
    }
    int fork = 0;
    for (size_t i = 0; i < w->n_t; i++)
        fork |= w->t[i].type == BN_TT_I2_S || w->t[i].type == BN_TT_TL1 || w->t[i].type == BN_TT_TL2;
    *flavor = w->flavor >= 0 ? (bn_gguf_flavor)w->flavor : fork ? BN_GGUF_FLAVOR_BITNETCPP : BN_GGUF_FLAVOR_UPSTREAM;
    for (size_t i = 0; i < w->n_t; i++)
        if (bn_gguf_tensor_type_id(w->t[i].type, *flavor) == UINT32_MAX)
            return bn_error(BITNET_ERR_ARG, "gguf writer: tensor '%s' of type %s has no type id in the %s numbering",
                            w->t[i].name, bn_type_get_traits(w->t[i].type)->name,
                            *flavor == BN_GGUF_FLAVOR_BITNETCPP ? "bitnet.cpp" : "upstream");
    return BITNET_OK;
}

/* Everything up to the start of the tensor data, padded when tensors follow
 * (gguf-py writes no padding for a metadata-only file). *data_size gets the
 * size of the data section, each tensor padded to the alignment. */
static bitnet_status build_header(bn_gguf_writer *w, bbuf *b, uint64_t *align, uint64_t *data_size) {
    bn_gguf_flavor flavor = BN_GGUF_FLAVOR_UPSTREAM;
    if (w->err) return bn_error(w->err, "%s", w->errmsg);
    bitnet_status st = resolve(w, align, &flavor);
    if (st) return st;
    bb_le(b, BN_GGUF_MAGIC, 4);
    bb_le(b, BN_GGUF_VERSION, 4);
    bb_le(b, w->n_t, 8);
    bb_le(b, w->n_kv, 8);
    for (size_t i = 0; i < w->n_kv; i++) {
        bb_str(b, w->kv[i].key, strlen(w->kv[i].key));
        bb_le(b, (uint32_t)w->kv[i].v.type, 4);
        put_value(b, &w->kv[i].v);
    }
    uint64_t off = 0;
    for (size_t i = 0; i < w->n_t; i++) {
        const wtensor *t = &w->t[i];
        bb_str(b, t->name, strlen(t->name));
        bb_le(b, t->n_dims, 4);
        for (uint32_t d = 0; d < t->n_dims; d++) bb_le(b, t->ne[d], 8);
        bb_le(b, bn_gguf_tensor_type_id(t->type, flavor), 4);
        bb_le(b, off, 8);
        if (!bn_add_ok(off, t->nbytes, &off) || !bn_add_ok(off, pad_of(off, *align), &off))
            return bn_error(BITNET_ERR_ARG, "gguf writer: tensor data exceeds 2^64 bytes");
    }
    if (w->n_t) bb_put(b, NULL, pad_of(b->len, *align));
    *data_size = off;
    if (b->oom) return bn_error(BITNET_ERR_NOMEM, "gguf writer: out of memory building the header");
    return BITNET_OK;
}

bitnet_status bn_gguf_writer_write_memory(bn_gguf_writer *w, uint8_t **out, uint64_t *size) {
    if (!w || !out || !size) return bn_error(BITNET_ERR_ARG, "bn_gguf_writer_write_memory: NULL argument");
    *out = NULL;
    *size = 0;
    bbuf b = {0};
    uint64_t align, data_size;
    bitnet_status st = build_header(w, &b, &align, &data_size);
    for (size_t i = 0; st == BITNET_OK && i < w->n_t; i++) {
        bb_put(&b, w->t[i].data, w->t[i].nbytes);
        bb_put(&b, NULL, pad_of(w->t[i].nbytes, align));
        if (b.oom) st = bn_error(BITNET_ERR_NOMEM, "gguf writer: out of memory for %llu bytes of tensor data", (ull)data_size);
    }
    if (st != BITNET_OK) {
        free(b.d);
        return st;
    }
    *out = b.d;
    *size = b.len;
    return BITNET_OK;
}

void bn_gguf_writer_set_progress(bn_gguf_writer *w, void (*fn)(void *user, double frac), void *user, double lo, double hi) {
    if (!w) return;
    w->progress = fn;
    w->progress_user = user;
    w->progress_lo = lo;
    w->progress_hi = hi;
}

bitnet_status bn_gguf_writer_write(bn_gguf_writer *w, const char *path) {
    if (!w || !path) return bn_error(BITNET_ERR_ARG, "bn_gguf_writer_write: NULL argument");
    bbuf b = {0};
    uint64_t align, data_size;
    bitnet_status st = build_header(w, &b, &align, &data_size);
    if (st != BITNET_OK) {
        free(b.d);
        return st;
    }
    bn_atomic_file f;
    if ((st = bn_atomic_open(&f, path)) == BITNET_OK) {
        bn_atomic_write(&f, b.d, b.len);
        uint64_t written = 0;
        for (size_t i = 0; i < w->n_t; i++) {
            bn_atomic_write(&f, w->t[i].data, w->t[i].nbytes);
            bn_atomic_write_zeros(&f, pad_of(w->t[i].nbytes, align));
            written += w->t[i].nbytes + pad_of(w->t[i].nbytes, align);
            if (w->progress && data_size)
                w->progress(w->progress_user,
                            w->progress_lo + (w->progress_hi - w->progress_lo) * (double)written / (double)data_size);
        }
        st = bn_atomic_commit(&f);
    }
    free(b.d);
    return st;
}
