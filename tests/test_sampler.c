/* test_sampler.c - greedy, top-k/top-p/min-p truncation, penalties, seeding. */
#include "bitnet.h"
#include "test.h"

TEST(sampler_greedy_takes_first_max) {
    bitnet_sampler_params p = bitnet_sampler_default_params();
    p.temp = 0.0f;
    bitnet_sampler *s = NULL;
    REQUIRE(bitnet_sampler_new(&p, 5, &s) == BITNET_OK);
    float logits[5] = {0.1f, 3.0f, -1.0f, 3.0f, 2.9f};
    CHECK_EQ_INT(bitnet_sampler_sample(s, logits), 1);
    bitnet_sampler_free(s);
}

/* Samples `reps` times from a fresh sampler with params `p` (a fresh copy of
 * `logits` each time: the sampler may modify them) and checks that every
 * draw is `want`. */
static void check_always(const bitnet_sampler_params *p, const float *logits, int n, int want, int reps, int line) {
    bitnet_sampler *s = NULL;
    bitnet_sampler_new(p, n, &s);
    REQUIRE(s != NULL);
    float l[16];
    int bad = -1;
    for (int i = 0; i < reps && bad < 0; i++) {
        memcpy(l, logits, (size_t)n * sizeof *l);
        int t = bitnet_sampler_sample(s, l);
        if (t != want) bad = t;
    }
    CHECK_MSG(bad < 0, "line %d: sampled %d, want always %d", line, bad, want);
    bitnet_sampler_free(s);
}

TEST(sampler_top_k_1_is_greedy) {
    bitnet_sampler_params p = bitnet_sampler_default_params();
    p.temp = 1.5f;
    p.top_k = 1;
    const float logits[6] = {0, 1, 5, 4.9f, 2, 3};
    check_always(&p, logits, 6, 2, 50, __LINE__);
}

TEST(sampler_top_p_and_min_p_truncate) {
    /* probabilities ~ 0.7, 0.2, 0.1 ... top_p 0.5 keeps only the first */
    const float logits[3] = {logf(0.2f), logf(0.7f), logf(0.1f)};
    bitnet_sampler_params p = bitnet_sampler_default_params();
    p.temp = 1.0f;
    p.top_k = 0;
    p.top_p = 0.5f;
    p.min_p = 0.0f;
    check_always(&p, logits, 3, 1, 100, __LINE__);
    p.top_p = 1.0f;
    p.min_p = 0.5f; /* keeps tokens with p >= 0.35: only token 1 */
    check_always(&p, logits, 3, 1, 100, __LINE__);
}

TEST(sampler_distribution_follows_temperature_and_seed) {
    bitnet_sampler_params p = bitnet_sampler_default_params();
    p.temp = 1.0f;
    p.top_k = 0;
    p.top_p = 1.0f;
    p.min_p = 0.0f;
    p.seed = 1234;
    bitnet_sampler *a = NULL, *b = NULL;
    REQUIRE(bitnet_sampler_new(&p, 2, &a) == BITNET_OK && bitnet_sampler_new(&p, 2, &b) == BITNET_OK);
    int count1 = 0, same = 1;
    for (int i = 0; i < 4000; i++) {
        float la[2] = {0.0f, logf(3.0f)}, lb[2] = {0.0f, logf(3.0f)};
        int ta = bitnet_sampler_sample(a, la), tb = bitnet_sampler_sample(b, lb);
        count1 += ta == 1;
        same &= ta == tb;
    }
    CHECK(same);                               /* same seed, same stream */
    CHECK(count1 > 2800 && count1 < 3200);     /* p(1) = 0.75 */
    bitnet_sampler_free(a);
    bitnet_sampler_free(b);
}

TEST(sampler_repetition_penalty) {
    bitnet_sampler_params p = bitnet_sampler_default_params();
    p.temp = 0.0f;
    p.repeat_penalty = 2.0f;
    p.repeat_last_n = 4;
    bitnet_sampler *s = NULL;
    bitnet_sampler_new(&p, 3, &s);
    bitnet_sampler_accept(s, 0);
    float logits[3] = {3.0f, 2.0f, -1.0f}; /* 3/2 = 1.5 < 2 */
    CHECK_EQ_INT(bitnet_sampler_sample(s, logits), 1);
    bitnet_sampler_free(s);
}

/* presence and frequency penalties (OpenAI's, llama.cpp's): minus presence on
 * every token seen in the last repeat_last_n, minus frequency times its count. */
TEST(sampler_presence_and_frequency_penalties) {
    bitnet_sampler_params p = bitnet_sampler_default_params();
    p.temp = 0.0f;
    p.repeat_last_n = 8;
    p.presence_penalty = 0.5f;
    p.frequency_penalty = 0.25f;
    bitnet_sampler *s = NULL;
    bitnet_sampler_new(&p, 4, &s);
    REQUIRE(s != NULL);
    bitnet_sampler_accept(s, 0);
    bitnet_sampler_accept(s, 0);
    bitnet_sampler_accept(s, 1);
    float logits[4] = {3.0f, 2.0f, 1.0f, 0.0f};
    bitnet_sampler_sample(s, logits);
    CHECK_NEAR(logits[0], 3.0f - 0.5f - 2 * 0.25f, 1e-6); /* seen twice */
    CHECK_NEAR(logits[1], 2.0f - 0.5f - 0.25f, 1e-6);     /* once */
    CHECK_NEAR(logits[2], 1.0f, 1e-6);                    /* never */
    float again[4] = {2.2f, 2.0f, 1.0f, 0.0f};
    CHECK_EQ_INT(bitnet_sampler_sample(s, again), 1); /* 2.2 - 1.0 = 1.2 < 2 - 0.75 = 1.25 */
    bitnet_sampler_free(s);
}

/* The constructor reports what is wrong instead of returning NULL. */
TEST(sampler_new_reports_bad_arguments) {
    bitnet_sampler *s = (bitnet_sampler *)&s; /* overwritten with NULL on failure */
    CHECK(bitnet_sampler_new(NULL, 0, &s) == BITNET_ERR_ARG && s == NULL && strstr(bitnet_last_error(), "n_vocab 0"));
    CHECK(bitnet_sampler_new(NULL, 3, NULL) == BITNET_ERR_ARG);
    CHECK(bitnet_sampler_new(NULL, 3, &s) == BITNET_OK && s != NULL);
    bitnet_sampler_free(s);
}
