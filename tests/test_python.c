/* test_python.c - runs the Python package's tests (python/tests/test_bitnet.py)
 * against this build's libbitnet.so: generation equal to build/infer's, errors
 * raised as exceptions, no leak over 1,000 create/free cycles. */
#include "test.h"

#include <unistd.h>

TEST(python_package) {
#if defined(__SANITIZE_ADDRESS__)
    SKIP("the ASan build's libbitnet.so cannot be loaded into a Python without ASan");
#else
    if (getenv("BITNET_EXEC_PREFIX")) SKIP("a cross build (its libbitnet.so is not this machine's)");
    if (system("python3 -c 'import ctypes' >/dev/null 2>&1") != 0) SKIP("python3 is not installed");
    const char *script = bn_test_repo("python/tests/test_bitnet.py");
    REQUIRE(script != NULL);
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "BITNET_LIB=%s/libbitnet.so BITNET_BUILD=%s python3 %s 2>&1", BN_BUILD_DIR, BN_BUILD_DIR,
             script);
    int st;
    char *out = bn_test_run_shell(cmd, NULL, &st);
    REQUIRE(out != NULL);
    CHECK_MSG(st == 0 && strstr(out, "\nOK"), "python3 %s:\n%s", script, out);
    free(out);
#endif
}
