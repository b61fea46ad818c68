/* bench - measure what users feel: prompt and generation speed, per-token
 * latency percentiles, RSS; concurrent streams; process cold start; and the
 * kernels against memory bandwidth.
 *
 *   build/bench [-m MODEL] [-p 64] [-n 128] [-t 1] [-r 3] [--json FILE] [--svg FILE]
 *               [--streams K --duration S] [--cold-start [--cold-runs N]]
 *   build/bench --kernels [--quick] [--threads N] [--isa NAME]
 *
 * Model mode runs like llama-bench: -r repetitions of a prompt of -p tokens
 * (one batched eval) and of -n generated tokens (one eval each, greedy), and
 * reports mean ± sd tokens/s plus the latency distribution of every generated
 * token over all repetitions, and the RSS growth from after warm-up to the end.
 *
 * --streams K: K threads, each with its own context on the one model, generate
 * greedily for --duration seconds (restarting at position 0 when the context
 * is full); per-stream and total tokens/s and latency percentiles over all
 * streams. With --batched the K streams are instead K sequences of one context
 * decoded by one bitnet_eval_batch per step (the server's way). --cold-start: fork/exec `infer -n 2` (next to this binary) N times
 * and time process start -> first byte on its stdout; infer-static too if it
 * exists. --svg: latency over time and a latency histogram, as SVG. */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <pthread.h>
#ifndef _WIN32
#include <sys/wait.h>
#endif
#include <unistd.h>

#include "bench.h"
#include "latency.h"
#include "bitnet.h"
#define TOOL_NAME "bench"
#include "util.h"

#define MAX_LIST 16

typedef struct {
    const char *model, *tokenizer, *json, *svg;
    int n_prompt, n_gen, n_threads, reps, n_ctx, streams, batched, soak, cold_start, cold_runs, quiet;
    int n_batch; /* tokens per forward pass of the prompt; 0: the whole prompt */
    bitnet_kv_type kv_type;
    double duration;
    /* llama-bench mode: -p/-n/-t/-b/-ub/-ctk as lists (their cross product), -o FORMAT */
    int prompts[MAX_LIST], gens[MAX_LIST], threads[MAX_LIST], n_prompts, n_gens, n_threads_list, reps_given;
    int batches[MAX_LIST], ubatches[MAX_LIST], n_batches, n_ubatches;
    bitnet_kv_type kv_types[MAX_LIST];
    int n_kv_types;
    const char *kv_k_list, *kv_v_list; /* -ctk / -ctv as given: one type serves keys and values here */
    const char *output; /* md, csv, json, jsonl; NULL: our own report */
} options;

typedef struct {
    double warm_mib, end_mib, growth_pct;
} rss_delta;

typedef struct {
    double pp_m, pp_sd, tg_m, tg_sd;
    lat_stats lat;
    rss_delta rss;
    bitnet_kv_type kv_type; /* as resolved by the context, and its K+V bytes */
    size_t kv_bytes;
} tg_result;

typedef struct {
    int k;
    double duration_s, total_tok_s, *tok_s; /* tok_s[k] */
    long *tokens, restarts;
    lat_stats lat;
    rss_delta rss;
    double window_s, p99_first, p99_last, drift_pct; /* latency drift, first vs last window */
} streams_result;

typedef struct {
    const char *name;
    int runs, ok;
    double mean, p50, min;
} cold_result;

/* ---------------------------------------------------------------- helpers */

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double percentile(const double *sorted, size_t n, double p) {
    if (n == 0) return 0.0;
    double idx = p / 100.0 * (double)(n - 1);
    size_t lo = (size_t)idx, hi = lo + 1 < n ? lo + 1 : lo;
    return sorted[lo] + (sorted[hi] - sorted[lo]) * (idx - (double)lo);
}

static void mean_sd(const double *v, size_t n, double *mean, double *sd) {
    double s = 0, ss = 0;
    for (size_t i = 0; i < n; i++) s += v[i];
    *mean = n ? s / (double)n : 0.0;
    for (size_t i = 0; i < n; i++) ss += (v[i] - *mean) * (v[i] - *mean);
    *sd = n > 1 ? sqrt(ss / (double)(n - 1)) : 0.0;
}

static void rss_finish(rss_delta *r) {
    r->end_mib = rss_now_mib();
    r->growth_pct = r->warm_mib > 0 ? (r->end_mib - r->warm_mib) / r->warm_mib * 100.0 : 0.0;
}

static int argmax(const float *v, int n) {
    int best = 0;
    for (int j = 1; j < n; j++) if (v[j] > v[best]) best = j;
    return best;
}

static bitnet_context *new_context(bitnet_model *model, const options *o, int n_batch) {
    bitnet_context_params cp = bitnet_context_default_params();
    cp.n_ctx = o->n_ctx;
    cp.n_threads = o->n_threads;
    cp.n_batch = o->n_batch > 0 && o->n_batch < n_batch ? o->n_batch : n_batch;
    cp.kv_type = o->kv_type;
    bitnet_context *ctx = NULL;
    if (bitnet_context_new(model, &cp, &ctx) != BITNET_OK) {
        fprintf(stderr, "bench: %s\n", bitnet_last_error());
        return NULL;
    }
    return ctx;
}

/* Latency drift compares the first and the last minute of a run (a quarter
 * of the run when it is shorter than 4 minutes); the streams' RSS growth is
 * measured from the end of that first window (the warm-up: the KV cache and
 * every buffer have been touched) to the end. */
static double soak_window(double duration_s) { return duration_s >= 240 ? 60.0 : duration_s / 4; }

/* ------------------------------------------------------- pp / tg (llama-bench) */

static int eval_or_report(bitnet_context *ctx, const bitnet_token *t, int n, int pos) {
    if (bitnet_eval(ctx, t, n, pos) == BITNET_OK) return 1;
    fprintf(stderr, "bench: %s\n", bitnet_last_error());
    return 0;
}

/* One repetition: the prompt (one bitnet_eval, n_batch tokens per forward
 * pass) then n_gen greedy tokens. */
static int run_rep(bitnet_context *ctx, const bitnet_token *prompt, const options *o, int vocab,
                   uint64_t t_phase, lat_recorder *lat, double *pp, double *tg) {
    uint64_t t0 = now_ns();
    if (!eval_or_report(ctx, prompt, o->n_prompt, 0)) return 0;
    *pp = o->n_prompt / ((now_ns() - t0) / 1e9);
    uint64_t g0 = now_ns();
    for (int i = 0; i < o->n_gen; i++) {
        bitnet_token tok = argmax(bitnet_get_logits(ctx), vocab);
        uint64_t t1 = now_ns();
        /* generation continues after the prompt; positions wrap inside n_ctx */
        int pos = o->n_prompt + i < o->n_ctx ? o->n_prompt + i : o->n_ctx - 1;
        if (!eval_or_report(ctx, &tok, 1, pos)) return 0;
        uint64_t t2 = now_ns();
        lat_add(lat, (t1 - t_phase) / 1e9, (t2 - t1) / 1e6, 0);
    }
    *tg = o->n_gen / ((now_ns() - g0) / 1e9);
    return 1;
}

static int bench_pp_tg(bitnet_model *model, const options *o, tg_result *res, lat_recorder *lat) {
    bitnet_context *ctx = new_context(model, o, o->n_prompt);
    if (!ctx) return 0;
    res->kv_type = bitnet_context_kv_type(ctx);
    res->kv_bytes = bitnet_context_kv_bytes(ctx);
    const int vocab = bitnet_n_vocab(model);
    bitnet_token *prompt = malloc((size_t)o->n_prompt * sizeof *prompt);
    double *pp = malloc((size_t)o->reps * sizeof *pp), *tg = malloc((size_t)o->reps * sizeof *tg);
    int ok = prompt && pp && tg;
    for (int i = 0; ok && i < o->n_prompt; i++)
        prompt[i] = i == 0 ? bitnet_token_bos(model) : (bitnet_token)((i * 7919) % vocab);
    /* warm-up: page in the weights */
    ok = ok && eval_or_report(ctx, prompt, 1, 0);
    res->rss.warm_mib = rss_now_mib();
    uint64_t t_phase = now_ns();
    for (int r = 0; ok && r < o->reps; r++) ok = run_rep(ctx, prompt, o, vocab, t_phase, lat, &pp[r], &tg[r]);
    if (ok) {
        rss_finish(&res->rss);
        mean_sd(pp, (size_t)o->reps, &res->pp_m, &res->pp_sd);
        mean_sd(tg, (size_t)o->reps, &res->tg_m, &res->tg_sd);
        res->lat = lat_hist_stats(&lat->all);
    }
    free(prompt); free(pp); free(tg);
    bitnet_context_free(ctx);
    return ok;
}

static void print_pp_tg(const options *o, const bitnet_model_info *info, const tg_result *r) {
    printf("model: %s (%s, %s weights, %.2f M params, %.1f MiB read per token), isa %s, %d threads\n\n",
           o->model ? o->model : "embedded", info->arch, info->weight_type, info->n_params / 1e6,
           info->weight_bytes / 1048576.0, bitnet_isa_name(), o->n_threads);
    printf("KV cache: %s, context %d: %.2f MiB\n\n", bitnet_kv_type_name(r->kv_type), o->n_ctx, r->kv_bytes / 1048576.0);
    printf("| test | tokens/s (mean ± sd, %d reps) |\n|---|---|\n", o->reps);
    printf("| pp%d | %.1f ± %.1f |\n| tg%d | %.1f ± %.1f |\n\n", o->n_prompt, r->pp_m, r->pp_sd, o->n_gen, r->tg_m,
           r->tg_sd);
    printf("| Runtime | Avg latency/token | p50 | p95 | p99 | max | Peak RSS | Tokens/sec |\n"
           "|---|---|---|---|---|---|---|---|\n");
    printf("| libbitnet (%s) | %.3f ms | %.3f ms | %.3f ms | %.3f ms | %.3f ms | %.1f MiB | %.1f |\n",
           bitnet_isa_name(), r->lat.avg, r->lat.p50, r->lat.p95, r->lat.p99, r->lat.max, peak_rss_mib(), r->tg_m);
    printf("\nRSS after warm-up %.1f MiB, at end %.1f MiB (%+.1f%%)\n", r->rss.warm_mib, r->rss.end_mib,
           r->rss.growth_pct);
}

/* ---------------------------------------------------------------- streams */



typedef struct {
    bitnet_context *ctx;
    int id, vocab, n_ctx;
    bitnet_token bos;
    uint64_t t0, deadline, warm_end; /* warm_end: end of the warm-up window (ns) */
    rss_delta *rss;                   /* stream 0 records the RSS there and at the end */
    lat_recorder lat;
    long tokens, restarts;
    double elapsed_s;
    int failed, warm_done;
} stream_job;

static void *stream_main(void *arg) {
    stream_job *j = arg;
    bitnet_token tok = j->bos;
    int pos = 0;
    uint64_t t = now_ns();
    while (t < j->deadline) {
        if (bitnet_eval(j->ctx, &tok, 1, pos) != BITNET_OK) { j->failed = 1; break; }
        uint64_t t2 = now_ns();
        lat_add(&j->lat, (t - j->t0) / 1e9, (t2 - t) / 1e6, j->id);
        if (j->rss && !j->warm_done && t2 >= j->warm_end) { j->rss->warm_mib = rss_now_mib(); j->warm_done = 1; }
        j->tokens++;
        tok = argmax(bitnet_get_logits(j->ctx), j->vocab);
        if (++pos == j->n_ctx) { pos = 0; tok = j->bos; j->restarts++; }
        t = t2;
    }
    j->elapsed_s = (now_ns() - j->t0) / 1e9;
    if (j->rss) rss_finish(j->rss); /* before the threads exit and are joined */
    return NULL;
}

static int streams_setup(bitnet_model *model, const options *o, stream_job *jobs) {
    for (int i = 0; i < o->streams; i++) {
        jobs[i] = (stream_job){.id = i, .vocab = bitnet_n_vocab(model), .n_ctx = o->n_ctx,
                               .bos = bitnet_token_bos(model)};
        if (!lat_init(&jobs[i].lat, soak_window(o->duration), o->duration - soak_window(o->duration))) return 0;
        jobs[i].ctx = new_context(model, o, 1);
        if (!jobs[i].ctx || !eval_or_report(jobs[i].ctx, &jobs[i].bos, 1, 0)) return 0; /* warm-up */
    }
    return 1;
}

static int streams_collect(stream_job *jobs, int k, streams_result *res, lat_recorder *all) {
    int ok = 1;
    for (int i = 0; i < k; i++) {
        if (jobs[i].failed) { fprintf(stderr, "bench: stream %d failed\n", i); ok = 0; }
        res->tokens[i] = jobs[i].tokens;
        res->tok_s[i] = jobs[i].elapsed_s > 0 ? jobs[i].tokens / jobs[i].elapsed_s : 0;
        res->total_tok_s += res->tok_s[i];
        res->restarts += jobs[i].restarts;
        lat_merge(all, &jobs[i].lat);
    }
    res->lat = lat_hist_stats(&all->all);
    return ok;
}

static int bench_streams(bitnet_model *model, const options *o, streams_result *res, lat_recorder *all) {
    const int k = o->streams;
    stream_job *jobs = calloc((size_t)k, sizeof *jobs);
    pthread_t *th = calloc((size_t)k, sizeof *th);
    res->k = k;
    res->duration_s = o->duration;
    res->tok_s = calloc((size_t)k, sizeof *res->tok_s);
    res->tokens = calloc((size_t)k, sizeof *res->tokens);
    int ok = jobs && th && res->tok_s && res->tokens && streams_setup(model, o, jobs), started = 0;
    res->rss.warm_mib = rss_now_mib();
    uint64_t t0 = now_ns(), deadline = t0 + (uint64_t)(o->duration * 1e9);
    for (int i = 0; ok && i < k; i++) {
        jobs[i].t0 = t0;
        jobs[i].deadline = deadline;
        jobs[i].warm_end = t0 + (uint64_t)(soak_window(o->duration) * 1e9);
        jobs[i].rss = i == 0 ? &res->rss : NULL;
        ok = pthread_create(&th[i], NULL, stream_main, &jobs[i]) == 0;
        started += ok;
    }
    progress pr; /* the streams run for --duration: a progress line meanwhile */
    progress_start(&pr, "streams", o->quiet);
    for (uint64_t t = now_ns(); started && t < deadline; t = now_ns()) {
        progress_update(&pr, (double)(t - t0) * 1e-9, o->duration, NULL);
        usleep(100000);
    }
    progress_end(&pr);
    for (int i = 0; i < started; i++) pthread_join(th[i], NULL);
    if (ok) ok = streams_collect(jobs, k, res, all);
    for (int i = 0; jobs && i < k; i++) {
        bitnet_context_free(jobs[i].ctx);
        lat_free(&jobs[i].lat);
    }
    free(jobs); free(th);
    return ok;
}

/* --batched: the K streams are K sequences of ONE context, advanced together by
 * one bitnet_eval_batch per step (as build/server decodes its slots), so each
 * weight is read once per step for all streams. Every stream's token of a step
 * has the step's latency. */
static int bench_streams_batched(bitnet_model *model, const options *o, streams_result *res, lat_recorder *all) {
    const int k = o->streams, vocab = bitnet_n_vocab(model);
    bitnet_context_params cp = bitnet_context_default_params();
    cp.n_ctx = o->n_ctx;
    cp.n_threads = o->n_threads;
    cp.n_seq = k;
    cp.n_batch = k;
    cp.kv_type = o->kv_type;
    bitnet_context *ctx = NULL;
    if (bitnet_context_new(model, &cp, &ctx) != BITNET_OK) {
        fprintf(stderr, "bench: %s\n", bitnet_last_error());
        return 0;
    }
    bitnet_token *tok = malloc((size_t)k * sizeof *tok);
    int *pos = malloc((size_t)k * sizeof *pos), *seq = malloc((size_t)k * sizeof *seq);
    res->k = k;
    res->duration_s = o->duration;
    res->tok_s = calloc((size_t)k, sizeof *res->tok_s);
    res->tokens = calloc((size_t)k, sizeof *res->tokens);
    int ok = tok && pos && seq && res->tok_s && res->tokens;
    for (int s = 0; ok && s < k; s++) tok[s] = bitnet_token_bos(model), pos[s] = 0, seq[s] = s;
    ok = ok && bitnet_eval_batch(ctx, tok, pos, seq, k) == BITNET_OK; /* warm-up */
    res->rss.warm_mib = rss_now_mib();
    uint64_t t0 = now_ns(), t = t0, deadline = t0 + (uint64_t)(o->duration * 1e9);
    const uint64_t warm_end = t0 + (uint64_t)(soak_window(o->duration) * 1e9);
    int p = 0, warm = 0;
    progress pr;
    progress_start(&pr, "streams", o->quiet);
    while (ok && t < deadline) {
        progress_update(&pr, (double)(t - t0) * 1e-9, o->duration, NULL);
        if (!warm && t >= warm_end) { res->rss.warm_mib = rss_now_mib(); warm = 1; }
        if (bitnet_eval_batch(ctx, tok, pos, seq, k) != BITNET_OK) {
            fprintf(stderr, "bench: %s\n", bitnet_last_error());
            ok = 0;
            break;
        }
        uint64_t t2 = now_ns();
        for (int s = 0; s < k; s++) {
            lat_add(all, (t - t0) / 1e9, (t2 - t) / 1e6, s);
            res->tokens[s]++;
            tok[s] = argmax(bitnet_get_logits_seq(ctx, s), vocab);
        }
        if (++p == o->n_ctx) { p = 0; res->restarts += k; for (int s = 0; s < k; s++) tok[s] = bitnet_token_bos(model); }
        for (int s = 0; s < k; s++) pos[s] = p;
        t = t2;
    }
    progress_end(&pr);
    rss_finish(&res->rss);
    const double elapsed = (now_ns() - t0) / 1e9;
    for (int s = 0; ok && s < k; s++) {
        res->tok_s[s] = res->tokens[s] / elapsed;
        res->total_tok_s += res->tok_s[s];
    }
    if (ok) res->lat = lat_hist_stats(&all->all);
    free(tok); free(pos); free(seq);
    bitnet_context_free(ctx);
    return ok;
}

/* Soak view of a streams run: p99 of the first and of the last window and
 * their relative difference. */
static void streams_drift(const lat_recorder *all, streams_result *r) {
    r->window_s = soak_window(r->duration_s);
    r->p99_first = lat_hist_percentile(&all->first, 99);
    r->p99_last = lat_hist_percentile(&all->last, 99);
    r->drift_pct = r->p99_first > 0 ? (r->p99_last - r->p99_first) / r->p99_first * 100.0 : 0.0;
}

static void print_streams(const options *o, const streams_result *r) {
    printf("\n%d streams (%s) x %d threads, %.1f s, context %d (restart at position 0 when full, %ld restarts)\n\n",
           r->k, o->batched ? "batched: one context, one forward pass per step" : "independent: own context and pthread each",
           o->n_threads, r->duration_s, o->n_ctx, r->restarts);
    printf("| stream | tokens | tokens/s |\n|---|---|---|\n");
    for (int i = 0; i < r->k; i++) printf("| %d | %ld | %.1f |\n", i, r->tokens[i], r->tok_s[i]);
    printf("| total | | %.1f |\n\n", r->total_tok_s);
    printf("| latency over all streams | avg | p50 | p95 | p99 | max |\n|---|---|---|---|---|---|\n");
    printf("| ms/token | %.3f | %.3f | %.3f | %.3f | %.3f |\n", r->lat.avg, r->lat.p50, r->lat.p95, r->lat.p99,
           r->lat.max);
    printf("\nRSS after warm-up %.1f MiB, at end %.1f MiB (%+.1f%%)\n", r->rss.warm_mib, r->rss.end_mib,
           r->rss.growth_pct);
    printf("latency drift: p99 of the first %.0f s %.3f ms, of the last %.0f s %.3f ms (%+.1f%%)\n", r->window_s,
           r->p99_first, r->window_s, r->p99_last, r->drift_pct);
}

/* --soak limits: what "runs for hours without degrading" means here. */
#define SOAK_MAX_RSS_GROWTH_PCT 1.0
#define SOAK_MAX_DRIFT_PCT 10.0

static int soak_verdict(const streams_result *r) {
    int ok = r->rss.growth_pct < SOAK_MAX_RSS_GROWTH_PCT && fabs(r->drift_pct) <= SOAK_MAX_DRIFT_PCT;
    printf("soak: %s (RSS growth %+.2f%%, limit %.0f%%; p99 drift %+.1f%%, limit %.0f%%)\n", ok ? "PASS" : "FAIL",
           r->rss.growth_pct, SOAK_MAX_RSS_GROWTH_PCT, r->drift_pct, SOAK_MAX_DRIFT_PCT);
    return ok;
}

/* ------------------------------------------------------------- cold start */

/* fork/exec argv, returns ms from fork to the first byte on its stdout
 * (or to EOF if it printed nothing: *got_byte = 0); -1 on failure. */
static double cold_start_once(char *const argv[], int *got_byte) {
#ifdef _WIN32 /* no fork: bench_cold_start refuses --cold-start before this */
    (void)argv;
    (void)got_byte;
    return -1;
#else
    int fd[2];
    if (pipe(fd) != 0) return -1;
    uint64_t t0 = now_ns();
    pid_t pid = fork();
    if (pid < 0) { close(fd[0]); close(fd[1]); return -1; }
    if (pid == 0) {
        int dn = open("/dev/null", O_WRONLY);
        dup2(fd[1], 1);
        if (dn >= 0) dup2(dn, 2);
        close(fd[0]); close(fd[1]);
        execv(argv[0], argv);
        _exit(127);
    }
    close(fd[1]);
    char buf[4096];
    ssize_t r = read(fd[0], buf, 1);
    double ms = (now_ns() - t0) / 1e6;
    *got_byte = r == 1;
    while (r > 0) r = read(fd[0], buf, sizeof buf);
    close(fd[0]);
    int st = 0;
    waitpid(pid, &st, 0);
    return WIFEXITED(st) && WEXITSTATUS(st) == 0 ? ms : -1;
#endif
}

static int cold_start_exe(const char *exe, const options *o, cold_result *res) {
    char *argv[12];
    int a = 0;
    argv[a++] = (char *)exe;
    argv[a++] = "-n"; argv[a++] = "2"; argv[a++] = "--temp"; argv[a++] = "0";
    if (o->model) { argv[a++] = "-m"; argv[a++] = (char *)o->model; }
    if (o->tokenizer) { argv[a++] = "--tokenizer"; argv[a++] = (char *)o->tokenizer; }
    argv[a] = NULL;
    double *ms = malloc((size_t)o->cold_runs * sizeof *ms);
    if (!ms) return 0;
    res->runs = o->cold_runs;
    res->ok = 1;
    for (int i = 0; i < o->cold_runs && res->ok; i++) {
        int got = 0;
        ms[i] = cold_start_once(argv, &got);
        if (ms[i] < 0) { fprintf(stderr, "bench: %s failed (exit status)\n", exe); res->ok = 0; }
        else if (!got) fprintf(stderr, "bench: %s printed no token; timed to exit\n", exe);
    }
    if (res->ok) {
        double sd;
        mean_sd(ms, (size_t)o->cold_runs, &res->mean, &sd);
        qsort(ms, (size_t)o->cold_runs, sizeof *ms, cmp_double);
        res->p50 = percentile(ms, (size_t)o->cold_runs, 50);
        res->min = ms[0];
    }
    free(ms);
    return res->ok;
}

/* Times infer and, if present, infer-static (both next to this binary). */
static int bench_cold_start(const char *argv0, const options *o, cold_result res[2], char paths[2][4096]) {
#ifdef _WIN32
    fprintf(stderr, "bench: --cold-start is not available on Windows (it times fork/exec)\n");
    return -1;
#endif
    const char *slash = strrchr(argv0, '/');
    int dir_len = slash ? (int)(slash - argv0) : 1;
    const char *dir = slash ? argv0 : ".";
    const char *names[2] = {"infer", "infer-static"};
    int n = 0;
    for (int i = 0; i < 2; i++) {
        snprintf(paths[n], 4096, "%.*s/%s", dir_len, dir, names[i]);
        if (access(paths[n], X_OK) != 0) {
            if (i == 0) { fprintf(stderr, "bench: --cold-start needs %s\n", paths[n]); return -1; }
            continue;
        }
        res[n].name = paths[n];
        if (!cold_start_exe(paths[n], o, &res[n])) return -1;
        n++;
    }
    return n;
}

static void print_cold(const cold_result *r, int n) {
    printf("\ncold start: process start -> first generated byte on stdout (infer -n 2 --temp 0)\n\n");
    printf("| binary | runs | mean ms | p50 ms | min ms |\n|---|---|---|---|---|\n");
    for (int i = 0; i < n; i++) printf("| %s | %d | %.2f | %.2f | %.2f |\n", r[i].name, r[i].runs, r[i].mean, r[i].p50, r[i].min);
}

/* ------------------------------------------------------------------- JSON */

static void json_lat(FILE *f, const char *key, const lat_stats *l) {
    fprintf(f, "\"%s\":{\"avg\":%.4f,\"p50\":%.4f,\"p95\":%.4f,\"p99\":%.4f,\"max\":%.4f,\"n\":%zu}", key, l->avg,
            l->p50, l->p95, l->p99, l->max, l->n);
}

static void json_rss(FILE *f, const char *key, const rss_delta *r) {
    fprintf(f, "\"%s\":{\"warm_mib\":%.2f,\"end_mib\":%.2f,\"growth_pct\":%.3f}", key, r->warm_mib, r->end_mib,
            r->growth_pct);
}

static void json_streams(FILE *f, const streams_result *s, int batched) {
    fprintf(f, ",\"streams\":{\"batched\":%s,\"k\":%d,\"duration_s\":%.3f,\"total_tok_s\":%.3f,\"restarts\":%ld,",
            batched ? "true" : "false", s->k, s->duration_s, s->total_tok_s, s->restarts);
    fprintf(f, "\"drift\":{\"window_s\":%.3f,\"p99_first_ms\":%.4f,\"p99_last_ms\":%.4f,\"drift_pct\":%.3f},",
            s->window_s, s->p99_first, s->p99_last, s->drift_pct);
    fprintf(f, "\"per_stream\":[");
    for (int i = 0; i < s->k; i++) fprintf(f, "%s{\"tokens\":%ld,\"tok_s\":%.3f}", i ? "," : "", s->tokens[i], s->tok_s[i]);
    fprintf(f, "],");
    json_lat(f, "latency_ms", &s->lat);
    fprintf(f, ",");
    json_rss(f, "rss", &s->rss);
    fprintf(f, "}");
}

static void json_cold(FILE *f, const cold_result *c, int n) {
    fprintf(f, ",\"cold_start\":[");
    for (int i = 0; i < n; i++) {
        fprintf(f, "%s{\"binary\":", i ? "," : "");
        json_str(f, c[i].name);
        fprintf(f, ",\"runs\":%d,\"mean_ms\":%.3f,\"p50_ms\":%.3f,\"min_ms\":%.3f}", c[i].runs, c[i].mean, c[i].p50, c[i].min);
    }
    fprintf(f, "]");
}

static int write_json(const char *path, const options *o, const bitnet_model_info *info, const tg_result *r,
                      const streams_result *s, const cold_result *c, int n_cold) {
    FILE *f = fopen(path, "w");
    if (!f) { fprintf(stderr, "bench: cannot write %s: %s\n", path, strerror(errno)); return 0; }
    fprintf(f, "{\"model\":");
    json_str(f, o->model ? o->model : "embedded");
    fprintf(f, ",\"arch\":\"%s\",\"isa\":\"%s\",\"threads\":%d,\"reps\":%d,"
               "\"pp_tokens\":%d,\"pp_tok_s\":%.3f,\"pp_tok_s_sd\":%.3f,\"tg_tokens\":%d,\"tg_tok_s\":%.3f,\"tg_tok_s_sd\":%.3f,",
            info->arch, bitnet_isa_name(), o->n_threads, o->reps, o->n_prompt, r->pp_m, r->pp_sd, o->n_gen, r->tg_m, r->tg_sd);
    json_lat(f, "latency_ms", &r->lat);
    fprintf(f, ",\"peak_rss_mib\":%.2f,", peak_rss_mib());
    json_rss(f, "rss", &r->rss);
    fprintf(f, ",\"weight_bytes_per_token\":%llu", (unsigned long long)info->weight_bytes);
    if (s) json_streams(f, s, o->batched);
    if (c) json_cold(f, c, n_cold);
    fprintf(f, "}\n");
    return fclose(f) == 0;
}

/* ------------------------------------------------------------------ main */

static void usage(FILE *out) {
    fprintf(out,
            "usage: bench [-m MODEL] [-p N] [-n N] [-t N] [-r N] [-c N] [--kv-type T] [--json FILE] [--svg FILE]\n"
            "       bench [-m MODEL] -p LIST -n LIST -t LIST [-r N] -o md|csv|json|jsonl   (llama-bench's form)\n"
            "             [--streams K [--batched] --duration S] [--cold-start [--cold-runs N]]\n"
            "       bench --kernels [--quick] [--threads N] [--isa NAME]\n"
            "  -m FILE          model (default: the embedded model)\n"
            "  --tokenizer FILE llama2.c tokenizer.bin for files without a vocabulary (ak42)\n"
            "                   (safetensors: also a tokenizer.json or GGUF vocabulary)\n"
            "  -p N             prompt tokens, processed as one batch (default 64)\n"
            "  -n N             generated tokens, one at a time (default 128)\n"
            "  -t N             threads per context (default 1)\n"
            "  -r N             repetitions (default 3)\n"
            "  -c N             context size (default: p + n); the KV cache is sized from it\n"
            "  -b N             prompt tokens per forward pass (default: the whole prompt; also -ub)\n"
            "  --kv-type T      KV cache type: f32, f16, q8, q4, q2 (default: per model, see\n"
            "                   docs/kv-cache.md); -ctk / -ctv: llama.cpp's spelling (one type for both)\n"
            "  --streams K      also run K concurrent greedy streams (own context each, one pthread each)\n"
            "  --batched        streams are sequences of one context, decoded together in one\n"
            "                   forward pass per step (as build/server does with its slots)\n"
            "  --duration S     seconds the streams run (default 5)\n"
            "  -q, --quiet      no progress line on stderr during --duration runs\n"
            "  --soak           with --streams: exit 1 unless RSS grew < 1%% after warm-up and the\n"
            "                   p99 latency of the last minute (quarter of shorter runs) is within\n"
            "                   10%% of the first\n"
            "  --cold-start     time fork/exec of infer -n 2 -> first stdout byte (and infer-static if built)\n"
            "  --cold-runs N    cold-start runs per binary (default 10)\n"
            "  --json FILE      also write every result as JSON\n"
            "  --svg FILE       latency-over-time + histogram chart (streams if run, else tg)\n"
            "  --kernels        kernel GB/s per ISA vs the measured memory bandwidth\n"
            "  --grammar        constrained output: cost of the grammar mask per token (--grammar --help)\n"
            "  --spec           speculative decoding: verification cost of K drafted tokens, and with\n"
            "                   --lookup N or --draft MODEL and -f TEXT, plain vs speculative (--spec --help)\n"
            "  --calls KERNEL   i2_gemv, i2_gemm or q8_0_gemv alone, -n times ([--isa NAME] [--shape RxC]),\n"
            "                   for an instruction counter (bench/insn_count.sh)\n\n"
            "llama-bench's form: -p, -n, -t, -b, -ub take lists (1,2 or 16-64) and -ctk/-ctv a list\n"
            "of types (f16,q8_0); every combination runs a ppN test for each -p value and a tgN test\n"
            "for each -n value (0: none), -r times (default 5), printed as llama-bench prints them\n"
            "(-o md, the default with lists; csv, json, jsonl). A prompt goes through in passes of\n"
            "min(-b, -ub) tokens (defaults 2048, 512), as llama.cpp's physical batch.\n");
}

/* "1,2", "16-64" (a range of whole numbers, step 1) or "0": into out[];
 * anything else (junk such as "2x", an empty item, a value < lo) is an error. */
static int parse_list(const char *flag, const char *v, int lo, int *out, int *n) {
    *n = 0;
    for (const char *s = v;;) {
        char *end;
        errno = 0;
        long a = strtol(s, &end, 10), b = a;
        if (end != s && *end == '-' && end[1]) {
            const char *t = end + 1;
            b = strtol(t, &end, 10);
            if (end == t) b = -1;
        }
        if (errno || end == s || (*end && *end != ',') || a < lo || b < a || b > 1 << 20 || *n + (b - a) >= MAX_LIST) {
            fprintf(stderr, "bench: %s expects numbers >= %d separated by commas (or a-b ranges, at most %d values), "
                            "got '%s'\n", flag, lo, MAX_LIST, v);
            return 0;
        }
        for (long x = a; x <= b; x++) out[(*n)++] = (int)x;
        if (!*end) return 1;
        s = end + 1;
    }
}

/* "f16,q8_0": KV cache types into out[]. */
static int parse_kv_list(const char *flag, const char *v, bitnet_kv_type *out, int *n) {
    *n = 0;
    char buf[256];
    if (strlen(v) >= sizeof buf) { fprintf(stderr, "bench: %s: list too long\n", flag); return 0; }
    strcpy(buf, v);
    for (char *save = NULL, *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        if (*n == MAX_LIST) { fprintf(stderr, "bench: %s: at most %d types\n", flag, MAX_LIST); return 0; }
        if (!parse_kv_type(flag, t, &out[(*n)++])) return 0;
    }
    if (*n == 0 || v[strlen(v) - 1] == ',' || strstr(v, ",,") || *v == ',') {
        fprintf(stderr, "bench: %s expects types separated by commas, got '%s'\n", flag, v);
        return 0;
    }
    return 1;
}

/* -ctk and -ctv: one cache type serves keys and values here, so when both are
 * given they must name the same types. */
static int parse_kv_list_flag(const char *a, const char *v, options *o) {
    const int is_k = a[strlen(a) - 1] == 'k';
    bitnet_kv_type types[MAX_LIST];
    int n;
    if (!parse_kv_list(a, v, types, &n)) return 0;
    const char *other = is_k ? o->kv_v_list : o->kv_k_list;
    if (other && (n != o->n_kv_types || memcmp(types, o->kv_types, (size_t)n * sizeof *types))) {
        fprintf(stderr, "bench: %s %s differs from %s %s: keys and values share one cache type here\n", a, v,
                is_k ? "-ctv" : "-ctk", other);
        return 0;
    }
    memcpy(o->kv_types, types, sizeof types);
    o->n_kv_types = n;
    *(is_k ? &o->kv_k_list : &o->kv_v_list) = v;
    return 1;
}

static int parse_args(int argc, char **argv, options *o) {
    *o = (options){.n_prompt = 64, .n_gen = 128, .n_threads = 1, .reps = 3, .duration = 5.0, .cold_runs = 10,
                   .kv_type = BITNET_KV_DEFAULT};
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) { usage(stdout); exit(0); }
        if (!strcmp(argv[i], "--cold-start")) { o->cold_start = 1; continue; }
        if (!strcmp(argv[i], "--batched")) { o->batched = 1; continue; }
        if (!strcmp(argv[i], "--soak")) { o->soak = 1; continue; }
        if (!strcmp(argv[i], "-q") || !strcmp(argv[i], "--quiet")) { o->quiet = 1; continue; }
        if (i + 1 >= argc) { fprintf(stderr, "bench: option %s needs a value\n", argv[i]); return 0; }
        const char *a = argv[i], *v = argv[++i];
        if (!strcmp(a, "-m") || !strcmp(a, "--model")) o->model = v;
        else if (!strcmp(a, "--tokenizer")) o->tokenizer = v;
        else if (!strcmp(a, "-p") || !strcmp(a, "--n-prompt")) { if (!parse_list(a, v, 0, o->prompts, &o->n_prompts)) return 0; }
        else if (!strcmp(a, "-n") || !strcmp(a, "--n-gen")) { if (!parse_list(a, v, 0, o->gens, &o->n_gens)) return 0; }
        else if (!strcmp(a, "-t") || !strcmp(a, "--threads")) { if (!parse_list(a, v, 1, o->threads, &o->n_threads_list)) return 0; }
        else if (!strcmp(a, "-r") || !strcmp(a, "--repetitions")) { if (!parse_int(a, v, 1, 1000, &o->reps)) return 0; o->reps_given = 1; }
        else if (!strcmp(a, "-o") || !strcmp(a, "--output")) {
            if (strcmp(v, "md") && strcmp(v, "csv") && strcmp(v, "json") && strcmp(v, "jsonl")) {
                fprintf(stderr, "bench: -o expects md, csv, json or jsonl, got '%s'\n", v);
                return 0;
            }
            o->output = v;
        }
        else if (!strcmp(a, "-c") || !strcmp(a, "--ctx-size")) { if (!parse_int(a, v, 1, 1 << 20, &o->n_ctx)) return 0; }
        else if (!strcmp(a, "-b") || !strcmp(a, "--batch-size")) { if (!parse_list(a, v, 1, o->batches, &o->n_batches)) return 0; }
        else if (!strcmp(a, "-ub") || !strcmp(a, "--ubatch-size")) { if (!parse_list(a, v, 1, o->ubatches, &o->n_ubatches)) return 0; }
        else if (!strcmp(a, "--streams")) { if (!parse_int(a, v, 0, 256, &o->streams)) return 0; }
        else if (!strcmp(a, "--duration")) {
            float d;
            if (!parse_float(a, v, &d)) return 0;
            o->duration = d;
        }
        else if (!strcmp(a, "--cold-runs")) { if (!parse_int(a, v, 1, 100000, &o->cold_runs)) return 0; }
        else if (!strcmp(a, "--json")) o->json = v;
        else if (!strcmp(a, "--svg")) o->svg = v;
        else if (!strcmp(a, "--kv-type")) { if (!parse_kv_list(a, v, o->kv_types, &o->n_kv_types)) return 0; o->kv_k_list = o->kv_v_list = NULL; }
        else if (!strcmp(a, "-ctk") || !strcmp(a, "--cache-type-k") || !strcmp(a, "-ctv") || !strcmp(a, "--cache-type-v")) {
            if (!parse_kv_list_flag(a, v, o)) return 0;
        }
        else { fprintf(stderr, "bench: unknown option '%s' (see --help)\n", a); return 0; }
    }
    /* several values of a list, or -o: llama-bench's sweep (bench_sweep) */
    if (o->n_prompts > 1 || o->n_gens > 1 || o->n_threads_list > 1 || o->n_batches > 1 || o->n_ubatches > 1 ||
        o->n_kv_types > 1)
        o->output = o->output ? o->output : "md";
    if (o->output) {
        if (!o->reps_given) o->reps = 5; /* llama-bench's default */
        if (!o->n_prompts) o->prompts[o->n_prompts++] = 512;
        if (!o->n_gens) o->gens[o->n_gens++] = 128;
        if (!o->n_threads_list) o->threads[o->n_threads_list++] = 1;
        if (!o->n_batches) o->batches[o->n_batches++] = 2048; /* llama-bench's defaults */
        if (!o->n_ubatches) o->ubatches[o->n_ubatches++] = 512;
        if (!o->n_kv_types) o->kv_types[o->n_kv_types++] = BITNET_KV_DEFAULT;
        return 1;
    }
    if (o->n_prompts) o->n_prompt = o->prompts[0];
    if (o->n_gens) o->n_gen = o->gens[0];
    if (o->n_threads_list) o->n_threads = o->threads[0];
    if (o->n_batches) o->n_batch = o->batches[0];
    if (o->n_ubatches && (!o->n_batch || o->ubatches[0] < o->n_batch)) o->n_batch = o->ubatches[0];
    if (o->n_kv_types) o->kv_type = o->kv_types[0];
    if (o->n_prompt < 1 || o->n_gen < 1 || o->n_threads < 1 || o->reps < 1) {
        fprintf(stderr, "bench: -p, -n, -t, -r must be >= 1 (0 only in a llama-bench sweep: -o or lists)\n");
        return 0;
    }
    if (!(o->duration > 0 && o->duration <= 86400)) {
        fprintf(stderr, "bench: --duration must be > 0 and at most 86400 seconds\n");
        return 0;
    }
    if (o->n_ctx <= 0) o->n_ctx = o->n_prompt + o->n_gen;
    return 1;
}

/* ---------------------------------------------------------------- llama-bench mode */

/* One row of llama-bench's table: test ppN (a prompt of N tokens, in passes
 * of min(n_batch, n_ubatch)) or tgN (N tokens one at a time). */
typedef struct {
    int threads, n_prompt, n_gen, n_batch, n_ubatch;
    bitnet_kv_type kv_type; /* as the context resolved it */
    double ts, sd;
} sweep_row;

static void sweep_print(const options *o, const bitnet_model_info *info, const sweep_row *r, int n) {
    const char *slash = o->model ? strrchr(o->model, '/') : NULL;
    const char *name = o->model ? (slash ? slash + 1 : o->model) : "embedded";
    const double size_mib = info->weight_bytes / 1048576.0, params_m = info->n_params / 1e6;
    const char *fmt = o->output;
    /* the table shows a parameter's column only when it was given, as llama-bench's */
    const int show_b = o->batches[0] != 2048 || o->n_batches > 1, show_ub = o->ubatches[0] != 512 || o->n_ubatches > 1;
    const int show_kv = o->n_kv_types > 1 || o->kv_types[0] != BITNET_KV_DEFAULT;
    if (!strcmp(fmt, "md")) {
        printf("| model | size | params | backend | threads |%s%s%s test | t/s |\n", show_b ? " n_batch |" : "",
               show_ub ? " n_ubatch |" : "", show_kv ? " type_k | type_v |" : "");
        printf("|---|---:|---:|---|---:|%s%s%s---:|---:|\n", show_b ? "---:|" : "", show_ub ? "---:|" : "",
               show_kv ? "---|---|" : "");
    }
    if (!strcmp(fmt, "csv"))
        printf("model_filename,model_type,model_size,model_n_params,backend,n_batch,n_ubatch,n_threads,type_k,type_v,"
               "n_prompt,n_gen,avg_ts,stddev_ts\n");
    if (!strcmp(fmt, "json")) printf("[\n");
    for (int i = 0; i < n; i++) {
        char test[32];
        snprintf(test, sizeof test, r[i].n_prompt ? "pp%d" : "tg%d", r[i].n_prompt ? r[i].n_prompt : r[i].n_gen);
        const char *kv = bitnet_kv_type_name(r[i].kv_type);
        if (!strcmp(fmt, "md")) {
            printf("| %s | %.2f MiB | %.2f M | CPU (%s) | %d |", name, size_mib, params_m, bitnet_isa_name(), r[i].threads);
            if (show_b) printf(" %d |", r[i].n_batch);
            if (show_ub) printf(" %d |", r[i].n_ubatch);
            if (show_kv) printf(" %s | %s |", kv, kv);
            printf(" %s | %.2f ± %.2f |\n", test, r[i].ts, r[i].sd);
        } else if (!strcmp(fmt, "csv")) {
            printf("\"%s\",\"%s\",%llu,%llu,\"CPU\",%d,%d,%d,\"%s\",\"%s\",%d,%d,%.6f,%.6f\n", name, info->arch,
                   (unsigned long long)info->weight_bytes, (unsigned long long)info->n_params, r[i].n_batch,
                   r[i].n_ubatch, r[i].threads, kv, kv, r[i].n_prompt, r[i].n_gen, r[i].ts, r[i].sd);
        } else {
            printf("%s{\"model_filename\": \"%s\", \"model_type\": \"%s\", \"model_size\": %llu, \"model_n_params\": %llu, "
                   "\"backend\": \"CPU\", \"cpu_info\": \"%s\", \"n_batch\": %d, \"n_ubatch\": %d, \"n_threads\": %d, "
                   "\"type_k\": \"%s\", \"type_v\": \"%s\", \"n_prompt\": %d, \"n_gen\": %d, "
                   "\"avg_ts\": %.6f, \"stddev_ts\": %.6f}",
                   !strcmp(fmt, "json") ? "  " : "", name, info->arch, (unsigned long long)info->weight_bytes,
                   (unsigned long long)info->n_params, bitnet_isa_name(), r[i].n_batch, r[i].n_ubatch, r[i].threads,
                   kv, kv, r[i].n_prompt, r[i].n_gen, r[i].ts, r[i].sd);
            printf(!strcmp(fmt, "json") && i + 1 < n ? ",\n" : "\n");
        }
    }
    if (!strcmp(fmt, "json")) printf("]\n");
}

/* The cross product of the lists, in llama-bench's order: every parameter
 * combination (-b x -ub x -ctk x -t) runs the -p values as ppN tests, then the
 * -n values as tgN tests. */
static int bench_sweep(bitnet_model *model, const options *o) {
    bitnet_model_info info;
    bitnet_model_get_info(model, &info);
    const int n_combos = o->n_batches * o->n_ubatches * o->n_kv_types * o->n_threads_list;
    sweep_row *rows = malloc((size_t)n_combos * (size_t)(o->n_prompts + o->n_gens) * sizeof *rows);
    if (!rows) { fprintf(stderr, "bench: out of memory\n"); return 0; }
    int n = 0, ok = 1;
    for (int c = 0; ok && c < n_combos; c++) {
        int rest = c;
        const int ti = rest % o->n_threads_list; rest /= o->n_threads_list;
        const int ki = rest % o->n_kv_types; rest /= o->n_kv_types;
        const int ui = rest % o->n_ubatches; rest /= o->n_ubatches;
        const int bi = rest;
        for (int k = 0; ok && k < o->n_prompts + o->n_gens; k++) {
            const int is_pp = k < o->n_prompts, len = is_pp ? o->prompts[k] : o->gens[k - o->n_prompts];
            if (len == 0) continue; /* -p 0 / -n 0: no such test */
            options one = *o;
            one.n_threads = o->threads[ti];
            one.kv_type = o->kv_types[ki];
            one.n_batch = o->batches[bi] < o->ubatches[ui] ? o->batches[bi] : o->ubatches[ui];
            one.n_prompt = is_pp ? len : 1; /* a tg test starts from BOS alone */
            one.n_gen = is_pp ? 1 : len;
            one.n_ctx = one.n_prompt + one.n_gen;
            tg_result r = {0};
            lat_recorder lat;
            ok = lat_init(&lat, 0, 1e300) && bench_pp_tg(model, &one, &r, &lat);
            lat_free(&lat);
            if (ok)
                rows[n++] = (sweep_row){one.n_threads, is_pp ? len : 0, is_pp ? 0 : len, o->batches[bi], o->ubatches[ui],
                                        r.kv_type, is_pp ? r.pp_m : r.tg_m, is_pp ? r.pp_sd : r.tg_sd};
        }
    }
    if (ok) sweep_print(o, &info, rows, n);
    free(rows);
    return ok;
}

int main(int argc, char **argv) {
    handle_version(argc, argv);
    for (int i = 1; i < argc; i++)
        if (!strcmp(argv[i], "--kernels")) return bn_bench_kernels(argc, argv);
        else if (!strcmp(argv[i], "--spec")) return bn_bench_spec(argc, argv);
        else if (!strcmp(argv[i], "--grammar")) return bn_bench_grammar(argc, argv);
        else if (!strcmp(argv[i], "--calls")) return bn_bench_calls(argc, argv);
    options o;
    if (!parse_args(argc, argv, &o)) return 2;

    /* cold start first, while this process is still small (cheap fork) */
    cold_result cold[2];
    char cold_paths[2][4096];
    int n_cold = o.cold_start ? bench_cold_start(argv[0], &o, cold, cold_paths) : 0;
    if (n_cold < 0) return 1;

    bitnet_model *model = load_model(o.model, o.tokenizer, NULL);
    if (!model) return 1;
    if (o.output) { /* llama-bench mode */
        (void)bitnet_isa_name();
        int ok = bench_sweep(model, &o);
        bitnet_model_free(model);
        return ok ? 0 : 1;
    }
    bitnet_model_info info;
    bitnet_model_get_info(model, &info);
    (void)bitnet_isa_name(); /* resolve the kernels before any thread starts */

    tg_result tg = {0};
    streams_result sr = {0};
    lat_recorder tg_lat, st_lat;
    int ok = lat_init(&tg_lat, 0, 1e300) && lat_init(&st_lat, soak_window(o.duration), o.duration - soak_window(o.duration));
    ok = ok && bench_pp_tg(model, &o, &tg, &tg_lat);
    if (ok) print_pp_tg(&o, &info, &tg);
    if (ok && o.streams > 0 && (ok = (o.batched ? bench_streams_batched : bench_streams)(model, &o, &sr, &st_lat))) {
        streams_drift(&st_lat, &sr);
        print_streams(&o, &sr);
    }
    int soak_ok = !o.soak || (o.streams > 0 && ok && soak_verdict(&sr));
    if (ok && n_cold > 0) print_cold(cold, n_cold);
    if (ok && o.svg) {
        int use_streams = o.streams > 0;
        char title[256];
        snprintf(title, sizeof title, "libbitnet %s: %s, %d stream(s) x %d thread(s), isa %s",
                 use_streams ? "streams" : "tg", o.model ? o.model : "embedded model", use_streams ? o.streams : 1,
                 o.n_threads, bitnet_isa_name());
        ok = lat_write_svg(o.svg, use_streams ? &st_lat : &tg_lat, use_streams ? &sr.lat : &tg.lat, title);
    }
    if (ok && o.json) ok = write_json(o.json, &o, &info, &tg, o.streams > 0 ? &sr : NULL, n_cold ? cold : NULL, n_cold);
    lat_free(&tg_lat); lat_free(&st_lat); free(sr.tok_s); free(sr.tokens);
    bitnet_model_free(model);
    return ok && soak_ok ? 0 : 1;
}
