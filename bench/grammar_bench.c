/* grammar_bench.c - build/bench --grammar: what constrained output costs per
 * token on this machine and vocabulary (bench.h).
 *
 * For each grammar (by default a tool-call-like JSON Schema and any JSON
 * value, the worst case: inside a string almost every token may follow), it
 * times bitnet_grammar_new (parse + the vocabulary's byte-sorted index), then
 * a walk of -n tokens: random logits (seeded, so every run walks the same
 * text), bitnet_grammar_apply timed, the best remaining token accepted, and a
 * reset whenever the grammar is complete. The figure to compare is the mask's
 * time against one decode step of the same model, measured in the same run. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench.h"
#include "bitnet.h"

static double now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec * 1e-6;
}

static int cmp_double(const void *a, const void *b) {
    const double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static const char tool_schema[] =
    "{\"type\":\"object\",\"properties\":{\"name\":{\"enum\":[\"get_weather\",\"set_alarm\"]},\"arguments\":{\"type\":"
    "\"object\",\"properties\":{\"city\":{\"type\":\"string\",\"maxLength\":40},\"unit\":{\"enum\":[\"celsius\","
    "\"fahrenheit\"]},\"days\":{\"type\":\"integer\"}},\"required\":[\"city\"]}},\"required\":[\"name\",\"arguments\"]}";

/* One grammar: prints a markdown row. Returns 0 or 1. */
static int bench_one(const bitnet_model *m, const char *label, const char *gbnf, int n_tok, double step_ms) {
    const int nv = bitnet_n_vocab(m);
    double t0 = now_ms();
    bitnet_grammar *g = NULL;
    if (bitnet_grammar_new(m, gbnf, &g) != BITNET_OK) {
        fprintf(stderr, "bench --grammar: %s: %s\n", label, bitnet_last_error());
        return 1;
    }
    const double t_new = now_ms() - t0;
    float *l = malloc((size_t)nv * sizeof *l);
    double *t = malloc((size_t)n_tok * sizeof *t);
    if (!l || !t) {
        free(l);
        free(t);
        bitnet_grammar_free(g);
        return 1;
    }
    uint64_t x = 0x9E3779B97F4A7C15ull;
    long allowed = 0;
    int n = 0, outputs = 1;
    while (n < n_tok) {
        for (int i = 0; i < nv; i++) {
            x ^= x << 13, x ^= x >> 7, x ^= x << 17;
            l[i] = (float)(x >> 40) / (float)(1 << 24);
        }
        t0 = now_ms();
        const int left = bitnet_grammar_apply(g, l);
        t[n++] = now_ms() - t0;
        int best = -1;
        for (int i = 0; i < nv; i++)
            if (l[i] > -INFINITY && (best < 0 || l[i] > l[best])) best = i;
        if (left <= 0 || best < 0 || bitnet_token_is_eog(m, best) || bitnet_grammar_is_complete(g) == 2 ||
            bitnet_grammar_accept(g, best) != BITNET_OK) {
            bitnet_grammar_reset(g);
            outputs++;
        }
        allowed += left > 0 ? left : 0;
    }
    qsort(t, (size_t)n, sizeof *t, cmp_double);
    double sum = 0;
    for (int i = 0; i < n; i++) sum += t[i];
    printf("| %-22s | %6d | %8.1f | %8.3f | %8.3f | %8.3f | %8ld | %6.1f%% |\n", label, nv, t_new, sum / n, t[n / 2],
           t[(int)(n * 0.99)], allowed / n, step_ms > 0 ? 100.0 * (sum / n) / step_ms : 0.0);
    (void)outputs;
    free(l);
    free(t);
    bitnet_grammar_free(g);
    return 0;
}

int bn_bench_grammar(int argc, char **argv) {
    const char *model = NULL, *tokenizer = NULL, *schema = NULL, *gfile = NULL;
    int n_tok = 200, n_threads = 1;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--grammar")) continue;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            printf("usage: bench --grammar [-m MODEL] [--tokenizer F] [-n TOKENS] [-t N] [-j SCHEMA | --grammar-file F]\n"
                   "Cost of constrained output per token: bitnet_grammar_new, then bitnet_grammar_apply over a\n"
                   "walk of -n tokens (default 200) with random logits, next to one decode step of the model\n"
                   "(-t threads). Default grammars: a tool-call JSON Schema and any JSON value.\n");
            return 0;
        }
        if (i + 1 >= argc) {
            fprintf(stderr, "bench --grammar: option %s needs a value\n", a);
            return 2;
        }
        const char *v = argv[++i];
        if (!strcmp(a, "-m")) model = v;
        else if (!strcmp(a, "--tokenizer")) tokenizer = v;
        else if (!strcmp(a, "-j") || !strcmp(a, "--json-schema")) schema = v;
        else if (!strcmp(a, "--grammar-file")) gfile = v;
        else if (!strcmp(a, "-n") || !strcmp(a, "-t")) {
            char *end;
            long k = strtol(v, &end, 10);
            if (*end || end == v || k < 1 || k > 1000000) {
                fprintf(stderr, "bench --grammar: %s expects a positive integer, got '%s'\n", a, v);
                return 2;
            }
            if (!strcmp(a, "-n")) n_tok = (int)k;
            else n_threads = (int)k;
        } else {
            fprintf(stderr, "bench --grammar: unknown option '%s'\n", a);
            return 2;
        }
    }
    bitnet_model_params mp = bitnet_model_default_params();
    mp.tokenizer_path = tokenizer;
    bitnet_model *m = NULL;
    if ((model ? bitnet_model_load(model, &mp, &m) : bitnet_model_load_default(&mp, &m)) != BITNET_OK) {
        fprintf(stderr, "bench --grammar: %s\n", bitnet_last_error());
        return 1;
    }
    /* one decode step of this model, for scale */
    bitnet_context_params cp = bitnet_context_default_params();
    cp.n_ctx = 64;
    cp.n_threads = n_threads;
    bitnet_context *ctx = NULL;
    double step_ms = 0;
    if (bitnet_context_new(m, &cp, &ctx) == BITNET_OK) {
        bitnet_token tok = bitnet_token_bos(m);
        bitnet_eval(ctx, &tok, 1, 0);
        const double t0 = now_ms();
        for (int i = 1; i <= 16; i++) bitnet_eval(ctx, &tok, 1, i);
        step_ms = (now_ms() - t0) / 16;
        bitnet_context_free(ctx);
    }
    printf("decode step: %.3f ms (%d threads)\n\n", step_ms, n_threads);
    printf("| grammar                | vocab  | new (ms) | mean ms  | p50 ms   | p99 ms   | allowed  | of step |\n");
    printf("|------------------------|--------|----------|----------|----------|----------|----------|---------|\n");
    int rc = 0;
    char *gbnf = NULL;
    if (schema || gfile) {
        if (schema && bitnet_json_schema_to_grammar(schema, strlen(schema), &gbnf) != BITNET_OK) {
            fprintf(stderr, "bench --grammar: %s\n", bitnet_last_error());
            rc = 1;
        } else if (gfile) {
            FILE *f = fopen(gfile, "rb");
            long len = f && !fseek(f, 0, SEEK_END) ? ftell(f) : -1;
            if (len >= 0 && !fseek(f, 0, SEEK_SET) && (gbnf = calloc(1, (size_t)len + 1)) &&
                fread(gbnf, 1, (size_t)len, f) == (size_t)len) {
            } else {
                fprintf(stderr, "bench --grammar: cannot read %s\n", gfile);
                rc = 1;
            }
            if (f) fclose(f);
        }
        if (!rc) rc = bench_one(m, schema ? "--json-schema" : gfile, gbnf, n_tok, step_ms);
    } else {
        static const struct { const char *label, *schema; } def[] = {{"tool-call schema", tool_schema}, {"any JSON value", "{}"}};
        for (int k = 0; k < 2 && !rc; k++) {
            if (bitnet_json_schema_to_grammar(def[k].schema, strlen(def[k].schema), &gbnf) != BITNET_OK) rc = 1;
            else rc = bench_one(m, def[k].label, gbnf, n_tok, step_ms);
            free(gbnf);
            gbnf = NULL;
        }
    }
    free(gbnf);
    bitnet_model_free(m);
    return rc;
}
