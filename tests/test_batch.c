/* test_batch.c - multi-sequence decoding (bitnet_eval_batch) must give every
 * sequence exactly the logits it gets alone in its own context. */
#include <math.h>

#include "bitnet.h"
#include "model/context.h"
#include "model/model_writer.h"
#include "test.h"

#define N_SEQ 3
#define STEPS 24

static const char *prompts[N_SEQ] = {"Once upon a time", "The cat sat", "Lily and Ben went to the park and"};

/* Greedy continuation of every prompt, each alone in a one-sequence context. */
static void run_alone(bitnet_model *m, int n_threads, bitnet_token out[N_SEQ][STEPS], float *last_logits) {
    const int nv = bitnet_n_vocab(m);
    for (int s = 0; s < N_SEQ; s++) {
        bitnet_context_params cp = bitnet_context_default_params();
        cp.n_ctx = 128;
        cp.n_threads = n_threads;
        bitnet_context *ctx = NULL;
        CHECK(bitnet_context_new(m, &cp, &ctx) == BITNET_OK);
        if (!ctx) return;
        bitnet_token toks[64];
        int n = bitnet_tokenize(m, prompts[s], 1, toks, 64);
        CHECK(n > 0);
        CHECK(bitnet_eval(ctx, toks, n, 0) == BITNET_OK);
        for (int i = 0; i < STEPS; i++) {
            const float *lg = bitnet_get_logits(ctx);
            int best = 0;
            for (int v = 1; v < nv; v++) best = lg[v] > lg[best] ? v : best;
            out[s][i] = best;
            CHECK(bitnet_eval(ctx, &out[s][i], 1, n + i) == BITNET_OK);
        }
        memcpy(last_logits + (size_t)s * nv, bitnet_get_logits(ctx), (size_t)nv * sizeof(float));
        bitnet_context_free(ctx);
    }
}

/* The same continuations from one context with N_SEQ sequences: the prompts are
 * evaluated in one mixed batch, then every step decodes all sequences at once. */
static void run_batched(bitnet_model *m, int n_threads, bitnet_token out[N_SEQ][STEPS], float *last_logits) {
    const int nv = bitnet_n_vocab(m);
    bitnet_context_params cp = bitnet_context_default_params();
    cp.n_ctx = 128;
    cp.n_seq = N_SEQ;
    cp.n_threads = n_threads;
    cp.n_batch = 16; /* smaller than the prompts together: the batch is split */
    bitnet_context *ctx = NULL;
    CHECK(bitnet_context_new(m, &cp, &ctx) == BITNET_OK);
    if (!ctx) return;
    CHECK_EQ_INT(bitnet_n_seq(ctx), N_SEQ);
    bitnet_token toks[3 * 64];
    int pos[3 * 64], seq[3 * 64], n = 0, len[N_SEQ];
    for (int s = 0; s < N_SEQ; s++) {
        len[s] = bitnet_tokenize(m, prompts[s], 1, toks + n, 64);
        CHECK(len[s] > 0);
        for (int i = 0; i < len[s]; i++) pos[n + i] = i, seq[n + i] = s;
        n += len[s];
    }
    CHECK(bitnet_eval_batch(ctx, toks, pos, seq, n) == BITNET_OK);
    for (int i = 0; i < STEPS; i++) {
        bitnet_token step[N_SEQ];
        int spos[N_SEQ], sseq[N_SEQ];
        for (int s = 0; s < N_SEQ; s++) {
            const float *lg = bitnet_get_logits_seq(ctx, s);
            int best = 0;
            for (int v = 1; v < nv; v++) best = lg[v] > lg[best] ? v : best;
            out[s][i] = step[s] = best;
            spos[s] = len[s] + i;
            sseq[N_SEQ - 1 - s] = s; /* any order within the step */
        }
        bitnet_token step_rev[N_SEQ];
        int spos_rev[N_SEQ];
        for (int k = 0; k < N_SEQ; k++) step_rev[k] = step[sseq[k]], spos_rev[k] = spos[sseq[k]];
        CHECK(bitnet_eval_batch(ctx, step_rev, spos_rev, sseq, N_SEQ) == BITNET_OK);
    }
    for (int s = 0; s < N_SEQ; s++)
        memcpy(last_logits + (size_t)s * nv, bitnet_get_logits_seq(ctx, s), (size_t)nv * sizeof(float));
    CHECK(bitnet_get_logits_seq(ctx, N_SEQ) == NULL);
    bitnet_context_free(ctx);
}

static void check_model(bitnet_model *m) {
    const int nv = bitnet_n_vocab(m);
    float *a = malloc((size_t)N_SEQ * nv * sizeof(float)), *b = malloc((size_t)N_SEQ * nv * sizeof(float));
    for (int threads = 1; threads <= 2; threads++) {
        bitnet_token alone[N_SEQ][STEPS], batched[N_SEQ][STEPS];
        run_alone(m, threads, alone, a);
        run_batched(m, threads, batched, b);
        CHECK(memcmp(alone, batched, sizeof alone) == 0);
        CHECK_MSG(memcmp(a, b, (size_t)N_SEQ * nv * sizeof(float)) == 0,
                  "batched logits differ from single-sequence logits (%d threads)", threads);
    }
    free(a);
    free(b);
}

TEST(batch_matches_single_sequences_default_model) {
    bitnet_model *m = NULL;
    CHECK(bitnet_model_load_default(NULL, &m) == BITNET_OK);
    if (!m) return;
    check_model(m);
    bitnet_model_free(m);
}

TEST(batch_matches_single_sequences_llama) {
    const char *path = bn_test_shared("models/stories260K.gguf");
    if (!path) { bn_test_skip("../shared/models/stories260K.gguf not found"); return; }
    bitnet_model *m = NULL;
    CHECK(bitnet_model_load(path, NULL, &m) == BITNET_OK);
    if (!m) return;
    check_model(m);
    bitnet_model_free(m);
}

TEST(batch_rejects_bad_batches) {
    bitnet_model *m = NULL;
    CHECK(bitnet_model_load_default(NULL, &m) == BITNET_OK);
    if (!m) return;
    bitnet_context_params cp = bitnet_context_default_params();
    cp.n_ctx = 16;
    cp.n_seq = 2;
    bitnet_context *ctx = NULL;
    CHECK(bitnet_context_new(m, &cp, &ctx) == BITNET_OK);
    bitnet_token t[3] = {1, 2, 3};
    int pos_ok[3] = {0, 1, 0}, seq_ok[3] = {0, 0, 1};
    CHECK(bitnet_eval_batch(ctx, t, pos_ok, seq_ok, 3) == BITNET_OK);

    int seq_bad[3] = {0, 0, 2};
    CHECK(bitnet_eval_batch(ctx, t, pos_ok, seq_bad, 3) == BITNET_ERR_ARG);
    CHECK(strstr(bitnet_last_error(), "sequence 2 is outside 0..1") != NULL);

    int pos_gap[3] = {0, 2, 0};
    CHECK(bitnet_eval_batch(ctx, t, pos_gap, seq_ok, 3) == BITNET_ERR_ARG);
    CHECK(strstr(bitnet_last_error(), "must be consecutive") != NULL);

    int pos_full[3] = {15, 16, 0};
    CHECK(bitnet_eval_batch(ctx, t, pos_full, seq_ok, 3) == BITNET_ERR_CONTEXT_FULL);
    CHECK(strstr(bitnet_last_error(), "--ctx-size 16") != NULL);

    int pos_neg[3] = {-1, 0, 0};
    CHECK(bitnet_eval_batch(ctx, t, pos_neg, seq_ok, 3) == BITNET_ERR_ARG);

    bitnet_token bad_tok[1] = {1 << 30};
    int p0[1] = {0}, s0[1] = {0};
    CHECK(bitnet_eval_batch(ctx, bad_tok, p0, s0, 1) == BITNET_ERR_ARG);
    CHECK(bitnet_eval_batch(ctx, t, p0, s0, 0) == BITNET_ERR_ARG);
    CHECK(bitnet_eval_batch(ctx, t, NULL, s0, 1) == BITNET_ERR_ARG);

    bitnet_context_free(ctx);
    cp.n_seq = 100000;
    CHECK(bitnet_context_new(m, &cp, &ctx) == BITNET_ERR_ARG);
    CHECK(ctx == NULL);
    bitnet_model_free(m);
}

/* bitnet_seq_cp: a prompt evaluated in sequence 0 and copied to sequence 1
 * continues there exactly as where it was evaluated (the same logits, bit for
 * bit), with every KV cache type; bad arguments are refused. */
TEST(batch_seq_cp_continues_a_copied_prefix) {
    bitnet_model *m = NULL;
    REQUIRE(bitnet_model_load_default(NULL, &m) == BITNET_OK);
    const int nv = bitnet_n_vocab(m);
    const bitnet_kv_type types[] = {BITNET_KV_F32, BITNET_KV_F16, BITNET_KV_Q8};
    for (int k = 0; k < 3; k++) {
        bitnet_context_params cp = bitnet_context_default_params();
        cp.n_ctx = 64;
        cp.n_seq = 2;
        cp.kv_type = types[k];
        bitnet_context *ctx = NULL;
        REQUIRE(bitnet_context_new(m, &cp, &ctx) == BITNET_OK);
        bitnet_token toks[32];
        const int n = bitnet_tokenize(m, "Lily and Ben went to the park", 1, toks, 32);
        REQUIRE(n > 4);
        /* sequence 1 first holds something else, so the copy must replace it */
        int pos[32], seq[32];
        for (int i = 0; i < n; i++) pos[i] = i, seq[i] = 1;
        bitnet_token other[32];
        for (int i = 0; i < n; i++) other[i] = (bitnet_token)((toks[i] * 7 + 3) % nv);
        CHECK(bitnet_eval_batch(ctx, other, pos, seq, n) == BITNET_OK);
        CHECK(bitnet_eval(ctx, toks, n, 0) == BITNET_OK); /* sequence 0 */
        CHECK(bitnet_seq_cp(ctx, 0, 1, 0, n - 1) == BITNET_OK);
        /* the last prompt token in both sequences, in one batch */
        bitnet_token last[2] = {toks[n - 1], toks[n - 1]};
        int lpos[2] = {n - 1, n - 1}, lseq[2] = {0, 1};
        CHECK(bitnet_eval_batch(ctx, last, lpos, lseq, 2) == BITNET_OK);
        CHECK_MSG(!memcmp(bitnet_get_logits_seq(ctx, 0), bitnet_get_logits_seq(ctx, 1), (size_t)nv * sizeof(float)),
                  "kv type %d: the copied prefix gives other logits", (int)types[k]);
        CHECK(bitnet_seq_cp(ctx, 0, 0, 0, 1) == BITNET_ERR_ARG);
        CHECK(bitnet_seq_cp(ctx, 0, 2, 0, 1) == BITNET_ERR_ARG);
        CHECK(bitnet_seq_cp(ctx, 0, 1, 3, 2) == BITNET_ERR_ARG);
        CHECK(bitnet_seq_cp(ctx, 0, 1, 0, 65) == BITNET_ERR_ARG);
        bitnet_context_free(ctx);
    }
    bitnet_model_free(m);
}

/* bitnet_seq_cp + bitnet_seq_rm: a fork. The prompt is copied to sequence 1,
 * sequence 0 goes on with one continuation and sequence 1 with another; then
 * sequence 0's continuation is removed and replaced. Every continuation's
 * logits equal a fresh context's evaluation of the same tokens (bit for bit:
 * the same passes in the same order). */
TEST(batch_seq_rm_and_fork_equal_fresh_evaluation) {
    bitnet_model *m = NULL;
    REQUIRE(bitnet_model_load_default(NULL, &m) == BITNET_OK);
    const int nv = bitnet_n_vocab(m);
    bitnet_context_params cp = bitnet_context_default_params();
    cp.n_ctx = 64;
    cp.n_seq = 2;
    bitnet_context *ctx = NULL, *fresh = NULL;
    REQUIRE(bitnet_context_new(m, &cp, &ctx) == BITNET_OK);
    cp.n_seq = 1;
    REQUIRE(bitnet_context_new(m, &cp, &fresh) == BITNET_OK);
    bitnet_token prompt[32], a[16], b[16], c[16];
    const int n = bitnet_tokenize(m, "Lily and Ben went to the park", 1, prompt, 32);
    const int na = bitnet_tokenize(m, " and they played with a ball", 0, a, 16);
    const int nb = bitnet_tokenize(m, " but it started to rain", 0, b, 16);
    const int nc = bitnet_tokenize(m, " so they ran home", 0, c, 16);
    REQUIRE(n > 4 && na > 2 && nb > 2 && nc > 2);
    float *want = malloc((size_t)nv * sizeof *want);
    REQUIRE(want != NULL);
    /* fresh: the prompt in one batch, then each continuation token by token; returns the last logits */
#define FRESH(cont, ncont)                                                              \
    do {                                                                                \
        REQUIRE(bitnet_eval(fresh, prompt, n, 0) == BITNET_OK);                         \
        for (int j_ = 0; j_ < (ncont); j_++) REQUIRE(bitnet_eval(fresh, &(cont)[j_], 1, n + j_) == BITNET_OK); \
        memcpy(want, bitnet_get_logits(fresh), (size_t)nv * sizeof *want);              \
    } while (0)
    REQUIRE(bitnet_eval(ctx, prompt, n, 0) == BITNET_OK);
    REQUIRE(bitnet_seq_cp(ctx, 0, 1, 0, n) == BITNET_OK);
    for (int i = 0; i < na || i < nb; i++) { /* both branches, one token each per batch while both last */
        bitnet_token t[2];
        int pos[2], seq[2], k = 0;
        if (i < na) t[k] = a[i], pos[k] = n + i, seq[k++] = 0;
        if (i < nb) t[k] = b[i], pos[k] = n + i, seq[k++] = 1;
        REQUIRE(bitnet_eval_batch(ctx, t, pos, seq, k) == BITNET_OK);
        if (i == na - 1) {
            FRESH(a, na);
            CHECK_MSG(!memcmp(bitnet_get_logits_seq(ctx, 0), want, (size_t)nv * sizeof *want), "branch a differs");
        }
        if (i == nb - 1) {
            FRESH(b, nb);
            CHECK_MSG(!memcmp(bitnet_get_logits_seq(ctx, 1), want, (size_t)nv * sizeof *want), "branch b differs");
        }
    }
    /* sequence 0: remove its continuation, go on with another from the same point */
    CHECK(bitnet_seq_rm(ctx, 0, n, -1) == BITNET_OK);
    for (int i = 0; i < nc; i++) {
        int pos = n + i, seq = 0;
        REQUIRE(bitnet_eval_batch(ctx, &c[i], &pos, &seq, 1) == BITNET_OK);
    }
    FRESH(c, nc);
    CHECK_MSG(!memcmp(bitnet_get_logits_seq(ctx, 0), want, (size_t)nv * sizeof *want), "the replaced continuation differs");
#undef FRESH
    CHECK(bitnet_seq_n_pos(ctx, 0) == n + nc && bitnet_seq_n_pos(ctx, 1) == n + nb && bitnet_seq_n_pos(ctx, 2) == -1);
    CHECK(bitnet_seq_rm(ctx, 2, 0, -1) == BITNET_ERR_ARG);
    CHECK(bitnet_seq_rm(ctx, 0, 65, -1) == BITNET_ERR_ARG);
    free(want);
    bitnet_context_free(fresh);
    bitnet_context_free(ctx);
    bitnet_model_free(m);
}

/* A middle range removed from a one-layer model: the keys and values of a
 * token in layer 0 depend only on the token and its position, so after the
 * shift the cache is a fresh evaluation's (keys up to the rounding of one
 * more rotation) and so are the next token's logits. */
static void check_shift_one_layer(bitnet_model *m, bitnet_kv_type kv, const bitnet_token *t, int n, int keep, int drop) {
    const int nv = bitnet_n_vocab(m);
    bitnet_context_params cp = bitnet_context_default_params();
    cp.n_ctx = 96;
    cp.kv_type = kv;
    bitnet_context *ctx = NULL, *fresh = NULL;
    REQUIRE(bitnet_context_new(m, &cp, &ctx) == BITNET_OK);
    REQUIRE(bitnet_context_new(m, &cp, &fresh) == BITNET_OK);
    REQUIRE(bitnet_eval(ctx, t, n - 1, 0) == BITNET_OK);
    CHECK(bitnet_seq_rm(ctx, 0, keep, keep + drop) == BITNET_OK);
    CHECK_EQ_INT(bitnet_seq_n_pos(ctx, 0), n - 1 - drop);
    REQUIRE(bitnet_eval(ctx, &t[n - 1], 1, n - 1 - drop) == BITNET_OK);
    bitnet_token rest[80];
    memcpy(rest, t, (size_t)keep * sizeof *t);
    memcpy(rest + keep, t + keep + drop, (size_t)(n - keep - drop) * sizeof *t);
    REQUIRE(bitnet_eval(fresh, rest, n - drop, 0) == BITNET_OK);
    const float *got = bitnet_get_logits(ctx), *want = bitnet_get_logits(fresh);
    float diff = 0.0f, range = 0.0f;
    for (int v = 0; v < nv; v++) {
        diff = fmaxf(diff, fabsf(got[v] - want[v]));
        range = fmaxf(range, fabsf(want[v]));
    }
    /* f32: one more rotation's rounding in each moved key; f16: those keys
     * are rounded to half once more (half an ulp of f16 is 2^-11) */
    const float tol = (kv == BITNET_KV_F32 ? 1e-5f : 2e-3f) * range;
    CHECK_MSG(diff <= tol, "kv %s: max |logit diff| %g, tolerance %g", bitnet_kv_type_name(kv), (double)diff, (double)tol);
    /* a range past the end is a no-op; a tail truncates; bad ranges are refused */
    CHECK(bitnet_seq_rm(ctx, 0, 90, -1) == BITNET_OK && bitnet_seq_n_pos(ctx, 0) == n - drop);
    CHECK(bitnet_seq_rm(ctx, 0, 3, -1) == BITNET_OK && bitnet_seq_n_pos(ctx, 0) == 3);
    CHECK(bitnet_seq_rm(ctx, 0, 5, 2) == BITNET_ERR_ARG && bitnet_seq_rm(ctx, 0, 0, 97) == BITNET_ERR_ARG);
    CHECK(bitnet_seq_keep(ctx, 0) == BITNET_OK && bitnet_seq_keep(ctx, 1) == BITNET_ERR_ARG);
    bitnet_context_free(fresh);
    bitnet_context_free(ctx);
}

/* bitnet_seq_rm of a middle range (a context shift) on a one-layer
 * bitnet-b1.58 model (neox RoPE) with f32 and f16 caches. */
TEST(batch_seq_rm_middle_equals_fresh_one_layer) {
    const char *path = bn_test_tmp(".gguf");
    bn_synthetic_shape sh = {"one layer", 128, 256, 1, 4, 2, 300, 256, 10000.0f};
    REQUIRE(bn_write_synthetic(&sh, NULL, NULL, path) == BITNET_OK);
    bitnet_model *m = NULL;
    REQUIRE(bitnet_model_load(path, NULL, &m) == BITNET_OK);
    bitnet_token t[64];
    for (int i = 0; i < 64; i++) t[i] = (bitnet_token)(3 + (i * 37) % 290);
    check_shift_one_layer(m, BITNET_KV_F32, t, 64, 5, 12);
    check_shift_one_layer(m, BITNET_KV_F16, t, 64, 1, 40);
    bitnet_model_free(m);
}

/* The same on models of several layers, where the moved tokens' deeper keys
 * and values still reflect the removed ones (as in llama.cpp's context shift):
 * layer 0's cache must be a fresh evaluation's, the kept prefix bit for bit in
 * every layer. The embedded ak42 model (its double RoPE) and stories260K
 * (llama, interleaved RoPE), f32 cache. */
TEST(batch_seq_rm_middle_moves_and_rotates_the_cache) {
    const char *paths[2] = {NULL, bn_test_shared("models/stories260K.gguf")};
    for (int mi = 0; mi < 2; mi++) {
        bitnet_model *m = NULL;
        if (mi == 1 && !paths[1]) continue;
        REQUIRE((mi == 0 ? bitnet_model_load_default(NULL, &m) : bitnet_model_load(paths[1], NULL, &m)) == BITNET_OK);
        bitnet_token t[80];
        const int n = bitnet_tokenize(m, "Once upon a time there was a little girl named Lily. She loved to play "
                                         "outside in the park with her friends and her dog", 1, t, 64);
        REQUIRE(n > 30);
        const int keep = 5, drop = 12;
        bitnet_context_params cp = bitnet_context_default_params();
        cp.n_ctx = 96;
        cp.kv_type = BITNET_KV_F32;
        bitnet_context *ctx = NULL, *fresh = NULL;
        REQUIRE(bitnet_context_new(m, &cp, &ctx) == BITNET_OK);
        REQUIRE(bitnet_context_new(m, &cp, &fresh) == BITNET_OK);
        REQUIRE(bitnet_eval(ctx, t, n, 0) == BITNET_OK);
        CHECK(bitnet_seq_rm(ctx, 0, keep, keep + drop) == BITNET_OK);
        bitnet_token rest[80];
        memcpy(rest, t, (size_t)keep * sizeof *t);
        memcpy(rest + keep, t + keep + drop, (size_t)(n - keep - drop) * sizeof *t);
        REQUIRE(bitnet_eval(fresh, rest, n - drop, 0) == BITNET_OK);
        const bn_kv_cache *a = &ctx->kv, *b = &fresh->kv;
        const size_t row = a->pos_bytes;
        for (int l = 0; l < a->n_layers; l++) {
            CHECK_MSG(!memcmp(bn_kv_row(a, a->k, 0, l, 0, 0), bn_kv_row(b, b->k, 0, l, 0, 0), keep * row) &&
                          !memcmp(bn_kv_row(a, a->v, 0, l, 0, 0), bn_kv_row(b, b->v, 0, l, 0, 0), keep * row),
                      "model %d layer %d: the kept prefix changed", mi, l);
        }
        float kdiff = 0.0f, krange = 0.0f;
        const int nf = (int)(row / sizeof(float));
        for (int p = keep; p < n - drop; p++) {
            const float *ka = (const float *)bn_kv_row(a, a->k, 0, 0, p, 0), *kb = (const float *)bn_kv_row(b, b->k, 0, 0, p, 0);
            for (int i = 0; i < nf; i++) {
                kdiff = fmaxf(kdiff, fabsf(ka[i] - kb[i]));
                krange = fmaxf(krange, fabsf(kb[i]));
            }
            CHECK_MSG(!memcmp(bn_kv_row(a, a->v, 0, 0, p, 0), bn_kv_row(b, b->v, 0, 0, p, 0), row),
                      "model %d: layer 0's value at position %d was not moved", mi, p);
        }
        CHECK_MSG(kdiff <= 1e-5f * krange, "model %d: layer 0 keys differ by %g (of %g)", mi, (double)kdiff, (double)krange);
        /* the vacated tail is zero */
        const uint8_t *tail = bn_kv_row(a, a->k, 0, 0, n - drop, 0);
        int zero = 1;
        for (size_t i = 0; i < (size_t)drop * row; i++) zero &= tail[i] == 0;
        CHECK_MSG(zero, "model %d: the vacated positions are not cleared", mi);
        bitnet_context_free(fresh);
        bitnet_context_free(ctx);
        bitnet_model_free(m);
    }
}

/* bitnet_eval_batch_logits: two prompts in one batch with logits wanted for
 * three chosen tokens; each row equals that position's row of the sequence
 * evaluated alone with every token's logits (bit for bit), the per-sequence
 * rows follow the flagged last tokens, and a batch with no flag is allowed. */
TEST(batch_logits_flags_return_the_chosen_rows) {
    bitnet_model *m = NULL;
    REQUIRE(bitnet_model_load_default(NULL, &m) == BITNET_OK);
    const int nv = bitnet_n_vocab(m);
    bitnet_token a[16], b[16], toks[32];
    const int na = bitnet_tokenize(m, "Lily and Ben went to the park", 1, a, 16);
    const int nb = bitnet_tokenize(m, "The cat sat on the mat", 1, b, 16);
    REQUIRE(na > 4 && nb > 4 && na + nb <= 32);
    float *alone_a = malloc((size_t)na * nv * sizeof(float)), *alone_b = malloc((size_t)nb * nv * sizeof(float));
    float *rows = malloc((size_t)3 * nv * sizeof(float));
    REQUIRE(alone_a && alone_b && rows);
    bitnet_context_params cp = bitnet_context_default_params();
    cp.n_ctx = 64;
    bitnet_context *one = NULL, *ctx = NULL;
    REQUIRE(bitnet_context_new(m, &cp, &one) == BITNET_OK);
    REQUIRE(bitnet_eval_all_logits(one, a, na, 0, alone_a) == BITNET_OK);
    REQUIRE(bitnet_eval_all_logits(one, b, nb, 0, alone_b) == BITNET_OK);
    cp.n_seq = 2;
    cp.n_batch = 4; /* several chunks: the packed rows continue across them */
    REQUIRE(bitnet_context_new(m, &cp, &ctx) == BITNET_OK);
    int pos[32], seq[32], n = 0;
    int8_t want[32] = {0};
    for (int i = 0; i < na || i < nb; i++) { /* interleaved */
        if (i < na) toks[n] = a[i], pos[n] = i, seq[n++] = 0;
        if (i < nb) toks[n] = b[i], pos[n] = i, seq[n++] = 1;
    }
    /* flags: seq 0 at position 2, seq 1's last token, seq 0's last token (in batch order) */
    int flagged[3], nf = 0;
    for (int i = 0; i < n; i++)
        if ((seq[i] == 0 && (pos[i] == 2 || pos[i] == na - 1)) || (seq[i] == 1 && pos[i] == nb - 1)) want[i] = 1, flagged[nf++] = i;
    REQUIRE(nf == 3);
    REQUIRE(bitnet_eval_batch_logits(ctx, toks, pos, seq, want, n, rows) == BITNET_OK);
    for (int r = 0; r < 3; r++) {
        const int i = flagged[r];
        const float *alone = (seq[i] == 0 ? alone_a : alone_b) + (size_t)pos[i] * nv;
        CHECK_MSG(!memcmp(rows + (size_t)r * nv, alone, (size_t)nv * sizeof(float)), "row %d (seq %d pos %d) differs", r,
                  seq[i], pos[i]);
    }
    CHECK(!memcmp(bitnet_get_logits_seq(ctx, 0), alone_a + (size_t)(na - 1) * nv, (size_t)nv * sizeof(float)));
    CHECK(!memcmp(bitnet_get_logits_seq(ctx, 1), alone_b + (size_t)(nb - 1) * nv, (size_t)nv * sizeof(float)));
    memset(want, 0, sizeof want);
    CHECK(bitnet_eval_batch_logits(ctx, toks, pos, seq, want, n, rows) == BITNET_OK);
    CHECK(bitnet_eval_batch_logits(ctx, toks, pos, seq, NULL, n, rows) == BITNET_ERR_ARG);
    free(alone_a);
    free(alone_b);
    free(rows);
    bitnet_context_free(one);
    bitnet_context_free(ctx);
    bitnet_model_free(m);
}
