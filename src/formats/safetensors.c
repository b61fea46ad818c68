/* safetensors.c - safetensors reader (mmap or caller buffer, zero-copy) and
 * atomic writer. See safetensors.h for the rules; every check below turns a
 * hostile header into a one-line "FILE: what is wrong". */
#include "formats/safetensors.h"

#include "formats/atomic_file.h"
#include "formats/mapped_file.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>

typedef unsigned long long ull; /* for printf */

static const struct {
    const char *name;
    uint8_t size;
} k_dtypes[BN_ST_DTYPE_COUNT] = {
    [BN_ST_BOOL] = {"BOOL", 1},       [BN_ST_U8] = {"U8", 1},           [BN_ST_I8] = {"I8", 1},
    [BN_ST_F8_E5M2] = {"F8_E5M2", 1}, [BN_ST_F8_E4M3] = {"F8_E4M3", 1}, [BN_ST_F8_E8M0] = {"F8_E8M0", 1},
    [BN_ST_I16] = {"I16", 2},         [BN_ST_U16] = {"U16", 2},         [BN_ST_F16] = {"F16", 2},
    [BN_ST_BF16] = {"BF16", 2},       [BN_ST_I32] = {"I32", 4},         [BN_ST_U32] = {"U32", 4},
    [BN_ST_F32] = {"F32", 4},         [BN_ST_I64] = {"I64", 8},         [BN_ST_U64] = {"U64", 8},
    [BN_ST_F64] = {"F64", 8},
};

const char *bn_st_dtype_name(bn_st_dtype t) { return (unsigned)t < BN_ST_DTYPE_COUNT ? k_dtypes[t].name : "?"; }
uint64_t bn_st_dtype_size(bn_st_dtype t) { return (unsigned)t < BN_ST_DTYPE_COUNT ? k_dtypes[t].size : 0; }

/* ---- reader ------------------------------------------------------------------ */

/* A printable, bounded copy of a (hostile) name for messages. */
static void fmt_name(char *out, size_t cap, const char *s) {
    size_t o = 0, i = 0;
    for (; s[i] && i < 64 && o + 5 < cap; i++) out[o++] = (unsigned char)s[i] < 0x20 ? '?' : s[i];
    if (s[i] && o + 4 <= cap) {
        memcpy(out + o, "...", 3);
        o += 3;
    }
    out[o] = 0;
}

static bitnet_status terr(const bn_safetensors *f, const char *name, bitnet_status code, const char *fmt, ...)
    BN_PRINTF(4, 5);
static bitnet_status terr(const bn_safetensors *f, const char *name, bitnet_status code, const char *fmt, ...) {
    char msg[360], nm[80];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (!name) return bn_error(code, "%s: %s", f->path, msg);
    fmt_name(nm, sizeof nm, name);
    return bn_error(code, "%s: tensor '%s': %s", f->path, nm, msg);
}

/* A JSON integer (written without fraction or exponent, as the format
 * requires: "512.0" is refused) in [0, 2^53] (every such double is exact). */
static int json_uint(const bn_json *v, uint64_t *out) {
    if (!v || v->type != BN_JSON_NUMBER || !v->integer || !(v->number >= 0.0 && v->number <= 9007199254740992.0) ||
        v->number != floor(v->number))
        return 0;
    *out = (uint64_t)v->number;
    return 1;
}

static bitnet_status parse_dtype(const bn_safetensors *f, const char *name, const bn_json *d, bn_st_dtype *out) {
    if (!d) return terr(f, name, BITNET_ERR_FORMAT, "missing \"dtype\"");
    if (d->type != BN_JSON_STRING)
        return terr(f, name, BITNET_ERR_FORMAT, "\"dtype\" is %s, expected a string", bn_json_type_desc(d->type));
    for (int i = 0; i < BN_ST_DTYPE_COUNT; i++)
        if (strcmp(d->str, k_dtypes[i].name) == 0 && strlen(d->str) == d->len) {
            *out = (bn_st_dtype)i;
            return BITNET_OK;
        }
    char nm[80];
    fmt_name(nm, sizeof nm, d->str);
    static const char *const sub_byte[] = {"F4", "F6_E2M3", "F6_E3M2"};
    for (size_t i = 0; i < sizeof sub_byte / sizeof sub_byte[0]; i++)
        if (strcmp(d->str, sub_byte[i]) == 0)
            return terr(f, name, BITNET_ERR_UNSUPPORTED, "dtype %s (less than a byte per element) is not supported", nm);
    return terr(f, name, BITNET_ERR_FORMAT, "unknown dtype '%s'", nm);
}

static bitnet_status parse_tensor(bn_safetensors *f, const char *name, const bn_json *v, uint64_t data_size,
                                  bn_st_tensor *t) {
    t->name = name;
    if (v->type != BN_JSON_OBJECT)
        return terr(f, name, BITNET_ERR_FORMAT, "entry is %s, expected an object", bn_json_type_desc(v->type));
    bitnet_status st = parse_dtype(f, name, bn_json_get(v, "dtype"), &t->dtype);
    if (st != BITNET_OK) return st;
    const bn_json *shape = bn_json_get(v, "shape"), *offs = bn_json_get(v, "data_offsets");
    if (!shape || shape->type != BN_JSON_ARRAY)
        return terr(f, name, BITNET_ERR_FORMAT, "\"shape\" is %s, expected an array of integers",
                    shape ? bn_json_type_desc(shape->type) : "missing");
    if (shape->n > BN_ST_MAX_DIMS)
        return terr(f, name, BITNET_ERR_FORMAT, "shape has %zu dimensions, at most %d are supported", shape->n,
                    BN_ST_MAX_DIMS);
    t->n_dims = (uint32_t)shape->n;
    uint64_t n = 1;
    for (uint32_t i = 0; i < t->n_dims; i++) {
        if (!json_uint(&shape->items[i], &t->shape[i]))
            return terr(f, name, BITNET_ERR_FORMAT, "shape[%u] is not an integer in [0, 2^53]", i);
        if (!bn_mul_ok(n, t->shape[i], &n))
            return terr(f, name, BITNET_ERR_FORMAT, "element count overflows 64 bits at shape[%u] = %llu", i,
                        (ull)t->shape[i]);
    }
    t->n_elems = n;
    uint64_t need, begin, end;
    if (!bn_mul_ok(n, k_dtypes[t->dtype].size, &need))
        return terr(f, name, BITNET_ERR_FORMAT, "size of %llu %s elements overflows 64 bits", (ull)n,
                    k_dtypes[t->dtype].name);
    if (!offs || offs->type != BN_JSON_ARRAY || offs->n != 2 || !json_uint(&offs->items[0], &begin) ||
        !json_uint(&offs->items[1], &end))
        return terr(f, name, BITNET_ERR_FORMAT, "\"data_offsets\" must be an array of 2 integers in [0, 2^53]");
    if (begin > end)
        return terr(f, name, BITNET_ERR_FORMAT, "data_offsets [%llu, %llu]: begin is after end", (ull)begin, (ull)end);
    if (end > data_size)
        return terr(f, name, BITNET_ERR_FORMAT, "data_offsets [%llu, %llu] lie outside the %llu-byte data section",
                    (ull)begin, (ull)end, (ull)data_size);
    if (end - begin != need)
        return terr(f, name, BITNET_ERR_FORMAT,
                    "data_offsets [%llu, %llu] hold %llu bytes but %llu %s elements need %llu", (ull)begin, (ull)end,
                    (ull)(end - begin), (ull)n, k_dtypes[t->dtype].name, (ull)need);
    t->begin = begin;
    t->nbytes = need;
    t->data = f->base + f->data_offset + begin;
    return BITNET_OK;
}

/* Sorts tensor indices by name (for bsearch) and rejects duplicate names. */
static bitnet_status sort_names(bn_safetensors *f) {
    if (f->n_tensors == 0) return BITNET_OK;
    f->sorted = malloc(f->n_tensors * sizeof *f->sorted);
    if (!f->sorted) return bn_error(BITNET_ERR_NOMEM, "%s: out of memory for %zu tensors", f->path, f->n_tensors);
    for (size_t i = 0; i < f->n_tensors; i++) f->sorted[i] = i;
    /* a bottom-up merge sort: qsort would need the names through a global */
    size_t n = f->n_tensors, *tmp = malloc(n * sizeof *tmp);
    if (!tmp) return bn_error(BITNET_ERR_NOMEM, "%s: out of memory for %zu tensors", f->path, n);
    for (size_t w = 1; w < n; w *= 2) {
        for (size_t lo = 0; lo < n; lo += 2 * w) {
            size_t mid = BN_MIN(lo + w, n), hi = BN_MIN(lo + 2 * w, n), i = lo, j = mid, k = lo;
            while (i < mid && j < hi)
                tmp[k++] = strcmp(f->tensors[f->sorted[j]].name, f->tensors[f->sorted[i]].name) < 0 ? f->sorted[j++]
                                                                                                      : f->sorted[i++];
            while (i < mid) tmp[k++] = f->sorted[i++];
            while (j < hi) tmp[k++] = f->sorted[j++];
        }
        memcpy(f->sorted, tmp, n * sizeof *tmp);
    }
    free(tmp);
    for (size_t i = 1; i < n; i++) {
        const char *a = f->tensors[f->sorted[i - 1]].name, *b = f->tensors[f->sorted[i]].name;
        if (strcmp(a, b) == 0) return terr(f, b, BITNET_ERR_FORMAT, "duplicate tensor name");
    }
    return BITNET_OK;
}

static bitnet_status parse_metadata(bn_safetensors *f, const bn_json *v) {
    if (f->metadata) return bn_error(BITNET_ERR_FORMAT, "%s: duplicate \"__metadata__\"", f->path);
    if (v->type != BN_JSON_OBJECT)
        return bn_error(BITNET_ERR_FORMAT, "%s: \"__metadata__\" is %s, expected an object of strings", f->path,
                        bn_json_type_desc(v->type));
    for (size_t i = 0; i < v->n; i++) {
        char nm[80];
        fmt_name(nm, sizeof nm, v->keys[i]);
        if (v->items[i].type != BN_JSON_STRING)
            return bn_error(BITNET_ERR_FORMAT, "%s: \"__metadata__\" value '%s' is %s, expected a string", f->path, nm,
                            bn_json_type_desc(v->items[i].type));
        if (strlen(v->items[i].str) != v->items[i].len)
            return bn_error(BITNET_ERR_FORMAT, "%s: \"__metadata__\" value '%s' contains \\u0000", f->path, nm);
    }
    f->metadata = v;
    return BITNET_OK;
}

static bitnet_status parse_file(bn_safetensors *f) {
    if (f->size < 8)
        return bn_error(BITNET_ERR_FORMAT, "%s: file truncated: %llu bytes, shorter than the 8-byte header length",
                        f->path, (ull)f->size);
    uint64_t hl = 0;
    for (int i = 7; i >= 0; i--) hl = hl << 8 | f->base[i];
    if (hl > BN_ST_MAX_HEADER)
        return bn_error(BITNET_ERR_FORMAT, "%s: header length %llu exceeds the limit of %llu bytes", f->path, (ull)hl,
                        (ull)BN_ST_MAX_HEADER);
    if (hl > f->size - 8)
        return bn_error(BITNET_ERR_FORMAT, "%s: file truncated: header length %llu exceeds the %llu bytes after it",
                        f->path, (ull)hl, (ull)(f->size - 8));
    if (hl == 0 || f->base[8] != '{')
        return bn_error(BITNET_ERR_FORMAT, "%s: header does not start with '{' (not a safetensors file)", f->path);
    f->header_len = hl;
    f->data_offset = 8 + hl;
    char err[200];
    f->header = bn_json_parse((const char *)f->base + 8, (size_t)hl, err, sizeof err);
    if (!f->header) return bn_error(BITNET_ERR_FORMAT, "%s: header: %s", f->path, err);
    const bn_json *h = f->header;
    if (h->type != BN_JSON_OBJECT) /* cannot happen after '{', kept for clarity */
        return bn_error(BITNET_ERR_FORMAT, "%s: header is %s, expected an object", f->path, bn_json_type_desc(h->type));
    size_t n_meta = 0;
    for (size_t i = 0; i < h->n; i++) n_meta += strcmp(h->keys[i], "__metadata__") == 0;
    f->n_tensors = h->n - n_meta;
    if (f->n_tensors && !(f->tensors = calloc(f->n_tensors, sizeof *f->tensors)))
        return bn_error(BITNET_ERR_NOMEM, "%s: out of memory for %zu tensors", f->path, f->n_tensors);
    const uint64_t data_size = f->size - f->data_offset;
    size_t k = 0;
    for (size_t i = 0; i < h->n; i++) {
        bitnet_status st = strcmp(h->keys[i], "__metadata__") == 0
                               ? parse_metadata(f, &h->items[i])
                               : parse_tensor(f, h->keys[i], &h->items[i], data_size, &f->tensors[k++]);
        if (st != BITNET_OK) return st;
    }
    return sort_names(f);
}

/* data == NULL: map the file `name`; else parse the caller's buffer. */
static bitnet_status open_input(const char *name, const void *data, uint64_t size, bn_safetensors **out) {
    bn_safetensors *f = calloc(1, sizeof *f);
    if (!f) return bn_error(BITNET_ERR_NOMEM, "%s: out of memory", name);
    bitnet_status st = bn_input_acquire(name, data, size, &f->path, &f->base, &f->size, &f->owns_mapping);
    if (st == BITNET_OK && (st = parse_file(f)) == BITNET_OK) *out = f;
    else bn_safetensors_close(f);
    return st;
}

bitnet_status bn_safetensors_open_memory(const void *data, uint64_t size, const char *name, bn_safetensors **out) {
    if (!out) return bn_error(BITNET_ERR_ARG, "bn_safetensors_open_memory: out is NULL");
    *out = NULL;
    if (!data && size) return bn_error(BITNET_ERR_ARG, "%s: NULL buffer of %llu bytes", name ? name : "(memory)", (ull)size);
    static const uint8_t empty[1]; /* a non-NULL pointer for an empty buffer */
    return open_input(name, data ? data : empty, size, out);
}

bitnet_status bn_safetensors_open(const char *path, bn_safetensors **out) {
    if (!out) return bn_error(BITNET_ERR_ARG, "bn_safetensors_open: out is NULL");
    *out = NULL;
    if (!path) return bn_error(BITNET_ERR_ARG, "bn_safetensors_open: path is NULL");
    return open_input(path, NULL, 0, out);
}

void bn_safetensors_close(bn_safetensors *f) {
    if (!f) return;
    bn_json_free(f->header);
    free(f->tensors);
    free(f->sorted);
    bn_input_release(f->path, f->base, f->size, f->owns_mapping);
    free(f);
}

const bn_st_tensor *bn_safetensors_find(const bn_safetensors *f, const char *name) {
    if (!f || !name || !f->sorted) return NULL;
    size_t lo = 0, hi = f->n_tensors;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(f->tensors[f->sorted[mid]].name, name);
        if (c == 0) return &f->tensors[f->sorted[mid]];
        if (c < 0) lo = mid + 1;
        else hi = mid;
    }
    return NULL;
}

const char *bn_safetensors_meta(const bn_safetensors *f, const char *key) {
    const bn_json *v = f ? bn_json_get(f->metadata, key) : NULL;
    return v ? v->str : NULL;
}

/* ---- writer -------------------------------------------------------------------- */

static bitnet_status check_out(const bn_st_out *t, size_t n, const char *const *meta, size_t n_meta,
                               const char *path, uint64_t *nbytes) {
    for (size_t i = 0; i < n; i++) {
        const char *nm = t[i].name;
        if (!nm || !*nm || strcmp(nm, "__metadata__") == 0 || !bn_utf8_valid(nm, strlen(nm)))
            return bn_error(BITNET_ERR_ARG, "%s: tensor #%zu has an empty, reserved or non-UTF-8 name", path, i);
        if ((unsigned)t[i].dtype >= BN_ST_DTYPE_COUNT || t[i].n_dims > BN_ST_MAX_DIMS)
            return bn_error(BITNET_ERR_ARG, "%s: tensor '%s' has a bad dtype or more than %d dimensions", path, nm,
                            BN_ST_MAX_DIMS);
        uint64_t e = 1;
        for (uint32_t d = 0; d < t[i].n_dims; d++)
            if (!bn_mul_ok(e, t[i].shape[d], &e)) return bn_error(BITNET_ERR_ARG, "%s: tensor '%s' is too large", path, nm);
        if (!bn_mul_ok(e, k_dtypes[t[i].dtype].size, &nbytes[i]) || nbytes[i] > (1ull << 53) ||
            (nbytes[i] && !t[i].data && !t[i].fill))
            return bn_error(BITNET_ERR_ARG, "%s: tensor '%s' is too large or has no data", path, nm);
        for (size_t j = 0; j < i; j++) /* writers get few tensors: quadratic is fine */
            if (strcmp(t[j].name, nm) == 0) return bn_error(BITNET_ERR_ARG, "%s: duplicate tensor name '%s'", path, nm);
    }
    for (size_t i = 0; i < 2 * n_meta; i++)
        if (!meta[i] || !bn_utf8_valid(meta[i], strlen(meta[i])))
            return bn_error(BITNET_ERR_ARG, "%s: metadata entry %zu is NULL or not UTF-8", path, i / 2);
    return BITNET_OK;
}

/* Builds the header (with its 8-byte length prefix and space padding) and the
 * data order: larger dtypes first, so every tensor starts aligned to its
 * element size without gaps. */
static bitnet_status build_header(const bn_st_out *t, size_t n, const char *const *meta, size_t n_meta,
                                  const char *path, bn_buf *b, size_t *order, uint64_t *nbytes, uint64_t *data_size) {
    bitnet_status st = check_out(t, n, meta, n_meta, path, nbytes);
    if (st != BITNET_OK) return st;
    size_t k = 0;
    for (int sz = 8; sz >= 1; sz /= 2)
        for (size_t i = 0; i < n; i++)
            if (k_dtypes[t[i].dtype].size == sz) order[k++] = i;
    int ok = bn_buf_append(b, "\0\0\0\0\0\0\0\0{", 9) == 0;
    if (n_meta) {
        ok = ok && bn_buf_printf(b, "\"__metadata__\":{") == 0;
        for (size_t i = 0; i < n_meta; i++) {
            ok = ok && (i == 0 || bn_buf_append(b, ",", 1) == 0) &&
                 bn_json_append_string(b, meta[2 * i], strlen(meta[2 * i])) == 0 && bn_buf_append(b, ":", 1) == 0 &&
                 bn_json_append_string(b, meta[2 * i + 1], strlen(meta[2 * i + 1])) == 0;
        }
        ok = ok && bn_buf_append(b, "}", 1) == 0;
    }
    uint64_t off = 0;
    for (size_t j = 0; j < n; j++) {
        const bn_st_out *x = &t[order[j]];
        ok = ok && ((n_meta == 0 && j == 0) || bn_buf_append(b, ",", 1) == 0) &&
             bn_json_append_string(b, x->name, strlen(x->name)) == 0 &&
             bn_buf_printf(b, ":{\"dtype\":\"%s\",\"shape\":[", k_dtypes[x->dtype].name) == 0;
        for (uint32_t d = 0; d < x->n_dims; d++) ok = ok && bn_buf_printf(b, "%s%llu", d ? "," : "", (ull)x->shape[d]) == 0;
        ok = ok && bn_buf_printf(b, "],\"data_offsets\":[%llu,%llu]}", (ull)off, (ull)(off + nbytes[order[j]])) == 0;
        off += nbytes[order[j]];
    }
    ok = ok && bn_buf_append(b, "}", 1) == 0;
    while (ok && b->len % 8) ok = bn_buf_append(b, " ", 1) == 0;
    if (!ok) return bn_error(BITNET_ERR_NOMEM, "%s: out of memory building the header", path);
    uint64_t hl = b->len - 8;
    for (int i = 0; i < 8; i++) b->data[i] = (char)(uint8_t)(hl >> (8 * i));
    *data_size = off;
    return BITNET_OK;
}

bitnet_status bn_safetensors_write_memory(const bn_st_out *t, size_t n, const char *const *meta, size_t n_meta,
                                          uint8_t **out, uint64_t *size) {
    if (!out || !size || (n && !t) || (n_meta && !meta))
        return bn_error(BITNET_ERR_ARG, "bn_safetensors_write_memory: NULL argument");
    size_t *order = malloc((n ? n : 1) * sizeof *order);
    uint64_t *nbytes = malloc((n ? n : 1) * sizeof *nbytes), data_size = 0;
    bn_buf b = {0};
    bitnet_status st = order && nbytes ? build_header(t, n, meta, n_meta, "(memory)", &b, order, nbytes, &data_size)
                                       : bn_error(BITNET_ERR_NOMEM, "(memory): out of memory");
    for (size_t j = 0; st == BITNET_OK && j < n; j++) {
        const bn_st_out *x = &t[order[j]];
        if (nbytes[order[j]] == 0) continue;
        void *tmp = x->data ? NULL : malloc((size_t)nbytes[order[j]]);
        if (tmp) x->fill(x, tmp);
        if ((!x->data && !tmp) || bn_buf_append(&b, x->data ? x->data : tmp, (size_t)nbytes[order[j]]) != 0)
            st = bn_error(BITNET_ERR_NOMEM, "(memory): out of memory for %llu bytes of data", (ull)data_size);
        free(tmp);
    }
    free(order);
    free(nbytes);
    if (st != BITNET_OK) {
        bn_buf_free(&b);
        return st;
    }
    *out = (uint8_t *)b.data;
    *size = b.len;
    return BITNET_OK;
}

/* As bn_gguf_writer_write: PATH.tmp, fsync, rename, so a reader never sees half a file. */
bitnet_status bn_safetensors_write(const char *path, const bn_st_out *t, size_t n, const char *const *meta,
                                   size_t n_meta) {
    if (!path || (n && !t) || (n_meta && !meta)) return bn_error(BITNET_ERR_ARG, "bn_safetensors_write: NULL argument");
    size_t *order = malloc((n ? n : 1) * sizeof *order);
    uint64_t *nbytes = malloc((n ? n : 1) * sizeof *nbytes), data_size = 0;
    bn_buf b = {0};
    bitnet_status st = order && nbytes ? build_header(t, n, meta, n_meta, path, &b, order, nbytes, &data_size)
                                       : bn_error(BITNET_ERR_NOMEM, "%s: out of memory", path);
    bn_atomic_file f;
    if (st == BITNET_OK && (st = bn_atomic_open(&f, path)) == BITNET_OK) {
        bn_atomic_write(&f, b.data, b.len);
        for (size_t j = 0; j < n && !f.err; j++) {
            const bn_st_out *x = &t[order[j]];
            if (nbytes[order[j]] == 0) continue;
            void *buf = x->data ? NULL : malloc((size_t)nbytes[order[j]]);
            if (!x->data && !buf) {
                bn_atomic_fail(&f, ENOMEM);
                break;
            }
            if (buf) x->fill(x, buf);
            bn_atomic_write(&f, x->data ? x->data : buf, nbytes[order[j]]);
            free(buf);
        }
        st = bn_atomic_commit(&f);
    }
    bn_buf_free(&b);
    free(order);
    free(nbytes);
    return st;
}
