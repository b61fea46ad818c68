/* main.c - test runner.
 *
 *   build/run_tests [--all | --e2e] [-j N] [--timeout S] [--no-fork] [FILTER ...]
 *   build/run_tests --runner-selftest     the runner's own failure cases
 *
 * Every registered TEST runs in its own process (fork), so a crash, an abort
 * or a hang is reported under the test's name and the run goes on to its
 * summary line; a test that outlives --timeout seconds (default 300,
 * $BITNET_TEST_TIMEOUT) is killed with its process group. Up to -j tests run
 * at once (default: the online CPUs); each one's output is buffered and
 * printed whole when it ends, with its time. The fast tier (TEST) runs by
 * default, the end-to-end tier (TEST_E2E: server, soak, mlock, tools over
 * real models) with --e2e, both with --all. FILTERs select tests whose name or
 * file contains any of them. --no-fork runs everything in this process, in
 * order (for a debugger). The last line is "N passed, N failed, N skipped".
 *
 * On Windows there is no fork: the runner starts itself again as
 * `run_tests --child INDEX` (CreateProcess, in a job object that a timeout
 * terminates), and the tools run through cmd.exe (bn_test_run_tool rewrites
 * the few sh idioms the tests use). */
#include <dirent.h>
#include <errno.h>
#include <sys/stat.h>
#include <signal.h>
#include <stdarg.h>
#include <time.h>
#include <unistd.h>
#ifdef _WIN32
#define WIN32_LEAN_AND_MEAN
#include <fcntl.h>
#include <io.h>
#include <windows.h>
#else
#include <poll.h>
#include <sys/wait.h>
#endif

#include "test.h"

typedef struct {
    const char *name, *file;
    bn_test_fn fn;
    int tier;
} test_entry;

/* Registration happens in constructors, before main: a growing array, no cap. */
static test_entry *g_tests;
static int g_n_tests, g_cap_tests;
static int g_failed_now, g_skipped_now;
static char g_skip_why[256];
static int g_forked; /* this process is one test's child */

/* Room for one more of n items of size bytes in a: a, or its reallocation. */
static void *grow(void *a, int n, int *cap, size_t size, const char *what) {
    if (n < *cap) return a;
    *cap = *cap ? 2 * *cap : 64;
    void *t = realloc(a, (size_t)*cap * size);
    if (!t) {
        fprintf(stderr, "run_tests: out of memory for %s\n", what);
        abort();
    }
    return t;
}

void bn_test_register(const char *name, const char *file, bn_test_fn fn, int tier) {
    g_tests = grow(g_tests, g_n_tests, &g_cap_tests, sizeof *g_tests, name);
    g_tests[g_n_tests++] = (test_entry){name, file, fn, tier};
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

/* Exit codes of a test's child process. */
enum { CHILD_PASS = 0, CHILD_FAIL = 1, CHILD_SKIP = 77 };

static void end_test_paths(void);

void bn_test_require_failed(void) {
    fprintf(stderr, "    (REQUIRE failed: the rest of the test is not run)\n");
    if (g_forked) {
        end_test_paths();
        fflush(NULL);
        _exit(CHILD_FAIL);
    }
}

void bn_test_skip(const char *why) {
    g_skipped_now = 1;
    snprintf(g_skip_why, sizeof g_skip_why, "%s", why);
}

/* The paths handed to the running test, valid until it ends; those of
 * bn_test_tmp are then removed, however the test ends but by a crash (its
 * files are named by the child's pid, for a look). */
typedef struct {
    char *path;
    int temporary;
} test_path;
static test_path *g_paths;
static int g_n_paths, g_cap_paths;

static const char *keep_path(const char *path, int temporary) {
    g_paths = grow(g_paths, g_n_paths, &g_cap_paths, sizeof *g_paths, path);
    char *copy = strdup(path);
    if (!copy) abort();
    g_paths[g_n_paths++] = (test_path){copy, temporary};
    return copy;
}

const char *bn_test_shared(const char *rel) {
    char buf[4096];
    const char *root = getenv("BITNET_SHARED");
    snprintf(buf, sizeof buf, "%s/%s", root && *root ? root : "../shared", rel);
    return access(buf, R_OK) == 0 ? keep_path(buf, 0) : NULL;
}

const char *bn_test_repo(const char *rel) { return keep_path(rel, 0); }

const char *bn_test_tmp(const char *suffix) {
    static int counter;
    const char *dir = getenv("TMPDIR");
#ifdef _WIN32
    if (!dir || !*dir) dir = getenv("TEMP");
#endif
    char buf[4096];
    snprintf(buf, sizeof buf, "%s/bitnet-test-%d-%d%s", dir && *dir ? dir : "/tmp", (int)getpid(),
             counter++, suffix ? suffix : "");
    return keep_path(buf, 1);
}

/* A temporary file, or a directory a test made there with what is in it (a
 * link is removed, never followed; four levels at most). */
static void remove_temporary(const char *path, int depth) {
    struct stat st;
#ifdef _WIN32
    if (stat(path, &st) != 0) return;
#else
    if (lstat(path, &st) != 0) return;
#endif
    DIR *d = S_ISDIR(st.st_mode) && depth < 4 ? opendir(path) : NULL;
    if (!d) {
        remove(path);
        return;
    }
    char entry[4096];
    for (struct dirent *e; (e = readdir(d));) {
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..") &&
            snprintf(entry, sizeof entry, "%s/%s", path, e->d_name) < (int)sizeof entry)
            remove_temporary(entry, depth + 1);
    }
    closedir(d);
    rmdir(path);
}

/* At the end of a test: its temporaries removed, its paths freed. */
static void end_test_paths(void) {
    for (int i = 0; i < g_n_paths; i++) {
        if (g_paths[i].temporary) remove_temporary(g_paths[i].path, 0);
        free(g_paths[i].path);
    }
    free(g_paths);
    g_paths = NULL;
    g_n_paths = g_cap_paths = 0;
}

int bn_test_temporaries_left(const char *path) {
    char dir[4096], prefix[600];
    const char *slash = strrchr(path, '/'), *base = slash ? slash + 1 : path;
    snprintf(dir, sizeof dir, "%.*s", slash ? (int)(slash - path) : 1, slash ? path : ".");
    const int n = snprintf(prefix, sizeof prefix, ".%s.bitnet-tmp.", base);
    DIR *d = opendir(dir[0] ? dir : "/");
    int count = 0;
    for (struct dirent *e; d && (e = readdir(d));) count += strncmp(e->d_name, prefix, (size_t)n) == 0;
    if (d) closedir(d);
    return count;
}

char *bn_test_read_file(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = n >= 0 ? malloc((size_t)n + 1) : NULL;
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

char *bn_test_read_shared(const char *rel, size_t *len) {
    const char *path = bn_test_shared(rel);
    return path ? bn_test_read_file(path, len) : NULL;
}

int bn_test_write_file(const char *path, const void *data, size_t len) {
    FILE *f = fopen(path, "wb");
    if (!f) return 0;
    const int ok = fwrite(data, 1, len, f) == len;
    return fclose(f) == 0 && ok;
}

int bn_test_tmp_text(char *path, size_t cap, const char *suffix, const char *text) {
    snprintf(path, cap, "%s", bn_test_tmp(suffix));
    return bn_test_write_file(path, text, strlen(text));
}

#ifndef BN_BUILD_DIR
#define BN_BUILD_DIR "build"
#endif

int bn_test_exit_code(int system_status) {
#ifdef _WIN32
    return system_status; /* _pclose and system return the exit code itself */
#else
    return WIFEXITED(system_status) ? WEXITSTATUS(system_status) : 128;
#endif
}

#ifdef _WIN32
/* sh -> cmd.exe for the idioms the tests use: BUILD\tool.exe; 'a "b" | c' ->
 * "a \"b\" | c" (cmd.exe leaves what is inside double quotes alone, the C
 * runtime turns \" into "); /dev/null -> NUL. Outside quotes, a pipe, $(...),
 * ;, a backquote or a double quote has no rewriting here: 0, and the test
 * says so. */
static int to_cmd_exe(const char *sh, char *out, size_t cap) {
    const size_t tool = strcspn(sh, " ");
    size_t n = (size_t)snprintf(out, cap, "%s\\%.*s.exe", BN_BUILD_DIR, (int)tool, sh);
    int quoted = 0;
    for (const char *p = sh + tool; *p && n + 8 < cap; p++) {
        if (*p == '\'') {
            quoted = !quoted;
            out[n++] = '"';
        } else if (quoted && *p == '"') {
            out[n++] = '\\';
            out[n++] = '"';
        } else if (!quoted && strchr("|;`$\"", *p)) {
            return 0;
        } else if (!quoted && strncmp(p, "/dev/null", 9) == 0) {
            n += (size_t)snprintf(out + n, cap - n, "NUL");
            p += 8;
        } else {
            out[n++] = *p;
        }
    }
    if (n + 8 >= cap || quoted) return 0;
    out[n] = 0;
    return 1;
}
#endif

/* Reads what p writes to its end (malloc'd, NUL-terminated; *len set), closes
 * it and sets *status to the exit code; the run is reported on stderr when it
 * did not end by an exit (a crash, a signal) or could not start. */
static char *read_pipe(FILE *p, const char *cmd, size_t *len, int *status) {
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
#ifdef _WIN32
    int st = _pclose(p);
#else
    int st = pclose(p);
#endif
    const int code = bn_test_exit_code(st);
    if (status) *status = code;
    if (code >= 128 || code < 0) /* no tool exits so on purpose: a crash, a signal, or a failed start */
        fprintf(stderr, "    '%s' ended with status %d (0x%X)\n", cmd, code, (unsigned)code);
    if (buf) buf[n] = 0;
    if (len) *len = n;
    return buf;
}

static char *run_pipe(const char *cmd, size_t *len, int *status) {
#ifdef _WIN32
    FILE *p = NULL;
    for (int attempt = 0; attempt < 3 && !p; attempt++) /* a process start under Wine fails now and then */
        if (!(p = _popen(cmd, "rb"))) Sleep(100u << attempt);
#else
    FILE *p = popen(cmd, "r");
#endif
    if (!p) {
        fprintf(stderr, "    cannot start '%s': %s\n", cmd, strerror(errno));
        if (status) *status = -1;
        if (len) *len = 0;
        return NULL;
    }
    return read_pipe(p, cmd, len, status);
}

char *bn_test_run_shell(const char *cmdline, size_t *len, int *status) { return run_pipe(cmdline, len, status); }

char *bn_test_run_tool(const char *cmdline, size_t *len, int *status) {
    char cmd[8192];
#ifdef _WIN32
    if (!to_cmd_exe(cmdline, cmd, sizeof cmd)) {
        fprintf(stderr, "    bn_test_run_tool: no cmd.exe form of: %s\n", cmdline);
        if (status) *status = -1;
        return NULL;
    }
#else
    const char *prefix = getenv("BITNET_EXEC_PREFIX");
    snprintf(cmd, sizeof cmd, "%s %s/%s", prefix ? prefix : "", BN_BUILD_DIR, cmdline);
#endif
    return run_pipe(cmd, len, status);
}

int bn_test_check_tool(const char *file, int line, const char *cmdline, int status, const char *text) {
    int st;
    char *out = bn_test_run_tool(cmdline, NULL, &st);
    const int ok = out && st == status && (!text || strstr(out, text));
    if (!ok)
        bn_test_fail(file, line, "'%s': exit %d (want %d)%s%s%s, output:\n%s", cmdline, st, status, text ? ", looking for '" : "",
                     text ? text : "", text ? "'" : "", out ? out : "(none)");
    free(out);
    return ok;
}

int bn_test_cpu_count(void) {
#ifdef _WIN32
    const DWORD n = GetActiveProcessorCount(ALL_PROCESSOR_GROUPS);
#else
    const long n = sysconf(_SC_NPROCESSORS_ONLN);
#endif
    return n > 0 ? (int)n : 1;
}

void bn_test_setenv(const char *name, const char *value) {
#ifdef _WIN32
    _putenv_s(name, value ? value : ""); /* "" removes it */
#else
    if (value) setenv(name, value, 1);
    else unsetenv(name);
#endif
}

int bn_test_mkdir(const char *path) {
#ifdef _WIN32
    return mkdir(path);
#else
    return mkdir(path, 0755);
#endif
}

/* ---- running ----------------------------------------------------------------- */

static double now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec * 1e-6;
}

typedef struct {
    int test;      /* index in g_tests, -1 when the slot is free */
    FILE *out;     /* the child's stdout + stderr */
    double start;
#ifdef _WIN32
    HANDLE process, job;
    unsigned start_error; /* CreateProcess failed (process is NULL) */
#else
    pid_t pid;
#endif
} running;

/* How a test's process ended. */
typedef struct {
    int code;           /* exit code (CHILD_*) when it exited */
    int signal;         /* POSIX: the signal that ended it; also SIGABRT from abort() on Windows */
    unsigned exception; /* Windows: the unhandled exception's code (0xC0000005: access violation) */
    int timed_out;      /* killed by the runner */
    unsigned not_started; /* Windows: CreateProcess kept failing with this error */
} ending;

typedef struct {
    int passed, failed, skipped;
    int *order;    /* test indices by time, for the slowest-ten list */
    double *ms;
    int n_done;
} summary;

static void record(summary *s, int test, double ms) {
    s->ms[test] = ms;
    s->order[s->n_done++] = test;
}

/* Prints a finished test's buffered output and its verdict. */
static void report(summary *s, running *r, ending e, double timeout_s) {
    const test_entry *t = &g_tests[r->test];
    const double ms = now_ms() - r->start;
    char line[4096];
    rewind(r->out);
    const char *skip_why = NULL;
    while (fgets(line, sizeof line, r->out)) {
        if (strncmp(line, "\x01skip ", 6) == 0) { /* the child's skip reason, not output */
            line[strcspn(line, "\r\n")] = 0;
            snprintf(g_skip_why, sizeof g_skip_why, "%.255s", line + 6);
            skip_why = g_skip_why;
            continue;
        }
        fputs(line, stdout);
    }
    fclose(r->out);
    if (e.timed_out) {
        printf("FAIL %s (%s): timed out after %.0f s (killed)\n", t->name, t->file, timeout_s);
        s->failed++;
    } else if (e.not_started) {
        printf("FAIL %s (%s): its process could not be started (error %u)\n", t->name, t->file, e.not_started);
        s->failed++;
    } else if (e.signal) {
#ifdef _WIN32
        const char *what = e.signal == SIGABRT ? "abort" : "signal";
#else
        const char *what = strsignal(e.signal);
#endif
        printf("FAIL %s (%s): crashed with signal %d (%s)\n", t->name, t->file, e.signal, what);
        s->failed++;
    } else if (e.exception) {
        printf("FAIL %s (%s): crashed with exception 0x%08X\n", t->name, t->file, e.exception);
        s->failed++;
    } else if (e.code == CHILD_SKIP) {
        printf("skip %s: %s\n", t->name, skip_why ? skip_why : "");
        s->skipped++;
    } else if (e.code != CHILD_PASS) {
        if (e.code == CHILD_FAIL)
            printf("FAIL %s (%s) [%.0f ms]\n", t->name, t->file, ms);
        else
            printf("FAIL %s (%s): exited with status %d [%.0f ms]\n", t->name, t->file, e.code, ms);
        s->failed++;
    } else {
        printf("ok   %s [%.0f ms]\n", t->name, ms);
        s->passed++;
    }
    record(s, r->test, ms);
    r->test = -1;
}

/* The child's side: runs one test and exits with its verdict. */
static void run_child(int test) {
#ifdef _WIN32
    setvbuf(stdout, NULL, _IONBF, 0); /* the CRT has no line buffering: what a crash cuts short is kept */
#else
    setvbuf(stdout, NULL, _IOLBF, 0);
#endif
    g_forked = 1;
    g_tests[test].fn();
    end_test_paths();
    if (!g_failed_now && g_skipped_now) printf("\x01skip %s\n", g_skip_why);
    fflush(NULL);
    exit(g_failed_now ? CHILD_FAIL : g_skipped_now ? CHILD_SKIP : CHILD_PASS);
}

#ifndef _WIN32 /* ---- child processes: fork, a process group per test -------------------- */

static void start(running *r, int test) {
    fflush(NULL);
    r->out = tmpfile();
    if (!r->out) {
        fprintf(stderr, "run_tests: cannot create a temporary file: %s\n", strerror(errno));
        exit(2);
    }
    r->test = test;
    r->start = now_ms();
    r->pid = fork();
    if (r->pid < 0) {
        fprintf(stderr, "run_tests: fork: %s\n", strerror(errno));
        exit(2);
    }
    if (r->pid == 0) {
        setpgid(0, 0); /* a timeout kills the test and everything it started */
        dup2(fileno(r->out), 1);
        dup2(fileno(r->out), 2);
        run_child(test);
    }
    setpgid(r->pid, r->pid);
}

static ending ending_of(int wstatus) {
    ending e = {0, 0, 0, 0, 0};
    if (WIFSIGNALED(wstatus)) e.signal = WTERMSIG(wstatus);
    else e.code = WEXITSTATUS(wstatus);
    return e;
}

/* A slot whose child has ended (*e says how), or -1 when none has. */
static int reap(running *slots, int jobs, ending *e) {
    int wstatus;
    const pid_t pid = waitpid(-1, &wstatus, WNOHANG);
    for (int j = 0; pid > 0 && j < jobs; j++)
        if (slots[j].test >= 0 && slots[j].pid == pid) {
            *e = ending_of(wstatus);
            return j;
        }
    return -1;
}

static ending kill_child(running *r) {
    int wstatus;
    kill(-r->pid, SIGKILL);
    kill(r->pid, SIGKILL);
    waitpid(r->pid, &wstatus, 0);
    ending e = ending_of(wstatus);
    e.timed_out = 1;
    return e;
}

static void nap_ms(int ms) { poll(NULL, 0, ms); }

#else /* ---- child processes: `run_tests --child INDEX`, a job object per test ------------ */

/* In the child: an unhandled exception or abort() ends the process with a
 * code the runner recognises, at once (no error dialog, no debugger). */
static LONG WINAPI child_crashed(EXCEPTION_POINTERS *ep) {
    fflush(NULL);
    TerminateProcess(GetCurrentProcess(), ep->ExceptionRecord->ExceptionCode);
    return EXCEPTION_EXECUTE_HANDLER;
}
enum { CHILD_ABORTED = 134 }; /* 128 + SIGABRT, as a POSIX shell reports it */
static void child_aborted(int sig) {
    (void)sig;
    fflush(NULL);
    _exit(CHILD_ABORTED);
}

static void start(running *r, int test) {
    fflush(NULL);
    char tmp_dir[MAX_PATH], tmp[MAX_PATH], self[MAX_PATH], cmd[MAX_PATH + 64];
    SECURITY_ATTRIBUTES inherit = {sizeof inherit, NULL, TRUE};
    if (!GetTempPathA(sizeof tmp_dir, tmp_dir) || !GetTempFileNameA(tmp_dir, "bnt", 0, tmp) ||
        !GetModuleFileNameA(NULL, self, sizeof self)) {
        fprintf(stderr, "run_tests: cannot create a temporary file (error %lu)\n", GetLastError());
        exit(2);
    }
    HANDLE out = CreateFileA(tmp, GENERIC_READ | GENERIC_WRITE, FILE_SHARE_READ | FILE_SHARE_WRITE | FILE_SHARE_DELETE,
                             &inherit, CREATE_ALWAYS, FILE_ATTRIBUTE_TEMPORARY | FILE_FLAG_DELETE_ON_CLOSE, NULL);
    const int fd = out != INVALID_HANDLE_VALUE ? _open_osfhandle((intptr_t)out, _O_RDONLY | _O_BINARY) : -1;
    if (fd < 0 || !(r->out = _fdopen(fd, "rb"))) {
        fprintf(stderr, "run_tests: cannot create %s (error %lu)\n", tmp, GetLastError());
        exit(2);
    }
    snprintf(cmd, sizeof cmd, "\"%s\" --child %d", self, test);
    STARTUPINFOA si = {.cb = sizeof si, .dwFlags = STARTF_USESTDHANDLES};
    si.hStdInput = GetStdHandle(STD_INPUT_HANDLE);
    si.hStdOutput = si.hStdError = out;
    PROCESS_INFORMATION pi;
    r->test = test;
    r->start = now_ms();
    r->job = CreateJobObjectA(NULL, NULL); /* a timeout ends the test and everything it started */
    r->process = NULL;
    r->start_error = 0;
    /* Under Wine a process start fails now and then (ERROR_INTERNAL_ERROR, seen
     * in CI): a few more tries, then the test is reported as not started. */
    for (int attempt = 0; attempt < 5; attempt++) {
        if (CreateProcessA(self, cmd, NULL, NULL, TRUE, CREATE_SUSPENDED, NULL, NULL, &si, &pi)) break;
        r->start_error = (unsigned)GetLastError();
        fprintf(stderr, "run_tests: cannot start %s (error %u)%s\n", self, r->start_error, attempt < 4 ? ", again" : "");
        if (attempt == 4) return;
        Sleep(100u << attempt);
    }
    r->start_error = 0;
    if (r->job) AssignProcessToJobObject(r->job, pi.hProcess);
    ResumeThread(pi.hThread);
    CloseHandle(pi.hThread);
    r->process = pi.hProcess;
}

static ending ending_of(running *r) {
    ending e = {0, 0, 0, 0, r->start_error};
    DWORD code = 1;
    if (r->process) {
        GetExitCodeProcess(r->process, &code);
        CloseHandle(r->process);
    }
    if (r->job) CloseHandle(r->job);
    if (e.not_started) return e;
    if (code == CHILD_ABORTED) e.signal = SIGABRT;
    else if (code >= 0xC0000000u) e.exception = code;
    else e.code = (int)code;
    return e;
}

static int reap(running *slots, int jobs, ending *e) {
    for (int j = 0; j < jobs; j++)
        if (slots[j].test >= 0 && (!slots[j].process || WaitForSingleObject(slots[j].process, 0) == WAIT_OBJECT_0)) {
            *e = ending_of(&slots[j]);
            return j;
        }
    return -1;
}

static ending kill_child(running *r) {
    if (r->job) TerminateJobObject(r->job, 1);
    if (r->process) {
        TerminateProcess(r->process, 1);
        WaitForSingleObject(r->process, INFINITE);
    }
    ending e = ending_of(r);
    e.timed_out = 1;
    return e;
}

static void nap_ms(int ms) { Sleep((DWORD)ms); }

#endif

static void run_in_process(summary *s, int test) {
    const test_entry *t = &g_tests[test];
    g_failed_now = g_skipped_now = 0;
    const double t0 = now_ms();
    t->fn();
    end_test_paths();
    const double ms = now_ms() - t0;
    if (g_failed_now) printf("FAIL %s (%s) [%.0f ms]\n", t->name, t->file, ms), s->failed++;
    else if (g_skipped_now) printf("skip %s: %s\n", t->name, g_skip_why), s->skipped++;
    else printf("ok   %s [%.0f ms]\n", t->name, ms), s->passed++;
    record(s, test, ms);
}

static int selected(const test_entry *t, int tiers, char **filters, int n_filters) {
    if (!(tiers & (1 << t->tier))) return 0;
    if (n_filters == 0) return 1;
    for (int i = 0; i < n_filters; i++)
        if (strstr(t->name, filters[i]) || strstr(t->file, filters[i])) return 1;
    return 0;
}

static int usage(void) {
    fprintf(stderr, "usage: run_tests [--all | --e2e] [-j N] [--timeout S] [--no-fork] [FILTER ...]\n");
    return 2;
}

int main(int argc, char **argv) {
#ifdef _WIN32
    _setmode(_fileno(stdout), _O_BINARY); /* "\n", not "\r\n": the same output as on POSIX */
    _setmode(_fileno(stderr), _O_BINARY);
#endif
    int tiers = 1 << BN_TIER_FAST, jobs = bn_test_cpu_count(), fork_tests = 1;
    const char *env_timeout = getenv("BITNET_TEST_TIMEOUT");
    double timeout_s = env_timeout && atof(env_timeout) > 0 ? atof(env_timeout) : 300;
    char **filters = calloc((size_t)argc, sizeof *filters);
    int n_filters = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--all") == 0) tiers = (1 << BN_TIER_FAST) | (1 << BN_TIER_E2E);
        else if (strcmp(argv[i], "--e2e") == 0) tiers = 1 << BN_TIER_E2E;
        else if (strcmp(argv[i], "--runner-selftest") == 0) tiers = 1 << BN_TIER_SELFTEST;
        else if (strcmp(argv[i], "--no-fork") == 0) fork_tests = 0;
        else if (strcmp(argv[i], "--child") == 0 && i + 1 < argc) { /* Windows: one test, started by start() */
            const int test = atoi(argv[++i]);
            if (test < 0 || test >= g_n_tests) return usage();
#ifdef _WIN32
            SetErrorMode(SEM_FAILCRITICALERRORS | SEM_NOGPFAULTERRORBOX);
            SetUnhandledExceptionFilter(child_crashed);
            signal(SIGABRT, child_aborted);
#endif
            run_child(test);
        }
        else if (strcmp(argv[i], "-j") == 0 && i + 1 < argc) jobs = atoi(argv[++i]);
        else if (strcmp(argv[i], "--timeout") == 0 && i + 1 < argc) timeout_s = atof(argv[++i]);
        else if (argv[i][0] == '-') return usage();
        else filters[n_filters++] = argv[i];
    }
    if (jobs < 1) jobs = 1;
    /* A filter names tests of any tier: "run_tests server_end_to_end" runs it. */
    if (n_filters > 0 && tiers == 1 << BN_TIER_FAST) tiers = (1 << BN_TIER_FAST) | (1 << BN_TIER_E2E);
    setvbuf(stdout, NULL, _IOLBF, 0);
#ifdef SIGPIPE
    signal(SIGPIPE, SIG_IGN);
#endif

    summary s = {0, 0, 0, calloc((size_t)g_n_tests + 1, sizeof(int)), calloc((size_t)g_n_tests + 1, sizeof(double)), 0};
    running *slots = calloc((size_t)jobs, sizeof *slots);
    if (!s.order || !s.ms || !slots) return 2;
    for (int j = 0; j < jobs; j++) slots[j].test = -1;
    const double t_run = now_ms();
    int next = 0, active = 0;
    for (;;) {
        while (next < g_n_tests && !selected(&g_tests[next], tiers, filters, n_filters)) next++;
        if (!fork_tests) {
            if (next >= g_n_tests) break;
            run_in_process(&s, next++);
            continue;
        }
        if (next < g_n_tests && active < jobs) { /* fill a free slot */
            for (int j = 0; j < jobs; j++)
                if (slots[j].test < 0) {
                    start(&slots[j], next++);
                    active++;
                    break;
                }
            continue;
        }
        if (active == 0) break;
        /* wait for a child to end, or a deadline to pass */
        ending e;
        const int done = reap(slots, jobs, &e);
        if (done >= 0) {
            report(&s, &slots[done], e, timeout_s);
            active--;
            continue;
        }
        const double now = now_ms();
        for (int j = 0; j < jobs; j++)
            if (slots[j].test >= 0 && now - slots[j].start > timeout_s * 1e3) {
                report(&s, &slots[j], kill_child(&slots[j]), timeout_s);
                active--;
            }
        nap_ms(2);
    }

    /* the ten slowest tests */
    for (int i = 1; i < s.n_done; i++) /* insertion sort by time, descending */
        for (int k = i; k > 0 && s.ms[s.order[k]] > s.ms[s.order[k - 1]]; k--) {
            int tmp = s.order[k];
            s.order[k] = s.order[k - 1];
            s.order[k - 1] = tmp;
        }
    if (s.n_done > 1) {
        printf("slowest tests (of %d, %.1f s wall, -j %d):\n", s.n_done, (now_ms() - t_run) / 1e3, fork_tests ? jobs : 1);
        for (int i = 0; i < s.n_done && i < 10; i++) printf("  %8.0f ms  %s\n", s.ms[s.order[i]], g_tests[s.order[i]].name);
    }
    printf("%d passed, %d failed, %d skipped\n", s.passed, s.failed, s.skipped);
    free(s.order);
    free(s.ms);
    free(slots);
    free(filters);
    free(g_tests);
    return s.failed ? 1 : 0;
}
