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

TEST_SELFTEST(selftest_require_stops) {
    REQUIRE(1 + 1 == 3);
    printf("not reached\n");
}

TEST_SELFTEST(selftest_check_goes_on) {
    CHECK(1 + 1 == 3);
    printf("reached after CHECK\n");
}

TEST_SELFTEST(selftest_passes) { CHECK(1 + 1 == 2); }

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
    /* the last line is the summary */
    const char *last = out + len;
    while (last > out && last[-1] == '\n') last--;
    while (last > out && last[-1] != '\n') last--;
    CHECK_MSG(strncmp(last, "1 passed, 5 failed, 1 skipped", 29) == 0, "last line: %s", last);
    free(out);
}
