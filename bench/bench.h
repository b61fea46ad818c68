/* bench.h - micro-benchmarks (called by tools/bench.c). */
#ifndef BN_BENCH_H
#define BN_BENCH_H

/* Kernel benchmark: prints a markdown table (GB/s of weights streamed,
 * GMAC/s, speedup over scalar, fraction of the measured memory bandwidth)
 * for every kernel table on this CPU. Options:
 *   --quick       tiny shapes and short timings (CI, < 5 s)
 *   --threads N   measure with 1 and N threads (default: online CPUs, max 64)
 *   --isa NAME    only this table (plus scalar, the speedup baseline)
 *   --seconds S   time per measurement (default 0.25, quick 0.02)
 *   --only NAME   only kernels whose name contains NAME (i2_gemv, gemm, q8_0, b1)
 * argv may start with the program name (a first argument not starting with
 * '-' is skipped) and may contain "--kernels" (ignored). Returns 0, or 2 on a
 * bad option / allocation failure. Needs about 800 MB of memory (256 MB of
 * weights per format + the 256 MB probe buffer); --quick about 60 MB. */
int bn_bench_kernels(int argc, char **argv);

/* build/bench --spec (spec_bench.c): the verification cost of K drafted
 * tokens and, with --lookup/--draft and -f TEXT, plain vs speculative greedy
 * generation (equal tokens checked). Returns 0, 1 on failure, 2 on a bad option. */
int bn_bench_spec(int argc, char **argv);

/* build/bench --grammar (grammar_bench.c): the cost of constrained output per
 * token (bitnet_grammar_apply) next to one decode step. Returns 0, 1, or 2. */
int bn_bench_grammar(int argc, char **argv);

/* build/bench --calls KERNEL (calls_bench.c): the kernel alone, N times, for
 * an instruction counter (bench/insn_count.sh). Returns 0, or 2 on a bad option. */
int bn_bench_calls(int argc, char **argv);

/* STREAM-like read-only bandwidth probe: n_threads (1..64) sum disjoint
 * slices of one 256 MB buffer with SIMD loads (AVX2 or SSE2 on x86, NEON on
 * ARM64), pass after pass for about `seconds`; returns the best pass in GB/s
 * (1e9 bytes/s), or 0 on failure. */
double bn_bench_membw_gbs(int n_threads, double seconds);

#endif
