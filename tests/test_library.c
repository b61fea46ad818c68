/* test_library.c - libbitnet as others link it: the shared library exports
 * only the bitnet_* API of bitnet.h under SONAME libbitnet.so.MAJOR (0.MINOR before 1.0), and
 * `make install` gives a header, libraries and bitnet.pc that a program
 * builds against with pkg-config (then `make uninstall` removes them). */
#include <stdlib.h>
#include <unistd.h>

#include "bitnet.h"
#include "test.h"

#ifndef BN_BUILD_DIR
#define BN_BUILD_DIR "build"
#endif

/* stdout of a shell command (malloc'd) and its exit status. */
static char *sh(const char *cmd, int *status) { return bn_test_run_shell(cmd, NULL, status); }

static int have(const char *tool) {
    char cmd[128];
    int st;
    snprintf(cmd, sizeof cmd, "command -v %s >/dev/null 2>&1", tool);
    free(sh(cmd, &st));
    return st == 0;
}

TEST(library_exports_only_the_api) {
    if (!have("nm") || !have("readelf")) SKIP("nm/readelf not installed");
    if (access(BN_BUILD_DIR "/libbitnet.so", F_OK) != 0) SKIP("no shared library in this build (static cross build)");
    char cmd[512];
    int st = -1;
    snprintf(cmd, sizeof cmd, "nm -D --defined-only %s/libbitnet.so | awk '{print $3}'", BN_BUILD_DIR);
    char *out = sh(cmd, &st);
    REQUIRE(out && st == 0);
    int n = 0, other = 0;
    for (char *line = strtok(out, "\n"); line; line = strtok(NULL, "\n"), n++)
        if (strncmp(line, "bitnet_", 7) != 0) {
            if (other++ < 5) bn_test_fail(__FILE__, __LINE__, "libbitnet.so exports %s", line);
        }
    CHECK_MSG(other == 0 && n >= 40, "%d symbols, %d not bitnet_*", n, other);
    free(out);
    snprintf(cmd, sizeof cmd, "readelf -d %s/libbitnet.so", BN_BUILD_DIR);
    out = sh(cmd, &st);
    char want[64];
    const int major = atoi(BITNET_VERSION), minor = atoi(strchr(BITNET_VERSION, '.') + 1);
    if (major > 0) snprintf(want, sizeof want, "[libbitnet.so.%d]", major);
    else snprintf(want, sizeof want, "[libbitnet.so.0.%d]", minor); /* before 1.0 the minor version is part of it */
    CHECK_MSG(out && strstr(out, want), "SONAME %s missing", want);
    free(out);
    CHECK_STR(bitnet_version(), BITNET_VERSION);
}

/* Only for the release build (build/): make install would otherwise rebuild
 * another configuration. */
TEST_E2E(library_install_pkg_config_uninstall) {
    if (strcmp(BN_BUILD_DIR, "build") != 0) SKIP("install is tested on the release build");
    if (!have("pkg-config") || !have("cc")) SKIP("pkg-config or cc not installed");
    char cmd[4096];
    const char *dir = bn_test_tmp(".d");
    int st = -1;
    snprintf(cmd, sizeof cmd, "make -s install DESTDIR=%s PREFIX=/usr 2>&1", dir);
    char *out = sh(cmd, &st);
    CHECK_MSG(st == 0, "make install: %s", out ? out : "");
    free(out);
    /* a program that only knows pkg-config's answer */
    snprintf(cmd, sizeof cmd,
             "cd %s && printf '#include <bitnet.h>\\n#include <stdio.h>\\nint main(void) { puts(bitnet_version()); "
             "return 0; }\\n' > v.c && export PKG_CONFIG_SYSROOT_DIR=%s PKG_CONFIG_PATH=%s/usr/lib/pkgconfig && "
             "cc v.c $(pkg-config --cflags --libs bitnet) -o v && LD_LIBRARY_PATH=%s/usr/lib ./v && "
             "pkg-config --modversion bitnet && pkg-config --static --libs bitnet",
             dir, dir, dir, dir);
    out = sh(cmd, &st);
    char want[128];
    snprintf(want, sizeof want, "%s\n%s\n", BITNET_VERSION, BITNET_VERSION);
    CHECK_MSG(st == 0 && out && !strncmp(out, want, strlen(want)) && strstr(out, "-lbitnet") && strstr(out, "-lm"),
              "pkg-config build: %s", out ? out : "");
    free(out);
    snprintf(cmd, sizeof cmd, "ls %s/usr/bin/infer %s/usr/include/bitnet.h %s/usr/lib/libbitnet.a %s/usr/lib/libbitnet.so.0.* "
             "%s/usr/share/doc/bitnet/README.md >/dev/null 2>&1", dir, dir, dir, dir, dir);
    free(sh(cmd, &st));
    CHECK_MSG(st == 0, "installed files missing under %s", dir);
    snprintf(cmd, sizeof cmd, "make -s uninstall DESTDIR=%s PREFIX=/usr 2>&1 && find %s -type f ! -name 'v*' | wc -l", dir,
             dir);
    out = sh(cmd, &st);
    CHECK_MSG(st == 0 && out && atoi(out) == 0, "after make uninstall: %s files left", out ? out : "?");
    free(out);
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    free(sh(cmd, &st));
}

/* --version on every tool, as llama.cpp's: "TOOL (libbitnet X.Y.Z)", exit 0. */
TEST(library_every_tool_prints_its_version) {
    static const char *const tools[] = {"infer", "bench", "convert", "prune", "perplexity", "tokenize", "logits", "embed",
#ifndef _WIN32 /* not built there yet */
                                        "server", "server_load"
#endif
    };
    for (size_t i = 0; i < sizeof tools / sizeof tools[0]; i++) {
        char cmd[128], want[128];
        snprintf(cmd, sizeof cmd, "%s --version", tools[i]);
        snprintf(want, sizeof want, "%s (libbitnet %s)\n", tools[i], BITNET_VERSION);
        int st = -1;
        size_t n = 0;
        char *out = bn_test_run_tool(cmd, &n, &st);
        CHECK_MSG(st == 0 && out && !strcmp(out, want), "%s: '%s'", tools[i], out ? out : "");
        free(out);
    }
}

/* The Python package states the same version (pyproject.toml and the
 * offline build backend), so a release cannot bump one and forget the other. */
TEST(library_python_package_has_the_version) {
    static const char *const files[] = {"python/pyproject.toml", "python/_build_backend.py"};
    char want[64];
    snprintf(want, sizeof want, "\"%s\"", BITNET_VERSION);
    for (size_t i = 0; i < 2; i++) {
        char *text = bn_test_read_file(bn_test_repo(files[i]), NULL);
        CHECK_MSG(text && strstr(text, want), "%s does not say version %s", files[i], want);
        free(text);
    }
}

/* bitnet_log_set: the library's warnings reach the callback (one line, no
 * newline) instead of stderr; NULL restores stderr. */
static char g_logged[512];
static int g_n_logged;
static void capture_log(bitnet_log_level level, const char *message, void *user) {
    CHECK_EQ_INT(level, BITNET_LOG_WARN);
    CHECK(user == (void *)g_logged);
    snprintf(g_logged, sizeof g_logged, "%s", message);
    g_n_logged++;
}

TEST(library_log_callback) {
    bitnet_model *m = NULL;
    REQUIRE(bitnet_model_load_default(NULL, &m) == BITNET_OK);
    bitnet_log_set(capture_log, g_logged);
    bitnet_context_params cp = bitnet_context_default_params();
    cp.n_threads = 4096; /* more than the online CPUs: a warning, and the context still made */
    bitnet_context *ctx = NULL;
    CHECK(bitnet_context_new(m, &cp, &ctx) == BITNET_OK);
    bitnet_log_set(NULL, NULL);
    CHECK_EQ_INT(g_n_logged, 1);
    CHECK_MSG(strstr(g_logged, "4096 threads requested") && !strchr(g_logged, '\n'), "logged: '%s'", g_logged);
    bitnet_context_free(ctx);
    bitnet_model_free(m);
}
