/* util.h - small helpers shared by the command-line tools (header-only). */
#ifndef BN_TOOLS_UTIL_H
#define BN_TOOLS_UTIL_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define BN_MIN_INT(a, b) ((a) < (b) ? (a) : (b))

static inline uint64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* A "Field:   N kB" line of /proc/self/status, in MiB; 0 if unknown. */
static inline double proc_status_mib(const char *field) {
    FILE *f = fopen("/proc/self/status", "r");
    if (!f) return 0.0;
    char line[256];
    double mib = 0.0;
    size_t n = strlen(field);
    while (fgets(line, sizeof line, f))
        if (strncmp(line, field, n) == 0) {
            mib = strtod(line + n, NULL) / 1024.0;
            break;
        }
    fclose(f);
    return mib;
}

/* Peak resident set (VmHWM) in MiB. */
static inline double peak_rss_mib(void) { return proc_status_mib("VmHWM:"); }
/* Current resident set (VmRSS) in MiB. */
static inline double rss_now_mib(void) { return proc_status_mib("VmRSS:"); }

#endif
