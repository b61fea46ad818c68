/* spec_bench.c - build/bench --spec: what speculative decoding gains on this
 * machine and model (bench.h).
 *
 * 1. Verification cost: the time of one target pass over the pending token
 *    and K drafted ones (all logits kept), relative to a plain one-token step,
 *    for K = 1, 2, 4, 8, and the speedup that cost implies at acceptance rates
 *    0.5 / 0.7 / 0.9 (expected tokens per pass (1 - a^(K+1)) / (1 - a)). This
 *    needs no drafter: on random weights it is the only honest figure.
 * 2. With --lookup N or --draft MODEL: greedy generation of -n tokens from
 *    prompts cut from -f TEXT (its paragraphs' first 32 tokens), plainly and
 *    speculatively in turn; the two token sequences must be equal (exit 1
 *    otherwise); prints the acceptance rate and both speeds. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench.h"
#include "bitnet.h"

#define PROMPT_TOKENS 32

typedef struct {
    const char *model, *tokenizer, *draft, *text;
    int lookup, draft_max, n_gen, n_prompts, n_threads, reps;
} spec_opts;

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static void usage(FILE *out) {
    fprintf(out, "usage: bench --spec [-m MODEL] [--tokenizer F] [-t N] [-r N]\n"
                 "                    [--lookup N | --draft MODEL] [--draft-max N] -f TEXT [-n N] [--prompts N]\n"
                 "Verification cost of K drafted tokens (K = 1, 2, 4, 8) against one decode step and the\n"
                 "speedup it implies; with a drafter, greedy generation of -n tokens (default 128) from\n"
                 "--prompts N (default 8) prompts (the first 32 tokens of lines of TEXT), plain and speculative: equal tokens,\n"
                 "acceptance rate, tokens/s of both.\n");
}

static int parse(int argc, char **argv, spec_opts *o) {
    *o = (spec_opts){.draft_max = 8, .n_gen = 128, .n_prompts = 8, .n_threads = 1, .reps = 5};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--spec")) continue;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            return 0;
        }
        if (i + 1 >= argc) {
            fprintf(stderr, "bench --spec: option %s needs a value\n", a);
            return -1;
        }
        const char *v = argv[++i];
        char *end = NULL;
        const long n = strtol(v, &end, 10);
        const int is_num = end != v && *end == 0 && n >= 0 && n <= 1 << 20;
        if (!strcmp(a, "-m") || !strcmp(a, "--model")) o->model = v;
        else if (!strcmp(a, "--tokenizer")) o->tokenizer = v;
        else if (!strcmp(a, "--draft") || !strcmp(a, "-md")) o->draft = v;
        else if (!strcmp(a, "-f") || !strcmp(a, "--file")) o->text = v;
        else if (is_num && !strcmp(a, "--lookup") && n >= 1 && n <= 64) o->lookup = (int)n;
        else if (is_num && !strcmp(a, "--draft-max") && n >= 1 && n <= 256) o->draft_max = (int)n;
        else if (is_num && !strcmp(a, "-n") && n >= 1) o->n_gen = (int)n;
        else if (is_num && !strcmp(a, "--prompts") && n >= 1) o->n_prompts = (int)n;
        else if (is_num && (!strcmp(a, "-t") || !strcmp(a, "--threads")) && n >= 1 && n <= 256) o->n_threads = (int)n;
        else if (is_num && (!strcmp(a, "-r") || !strcmp(a, "--repetitions")) && n >= 1) o->reps = (int)n;
        else {
            fprintf(stderr, "bench --spec: bad option or value: %s %s (see --spec --help)\n", a, v);
            return -1;
        }
    }
    if ((o->lookup || o->draft) && !o->text) {
        fprintf(stderr, "bench --spec: --lookup/--draft need -f TEXT for the prompts\n");
        return -1;
    }
    if (o->lookup && o->draft) {
        fprintf(stderr, "bench --spec: give --lookup or --draft, not both\n");
        return -1;
    }
    return 1;
}

static bitnet_context *new_ctx(bitnet_model *m, int n_ctx, int n_threads) {
    bitnet_context_params cp = bitnet_context_default_params();
    cp.n_ctx = n_ctx;
    cp.n_batch = n_ctx < 512 ? n_ctx : 512;
    cp.n_threads = n_threads;
    bitnet_context *ctx = NULL;
    if (bitnet_context_new(m, &cp, &ctx) != BITNET_OK) fprintf(stderr, "bench --spec: %s\n", bitnet_last_error());
    return ctx;
}

/* Part 1: seconds of one pass over 1 + K tokens at position 64, best of reps. */
static int verification_cost(bitnet_model *m, const spec_opts *o) {
    static const int ks[] = {0, 1, 2, 4, 8};
    enum { NK = 5, POS = 64 };
    const int nv = bitnet_n_vocab(m);
    bitnet_context *ctx = new_ctx(m, POS + 16, o->n_threads);
    float *rows = malloc((size_t)9 * nv * sizeof(float));
    bitnet_token toks[POS + 9];
    for (int i = 0; i < POS + 9; i++) toks[i] = (bitnet_token)((i * 7919 + 13) % nv);
    int ok = ctx && rows && bitnet_eval(ctx, toks, POS, 0) == BITNET_OK;
    double best[NK];
    for (int k = 0; ok && k < NK; k++) {
        best[k] = INFINITY;
        for (int r = 0; ok && r < o->reps + 1; r++) { /* the first is a warm-up */
            const double t0 = now_s();
            ok = bitnet_eval_all_logits(ctx, toks + POS, 1 + ks[k], POS, rows) == BITNET_OK;
            const double dt = now_s() - t0;
            if (r > 0 && dt < best[k]) best[k] = dt;
        }
    }
    if (ok) {
        printf("## Verification cost (%d thread%s, best of %d)\n\n", o->n_threads, o->n_threads > 1 ? "s" : "", o->reps);
        printf("| drafted K | pass ms | cost vs 1 token | speedup at a=0.5 | a=0.7 | a=0.9 |\n|---:|---:|---:|---:|---:|---:|\n");
        for (int k = 0; k < NK; k++) {
            const double c = best[k] / best[0];
            printf("| %d | %.3f | %.2f |", ks[k], best[k] * 1e3, c);
            for (int a = 0; a < 3; a++) {
                const double al = a == 0 ? 0.5 : a == 1 ? 0.7 : 0.9;
                printf(" %.2fx |", (1.0 - pow(al, ks[k] + 1)) / (1.0 - al) / c);
            }
            printf("\n");
        }
        printf("\n");
    } else {
        fprintf(stderr, "bench --spec: %s\n", ctx && rows ? bitnet_last_error() : "out of memory");
    }
    free(rows);
    bitnet_context_free(ctx);
    return ok;
}

/* Greedy generation of n tokens after prompt (evaluated here), plainly
 * (d == NULL) or speculatively; stops early at an end-of-generation token.
 * Returns the count, or -1; *secs = the generation time (prompt excluded). */
static int generate(bitnet_model *m, bitnet_context *ctx, bitnet_draft *d, const bitnet_token *prompt, int np, int n,
                    bitnet_token *out, double *secs) {
    bitnet_sampler_params sp = bitnet_sampler_default_params();
    sp.temp = 0.0f;
    bitnet_sampler *smp = NULL;
    bitnet_sampler_new(&sp, bitnet_n_vocab(m), &smp);
    bitnet_token *hist = malloc((size_t)(np + n + 1) * sizeof *hist), q[257];
    int got = -1;
    if (!smp || !hist || bitnet_eval(ctx, prompt, np, 0) != BITNET_OK) goto done;
    memcpy(hist, prompt, (size_t)np * sizeof *hist);
    const double t0 = now_s();
    got = 0;
    bitnet_token t = bitnet_sampler_sample(smp, bitnet_get_logits(ctx));
    bitnet_sampler_accept(smp, t);
    for (;;) {
        if (bitnet_token_is_eog(m, t)) break;
        out[got] = hist[np + got] = t;
        if (++got == n) break;
        if (!d) {
            if (bitnet_eval(ctx, &t, 1, np + got - 1) != BITNET_OK) { got = -1; break; }
            t = bitnet_sampler_sample(smp, bitnet_get_logits(ctx));
            bitnet_sampler_accept(smp, t);
            continue;
        }
        const int room = n - got < 257 ? n - got : 257;
        const int k = bitnet_spec_step(ctx, d, smp, NULL, hist, np + got, q, room);
        if (k < 1) { got = -1; break; }
        int stop = 0; /* q[0..k-2] are evaluated; q[k-1] is the next pending token */
        for (int i = 0; i < k - 1 && !stop; i++) {
            if (bitnet_token_is_eog(m, q[i])) stop = 1;
            else if (out[got] = hist[np + got] = q[i], ++got == n) stop = 1;
        }
        if (stop) break;
        t = q[k - 1];
    }
    *secs = now_s() - t0;
done:
    if (got < 0) fprintf(stderr, "bench --spec: %s\n", bitnet_last_error());
    bitnet_sampler_free(smp);
    free(hist);
    return got;
}

/* Part 2: plain vs speculative on the prompts of o->text. */
static int text_run(bitnet_model *m, const spec_opts *o) {
    FILE *f = fopen(o->text, "rb");
    if (!f) {
        fprintf(stderr, "bench --spec: cannot open %s\n", o->text);
        return 0;
    }
    char para[4096];
    size_t len = 0;
    int ok = 1, n_done = 0, n_tok_plain = 0, n_tok_spec = 0;
    double s_plain = 0, s_spec = 0;
    long drafted = 0, accepted = 0, steps = 0;
    bitnet_model *dm = NULL;
    if (o->draft) {
        bitnet_model_params dp = bitnet_model_default_params();
        if (bitnet_model_load(o->draft, &dp, &dm) != BITNET_OK) {
            fprintf(stderr, "bench --spec: draft model: %s\n", bitnet_last_error());
            fclose(f);
            return 0;
        }
    }
    const int n_ctx = PROMPT_TOKENS + o->n_gen + 8;
    bitnet_token *a = malloc((size_t)o->n_gen * sizeof *a), *b = malloc((size_t)o->n_gen * sizeof *b);
    ok = a && b;
    int c;
    while (ok && n_done < o->n_prompts && (c = fgetc(f)) != EOF) {
        if (len < sizeof para - 1) para[len++] = (char)c;
        if (c != '\n') continue; /* one prompt per line (a story in the TinyStories files) */
        para[len] = 0;
        len = 0;
        bitnet_token prompt[PROMPT_TOKENS + 512];
        int np = bitnet_tokenize(m, para, 1, prompt, PROMPT_TOKENS + 512);
        if (np < PROMPT_TOKENS) continue; /* too short (or too long to tokenize here) */
        np = PROMPT_TOKENS;
        bitnet_context *ctx = new_ctx(m, n_ctx, o->n_threads), *dctx = dm ? new_ctx(dm, n_ctx, o->n_threads) : NULL;
        bitnet_draft *d = NULL;
        if (!ctx || (dm && !dctx) ||
            (dm ? bitnet_draft_model_new(dctx, o->draft_max, &d) : bitnet_draft_lookup_new(o->lookup, o->draft_max, &d)) != BITNET_OK) {
            ok = 0;
        } else {
            double tp = 0, ts = 0;
            const int na = generate(m, ctx, NULL, prompt, np, o->n_gen, a, &tp);
            const int nb = generate(m, ctx, d, prompt, np, o->n_gen, b, &ts);
            ok = na >= 0 && nb >= 0;
            if (ok && (na != nb || memcmp(a, b, (size_t)na * sizeof *a) != 0)) {
                fprintf(stderr, "bench --spec: prompt %d: the speculative tokens differ from plain decoding\n", n_done + 1);
                ok = 0;
            }
            long dr, ac, st;
            bitnet_draft_stats(d, &dr, &ac, &st);
            drafted += dr, accepted += ac, steps += st;
            n_tok_plain += na, n_tok_spec += nb, s_plain += tp, s_spec += ts;
            n_done++;
        }
        bitnet_draft_free(d);
        bitnet_context_free(dctx);
        bitnet_context_free(ctx);
    }
    fclose(f);
    if (ok && n_done) {
        printf("## Speculative decoding, %s (%d prompts of %d tokens from %s, greedy, -n %d, %d thread%s)\n\n",
               o->draft ? o->draft : "prompt lookup", n_done, PROMPT_TOKENS, o->text, o->n_gen, o->n_threads,
               o->n_threads > 1 ? "s" : "");
        printf("| drafter | tokens | same as plain | acceptance | tokens per pass | plain tok/s | speculative tok/s | speedup |\n");
        printf("|---|---:|---|---:|---:|---:|---:|---:|\n");
        char name[64];
        if (o->draft) snprintf(name, sizeof name, "draft model, max %d", o->draft_max);
        else snprintf(name, sizeof name, "lookup %d, max %d", o->lookup, o->draft_max);
        const double tp = n_tok_plain / s_plain, tsp = n_tok_spec / s_spec;
        printf("| %s | %d | yes | %.1f%% | %.2f | %.1f | %.1f | %.2fx |\n\n", name, n_tok_spec,
               drafted ? 100.0 * accepted / drafted : 0.0, steps ? (double)(accepted + steps) / steps : 1.0, tp, tsp,
               tsp / tp);
    } else if (ok) {
        fprintf(stderr, "bench --spec: %s has no line of %d tokens or more\n", o->text, PROMPT_TOKENS);
        ok = 0;
    }
    free(a);
    free(b);
    bitnet_model_free(dm);
    return ok;
}

int bn_bench_spec(int argc, char **argv) {
    spec_opts o;
    const int p = parse(argc, argv, &o);
    if (p <= 0) return p < 0 ? 2 : 0;
    bitnet_model_params mp = bitnet_model_default_params();
    mp.tokenizer_path = o.tokenizer;
    bitnet_model *m = NULL;
    if ((o.model ? bitnet_model_load(o.model, &mp, &m) : bitnet_model_load_default(&mp, &m)) != BITNET_OK) {
        fprintf(stderr, "bench --spec: %s\n", bitnet_last_error());
        return 1;
    }
    int ok = verification_cost(m, &o);
    if (ok && (o.lookup || o.draft)) ok = text_run(m, &o);
    bitnet_model_free(m);
    return ok ? 0 : 1;
}
