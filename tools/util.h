/* util.h - small helpers shared by the command-line tools (header-only).
 * A tool defines TOOL_NAME ("infer", ...) before including it: option errors
 * are printed as "TOOL_NAME: --flag expects ...". */
#ifndef BN_TOOLS_UTIL_H
#define BN_TOOLS_UTIL_H

#ifndef TOOL_NAME
#error "define TOOL_NAME before including util.h"
#endif

#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bitnet.h"
#include "portable.h"

#define BN_MIN_INT(a, b) ((a) < (b) ? (a) : (b))

static inline uint64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* The whole of a file, NUL-terminated (malloc'd, *len bytes before the NUL); NULL on
 * error, with errno from fopen (0 for a read error). */
static inline char *read_whole_file(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    char *buf = NULL;
    long n = -1;
    if (fseek(f, 0, SEEK_END) == 0 && (n = ftell(f)) >= 0 && fseek(f, 0, SEEK_SET) == 0 && (buf = malloc((size_t)n + 1)) &&
        fread(buf, 1, (size_t)n, f) != (size_t)n) {
        free(buf);
        buf = NULL;
    }
    fclose(f);
    if (buf) {
        buf[n] = 0;
        *len = (size_t)n;
    } else {
        errno = 0;
    }
    return buf;
}

/* The value of option argv[*i] (then *i points at it). -h / --help print
 * usage to stdout and exit 0; a missing value is a one-line message and NULL. */
static inline const char *option_value(int argc, char **argv, int *i, void (*usage)(FILE *)) {
    const char *a = argv[*i];
    if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
        usage(stdout);
        exit(0);
    }
    if (*i + 1 >= argc) {
        fprintf(stderr, TOOL_NAME ": option %s needs a value (see --help)\n", a);
        return NULL;
    }
    return argv[++*i];
}

/* Option values: 1 and *out set, or 0 after a one-line message on stderr. */
static inline int parse_long(const char *flag, const char *v, long lo, long hi, long *out) {
    char *end;
    errno = 0;
    long x = strtol(v, &end, 10);
    if (errno || *end || end == v || x < lo || x > hi) {
        fprintf(stderr, TOOL_NAME ": %s expects an integer in %ld..%ld, got '%s'\n", flag, lo, hi, v);
        return 0;
    }
    *out = x;
    return 1;
}

static inline int parse_int(const char *flag, const char *v, int lo, int hi, int *out) {
    long x;
    if (!parse_long(flag, v, lo, hi, &x)) return 0;
    *out = (int)x;
    return 1;
}

static inline int parse_float(const char *flag, const char *v, float *out) {
    char *end;
    float x = strtof(v, &end);
    if (*end || end == v || !isfinite(x)) {
        fprintf(stderr, TOOL_NAME ": %s expects a number, got '%s'\n", flag, v);
        return 0;
    }
    *out = x;
    return 1;
}

#ifdef BITNET_H
static inline int parse_kv_type(const char *flag, const char *v, bitnet_kv_type *out) {
    if (bitnet_kv_type_from_name(v, out) == 0) return 1;
    fprintf(stderr, TOOL_NAME ": %s expects f32, f16, q8 (q8_0), q4 (q4_0) or q2, got '%s'\n", flag, v);
    return 0;
}

/* The KV cache type flags of every tool: --kv-type T, and llama.cpp's -ctk /
 * -ctv (--cache-type-k/-v). One type serves keys and values here, so -ctk and
 * -ctv naming different types is an error rather than half-applied.
 * parse_kv_flag returns 0 on a bad value (reported), 1 when set. */
typedef struct {
    bitnet_kv_type type;
    const char *k, *v; /* the -ctk / -ctv values as given */
} kv_flags;

static inline int is_kv_flag(const char *flag) {
    return !strcmp(flag, "--kv-type") || !strcmp(flag, "-ctk") || !strcmp(flag, "--cache-type-k") ||
           !strcmp(flag, "-ctv") || !strcmp(flag, "--cache-type-v");
}

static inline int parse_kv_flag(const char *flag, const char *v, kv_flags *kv) {
    if (!strcmp(flag, "--kv-type")) {
        kv->k = kv->v = NULL;
        return parse_kv_type(flag, v, &kv->type);
    }
    const int is_k = !strcmp(flag, "-ctk") || !strcmp(flag, "--cache-type-k");
    bitnet_kv_type t;
    if (!parse_kv_type(flag, v, &t)) return 0;
    const char *other = is_k ? kv->v : kv->k;
    if (other && t != kv->type) {
        fprintf(stderr, TOOL_NAME ": %s %s differs from %s %s: keys and values share one cache type here "
                        "(give both the same, or --kv-type)\n", flag, v, is_k ? "-ctv" : "-ctk", other);
        return 0;
    }
    kv->type = t;
    *(is_k ? &kv->k : &kv->v) = v;
    return 1;
}

/* The options of every tool that loads a model and runs it, parsed in one
 * place so that they mean the same everywhere (llama.cpp's spellings):
 * -m/--model FILE, --tokenizer FILE, -t/--threads N (1..1024), and the KV
 * cache type (--kv-type, -ctk, -ctv). */
typedef struct {
    const char *model, *tokenizer;
    int n_threads, threads_given;
    kv_flags kv;
} model_options;

#define MODEL_OPTIONS_DEFAULT {.n_threads = 1, .kv = {.type = BITNET_KV_DEFAULT}}

/* model_options' help lines at column 24, for tools whose -t defaults to 1. */
#define MODEL_OPTIONS_HELP                                                                        \
    "  -t, --threads N       threads (default 1)\n"                                               \
    "      --kv-type T       KV cache type: f32, f16, q8, q4, q2 (default: per model,\n"          \
    "                        see docs/kv-cache.md); also -ctk/-ctv (q8_0 = q8, one type)\n"      \
    "      --tokenizer FILE  llama2.c tokenizer.bin for files without a vocabulary\n"             \
    "                        (safetensors: also a tokenizer.json or GGUF vocabulary)\n"

/* Option a with value v, the last branch of a tool's option chain
 * (`else ok = model_option(a, v, &o->m);`): 1 when it is one of
 * model_options and taken, 0 when its value is bad or it is no option of the
 * tool at all (both reported on stderr). */
static inline int model_option(const char *a, const char *v, model_options *m) {
    if (!strcmp(a, "-m") || !strcmp(a, "--model")) m->model = v;
    else if (!strcmp(a, "--tokenizer")) m->tokenizer = v;
    else if (!strcmp(a, "-t") || !strcmp(a, "--threads")) return m->threads_given = parse_int(a, v, 1, 1024, &m->n_threads);
    else if (is_kv_flag(a)) return parse_kv_flag(a, v, &m->kv);
    else {
        fprintf(stderr, TOOL_NAME ": unknown option '%s' (see --help)\n", a);
        return 0;
    }
    return 1;
}
#endif

/* A JSON string (null for NULL): escapes quotes, backslashes and control characters. */
static inline void json_str(FILE *f, const char *s) {
    if (!s) {
        fputs("null", f);
        return;
    }
    fputc('"', f);
    for (; *s; s++) {
        if (*s == '"' || *s == '\\') fprintf(f, "\\%c", *s);
        else if ((unsigned char)*s < 0x20) fprintf(f, "\\u%04x", *s);
        else fputc(*s, f);
    }
    fputc('"', f);
}

/* --version anywhere on the command line: "TOOL (libbitnet X.Y.Z)", exit 0
 * (every tool, as llama.cpp's). Called first thing in main. */
static inline void handle_version(int argc, char **argv) {
    for (int i = 1; i < argc; i++)
        if (!strcmp(argv[i], "--version")) {
            printf(TOOL_NAME " (libbitnet %s)\n", bitnet_version());
            exit(0);
        }
}

/* Loads PATH (NULL: the embedded default model) with `mp` (NULL: the default
 * parameters plus `tokenizer`), or prints "TOOL: <the library's message>" on
 * stderr and returns NULL. */
static inline bitnet_model *load_model(const char *path, const char *tokenizer, const bitnet_model_params *mp) {
    bitnet_model_params p = mp ? *mp : bitnet_model_default_params();
    if (!mp) p.tokenizer_path = tokenizer;
    bitnet_model *m = NULL;
    bitnet_status st = path ? bitnet_model_load(path, &p, &m) : bitnet_model_load_default(&p, &m);
    if (st != BITNET_OK) {
        fprintf(stderr, TOOL_NAME ": %s\n", bitnet_last_error());
        return NULL;
    }
    return m;
}

/* Progress of a long operation on stderr: "TOOL: WHAT 42% (12.3 s, ETA 17.0 s)"
 * plus a detail, redrawn in place on a terminal (at most 10 times a second)
 * and as a plain line every 10 s otherwise, so that a log gets a few lines and
 * a short run none; nothing when quiet (-q). */
typedef struct {
    const char *what;
    uint64_t t0, last;
    int tty, quiet, drawn;
} progress;

static inline void progress_start(progress *p, const char *what, int quiet) {
    p->what = what;
    p->t0 = p->last = now_ns();
    p->tty = isatty(2);
    p->quiet = quiet;
    p->drawn = 0;
}

static inline void progress_update(progress *p, double done, double total, const char *detail) {
    if (p->quiet) return;
    const uint64_t now = now_ns();
    if (now - p->last < (p->tty ? 100000000ull : 10000000000ull)) return;
    p->last = now;
    const double el = (double)(now - p->t0) * 1e-9, frac = total > 0 ? done / total : 1;
    const double eta = frac > 0 ? el * (1 - frac) / frac : 0;
    fprintf(stderr, "%s" TOOL_NAME ": %s %3.0f%% %s(%.1f s, ETA %.1f s)%s", p->tty ? "\r\033[K" : "", p->what,
            100 * frac, detail ? detail : "", el, eta, p->tty ? "" : "\n");
    p->drawn = 1;
}

/* Ends the redrawn line (a newline on a terminal if something was drawn). */
static inline void progress_end(progress *p) {
    if (p->tty && p->drawn && !p->quiet) fputs("\r\033[K", stderr);
    p->drawn = 0;
}

/* Peak resident set (VmHWM; the peak working set on Windows) in MiB, 0 if unknown. */
static inline double peak_rss_mib(void) { return fmax(process_mib("VmHWM:"), 0.0); }
/* Current resident set (VmRSS; the working set on Windows) in MiB, 0 if unknown. */
static inline double rss_now_mib(void) { return fmax(process_mib("VmRSS:"), 0.0); }

#endif
