/* main.c - test runner: runs every registered TEST (or those matching argv[1]). */
#include <stdarg.h>
#include <sys/wait.h>
#include <unistd.h>

#include "test.h"

#define MAX_TESTS 1024

typedef struct {
    const char *name, *file;
    bn_test_fn fn;
} test_entry;

static test_entry g_tests[MAX_TESTS];
static int g_n_tests;
static int g_failed_now, g_skipped_now;
static char g_skip_why[256];

void bn_test_register(const char *name, const char *file, bn_test_fn fn) {
    if (g_n_tests < MAX_TESTS) g_tests[g_n_tests++] = (test_entry){name, file, fn};
}

void bn_test_fail(const char *file, int line, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "    %s:%d: CHECK failed: ", file, line);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    g_failed_now++;
}

void bn_test_skip(const char *why) {
    g_skipped_now = 1;
    snprintf(g_skip_why, sizeof g_skip_why, "%s", why);
}

const char *bn_test_shared(const char *rel) {
    static char buf[4096];
    const char *root = getenv("BITNET_SHARED");
    snprintf(buf, sizeof buf, "%s/%s", root && *root ? root : "../shared", rel);
    return access(buf, R_OK) == 0 ? buf : NULL;
}

const char *bn_test_repo(const char *rel) {
    static char buf[4096];
    snprintf(buf, sizeof buf, "%s", rel);
    return buf;
}

const char *bn_test_tmp(const char *suffix) {
    static char buf[4096];
    static int counter;
    const char *dir = getenv("TMPDIR");
    snprintf(buf, sizeof buf, "%s/bitnet-test-%d-%d%s", dir && *dir ? dir : "/tmp", (int)getpid(),
             counter++, suffix ? suffix : "");
    return buf;
}

char *bn_test_read_file(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc((size_t)n + 1);
    if (buf && fread(buf, 1, (size_t)n, f) != (size_t)n) {
        free(buf);
        buf = NULL;
    }
    fclose(f);
    if (buf) {
        buf[n] = 0;
        if (len) *len = (size_t)n;
    }
    return buf;
}

#ifndef BN_BUILD_DIR
#define BN_BUILD_DIR "build"
#endif

char *bn_test_run_tool(const char *cmdline, size_t *len, int *status) {
    char cmd[8192];
    const char *prefix = getenv("BITNET_EXEC_PREFIX");
    snprintf(cmd, sizeof cmd, "%s %s/%s", prefix ? prefix : "", BN_BUILD_DIR, cmdline);
    FILE *p = popen(cmd, "r");
    if (!p) return NULL;
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap);
    size_t got;
    while (buf && (got = fread(buf + n, 1, cap - n - 1, p)) > 0) {
        n += got;
        if (cap - n < 2) {
            char *nb = realloc(buf, cap *= 2);
            if (!nb) { free(buf); buf = NULL; break; }
            buf = nb;
        }
    }
    int st = pclose(p);
    if (status) *status = WIFEXITED(st) ? WEXITSTATUS(st) : 128;
    if (buf) buf[n] = 0;
    if (len) *len = n;
    return buf;
}

int main(int argc, char **argv) {
    const char *filter = argc > 1 ? argv[1] : NULL;
    int passed = 0, failed = 0, skipped = 0;
    setvbuf(stdout, NULL, _IOLBF, 0);
    for (int i = 0; i < g_n_tests; i++) {
        test_entry *t = &g_tests[i];
        if (filter && !strstr(t->name, filter) && !strstr(t->file, filter)) continue;
        g_failed_now = 0;
        g_skipped_now = 0;
        t->fn();
        if (g_failed_now) {
            printf("FAIL %s (%s)\n", t->name, t->file);
            failed++;
        } else if (g_skipped_now) {
            printf("skip %s: %s\n", t->name, g_skip_why);
            skipped++;
        } else {
            printf("ok   %s\n", t->name);
            passed++;
        }
    }
    printf("%d passed, %d failed, %d skipped\n", passed, failed, skipped);
    return failed ? 1 : 0;
}
