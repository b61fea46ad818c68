/* test_convert.c - convert --synthetic: every packed layout of the same random
 * ternary weights generates the same tokens; bad arguments are clean errors. */
#include "test.h"

static char *generate(const char *type, int *status) {
    char path[512], cmd[2048];
    snprintf(path, sizeof path, "%s", bn_test_tmp(".gguf"));
    snprintf(cmd, sizeof cmd, "convert --synthetic tiny --type %s -o %s 2>/dev/null", type, path);
    size_t n;
    free(bn_test_run_tool(cmd, &n, status));
    if (*status != 0) return NULL;
    snprintf(cmd, sizeof cmd, "infer -m %s -p 'hello world' --steps 24 --temp 0 2>/dev/null", path);
    char *out = bn_test_run_tool(cmd, &n, status);
    remove(path);
    return out;
}

TEST(convert_synthetic_layouts_agree) {
    int st = -1;
    char *ref = generate("tq2_0", &st);
    CHECK_EQ_INT(st, 0);
    CHECK(ref && strlen(ref) > 0);
    static const char *types[] = {"tq1_0", "f16", "f32"};
    for (size_t i = 0; i < sizeof types / sizeof types[0]; i++) {
        char *out = generate(types[i], &st);
        CHECK_MSG(st == 0 && out && ref && strcmp(out, ref) == 0, "%s differs from tq2_0", types[i]);
        free(out);
    }
    free(ref);
    char *i2 = generate("i2_s", &st);
    CHECK(st == 0 && i2 && strlen(i2) > 0);
    free(i2);
}

TEST(convert_bad_arguments) {
    int st = 0;
    size_t n;
    char *out = bn_test_run_tool("convert --synthetic nope -o /tmp/x.gguf 2>&1", &n, &st);
    CHECK(st == 2 && out && strstr(out, "unknown preset"));
    free(out);
    out = bn_test_run_tool("convert --synthetic custom --dim 100 -o /tmp/x.gguf 2>&1", &n, &st);
    CHECK(st == 2 && out && strstr(out, "custom needs"));
    free(out);
    out = bn_test_run_tool("convert /nonexistent.bin -o /tmp/x.gguf 2>&1", &n, &st);
    CHECK(st == 1 && out && strstr(out, "/nonexistent.bin: cannot open"));
    free(out);
    out = bn_test_run_tool("convert x --type q4 -o /tmp/x.gguf 2>&1", &n, &st);
    CHECK(st == 2 && out && strstr(out, "unknown --type"));
    free(out);
}

/* --head-type q8_0: the embedding/classifier becomes Q8_0 (smaller file, less
 * read per token) and the model's perplexity moves by well under 1%. */
static double ppl_of(const char *model, const char *text) {
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "perplexity -m %s -f %s -c 128 --max-chunks 12 2>/dev/null", model, text);
    size_t n;
    int st = -1;
    char *out = bn_test_run_tool(cmd, &n, &st);
    const char *p = out && st == 0 ? strstr(out, "PPL = ") : NULL;
    double v = p ? atof(p + 6) : -1.0;
    free(out);
    return v;
}

TEST(convert_head_type_q8_0) {
    const char *shared = bn_test_shared("corpora/tinystories-excerpt.txt");
    if (!shared) SKIP("../shared/corpora/tinystories-excerpt.txt not found");
    char text[1024];
    snprintf(text, sizeof text, "%s", shared);
    const char *in = bn_test_repo("models/default.gguf");
    char f32[512], q8[512], cmd[2048];
    snprintf(f32, sizeof f32, "%s", bn_test_tmp("-f32.gguf"));
    snprintf(q8, sizeof q8, "%s", bn_test_tmp("-q8.gguf"));
    int st = -1;
    size_t n;
    snprintf(cmd, sizeof cmd, "convert %s --head-type f32 -o %s 2>/dev/null", in, f32);
    free(bn_test_run_tool(cmd, &n, &st));
    CHECK_EQ_INT(st, 0);
    snprintf(cmd, sizeof cmd, "convert %s --head-type q8_0 -o %s 2>/dev/null", in, q8);
    free(bn_test_run_tool(cmd, &n, &st));
    CHECK_EQ_INT(st, 0);
    char *a = bn_test_read_file(f32, &n);
    size_t n_q8 = 0;
    char *b = bn_test_read_file(q8, &n_q8);
    CHECK_MSG(a && b && n_q8 < n * 3 / 4, "q8_0 head file %zu bytes vs f32 %zu", n_q8, n);
    free(a);
    free(b);
    double p32 = ppl_of(f32, text), p8 = ppl_of(q8, text);
    CHECK_MSG(p32 > 1.0 && p8 > 1.0 && fabs(p8 - p32) / p32 < 0.01, "perplexity f32 head %.4f, q8_0 head %.4f", p32, p8);
    remove(f32);
    remove(q8);
    free(bn_test_run_tool("convert x --head-type q4 -o /tmp/x.gguf 2>&1 >/dev/null", &n, &st));
    CHECK_EQ_INT(st, 2);
}
