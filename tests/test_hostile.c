/* test_hostile.c - hostile model files through the public loading path.
 *
 * Each test builds its hostile files in a temp dir, from the bytes of the
 * embedded default model (models/default.gguf: bitnet-ak42, I2_S) with fields
 * rewritten in place, from tiny models made with the GGUF writer, or from a
 * tiny ak42 file, loads them with bitnet_model_load and checks the exact
 * one-line message. Offsets are found by parsing the pristine file, so the
 * tests follow the default model if it is regenerated.
 *
 * The GGUF reader's own hostile cases on a hand-built file (every truncation,
 * lying counts and array lengths, huge and overflowing dims, bad offsets and
 * alignment, duplicate keys and tensor names, magic, version) are in
 * tests/test_gguf.c; this file covers what only a real model exercises:
 * truncation at each section of a real file, the model loader's shape, type,
 * hyper-parameter, scale and norm checks, the ak42 loader, build/infer's
 * error path, and replays the inputs the fuzzers found (fuzz/regressions/). */
#include <dirent.h>
#include <stdarg.h>
#include <unistd.h>

#include "formats/gguf.h"
#include "model/model.h"
#include "test.h"

extern const uint8_t bn_default_model_data[];
extern const uint64_t bn_default_model_size;

typedef unsigned long long ull;

static void put_le(uint8_t *p, uint64_t v, int n) {
    for (int i = 0; i < n; i++) p[i] = (uint8_t)(v >> (8 * i));
}
static uint32_t f32_bits(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    return u;
}

/* printf into one of a few static buffers (expected messages). */
static const char *S(const char *fmt, ...) BN_TEST_PRINTF(1, 2);
static const char *S(const char *fmt, ...) {
    static char bufs[4][512];
    static int i;
    char *b = bufs[i++ % 4];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(b, 512, fmt, ap);
    va_end(ap);
    return b;
}

static void write_file(const char *path, const void *d, size_t n) { CHECK(bn_test_write_file(path, d, n)); }

/* Writes d[0..n) to a temp file, loads it, and checks the status and that the
 * message is exactly "PATH: want" (want NULL: any one line naming the file;
 * want ending in "...": a message starting with want). */
static void expect_load(const void *d, size_t n, const char *tokenizer, bitnet_status code, const char *want, int line) {
    const char *path = bn_test_tmp(".bin");
    write_file(path, d, n);
    bitnet_model_params p = bitnet_model_default_params();
    p.tokenizer_path = tokenizer;
    bitnet_model *m = NULL;
    bitnet_status st = bitnet_model_load(path, &p, &m);
    const char *e = bitnet_last_error();
    size_t pl = strlen(path), wl = want ? strlen(want) : 0;
    int prefix = wl > 3 && !strcmp(want + wl - 3, "...");
    int ok = st == code && (code == BITNET_OK || (!strchr(e, '\n') && !strncmp(e, path, pl) && !strncmp(e + pl, ": ", 2) &&
                                                  (!want || !strncmp(e + pl + 2, want, prefix ? wl - 3 : wl + 1))));
    CHECK_MSG(ok, "line %d: status %d (wanted %d), message \"%s\", wanted \"%s: %s\"", line, (int)st, (int)code, e, path,
              want ? want : "...");
    CHECK((m != NULL) == (st == BITNET_OK));
    bitnet_model_free(m);
}
#define EXPECT_LOAD(d, n, code, want) expect_load(d, n, NULL, code, want, __LINE__)

/* ---- the default model, with offsets of its fields ------------------------------ */

typedef struct {
    uint8_t *d; /* pristine copy */
    size_t n;
    bn_gguf_file *f; /* parsed over d */
} dmodel;

static int dm_open(dmodel *m) {
    m->n = (size_t)bn_default_model_size;
    m->d = malloc(m->n);
    memcpy(m->d, bn_default_model_data, m->n);
    m->f = NULL;
    CHECK_MSG(bn_gguf_open_memory(m->d, m->n, "default.gguf", &m->f) == BITNET_OK, "%s", bitnet_last_error());
    return m->f != NULL;
}
static void dm_close(dmodel *m) {
    bn_gguf_close(m->f);
    free(m->d);
}
static size_t pos_of(const dmodel *m, const void *p) { return (size_t)((const uint8_t *)p - m->d); }

/* Offset of a metadata value (after its key and type). */
static size_t kv_value(const dmodel *m, const char *key) {
    const bn_gguf_kv *kv = bn_gguf_find_kv(m->f, key);
    CHECK_MSG(kv != NULL, "default model has no key %s", key);
    return kv ? pos_of(m, kv->key.data) + kv->key.len + 4 : 0;
}

enum { T_NAME_LEN, T_NDIMS, T_NE0, T_NE1, T_TYPE, T_OFFSET };
/* Offset of a field of a tensor's info record. */
static size_t tfield(const dmodel *m, const char *name, int field) {
    const bn_gguf_tensor *t = bn_gguf_find_tensor(m->f, name);
    CHECK_MSG(t != NULL, "default model has no tensor %s", name);
    if (!t) return 0;
    size_t p = pos_of(m, t->name.data) + t->name.len; /* n_dims */
    switch (field) {
    case T_NAME_LEN: return p - t->name.len - 8;
    case T_NDIMS: return p;
    case T_NE0: return p + 4;
    case T_NE1: return p + 12;
    case T_TYPE: return p + 4 + 8 * t->n_dims;
    default: return p + 8 + 8 * t->n_dims;
    }
}

typedef struct {
    size_t off;
    int width;
    uint64_t val;
} mut;

/* The default model with mutations, cut to `len` bytes (0: whole), loaded. */
static void expect_dm(const dmodel *m, const mut *mu, int n_mu, size_t len, bitnet_status code, const char *want,
                      int line) {
    uint8_t *d = malloc(m->n);
    memcpy(d, m->d, m->n);
    for (int i = 0; i < n_mu; i++) put_le(d + mu[i].off, mu[i].val, mu[i].width);
    expect_load(d, len ? len : m->n, NULL, code, want, line);
    free(d);
}
#define EXPECT_DM(m, off, width, val, code, want) \
    expect_dm(m, (mut[]){{off, width, val}}, 1, 0, code, want, __LINE__)
#define EXPECT_CUT(m, len, want) expect_dm(m, NULL, 0, len, BITNET_ERR_FORMAT, want, __LINE__)

TEST(hostile_default_model_base_is_valid) {
    dmodel m;
    if (!dm_open(&m)) return;
    EXPECT_LOAD(m.d, m.n, BITNET_OK, NULL);
    CHECK(bn_gguf_find_tensor(m.f, "blk.0.attn_q.weight") && bn_gguf_find_tensor(m.f, "blk.0.attn_q.weight")->type == BN_TT_I2_S);
    CHECK(bn_gguf_find_kv(m.f, "general.alignment") != NULL);
    dm_close(&m);
}

/* A cut in each section of a real file, with its exact message. */
TEST(hostile_truncated_at_every_section) {
    dmodel m;
    if (!dm_open(&m)) return;
    const bn_gguf_file *f = m.f;
    EXPECT_LOAD(m.d, 0, BITNET_ERR_FORMAT, "file is too short to be a model (0 bytes)");
    EXPECT_LOAD(m.d, 3, BITNET_ERR_FORMAT, "file is too short to be a model (3 bytes)");
    /* header */
    EXPECT_CUT(&m, 10, "file truncated: tensor count at offset 8 needs 8 bytes, 2 left");
    EXPECT_CUT(&m, 24, S("tensor count %llu and key/value count %llu need more than the 0 bytes left in the file",
                         (ull)f->n_tensors, (ull)f->n_kv));
    /* key/values: inside the vocabulary's strings, then inside the scores */
    const bn_gguf_value *tok = bn_gguf_get_arr(f, "tokenizer.ggml.tokens", BN_GGUF_TYPE_STRING);
    const bn_gguf_value *sc = bn_gguf_get_arr(f, "tokenizer.ggml.scores", BN_GGUF_TYPE_FLOAT32);
    CHECK(tok && sc && tok->arr.n > 256);
    if (!tok || !sc) return;
    /* the last token: a cut before it fails the array's own length check (>= 8 bytes an entry) */
    const bn_gguf_str s = tok->arr.items[tok->arr.n - 1].str;
    size_t len_at = pos_of(&m, s.data) - 8;
    CHECK(len_at - kv_value(&m, "tokenizer.ggml.tokens") - 12 >= 8 * tok->arr.n);
    EXPECT_CUT(&m, len_at + 4,
               S("key 'tokenizer.ggml.tokens': file truncated: string value length at offset %llu needs 8 bytes, 4 left",
                 (ull)len_at));
    EXPECT_CUT(&m, len_at + 8 + s.len - 1,
               S("key 'tokenizer.ggml.tokens': string value length %llu at offset %llu exceeds the %llu bytes left in the file",
                 (ull)s.len, (ull)len_at, (ull)s.len - 1));
    size_t count_at = pos_of(&m, sc->arr.data) - 8;
    EXPECT_CUT(&m, count_at + 8 + 100,
               S("key 'tokenizer.ggml.scores': array of %llu float32 elements at offset %llu exceeds the 100 bytes left in the file",
                 (ull)sc->arr.n, (ull)count_at));
    /* tensor infos: a name, then an offset field */
    const bn_gguf_tensor *t5 = &f->tensors[5];
    EXPECT_CUT(&m, pos_of(&m, t5->name.data) + 2,
               S("tensor #5: tensor name length %llu at offset %llu exceeds the 2 bytes left in the file",
                 (ull)t5->name.len, (ull)pos_of(&m, t5->name.data) - 8));
    char name5[128];
    snprintf(name5, sizeof name5, "%.*s", (int)t5->name.len, t5->name.data);
    size_t off5 = tfield(&m, name5, T_OFFSET);
    EXPECT_CUT(&m, off5 + 3,
               S("tensor '%s': file truncated: tensor offset at offset %llu needs 8 bytes, 3 left", name5, (ull)off5));
    /* alignment padding between the last tensor info and the data */
    const bn_gguf_tensor *tl = &f->tensors[f->n_tensors - 1];
    size_t infos_end = pos_of(&m, tl->name.data) + tl->name.len + 4 + 8 * tl->n_dims + 12;
    if (infos_end < f->data_offset)
        EXPECT_CUT(&m, infos_end, S("file truncated: data section would start at %llu, past the end (size %llu)",
                                    (ull)f->data_offset, (ull)infos_end));
    /* tensor data: the first tensor, then the last one short by one byte */
    const bn_gguf_tensor *t0 = &f->tensors[0];
    size_t cut = (size_t)f->data_offset + 100;
    EXPECT_CUT(&m, cut, S("tensor '%.*s': data [offset %llu, %llu bytes] lies outside the file (data section at %llu, size %llu)",
                          (int)t0->name.len, t0->name.data, (ull)t0->offset, (ull)t0->nbytes, (ull)f->data_offset, (ull)cut));
    const size_t tl_end = (size_t)(f->data_offset + tl->offset + tl->nbytes);
    EXPECT_CUT(&m, tl_end - 1, S("tensor '%.*s': data [offset %llu, %llu bytes] lies outside the file (data section at %llu, size %llu)",
                                 (int)tl->name.len, tl->name.data, (ull)tl->offset, (ull)tl->nbytes,
                                 (ull)f->data_offset, (ull)tl_end - 1));
    dm_close(&m);
}

/* Every prefix of the metadata (in memory: ASan sees any over-read of the
 * exact-size copy): a clean one-line error each time. */
TEST(hostile_truncated_at_every_metadata_byte) {
    dmodel m;
    if (!dm_open(&m)) return;
    int bad = 0;
    for (size_t n = 0; n <= m.f->data_offset + 64; n++) {
        uint8_t *d = malloc(n ? n : 1);
        memcpy(d, m.d, n);
        bn_gguf_file *g = NULL;
        bitnet_status st = bn_gguf_open_memory(d, n, "cut.gguf", &g);
        const char *e = bitnet_last_error();
        if ((st != BITNET_ERR_FORMAT || strncmp(e, "cut.gguf: ", 10) || strchr(e, '\n') || g) && bad++ < 3)
            CHECK_MSG(0, "prefix of %zu bytes: status %d, \"%s\"", n, (int)st, e);
        bn_gguf_close(g);
        free(d);
    }
    CHECK_EQ_INT(bad, 0);
    dm_close(&m);
}

TEST(hostile_lying_counts) {
    dmodel m;
    if (!dm_open(&m)) return;
    const bn_gguf_file *f = m.f;
    EXPECT_DM(&m, 8, 8, BN_GGUF_MAX_TENSORS + 1ull, BITNET_ERR_FORMAT, "tensor count 1048577 exceeds the limit of 1048576");
    EXPECT_DM(&m, 8, 8, BN_GGUF_MAX_TENSORS, BITNET_ERR_FORMAT,
              S("tensor count 1048576 and key/value count %llu need more than the %llu bytes left in the file",
                (ull)f->n_kv, (ull)m.n - 24));
    EXPECT_DM(&m, 16, 8, UINT64_MAX, BITNET_ERR_FORMAT, "key/value count 18446744073709551615 exceeds the limit of 1048576");
    /* one tensor or key more or less than the file holds: records are misread, never past the end */
    EXPECT_DM(&m, 8, 8, f->n_tensors + 1, BITNET_ERR_FORMAT, NULL);
    EXPECT_DM(&m, 8, 8, f->n_tensors - 1, BITNET_ERR_FORMAT, NULL);
    EXPECT_DM(&m, 16, 8, f->n_kv + 1, BITNET_ERR_FORMAT, NULL);
    /* one key less: the last key/value is read as the first tensor info */
    const bn_gguf_kv *last = &f->kv[f->n_kv - 1];
    CHECK(last->value.type == BN_GGUF_TYPE_BOOL); /* so n_dims reads as 7 */
    EXPECT_DM(&m, 16, 8, f->n_kv - 1, BITNET_ERR_FORMAT,
              S("tensor '%.*s': n_dims is 7, must be 1..4", (int)last->key.len, last->key.data));
    /* array lengths */
    size_t tok = kv_value(&m, "tokenizer.ggml.tokens"), sc = kv_value(&m, "tokenizer.ggml.scores");
    EXPECT_DM(&m, tok + 4, 8, 1ull << 40, BITNET_ERR_FORMAT,
              S("key 'tokenizer.ggml.tokens': array length 1099511627776 at offset %llu exceeds what the %llu bytes left in "
                "the file can hold (string elements need >= 8 bytes each)", (ull)tok + 4, (ull)(m.n - tok - 12)));
    EXPECT_DM(&m, sc + 4, 8, 1ull << 62, BITNET_ERR_FORMAT, /* x 4 bytes wraps to 0 */
              S("key 'tokenizer.ggml.scores': array of 4611686018427387904 float32 elements at offset %llu exceeds the "
                "%llu bytes left in the file", (ull)sc + 4, (ull)(m.n - sc - 12)));
    EXPECT_DM(&m, tok + 4, 8, 513, BITNET_ERR_FORMAT, NULL);
    dm_close(&m);
}

TEST(hostile_dims_and_offsets) {
    dmodel m;
    if (!dm_open(&m)) return;
    const bn_gguf_file *f = m.f;
    const char *E = "token_embd.weight";
    const bn_gguf_tensor *emb = bn_gguf_find_tensor(f, E);
    if (!emb) return;
    const ull D = f->data_offset, N = m.n;
    EXPECT_DM(&m, tfield(&m, E, T_NE1), 8, 1ull << 40, BITNET_ERR_FORMAT,
              S("tensor '%s': data [offset 0, %llu bytes] lies outside the file (data section at %llu, size %llu)", E,
                (ull)emb->ne[0] * 4 << 40, D, N));
    EXPECT_DM(&m, tfield(&m, E, T_NE0), 8, 1ull << 62, BITNET_ERR_FORMAT,
              S("tensor '%s': element count overflows 64 bits at ne[1] = %llu", E, (ull)emb->ne[1]));
    EXPECT_DM(&m, tfield(&m, E, T_NE0), 8, UINT64_MAX, BITNET_ERR_FORMAT,
              S("tensor '%s': ne[0] = 18446744073709551615 is negative as a signed 64-bit count", E));
    EXPECT_DM(&m, tfield(&m, E, T_NE1), 8, 0, BITNET_ERR_FORMAT,
              S("tensor '%s': ne[1] is 0 (empty tensors are not accepted)", E));
    EXPECT_DM(&m, tfield(&m, E, T_NDIMS), 4, 5, BITNET_ERR_FORMAT, S("tensor '%s': n_dims is 5, must be 1..4", E));
    const ull neg = (ull)-32; /* -32 as a signed offset: aligned, wraps past 2^64 */
    EXPECT_DM(&m, tfield(&m, E, T_OFFSET), 8, neg, BITNET_ERR_FORMAT,
              S("tensor '%s': data [offset %llu, %llu bytes] lies outside the file (data section at %llu, size %llu)", E,
                neg, (ull)emb->nbytes, D, N));
    const ull past = (N - D + 31) / 32 * 32;
    EXPECT_DM(&m, tfield(&m, E, T_OFFSET), 8, past, BITNET_ERR_FORMAT,
              S("tensor '%s': data [offset %llu, %llu bytes] lies outside the file (data section at %llu, size %llu)", E,
                past, (ull)emb->nbytes, D, N));
    EXPECT_DM(&m, tfield(&m, E, T_OFFSET), 8, 16, BITNET_ERR_FORMAT,
              S("tensor '%s': data offset 16 is not a multiple of the alignment 32", E));
    /* general.alignment 1 is valid, but f32 data at an odd address is not */
    const bn_gguf_tensor *tl = &f->tensors[f->n_tensors - 1];
    size_t start = pos_of(&m, tl->name.data) + tl->name.len + 4 + 8 * tl->n_dims + 12; /* data section with alignment 1 */
    uint64_t k = start % 4 ? 0 : 1; /* makes token_embd start at a multiple of 4 plus something */
    expect_dm(&m, (mut[]){{kv_value(&m, "general.alignment"), 4, 1}, {tfield(&m, E, T_OFFSET), 8, k}}, 2, 0,
              BITNET_ERR_FORMAT,
              S("tensor '%s': data (file offset %llu) is not aligned to the 4 bytes a f32 tensor needs (general.alignment 1)",
                E, (ull)(start + k)), __LINE__);
    /* duplicate tensor name: blk.0.attn_k.weight renamed blk.0.attn_q.weight */
    const bn_gguf_tensor *kt = bn_gguf_find_tensor(f, "blk.0.attn_k.weight"), *qt = bn_gguf_find_tensor(f, "blk.0.attn_q.weight");
    CHECK(kt > qt); /* the later of the two is reported */
    EXPECT_DM(&m, pos_of(&m, kt->name.data) + 11, 1, 'q', BITNET_ERR_FORMAT,
              S("tensor 'blk.0.attn_q.weight': duplicate tensor name (entry #%d)", (int)(kt - f->tensors)));
    dm_close(&m);
}

TEST(hostile_magic_version_duplicate_key) {
    dmodel m;
    if (!dm_open(&m)) return;
    EXPECT_DM(&m, 0, 4, 0x46554748, BITNET_ERR_FORMAT, "unknown file format (magic 48 47 55 46; expected GGUF...");
    EXPECT_DM(&m, 4, 4, 4, BITNET_ERR_FORMAT, "unsupported GGUF version 4 (expected 3)");
    EXPECT_DM(&m, 4, 4, 1, BITNET_ERR_FORMAT,
              "GGUF version 1 is not supported (32-bit counts); re-convert the model to version 3");
    /* two keys of the same length: eos_token_id renamed bos_token_id */
    const bn_gguf_kv *eos = bn_gguf_find_kv(m.f, "tokenizer.ggml.eos_token_id");
    CHECK(eos && bn_gguf_find_kv(m.f, "tokenizer.ggml.bos_token_id") < eos);
    if (eos)
        EXPECT_DM(&m, pos_of(&m, eos->key.data) + 15, 1, 'b', BITNET_ERR_FORMAT,
                  S("key 'tokenizer.ggml.bos_token_id': duplicate key name (entry #%d)", (int)(eos - m.f->kv)));
    dm_close(&m);
}

TEST(hostile_tensor_types) {
    dmodel m;
    if (!dm_open(&m)) return;
    const char *Q = "blk.0.attn_q.weight";
    EXPECT_DM(&m, tfield(&m, Q, T_TYPE), 4, 2000, BITNET_ERR_FORMAT, S("tensor '%s': unknown tensor type id 2000", Q));
    EXPECT_DM(&m, tfield(&m, Q, T_TYPE), 4, 37, BITNET_ERR_FORMAT, S("tensor '%s': unknown tensor type id 37", Q));
    EXPECT_DM(&m, tfield(&m, Q, T_TYPE), 4, BN_GGML_TYPE_Q2_K, BITNET_ERR_UNSUPPORTED,
              S("tensor '%s': tensor type q2_K (id 10) is not supported", Q));
    /* bf16 is computed (embeddings, heads), but an ak42 linear must be ternary */
    EXPECT_DM(&m, tfield(&m, Q, T_TYPE), 4, BN_GGML_TYPE_BF16, BITNET_ERR_FORMAT,
              "bitnet-ak42 layer 0 has a non-ternary linear");
    EXPECT_DM(&m, tfield(&m, Q, T_TYPE), 4, BN_GGML_TYPE_F16, BITNET_ERR_FORMAT,
              "bitnet-ak42 layer 0 has a non-ternary linear");
    EXPECT_DM(&m, tfield(&m, "output_norm.weight", T_TYPE), 4, BN_GGML_TYPE_F16, BITNET_ERR_UNSUPPORTED,
              "tensor 'output_norm.weight' must be f32 (it is f16)");
    dm_close(&m);
}

TEST(hostile_shapes_and_hparams) {
    dmodel m;
    if (!dm_open(&m)) return;
    uint32_t dim = 0, ff = 0, nl = 0, nh = 0, nkv = 0;
    bn_gguf_get_u32(m.f, "bitnet-ak42.embedding_length", &dim);
    bn_gguf_get_u32(m.f, "bitnet-ak42.feed_forward_length", &ff);
    bn_gguf_get_u32(m.f, "bitnet-ak42.block_count", &nl);
    bn_gguf_get_u32(m.f, "bitnet-ak42.attention.head_count", &nh);
    bn_gguf_get_u32(m.f, "bitnet-ak42.attention.head_count_kv", &nkv);
    const unsigned kvd = dim / nh * nkv;
    EXPECT_DM(&m, tfield(&m, "blk.0.attn_q.weight", T_NE0), 8, dim / 2, BITNET_ERR_FORMAT,
              S("tensor 'blk.0.attn_q.weight' has shape [%u, %u, 1, 1], expected [%u, %u] from the metadata", dim / 2, dim,
                dim, dim));
    EXPECT_DM(&m, tfield(&m, "blk.5.attn_k.weight", T_NE1), 8, dim, BITNET_ERR_FORMAT,
              S("tensor 'blk.5.attn_k.weight' has shape [%u, %u, 1, 1], expected [%u, %u] from the metadata", dim, dim,
                dim, kvd));
    const ull vocab = bn_gguf_find_tensor(m.f, "token_embd.weight")->ne[1];
    EXPECT_DM(&m, tfield(&m, "token_embd.weight", T_NE0), 8, dim / 2, BITNET_ERR_FORMAT,
              S("tensor 'token_embd.weight' has shape [%u, %llu, 1, 1], expected [%u, %llu] from the metadata", dim / 2,
                vocab, dim, vocab));
    EXPECT_DM(&m, tfield(&m, "output_norm.weight", T_NE0), 8, dim - 1, BITNET_ERR_FORMAT,
              S("tensor 'output_norm.weight' has shape [%u, 1, 1, 1], expected [%u, 1] from the metadata", dim - 1, dim));
    /* a renamed tensor is missing */
    size_t up = pos_of(&m, bn_gguf_find_tensor(m.f, "blk.7.ffn_up.weight")->name.data);
    EXPECT_DM(&m, up + 11, 1, 'q', BITNET_ERR_FORMAT, "missing tensor 'blk.7.ffn_up.weight'");
    /* hyper-parameters */
    const char *A = "bitnet-ak42";
    EXPECT_DM(&m, kv_value(&m, "bitnet-ak42.block_count"), 4, nl + 1, BITNET_ERR_FORMAT,
              S("missing tensor 'blk.%u.attn_q.weight'", nl));
    EXPECT_DM(&m, kv_value(&m, "bitnet-ak42.block_count"), 4, 0, BITNET_ERR_FORMAT,
              S("inconsistent hyper-parameters (dim %u, ff %u, layers 0, heads %u, kv heads %u)", dim, ff, nh, nkv));
    EXPECT_DM(&m, kv_value(&m, "bitnet-ak42.attention.head_count"), 4, 7, BITNET_ERR_FORMAT,
              S("inconsistent hyper-parameters (dim %u, ff %u, layers %u, heads 7, kv heads %u)", dim, ff, nl, nkv));
    EXPECT_DM(&m, kv_value(&m, "bitnet-ak42.attention.head_count_kv"), 4, 2 * nh, BITNET_ERR_FORMAT,
              S("inconsistent hyper-parameters (dim %u, ff %u, layers %u, heads %u, kv heads %u)", dim, ff, nl, nh, 2 * nh));
    EXPECT_DM(&m, kv_value(&m, "bitnet-ak42.embedding_length"), 4, UINT32_MAX, BITNET_ERR_FORMAT,
              S("inconsistent hyper-parameters (dim 4294967295, ff %u, layers %u, heads %u, kv heads %u)", ff, nl, nh, nkv));
    EXPECT_DM(&m, kv_value(&m, "bitnet-ak42.rope.dimension_count"), 4, dim / nh + 2, BITNET_ERR_FORMAT,
              S("rope.dimension_count %u does not fit head size %u", dim / nh + 2, dim / nh));
    EXPECT_DM(&m, kv_value(&m, "bitnet-ak42.attention.layer_norm_rms_epsilon"), 4, f32_bits(NAN), BITNET_ERR_FORMAT,
              "bad norm epsilon or rope base");
    EXPECT_DM(&m, kv_value(&m, "bitnet-ak42.rope.freq_base"), 4, f32_bits(-INFINITY), BITNET_ERR_FORMAT,
              "bad norm epsilon or rope base");
    size_t emb_key = kv_value(&m, "bitnet-ak42.embedding_length") - 4 - 16; /* "embedding_length" */
    EXPECT_DM(&m, emb_key, 1, 'E', BITNET_ERR_FORMAT, S("missing metadata key '%s.embedding_length'", A));
    expect_dm(&m, (mut[]){{emb_key + 16, 4, BN_GGUF_TYPE_INT32}, {emb_key + 20, 4, UINT32_MAX}}, 2, 0, BITNET_ERR_FORMAT,
              S("key '%s.embedding_length' value -1 does not fit in uint32", A), __LINE__);
    expect_dm(&m, (mut[]){{emb_key + 16, 4, BN_GGUF_TYPE_FLOAT32}}, 1, 0, BITNET_ERR_FORMAT,
              S("key '%s.embedding_length' has type float32, expected an unsigned integer", A), __LINE__);
    size_t arch = kv_value(&m, "general.architecture") + 8;
    EXPECT_DM(&m, arch + 10, 1, '3', BITNET_ERR_UNSUPPORTED,
              "architecture 'bitnet-ak43' is not supported (llama, bitnet-b1.58, bitnet-25, bitnet, qwen3, qwen3moe, gemma3, bitnet-ak42)");
    dm_close(&m);
}

TEST(hostile_nan_scales_and_norms) {
    dmodel m;
    if (!dm_open(&m)) return;
    const char *V = "blk.3.attn_v.weight";
    const bn_gguf_tensor *t = bn_gguf_find_tensor(m.f, V);
    if (!t) return;
    size_t scale = pos_of(&m, t->data) + t->ne[0] * t->ne[1] / 4; /* I2_S: the fp32 scale follows the codes */
    EXPECT_DM(&m, scale, 4, f32_bits(NAN), BITNET_ERR_FORMAT, S("i2_s tensor '%s' has an invalid scale nan", V));
    EXPECT_DM(&m, scale, 4, f32_bits(INFINITY), BITNET_ERR_FORMAT, S("i2_s tensor '%s' has an invalid scale inf", V));
    EXPECT_DM(&m, scale, 4, f32_bits(-0.5f), BITNET_ERR_FORMAT, S("i2_s tensor '%s' has an invalid scale -0.5", V));
    size_t norm = pos_of(&m, bn_gguf_find_tensor(m.f, "output_norm.weight")->data);
    EXPECT_DM(&m, norm + 7 * 4, 4, f32_bits(NAN), BITNET_ERR_FORMAT,
              "tensor 'output_norm.weight' has a non-finite value (nan) at [7]");
    EXPECT_DM(&m, norm, 4, f32_bits(-INFINITY), BITNET_ERR_FORMAT,
              "tensor 'output_norm.weight' has a non-finite value (-inf) at [0]");
    dm_close(&m);
}

/* ---- tiny models from the writer: architectures and layouts the default lacks ---- */

typedef struct {
    const char *arch;          /* "llama" or "bitnet-b1.58"                    */
    bn_tensor_type lin;        /* F32, or TQ2_0 (then dim is 256)              */
    int scale_tensors;         /* F32 ternary linears with a NAME.scale tensor  */
    int n_tok;                 /* vocabulary entries (0: no vocabulary)         */
    float scale, q0, norm0;    /* value of the .scale tensors, of q[0], of attn_norm[0] */
    uint16_t tq_d;             /* fp16 block scale of TQ2_0 tensors            */
    int junk;                  /* extra TQ2_0 tensors the model does not use  */
} tiny;

static void *keep(void **list, int *n, size_t bytes) { return list[(*n)++] = calloc(1, bytes); }

static uint8_t *make_tiny(const tiny *o, uint64_t *size) {
    const int dim = o->lin == BN_TT_TQ2_0 ? 256 : 8, ff = dim, vocab = 8;
    void *kept[64 + 8];
    int nk = 0;
    char name[64];
    bn_gguf_writer *w = bn_gguf_writer_new();
    char key[96];
#define U(k, v) (snprintf(key, sizeof key, "%s." k, o->arch), bn_gguf_writer_set_u32(w, key, v))
    bn_gguf_writer_set_str(w, "general.architecture", o->arch);
    U("embedding_length", (uint32_t)dim);
    U("feed_forward_length", (uint32_t)ff);
    U("block_count", 1);
    U("attention.head_count", 2);
    U("attention.head_count_kv", 1);
#undef U
    if (o->n_tok) {
        static const char *pieces[9] = {"<unk>", "<s>", "</s>", " a", "b", " ", "ab", "c", "d"};
        bn_gguf_writer_set_str(w, "tokenizer.ggml.model", "llama");
        bn_gguf_writer_set_arr_str(w, "tokenizer.ggml.tokens", pieces, NULL, (uint64_t)o->n_tok);
    }
    float *emb = keep(kept, &nk, (size_t)vocab * dim * 4), *ones = keep(kept, &nk, (size_t)dim * 4);
    for (int i = 0; i < vocab * dim; i++) emb[i] = (float)(i % 5) * 0.1f;
    for (int i = 0; i < dim; i++) ones[i] = 1.0f;
    float *norm0 = keep(kept, &nk, (size_t)dim * 4);
    memcpy(norm0, ones, (size_t)dim * 4);
    norm0[0] = o->norm0;
    uint64_t ne[2] = {(uint64_t)dim, (uint64_t)vocab}, nv = (uint64_t)dim;
    bn_gguf_writer_add_tensor(w, "token_embd.weight", 2, ne, BN_TT_F32, emb, (uint64_t)vocab * dim * 4);
    bn_gguf_writer_add_tensor(w, "output_norm.weight", 1, &nv, BN_TT_F32, ones, nv * 4);
    bn_gguf_writer_add_tensor(w, "blk.0.attn_norm.weight", 1, &nv, BN_TT_F32, norm0, nv * 4);
    bn_gguf_writer_add_tensor(w, "blk.0.ffn_norm.weight", 1, &nv, BN_TT_F32, ones, nv * 4);
    if (strcmp(o->arch, "llama") != 0) {
        bn_gguf_writer_add_tensor(w, "blk.0.attn_sub_norm.weight", 1, &nv, BN_TT_F32, ones, nv * 4);
        bn_gguf_writer_add_tensor(w, "blk.0.ffn_sub_norm.weight", 1, &nv, BN_TT_F32, ones, nv * 4);
    }
    static const char *lin[7] = {"attn_q", "attn_k", "attn_v", "attn_output", "ffn_gate", "ffn_up", "ffn_down"};
    const int rows[7] = {dim, dim / 2, dim / 2, dim, ff, ff, dim};
    for (int i = 0; i < 7; i++) {
        uint64_t sh[2] = {(uint64_t)(i == 6 ? ff : dim), (uint64_t)rows[i]}, one = 1;
        uint64_t n = sh[0] * sh[1], bytes = bn_tensor_nbytes(o->lin, (uint64_t[4]){sh[0], sh[1], 1, 1});
        uint8_t *d = keep(kept, &nk, bytes);
        if (o->lin == BN_TT_F32) {
            for (uint64_t j = 0; j < n; j++) ((float *)d)[j] = (float)((int)(j % 3) - 1);
            if (i == 0) ((float *)d)[0] = o->q0;
        } else { /* TQ2_0 blocks: 64 bytes of codes (0 = -1), then the fp16 scale */
            for (uint64_t b = 0; b < bytes / 66; b++) memcpy(d + b * 66 + 64, &o->tq_d, 2);
        }
        snprintf(name, sizeof name, "blk.0.%s.weight", lin[i]);
        bn_gguf_writer_add_tensor(w, name, 2, sh, o->lin, d, bytes);
        if (o->scale_tensors) {
            float *s = keep(kept, &nk, 4);
            *s = o->scale;
            snprintf(name, sizeof name, "blk.0.%s.scale", lin[i]);
            bn_gguf_writer_add_tensor(w, name, 1, &one, BN_TT_F32, s, 4);
        }
    }
    /* unused tensors, some with names close to real ones: none may be repacked */
    static const char *junk[4] = {"blk.00.attn_q.weight", "blk.1.attn_q.weight", "blk.0.attn_qq.weight", "junk.weight"};
    for (int i = 0; i < o->junk && i < 4; i++) {
        uint64_t sh[2] = {256, 64};
        uint8_t *d = keep(kept, &nk, 64 * 66);
        bn_gguf_writer_add_tensor(w, junk[i], 2, sh, BN_TT_TQ2_0, d, 64 * 66);
    }
    uint8_t *out = NULL;
    CHECK_MSG(bn_gguf_writer_write_memory(w, &out, size) == BITNET_OK, "%s", bitnet_last_error());
    bn_gguf_writer_free(w);
    while (nk > 0) free(kept[--nk]);
    return out;
}

static void expect_tiny(const tiny *o, bitnet_status code, const char *want, int line) {
    uint64_t n = 0;
    uint8_t *d = make_tiny(o, &n);
    if (d) expect_load(d, (size_t)n, NULL, code, want, line);
    free(d);
}

TEST(hostile_tiny_models) {
    const tiny llama = {"llama", BN_TT_F32, 0, 8, 1.0f, 0.0f, 1.0f, 0, 0};
    expect_tiny(&llama, BITNET_OK, NULL, __LINE__);
    tiny o = llama;
    o.norm0 = NAN;
    expect_tiny(&o, BITNET_ERR_FORMAT, "tensor 'blk.0.attn_norm.weight' has a non-finite value (nan) at [0]", __LINE__);
    o = llama;
    o.n_tok = 7;
    expect_tiny(&o, BITNET_ERR_FORMAT, "the tokenizer has 7 tokens but the model has 8", __LINE__);
    o.n_tok = 0;
    expect_tiny(&o, BITNET_ERR_FORMAT, "the file has no vocabulary; pass --tokenizer tokenizer.bin", __LINE__);
    /* a float linear with a .scale companion must hold exact ternary values, and a finite scale */
    const tiny tern = {"bitnet-b1.58", BN_TT_F32, 1, 8, 0.5f, 0.0f, 1.0f, 0, 0};
    expect_tiny(&tern, BITNET_OK, NULL, __LINE__);
    o = tern;
    o.scale = INFINITY;
    expect_tiny(&o, BITNET_ERR_FORMAT, "scale tensor 'blk.0.attn_q.scale' is not finite", __LINE__);
    o = tern;
    o.q0 = 0.5f;
    expect_tiny(&o, BITNET_ERR_FORMAT,
                "tensor 'blk.0.attn_q.weight' has a scale tensor but value 0.5 at [0, 0] is not -1, 0 or 1", __LINE__);
    o.q0 = NAN;
    expect_tiny(&o, BITNET_ERR_FORMAT,
                "tensor 'blk.0.attn_q.weight' has a scale tensor but value nan at [0, 0] is not -1, 0 or 1", __LINE__);
    /* TQ2_0 block scales */
    const tiny tq = {"bitnet-b1.58", BN_TT_TQ2_0, 0, 8, 1.0f, 0.0f, 1.0f, 0x3c00 /* 1.0 */, 0};
    expect_tiny(&tq, BITNET_OK, NULL, __LINE__);
    o = tq;
    o.tq_d = 0x7e00; /* NaN */
    expect_tiny(&o, BITNET_ERR_FORMAT, "tensor 'blk.0.attn_q.weight' has a non-finite block scale", __LINE__);
    o.tq_d = 0x7c00; /* +inf */
    expect_tiny(&o, BITNET_ERR_FORMAT, "tensor 'blk.0.attn_q.weight' has a non-finite block scale", __LINE__);
}

/* Repacked (TQ) weights take memory only for the tensors the model uses. */
static uint64_t owned_bytes(const tiny *o) {
    uint64_t n = 0, owned = UINT64_MAX;
    uint8_t *d = make_tiny(o, &n);
    const char *path = bn_test_tmp(".gguf");
    write_file(path, d, (size_t)n);
    bitnet_model *m = NULL;
    CHECK_MSG(bitnet_model_load(path, NULL, &m) == BITNET_OK, "%s", bitnet_last_error());
    if (m) owned = m->owned_size;
    bitnet_model_free(m);
    unlink(path);
    free(d);
    return owned;
}

TEST(hostile_unused_tensors_take_no_memory) {
    tiny o = {"bitnet-b1.58", BN_TT_TQ2_0, 0, 8, 1.0f, 0.0f, 1.0f, 0x3c00, 0};
    uint64_t base = owned_bytes(&o);
    CHECK(base > 0 && base != UINT64_MAX);
    o.junk = 4;
    CHECK_EQ_INT(owned_bytes(&o), base);
}

/* ---- ak42 ------------------------------------------------------------------------- */

enum { AK_DIM = 8, AK_LAYERS = 2, AK_VOCAB = 8 };
static const int ak_rows[7] = {AK_DIM, AK_DIM / 2, AK_DIM / 2, AK_DIM, AK_DIM, AK_DIM, AK_DIM};

/* Offset of tensor t (wq wk wv wo w1 w2 w3) of layer l: its fp32 scale. */
static size_t ak_tensor(int t, int l) {
    size_t p = 256 + AK_DIM * 4 + AK_VOCAB * AK_DIM * 4;
    for (int i = 0; i < 7; i++)
        for (int j = 0; j < AK_LAYERS; j++) {
            if (i == t && j == l) return p;
            p += 4 + (size_t)ak_rows[i] * AK_DIM / 4;
        }
    return p; /* (7, 0): the file size */
}

static uint8_t *make_ak42(size_t *n) {
    *n = ak_tensor(7, 0);
    uint8_t *d = calloc(1, *n);
    const uint32_t hdr[9] = {0x616b3432u, 1, AK_DIM, AK_DIM, AK_LAYERS, 2, 1, AK_VOCAB, 16};
    for (int i = 0; i < 9; i++) put_le(d + 4 * i, hdr[i], 4);
    d[36] = 1; /* shared classifier */
    for (int i = 0; i < AK_DIM; i++) put_le(d + 256 + 4 * i, f32_bits(1.0f), 4);
    for (int i = 0; i < AK_VOCAB * AK_DIM; i++) put_le(d + 256 + AK_DIM * 4 + 4 * i, f32_bits(0.01f * (float)(i % 7)), 4);
    for (int t = 0; t < 7; t++)
        for (int l = 0; l < AK_LAYERS; l++) {
            size_t p = ak_tensor(t, l);
            put_le(d + p, f32_bits(0.25f), 4);
            static const uint8_t codes[3] = {0x1d, 0x5d, 0xd4}; /* 2-bit codes 00 01 11 only: 10 is invalid */
            for (size_t i = 0; i < (size_t)ak_rows[t] * AK_DIM / 4; i++) d[p + 4 + i] = codes[i % 3];
        }
    return d;
}

static const char *ak_tokenizer(void) {
    static char path[4096];
    static const char *pieces[AK_VOCAB] = {"<unk>", "<s>", "</s>", " a", "b", " ", "ab", "c"};
    uint8_t buf[256];
    size_t n = 4;
    put_le(buf, 8, 4);
    for (int i = 0; i < AK_VOCAB; i++) {
        put_le(buf + n, f32_bits(-(float)i), 4);
        put_le(buf + n + 4, strlen(pieces[i]), 4);
        memcpy(buf + n + 8, pieces[i], strlen(pieces[i]));
        n += 8 + strlen(pieces[i]);
    }
    snprintf(path, sizeof path, "%s", bn_test_tmp(".tok.bin"));
    write_file(path, buf, n);
    return path;
}

static void expect_ak(const char *tok, const mut *mu, int n_mu, long delta, bitnet_status code, const char *want,
                      int line) {
    size_t n;
    uint8_t *d = make_ak42(&n);
    for (int i = 0; i < n_mu; i++) put_le(d + mu[i].off, mu[i].val, mu[i].width);
    expect_load(d, (size_t)((long)n + delta), tok, code, want, line);
    free(d);
}
#define EXPECT_AK(off, width, val, code, want) expect_ak(tok, (mut[]){{off, width, val}}, 1, 0, code, want, __LINE__)

TEST(hostile_ak42) {
    char tok[4096];
    snprintf(tok, sizeof tok, "%s", ak_tokenizer());
    size_t n;
    free(make_ak42(&n));
    expect_ak(tok, NULL, 0, 0, BITNET_OK, NULL, __LINE__);
    expect_ak(NULL, NULL, 0, 0, BITNET_ERR_ARG, "ak42 files have no vocabulary; pass --tokenizer tok512.bin", __LINE__);
    expect_ak(tok, NULL, 0, -1, BITNET_ERR_FORMAT, S("file is %zu bytes but its header describes %zu bytes", n - 1, n),
              __LINE__);
    expect_ak(tok, NULL, 0, 100 - (long)n, BITNET_ERR_FORMAT,
              "file is 100 bytes, shorter than the 256-byte ak42 header", __LINE__);
    EXPECT_AK(4, 4, 2, BITNET_ERR_FORMAT, "ak42 version 2 is not supported (only 1)");
    EXPECT_AK(0, 4, 0x616b3433u, BITNET_ERR_FORMAT,
              "unknown file format (magic 33 34 6b 61; expected GGUF...");
    EXPECT_AK(16, 4, 0x80000000u, BITNET_ERR_FORMAT,
              "inconsistent header (dim 8, hidden 8, layers -2147483648, heads 2, kv heads 1, vocab 8, seq 16)");
    EXPECT_AK(20, 4, 3, BITNET_ERR_FORMAT, "inconsistent header (dim 8, hidden 8, layers 2, heads 3, kv heads 1, vocab 8, seq 16)");
    size_t layer = 0; /* bytes of one more layer: 7 scales and their codes */
    for (int t = 0; t < 7; t++) layer += 4 + (size_t)ak_rows[t] * AK_DIM / 4;
    EXPECT_AK(16, 4, AK_LAYERS + 1, BITNET_ERR_FORMAT, S("file is %zu bytes but its header describes %zu bytes", n, n + layer));
    /* the largest dim the header check allows: sizes are computed in 64 bits, no overflow */
    const ull D = 65536, kv = D / 2, big = 256 + D * 4 + AK_VOCAB * D * 4 +
        AK_LAYERS * (7 * 4 + (D * D + kv * D + kv * D + D * D + 8 * D + D * 8 + 8 * D) / 4);
    EXPECT_AK(8, 4, D, BITNET_ERR_FORMAT, S("file is %zu bytes but its header describes %llu bytes", n, big));
    EXPECT_AK(28, 4, 1u << 25, BITNET_ERR_FORMAT,
              "inconsistent header (dim 8, hidden 8, layers 2, heads 2, kv heads 1, vocab 33554432, seq 16)");
    EXPECT_AK(36, 1, 0, BITNET_ERR_UNSUPPORTED, "only ak42 files with a shared classifier are supported");
    EXPECT_AK(256 + 3 * 4, 4, f32_bits(NAN), BITNET_ERR_FORMAT, "final_norm[3] is not finite");
    EXPECT_AK(ak_tensor(0, 0), 4, f32_bits(NAN), BITNET_ERR_FORMAT, "wq of layer 0 has an invalid scale nan");
    EXPECT_AK(ak_tensor(3, 1), 4, f32_bits(INFINITY), BITNET_ERR_FORMAT, "wo of layer 1 has an invalid scale inf");
    EXPECT_AK(ak_tensor(4, 0), 4, 0, BITNET_ERR_FORMAT, "w1 of layer 0 has an invalid scale 0");
    EXPECT_AK(ak_tensor(5, 1) + 4 + 3 * AK_DIM / 4, 1, 0x80, BITNET_ERR_FORMAT,
              "w2 of layer 1 row 3 has an invalid 2-bit code 10");
    unlink(tok);
}

/* ---- build/infer: one line on stderr naming the file, non-zero exit -------------- */

static void expect_infer_fails(const void *d, size_t n, const char *extra, const char *what) {
    char cmd[12288];
    const char *path = bn_test_tmp(".gguf");
    const char *err = bn_test_tmp(".err");
    write_file(path, d, n);
    snprintf(cmd, sizeof cmd, "infer -m %s %s --steps 4 2>%s", path, extra, err);
    size_t out_len = 0, err_len = 0;
    int status = 0;
    char *out = bn_test_run_tool(cmd, &out_len, &status);
    char *e = bn_test_read_file(err, &err_len);
    CHECK_MSG(status != 0, "%s: exit status 0", what);
    CHECK_MSG(out && out_len == 0, "%s: stdout not empty", what);
    CHECK_MSG(e && err_len > 0 && strchr(e, '\n') == e + err_len - 1, "%s: stderr is not one line: \"%s\"", what, e ? e : "");
    CHECK_MSG(e && strstr(e, path) && strstr(e, what), "%s: stderr \"%s\" does not name %s", what, e ? e : "", path);
    free(out);
    free(e);
}

TEST(hostile_infer_cli) {
    dmodel m;
    if (!dm_open(&m)) return;
    expect_infer_fails(m.d, m.n - 1, "", "lies outside the file");
    uint8_t *d = malloc(m.n);
    memcpy(d, m.d, m.n);
    const bn_gguf_tensor *t = bn_gguf_find_tensor(m.f, "blk.0.attn_q.weight");
    put_le(d + pos_of(&m, t->data) + t->ne[0] * t->ne[1] / 4, f32_bits(NAN), 4);
    expect_infer_fails(d, m.n, "", "has an invalid scale nan");
    free(d);
    size_t n;
    uint8_t *ak = make_ak42(&n);
    char tok[4096], extra[4200];
    snprintf(tok, sizeof tok, "%s", ak_tokenizer());
    snprintf(extra, sizeof extra, "--tokenizer %s", tok);
    expect_infer_fails(ak, n - 2, extra, "but its header describes");
    free(ak);
    unlink(tok);
    dm_close(&m);
}

/* ---- fuzz/regressions: inputs that once crashed a fuzz target ------------------------ */

/* Loads as fuzz/fuzz_model.c does and evaluates: no crash, a clean error or a model. */
static void replay_model(const uint8_t *d, size_t n, int ak42, const char *file) {
    bitnet_model *m = calloc(1, sizeof *m);
    bitnet_status st;
    if (ak42) {
        st = bn_model_from_ak42_memory(d, n, "fuzz", NULL, m);
    } else {
        bn_gguf_file *f = NULL;
        st = bn_gguf_open_memory(d, n, "fuzz", &f);
        if (st == BITNET_OK) st = bn_model_from_gguf(f, NULL, m);
    }
    const char *e = bitnet_last_error();
    CHECK_MSG(st == BITNET_OK || (!strncmp(e, "fuzz: ", 6) && !strchr(e, '\n')), "%s: \"%s\"", file, e);
    if (st == BITNET_OK) {
        bitnet_context_params cp = bitnet_context_default_params();
        cp.n_ctx = 4;
        bitnet_context *c = NULL;
        CHECK_MSG(bitnet_context_new(m, &cp, &c) == BITNET_OK, "%s: %s", file, bitnet_last_error());
        bitnet_token toks[2] = {0, bitnet_n_vocab(m) - 1};
        if (c) CHECK_MSG(bitnet_eval(c, toks, 2, 0) == BITNET_OK && bitnet_eval(c, toks, 1, 2) == BITNET_OK, "%s: %s", file,
                         bitnet_last_error());
        bitnet_context_free(c);
    }
    bn_model_release(m);
    free(m);
}

TEST(hostile_fuzz_regressions) {
    static const char *dirs[] = {"fuzz/regressions/gguf", "fuzz/regressions/model", "fuzz/regressions/ak42"};
    int found = 0;
    for (int k = 0; k < 3; k++) {
        char dir[256];
        snprintf(dir, sizeof dir, "%s", bn_test_repo(dirs[k]));
        DIR *dp = opendir(dir);
        if (!dp) continue;
        struct dirent *de;
        while ((de = readdir(dp)) != NULL) {
            if (de->d_name[0] == '.') continue;
            char path[4096];
            snprintf(path, sizeof path, "%s/%s", dir, de->d_name);
            size_t n = 0;
            char *d = bn_test_read_file(path, &n);
            if (!d) continue;
            uint8_t *exact = malloc(n ? n : 1); /* exact size: ASan sees over-reads */
            memcpy(exact, d, n);
            replay_model(exact, n, k == 2, path);
            free(exact);
            free(d);
            found++;
        }
        closedir(dp);
    }
    if (!found) SKIP("no fuzz/regressions inputs (run from the repository root)");
}
