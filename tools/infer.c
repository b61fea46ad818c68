/* infer - generate text with a BitNet / Llama model.
 *
 *   build/infer                              # embedded default model
 *   build/infer -m model.gguf -p "Once upon a time" -n 256 --temp 0
 *
 * Generation follows llama2.c's run.c so that its reference outputs reproduce:
 * the sequence starts with BOS, -n counts positions (prompt tokens included),
 * the prompt is echoed as decoded tokens, and generation stops at BOS/EOS. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bitnet.h"
#include "util.h"

typedef struct {
    const char *model, *prompt, *tokenizer, *cpu_affinity;
    int steps, n_ctx, n_threads, use_mlock, no_mmap, margins, kv_type;
    bitnet_sampler_params sp;
} options;

static void usage(FILE *out) {
    fprintf(out,
            "usage: infer [options]\n"
            "Generates text. With no -m, runs the model embedded in the binary.\n\n"
            "  -m, --model FILE        GGUF or ak42 model (default: embedded model)\n"
            "  -p, --prompt TEXT       prompt (default: empty, start from BOS)\n"
            "  -n, --max-tokens N      total tokens in the sequence, prompt included, as\n"
            "                          llama2.c's -n (default 256; also --max_tokens)\n"
            "      --temp T            temperature, 0 = greedy (default 0.8)\n"
            "      --top-k N           top-k, 0 = off (default 40)\n"
            "      --top-p P           nucleus sampling, 1 = off (default 0.95)\n"
            "      --min-p P           min-p, 0 = off (default 0.05)\n"
            "      --repeat-penalty R  repetition penalty, 1 = off (default 1.0)\n"
            "      --repeat-last-n N   tokens the penalty looks back (default 64)\n"
            "  -s, --seed N            random seed (default 42)\n"
            "  -c, --ctx-size N        context size in tokens (default 512)\n"
            "  -t, --threads N         threads (default 1)\n"
            "      --cpu-affinity L    pin threads to CPUs, taskset syntax: 2-3 or 0,2\n"
            "      --tokenizer FILE    llama2.c tokenizer.bin for files without a vocabulary\n"
            "      --mlock             lock weights and buffers in RAM\n"
            "      --margins           print the top-2 logit margin of each step to stderr\n"
            "  -h, --help              this help\n\n"
            "Prints the text to stdout as it is generated and a timing summary to stderr.\n"
            "Environment: BITNET_ISA=scalar|avx2|avx512|neon forces a kernel set.\n");
}

static int parse_int(const char *flag, const char *v, int lo, int hi, int *out) {
    char *end;
    errno = 0;
    long x = strtol(v, &end, 10);
    if (errno || *end || end == v || x < lo || x > hi) {
        fprintf(stderr, "infer: %s expects an integer in %d..%d, got '%s'\n", flag, lo, hi, v);
        return 0;
    }
    *out = (int)x;
    return 1;
}

static int parse_float(const char *flag, const char *v, float *out) {
    char *end;
    float x = strtof(v, &end);
    if (*end || end == v || !isfinite(x)) {
        fprintf(stderr, "infer: %s expects a number, got '%s'\n", flag, v);
        return 0;
    }
    *out = x;
    return 1;
}

static int parse_args(int argc, char **argv, options *o) {
    memset(o, 0, sizeof *o);
    o->prompt = "";
    o->steps = 256;
    o->n_ctx = 512;
    o->n_threads = 1;
    o->sp = bitnet_sampler_default_params();
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            exit(0);
        }
        int is_flag = !strcmp(a, "--mlock") || !strcmp(a, "--margins") || !strcmp(a, "--no-mmap");
        if (is_flag) {
            if (!strcmp(a, "--mlock")) o->use_mlock = 1;
            if (!strcmp(a, "--margins")) o->margins = 1;
            if (!strcmp(a, "--no-mmap")) o->no_mmap = 1;
            continue;
        }
        if (i + 1 >= argc) {
            fprintf(stderr, "infer: option %s needs a value (see --help)\n", a);
            return 0;
        }
        const char *v = argv[++i];
        int ok = 1, seed;
        if (!strcmp(a, "-m") || !strcmp(a, "--model")) o->model = v;
        else if (!strcmp(a, "-p") || !strcmp(a, "--prompt")) o->prompt = v;
        else if (!strcmp(a, "--tokenizer")) o->tokenizer = v;
        else if (!strcmp(a, "--cpu-affinity")) o->cpu_affinity = v;
        else if (!strcmp(a, "-n") || !strcmp(a, "--max-tokens") || !strcmp(a, "--max_tokens") || !strcmp(a, "--n-predict"))
            ok = parse_int(a, v, 1, 1 << 24, &o->steps);
        else if (!strcmp(a, "-c") || !strcmp(a, "--ctx-size")) ok = parse_int(a, v, 1, 1 << 20, &o->n_ctx);
        else if (!strcmp(a, "-t") || !strcmp(a, "--threads")) ok = parse_int(a, v, 1, 256, &o->n_threads);
        else if (!strcmp(a, "--temp")) ok = parse_float(a, v, &o->sp.temp);
        else if (!strcmp(a, "--top-k")) ok = parse_int(a, v, 0, 1 << 24, &o->sp.top_k);
        else if (!strcmp(a, "--top-p")) ok = parse_float(a, v, &o->sp.top_p);
        else if (!strcmp(a, "--min-p")) ok = parse_float(a, v, &o->sp.min_p);
        else if (!strcmp(a, "--repeat-penalty")) ok = parse_float(a, v, &o->sp.repeat_penalty);
        else if (!strcmp(a, "--repeat-last-n")) ok = parse_int(a, v, 0, 1 << 16, &o->sp.repeat_last_n);
        else if (!strcmp(a, "-s") || !strcmp(a, "--seed")) {
            ok = parse_int(a, v, 0, 2147483647, &seed);
            o->sp.seed = (uint64_t)seed;
        } else {
            fprintf(stderr, "infer: unknown option '%s' (see --help)\n", a);
            return 0;
        }
        if (!ok) return 0;
    }
    return 1;
}

static void print_piece(const bitnet_model *m, bitnet_token prev, bitnet_token tok) {
    char buf[256];
    int n = bitnet_token_to_piece(m, prev, tok, buf, sizeof buf);
    if (n > 0) fwrite(buf, 1, (size_t)BN_MIN_INT(n, (int)sizeof buf - 1), stdout);
    fflush(stdout);
}

int main(int argc, char **argv) {
    options o;
    if (!parse_args(argc, argv, &o)) return 2;

    uint64_t t0 = now_ns();
    bitnet_model_params mp = bitnet_model_default_params();
    mp.tokenizer_path = o.tokenizer;
    mp.use_mlock = o.use_mlock;
    mp.use_mmap = !o.no_mmap;
    bitnet_model *model = NULL;
    bitnet_status st = o.model ? bitnet_model_load(o.model, &mp, &model) : bitnet_model_load_default(&mp, &model);
    if (st != BITNET_OK) {
        fprintf(stderr, "infer: %s\n", bitnet_last_error());
        return 1;
    }
    bitnet_context_params cp = bitnet_context_default_params();
    cp.n_ctx = o.n_ctx;
    cp.n_threads = o.n_threads;
    cp.cpu_affinity = o.cpu_affinity;
    cp.use_mlock = o.use_mlock;
    bitnet_context *ctx = NULL;
    if ((st = bitnet_context_new(model, &cp, &ctx)) != BITNET_OK) {
        fprintf(stderr, "infer: %s\n", bitnet_last_error());
        bitnet_model_free(model);
        return 1;
    }
    const int n_vocab = bitnet_n_vocab(model);
    bitnet_sampler *smp = bitnet_sampler_new(&o.sp, n_vocab);
    uint64_t t_loaded = now_ns();

    int steps = o.steps > o.n_ctx ? o.n_ctx : o.steps;
    int max_prompt = (int)strlen(o.prompt) + 3;
    bitnet_token *prompt = malloc((size_t)max_prompt * sizeof(bitnet_token));
    int np = bitnet_tokenize(model, o.prompt, 1, prompt, max_prompt);
    if (np < 1) {
        fprintf(stderr, "infer: cannot tokenize the prompt: %s\n", bitnet_last_error());
        return 1;
    }
    if (np > steps) {
        fprintf(stderr, "infer: the prompt has %d tokens, more than -n/--ctx-size allow (%d)\n", np, steps);
        return 1;
    }
    const bitnet_token bos = bitnet_token_bos(model), eos = bitnet_token_eos(model);

    /* echo the prompt as its tokens decode, then evaluate it in one batch */
    for (int i = 1; i < np; i++) print_piece(model, prompt[i - 1], prompt[i]);
    uint64_t t_p0 = now_ns();
    if ((st = bitnet_eval(ctx, prompt, np, 0)) != BITNET_OK) {
        fprintf(stderr, "\ninfer: %s\n", bitnet_last_error());
        return 1;
    }
    for (int i = 0; i < np; i++) bitnet_sampler_accept(smp, prompt[i]);
    uint64_t t_p1 = now_ns();

    int pos = np - 1, n_gen = 0;
    bitnet_token token = prompt[np - 1];
    float *logits = bitnet_get_logits(ctx);
    while (pos < steps) {
        if (o.margins) {
            float a = -INFINITY, b = -INFINITY;
            for (int i = 0; i < n_vocab; i++) {
                if (logits[i] > a) { b = a; a = logits[i]; }
                else if (logits[i] > b) b = logits[i];
            }
            fprintf(stderr, "[margin] pos %d top2 %.6f\n", pos, (double)(a - b));
        }
        bitnet_token next = bitnet_sampler_sample(smp, logits);
        pos++;
        if (next == bos || next == eos) break;
        print_piece(model, token, next);
        bitnet_sampler_accept(smp, next);
        n_gen++;
        token = next;
        if (pos >= steps) break;
        if ((st = bitnet_eval(ctx, &token, 1, pos)) != BITNET_OK) {
            fprintf(stderr, "\ninfer: %s\n", bitnet_last_error());
            return 1;
        }
    }
    uint64_t t_end = now_ns();

    double load_ms = (t_loaded - t0) / 1e6, prompt_ms = (t_p1 - t_p0) / 1e6, gen_ms = (t_end - t_p1) / 1e6;
    int n_eval_gen = n_gen > 0 ? n_gen : 1;
    fprintf(stderr, "\n\n[%s | %s | isa %s | %d threads]\n", o.model ? o.model : "embedded default model",
            bitnet_version(), bitnet_isa_name(), o.n_threads);
    fprintf(stderr, "load:       %8.2f ms\n", load_ms);
    fprintf(stderr, "prompt:     %8.2f ms / %d tokens (%.3f ms/token, %.1f tokens/s)\n", prompt_ms, np,
            prompt_ms / np, np / (prompt_ms / 1e3));
    fprintf(stderr, "generation: %8.2f ms / %d tokens (%.3f ms/token, %.1f tokens/s)\n", gen_ms, n_gen,
            gen_ms / n_eval_gen, n_gen / (gen_ms / 1e3 > 0 ? gen_ms / 1e3 : 1e-9));
    fprintf(stderr, "peak RSS:   %8.1f MiB\n", peak_rss_mib());

    free(prompt);
    bitnet_sampler_free(smp);
    bitnet_context_free(ctx);
    bitnet_model_free(model);
    return 0;
}
