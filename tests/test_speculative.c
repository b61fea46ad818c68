/* test_speculative.c - speculative decoding (bitnet_spec_step, infer
 * --lookup/--draft) gives the same tokens as plain decoding: greedy and
 * sampled (one sampler call per emitted token, so the same seed gives the
 * same text), on the families of the shared models and every ISA here. */
#include <stdlib.h>

#include "bitnet.h"
#include "test.h"

/* n tokens after prompt with sampler params sp, plainly (d == NULL) or
 * speculatively; stops at an end-of-generation token. *count = how many. */
static void generate(bitnet_model *m, bitnet_draft *d, const bitnet_sampler_params *sp, const char *prompt, int n,
                     bitnet_token *out, int *count) {
    *count = -1;
    bitnet_context_params cp = bitnet_context_default_params();
    cp.n_ctx = 256;
    cp.n_threads = 1;
    bitnet_context *ctx = NULL;
    REQUIRE(bitnet_context_new(m, &cp, &ctx) == BITNET_OK);
    bitnet_sampler *smp = NULL;
    bitnet_sampler_new(sp, bitnet_n_vocab(m), &smp);
    REQUIRE(smp);
    bitnet_token hist[256], q[64];
    int np = bitnet_tokenize(m, prompt, 1, hist, 64), got = 0;
    REQUIRE(np > 0 && np + n < 250);
    REQUIRE(bitnet_eval(ctx, hist, np, 0) == BITNET_OK);
    bitnet_token t = bitnet_sampler_sample(smp, bitnet_get_logits(ctx));
    bitnet_sampler_accept(smp, t);
    while (!bitnet_token_is_eog(m, t)) {
        out[got] = hist[np + got] = t;
        if (++got == n) break;
        if (!d) {
            REQUIRE(bitnet_eval(ctx, &t, 1, np + got - 1) == BITNET_OK);
            t = bitnet_sampler_sample(smp, bitnet_get_logits(ctx));
            bitnet_sampler_accept(smp, t);
            continue;
        }
        const int k = bitnet_spec_step(ctx, d, smp, NULL, hist, np + got, q, n - got < 64 ? n - got : 64);
        REQUIRE_MSG(k >= 1, "spec step: %s", bitnet_last_error());
        int stop = 0;
        for (int i = 0; i < k - 1 && !stop; i++) {
            if (bitnet_token_is_eog(m, q[i])) stop = 1;
            else if (out[got] = hist[np + got] = q[i], ++got == n) stop = 1;
        }
        if (stop) break;
        t = q[k - 1];
    }
    bitnet_sampler_free(smp);
    bitnet_context_free(ctx);
    *count = got;
}

static bitnet_model *load(const char *rel, const char *tok_rel) {
    char path[1024], tok[1024];
    const char *p = rel ? bn_test_shared(rel) : NULL;
    if (rel && !p) return NULL;
    if (p) snprintf(path, sizeof path, "%s", p);
    const char *t = tok_rel ? bn_test_shared(tok_rel) : NULL;
    if (t) snprintf(tok, sizeof tok, "%s", t);
    bitnet_model_params mp = bitnet_model_default_params();
    mp.tokenizer_path = t ? tok : NULL;
    bitnet_model *m = NULL;
    if ((rel ? bitnet_model_load(path, &mp, &m) : bitnet_model_load_default(&mp, &m)) != BITNET_OK) return NULL;
    return m;
}

static const char *k_prompt = "Once upon a time there was a little girl named Lily. She loved to play with her toys.";

/* Plain vs a drafter on model m: equal tokens, greedy and sampled. */
static void check_same(bitnet_model *m, bitnet_model *draft_model, int lookup, const char *what) {
    for (int sampled = 0; sampled < 2; sampled++) {
        bitnet_sampler_params sp = bitnet_sampler_default_params();
        sp.temp = sampled ? 0.9f : 0.0f;
        sp.seed = 1234;
        sp.repeat_penalty = sampled ? 1.1f : 1.0f; /* the penalty reads the accepted history */
        bitnet_token a[160], b[160];
        int na, nb;
        generate(m, NULL, &sp, k_prompt, 160, a, &na);
        bitnet_context *dctx = NULL;
        bitnet_draft *d = NULL;
        if (draft_model) {
            bitnet_context_params cp = bitnet_context_default_params();
            cp.n_ctx = 256;
            REQUIRE(bitnet_context_new(draft_model, &cp, &dctx) == BITNET_OK);
            REQUIRE(bitnet_draft_model_new(dctx, 6, &d) == BITNET_OK);
        } else {
            REQUIRE(bitnet_draft_lookup_new(lookup, 6, &d) == BITNET_OK);
        }
        generate(m, d, &sp, k_prompt, 160, b, &nb);
        long drafted, accepted, steps;
        bitnet_draft_stats(d, &drafted, &accepted, &steps);
        CHECK_MSG(na == nb && memcmp(a, b, (size_t)na * sizeof *a) == 0, "%s, %s: speculative tokens differ from plain",
                  what, sampled ? "sampled" : "greedy");
        CHECK_MSG(drafted > 0 && steps > 0, "%s: nothing was drafted", what);
        printf("    %s, %s: %d tokens, %ld of %ld drafts accepted, %ld passes\n", what, sampled ? "sampled" : "greedy", nb,
               accepted, drafted, steps);
        bitnet_draft_free(d);
        bitnet_context_free(dctx);
    }
}

TEST(spec_lookup_same_tokens_default_model) {
    bitnet_model *m = load(NULL, NULL);
    REQUIRE(m);
    check_same(m, NULL, 3, "embedded ak42, lookup 3");
    check_same(m, NULL, 1, "embedded ak42, lookup 1");
    bitnet_model_free(m);
}

TEST(spec_lookup_same_tokens_llama) {
    bitnet_model *m = load("models/stories260K.gguf", NULL);
    if (!m) SKIP("../shared not present");
    check_same(m, NULL, 2, "stories260K, lookup 2");
    bitnet_model_free(m);
}

/* A smaller model of the same 512-token vocabulary drafts for the default
 * model (and the other way round: a draft may be any model). */
TEST(spec_draft_model_same_tokens) {
    bitnet_model *m = load(NULL, NULL), *small = load("models/bitnet158-tinystories-1M.ak42.bin", "models/tok512.bin");
    if (!small) {
        bitnet_model_free(m);
        SKIP("../shared not present");
    }
    REQUIRE(m);
    check_same(m, small, 0, "embedded ak42, 1M ak42 draft");
    bitnet_model *llama = load("models/stories260K.gguf", NULL);
    if (llama) check_same(llama, m, 0, "stories260K, embedded draft");
    bitnet_model_free(llama);
    bitnet_model_free(small);
    bitnet_model_free(m);
}

/* The model as its own draft, greedy: every draft is right, so each pass
 * emits its whole draft plus one (the all-accepted path of the step). */
TEST(spec_self_draft_accepts_everything) {
    bitnet_model *m = load(NULL, NULL);
    REQUIRE(m);
    bitnet_context_params cp = bitnet_context_default_params();
    cp.n_ctx = 256;
    bitnet_context *dctx = NULL;
    bitnet_draft *d = NULL;
    REQUIRE(bitnet_context_new(m, &cp, &dctx) == BITNET_OK);
    REQUIRE(bitnet_draft_model_new(dctx, 4, &d) == BITNET_OK);
    bitnet_sampler_params sp = bitnet_sampler_default_params();
    sp.temp = 0.0f;
    bitnet_token a[100], b[100];
    int na, nb;
    generate(m, NULL, &sp, k_prompt, 100, a, &na);
    generate(m, d, &sp, k_prompt, 100, b, &nb);
    long drafted, accepted, steps;
    bitnet_draft_stats(d, &drafted, &accepted, &steps);
    CHECK(na == nb && memcmp(a, b, (size_t)na * sizeof *a) == 0);
    CHECK_MSG(accepted == drafted && drafted > 0, "%ld of %ld self-drafted tokens accepted", accepted, drafted);
    CHECK_MSG(steps < nb / 3, "%ld passes for %d tokens", steps, nb);
    bitnet_draft_free(d);
    bitnet_context_free(dctx);
    bitnet_model_free(m);
}

TEST(spec_bad_arguments) {
    bitnet_draft *d = NULL;
    CHECK(bitnet_draft_lookup_new(0, 8, &d) == BITNET_ERR_ARG && !d);
    CHECK(bitnet_draft_lookup_new(3, 0, &d) == BITNET_ERR_ARG && !d);
    CHECK(bitnet_draft_model_new(NULL, 8, &d) == BITNET_ERR_ARG && !d);
    CHECK(bitnet_draft_lookup_new(3, 257, &d) == BITNET_ERR_ARG && !d);
    /* a draft model of another vocabulary: infer_speculative_same_text_every_isa */
}

/* infer --lookup / --draft: the same stdout as plain generation, greedy and
 * sampled, on every ISA this machine runs; bad combinations exit 2. */
TEST_E2E(infer_speculative_same_text_every_isa) {
    static const char *isas[] = {"scalar", "avx2", "avx512", "neon"};
    const char *small = bn_test_shared("models/stories260K.gguf"); /* the same 512-token vocabulary */
    char draft[1024] = "";
    if (small) snprintf(draft, sizeof draft, "%s", small);
    int ran = 0;
    for (size_t i = 0; i < sizeof isas / sizeof isas[0]; i++) {
        bn_test_setenv("BITNET_ISA", isas[i]);
        char cmd[4096];
        int st = -1;
        size_t n = 0;
        snprintf(cmd, sizeof cmd, "infer --steps 2 --temp 0 2>&1 >/dev/null | grep -c 'isa %s'", isas[i]);
        char *probe = bn_test_run_tool(cmd, &n, &st);
        const int here = probe && atoi(probe) > 0;
        free(probe);
        if (!here) continue;
        ran++;
        for (int sampled = 0; sampled < 2; sampled++) {
            const char *samp = sampled ? "--temp 0.8 -s 99" : "--temp 0";
            snprintf(cmd, sizeof cmd, "infer -p 'Once upon a time, Tom' -n 120 %s 2>/dev/null", samp);
            size_t la = 0, lb = 0, lc = 0;
            char *a = bn_test_run_tool(cmd, &la, &st);
            CHECK(st == 0);
            snprintf(cmd, sizeof cmd, "infer -p 'Once upon a time, Tom' -n 120 %s --lookup 2 2>/dev/null", samp);
            char *b = bn_test_run_tool(cmd, &lb, &st);
            CHECK(st == 0);
            CHECK_MSG(a && b && la == lb && memcmp(a, b, la) == 0, "%s %s: --lookup changed the text", isas[i], samp);
            if (draft[0]) {
                snprintf(cmd, sizeof cmd, "infer -p 'Once upon a time, Tom' -n 120 %s --draft '%s' --draft-max 4 2>/dev/null",
                         samp, draft);
                char *c = bn_test_run_tool(cmd, &lc, &st);
                CHECK(st == 0);
                CHECK_MSG(a && c && la == lc && memcmp(a, c, la) == 0, "%s %s: --draft changed the text", isas[i], samp);
                free(c);
            }
            free(a);
            free(b);
        }
    }
    bn_test_setenv("BITNET_ISA", NULL);
    CHECK(ran >= 2);
    int st = -1;
    size_t n = 0;
    free(bn_test_run_tool("infer --lookup 0 -n 2 2>/dev/null", &n, &st));
    CHECK(st == 2);
    free(bn_test_run_tool("infer --lookup 2 --margins -n 2 2>/dev/null", &n, &st));
    CHECK(st == 2);
    const char *gpt2 = bn_test_shared("peer-fixtures/qwen3-tq2_0.gguf");
    if (gpt2) {
        char cmd[2048];
        snprintf(cmd, sizeof cmd, "infer -n 4 --draft '%s' 2>&1 >/dev/null", gpt2);
        CHECK_TOOL(cmd, 1, "must share a vocabulary");
    }
}
