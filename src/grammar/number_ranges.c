/* number_ranges.c - GBNF alternatives for the integers, or the decimal
 * numbers, between two bounds (JSON Schema's minimum/maximum and their
 * exclusive forms, json_schema.c), in JSON's spelling: no leading zeros, "-"
 * before the negative ones (never "-0"), no exponent. Digit patterns as
 * llama.cpp's json-schema-to-grammar builds them: a range of n-digit strings
 * splits at its first differing digit into a low edge, a span of whole leading
 * digits and a high edge. Bounds are whole numbers of at most 15 digits (the
 * caller checks). */
#include <stdio.h>
#include <string.h>

#include "grammar/grammar.h"

/* The alternatives for the n-digit strings from lo to hi (n digits each,
 * lo <= hi, leading zeros allowed: they are a number's inner digits), each
 * after `prefix` (digits already fixed). */
static int digit_range(bn_buf *b, int *first, const char *prefix, const char *lo, const char *hi, int n) {
    char p[40];
    if (n == 0 || !strncmp(lo, hi, (size_t)n)) {
        const int rc = bn_buf_printf(b, "%s\"%s%.*s\"", *first ? "" : " | ", prefix, n, lo);
        *first = 0;
        return rc;
    }
    if (lo[0] == hi[0]) {
        snprintf(p, sizeof p, "%s%c", prefix, lo[0]);
        return digit_range(b, first, p, lo + 1, hi + 1, n - 1);
    }
    const int lo_zeros = (int)strspn(lo + 1, "0") >= n - 1, hi_nines = (int)strspn(hi + 1, "9") >= n - 1;
    int rc = 0;
    if (!lo_zeros) { /* lo[0] then lo[1..] .. 99..9 */
        char nines[20] = {0};
        memset(nines, '9', (size_t)n - 1);
        snprintf(p, sizeof p, "%s%c", prefix, lo[0]);
        rc = digit_range(b, first, p, lo + 1, nines, n - 1);
    }
    const char a = (char)(lo[0] + !lo_zeros), z = (char)(hi[0] - !hi_nines);
    if (!rc && a <= z) { /* a whole span of leading digits, anything after */
        rc = bn_buf_printf(b, "%s", *first ? "" : " | ");
        if (!rc && *prefix) rc = bn_buf_printf(b, "\"%s\" ", prefix);
        if (!rc) rc = a == z ? bn_buf_printf(b, "\"%c\"", a) : bn_buf_printf(b, "[%c-%c]", a, z);
        if (!rc && n > 1) rc = bn_buf_printf(b, " [0-9]{%d}", n - 1);
        *first = 0;
    }
    if (!rc && !hi_nines) { /* hi[0] then 00..0 .. hi[1..] */
        char zeros[20] = {0};
        memset(zeros, '0', (size_t)n - 1);
        snprintf(p, sizeof p, "%s%c", prefix, hi[0]);
        rc = digit_range(b, first, p, zeros, hi + 1, n - 1);
    }
    return rc;
}

/* Alternatives for the non-negative integers from lo to hi (hi < 0: no upper bound). */
static int nonneg_range(bn_buf *b, int *first, long long lo, long long hi) {
    char a[20], z[20];
    const int la = snprintf(a, sizeof a, "%lld", lo);
    const int lz = hi < 0 ? la : snprintf(z, sizeof z, "%lld", hi);
    int rc = 0;
    for (int n = la; n <= lz && !rc; n++) {
        char from[20] = {0}, to[20] = {0}; /* NUL-terminated: digit_range measures runs with strspn */
        if (n == la) memcpy(from, a, (size_t)n + 1);
        else from[0] = '1', memset(from + 1, '0', (size_t)n - 1);
        if (n == lz && hi >= 0) memcpy(to, z, (size_t)n + 1);
        else memset(to, '9', (size_t)n);
        rc = digit_range(b, first, "", from, to, n);
    }
    if (!rc && hi < 0 && la < 16) { /* and every longer number */
        rc = bn_buf_printf(b, "%s[1-9] [0-9]{%d,15}", *first ? "" : " | ", la);
        *first = 0;
    }
    return rc;
}


/* A fraction: any, one that is not zero, or zeros only. */
#define FRAC " ( \".\" [0-9]{1,16} )?"
#define FRAC_NONZERO " \".\" [0-9]{0,15} [1-9] [0-9]{0,15}"
#define FRAC_ZERO " ( \".\" [0]{1,16} )?"

int bn_gbnf_integers(bn_buf *b, int has_lo, long long lo, int has_hi, long long hi) {
    int first = 1, rc = 0;
    if (!has_lo || lo < 0) { /* the negative ones: "-" and their magnitudes */
        int neg_first = 1;
        rc = bn_buf_printf(b, " \"-\" (");
        if (!rc) rc = nonneg_range(b, &neg_first, has_hi && hi < 0 ? -hi : 1, has_lo ? -lo : -1);
        if (!rc) rc = bn_buf_printf(b, " )");
        first = 0;
    }
    if (!rc && (!has_hi || hi >= 0)) {
        if (!first) rc = bn_buf_printf(b, " |");
        first = 1;
        if (!rc) rc = bn_buf_printf(b, " ");
        if (!rc) rc = nonneg_range(b, &first, has_lo && lo > 0 ? lo : 0, has_hi ? hi : -1);
    }
    return rc;
}

/* Magnitudes m >= 0 from L (excluded if exL) to H (excluded if exH; has_H 0:
 * no end): integer part i and fraction. Returns -1 out of memory. */
static int magnitudes(bn_buf *b, int *first, long long L, int exL, int has_H, long long H, int exH) {
    int rc = 0;
    const char *sep = *first ? "" : " |";
#define ALT(...) (rc = rc ? rc : bn_buf_printf(b, "%s ", sep), sep = " |", *first = 0, rc = rc ? rc : bn_buf_printf(b, __VA_ARGS__))
    if (!has_H || L + 1 <= H - 1) { /* whole integer parts strictly inside: any fraction */
        int f = 1;
        ALT("(");
        if (!rc) rc = nonneg_range(b, &f, L + 1, has_H ? H - 1 : -1);
        if (!rc) rc = bn_buf_printf(b, " )" FRAC);
    }
    if (!has_H || L < H) { /* i = L: above L when excluded; i = H: exactly H */
        ALT(exL ? "\"%lld\"" FRAC_NONZERO : "\"%lld\"" FRAC, L);
        if (has_H && !exH) ALT("\"%lld\"" FRAC_ZERO, H);
    } else if (!exL && !exH) { /* L == H */
        ALT("\"%lld\"" FRAC_ZERO, L);
    }
#undef ALT
    return rc;
}

int bn_gbnf_numbers(bn_buf *b, int has_lo, long long lo, int lo_ex, int has_hi, long long hi, int hi_ex) {
    int first = 1, rc = 0;
    if (!has_lo || lo < 0) { /* x < 0: "-" and m = -x, above -hi (or 0) and up to -lo */
        int f = 1;
        rc = bn_buf_printf(b, " \"-\" (");
        const int lower_from_hi = has_hi && hi < 0;
        if (!rc) rc = magnitudes(b, &f, lower_from_hi ? -hi : 0, lower_from_hi ? hi_ex : 1, has_lo, has_lo ? -lo : 0, lo_ex);
        if (!rc) rc = bn_buf_printf(b, " )");
        first = 0;
    }
    if (!rc && (!has_hi || hi > 0 || (hi == 0 && !hi_ex))) { /* x >= 0 */
        if (!first) rc = bn_buf_printf(b, " |");
        first = 1;
        const int from_lo = has_lo && lo >= 0;
        if (!rc) rc = magnitudes(b, &first, from_lo ? lo : 0, from_lo ? lo_ex : 0, has_hi, has_hi ? hi : 0, hi_ex);
    }
    return rc;
}
