/* test_quants.c - ggml's block formats for embeddings and heads (kernels/quants.c).
 *
 * 1. Each dequantiser against a per-element reference written from the format
 *    description (ggml-common.h), on random blocks: where value i's bits are,
 *    computed independently of the block loops.
 * 2. A model whose tied embedding/head is stored in each format gives the same
 *    logits as the same model with that tensor dequantised to f32 (the
 *    dequantise-then-float reference): lookup and head matmul paths. Q4_K and
 *    Q6_K heads multiply Q8_K activations (as llama.cpp does): their logits are
 *    checked against the final hidden states (bitnet_embed) quantised per 256
 *    values as the description says, times the description's weights.
 * (Q4_K and Q6_K are also checked against llama.cpp by test_peer_fixtures.c.) */
#include "bitnet.h"
#include "formats/gguf.h"
#include "kernels/kernels.h"
#include "gguf_edit.h"
#include "test.h"

#include <unistd.h>

static uint64_t g_state = 42;
static uint32_t rnd32(void) {
    g_state = g_state * 6364136223846793005ull + 1442695040888963407ull;
    return (uint32_t)(g_state >> 33);
}
static float f16v(const uint8_t *p) {
    uint16_t h;
    memcpy(&h, p, 2);
    return bn_fp16_to_fp32(h);
}
static void put_f16(uint8_t *p, float v) {
    uint16_t h = bn_fp32_to_fp16(v);
    memcpy(p, &h, 2);
}

/* Random bytes, with the block's f16 scales set to small finite values. */
static void random_block(bn_quant q, uint8_t *b) {
    const bn_quant_traits *t = bn_quant_get(q);
    for (unsigned i = 0; i < t->block_bytes; i++) b[i] = (uint8_t)rnd32();
    const float d = 0.001f + (float)(rnd32() % 1000) / 1000.0f * 0.05f, dmin = (float)(rnd32() % 1000) / 1000.0f * 0.02f;
    switch (q) {
    case BN_QUANT_Q4_0:
    case BN_QUANT_Q5_0: put_f16(b, d); break;
    case BN_QUANT_Q4_K:
    case BN_QUANT_Q5_K: put_f16(b, d), put_f16(b + 2, dmin); break;
    case BN_QUANT_Q6_K: put_f16(b + 208, d); break;
    case BN_QUANT_BF16: b[1] = (uint8_t)(0x3c + rnd32() % 8) | (rnd32() & 0x80); break; /* |x| in [2^-7, 2^8) */
    default: break;
    }
}

/* Sub-block s's 6-bit scale and min of a Q4_K/Q5_K block's 12 scale bytes. */
static void ref_scale_min(const uint8_t *sc, int s, int *d, int *m) {
    if (s < 4) {
        *d = sc[s] & 63, *m = sc[s + 4] & 63;
    } else {
        *d = (sc[s + 4] & 15) | ((sc[s - 4] >> 6) << 4);
        *m = (sc[s + 4] >> 4) | ((sc[s] >> 6) << 4);
    }
}

/* Value i of one block, from the format description. */
static float ref_value(bn_quant q, const uint8_t *b, int i) {
    switch (q) {
    case BN_QUANT_Q4_0: { /* 32 values: low nibbles 0..15, high nibbles 16..31, minus 8 */
        const int byte = b[2 + i % 16], nib = i < 16 ? byte & 15 : byte >> 4;
        return f16v(b) * (float)(nib - 8);
    }
    case BN_QUANT_Q5_0: { /* as q4_0 with a fifth bit i of the 32-bit qh, minus 16 */
        uint32_t qh;
        memcpy(&qh, b + 2, 4);
        const int byte = b[6 + i % 16], nib = i < 16 ? byte & 15 : byte >> 4;
        return f16v(b) * (float)((nib | (int)(((qh >> i) & 1) << 4)) - 16);
    }
    case BN_QUANT_Q4_K:
    case BN_QUANT_Q5_K: { /* 4 groups of 64: 32 low nibbles then 32 high nibbles of 32 bytes */
        const int g = i / 64, high = (i % 64) / 32, l = i % 32, s = 2 * g + high;
        const uint8_t *qs = b + (q == BN_QUANT_Q4_K ? 16 : 48);
        int v = high ? qs[32 * g + l] >> 4 : qs[32 * g + l] & 15;
        if (q == BN_QUANT_Q5_K) v += ((b[16 + l] >> (2 * g + high)) & 1) << 4;
        int sc, m;
        ref_scale_min(b + 4, s, &sc, &m);
        return f16v(b) * (float)sc * (float)v - f16v(b + 2) * (float)m;
    }
    case BN_QUANT_Q6_K: { /* 2 halves of 128: quarters of 32 take ql low/high nibbles and qh bit pairs */
        const int n = i / 128, r = i % 128, quarter = r / 32, l = r % 32;
        const uint8_t ql = b[64 * n + l + (quarter & 1) * 32], qh = b[128 + 32 * n + l];
        const int nib = quarter < 2 ? ql & 15 : ql >> 4, v = (nib | (((qh >> (2 * quarter)) & 3) << 4)) - 32;
        const int8_t sc = (int8_t)b[192 + 8 * n + l / 16 + 2 * quarter];
        return f16v(b + 208) * (float)sc * (float)v;
    }
    case BN_QUANT_BF16: {
        const uint32_t bits = (uint32_t)(b[0] | b[1] << 8) << 16;
        float f;
        memcpy(&f, &bits, 4);
        return f;
    }
    default: return 0.0f;
    }
}

static const bn_quant k_formats[] = {BN_QUANT_Q4_0, BN_QUANT_Q5_0, BN_QUANT_Q4_K, BN_QUANT_Q5_K, BN_QUANT_Q6_K, BN_QUANT_BF16};

TEST(quants_dequant_matches_format_description) {
    for (size_t f = 0; f < sizeof k_formats / sizeof k_formats[0]; f++) {
        const bn_quant q = k_formats[f];
        const bn_quant_traits *t = bn_quant_get(q);
        const int per = (int)t->block_elems, nb = 512 / per; /* rows of 512 values */
        uint8_t *row = malloc((size_t)nb * t->block_bytes);
        float y[512];
        for (int rep = 0; rep < 20; rep++) {
            for (int b = 0; b < nb; b++) random_block(q, row + (size_t)b * t->block_bytes);
            bn_dequant_row(q, row, 512, y);
            int bad = 0;
            for (int i = 0; i < 512 && !bad; i++) {
                const float want = ref_value(q, row + (size_t)(i / per) * t->block_bytes, i % per);
                if (y[i] != want) {
                    CHECK_MSG(0, "%s value %d: %g, the description gives %g", t->name, i, y[i], want);
                    bad = 1;
                }
            }
        }
        free(row);
    }
}

/* The tiny synthetic model with token_embd (the tied head) stored as `type`
 * from `data`, everything else copied. */
static int write_variant(const char *src, const char *dst, bn_tensor_type type, const void *data, uint64_t nbytes) {
    const bn_gguf_edit e = {"token_embd.weight", type, data, nbytes, NULL, NULL};
    return bn_test_gguf_copy(src, dst, &e);
}

static float *all_logits(const char *path, const bitnet_token *toks, int n, int *vocab) {
    bitnet_model *m = NULL;
    bitnet_context *ctx = NULL;
    float *out = NULL;
    if (bitnet_model_load(path, NULL, &m) != BITNET_OK) return NULL;
    *vocab = bitnet_n_vocab(m);
    bitnet_context_params cp = bitnet_context_default_params();
    cp.n_ctx = 16;
    cp.n_threads = 2;
    if (bitnet_context_new(m, &cp, &ctx) == BITNET_OK && (out = malloc((size_t)n * *vocab * sizeof(float))) &&
        bitnet_eval_all_logits(ctx, toks, n, 0, out) != BITNET_OK) {
        free(out);
        out = NULL;
    }
    bitnet_context_free(ctx);
    bitnet_model_free(m);
    return out;
}

/* `convert --synthetic tiny --type TYPE` into base, and two more temporary paths. */
static int tiny_model(const char *type, char *base, char *p1, char *p2) {
    char cmd[1200];
    snprintf(base, 512, "%s", bn_test_tmp(".gguf"));
    snprintf(p1, 512, "%s", bn_test_tmp(".gguf"));
    snprintf(p2, 512, "%s", bn_test_tmp(".gguf"));
    snprintf(cmd, sizeof cmd, "convert --synthetic tiny --type %s -o %s 2>&1", type, base);
    int status = -1;
    free(bn_test_run_tool(cmd, NULL, &status));
    return status == 0;
}

/* Q4_K/Q6_K heads: the logits lq of the model at path must be the final hidden
 * states quantised to Q8_K (per 256 values: d = amax/127, q = x/d rounded half
 * to even) times the description's weight values w (vocab x dim), in double. */
static void check_q8k_head(const char *path, const bitnet_token *toks, int n, const float *w, const float *lq,
                           const char *name) {
    enum { DIM = 256, VOCAB = 512 }; /* the tiny preset */
    bitnet_model *m = NULL;
    bitnet_context *ctx = NULL;
    REQUIRE(bitnet_model_load(path, NULL, &m) == BITNET_OK);
    bitnet_context_params cp = bitnet_context_default_params();
    cp.n_ctx = 16;
    REQUIRE(bitnet_context_new(m, &cp, &ctx) == BITNET_OK);
    float h[6 * DIM];
    REQUIRE(n <= 6 && bitnet_embed(ctx, toks, n, BITNET_POOLING_NONE, 0, h) == BITNET_OK);
    double worst = 0;
    for (int t = 0; t < n; t++) {
        const float *x = h + (size_t)t * DIM;
        float amax = 0;
        for (int i = 0; i < DIM; i++) amax = fabsf(x[i]) > amax ? fabsf(x[i]) : amax;
        const float s = 127.0f / amax, d = amax / 127.0f;
        double xq[DIM];
        for (int i = 0; i < DIM; i++) xq[i] = (double)nearbyintf(x[i] * s) * d;
        for (int r = 0; r < VOCAB; r++) {
            double want = 0, mag = 0;
            for (int i = 0; i < DIM; i++) {
                want += (double)w[(size_t)r * DIM + i] * xq[i];
                mag += fabs((double)w[(size_t)r * DIM + i] * xq[i]);
            }
            const double diff = fabs(lq[(size_t)t * VOCAB + r] - want);
            CHECK_MSG(diff <= 1e-5 * mag + 1e-6, "%s head: token %d row %d: %.9g, want %.9g", name, t, r,
                      (double)lq[(size_t)t * VOCAB + r], want);
            if (diff > worst) worst = diff;
        }
    }
    printf("    %s head: max |diff| vs its Q8_K definition %.3g\n", name, worst);
    bitnet_context_free(ctx);
    bitnet_model_free(m);
}

TEST(quants_heads_match_dequantised_float) {
    char base[512], qpath[512], fpath[512];
    REQUIRE_MSG(tiny_model("i2_s", base, qpath, fpath), "convert --synthetic tiny failed");
    const int vocab = 512, dim = 256; /* the tiny preset */
    const bitnet_token toks[6] = {1, 17, 300, 5, 511, 42};
    for (size_t f = 0; f < sizeof k_formats / sizeof k_formats[0]; f++) {
        const bn_quant q = k_formats[f];
        const bn_quant_traits *t = bn_quant_get(q);
        const size_t row_bytes = (size_t)(dim / (int)t->block_elems) * t->block_bytes;
        uint8_t *qd = malloc(row_bytes * vocab);
        float *fd = malloc(sizeof(float) * dim * vocab);
        for (int r = 0; r < vocab; r++) {
            for (int b = 0; b < dim / (int)t->block_elems; b++) random_block(q, qd + r * row_bytes + b * t->block_bytes);
            for (int i = 0; i < dim; i++) /* the description's values, independent of quants.c */
                fd[(size_t)r * dim + i] = ref_value(q, qd + r * row_bytes + (size_t)(i / t->block_elems) * t->block_bytes,
                                                    i % (int)t->block_elems);
        }
        static const bn_tensor_type types[] = {BN_TT_Q4_0, BN_TT_Q5_0, BN_TT_Q4_K, BN_TT_Q5_K, BN_TT_Q6_K, BN_TT_BF16};
        int vq = 0, vf = 0;
        float *lq = NULL, *lf = NULL;
        if (write_variant(base, qpath, types[f], qd, row_bytes * vocab) &&
            write_variant(base, fpath, BN_TT_F32, fd, sizeof(float) * dim * vocab)) {
            lq = all_logits(qpath, toks, 6, &vq);
            lf = all_logits(fpath, toks, 6, &vf);
        }
        CHECK_MSG(lq && lf && vq == vocab && vf == vocab, "%s: %s", t->name, bitnet_last_error());
        if (lq && (q == BN_QUANT_Q4_K || q == BN_QUANT_Q6_K)) check_q8k_head(qpath, toks, 6, fd, lq, t->name);
        double worst = 0, scale = 0;
        /* (written without fmax: gcc 12 for aarch64 fails to vectorise that reduction, an ICE) */
        for (size_t i = 0; lq && lf && i < (size_t)6 * vocab; i++) {
            const double d = fabs((double)lq[i] - lf[i]), m = fabs((double)lf[i]);
            if (d > worst) worst = d;
            if (m > scale) scale = m;
        }
        if (q != BN_QUANT_Q4_K && q != BN_QUANT_Q6_K) /* the same values multiplied as floats: only the summation order may differ */
            CHECK_MSG(worst <= 1e-5 * scale + 1e-6, "%s head: max |diff| %g (max |logit| %g)", t->name, worst, scale);
        printf("    %s head: max |diff| vs f32 %.3g (max |logit| %.3g)\n", t->name, worst, scale);
        free(lq);
        free(lf);
        free(qd);
        free(fd);
    }
    unlink(base);
    unlink(qpath);
    unlink(fpath);
}

/* ---- TQ1_0/TQ2_0 with a scale per block -------------------------------------- */

#include "model/context.h"

/* The tiny synthetic TQ2_0 model with blk.0.ffn_down (256 x 512: two blocks a
 * row) rewritten with ternary values t and block scales d[256][2] (f16 values). */
static int write_block_scaled(const char *src, const char *dst, const int8_t *t, const float *d) {
    uint8_t *data = malloc((size_t)256 * 2 * BN_TQ2_0_BYTES);
    if (!data) return 0;
    for (int r = 0; r < 256; r++) bn_tq2_0_pack_row(t + (size_t)r * 512, 512, d + r * 2, data + (size_t)r * 2 * BN_TQ2_0_BYTES);
    /* the block scales are the scale: no blk.0.ffn_down.scale */
    const bn_gguf_edit e = {"blk.0.ffn_down.weight", BN_TT_TQ2_0, data, (uint64_t)256 * 2 * BN_TQ2_0_BYTES, NULL,
                            "blk.0.ffn_down.scale"};
    const int ok = bn_test_gguf_copy(src, dst, &e);
    free(data);
    return ok;
}

TEST(quants_tq_block_scales_applied) {
    char base[512], path[512], copy[512], cmd[1200];
    int status = -1;
    REQUIRE_MSG(tiny_model("tq2_0", base, path, copy), "convert --synthetic tiny --type tq2_0 failed");
    int8_t *t = malloc(256 * 512);
    float d[512];
    for (int i = 0; i < 256 * 512; i++) t[i] = (int8_t)((int)(rnd32() % 3) - 1);
    for (int i = 0; i < 512; i++) d[i] = bn_fp16_to_fp32(bn_fp32_to_fp16(0.25f + (float)(rnd32() % 1000) / 500.0f));
    REQUIRE(write_block_scaled(base, path, t, d));

    bitnet_model *m = NULL;
    REQUIRE_MSG(bitnet_model_load(path, NULL, &m) == BITNET_OK, "%s", bitnet_last_error());
    const bn_matrix *W = &m->layers[0].w_down;
    CHECK(W->type == BN_W_I2 && W->block_scales != NULL && W->block_cols == 256);
    const int n = 3;
    float x[3 * 512], y[3 * 256];
    for (int i = 0; i < n * 512; i++) x[i] = (float)((int)(rnd32() % 2001) - 1000) / 100.0f;
    for (int threads = 1; threads <= 2; threads++) {
        bitnet_context_params cp = bitnet_context_default_params();
        cp.n_threads = threads;
        bitnet_context *ctx = NULL;
        REQUIRE(bitnet_context_new(m, &cp, &ctx) == BITNET_OK);
        for (int nt = 1; nt <= n; nt += n - 1) {
            bn_linear(ctx, W, x, nt, y);
            for (int tok = 0; tok < nt; tok++) { /* per-token absmax int8, then a scale per block */
                const float *xt = x + tok * 512;
                float amax = 0;
                for (int c = 0; c < 512; c++) amax = fmaxf(amax, fabsf(xt[c]));
                double worst = 0;
                for (int r = 0; r < 256; r++) {
                    double ref = 0;
                    for (int b = 0; b < 2; b++) {
                        long acc = 0;
                        for (int c = b * 256; c < b * 256 + 256; c++)
                            acc += (long)t[(size_t)r * 512 + c] * (long)nearbyintf(xt[c] * (127.0f / amax));
                        ref += (double)d[r * 2 + b] * (double)acc;
                    }
                    ref *= amax / 127.0;
                    worst = fmax(worst, fabs(ref - y[tok * 256 + r]) / (fabs(ref) + 1.0));
                }
                CHECK_MSG(worst < 1e-5, "threads %d, %d tokens, token %d: relative error %g", threads, nt, tok, worst);
            }
        }
        bitnet_context_free(ctx);
    }
    bitnet_model_free(m);

    /* written back as TQ2_0, the scales go into the blocks: the same values and scales load again */
    snprintf(cmd, sizeof cmd, "convert %s --type tq2_0 -o %s 2>&1", path, copy);
    char *log = bn_test_run_tool(cmd, NULL, &status);
    CHECK_MSG(status == 0, "%s", log ? log : "");
    free(log);
    bitnet_model *m2 = NULL;
    REQUIRE_MSG(bitnet_model_load(copy, NULL, &m2) == BITNET_OK, "%s", bitnet_last_error());
    const bn_matrix *W2 = &m2->layers[0].w_down;
    REQUIRE(W2->block_scales != NULL && W2->block_cols == 256);
    int8_t row[512];
    float bd[2];
    int same = 1;
    for (int r = 0; r < 256; r++) {
        bn_matrix_get_ternary_row(W2, r, row, bd, 256);
        same &= memcmp(row, t + (size_t)r * 512, 512) == 0 && bd[0] == d[r * 2] && bd[1] == d[r * 2 + 1];
    }
    CHECK_MSG(same, "the block-scaled tensor did not survive convert --type tq2_0");
    bitnet_model_free(m2);
    /* i2_s has one scale per tensor: refused, nothing written */
    snprintf(cmd, sizeof cmd, "convert %s --type i2_s -o %s.i2s 2>&1", path, copy);
    log = bn_test_run_tool(cmd, NULL, &status);
    CHECK_MSG(status != 0 && log && strstr(log, "only tq2_0 and tq1_0"), "%s", log ? log : "");
    free(log);
    snprintf(cmd, sizeof cmd, "%s.i2s", copy);
    CHECK(access(cmd, F_OK) != 0);
    free(t);
    unlink(base);
    unlink(path);
    unlink(copy);
}

/* The Q6_K / Q4_K writers (convert --head-type q6_k|q4_k): read back by the
 * dequantiser, every value is the nearest point of its group's grid (given the
 * scales the writer chose), and the error is what 6 and 4 bits allow. */
TEST(quants_k_writers_round_to_the_nearest_grid_point) {
    enum { COLS = 512 };
    float x[COLS], y[COLS];
    uint8_t blk[2 * 210];
    for (int mode = 0; mode < 3; mode++) {
        for (int i = 0; i < COLS; i++) {
            x[i] = ((float)(rnd32() % 20001) / 10000.0f - 1.0f) * (mode == 1 ? 1e-3f : 1.0f);
            if (mode == 2) x[i] = i % 16 < 3 ? 0.0f : x[i] * (float)(1 + i % 7); /* zero runs, varied ranges */
        }
        for (int q6 = 0; q6 < 2; q6++) {
            (q6 ? bn_quantize_q6_k_row : bn_quantize_q4_k_row)(x, COLS, blk);
            bn_dequant_row(q6 ? BN_QUANT_Q6_K : BN_QUANT_Q4_K, blk, COLS, y);
            double se = 0, sx = 0;
            int off_grid = 0;
            for (int b = 0; b < COLS / 256; b++) {
                const uint8_t *B = blk + b * (q6 ? 210 : 144);
                for (int i = 0; i < 256; i++) {
                    const int e = 256 * b + i;
                    float step, lo, hi; /* group i's grid: lo + step * k, lo <= value <= hi */
                    if (q6) {
                        step = f16v(B + 208) * (float)(int8_t)B[192 + i / 16];
                        lo = -32.0f * step, hi = 31.0f * step;
                    } else {
                        int sc, m;
                        ref_scale_min(B + 4, i / 32, &sc, &m);
                        step = f16v(B) * (float)sc;
                        lo = -f16v(B + 2) * (float)m, hi = lo + 15.0f * step;
                    }
                    if (step < 0) { float t = lo; lo = hi; hi = t; step = -step; }
                    const float clamped = x[e] < lo ? lo : x[e] > hi ? hi : x[e];
                    if (fabsf(y[e] - clamped) > 0.5f * step * 1.0001f + 1e-7f) off_grid++;
                    se += ((double)y[e] - x[e]) * ((double)y[e] - x[e]);
                    sx += (double)x[e] * x[e];
                }
            }
            CHECK_MSG(off_grid == 0, "%s mode %d: %d values not on their nearest grid point", q6 ? "q6_K" : "q4_K", mode,
                      off_grid);
            /* uniform values in [-a, a] on 64 / 16 evenly spaced levels: rms error (2a/63)/sqrt(12), (2a/15)/sqrt(12)
             * over an rms of a/sqrt(3), i.e. 1/63 and 1/15 relative: the writers must do no worse */
            const double rel = sqrt(se / sx);
            if (mode < 2)
                CHECK_MSG(rel < (q6 ? 1.0 / 63 : 1.0 / 15), "%s mode %d: relative rms error %.4f", q6 ? "q6_K" : "q4_K",
                          mode, rel);
            printf("    %s mode %d: relative rms error %.4f\n", q6 ? "q6_K" : "q4_K", mode, rel);
        }
    }
}
