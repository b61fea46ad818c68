/* test_prune.c - build/prune end to end: the pruned model keeps the chosen
 * blocks byte for byte (renumbered, block_count updated, all other metadata
 * unchanged), loads and generates; the report's choices follow its scores;
 * its before/after perplexities are build/perplexity's on the same files; bad
 * input gives one-line errors and leaves no output file. */
#include <stdarg.h>
#include <sys/stat.h>

#include "formats/gguf.h"
#include "formats/json.h"
#include "test.h"

/* Calibration and held-out texts, TinyStories-like (the embedded model's domain). */
static const char *story_a =
    "Once upon a time, there was a little girl named Lily. She loved to play in the park with her red ball. "
    "One day, she saw a big dog near the tree. The dog was sad because it was lost. Lily gave the dog some "
    "water and a hug. Then she helped the dog find its home. The dog's mom was very happy. She said, \"Thank "
    "you, Lily!\" Lily smiled and went back to play with her ball. From that day on, Lily and the dog were "
    "best friends, and they played together in the park every day.";
static const char *story_b =
    "Tom had a small boat. He liked to take it to the lake with his dad. One sunny day, the wind was strong "
    "and the boat went far away. Tom was scared and started to cry. His dad said, \"Don't worry, we will get "
    "it back.\" They walked around the lake and found the boat near a big rock. Tom was so happy. He hugged "
    "his dad and said, \"You are the best dad!\" They went home and ate cake. Tom learned to be brave.";
static const char *story_c =
    "Sue and Ben wanted to bake a cake for their mom. They got flour, eggs and milk. Ben spilled the milk on "
    "the floor, and Sue laughed. They cleaned it up together. When the cake was ready, it was not very pretty, "
    "but it smelled good. Mom came home and saw the cake. She was surprised and gave them a big hug. \"This is "
    "the best cake ever,\" she said. Sue and Ben were proud, and they all ate the cake with a glass of milk.";

static int write_text(const char *path, const char *text) { return bn_test_write_file(path, text, strlen(text)); }

/* A .jsonl calibration file with one {"text": ...} per story. */
static int write_calib_jsonl(const char *path) {
    FILE *f = fopen(path, "wb");
    if (!f) return 0;
    const char *stories[] = {story_a, story_b, story_c};
    for (int i = 0; i < 3; i++) {
        fputs("{\"text\": \"", f);
        for (const char *p = stories[i]; *p; p++) {
            if (*p == '"' || *p == '\\') fputc('\\', f);
            fputc(*p, f);
        }
        fputs("\"}\n", f);
    }
    return fclose(f) == 0;
}

static int exists(const char *path) {
    struct stat sb;
    return stat(path, &sb) == 0;
}


/* Runs the tool command made of fmt (build/ prefixed): its stdout, or NULL; a
 * status other than 0 fails the test with the command in the message. */
static char *run_ok(const char *fmt, ...) {
    char cmd[4096];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    size_t n = 0;
    int st = -1;
    char *text = bn_test_run_tool(cmd, &n, &st);
    CHECK_MSG(st == 0, "'%s' -> status %d: %s", cmd, st, text ? text : "");
    return text;
}

/* Parses the --report JSON (NULL if unreadable or not JSON). */
static bn_json *read_report(const char *path) {
    size_t len = 0;
    char *text = bn_test_read_file(path, &len);
    char err[256] = "";
    bn_json *j = text ? bn_json_parse(text, len, err, sizeof err) : NULL;
    CHECK_MSG(j != NULL, "report %s: %s", path, text ? err : "cannot read");
    free(text);
    return j;
}

static double num(const bn_json *obj, const char *key) {
    const bn_json *v = bn_json_get(obj, key);
    return v && v->type == BN_JSON_NUMBER ? v->number : NAN;
}

/* The report's "removed" list and per-block scores under `key`. */
static int report_removed(const bn_json *r, int *removed, int cap) {
    const bn_json *a = bn_json_get(r, "removed");
    if (!a || a->type != BN_JSON_ARRAY) return -1;
    for (size_t i = 0; i < a->n && (int)i < cap; i++) removed[i] = (int)a->items[i].number;
    return (int)a->n;
}

/* Checks that the report removed exactly the n lowest-scoring blocks under `key`. */
static void check_lowest_removed(const bn_json *r, const char *key, int n_blocks, int n_removed) {
    const bn_json *blocks = bn_json_get(r, "blocks");
    CHECK(blocks && blocks->type == BN_JSON_ARRAY && (int)blocks->n == n_blocks);
    if (!blocks || (int)blocks->n != n_blocks) return;
    int removed[64], n = report_removed(r, removed, 64);
    CHECK_EQ_INT(n, n_removed);
    for (int i = 0; i < n_blocks; i++) {
        double s = num(&blocks->items[i], key);
        CHECK_MSG(isfinite(s), "block %d has no finite %s", i, key);
        const bn_json *rm = bn_json_get(&blocks->items[i], "removed");
        int is_removed = rm && rm->type == BN_JSON_BOOL && rm->boolean;
        /* every removed block scores <= every kept block */
        for (int k = 0; is_removed && k < n_blocks; k++) {
            const bn_json *rk = bn_json_get(&blocks->items[k], "removed");
            if (rk && rk->type == BN_JSON_BOOL && !rk->boolean)
                CHECK_MSG(s <= num(&blocks->items[k], key), "removed block %d (%s %g) scores above kept block %d (%g)",
                          i, key, s, k, num(&blocks->items[k], key));
        }
    }
}

static int tensor_is_block(const bn_gguf_tensor *t, int *block, const char **rest) {
    char name[256];
    snprintf(name, sizeof name, "%.*s", (int)t->name.len, t->name.data);
    int off = 0;
    if (sscanf(name, "blk.%d.%n", block, &off) != 1 || off == 0) return 0;
    *rest = t->name.data + off;
    return 1;
}

/* `out` is `in` with only blocks kept[0..n_kept) (renumbered), the tensors
 * byte-identical and, with `same_metadata`, every metadata key equal except
 * ARCH.block_count. */
static void check_pruned(const char *in_path, const char *out_path, const int *kept, int n_kept, int same_metadata) {
    bn_gguf_file *in = NULL, *out = NULL;
    CHECK_MSG(bn_gguf_open(in_path, &in) == BITNET_OK, "%s: %s", in_path, bitnet_last_error());
    CHECK_MSG(bn_gguf_open(out_path, &out) == BITNET_OK, "%s: %s", out_path, bitnet_last_error());
    if (!in || !out) {
        bn_gguf_close(in);
        bn_gguf_close(out);
        return;
    }
    char arch[64] = "", key[128];
    CHECK(bn_gguf_get_str(in, "general.architecture", arch, sizeof arch) == 1);
    snprintf(key, sizeof key, "%s.block_count", arch);
    uint32_t n_in = 0, n_out = 0;
    CHECK(bn_gguf_get_u32(in, key, &n_in) == 1 && bn_gguf_get_u32(out, key, &n_out) == 1);
    CHECK_EQ_INT(n_out, n_kept);
    if (same_metadata) CHECK_EQ_INT(in->n_kv, out->n_kv);
    for (uint64_t i = 0; same_metadata && i < in->n_kv; i++) {
        char k[256];
        snprintf(k, sizeof k, "%.*s", (int)in->kv[i].key.len, in->kv[i].key.data);
        const bn_gguf_kv *o = bn_gguf_find_kv(out, k);
        CHECK_MSG(o != NULL, "key %s missing from the pruned model", k);
        if (o && strcmp(k, key) != 0) CHECK_MSG(bn_gguf_value_equal(&in->kv[i].value, &o->value), "key %s changed", k);
    }
    /* every input tensor of a kept block, or outside the blocks, is in out, byte for byte */
    uint64_t expected = 0;
    for (uint64_t i = 0; i < in->n_tensors; i++) {
        const bn_gguf_tensor *t = &in->tensors[i];
        int b = -1, j = -1;
        const char *rest = NULL;
        char name[256];
        if (tensor_is_block(t, &b, &rest)) {
            for (int k = 0; k < n_kept; k++)
                if (kept[k] == b) j = k;
            if (j < 0) continue; /* removed */
            snprintf(name, sizeof name, "blk.%d.%.*s", j, (int)(t->name.len - (size_t)(rest - t->name.data)), rest);
        } else {
            snprintf(name, sizeof name, "%.*s", (int)t->name.len, t->name.data);
        }
        expected++;
        const bn_gguf_tensor *o = bn_gguf_find_tensor(out, name);
        CHECK_MSG(o != NULL, "tensor %s missing from the pruned model", name);
        if (!o) continue;
        CHECK_MSG(o->ggml_type == t->ggml_type && o->n_dims == t->n_dims && o->nbytes == t->nbytes &&
                      !memcmp(o->ne, t->ne, sizeof t->ne) && !memcmp(o->data, t->data, t->nbytes),
                  "tensor %s differs from %.*s of the input", name, (int)t->name.len, t->name.data);
    }
    CHECK_EQ_INT(out->n_tensors, expected);
    bn_gguf_close(in);
    bn_gguf_close(out);
}

/* Greedy generation from the pruned model works and starts with the prompt. */
static void check_generates(const char *model) {
    char *out = run_ok("infer -m %s -p 'Once upon a time' --steps 32 --temp 0 2>/dev/null", model);
    CHECK_MSG(out && strncmp(out, "Once upon a time", 16) == 0 && strlen(out) > 30, "%s: %s", model,
              out ? out : "(null)");
    free(out);
}

static void kept_from_report(const bn_json *r, int n_blocks, int *kept, int *n_kept) {
    int removed[64], n = report_removed(r, removed, 64);
    *n_kept = 0;
    for (int l = 0; l < n_blocks; l++) {
        int gone = 0;
        for (int i = 0; i < n; i++) gone |= removed[i] == l;
        if (!gone) kept[(*n_kept)++] = l;
    }
}

/* out_path is in_path (of 8 blocks) with the blocks the report removed taken
 * out, all other metadata the same; returns how many blocks it kept. */
static int check_pruned_as_reported(const bn_json *r, const char *in_path, const char *out_path) {
    int kept[8], n_kept = 0;
    kept_from_report(r, 8, kept, &n_kept);
    check_pruned(in_path, out_path, kept, n_kept, 1);
    return n_kept;
}

/* The embedded model (8 blocks) pruned with the one-pass metrics. */
TEST(prune_embedded_model_round_trip) {
    const char *calib = bn_test_tmp(".jsonl");
    CHECK(write_calib_jsonl(calib));
    static const struct { const char *metric; int target; } runs[] = {{"cosine", 6}, {"variance", 5}};
    for (int i = 0; i < 2; i++) {
        const char *out = bn_test_tmp(".gguf"), *report = bn_test_tmp(".json");
        char *stdout_text = run_ok("prune --calibration-data %s --target-layers %d --metric %s -c 64 --bench-tokens 4 "
                                   "-o %s --report %s 2>/dev/null",
                                   calib, runs[i].target, runs[i].metric, out, report);
        char row[64];
        snprintf(row, sizeof row, "| blocks | 8 | %d |", runs[i].target);
        CHECK_MSG(stdout_text && strstr(stdout_text, row), "table lacks '%s': %s", row, stdout_text ? stdout_text : "");
        free(stdout_text);
        bn_json *r = read_report(report);
        if (!r) continue;
        check_lowest_removed(r, runs[i].metric, 8, 8 - runs[i].target);
        const bn_json *after = bn_json_get(r, "after");
        CHECK(num(after, "blocks") == runs[i].target && num(after, "ms_per_token") > 0);
        CHECK_EQ_INT(check_pruned_as_reported(r, bn_test_repo("models/default.gguf"), out), runs[i].target);
        check_generates(out);
        CHECK_EQ_INT(bn_test_temporaries_left(out), 0);
        bn_json_free(r);
    }
}

/* --metric ppl: the greedy steps' calibration perplexity is what
 * build/perplexity measures on the written file, and the held-out numbers
 * before/after are build/perplexity's on the input and the output. */
TEST(prune_ppl_metric_agrees_with_perplexity_tool) {
    const char *model = bn_test_repo("models/default.gguf");
    const char *calib = bn_test_tmp(".txt"), *eval = bn_test_tmp(".txt");
    const char *out = bn_test_tmp(".gguf"), *report = bn_test_tmp(".json");
    /* one paragraph without a trailing newline: the calibration stream is then
     * exactly the token stream build/perplexity makes of the file */
    char both[4096];
    snprintf(both, sizeof both, "%s %s", story_a, story_b);
    CHECK(write_text(calib, both) && write_text(eval, story_c));
    free(run_ok("prune -m %s --calibration-data %s --eval-data %s --target-layers 6 --metric ppl -c 32 --bench-tokens 0 "
                "-o %s --report %s 2>/dev/null",
                model, calib, eval, out, report));
    bn_json *r = read_report(report);
    if (!r) return;
    /* the first greedy step removes the block whose absence costs least; the
     * second is chosen with that one already gone, so it is only checked below */
    const bn_json *blocks = bn_json_get(r, "blocks");
    int removed[8], n_removed = report_removed(r, removed, 8);
    CHECK_EQ_INT(n_removed, 2);
    for (int l = 0; blocks && n_removed == 2 && l < (int)blocks->n; l++)
        CHECK(num(&blocks->items[removed[0]], "calib_ppl_without") <= num(&blocks->items[l], "calib_ppl_without"));
    const bn_json *steps = bn_json_get(r, "greedy_calib_ppl");
    CHECK(steps && steps->type == BN_JSON_ARRAY && steps->n == 2);

    const struct { const char *model, *text; double want; } cases[] = {
        {out, calib, steps && steps->n == 2 ? steps->items[1].number : NAN},
        {model, calib, num(bn_json_get(r, "calibration"), "ppl_full_model")},
        {model, eval, num(bn_json_get(r, "before"), "eval_ppl")},
        {out, eval, num(bn_json_get(r, "after"), "eval_ppl")},
    };
    for (int i = 0; i < 4; i++) {
        char *text = run_ok("perplexity -m %s -f %s -c 32 2>/dev/null", cases[i].model, cases[i].text);
        double ppl = -1;
        const char *line = text ? strstr(text, "PPL = ") : NULL;
        CHECK_MSG(line && sscanf(line, "PPL = %lf", &ppl) == 1, "case %d: no PPL line: %s", i, text ? text : "");
        /* build/perplexity prints 4 decimals */
        CHECK_MSG(fabs(ppl - cases[i].want) <= 6e-5, "case %d: build/perplexity %.4f, report %.6f", i, ppl, cases[i].want);
        free(text);
    }
    /* the pruned model is worse on held-out text, but not destroyed */
    double before = num(bn_json_get(r, "before"), "eval_ppl"), after = num(bn_json_get(r, "after"), "eval_ppl");
    CHECK_MSG(after >= before && after < 10 * before, "eval ppl %g -> %g", before, after);
    check_pruned_as_reported(r, model, out);
    bn_json_free(r);
}

/* An ak42 input becomes the GGUF that convert writes, minus the removed blocks. */
TEST(prune_ak42_1m_matches_convert) {
    const char *model = bn_test_shared("models/bitnet158-tinystories-1M.ak42.bin");
    const char *tok = bn_test_shared("models/tok512.bin");
    if (!model || !tok) SKIP("../shared not present");
    const char *calib = bn_test_tmp(".jsonl"), *report = bn_test_tmp(".json");
    const char *out = bn_test_tmp(".gguf"), *full = bn_test_tmp(".gguf");
    CHECK(write_calib_jsonl(calib));
    free(run_ok("prune -m %s --tokenizer %s --calibration-data %s --target-layers 5 -c 64 --bench-tokens 4 -o %s "
                "--report %s 2>/dev/null",
                model, tok, calib, out, report));
    free(run_ok("convert %s --tokenizer %s --type i2_s -o %s 2>/dev/null", model, tok, full));
    bn_json *r = read_report(report);
    if (!r) return;
    check_lowest_removed(r, "cosine", 8, 3);
    check_pruned_as_reported(r, full, out);
    check_generates(out);
    bn_json_free(r);
}

/* -o *.safetensors writes the same pruned model (same greedy text), and a
 * safetensors input is pruned again into a GGUF whose tensors are the
 * original GGUF's, byte for byte. */
TEST(prune_safetensors_output_and_input) {
    const char *model = bn_test_repo("models/default.gguf");
    const char *calib = bn_test_tmp(".jsonl"), *ra = bn_test_tmp(".json"), *rc = bn_test_tmp(".json");
    const char *a = bn_test_tmp(".gguf"), *b = bn_test_tmp(".safetensors"), *c = bn_test_tmp(".gguf");
    CHECK(write_calib_jsonl(calib));
    const char *common = "--metric cosine -c 64 --bench-tokens 2";
    free(run_ok("prune -m %s --calibration-data %s --target-layers 6 %s -o %s --report %s 2>/dev/null", model, calib,
                common, a, ra));
    /* the vocabulary to load the safetensors file back comes from the input GGUF */
    free(run_ok("prune -m %s --calibration-data %s --target-layers 6 %s -o %s 2>/dev/null", model, calib, common, b));
    char *ta = run_ok("infer -m %s -p 'Once upon a time' --steps 40 --temp 0 2>/dev/null", a);
    char *tb = run_ok("infer -m %s --tokenizer %s -p 'Once upon a time' --steps 40 --temp 0 2>/dev/null", b, model);
    CHECK_MSG(ta && tb && strlen(ta) > 20 && !strcmp(ta, tb), "gguf and safetensors outputs differ: '%s' vs '%s'",
              ta ? ta : "", tb ? tb : "");
    free(ta);
    free(tb);

    free(run_ok("prune -m %s --tokenizer %s --calibration-data %s --target-layers 5 %s -o %s --report %s 2>/dev/null", b,
                model, calib, common, c, rc));
    bn_json *jra = read_report(ra), *jrc = read_report(rc);
    if (jra && jrc) {
        int kept_a[8], n_a = 0, kept_c[8], n_c = 0, kept[8];
        kept_from_report(jra, 8, kept_a, &n_a);
        kept_from_report(jrc, 6, kept_c, &n_c);
        CHECK(n_a == 6 && n_c == 5);
        for (int i = 0; i < n_c && n_a == 6; i++) kept[i] = kept_a[kept_c[i]];
        check_pruned(model, c, kept, n_c, 0);
    }
    bn_json_free(jra);
    bn_json_free(jrc);
}

/* One line on stderr, the expected status, and no output file (nor its .tmp). */
static void expect_error(const char *cmd, int want_status, const char *want_text, const char *out) {
    int status = -1;
    size_t n = 0;
    char *text = bn_test_run_tool(cmd, &n, &status);
    CHECK_MSG(status == want_status, "'%s' -> status %d, want %d (%s)", cmd, status, want_status, text ? text : "");
    CHECK_MSG(text && strstr(text, want_text), "'%s' output lacks '%s': %s", cmd, want_text, text ? text : "(null)");
    CHECK_MSG(text && n > 0 && strchr(text, '\n') == text + n - 1, "'%s' error is not one line: %s", cmd,
              text ? text : "");
    CHECK_MSG(!exists(out) && bn_test_temporaries_left(out) == 0, "'%s' left %s behind", cmd, out);
    free(text);
}

TEST(prune_bad_inputs_are_clean_errors) {
    char cmd[4096], want[600];
    const char *calib = bn_test_tmp(".jsonl"), *bad = bn_test_tmp(".jsonl"), *bad2 = bn_test_tmp(".jsonl");
    const char *shorttext = bn_test_tmp(".txt"), *out = bn_test_tmp(".gguf");
    CHECK(write_calib_jsonl(calib));
    CHECK(write_text(bad, "{\"text\": \"one\"}\n\n{\"text\": \"two\"}\n{\"text\": \"three}\n"));
    CHECK(write_text(bad2, "{\"text\": \"one\"}\n{\"text\": 2}\n"));
    CHECK(write_text(shorttext, "Once upon a time."));
    const char *common = "-c 64 --bench-tokens 2";

    /* a malformed JSON Lines line is reported with its line number */
    snprintf(cmd, sizeof cmd, "prune --calibration-data %s --target-layers 6 %s -o %s 2>&1", bad, common, out);
    snprintf(want, sizeof want, "%s:4:", bad);
    expect_error(cmd, 1, want, out);
    snprintf(cmd, sizeof cmd, "prune --calibration-data %s --target-layers 6 %s -o %s 2>&1", bad2, common, out);
    snprintf(want, sizeof want, "%s:2:", bad2);
    expect_error(cmd, 1, want, out);
    /* --target-layers must leave at least one block and remove at least one */
    snprintf(cmd, sizeof cmd, "prune --calibration-data %s --target-layers 8 %s -o %s 2>&1", calib, common, out);
    expect_error(cmd, 2, "--target-layers 8 must be less than the model's 8 layers", out);
    snprintf(cmd, sizeof cmd, "prune --calibration-data %s --target-layers 0 %s -o %s 2>&1", calib, common, out);
    expect_error(cmd, 2, "--target-layers", out);
    snprintf(cmd, sizeof cmd, "prune --calibration-data %s --target-layers -3 %s -o %s 2>&1", calib, common, out);
    expect_error(cmd, 2, "--target-layers", out);
    /* missing files */
    snprintf(cmd, sizeof cmd, "prune --calibration-data /nonexistent/c.jsonl --target-layers 6 -o %s 2>&1", out);
    expect_error(cmd, 1, "/nonexistent/c.jsonl", out);
    snprintf(cmd, sizeof cmd, "prune -m /nonexistent/m.gguf --calibration-data %s --target-layers 6 -o %s 2>&1", calib,
             out);
    expect_error(cmd, 1, "/nonexistent/m.gguf", out);
    snprintf(cmd, sizeof cmd, "prune --calibration-data %s --eval-data /nonexistent/e.txt --target-layers 6 -o %s 2>&1",
             calib, out);
    expect_error(cmd, 1, "/nonexistent/e.txt", out);
    /* too little text for one window */
    snprintf(cmd, sizeof cmd, "prune --calibration-data %s --target-layers 6 %s -o %s 2>&1", shorttext, common, out);
    expect_error(cmd, 1, "fewer than one window", out);
    snprintf(cmd, sizeof cmd, "prune --calibration-data %s --eval-data %s --target-layers 6 %s -o %s 2>&1", calib,
             shorttext, common, out);
    expect_error(cmd, 1, "fewer than one window", out);
    /* an output that cannot be created fails before any work */
    snprintf(cmd, sizeof cmd, "prune --calibration-data %s --target-layers 6 %s -o /nonexistent/p.gguf 2>&1", calib,
             common);
    expect_error(cmd, 1, "/nonexistent/p.gguf: cannot create a temporary file in /nonexistent", "/nonexistent/p.gguf");
    /* usage errors */
    snprintf(cmd, sizeof cmd, "prune --calibration-data %s --target-layers 6 -o %s.safetensors 2>&1", calib, out);
    snprintf(want, sizeof want, "%s.safetensors", out);
    expect_error(cmd, 2, "pass --tokenizer", want);
    snprintf(cmd, sizeof cmd, "prune --calibration-data %s --target-layers 6 --metric entropy -o %s 2>&1", calib, out);
    expect_error(cmd, 2, "unknown --metric 'entropy'", out);
    snprintf(cmd, sizeof cmd, "prune --calibration-data %s --target-layers 6 2>&1", calib);
    expect_error(cmd, 2, "-o OUT", out);
    expect_error("prune --bogus 1 2>&1", 2, "--bogus", out);
}
