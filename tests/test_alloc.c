/* test_alloc.c - the token loop never allocates: malloc and friends are
 * interposed in this test binary and counted while 100 tokens are generated
 * (eval + sample + piece), which must take zero calls.
 *
 * How: the definitions below replace the C library's malloc family for the
 * whole run_tests process (the executable's symbols come first in dynamic
 * linking, and glibc calls malloc through the PLT internally too) and forward
 * to glibc's __libc_* entry points. They only count while g_counting is set.
 * They are weak so that a static link, where libc.a's malloc.o must win,
 * still links: the test then finds the counter dead and skips.
 *
 * Not with AddressSanitizer (make asan): ASan replaces malloc itself to track
 * every block, and a second replacement in the executable would bypass it, so
 * there the definitions are left out and the test skips. Outside glibc there
 * are no __libc_* entry points to forward to: skipped as well. */
#include <errno.h>
#include <stdatomic.h>
#include <stdint.h>

#include "bitnet.h"
#include "test.h"

#if defined(__SANITIZE_ADDRESS__)
#define BN_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(memory_sanitizer) || __has_feature(thread_sanitizer)
#define BN_ASAN 1
#endif
#endif

#if defined(__GLIBC__) && !defined(BN_ASAN)
#define BN_INTERPOSE 1

extern void *__libc_malloc(size_t n);
extern void *__libc_calloc(size_t n, size_t size);
extern void *__libc_realloc(void *p, size_t n);
extern void __libc_free(void *p);
extern void *__libc_memalign(size_t align, size_t n);

static atomic_int g_counting;
static atomic_long g_calls;

static inline void count_call(void) {
    if (atomic_load_explicit(&g_counting, memory_order_relaxed)) atomic_fetch_add_explicit(&g_calls, 1, memory_order_relaxed);
}

__attribute__((weak)) void *malloc(size_t n) {
    count_call();
    return __libc_malloc(n);
}
__attribute__((weak)) void *calloc(size_t n, size_t size) {
    count_call();
    return __libc_calloc(n, size);
}
__attribute__((weak)) void *realloc(void *p, size_t n) {
    count_call();
    return __libc_realloc(p, n);
}
__attribute__((weak)) void free(void *p) {
    if (p) count_call();
    __libc_free(p);
}
__attribute__((weak)) int posix_memalign(void **out, size_t align, size_t n) {
    count_call();
    if (align < sizeof(void *) || (align & (align - 1))) return EINVAL;
    void *p = __libc_memalign(align, n);
    if (!p) return ENOMEM;
    *out = p;
    return 0;
}
__attribute__((weak)) void *aligned_alloc(size_t align, size_t n) {
    count_call();
    return __libc_memalign(align, n);
}
__attribute__((weak)) void *memalign(size_t align, size_t n) {
    count_call();
    return __libc_memalign(align, n);
}

/* Calls through a volatile pointer so the compiler cannot drop the pair. */
static void *(*volatile g_malloc_fn)(size_t) = malloc;

/* 1 if the definitions above are the ones in use (not a static libc's). */
static int interposed(void) {
    atomic_store(&g_calls, 0);
    atomic_store(&g_counting, 1);
    void *p = g_malloc_fn(24);
    atomic_store(&g_counting, 0);
    free(p);
    return atomic_load(&g_calls) == 1;
}
#endif

#ifdef BN_INTERPOSE
/* Generates 100 tokens after a short prompt; returns the allocation calls
 * made from the first eval to the last piece (-1 if something failed). */
static long count_token_loop(bitnet_model *m, int n_threads, bitnet_kv_type kv, const bitnet_sampler_params *sp) {
    bitnet_context_params cp = bitnet_context_default_params();
    cp.n_ctx = 128;
    cp.n_threads = n_threads;
    cp.kv_type = kv;
    bitnet_context *ctx = NULL;
    if (bitnet_context_new(m, &cp, &ctx) != BITNET_OK) return -1;
    bitnet_sampler *smp = NULL;
    bitnet_sampler_new(sp, bitnet_n_vocab(m), &smp);
    bitnet_token prompt[16];
    const int np = bitnet_tokenize(m, "Once upon a time", 1, prompt, 16);
    int failed = !smp || np < 1;
    char piece[64];

    atomic_store(&g_calls, 0);
    atomic_store(&g_counting, 1);
    failed = failed || bitnet_eval(ctx, prompt, np, 0) != BITNET_OK;
    bitnet_token prev = prompt[np - 1];
    for (int i = 0; i < 100 && !failed; i++) {
        bitnet_token next = bitnet_sampler_sample(smp, bitnet_get_logits(ctx));
        bitnet_sampler_accept(smp, next);
        failed = bitnet_token_to_piece(m, prev, next, piece, sizeof piece) < 0 ||
                 bitnet_eval(ctx, &next, 1, np + i) != BITNET_OK;
        prev = next;
    }
    atomic_store(&g_counting, 0);
    const long calls = atomic_load(&g_calls);

    bitnet_sampler_free(smp);
    bitnet_context_free(ctx);
    return failed ? -1 : calls;
}

static void check_model(bitnet_model *m, const char *name) {
    bitnet_sampler_params greedy = bitnet_sampler_default_params(), dflt = greedy, full = greedy;
    greedy.temp = 0.0f;
    full.top_k = 0; /* the whole vocabulary is sorted */
    full.repeat_penalty = 1.1f;
    const bitnet_sampler_params *sps[3] = {&greedy, &dflt, &full};
    static const char *sp_names[3] = {"greedy", "default sampling", "top-k off + repeat penalty"};
    for (int threads = 1; threads <= 2; threads++)
        for (int kv = 0; kv < 5; kv++)
            for (int s = 0; s < 3; s++) {
                if (kv != BITNET_KV_F32 && kv != BITNET_KV_Q8 && s > 0) continue; /* types: greedy suffices */
                long calls = count_token_loop(m, threads, (bitnet_kv_type)kv, sps[s]);
                CHECK_MSG(calls == 0, "%s, %d threads, kv %s, %s: %ld malloc-family calls in the token loop%s", name,
                          threads, bitnet_kv_type_name((bitnet_kv_type)kv), sp_names[s], calls,
                          calls < 0 ? " (generation failed)" : "");
            }
}
#endif

TEST(alloc_token_loop_never_allocates) {
#if defined(BN_ASAN)
    SKIP("built with a sanitizer that owns malloc: interposing it would break the sanitizer");
#elif !defined(BN_INTERPOSE)
    SKIP("not glibc: no __libc_malloc to forward an interposed malloc to");
#else
    if (!interposed()) SKIP("malloc is not interposable in this link (static libc?)");
    bitnet_model *m = NULL;
    CHECK(bitnet_model_load_default(NULL, &m) == BITNET_OK);
    if (m) check_model(m, "default model");
    bitnet_model_free(m);
    const char *path = bn_test_shared("models/stories260K.gguf");
    if (!path) SKIP("../shared/models/stories260K.gguf not present (default model checked)");
    m = NULL;
    CHECK(bitnet_model_load(path, NULL, &m) == BITNET_OK);
    if (m) check_model(m, "stories260K");
    bitnet_model_free(m);
#endif
}

/* The counter itself works: it sees allocations when there are some. */
TEST(alloc_counter_sees_allocations) {
#if defined(BN_ASAN)
    SKIP("built with a sanitizer that owns malloc");
#elif !defined(BN_INTERPOSE)
    SKIP("not glibc");
#else
    if (!interposed()) SKIP("malloc is not interposable in this link (static libc?)");
    atomic_store(&g_calls, 0);
    atomic_store(&g_counting, 1);
    bitnet_sampler *s = NULL;
    bitnet_sampler_new(NULL, 512, &s); /* three allocations */
    bitnet_sampler_free(s);                             /* three frees */
    atomic_store(&g_counting, 0);
    CHECK_EQ_INT(atomic_load(&g_calls), 6);
#endif
}
