/* prune - remove whole transformer blocks, chosen on calibration data, and
 * write the smaller model.
 *
 *   build/prune -m MODEL --calibration-data FILE --target-layers N -o OUT.gguf|OUT.safetensors
 *               [--metric variance|cosine|ppl] [--report FILE.json] [--eval-data TEXT]
 *
 * The model runs over the calibration text, cut into windows of -c tokens
 * exactly as build/perplexity cuts a text ([BOS] + c-1 tokens, from position
 * 0), with a hook on the residual stream: x_l is the stream after block l,
 * x_-1 the embeddings. Each block gets three scores from that one pass:
 *   variance  Var(x_l - x_l-1) over all calibration tokens and dimensions:
 *             how much the block writes into the stream (the brief's metric);
 *   cosine    mean over tokens of 1 - cos(x_l-1, x_l): ShortGPT's Block
 *             Influence, how much the block turns the stream;
 * and --metric ppl adds a greedy search: remove the block whose removal
 * raises the calibration perplexity least, re-measure, repeat until N blocks
 * are left. variance and cosine remove the lowest-scoring blocks in one shot.
 *
 * The output keeps the other blocks renumbered 0..N-1. A GGUF input is copied
 * tensor by tensor (ternary tensors byte for byte, all metadata kept, only
 * ARCH.block_count changed); ak42 and safetensors inputs are written as
 * convert writes them (i2_s); -o *.safetensors writes the safetensors layout
 * of src/model/safetensors_model.c. The model is written to a temporary beside
 * OUT and loaded back from it (the "after" perplexity and latency are measured
 * on the file as written); the report is written; only then is the temporary
 * renamed over OUT. A run that fails leaves OUT as it was (absent, or the old
 * file), and the input, OUT and the report must be three different files. */
#include <math.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bitnet.h"
#include "formats/atomic_file.h"
#include "model/model_writer.h"
#include "model/perplexity.h"
#define TOOL_NAME "prune"
#include "util.h"

typedef enum { METRIC_VARIANCE, METRIC_COSINE, METRIC_PPL } metric_kind;
static const char *metric_names[] = {"variance", "cosine", "ppl"};

typedef struct {
    model_options m; /* -m, --tokenizer, -t, --kv-type / -ctk / -ctv */
    const char *calib, *out, *report, *eval;
    int target, n_ctx, bench_tokens, calib_windows, quiet;
    metric_kind metric;
} options;

/* What one model measures: held-out perplexity and decode latency. */
typedef struct {
    int n_blocks;
    uint64_t file_bytes, n_params, weight_bytes;
    double eval_ppl, eval_err; /* 0 when there is no --eval-data */
    long eval_tokens;
    double ms_per_token;       /* 0 when --bench-tokens 0 */
} model_stats;

/* Per-block scores. */
typedef struct {
    int n;
    double *var_sum, *var_sum2, *cos_sum; /* [n] running sums over the calibration tokens */
    long *var_count, *cos_count;
    double *variance, *cosine, *ppl_without; /* [n] final scores (ppl_without: --metric ppl) */
    int *removed_order;  /* [n] blocks in the order they were removed; n_removed entries */
    double *step_ppl;    /* [n] calibration PPL after each removal (--metric ppl) */
    int n_removed;
    uint8_t *removed;    /* [n] 1 = removed */
    float *prev;         /* [n_batch][dim] the stream before the current block */
    double calib_ppl;    /* calibration PPL of the full model */
} block_scores;

#define BENCH_PROMPT 32 /* prompt tokens before the timed decode steps */
#define BENCH_REPS 3

static void usage(FILE *out) {
    fprintf(out,
            "usage: prune -m MODEL --calibration-data FILE --target-layers N -o OUT [options]\n"
            "Removes whole transformer blocks chosen on calibration data and writes the smaller\n"
            "model: the kept blocks renumbered, ternary tensors copied packed, block_count updated.\n\n"
            "  -m, --model FILE            GGUF, ak42 or safetensors model (default: the embedded model)\n"
            "      --tokenizer FILE        llama2.c tokenizer.bin for files without a vocabulary\n"
            "                              (safetensors: also a tokenizer.json or GGUF vocabulary)\n"
            "      --calibration-data F    JSON Lines, one {\"text\": ...} per line (F ends in .jsonl),\n"
            "                              or plain text (required)\n"
            "      --target-layers N       blocks to keep, 1 .. layers-1 (required)\n"
            "  -o, --output FILE           output model, written atomically (required): GGUF, or\n"
            "                              safetensors if FILE ends in .safetensors (loaded back with\n"
            "                              --tokenizer, or the input GGUF's vocabulary)\n"
            "  -q, --quiet                 no progress line on stderr (else: percent done, ETA)\n"
            "      --metric M              how blocks are chosen (default cosine):\n"
            "                                variance  lowest Var(x_l - x_l-1), the block's output delta\n"
            "                                cosine    lowest mean 1 - cos(x_l-1, x_l) (ShortGPT)\n"
            "                                ppl       greedy: drop the block whose removal raises the\n"
            "                                          calibration perplexity least, repeat\n"
            "      --report FILE           write the report as JSON too\n"
            "      --eval-data FILE        held-out text: perplexity before and after (as build/perplexity)\n"
            "  -c, --ctx-size N            window size in tokens for calibration and eval, >= 4 (default 128)\n"
            "      --calib-windows N       use at most the first N calibration windows (default: all);\n"
            "                              --metric ppl evaluates them about L*(L-N) times\n"
            "  -t, --threads N             threads (default 1)\n"
            "      --kv-type T             KV cache type: f32, f16, q8, q4, q2 (default: per model);\n"
            "                              also -ctk/-ctv (q8_0 = q8, one type)\n"
            "      --bench-tokens N        timed greedy decode steps per repetition for ms/token,\n"
            "                              0 = skip (default 128)\n"
            "  -h, --help                  this help\n\n"
            "stdout: a table of the per-block scores and the before/after sizes, held-out\n"
            "perplexity and ms/token (median of %d x N single-token decode steps after a\n"
            "%d-token prompt, measured like build/bench's tg latency).\n",
            BENCH_REPS, BENCH_PROMPT);
}

static int parse_args(int argc, char **argv, options *o) {
    *o = (options){.m = MODEL_OPTIONS_DEFAULT, .n_ctx = 128, .bench_tokens = 128, .metric = METRIC_COSINE};
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-q") || !strcmp(argv[i], "--quiet")) { /* no value */
            o->quiet = 1;
            continue;
        }
        const char *a = argv[i], *v = option_value(argc, argv, &i, usage);
        if (!v) return 0;
        int ok = 1;
        if (!strcmp(a, "--calibration-data")) o->calib = v;
        else if (!strcmp(a, "-o") || !strcmp(a, "--output")) o->out = v;
        else if (!strcmp(a, "--report")) o->report = v;
        else if (!strcmp(a, "--eval-data")) o->eval = v;
        else if (!strcmp(a, "--target-layers")) ok = parse_int(a, v, 1, 1 << 20, &o->target);
        else if (!strcmp(a, "-c") || !strcmp(a, "--ctx-size")) ok = parse_int(a, v, 4, 1 << 20, &o->n_ctx);
        else if (!strcmp(a, "--calib-windows")) ok = parse_int(a, v, 1, 1 << 30, &o->calib_windows);
        else if (!strcmp(a, "--bench-tokens")) ok = parse_int(a, v, 0, 1 << 16, &o->bench_tokens);
        else if (!strcmp(a, "--metric")) {
            int m = 0;
            while (m < 3 && strcmp(v, metric_names[m])) m++;
            if (m == 3) {
                fprintf(stderr, "prune: unknown --metric '%s' (variance, cosine, ppl)\n", v);
                return 0;
            }
            o->metric = (metric_kind)m;
        } else
            ok = model_option(a, v, &o->m); /* -m, -t, ..., or an unknown option */
        if (!ok) return 0;
    }
    if (!o->calib || !o->out || !o->target) {
        fprintf(stderr, "prune: --calibration-data FILE, --target-layers N and -o OUT are required (see --help)\n");
        return 0;
    }
    return 1;
}

/* ------------------------------------------------------------- calibration */

/* ------------------------------------------------------------------ scoring */

static int scores_alloc(block_scores *s, int n_layers, int n_batch, int dim) {
    memset(s, 0, sizeof *s);
    s->n = n_layers;
    size_t n = (size_t)n_layers;
    s->var_sum = calloc(n, sizeof(double));
    s->var_sum2 = calloc(n, sizeof(double));
    s->cos_sum = calloc(n, sizeof(double));
    s->variance = calloc(n, sizeof(double));
    s->cosine = calloc(n, sizeof(double));
    s->ppl_without = calloc(n, sizeof(double));
    s->step_ppl = calloc(n, sizeof(double));
    s->var_count = calloc(n, sizeof(long));
    s->cos_count = calloc(n, sizeof(long));
    s->removed_order = calloc(n, sizeof(int));
    s->removed = calloc(n, 1);
    s->prev = malloc((size_t)n_batch * dim * sizeof(float));
    return s->var_sum && s->var_sum2 && s->cos_sum && s->variance && s->cosine && s->ppl_without && s->step_ppl &&
           s->var_count && s->cos_count && s->removed_order && s->removed && s->prev;
}

static void scores_free(block_scores *s) {
    free(s->var_sum); free(s->var_sum2); free(s->cos_sum); free(s->variance); free(s->cosine);
    free(s->ppl_without); free(s->step_ppl); free(s->var_count); free(s->cos_count);
    free(s->removed_order); free(s->removed); free(s->prev);
}

/* The layer hook: compares the stream after block `layer` with the one
 * before it (kept in s->prev), token by token, in double. */
static void on_layer(void *user, int layer, const float *x, int n, int dim) {
    block_scores *s = user;
    if (layer >= 0) {
        for (int t = 0; t < n; t++) {
            const float *a = s->prev + (size_t)t * dim, *b = x + (size_t)t * dim;
            double sum = 0, sum2 = 0, dot = 0, na = 0, nb = 0;
            for (int i = 0; i < dim; i++) {
                double d = (double)b[i] - a[i];
                sum += d;
                sum2 += d * d;
                dot += (double)a[i] * b[i];
                na += (double)a[i] * a[i];
                nb += (double)b[i] * b[i];
            }
            s->var_sum[layer] += sum;
            s->var_sum2[layer] += sum2;
            s->var_count[layer] += dim;
            /* a zero vector has no direction: count it as unchanged */
            s->cos_sum[layer] += na > 0 && nb > 0 ? 1.0 - dot / sqrt(na * nb) : 0.0;
            s->cos_count[layer]++;
        }
    }
    memcpy(s->prev, x, (size_t)n * dim * sizeof(float));
}

/* Calibration perplexity of ctx's model with the skipped blocks left out
 * (bitnet_context_set_skip_layers). */
static int calib_ppl(bitnet_context *ctx, const bitnet_token *toks, int n_windows, int n_ctx, bitnet_token *win,
                     float *logits, double *ppl) {
    bn_nll_acc acc = {0, 0, 0};
    for (int c = 0; c < n_windows; c++)
        if (bn_ppl_window(ctx, toks, c, n_ctx, win, logits, &acc) != BITNET_OK) {
            fprintf(stderr, "prune: %s\n", bitnet_last_error());
            return 0;
        }
    double err;
    bn_nll_acc_ppl(&acc, ppl, &err);
    return 1;
}

/* Lowest score among the blocks not removed yet (ties: the lower index). */
static int argmin_kept(const block_scores *s, const double *score) {
    int best = -1;
    for (int l = 0; l < s->n; l++)
        if (!s->removed[l] && (best < 0 || score[l] < score[best])) best = l;
    return best;
}

static void remove_block(block_scores *s, int l) {
    s->removed[l] = 1;
    s->removed_order[s->n_removed++] = l;
}

/* Scores every block and marks the n - target blocks to remove. */
static int score_blocks(bitnet_context *ctx, const options *o, const bitnet_token *toks, int n_windows,
                        block_scores *s) {
    const int n_ctx = o->n_ctx, n_vocab = bitnet_n_vocab(bitnet_get_model(ctx)), n_remove = s->n - o->target;
    float *logits = malloc((size_t)n_ctx * n_vocab * sizeof(float));
    bitnet_token *win = malloc((size_t)n_ctx * sizeof *win);
    int ok = logits && win;
    if (!ok) fprintf(stderr, "prune: out of memory for %d x %d logits\n", n_ctx, n_vocab);

    /* passes over the calibration text: the full model's, then (ppl) each round's trials */
    int passes = 1, done = 0;
    for (int r = 0; o->metric == METRIC_PPL && r < n_remove; r++) passes += s->n - r;
    progress pr;
    progress_start(&pr, "scoring", o->quiet);
    char detail[64];

    /* one pass of the full model: activation statistics and the baseline PPL */
    bitnet_context_set_layer_hook(ctx, on_layer, s);
    ok = ok && calib_ppl(ctx, toks, n_windows, n_ctx, win, logits, &s->calib_ppl);
    snprintf(detail, sizeof detail, "[pass %d/%d] ", ++done, passes);
    progress_update(&pr, done, passes, detail);
    bitnet_context_set_layer_hook(ctx, NULL, NULL);
    for (int l = 0; ok && l < s->n; l++) {
        double mean = s->var_sum[l] / (double)s->var_count[l];
        s->variance[l] = s->var_sum2[l] / (double)s->var_count[l] - mean * mean;
        s->cosine[l] = s->cos_sum[l] / (double)s->cos_count[l];
    }

    if (ok && o->metric != METRIC_PPL) {
        const double *score = o->metric == METRIC_VARIANCE ? s->variance : s->cosine;
        for (int r = 0; r < n_remove; r++) remove_block(s, argmin_kept(s, score));
    }
    /* greedy: each round tries every remaining block; blocks found cheap in
     * one round are often not the cheapest pair, hence re-measuring */
    double *trial = ok && o->metric == METRIC_PPL ? malloc((size_t)s->n * sizeof(double)) : NULL;
    if (ok && o->metric == METRIC_PPL && !trial) {
        fprintf(stderr, "prune: out of memory\n");
        ok = 0;
    }
    bitnet_context_set_skip_layers(ctx, s->removed);
    for (int r = 0; ok && trial && r < n_remove; r++) {
        for (int l = 0; ok && l < s->n; l++) {
            if (s->removed[l]) continue;
            s->removed[l] = 1;
            ok = calib_ppl(ctx, toks, n_windows, n_ctx, win, logits, &trial[l]);
            s->removed[l] = 0;
            snprintf(detail, sizeof detail, "[pass %d/%d] ", ++done, passes);
            progress_update(&pr, done, passes, detail);
            if (r == 0) s->ppl_without[l] = trial[l];
        }
        if (!ok) break;
        int best = argmin_kept(s, trial);
        s->step_ppl[r] = trial[best];
        remove_block(s, best);
        progress_end(&pr);
        if (!o->quiet)
            fprintf(stderr, "prune: step %d/%d: removed block %d, calibration ppl %.4f\n", r + 1, n_remove, best,
                    trial[best]);
    }
    bitnet_context_set_skip_layers(ctx, NULL);
    progress_end(&pr);
    free(trial);
    free(logits);
    free(win);
    return ok;
}

/* -------------------------------------------------------------- measuring */

static uint64_t file_bytes(const char *path) {
    struct stat sb;
    return path && stat(path, &sb) == 0 ? (uint64_t)sb.st_size : 0;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* Median ms of one greedy decode step (one bitnet_eval of one token) over
 * BENCH_REPS repetitions of: a BENCH_PROMPT-token prompt in one eval, then
 * n_gen steps. The same measurement as build/bench's tg latency p50. */
static int decode_ms(bitnet_model *m, const bitnet_token *prompt, int n_gen, const model_options *mo, double *ms) {
    bitnet_context_params cp = bitnet_context_default_params();
    cp.n_ctx = BENCH_PROMPT + n_gen;
    cp.n_batch = BENCH_PROMPT;
    cp.n_threads = mo->n_threads;
    cp.kv_type = mo->kv.type;
    bitnet_context *ctx = NULL;
    double *t = malloc((size_t)BENCH_REPS * n_gen * sizeof *t);
    if (!t || bitnet_context_new(m, &cp, &ctx) != BITNET_OK) {
        fprintf(stderr, "prune: %s\n", t ? bitnet_last_error() : "out of memory");
        free(t);
        return 0;
    }
    const int vocab = bitnet_n_vocab(m);
    int ok = bitnet_eval(ctx, prompt, 1, 0) == BITNET_OK; /* warm-up: page the weights in */
    for (int r = 0; ok && r < BENCH_REPS; r++) {
        ok = bitnet_eval(ctx, prompt, BENCH_PROMPT, 0) == BITNET_OK;
        for (int i = 0; ok && i < n_gen; i++) {
            const float *lg = bitnet_get_logits(ctx);
            bitnet_token next = 0;
            for (int v = 1; v < vocab; v++)
                if (lg[v] > lg[next]) next = v;
            uint64_t t0 = now_ns();
            ok = bitnet_eval(ctx, &next, 1, BENCH_PROMPT + i) == BITNET_OK;
            t[r * n_gen + i] = (now_ns() - t0) / 1e6;
        }
    }
    if (ok) {
        qsort(t, (size_t)BENCH_REPS * n_gen, sizeof *t, cmp_double);
        size_t n = (size_t)BENCH_REPS * n_gen;
        *ms = n % 2 ? t[n / 2] : (t[n / 2 - 1] + t[n / 2]) / 2;
    } else {
        fprintf(stderr, "prune: %s\n", bitnet_last_error());
    }
    free(t);
    bitnet_context_free(ctx);
    return ok;
}

/* Held-out perplexity (same windows and numbers as build/perplexity -c) and latency of m. */
static int measure(bitnet_model *m, const options *o, const char *path, const char *eval_text,
                   const bitnet_token *prompt, model_stats *st) {
    bitnet_model_info info;
    bitnet_model_get_info(m, &info);
    memset(st, 0, sizeof *st);
    st->n_blocks = info.n_layer;
    st->n_params = info.n_params;
    st->weight_bytes = info.weight_bytes;
    st->file_bytes = path ? file_bytes(path) : bn_model_source_bytes(m);
    if (eval_text) {
        bitnet_token *toks = NULL;
        int n = bn_tokenize_alloc(m, eval_text, &toks);
        int n_windows = n > 0 ? bn_ppl_n_windows(n, o->n_ctx, 0) : 0;
        bitnet_context_params cp = bitnet_context_default_params();
        cp.n_ctx = cp.n_batch = o->n_ctx;
        cp.n_threads = o->m.n_threads;
        cp.kv_type = o->m.kv.type;
        bitnet_context *ctx = NULL;
        float *logits = malloc((size_t)o->n_ctx * bitnet_n_vocab(m) * sizeof(float));
        bitnet_token *win = malloc((size_t)o->n_ctx * sizeof *win);
        bn_nll_acc acc = {0, 0, 0};
        int ok = n_windows > 0 && logits && win && bitnet_context_new(m, &cp, &ctx) == BITNET_OK;
        for (int c = 0; ok && c < n_windows; c++) ok = bn_ppl_window(ctx, toks, c, o->n_ctx, win, logits, &acc) == BITNET_OK;
        if (!ok) fprintf(stderr, "prune: %s: %s\n", o->eval, n_windows > 0 ? bitnet_last_error() : "no full window");
        bn_nll_acc_ppl(&acc, &st->eval_ppl, &st->eval_err);
        st->eval_tokens = acc.count;
        bitnet_context_free(ctx);
        free(logits);
        free(win);
        free(toks);
        if (!ok) return 0;
    }
    return o->bench_tokens == 0 || decode_ms(m, prompt, o->bench_tokens, &o->m, &st->ms_per_token);
}

/* ---------------------------------------------------------------- report */

static void print_table(const options *o, const block_scores *s, const model_stats *b, const model_stats *a,
                        int n_texts, int n_toks, int n_windows) {
    printf("prune: %s, metric %s, calibration %s (%d texts, %d tokens, %d windows of %d)\n",
           o->m.model ? o->m.model : "(embedded model)", metric_names[o->metric], o->calib, n_texts, n_toks, n_windows,
           o->n_ctx);
    printf("calibration perplexity of the full model: %.4f\n\n", s->calib_ppl);
    printf("| block | variance | cosine (1 - cos) |%s removed |\n|---:|---:|---:|%s---|\n",
           o->metric == METRIC_PPL ? " calib ppl without it |" : "", o->metric == METRIC_PPL ? "---:|" : "");
    for (int l = 0; l < s->n; l++) {
        int step = -1;
        for (int r = 0; r < s->n_removed; r++)
            if (s->removed_order[r] == l) step = r;
        printf("| %d | %.6g | %.6g |", l, s->variance[l], s->cosine[l]);
        if (o->metric == METRIC_PPL) printf(" %.4f |", s->ppl_without[l]);
        if (step >= 0) printf(" yes (#%d) |\n", step + 1);
        else printf(" |\n");
    }
    printf("\n| | before | after |\n|---|---:|---:|\n");
    printf("| blocks | %d | %d |\n", b->n_blocks, a->n_blocks);
    printf("| file bytes | %llu | %llu |\n", (unsigned long long)b->file_bytes, (unsigned long long)a->file_bytes);
    printf("| parameters | %llu | %llu |\n", (unsigned long long)b->n_params, (unsigned long long)a->n_params);
    printf("| weight bytes read per token | %llu | %llu |\n", (unsigned long long)b->weight_bytes,
           (unsigned long long)a->weight_bytes);
    if (o->eval)
        printf("| held-out ppl (%s, %ld tokens, -c %d) | %.4f ± %.4f | %.4f ± %.4f |\n", o->eval, b->eval_tokens,
               o->n_ctx, b->eval_ppl, b->eval_err, a->eval_ppl, a->eval_err);
    if (o->bench_tokens)
        printf("| ms/token (greedy decode step, median of %dx%d, %d thread%s) | %.3f | %.3f |\n", BENCH_REPS,
               o->bench_tokens, o->m.n_threads, o->m.n_threads > 1 ? "s" : "", b->ms_per_token, a->ms_per_token);
}

/* A number, or null: JSON has no inf/nan (a diverging perplexity). */
static void jnum(FILE *f, const char *key, double v, int present) {
    fprintf(f, ", \"%s\": ", key);
    if (present && isfinite(v)) fprintf(f, "%.9g", v);
    else fprintf(f, "null");
}

static void json_stats(FILE *f, const char *key, const options *o, const model_stats *s) {
    fprintf(f, "  \"%s\": {\"blocks\": %d, \"file_bytes\": %llu, \"parameters\": %llu, \"weight_bytes\": %llu", key,
       s->n_blocks, (unsigned long long)s->file_bytes, (unsigned long long)s->n_params,
       (unsigned long long)s->weight_bytes);
    jnum(f, "eval_ppl", s->eval_ppl, o->eval != NULL);
    jnum(f, "eval_ppl_err", s->eval_err, o->eval != NULL);
    jnum(f, "ms_per_token", s->ms_per_token, o->bench_tokens > 0);
    fprintf(f, "}");
}

/* Writes the JSON report atomically (a temporary beside it, then rename). */
static int write_report(const options *o, const block_scores *s, const model_stats *b, const model_stats *a,
                        int n_texts, int n_toks, int n_windows) {
    /* built in an anonymous temporary file (standard C, unlike open_memstream), then
     * read back and published atomically */
    FILE *f = tmpfile();
    if (!f) {
        fprintf(stderr, "prune: cannot create a temporary file for the report: %s\n", strerror(errno));
        return 0;
    }
    fprintf(f, "{\n  \"model\": ");
    json_str(f, o->m.model ? o->m.model : "(embedded model)");
    fprintf(f, ",\n  \"output\": ");
    json_str(f, o->out);
    fprintf(f, ",\n  \"metric\": \"%s\",\n  \"calibration\": {\"file\": ", metric_names[o->metric]);
    json_str(f, o->calib);
    fprintf(f, ", \"texts\": %d, \"tokens\": %d, \"windows\": %d, \"ctx\": %d", n_texts, n_toks, n_windows, o->n_ctx);
    jnum(f, "ppl_full_model", s->calib_ppl, 1);
    fprintf(f, "},\n  \"blocks\": [\n");
    for (int l = 0; l < s->n; l++) {
        fprintf(f, "    {\"index\": %d", l);
        jnum(f, "variance", s->variance[l], 1);
        jnum(f, "cosine", s->cosine[l], 1);
        if (o->metric == METRIC_PPL) jnum(f, "calib_ppl_without", s->ppl_without[l], 1);
        fprintf(f, ", \"removed\": %s}%s\n", s->removed[l] ? "true" : "false", l + 1 < s->n ? "," : "");
    }
    fprintf(f, "  ],\n  \"removed\": [");
    for (int r = 0; r < s->n_removed; r++) fprintf(f, "%s%d", r ? ", " : "", s->removed_order[r]);
    fprintf(f, "]");
    if (o->metric == METRIC_PPL) {
        fprintf(f, ",\n  \"greedy_calib_ppl\": [");
        for (int r = 0; r < s->n_removed; r++) fprintf(f, r ? ", %.9g" : "%.9g", s->step_ppl[r]);
        fprintf(f, "]");
    }
    fprintf(f, ",\n  \"eval_data\": ");
    json_str(f, o->eval);
    fprintf(f, ",\n  \"latency_method\": \"median ms of one greedy single-token decode step, %d reps x %d steps after a "
           "%d-token prompt, %d thread(s)\",\n",
       BENCH_REPS, o->bench_tokens, BENCH_PROMPT, o->m.n_threads);
    json_stats(f, "before", o, b);
    fprintf(f, ",\n");
    json_stats(f, "after", o, a);
    fprintf(f, "\n}\n");

    const long len = fflush(f) == 0 && !ferror(f) ? ftell(f) : -1;
    char *buf = len >= 0 ? malloc((size_t)len + 1) : NULL;
    rewind(f);
    int ok = buf && fread(buf, 1, (size_t)len, f) == (size_t)len;
    fclose(f);
    if (!ok) {
        fprintf(stderr, "prune: cannot build the report in a temporary file\n");
    } else if (!(ok = bn_atomic_write_file(o->report, buf, (size_t)len) == BITNET_OK)) {
        fprintf(stderr, "prune: cannot write the report: %s\n", bitnet_last_error());
    }
    free(buf);
    return ok;
}

/* ------------------------------------------------------------------ main */

/* Reads --eval-data and checks that it fills at least one window, before the
 * long part of the run. */
static int check_eval(const bitnet_model *m, const options *o, char **text) {
    if (bn_read_text_file(o->eval, text) != BITNET_OK) {
        fprintf(stderr, "prune: %s\n", bitnet_last_error());
        return 0;
    }
    bitnet_token *toks = NULL;
    int n = bn_tokenize_alloc(m, *text, &toks);
    free(toks);
    if (n < 0) {
        fprintf(stderr, "prune: %s: cannot tokenize: %s\n", o->eval, bitnet_last_error());
        return 0;
    }
    if (bn_ppl_n_windows(n, o->n_ctx, 0) < 1) {
        fprintf(stderr, "prune: %s has %d tokens, fewer than one window of %d (-c %d needs %d text tokens)\n", o->eval,
                n, o->n_ctx, o->n_ctx, o->n_ctx - 1);
        return 0;
    }
    return 1;
}

static int is_safetensors(const char *path) {
    size_t n = strlen(path);
    return n >= 12 && !strcmp(path + n - 12, ".safetensors");
}

/* A GGUF file (its vocabulary loads a safetensors output back). */
static int is_gguf(const char *path) {
    char magic[4] = {0};
    FILE *f = path ? fopen(path, "rb") : NULL;
    int ok = f && fread(magic, 1, 4, f) == 4 && !memcmp(magic, "GGUF", 4);
    if (f) fclose(f);
    return ok;
}

/* Fails early, before minutes of scoring, when no file can be created beside PATH. */
static int check_writable(const char *path) {
    bn_atomic_file f;
    if (bn_atomic_reserve(&f, path) != BITNET_OK) {
        fprintf(stderr, "prune: %s\n", bitnet_last_error());
        return 0;
    }
    bn_atomic_abort(&f);
    return 1;
}

int main(int argc, char **argv) {
    handle_version(argc, argv);
    options o;
    if (!parse_args(argc, argv, &o)) return 2;
    bitnet_model *model = load_model(o.m.model, o.m.tokenizer, NULL), *pruned = NULL;
    if (!model) return 1;
    bitnet_model_info info;
    bitnet_model_get_info(model, &info);
    const int n_layers = info.n_layer;
    /* To GGUF, a GGUF input is copied tensor by tensor (linear_type NULL),
     * anything else re-encoded as convert does (i2_s). */
    static const uint8_t any_layers = 0; /* the checks need to know layers will be dropped, not which */
    bn_write_params wp = bn_write_default_params();
    wp.safetensors = is_safetensors(o.out);
    wp.drop = &any_layers;
    if (bn_model_write_check(model, &wp) != BITNET_OK) {
        fprintf(stderr, "prune: %s: %s\n", o.m.model ? o.m.model : "model", bitnet_last_error());
        bitnet_model_free(model);
        return 2;
    }
    if (o.target >= n_layers) {
        fprintf(stderr, "prune: --target-layers %d must be less than the model's %d layers (1..%d)\n", o.target,
                n_layers, n_layers - 1);
        bitnet_model_free(model);
        return 2;
    }
    const char *reload_tokenizer = o.m.tokenizer ? o.m.tokenizer : is_gguf(o.m.model) ? o.m.model : NULL;
    if (wp.safetensors && !reload_tokenizer) {
        fprintf(stderr, "prune: %s: a safetensors file has no vocabulary; pass --tokenizer FILE to load it back\n",
                o.out);
        bitnet_model_free(model);
        return 2;
    }
    int rc = 1, n_toks = 0, n_texts = 0, n_windows = 0, wrote = 0;
    bitnet_token *toks = NULL;
    char *eval_text = NULL;
    bitnet_context *ctx = NULL;
    block_scores s;
    model_stats before, after;
    memset(&after, 0, sizeof after);
    int ok = scores_alloc(&s, n_layers, o.n_ctx, info.n_embd);
    wp.drop = s.removed;
    if (!ok) fprintf(stderr, "prune: out of memory\n");
    if (ok && (same_file(o.m.model, o.out) || same_file(o.m.model, o.report) || same_file(o.out, o.report))) {
        fprintf(stderr, "prune: %s would overwrite %s; the input, -o and --report must be three different files\n",
                same_file(o.m.model, o.out) || same_file(o.m.model, o.report) ? o.m.model : o.out,
                same_file(o.m.model, o.out) ? "the input with -o" : same_file(o.m.model, o.report) ? "the input with --report" : "-o with --report");
        ok = 0;
        rc = 2;
    }
    ok = ok && check_writable(o.out) && (!o.report || check_writable(o.report));
    if (ok && bn_read_calibration(model, o.calib, &toks, &n_toks, &n_texts) != BITNET_OK) {
        fprintf(stderr, "prune: %s\n", bitnet_last_error());
        ok = 0;
    }
    if (ok && (n_windows = bn_ppl_n_windows(n_toks, o.n_ctx, o.calib_windows)) < 1) {
        fprintf(stderr, "prune: %s has %d tokens, fewer than one window of %d (-c %d needs %d text tokens)\n", o.calib,
                n_toks, o.n_ctx, o.n_ctx, o.n_ctx - 1);
        ok = 0;
    }
    ok = ok && (!o.eval || check_eval(model, &o, &eval_text));
    if (ok) {
        bitnet_context_params cp = bitnet_context_default_params();
        cp.n_ctx = cp.n_batch = o.n_ctx;
        cp.n_threads = o.m.n_threads;
        cp.kv_type = o.m.kv.type;
        if (bitnet_context_new(model, &cp, &ctx) != BITNET_OK) {
            fprintf(stderr, "prune: %s\n", bitnet_last_error());
            ok = 0;
        }
    }
    ok = ok && score_blocks(ctx, &o, toks, n_windows, &s);
    bitnet_context_free(ctx);

    /* the latency prompt: BOS + the first calibration tokens (any text would do) */
    bitnet_token prompt[BENCH_PROMPT];
    prompt[0] = bitnet_token_bos(model);
    for (int i = 1; i < BENCH_PROMPT; i++) prompt[i] = n_toks > 0 ? toks[(i - 1) % n_toks] : prompt[0];

    ok = ok && measure(model, &o, o.m.model, eval_text, prompt, &before);
    /* The model goes to a temporary beside -o, is loaded back and measured
     * from there, the report is written, and only then is it renamed over -o:
     * a failure at any step leaves -o as it was, and after the rename nothing
     * removes it. */
    bn_atomic_file out;
    if (ok && bn_atomic_reserve(&out, o.out) != BITNET_OK) {
        fprintf(stderr, "prune: %s\n", bitnet_last_error());
        ok = 0;
    } else if (ok) {
        wrote = 1;
    }
    if (ok && bn_model_write(model, &wp, out.tmp) != BITNET_OK) {
        fprintf(stderr, "prune: %s\n", bitnet_last_error());
        ok = 0;
    }
    /* A GGUF output is loaded back without --tokenizer: it must carry its
     * vocabulary. A safetensors file has none (docs/formats.md): it is loaded
     * with --tokenizer, or with the input GGUF's vocabulary. */
    bitnet_model_params pp = bitnet_model_default_params();
    if (wp.safetensors) pp.tokenizer_path = reload_tokenizer;
    if (ok && bitnet_model_load(out.tmp, &pp, &pruned) != BITNET_OK) {
        fprintf(stderr, "prune: %s: the written model does not load: %s\n", o.out, bitnet_last_error());
        ok = 0;
    }
    ok = ok && measure(pruned, &o, out.tmp, eval_text, prompt, &after);
    if (ok) print_table(&o, &s, &before, &after, n_texts, n_toks, n_windows);
    ok = ok && (!o.report || write_report(&o, &s, &before, &after, n_texts, n_toks, n_windows));
    if (wrote && !ok) bn_atomic_abort(&out); /* -o untouched */
    if (wrote && ok && bn_atomic_publish(&out) != BITNET_OK) {
        fprintf(stderr, "prune: %s\n", bitnet_last_error());
        ok = 0;
    }
    if (ok) {
        fprintf(stderr, "prune: wrote %s (%d of %d blocks)\n", o.out, o.target, n_layers);
        rc = 0;
    }
    bitnet_model_free(pruned);
    bitnet_model_free(model);
    scores_free(&s);
    free(toks);
    free(eval_text);
    return rc;
}
