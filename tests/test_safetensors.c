/* test_safetensors.c - safetensors reader and writer (round trips, layout,
 * hostile headers with their exact messages, every truncation, mutations) and
 * the Hugging Face model loader / writer (bit-exact model round trips, absmean
 * ternarisation, the RoPE row permutation, config errors, convert).
 * Hostile files are made by a byte builder here, independent of the writer. */
#include <sys/stat.h>
#include <unistd.h>

#include "model/model.h"
#include "formats/safetensors.h"
#include "test.h"

/* ---- byte builder ------------------------------------------------------------- */

/* 8-byte length + header + `data_len` bytes of data (0, 1, 2, ...). */
static uint8_t *mk(const char *header, size_t data_len, size_t *size) {
    size_t hl = strlen(header);
    *size = 8 + hl + data_len;
    uint8_t *b = malloc(*size);
    for (int i = 0; i < 8; i++) b[i] = (uint8_t)((uint64_t)hl >> (8 * i));
    memcpy(b + 8, header, hl);
    for (size_t i = 0; i < data_len; i++) b[8 + hl + i] = (uint8_t)i;
    return b;
}

/* Opens an exact-size heap copy of b[0..n) (ASan sees any over-read). */
static bitnet_status open_bytes(const uint8_t *b, size_t n, bn_safetensors **keep) {
    uint8_t *copy = malloc(n ? n : 1);
    if (n) memcpy(copy, b, n);
    bn_safetensors *f = (bn_safetensors *)1;
    bitnet_status st = bn_safetensors_open_memory(copy, n, "x.safetensors", &f);
    CHECK((st == BITNET_OK) == (f != NULL));
    if (keep && st == BITNET_OK) {
        *keep = f; /* the caller closes f and frees f->base */
        return st;
    }
    bn_safetensors_close(f);
    free(copy);
    return st;
}

static void close_kept(bn_safetensors *f) {
    const void *base = f->base;
    bn_safetensors_close(f);
    free((void *)base);
}

/* The header is rejected with exactly "x.safetensors: " + want. */
static void reject(const char *header, size_t data_len, bitnet_status code, const char *want, int line) {
    size_t n;
    uint8_t *b = mk(header, data_len, &n);
    bitnet_status st = open_bytes(b, n, NULL);
    free(b);
    char full[512];
    snprintf(full, sizeof full, "x.safetensors: %s", want);
    CHECK_MSG(st == code, "case at line %d: status %d, want %d (%s)", line, st, code, bitnet_last_error());
    CHECK_MSG(strcmp(bitnet_last_error(), full) == 0, "case at line %d: \"%s\", want \"%s\"", line, bitnet_last_error(), full);
}

static const char *k_valid =
    "{\"__metadata__\":{\"format\":\"pt\",\"q\":\"a\\\"b\"},"
    "\"w\":{\"dtype\":\"F32\",\"shape\":[2,3],\"data_offsets\":[0,24]},"
    "\"i\":{\"dtype\":\"I8\",\"shape\":[4],\"data_offsets\":[24,28]},"
    "\"s\":{\"dtype\":\"BF16\",\"shape\":[],\"data_offsets\":[28,30]},"
    "\"z\":{\"dtype\":\"U8\",\"shape\":[0,5],\"data_offsets\":[30,30]}}  ";

TEST(safetensors_read_basic) {
    size_t n;
    uint8_t *b = mk(k_valid, 30, &n);
    bn_safetensors *f = NULL;
    CHECK_MSG(open_bytes(b, n, &f) == BITNET_OK, "%s", bitnet_last_error());
    free(b);
    if (!f) return;
    CHECK_EQ_INT(f->n_tensors, 4);
    CHECK_EQ_INT(f->data_offset, 8 + strlen(k_valid));
    const bn_st_tensor *w = bn_safetensors_find(f, "w"), *i = bn_safetensors_find(f, "i");
    const bn_st_tensor *s = bn_safetensors_find(f, "s"), *z = bn_safetensors_find(f, "z");
    CHECK(w && w->dtype == BN_ST_F32 && w->n_dims == 2 && w->shape[0] == 2 && w->shape[1] == 3 && w->n_elems == 6);
    CHECK(w && w->nbytes == 24 && (const uint8_t *)w->data == f->base + f->data_offset);
    CHECK(i && i->dtype == BN_ST_I8 && i->begin == 24 && ((const uint8_t *)i->data)[0] == 24);
    CHECK(s && s->n_dims == 0 && s->n_elems == 1 && s->nbytes == 2);
    CHECK(z && z->n_elems == 0 && z->nbytes == 0);
    CHECK(bn_safetensors_find(f, "x") == NULL && bn_safetensors_find(f, "__metadata__") == NULL);
    CHECK_STR(bn_safetensors_meta(f, "format"), "pt");
    CHECK_STR(bn_safetensors_meta(f, "q"), "a\"b");
    CHECK(bn_safetensors_meta(f, "none") == NULL);
    close_kept(f);
    /* no tensors, no metadata */
    b = mk("{}", 0, &n);
    CHECK(open_bytes(b, n, NULL) == BITNET_OK);
    free(b);
}

TEST(safetensors_write_round_trip) {
    float w[6] = {1.5f, -2, 3, 0, 1e-3f, 7};
    int8_t i8[5] = {-1, 0, 1, 1, -1};
    uint16_t h[3] = {0x3c00, 0xc000, 0x0001};
    uint64_t u[2] = {1, UINT64_MAX};
    bn_st_out t[] = {
        {"bytes", BN_ST_I8, 1, {5}, i8, NULL, NULL},    {"w", BN_ST_F32, 2, {2, 3}, w, NULL, NULL},
        {"half", BN_ST_F16, 2, {3, 1}, h, NULL, NULL},  {"big", BN_ST_U64, 1, {2}, u, NULL, NULL},
        {"empty", BN_ST_F32, 2, {0, 4}, NULL, NULL, NULL}, {"\xc3\xa9t\xc3\xa9", BN_ST_I8, 0, {0}, i8, NULL, NULL},
    };
    const char *meta[] = {"format", "pt", "quote\"\n", "tab\tvalue \xe2\x82\xac"};
    const char *p = bn_test_tmp(".safetensors");
    CHECK_MSG(bn_safetensors_write(p, t, 6, meta, 2) == BITNET_OK, "%s", bitnet_last_error());
    CHECK_EQ_INT(bn_test_temporaries_left(p), 0); /* renamed away */
    uint8_t *mem;
    uint64_t mem_size;
    CHECK(bn_safetensors_write_memory(t, 6, meta, 2, &mem, &mem_size) == BITNET_OK);
    size_t fsize;
    char *file = bn_test_read_file(p, &fsize);
    CHECK(file && fsize == mem_size && memcmp(file, mem, fsize) == 0); /* both writers agree */
    free(file);
    bn_safetensors *f = NULL;
    CHECK_MSG(bn_safetensors_open(p, &f) == BITNET_OK, "%s", bitnet_last_error());
    if (f) {
        CHECK(f->data_offset % 8 == 0);
        uint64_t total = 0;
        for (size_t k = 0; k < 6; k++) {
            const bn_st_tensor *r = bn_safetensors_find(f, t[k].name);
            CHECK_MSG(r != NULL, "%s missing", t[k].name);
            if (!r) continue;
            CHECK(r->dtype == t[k].dtype && r->n_dims == t[k].n_dims);
            for (uint32_t d = 0; d < r->n_dims; d++) CHECK(r->shape[d] == t[k].shape[d]);
            CHECK(r->nbytes == 0 || memcmp(r->data, t[k].data, r->nbytes) == 0);
            CHECK_MSG(r->begin % bn_st_dtype_size(r->dtype) == 0, "%s at %llu", r->name, (unsigned long long)r->begin);
            total += r->nbytes;
        }
        CHECK(total == f->size - f->data_offset); /* no gaps, as the format requires */
        CHECK_STR(bn_safetensors_meta(f, "format"), "pt");
        CHECK_STR(bn_safetensors_meta(f, "quote\"\n"), "tab\tvalue \xe2\x82\xac");
        bn_safetensors_close(f);
    }
    free(mem);
    remove(p);
    /* bad tensor lists are the caller's error */
    bn_st_out dup[] = {{"a", BN_ST_I8, 1, {1}, i8, NULL, NULL}, {"a", BN_ST_I8, 1, {1}, i8, NULL, NULL}};
    CHECK(bn_safetensors_write_memory(dup, 2, NULL, 0, &mem, &mem_size) == BITNET_ERR_ARG);
    CHECK(strstr(bitnet_last_error(), "duplicate tensor name 'a'") != NULL);
    const char *bad_names[] = {"", "__metadata__", "x\xff"};
    for (int k = 0; k < 3; k++) {
        bn_st_out one = {bad_names[k], BN_ST_I8, 1, {1}, i8, NULL, NULL};
        CHECK_EQ_INT(bn_safetensors_write_memory(&one, 1, NULL, 0, &mem, &mem_size), BITNET_ERR_ARG);
    }
    CHECK(bn_safetensors_write("/nonexistent/dir/x.safetensors", t, 1, NULL, 0) == BITNET_ERR_IO);
}

TEST(safetensors_hostile_headers) {
    uint8_t tiny[7] = {0};
    CHECK(open_bytes(tiny, 7, NULL) == BITNET_ERR_FORMAT);
    CHECK_STR(bitnet_last_error(), "x.safetensors: file truncated: 7 bytes, shorter than the 8-byte header length");
    uint8_t big[16] = {0x01, 0xe1, 0xf5, 0x05, 0, 0, 0, 0, '{', '}'}; /* 100000001 */
    CHECK(open_bytes(big, 16, NULL) == BITNET_ERR_FORMAT);
    CHECK_STR(bitnet_last_error(), "x.safetensors: header length 100000001 exceeds the limit of 100000000 bytes");
    uint8_t lying[12] = {5, 0, 0, 0, 0, 0, 0, 0, '{', '}', ' ', ' '};
    CHECK(open_bytes(lying, 12, NULL) == BITNET_ERR_FORMAT);
    CHECK_STR(bitnet_last_error(), "x.safetensors: file truncated: header length 5 exceeds the 4 bytes after it");
    uint8_t zero[8] = {0};
    CHECK(open_bytes(zero, 8, NULL) == BITNET_ERR_FORMAT);
    CHECK_STR(bitnet_last_error(), "x.safetensors: header does not start with '{' (not a safetensors file)");
    /* the header cases: tests/fixtures/safetensors-hostile-headers.tsv */
    size_t len;
    char *table = bn_test_read_file(bn_test_repo("tests/fixtures/safetensors-hostile-headers.tsv"), &len);
    REQUIRE(table != NULL);
    int cases = 0, line = 0;
    for (char *l = table, *next; *l; l = next) {
        next = l + strcspn(l, "\n");
        if (*next) *next++ = 0;
        line++;
        if (*l == '#' || !*l) continue;
        char *status = strtok(l, "\t"), *bytes = strtok(NULL, "\t"), *header = strtok(NULL, "\t"), *want = strtok(NULL, "\t");
        REQUIRE(status && bytes && header && want);
        reject(header, strtoul(bytes, NULL, 10), strcmp(status, "unsupported") ? BITNET_ERR_FORMAT : BITNET_ERR_UNSUPPORTED, want,
               line);
        cases++;
    }
    CHECK_EQ_INT(cases, 32);
    free(table);
    bn_safetensors *none = NULL;
    CHECK(bn_safetensors_open("/nonexistent/x.safetensors", &none) == BITNET_ERR_IO && none == NULL);
}

/* Every prefix of a valid file is rejected: inside the length, inside the header, inside the data. */
TEST(safetensors_every_truncation) {
    size_t n;
    uint8_t *b = mk(k_valid, 30, &n);
    const size_t hl = strlen(k_valid);
    for (size_t k = 0; k < n; k++) {
        bitnet_status st = open_bytes(b, k, NULL);
        CHECK_MSG(st == BITNET_ERR_FORMAT, "prefix %zu: status %d", k, st);
        const char *e = bitnet_last_error();
        if (k < 8) CHECK(strstr(e, "shorter than the 8-byte header length") != NULL);
        else if (k < 8 + hl) CHECK_MSG(strstr(e, "file truncated: header length") != NULL, "%zu: %s", k, e);
        else CHECK_MSG(strstr(e, "lie outside the") != NULL, "%zu: %s", k, e);
    }
    CHECK(open_bytes(b, n, NULL) == BITNET_OK);
    free(b);
}

/* Random byte changes in the header: any outcome but a crash, and errors keep the contract. */
TEST(safetensors_mutations) {
    size_t n;
    uint8_t *b = mk(k_valid, 30, &n);
    uint64_t r = 0x9e3779b97f4a7c15ull;
    int ok = 0;
    for (int it = 0; it < 4000; it++) {
        uint8_t *c = malloc(n);
        memcpy(c, b, n);
        for (int k = 0; k < 1 + it % 3; k++) {
            r ^= r << 13, r ^= r >> 7, r ^= r << 17;
            c[(r >> 8) % (8 + strlen(k_valid))] = it % 2 ? (uint8_t)r : (uint8_t)"{}[]\",:0123456789-e."[r % 20];
        }
        bitnet_status st = open_bytes(c, n, NULL);
        ok += st == BITNET_OK;
        if (st != BITNET_OK) {
            CHECK(st == BITNET_ERR_FORMAT || st == BITNET_ERR_UNSUPPORTED);
            CHECK(strncmp(bitnet_last_error(), "x.safetensors: ", 15) == 0 && !strchr(bitnet_last_error(), '\n'));
        }
        free(c);
    }
    CHECK(ok > 0 && ok < 4000);
    free(b);
}

/* ---- models ------------------------------------------------------------------------ */

#define REF_GGUF "tests/fixtures/bitnet-ref/model.gguf" /* bitnet-b1.58, I2_S, vocab 512 embedded */

static bitnet_model *load_model(const char *path, const char *tok, int use_mmap) {
    bitnet_model_params p = bitnet_model_default_params();
    p.tokenizer_path = tok;
    p.use_mmap = use_mmap;
    bitnet_model *m = NULL;
    bitnet_status st = bitnet_model_load(path, &p, &m);
    CHECK_MSG(st == BITNET_OK, "%s: %s", path, bitnet_last_error());
    return m;
}

/* Prompt (one batch), then greedy tokens one by one: every logit of b must
 * equal a's bit for bit. Returns the number of positions compared. */
static int same_outputs(bitnet_model *a, bitnet_model *b) {
    bitnet_context_params cp = bitnet_context_default_params();
    cp.n_ctx = 64;
    bitnet_context *ca = NULL, *cb = NULL;
    CHECK(bitnet_context_new(a, &cp, &ca) == BITNET_OK && bitnet_context_new(b, &cp, &cb) == BITNET_OK);
    const int nv = bitnet_n_vocab(a);
    CHECK_EQ_INT(nv, bitnet_n_vocab(b));
    bitnet_token toks[64];
    int n = bitnet_tokenize(a, "Once upon a time", 1, toks, 64), pos = 0, diff = 0, compared = 0;
    CHECK(n > 1);
    for (int step = 0; ca && cb && nv == bitnet_n_vocab(b) && step < 16 && pos + n <= 64; step++) {
        CHECK(bitnet_eval(ca, toks, n, pos) == BITNET_OK && bitnet_eval(cb, toks, n, pos) == BITNET_OK);
        const float *la = bitnet_get_logits(ca), *lb = bitnet_get_logits(cb);
        diff += memcmp(la, lb, (size_t)nv * sizeof(float)) != 0;
        compared++;
        int best = 0;
        for (int i = 1; i < nv; i++)
            if (la[i] > la[best]) best = i;
        pos += n;
        toks[0] = best;
        n = 1;
    }
    CHECK_MSG(diff == 0, "%d of %d positions have different logits", diff, compared);
    bitnet_context_free(ca);
    bitnet_context_free(cb);
    return compared;
}

/* The weights themselves: same types, same packed ternary bytes and scales. */
static void same_weights(const bitnet_model *a, const bitnet_model *b) {
    CHECK(a->arch == b->arch && memcmp(&a->hp, &b->hp, sizeof a->hp) == 0);
    CHECK((a->output.data == a->tok_embd.data) == (b->output.data == b->tok_embd.data));
    for (int l = 0; l < a->hp.n_layers && l < b->hp.n_layers; l++) {
        const bn_matrix *wa[] = {&a->layers[l].wq, &a->layers[l].wk, &a->layers[l].wv, &a->layers[l].wo,
                                 &a->layers[l].w_gate, &a->layers[l].w_up, &a->layers[l].w_down};
        const bn_matrix *wb[] = {&b->layers[l].wq, &b->layers[l].wk, &b->layers[l].wv, &b->layers[l].wo,
                                 &b->layers[l].w_gate, &b->layers[l].w_up, &b->layers[l].w_down};
        for (int i = 0; i < 7; i++) {
            CHECK(wa[i]->type == wb[i]->type && wa[i]->rows == wb[i]->rows && wa[i]->cols == wb[i]->cols);
            if (wa[i]->type == BN_W_I2)
                CHECK(wa[i]->scale == wb[i]->scale &&
                      memcmp(wa[i]->data, wb[i]->data, (size_t)wa[i]->rows * (size_t)wa[i]->cols_padded / 4) == 0);
        }
    }
}

/* SRC -> model.safetensors -> reload (mmap and read): bit-exact logits. */
static void model_round_trip(const char *src, const char *src_tok, const char *st_tok) {
    const char *in = src;
    const char *p = bn_test_tmp(".safetensors");
    bitnet_model *a = load_model(in, src_tok, 1);
    if (!a) return;
    CHECK_MSG(bn_safetensors_write_model(a, p) == BITNET_OK, "%s", bitnet_last_error());
    bitnet_model *b = load_model(p, st_tok, 1), *c = load_model(p, st_tok, 0);
    if (b && c) {
        same_weights(a, b);
        CHECK(same_outputs(a, b) == 16);
        CHECK(same_outputs(a, c) == 16);
        bitnet_model_info ia, ib;
        bitnet_model_get_info(a, &ia);
        bitnet_model_get_info(b, &ib);
        CHECK(ia.n_params == ib.n_params && strcmp(ia.arch, ib.arch) == 0);
    }
    bitnet_model_free(a);
    bitnet_model_free(b);
    bitnet_model_free(c);
}

TEST(safetensors_model_round_trip_bitnet_ref) { model_round_trip(REF_GGUF, NULL, REF_GGUF); }

TEST(safetensors_model_round_trip_ak42) {
    const char *t = bn_test_shared("models/tok512.bin");
    if (!t) SKIP("../shared/models/tok512.bin not present");
    const char *m = bn_test_shared("models/bitnet158-tinystories-1M.ak42.bin");
    if (!m) SKIP("../shared/models/bitnet158-tinystories-1M.ak42.bin not present");
    model_round_trip(m, t, t);
}

/* A float Llama: exercises the q/k row permutation both ways. */
TEST(safetensors_model_round_trip_llama) {
    const char *path = bn_test_shared("models/stories260K.gguf");
    if (!path) SKIP("../shared/models/stories260K.gguf not present");
    model_round_trip(path, NULL, path);
}

/* ---- Hugging Face directories made here ----------------------------------------------- */

typedef struct {
    int dim, ff, layers, heads, kv, vocab;
} hf_dims;

static const hf_dims k_dims = {128, 256, 2, 4, 2, 512};

static uint64_t g_rng = 0x2545f4914f6cdd1dull;
static float rnd(void) { /* uniform in [-1, 1) */
    g_rng ^= g_rng << 13, g_rng ^= g_rng >> 7, g_rng ^= g_rng << 17;
    return (float)((g_rng >> 11) * (1.0 / 9007199254740992.0)) * 2.0f - 1.0f;
}
static uint16_t to_bf16(float f) { /* round to nearest even */
    uint32_t u;
    memcpy(&u, &f, 4);
    return (uint16_t)((u + 0x7fff + ((u >> 16) & 1)) >> 16);
}
static float from_bf16(uint16_t h) {
    uint32_t u = (uint32_t)h << 16;
    float f;
    memcpy(&f, &u, 4);
    return f;
}

/* Writes DIR/config.json (cfg) and DIR/model.safetensors with every tensor of
 * the dims, random values (norms near 1), BF16 or F32. Returns the values as
 * stored (after rounding) of q_proj and v_proj of layer 0 (malloc'd). */
static void make_hf(const char *dir, const char *cfg, int bf16, float **q0, float **v0) {
    const hf_dims d = k_dims;
    const int kv_dim = d.dim / d.heads * d.kv;
    struct { char name[96]; int r, c; } spec[80];
    int n = 0;
#define T(nm, rows, cols) (snprintf(spec[n].name, 96, "%s", nm), spec[n].r = rows, spec[n++].c = cols)
    T("model.embed_tokens.weight", d.vocab, d.dim);
    T("model.norm.weight", d.dim, 0);
    T("lm_head.weight", d.vocab, d.dim);
    for (int l = 0; l < d.layers; l++) {
        char b[96];
#define L(s, rows, cols) (snprintf(b, sizeof b, "model.layers.%d." s, l), T(b, rows, cols))
        L("input_layernorm.weight", d.dim, 0);
        L("post_attention_layernorm.weight", d.dim, 0);
        L("self_attn.attn_sub_norm.weight", d.dim, 0);
        L("mlp.ffn_sub_norm.weight", d.ff, 0);
        L("self_attn.q_proj.weight", d.dim, d.dim);
        L("self_attn.k_proj.weight", kv_dim, d.dim);
        L("self_attn.v_proj.weight", kv_dim, d.dim);
        L("self_attn.o_proj.weight", d.dim, d.dim);
        L("mlp.gate_proj.weight", d.ff, d.dim);
        L("mlp.up_proj.weight", d.ff, d.dim);
        L("mlp.down_proj.weight", d.dim, d.ff);
#undef L
    }
#undef T
    bn_st_out out[80];
    void *bufs[80];
    for (int i = 0; i < n; i++) {
        size_t cnt = (size_t)spec[i].r * (size_t)(spec[i].c ? spec[i].c : 1);
        float *f = malloc(cnt * sizeof(float));
        uint16_t *h = malloc(cnt * 2);
        for (size_t k = 0; k < cnt; k++) {
            f[k] = spec[i].c ? 0.05f * rnd() : 1.0f + 0.1f * rnd();
            h[k] = to_bf16(f[k]);
            if (bf16) f[k] = from_bf16(h[k]);
        }
        if (bf16) free(f);
        else free(h);
        bufs[i] = bf16 ? (void *)h : (void *)f;
        out[i] = (bn_st_out){spec[i].name, bf16 ? BN_ST_BF16 : BN_ST_F32, spec[i].c ? 2u : 1u,
                             {(uint64_t)spec[i].r, (uint64_t)spec[i].c}, bufs[i], NULL, NULL};
        if (strcmp(spec[i].name, "model.layers.0.self_attn.q_proj.weight") == 0 ||
            strcmp(spec[i].name, "model.layers.0.self_attn.v_proj.weight") == 0) {
            float *copy = malloc(cnt * sizeof(float));
            for (size_t k = 0; k < cnt; k++) copy[k] = bf16 ? from_bf16(((uint16_t *)bufs[i])[k]) : ((float *)bufs[i])[k];
            *(spec[i].name[25] == 'q' ? q0 : v0) = copy;
        }
    }
    bn_test_mkdir(dir);
    char p[4200];
    snprintf(p, sizeof p, "%s/model.safetensors", dir);
    CHECK_MSG(bn_safetensors_write(p, out, (size_t)n, (const char *[]){"format", "pt"}, 1) == BITNET_OK, "%s",
              bitnet_last_error());
    for (int i = 0; i < n; i++) free(bufs[i]);
    snprintf(p, sizeof p, "%s/config.json", dir);
    FILE *fp = fopen(p, "w");
    fputs(cfg, fp);
    fclose(fp);
}

static void remove_hf(const char *dir) {
    char p[4200];
    snprintf(p, sizeof p, "%s/model.safetensors", dir);
    remove(p);
    snprintf(p, sizeof p, "%s/config.json", dir);
    remove(p);
    rmdir(dir);
}

static void config_text(char *out, size_t cap, const char *arch, const char *extra) {
    const hf_dims d = k_dims;
    snprintf(out, cap,
             "{\"architectures\": [\"%s\"], \"hidden_size\": %d, \"intermediate_size\": %d, "
             "\"num_hidden_layers\": %d, \"num_attention_heads\": %d, \"num_key_value_heads\": %d, "
             "\"vocab_size\": %d, \"rms_norm_eps\": 1e-05, \"rope_theta\": 10000.0, "
             "\"max_position_embeddings\": 256%s}",
             arch, d.dim, d.ff, d.layers, d.heads, d.kv, d.vocab, extra);
}

/* A Hugging Face directory (dir, 4096 bytes: a fresh temporary ending in
 * suffix) of architecture arch with config.json's extra keys, its q and v
 * weights returned, loaded with the reference vocabulary. */
static bitnet_model *load_hf(char *dir, const char *suffix, const char *arch, const char *extra, int latent, float **q,
                             float **v) {
    char cfg[1024];
    snprintf(dir, 4096, "%s", bn_test_tmp(suffix));
    config_text(cfg, sizeof cfg, arch, extra);
    make_hf(dir, cfg, latent, q, v);
    return load_model(dir, REF_GGUF, 1);
}

/* Our row r of a q/k projection holds Hugging Face row hf_row(r): HF rotates
 * (x_j, x_{j+hd/2}) per head, this runtime (x_2j, x_2j+1). */
static int hf_row(int r, int hd) {
    int h = r / hd, i = r % hd;
    return h * hd + (i % 2 ? hd / 2 + i / 2 : i / 2);
}

/* BitNet latent BF16 weights: ternarised with absmean on load, checked against
 * the b1.58 rule computed here; the model runs and survives a round trip. */
TEST(safetensors_hf_bitnet_latent_bf16) {
    char dir[4096];
    float *q = NULL, *v = NULL;
    bitnet_model *m = load_hf(dir, "-hf-bitnet", "BitNetForCausalLM", ", \"hidden_act\": \"relu2\", \"tie_word_embeddings\": false",
                              1, &q, &v);
    const int dim = k_dims.dim, hd = k_dims.dim / k_dims.heads, kv_dim = hd * k_dims.kv;
    CHECK(q && v);
    if (m && q && v) {
        CHECK(strcmp(m->arch->name, "bitnet-b1.58") == 0 && m->hp.n_layers == 2 && m->hp.rope_dim == hd && m->hp.norm_eps == 1e-5f);
        CHECK(bn_model_has(m, BN_AF_ROPE_NEOX) && m->arch->act == BN_ACT_RELU_SQ && strcmp(bn_model_arch_name(m), "bitnet-b1.58") == 0);
        CHECK(m->layers[0].wq.type == BN_W_I2 && m->output.data != m->tok_embd.data);
        const float *w[2] = {q, v};
        const bn_matrix *mat[2] = {&m->layers[0].wq, &m->layers[0].wv};
        const int rows[2] = {dim, kv_dim};
        for (int k = 0; k < 2; k++) {
            double sum = 0;
            for (int i = 0; i < rows[k] * dim; i++) sum += fabs((double)w[k][i]);
            float s = (float)(sum / (rows[k] * dim)), iscale = 1.0f / (s > 1e-5f ? s : 1e-5f);
            CHECK_NEAR(mat[k]->scale, s, s * 1e-6);
            float got[128];
            int bad = 0, nonzero = 0;
            for (int r = 0; r < rows[k]; r++) {
                bn_matrix_get_row(mat[k], r, got);
                /* BitNet keeps Hugging Face's q/k row order (neox RoPE), as bitnet.cpp does */
                const float *src = w[k] + (size_t)r * dim;
                for (int c = 0; c < dim; c++) {
                    float t = rintf(src[c] * iscale);
                    t = t > 1 ? 1 : t < -1 ? -1 : t;
                    bad += got[c] != mat[k]->scale * t;
                    nonzero += t != 0;
                }
            }
            CHECK_MSG(bad == 0, "tensor %d: %d weights differ from the absmean rule", k, bad);
            CHECK(nonzero > rows[k] * dim / 4); /* the test data is not degenerate */
        }
        /* what we load we can write and read back exactly */
        char p[4096];
        snprintf(p, sizeof p, "%s", bn_test_tmp(".safetensors"));
        CHECK(bn_safetensors_write_model(m, p) == BITNET_OK);
        bitnet_model *b = load_model(p, REF_GGUF, 1);
        if (b) {
            same_weights(m, b);
            same_outputs(m, b);
        }
        bitnet_model_free(b);
        remove(p);
    }
    bitnet_model_free(m);
    free(q);
    free(v);
    remove_hf(dir);
}

/* Float Llama: q/k rows land where the RoPE layouts say, v rows stay put. */
TEST(safetensors_hf_llama_qk_permutation) {
    char dir[4096];
    float *q = NULL, *v = NULL;
    bitnet_model *m = load_hf(dir, "-hf-llama", "LlamaForCausalLM", ", \"hidden_act\": \"silu\", \"tie_word_embeddings\": true",
                              0, &q, &v);
    const int dim = k_dims.dim, hd = dim / k_dims.heads;
    CHECK(q && v);
    if (m && q && v) {
        CHECK(strcmp(m->arch->name, "llama") == 0 && m->output.data == m->tok_embd.data && m->layers[0].wq.type == BN_W_F32);
        CHECK(m->layers[0].wv.data != NULL && m->layers[0].wv.type == BN_W_F32);
        float got[128];
        int bad = 0;
        for (int r = 0; r < dim; r++) {
            bn_matrix_get_row(&m->layers[0].wq, r, got);
            bad += memcmp(got, q + (size_t)hf_row(r, hd) * dim, sizeof(float) * dim) != 0;
            if (r < hd * k_dims.kv) {
                bn_matrix_get_row(&m->layers[0].wv, r, got);
                bad += memcmp(got, v + (size_t)r * dim, sizeof(float) * dim) != 0;
            }
        }
        CHECK_EQ_INT(bad, 0);
        bitnet_context *c = NULL;
        CHECK(bitnet_context_new(m, NULL, &c) == BITNET_OK);
        bitnet_token t[2] = {1, 42};
        CHECK(c && bitnet_eval(c, t, 2, 0) == BITNET_OK && isfinite(bitnet_get_logits(c)[7]));
        bitnet_context_free(c);
    }
    bitnet_model_free(m);
    free(q);
    free(v);
    remove_hf(dir);
}

/* The permutation is the right one: rotate_half RoPE on a Hugging Face head equals
 * interleaved RoPE on the permuted head (so q.k, hence attention, is unchanged). */
TEST(safetensors_rope_layouts_agree) {
    enum { HD = 16 };
    float x[HD], neox[HD], inter[HD];
    for (int i = 0; i < HD; i++) x[i] = rnd();
    const int pos = 7;
    for (int j = 0; j < HD / 2; j++) {
        double f = pos * pow(10000.0, -2.0 * j / HD), c = cos(f), s = sin(f);
        neox[j] = (float)(x[j] * c - x[j + HD / 2] * s); /* rotate_half */
        neox[j + HD / 2] = (float)(x[j + HD / 2] * c + x[j] * s);
        float a = x[hf_row(2 * j, HD)], b = x[hf_row(2 * j + 1, HD)]; /* permuted, then pairs */
        inter[2 * j] = (float)(a * c - b * s);
        inter[2 * j + 1] = (float)(a * s + b * c);
    }
    for (int r = 0; r < HD; r++) CHECK_NEAR(inter[r], neox[hf_row(r, HD)], 1e-6);
}

static void expect_load_error(const char *path, const char *tok, bitnet_status code, const char *want) {
    bitnet_model_params p = bitnet_model_default_params();
    p.tokenizer_path = tok;
    bitnet_model *m = (bitnet_model *)1;
    bitnet_status st = bitnet_model_load(path, &p, &m);
    CHECK_MSG(st == code && m == NULL, "status %d, want %d: %s", st, code, bitnet_last_error());
    CHECK_MSG(strcmp(bitnet_last_error(), want) == 0, "\"%s\", want \"%s\"", bitnet_last_error(), want);
}

TEST(safetensors_hf_config_errors) {
    char cfg[1024], want[4600];
    const char *dir = bn_test_tmp("-hf-bad");
    float *q = NULL, *v = NULL;
    config_text(cfg, sizeof cfg, "GPT2LMHeadModel", "");
    make_hf(dir, cfg, 0, &q, &v);
    snprintf(want, sizeof want, "%s/config.json: architecture 'GPT2LMHeadModel' is not supported "
             "(LlamaForCausalLM, BitNetForCausalLM, Qwen3ForCausalLM, Qwen3MoeForCausalLM, Gemma3ForCausalLM, "
             "BitNetAK42ForCausalLM)", dir);
    expect_load_error(dir, REF_GGUF, BITNET_ERR_UNSUPPORTED, want);
    struct { const char *cfg; bitnet_status code; const char *msg; } cases[] = {
        {"{\"architectures\": [\"LlamaForCausalLM\"], \"hidden_size\": 128}", BITNET_ERR_FORMAT,
         "/config.json: missing \"intermediate_size\""},
        {"{\"architectures\": [\"LlamaForCausalLM\"],}", BITNET_ERR_FORMAT,
         "/config.json: line 1, column 40: trailing comma before '}'"},
        {"[]", BITNET_ERR_FORMAT, "/config.json: the config is not a JSON object"},
        /* Qwen3-MoE: what forward.c computes, or a refusal naming the key */
#define MOE_CFG "{\"architectures\": [\"Qwen3MoeForCausalLM\"], \"hidden_size\": 128, \"intermediate_size\": 384, " \
                "\"num_hidden_layers\": 2, \"num_attention_heads\": 4, \"vocab_size\": 512, \"head_dim\": 32"
        {MOE_CFG ", \"num_experts_per_tok\": 2, \"moe_intermediate_size\": 64}", BITNET_ERR_FORMAT,
         "/config.json: missing \"num_experts\""},
        {MOE_CFG ", \"num_experts\": 4, \"num_experts_per_tok\": 8, \"moe_intermediate_size\": 64}", BITNET_ERR_FORMAT,
         "/config.json: num_experts_per_tok 8 exceeds num_experts 4"},
        {MOE_CFG ", \"num_experts\": 4, \"num_experts_per_tok\": 2, \"moe_intermediate_size\": 64, \"norm_topk_prob\": false}",
         BITNET_ERR_UNSUPPORTED, "/config.json: \"norm_topk_prob\" must be true (the chosen experts' weights renormalised, "
         "as llama.cpp's qwen3moe computes them)"},
        {MOE_CFG ", \"num_experts\": 4, \"num_experts_per_tok\": 2, \"moe_intermediate_size\": 64, \"norm_topk_prob\": true, "
         "\"mlp_only_layers\": [1]}", BITNET_ERR_UNSUPPORTED,
         "/config.json: dense layers among the experts' (decoder_sparse_step 1, mlp_only_layers) are not supported"},
        {MOE_CFG ", \"num_experts\": 4, \"num_experts_per_tok\": 2, \"moe_intermediate_size\": 64, \"norm_topk_prob\": true}",
         BITNET_ERR_FORMAT, "/model.safetensors: missing tensor 'model.layers.0.self_attn.q_norm.weight'"},
#undef MOE_CFG
    };
    char p[4200];
    snprintf(p, sizeof p, "%s/config.json", dir);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        FILE *fp = fopen(p, "w");
        fputs(cases[i].cfg, fp);
        fclose(fp);
        snprintf(want, sizeof want, "%s%s", dir, cases[i].msg);
        expect_load_error(dir, REF_GGUF, cases[i].code, want);
    }
    const char *extra[][2] = {
        {", \"rope_scaling\": {\"type\": \"llama3\"}", "/config.json: \"rope_scaling\" is not supported"},
        {", \"hidden_act\": \"gelu\"", "/config.json: \"hidden_act\" \"gelu\" is not supported for LlamaForCausalLM"},
        {", \"head_dim\": 64", "/config.json: head_dim 64 differs from hidden_size / heads = 32"},
    };
    for (int i = 0; i < 3; i++) {
        config_text(cfg, sizeof cfg, "LlamaForCausalLM", extra[i][0]);
        FILE *fp = fopen(p, "w");
        fputs(cfg, fp);
        fclose(fp);
        snprintf(want, sizeof want, "%s%s", dir, extra[i][1]);
        expect_load_error(dir, REF_GGUF, BITNET_ERR_UNSUPPORTED, want);
    }
    /* shapes are checked against the config */
    char bigger[1024];
    snprintf(bigger, sizeof bigger, "{\"architectures\": [\"LlamaForCausalLM\"], \"hidden_size\": 128, "
             "\"intermediate_size\": 384, \"num_hidden_layers\": 2, \"num_attention_heads\": 4, \"vocab_size\": 512}");
    FILE *fp = fopen(p, "w");
    fputs(bigger, fp);
    fclose(fp);
    snprintf(want, sizeof want, "%s/model.safetensors: tensor 'model.layers.0.self_attn.k_proj.weight' has shape "
             "[64, 128], expected [128, 128] from the config", dir);
    expect_load_error(dir, REF_GGUF, BITNET_ERR_FORMAT, want);
    /* no tokenizer */
    config_text(cfg, sizeof cfg, "LlamaForCausalLM", "");
    fp = fopen(p, "w");
    fputs(cfg, fp);
    fclose(fp);
    snprintf(want, sizeof want, "%s/model.safetensors: no vocabulary: there is no tokenizer.json beside it; pass "
             "--tokenizer with a tokenizer.json, a GGUF file that has the vocabulary or a llama2.c tokenizer.bin", dir);
    expect_load_error(dir, NULL, BITNET_ERR_ARG, want);
    remove_hf(dir);
    bn_test_mkdir(dir);
    snprintf(want, sizeof want, "%s: directory has no model.safetensors or model.safetensors.index.json", dir);
    expect_load_error(dir, REF_GGUF, BITNET_ERR_IO, want);
    free(q);
    free(v);
}

/* A sharded checkpoint as Hugging Face writes one: shards holding alternate
 * tensors (metadata {"format": "pt"}), config.json, and
 * model.safetensors.index.json whose weight_map names each tensor's shard.
 * bad: 0 a good index; 1 a shard named by a path; 2 a tensor put in the
 * wrong shard; 3 a shard that does not exist; 4 no weight_map. */
static const char *const k_shard[2] = {"model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"};

static void write_index(const char *dir, const bn_safetensors *f, int bad) {
    char p[4200];
    snprintf(p, sizeof p, "%s/model.safetensors.index.json", dir);
    FILE *fp = fopen(p, "w");
    REQUIRE(fp != NULL);
    fprintf(fp, "{\"metadata\": {\"total_size\": %llu}, \"%s\": {", (unsigned long long)f->size,
            bad == 4 ? "weights" : "weight_map");
    for (size_t i = 0; i < f->n_tensors; i++) {
        const char *shard = k_shard[i % 2];
        if (i == 0 && bad == 1) shard = "../model-00001-of-00002.safetensors";
        if (i == 0 && bad == 2) shard = k_shard[1];
        if (i == 0 && bad == 3) shard = "model-00003-of-00003.safetensors";
        fprintf(fp, "%s\"%s\": \"%s\"", i ? ", " : "", f->tensors[i].name, shard);
    }
    fprintf(fp, "}}\n");
    fclose(fp);
}

TEST(safetensors_sharded_checkpoint) {
    bitnet_model *a = load_model(REF_GGUF, NULL, 1);
    if (!a) return;
    char p[4200], want[9000];
    const char *one = bn_test_tmp(".safetensors");
    const char *dir = bn_test_tmp("-sharded");
    REQUIRE(bn_safetensors_write_model(a, one) == BITNET_OK && bn_test_mkdir(dir) == 0);
    bn_safetensors *f = NULL;
    REQUIRE(bn_safetensors_open(one, &f) == BITNET_OK);
    const char *config = bn_safetensors_meta(f, "bitnet.config");
    REQUIRE(config != NULL && f->n_tensors > 4);
    snprintf(p, sizeof p, "%s/config.json", dir);
    FILE *fp = fopen(p, "w");
    REQUIRE(fp != NULL);
    fputs(config, fp);
    fclose(fp);
    bn_st_out *outs = calloc(f->n_tensors, sizeof *outs);
    REQUIRE(outs != NULL);
    static const char *const meta[2] = {"format", "pt"};
    for (int s = 0; s < 2; s++) {
        size_t n = 0;
        for (size_t i = s; i < f->n_tensors; i += 2) {
            const bn_st_tensor *t = &f->tensors[i];
            outs[n] = (bn_st_out){.name = t->name, .dtype = t->dtype, .n_dims = t->n_dims, .data = t->data};
            memcpy(outs[n].shape, t->shape, sizeof t->shape);
            n++;
        }
        snprintf(p, sizeof p, "%s/%s", dir, k_shard[s]);
        CHECK(bn_safetensors_write(p, outs, n, meta, 1) == BITNET_OK);
    }
    free(outs);
    write_index(dir, f, 0);
    for (int mmap_it = 1; mmap_it >= 0; mmap_it--) {
        bitnet_model *b = load_model(dir, REF_GGUF, mmap_it);
        if (b) CHECK(same_outputs(a, b) > 1);
        bitnet_model_free(b);
    }
    snprintf(p, sizeof p, "%s/model.safetensors.index.json", dir);
    snprintf(want, sizeof want, "%s: weight_map[\"%s\"] is not the name of a file beside the index", p, f->tensors[0].name);
    write_index(dir, f, 1);
    expect_load_error(dir, REF_GGUF, BITNET_ERR_FORMAT, want);
    snprintf(want, sizeof want, "%s: weight_map puts '%s' in %s, which does not hold it", p, f->tensors[0].name, k_shard[1]);
    write_index(dir, f, 2);
    expect_load_error(dir, REF_GGUF, BITNET_ERR_FORMAT, want);
    write_index(dir, f, 3);
    bitnet_model *m = NULL;
    CHECK(bitnet_model_load(dir, NULL, &m) == BITNET_ERR_IO && m == NULL &&
          strstr(bitnet_last_error(), "model-00003-of-00003.safetensors"));
    snprintf(want, sizeof want, "%s: \"weight_map\" is missing, empty or not an object", p);
    write_index(dir, f, 4);
    expect_load_error(dir, REF_GGUF, BITNET_ERR_FORMAT, want);
    remove(p);
    for (int s = 0; s < 2; s++) {
        snprintf(p, sizeof p, "%s/%s", dir, k_shard[s]);
        remove(p);
    }
    snprintf(p, sizeof p, "%s/config.json", dir);
    remove(p);
    bn_safetensors_close(f);
    bitnet_model_free(a);
}

/* convert reads safetensors through bitnet_model_load; its GGUF gives the same logits. */
TEST(safetensors_convert_to_gguf) {
    char cmd[9000];
    const char *st = bn_test_tmp(".safetensors");
    const char *gg = bn_test_tmp(".gguf");
    bitnet_model *a = load_model(REF_GGUF, NULL, 1);
    if (!a) return;
    CHECK(bn_safetensors_write_model(a, st) == BITNET_OK);
    snprintf(cmd, sizeof cmd, "convert %s --tokenizer %s -o %s 2>&1", st, REF_GGUF, gg);
    int status = -1;
    char *out = bn_test_run_tool(cmd, NULL, &status);
    CHECK_MSG(status == 0, "convert: %s", out ? out : "");
    free(out);
    bitnet_model *b = load_model(gg, NULL, 1);
    if (b) same_outputs(a, b);
    bitnet_model_free(a);
    bitnet_model_free(b);
}

/* The shared row ternariser: exact mode reports the first non-ternary value;
 * absmean mode rounds half to even (torch.round), so +-0.5 go to 0, and clips. */
TEST(safetensors_ternarize_row_rules) {
    const float exact[5] = {1, 0, -1, -0.0f, 1}, bad[4] = {1, 0, 0.5f, 2};
    int8_t t[8];
    CHECK_EQ_INT(bn_ternarize_row(exact, 5, 0.0f, t), -1);
    CHECK(t[0] == 1 && t[1] == 0 && t[2] == -1 && t[3] == 0 && t[4] == 1);
    CHECK_EQ_INT(bn_ternarize_row(bad, 4, 0.0f, t), 2);
    const float lat[8] = {0.5f, -0.5f, 0.51f, -0.49f, 1.5f, -7.0f, 0.0f, NAN};
    CHECK_EQ_INT(bn_ternarize_row(lat, 8, 1.0f, t), -1);
    const int8_t want[8] = {0, 0, 1, 0, 1, -1, 0, 0};
    CHECK(memcmp(t, want, 8) == 0);
    CHECK_EQ_INT(bn_ternarize_row(lat, 4, 4.0f, t), -1); /* scaled: 2, -2, 2.04, -1.96 */
    CHECK(t[0] == 1 && t[1] == -1 && t[2] == 1 && t[3] == -1);
}
