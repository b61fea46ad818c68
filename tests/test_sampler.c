/* test_sampler.c - greedy, top-k/top-p/min-p truncation, penalties, seeding. */
#include "bitnet.h"
#include "test.h"

TEST(sampler_greedy_takes_first_max) {
    bitnet_sampler_params p = bitnet_sampler_default_params();
    p.temp = 0.0f;
    bitnet_sampler *s = bitnet_sampler_new(&p, 5);
    float logits[5] = {0.1f, 3.0f, -1.0f, 3.0f, 2.9f};
    CHECK_EQ_INT(bitnet_sampler_sample(s, logits), 1);
    bitnet_sampler_free(s);
}

TEST(sampler_top_k_1_is_greedy) {
    bitnet_sampler_params p = bitnet_sampler_default_params();
    p.temp = 1.5f;
    p.top_k = 1;
    bitnet_sampler *s = bitnet_sampler_new(&p, 6);
    for (int i = 0; i < 50; i++) {
        float logits[6] = {0, 1, 5, 4.9f, 2, 3};
        CHECK_EQ_INT(bitnet_sampler_sample(s, logits), 2);
    }
    bitnet_sampler_free(s);
}

TEST(sampler_top_p_and_min_p_truncate) {
    /* probabilities ~ 0.7, 0.2, 0.1 ... top_p 0.5 keeps only the first */
    bitnet_sampler_params p = bitnet_sampler_default_params();
    p.temp = 1.0f;
    p.top_k = 0;
    p.top_p = 0.5f;
    p.min_p = 0.0f;
    bitnet_sampler *s = bitnet_sampler_new(&p, 3);
    for (int i = 0; i < 100; i++) {
        float logits[3] = {logf(0.2f), logf(0.7f), logf(0.1f)};
        CHECK_EQ_INT(bitnet_sampler_sample(s, logits), 1);
    }
    bitnet_sampler_free(s);
    p.top_p = 1.0f;
    p.min_p = 0.5f; /* keeps tokens with p >= 0.35: only token 1 */
    s = bitnet_sampler_new(&p, 3);
    for (int i = 0; i < 100; i++) {
        float logits[3] = {logf(0.2f), logf(0.7f), logf(0.1f)};
        CHECK_EQ_INT(bitnet_sampler_sample(s, logits), 1);
    }
    bitnet_sampler_free(s);
}

TEST(sampler_distribution_follows_temperature_and_seed) {
    bitnet_sampler_params p = bitnet_sampler_default_params();
    p.temp = 1.0f;
    p.top_k = 0;
    p.top_p = 1.0f;
    p.min_p = 0.0f;
    p.seed = 1234;
    bitnet_sampler *a = bitnet_sampler_new(&p, 2), *b = bitnet_sampler_new(&p, 2);
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
    bitnet_sampler *s = bitnet_sampler_new(&p, 3);
    bitnet_sampler_accept(s, 0);
    float logits[3] = {3.0f, 2.0f, -1.0f}; /* 3/2 = 1.5 < 2 */
    CHECK_EQ_INT(bitnet_sampler_sample(s, logits), 1);
    bitnet_sampler_free(s);
}
