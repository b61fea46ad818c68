/* test_tokenizer_bpe.c - byte-level BPE: llama.cpp's GPT-2 and Llama-3 test
 * vectors (every case), the Llama-3 vocabulary from the tiktoken rank file,
 * through GGUF and through a Hugging Face tokenizer.json, special tokens,
 * pre-tokenizer splits, round trips, hostile inputs and speed. */
#include <sys/stat.h>
#include <unistd.h>

#include "bitnet.h"
#include "common.h"
#include "formats/gguf.h"
#include "formats/json.h"
#include "formats/safetensors.h"
#include "model/model.h"
#include "test.h"
#include "tokenizer/tokenizer.h"
#include "tokenizer/unicode.h"
#include "vocab_vectors.h"

/* Loaded once: the tiktoken file takes ~0.1 s to parse and derive merges. */
static bn_tokenizer *g_llama3;
static bn_tokenizer *llama3(void) {
    const char *p = bn_test_shared("tokenizers/llama3-tiktoken.model");
    if (!g_llama3 && p) {
        bitnet_status st = bn_tokenizer_from_tiktoken(p, &g_llama3);
        CHECK_MSG(st == BITNET_OK, "from_tiktoken: %s", bitnet_last_error());
    }
    return g_llama3;
}

static bn_gguf_file *g_gpt2_file;
static bn_tokenizer *g_gpt2;
static bn_tokenizer *gpt2(void) {
    const char *p = bn_test_shared("tokenizers/ggml-vocab-gpt-2.gguf");
    if (!g_gpt2 && p) {
        bitnet_status st = bn_gguf_open(p, &g_gpt2_file);
        if (st == BITNET_OK) st = bn_tokenizer_from_gguf(g_gpt2_file, &g_gpt2);
        CHECK_MSG(st == BITNET_OK, "gpt-2 vocab: %s", bitnet_last_error());
    }
    return g_gpt2;
}

/* Concatenated pieces of toks[0..n) into buf (cap bytes); the length or -1. */
static long decode(const bn_tokenizer *t, const int32_t *toks, int n, char *buf, size_t cap) {
    size_t k = 0;
    for (int i = 0; i < n; i++) {
        int len;
        const char *s = bn_tokenizer_piece(t, i ? toks[i - 1] : -1, toks[i], &len);
        if (!s || k + (size_t)len > cap) return -1;
        memcpy(buf + k, s, (size_t)len);
        k += (size_t)len;
    }
    return (long)k;
}

static int same(const int32_t *a, int na, const int32_t *b, int nb) {
    return na == nb && (na == 0 || memcmp(a, b, (size_t)na * sizeof *a) == 0);
}

/* Every case of ../shared/tokenizers/VECTORS.inp/.out, and decode(encode(x)) == x. */
static int run_vectors(const bn_tokenizer *t, const char *vectors) {
    bn_vocab_vectors v;
    if (!bn_vocab_vectors_open(&v, vectors)) return -1;
    const char *text;
    size_t len;
    int32_t want[1024], got[1024];
    int nw, r, cases = 0;
    while ((r = bn_vocab_vectors_next(&v, &text, &len, want, 1024, &nw)) == 1) {
        int ng = bn_tokenizer_encode(t, text, len, 0, got, 1024);
        CHECK_MSG(same(got, ng, want, nw), "%s case %d \"%.*s\": got %d tokens, want %d (first %d vs %d)", vectors, cases,
                  (int)BN_MIN(len, 40), text, ng, nw, ng > 0 ? got[0] : -1, nw > 0 ? want[0] : -1);
        char back[8192];
        long nb = ng > 0 ? decode(t, got, ng, back, sizeof back) : 0;
        CHECK_MSG(nb == (long)len && memcmp(back, text, len) == 0, "%s case %d does not decode back", vectors, cases);
        cases++;
    }
    CHECK(r == 0);
    CHECK(bn_vocab_vectors_done(&v)); /* as many outputs as inputs */
    bn_vocab_vectors_close(&v);
    return cases;
}

TEST(tokenizer_bpe_gpt2_test_vectors) {
    bn_tokenizer *t = gpt2();
    if (!t) SKIP("tokenizers/ggml-vocab-gpt-2.gguf not available");
    CHECK_EQ_INT(bn_tokenizer_get_kind(t), BN_TOK_BPE);
    CHECK_EQ_INT(bn_tokenizer_n_vocab(t), 50257);
    int cases = run_vectors(t, "ggml-vocab-gpt-2.gguf");
    if (cases < 0) SKIP("ggml-vocab-gpt-2.gguf.inp/.out not available");
    CHECK_EQ_INT(cases, 46);
    /* <|endoftext|> ends generation and is the EOT llama.cpp finds by text */
    CHECK_EQ_INT(bn_tokenizer_eot(t), 50256);
    CHECK(bn_tokenizer_is_eog(t, 50256));
    CHECK_EQ_INT(bn_tokenizer_add_bos(t), 0);
}

TEST(tokenizer_bpe_llama3_test_vectors) {
    bn_tokenizer *t = llama3();
    if (!t) SKIP("tokenizers/llama3-tiktoken.model not available");
    CHECK_EQ_INT(bn_tokenizer_n_vocab(t), 128256);
    int cases = run_vectors(t, "ggml-vocab-llama-bpe.gguf");
    if (cases < 0) SKIP("ggml-vocab-llama-bpe.gguf.inp/.out not available");
    CHECK_EQ_INT(cases, 46);
    int32_t ids[8];
    CHECK_EQ_INT(bn_tokenizer_encode(t, "Hello world", 11, 1, ids, 8), 3);
    CHECK(ids[0] == 128000 && ids[1] == 9906 && ids[2] == 1917);
}

TEST(tokenizer_bpe_llama3_special_tokens) {
    bn_tokenizer *t = llama3();
    if (!t) SKIP("tokenizers/llama3-tiktoken.model not available");
    CHECK_EQ_INT(bn_tokenizer_bos(t), 128000);
    CHECK_EQ_INT(bn_tokenizer_eos(t), 128001);
    CHECK_EQ_INT(bn_tokenizer_eot(t), 128009);
    CHECK(bn_tokenizer_is_eog(t, 128001) && bn_tokenizer_is_eog(t, 128009) && !bn_tokenizer_is_eog(t, 128006));
    CHECK_EQ_INT(bn_tokenizer_add_bos(t), 1);
    const char *s;
    int len, type;
    bn_tokenizer_get_entry(t, 128006, &s, &len, NULL, &type);
    CHECK(len == 19 && !memcmp(s, "<|start_header_id|>", 19) && type == BN_TOKEN_CONTROL);
    bn_tokenizer_get_entry(t, 128255, &s, &len, NULL, NULL);
    CHECK(len == 30 && !memcmp(s, "<|reserved_special_token_250|>", 30));
    static const char text[] = "<|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>";
    int32_t a[64], b[64];
    int na = bn_tokenizer_encode_ex(t, text, sizeof text - 1, 1, 1, a, 64);
    static const int32_t want[] = {128000, 128006, 882, 128007, 271, 13347, 128009};
    CHECK(same(a, na, want, 7));
    /* without parse_special the markers are plain text */
    int nb = bn_tokenizer_encode_ex(t, text, sizeof text - 1, 0, 0, b, 64);
    CHECK(nb > 10);
    for (int i = 0; i < nb; i++) CHECK(b[i] < 128000);
    char back[256];
    CHECK(decode(t, b, nb, back, sizeof back) == (long)sizeof text - 1 && !memcmp(back, text, sizeof text - 1));
    /* pieces: control tokens give their text, normal ones their bytes */
    s = bn_tokenizer_piece(t, 0, 128009, &len);
    CHECK(s && len == 10 && !memcmp(s, "<|eot_id|>", 10));
    s = bn_tokenizer_piece(t, 0, 1917, &len);
    CHECK(s && len == 6 && !memcmp(s, " world", 6));
    bn_tokenizer_get_entry(t, 1917, &s, &len, NULL, NULL); /* stored as GGUF spells it */
    CHECK(len == 7 && !memcmp(s, "\xc4\xa0world", 7));
    CHECK_EQ_INT(bn_tokenizer_find(t, "<|eot_id|>", 10), 128009);
}

/* T written as an in-memory GGUF vocabulary (*buf: its bytes, freed after
 * bn_gguf_close); NULL after a failed CHECK. */
static bn_gguf_file *tokenizer_as_gguf(const bn_tokenizer *t, const char *name, uint8_t **buf) {
    bn_gguf_writer *w = bn_gguf_writer_new();
    uint64_t size = 0;
    bn_gguf_file *f = NULL;
    *buf = NULL;
    CHECK_EQ_INT(bn_tokenizer_write_gguf(t, w), BITNET_OK);
    CHECK_EQ_INT(bn_gguf_writer_write_memory(w, buf, &size), BITNET_OK);
    bn_gguf_writer_free(w);
    if (*buf) CHECK_EQ_INT(bn_gguf_open_memory(*buf, size, name, &f), BITNET_OK);
    return f;
}

/* The tiktoken vocabulary written as GGUF (tokens + derived merges) and read
 * back through the "gpt2" loader must tokenize identically. */
TEST(tokenizer_bpe_llama3_gguf_round_trip) {
    bn_tokenizer *t = llama3();
    if (!t) SKIP("tokenizers/llama3-tiktoken.model not available");
    uint8_t *buf;
    bn_gguf_file *f = tokenizer_as_gguf(t, "llama3.gguf", &buf);
    bn_tokenizer *g = NULL;
    if (f) CHECK_MSG(bn_tokenizer_from_gguf(f, &g) == BITNET_OK, "%s", bitnet_last_error());
    if (g) {
        char model[16], pre[16];
        CHECK(bn_gguf_get_str(f, "tokenizer.ggml.model", model, sizeof model) == 1 && !strcmp(model, "gpt2"));
        CHECK(bn_gguf_get_str(f, "tokenizer.ggml.pre", pre, sizeof pre) == 1 && !strcmp(pre, "llama-bpe"));
        const bn_gguf_kv *m = bn_gguf_find_kv(f, "tokenizer.ggml.merges");
        /* every split of a token into two tokens: far more merges than tokens */
        CHECK(m && m->value.arr.n > 200000);
        CHECK(m && m->value.arr.items[0].str.len == 5 && memcmp(m->value.arr.items[0].str.data, "\xc4\xa0 \xc4\xa0", 5) == 0);
        CHECK_EQ_INT(bn_tokenizer_eot(g), 128009);
        CHECK_EQ_INT(bn_tokenizer_bos(g), 128000);
        CHECK_EQ_INT(run_vectors(g, "ggml-vocab-llama-bpe.gguf") >= 0 ? 1 : 0, 1);
        /* and agree with the tiktoken-loaded one on real text */
        size_t n = 0;
        char *text = bn_test_read_shared("corpora/wikipedia-sample.txt", &n);
        if (text) {
            n = BN_MIN(n, (size_t)200000);
            int32_t *a = malloc(n * sizeof *a), *b = malloc(n * sizeof *b);
            int na = bn_tokenizer_encode(t, text, n, 0, a, (int)n), nb = bn_tokenizer_encode(g, text, n, 0, b, (int)n);
            CHECK(na > 1000 && same(a, na, b, nb));
            free(a);
            free(b);
            free(text);
        }
        bn_tokenizer_free(g);
    }
    bn_gguf_close(f);
    free(buf);
}

static int words(bn_pretok kind, const char *s, const char *const *want, int n_want) {
    uint32_t cps[128], ends[128];
    uint8_t fl[128];
    size_t n = bn_utf8_decode(s, strlen(s), cps);
    for (size_t i = 0; i < n; i++) fl[i] = bn_unicode_flags(cps[i]);
    size_t nw = bn_pretokenize(kind, cps, fl, n, ends);
    if ((int)nw != n_want) return 0;
    for (size_t i = 0, start = 0; i < nw; start = ends[i++]) {
        char w[64];
        int k = 0;
        for (size_t c = start; c < ends[i]; c++) k += bn_utf8_encode(cps[c], w + k);
        if (k != (int)strlen(want[i]) || memcmp(w, want[i], (size_t)k)) return 0;
    }
    return 1;
}

TEST(tokenizer_bpe_pretokenizer_splits) {
    /* worked by hand from the two regexes */
    static const char *const l3[] = {"I", "'m", " ", "123", "45", " ok", "!!\n\n", " ", " x"};
    CHECK(words(BN_PRETOK_LLAMA3, "I'm 12345 ok!!\n\n  x", l3, 9));
    static const char *const g2[] = {"I", "'m", " 12345", " ok", "!!", "\n\n ", " x"};
    CHECK(words(BN_PRETOK_GPT2, "I'm 12345 ok!!\n\n  x", g2, 7));
    /* Qwen2: Llama-3's split with one digit a word */
    static const char *const q2[] = {"I", "'m", " ", "1", "2", "3", "4", "5", " ok", "!!\n\n", " ", " x"};
    CHECK(words(BN_PRETOK_QWEN2, "I'm 12345 ok!!\n\n  x", q2, 12));
    static const char *const l3b[] = {"Don", "'T", " Ünïcödé", "\xc2\xa0", "٣٤", "   "};
    CHECK(words(BN_PRETOK_LLAMA3, "Don'T Ünïcödé\xc2\xa0٣٤   ", l3b, 6));
    /* classes: Unicode 15.1 letters (CJK Ext. I), numbers, whitespace */
    CHECK(bn_unicode_flags(0x2EBF0) & BN_U_LETTER);
    CHECK(bn_unicode_flags(0x0663) & BN_U_NUMBER);
    CHECK(bn_unicode_flags(0x3000) & BN_U_SPACE);
    CHECK(!(bn_unicode_flags(0x1F600) & (BN_U_LETTER | BN_U_NUMBER | BN_U_SPACE)));
    /* invalid UTF-8: one U+FFFD per bad byte, as llama.cpp */
    uint32_t cps[8]; /* \xe2 announces 3 bytes but 'z' is no continuation: \xe2 and \x82 are both bad */
    CHECK_EQ_INT(bn_utf8_decode("a\xff\xe2\x82z", 5, cps), 5);
    CHECK(cps[0] == 'a' && cps[1] == 0xFFFD && cps[2] == 0xFFFD && cps[3] == 0xFFFD && cps[4] == 'z');
    for (int b = 0; b < 256; b++) CHECK_EQ_INT(bn_gpt2_cp_to_byte(bn_gpt2_byte_to_cp((uint8_t)b)), b);
    CHECK(bn_gpt2_byte_to_cp(' ') == 0x120 && bn_gpt2_byte_to_cp('\n') == 0x10A);
}

/* Random bytes (invalid UTF-8, NULs) never crash and give valid ids; valid
 * UTF-8 decodes back exactly. */
TEST(tokenizer_bpe_random_text) {
    bn_tokenizer *ts[2] = {llama3(), gpt2()};
    uint64_t rng = 0x2545F4914F6CDD1Dull;
    for (int k = 0; k < 2; k++) {
        if (!ts[k]) continue;
        for (int it = 0; it < 300; it++) {
            char text[200], back[4096];
            int32_t ids[400];
            int n = 0, utf8 = it % 2;
            while (n < 150) {
                rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
                if (!utf8) text[n++] = (char)(rng >> 24);
                else n += bn_utf8_encode((uint32_t)(rng >> 40) % (rng & 1 ? 0x80 : 0x3000), text + n);
            }
            int nt = bn_tokenizer_encode_ex(ts[k], text, (size_t)n, 0, it % 3 == 0, ids, 400);
            CHECK(nt > 0);
            for (int i = 0; i < nt; i++) CHECK(ids[i] >= 0 && ids[i] < bn_tokenizer_n_vocab(ts[k]));
            if (utf8 && nt > 0) CHECK(decode(ts[k], ids, nt, back, sizeof back) == n && !memcmp(back, text, (size_t)n));
        }
    }
    if (!ts[0] && !ts[1]) SKIP("no BPE vocabulary available");
}

/* Encoding time, reported only (see tokenizer_encode_speed); the repetitions agree. */
TEST(tokenizer_bpe_encode_speed) {
    bn_tokenizer *t = llama3();
    size_t n = 0;
    char *text = bn_test_read_shared("corpora/wikipedia-sample.txt", &n);
    if (!t || !text) {
        free(text);
        SKIP("llama3-tiktoken.model or wikipedia-sample.txt not available");
    }
    n = BN_MIN(n, (size_t)100000);
    int32_t *ids = malloc(n * sizeof *ids), *first = malloc(n * sizeof *first);
    REQUIRE(ids && first);
    uint64_t best = UINT64_MAX;
    int n0 = 0;
    for (int rep = 0; rep < 3; rep++) {
        uint64_t t0 = bn_time_ns();
        const int k = bn_tokenizer_encode(t, text, n, 0, ids, (int)n);
        uint64_t dt = bn_time_ns() - t0;
        CHECK(k > 10000);
        if (rep == 0) memcpy(first, ids, (size_t)(n0 = k) * sizeof *ids);
        else CHECK(k == n0 && memcmp(first, ids, (size_t)k * sizeof *ids) == 0);
        if (dt < best) best = dt;
    }
    printf("    llama-3 BPE: %zu bytes in %.2f ms\n", n, (double)best / 1e6);
    free(ids);
    free(first);
    free(text);
}

TEST(tokenizer_bpe_hostile_tiktoken) {
    bn_tokenizer *t = NULL;
    static const char *const bad[] = {"IQ== 1\n", "IQ== 0\nIg== 0\n", "IQ=\n", "I*== 0\n", "IQ== 0x\n", " 0\n",
                                      "IQ==  0\n", "IQ== 99999999999999999999\n"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        CHECK_EQ_INT(bn_tokenizer_from_tiktoken_memory(bad[i], strlen(bad[i]), "bad.model", &t), BITNET_ERR_FORMAT);
        CHECK(t == NULL && strstr(bitnet_last_error(), "bad.model: ") == bitnet_last_error());
    }
    /* well-formed, but not Llama-3's (special tokens unknown) */
    CHECK_EQ_INT(bn_tokenizer_from_tiktoken_memory("IQ== 0\nIg== 1\n", 14, "two.model", &t), BITNET_ERR_UNSUPPORTED);
    CHECK_EQ_INT(bn_tokenizer_from_tiktoken("/nonexistent/x.model", &t), BITNET_ERR_IO);
    /* every truncation of the real file is an error or a clean load */
    size_t n = 0;
    char *buf = bn_test_read_shared("tokenizers/llama3-tiktoken.model", &n);
    for (size_t cut = 0; buf && cut < 64; cut++) {
        CHECK(bn_tokenizer_from_tiktoken_memory(buf, n / 64 * cut + cut, "cut.model", &t) != BITNET_OK);
        CHECK(t == NULL);
    }
    free(buf);
}

/* gpt2 GGUF metadata problems: missing merges / pre, unknown pre. */
TEST(tokenizer_bpe_hostile_gguf) {
    bn_gguf_writer *w = bn_gguf_writer_new();
    static const char *const toks[] = {"a", "b", "ab", "<|endoftext|>"};
    static const char *const merges[] = {"a b", "ab", " a"};
    bn_gguf_writer_set_str(w, "tokenizer.ggml.model", "gpt2");
    bn_gguf_writer_set_arr_str(w, "tokenizer.ggml.tokens", toks, NULL, 4);
    uint8_t *buf;
    uint64_t size;
    bn_gguf_file *f;
    bn_tokenizer *t = NULL;
    for (int step = 0; step < 4; step++) {
        if (step == 1) bn_gguf_writer_set_arr_str(w, "tokenizer.ggml.merges", merges, NULL, 3);
        if (step == 2) bn_gguf_writer_set_str(w, "tokenizer.ggml.pre", "default");
        if (step == 3) bn_gguf_writer_set_str(w, "tokenizer.ggml.pre", "gpt-2");
        CHECK_EQ_INT(bn_gguf_writer_write_memory(w, &buf, &size), BITNET_OK);
        CHECK_EQ_INT(bn_gguf_open_memory(buf, size, "v.gguf", &f), BITNET_OK);
        bitnet_status st = bn_tokenizer_from_gguf(f, &t);
        if (step == 0) CHECK(st == BITNET_ERR_UNSUPPORTED && strstr(bitnet_last_error(), "tokenizer.ggml.pre"));
        if (step == 1) CHECK(st == BITNET_ERR_UNSUPPORTED); /* merges present, pre still missing */
        if (step == 2) CHECK(st == BITNET_ERR_UNSUPPORTED && strstr(bitnet_last_error(), "default"));
        if (step == 3) {
            CHECK_EQ_INT(st, BITNET_OK);
            int32_t ids[8];
            /* "ab" merges; the malformed merges are inert; no BOS (id 11 does not exist) */
            CHECK_EQ_INT(bn_tokenizer_encode(t, "abba", 4, 0, ids, 8), 3);
            CHECK(ids[0] == 2 && ids[1] == 1 && ids[2] == 0);
            CHECK_EQ_INT(bn_tokenizer_bos(t), -1);
            CHECK(bn_tokenizer_encode(t, "a", 1, 1, ids, 8) == BITNET_ERR_ARG); /* no BOS to add */
            bn_tokenizer_free(t);
            t = NULL;
        }
        bn_gguf_close(f);
        free(buf);
    }
    /* missing merges with a valid pre */
    bn_gguf_writer_free(w);
    w = bn_gguf_writer_new();
    bn_gguf_writer_set_str(w, "tokenizer.ggml.model", "gpt2");
    bn_gguf_writer_set_str(w, "tokenizer.ggml.pre", "llama-bpe");
    bn_gguf_writer_set_arr_str(w, "tokenizer.ggml.tokens", toks, NULL, 4);
    CHECK_EQ_INT(bn_gguf_writer_write_memory(w, &buf, &size), BITNET_OK);
    CHECK_EQ_INT(bn_gguf_open_memory(buf, size, "v.gguf", &f), BITNET_OK);
    CHECK_EQ_INT(bn_tokenizer_from_gguf(f, &t), BITNET_ERR_FORMAT);
    CHECK(strstr(bitnet_last_error(), "tokenizer.ggml.merges") != NULL);
    bn_gguf_close(f);
    free(buf);
    /* duplicate tokens are rejected, as llama.cpp does */
    bn_gguf_writer_set_arr_str(w, "tokenizer.ggml.merges", merges, NULL, 1);
    static const char *const dup[] = {"a", "b", "a"};
    bn_gguf_writer_set_arr_str(w, "tokenizer.ggml.tokens", dup, NULL, 3);
    CHECK_EQ_INT(bn_gguf_writer_write_memory(w, &buf, &size), BITNET_OK);
    CHECK_EQ_INT(bn_gguf_open_memory(buf, size, "v.gguf", &f), BITNET_OK);
    CHECK_EQ_INT(bn_tokenizer_from_gguf(f, &t), BITNET_ERR_FORMAT);
    CHECK(strstr(bitnet_last_error(), "duplicate") != NULL);
    bn_gguf_close(f);
    free(buf);
    bn_gguf_writer_free(w);
}

/* Loads every kind of vocabulary file through the one entry point. */
TEST(tokenizer_load_file_detects_format) {
    static const char *const files[] = {"tokenizers/llama3-tiktoken.model", "tokenizers/ggml-vocab-gpt-2.gguf",
                                        "models/tok512.bin", "tokenizers/ggml-vocab-llama-spm.gguf"};
    static const int n_vocab[] = {128256, 50257, 512, 32000};
    int found = 0;
    for (int i = 0; i < 4; i++) {
        const char *p = bn_test_shared(files[i]);
        if (!p) continue;
        bn_tokenizer *t = NULL;
        CHECK_MSG(bn_tokenizer_load_file(p, &t) == BITNET_OK, "%s: %s", files[i], bitnet_last_error());
        if (t) CHECK_EQ_INT(bn_tokenizer_n_vocab(t), n_vocab[i]);
        bn_tokenizer_free(t);
        found++;
    }
    if (!found) SKIP("../shared not present");
}

/* ---- Hugging Face tokenizer.json ----------------------------------------- */

static const char hf_llama3_pre[] =
    "{\"type\": \"Sequence\", \"pretokenizers\": [{\"type\": \"Split\", \"pattern\": {\"Regex\": "
    "\"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\\\r\\\\n\\\\p{L}\\\\p{N}]?\\\\p{L}+|\\\\p{N}{1,3}| ?[^\\\\s\\\\p{L}\\\\p{N}]+"
    "[\\\\r\\\\n]*|\\\\s*[\\\\r\\\\n]+|\\\\s+(?!\\\\S)|\\\\s+\"}, \"behavior\": \"Isolated\", \"invert\": false}, "
    "{\"type\": \"ByteLevel\", \"add_prefix_space\": false, \"trim_offsets\": true, \"use_regex\": false}]}";
static const char hf_llama3_post[] =
    "{\"type\": \"Sequence\", \"processors\": [{\"type\": \"ByteLevel\", \"add_prefix_space\": true}, "
    "{\"type\": \"TemplateProcessing\", \"single\": [{\"SpecialToken\": {\"id\": \"<|begin_of_text|>\", \"type_id\": 0}}, "
    "{\"Sequence\": {\"id\": \"A\", \"type_id\": 0}}]}]}";
static const char hf_gpt2_pre[] =
    "{\"type\": \"ByteLevel\", \"add_prefix_space\": false, \"trim_offsets\": true, \"use_regex\": true}";

static void write_text(const char *path, const char *text, size_t len) { REQUIRE(bn_test_write_file(path, text, len)); }

/* A tokenizer.json as the `tokenizers` library writes it, from a GGUF
 * vocabulary: normal tokens in model.vocab, control and user-defined ones in
 * added_tokens, merges as "a b" strings or (pairs) as ["a", "b"]. */
static void write_hf_json(const bn_gguf_file *g, const char *path, const char *pre, const char *post, int ignore_merges,
                          int pairs) {
    const bn_gguf_kv *tk = bn_gguf_find_kv(g, "tokenizer.ggml.tokens"), *ty = bn_gguf_find_kv(g, "tokenizer.ggml.token_type");
    const bn_gguf_kv *mg = bn_gguf_find_kv(g, "tokenizer.ggml.merges");
    REQUIRE(tk && ty && mg);
    const uint8_t *types = ty->value.arr.data; /* int32 in file order: unaligned, read with memcpy */
    bn_buf b = {0}, added = {0};
    bn_buf_printf(&b, "{\"version\": \"1.0\", \"pre_tokenizer\": %s, \"post_processor\": %s, \"model\": {\"type\": "
                  "\"BPE\", \"ignore_merges\": %s, \"vocab\": {", pre, post ? post : "null",
                  ignore_merges ? "true" : "false");
    int first = 1;
    for (uint64_t i = 0; i < tk->value.arr.n; i++) {
        const bn_gguf_str *t = &tk->value.arr.items[i].str;
        int32_t type;
        memcpy(&type, types + 4 * i, 4);
        if (type == 1) {
            bn_buf_printf(&b, first ? "" : ", ");
            bn_json_append_string(&b, t->data, (size_t)t->len);
            bn_buf_printf(&b, ": %llu", (unsigned long long)i);
            first = 0;
        } else {
            bn_buf_printf(&added, "%s{\"id\": %llu, \"content\": ", added.len ? ", " : "", (unsigned long long)i);
            bn_json_append_string(&added, t->data, (size_t)t->len);
            bn_buf_printf(&added, ", \"special\": %s}", type == 3 ? "true" : "false");
        }
    }
    bn_buf_printf(&b, "}, \"merges\": [");
    for (uint64_t i = 0; i < mg->value.arr.n; i++) {
        const bn_gguf_str *m = &mg->value.arr.items[i].str;
        const char *sp = memchr(m->data + 1, ' ', (size_t)m->len - 1);
        REQUIRE(sp != NULL);
        bn_buf_printf(&b, i ? ", " : "");
        if (pairs) {
            bn_buf_printf(&b, "[");
            bn_json_append_string(&b, m->data, (size_t)(sp - m->data));
            bn_buf_printf(&b, ", ");
            bn_json_append_string(&b, sp + 1, (size_t)(m->data + m->len - sp - 1));
            bn_buf_printf(&b, "]");
        } else {
            bn_json_append_string(&b, m->data, (size_t)m->len);
        }
    }
    bn_buf_printf(&b, "]}, \"added_tokens\": [%s]}", added.data ? added.data : "");
    write_text(path, b.data, b.len);
    bn_buf_free(&b);
    bn_buf_free(&added);
}

static char *tmp_dir(void) {
    static char dir[512];
    snprintf(dir, sizeof dir, "%s", bn_test_tmp(".hf"));
    CHECK_EQ_INT(bn_test_mkdir(dir), 0);
    return dir;
}

/* GPT-2's vocabulary as a tokenizer.json: llama.cpp's gpt-2 vectors, every case. */
TEST(tokenizer_hf_json_gpt2_test_vectors) {
    if (!gpt2()) SKIP("tokenizers/ggml-vocab-gpt-2.gguf not available");
    char *dir = tmp_dir(), path[600];
    snprintf(path, sizeof path, "%s/tokenizer.json", dir);
    write_hf_json(g_gpt2_file, path, hf_gpt2_pre, NULL, 0, 0);
    bn_tokenizer *t = NULL;
    CHECK_MSG(bn_tokenizer_load_file(path, &t) == BITNET_OK, "%s", bitnet_last_error());
    if (t) {
        CHECK_EQ_INT(bn_tokenizer_n_vocab(t), 50257);
        CHECK_EQ_INT(bn_tokenizer_add_bos(t), 0);
        CHECK(run_vectors(t, "ggml-vocab-gpt-2.gguf") > 0);
    }
    bn_tokenizer_free(t);
    remove(path);
    rmdir(dir);
}

/* Llama-3's vocabulary (from the tiktoken file, through GGUF) as the
 * tokenizer.json + tokenizer_config.json of a Hugging Face checkpoint:
 * llama.cpp's llama-bpe vectors, BOS from the post-processor, BOS/EOS and the
 * chat template from the config, merges in both spellings. */
TEST_E2E(tokenizer_hf_json_llama3_test_vectors_and_config) {
    bn_tokenizer *ref = llama3();
    if (!ref) SKIP("tokenizers/llama3-tiktoken.model not available");
    uint8_t *buf;
    bn_gguf_file *g = tokenizer_as_gguf(ref, "l3.gguf", &buf);
    REQUIRE(g != NULL);
    char *dir = tmp_dir(), path[600], cfg[600];
    snprintf(path, sizeof path, "%s/tokenizer.json", dir);
    snprintf(cfg, sizeof cfg, "%s/tokenizer_config.json", dir);
    static const char config[] = "{\"bos_token\": \"<|begin_of_text|>\", \"eos_token\": {\"content\": \"<|eot_id|>\"}, "
                                 "\"chat_template\": \"{% for m in messages %}<|start_header_id|>{{ m.role }}"
                                 "<|end_header_id|>\\n\\n{{ m.content }}<|eot_id|>{% endfor %}\"}";
    write_text(cfg, config, strlen(config));
    for (int pairs = 0; pairs < 2; pairs++) {
        write_hf_json(g, path, hf_llama3_pre, hf_llama3_post, 1, pairs);
        bn_tokenizer *t = NULL;
        CHECK_MSG(bn_tokenizer_from_hf_json(path, &t) == BITNET_OK, "%s", bitnet_last_error());
        if (!t) continue;
        CHECK_EQ_INT(bn_tokenizer_n_vocab(t), 128256);
        CHECK_EQ_INT(bn_tokenizer_bos(t), 128000);
        CHECK_EQ_INT(bn_tokenizer_eos(t), 128009);
        CHECK_EQ_INT(bn_tokenizer_add_bos(t), 1);
        CHECK(bn_tokenizer_chat_template(t) && strstr(bn_tokenizer_chat_template(t), "<|start_header_id|>{{ m.role }}"));
        CHECK(run_vectors(t, "ggml-vocab-llama-bpe.gguf") > 0);
        int32_t ids[8];
        CHECK_EQ_INT(bn_tokenizer_encode_ex(t, "<|eot_id|>", 10, 0, 1, ids, 8), 1);
        CHECK_EQ_INT(ids[0], 128009);
        bn_tokenizer_free(t);
    }
    remove(path);
    remove(cfg);
    rmdir(dir);
    bn_gguf_close(g);
    free(buf);
}

/* A Hugging Face checkpoint directory (model.safetensors + tokenizer.json)
 * loads without --tokenizer and tokenizes as its GGUF does. */
TEST_E2E(tokenizer_hf_json_found_beside_a_checkpoint) {
    const char *tik = bn_test_shared("tokenizers/llama3-tiktoken.model");
    if (!tik) SKIP("tokenizers/llama3-tiktoken.model not available");
    char cmd[2048];
    const char *gg = bn_test_tmp(".gguf");
    snprintf(cmd, sizeof cmd, "convert --synthetic custom --dim 128 --ff 256 --layers 1 --heads 2 --kv-heads 1 "
             "--vocab-size 128256 --vocab %s -o %s 2>&1", tik, gg);
    int st = -1;
    char *out = bn_test_run_tool(cmd, NULL, &st);
    CHECK_MSG(st == 0, "convert: %s", out ? out : "");
    free(out);
    bitnet_model *a = NULL, *b = NULL;
    REQUIRE(bitnet_model_load(gg, NULL, &a) == BITNET_OK);
    char *dir = tmp_dir(), path[600], tj[600];
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    snprintf(tj, sizeof tj, "%s/tokenizer.json", dir);
    CHECK_EQ_INT(bn_safetensors_write_model(a, path), BITNET_OK);
    bn_gguf_file *g = NULL;
    REQUIRE(bn_gguf_open(gg, &g) == BITNET_OK);
    write_hf_json(g, tj, hf_llama3_pre, hf_llama3_post, 1, 0);
    bn_gguf_close(g);
    CHECK_MSG(bitnet_model_load(dir, NULL, &b) == BITNET_OK, "%s", bitnet_last_error());
    if (b) {
        static const char text[] = "Hello world, it's 2026!\n\tDone.";
        bitnet_token ta[64], tb[64];
        const int na = bitnet_tokenize(a, text, 1, ta, 64), nb = bitnet_tokenize(b, text, 1, tb, 64);
        CHECK(na > 5 && same(ta, na, tb, nb));
        CHECK_EQ_INT(tb[0], 128000);
    }
    /* a broken tokenizer.json beside it is an error naming it, not "no vocabulary" */
    write_text(tj, "{\"model\": 1}", 12);
    bitnet_model_free(b);
    b = NULL;
    CHECK(bitnet_model_load(dir, NULL, &b) != BITNET_OK && strstr(bitnet_last_error(), tj) &&
          strstr(bitnet_last_error(), "no \"model\" object"));
    bitnet_model_free(a);
    bitnet_model_free(b);
    remove(tj);
    remove(path);
    rmdir(dir);
}

/* Each wrong or unsupported tokenizer.json: one line naming the file and the field. */
TEST(tokenizer_hf_json_bad_input) {
    static const char *const cases[][2] = {
        {"{\"model\": {\"type\": \"Unigram\", \"vocab\": []}}", "model.type \"Unigram\" is not supported"},
        {"{\"model\": {\"type\": \"BPE\", \"byte_fallback\": true, \"vocab\": {}, \"merges\": []}}", "model.byte_fallback"},
        {"{\"pre_tokenizer\": {\"type\": \"Metaspace\"}, \"model\": {\"type\": \"BPE\", \"vocab\": {}, \"merges\": []}}",
         "pre_tokenizer is not ByteLevel or a Sequence"},
        {"{\"pre_tokenizer\": {\"type\": \"ByteLevel\", \"use_regex\": true}, \"model\": {\"type\": \"BPE\", "
         "\"vocab\": {\"a\": 0, \"c\": 2}, \"merges\": []}}", "id 2 with only 2 tokens"},
        {"{\"pre_tokenizer\": {\"type\": \"ByteLevel\", \"use_regex\": true}, \"model\": {\"type\": \"BPE\", "
         "\"vocab\": {\"a\": 0, \"c\": 2}, \"merges\": []}, \"added_tokens\": [{\"id\": 0, \"content\": \"a\"}]}",
         "id 1 has no token"},
        {"{\"pre_tokenizer\": {\"type\": \"ByteLevel\", \"use_regex\": true}, \"model\": {\"type\": \"BPE\", "
         "\"vocab\": {\"a\": 0}, \"merges\": []}, \"added_tokens\": [{\"id\": 0, \"content\": \"b\"}]}",
         "id 0 is given to two different tokens"},
        {"{\"pre_tokenizer\": {\"type\": \"ByteLevel\", \"use_regex\": true}, \"model\": {\"type\": \"BPE\", "
         "\"vocab\": {\"a\": 0.5}, \"merges\": []}}", "model.vocab: id 0.5 is not a whole number"},
        {"{\"pre_tokenizer\": {\"type\": \"ByteLevel\", \"use_regex\": true}, \"model\": {\"type\": \"BPE\", "
         "\"vocab\": {\"a\": 0, \"b\": -1e300}, \"merges\": []}}", "model.vocab: id -1e+300 is not a whole number in 0..0"},
        {"{\"pre_tokenizer\": {\"type\": \"ByteLevel\", \"use_regex\": true}, \"model\": {\"type\": \"BPE\", "
         "\"vocab\": {\"a\": 0, \"b\": 1}, \"merges\": [1]}}", "model.merges[0] is neither"},
        {"{\"pre_tokenizer\": {\"type\": \"ByteLevel\", \"use_regex\": true}, \"model\": {\"type\": \"BPE\", "
         "\"vocab\": {\"a\": \"x\"}, \"merges\": []}}", "is a string, not an id"},
        {"{\"model\": {\"type\": \"BPE\"", "line 1, column"},
        {"[]", "not a JSON object"},
    };
    char *dir = tmp_dir(), path[600], cfg[600];
    snprintf(path, sizeof path, "%s/tokenizer.json", dir);
    snprintf(cfg, sizeof cfg, "%s/tokenizer_config.json", dir);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        write_text(path, cases[i][0], strlen(cases[i][0]));
        bn_tokenizer *t = NULL; /* through the detecting entry point, except the one that does not look like JSON */
        CHECK((cases[i][0][0] == '{' ? bn_tokenizer_load_file(path, &t) : bn_tokenizer_from_hf_json(path, &t)) != BITNET_OK &&
              t == NULL);
        const char *e = bitnet_last_error();
        CHECK_MSG(strncmp(e, path, strlen(path)) == 0 && strstr(e, cases[i][1]) && !strchr(e, '\n'), "case %zu: %s", i, e);
    }
    /* tokenizer_config.json naming a BOS that is not a token */
    static const char ok[] = "{\"pre_tokenizer\": {\"type\": \"ByteLevel\", \"use_regex\": true}, \"model\": {\"type\": "
                             "\"BPE\", \"vocab\": {\"a\": 0, \"b\": 1, \"ab\": 2}, \"merges\": [\"a b\"]}}";
    write_text(path, ok, strlen(ok));
    write_text(cfg, "{\"bos_token\": \"<s>\"}", 20);
    bn_tokenizer *t = NULL;
    CHECK(bn_tokenizer_from_hf_json(path, &t) != BITNET_OK && strstr(bitnet_last_error(), "bos_token \"<s>\" is not a token"));
    write_text(cfg, "{\"bos_token\": ", 14);
    CHECK(bn_tokenizer_from_hf_json(path, &t) != BITNET_OK && strstr(bitnet_last_error(), cfg));
    remove(cfg);
    CHECK_MSG(bn_tokenizer_from_hf_json(path, &t) == BITNET_OK, "%s", bitnet_last_error());
    if (t) {
        int32_t ids[4];
        CHECK_EQ_INT(bn_tokenizer_encode(t, "ab", 2, 0, ids, 4), 1);
        CHECK_EQ_INT(ids[0], 2);
    }
    bn_tokenizer_free(t);
    remove(path);
    rmdir(dir);
}

/* Frees the shared tokenizers (the last test of this file, by registration order). */
TEST(tokenizer_bpe_zz_cleanup) {
    bn_tokenizer_free(g_llama3);
    g_llama3 = NULL;
    bn_tokenizer_free(g_gpt2);
    g_gpt2 = NULL;
    bn_gguf_close(g_gpt2_file);
    g_gpt2_file = NULL;
}

/* A GGUF vocabulary whose tokenizer.ggml.pre is "qwen2" (Qwen2/Qwen3 files;
 * here Llama-3's tokens and merges): digits become one token each, the rest
 * splits as Llama-3's; the HF tokenizer.json with Qwen2's Split regex maps to
 * the same pre-tokenizer. */
TEST(tokenizer_bpe_qwen2_pre_tokenizer) {
    bn_tokenizer *t = llama3();
    if (!t) SKIP("tokenizers/llama3-tiktoken.model not available");
    bn_gguf_writer *w = bn_gguf_writer_new();
    uint8_t *buf = NULL;
    uint64_t size = 0;
    bn_gguf_file *f = NULL;
    CHECK_EQ_INT(bn_tokenizer_write_gguf(t, w), BITNET_OK);
    bn_gguf_writer_set_str(w, "tokenizer.ggml.pre", "qwen2");
    bn_gguf_writer_set_bool(w, "tokenizer.ggml.add_bos_token", false); /* as Qwen's files say */
    CHECK_EQ_INT(bn_gguf_writer_write_memory(w, &buf, &size), BITNET_OK);
    bn_gguf_writer_free(w);
    if (buf) CHECK_EQ_INT(bn_gguf_open_memory(buf, size, "qwen2.gguf", &f), BITNET_OK);
    bn_tokenizer *q = NULL;
    if (f) CHECK_MSG(bn_tokenizer_from_gguf(f, &q) == BITNET_OK, "%s", bitnet_last_error());
    if (q) {
        int32_t a[16], b[16];
        const char *text = "Hello world 12345";
        int na = bn_tokenizer_encode(q, text, strlen(text), 0, a, 16), nb = bn_tokenizer_encode(t, text, strlen(text), 0, b, 16);
        /* Llama-3: Hello, world, " ", 123, 45; Qwen2: the same, digits 1 2 3 4 5 (ids 16..20) */
        CHECK_EQ_INT(nb, 5);
        CHECK_EQ_INT(na, 8);
        CHECK_EQ_INT(bn_tokenizer_add_bos(q), 0);
        CHECK(na == 8 && nb == 5 && a[0] == b[0] && a[1] == b[1] && a[2] == b[2]);
        for (int i = 0; na == 8 && i < 5; i++) CHECK_EQ_INT(a[3 + i], 16 + i);
        bn_tokenizer_free(q);
    }
    /* tokenizer.json: Qwen2's Split regex is recognised as "qwen2" */
    char *dir = tmp_dir(), path[600];
    snprintf(path, sizeof path, "%s/tokenizer.json", dir);
    static const char qwen2_pre[] =
        "{\"type\": \"Sequence\", \"pretokenizers\": [{\"type\": \"Split\", \"pattern\": {\"Regex\": "
        "\"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\\\r\\\\n\\\\p{L}\\\\p{N}]?\\\\p{L}+|\\\\p{N}| ?[^\\\\s\\\\p{L}\\\\p{N}]+"
        "[\\\\r\\\\n]*|\\\\s*[\\\\r\\\\n]+|\\\\s+(?!\\\\S)|\\\\s+\"}, \"behavior\": \"Isolated\", \"invert\": false}, "
        "{\"type\": \"ByteLevel\", \"add_prefix_space\": false, \"trim_offsets\": false, \"use_regex\": false}]}";
    if (f) write_hf_json(f, path, qwen2_pre, NULL, 0, 0);
    bn_tokenizer *h = NULL;
    CHECK_MSG(bn_tokenizer_from_hf_json(path, &h) == BITNET_OK, "%s", bitnet_last_error());
    if (h) {
        int32_t ids[16];
        CHECK_EQ_INT(bn_tokenizer_encode(h, "x 2024", 6, 0, ids, 16), 6); /* x, ' ', 2, 0, 2, 4 */
        bn_tokenizer_free(h);
    }
    remove(path);
    rmdir(dir);
    bn_gguf_close(f);
    free(buf);
}
