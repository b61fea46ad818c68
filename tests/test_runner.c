/* test_runner.c - the test runner's promises: a test that crashes, aborts,
 * hangs or fails a REQUIRE is reported under its name and the run still ends
 * with its summary line. The misbehaving tests are of the SELFTEST tier, which
 * only `run_tests --runner-selftest` runs; runner_reports_... runs that in a
 * child and reads what it printed. */
#include <signal.h>
#include <unistd.h>

#include "test.h"

TEST_SELFTEST(selftest_segfault) {
    volatile int *p = NULL;
    *p = 1;
}

TEST_SELFTEST(selftest_abort) { abort(); }

TEST_SELFTEST(selftest_hang) {
    for (;;) sleep(1);
}

/* Temporaries a test makes: a file and a directory with a file in a directory;
 * their paths are printed for the runner test to look them up afterwards. */
static void make_temporaries(void) {
    const char *file = bn_test_tmp(".txt"), *dir = bn_test_tmp(".d");
    char sub[4096], inner[4200];
    snprintf(sub, sizeof sub, "%s/sub", dir);
    snprintf(inner, sizeof inner, "%s/inner.txt", sub);
    CHECK(bn_test_write_file(file, "x", 1) && bn_test_mkdir(dir) == 0 && bn_test_mkdir(sub) == 0 &&
          bn_test_write_file(inner, "y", 1));
    printf("temporary: %s\ntemporary: %s\n", file, dir);
}

TEST_SELFTEST(selftest_require_stops) {
    make_temporaries();
    REQUIRE(1 + 1 == 3);
    printf("not reached\n");
}

TEST_SELFTEST(selftest_check_goes_on) {
    CHECK(1 + 1 == 3);
    printf("reached after CHECK\n");
}

TEST_SELFTEST(selftest_passes) {
    make_temporaries();
    CHECK(1 + 1 == 2);
}

TEST_SELFTEST(selftest_skips) { SKIP("skipped on purpose"); }

TEST(runner_reports_crashes_hangs_and_goes_on) {
    int status = -1;
    size_t len = 0;
    /* BITNET_EXEC_PREFIX (qemu-user) applies to run_tests as to any tool */
    char *out = bn_test_run_tool("run_tests --runner-selftest --timeout 2 -j 4 2>&1", &len, &status);
    REQUIRE(out != NULL);
    CHECK_EQ_INT(status, 1); /* failures make the exit status non-zero */
    /* a native run reports the signal; under ASan the sanitizer catches SIGSEGV and exits 1 */
    CHECK_MSG(strstr(out, "FAIL selftest_segfault (tests/test_runner.c)"), "%s", out);
    char aborted[128]; /* SIGABRT is 6 on POSIX, 22 on Windows */
    snprintf(aborted, sizeof aborted, "FAIL selftest_abort (tests/test_runner.c): crashed with signal %d", SIGABRT);
    CHECK_MSG(strstr(out, aborted), "%s", out);
    CHECK_MSG(strstr(out, "FAIL selftest_hang (tests/test_runner.c): timed out after 2 s"), "%s", out);
    CHECK_MSG(strstr(out, "FAIL selftest_require_stops"), "%s", out);
    CHECK_MSG(!strstr(out, "not reached"), "REQUIRE did not stop the test:\n%s", out);
    CHECK_MSG(strstr(out, "reached after CHECK") && strstr(out, "FAIL selftest_check_goes_on"), "%s", out);
    CHECK_MSG(strstr(out, "ok   selftest_passes"), "%s", out);
    CHECK_MSG(strstr(out, "skip selftest_skips: skipped on purpose"), "%s", out);
    /* the temporaries of a test that passed and of one stopped by a REQUIRE are gone */
    int n_temporaries = 0;
    for (const char *t = strstr(out, "temporary: "); t; t = strstr(t + 1, "temporary: ")) {
        char path[4096];
        if (sscanf(t, "temporary: %4095[^\n]", path) != 1) continue;
        n_temporaries++;
        /* access, not fopen: Windows cannot open a directory, so fopen would pass there regardless */
        CHECK_MSG(access(path, F_OK) != 0, "%s is left after its test", path);
        char probe[4200];
        snprintf(probe, sizeof probe, "%s/sub/inner.txt", path);
        CHECK_MSG(access(probe, F_OK) != 0, "%s is left after its test", probe);
    }
    CHECK_EQ_INT(n_temporaries, 4);
    /* the last line is the summary */
    const char *last = out + len;
    while (last > out && last[-1] == '\n') last--;
    while (last > out && last[-1] != '\n') last--;
    CHECK_MSG(strncmp(last, "1 passed, 5 failed, 1 skipped", 29) == 0, "last line: %s", last);
    free(out);
}
