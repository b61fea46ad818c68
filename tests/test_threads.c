/* test_threads.c - a prompt's logits are the same bits for every thread count.
 *
 * The matmuls split rows over the pool and the per-token work of a prompt
 * (norms, RoPE and KV writes, activation quantisation, the FFN gate, residual
 * adds: bn_pool_rows) splits tokens; neither may change a result. Prompts are
 * long enough that every one of those loops really runs on the pool. */
#include <unistd.h>

#include "bitnet.h"
#include "model/model_writer.h"
#include "threadpool.h"
#include "test.h"

#define N_PROMPT 200

/* All logits of an N_PROMPT-token prompt (random ids, BOS first) at n_threads. */
static void prompt_logits(bitnet_model *m, int n_threads, float *out) {
    const int nv = bitnet_n_vocab(m);
    bitnet_context_params cp = bitnet_context_default_params();
    cp.n_ctx = cp.n_batch = N_PROMPT;
    cp.n_threads = n_threads;
    bitnet_context *ctx = NULL;
    REQUIRE(bitnet_context_new(m, &cp, &ctx) == BITNET_OK);
    bitnet_token toks[N_PROMPT];
    uint32_t r = 12345;
    toks[0] = bitnet_token_bos(m);
    for (int i = 1; i < N_PROMPT; i++) toks[i] = (bitnet_token)((r = r * 1664525u + 1013904223u) >> 8) % nv;
    CHECK(bitnet_eval_all_logits(ctx, toks, N_PROMPT, 0, out) == BITNET_OK);
    bitnet_context_free(ctx);
}

static void check_thread_counts(bitnet_model *m, const char *what) {
    const size_t bytes = (size_t)N_PROMPT * bitnet_n_vocab(m) * sizeof(float);
    float *one = calloc(1, bytes), *many = malloc(bytes);
    REQUIRE(one && many);
    prompt_logits(m, 1, one);
    /* contexts are capped at the online CPUs (2 in CI); bn_pool_rows' odd splits are tested below */
    const int n_cpu = bn_test_cpu_count();
    for (int t = 2; t <= 3 && t <= n_cpu; t++) {
        memset(many, 0xff, bytes);
        prompt_logits(m, t, many);
        CHECK_MSG(memcmp(one, many, bytes) == 0, "%s: %d threads differ from 1", what, t);
    }
    free(one);
    free(many);
}

TEST(prompt_logits_same_for_every_thread_count_default_model) {
    bitnet_model *m = NULL;
    REQUIRE(bitnet_model_load_default(NULL, &m) == BITNET_OK);
    check_thread_counts(m, "embedded ak42 model");
    bitnet_model_free(m);
}

TEST(prompt_logits_same_for_every_thread_count_llama) {
    const char *path = bn_test_shared("models/stories260K.gguf");
    if (!path) SKIP("../shared not present");
    bitnet_model *m = NULL;
    REQUIRE(bitnet_model_load(path, NULL, &m) == BITNET_OK);
    check_thread_counts(m, "stories260K");
    bitnet_model_free(m);
}

/* bitnet-b1.58: sub-norms, squared-ReLU gate, absmax int8 activations, a Q8_0 head. */
TEST(prompt_logits_same_for_every_thread_count_bitnet) {
    const char *path = bn_test_tmp(".gguf");
    const bn_synthetic_shape tiny = {"tiny", 256, 512, 2, 4, 2, 512, 256, 10000.0f};
    REQUIRE(bn_write_synthetic(&tiny, "i2_s", NULL, path) == BITNET_OK);
    bitnet_model *m = NULL;
    REQUIRE(bitnet_model_load(path, NULL, &m) == BITNET_OK);
    check_thread_counts(m, "synthetic bitnet-b1.58");
    bitnet_model_free(m);
}

/* qwen3: per-head q/k norms (rows of head size) run through the pool too. */
TEST(prompt_logits_same_for_every_thread_count_qwen3) {
    const char *path = bn_test_shared("peer-fixtures/qwen3-tq2_0.gguf");
    if (!path) SKIP("../shared not present");
    bitnet_model *m = NULL;
    REQUIRE(bitnet_model_load(path, NULL, &m) == BITNET_OK);
    check_thread_counts(m, "qwen3 fixture");
    bitnet_model_free(m);
}

/* bn_pool_rows covers [0, n) exactly once with ranges in order, for pools
 * larger than the machine and counts that do not divide. */
typedef struct {
    int *seen;
} cover_job;

static void cover_fn(void *arg, int r0, int r1) {
    cover_job *j = arg;
    for (int r = r0; r < r1; r++) __atomic_fetch_add(&j->seen[r], 1, __ATOMIC_RELAXED);
}

TEST(pool_rows_cover_every_row_once) {
    static const int sizes[] = {1, 2, 3, 5, 7, 100, 1001, 40000};
    for (int nt = 1; nt <= 5; nt += 2) {
        bn_pool *pool = NULL;
        CHECK(bn_pool_new(nt, NULL, &pool) == BITNET_OK);
        REQUIRE(pool);
        for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
            const int n = sizes[i];
            int *seen = calloc((size_t)n, sizeof *seen);
            REQUIRE(seen);
            cover_job j = {seen};
            for (long cost = 1; cost <= 1L << 20; cost <<= 10) bn_pool_rows(pool, n, cost, cover_fn, &j);
            int bad = 0;
            for (int r = 0; r < n; r++) bad += seen[r] != 3;
            CHECK_MSG(bad == 0, "%d threads, %d rows: %d rows not covered exactly once per call", nt, n, bad);
            free(seen);
        }
        bn_pool_free(pool);
    }
}
