/* test_infer.c - end-to-end: the CLI reproduces the reference greedy outputs. */
#include "bitnet.h"
#include "test.h"

#include <unistd.h>

static void expect_reference(const char *model_rel, const char *extra, const char *ref_rel) {
    const char *ref_path = bn_test_shared(ref_rel);
    if (!ref_path) {
        bn_test_skip("../shared not present");
        return;
    }
    size_t ref_len;
    char *ref = bn_test_read_file(ref_path, &ref_len);
    const char *model = bn_test_shared(model_rel);
    CHECK(model != NULL);
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "infer -m %s %s -p 'Once upon a time' --temp 0 --steps 256 2>/dev/null", model, extra);
    size_t out_len = 0;
    int status = -1;
    char *out = bn_test_run_tool(cmd, &out_len, &status);
    CHECK_EQ_INT(status, 0);
    CHECK(out != NULL);
    if (out && ref) {
        CHECK_EQ_INT(out_len, ref_len);
        CHECK_MSG(out_len == ref_len && memcmp(out, ref, ref_len) == 0, "output differs from %s:\n%s", ref_rel, out);
    }
    free(out);
    free(ref);
}

TEST(infer_stories260k_reference_greedy) {
    expect_reference("models/stories260K.gguf", "", "models/stories260K.reference-greedy.txt");
}

TEST(infer_bad_model_file_is_a_clean_error) {
    int status = 0;
    size_t n;
    char *out = bn_test_run_tool("infer -m /nonexistent/model.gguf 2>&1", &n, &status);
    CHECK(status == 1);
    CHECK(out && strstr(out, "/nonexistent/model.gguf") && strstr(out, "cannot open"));
    free(out);
    out = bn_test_run_tool("infer -m Makefile 2>&1", &n, &status);
    CHECK(status == 1);
    CHECK(out && strstr(out, "Makefile: unknown file format"));
    free(out);
    out = bn_test_run_tool("infer --bogus 2>&1", &n, &status);
    CHECK(status == 2);
    free(out);
}

TEST(infer_default_model_runs) {
    int status = -1;
    size_t n = 0;
    char *out = bn_test_run_tool("infer -p 'Once upon a time' --steps 40 --temp 0 2>/dev/null", &n, &status);
    CHECK_EQ_INT(status, 0);
    CHECK(out && strncmp(out, "Once upon a time", 16) == 0 && n > 40);
    free(out);
}

/* The embedded default model's greedy text, byte for byte as the x86-64 build
 * wrote it (tests/fixtures/default-model.reference-greedy.txt, made with
 * `build/infer -p 'Once upon a time' --temp 0 --steps 256`): the same on every
 * target and kernel table (make test-arm64, test-riscv64, test-armhf, test-windows
 * run it), since every table gives the scalar bits. */
TEST(infer_default_model_reference_greedy) {
    size_t ref_len = 0, out_len = 0;
    char *ref = bn_test_read_file("tests/fixtures/default-model.reference-greedy.txt", &ref_len);
    REQUIRE(ref != NULL);
    int status = -1;
    char *out = bn_test_run_tool("infer -p 'Once upon a time' --temp 0 --steps 256 2>/dev/null", &out_len, &status);
    CHECK_EQ_INT(status, 0);
    CHECK_MSG(out && out_len == ref_len && memcmp(out, ref, ref_len) == 0, "the default model's text differs:\n%s",
              out ? out : "(none)");
    free(out);
    free(ref);
}

/* The ak42 1M model must reproduce its reference under every kernel set this
 * machine has, from the ak42 file and from every converted GGUF layout. */
static const char *isas[] = {"scalar", "avx2", "avx512", "neon", "rvv"};

static int isa_runs_here(const char *isa) {
    char want[64];
    snprintf(want, sizeof want, "isa %s", isa); /* the model line infer prints on stderr */
    int st;
    size_t n;
    char *out = bn_test_run_tool("infer --steps 2 --temp 0 2>&1", &n, &st);
    const int ok = out && strstr(out, want) != NULL;
    free(out);
    return ok;
}

TEST(infer_ak42_1m_reference_every_isa) {
    const char *tok = bn_test_shared("models/tok512.bin");
    if (!tok) SKIP("../shared not present");
    char extra[2048];
    int ran = 0;
    for (size_t i = 0; i < sizeof isas / sizeof isas[0]; i++) {
        bn_test_setenv("BITNET_ISA", isas[i]);
        if (!isa_runs_here(isas[i])) {
            bn_test_setenv("BITNET_ISA", NULL);
            continue;
        }
        snprintf(extra, sizeof extra, "--tokenizer %s", tok);
        expect_reference("models/bitnet158-tinystories-1M.ak42.bin", extra,
                         "models/bitnet158-tinystories-1M.reference-greedy.txt");
        bn_test_setenv("BITNET_ISA", NULL);
        ran++;
    }
    /* scalar and at least one SIMD set, where the target has one (not 32-bit ARM, nor RISC-V without V) */
    CHECK(ran >= (strcmp(bitnet_isa_name(), "scalar") ? 2 : 1));
}

/* Converts `model` (plus `convert_extra`) to `type`, then checks that the GGUF
 * (which carries its vocabulary: no --tokenizer) reproduces `ref_rel`. */
static void expect_converted(const char *model, const char *convert_extra, const char *type, const char *ref_rel) {
    char cmd[4096];
    const char *out_path = bn_test_tmp(".gguf");
    snprintf(cmd, sizeof cmd, "convert %s %s --type %s -o %s 2>/dev/null", model, convert_extra, type, out_path);
    int st = -1;
    size_t n = 0, out_len = 0;
    free(bn_test_run_tool(cmd, &n, &st));
    CHECK_MSG(st == 0, "convert --type %s failed", type);
    char *ref = bn_test_read_file(bn_test_shared(ref_rel), &n);
    snprintf(cmd, sizeof cmd, "infer -m %s -p 'Once upon a time' --temp 0 --steps 256 2>/dev/null", out_path);
    char *out = bn_test_run_tool(cmd, &out_len, &st);
    CHECK_MSG(st == 0 && out && ref && out_len == n && memcmp(out, ref, n) == 0,
              "%s converted to %s does not reproduce %s", model, type, ref_rel);
    free(out);
    free(ref);
}

TEST(infer_ak42_1m_reference_every_converted_type) {
    const char *model_path = bn_test_shared("models/bitnet158-tinystories-1M.ak42.bin");
    if (!model_path) SKIP("../shared not present");
    char tok_arg[1100];
    snprintf(tok_arg, sizeof tok_arg, "--tokenizer %s", bn_test_shared("models/tok512.bin"));
    static const char *types[] = {"i2_s", "tq2_0", "tq1_0", "f16", "f32"};
    for (size_t i = 0; i < sizeof types / sizeof types[0]; i++)
        expect_converted(model_path, tok_arg, types[i], "models/bitnet158-tinystories-1M.reference-greedy.txt");
}

/* The float Llama path in F16: stories260K converted to f16 linears (and back
 * to f32) still reproduces the reference (its margins are wide enough). */
TEST(infer_stories260k_f16_and_f32_conversions) {
    const char *model_path = bn_test_shared("models/stories260K.gguf");
    if (!model_path) SKIP("../shared not present");
    expect_converted(model_path, "", "f16", "models/stories260K.reference-greedy.txt");
    expect_converted(model_path, "", "f32", "models/stories260K.reference-greedy.txt");
}

/* ---- llama.cpp command-line conventions ----------------------------------- */

static char *run_infer(const char *args, int *status) {
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "infer %s", args);
    char *out = bn_test_run_tool(cmd, NULL, status);
    return out ? out : calloc(1, 1);
}

/* -n counts generated tokens, as llama.cpp's: "-p ... -n 3" is the prompt and
 * three more tokens, exactly what --steps (llama2.c's positions, the last
 * prompt position generating the first token) gives for np + 2, np counting BOS. */
TEST(infer_n_counts_generated_tokens_as_llama_cpp) {
    const char *prompt = "Once upon a time there was";
    bitnet_model *m = NULL;
    REQUIRE(bitnet_model_load_default(NULL, &m) == BITNET_OK);
    bitnet_token toks[64];
    const int np = bitnet_tokenize(m, prompt, 1, toks, 64);
    bitnet_model_free(m);
    REQUIRE(np > 1);
    int st;
    char args[512];
    snprintf(args, sizeof args, "-p '%s' -n 3 --temp 0 2>/dev/null", prompt);
    char *three = run_infer(args, &st);
    CHECK_EQ_INT(st, 0);
    snprintf(args, sizeof args, "-p '%s' --steps %d --temp 0 2>/dev/null", prompt, np + 2);
    char *steps = run_infer(args, &st);
    CHECK_MSG(strcmp(three, steps) == 0, "-n 3: '%s', --steps %d: '%s'", three, np + 2, steps);
    snprintf(args, sizeof args, "-p '%s' -n 2 --temp 0 2>/dev/null", prompt);
    char *two = run_infer(args, &st);
    CHECK_MSG(strlen(two) < strlen(three) && strncmp(two, three, strlen(two)) == 0, "-n 2 '%s' vs -n 3 '%s'", two,
              three);
    free(two);
    free(three);
    free(steps);
    /* -n -1 (the default) runs to an end-of-generation token or a full context */
    CHECK_TOOL("infer " "-p 'Once upon a time' -n -1 -c 64 --temp 0 2>&1 >/dev/null", 0, "generation:");
}

/* The number of tokens the timing summary says were generated ("generation: ... / N tokens"). */
static int generated_count(const char *stderr_text) {
    const char *g = strstr(stderr_text, "generation:");
    const char *slash = g ? strchr(g, '/') : NULL;
    return slash ? atoi(slash + 1) : -1;
}

/* -n -1 stops at the end-of-sequence token. No model here ends a story with EOS
 * on its own (stories260K's stories end with BOS), so llama.cpp's -l/--logit-bias
 * raises EOS (id 2) until it becomes the argmax somewhere: the text up to there is
 * exactly the unbiased text's beginning (the bias moves no other logit), and the
 * run stops there instead of filling the context. */
TEST(infer_n_minus_one_stops_at_eos) {
    const char *model = bn_test_shared("models/stories260K.gguf");
    if (!model) SKIP("../shared not present");
    char args[1024];
    int st;
    snprintf(args, sizeof args, "-m %s -p 'Once upon a time' -n -1 -c 256 --temp 0 2>/dev/null", model);
    char *full = run_infer(args, &st);
    CHECK_EQ_INT(st, 0);
    snprintf(args, sizeof args, "-m %s -p 'Once upon a time' -n -1 -c 256 --temp 0 -l 2+20 2>/dev/null", model);
    char *cut = run_infer(args, &st);
    CHECK_EQ_INT(st, 0);
    CHECK_MSG(strlen(cut) > strlen("Once upon a time") && strlen(cut) < strlen(full) &&
                  !strncmp(cut, full, strlen(cut)), "with EOS raised: '%s'\nwithout: '%.200s'", cut, full);
    snprintf(args, sizeof args, "-m %s -p 'Once upon a time' -n -1 -c 256 --temp 0 -l 2+20 2>&1 >/dev/null", model);
    char *log = run_infer(args, &st);
    const int n_cut = generated_count(log);
    CHECK_MSG(n_cut > 0 && n_cut < 200, "stopped after %d tokens: %s", n_cut, log);
    free(log);
    /* EOS forced: nothing generated; --ignore-eos overrides the bias and runs to the context */
    snprintf(args, sizeof args, "-m %s -p 'Once upon a time' -n -1 -c 64 --temp 0 -l 2+inf 2>&1 >/dev/null", model);
    log = run_infer(args, &st);
    CHECK_MSG(st == 0 && generated_count(log) == 0, "%s", log);
    free(log);
    snprintf(args, sizeof args, "-m %s -p 'Once upon a time' -n -1 -c 64 --temp 0 -l 2+inf --ignore-eos 2>&1 >/dev/null",
             model);
    log = run_infer(args, &st);
    CHECK_MSG(st == 0 && generated_count(log) == 64 - 5 + 1, "%s", log);
    /* 5 prompt tokens with BOS fill positions 0..4; 5..63 take 59 generated tokens, and the last one
     * sampled (from position 63's logits) needs no place in the cache */
    free(log);
    /* the bias moves only its token: -l on a token never chosen leaves the text as it was */
    snprintf(args, sizeof args, "-m %s -p 'Once upon a time' -n 32 --temp 0 --logit-bias 100-inf 2>/dev/null", model);
    char *other = run_infer(args, &st);
    CHECK_MSG(st == 0 && !strncmp(other, full, strlen(other)), "%s", other);
    free(other);
    free(cut);
    free(full);
    /* bad biases: one line, exit 2 for the syntax, 1 for a token the vocabulary lacks */
    CHECK_TOOL("infer " "-l 15043 -n 1 2>&1", 2, "-l '15043': expected TOKEN_ID+BIAS");
    CHECK_TOOL("infer " "--logit-bias 2+x -n 1 2>&1", 2, "expected TOKEN_ID+BIAS");
    CHECK_TOOL("infer " "--logit-bias 99999+1 -n 1 2>&1", 1, "token 99999 is outside the vocabulary");
}

/* Command lines as bitnet.cpp's run_inference.py and llama-cli's README write them. */
TEST(infer_accepts_llama_cpp_and_bitnet_cpp_command_lines) {
    int st;
    char *out = run_infer("-p 'Once upon a time' -n 8 -t 2 -ngl 0 -c 256 -temp 0.8 -b 1 2>&1", &st);
    CHECK_MSG(st == 0 && strstr(out, "-ngl 0 ignored") && strstr(out, "generation:"), "run_inference.py line: %s", out);
    free(out);
    out = run_infer("-p 'Once' -n 4 --temperature 0 -ctk f16 -ctv f16 -C 0 --ignore-eos --no-display-prompt 2>/dev/null",
                    &st);
    CHECK_MSG(st == 0 && strncmp(out, "Once", 4) != 0 && strlen(out) > 0, "llama-cli flags: '%s'", out);
    free(out);
    CHECK_TOOL("infer " "-p 'Once' -n 2 -ctk q8_0 -ctv q8_0 2>&1", 0, "kv q8,");
    /* one type serves keys and values here: different ones are refused, not half-applied */
    CHECK_TOOL("infer " "-p 'Once' -n 2 -ctk q8_0 -ctv f16 2>&1", 2, "-ctv f16 differs from -ctk q8_0");
    char path[512];
    REQUIRE(bn_test_tmp_text(path, sizeof path, ".txt", "Once upon a time"));
    char args[700];
    snprintf(args, sizeof args, "-f %s -n 6 --temp 0 2>/dev/null", path);
    char *from_file = run_infer(args, &st);
    CHECK_EQ_INT(st, 0);
    char *from_arg = run_infer("-p 'Once upon a time' -n 6 --temp 0 2>/dev/null", &st);
    CHECK_STR(from_file, from_arg);
    free(from_file);
    free(from_arg);
    unlink(path);
    /* -e turns \n into a newline in the prompt */
    char *escaped = run_infer("-p 'Once\\nupon' -e -n 1 --temp 0 2>/dev/null", &st);
    CHECK_MSG(st == 0 && strncmp(escaped, "Once\nupon", 9) == 0, "-e: '%s'", escaped);
    free(escaped);
    char *version = run_infer("--version", &st);
    CHECK(st == 0 && strstr(version, "libbitnet"));
    free(version);
    /* --color (-co): the prompt echo in llama-cli's yellow, reset before the generated text */
    char *plain = run_infer("-p 'Once upon a time' -n 4 --temp 0 2>/dev/null", &st);
    char *colored = run_infer("-p 'Once upon a time' -n 4 --temp 0 --color 2>/dev/null", &st);
    char want[512];
    snprintf(want, sizeof want, "\x1b[33mOnce upon a time\x1b[0m%s", plain + strlen("Once upon a time"));
    CHECK_MSG(st == 0 && !strcmp(colored, want), "--color: '%s'", colored);
    free(plain);
    free(colored);
    /* --help in llama.cpp's groups, every flag once */
    char *help = run_infer("--help", &st);
    CHECK(st == 0 && strstr(help, "----- common params -----") && strstr(help, "----- sampling params -----") &&
          strstr(help, "----- example-specific params -----") && strstr(help, "----- speculative decoding"));
    CHECK(strstr(help, "--lookup N") && strstr(help, "-co, --color") && strstr(help, "--draft-max N"));
    free(help);
    CHECK_TOOL("infer " "-n -2 2>&1", 2, "-n expects an integer in -1..");
}

/* --chat past the context: llama.cpp's context shift keeps the first --keep
 * tokens and drops half of the rest, so a long chat goes on; with
 * --no-context-shift it stops with "context full", as before. */
TEST(infer_chat_context_shift_with_keep) {
    const char *path = bn_test_tmp(".txt");
    FILE *f = fopen(path, "wb");
    REQUIRE(f != NULL);
    for (int i = 0; i < 30; i++) fprintf(f, "Tell me about the cat number %d and the dog.\n", i);
    fclose(f);
    char args[700];
    int st;
    snprintf(args, sizeof args, "--chat -c 128 --keep 32 -n 10 --temp 0 < %s 2>&1 >/dev/null", path);
    char *out = run_infer(args, &st);
    int turns = 0;
    for (const char *p = out; (p = strstr(p, "[turn ")); p++) turns++;
    CHECK_MSG(st == 0 && turns == 30 && strstr(out, "[context shift: dropped") && strstr(out, "after the first 33"),
              "status %d, %d turns: %.600s", st, turns, out);
    free(out);
    snprintf(args, sizeof args, "--chat -c 128 --no-context-shift -n 10 --temp 0 < %s 2>&1 >/dev/null", path);
    out = run_infer(args, &st);
    CHECK_MSG(st == 1 && strstr(out, "context full"), "status %d: %.300s", st, out);
    free(out);
}

/* llama.cpp's defaults and switches: a fresh seed unless -s (printed with -v),
 * threads from the physical cores, --chat-template, -st, --log-disable. */
TEST(infer_llama_cpp_defaults_and_switches) {
    int st;
    char *a = run_infer("-v -n 2 -p Once 2>&1 >/dev/null", &st), *b = run_infer("-v -n 2 -p Once 2>&1 >/dev/null", &st);
    const char *sa = strstr(a, "infer: seed "), *sb = strstr(b, "infer: seed ");
    CHECK_MSG(sa && sb && strtoull(sa + 12, NULL, 10) != strtoull(sb + 12, NULL, 10), "seeds: %.80s / %.80s", a, b);
    CHECK_MSG(sa && strstr(sa, " threads,"), "%s", a);
    free(a);
    free(b);
    a = run_infer("-s 7 --temp 0.8 -n 16 -p Once 2>/dev/null", &st);
    b = run_infer("-s 7 --temp 0.8 -n 16 -p Once 2>/dev/null", &st);
    CHECK_MSG(st == 0 && strcmp(a, b) == 0, "-s 7 twice: '%s' / '%s'", a, b);
    free(a);
    free(b);
    char path[512], args[700];
    REQUIRE(bn_test_tmp_text(path, sizeof path, ".txt", "Hello\nAgain\n"));
    snprintf(args, sizeof args, "--chat-template llama3 -st -n 4 --temp 0 < %s 2>&1 >/dev/null", path);
    a = run_infer(args, &st);
    int turns = 0;
    for (const char *p = a; (p = strstr(p, "[turn ")); p++) turns++;
    CHECK_MSG(st == 0 && strstr(a, "chat template: llama3") && turns == 1, "%s", a);
    free(a);
    unlink(path);
    a = run_infer("--log-disable -n 2 -p Once 2>&1 >/dev/null", &st);
    CHECK_MSG(st == 0 && !strstr(a, "generation:"), "%s", a);
    free(a);
}

/* -i -r through a pseudo-terminal (util-linux `script`): generation stops at
 * the reverse prompt, hands over for a line, goes on after it, and ends at EOF. */
TEST(infer_interactive_reverse_prompt_through_a_pty) {
    if (getenv("BITNET_EXEC_PREFIX")) SKIP("the pty test runs natively only");
    if (system("command -v script >/dev/null 2>&1") != 0) SKIP("util-linux script is not installed");
    char cmd[1024];
    snprintf(cmd, sizeof cmd,
             "printf 'the dog ran\\nand the cat\\n' | timeout 120 script -qec \"%s/infer -p 'Once upon a time' -i -r . "
             "--temp 0 -n 60 --log-disable\" /dev/null 2>&1",
             BN_BUILD_DIR);
    int st;
    char *out = bn_test_run_shell(cmd, NULL, &st);
    REQUIRE(out != NULL);
    CHECK_MSG(st == 0, "exit %d: %s", st, out);
    /* the story stopped at '.', and went on after each of the two lines */
    const char *first = strstr(out, "Once upon a time"), *second = first ? strchr(first, '.') : NULL;
    const char *third = second ? strchr(second + 1, '.') : NULL;
    CHECK_MSG(first && second && third && strlen(third + 1) > 5, "%s", out);
    /* and the lines were read into the context: alone, the model goes on otherwise after the first '.' */
    int st2;
    char *plain = run_infer("-p 'Once upon a time' --temp 0 -n 40 2>/dev/null", &st2);
    const char *pdot = strchr(plain, '.');
    CHECK_MSG(pdot && second && strncmp(pdot, second, 12) != 0, "interactive '%.40s' vs alone '%.40s'", second ? second : "",
              pdot ? pdot : "");
    free(plain);
    free(out);
}

/* --prompt-cache (llama.cpp's): the first run writes the prompt's KV cache,
 * a second run with the same prompt evaluates only its last token, one with a
 * longer prompt only what follows the cached part, and each prints the text a
 * run without the cache prints. A file of another model is refused. */
TEST(infer_prompt_cache_reuses_the_prompt_and_keeps_the_text) {
    const char *model = bn_test_shared("models/stories260K.gguf");
    if (!model) SKIP("../shared not present");
    char errs[600], args[1536];
    const char *path = bn_test_tmp(".session");
    snprintf(errs, sizeof errs, "%s.log", path);
    const char *prompts[3] = {"Once upon a time there was a little girl", "Once upon a time there was a little girl",
                              "Once upon a time there was a little girl named Lily who"};
    const char *reused[3] = {"does not exist yet", "reused 11 of the prompt's 12 tokens", "reused 12 of the prompt's 17 tokens"};
    for (int i = 0; i < 3; i++) {
        int st;
        snprintf(args, sizeof args, "-m %s -p '%s' -n 24 --temp 0 2>/dev/null", model, prompts[i]);
        char *plain = run_infer(args, &st);
        snprintf(args, sizeof args, "-m %s -p '%s' -n 24 --temp 0 --prompt-cache %s 2>%s", model, prompts[i], path, errs);
        char *cached = run_infer(args, &st);
        char *log = bn_test_read_file(errs, NULL);
        CHECK_MSG(st == 0 && plain && cached && !strcmp(plain, cached), "run %d: '%s' vs '%s'", i, cached, plain);
        CHECK_MSG(log && strstr(log, reused[i]), "run %d: %s", i, log);
        free(plain);
        free(cached);
        free(log);
    }
    /* --prompt-cache-ro: read, not rewritten */
    int st;
    snprintf(args, sizeof args, "-m %s -p 'Once upon a time' -n 4 --prompt-cache %s --prompt-cache-ro 2>%s", model, path, errs);
    free(run_infer(args, &st));
    snprintf(args, sizeof args, "-m %s -p '%s' -n 1 --prompt-cache %s 2>%s", model, prompts[2], path, errs);
    free(run_infer(args, &st));
    char *log = bn_test_read_file(errs, NULL);
    CHECK_MSG(st == 0 && log && strstr(log, "reused 16 of the prompt's 17 tokens"), "%s", log);
    free(log);
    /* another model's file: one line, exit 1 */
    snprintf(args, sizeof args, "-p 'Once upon a time' -n 1 --prompt-cache %s 2>&1 >/dev/null", path);
    log = run_infer(args, &st);
    CHECK_MSG(st == 1 && log && strstr(log, path) && strstr(log, "written for another model") && !strchr(strchr(log, '\n') + 1, '\n'),
              "exit %d: %s", st, log);
    free(log);
    remove(errs);
}
