/* test.h - a tiny self-registering unit-test harness.
 *
 *   TEST(bn_gguf_round_trip) { CHECK(x == 1); REQUIRE(f != NULL); CHECK_EQ_INT(a, b); }
 *   TEST_E2E(server_end_to_end) { ... }     end-to-end tier: make test-all
 *
 * Every TEST in any linked file registers itself before main(); the runner
 * (tests/main.c) runs each in its own process with a timeout, several at a
 * time, and ends with the line "N passed, N failed, N skipped". CHECK records
 * a failure and goes on; REQUIRE records it and ends the test there. */
#ifndef BN_TEST_H
#define BN_TEST_H

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#if defined(__MINGW32__)
#define BN_TEST_PRINTF(f, a) __attribute__((format(gnu_printf, f, a)))
#else
#define BN_TEST_PRINTF(f, a) __attribute__((format(printf, f, a)))
#endif

typedef void (*bn_test_fn)(void);
/* Tiers: fast (make test), end-to-end (make test-all), and the runner's own
 * deliberately failing cases (only with --runner-selftest, tests/test_runner.c). */
enum { BN_TIER_FAST = 0, BN_TIER_E2E = 1, BN_TIER_SELFTEST = 2 };
void bn_test_register(const char *name, const char *file, bn_test_fn fn, int tier);
void bn_test_require_failed(void);
void bn_test_fail(const char *file, int line, const char *fmt, ...) BN_TEST_PRINTF(3, 4);
void bn_test_skip(const char *why);
/* Path of a file under ../shared (or $BITNET_SHARED), or NULL if absent; like
 * every path these three return, valid until the test ends. */
const char *bn_test_shared(const char *rel);
/* Path of a file relative to the repository root (tests run from there). */
const char *bn_test_repo(const char *rel);
/* A fresh temporary path (under $TMPDIR or /tmp), valid until the test ends;
 * then the runner removes it (a file, or a directory made there with its files),
 * whether the test passed, failed or stopped at a REQUIRE. */
const char *bn_test_tmp(const char *suffix);
/* Runs a shell command line that starts with a tool name of this build
 * ("infer -m x"), becoming "$BITNET_EXEC_PREFIX BUILD/infer -m x"; returns its
 * stdout (malloc'd, NUL-terminated; *len set) and the exit status in *status. */
char *bn_test_run_tool(const char *cmdline, size_t *len, int *status);
/* Runs a shell command line as written (sh; cmd.exe on Windows), the same way. */
char *bn_test_run_shell(const char *cmdline, size_t *len, int *status);
/* The number of temporaries of our atomic writer (.BASE.bitnet-tmp.*) left
 * beside path (src/formats/atomic_file.h). */
int bn_test_temporaries_left(const char *path);
/* The exit code in a status from system()/pclose() (128 when a signal ended it). */
int bn_test_exit_code(int system_status);
/* setenv(name, value, 1), or unsetenv(name) when value is NULL; on Windows too. */
void bn_test_setenv(const char *name, const char *value);
/* Online CPUs (at least 1). */
int bn_test_cpu_count(void);
/* mkdir(path, 0755), on Windows too. 0 or -1 and errno. */
int bn_test_mkdir(const char *path);
/* Reads a whole file into a malloc'd NUL-terminated buffer, or NULL. */
char *bn_test_read_file(const char *path, size_t *len);
/* The same for a file under ../shared (bn_test_shared); NULL where it is absent. */
char *bn_test_read_shared(const char *rel, size_t *len);
/* Writes len bytes to path (replacing it); 1 when all were written and closed. */
int bn_test_write_file(const char *path, const void *data, size_t len);
/* Writes text to a fresh temporary (bn_test_tmp(suffix)) whose path goes to path[cap]; 1 when written. */
int bn_test_tmp_text(char *path, size_t cap, const char *suffix, const char *text);

#define BN_TEST_DEFINE(name, tier)                                                   \
    static void test_##name(void);                                                   \
    __attribute__((constructor)) static void test_register_##name(void) {           \
        bn_test_register(#name, __FILE__, test_##name, tier);                        \
    }                                                                                \
    static void test_##name(void)
#define TEST(name) BN_TEST_DEFINE(name, BN_TIER_FAST)
#define TEST_E2E(name) BN_TEST_DEFINE(name, BN_TIER_E2E)
#define TEST_SELFTEST(name) BN_TEST_DEFINE(name, BN_TIER_SELFTEST)

#define CHECK(cond)                                                    \
    do {                                                               \
        if (!(cond)) bn_test_fail(__FILE__, __LINE__, "%s", #cond);    \
    } while (0)

/* As CHECK, but a failure ends the test (the rest would only crash or repeat it). */
#define REQUIRE_MSG(cond, ...)                                         \
    do {                                                               \
        if (!(cond)) {                                                 \
            bn_test_fail(__FILE__, __LINE__, __VA_ARGS__);             \
            bn_test_require_failed();                                  \
            return;                                                    \
        }                                                              \
    } while (0)
#define REQUIRE(cond) REQUIRE_MSG(cond, "%s", #cond)

#define CHECK_MSG(cond, ...)                                           \
    do {                                                               \
        if (!(cond)) bn_test_fail(__FILE__, __LINE__, __VA_ARGS__);    \
    } while (0)

/* Runs a tool's command line (bn_test_run_tool) and checks that it exits with
 * `status` and that its captured output contains `text` (NULL: anything); a
 * failure names the command, the status and the output. */
#define CHECK_TOOL(cmdline, status, text) bn_test_check_tool(__FILE__, __LINE__, (cmdline), (status), (text))
int bn_test_check_tool(const char *file, int line, const char *cmdline, int status, const char *text);

#define CHECK_EQ_INT(a, b)                                                                  \
    do {                                                                                    \
        long long va_ = (long long)(a), vb_ = (long long)(b);                               \
        if (va_ != vb_) bn_test_fail(__FILE__, __LINE__, "%s == %s (%lld != %lld)", #a, #b, va_, vb_); \
    } while (0)

#define CHECK_NEAR(a, b, tol)                                                              \
    do {                                                                                   \
        double va_ = (double)(a), vb_ = (double)(b);                                       \
        if (!(fabs(va_ - vb_) <= (tol)))                                                   \
            bn_test_fail(__FILE__, __LINE__, "%s ~= %s (%g vs %g, tol %g)", #a, #b, va_, vb_, (double)(tol)); \
    } while (0)

#define CHECK_STR(a, b)                                                                    \
    do {                                                                                   \
        const char *va_ = (a), *vb_ = (b);                                                 \
        if (!va_ || !vb_ || strcmp(va_, vb_) != 0)                                         \
            bn_test_fail(__FILE__, __LINE__, "%s == %s (\"%s\" vs \"%s\")", #a, #b, va_ ? va_ : "(null)", vb_ ? vb_ : "(null)"); \
    } while (0)

/* Skips the rest of the current test (counted as skipped, not passed). */
#define SKIP(why)            \
    do {                     \
        bn_test_skip(why);   \
        return;              \
    } while (0)

#endif
