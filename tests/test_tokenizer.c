/* test_tokenizer.c - tokenizer: llama2.c tok512 and llama.cpp SPM test vectors,
 * an independent naive port of llama2.c's encode() as a reference, round trips,
 * hostile llama2.c / GGUF inputs and a speed check. */
#include <math.h>

#include "common.h"
#include "formats/gguf.h"
#include "test.h"
#include "tokenizer/tokenizer.h"
#include "vocab_vectors.h"

static bn_tokenizer *load_tok512(void) {
    const char *p = bn_test_shared("models/tok512.bin");
    bn_tokenizer *t = NULL;
    if (!p) return NULL;
    bitnet_status st = bn_tokenizer_from_llama2c(p, 512, &t);
    CHECK_MSG(st == BITNET_OK, "load tok512: %s", bitnet_last_error());
    return t;
}

static bn_gguf_file *g_spm_file;
static bn_tokenizer *load_spm(void) {
    const char *p = bn_test_shared("tokenizers/ggml-vocab-llama-spm.gguf");
    bn_tokenizer *t = NULL;
    if (!p) return NULL;
    bitnet_status st = bn_gguf_open(p, &g_spm_file);
    CHECK_MSG(st == BITNET_OK, "bn_gguf_open: %s", bitnet_last_error());
    if (st != BITNET_OK) return NULL;
    st = bn_tokenizer_from_gguf(g_spm_file, &t);
    CHECK_MSG(st == BITNET_OK, "from_gguf: %s", bitnet_last_error());
    return t;
}

static void free_spm(bn_tokenizer *t) {
    bn_tokenizer_free(t);
    bn_gguf_close(g_spm_file);
    g_spm_file = NULL;
}

/* Concatenates the pieces of toks[0..n) (prev = previous token) into buf. */
static size_t decode(const bn_tokenizer *t, const int32_t *toks, int n, char *buf) {
    size_t k = 0;
    for (int i = 0; i < n; i++) {
        int len;
        if (toks[i] == bn_tokenizer_bos(t)) continue; /* only sets prev */
        const char *s = bn_tokenizer_piece(t, i ? toks[i - 1] : -1, toks[i], &len);
        if (!s) return (size_t)-1;
        memcpy(buf + k, s, (size_t)len);
        k += (size_t)len;
    }
    return k;
}

static uint64_t g_rng = 0x9E3779B97F4A7C15ull;
static uint32_t rnd(void) { return (uint32_t)(bn_xorshift64(&g_rng) >> 16); }

/* Appends one random code point as UTF-8; biased to ASCII so merges happen. */
static int rand_utf8(char *o) {
    uint32_t r = rnd() % 10, c;
    if (r < 6) c = 32 + rnd() % 95;
    else if (r < 7) c = "\n\t "[rnd() % 3];
    else if (r < 8) c = 0x80 + rnd() % 0x780;
    else if (r < 9) { do c = 0x800 + rnd() % 0xF800; while (c >= 0xD800 && c < 0xE000); }
    else c = 0x10000 + rnd() % 0x100000;
    if (c < 0x80) { o[0] = (char)c; return 1; }
    if (c < 0x800) { o[0] = (char)(0xC0 | c >> 6); o[1] = (char)(0x80 | (c & 63)); return 2; }
    if (c < 0x10000) { o[0] = (char)(0xE0 | c >> 12); o[1] = (char)(0x80 | (c >> 6 & 63)); o[2] = (char)(0x80 | (c & 63)); return 3; }
    o[0] = (char)(0xF0 | c >> 18); o[1] = (char)(0x80 | (c >> 12 & 63));
    o[2] = (char)(0x80 | (c >> 6 & 63)); o[3] = (char)(0x80 | (c & 63));
    return 4;
}

/* ---- reference: a literal port of llama2.c's encode() semantics ---------- *
 * O(n^2) merges and a sorted array + bsearch for lookups, sharing nothing with
 * the encoder under test but the vocabulary entries. */
typedef struct { const char *s; int len, id; } ref_entry;
typedef struct { ref_entry *e; int n; const bn_tokenizer *t; } ref_vocab;

static int ref_cmp(const void *a, const void *b) {
    const ref_entry *x = a, *y = b;
    int c = memcmp(x->s, y->s, (size_t)BN_MIN(x->len, y->len));
    return c ? c : x->len - y->len;
}

static void ref_init(ref_vocab *rv, const bn_tokenizer *t) {
    rv->t = t;
    rv->n = bn_tokenizer_n_vocab(t);
    rv->e = malloc((size_t)rv->n * sizeof *rv->e);
    for (int i = 0; i < rv->n; i++) {
        bn_tokenizer_get_entry(t, i, &rv->e[i].s, &rv->e[i].len, NULL, NULL);
        rv->e[i].id = i;
    }
    qsort(rv->e, (size_t)rv->n, sizeof *rv->e, ref_cmp);
}

static int ref_lookup(const ref_vocab *rv, const char *s, int len) {
    ref_entry key = {s, len, 0};
    ref_entry *r = bsearch(&key, rv->e, (size_t)rv->n, sizeof key, ref_cmp);
    return r ? r->id : -1;
}

static int ref_encode(const ref_vocab *rv, const char *text, size_t n, int32_t *tok) {
    int nt = 0;
    char buf[64];
    int bl = 0;
    if (n) tok[nt++] = ref_lookup(rv, " ", 1); /* add_dummy_prefix */
    for (size_t i = 0; i < n; i++) {
        if (((uint8_t)text[i] & 0xC0) != 0x80) bl = 0;
        buf[bl++] = text[i];
        if (i + 1 < n && ((uint8_t)text[i + 1] & 0xC0) == 0x80 && bl < 4) continue;
        int id = ref_lookup(rv, buf, bl);
        if (id >= 0) tok[nt++] = id;
        else for (int j = 0; j < bl; j++) tok[nt++] = (uint8_t)buf[j] + 3;
        bl = 0;
    }
    for (;;) {
        float best = -1e10f;
        int best_id = -1, best_i = -1;
        for (int i = 0; i + 1 < nt; i++) {
            const char *a, *b;
            int la, lb;
            float sc;
            bn_tokenizer_get_entry(rv->t, tok[i], &a, &la, NULL, NULL);
            bn_tokenizer_get_entry(rv->t, tok[i + 1], &b, &lb, NULL, NULL);
            char mb[256], *m = la + lb <= 256 ? mb : malloc((size_t)(la + lb));
            memcpy(m, a, (size_t)la);
            memcpy(m + la, b, (size_t)lb);
            int id = ref_lookup(rv, m, la + lb);
            if (m != mb) free(m);
            if (id < 0) continue;
            bn_tokenizer_get_entry(rv->t, id, NULL, NULL, &sc, NULL);
            if (sc > best) { best = sc; best_id = id; best_i = i; }
        }
        if (best_i < 0) break;
        tok[best_i] = best_id;
        memmove(tok + best_i + 1, tok + best_i + 2, (size_t)(nt - best_i - 2) * sizeof *tok);
        nt--;
    }
    return nt;
}

static int same(const int32_t *a, int na, const int32_t *b, int nb) {
    return na == nb && memcmp(a, b, (size_t)na * sizeof *a) == 0;
}

/* Encodes every line of the tinystories excerpt and 300 random UTF-8 strings
 * with both encoders; returns the number of inputs compared. */
static int compare_with_reference(const bn_tokenizer *t) {
    ref_vocab rv;
    ref_init(&rv, t);
    size_t flen;
    char *text = bn_test_read_shared("corpora/tinystories-excerpt.txt", &flen);
    int32_t a[4096], b[4096];
    int compared = 0;
    for (char *line = text; line && *line;) {
        char *end = strchr(line, '\n');
        size_t n = end ? (size_t)(end - line) : strlen(line);
        if (n > 400) { /* the reference is O(n^2): take long lines in chunks */
            n = 400;
            while (n > 1 && line[n] != ' ') n--;
            end = line + n - 1; /* resume at the space */
        }
        int na = bn_tokenizer_encode(t, line, n, 0, a, 4096), nb = ref_encode(&rv, line, n, b);
        CHECK_MSG(same(a, na, b, nb), "line \"%.*s\": %d vs %d tokens", (int)BN_MIN(n, 60), line, na, nb);
        compared++;
        line = end ? end + 1 : line + n;
    }
    for (int it = 0; it < 300; it++) {
        char s[400];
        int n = 0, want = (int)(rnd() % 80);
        while (n < want) n += rand_utf8(s + n);
        int na = bn_tokenizer_encode(t, s, (uint64_t)n, 0, a, 4096), nb = ref_encode(&rv, s, (size_t)n, b);
        CHECK_MSG(same(a, na, b, nb), "random utf-8 #%d: %d vs %d tokens", it, na, nb);
        compared++;
    }
    free(text);
    free(rv.e);
    return compared;
}

/* ---- llama2.c tok512 ---------------------------------------------------- */

TEST(tokenizer_tok512_known_ids) {
    bn_tokenizer *t = load_tok512();
    if (!t) SKIP("models/tok512.bin not available");
    int32_t toks[16];
    int n = bn_tokenizer_encode(t, "Once upon a time", 16, 0, toks, 16);
    CHECK_EQ_INT(n, 4);
    if (n == 4) {
        CHECK_EQ_INT(toks[0], 403);
        CHECK_EQ_INT(toks[1], 407);
        CHECK_EQ_INT(toks[2], 261);
        CHECK_EQ_INT(toks[3], 378);
    }
    n = bn_tokenizer_encode(t, "Once upon a time", 16, 1, toks, 16);
    CHECK_EQ_INT(n, 5);
    CHECK_EQ_INT(toks[0], 1);
    CHECK_EQ_INT(bn_tokenizer_n_vocab(t), 512);
    CHECK_EQ_INT(bn_tokenizer_bos(t), 1);
    CHECK_EQ_INT(bn_tokenizer_eos(t), 2);
    CHECK_EQ_INT(bn_tokenizer_add_bos(t), 1);
    const char *s;
    int len, type;
    float score;
    bn_tokenizer_get_entry(t, 403, &s, &len, &score, &type);
    CHECK(len == 5 && memcmp(s, " Once", 5) == 0);
    CHECK_NEAR(score, -144.0, 0);
    CHECK_EQ_INT(type, BN_TOKEN_NORMAL);
    bn_tokenizer_get_entry(t, 3 + 0x41, NULL, NULL, NULL, &type);
    CHECK_EQ_INT(type, BN_TOKEN_BYTE);
    bn_tokenizer_get_entry(t, 1, NULL, NULL, NULL, &type);
    CHECK_EQ_INT(type, BN_TOKEN_CONTROL);
    bn_tokenizer_get_entry(t, 512, &s, &len, NULL, NULL);
    CHECK(s == NULL && len == 0);
    bn_tokenizer_free(t);
}

TEST(tokenizer_tok512_matches_llama2c_reference) {
    bn_tokenizer *t = load_tok512();
    if (!t) SKIP("models/tok512.bin not available");
    CHECK(compare_with_reference(t) > 300);
    bn_tokenizer_free(t);
}

TEST(tokenizer_tok512_piece_rules) {
    bn_tokenizer *t = load_tok512();
    if (!t) SKIP("models/tok512.bin not available");
    int len;
    const char *s = bn_tokenizer_piece(t, 1, 403, &len); /* after BOS: " Once" -> "Once" */
    CHECK(s && len == 4 && memcmp(s, "Once", 4) == 0);
    s = bn_tokenizer_piece(t, 407, 403, &len);
    CHECK(s && len == 5 && memcmp(s, " Once", 5) == 0);
    s = bn_tokenizer_piece(t, 1, 3 + 0x20, &len); /* <0x20> is a raw space, kept after BOS */
    CHECK(s && len == 1 && s[0] == ' ');
    s = bn_tokenizer_piece(t, 0, 3, &len); /* <0x00> */
    CHECK(s && len == 1 && s[0] == 0);
    s = bn_tokenizer_piece(t, 0, 3 + 0xFF, &len);
    CHECK(s && len == 1 && (uint8_t)s[0] == 0xFF);
    CHECK(bn_tokenizer_piece(t, 0, -1, &len) == NULL && len == 0);
    CHECK(bn_tokenizer_piece(t, 0, 512, &len) == NULL);
    CHECK(bn_tokenizer_piece(t, 0, INT32_MAX, NULL) == NULL);
    bn_tokenizer_free(t);
}

TEST(tokenizer_tok512_round_trips) {
    bn_tokenizer *t = load_tok512();
    if (!t) SKIP("models/tok512.bin not available");
    size_t flen = 0;
    char *text = bn_test_read_shared("corpora/tinystories-excerpt.txt", &flen);
    CHECK(text != NULL);
    if (text) {
        int cap = (int)flen + 8;
        int32_t *toks = malloc((size_t)cap * sizeof *toks);
        char *back = malloc(flen + 8);
        /* With BOS the decode rule drops the dummy-prefix space: exact text. */
        int n = bn_tokenizer_encode(t, text, flen, 1, toks, cap);
        CHECK(n > 1 && n < (int)flen); /* 512 pieces: ~0.5-0.6 tokens per byte */
        size_t k = decode(t, toks, n, back);
        CHECK(k == flen && memcmp(back, text, flen) == 0);
        /* Without BOS the prefix space stays. */
        n = bn_tokenizer_encode(t, text, flen, 0, toks, cap);
        k = decode(t, toks, n, back);
        CHECK(k == flen + 1 && back[0] == ' ' && memcmp(back + 1, text, flen) == 0);
        free(toks);
        free(back);
        free(text);
    }
    /* Random bytes (invalid UTF-8, NULs) and random UTF-8: byte fallback
     * makes every string round-trip. */
    for (int it = 0; it < 400; it++) {
        char s[300], back[600];
        int32_t toks[700];
        int n = (int)(rnd() % 200) + 1;
        if (it % 2) {
            for (int i = 0; i < n; i++) s[i] = (char)(it % 4 == 1 ? rnd() % 255 + 1 : rnd()); /* NUL-free, then any */
        } else {
            int m = 0;
            while (m < n - 4) m += rand_utf8(s + m);
            n = m ? m : 1;
        }
        int nt = bn_tokenizer_encode(t, s, (uint64_t)n, 1, toks, 700);
        CHECK(nt > 1);
        size_t k = nt > 0 ? decode(t, toks, nt, back) : 0;
        CHECK_MSG(k == (size_t)n && memcmp(back, s, (size_t)n) == 0, "round trip #%d (%d bytes)", it, n);
    }
    bn_tokenizer_free(t);
}

TEST(tokenizer_encode_limits) {
    bn_tokenizer *t = load_tok512();
    if (!t) SKIP("models/tok512.bin not available");
    int32_t toks[8] = {0};
    CHECK_EQ_INT(bn_tokenizer_encode(t, "", 0, 0, toks, 8), 0); /* no dummy prefix for "" */
    CHECK_EQ_INT(bn_tokenizer_encode(t, NULL, 0, 1, toks, 8), 1);
    CHECK_EQ_INT(toks[0], 1);
    CHECK_EQ_INT(bn_tokenizer_encode(t, "", 0, 1, toks, 0), BITNET_ERR_ARG);
    CHECK_EQ_INT(bn_tokenizer_encode(t, "Once upon a time", 16, 1, toks, 5), 5);
    CHECK_EQ_INT(bn_tokenizer_encode(t, "Once upon a time", 16, 1, toks, 4), BITNET_ERR_ARG);
    CHECK_EQ_INT(bn_tokenizer_encode(t, "Once upon a time", 16, 0, NULL, 0), BITNET_ERR_ARG);
    CHECK_EQ_INT(bn_tokenizer_encode(t, "x", 1, 0, toks, -1), BITNET_ERR_ARG);
    CHECK_EQ_INT(bn_tokenizer_encode(t, NULL, 3, 0, toks, 8), BITNET_ERR_ARG);
    /* Encoding stops at `len`, not at a NUL. */
    int n = bn_tokenizer_encode(t, "a\0b", 3, 0, toks, 8);
    char back[16];
    CHECK(n >= 3 && toks[n - 2] == 3); /* <0x00> */
    CHECK(n > 0 && decode(t, toks, n, back) == 4 && memcmp(back, " a\0b", 4) == 0);
    bn_tokenizer_free(t);
}

/* Encoding time, reported (never asserted: these machines are shared, and
 * valgrind is 50x slower). A quadratic encoder would run into the runner's
 * per-test timeout on this 30 KB text; every repetition must give the same ids. */
TEST(tokenizer_encode_speed) {
    bn_tokenizer *t = load_tok512();
    if (!t) SKIP("models/tok512.bin not available");
    size_t flen = 0;
    char *text = bn_test_read_shared("corpora/tinystories-excerpt.txt", &flen);
    if (!text) {
        bn_tokenizer_free(t);
        SKIP("corpora/tinystories-excerpt.txt not available");
    }
    int32_t *toks = malloc((flen + 8) * sizeof *toks), *first = malloc((flen + 8) * sizeof *first);
    REQUIRE(toks && first);
    uint64_t best = UINT64_MAX;
    int n0 = 0;
    for (int rep = 0; rep < 5; rep++) {
        uint64_t t0 = bn_time_ns();
        int n = bn_tokenizer_encode(t, text, flen, 1, toks, (int)flen + 8);
        uint64_t dt = bn_time_ns() - t0;
        CHECK(n > (int)(flen / 8));
        if (rep == 0) memcpy(first, toks, (size_t)(n0 = n) * sizeof *toks);
        else CHECK(n == n0 && memcmp(first, toks, (size_t)n * sizeof *toks) == 0);
        if (dt < best) best = dt;
    }
    printf("    tok512 SPM: %zu bytes in %.2f ms\n", flen, (double)best / 1e6);
    free(toks);
    free(first);
    free(text);
    bn_tokenizer_free(t);
}

/* A piece with a space inside ("\x01 \x01", never in the text) turns off the
 * per-word segmentation: the whole-text heap must give identical ids. */
TEST(tokenizer_segmentation_is_transparent) {
    const char *p = bn_test_shared("models/tok512.bin");
    if (!p) SKIP("models/tok512.bin not available");
    size_t n;
    char *file = bn_test_read_file(p, &n);
    char *big = malloc(n + 11);
    memcpy(big, file, n);
    float sc = -1000.0f;
    int32_t len = 3;
    memcpy(big + n, &sc, 4);
    memcpy(big + n + 4, &len, 4);
    memcpy(big + n + 8, "\x01 \x01", 3);
    bn_tokenizer *a = load_tok512(), *b = NULL;
    CHECK_EQ_INT(bn_tokenizer_from_llama2c_memory(big, n + 11, "big.bin", 513, &b), BITNET_OK);
    size_t flen = 0;
    char *text = bn_test_read_shared("corpora/tinystories-excerpt.txt", &flen);
    if (a && b && text) {
        int32_t *ta = malloc((flen + 8) * sizeof *ta), *tb = malloc((flen + 8) * sizeof *tb);
        int na = bn_tokenizer_encode(a, text, flen, 1, ta, (int)flen + 8);
        int nb = bn_tokenizer_encode(b, text, flen, 1, tb, (int)flen + 8);
        CHECK(na > 0 && same(ta, na, tb, nb));
        for (int it = 0; it < 300; it++) {
            char s[300];
            int m = 0, want = (int)(rnd() % 200);
            while (m < want) m += rand_utf8(s + m);
            na = bn_tokenizer_encode(a, s, (uint64_t)m, 0, ta, (int)flen);
            nb = bn_tokenizer_encode(b, s, (uint64_t)m, 0, tb, (int)flen);
            CHECK_MSG(same(ta, na, tb, nb), "random utf-8 #%d", it);
        }
        free(ta);
        free(tb);
    }
    free(text);
    free(big);
    free(file);
    bn_tokenizer_free(a);
    bn_tokenizer_free(b);
}

/* ---- hostile llama2.c files ---------------------------------------------- */

static void put_i32(uint8_t *p, int32_t v) { memcpy(p, &v, 4); }

/* A tiny valid tokenizer.bin: <unk> <s> </s> <0x00>..<0xFF> "a" "b" "ab". */
static uint8_t *make_llama2c(size_t *size, int *n_vocab) {
    uint8_t *b = malloc(8192), *p = b + 4;
    put_i32(b, 6);
    const char *fixed[] = {"<unk>", "<s>", "</s>"}, *extra[] = {"a", "b", "ab", " "};
    char tmp[8];
    int n = 0;
    for (int i = 0; i < 3 + 256 + 4; i++, n++) {
        const char *s = i < 3 ? fixed[i] : i < 259 ? (snprintf(tmp, sizeof tmp, "<0x%02X>", i - 3), tmp) : extra[i - 259];
        float sc = i == 261 ? 5.0f : 0.0f;
        memcpy(p, &sc, 4);
        put_i32(p + 4, (int32_t)strlen(s));
        memcpy(p + 8, s, strlen(s));
        p += 8 + strlen(s);
    }
    *size = (size_t)(p - b);
    *n_vocab = n;
    return b;
}

TEST(tokenizer_llama2c_hostile) {
    size_t size;
    int nv;
    uint8_t *b = make_llama2c(&size, &nv);
    bn_tokenizer *t = NULL;
    CHECK_EQ_INT(bn_tokenizer_from_llama2c_memory(b, size, "tiny.bin", nv, &t), BITNET_OK);
    int32_t toks[8];
    if (t) {
        CHECK_EQ_INT(bn_tokenizer_encode(t, "ab", 2, 0, toks, 8), 2);
        CHECK_EQ_INT(toks[0], 262); /* " " */
        CHECK_EQ_INT(toks[1], 261); /* "ab" */
        CHECK_EQ_INT(bn_tokenizer_encode(t, "c", 1, 0, toks, 8), 2);
        CHECK_EQ_INT(toks[1], 'c' + 3);
    }
    bn_tokenizer_free(t);
    /* Fewer entries than n_vocab is an error; more is fine (trailing ignored). */
    CHECK_EQ_INT(bn_tokenizer_from_llama2c_memory(b, size, "tiny.bin", nv + 1, &t), BITNET_ERR_FORMAT);
    CHECK(t == NULL && strstr(bitnet_last_error(), "tiny.bin: ") == bitnet_last_error());
    CHECK_EQ_INT(bn_tokenizer_from_llama2c_memory(b, size, "tiny.bin", nv - 1, &t), BITNET_OK);
    bn_tokenizer_free(t);
    CHECK_EQ_INT(bn_tokenizer_from_llama2c_memory(b, size, "tiny.bin", 2, &t), BITNET_ERR_ARG);
    /* Every truncation fails cleanly (ASan checks we never read past `size`). */
    for (size_t cut = 0; cut < size; cut++) {
        uint8_t *c = malloc(cut ? cut : 1);
        memcpy(c, b, cut);
        bitnet_status st = bn_tokenizer_from_llama2c_memory(c, cut, "cut.bin", nv, &t);
        CHECK_MSG(st == BITNET_ERR_FORMAT && t == NULL, "cut at %zu: %d", cut, st);
        free(c);
    }
    /* Corrupt fields. */
    uint8_t *c = malloc(size);
    int32_t bad_lens[] = {-1, INT32_MIN, INT32_MAX, 1 << 20, 100000};
    for (size_t i = 0; i < sizeof bad_lens / sizeof *bad_lens; i++) {
        memcpy(c, b, size);
        put_i32(c + 4 + 4, bad_lens[i]); /* length of token 0 */
        CHECK_EQ_INT(bn_tokenizer_from_llama2c_memory(c, size, "len.bin", nv, &t), BITNET_ERR_FORMAT);
        memcpy(c, b, size);
        put_i32(c, bad_lens[i]); /* max_token_length */
        if (bad_lens[i] < 0 || bad_lens[i] > 65536)
            CHECK_EQ_INT(bn_tokenizer_from_llama2c_memory(c, size, "max.bin", nv, &t), BITNET_ERR_FORMAT);
    }
    memcpy(c, b, size);
    float nan = NAN;
    memcpy(c + 4, &nan, 4);
    CHECK_EQ_INT(bn_tokenizer_from_llama2c_memory(c, size, "nan.bin", nv, &t), BITNET_ERR_FORMAT);
    CHECK(strstr(bitnet_last_error(), "NaN") != NULL);
    /* Random mutations: must load or fail cleanly, and whatever loads must
     * encode and round-trip. */
    for (int it = 0; it < 2000; it++) {
        memcpy(c, b, size);
        for (int k = 0, m = 1 + (int)(rnd() % 4); k < m; k++) c[rnd() % size] = (uint8_t)rnd();
        bitnet_status st = bn_tokenizer_from_llama2c_memory(c, size, "fuzz.bin", nv, &t);
        CHECK(st == BITNET_OK || st == BITNET_ERR_FORMAT);
        if (st == BITNET_OK) {
            int32_t tk[64];
            char back[64];
            int n = bn_tokenizer_encode(t, "abc\xff", 4, 1, tk, 64);
            CHECK(n > 0 && n <= 64);
            for (int i = 0; i < n; i++) CHECK(tk[i] >= 0 && tk[i] < nv);
            if (n > 0) (void)decode(t, tk, n, back);
            bn_tokenizer_free(t);
        }
    }
    free(c);
    free(b);
    CHECK_EQ_INT(bn_tokenizer_from_llama2c("/nonexistent/tokenizer.bin", 32000, &t), BITNET_ERR_IO);
    CHECK(strstr(bitnet_last_error(), "/nonexistent/tokenizer.bin") != NULL);
}

/* ---- llama.cpp SPM vocabulary (GGUF) ------------------------------------- */

TEST(tokenizer_spm_test_vectors) {
    bn_vocab_vectors v;
    bn_tokenizer *t = bn_vocab_vectors_open(&v, "ggml-vocab-llama-spm.gguf") ? load_spm() : NULL;
    if (!t) {
        bn_vocab_vectors_close(&v);
        SKIP("ggml-vocab-llama-spm.gguf{,.inp,.out} not available");
    }
    CHECK_EQ_INT(bn_tokenizer_n_vocab(t), 32000);
    /* Format: see tests/vocab_vectors.h. Ids are without BOS (add_special = false). */
    const char *ip;
    size_t len;
    int32_t want[512], got[512];
    int nw, r, tests = 0;
    while ((r = bn_vocab_vectors_next(&v, &ip, &len, want, 512, &nw)) == 1) {
        int ng = bn_tokenizer_encode(t, ip, len, 0, got, 512);
        CHECK_MSG(same(got, ng, want, nw), "vector %d \"%.*s\": got %d tokens, want %d", tests,
                  (int)BN_MIN(len, 50), ip, ng, nw);
        /* and llama2.c's decode rule gives the input back after BOS */
        char back[2048];
        int32_t wb[513] = {bn_tokenizer_bos(t)};
        memcpy(wb + 1, want, (size_t)nw * sizeof *want);
        CHECK(decode(t, wb, nw + 1, back) == len && memcmp(back, ip, len) == 0);
        tests++;
    }
    CHECK(r == 0);
    CHECK_EQ_INT(tests, 46);
    CHECK(bn_vocab_vectors_done(&v)); /* as many outputs as inputs */
    bn_vocab_vectors_close(&v);
    free_spm(t);
}

TEST(tokenizer_spm_matches_llama2c_reference) {
    bn_tokenizer *t = load_spm();
    if (!t) SKIP("tokenizers/ggml-vocab-llama-spm.gguf not available");
    CHECK(compare_with_reference(t) > 300);
    int len;
    const char *s = bn_tokenizer_piece(t, 0, 29871, &len); /* "▁" stored as ' ' */
    CHECK(s && len == 1 && s[0] == ' ');
    s = bn_tokenizer_piece(t, 0, 13, &len);
    CHECK(s && len == 1 && s[0] == '\n');
    CHECK_EQ_INT(bn_tokenizer_add_bos(t), 1);
    free_spm(t);
}

/* ---- synthetic GGUF metadata (no file: the kv list is built directly) ----- */

typedef struct {
    bn_gguf_file f;
    bn_gguf_kv kv[16];
    bn_gguf_value items[8];
    float scores[8];
    int32_t types[8];
} fake_gguf;

static bn_gguf_str S(const char *s) { return (bn_gguf_str){strlen(s), s}; }

static void fake_init(fake_gguf *g) {
    static const char *toks[] = {"<unk>", "<s>", "</s>", "\xe2\x96\x81", "a", "\xe2\x96\x81" "a", "b", "a\xe2\x96\x81" "b"};
    memset(g, 0, sizeof *g);
    g->f.path = (char *)"fake.gguf";
    for (int i = 0; i < 8; i++) {
        g->items[i].type = BN_GGUF_TYPE_STRING;
        g->items[i].str = S(toks[i]);
        g->scores[i] = (float)-i;
        g->types[i] = i == 0 ? BN_TOKEN_UNKNOWN : i < 3 ? BN_TOKEN_CONTROL : BN_TOKEN_NORMAL;
    }
    int k = 0;
    g->kv[k].key = S("tokenizer.ggml.model");
    g->kv[k].value.type = BN_GGUF_TYPE_STRING;
    g->kv[k++].value.str = S("llama");
    g->kv[k].key = S("tokenizer.ggml.tokens");
    g->kv[k].value.type = BN_GGUF_TYPE_ARRAY;
    g->kv[k].value.arr.type = BN_GGUF_TYPE_STRING;
    g->kv[k].value.arr.n = 8;
    g->kv[k++].value.arr.items = g->items;
    g->kv[k].key = S("tokenizer.ggml.scores");
    g->kv[k].value.type = BN_GGUF_TYPE_ARRAY;
    g->kv[k].value.arr.type = BN_GGUF_TYPE_FLOAT32;
    g->kv[k].value.arr.n = 8;
    g->kv[k++].value.arr.data = g->scores;
    g->kv[k].key = S("tokenizer.ggml.token_type");
    g->kv[k].value.type = BN_GGUF_TYPE_ARRAY;
    g->kv[k].value.arr.type = BN_GGUF_TYPE_INT32;
    g->kv[k].value.arr.n = 8;
    g->kv[k++].value.arr.data = g->types;
    g->f.kv = g->kv;
    g->f.n_kv = (uint64_t)k;
}

static bn_gguf_kv *fake_add(fake_gguf *g, const char *key, bn_gguf_vtype type) {
    bn_gguf_kv *kv = &g->kv[g->f.n_kv++];
    kv->key = S(key);
    kv->value.type = type;
    return kv;
}

TEST(tokenizer_gguf_synthetic) {
    fake_gguf g;
    bn_tokenizer *t = NULL;
    int32_t toks[16];
    fake_init(&g);
    CHECK_EQ_INT(bn_tokenizer_from_gguf(&g.f, &t), BITNET_OK);
    if (t) {
        const char *s;
        int len;
        bn_tokenizer_get_entry(t, 7, &s, &len, NULL, NULL);
        CHECK(len == 3 && memcmp(s, "a b", 3) == 0); /* ▁ -> ' ' inside a piece too */
        CHECK_EQ_INT(bn_tokenizer_encode(t, "a", 1, 0, toks, 16), 1);
        CHECK_EQ_INT(toks[0], 5);
        /* "a b" -> " a"(5) " "(3) "b"(6): 'a▁b' (7) is never formed because
         * " a" (score -5) merges before "a " would be tried. */
        CHECK_EQ_INT(bn_tokenizer_encode(t, "a b", 3, 1, toks, 16), 4);
        CHECK(toks[0] == 1 && toks[1] == 5 && toks[2] == 3 && toks[3] == 6);
        CHECK_EQ_INT(bn_tokenizer_encode(t, "c", 1, 0, toks, 16), 2); /* no byte tokens: <unk> */
        CHECK(toks[0] == 3 && toks[1] == 0);
        bn_tokenizer_free(t);
    }
    /* add_space_prefix = false; special ids; add_bos_token */
    bn_gguf_kv *kv = fake_add(&g, "tokenizer.ggml.add_space_prefix", BN_GGUF_TYPE_BOOL);
    kv->value.b = false;
    fake_add(&g, "tokenizer.ggml.bos_token_id", BN_GGUF_TYPE_UINT32)->value.u32 = 2;
    fake_add(&g, "tokenizer.ggml.eos_token_id", BN_GGUF_TYPE_UINT32)->value.u32 = 1;
    fake_add(&g, "tokenizer.ggml.add_bos_token", BN_GGUF_TYPE_BOOL)->value.b = false;
    CHECK_EQ_INT(bn_tokenizer_from_gguf(&g.f, &t), BITNET_OK);
    if (t) {
        CHECK_EQ_INT(bn_tokenizer_encode(t, "a", 1, 1, toks, 16), 2);
        CHECK(toks[0] == 2 && toks[1] == 4);
        CHECK_EQ_INT(bn_tokenizer_bos(t), 2);
        CHECK_EQ_INT(bn_tokenizer_eos(t), 1);
        CHECK_EQ_INT(bn_tokenizer_add_bos(t), 0);
        bn_tokenizer_free(t);
    }
    g.kv[g.f.n_kv - 3].value.u32 = 8; /* bos out of range */
    CHECK_EQ_INT(bn_tokenizer_from_gguf(&g.f, &t), BITNET_ERR_FORMAT);
    CHECK(t == NULL && strstr(bitnet_last_error(), "fake.gguf: ") == bitnet_last_error());
    /* unsupported tokenizer model */
    fake_init(&g);
    g.kv[0].value.str = S("gpt2");
    CHECK_EQ_INT(bn_tokenizer_from_gguf(&g.f, &t), BITNET_ERR_UNSUPPORTED);
    CHECK(strstr(bitnet_last_error(), "gpt2") != NULL);
    g.kv[0].value.type = BN_GGUF_TYPE_UINT32;
    CHECK_EQ_INT(bn_tokenizer_from_gguf(&g.f, &t), BITNET_ERR_FORMAT);
    /* length mismatches, wrong types, missing keys, bad token types */
    fake_init(&g);
    g.kv[2].value.arr.n = 7;
    CHECK_EQ_INT(bn_tokenizer_from_gguf(&g.f, &t), BITNET_ERR_FORMAT);
    fake_init(&g);
    g.kv[3].value.arr.n = 9;
    CHECK_EQ_INT(bn_tokenizer_from_gguf(&g.f, &t), BITNET_ERR_FORMAT);
    fake_init(&g);
    g.kv[2].value.arr.type = BN_GGUF_TYPE_FLOAT64;
    CHECK_EQ_INT(bn_tokenizer_from_gguf(&g.f, &t), BITNET_ERR_FORMAT);
    fake_init(&g);
    g.types[5] = 99;
    CHECK_EQ_INT(bn_tokenizer_from_gguf(&g.f, &t), BITNET_ERR_FORMAT);
    fake_init(&g);
    g.scores[5] = NAN;
    CHECK_EQ_INT(bn_tokenizer_from_gguf(&g.f, &t), BITNET_ERR_FORMAT);
    fake_init(&g);
    g.items[4].type = BN_GGUF_TYPE_UINT32;
    CHECK_EQ_INT(bn_tokenizer_from_gguf(&g.f, &t), BITNET_ERR_FORMAT);
    fake_init(&g);
    g.f.n_kv = 1;
    CHECK_EQ_INT(bn_tokenizer_from_gguf(&g.f, &t), BITNET_ERR_FORMAT);
    CHECK(strstr(bitnet_last_error(), "tokenizer.ggml.tokens") != NULL);
    g.f.n_kv = 0;
    CHECK_EQ_INT(bn_tokenizer_from_gguf(&g.f, &t), BITNET_ERR_FORMAT);
    /* scores and token_type are optional: without types, <0xXX> is a byte */
    fake_init(&g);
    g.items[6].str = S("<0x62>");
    g.f.n_kv = 2;
    CHECK_EQ_INT(bn_tokenizer_from_gguf(&g.f, &t), BITNET_OK);
    if (t) {
        int type, len;
        float sc;
        bn_tokenizer_get_entry(t, 6, NULL, NULL, &sc, &type);
        CHECK(type == BN_TOKEN_BYTE && sc == 0.0f);
        bn_tokenizer_get_entry(t, 0, NULL, NULL, NULL, &type);
        CHECK_EQ_INT(type, BN_TOKEN_UNKNOWN);
        bn_tokenizer_get_entry(t, 2, NULL, NULL, NULL, &type);
        CHECK_EQ_INT(type, BN_TOKEN_CONTROL);
        CHECK_EQ_INT(bn_tokenizer_encode(t, "b", 1, 0, toks, 16), 2);
        CHECK_EQ_INT(toks[1], 6);
        const char *s = bn_tokenizer_piece(t, 1, 6, &len);
        CHECK(s && len == 1 && s[0] == 'b');
        bn_tokenizer_free(t);
    }
}

/* ---- a hand-built GGUF file through the real reader, then fuzzed ---------- */

typedef struct { uint8_t b[4096]; size_t n; } gbuf;
static void gb_put(gbuf *g, const void *p, size_t n) { memcpy(g->b + g->n, p, n); g->n += n; }
static void gb_u32(gbuf *g, uint32_t v) { gb_put(g, &v, 4); }
static void gb_u64(gbuf *g, uint64_t v) { gb_put(g, &v, 8); }
static void gb_str(gbuf *g, const char *s) { gb_u64(g, strlen(s)); gb_put(g, s, strlen(s)); }

static void make_gguf(gbuf *g) {
    static const char *toks[] = {"<unk>", "<s>", "</s>", "\xe2\x96\x81", "h", "i", "hi", "\xe2\x96\x81hi"};
    g->n = 0;
    gb_u32(g, BN_GGUF_MAGIC);
    gb_u32(g, 3);
    gb_u64(g, 0); /* tensors */
    gb_u64(g, 4); /* kv */
    gb_str(g, "tokenizer.ggml.model");
    gb_u32(g, BN_GGUF_TYPE_STRING);
    gb_str(g, "llama");
    gb_str(g, "tokenizer.ggml.tokens");
    gb_u32(g, BN_GGUF_TYPE_ARRAY);
    gb_u32(g, BN_GGUF_TYPE_STRING);
    gb_u64(g, 8);
    for (int i = 0; i < 8; i++) gb_str(g, toks[i]);
    gb_str(g, "tokenizer.ggml.scores");
    gb_u32(g, BN_GGUF_TYPE_ARRAY);
    gb_u32(g, BN_GGUF_TYPE_FLOAT32);
    gb_u64(g, 8);
    for (int i = 0; i < 8; i++) {
        float s = (float)i;
        gb_put(g, &s, 4);
    }
    gb_str(g, "tokenizer.ggml.bos_token_id");
    gb_u32(g, BN_GGUF_TYPE_UINT32);
    gb_u32(g, 1);
    while (g->n % 32) g->b[g->n++] = 0; /* empty, aligned data section */
}

TEST(tokenizer_gguf_file_fuzz) {
    gbuf g, c;
    make_gguf(&g);
    bn_gguf_file *f = NULL;
    bn_tokenizer *t = NULL;
    int32_t toks[16];
    bitnet_status st = bn_gguf_open_memory(g.b, g.n, "tiny.gguf", &f);
    CHECK_MSG(st == BITNET_OK, "%s", bitnet_last_error());
    if (st != BITNET_OK) return;
    CHECK_EQ_INT(bn_tokenizer_from_gguf(f, &t), BITNET_OK);
    if (t) {
        CHECK_EQ_INT(bn_tokenizer_encode(t, "hi hi", 5, 1, toks, 16), 3);
        CHECK(toks[0] == 1 && toks[1] == 7 && toks[2] == 7);
        CHECK_EQ_INT(bn_tokenizer_encode(t, "x", 1, 0, toks, 16), 2); /* no byte pieces: <unk> */
        CHECK(toks[0] == 3 && toks[1] == 0);
    }
    bn_tokenizer_free(t);
    bn_gguf_close(f);
    int loaded = 0;
    for (int it = 0; it < 3000; it++) {
        c = g;
        for (int k = 0, m = 1 + (int)(rnd() % 3); k < m; k++) c.b[rnd() % c.n] = (uint8_t)rnd();
        if (bn_gguf_open_memory(c.b, c.n, "fuzz.gguf", &f) != BITNET_OK) continue;
        st = bn_tokenizer_from_gguf(f, &t);
        CHECK(st == BITNET_OK || st == BITNET_ERR_FORMAT || st == BITNET_ERR_UNSUPPORTED);
        if (st == BITNET_OK) {
            char back[64];
            int n = bn_tokenizer_encode(t, "hi \xff", 4, 1, toks, 16);
            CHECK(n > 0 && n <= 16);
            for (int i = 0; i < n; i++) CHECK(toks[i] >= 0 && toks[i] < bn_tokenizer_n_vocab(t));
            if (n > 0) (void)decode(t, toks, n, back);
            bn_tokenizer_free(t);
            loaded++;
        }
        bn_gguf_close(f);
    }
    CHECK(loaded > 100);
}
