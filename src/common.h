/* common.h - assertions, error reporting and small helpers shared by every module. */
#ifndef BN_COMMON_H
#define BN_COMMON_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bitnet.h"

/* Invariant that must hold whatever the input files say: a failure is a bug in
 * this library, so we print where and abort (like GGML_ASSERT). Never use it to
 * validate file contents: that is what bn_error() is for. */
#define BN_ASSERT(x)                                                                   \
    do {                                                                               \
        if (!(x)) {                                                                    \
            fprintf(stderr, "%s:%d: BN_ASSERT(%s) failed\n", __FILE__, __LINE__, #x); \
            abort();                                                                   \
        }                                                                              \
    } while (0)

#define BN_UNUSED(x) (void)(x)
#define BN_MIN(a, b) ((a) < (b) ? (a) : (b))
#define BN_MAX(a, b) ((a) > (b) ? (a) : (b))

#if defined(__MINGW32__) /* the C99 printf of mingw-w64 (__USE_MINGW_ANSI_STDIO), not msvcrt's */
#define BN_PRINTF(f, a) __attribute__((format(gnu_printf, f, a)))
#elif defined(__GNUC__)
#define BN_PRINTF(f, a) __attribute__((format(printf, f, a)))
#else
#define BN_PRINTF(f, a)
#endif

/* Records a one-line, thread-local error message (see bitnet_last_error) and
 * returns `code`, so that callers can write `return bn_error(BITNET_ERR_FORMAT, ...)`. */
bitnet_status bn_error(bitnet_status code, const char *fmt, ...) BN_PRINTF(2, 3);
/* Makes a message one line: every control character (newline, tab, ...) becomes a
 * space, so text quoted from a hostile input cannot break the one-line format. */
/* Marsaglia's xorshift64 (13, 7, 17): the fixed pseudo-random stream of the
 * synthetic models, the fuzz seeds, the tests and the benchmarks. Returns the
 * new state; *s must not be 0. */
static inline uint64_t bn_xorshift64(uint64_t *s) {
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

static inline char *bn_one_line(char *s) {
    for (char *p = s; *p; p++)
        if ((unsigned char)*p < 0x20 || *p == 0x7f) *p = ' ';
    return s;
}
/* A warning: through bitnet_log_set's callback, else one line on stderr. */
void bn_warn(const char *fmt, ...) BN_PRINTF(1, 2);

/* Overflow-checked size arithmetic: return 0 on overflow, 1 on success. */
static inline int bn_mul_ok(uint64_t a, uint64_t b, uint64_t *out) {
    if (a != 0 && b > UINT64_MAX / a) return 0;
    *out = a * b;
    return 1;
}
static inline int bn_add_ok(uint64_t a, uint64_t b, uint64_t *out) {
    if (b > UINT64_MAX - a) return 0;
    *out = a + b;
    return 1;
}

/* IEEE half <-> float, exact (round-to-nearest-even on the way down). */
float bn_fp16_to_fp32(uint16_t h);
uint16_t bn_fp32_to_fp16(float f);

/* Defined in os.c (per operating system). Monotonic clock in nanoseconds. */
uint64_t bn_time_ns(void);
/* Peak resident set size of this process in bytes (0 if unknown). */
uint64_t bn_peak_rss_bytes(void);
/* Current resident set size in bytes (0 if unknown). */
uint64_t bn_current_rss_bytes(void);

/* First occurrence of needle[0..nl) in hay[0..hl), or NULL (memmem, which not
 * every C library has). */
const char *bn_memmem(const char *hay, size_t hl, const char *needle, size_t nl);

/* The code point of the valid UTF-8 sequence at s[0..n) in *cp; returns its
 * length (1..4), or 0 if it is not one (Unicode table 3-7: no overlong forms,
 * no surrogates, nothing above U+10FFFF, no sequence cut at n). */
size_t bn_utf8_next(const char *s, size_t n, uint32_t *cp);

/* Allocation that aborts never: returns NULL on failure; 64-byte aligned. */
void *bn_aligned_alloc(size_t size);
void bn_aligned_free(void *p);

#endif
