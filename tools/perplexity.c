/* perplexity - perplexity of a model over a text file, like llama.cpp's tool.
 *
 *   build/perplexity -m MODEL -f TEXT [-c 512] [-t 1] [--tokenizer FILE] [--max-chunks N]
 *
 * The whole file is tokenized once (no BOS), then cut into NON-overlapping
 * windows: each window is [BOS] + (CTX-1) text tokens and is evaluated in one
 * bitnet_eval_all_logits call from position 0. As in llama.cpp, only the second
 * half of each window is scored: the logits at positions CTX/2 .. CTX-2 predict
 * the tokens at CTX/2+1 .. CTX-1 (CTX - CTX/2 - 1 tokens per window); the first
 * half is context. Log-probabilities use log-sum-exp in double.
 *
 * stderr: one running-perplexity line per window. stdout: the final line
 *   PPL = X +/- Y over N tokens
 * where Y is llama.cpp's standard-error estimate: with the per-token negative
 * log-likelihoods' mean m and variance v, PPL = exp(m), Y = PPL * sqrt(v/(N-1)).
 *
 * KL divergence, as llama-perplexity, in its file format: --kl-divergence-base
 * FILE writes the reference model's log-probabilities of every scored token
 * (e.g. of the f32 or f16 model); --kl-divergence-base FILE --kl-divergence
 * (no -f needed: the file holds the tokens) evaluates the same windows with
 * this model and compares: mean KL(base || this), its percentiles, how often
 * the top token is the same. The format is llama-perplexity's (as its
 * perplexity.cpp writes and reads it):
 *   "_logits_", int32 n_ctx, int32 n_vocab, int32 n_chunk,
 *   int32 tokens[n_chunk * n_ctx]    (each chunk is evaluated with its first
 *                                     token replaced by BOS),
 *   then per chunk, per scored position (CTX/2 .. CTX-2), nv = 2*((n_vocab+1)/2)+4
 *   uint16: float scale, float min_log_prob, then q[v] with
 *   log p[v] = scale * q[v] + min_log_prob (log-probabilities more than 16
 *   below the top one are clamped to q = 0), all little-endian. */
#include <errno.h>
#include <math.h>
#include <sys/stat.h>

#include "bitnet.h"
#include "model/perplexity.h"
#define TOOL_NAME "perplexity"
#include "util.h"

typedef struct {
    model_options m; /* -m, --tokenizer, -t, --kv-type / -ctk / -ctv */
    const char *text;
    int n_ctx, n_batch, max_chunks, ctx_given, quiet;
    const char *kld_base; /* --kl-divergence-base FILE */
    int kld;              /* --kl-divergence: compare with kld_base instead of writing it */
} options;

/* ---- KL divergence (--kl-divergence-base, --kl-divergence) ---- */

typedef struct {
    FILE *f;
    int writing, n_vocab, nv;
    uint16_t *row;     /* one position's quantised log-probabilities */
    double *kl;        /* [n_scored] per-token KL(base || this), when comparing */
    long n, same_top;
    double base_nll;   /* the base model's NLL of the same tokens (its PPL) */
} kld_state;

static int kld_alloc(kld_state *k, int n_vocab, long n_scored) {
    k->n_vocab = n_vocab;
    k->nv = 2 * ((n_vocab + 1) / 2) + 4;
    k->row = calloc((size_t)k->nv, sizeof *k->row);
    k->kl = k->writing ? NULL : malloc((size_t)(n_scored > 0 ? n_scored : 1) * sizeof *k->kl);
    if (!k->row || (!k->writing && !k->kl)) {
        fprintf(stderr, "perplexity: out of memory for the KL divergence\n");
        return 0;
    }
    return 1;
}

static uint64_t kld_file_bytes(int n_ctx, int n_vocab, int n_chunk) {
    const uint64_t nv = 2 * (((uint64_t)n_vocab + 1) / 2) + 4;
    return 8 + 12 + 4 * (uint64_t)n_chunk * n_ctx + (uint64_t)n_chunk * (n_ctx - 1 - n_ctx / 2) * nv * 2;
}

/* Creates FILE and writes the header and the chunks' tokens: chunk c is the
 * window perplexity evaluates, BOS + toks[c*(n_ctx-1) ..]. */
static int kld_create(kld_state *k, const char *path, int n_ctx, int n_vocab, int n_chunk, const bitnet_token *toks,
                      bitnet_token bos) {
    memset(k, 0, sizeof *k);
    k->writing = 1;
    if (!kld_alloc(k, n_vocab, 0)) return 0;
    if (!(k->f = fopen(path, "wb"))) {
        fprintf(stderr, "perplexity: cannot create %s: %s\n", path, strerror(errno));
        return 0;
    }
    const int32_t hdr[3] = {n_ctx, n_vocab, n_chunk};
    int ok = fwrite("_logits_", 1, 8, k->f) == 8 && fwrite(hdr, 4, 3, k->f) == 3;
    for (int c = 0; ok && c < n_chunk; c++) {
        const int32_t b = bos;
        ok = fwrite(&b, 4, 1, k->f) == 1 && fwrite(toks + (size_t)c * (n_ctx - 1), 4, (size_t)n_ctx - 1, k->f) ==
                                                 (size_t)n_ctx - 1;
    }
    if (!ok) fprintf(stderr, "perplexity: write error on %s: %s\n", path, strerror(errno));
    return ok;
}

/* Opens a base file for --kl-divergence: its n_ctx and chunk count, and the
 * token stream whose windows are its chunks (*toks, malloc'd: chunk c's
 * tokens 1..n_ctx-1 at c*(n_ctx-1)). */
static int kld_load(kld_state *k, const char *path, int n_vocab, int *n_ctx, int *n_chunk, bitnet_token **toks) {
    memset(k, 0, sizeof *k);
    *toks = NULL;
    if (!(k->f = fopen(path, "rb"))) {
        fprintf(stderr, "perplexity: cannot open %s: %s\n", path, strerror(errno));
        return 0;
    }
    char magic[8];
    int32_t hdr[3];
    if (fread(magic, 1, 8, k->f) != 8 || memcmp(magic, "_logits_", 8) || fread(hdr, 4, 3, k->f) != 3) {
        fprintf(stderr, "perplexity: %s is not a --kl-divergence-base file (no \"_logits_\" header)\n", path);
        return 0;
    }
    if (hdr[0] < 4 || hdr[0] > (1 << 20) || hdr[2] < 1 || hdr[2] > (1 << 24) || hdr[1] != n_vocab) {
        fprintf(stderr, "perplexity: %s: n_ctx %d, n_vocab %d, %d chunks; this model has %d tokens of vocabulary\n", path,
                hdr[0], hdr[1], hdr[2], n_vocab);
        return 0;
    }
    struct stat sb;
    const uint64_t want = kld_file_bytes(hdr[0], hdr[1], hdr[2]);
    if (fstat(fileno(k->f), &sb) != 0 || (uint64_t)sb.st_size != want) {
        fprintf(stderr, "perplexity: %s ends early or runs on: %llu bytes, %llu expected for n_ctx %d, %d chunks\n", path,
                (unsigned long long)sb.st_size, (unsigned long long)want, hdr[0], hdr[2]);
        return 0;
    }
    const int per = hdr[0] - 1;
    int32_t *chunk = malloc((size_t)hdr[0] * 4);
    *toks = malloc((size_t)hdr[2] * per * sizeof **toks);
    int ok = chunk && *toks;
    for (int c = 0; ok && c < hdr[2]; c++) {
        ok = fread(chunk, 4, (size_t)hdr[0], k->f) == (size_t)hdr[0];
        for (int i = 0; ok && i < per; i++) {
            if (chunk[i + 1] < 0 || chunk[i + 1] >= n_vocab) {
                fprintf(stderr, "perplexity: %s: token %d of chunk %d is outside the vocabulary\n", path, i + 1, c);
                ok = -1;
                break;
            }
            (*toks)[(size_t)c * per + i] = chunk[i + 1];
        }
    }
    free(chunk);
    if (ok == 0) fprintf(stderr, "perplexity: cannot read %s\n", path);
    if (ok <= 0) return 0;
    *n_ctx = hdr[0];
    *n_chunk = hdr[2];
    return kld_alloc(k, n_vocab, (long)hdr[2] * (hdr[0] - hdr[0] / 2 - 1));
}

/* One window's scored positions: written as llama-perplexity quantises them,
 * or compared with the base's (the KL divergence as llama-perplexity sums it). */
static int kld_window(kld_state *k, const float *logits, const bitnet_token *win, int n_ctx) {
    const int n_vocab = k->n_vocab;
    for (int j = n_ctx / 2; j < n_ctx - 1; j++) {
        const float *l = logits + (size_t)j * n_vocab;
        float mx = l[0], mn = l[0];
        int top = 0;
        for (int v = 1; v < n_vocab; v++) {
            if (l[v] > mx) mx = l[v], top = v;
            if (l[v] < mn) mn = l[v];
        }
        double sum = 0;
        for (int v = 0; v < n_vocab; v++) sum += exp((double)l[v] - mx);
        const double lse = log(sum);
        if (k->writing) {
            mn = fmaxf(mn, mx - 16);
            const float min_log_prob = (float)(mn - mx - lse), scale = (mx - mn) / 65535.f;
            memcpy(k->row, &scale, 4);
            memcpy(k->row + 2, &min_log_prob, 4);
            for (int v = 0; v < n_vocab; v++)
                k->row[4 + v] = scale > 0 && l[v] > mn ? (uint16_t)lrintf((l[v] - mn) / scale) : 0;
            if (fwrite(k->row, 2, (size_t)k->nv, k->f) != (size_t)k->nv) {
                fprintf(stderr, "perplexity: write error on the KL base file: %s\n", strerror(errno));
                return 0;
            }
            continue;
        }
        if (fread(k->row, 2, (size_t)k->nv, k->f) != (size_t)k->nv) {
            fprintf(stderr, "perplexity: the KL base file ends early\n");
            return 0;
        }
        float scale, min_log_prob;
        memcpy(&scale, k->row, 4);
        memcpy(&min_log_prob, k->row + 2, 4);
        const uint16_t *q = k->row + 4;
        double kl = 0;
        int btop = 0;
        float bmax = 0;
        for (int v = 0; v < n_vocab; v++) {
            const float lb = scale * q[v] + min_log_prob;
            if (v == 0 || lb > bmax) bmax = lb, btop = v;
            if (lb > -16.f) kl += exp((double)lb) * ((double)lb - ((double)l[v] - mx - lse));
        }
        k->kl[k->n++] = kl;
        k->same_top += btop == top;
        k->base_nll -= (double)(scale * q[win[j + 1]] + min_log_prob);
    }
    return 1;
}

static int cmp_dbl(const void *a, const void *b) {
    const double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* llama-perplexity's summary of the comparison. */
static void kld_report(kld_state *k, double ppl) {
    if (k->writing || k->n == 0) return;
    double sum = 0, sum2 = 0;
    for (long i = 0; i < k->n; i++) sum += k->kl[i], sum2 += k->kl[i] * k->kl[i];
    const double mean = sum / k->n, var = k->n > 1 ? (sum2 / k->n - mean * mean) * k->n / (k->n - 1) : 0;
    qsort(k->kl, (size_t)k->n, sizeof *k->kl, cmp_dbl);
    const double p_same = (double)k->same_top / k->n;
    printf("PPL(base) = %.4f, PPL(this) = %.4f\n", exp(k->base_nll / k->n), ppl);
    printf("Mean KLD: %.6f +/- %.6f\n", mean, sqrt(var / k->n));
    printf("Maximum KLD: %.6f\n99.9%%   KLD: %.6f\n99.0%%   KLD: %.6f\nMedian  KLD: %.6f\n", k->kl[k->n - 1],
           k->kl[(long)(0.999 * (k->n - 1))], k->kl[(long)(0.99 * (k->n - 1))], k->kl[(k->n - 1) / 2]);
    printf("Same top token: %.3f%% +/- %.3f%% over %ld tokens\n", 100 * p_same,
           100 * sqrt(p_same * (1 - p_same) / k->n), k->n);
}

static void kld_close(kld_state *k) {
    if (k->f) fclose(k->f);
    free(k->kl);
    free(k->row);
}

static void usage(FILE *out) {
    fprintf(out,
            "usage: perplexity -m MODEL -f TEXT [options]\n"
            "Perplexity over TEXT in non-overlapping windows of CTX tokens, each [BOS] + CTX-1\n"
            "text tokens. Only the second half of each window is scored (the logits at\n"
            "positions CTX/2..CTX-2, i.e. CTX-CTX/2-1 tokens per window), as llama.cpp's\n"
            "perplexity does; the first half is context.\n\n"
            "  -m, --model FILE      GGUF or ak42 model (required)\n"
            "  -f, --file FILE       text file (required, but with --kl-divergence)\n"
            "  -c, --ctx-size N      window size in tokens, >= 4 (default 512, as llama.cpp's)\n"
            "  -b, --batch-size N    tokens per forward batch (default: CTX)\n"
            "      --max-chunks N    evaluate at most N windows (default: all; also --chunks)\n"
            "  -q, --quiet           no progress line on stderr (else: percent done, ETA)\n"
            MODEL_OPTIONS_HELP
            "      --kl-divergence-base FILE  write the tokens and every scored token's log-probabilities\n"
            "                        to FILE, in llama-perplexity's format (n_vocab * 2 bytes a token)\n"
            "      --kl-divergence   with --kl-divergence-base FILE (ours or llama-perplexity's; no -f):\n"
            "                        evaluate its windows with this model and compare: mean KL\n"
            "                        divergence, its percentiles, the share of the same top token\n"
            "  -h, --help            this help\n\n"
            "Prints the progress with the running perplexity to stderr (redrawn on a terminal,\n"
            "a line every 10 s otherwise) and, on stdout,\n"
            "  PPL = X +/- Y over N tokens\n"
            "(Y: standard error of the estimate, as llama.cpp computes it).\n");
}

static int parse_args(int argc, char **argv, options *o) {
    *o = (options){.m = MODEL_OPTIONS_DEFAULT, .n_ctx = 512}; /* llama-perplexity's default, so numbers compare */
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--kl-divergence")) { /* the flags without a value */
            o->kld = 1;
            continue;
        }
        if (!strcmp(argv[i], "-q") || !strcmp(argv[i], "--quiet")) {
            o->quiet = 1;
            continue;
        }
        const char *a = argv[i], *v = option_value(argc, argv, &i, usage);
        if (!v) return 0;
        int ok = 1;
        if (!strcmp(a, "-f") || !strcmp(a, "--file")) o->text = v;
        else if (!strcmp(a, "-c") || !strcmp(a, "--ctx-size")) ok = (o->ctx_given = 1) && parse_int(a, v, 4, 1 << 20, &o->n_ctx);
        else if (!strcmp(a, "-b") || !strcmp(a, "--batch-size")) ok = parse_int(a, v, 1, 1 << 20, &o->n_batch);
        else if (!strcmp(a, "--max-chunks") || !strcmp(a, "--chunks")) ok = parse_int(a, v, 1, 1 << 30, &o->max_chunks);
        else if (!strcmp(a, "--kl-divergence-base")) o->kld_base = v;
        else ok = model_option(a, v, &o->m); /* -m, -t, ..., or an unknown option */
        if (!ok) return 0;
    }
    if (!o->m.model || (!o->text && !o->kld)) {
        fprintf(stderr, "perplexity: -m MODEL and -f TEXT are required (see --help)\n");
        return 0;
    }
    if (o->kld && !o->kld_base) {
        fprintf(stderr, "perplexity: --kl-divergence compares with --kl-divergence-base FILE (written by a run without it)\n");
        return 0;
    }
    if (o->n_batch <= 0 || o->n_batch > o->n_ctx) o->n_batch = o->n_ctx;
    return 1;
}

/* kld: a base file opened for comparing (main), or zeroed (created here when
 * --kl-divergence-base asks to write one). */
static int run(const options *o, bitnet_model *model, const bitnet_token *toks, int n_toks, kld_state *kld_in) {
    const int n_ctx = o->n_ctx, per = n_ctx - 1, n_vocab = bitnet_n_vocab(model);
    int n_chunks = bn_ppl_n_windows(n_toks, n_ctx, o->max_chunks);
    if (n_chunks < 1) {
        fprintf(stderr, "perplexity: %s has %d tokens, fewer than one window of %d (-c %d needs %d text tokens)\n",
                o->text, n_toks, n_ctx, n_ctx, per);
        return 1;
    }
    kld_state kld = *kld_in; /* before any other output: a wrong base file is one line */
    if (o->kld_base && !o->kld &&
        !kld_create(&kld, o->kld_base, n_ctx, n_vocab, n_chunks, toks, bitnet_token_bos(model))) {
        kld_close(&kld);
        return 1;
    }
    bitnet_context_params cp = bitnet_context_default_params();
    cp.n_ctx = n_ctx;
    cp.n_batch = o->n_batch;
    cp.n_threads = o->m.n_threads;
    cp.kv_type = o->m.kv.type;
    bitnet_context *ctx = NULL;
    if (bitnet_context_new(model, &cp, &ctx) != BITNET_OK) {
        fprintf(stderr, "perplexity: %s\n", bitnet_last_error());
        kld_close(&kld);
        return 1;
    }
    float *logits = malloc((size_t)n_ctx * n_vocab * sizeof(float));
    bitnet_token *win = malloc((size_t)n_ctx * sizeof *win);
    if (!logits || !win) {
        fprintf(stderr, "perplexity: out of memory for %d x %d logits\n", n_ctx, n_vocab);
        free(logits); free(win); bitnet_context_free(ctx);
        kld_close(&kld);
        return 1;
    }
    if (!o->quiet)
        fprintf(stderr, "perplexity: %d tokens, %d windows of %d (BOS + %d text tokens), scoring %d tokens each\n",
                n_toks, n_chunks, n_ctx, per, n_ctx - n_ctx / 2 - 1);
    bn_nll_acc acc = {0, 0, 0};
    progress pr;
    progress_start(&pr, "windows", o->quiet);
    int rc = 0;
    for (int c = 0; c < n_chunks && rc == 0; c++) {
        if (bn_ppl_window(ctx, toks, c, n_ctx, win, logits, &acc) != BITNET_OK) {
            fprintf(stderr, "perplexity: %s\n", bitnet_last_error());
            rc = 1;
            break;
        }
        if (o->kld_base && !kld_window(&kld, logits, win, n_ctx)) {
            rc = 1;
            break;
        }
        double ppl, err;
        char detail[96];
        bn_nll_acc_ppl(&acc, &ppl, &err);
        snprintf(detail, sizeof detail, "[%d/%d] ppl %.4f +/- %.4f ", c + 1, n_chunks, ppl, err);
        progress_update(&pr, c + 1, n_chunks, detail);
    }
    progress_end(&pr);
    if (rc == 0) {
        double ppl, err;
        bn_nll_acc_ppl(&acc, &ppl, &err);
        printf("PPL = %.4f +/- %.4f over %ld tokens\n", ppl, err, acc.count);
        kld_report(&kld, ppl);
    }
    if (kld.f && kld.writing && fflush(kld.f) != 0) {
        fprintf(stderr, "perplexity: write error on %s: %s\n", o->kld_base, strerror(errno));
        rc = 1;
    }
    kld_close(&kld);
    free(logits); free(win);
    bitnet_context_free(ctx);
    return rc;
}

int main(int argc, char **argv) {
    handle_version(argc, argv);
    options o;
    if (!parse_args(argc, argv, &o)) return 2;
    char *text = NULL;
    if (o.text && !o.kld && bn_read_text_file(o.text, &text) != BITNET_OK) {
        fprintf(stderr, "perplexity: %s\n", bitnet_last_error());
        return 1;
    }
    bitnet_model *model = load_model(o.m.model, o.m.tokenizer, NULL);
    if (!model) {
        free(text);
        return 1;
    }
    bitnet_token *toks = NULL;
    kld_state kld = {0};
    int n_toks = -1, rc = 1;
    if (o.kld) { /* the windows come from the base file, as llama-perplexity --kl-divergence */
        int n_ctx = 0, n_chunk = 0;
        if (kld_load(&kld, o.kld_base, bitnet_n_vocab(model), &n_ctx, &n_chunk, &toks)) {
            if (o.ctx_given && o.n_ctx != n_ctx)
                fprintf(stderr, "perplexity: %s was written with -c %d, not %d (-c can be left out)\n", o.kld_base, n_ctx,
                        o.n_ctx);
            else {
                o.n_ctx = n_ctx;
                if (o.n_batch <= 0 || o.n_batch > n_ctx) o.n_batch = n_ctx;
                n_toks = n_chunk * (n_ctx - 1);
            }
        }
    } else {
        n_toks = bn_tokenize_alloc(model, text, &toks);
        if (n_toks < 0) fprintf(stderr, "perplexity: cannot tokenize %s: %s\n", o.text, bitnet_last_error());
    }
    if (n_toks >= 0) rc = run(&o, model, toks, n_toks, &kld);
    else kld_close(&kld);
    free(toks);
    free(text);
    bitnet_model_free(model);
    return rc;
}
