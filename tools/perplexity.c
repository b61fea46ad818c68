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
 * log-likelihoods' mean m and variance v, PPL = exp(m), Y = PPL * sqrt(v/(N-1)). */
#include <errno.h>
#include <math.h>

#include "bitnet.h"
#include "model/perplexity.h"
#define TOOL_NAME "perplexity"
#include "util.h"

typedef struct {
    const char *model, *text, *tokenizer;
    int n_ctx, n_threads, n_batch, max_chunks;
    kv_flags kv; /* --kv-type, -ctk, -ctv */
} options;

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
    bitnet_context_params cp = bitnet_context_default_params();
    cp.n_ctx = n_ctx;
    cp.n_batch = o->n_batch;
    cp.n_threads = o->n_threads;
    cp.kv_type = o->kv.type;
    bitnet_context *ctx = NULL;
    if (bitnet_context_new(model, &cp, &ctx) != BITNET_OK) {
        fprintf(stderr, "perplexity: %s\n", bitnet_last_error());
        return 1;
    }
    float *logits = malloc((size_t)n_ctx * n_vocab * sizeof(float));
    bitnet_token *win = malloc((size_t)n_ctx * sizeof *win);
    if (!logits || !win) {
        fprintf(stderr, "perplexity: out of memory for %d x %d logits\n", n_ctx, n_vocab);
        free(logits); free(win); bitnet_context_free(ctx);
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
        double ppl, err;
        bn_nll_acc_ppl(&acc, &ppl, &err);
        fprintf(stderr, "[%d/%d] ppl %.4f +/- %.4f (%.1f s)\n", c + 1, n_chunks, ppl, err, (now_ns() - t0) / 1e9);
    }
    if (rc == 0) {
        double ppl, err;
        bn_nll_acc_ppl(&acc, &ppl, &err);
        printf("PPL = %.4f +/- %.4f over %ld tokens\n", ppl, err, acc.count);
    }
    free(logits); free(win);
    bitnet_context_free(ctx);
    return rc;
}

int main(int argc, char **argv) {
    options o;
    if (!parse_args(argc, argv, &o)) return 2;
    char *text = NULL;
    if (bn_read_text_file(o.text, &text) != BITNET_OK) {
        fprintf(stderr, "perplexity: %s\n", bitnet_last_error());
        return 1;
    }
    bitnet_model_params mp = bitnet_model_default_params();
    mp.tokenizer_path = o.tokenizer;
    bitnet_model *model = NULL;
    if (bitnet_model_load(o.model, &mp, &model) != BITNET_OK) {
        fprintf(stderr, "perplexity: %s\n", bitnet_last_error());
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
