/*
 * threadpool.h - a persistent pool of worker threads for data-parallel loops.
 *
 * bn_pool_run(pool, fn, arg) calls fn(arg, i, n) for i = 0..n-1 on n threads
 * (the caller is thread 0) and returns when all are done. Workers spin briefly
 * after a job (so back-to-back matmuls in one token pay no wake-up latency) and
 * then sleep on a futex/condvar, so an idle process burns no CPU.
 * No allocation happens in bn_pool_run.
 */
#ifndef BN_THREADPOOL_H
#define BN_THREADPOOL_H

#include "bitnet.h"

typedef struct bn_pool bn_pool;
typedef void (*bn_pool_fn)(void *arg, int ith, int nth);

/* n_threads >= 1 (1 = run everything on the caller). cpu_list is "0-1,3" as
 * taskset takes it, or NULL for no pinning; thread i is pinned to the i-th
 * listed CPU (wrapping). Errors: a bad count or CPU list, out of memory or
 * threads, each with its one line in bitnet_last_error(); *out is then NULL. */
bitnet_status bn_pool_new(int n_threads, const char *cpu_list, bn_pool **out);
void bn_pool_free(bn_pool *pool);
int bn_pool_size(const bn_pool *pool);
void bn_pool_run(bn_pool *pool, bn_pool_fn fn, void *arg);

/* Calls fn(arg, r0, r1) over contiguous ranges that cover [0, n), one per
 * thread, when n rows of `row_cost` units each (e.g. floats touched) are
 * worth a pool wake-up, else fn(arg, 0, n) on the caller. For per-row work
 * whose result does not depend on the split (norms, quantisation, RoPE,
 * element-wise ops): results are identical for every thread count. */
typedef void (*bn_rows_fn)(void *arg, int r0, int r1);
void bn_pool_rows(bn_pool *pool, int n, long row_cost, bn_rows_fn fn, void *arg);

/* Parses a taskset-style CPU list into cpus[] (max cap); returns count or -1. */
int bn_parse_cpu_list(const char *s, int *cpus, int cap);

#endif
