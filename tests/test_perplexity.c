/* test_perplexity.c - end-to-end: build/perplexity gives a plausible, finite
 * PPL for a trained model on in-domain text, a higher one on wrong-domain
 * text, and clean one-line errors. */
#include <unistd.h>

#include "test.h"

/* Runs perplexity; returns the PPL parsed from "PPL = X +/- Y over N tokens",
 * or -1 when the tool failed or printed no such line. */
static double run_ppl(const char *model, const char *extra, const char *text, int *n_tokens) {
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "perplexity -m %s %s -f %s -c 64 --max-chunks 4 2>/dev/null", model, extra, text);
    size_t n = 0;
    int status = -1;
    char *out = bn_test_run_tool(cmd, &n, &status);
    double ppl = -1, err = -1;
    int toks = 0;
    const char *line = out ? strstr(out, "PPL = ") : NULL;
    if (status == 0 && line && sscanf(line, "PPL = %lf +/- %lf over %d tokens", &ppl, &err, &toks) != 3) ppl = -1;
    CHECK_MSG(status == 0 && ppl > 0, "'%s' -> status %d, output: %s", cmd, status, out ? out : "(null)");
    CHECK(err >= 0 && isfinite(err));
    if (n_tokens) *n_tokens = toks;
    free(out);
    return ppl;
}

static void check_in_vs_out_of_domain(const char *model_rel, const char *extra) {
    const char *model = bn_test_shared(model_rel), *ts = bn_test_shared("corpora/tinystories-excerpt.txt");
    const char *wiki = bn_test_shared("corpora/wikitext-2-raw-valid.txt");
    if (!model || !ts || !wiki) {
        bn_test_skip("../shared not present");
        return;
    }
    int n_tok = 0;
    double in = run_ppl(model, extra, ts, &n_tok);
    double out = run_ppl(model, extra, wiki, NULL);
    /* 4 windows of 64, second half scored: 4 * (64 - 32 - 1) tokens */
    CHECK_EQ_INT(n_tok, 4 * 31);
    /* measured (working ak42 build): 1M 5.26, stories260K 5.00; uniform would be 512 */
    CHECK_MSG(isfinite(in) && in > 1.0 && in < 30.0, "in-domain PPL %g not in (1, 30)", in);
    CHECK_MSG(isfinite(out) && out > 2.0 * in, "wikitext PPL %g not well above in-domain %g", out, in);
}

TEST(perplexity_ak42_1m_in_domain_beats_wikitext) {
    const char *tok = bn_test_shared("models/tok512.bin");
    if (!tok) SKIP("../shared not present");
    char extra[1100];
    snprintf(extra, sizeof extra, "--tokenizer %s", tok);
    check_in_vs_out_of_domain("models/bitnet158-tinystories-1M.ak42.bin", extra);
}

TEST(perplexity_stories260k_in_domain_beats_wikitext) {
    check_in_vs_out_of_domain("models/stories260K.gguf", "");
}

static void expect_error(const char *cmd, int want_status, const char *want_text) {
    size_t n = 0;
    int status = -1;
    char *out = bn_test_run_tool(cmd, &n, &status);
    CHECK_MSG(status == want_status, "'%s' -> status %d, want %d", cmd, status, want_status);
    CHECK_MSG(out && strstr(out, want_text), "'%s' output lacks '%s': %s", cmd, want_text, out ? out : "(null)");
    /* one line: exactly one newline, at the end */
    CHECK_MSG(out && n > 0 && strchr(out, '\n') == out + n - 1, "'%s' error is not one line: %s", cmd, out ? out : "");
    free(out);
}

TEST(perplexity_errors_are_clean) {
    char cmd[4096];
    const char *model = bn_test_shared("models/stories260K.gguf");
    if (!model) SKIP("../shared not present");
    snprintf(cmd, sizeof cmd, "perplexity -m %s -f /nonexistent/text.txt 2>&1", model);
    expect_error(cmd, 1, "/nonexistent/text.txt");
    expect_error("perplexity -m /nonexistent/model.gguf -f Makefile 2>&1", 1, "/nonexistent/model.gguf");
    expect_error("perplexity --bogus 1 2>&1", 2, "--bogus");
    expect_error("perplexity -f Makefile 2>&1", 2, "-m MODEL");
    snprintf(cmd, sizeof cmd, "perplexity -m %s -f Makefile -c 2 2>&1", model);
    expect_error(cmd, 2, "-c");
    snprintf(cmd, sizeof cmd, "perplexity -m %s -f Makefile --max-chunks x 2>&1", model);
    expect_error(cmd, 2, "--max-chunks");

    const char *tmp = bn_test_tmp(".txt");
    FILE *f = fopen(tmp, "w");
    CHECK(f != NULL);
    if (!f) return;
    fputs("Once upon a time, there was a cat.\n", f);
    fclose(f);
    snprintf(cmd, sizeof cmd, "perplexity -m %s -f %s -c 64 2>&1", model, tmp);
    expect_error(cmd, 1, "fewer than one window");
}

/* --kl-divergence-base / --kl-divergence (llama-perplexity's flags and file
 * format): the file has llama.cpp's layout and size; the model against itself
 * is ~0 (the base is stored in 16 bits, as llama.cpp stores it) with every top
 * token the same; a q8_0 head is a small, positive KL; the windows come from
 * the file (no -f); a different -c, a cut file, a file of another vocabulary,
 * or --kl-divergence without a base are one-line errors. */
TEST(perplexity_kl_divergence) {
    char cmd[4096];
    const char *text = bn_test_shared("corpora/tinystories-excerpt.txt");
    if (!text) SKIP("../shared not present");
    const char *base = bn_test_tmp(".kld");
    const char *q8 = bn_test_tmp(".gguf");
    int st = -1;
    size_t n = 0;
    snprintf(cmd, sizeof cmd, "perplexity -m models/default.gguf -f %s -c 64 --chunks 4 --kl-divergence-base %s 2>/dev/null",
             text, base);
    free(bn_test_run_tool(cmd, &n, &st));
    CHECK_EQ_INT(st, 0);
    size_t bytes = 0;
    unsigned char *f = (unsigned char *)bn_test_read_file(base, &bytes);
    /* "_logits_", n_ctx, n_vocab, n_chunk, 4 x 64 tokens, 4 x 31 rows of 512 + 4 uint16 */
    CHECK_MSG(bytes == 8 + 12 + 4 * 4 * 64 + (size_t)4 * 31 * (512 + 4) * 2, "base file of %zu bytes", bytes);
    int32_t hdr[4] = {0};
    if (f && bytes > 24) memcpy(hdr, f + 8, 16);
    CHECK(f && !memcmp(f, "_logits_", 8) && hdr[0] == 64 && hdr[1] == 512 && hdr[2] == 4 && hdr[3] == 1 /* BOS */);
    free(f);
    snprintf(cmd, sizeof cmd, "perplexity -m models/default.gguf --kl-divergence-base %s --kl-divergence 2>/dev/null", base);
    char *out = bn_test_run_tool(cmd, &n, &st);
    const char *m = out ? strstr(out, "Mean KLD: ") : NULL;
    CHECK_MSG(st == 0 && m && atof(m + 10) < 1e-5 && strstr(out, "Same top token: 100.000%") &&
                  strstr(out, "over 124 tokens"),
              "%s", out ? out : "");
    free(out);
    snprintf(cmd, sizeof cmd, "convert models/default.gguf --head-type q8_0 -o %s 2>/dev/null", q8);
    free(bn_test_run_tool(cmd, &n, &st));
    snprintf(cmd, sizeof cmd, "perplexity -m %s -c 64 --kl-divergence-base %s --kl-divergence 2>/dev/null", q8, base);
    out = bn_test_run_tool(cmd, &n, &st);
    m = out ? strstr(out, "Mean KLD: ") : NULL;
    const double kl = m ? atof(m + 10) : -1;
    CHECK_MSG(st == 0 && kl > 1e-5 && kl < 0.01, "q8_0 head: %s", out ? out : "");
    free(out);
    snprintf(cmd, sizeof cmd, "perplexity -m models/default.gguf -c 32 --kl-divergence-base %s --kl-divergence 2>&1", base);
    expect_error(cmd, 1, "was written with -c 64, not 32");
    const char *other = bn_test_shared("peer-fixtures/llama-tq2_0.gguf"); /* 32000 tokens of vocabulary */
    if (other) {
        snprintf(cmd, sizeof cmd, "perplexity -m %s --kl-divergence-base %s --kl-divergence 2>&1", other, base);
        expect_error(cmd, 1, "n_vocab 512, 4 chunks; this model has 32000 tokens of vocabulary");
    }
    FILE *fp = fopen(base, "r+b");
    REQUIRE(fp);
    REQUIRE(ftruncate(fileno(fp), 1000) == 0);
    fclose(fp);
    snprintf(cmd, sizeof cmd, "perplexity -m models/default.gguf --kl-divergence-base %s --kl-divergence 2>&1", base);
    expect_error(cmd, 1, "ends early");
    snprintf(cmd, sizeof cmd, "perplexity -m models/default.gguf -f %s --kl-divergence 2>&1", text);
    expect_error(cmd, 2, "--kl-divergence-base");
}

/* A long operation shows its progress (percent, ETA) on a terminal, redrawn in
 * place; -q silences it. Through script(1), which gives the tool a terminal. */
TEST(perplexity_progress_line_on_a_terminal) {
    char cmd[4096];
    const char *text = bn_test_shared("corpora/tinystories-excerpt.txt");
    if (!text) SKIP("../shared not present");
    if (system("command -v script >/dev/null 2>&1") != 0) SKIP("script (util-linux) is not installed");
    const char *prefix = getenv("BITNET_EXEC_PREFIX");
    for (int quiet = 0; quiet < 2; quiet++) {
        snprintf(cmd, sizeof cmd, "script -qec \"%s %s/perplexity -m models/default.gguf -f %s -c 128 --chunks 20%s\" /dev/null",
                 prefix ? prefix : "", BN_BUILD_DIR, text, quiet ? " -q" : "");
        int st;
        char *buf = bn_test_run_shell(cmd, NULL, &st);
        REQUIRE(buf != NULL);
        CHECK_MSG(st == 0 && strstr(buf, "PPL = "), "%s", buf);
        const int shown = strstr(buf, "perplexity: windows") && strstr(buf, "% [") && strstr(buf, "ETA") && strchr(buf, '\r');
        CHECK_MSG(quiet ? !strstr(buf, "ETA") : shown, "quiet %d: %s", quiet, buf);
        free(buf);
    }
}
