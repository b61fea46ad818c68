/* test_reliability.c - regression tests of the reliability round 2 findings
 * (docs/security.md, "Round 2"), each named after its item. */
#include <sys/stat.h>
#include <unistd.h>
#ifndef _WIN32
#include <sys/wait.h>
#endif

#include "test.h"

static int write_text(const char *path, const char *text) { return bn_test_write_file(path, text, strlen(text)); }

static char *run(const char *cmd, int *status) {
    char *out = bn_test_run_tool(cmd, NULL, status);
    return out ? out : calloc(1, 1);
}

/* build/convert of the default model to an I2_S GGUF at `path`: its output
 * (stdout and stderr), the exit status in *status. */
static char *convert_default(const char *path, int *status) {
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "convert models/default.gguf --type i2_s -o %s 2>&1", path);
    return run(cmd, status);
}

/* A calibration file for prune: a few short texts. */
static void calib_file(char *path, size_t cap) {
    snprintf(path, cap, "%s", bn_test_tmp(".jsonl"));
    write_text(path, "{\"text\": \"Once upon a time there was a little girl named Lily. She liked to play outside.\"}\n"
                     "{\"text\": \"One day, a boy named Tom found a red ball in the park and gave it to his mom.\"}\n");
}

/* 1. prune -m X -o X destroyed X: the input, -o and --report must differ. */
TEST(reliability_1_prune_refuses_input_as_output) {
    char calib[512], cmd[4096];
    const char *model = bn_test_tmp(".gguf");
    calib_file(calib, sizeof calib);
    int status = -1;
    free(convert_default(model, &status));
    REQUIRE(status == 0);
    size_t n0 = 0, n1 = 0;
    char *before = bn_test_read_file(model, &n0);
    snprintf(cmd, sizeof cmd, "prune -m %s --calibration-data %s --target-layers 6 -c 32 --bench-tokens 0 -o %s 2>&1",
             model, calib, model);
    char *out = run(cmd, &status);
    CHECK_MSG(status == 2 && strstr(out, "must be three different files"), "status %d: %s", status, out);
    char *after = bn_test_read_file(model, &n1);
    CHECK_MSG(before && after && n0 == n1 && memcmp(before, after, n0) == 0, "the input changed");
    free(out);
    /* the report may not be the input either */
    snprintf(cmd, sizeof cmd, "prune -m %s --calibration-data %s --target-layers 6 -c 32 --bench-tokens 0 -o %s.out --report %s 2>&1",
             model, calib, model, model);
    out = run(cmd, &status);
    CHECK_MSG(status == 2 && strstr(out, "must be three different files"), "status %d: %s", status, out);
    free(out);
    free(before);
    free(after);
    unlink(calib);
}

/* 1. A failure after the model was written (here the report: its path is a
 * directory, so its rename fails) used to unlink -o: an existing file at -o
 * must survive, and no temporary stay behind. */
TEST(reliability_1_prune_late_failure_keeps_existing_output) {
    char calib[512], cmd[2048];
    const char *outp = bn_test_tmp(".gguf");
    const char *report = bn_test_tmp(".dir");
    calib_file(calib, sizeof calib);
    REQUIRE(write_text(outp, "the old file\n"));
    REQUIRE(bn_test_mkdir(report) == 0);
    snprintf(cmd, sizeof cmd,
             "prune --calibration-data %s --target-layers 6 -c 32 --bench-tokens 0 -o %s --report %s 2>&1", calib, outp,
             report);
    int status = -1;
    char *out = run(cmd, &status);
    CHECK_MSG(status != 0 && strstr(out, "cannot write the report"), "status %d: %s", status, out);
    size_t n = 0;
    char *left = bn_test_read_file(outp, &n);
    CHECK_MSG(left && strcmp(left, "the old file\n") == 0, "-o was replaced or removed: %s", left ? left : "(gone)");
    CHECK_EQ_INT(bn_test_temporaries_left(outp), 0);
    CHECK_EQ_INT(bn_test_temporaries_left(report), 0);
    free(left);
    free(out);
    unlink(calib);
}

/* 7. Temporaries had a predictable name opened without O_EXCL/O_NOFOLLOW: a
 * symlink planted at OUT.tmp made convert overwrite its target. */
TEST(reliability_7_planted_symlink_is_not_followed) {
#ifdef _WIN32
    SKIP("Windows: planting a symbolic link needs a privilege (the temporary is created with _O_EXCL there)");
#else
    char planted[600];
    const char *victim = bn_test_tmp(".victim");
    const char *outp = bn_test_tmp(".gguf");
    snprintf(planted, sizeof planted, "%s.tmp", outp);
    REQUIRE(write_text(victim, "precious\n"));
    REQUIRE(symlink(victim, planted) == 0);
    int status = -1;
    char *out = convert_default(outp, &status);
    CHECK_MSG(status == 0, "%s", out);
    char *v = bn_test_read_file(victim, NULL);
    CHECK_MSG(v && strcmp(v, "precious\n") == 0, "the symlink's target was overwritten");
    struct stat sb;
    CHECK(lstat(planted, &sb) == 0 && S_ISLNK(sb.st_mode)); /* left as it was */
    CHECK(stat(outp, &sb) == 0 && S_ISREG(sb.st_mode) && sb.st_size > 1000);
    free(v);
    free(out);
    unlink(planted);
#endif
}

/* 9. kill -9 during convert left OUT.tmp forever: temporaries carry the
 * writer's pid, and the next write beside OUT removes those of dead writers
 * (and leaves a live writer's alone). */
TEST(reliability_9_stale_temporaries_are_removed) {
#ifdef _WIN32
    SKIP("Windows: no fork to make a process id that is certainly gone");
#else
    char stale[700], live[700];
    const char *outp = bn_test_tmp(".gguf");
    pid_t dead = fork();
    if (dead == 0) _exit(0);
    REQUIRE(dead > 0);
    waitpid(dead, NULL, 0);
    const char *slash = strrchr(outp, '/');
    snprintf(stale, sizeof stale, "%.*s/.%s.bitnet-tmp.%d.0", (int)(slash - outp), outp, slash + 1, (int)dead);
    snprintf(live, sizeof live, "%.*s/.%s.bitnet-tmp.%d.0", (int)(slash - outp), outp, slash + 1, (int)getppid());
    REQUIRE(write_text(stale, "half a model"));
    REQUIRE(write_text(live, "another writer's"));
    int status = -1;
    char *out = convert_default(outp, &status);
    CHECK_MSG(status == 0, "%s", out);
    CHECK_MSG(access(stale, F_OK) != 0, "the dead writer's temporary %s is still there", stale);
    CHECK_MSG(access(live, F_OK) == 0, "a live writer's temporary was removed");
    free(out);
    unlink(live);
    unlink(stale);
#endif
}

/* 8. infer leaked on its error paths (the prompt longer than the context, a
 * full context in --chat, a bad model or tokenizer): under LeakSanitizer
 * (make asan) each exits with its message and no leak report. */
TEST(reliability_8_infer_error_paths_do_not_leak) {
#if !defined(__SANITIZE_ADDRESS__)
    SKIP("needs the ASan build (make asan), where LeakSanitizer checks the tools");
#else
    char cmd[2048];
    const char *text = bn_test_tmp(".txt");
    FILE *f = fopen(text, "wb");
    REQUIRE(f != NULL);
    for (int i = 0; i < 200; i++) fputs("Once upon a time there was a little dog. ", f);
    fclose(f);
    const char *cases[][2] = {
        {"infer -p \"$(cat %s)\" -c 64 2>&1", "more than --ctx-size"},
        {"infer --chat -c 16 < %s 2>&1", "context"},
        {"infer -m %s.missing -p hi 2>&1", "cannot open"},
        {"infer -m %s -p hi 2>&1", "unknown file format"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char c[1024];
        snprintf(c, sizeof c, cases[i][0], text);
        snprintf(cmd, sizeof cmd, "%s", c);
        int status = -1;
        bn_test_setenv("ASAN_OPTIONS", "detect_leaks=1");
        char *out = run(cmd, &status);
        CHECK_MSG(status != 0 && strstr(out, cases[i][1]), "'%s': status %d: %s", cmd, status, out);
        CHECK_MSG(!strstr(out, "LeakSanitizer"), "'%s' leaks:\n%s", cmd, out);
        free(out);
    }
#endif
}

/* 10. The loaders disagreed: safetensors accepted a NaN in a norm (GGUF
 * refuses it) and ak42 a header whose padding is not zero. */
#include "bitnet.h"
#include "formats/safetensors.h"
#include "model/model.h"

TEST(reliability_10_safetensors_nan_norm_rejected) {
    bitnet_model *m = NULL;
    REQUIRE(bitnet_model_load_default(NULL, &m) == BITNET_OK);
    const char *path = bn_test_tmp(".safetensors");
    REQUIRE_MSG(bn_safetensors_write_model(m, path) == BITNET_OK, "%s", bitnet_last_error());
    bitnet_model_free(m);
    bn_safetensors *f = NULL;
    REQUIRE(bn_safetensors_open(path, &f) == BITNET_OK);
    const bn_st_tensor *t = bn_safetensors_find(f, "model.norm.weight");
    REQUIRE(t != NULL);
    const long off = (long)((const uint8_t *)t->data - f->base) + 4 * 3; /* element 3 */
    bn_safetensors_close(f);
    FILE *fp = fopen(path, "r+b");
    REQUIRE(fp != NULL);
    const float nan = NAN;
    fseek(fp, off, SEEK_SET);
    fwrite(&nan, 4, 1, fp);
    fclose(fp);
    bitnet_model_params p = bitnet_model_default_params();
    p.tokenizer_path = "models/default.gguf";
    CHECK(bitnet_model_load(path, &p, &m) == BITNET_ERR_FORMAT);
    CHECK_MSG(strstr(bitnet_last_error(), "tensor 'model.norm.weight' has a non-finite value (nan) at [3]"),
              "%s", bitnet_last_error());
}

TEST(reliability_10_ak42_header_padding_must_be_zero) {
    const char *src = bn_test_shared("models/bitnet158-tinystories-1M.ak42.bin");
    if (!src) SKIP("../shared not present");
    size_t n = 0;
    char *bytes = bn_test_read_file(src, &n);
    REQUIRE(bytes && n > 256);
    bytes[200] = 1;
    const char *path = bn_test_tmp(".ak42.bin");
    FILE *fp = fopen(path, "wb");
    REQUIRE(fp && fwrite(bytes, 1, n, fp) == n);
    fclose(fp);
    bitnet_model_params p = bitnet_model_default_params();
    p.tokenizer_path = bn_test_shared("models/tok512.bin");
    bitnet_model *m = NULL;
    CHECK(bitnet_model_load(path, &p, &m) == BITNET_ERR_FORMAT);
    CHECK_MSG(strstr(bitnet_last_error(), "ak42 header byte 200 is 0x01; the padding after the header fields must be zero"),
              "%s", bitnet_last_error());
    free(bytes);
}

/* 2. A GGUF whose vocabulary is longer than its embedding was accepted, and a
 * prompt token beyond the embedding failed the server's whole batch: such a
 * file is refused at load now, as llama.cpp refuses it. */
#include "formats/gguf.h"
#include "gguf_edit.h"

TEST(reliability_2_vocabulary_longer_than_embedding_refused) {
    bn_gguf_file *f = NULL;
    REQUIRE(bn_gguf_open("models/default.gguf", &f) == BITNET_OK);
    const bn_gguf_tensor *t = bn_gguf_find_tensor(f, "token_embd.weight");
    REQUIRE(t != NULL);
    const uint64_t rows = t->ne[1] / 2, ne[4] = {t->ne[0], rows, 1, 1}; /* half the rows */
    const char *path = bn_test_tmp(".gguf");
    const bn_gguf_edit e = {"token_embd.weight", t->type, t->data, t->nbytes / 2, ne, NULL};
    REQUIRE(bn_test_gguf_copy("models/default.gguf", path, &e));
    bn_gguf_close(f);
    bitnet_model *m = NULL;
    CHECK(bitnet_model_load(path, NULL, &m) == BITNET_ERR_FORMAT);
    char want[160];
    snprintf(want, sizeof want, "the tokenizer has %llu tokens but token_embd.weight only %llu rows",
             (unsigned long long)rows * 2, (unsigned long long)rows);
    CHECK_MSG(strstr(bitnet_last_error(), want), "%s", bitnet_last_error());
    bitnet_model_free(m);
}

/* 2. The scheduler checks each request's tokens before it joins the shared
 * batch: a bad one is refused alone (the server answers 400) while another
 * request runs to its end. */
#include "server.h"

static void make_job(bn_job *j, bn_gen_request *req, const bitnet_token *toks, int n, int n_vocab) {
    bn_job_init(j);
    j->prompt = malloc((size_t)n * sizeof *toks);
    memcpy(j->prompt, toks, (size_t)n * sizeof *toks);
    j->n_prompt = n;
    j->req = req;
    bitnet_sampler_params sp = bitnet_sampler_default_params();
    sp.temp = 0.0f;
    bitnet_sampler_new(&sp, n_vocab, &j->sampler);
}

TEST(reliability_2_bad_request_token_fails_alone) {
    bitnet_model *m = NULL;
    REQUIRE(bitnet_model_load_default(NULL, &m) == BITNET_OK);
    bitnet_context_params cp = bitnet_context_default_params();
    cp.n_seq = 2;
    cp.n_ctx = 64;
    bitnet_context *ctx = NULL;
    REQUIRE(bitnet_context_new(m, &cp, &ctx) == BITNET_OK);
    bn_sched *s = NULL;
    REQUIRE(bn_sched_new(m, ctx, 64, 4, 0, 0, &s) == BITNET_OK);
    char err[200];
    bn_gen_request req;
    const char *body = "{\"prompt\": \"x\", \"max_tokens\": 8}";
    REQUIRE_MSG(bn_server_parse_request(body, strlen(body), 0, &req, err, sizeof err) == 0, "%s", err);
    const int V = bitnet_n_vocab(m);
    const bitnet_token good[3] = {1, 10, 20}, bad[3] = {1, V + 5, 20};
    bn_job a, b;
    make_job(&a, &req, good, 3, V);
    make_job(&b, &req, bad, 3, V);
    CHECK_EQ_INT(bn_sched_submit(s, &b), -3);
    CHECK_MSG(strstr(bitnet_last_error(), "outside the model's vocabulary"), "%s", bitnet_last_error());
    REQUIRE(bn_sched_submit(s, &a) == 0);
    bn_buf out = {0};
    while (!bn_sched_wait(s, &a, &out, 1000)) {
    }
    CHECK_MSG(a.finish != BN_FINISH_ERROR && a.n_gen > 0, "the good request: finish %d, %d tokens", (int)a.finish, a.n_gen);
    bn_buf_free(&out);
    bn_sched_free(s);
    bn_job_destroy(&a);
    bn_job_destroy(&b);
    bn_gen_request_free(&req);
    bitnet_context_free(ctx);
    bitnet_model_free(m);
}
