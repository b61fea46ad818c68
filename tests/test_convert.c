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
    snprintf(cmd, sizeof cmd, "infer -m %s -p 'hello world' -n 24 --temp 0 2>/dev/null", path);
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
