/* bench - measure what users feel: prompt and generation speed, per-token
 * latency percentiles, peak RSS; and the kernels against memory bandwidth.
 *
 *   build/bench -m MODEL [-p 64] [-n 128] [-t 1] [-r 3] [--json FILE]
 *   build/bench --kernels [--quick] [--threads N] [--isa NAME]
 *
 * Model mode runs like llama-bench: -r repetitions of a prompt of -p tokens
 * (one batched eval) and of -n generated tokens (one eval each, greedy), and
 * reports mean ± sd tokens/s plus the latency distribution of every generated
 * token over all repetitions. */
#include <math.h>

#include "bench.h"
#include "bitnet.h"
#include "util.h"

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double percentile(const double *sorted, int n, double p) {
    if (n == 0) return 0.0;
    double idx = p / 100.0 * (n - 1);
    int lo = (int)idx, hi = lo + 1 < n ? lo + 1 : lo;
    return sorted[lo] + (sorted[hi] - sorted[lo]) * (idx - lo);
}

static void mean_sd(const double *v, int n, double *mean, double *sd) {
    double s = 0, ss = 0;
    for (int i = 0; i < n; i++) s += v[i];
    *mean = s / n;
    for (int i = 0; i < n; i++) ss += (v[i] - *mean) * (v[i] - *mean);
    *sd = n > 1 ? sqrt(ss / (n - 1)) : 0.0;
}

static void usage(FILE *out) {
    fprintf(out,
            "usage: bench -m MODEL [-p N] [-n N] [-t N] [-r N] [-c N] [--json FILE]\n"
            "       bench --kernels [--quick] [--threads N] [--isa NAME]\n"
            "  -m FILE       model (default: the embedded model)\n"
            "  -p N          prompt tokens, processed as one batch (default 64)\n"
            "  -n N          generated tokens, one at a time (default 128)\n"
            "  -t N          threads (default 1)\n"
            "  -r N          repetitions (default 3)\n"
            "  -c N          context size (default: p + n)\n"
            "  --json FILE   also write the results as JSON\n"
            "  --kernels     kernel GB/s per ISA vs the measured memory bandwidth\n");
}

int main(int argc, char **argv) {
    const char *model_path = NULL, *json = NULL;
    int n_prompt = 64, n_gen = 128, n_threads = 1, reps = 3, n_ctx = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--kernels")) return bn_bench_kernels(argc, argv);
        if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) { usage(stdout); return 0; }
        if (i + 1 >= argc) { fprintf(stderr, "bench: option %s needs a value\n", argv[i]); return 2; }
        const char *a = argv[i], *v = argv[++i];
        if (!strcmp(a, "-m") || !strcmp(a, "--model")) model_path = v;
        else if (!strcmp(a, "-p")) n_prompt = atoi(v);
        else if (!strcmp(a, "-n")) n_gen = atoi(v);
        else if (!strcmp(a, "-t") || !strcmp(a, "--threads")) n_threads = atoi(v);
        else if (!strcmp(a, "-r")) reps = atoi(v);
        else if (!strcmp(a, "-c") || !strcmp(a, "--ctx-size")) n_ctx = atoi(v);
        else if (!strcmp(a, "--json")) json = v;
        else { fprintf(stderr, "bench: unknown option '%s' (see --help)\n", a); return 2; }
    }
    if (n_prompt < 1 || n_gen < 1 || n_threads < 1 || reps < 1) { fprintf(stderr, "bench: -p, -n, -t, -r must be >= 1\n"); return 2; }
    if (n_ctx <= 0) n_ctx = n_prompt + n_gen;

    bitnet_model *model = NULL;
    bitnet_status st = model_path ? bitnet_model_load(model_path, NULL, &model) : bitnet_model_load_default(NULL, &model);
    if (st != BITNET_OK) { fprintf(stderr, "bench: %s\n", bitnet_last_error()); return 1; }
    bitnet_context_params cp = bitnet_context_default_params();
    cp.n_ctx = n_ctx;
    cp.n_threads = n_threads;
    cp.n_batch = n_prompt;
    bitnet_context *ctx = NULL;
    if ((st = bitnet_context_new(model, &cp, &ctx)) != BITNET_OK) { fprintf(stderr, "bench: %s\n", bitnet_last_error()); return 1; }
    bitnet_model_info info;
    bitnet_model_get_info(model, &info);
    const int vocab = bitnet_n_vocab(model);

    bitnet_token *prompt = malloc((size_t)n_prompt * sizeof *prompt);
    for (int i = 0; i < n_prompt; i++) prompt[i] = i == 0 ? bitnet_token_bos(model) : (bitnet_token)((i * 7919) % vocab);
    double *pp = malloc((size_t)reps * sizeof(double)), *tg = malloc((size_t)reps * sizeof(double));
    double *lat = malloc((size_t)reps * n_gen * sizeof(double));
    int n_lat = 0;

    /* warm-up: page in the weights */
    bitnet_eval(ctx, prompt, 1, 0);
    for (int r = 0; r < reps; r++) {
        uint64_t t0 = now_ns();
        if (bitnet_eval(ctx, prompt, n_prompt, 0) != BITNET_OK) { fprintf(stderr, "bench: %s\n", bitnet_last_error()); return 1; }
        pp[r] = n_prompt / ((now_ns() - t0) / 1e9);
        uint64_t g0 = now_ns();
        bitnet_token tok = 1;
        for (int i = 0; i < n_gen; i++) {
            const float *lg = bitnet_get_logits(ctx);
            int best = 0;
            for (int j = 1; j < vocab; j++) if (lg[j] > lg[best]) best = j;
            tok = best;
            uint64_t t1 = now_ns();
            /* generation continues after the prompt; positions wrap inside n_ctx */
            int pos = n_prompt + i < n_ctx ? n_prompt + i : n_ctx - 1;
            if (bitnet_eval(ctx, &tok, 1, pos) != BITNET_OK) { fprintf(stderr, "bench: %s\n", bitnet_last_error()); return 1; }
            lat[n_lat++] = (now_ns() - t1) / 1e6;
        }
        tg[r] = n_gen / ((now_ns() - g0) / 1e9);
    }
    double pp_m, pp_sd, tg_m, tg_sd, lat_m, lat_sd;
    mean_sd(pp, reps, &pp_m, &pp_sd);
    mean_sd(tg, reps, &tg_m, &tg_sd);
    mean_sd(lat, n_lat, &lat_m, &lat_sd);
    qsort(lat, (size_t)n_lat, sizeof(double), cmp_double);
    double p50 = percentile(lat, n_lat, 50), p95 = percentile(lat, n_lat, 95), p99 = percentile(lat, n_lat, 99);
    double mx = lat[n_lat - 1], rss = peak_rss_mib();

    printf("model: %s (%s, %s weights, %.2f M params, %.1f MiB read per token), isa %s, %d threads\n\n",
           model_path ? model_path : "embedded", info.arch, info.weight_type, info.n_params / 1e6,
           info.weight_bytes / 1048576.0, bitnet_isa_name(), n_threads);
    printf("| test | tokens/s (mean ± sd, %d reps) |\n|---|---|\n", reps);
    printf("| pp%d | %.1f ± %.1f |\n| tg%d | %.1f ± %.1f |\n\n", n_prompt, pp_m, pp_sd, n_gen, tg_m, tg_sd);
    printf("| Runtime | Avg latency/token | p50 | p95 | p99 | max | Peak RSS | Tokens/sec |\n|---|---|---|---|---|---|---|---|\n");
    printf("| libbitnet (%s) | %.3f ms | %.3f ms | %.3f ms | %.3f ms | %.3f ms | %.1f MiB | %.1f |\n", bitnet_isa_name(),
           lat_m, p50, p95, p99, mx, rss, tg_m);
    if (json) {
        FILE *f = fopen(json, "w");
        if (!f) { fprintf(stderr, "bench: cannot write %s\n", json); return 1; }
        fprintf(f, "{\"model\":\"%s\",\"arch\":\"%s\",\"isa\":\"%s\",\"threads\":%d,\"reps\":%d,"
                   "\"pp_tokens\":%d,\"pp_tok_s\":%.3f,\"pp_tok_s_sd\":%.3f,\"tg_tokens\":%d,\"tg_tok_s\":%.3f,\"tg_tok_s_sd\":%.3f,"
                   "\"latency_ms\":{\"avg\":%.4f,\"p50\":%.4f,\"p95\":%.4f,\"p99\":%.4f,\"max\":%.4f},\"peak_rss_mib\":%.2f,"
                   "\"weight_bytes_per_token\":%llu}\n",
                model_path ? model_path : "embedded", info.arch, bitnet_isa_name(), n_threads, reps, n_prompt, pp_m, pp_sd,
                n_gen, tg_m, tg_sd, lat_m, p50, p95, p99, mx, rss, (unsigned long long)info.weight_bytes);
        fclose(f);
    }
    free(prompt); free(pp); free(tg); free(lat);
    bitnet_context_free(ctx);
    bitnet_model_free(model);
    return 0;
}
