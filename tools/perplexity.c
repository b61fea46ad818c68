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
 * KL divergence, as llama-perplexity's flags: --kl-divergence-base FILE writes
 * the log-probabilities of every scored token (of the reference model, e.g.
 * f32 or f16); --kl-divergence-base FILE --kl-divergence reads them back and
 * compares this model's with them token by token: mean KL(base || this), its
 * percentiles, and how often the top token is the same. The file: the 8
 * bytes "BNKLD001", then uint32 n_vocab, n_ctx, n_windows, uint32 0, uint64
 * FNV-1a hash of the scored text tokens, then n_vocab float32 log-softmax
 * values per scored token, in order (n_vocab * 4 bytes a token: 2 KB for a
 * 512-token vocabulary, 0.5 MB for 128256). */
#include <errno.h>
#include <math.h>
#include <sys/stat.h>

#include "bitnet.h"
#include "model/perplexity.h"
#define TOOL_NAME "perplexity"
#include "util.h"

typedef struct {
    const char *model, *text, *tokenizer;
    int n_ctx, n_threads, n_batch, max_chunks;
    kv_flags kv; /* --kv-type, -ctk, -ctv */
    const char *kld_base; /* --kl-divergence-base FILE */
    int kld;              /* --kl-divergence: compare with kld_base instead of writing it */
} options;

/* ---- KL divergence (--kl-divergence-base, --kl-divergence) ---- */

typedef struct {
    FILE *f;
    int writing;
    double *kl;        /* [n_scored] per-token KL(base || this), when comparing */
    long n, same_top;
    double base_nll;   /* the base model's NLL of the same tokens (its PPL) */
    float *base;       /* [n_vocab] one token's base log-probs */
    double *cur;       /* [n_vocab] this model's */
} kld_state;

static uint64_t fnv1a(const bitnet_token *t, size_t n) {
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++)
        for (int b = 0; b < 4; b++) h = (h ^ (((uint32_t)t[i] >> (8 * b)) & 0xff)) * 1099511628211ull;
    return h;
}

/* Opens the file for writing or reading (checking that it was written for
 * the same vocabulary, window size, window count and text). */
static int kld_open(kld_state *k, const options *o, int n_vocab, int n_windows, const bitnet_token *toks) {
    memset(k, 0, sizeof *k);
    k->writing = !o->kld;
    const int per = o->n_ctx - 1;
    const uint64_t hash = fnv1a(toks, (size_t)n_windows * per);
    uint32_t hdr[4] = {(uint32_t)n_vocab, (uint32_t)o->n_ctx, (uint32_t)n_windows, 0};
    k->base = malloc((size_t)n_vocab * sizeof *k->base);
    k->cur = malloc((size_t)n_vocab * sizeof *k->cur);
    k->kl = k->writing ? NULL : malloc((size_t)n_windows * (o->n_ctx - o->n_ctx / 2 - 1) * sizeof *k->kl);
    if (!k->base || !k->cur || (!k->writing && !k->kl)) {
        fprintf(stderr, "perplexity: out of memory for the KL divergence\n");
        return 0;
    }
    if (!(k->f = fopen(o->kld_base, k->writing ? "wb" : "rb"))) {
        fprintf(stderr, "perplexity: cannot %s %s: %s\n", k->writing ? "create" : "open", o->kld_base, strerror(errno));
        return 0;
    }
    if (k->writing)
        return fwrite("BNKLD001", 1, 8, k->f) == 8 && fwrite(hdr, 4, 4, k->f) == 4 && fwrite(&hash, 8, 1, k->f) == 1;
    char magic[8];
    uint32_t got[4];
    uint64_t got_hash;
    if (fread(magic, 1, 8, k->f) != 8 || memcmp(magic, "BNKLD001", 8) || fread(got, 4, 4, k->f) != 4 ||
        fread(&got_hash, 8, 1, k->f) != 1) {
        fprintf(stderr, "perplexity: %s is not a --kl-divergence-base file of this tool\n", o->kld_base);
        return 0;
    }
    struct stat sb;
    const uint64_t want = 32 + (uint64_t)n_windows * (o->n_ctx - o->n_ctx / 2 - 1) * n_vocab * sizeof(float);
    if (got[0] == hdr[0] && got[1] == hdr[1] && got[2] == hdr[2] && got_hash == hash &&
        (fstat(fileno(k->f), &sb) != 0 || (uint64_t)sb.st_size != want)) {
        fprintf(stderr, "perplexity: %s ends early or runs on: %llu bytes, %llu expected\n", o->kld_base,
                (unsigned long long)sb.st_size, (unsigned long long)want);
        return 0;
    }
    if (got[0] != hdr[0] || got[1] != hdr[1] || got[2] != hdr[2] || got_hash != hash) {
        fprintf(stderr, "perplexity: %s was written for %u tokens of vocabulary, -c %u, %u windows%s; this run has %u, "
                        "-c %u, %u windows (same -c, --chunks and text needed)\n",
                o->kld_base, got[0], got[1], got[2],
                got_hash != hash && got[0] == hdr[0] && got[1] == hdr[1] && got[2] == hdr[2] ? " of another text" : "",
                hdr[0], hdr[1], hdr[2]);
        return 0;
    }
    return 1;
}

/* One window's scored tokens: written, or compared with the base. */
static int kld_window(kld_state *k, const float *logits, const bitnet_token *win, int n_ctx, int n_vocab) {
    for (int j = n_ctx / 2; j < n_ctx - 1; j++) {
        const float *l = logits + (size_t)j * n_vocab;
        double mx = l[0], sum = 0;
        int top = 0;
        for (int v = 1; v < n_vocab; v++)
            if (l[v] > mx) mx = l[v], top = v;
        for (int v = 0; v < n_vocab; v++) sum += exp((double)l[v] - mx);
        const double lse = mx + log(sum);
        for (int v = 0; v < n_vocab; v++) k->cur[v] = (double)l[v] - lse;
        if (k->writing) {
            for (int v = 0; v < n_vocab; v++) k->base[v] = (float)k->cur[v];
            if (fwrite(k->base, sizeof(float), (size_t)n_vocab, k->f) != (size_t)n_vocab) {
                fprintf(stderr, "perplexity: write error on the KL base file: %s\n", strerror(errno));
                return 0;
            }
            continue;
        }
        if (fread(k->base, sizeof(float), (size_t)n_vocab, k->f) != (size_t)n_vocab) {
            fprintf(stderr, "perplexity: the KL base file ends early\n");
            return 0;
        }
        double kl = 0;
        int btop = 0;
        for (int v = 0; v < n_vocab; v++) {
            const double pb = exp((double)k->base[v]);
            if (pb > 0) kl += pb * ((double)k->base[v] - k->cur[v]);
            if (k->base[v] > k->base[btop]) btop = v;
        }
        k->kl[k->n++] = kl > 0 ? kl : 0; /* rounding can make an exact match -1e-17 */
        k->same_top += btop == top;
        k->base_nll -= k->base[win[j + 1]];
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
    free(k->base);
    free(k->cur);
}

static void usage(FILE *out) {
    fprintf(out,
            "usage: perplexity -m MODEL -f TEXT [options]\n"
            "Perplexity over TEXT in non-overlapping windows of CTX tokens, each [BOS] + CTX-1\n"
            "text tokens. Only the second half of each window is scored (the logits at\n"
            "positions CTX/2..CTX-2, i.e. CTX-CTX/2-1 tokens per window), as llama.cpp's\n"
            "perplexity does; the first half is context.\n\n"
            "  -m, --model FILE      GGUF or ak42 model (required)\n"
            "  -f, --file FILE       text file (required)\n"
            "  -c, --ctx-size N      window size in tokens, >= 4 (default 512, as llama.cpp's)\n"
            "  -b, --batch-size N    tokens per forward batch (default: CTX)\n"
            "  -t, --threads N       threads (default 1)\n"
            "      --tokenizer FILE  llama2.c tokenizer.bin for files without a vocabulary\n"
            "                        (safetensors: also a tokenizer.json or GGUF vocabulary)\n"
            "      --max-chunks N    evaluate at most N windows (default: all; also --chunks)\n"
            "      --kv-type T       KV cache type: f32, f16, q8, q4, q2 (default: per model,\n"
            "                        see docs/kv-cache.md); also -ctk/-ctv (q8_0 = q8, one type)\n"
            "      --kl-divergence-base FILE  write every scored token's log-probabilities to FILE\n"
            "                        (n_vocab * 4 bytes a token), as llama-perplexity\n"
            "      --kl-divergence   with --kl-divergence-base FILE: compare this model with the one\n"
            "                        that wrote FILE (same text, -c and --chunks): mean KL divergence,\n"
            "                        its percentiles, the share of tokens with the same top token\n"
            "  -h, --help            this help\n\n"
            "Prints the running perplexity per window to stderr and, on stdout,\n"
            "  PPL = X +/- Y over N tokens\n"
            "(Y: standard error of the estimate, as llama.cpp computes it).\n");
}

static int parse_args(int argc, char **argv, options *o) {
    memset(o, 0, sizeof *o);
    o->kv.type = BITNET_KV_DEFAULT;
    o->n_ctx = 512; /* llama-perplexity's default, so numbers compare */
    o->n_threads = 1;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--kl-divergence")) { /* the one flag without a value */
            o->kld = 1;
            continue;
        }
        const char *a = argv[i], *v = option_value(argc, argv, &i, usage);
        if (!v) return 0;
        int ok = 1;
        if (!strcmp(a, "-m") || !strcmp(a, "--model")) o->model = v;
        else if (!strcmp(a, "-f") || !strcmp(a, "--file")) o->text = v;
        else if (!strcmp(a, "--tokenizer")) o->tokenizer = v;
        else if (!strcmp(a, "-c") || !strcmp(a, "--ctx-size")) ok = parse_int(a, v, 4, 1 << 20, &o->n_ctx);
        else if (!strcmp(a, "-b") || !strcmp(a, "--batch-size")) ok = parse_int(a, v, 1, 1 << 20, &o->n_batch);
        else if (!strcmp(a, "-t") || !strcmp(a, "--threads")) ok = parse_int(a, v, 1, 256, &o->n_threads);
        else if (!strcmp(a, "--max-chunks") || !strcmp(a, "--chunks")) ok = parse_int(a, v, 1, 1 << 30, &o->max_chunks);
        else if (is_kv_flag(a)) ok = parse_kv_flag(a, v, &o->kv);
        else if (!strcmp(a, "--kl-divergence-base")) o->kld_base = v;
        else {
            fprintf(stderr, "perplexity: unknown option '%s' (see --help)\n", a);
            return 0;
        }
        if (!ok) return 0;
    }
    if (!o->model || !o->text) {
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

static int run(const options *o, bitnet_model *model, const bitnet_token *toks, int n_toks) {
    const int n_ctx = o->n_ctx, per = n_ctx - 1, n_vocab = bitnet_n_vocab(model);
    int n_chunks = bn_ppl_n_windows(n_toks, n_ctx, o->max_chunks);
    if (n_chunks < 1) {
        fprintf(stderr, "perplexity: %s has %d tokens, fewer than one window of %d (-c %d needs %d text tokens)\n",
                o->text, n_toks, n_ctx, n_ctx, per);
        return 1;
    }
    kld_state kld = {0}; /* before any other output: a wrong base file is one line */
    if (o->kld_base && !kld_open(&kld, o, n_vocab, n_chunks, toks)) {
        kld_close(&kld);
        return 1;
    }
    bitnet_context_params cp = bitnet_context_default_params();
    cp.n_ctx = n_ctx;
    cp.n_batch = o->n_batch;
    cp.n_threads = o->n_threads;
    cp.kv_type = o->kv.type;
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
    fprintf(stderr, "perplexity: %d tokens, %d windows of %d (BOS + %d text tokens), scoring %d tokens each\n",
            n_toks, n_chunks, n_ctx, per, n_ctx - n_ctx / 2 - 1);
    bn_nll_acc acc = {0, 0, 0};
    uint64_t t0 = now_ns();
    int rc = 0;
    for (int c = 0; c < n_chunks && rc == 0; c++) {
        if (bn_ppl_window(ctx, toks, c, n_ctx, win, logits, &acc) != BITNET_OK) {
            fprintf(stderr, "perplexity: %s\n", bitnet_last_error());
            rc = 1;
            break;
        }
        if (o->kld_base && !kld_window(&kld, logits, win, n_ctx, n_vocab)) {
            rc = 1;
            break;
        }
        double ppl, err;
        bn_nll_acc_ppl(&acc, &ppl, &err);
        fprintf(stderr, "[%d/%d] ppl %.4f +/- %.4f (%.1f s)\n", c + 1, n_chunks, ppl, err, (now_ns() - t0) / 1e9);
    }
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
    if (bn_read_text_file(o.text, &text) != BITNET_OK) {
        fprintf(stderr, "perplexity: %s\n", bitnet_last_error());
        return 1;
    }
    bitnet_model *model = load_model(o.model, o.tokenizer, NULL);
    if (!model) {
        free(text);
        return 1;
    }
    bitnet_token *toks = NULL;
    int n_toks = bn_tokenize_alloc(model, text, &toks);
    int rc = 1;
    if (n_toks < 0) fprintf(stderr, "perplexity: cannot tokenize %s: %s\n", o.text, bitnet_last_error());
    else rc = run(&o, model, toks, n_toks);
    free(toks);
    free(text);
    bitnet_model_free(model);
    return rc;
}
