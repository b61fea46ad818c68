/* threadpool.c - persistent workers: spin briefly, then sleep on a condvar.
 *
 * A job is published by bumping `generation`; workers that see a new
 * generation run their slice and bump `done`. The caller runs slice 0 itself
 * and then spins until every worker is done. Workers keep spinning for
 * SPIN_ITERS polls after a job, since the next matmul of the same token
 * usually follows within microseconds; after that they sleep, so an idle
 * server burns no CPU. */
#include "threadpool.h"

#include <pthread.h>
#include <stdatomic.h>

#include "common.h"
#include "os.h"

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define cpu_relax() _mm_pause()
#elif defined(__aarch64__)
#define cpu_relax() __asm__ __volatile__("yield")
#else
#define cpu_relax() ((void)0)
#endif

#define SPIN_ITERS 50000
#define MAX_THREADS 256

typedef struct {
    bn_pool *pool;
    int index;
    pthread_t thread;
} worker;

struct bn_pool {
    int n;
    worker *workers;
    _Atomic unsigned generation;
    _Atomic int done;
    _Atomic int stop;
    _Atomic int sleeping;
    bn_pool_fn fn;
    void *arg;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int cpus[MAX_THREADS];
    int n_cpus;
};

int bn_parse_cpu_list(const char *s, int *cpus, int cap) {
    int n = 0;
    const char *p = s;
    if (!s || !*s) return -1;
    while (*p) {
        char *end;
        long a = strtol(p, &end, 10);
        if (end == p || a < 0 || a > 4095) return -1;
        long b = a;
        p = end;
        if (*p == '-') {
            p++;
            b = strtol(p, &end, 10);
            if (end == p || b < a || b > 4095) return -1;
            p = end;
        }
        for (long c = a; c <= b; c++) {
            if (n >= cap) return -1;
            cpus[n++] = (int)c;
        }
        if (*p == ',') {
            p++;
            if (!*p) return -1;
        } else if (*p) {
            return -1;
        }
    }
    return n;
}

static void pin_self(bn_pool *pool, int index) {
    if (pool->n_cpus > 0) bn_os_pin_thread(pool->cpus[index % pool->n_cpus]);
}

static void *worker_main(void *p) {
    worker *w = p;
    bn_pool *pool = w->pool;
    unsigned seen = 0;
    pin_self(pool, w->index);
    for (;;) {
        unsigned gen;
        int spins = 0;
        while ((gen = atomic_load_explicit(&pool->generation, memory_order_acquire)) == seen &&
               !atomic_load_explicit(&pool->stop, memory_order_acquire)) {
            if (++spins < SPIN_ITERS) {
                /* pause first; then yield, so that with more threads than free
                 * cores a spinning worker hands its core to the one we wait for */
                if (spins < 4096) cpu_relax();
                else bn_os_yield();
                continue;
            }
            pthread_mutex_lock(&pool->mu);
            atomic_fetch_add(&pool->sleeping, 1);
            while (atomic_load(&pool->generation) == seen && !atomic_load(&pool->stop))
                pthread_cond_wait(&pool->cv, &pool->mu);
            atomic_fetch_sub(&pool->sleeping, 1);
            pthread_mutex_unlock(&pool->mu);
            spins = 0;
        }
        if (atomic_load_explicit(&pool->stop, memory_order_acquire)) break;
        seen = gen;
        pool->fn(pool->arg, w->index, pool->n);
        atomic_fetch_add_explicit(&pool->done, 1, memory_order_acq_rel);
    }
    return NULL;
}

bitnet_status bn_pool_new(int n_threads, const char *cpu_list, bn_pool **out) {
    *out = NULL;
    if (n_threads < 1 || n_threads > MAX_THREADS)
        return bn_error(BITNET_ERR_ARG, "thread count %d is out of range 1..%d", n_threads, MAX_THREADS);
    bn_pool *pool = calloc(1, sizeof *pool);
    if (!pool) return bn_error(BITNET_ERR_NOMEM, "thread pool: out of memory");
    pool->n = n_threads;
    if (cpu_list) {
        pool->n_cpus = bn_parse_cpu_list(cpu_list, pool->cpus, MAX_THREADS);
        if (pool->n_cpus <= 0) {
            free(pool);
            return bn_error(BITNET_ERR_ARG, "bad CPU list '%s' (expected e.g. 0-1,3)", cpu_list);
        }
    }
    pthread_mutex_init(&pool->mu, NULL);
    pthread_cond_init(&pool->cv, NULL);
    pin_self(pool, 0);
    pool->workers = calloc((size_t)n_threads, sizeof(worker));
    if (!pool->workers) {
        free(pool);
        return bn_error(BITNET_ERR_NOMEM, "thread pool: out of memory for %d threads", n_threads);
    }
    for (int i = 1; i < n_threads; i++) {
        pool->workers[i].pool = pool;
        pool->workers[i].index = i;
        const int e = pthread_create(&pool->workers[i].thread, NULL, worker_main, &pool->workers[i]);
        if (e != 0) {
            pool->n = i; /* only i-1 workers exist; stop them */
            bn_pool_free(pool);
            return bn_error(BITNET_ERR_NOMEM, "cannot start worker thread %d of %d: %s", i, n_threads, strerror(e));
        }
    }
    *out = pool;
    return BITNET_OK;
}

void bn_pool_free(bn_pool *pool) {
    if (!pool) return;
    pthread_mutex_lock(&pool->mu);
    atomic_store(&pool->stop, 1);
    pthread_cond_broadcast(&pool->cv);
    pthread_mutex_unlock(&pool->mu);
    for (int i = 1; i < pool->n; i++) pthread_join(pool->workers[i].thread, NULL);
    pthread_mutex_destroy(&pool->mu);
    pthread_cond_destroy(&pool->cv);
    free(pool->workers);
    free(pool);
}

int bn_pool_size(const bn_pool *pool) { return pool ? pool->n : 1; }

void bn_pool_run(bn_pool *pool, bn_pool_fn fn, void *arg) {
    if (!pool || pool->n == 1) {
        fn(arg, 0, 1);
        return;
    }
    pool->fn = fn;
    pool->arg = arg;
    atomic_store_explicit(&pool->done, 0, memory_order_relaxed);
    atomic_fetch_add_explicit(&pool->generation, 1, memory_order_release);
    if (atomic_load(&pool->sleeping) > 0) {
        pthread_mutex_lock(&pool->mu);
        pthread_cond_broadcast(&pool->cv);
        pthread_mutex_unlock(&pool->mu);
    }
    fn(arg, 0, pool->n);
    /* Wait for the workers. If a worker was preempted (more runnable threads
     * than cores), spinning would only delay it: yield the core after a while. */
    for (unsigned spins = 0; atomic_load_explicit(&pool->done, memory_order_acquire) < pool->n - 1; spins++) {
        if (spins < 20000) cpu_relax();
        else bn_os_yield();
    }
}

/* Below this many units a row loop runs on the caller: a wake-up of the pool
 * costs a few microseconds, about what 16K floats of simple arithmetic take. */
#define ROWS_MIN_WORK (1L << 14)

typedef struct {
    bn_rows_fn fn;
    void *arg;
    int n;
} rows_job;

static void run_rows(void *arg, int ith, int nth) {
    const rows_job *j = arg;
    const int r0 = (int)((long)j->n * ith / nth), r1 = (int)((long)j->n * (ith + 1) / nth);
    if (r0 < r1) j->fn(j->arg, r0, r1);
}

void bn_pool_rows(bn_pool *pool, int n, long row_cost, bn_rows_fn fn, void *arg) {
    if (n <= 0) return;
    if (n == 1 || !pool || pool->n == 1 || (long)n * row_cost < ROWS_MIN_WORK) {
        fn(arg, 0, n);
        return;
    }
    rows_job j = {fn, arg, n};
    bn_pool_run(pool, run_rows, &j);
}
