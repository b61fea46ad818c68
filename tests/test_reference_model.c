/* test_reference_model.c - our own BitNet b1.58 reference model
 * (tests/fixtures/bitnet-ref/, trained and exported by tools/train/train_bitnet.py)
 * must give the logits PyTorch computed for it, and the same greedy tokens.
 *
 * expected.bin (little-endian): "BNRF", u32 version (1), u32 n_seq, u32 vocab;
 * per sequence: u32 text_len, the prompt text, u32 n_prompt, u32 n_total,
 * i32 tokens[n_total] (BOS + prompt, then PyTorch's greedy continuation),
 * f32 logits[n_total][vocab] (every position).
 *
 * The PyTorch reference emulates the runtime's float32 arithmetic op for op
 * (sequential sums, quantize_absmax, exact int32 ternary dots), so the only
 * expected differences come from the float classifier's SIMD summation order:
 * observed max |C - PyTorch| 8.6e-6 with max |logit| 15.7 (5.5e-7 relative).
 * The bound asserted is 1e-4 * max|logit|, far below what one flipped int8 activation would cause. */
#include <stdint.h>

#include "bitnet.h"
#include "model/context.h" /* ctx->kern: run every kernel table this CPU supports */
#include "kernels/kernels.h"
#include "test.h"

#define REF_DIR "tests/fixtures/bitnet-ref/"
#define REF_REL_TOL 1e-4

typedef struct {
    char text[256];
    int n_prompt, n_total;
    bitnet_token *tokens;
    float *logits;
} ref_seq;

static uint32_t rd_u32(const unsigned char *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* Parses expected.bin into seqs (pointing into buf); returns n_seq or -1. */
static int parse_expected(const unsigned char *buf, size_t len, int vocab, ref_seq *seqs, int cap) {
    if (len < 16 || memcmp(buf, "BNRF", 4) != 0 || rd_u32(buf + 4) != 1) return -1;
    int n = (int)rd_u32(buf + 8);
    if ((int)rd_u32(buf + 12) != vocab || n < 1 || n > cap) return -1;
    size_t o = 16;
    for (int s = 0; s < n; s++) {
        if (o + 4 > len) return -1;
        uint32_t tl = rd_u32(buf + o);
        o += 4;
        if (tl >= sizeof seqs[s].text || o + tl + 8 > len) return -1;
        memcpy(seqs[s].text, buf + o, tl);
        seqs[s].text[tl] = 0;
        o += tl;
        seqs[s].n_prompt = (int)rd_u32(buf + o);
        seqs[s].n_total = (int)rd_u32(buf + o + 4);
        o += 8;
        int nt = seqs[s].n_total;
        if (nt < 2 || nt > 4096 || seqs[s].n_prompt < 1 || seqs[s].n_prompt > nt) return -1;
        size_t need = (size_t)nt * 4 + (size_t)nt * vocab * 4;
        if (o + need > len) return -1;
        seqs[s].tokens = malloc((size_t)nt * sizeof(bitnet_token));
        seqs[s].logits = malloc((size_t)nt * vocab * sizeof(float));
        for (int i = 0; i < nt; i++) seqs[s].tokens[i] = (bitnet_token)(int32_t)rd_u32(buf + o + 4 * (size_t)i);
        o += (size_t)nt * 4;
        memcpy(seqs[s].logits, buf + o, (size_t)nt * vocab * 4); /* little-endian host assumed (x86, arm64) */
        o += (size_t)nt * vocab * 4;
    }
    return o == len ? n : -1;
}

static int argmax(const float *x, int n) {
    int b = 0;
    for (int i = 1; i < n; i++)
        if (x[i] > x[b]) b = i;
    return b;
}

TEST(reference_model_matches_pytorch) {
    const char *model_path = bn_test_repo(REF_DIR "model.gguf");
    const char *exp_path = bn_test_repo(REF_DIR "expected.bin");
    size_t len = 0;
    unsigned char *buf = (unsigned char *)bn_test_read_file(exp_path, &len);
    if (!buf) SKIP("tests/fixtures/bitnet-ref/expected.bin not found");

    bitnet_model *m = NULL;
    CHECK_MSG(bitnet_model_load(model_path, NULL, &m) == BITNET_OK, "load %s: %s", model_path, bitnet_last_error());
    if (!m) {
        free(buf);
        return;
    }
    bitnet_model_info info;
    bitnet_model_get_info(m, &info);
    CHECK_STR(info.arch, "bitnet-b1.58");
    const int vocab = bitnet_n_vocab(m);
    CHECK_EQ_INT(vocab, 512);

    ref_seq seqs[8];
    memset(seqs, 0, sizeof seqs);
    int n_seq = parse_expected(buf, len, vocab, seqs, 8);
    CHECK_MSG(n_seq > 0, "bad %s", exp_path);

    double max_err = 0.0, max_logit = 0.0;
    int greedy_bad = 0;
    for (int s = 0; s < n_seq; s++) {
        ref_seq *q = &seqs[s];
        for (size_t i = 0; i < (size_t)q->n_total * vocab; i++)
            if (fabs(q->logits[i]) > max_logit) max_logit = fabs(q->logits[i]);

        /* the runtime's tokenizer gives the fixture's prompt tokens */
        bitnet_token toks[256];
        int nt = bitnet_tokenize(m, q->text, 1, toks, 256);
        CHECK_EQ_INT(nt, q->n_prompt);
        for (int i = 0; i < nt && i < q->n_prompt; i++) CHECK_EQ_INT(toks[i], q->tokens[i]);

        /* every kernel table (scalar, avx2, avx512, neon...), each with 1 and 2
         * threads batched (i2_gemm, n_batch 64) and one token per call (i2_gemv) */
        const bn_kernels *tabs[8];
        const int n_tabs = bn_kernels_list(tabs, 8);
        for (int mode = 0; mode < 3 * n_tabs; mode++) {
            bitnet_context_params cp = bitnet_context_default_params();
            cp.n_ctx = 256;
            cp.n_threads = mode % 3 == 1 ? 2 : 1;
            cp.n_batch = mode % 3 == 2 ? 1 : 64;
            cp.kv_type = BITNET_KV_F32; /* the reference repeats the runtime's float32 arithmetic */
            bitnet_context *c = NULL;
            CHECK_MSG(bitnet_context_new(m, &cp, &c) == BITNET_OK, "context: %s", bitnet_last_error());
            if (!c) continue;
            c->kern = tabs[mode / 3];
            float *out = malloc((size_t)q->n_total * vocab * sizeof(float));
            CHECK(bitnet_eval_all_logits(c, q->tokens, q->n_total, 0, out) == BITNET_OK);
            for (int t = 0; t < q->n_total; t++) {
                for (int v = 0; v < vocab; v++) {
                    double e = fabs((double)out[(size_t)t * vocab + v] - q->logits[(size_t)t * vocab + v]);
                    if (!(e <= max_err)) max_err = e; /* NaN-safe */
                }
                /* greedy continuation: argmax at t predicts token t+1 */
                if (t >= q->n_prompt - 1 && t + 1 < q->n_total &&
                    argmax(out + (size_t)t * vocab, vocab) != q->tokens[t + 1])
                    greedy_bad++;
            }
            free(out);
            bitnet_context_free(c);
        }
    }
    fprintf(stderr, "  reference model: %d sequences, max |logit| %.3f, max |C - PyTorch| %.3g (%.3g relative)\n",
            n_seq, max_logit, max_err, max_err / (max_logit > 1.0 ? max_logit : 1.0));
    CHECK_MSG(max_err <= REF_REL_TOL * (max_logit > 1.0 ? max_logit : 1.0),
              "max |C - PyTorch| logit error %g exceeds %g * %g", max_err, REF_REL_TOL, max_logit);
    CHECK_EQ_INT(greedy_bad, 0);

    for (int s = 0; s < 8; s++) { /* all: a failed parse may leave some allocated */
        free(seqs[s].tokens);
        free(seqs[s].logits);
    }
    bitnet_model_free(m);
    free(buf);
}
