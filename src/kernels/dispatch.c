/*
 * dispatch.c - picks the kernel table for this CPU.
 *
 * x86-64: CPUID for the instruction sets plus XGETBV for the OS side (the
 * kernel must save YMM state for AVX2 and opmask/ZMM state for AVX-512,
 * otherwise the instructions fault even though CPUID lists them).
 *   avx2      needs AVX2 + FMA + F16C + BMI2 + POPCNT, OS-enabled XMM|YMM;
 *   avx2-vnni the same plus AVX-VNNI (CPUID 7.1:EAX[4]; Alder Lake+, Zen 5):
 *             VEX VPDPBUSD for the integer kernels; "avx2" resolves to it
 *             when present ("avx2-plain" names the plain table);
 *   avx512    needs AVX512 F+BW+VL+DQ+VNNI, OS-enabled opmask|ZMM as well.
 * aarch64: getauxval(AT_HWCAP): ASIMD for "neon", ASIMDDP (SDOT) for
 *          "neon-dotprod" (the "neon" name resolves to the best of the two).
 * riscv64: getauxval(AT_HWCAP) bit 'V' - 'A' (the vector extension 1.0) for
 *          "rvv", when the build has the RVV file (BN_HAVE_RVV).
 * 32-bit ARM: getauxval(AT_HWCAP) HWCAP_NEON for "neon" (the ternary kernels
 *          of neon.c; BN_HAVE_NEON32).
 *
 * BITNET_ISA=scalar|avx2|avx512|neon|rvv (also avx2-plain, avx2-vnni, avx512vnni,
 * neon-nodot, neon-dotprod) forces a
 * table; an unknown or unsupported name falls back to the best one with a
 * warning on stderr. bn_kernels_get() resolves once and caches the result
 * (so setenv() after the first call has no effect; tests use
 * bn_kernels_by_name() and bn_kernels_resolve() instead).
 */
#include <pthread.h>
#include <stdatomic.h>

#include "common.h"
#include "kernels/kernels.h"

#if defined(__x86_64__) || defined(__i386__)
#define BN_X86 1
#include <cpuid.h>
extern const bn_kernels bn_kernels_avx2_vnni;        /* avx2.c: AVX-VNNI integer kernels */
#elif defined(__aarch64__)
#define BN_ARM64 1
#include <sys/auxv.h>
#ifndef HWCAP_ASIMD
#define HWCAP_ASIMD (1 << 1)
#endif
#ifndef HWCAP_ASIMDDP
#define HWCAP_ASIMDDP (1 << 20)
#endif
extern const bn_kernels bn_kernels_neon_dotprod; /* neon.c: SDOT variant */
#elif defined(__arm__) && defined(BN_HAVE_NEON32)
#define BN_NEON32 1
#include <sys/auxv.h>
#ifndef HWCAP_NEON
#define HWCAP_NEON (1 << 12)
#endif
void bn_kernels_neon32_init(bn_kernels *t); /* neon.c */
#elif defined(__riscv) && __riscv_xlen == 64 && defined(BN_HAVE_RVV)
#define BN_RVV 1
#include <sys/auxv.h>
void bn_kernels_rvv_init(bn_kernels *t); /* rvv.c */
#endif

/* Not in kernels.h: resolves a BITNET_ISA-style request (NULL or "" = best)
 * without touching the cache; warns on stderr if the name is unusable. */
const bn_kernels *bn_kernels_resolve(const char *request);

#if BN_X86
typedef struct {
    int avx2, avx2_vnni, avx512;
} x86_features;

static uint64_t xgetbv0(void) {
    uint32_t eax, edx;
    __asm__ __volatile__("xgetbv" : "=a"(eax), "=d"(edx) : "c"(0));
    return ((uint64_t)edx << 32) | eax;
}

static x86_features x86_detect_uncached(void) {
    x86_features f = {0, 0, 0};
    unsigned a, b, c, d;
    if (!__get_cpuid(1, &a, &b, &c, &d)) return f;
    const int fma = (c >> 12) & 1, popcnt = (c >> 23) & 1, osxsave = (c >> 27) & 1;
    const int avx = (c >> 28) & 1, f16c = (c >> 29) & 1;
    if (!osxsave || !avx) return f;
    const uint64_t xcr0 = xgetbv0();
    const int os_ymm = (xcr0 & 0x6) == 0x6;   /* XMM | YMM state */
    const int os_zmm = (xcr0 & 0xe6) == 0xe6; /* + opmask | ZMM_Hi256 | Hi16_ZMM */
    if (__get_cpuid_max(0, NULL) < 7) return f;
    __cpuid_count(7, 0, a, b, c, d);
    const int avx2 = (b >> 5) & 1, bmi2 = (b >> 8) & 1;
    const int avx512f = (b >> 16) & 1, avx512dq = (b >> 17) & 1;
    const int avx512bw = (b >> 30) & 1, avx512vl = (b >> 31) & 1;
    const int vnni = (c >> 11) & 1;
    f.avx2 = os_ymm && avx2 && fma && f16c && bmi2 && popcnt;
    __cpuid_count(7, 1, a, b, c, d);
    f.avx2_vnni = f.avx2 && ((a >> 4) & 1);
    f.avx512 = f.avx2 && os_zmm && avx512f && avx512dq && avx512bw && avx512vl && vnni;
    return f;
}

/* CPUID traps to the hypervisor in a VM (microseconds): detect once. */
static x86_features g_x86;
static pthread_once_t g_x86_once = PTHREAD_ONCE_INIT;
static void x86_detect_once(void) { g_x86 = x86_detect_uncached(); }
static x86_features x86_detect(void) {
    pthread_once(&g_x86_once, x86_detect_once);
    return g_x86;
}
#endif

#if BN_ARM64
static unsigned long arm_hwcap(void) { return getauxval(AT_HWCAP); }
#endif

#if BN_NEON32
/* The scalar table with neon.c's ternary kernels, built once; NULL without NEON. */
static bn_kernels g_neon32;
static int g_neon32_ok;
static pthread_once_t g_neon32_once = PTHREAD_ONCE_INIT;
static void neon32_init_once(void) {
    g_neon32_ok = (getauxval(AT_HWCAP) & HWCAP_NEON) != 0;
    if (g_neon32_ok) bn_kernels_neon32_init(&g_neon32);
}
static const bn_kernels *neon32_table(void) {
    pthread_once(&g_neon32_once, neon32_init_once);
    return g_neon32_ok ? &g_neon32 : NULL;
}
#endif

#if BN_RVV
/* The scalar table with rvv.c's kernels, built once; NULL without V. */
static bn_kernels g_rvv;
static int g_rvv_ok;
static pthread_once_t g_rvv_once = PTHREAD_ONCE_INIT;
static void rvv_init_once(void) {
    g_rvv_ok = (getauxval(AT_HWCAP) >> ('V' - 'A')) & 1;
    if (g_rvv_ok) bn_kernels_rvv_init(&g_rvv);
}
static const bn_kernels *rvv_table(void) {
    pthread_once(&g_rvv_once, rvv_init_once);
    return g_rvv_ok ? &g_rvv : NULL;
}
#endif

/* Table for an exact name if compiled in and usable here, else NULL. */
const bn_kernels *bn_kernels_by_name(const char *isa) {
    if (!isa) return NULL;
    if (strcmp(isa, "scalar") == 0) return &bn_kernels_scalar;
#if BN_X86
    x86_features f = x86_detect();
    if (strcmp(isa, "avx2") == 0) return f.avx2_vnni ? &bn_kernels_avx2_vnni : (f.avx2 ? &bn_kernels_avx2 : NULL);
    if (strcmp(isa, "avx2-plain") == 0) return f.avx2 ? &bn_kernels_avx2 : NULL;
    if (strcmp(isa, "avx2-vnni") == 0) return f.avx2_vnni ? &bn_kernels_avx2_vnni : NULL;
    if (strcmp(isa, "avx512") == 0 || strcmp(isa, "avx512vnni") == 0) {
        if (!f.avx512) return NULL;
        return &bn_kernels_avx512;
    }
#elif BN_ARM64
    unsigned long hw = arm_hwcap();
    const int asimd = (hw & HWCAP_ASIMD) != 0, dot = asimd && (hw & HWCAP_ASIMDDP) != 0;
    if (strcmp(isa, "neon") == 0) return dot ? &bn_kernels_neon_dotprod : (asimd ? &bn_kernels_neon : NULL);
    if (strcmp(isa, "neon-dotprod") == 0) return dot ? &bn_kernels_neon_dotprod : NULL;
    if (strcmp(isa, "neon-nodot") == 0) return asimd ? &bn_kernels_neon : NULL;
#elif BN_NEON32
    if (strcmp(isa, "neon") == 0) return neon32_table();
#elif BN_RVV
    if (strcmp(isa, "rvv") == 0) return rvv_table();
#endif
    return NULL;
}

int bn_kernels_list(const bn_kernels **out, int cap) {
    const bn_kernels *all[5];
    int n = 0;
    all[n++] = &bn_kernels_scalar;
#if BN_X86
    if (bn_kernels_by_name("avx2-plain")) all[n++] = bn_kernels_by_name("avx2-plain");
    if (bn_kernels_by_name("avx2-vnni")) all[n++] = bn_kernels_by_name("avx2-vnni");
    if (bn_kernels_by_name("avx512")) all[n++] = bn_kernels_by_name("avx512");
#elif BN_ARM64
    if (bn_kernels_by_name("neon-nodot")) all[n++] = bn_kernels_by_name("neon-nodot");
    if (bn_kernels_by_name("neon-dotprod")) all[n++] = bn_kernels_by_name("neon-dotprod");
#elif BN_NEON32
    if (neon32_table()) all[n++] = neon32_table();
#elif BN_RVV
    if (rvv_table()) all[n++] = rvv_table();
#endif
    for (int i = 0; i < n && i < cap; i++) out[i] = all[i];
    return n;
}

static const bn_kernels *best(void) {
    const bn_kernels *t[5];
    int n = bn_kernels_list(t, 5);
    return t[n - 1]; /* the list is ordered from slowest to fastest */
}

const bn_kernels *bn_kernels_resolve(const char *request) {
    if (!request || !*request) return best();
    const bn_kernels *k = bn_kernels_by_name(request);
    if (k) return k;
    const bn_kernels *b = best();
    bn_warn("libbitnet: BITNET_ISA=%s is unknown or not supported by this CPU; using %s",
            request, b->isa);
    return b;
}

static _Atomic(const bn_kernels *) g_kernels;

const bn_kernels *bn_kernels_get(void) {
    const bn_kernels *k = atomic_load_explicit(&g_kernels, memory_order_acquire);
    if (k) return k;
    k = bn_kernels_resolve(getenv("BITNET_ISA"));
    /* Two threads racing here compute the same answer; keep the first. */
    const bn_kernels *expected = NULL;
    if (!atomic_compare_exchange_strong(&g_kernels, &expected, k)) k = expected;
    return k;
}
