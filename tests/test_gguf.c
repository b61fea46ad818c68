/* test_gguf.c - GGUF reader and writer: round trips, byte-identical rewrites,
 * hostile files (every truncation, corrupted fields, mutation sweep), flavor
 * rules, and the shared llama.cpp files. Hostile files are made by a small
 * byte builder here, independent of the writer under test. */
#include <stdint.h>
#include <sys/stat.h>
#include <unistd.h>

#include "formats/gguf.h"
#include "test.h"

/* ---- independent byte builder ------------------------------------------------ */

typedef struct {
    uint8_t *d;
    size_t len, cap;
} tb;

static void put_le(uint8_t *p, uint64_t v, int n) {
    for (int i = 0; i < n; i++) p[i] = (uint8_t)(v >> (8 * i));
}

/* Appends n bytes (zeros if p is NULL); returns where they start. */
static size_t tb_put(tb *b, const void *p, size_t n) {
    if (b->len + n > b->cap) {
        b->cap = (b->len + n) * 2 + 64;
        b->d = realloc(b->d, b->cap);
        if (!b->d) abort();
    }
    size_t at = b->len;
    if (p)
        memcpy(b->d + at, p, n);
    else
        memset(b->d + at, 0, n);
    b->len += n;
    return at;
}

static size_t tb_le(tb *b, uint64_t v, int n) {
    uint8_t x[8];
    put_le(x, v, n);
    return tb_put(b, x, (size_t)n);
}
static size_t tb_u32(tb *b, uint32_t v) { return tb_le(b, v, 4); }
static size_t tb_u64(tb *b, uint64_t v) { return tb_le(b, v, 8); }
static size_t tb_str(tb *b, const char *s) { /* returns the length field's offset */
    size_t at = tb_u64(b, strlen(s));
    tb_put(b, s, strlen(s));
    return at;
}
static void tb_pad(tb *b, size_t align) { tb_put(b, NULL, (align - b->len % align) % align); }

/* Parses an exact-size heap copy, so ASan sees any read past the end. */
static bitnet_status parse_bytes(const uint8_t *d, size_t n, bn_gguf_file **keep) {
    uint8_t *copy = malloc(n ? n : 1);
    bn_gguf_file *f = (bn_gguf_file *)1;
    if (n) memcpy(copy, d, n);
    bitnet_status st = bn_gguf_open_memory(copy, n, "hostile.gguf", &f);
    CHECK((st == BITNET_OK) == (f != NULL));
    if (keep && st == BITNET_OK) {
        *keep = f; /* caller closes it, then frees f->base */
        return st;
    }
    bn_gguf_close(f);
    free(copy);
    return st;
}

static void close_kept(bn_gguf_file *f) {
    const void *base = f->base;
    bn_gguf_close(f);
    free((void *)base);
}

/* ---- the hostile base file: every field's offset is recorded ------------------ */

typedef struct {
    tb b;
    size_t version, n_tensors, n_kv, key_len[6], vtype[6];
    size_t arch_len, align_val, u32_etype, u32_count, str_count, str_elem_len[2];
    size_t nst_count, nst_inner_etype[2], nst_inner_count[2], bool_val;
    size_t tname_len[2], ndims[2], ne[2][2], ttype[2], toff[2], data_start;
} hfile;

static void build_hostile(hfile *h) {
    tb *b = &h->b;
    memset(h, 0, sizeof *h);
    tb_put(b, "GGUF", 4);
    h->version = tb_u32(b, 3);
    h->n_tensors = tb_u64(b, 2);
    h->n_kv = tb_u64(b, 6);
    h->key_len[0] = tb_str(b, "general.architecture");
    h->vtype[0] = tb_u32(b, BN_GGUF_TYPE_STRING);
    h->arch_len = tb_str(b, "llama");
    h->key_len[1] = tb_str(b, "general.alignment");
    h->vtype[1] = tb_u32(b, BN_GGUF_TYPE_UINT32);
    h->align_val = tb_u32(b, 32);
    h->key_len[2] = tb_str(b, "arr.u32");
    h->vtype[2] = tb_u32(b, BN_GGUF_TYPE_ARRAY);
    h->u32_etype = tb_u32(b, BN_GGUF_TYPE_UINT32);
    h->u32_count = tb_u64(b, 3);
    for (uint32_t i = 1; i <= 3; i++) tb_u32(b, i);
    h->key_len[3] = tb_str(b, "arr.str");
    h->vtype[3] = tb_u32(b, BN_GGUF_TYPE_ARRAY);
    tb_u32(b, BN_GGUF_TYPE_STRING);
    h->str_count = tb_u64(b, 2);
    h->str_elem_len[0] = tb_str(b, "a");
    h->str_elem_len[1] = tb_str(b, "bc");
    h->key_len[4] = tb_str(b, "arr.nst");
    h->vtype[4] = tb_u32(b, BN_GGUF_TYPE_ARRAY);
    tb_u32(b, BN_GGUF_TYPE_ARRAY);
    h->nst_count = tb_u64(b, 2);
    h->nst_inner_etype[0] = tb_u32(b, BN_GGUF_TYPE_INT16);
    h->nst_inner_count[0] = tb_u64(b, 2);
    tb_le(b, 1, 2);
    tb_le(b, (uint16_t)-2, 2);
    h->nst_inner_etype[1] = tb_u32(b, BN_GGUF_TYPE_INT16);
    h->nst_inner_count[1] = tb_u64(b, 1);
    tb_le(b, 3, 2);
    h->key_len[5] = tb_str(b, "flag");
    h->vtype[5] = tb_u32(b, BN_GGUF_TYPE_BOOL);
    h->bool_val = tb_le(b, 1, 1);
    /* t0: q8_0 [32] = 34 bytes at 0; t1: f32 [8, 2] = 64 bytes at 64. The
     * file ends exactly at t1's end, so every shorter prefix is invalid. */
    h->tname_len[0] = tb_str(b, "t0");
    h->ndims[0] = tb_u32(b, 1);
    h->ne[0][0] = tb_u64(b, 32);
    h->ttype[0] = tb_u32(b, BN_GGML_TYPE_Q8_0);
    h->toff[0] = tb_u64(b, 0);
    h->tname_len[1] = tb_str(b, "t1");
    h->ndims[1] = tb_u32(b, 2);
    h->ne[1][0] = tb_u64(b, 8);
    h->ne[1][1] = tb_u64(b, 2);
    h->ttype[1] = tb_u32(b, BN_GGML_TYPE_F32);
    h->toff[1] = tb_u64(b, 64);
    tb_pad(b, 32);
    h->data_start = b->len;
    for (int i = 0; i < 128; i++) tb_le(b, (uint64_t)(i < 34 || i >= 64 ? i * 7 + 1 : 0), 1);
}

typedef struct {
    size_t off;
    int width;
    uint64_t val;
} mut;

static void expect_bad_m(const hfile *h, const mut *m, int n, bitnet_status code, const char *substr, int line) {
    uint8_t *d = malloc(h->b.len);
    memcpy(d, h->b.d, h->b.len);
    for (int i = 0; i < n; i++) put_le(d + m[i].off, m[i].val, m[i].width);
    bitnet_status st = parse_bytes(d, h->b.len, NULL);
    const char *e = bitnet_last_error();
    CHECK_MSG(st == code && strstr(e, "hostile.gguf: ") == e && !strchr(e, '\n') && (!substr || strstr(e, substr)),
              "line %d: status %d, error \"%s\" (wanted %d with \"%s\")", line, (int)st, e, (int)code,
              substr ? substr : "");
    free(d);
}

#define EXPECT_BAD(h, off, width, val, substr) \
    expect_bad_m(h, (mut[]){{off, width, val}}, 1, BITNET_ERR_FORMAT, substr, __LINE__)
#define EXPECT_CODE(h, off, width, val, code, substr) \
    expect_bad_m(h, (mut[]){{off, width, val}}, 1, code, substr, __LINE__)

TEST(gguf_hostile_base_is_valid) {
    hfile h;
    build_hostile(&h);
    bn_gguf_file *f = NULL;
    CHECK_EQ_INT(parse_bytes(h.b.d, h.b.len, &f), BITNET_OK);
    if (!f) SKIP("base file does not parse");
    CHECK_EQ_INT(f->n_kv, 6);
    CHECK_EQ_INT(f->n_tensors, 2);
    CHECK_EQ_INT(f->alignment, 32);
    CHECK_EQ_INT(f->data_offset, h.data_start);
    CHECK_EQ_INT(f->flavor, BN_GGUF_FLAVOR_UPSTREAM);
    const bn_gguf_value *nst = bn_gguf_get_arr(f, "arr.nst", BN_GGUF_TYPE_ARRAY);
    CHECK(nst && nst->arr.n == 2 && nst->arr.items[0].arr.type == BN_GGUF_TYPE_INT16 && nst->arr.items[1].arr.n == 1);
    const bn_gguf_value *s = bn_gguf_get_arr(f, "arr.str", BN_GGUF_TYPE_STRING);
    CHECK(s && s->arr.n == 2 && bn_gguf_str_eq(s->arr.items[1].str, "bc"));
    const bn_gguf_tensor *t1 = bn_gguf_find_tensor(f, "t1");
    CHECK(t1 && t1->type == BN_TT_F32 && t1->nbytes == 64 && t1->ne[1] == 2 && t1->ne[2] == 1);
    CHECK(t1 && (const uint8_t *)t1->data == f->base + h.data_start + 64);
    CHECK(bn_gguf_find_tensor(f, "t0")->nbytes == 34);
    close_kept(f);
    free(h.b.d);
}

TEST(gguf_hostile_every_truncation) {
    hfile h;
    build_hostile(&h);
    int bad = 0;
    for (size_t n = 0; n < h.b.len; n++) {
        bitnet_status st = parse_bytes(h.b.d, n, NULL);
        if (st != BITNET_ERR_FORMAT || !strstr(bitnet_last_error(), "hostile.gguf: ")) {
            if (bad++ < 5) CHECK_MSG(0, "prefix of %zu bytes: status %d, \"%s\"", n, (int)st, bitnet_last_error());
        }
    }
    CHECK_EQ_INT(bad, 0);
    CHECK_EQ_INT(parse_bytes(h.b.d, h.b.len, NULL), BITNET_OK);
    free(h.b.d);
}

TEST(gguf_hostile_header) {
    hfile h;
    build_hostile(&h);
    EXPECT_BAD(&h, 0, 4, 0x58554747, "not a GGUF file (magic bytes 47 47 55 58");
    EXPECT_BAD(&h, h.version, 4, 1, "GGUF version 1 is not supported");
    EXPECT_BAD(&h, h.version, 4, 4, "unsupported GGUF version 4");
    EXPECT_BAD(&h, h.version, 4, 0x03000000, "big-endian GGUF files are not supported");
    EXPECT_BAD(&h, h.n_tensors, 8, UINT64_MAX, "tensor count 18446744073709551615 exceeds the limit of 1048576");
    EXPECT_BAD(&h, h.n_tensors, 8, (uint64_t)1 << 63, "tensor count 9223372036854775808 exceeds the limit");
    EXPECT_BAD(&h, h.n_tensors, 8, BN_GGUF_MAX_TENSORS, "tensor count 1048576 and key/value count 6 need more than the");
    EXPECT_BAD(&h, h.n_tensors, 8, 3, NULL);
    EXPECT_BAD(&h, h.n_kv, 8, UINT64_MAX, "key/value count 18446744073709551615 exceeds the limit");
    EXPECT_BAD(&h, h.n_kv, 8, BN_GGUF_MAX_KV, "need more than the");
    EXPECT_BAD(&h, h.n_kv, 8, 7, NULL);
    EXPECT_BAD(&h, h.n_kv, 8, 5, NULL);
    free(h.b.d);
}

TEST(gguf_hostile_strings_and_values) {
    hfile h;
    build_hostile(&h);
    const uint64_t huge[] = {UINT64_MAX, UINT64_MAX - 3, (uint64_t)1 << 63, (uint64_t)1 << 40, 100000};
    for (int k = 0; k < 6; k++) {
        for (int j = 0; j < 5; j++) EXPECT_BAD(&h, h.key_len[k], 8, huge[j], "key length");
        EXPECT_BAD(&h, h.vtype[k], 4, BN_GGUF_TYPE_COUNT, "value type 13 at offset");
        EXPECT_BAD(&h, h.vtype[k], 4, UINT32_MAX, "value type 4294967295 at offset");
    }
    EXPECT_BAD(&h, h.key_len[5], 8, UINT64_MAX, "hostile.gguf: key #5: key length 18446744073709551615 at offset");
    EXPECT_BAD(&h, h.vtype[2], 4, 99, "hostile.gguf: key 'arr.u32': value type 99");
    for (int j = 0; j < 5; j++) EXPECT_BAD(&h, h.arch_len, 8, huge[j], "key 'general.architecture': string value length");
    for (int i = 0; i < 2; i++)
        for (int j = 0; j < 5; j++) EXPECT_BAD(&h, h.str_elem_len[i], 8, huge[j], "key 'arr.str': string value length");
    EXPECT_BAD(&h, h.bool_val, 1, 2, "key 'flag': bool value at offset");
    EXPECT_BAD(&h, h.bool_val, 1, 0xff, "is 255, must be 0 or 1");
    /* duplicate key: rename "arr.str" to "arr.u32" */
    expect_bad_m(&h, (mut[]){{h.key_len[3] + 8 + 4, 3, 'u' | '3' << 8 | '2' << 16}}, 1, BITNET_ERR_FORMAT,
                 "key 'arr.u32': duplicate key name", __LINE__);
    free(h.b.d);
}

TEST(gguf_hostile_arrays) {
    hfile h;
    build_hostile(&h);
    EXPECT_BAD(&h, h.u32_count, 8, UINT64_MAX, "array of 18446744073709551615 uint32 elements");
    EXPECT_BAD(&h, h.u32_count, 8, (uint64_t)1 << 62, "array of 4611686018427387904 uint32 elements"); /* x4 wraps to 0 */
    EXPECT_BAD(&h, h.u32_count, 8, 1000, "exceeds the");
    EXPECT_BAD(&h, h.u32_count, 8, 4, NULL); /* eats the next key: misparse, still an error */
    EXPECT_BAD(&h, h.u32_etype, 4, BN_GGUF_TYPE_COUNT, "array element type 13");
    EXPECT_BAD(&h, h.u32_etype, 4, UINT32_MAX, "array element type 4294967295");
    EXPECT_BAD(&h, h.u32_etype, 4, BN_GGUF_TYPE_STRING, NULL);
    /* lying counts must fail before allocating (ASan would report a giant malloc) */
    EXPECT_BAD(&h, h.str_count, 8, UINT64_MAX, "key 'arr.str': array length 18446744073709551615");
    EXPECT_BAD(&h, h.str_count, 8, (uint64_t)1 << 40, "array length 1099511627776");
    EXPECT_BAD(&h, h.str_count, 8, 3, NULL);
    EXPECT_BAD(&h, h.nst_count, 8, UINT64_MAX, "key 'arr.nst': array length 18446744073709551615");
    EXPECT_BAD(&h, h.nst_count, 8, 50, "array element");
    EXPECT_BAD(&h, h.nst_inner_count[1], 8, UINT64_MAX, "array of 18446744073709551615 int16 elements");
    EXPECT_BAD(&h, h.nst_inner_count[0], 8, (uint64_t)1 << 63, "array of 9223372036854775808 int16");
    EXPECT_BAD(&h, h.nst_inner_etype[0], 4, 99, "array element type 99");
    free(h.b.d);
}

TEST(gguf_hostile_alignment) {
    hfile h;
    build_hostile(&h);
    EXPECT_BAD(&h, h.align_val, 4, 0, "key 'general.alignment': alignment 0 is not a non-zero power of two");
    EXPECT_BAD(&h, h.align_val, 4, 48, "alignment 48 is not a non-zero power of two");
    EXPECT_BAD(&h, h.align_val, 4, UINT32_MAX, "alignment 4294967295");
    EXPECT_BAD(&h, h.align_val, 4, 0x80000000u, NULL); /* valid but the data section passes the end */
    EXPECT_BAD(&h, h.vtype[1], 4, BN_GGUF_TYPE_INT32, "key 'general.alignment': has type int32, must be uint32");
    EXPECT_BAD(&h, h.align_val, 4, 128, NULL); /* t1 at 64 is no longer aligned */
    free(h.b.d);
}

TEST(gguf_hostile_tensor_infos) {
    hfile h;
    build_hostile(&h);
    for (int t = 0; t < 2; t++) {
        EXPECT_BAD(&h, h.tname_len[t], 8, UINT64_MAX, "tensor name length 18446744073709551615");
        EXPECT_BAD(&h, h.tname_len[t], 8, 1000, "tensor name length 1000");
        EXPECT_BAD(&h, h.ndims[t], 4, 0, "n_dims is 0, must be 1..4");
        EXPECT_BAD(&h, h.ndims[t], 4, 5, "n_dims is 5, must be 1..4");
        EXPECT_BAD(&h, h.ndims[t], 4, UINT32_MAX, "n_dims is 4294967295");
        EXPECT_BAD(&h, h.ne[t][0], 8, 0, "ne[0] is 0");
        EXPECT_BAD(&h, h.ne[t][0], 8, UINT64_MAX, "ne[0] = 18446744073709551615 is negative");
        EXPECT_BAD(&h, h.ne[t][0], 8, (uint64_t)1 << 63, "ne[0] = 9223372036854775808 is negative");
        EXPECT_BAD(&h, h.ttype[t], 4, 2000, "unknown tensor type id 2000");
        EXPECT_BAD(&h, h.ttype[t], 4, UINT32_MAX, "unknown tensor type id 4294967295");
        EXPECT_BAD(&h, h.ttype[t], 4, 37, "unknown tensor type id 37");
        EXPECT_CODE(&h, h.ttype[t], 4, BN_GGML_TYPE_Q2_K, BITNET_ERR_UNSUPPORTED, "tensor type q2_K (id 10) is not supported");
        EXPECT_BAD(&h, h.toff[t], 8, 1, "data offset 1 is not a multiple of the alignment 32");
        EXPECT_BAD(&h, h.toff[t], 8, UINT64_MAX, "is not a multiple of the alignment");
        EXPECT_BAD(&h, h.toff[t], 8, UINT64_MAX & ~(uint64_t)31, "lies outside the file");
        EXPECT_BAD(&h, h.toff[t], 8, (uint64_t)1 << 40, "lies outside the file");
    }
    EXPECT_BAD(&h, h.ne[0][0], 8, 33, "tensor 't0': row length ne[0] = 33 is not a multiple of the q8_0 block size 32");
    EXPECT_BAD(&h, h.ne[1][1], 8, (uint64_t)1 << 62, "tensor 't1': element count overflows 64 bits at ne[1]");
    expect_bad_m(&h, (mut[]){{h.ne[1][0], 8, (uint64_t)1 << 32}, {h.ne[1][1], 8, (uint64_t)1 << 32}}, 2,
                 BITNET_ERR_FORMAT, "element count overflows", __LINE__);
    EXPECT_BAD(&h, h.ne[1][1], 8, 3, "tensor 't1': data [offset 64, 96 bytes] lies outside the file (data section at");
    EXPECT_BAD(&h, h.ne[1][1], 8, 1000, "data [offset 64, 32000 bytes] lies outside the file");
    EXPECT_BAD(&h, h.toff[1], 8, 96, "tensor 't1': data [offset 96, 64 bytes] lies outside the file");
    EXPECT_BAD(&h, h.ttype[1], 4, BN_GGML_TYPE_Q8_0, "tensor 't1': row length ne[0] = 8");
    EXPECT_BAD(&h, h.tname_len[1] + 9, 1, '0', "tensor 't0': duplicate tensor name");
    free(h.b.d);
}

/* Every single-byte change, then random multi-byte ones: no crash, no
 * sanitizer report, and a result that is either a clean error or a file. */
TEST(gguf_hostile_mutation_sweep) {
    hfile h;
    build_hostile(&h);
    uint8_t *d = malloc(h.b.len);
    const uint8_t vals[] = {0x00, 0x01, 0x7f, 0x80, 0xff};
    int weird = 0;
    for (size_t i = 0; i < h.b.len; i++)
        for (size_t v = 0; v < sizeof vals; v++) {
            memcpy(d, h.b.d, h.b.len);
            d[i] = vals[v];
            bitnet_status st = parse_bytes(d, h.b.len, NULL);
            weird += st != BITNET_OK && st != BITNET_ERR_FORMAT && st != BITNET_ERR_UNSUPPORTED;
        }
    uint64_t x = 88172645463325252ull;
    for (int it = 0; it < 4000; it++) {
        memcpy(d, h.b.d, h.b.len);
        for (int k = 0; k < 4; k++) {
            x ^= x << 13, x ^= x >> 7, x ^= x << 17;
            d[x % h.b.len] = (uint8_t)(x >> 32);
        }
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        size_t n = (x >> 40) % 4 == 0 ? (size_t)(x % h.b.len) : h.b.len;
        bitnet_status st = parse_bytes(d, n, NULL);
        weird += st != BITNET_OK && st != BITNET_ERR_FORMAT && st != BITNET_ERR_UNSUPPORTED;
    }
    CHECK_EQ_INT(weird, 0);
    free(d);
    free(h.b.d);
}

/* depth nested arrays around one uint8 */
static tb make_deep(int depth) {
    tb b = {0};
    tb_put(&b, "GGUF", 4);
    tb_u32(&b, 3);
    tb_u64(&b, 0);
    tb_u64(&b, 1);
    tb_str(&b, "deep");
    tb_u32(&b, BN_GGUF_TYPE_ARRAY);
    for (int i = 1; i < depth; i++) {
        tb_u32(&b, BN_GGUF_TYPE_ARRAY);
        tb_u64(&b, 1);
    }
    tb_u32(&b, BN_GGUF_TYPE_UINT8);
    tb_u64(&b, 1);
    tb_le(&b, 7, 1);
    return b;
}

TEST(gguf_nested_array_depth_limit) {
    tb ok = make_deep(BN_GGUF_MAX_ARRAY_DEPTH), bad = make_deep(BN_GGUF_MAX_ARRAY_DEPTH + 1);
    bn_gguf_file *f = NULL;
    CHECK_EQ_INT(parse_bytes(ok.d, ok.len, &f), BITNET_OK);
    if (f) {
        const bn_gguf_value *v = &f->kv[0].value;
        int levels = 0;
        while (v->type == BN_GGUF_TYPE_ARRAY && v->arr.type == BN_GGUF_TYPE_ARRAY) {
            v = &v->arr.items[0];
            levels++;
        }
        CHECK_EQ_INT(levels + 1, BN_GGUF_MAX_ARRAY_DEPTH);
        CHECK(v->arr.type == BN_GGUF_TYPE_UINT8 && v->arr.n == 1 && ((const uint8_t *)v->arr.data)[0] == 7);
        /* the writer accepts what the reader accepts, and no deeper */
        bn_gguf_writer *w = bn_gguf_writer_new();
        uint8_t *out = NULL;
        uint64_t n = 0;
        bn_gguf_writer_set_value(w, "deep", &f->kv[0].value);
        CHECK_EQ_INT(bn_gguf_writer_write_memory(w, &out, &n), BITNET_OK);
        CHECK(n == ok.len && out && memcmp(out, ok.d, ok.len) == 0);
        free(out);
        bn_gguf_value wrap = {.type = BN_GGUF_TYPE_ARRAY};
        wrap.arr.type = BN_GGUF_TYPE_ARRAY;
        wrap.arr.n = 1;
        wrap.arr.items = (bn_gguf_value *)&f->kv[0].value;
        bn_gguf_writer_set_value(w, "deeper", &wrap);
        CHECK_EQ_INT(bn_gguf_writer_write_memory(w, &out, &n), BITNET_ERR_ARG);
        CHECK(strstr(bitnet_last_error(), "nested deeper"));
        bn_gguf_writer_free(w);
        close_kept(f);
    }
    CHECK_EQ_INT(parse_bytes(bad.d, bad.len, NULL), BITNET_ERR_FORMAT);
    CHECK(strstr(bitnet_last_error(), "hostile.gguf: key 'deep': arrays nested deeper than 8 levels"));
    free(ok.d);
    free(bad.d);
}

TEST(gguf_version2_is_read) {
    hfile h;
    build_hostile(&h);
    put_le(h.b.d + h.version, 2, 4);
    bn_gguf_file *f = NULL;
    CHECK_EQ_INT(parse_bytes(h.b.d, h.b.len, &f), BITNET_OK);
    if (f) {
        CHECK_EQ_INT(f->version, 2);
        close_kept(f);
    }
    free(h.b.d);
}

/* ---- flavor ---------------------------------------------------------------------- */

/* Two-dim tensors with the given raw ids and byte sizes, packed at 32. */
static tb make_typed(const char *arch, int n, const uint32_t *ids, const uint64_t (*ne)[2], const uint64_t *nbytes) {
    tb b = {0};
    tb_put(&b, "GGUF", 4);
    tb_u32(&b, 3);
    tb_u64(&b, (uint64_t)n);
    tb_u64(&b, arch ? 1 : 0);
    if (arch) {
        tb_str(&b, "general.architecture");
        tb_u32(&b, BN_GGUF_TYPE_STRING);
        tb_str(&b, arch);
    }
    uint64_t off = 0;
    for (int i = 0; i < n; i++) {
        char name[16];
        snprintf(name, sizeof name, "w%d", i);
        tb_str(&b, name);
        tb_u32(&b, 2);
        tb_u64(&b, ne[i][0]);
        tb_u64(&b, ne[i][1]);
        tb_u32(&b, ids[i]);
        tb_u64(&b, off);
        off += (nbytes[i] + 31) / 32 * 32;
    }
    tb_pad(&b, 32);
    tb_put(&b, NULL, (size_t)off);
    return b;
}

TEST(gguf_flavor_rules) {
    const uint64_t ne[3][2] = {{128, 2}, {256, 2}, {32, 2}};
    struct {
        const char *arch;
        uint32_t ids[2];
        uint64_t ne[2][2];
        uint64_t nbytes[2];
        bitnet_status want;
        bn_gguf_flavor flavor;
        bn_tensor_type t1;
        const char *msg;
    } cases[] = {
        {"bitnet-b1.58", {0, 36}, {{4, 2}, {128, 2}}, {32, 96}, BITNET_OK, BN_GGUF_FLAVOR_BITNETCPP, BN_TT_I2_S, NULL},
        {"llama", {1, 35}, {{4, 2}, {256, 2}}, {16, 132}, BITNET_OK, BN_GGUF_FLAVOR_UPSTREAM, BN_TT_TQ2_0, NULL},
        {"gpt-oss", {0, 39}, {{4, 2}, {32, 2}}, {32, 34}, BITNET_OK, BN_GGUF_FLAVOR_UPSTREAM, BN_TT_MXFP4, NULL},
        {"bitnet", {38, 39}, {{128, 2}, {256, 2}}, {96, 160}, BITNET_OK, BN_GGUF_FLAVOR_BITNETCPP, BN_TT_TL2, NULL},
        {"bitnet", {0, 39}, {{4, 2}, {32, 2}}, {32, 34}, BITNET_ERR_UNSUPPORTED, 0, 0,
         "tensor 'w1': type id 39 is ambiguous (MXFP4 in llama.cpp and newer bitnet.cpp, TL2 in the original bitnet.cpp) and general.architecture is a bitnet one"},
        {NULL, {0, 39}, {{4, 2}, {32, 2}}, {32, 34}, BITNET_ERR_UNSUPPORTED, 0, 0, "the file has no general.architecture"},
        {"llama", {36, 39}, {{128, 2}, {32, 2}}, {96, 34}, BITNET_ERR_UNSUPPORTED, 0, 0, "also has I2_S (36) tensors"},
        {"bitnet-b1.58", {0, 36}, {{4, 2}, {128, 2}}, {32, 64}, BITNET_ERR_FORMAT, 0, 0,
         "tensor 'w1': data [offset 32, 96 bytes] lies outside the file"},
    };
    (void)ne;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        tb b = make_typed(cases[i].arch, 2, cases[i].ids, cases[i].ne, cases[i].nbytes);
        bn_gguf_file *f = NULL;
        bitnet_status st = parse_bytes(b.d, b.len, &f);
        CHECK_MSG(st == cases[i].want, "case %zu: status %d (%s)", i, (int)st, bitnet_last_error());
        if (f) {
            CHECK_MSG(f->flavor == cases[i].flavor && f->tensors[1].type == cases[i].t1 &&
                          f->tensors[1].nbytes == cases[i].nbytes[1],
                      "case %zu: flavor %d type %d nbytes %llu", i, (int)f->flavor, (int)f->tensors[1].type,
                      (unsigned long long)f->tensors[1].nbytes);
            close_kept(f);
        } else if (cases[i].msg) {
            CHECK_MSG(strstr(bitnet_last_error(), cases[i].msg), "case %zu: \"%s\"", i, bitnet_last_error());
        }
        free(b.d);
    }
}

TEST(gguf_type_tables) {
    const uint64_t a[4] = {4096, 4096, 1, 1}, q[4] = {64, 3, 1, 1}, t2[4] = {256, 2, 1, 1}, t1[4] = {512, 1, 1, 1},
                   h[4] = {3, 5, 1, 1}, odd[4] = {33, 1, 1, 1}, big[4] = {1ull << 40, 1ull << 40, 1, 1},
                   z[4] = {4, 0, 1, 1}, tl2[4] = {1536, 3, 1, 1}, tl2b[4] = {1000, 3, 1, 1},
                   tl2_3d[4] = {1536, 3, 2, 1}, tl2_short[4] = {128, 3, 1, 1};
    CHECK_EQ_INT(bn_tensor_nbytes(BN_TT_I2_S, a), 4096 * 4096 / 4 + 32);
    CHECK_EQ_INT(bn_tensor_nbytes(BN_TT_Q8_0, q), 2 * 34 * 3);
    CHECK_EQ_INT(bn_tensor_nbytes(BN_TT_TQ2_0, t2), 132);
    CHECK_EQ_INT(bn_tensor_nbytes(BN_TT_TQ1_0, t1), 108);
    CHECK_EQ_INT(bn_tensor_nbytes(BN_TT_F16, h), 30);
    CHECK_EQ_INT(bn_tensor_nbytes(BN_TT_BF16, h), 30);
    CHECK_EQ_INT(bn_tensor_nbytes(BN_TT_F32, h), 60);
    CHECK_EQ_INT(bn_tensor_nbytes(BN_TT_MXFP4, q), 2 * 17 * 3);
    /* bitnet.cpp TL2, C integer arithmetic left to right:
     * (1280*3)/3*5/8 = 800, 256*3/2*4/8 = 192: 992, already a multiple of 32, +32;
     * (744*3)/3*5/8 = 465, + 192 = 657 -> padded to 672, +32 */
    CHECK_EQ_INT(bn_tensor_nbytes(BN_TT_TL2, tl2), 1024);
    CHECK_EQ_INT(bn_tensor_nbytes(BN_TT_TL2, tl2b), 704);
    CHECK_EQ_INT(bn_tensor_nbytes(BN_TT_TL2, tl2_3d), 0);
    CHECK_EQ_INT(bn_tensor_nbytes(BN_TT_TL2, tl2_short), 0);
    CHECK_EQ_INT(bn_tensor_nbytes(BN_TT_TL1, a), 4096 * 4096 / 4 + 32);
    CHECK_EQ_INT(bn_tensor_nbytes(BN_TT_Q8_0, odd), 0);
    CHECK_EQ_INT(bn_tensor_nbytes(BN_TT_F32, big), 0);
    CHECK_EQ_INT(bn_tensor_nbytes(BN_TT_F32, z), 0);
    CHECK_EQ_INT(bn_tensor_nbytes(BN_TT_UNKNOWN, h), 0);
    CHECK_STR(bn_type_get_traits(BN_TT_TQ2_0)->name, "tq2_0");
    CHECK_STR(bn_type_get_traits((bn_tensor_type)999)->name, "unknown");
    for (int t = BN_TT_F32; t < BN_TT_COUNT; t++) {
        for (int fl = 0; fl < 2; fl++) {
            uint32_t id = bn_gguf_tensor_type_id((bn_tensor_type)t, (bn_gguf_flavor)fl);
            if (id != UINT32_MAX) CHECK_EQ_INT(bn_gguf_tensor_type_resolve(id, (bn_gguf_flavor)fl), t);
        }
    }
    CHECK_EQ_INT(bn_gguf_tensor_type_resolve(36, BN_GGUF_FLAVOR_UPSTREAM), BN_TT_UNKNOWN);
    CHECK_EQ_INT(bn_gguf_tensor_type_resolve(39, BN_GGUF_FLAVOR_UPSTREAM), BN_TT_MXFP4);
    CHECK_EQ_INT(bn_gguf_tensor_type_resolve(39, BN_GGUF_FLAVOR_BITNETCPP), BN_TT_TL2);
    CHECK_EQ_INT(bn_gguf_tensor_type_id(BN_TT_I2_S, BN_GGUF_FLAVOR_UPSTREAM), UINT32_MAX);
    CHECK_EQ_INT(bn_gguf_tensor_type_id(BN_TT_I2_S, BN_GGUF_FLAVOR_BITNETCPP), 36);
    CHECK_EQ_INT(bn_gguf_vtype_size(BN_GGUF_TYPE_FLOAT64), 8);
    CHECK_EQ_INT(bn_gguf_vtype_size(BN_GGUF_TYPE_STRING), 0);
}

/* ---- round trips through the writer ---------------------------------------------------- */

static int val_eq(const bn_gguf_value *a, const bn_gguf_value *b) {
    if (a->type != b->type) return 0;
    if (a->type == BN_GGUF_TYPE_STRING)
        return a->str.len == b->str.len && (a->str.len == 0 || memcmp(a->str.data, b->str.data, a->str.len) == 0);
    if (a->type != BN_GGUF_TYPE_ARRAY) /* every member starts at the union's start */
        return memcmp(&a->u8, &b->u8, (size_t)bn_gguf_vtype_size(a->type)) == 0;
    if (a->arr.type != b->arr.type || a->arr.n != b->arr.n) return 0;
    uint64_t es = bn_gguf_vtype_size(a->arr.type);
    if (es) return a->arr.n == 0 || memcmp(a->arr.data, b->arr.data, (size_t)(a->arr.n * es)) == 0;
    for (uint64_t i = 0; i < a->arr.n; i++)
        if (!val_eq(&a->arr.items[i], &b->arr.items[i])) return 0;
    return 1;
}

static bn_gguf_value arr_of(bn_gguf_vtype et, const void *data, uint64_t n) {
    bn_gguf_value v = {.type = BN_GGUF_TYPE_ARRAY};
    v.arr.type = et;
    v.arr.n = n;
    v.arr.data = data;
    return v;
}

static bn_gguf_value arr_items(bn_gguf_vtype et, bn_gguf_value *items, uint64_t n) {
    bn_gguf_value v = arr_of(et, NULL, n);
    v.arr.items = items;
    return v;
}

static bn_gguf_value str_of(const char *s, uint64_t n) {
    bn_gguf_value v = {.type = BN_GGUF_TYPE_STRING};
    v.str = (bn_gguf_str){n, s};
    return v;
}

/* Reads a file's metadata and tensors into a new writer and serialises it. */
static bitnet_status rewrite(const bn_gguf_file *f, uint8_t **out, uint64_t *n) {
    bn_gguf_writer *w = bn_gguf_writer_new();
    char name[512];
    bn_gguf_writer_set_flavor(w, f->flavor);
    for (uint64_t i = 0; i < f->n_kv; i++) {
        snprintf(name, sizeof name, "%.*s", (int)f->kv[i].key.len, f->kv[i].key.data);
        bn_gguf_writer_set_value(w, name, &f->kv[i].value);
    }
    for (uint64_t i = 0; i < f->n_tensors; i++) {
        const bn_gguf_tensor *t = &f->tensors[i];
        snprintf(name, sizeof name, "%.*s", (int)t->name.len, t->name.data);
        bn_gguf_writer_add_tensor(w, name, t->n_dims, t->ne, t->type, t->data, t->nbytes);
    }
    bitnet_status st = bn_gguf_writer_write_memory(w, out, n);
    bn_gguf_writer_free(w);
    return st;
}

typedef struct {
    const char *name;
    uint32_t n_dims;
    uint64_t ne[4];
    bn_tensor_type type;
    uint64_t nbytes;
} tspec;

TEST(gguf_round_trip_all_types) {
    static const uint8_t u8s[] = {0, 1, 255};
    static const int8_t i8s[] = {-128, 5};
    static const uint16_t u16s[] = {65535, 2};
    static const int16_t i16s[] = {-32768, 7};
    static const uint32_t u32s[] = {1, 0xdeadbeef, 3};
    static const int32_t i32s[] = {-1, 2147483647};
    static const float f32s[] = {1.5f, -0.0f, 3.25e-20f};
    static const uint8_t bools[] = {1, 0, 1};
    static const uint64_t u64s[] = {UINT64_MAX, 0};
    static const int64_t i64s[] = {INT64_MIN, 42};
    static const double f64s[] = {3.141592653589793, -1e300};
    static const char nul_str[] = {'a', 0, 'b', (char)0xff, '\n'};
    const char *strs[] = {"hello", "", "with\0nul", "\xc3\xa9t\xc3\xa9"};
    const uint64_t lens[] = {5, 0, 8, 6};

    /* nested values, built on the heap and freed before the write: the
     * writer must have deep-copied them */
    bn_gguf_value *in1 = calloc(3, sizeof *in1), *in2 = calloc(2, sizeof *in2), *in3 = calloc(1, sizeof *in3);
    bn_gguf_value *s1 = calloc(2, sizeof *s1), *s2 = calloc(1, sizeof *s2), *lvl = calloc(1, sizeof *lvl);
    uint32_t *heap_u32 = malloc(3 * sizeof *heap_u32);
    memcpy(heap_u32, u32s, sizeof u32s);
    in1[0] = arr_of(BN_GGUF_TYPE_UINT32, heap_u32, 3);
    in1[1] = arr_of(BN_GGUF_TYPE_UINT32, NULL, 0);
    in1[2] = arr_of(BN_GGUF_TYPE_UINT32, heap_u32 + 1, 1);
    s1[0] = str_of("x", 1);
    s1[1] = str_of("yz", 2);
    s2[0] = str_of("", 0);
    in2[0] = arr_items(BN_GGUF_TYPE_STRING, s1, 2);
    in2[1] = arr_items(BN_GGUF_TYPE_STRING, s2, 1);
    lvl[0] = arr_of(BN_GGUF_TYPE_FLOAT32, f32s, 3);
    in3[0] = arr_items(BN_GGUF_TYPE_ARRAY, lvl, 1);

    struct {
        const char *key;
        bn_gguf_value v;
    } kv[] = {
        {"s.u8", {.type = BN_GGUF_TYPE_UINT8, .u8 = 200}},
        {"s.i8", {.type = BN_GGUF_TYPE_INT8, .i8 = -100}},
        {"s.u16", {.type = BN_GGUF_TYPE_UINT16, .u16 = 60000}},
        {"s.i16", {.type = BN_GGUF_TYPE_INT16, .i16 = -30000}},
        {"s.u32", {.type = BN_GGUF_TYPE_UINT32, .u32 = 4000000000u}},
        {"s.i32", {.type = BN_GGUF_TYPE_INT32, .i32 = -2000000000}},
        {"s.f32", {.type = BN_GGUF_TYPE_FLOAT32, .f32 = 1e-5f}},
        {"s.bool", {.type = BN_GGUF_TYPE_BOOL, .b = true}},
        {"s.str", {.type = BN_GGUF_TYPE_STRING}},
        {"s.u64", {.type = BN_GGUF_TYPE_UINT64, .u64 = 1ull << 60}},
        {"s.i64", {.type = BN_GGUF_TYPE_INT64, .i64 = -(1ll << 60)}},
        {"s.f64", {.type = BN_GGUF_TYPE_FLOAT64, .f64 = 2.5e-300}},
        {"s.raw", str_of(nul_str, sizeof nul_str)},
        {"s.empty", str_of("", 0)},
        {"a.u8", arr_of(BN_GGUF_TYPE_UINT8, u8s, 3)},
        {"a.i8", arr_of(BN_GGUF_TYPE_INT8, i8s, 2)},
        {"a.u16", arr_of(BN_GGUF_TYPE_UINT16, u16s, 2)},
        {"a.i16", arr_of(BN_GGUF_TYPE_INT16, i16s, 2)},
        {"a.u32", arr_of(BN_GGUF_TYPE_UINT32, u32s, 3)},
        {"a.i32", arr_of(BN_GGUF_TYPE_INT32, i32s, 2)},
        {"a.f32", arr_of(BN_GGUF_TYPE_FLOAT32, f32s, 3)},
        {"a.bool", arr_of(BN_GGUF_TYPE_BOOL, bools, 3)},
        {"a.u64", arr_of(BN_GGUF_TYPE_UINT64, u64s, 2)},
        {"a.i64", arr_of(BN_GGUF_TYPE_INT64, i64s, 2)},
        {"a.f64", arr_of(BN_GGUF_TYPE_FLOAT64, f64s, 2)},
        {"a.empty", arr_of(BN_GGUF_TYPE_INT32, NULL, 0)},
        {"a.str", {.type = BN_GGUF_TYPE_ARRAY}},
        {"n.u32", arr_items(BN_GGUF_TYPE_ARRAY, in1, 3)},
        {"n.str", arr_items(BN_GGUF_TYPE_ARRAY, in2, 2)},
        {"n.deep", arr_items(BN_GGUF_TYPE_ARRAY, in3, 1)},
    };
    const int n_kv = (int)(sizeof kv / sizeof kv[0]);
    kv[8].v.str = (bn_gguf_str){5, "llama"};

    tspec ts[] = {
        {"f32", 2, {4, 3, 1, 1}, BN_TT_F32, 48},         {"f16", 1, {8, 1, 1, 1}, BN_TT_F16, 16},
        {"q8_0", 2, {64, 2, 1, 1}, BN_TT_Q8_0, 136},     {"tq2_0", 2, {256, 2, 1, 1}, BN_TT_TQ2_0, 132},
        {"tq1_0", 3, {256, 1, 1, 1}, BN_TT_TQ1_0, 54},   {"i2_s", 2, {128, 4, 1, 1}, BN_TT_I2_S, 160},
        {"blk.0.f32", 4, {2, 2, 2, 2}, BN_TT_F32, 64},
    };
    const int n_t = (int)(sizeof ts / sizeof ts[0]);
    uint8_t *data[8];
    uint64_t x = 12345;
    for (int i = 0; i < n_t; i++) {
        CHECK_EQ_INT(bn_tensor_nbytes(ts[i].type, ts[i].ne), ts[i].nbytes);
        data[i] = malloc(ts[i].nbytes);
        for (uint64_t j = 0; j < ts[i].nbytes; j++) {
            x ^= x << 13, x ^= x >> 7, x ^= x << 17;
            data[i][j] = (uint8_t)x;
        }
    }

    bn_gguf_writer *w = bn_gguf_writer_new();
    bn_gguf_value first = {.type = BN_GGUF_TYPE_STRING};
    first.str = (bn_gguf_str){3, "old"};
    bn_gguf_writer_set_value(w, "s.u8", &first); /* replaced below, keeps its place */
    for (int i = 0; i < n_kv; i++) {
        if (!strcmp(kv[i].key, "s.u32")) bn_gguf_writer_set_u32(w, kv[i].key, kv[i].v.u32);
        else if (!strcmp(kv[i].key, "s.i32")) bn_gguf_writer_set_i32(w, kv[i].key, kv[i].v.i32);
        else if (!strcmp(kv[i].key, "s.u64")) bn_gguf_writer_set_u64(w, kv[i].key, kv[i].v.u64);
        else if (!strcmp(kv[i].key, "s.f32")) bn_gguf_writer_set_f32(w, kv[i].key, kv[i].v.f32);
        else if (!strcmp(kv[i].key, "s.bool")) bn_gguf_writer_set_bool(w, kv[i].key, kv[i].v.b);
        else if (!strcmp(kv[i].key, "s.str")) bn_gguf_writer_set_str(w, kv[i].key, "llama");
        else if (!strcmp(kv[i].key, "a.str")) bn_gguf_writer_set_arr_str(w, kv[i].key, strs, lens, 4);
        else if (kv[i].v.type == BN_GGUF_TYPE_ARRAY && bn_gguf_vtype_size(kv[i].v.arr.type))
            bn_gguf_writer_set_arr_data(w, kv[i].key, kv[i].v.arr.type, kv[i].v.arr.data, kv[i].v.arr.n);
        else bn_gguf_writer_set_value(w, kv[i].key, &kv[i].v);
    }
    for (int i = 0; i < n_t; i++)
        bn_gguf_writer_add_tensor(w, ts[i].name, ts[i].n_dims, ts[i].ne, ts[i].type, data[i], ts[i].nbytes);
    /* the expected a.str value, for comparing */
    bn_gguf_value sitems[4];
    for (int i = 0; i < 4; i++) sitems[i] = str_of(strs[i], lens[i]);
    kv[26].v = arr_items(BN_GGUF_TYPE_STRING, sitems, 4);
    /* scribble over and free the nested sources: only copies may be used */
    heap_u32[0] = 999;
    bn_gguf_value keep_n[3];
    uint32_t keep_u32[3];
    memcpy(keep_u32, u32s, sizeof u32s);
    bn_gguf_value k_in1[3] = {arr_of(BN_GGUF_TYPE_UINT32, keep_u32, 3), arr_of(BN_GGUF_TYPE_UINT32, NULL, 0),
                           arr_of(BN_GGUF_TYPE_UINT32, keep_u32 + 1, 1)};
    bn_gguf_value k_s1[2] = {str_of("x", 1), str_of("yz", 2)}, k_s2[1] = {str_of("", 0)};
    bn_gguf_value k_in2[2] = {arr_items(BN_GGUF_TYPE_STRING, k_s1, 2), arr_items(BN_GGUF_TYPE_STRING, k_s2, 1)};
    bn_gguf_value k_lvl[1] = {arr_of(BN_GGUF_TYPE_FLOAT32, f32s, 3)}, k_in3[1] = {arr_items(BN_GGUF_TYPE_ARRAY, k_lvl, 1)};
    keep_n[0] = arr_items(BN_GGUF_TYPE_ARRAY, k_in1, 3);
    keep_n[1] = arr_items(BN_GGUF_TYPE_ARRAY, k_in2, 2);
    keep_n[2] = arr_items(BN_GGUF_TYPE_ARRAY, k_in3, 1);
    memset(in1, 0xab, 3 * sizeof *in1);
    free(in1), free(in2), free(in3), free(s1), free(s2), free(lvl), free(heap_u32);
    kv[27].v = keep_n[0], kv[28].v = keep_n[1], kv[29].v = keep_n[2];

    uint8_t *mem = NULL;
    uint64_t mem_n = 0;
    CHECK_EQ_INT(bn_gguf_writer_write_memory(w, &mem, &mem_n), BITNET_OK);
    const char *path = bn_test_tmp(".gguf");
    CHECK_EQ_INT(bn_gguf_writer_write(w, path), BITNET_OK);
    bn_gguf_writer_free(w);
    if (!mem) SKIP("writer failed");

    bn_gguf_file *f = NULL;
    CHECK_EQ_INT(bn_gguf_open_memory(mem, mem_n, "rt.gguf", &f), BITNET_OK);
    if (f) {
        CHECK_EQ_INT(f->n_kv, n_kv);
        CHECK_EQ_INT(f->flavor, BN_GGUF_FLAVOR_BITNETCPP); /* chosen because of i2_s */
        for (int i = 0; i < n_kv && (uint64_t)i < f->n_kv; i++) {
            CHECK_MSG(bn_gguf_str_eq(f->kv[i].key, kv[i].key), "key %d is '%.*s', want '%s'", i, (int)f->kv[i].key.len,
                      f->kv[i].key.data, kv[i].key);
            CHECK_MSG(val_eq(&f->kv[i].value, &kv[i].v), "value of '%s' differs", kv[i].key);
        }
        CHECK_EQ_INT(f->n_tensors, n_t);
        for (int i = 0; i < n_t && (uint64_t)i < f->n_tensors; i++) {
            const bn_gguf_tensor *t = &f->tensors[i];
            CHECK(bn_gguf_str_eq(t->name, ts[i].name) && t->n_dims == ts[i].n_dims && t->type == ts[i].type);
            CHECK(memcmp(t->ne, ts[i].ne, sizeof t->ne) == 0 && t->nbytes == ts[i].nbytes);
            CHECK(memcmp(t->data, data[i], ts[i].nbytes) == 0);
            CHECK(((const uint8_t *)t->data - f->base) % 32 == 0);
        }
        CHECK(bn_gguf_find_tensor(f, "i2_s")->ggml_type == 36);
        uint8_t *again = NULL;
        uint64_t again_n = 0;
        CHECK_EQ_INT(rewrite(f, &again, &again_n), BITNET_OK);
        CHECK(again && again_n == mem_n && memcmp(again, mem, mem_n) == 0);
        free(again);
        bn_gguf_close(f);
    }
    size_t file_n = 0;
    char *file = bn_test_read_file(path, &file_n);
    CHECK(file && file_n == mem_n && memcmp(file, mem, mem_n) == 0);
    CHECK_EQ_INT(bn_test_temporaries_left(path), 0);
    f = NULL;
    CHECK_EQ_INT(bn_gguf_open(path, &f), BITNET_OK);
    CHECK(f && f->owns_mapping && f->n_tensors == (uint64_t)n_t && strcmp(f->path, path) == 0);
    bn_gguf_close(f);
    free(file);
    unlink(path);
    free(mem);
    for (int i = 0; i < n_t; i++) free(data[i]);
}

TEST(gguf_writer_keys_order_and_replace) {
    bn_gguf_writer *w = bn_gguf_writer_new();
    bn_gguf_writer_set_u32(w, "a", 1);
    bn_gguf_writer_set_str(w, "b", "two");
    bn_gguf_writer_set_u32(w, "c", 3);
    bn_gguf_writer_set_str(w, "a", "one"); /* replaces, stays first */
    bn_gguf_writer_set_u32(w, "general.alignment", 64);
    const uint64_t ne[1] = {4};
    const float v[4] = {1, 2, 3, 4};
    bn_gguf_writer_add_tensor(w, "x", 1, ne, BN_TT_F32, v, 16);
    bn_gguf_writer_add_tensor(w, "y", 1, ne, BN_TT_F32, v, 16);
    uint8_t *mem = NULL;
    uint64_t n = 0;
    CHECK_EQ_INT(bn_gguf_writer_write_memory(w, &mem, &n), BITNET_OK);
    bn_gguf_writer_free(w);
    bn_gguf_file *f = NULL;
    CHECK_EQ_INT(bn_gguf_open_memory(mem, n, "order.gguf", &f), BITNET_OK);
    if (f) {
        CHECK_EQ_INT(f->n_kv, 4);
        CHECK(bn_gguf_str_eq(f->kv[0].key, "a") && f->kv[0].value.type == BN_GGUF_TYPE_STRING);
        CHECK(bn_gguf_str_eq(f->kv[1].key, "b") && bn_gguf_str_eq(f->kv[2].key, "c"));
        CHECK_EQ_INT(f->alignment, 64);
        CHECK_EQ_INT(f->data_offset % 64, 0);
        CHECK_EQ_INT(f->tensors[1].offset, 64);
        CHECK_EQ_INT(n, f->data_offset + 128); /* every tensor padded, the last too */
        bn_gguf_close(f);
    }
    free(mem);
}

static void expect_writer_error(bn_gguf_writer *w, bitnet_status code, const char *substr, int line) {
    uint8_t *mem = (uint8_t *)1;
    uint64_t n = 1;
    bitnet_status st = bn_gguf_writer_write_memory(w, &mem, &n);
    CHECK_MSG(st == code && strstr(bitnet_last_error(), substr) && mem == NULL && n == 0,
              "line %d: status %d \"%s\"", line, (int)st, bitnet_last_error());
    const char *path = bn_test_tmp(".gguf");
    CHECK_MSG(bn_gguf_writer_write(w, path) == code && access(path, F_OK) != 0, "line %d: file written", line);
    bn_gguf_writer_free(w);
}

TEST(gguf_writer_rejects_bad_input) {
    const uint64_t ne[5] = {128, 2, 1, 1, 1};
    static uint8_t buf[1024];
    bn_gguf_writer *w = bn_gguf_writer_new();
    bn_gguf_writer_add_tensor(w, "t", 5, ne, BN_TT_F32, buf, 1024);
    expect_writer_error(w, BITNET_ERR_ARG, "tensor 't': bad name, n_dims (5)", __LINE__);
    w = bn_gguf_writer_new();
    bn_gguf_writer_add_tensor(w, "t", 2, ne, BN_TT_F32, buf, 1000);
    expect_writer_error(w, BITNET_ERR_ARG, "1000 bytes given, a f32 tensor of this shape needs 1024", __LINE__);
    w = bn_gguf_writer_new();
    bn_gguf_writer_add_tensor(w, "t", 2, ne, BN_TT_F32, buf, 1024);
    bn_gguf_writer_add_tensor(w, "t", 2, ne, BN_TT_F32, buf, 1024);
    expect_writer_error(w, BITNET_ERR_ARG, "duplicate tensor name 't'", __LINE__);
    w = bn_gguf_writer_new();
    bn_gguf_writer_set_flavor(w, BN_GGUF_FLAVOR_UPSTREAM);
    bn_gguf_writer_add_tensor(w, "t", 2, ne, BN_TT_I2_S, buf, 96);
    expect_writer_error(w, BITNET_ERR_ARG, "tensor 't' of type i2_s has no type id in the upstream numbering", __LINE__);
    w = bn_gguf_writer_new();
    bn_gguf_writer_set_u32(w, "general.alignment", 48);
    expect_writer_error(w, BITNET_ERR_ARG, "general.alignment must be a uint32 power of two", __LINE__);
    w = bn_gguf_writer_new();
    bn_gguf_writer_set_arr_data(w, "k", BN_GGUF_TYPE_STRING, buf, 3);
    expect_writer_error(w, BITNET_ERR_ARG, "element type string is not fixed-size", __LINE__);
    w = bn_gguf_writer_new();
    buf[0] = 2;
    bn_gguf_writer_set_arr_data(w, "k", BN_GGUF_TYPE_BOOL, buf, 3);
    expect_writer_error(w, BITNET_ERR_ARG, "bool array element not 0/1", __LINE__);
    buf[0] = 0;
}

TEST(gguf_writer_atomic_failures) {
    bn_gguf_writer *w = bn_gguf_writer_new();
    bn_gguf_writer_set_u32(w, "k", 1);
    CHECK_EQ_INT(bn_gguf_writer_write(w, "/nonexistent-dir-bitnet/x.gguf"), BITNET_ERR_IO);
    CHECK(strstr(bitnet_last_error(),
                 "/nonexistent-dir-bitnet/x.gguf: cannot create a temporary file in /nonexistent-dir-bitnet: "));
    /* rename onto a directory fails after the data was written: no temporary left */
    const char *dir = bn_test_tmp(".dir");
    CHECK_EQ_INT(bn_test_mkdir(dir), 0);
    CHECK_EQ_INT(bn_gguf_writer_write(w, dir), BITNET_ERR_IO);
    CHECK_MSG(strstr(bitnet_last_error(), "cannot replace it"), "%s", bitnet_last_error());
    CHECK_EQ_INT(bn_test_temporaries_left(dir), 0);
    bn_gguf_writer_free(w);
}

TEST(gguf_getters) {
    bn_gguf_writer *w = bn_gguf_writer_new();
    bn_gguf_value v = {.type = BN_GGUF_TYPE_UINT8, .u8 = 7};
    bn_gguf_writer_set_value(w, "u8", &v);
    bn_gguf_writer_set_i32(w, "neg", -3);
    bn_gguf_writer_set_u64(w, "big", 1ull << 40);
    bn_gguf_writer_set_str(w, "s", "hello");
    v = (bn_gguf_value){.type = BN_GGUF_TYPE_FLOAT64, .f64 = 0.5};
    bn_gguf_writer_set_value(w, "half", &v);
    v.f64 = 0.1;
    bn_gguf_writer_set_value(w, "tenth", &v);
    bn_gguf_writer_set_bool(w, "yes", true);
    const int32_t ints[2] = {1, 2};
    bn_gguf_writer_set_arr_data(w, "ints", BN_GGUF_TYPE_INT32, ints, 2);
    uint8_t *mem = NULL;
    uint64_t n = 0;
    CHECK_EQ_INT(bn_gguf_writer_write_memory(w, &mem, &n), BITNET_OK);
    bn_gguf_writer_free(w);
    bn_gguf_file *f = NULL;
    CHECK_EQ_INT(bn_gguf_open_memory(mem, n, "get.gguf", &f), BITNET_OK);
    if (!f) SKIP("no file");
    uint32_t u = 0;
    float x = 0;
    bool b = false;
    char s[4];
    CHECK_EQ_INT(bn_gguf_get_u32(f, "u8", &u), 1);
    CHECK_EQ_INT(u, 7);
    CHECK_EQ_INT(bn_gguf_get_u32(f, "absent", &u), 0);
    CHECK_EQ_INT(bn_gguf_get_u32(f, "neg", &u), -1);
    CHECK(strstr(bitnet_last_error(), "get.gguf: key 'neg' value -3 does not fit in uint32"));
    CHECK_EQ_INT(bn_gguf_get_u32(f, "big", &u), -1);
    CHECK_EQ_INT(bn_gguf_get_u32(f, "s", &u), -1);
    CHECK(strstr(bitnet_last_error(), "get.gguf: key 's' has type string, expected an unsigned integer"));
    CHECK_EQ_INT(bn_gguf_get_f32(f, "half", &x), 1);
    CHECK(x == 0.5f);
    CHECK_EQ_INT(bn_gguf_get_f32(f, "tenth", &x), -1);
    CHECK_EQ_INT(bn_gguf_get_f32(f, "neg", &x), 1);
    CHECK(x == -3.0f);
    CHECK_EQ_INT(bn_gguf_get_f32(f, "big", &x), -1);
    CHECK_EQ_INT(bn_gguf_get_bool(f, "yes", &b), 1);
    CHECK(b);
    CHECK_EQ_INT(bn_gguf_get_bool(f, "u8", &b), -1);
    CHECK_EQ_INT(bn_gguf_get_str(f, "s", s, sizeof s), 1);
    CHECK_STR(s, "hel");
    CHECK_EQ_INT(bn_gguf_get_str(f, "u8", s, sizeof s), -1);
    CHECK(bn_gguf_get_arr(f, "ints", BN_GGUF_TYPE_INT32) != NULL);
    CHECK(bn_gguf_get_arr(f, "ints", BN_GGUF_TYPE_UINT32) == NULL);
    CHECK(strstr(bitnet_last_error(), "key 'ints' is array of int32, expected an array of uint32"));
    CHECK(bn_gguf_get_arr(f, "absent", BN_GGUF_TYPE_INT32) == NULL);
    bn_gguf_close(f);
    free(mem);
}

TEST(gguf_open_errors) {
    bn_gguf_file *f = (bn_gguf_file *)1;
    CHECK_EQ_INT(bn_gguf_open("/nonexistent-bitnet/model.gguf", &f), BITNET_ERR_IO);
    CHECK(f == NULL);
    CHECK(strstr(bitnet_last_error(), "/nonexistent-bitnet/model.gguf: cannot open: No such file"));
    CHECK_EQ_INT(bn_gguf_open("/tmp", &f), BITNET_ERR_IO);
    CHECK(strstr(bitnet_last_error(), "/tmp: not a regular file"));
    const char *path = bn_test_tmp(".gguf");
    FILE *fp = fopen(path, "wb");
    CHECK(fp != NULL);
    if (fp) fclose(fp);
    CHECK_EQ_INT(bn_gguf_open(path, &f), BITNET_ERR_FORMAT);
    CHECK(strstr(bitnet_last_error(), ": file truncated: magic at offset 0 needs 4 bytes, 0 left"));
    /* a truncated real file through the mmap path */
    hfile h;
    build_hostile(&h);
    fp = fopen(path, "wb");
    if (fp) {
        fwrite(h.b.d, 1, h.b.len - 1, fp);
        fclose(fp);
    }
    CHECK_EQ_INT(bn_gguf_open(path, &f), BITNET_ERR_FORMAT);
    CHECK(strstr(bitnet_last_error(), "tensor 't1': data [offset 64, 64 bytes] lies outside the file"));
    free(h.b.d);
}

/* ---- the shared llama.cpp files ---------------------------------------------------------- */

static void check_rewrite_identical(const char *path, const bn_gguf_file *f) {
    size_t n = 0;
    char *orig = bn_test_read_file(path, &n);
    uint8_t *again = NULL;
    uint64_t again_n = 0;
    CHECK_EQ_INT(rewrite(f, &again, &again_n), BITNET_OK);
    CHECK_EQ_INT(again_n, n);
    CHECK(orig && again && again_n == n && memcmp(orig, again, n) == 0);
    free(again);
    free(orig);
}

TEST(gguf_shared_stories260k) {
    const char *path = bn_test_shared("models/stories260K.gguf");
    if (!path) SKIP("shared/models/stories260K.gguf not found");
    bn_gguf_file *f = NULL;
    CHECK_EQ_INT(bn_gguf_open(path, &f), BITNET_OK);
    if (!f) return;
    uint32_t u = 0;
    CHECK_EQ_INT(bn_gguf_get_u32(f, "llama.embedding_length", &u), 1);
    CHECK_EQ_INT(u, 64);
    CHECK_EQ_INT(f->n_tensors, 48);
    CHECK_EQ_INT(f->version, 3);
    CHECK_EQ_INT(f->flavor, BN_GGUF_FLAVOR_UPSTREAM);
    const bn_gguf_value *tok = bn_gguf_get_arr(f, "tokenizer.ggml.tokens", BN_GGUF_TYPE_STRING);
    CHECK(tok && tok->arr.n == 512);
    if (tok) CHECK(bn_gguf_str_eq(tok->arr.items[1].str, "<s>"));
    const bn_gguf_value *sc = bn_gguf_get_arr(f, "tokenizer.ggml.scores", BN_GGUF_TYPE_FLOAT32);
    CHECK(sc && sc->arr.n == 512);
    char arch[32];
    CHECK_EQ_INT(bn_gguf_get_str(f, "general.architecture", arch, sizeof arch), 1);
    CHECK_STR(arch, "llama");
    const bn_gguf_tensor *t = bn_gguf_find_tensor(f, "token_embd.weight");
    CHECK(t && t->type == BN_TT_F32 && t->ne[0] == 64 && t->ne[1] == 512 && t->nbytes == 64 * 512 * 4);
    if (t) CHECK((const uint8_t *)t->data == f->base + f->data_offset && f->data_offset % 32 == 0);
    check_rewrite_identical(path, f);
    bn_gguf_close(f);
}

TEST(gguf_shared_vocab_files) {
    const char *names[] = {"tokenizers/ggml-vocab-llama-spm.gguf", "tokenizers/ggml-vocab-gpt-2.gguf"};
    const uint64_t n_tok[] = {32000, 50257};
    int found = 0;
    for (int i = 0; i < 2; i++) {
        const char *p = bn_test_shared(names[i]);
        if (!p) continue;
        found++;
        char path[4096];
        snprintf(path, sizeof path, "%s", p);
        bn_gguf_file *f = NULL;
        CHECK_EQ_INT(bn_gguf_open(path, &f), BITNET_OK);
        if (!f) continue;
        CHECK_EQ_INT(f->n_tensors, 0);
        CHECK_EQ_INT(f->data_offset, f->size); /* no padding after metadata-only files */
        const bn_gguf_value *tok = bn_gguf_get_arr(f, "tokenizer.ggml.tokens", BN_GGUF_TYPE_STRING);
        CHECK_MSG(tok && tok->arr.n == n_tok[i], "%s: tokens", names[i]);
        check_rewrite_identical(path, f);
        bn_gguf_close(f);
    }
    if (!found) SKIP("shared vocab files not found");
}
