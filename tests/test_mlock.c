/* test_mlock.c - memory placement: --mlock locks the weights and the context
 * arena (VmLck in /proc/self/status), a forbidding RLIMIT_MEMLOCK gives a
 * one-line warning and generation goes on, and --no-mmap (weights read into
 * memory) gives the same output as the default memory map. */
#include <stdint.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bitnet.h"
#include "model/context.h"
#include "test.h"

#ifndef CAP_IPC_LOCK
#define CAP_IPC_LOCK 14 /* linux/capability.h */
#endif

/* AddressSanitizer intercepts mlock and does nothing (it reserves huge shadow
 * mappings), in this binary and in the tools of the same build. */
#if defined(__SANITIZE_ADDRESS__)
#define SKIP_UNDER_ASAN() SKIP("AddressSanitizer turns mlock into a no-op")
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define SKIP_UNDER_ASAN() SKIP("AddressSanitizer turns mlock into a no-op")
#endif
#endif
#ifndef SKIP_UNDER_ASAN
#define SKIP_UNDER_ASAN() (void)0
#endif

/* A "Field:  N kB" line of /proc/self/status in kB, or -1. */
static long status_kb(const char *field) {
    FILE *f = fopen("/proc/self/status", "r");
    if (!f) return -1;
    char line[256];
    long kb = -1;
    const size_t n = strlen(field);
    while (fgets(line, sizeof line, f))
        if (strncmp(line, field, n) == 0) kb = strtol(line + n, NULL, 10);
    fclose(f);
    return kb;
}

/* Whether locking `bytes` more should succeed here: the limit allows it, or
 * the process has CAP_IPC_LOCK (root in most containers), which ignores it. */
static int can_lock(uint64_t bytes) {
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    unsigned long long cap = 0;
    while (f && fgets(line, sizeof line, f))
        if (strncmp(line, "CapEff:", 7) == 0) cap = strtoull(line + 7, NULL, 16);
    if (f) fclose(f);
    struct rlimit rl;
    if ((cap >> CAP_IPC_LOCK) & 1) return 1;
    return getrlimit(RLIMIT_MEMLOCK, &rl) == 0 &&
           (rl.rlim_cur == RLIM_INFINITY || (uint64_t)rl.rlim_cur >= bytes + (uint64_t)status_kb("VmLck:") * 1024);
}

TEST_E2E(mlock_library_locks_weights_and_arena) {
    SKIP_UNDER_ASAN();
    const long before = status_kb("VmLck:");
    if (before < 0) SKIP("no VmLck in /proc/self/status");
    bitnet_model_params mp = bitnet_model_default_params();
    mp.use_mlock = 1;
    bitnet_model *m = NULL;
    CHECK(bitnet_model_load_default(&mp, &m) == BITNET_OK);
    if (!m) return;
    bitnet_context_params cp = bitnet_context_default_params();
    cp.n_ctx = 64;
    cp.use_mlock = 1;
    bitnet_context *c = NULL;
    CHECK(bitnet_context_new(m, &cp, &c) == BITNET_OK);
    if (c) {
        bitnet_model_info info;
        bitnet_model_get_info(m, &info);
        const long locked = status_kb("VmLck:") - before;
        if (!can_lock(c->arena_mapped + info.weight_bytes)) {
            bitnet_context_free(c);
            bitnet_model_free(m);
            SKIP("RLIMIT_MEMLOCK is too low here to lock the default model (see ulimit -l)");
        }
        /* the arena, plus the weights the forward pass reads */
        CHECK_MSG((uint64_t)locked * 1024 >= c->arena_mapped + info.weight_bytes / 2,
                  "VmLck grew by %ld kB; arena %zu bytes, weights %llu bytes", locked, c->arena_mapped,
                  (unsigned long long)info.weight_bytes);
        bitnet_token t = bitnet_token_bos(m);
        CHECK(bitnet_eval(c, &t, 1, 0) == BITNET_OK);
        bitnet_context_free(c);
    }
    bitnet_model_free(m);
    CHECK_EQ_INT(status_kb("VmLck:"), before); /* unmapping unlocks */
}

/* "locked:  X MiB" from infer's summary, or -1. */
static double locked_mib(const char *out) {
    const char *p = out ? strstr(out, "\nlocked:") : NULL;
    return p ? strtod(p + 8, NULL) : -1.0;
}

TEST_E2E(mlock_infer_reports_locked_memory) {
    SKIP_UNDER_ASAN();
    size_t n;
    int st = -1;
    char *out = bn_test_run_tool("infer --mlock -c 64 --steps 16 --temp 0 -p 'Once upon a time' 2>&1", &n, &st);
    CHECK(st == 0 && out && strstr(out, "Once upon a time"));
    if (out && strstr(out, "warning: cannot lock") && !can_lock(8u << 20)) {
        free(out);
        SKIP("RLIMIT_MEMLOCK is too low here to lock the default model (see ulimit -l)");
    }
    CHECK_MSG(out && !strstr(out, "warning") && locked_mib(out) > 1.0, "infer --mlock output:\n%s", out ? out : "");
    free(out);
}

/* With RLIMIT_MEMLOCK = 0 (and CAP_IPC_LOCK dropped, which would override
 * it), infer --mlock must warn in one line per object and still generate. */
TEST_E2E(mlock_forbidden_warns_and_goes_on) {
    SKIP_UNDER_ASAN();
    const char *path = bn_test_tmp(".out");
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        struct rlimit zero = {0, 0};
        prctl(PR_CAPBSET_DROP, CAP_IPC_LOCK, 0, 0, 0); /* no effect without CAP_SETPCAP: checked below */
        int ok = setrlimit(RLIMIT_MEMLOCK, &zero) == 0;
        size_t n;
        int st = -1;
        char *out = ok ? bn_test_run_tool("infer --mlock -c 64 --steps 24 --temp 0 -p 'Once upon a time' 2>&1", &n, &st) : NULL;
        FILE *f = fopen(path, "w");
        if (f && out) fputs(out, f);
        if (f) fclose(f);
        int code = ok && out && WIFEXITED(st) ? WEXITSTATUS(st) : 99;
        free(out); /* valgrind checks the child's heap at _exit too */
        _exit(code);
    }
    int wst = -1;
    CHECK(pid > 0 && waitpid(pid, &wst, 0) == pid);
    char *out = bn_test_read_file(path, NULL);
    remove(path);
    if (out && !strstr(out, "warning") && locked_mib(out) > 0) {
        free(out);
        SKIP("mlock still allowed with RLIMIT_MEMLOCK 0 (CAP_IPC_LOCK could not be dropped)");
    }
    CHECK_MSG(WIFEXITED(wst) && WEXITSTATUS(wst) == 0, "infer --mlock under RLIMIT_MEMLOCK 0 failed:\n%s", out ? out : "");
    CHECK(out && strstr(out, "Once upon a time") && strlen(strstr(out, "Once upon a time")) > 40); /* text goes on */
    CHECK(locked_mib(out) == 0.0);
    int warnings = 0;
    for (const char *p = out; p && (p = strstr(p, "warning:")) != NULL; p++) {
        const char *eol = strchr(p, '\n');
        CHECK(eol && memmem(p, (size_t)(eol - p), "RLIMIT_MEMLOCK", 14) && memmem(p, (size_t)(eol - p), "continuing unlocked", 19));
        warnings++;
    }
    CHECK_MSG(warnings >= 1 && warnings <= 2, "%d warnings:\n%s", warnings, out ? out : "");
    free(out);
}

/* --no-mmap reads the file into memory: same text as the mapped file, for
 * GGUF and ak42 files; and the same logits through the library. */
TEST(no_mmap_gives_identical_output) {
    char cmd[4096];
    const char *model = bn_test_shared("models/stories260K.gguf");
    if (!model) SKIP("../shared not present");
    const char *tok = bn_test_shared("models/tok512.bin");
    const char *ak42 = bn_test_shared("models/bitnet158-tinystories-1M.ak42.bin");
    char ak42_args[2200];
    snprintf(ak42_args, sizeof ak42_args, "%s --tokenizer %s", ak42 ? ak42 : "", tok ? tok : "");
    const char *models[2] = {model, ak42 && tok ? ak42_args : NULL};
    for (int i = 0; i < 2 && models[i]; i++) {
        char *out[2];
        size_t len[2];
        for (int no_mmap = 0; no_mmap < 2; no_mmap++) {
            int st = -1;
            snprintf(cmd, sizeof cmd, "infer -m %s -p 'Once upon a time' --temp 0 --steps 128 %s 2>/dev/null", models[i],
                     no_mmap ? "--no-mmap" : "");
            out[no_mmap] = bn_test_run_tool(cmd, &len[no_mmap], &st);
            CHECK_MSG(st == 0 && out[no_mmap] && len[no_mmap] > 100, "'%s' failed", cmd);
        }
        CHECK(out[0] && out[1] && len[0] == len[1] && memcmp(out[0], out[1], len[0]) == 0);
        free(out[0]);
        free(out[1]);
    }
    /* library: use_mmap = 0 gives bit-identical logits */
    float *lg[2] = {NULL, NULL};
    int nv = 0;
    for (int use_mmap = 0; use_mmap < 2; use_mmap++) {
        bitnet_model_params mp = bitnet_model_default_params();
        mp.use_mmap = use_mmap;
        bitnet_model *m = NULL;
        bitnet_context *c = NULL;
        CHECK(bitnet_model_load(model, &mp, &m) == BITNET_OK);
        if (!m) continue;
        CHECK(bitnet_context_new(m, NULL, &c) == BITNET_OK);
        bitnet_token t[3] = {1, 403, 407};
        nv = bitnet_n_vocab(m);
        if (c && bitnet_eval(c, t, 3, 0) == BITNET_OK) {
            lg[use_mmap] = malloc((size_t)nv * sizeof(float));
            memcpy(lg[use_mmap], bitnet_get_logits(c), (size_t)nv * sizeof(float));
        }
        CHECK(use_mmap || m->map != NULL); /* read into memory owned by the model */
        bitnet_context_free(c);
        bitnet_model_free(m);
    }
    CHECK(lg[0] && lg[1] && memcmp(lg[0], lg[1], (size_t)nv * sizeof(float)) == 0);
    free(lg[0]);
    free(lg[1]);
    /* a missing file is the same one-line error either way */
    bitnet_model_params mp = bitnet_model_default_params();
    mp.use_mmap = 0;
    bitnet_model *m = NULL;
    CHECK(bitnet_model_load("/nonexistent/x.gguf", &mp, &m) == BITNET_ERR_IO);
    CHECK(strstr(bitnet_last_error(), "cannot open") != NULL);
}
