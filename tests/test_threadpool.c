/* test_threadpool.c - CPU list parsing and that every slice runs exactly once. */
#include <stdatomic.h>

#include "test.h"
#include "threadpool.h"

TEST(cpu_list_parsing) {
    int cpus[16];
    CHECK_EQ_INT(bn_parse_cpu_list("2-3", cpus, 16), 2);
    CHECK(cpus[0] == 2 && cpus[1] == 3);
    CHECK_EQ_INT(bn_parse_cpu_list("0,2,5-6", cpus, 16), 4);
    CHECK(cpus[3] == 6);
    CHECK_EQ_INT(bn_parse_cpu_list("3-1", cpus, 16), -1);
    CHECK_EQ_INT(bn_parse_cpu_list("a", cpus, 16), -1);
    CHECK_EQ_INT(bn_parse_cpu_list("1,", cpus, 16), -1);
    CHECK_EQ_INT(bn_parse_cpu_list("0-100", cpus, 16), -1);
}

typedef struct {
    _Atomic int hits[8];
    _Atomic int calls;
} pool_probe;

static void probe_fn(void *arg, int ith, int nth) {
    pool_probe *p = arg;
    if (nth == 3) atomic_fetch_add(&p->hits[ith], 1);
    atomic_fetch_add(&p->calls, 1);
}

TEST(pool_runs_each_slice_once) {
    bn_pool *pool = NULL;
    REQUIRE(bn_pool_new(3, NULL, &pool) == BITNET_OK && pool != NULL);
    pool_probe probe;
    memset(&probe, 0, sizeof probe);
    for (int r = 0; r < 1000; r++) bn_pool_run(pool, probe_fn, &probe);
    CHECK_EQ_INT(atomic_load(&probe.calls), 3000);
    for (int i = 0; i < 3; i++) CHECK_EQ_INT(atomic_load(&probe.hits[i]), 1000);
    bn_pool_free(pool);
    CHECK(bn_pool_new(0, NULL, &pool) == BITNET_ERR_ARG && pool == NULL && strstr(bitnet_last_error(), "thread count 0"));
    CHECK(bn_pool_new(2, "x-y", &pool) == BITNET_ERR_ARG && pool == NULL && strstr(bitnet_last_error(), "bad CPU list 'x-y'"));
}
