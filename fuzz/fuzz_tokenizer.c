/* fuzz_tokenizer.c - libFuzzer target for the tokenizers: SentencePiece
 * (src/tokenizer/tokenizer.c) and byte-level BPE (src/tokenizer/tokenizer_bpe.c). Hostile text
 * through real vocabularies, and hostile vocabularies (llama2.c tokenizer.bin,
 * GGUF tokenizer.ggml.* of either model, tiktoken rank files) with text.
 *
 * The first input byte picks the mode (the rest is "the rest"):
 *   0  encode the rest with the embedded default model's vocabulary (tok512),
 *      decode the ids, and check that the pieces spell the text back
 *   1  same with llama.cpp's 32000-token SPM test vocabulary when
 *      ../shared/tokenizers/ggml-vocab-llama-spm.gguf exists (else mode 0)
 *   2  the rest is "n_vocab (2 bytes) | text length (1 byte) | tokenizer.bin |
 *      text": load the hostile vocabulary, encode, decode every id
 *   3  the rest is a GGUF file: load its tokenizer.ggml.* vocabulary ("llama"
 *      or "gpt2"), encode a fixed text, decode every id
 *   4  encode the rest with GPT-2's BPE vocabulary, 5 with Llama-3's (from
 *      ../shared/tokenizers when present, else mode 0); when the text is
 *      valid UTF-8 the pieces must spell it back
 *   6  the rest is a tiktoken rank file
 *   7  encode the rest with tok512 with special-token parsing (encode_ex)
 *   a first byte >= 0xf0: the rest is a Hugging Face tokenizer.json */
#include "fuzz.h"
#include "formats/gguf.h"
#include "formats/json.h"
#include "model/model.h"
#include "tokenizer/tokenizer.h"

static bitnet_model *g_default; /* kept for the whole run (not a leak) */
static const bn_tokenizer *g_tok512, *g_spm, *g_gpt2, *g_llama3;

/* A vocabulary file of ../shared/tokenizers (any format), or NULL. */
static const bn_tokenizer *load_shared(const char *file) {
    const char *root = getenv("BITNET_SHARED");
    char path[4096];
    snprintf(path, sizeof path, "%s/tokenizers/%s", root && *root ? root : "../shared", file);
    bn_tokenizer *t = NULL;
    return bn_tokenizer_load_file(path, &t) == BITNET_OK ? t : NULL;
}

static void init(void) {
    static int done;
    if (done) return;
    done = 1;
    if (bitnet_model_load_default(NULL, &g_default) != BITNET_OK)
        fuzz_fail("cannot load the default model", bitnet_last_error());
    g_tok512 = g_default->tok;
    g_spm = load_shared("ggml-vocab-llama-spm.gguf");
    g_gpt2 = load_shared("ggml-vocab-gpt-2.gguf");
    g_llama3 = load_shared("llama3-tiktoken.model");
}

/* Encodes (special-token parsing: special), then decodes every id; returns the token count. */
static int encode_decode(const bn_tokenizer *t, const char *text, size_t len, int special, int check_round_trip) {
    int cap = (int)len + 8; /* every byte at worst one token, + BOS */
    int32_t *ids = malloc((size_t)cap * sizeof *ids);
    char *back = malloc(len + 2);
    if (!ids || !back) abort();
    const int add_bos = bn_tokenizer_bos(t) >= 0; /* a vocabulary may have none (GPT-2 style tokenizer.json) */
    int n = bn_tokenizer_encode_ex(t, text, len, add_bos, special, ids, cap);
    if (n < 0) fuzz_fail("encode failed with room for one token per byte", bitnet_last_error());
    size_t got = 0;
    int overflow = 0;
    for (int i = 0; i < n; i++) {
        if (ids[i] < 0 || ids[i] >= bn_tokenizer_n_vocab(t)) fuzz_fail("encode returned an id outside the vocabulary", "");
        int plen = 0;
        const char *p = bn_tokenizer_piece(t, -1, ids[i], &plen);
        if (!p || plen < 0) fuzz_fail("no piece for an id in range", "");
        fuzz_touch(p, (uint64_t)plen);
        if (i == 0 && add_bos) continue; /* BOS */
        if (got + (size_t)plen > len + 1) overflow = 1;
        else memcpy(back + got, p, (size_t)plen), got += (size_t)plen;
    }
    /* With byte fallback the pieces spell the text (after the dummy-prefix
     * space) exactly. A text containing '<' may merge into a "<0xXX>" piece,
     * which decodes to its byte, so those are not compared. */
    if (check_round_trip && len > 0 && !memchr(text, '<', len)) {
        int pre = back[0] == ' ' && got == len + 1;
        if (overflow || got != len + (size_t)pre || memcmp(back + pre, text, len) != 0)
            fuzz_fail("decode(encode(text)) != text", "");
    }
    if (n > 0 && bn_tokenizer_encode_ex(t, text, len, add_bos, special, ids, n - 1) != BITNET_ERR_ARG)
        fuzz_fail("encode into a buffer one token short did not fail", "");
    free(ids);
    free(back);
    return n;
}

static void decode_all(const bn_tokenizer *t) {
    const int n = bn_tokenizer_n_vocab(t);
    for (int id = -1; id <= n; id++) {
        int plen = 0;
        const char *p = bn_tokenizer_piece(t, bn_tokenizer_bos(t), id, &plen);
        if ((id < 0 || id == n) != (p == NULL)) fuzz_fail("piece() range check", "");
        if (p) fuzz_touch(p, (uint64_t)plen);
    }
}

/* A hostile vocabulary file: refused with a proper message, or it encodes
 * TEXT (special-token parsing: special) and decodes every id; then freed. */
static void check_vocab(bitnet_status st, bn_tokenizer *t, const char *name, const char *text, size_t len, int special) {
    if (st != BITNET_OK) {
        fuzz_check_error(st, name);
        return;
    }
    encode_decode(t, text, len, special, 0);
    decode_all(t);
    bn_tokenizer_free(t);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    init();
    if (size < 1) return 0;
    uint8_t mode = data[0] >= 0xf0 ? 8 : data[0] % 8;
    const char *rest = (const char *)data + 1;
    size_t n = size - 1;
    const bn_tokenizer *shared[6] = {[1] = g_spm, [4] = g_gpt2, [5] = g_llama3};
    if ((mode == 1 || mode == 4 || mode == 5) && !shared[mode]) mode = 0;
    if (mode == 0) {
        encode_decode(g_tok512, rest, n, 0, 1);
    } else if (mode == 1) {
        encode_decode(g_spm, rest, n, 0, 1);
    } else if (mode == 4 || mode == 5) { /* byte-level BPE: exact for valid UTF-8 */
        encode_decode(shared[mode], rest, n, 0, bn_utf8_valid(rest, n));
    } else if (mode == 7) {
        encode_decode(g_tok512, rest, n, 1, 0);
    } else if (mode == 8) {
        bn_tokenizer *t = NULL;
        bitnet_status st = bn_tokenizer_from_hf_json_memory(rest, n, "fuzz/tokenizer.json", &t);
        check_vocab(st, t, "fuzz/tokenizer.json", "Once upon a time \xf0\x9f\x98\x80 <|x|>", 26, 1);
    } else if (mode == 6) {
        bn_tokenizer *t = NULL;
        bitnet_status st = bn_tokenizer_from_tiktoken_memory(rest, n, "fuzz.tiktoken", &t);
        check_vocab(st, t, "fuzz.tiktoken", "Once upon a time \xf0\x9f\x98\x80", 21, 1);
    } else if (mode == 2) {
        if (n < 3) return 0;
        int n_vocab = 3 + (data[1] | data[2] << 8) % 1024;
        size_t tlen = BN_MIN((size_t)data[3], n - 3);
        const char *file = rest + 3, *text = rest + n - tlen;
        bn_tokenizer *t = NULL;
        bitnet_status st = bn_tokenizer_from_llama2c_memory(file, n - 3 - tlen, "fuzz.bin", n_vocab, &t);
        check_vocab(st, t, "fuzz.bin", text, tlen, 0);
    } else {
        bn_gguf_file *f = NULL;
        if (bn_gguf_open_memory(rest, n, "fuzz.gguf", &f) != BITNET_OK) return 0;
        bn_tokenizer *t = NULL;
        bitnet_status st = bn_tokenizer_from_gguf(f, &t);
        if (st != BITNET_OK) {
            fuzz_check_error(st, "fuzz.gguf");
        } else {
            static const char text[] = "Once upon a time, \xe2\x96\x81 caf\xc3\xa9 \xf0\x9f\x98\x80 \xff\xfe <0x41>";
            encode_decode(t, text, sizeof text - 1, 1, 0);
            decode_all(t);
            /* a hostile tokenizer.chat_template: recognised by its parts, or refused */
            const char *tmpl = bn_tokenizer_chat_template(t);
            static const bitnet_chat_message msgs[2] = {{"system", "S"}, {"user", "U \xff"}};
            char buf[512];
            if (tmpl) {
                int k = bitnet_chat_apply_template(tmpl, msgs, 2, 1, buf, sizeof buf);
                if (k < 0 && k != BITNET_ERR_UNSUPPORTED) fuzz_fail("chat template failed", bitnet_last_error());
            }
            bn_tokenizer_free(t);
        }
        bn_gguf_close(f);
    }
    return 0;
}
