/* test_kv_cache.c - KV cache formats (f32/f16/q8/q4/q2): quantiser error
 * bounds, every SIMD kernel table against the scalar reference, the attention
 * glue against a double-precision reference, batched == single-sequence for
 * every type, per-architecture defaults, sizes that scale with --ctx-size,
 * perplexity cost, and the tools' --kv-type / --ctx-size handling. */
#include <stdint.h>

#include "bitnet.h"
#include "model/context.h"
#include "model/kv_cache.h"
#include "test.h"

#define REF_MODEL "tests/fixtures/bitnet-ref/model.gguf" /* bitnet-b1.58, head_dim 32: SIMD paths */

static uint64_t g_rng = 0x243F6A8885A308D3ull;
static float rnd(void) { /* uniform in [-1, 1) */
    g_rng = g_rng * 6364136223846793005ull + 1442695040888963407ull;
    return (float)((g_rng >> 40) & 0xFFFFFF) / 8388608.0f - 1.0f;
}

/* Rows like post-RoPE keys: mostly small values, an offset, some outliers. */
static void fill_row(float *x, int n) {
    const float off = 0.3f * rnd();
    for (int i = 0; i < n; i++) x[i] = off + rnd() * (i % 7 == 3 ? 4.0f : 1.0f);
}

TEST(kv_cache_row_bytes) {
    /* the table in docs/kv-cache.md */
    static const int hd[3] = {8, 64, 128};
    static const size_t want[3][BN_KV_N_TYPES] = {{32, 16, 12, 12, 12}, {256, 128, 68, 40, 24}, {512, 256, 132, 72, 40}};
    for (int i = 0; i < 3; i++)
        for (int t = 0; t < BN_KV_N_TYPES; t++) CHECK_EQ_INT(bn_kv_row_bytes((bitnet_kv_type)t, hd[i]), want[i][t]);
    CHECK_EQ_INT(bn_kv_row_bytes(BITNET_KV_Q4, 33), 28); /* 8 + 17, padded to 4 */
    for (int t = 0; t < BN_KV_N_TYPES; t++) {
        bitnet_kv_type back;
        CHECK(bitnet_kv_type_from_name(bitnet_kv_type_name((bitnet_kv_type)t), &back) == 0 && back == (bitnet_kv_type)t);
    }
    bitnet_kv_type x;
    CHECK(bitnet_kv_type_from_name("q3", &x) == -1);
    CHECK(bitnet_kv_type_from_name("default", &x) == 0 && x == BITNET_KV_DEFAULT);
    /* llama.cpp's cache type names, as its users type them */
    CHECK(bitnet_kv_type_from_name("q8_0", &x) == 0 && x == BITNET_KV_Q8);
    CHECK(bitnet_kv_type_from_name("q4_0", &x) == 0 && x == BITNET_KV_Q4);
    CHECK(bitnet_kv_type_from_name("q4_1", &x) == 0 && x == BITNET_KV_Q4);
    CHECK(bitnet_kv_type_from_name("q5_0", &x) == -1);
}

TEST(kv_cache_quantize_round_trip_error_bounds) {
    static const int hds[] = {8, 24, 32, 33, 64, 128, 300};
    float x[300], y[300];
    uint8_t row[1400];
    for (size_t h = 0; h < sizeof hds / sizeof hds[0]; h++) {
        const int hd = hds[h];
        for (int rep = 0; rep < 20; rep++) {
            fill_row(x, hd);
            float mn = x[0], mx = x[0], amax = 0.0f;
            for (int i = 0; i < hd; i++) {
                mn = x[i] < mn ? x[i] : mn, mx = x[i] > mx ? x[i] : mx;
                amax = fabsf(x[i]) > amax ? fabsf(x[i]) : amax;
            }
            for (int t = 0; t < BN_KV_N_TYPES; t++) {
                memset(row, 0xAB, sizeof row);
                bn_kv_quantize_row((bitnet_kv_type)t, x, hd, row);
                bn_kv_dequantize_row((bitnet_kv_type)t, row, hd, y);
                double worst = 0.0, bound;
                for (int i = 0; i < hd; i++) {
                    double e = fabs((double)x[i] - y[i]);
                    if (t == BITNET_KV_F16) e /= fabs((double)x[i]) + 1e-30; /* relative */
                    worst = e > worst ? e : worst;
                }
                switch (t) {
                case BITNET_KV_F32: bound = 0.0; break;
                case BITNET_KV_F16: bound = 1.0 / 2048; break;
                case BITNET_KV_Q8: bound = 0.5 * amax / 127; break;
                case BITNET_KV_Q4: bound = 0.5 * (mx - mn) / 15; break;
                default: bound = 0.5 * (mx - mn) / 3; break;
                }
                CHECK_MSG(worst <= bound * (1 + 1e-5) + 1e-7, "%s hd %d: error %g > bound %g",
                          bitnet_kv_type_name((bitnet_kv_type)t), hd, worst, bound);
            }
        }
    }
    /* constant and zero rows come back exactly; NaN must not crash */
    for (int t = 0; t < BN_KV_N_TYPES; t++) {
        for (int i = 0; i < 32; i++) x[i] = t == BITNET_KV_Q8 ? 0.0f : 0.75f;
        bn_kv_quantize_row((bitnet_kv_type)t, x, 32, row);
        bn_kv_dequantize_row((bitnet_kv_type)t, row, 32, y);
        CHECK(memcmp(x, y, 32 * sizeof(float)) == 0);
        x[5] = NAN;
        bn_kv_quantize_row((bitnet_kv_type)t, x, 32, row);
    }
}

/* Every kernel table's scores/wsum against the scalar reference, on head-rows
 * interleaved with other heads (stride > row) as in the cache. */
TEST(kv_cache_every_isa_matches_scalar) {
    static const int hds[] = {4, 8, 12, 16, 24, 32, 48, 64, 128};
    static const int ns[] = {1, 3, 4, 5, 8, 17, 24, 64};
    const bn_kernels *tabs[8];
    const int n_tabs = bn_kernels_list(tabs, 8);
    int simd = 0;
    for (int ti = 0; ti < n_tabs; ti++) {
        const bn_kv_ops *ops = tabs[ti]->kv;
        if (ops == &bn_kv_ops_scalar) continue;
        simd++;
        for (size_t h = 0; h < sizeof hds / sizeof hds[0]; h++) {
            const int hd = hds[h];
            float q[128], vrow[128], att[64], o_ref[128], o_simd[128], s_ref[64], s_simd[64];
            for (int t = 0; t < BN_KV_N_TYPES; t++) {
                const size_t rb = bn_kv_row_bytes((bitnet_kv_type)t, hd), stride = 3 * rb;
                uint8_t *buf = malloc(stride * 64);
                float *kf = malloc(sizeof(float) * 64 * hd); /* dequantised, for the error scale */
                for (int s = 0; s < 64; s++) {
                    fill_row(vrow, hd);
                    bn_kv_quantize_row((bitnet_kv_type)t, vrow, hd, buf + s * stride + rb);
                    bn_kv_dequantize_row((bitnet_kv_type)t, buf + s * stride + rb, hd, kf + (size_t)s * hd);
                }
                fill_row(q, hd);
                uint8_t scratch[1024];
                bn_kv_query qy;
                bn_kv_prepare_query((bitnet_kv_type)t, q, hd, scratch, &qy);
                for (size_t ni = 0; ni < sizeof ns / sizeof ns[0]; ni++) {
                    const int n = ns[ni];
                    bn_kv_ops_scalar.scores[t](&qy, buf + rb, stride, n, hd, 0.125f, s_ref);
                    /* a NULL entry means the scalar kernel (kv_kernels.h) */
                    (ops->scores[t] ? ops->scores[t] : bn_kv_ops_scalar.scores[t])(&qy, buf + rb, stride, n, hd, 0.125f, s_simd);
                    for (int s = 0; s < n; s++) {
                        double mag = 0.0;
                        for (int i = 0; i < hd; i++) mag += fabs((double)q[i] * kf[(size_t)s * hd + i]);
                        if (t == BITNET_KV_Q8 || t == BITNET_KV_F32) /* integer dots / the reference order: same bits */
                            CHECK_MSG(s_ref[s] == s_simd[s], "%s %s scores hd %d n %d: %.9g vs %.9g", ops->isa,
                                      bitnet_kv_type_name((bitnet_kv_type)t), hd, n, s_ref[s], s_simd[s]);
                        else
                            CHECK_MSG(fabs(s_ref[s] - s_simd[s]) <= 1e-5 * 0.125 * mag + 1e-6,
                                      "%s %s scores hd %d n %d: %g vs %g", ops->isa, bitnet_kv_type_name((bitnet_kv_type)t),
                                      hd, n, s_ref[s], s_simd[s]);
                    }
                    float sum = 0.0f;
                    for (int s = 0; s < n; s++) sum += att[s] = 0.1f + fabsf(rnd());
                    for (int s = 0; s < n; s++) att[s] /= sum;
                    memset(o_ref, 0, sizeof o_ref);
                    memset(o_simd, 0, sizeof o_simd);
                    bn_kv_ops_scalar.wsum[t](att, buf + rb, stride, n, hd, o_ref);
                    (ops->wsum[t] ? ops->wsum[t] : bn_kv_ops_scalar.wsum[t])(att, buf + rb, stride, n, hd, o_simd);
                    if (t == BITNET_KV_F32)
                        CHECK_MSG(memcmp(o_ref, o_simd, (size_t)hd * sizeof(float)) == 0, "%s f32 wsum hd %d n %d", ops->isa,
                                  hd, n);
                    for (int i = 0; i < hd; i++) {
                        double mag = 0.0;
                        for (int s = 0; s < n; s++) mag += fabs((double)att[s] * kf[(size_t)s * hd + i]);
                        CHECK_MSG(fabs(o_ref[i] - o_simd[i]) <= 1e-5 * mag + 1e-6, "%s %s wsum hd %d n %d [%d]: %g vs %g",
                                  ops->isa, bitnet_kv_type_name((bitnet_kv_type)t), hd, n, i, o_ref[i], o_simd[i]);
                    }
                }
                free(buf);
                free(kf);
            }
        }
    }
#if defined(__x86_64__) || defined(__aarch64__)
    if (!simd) SKIP("no SIMD kernel set usable on this CPU");
#endif
}

/* bn_kv_attend (scores + softmax + wsum over a real cache layout) against
 * attention computed in double from the dequantised rows. */
TEST(kv_cache_attention_matches_double_reference) {
    enum { SEQ = 2, LAYERS = 2, CTX = 16, HEADS = 2, HD = 32, NPOS = 13 };
    const bn_kernels *tabs[8];
    const int n_tabs = bn_kernels_list(tabs, 8);
    for (int ti = 0; ti < n_tabs; ti++) {
        for (int t = 0; t < BN_KV_N_TYPES; t++) {
            bn_kv_cache kv;
            const size_t bytes = bn_kv_init(&kv, (bitnet_kv_type)t, SEQ, LAYERS, CTX, HEADS, HD, tabs[ti]);
            kv.k = malloc(bytes);
            kv.v = malloc(bytes);
            float k[HEADS * HD], v[HEADS * HD], q[HD], out[HD], out_ak[HD], att[CTX], row[HD];
            double dscr[CTX], w[CTX];
            uint8_t *scratch = malloc(bn_kv_scratch_bytes(HD));
            for (int s = 0; s < SEQ; s++)
                for (int l = 0; l < LAYERS; l++)
                    for (int p = 0; p < CTX; p++) {
                        fill_row(k, HEADS * HD);
                        fill_row(v, HEADS * HD);
                        bn_kv_write(&kv, s, l, p, k, v);
                    }
            fill_row(q, HD);
            bn_kv_attend(&kv, 1, 1, 1, q, 0, NPOS, att, scratch, out);
            bn_kv_attend_ak42(&kv, 1, 1, 1, q, NPOS, dscr, scratch, out_ak);
            for (int pass = 0; pass < 2; pass++) { /* 0: llama path (int8 query for q8), 1: ak42 path */
                float qd[HD];
                bn_kv_query qy;
                bn_kv_prepare_query((bitnet_kv_type)t, q, HD, scratch, &qy);
                for (int i = 0; i < HD; i++) qd[i] = pass == 0 && qy.i8 ? qy.d * qy.i8[i] : q[i];
                double mx = -1e300, sum = 0.0, ref[HD] = {0}, vmax = 0.0;
                for (int p = 0; p < NPOS; p++) {
                    bn_kv_dequantize_row((bitnet_kv_type)t, bn_kv_row(&kv, kv.k, 1, 1, p, 1), HD, row);
                    w[p] = 0.0;
                    for (int i = 0; i < HD; i++) w[p] += (double)qd[i] * row[i];
                    w[p] /= sqrt((double)HD);
                    mx = w[p] > mx ? w[p] : mx;
                }
                for (int p = 0; p < NPOS; p++) sum += w[p] = exp(w[p] - mx);
                for (int p = 0; p < NPOS; p++) {
                    bn_kv_dequantize_row((bitnet_kv_type)t, bn_kv_row(&kv, kv.v, 1, 1, p, 1), HD, row);
                    for (int i = 0; i < HD; i++) ref[i] += w[p] / sum * row[i];
                    for (int i = 0; i < HD; i++) vmax = fabs(row[i]) > vmax ? fabs(row[i]) : vmax;
                }
                const float *got = pass == 0 ? out : out_ak;
                for (int i = 0; i < HD; i++)
                    CHECK_MSG(fabs(got[i] - ref[i]) <= (pass ? 1e-6 : 1e-4) * vmax, "%s %s pass %d [%d]: %g vs %g",
                              tabs[ti]->isa, bitnet_kv_type_name((bitnet_kv_type)t), pass, i, got[i], ref[i]);
            }
            free(kv.k);
            free(kv.v);
            free(scratch);
        }
    }
}

/* Greedy steps of two prompts, alone (one context each) and batched (one
 * context, two sequences): the logits must be bit-identical for every type. */
static void check_batch_vs_single(bitnet_model *m, bitnet_kv_type t, int threads) {
    enum { STEPS = 6 };
    static const char *prompts[2] = {"Once upon a time", "The cat sat on the mat and"};
    const int nv = bitnet_n_vocab(m);
    float *alone = malloc(2 * (size_t)nv * sizeof(float));
    bitnet_token toks[2][64];
    int len[2];
    for (int s = 0; s < 2; s++) {
        bitnet_context_params cp = bitnet_context_default_params();
        cp.n_ctx = 64, cp.kv_type = t, cp.n_threads = threads;
        bitnet_context *c = NULL;
        CHECK(bitnet_context_new(m, &cp, &c) == BITNET_OK);
        if (!c) break;
        len[s] = bitnet_tokenize(m, prompts[s], 1, toks[s], 32);
        CHECK(len[s] > 0 && bitnet_eval(c, toks[s], len[s], 0) == BITNET_OK);
        for (int i = 0; i < STEPS; i++) {
            const float *lg = bitnet_get_logits(c);
            int best = 0;
            for (int v = 1; v < nv; v++) best = lg[v] > lg[best] ? v : best;
            toks[s][len[s] + i] = best;
            CHECK(bitnet_eval(c, &toks[s][len[s] + i], 1, len[s] + i) == BITNET_OK);
        }
        memcpy(alone + (size_t)s * nv, bitnet_get_logits(c), (size_t)nv * sizeof(float));
        bitnet_context_free(c);
    }
    bitnet_context_params cp = bitnet_context_default_params();
    cp.n_ctx = 64, cp.kv_type = t, cp.n_threads = threads, cp.n_seq = 2;
    bitnet_context *c = NULL;
    CHECK(bitnet_context_new(m, &cp, &c) == BITNET_OK);
    if (c) {
        bitnet_token bt[64];
        int pos[64], seq[64], n = 0;
        for (int s = 0; s < 2; s++)
            for (int i = 0; i < len[s]; i++) bt[n] = toks[s][i], pos[n] = i, seq[n++] = s;
        CHECK(bitnet_eval_batch(c, bt, pos, seq, n) == BITNET_OK);
        for (int i = 0; i < STEPS; i++) {
            for (int s = 0; s < 2; s++) bt[s] = toks[s][len[s] + i], pos[s] = len[s] + i, seq[s] = s;
            CHECK(bitnet_eval_batch(c, bt, pos, seq, 2) == BITNET_OK);
        }
        for (int s = 0; s < 2; s++)
            CHECK_MSG(memcmp(alone + (size_t)s * nv, bitnet_get_logits_seq(c, s), (size_t)nv * sizeof(float)) == 0,
                      "kv %s, %d threads: batched logits of sequence %d differ", bitnet_kv_type_name(t), threads, s);
        bitnet_context_free(c);
    }
    free(alone);
}

TEST(kv_cache_batch_matches_single_every_type) {
    bitnet_model *models[2] = {NULL, NULL};
    CHECK(bitnet_model_load_default(NULL, &models[0]) == BITNET_OK); /* ak42 attention */
    CHECK(bitnet_model_load(REF_MODEL, NULL, &models[1]) == BITNET_OK); /* float attention, SIMD kernels */
    for (int i = 0; i < 2; i++)
        for (int t = 0; t < BN_KV_N_TYPES && models[i]; t++)
            for (int th = 1; th <= 2; th++) check_batch_vs_single(models[i], (bitnet_kv_type)t, th);
    bitnet_model_free(models[0]);
    bitnet_model_free(models[1]);
}

static bitnet_kv_type default_type_of(bitnet_model *m) {
    bitnet_context *c = NULL;
    if (bitnet_context_new(m, NULL, &c) != BITNET_OK) return (bitnet_kv_type)99;
    bitnet_kv_type t = bitnet_context_kv_type(c);
    bitnet_context_free(c);
    return t;
}

TEST(kv_cache_defaults_sizes_and_errors) {
    bitnet_model *m = NULL, *ref = NULL;
    CHECK(bitnet_model_load_default(NULL, &m) == BITNET_OK);
    CHECK(bitnet_model_load(REF_MODEL, NULL, &ref) == BITNET_OK);
    if (!m || !ref) return;
    CHECK_EQ_INT(default_type_of(m), BITNET_KV_F32);   /* ak42 */
    CHECK_EQ_INT(default_type_of(ref), BITNET_KV_F16); /* bitnet-b1.58 */
    const char *llama = bn_test_shared("models/stories260K.gguf");
    bitnet_model *lm = NULL;
    if (llama && bitnet_model_load(llama, NULL, &lm) == BITNET_OK) {
        CHECK_EQ_INT(default_type_of(lm), BITNET_KV_F16);
        bitnet_model_free(lm);
    }
    /* the KV cache is K + V = 2 x layers x ctx x kv_heads x row bytes, linear in --ctx-size */
    bitnet_model_info info;
    bitnet_model_get_info(m, &info);
    const int hd = info.n_embd / info.n_head;
    for (int t = 0; t < BN_KV_N_TYPES; t++)
        for (int ctx = 256; ctx <= 1024; ctx *= 2) {
            bitnet_context_params cp = bitnet_context_default_params();
            cp.n_ctx = ctx, cp.kv_type = (bitnet_kv_type)t;
            bitnet_context *c = NULL;
            CHECK(bitnet_context_new(m, &cp, &c) == BITNET_OK);
            if (!c) continue;
            CHECK_EQ_INT(bitnet_context_kv_bytes(c),
                         2ull * info.n_layer * ctx * info.n_head_kv * bn_kv_row_bytes((bitnet_kv_type)t, hd));
            CHECK(c->arena_size > bitnet_context_kv_bytes(c));
            bitnet_context_free(c);
        }
    bitnet_context_params cp = bitnet_context_default_params();
    cp.kv_type = (bitnet_kv_type)7;
    bitnet_context *c = NULL;
    CHECK(bitnet_context_new(m, &cp, &c) == BITNET_ERR_ARG && c == NULL);
    CHECK(strstr(bitnet_last_error(), "unknown KV cache type 7") != NULL);
    /* past the context: a clean error, and the context stays usable */
    cp = bitnet_context_default_params();
    cp.n_ctx = 8, cp.kv_type = BITNET_KV_Q4;
    CHECK(bitnet_context_new(m, &cp, &c) == BITNET_OK);
    if (c) {
        bitnet_token t[9] = {1, 2, 3, 4, 5, 6, 7, 8, 9};
        CHECK(bitnet_eval(c, t, 9, 0) == BITNET_ERR_CONTEXT_FULL);
        CHECK(strstr(bitnet_last_error(), "--ctx-size 8") != NULL);
        CHECK(bitnet_eval(c, t, 8, 0) == BITNET_OK);
        CHECK(bitnet_eval(c, t, 1, 8) == BITNET_ERR_CONTEXT_FULL);
        CHECK(bitnet_eval(c, t, 1, 7) == BITNET_OK);
        bitnet_context_free(c);
    }
    bitnet_model_free(m);
    bitnet_model_free(ref);
}

/* PPL through build/perplexity: q8 within 0.5% of f32, and q2 visibly
 * different (the option reaches the cache). */
static double ppl_of(const char *model_args, const char *text, const char *kv) {
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "perplexity %s -f %s -c 128 --max-chunks 4 --kv-type %s 2>/dev/null", model_args, text, kv);
    size_t n;
    int st = -1;
    char *out = bn_test_run_tool(cmd, &n, &st);
    double ppl = -1;
    const char *line = out ? strstr(out, "PPL = ") : NULL;
    if (st != 0 || !line || sscanf(line, "PPL = %lf", &ppl) != 1) ppl = -1;
    CHECK_MSG(ppl > 0, "'%s' failed (status %d)", cmd, st);
    free(out);
    return ppl;
}

TEST(kv_cache_perplexity_cost) {
    char ak42[2100];
    const char *text = bn_test_shared("corpora/tinystories-excerpt.txt");
    if (!text) SKIP("../shared not present");
    const char *m3 = bn_test_shared("models/bitnet158-tinystories-3M.ak42.bin");
    const char *tok = bn_test_shared("models/tok512.bin");
    snprintf(ak42, sizeof ak42, "-m %s --tokenizer %s", m3 ? m3 : "", tok ? tok : "");
    const char *models[2] = {"-m " REF_MODEL, m3 && tok ? ak42 : NULL};
    for (int i = 0; i < 2 && models[i]; i++) {
        const double f32 = ppl_of(models[i], text, "f32"), q8 = ppl_of(models[i], text, "q8");
        const double q2 = ppl_of(models[i], text, "q2");
        CHECK_MSG(fabs(q8 / f32 - 1.0) < 0.005, "%s: q8 PPL %.4f vs f32 %.4f", models[i], q8, f32);
        CHECK_MSG(q2 != f32, "%s: q2 PPL equals f32 (%.4f): --kv-type not applied?", models[i], f32);
    }
}

TEST(kv_cache_infer_options_and_ctx_errors) {
    size_t n;
    int st = -1;
    char *out = bn_test_run_tool("infer -p 'Once upon a time' --steps 24 --temp 0 --kv-int2 2>&1", &n, &st);
    CHECK(st == 0 && out && strstr(out, "Once upon a time") && strstr(out, "| kv q2, 512 ctx"));
    free(out);
    CHECK_TOOL("infer --steps 24 --temp 0 --kv-type q8 -c 64 2>&1", 0, "| kv q8, 64 ctx");
    CHECK_TOOL("infer --kv-type q3 2>&1", 2, "--kv-type expects f32, f16, q8 (q8_0), q4 (q4_0) or q2, got 'q3'");
    /* -n past --ctx-size: one line, before any work */
    out = bn_test_run_tool("infer --steps 100 -c 64 2>&1", &n, &st);
    CHECK(st == 2 && out && strstr(out, "--steps 100 does not fit in --ctx-size 64") && !strchr(strchr(out, '\n') + 1, '\n'));
    free(out);
    /* a prompt longer than the context */
    CHECK_TOOL("infer -c 4 -p 'Once upon a time there was a little girl' 2>&1", 1, "the prompt has");
    /* without -n, generation stops at the context size instead (BOS + 16 tokens) */
    out = bn_test_run_tool("infer -c 16 --temp 0 2>&1", &n, &st);
    const char *gen = out ? strstr(out, "generation:") : NULL; /* the timing line on stderr */
    CHECK_MSG(gen && strstr(gen, " / 16 tokens") && strstr(gen, " / 16 tokens") < strchr(gen, '\n'), "%s", out ? out : "");
    free(out);
    /* bench and perplexity report a too-small context in one line */
    out = bn_test_run_tool("bench -p 64 -n 4 -c 32 -r 1 2>&1", &n, &st);
    CHECK(st != 0 && out && strstr(out, "do not fit in --ctx-size 32"));
    free(out);
}

/* The f32 path is the reference arithmetic: stories260K reproduces llama2.c
 * with --kv-type f32 as with its f16 default (tests/test_infer.c). */
TEST(kv_cache_stories260k_reference_with_f32) {
    const char *ref_path = bn_test_shared("models/stories260K.reference-greedy.txt");
    if (!ref_path) SKIP("../shared not present");
    size_t ref_len, out_len;
    char *ref = bn_test_read_file(ref_path, &ref_len), cmd[2048];
    snprintf(cmd, sizeof cmd, "infer -m %s -p 'Once upon a time' --temp 0 --steps 256 --kv-type f32 2>/dev/null",
             bn_test_shared("models/stories260K.gguf"));
    int st = -1;
    char *out = bn_test_run_tool(cmd, &out_len, &st);
    CHECK(st == 0 && out && ref && out_len == ref_len && memcmp(out, ref, ref_len) == 0);
    free(out);
    free(ref);
}
