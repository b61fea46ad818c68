/* infer - generate text with a BitNet / Llama model.
 *
 *   build/infer                              # embedded default model
 *   build/infer -m model.gguf -p "Once upon a time" -n 256 --temp 0
 *
 * Generation follows llama2.c's run.c so that its reference outputs reproduce:
 * the sequence starts with BOS, -n counts positions (prompt tokens included),
 * the prompt is echoed as decoded tokens, and generation stops at BOS/EOS. */
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <unistd.h>

#include "bitnet.h"
#define TOOL_NAME "infer"
#include "util.h"

typedef struct {
    model_options m; /* -m, --tokenizer, -t, --kv-type / -ctk / -ctv */
    const char *prompt, *prompt_file, *cpu_affinity;
    int n_predict;      /* -n: tokens to generate (llama.cpp), -1 = until end of generation or a full context */
    int steps;          /* --steps: positions including the prompt (llama2.c); 0 = not given */
    int n_ctx, n_batch, use_mlock, no_mmap, margins, ignore_eos, no_display_prompt, escape;
    int keep, no_context_shift; /* --chat: tokens kept when the context is full (-1: the first turn) */
    int single_turn, verbose, quiet, seed_given;
    int color; /* --color: the prompt in yellow, your input in bold green (llama-cli's colours) */
    /* -i / -if: llama-cli's interactive mode; -r texts hand control back */
    int interactive, interactive_first, n_rprompts;
    const char *rprompts[8], *in_prefix, *in_suffix;
    const char *chat_template; /* --chat-template: a name (llama3, bitnet, chatml, ...) or a template text */
    /* speculative decoding: --lookup N (prompt lookup) or --draft MODEL, --draft-max N tokens per step */
    int lookup, draft_max;
    const char *draft_model;
    bitnet_sampler_params sp;
    /* -l/--logit-bias TOKEN_ID(+/-)BIAS, as llama.cpp: added to that token's logit before sampling */
    int n_biases;
    struct { int token; float bias; } biases[64];
    char *prompt_owned; /* -f or -e: the prompt in heap memory */
    /* --grammar TEXT / --grammar-file FILE (GBNF), -j/--json-schema TEXT / --json-schema-file FILE */
    const char *grammar, *grammar_file, *json_schema, *json_schema_file;
    char *gbnf; /* the grammar to follow (malloc'd), or NULL */
    const char *prompt_cache; /* --prompt-cache FILE: the evaluated prompt's KV cache, reused across runs */
    int prompt_cache_ro;      /* --prompt-cache-ro: read it, never rewrite it */
} options;

static void usage(FILE *out) {
    fprintf(out,
            "usage: infer [options]\n"
            "Generates text. With no -m, runs the model embedded in the binary.\n"
            "\n"
            "----- common params -----\n"
            "  -h, --help              this help\n"
            "      --version           print the version\n"
            "  -m, --model FILE        GGUF or ak42 model (default: embedded model)\n"
            "      --tokenizer FILE    llama2.c tokenizer.bin for files without a vocabulary\n"
            "                          (safetensors: also a tokenizer.json or GGUF vocabulary)\n"
            "  -t, --threads N         threads (default: the physical cores, at most the online CPUs)\n"
            "      --cpu-affinity L    pin threads to CPUs, taskset syntax: 2-3 or 0,2 (also -C, --cpu-range)\n"
            "  -c, --ctx-size N        context size in tokens (default 512); the KV cache\n"
            "                          is sized from it\n"
            "  -b, --batch-size N      prompt tokens per forward pass (default 64)\n"
            "      --kv-type T         KV cache type: f32, f16, q8, q4, q2 (default: f16, but\n"
            "                          f32 for ak42 models; see docs/kv-cache.md)\n"
            "  -ctk, -ctv T            llama.cpp's spelling: the same type for both (q8_0 = q8,\n"
            "                          q4_0 / q4_1 = q4)\n"
            "      --kv-int2           same as --kv-type q2\n"
            "      --mlock             lock weights and buffers in RAM (warns and goes on\n"
            "                          if RLIMIT_MEMLOCK forbids it)\n"
            "      --no-mmap           read the weights into memory instead of mapping the file\n"
            "  -ngl, --n-gpu-layers N  accepted for llama.cpp/bitnet.cpp command lines; CPU only, ignored\n"
            "  -v, --verbose           more on stderr (the seed used, the settings)\n"
            "      --log-disable       no timing summary on stderr\n"
            "\n"
            "----- sampling params -----\n"
            "      --temp T            temperature, 0 = greedy (default 0.8; also -temp, --temperature)\n"
            "      --top-k N           top-k, 0 = off (default 40)\n"
            "      --top-p P           nucleus sampling, 1 = off (default 0.95)\n"
            "      --min-p P           min-p, 0 = off (default 0.05)\n"
            "      --repeat-penalty R  repetition penalty, 1 = off (default 1.0)\n"
            "      --repeat-last-n N   tokens the penalties look back (default 64)\n"
            "      --presence-penalty P  minus P on every token seen there (default 0)\n"
            "      --frequency-penalty F minus F times its count there (default 0)\n"
            "  -s, --seed N            random seed; -1 or none = a fresh one (printed with -v)\n"
            "      --ignore-eos        keep generating past end-of-generation tokens\n"
            "  -l, --logit-bias T(+/-)B  add B to token T's logit, as llama.cpp (e.g. 15043+1,\n"
            "                          15043-inf to forbid it, 2+inf to force it; several allowed)\n"
            "      --grammar GBNF      constrain the output to a grammar (llama.cpp's GBNF, docs/grammar.md)\n"
            "      --grammar-file FILE the same, from a file\n"
            "  -j, --json-schema JSON  constrain the output to a JSON Schema (e.g. '{}' for any JSON value)\n"
            "  -jf, --json-schema-file FILE  the same, from a file\n"
            "\n"
            "----- example-specific params -----\n"
            "  -p, --prompt TEXT       prompt (default: empty, start from BOS)\n"
            "  -f, --file FILE         prompt from a file\n"
            "  -e, --escape            process \\n, \\t, \\\\, \\\", \\xNN in the prompt\n"
            "  -n, --n-predict N       tokens to generate, as llama.cpp's -n; -1 = until an\n"
            "                          end-of-generation token or the context is full (default -1)\n"
            "      --steps N           llama2.c's -n instead: positions in the sequence, prompt\n"
            "                          included (stops at BOS/EOS; at most --ctx-size)\n"
            "      --no-display-prompt do not echo the prompt\n"
            "      --prompt-cache FILE keep the prompt's KV cache in FILE: a later run whose prompt\n"
            "                          starts the same evaluates only the rest (same text out)\n"
            "      --prompt-cache-ro   use --prompt-cache FILE but do not rewrite it\n"
            "  -co, --color            colours, as llama-cli: the prompt yellow, your input bold green\n"
            "      --margins           print the top-2 logit margin of each step to stderr\n"
            "  -i, --interactive       generate, and hand over to you (a line from stdin) at a\n"
            "                          reverse prompt or an end-of-generation token; EOF ends\n"
            "  -if, --interactive-first  the same, starting with your line\n"
            "  -r, --reverse-prompt T  hand over when the output ends with T (several allowed)\n"
            "      --in-prefix T       text before each line you type (default none)\n"
            "      --in-suffix T       text after it (default none)\n"
            "      --chat, -cnv        chat: reads user turns from stdin, one per line, and\n"
            "                          answers each in the model's chat template (Llama-3,\n"
            "                          BitNet-b1.58-2B-4T; else a plain User:/Assistant:\n"
            "                          format, with a warning), keeping the KV cache across\n"
            "                          turns; -n caps each reply, -p is the system prompt\n"
            "  -sys, --system-prompt T system prompt for --chat\n"
            "      --chat-template T   --chat with this template (llama3, bitnet, chatml, gemma, falcon3,\n"
            "                          plain, or a template's text) instead of the model's\n"
            "  -st, --single-turn      --chat: answer one turn, then exit\n"
            "  -no-cnv, --no-conversation  plain generation (the default; accepted for llama-cli lines)\n"
            "      --keep N            --chat: when the context is full, keep the first N tokens\n"
            "                          (after BOS; -1 = the whole first turn, default 0), drop half\n"
            "                          of the rest and go on, as llama.cpp's context shift\n"
            "      --no-context-shift  --chat: stop with \"context full\" instead\n"
            "\n"
            "----- speculative decoding (docs/speculative.md) -----\n"
            "      --lookup N          speculative decoding by prompt lookup: draft the tokens that\n"
            "                          followed the last N..1 tokens earlier in the text (no model)\n"
            "      --draft FILE        speculative decoding with a smaller model of the same vocabulary\n"
            "                          (also -md, --model-draft), e.g. a build/prune'd copy\n"
            "      --draft-max N       tokens drafted per step (default 8; also --draft-n, --draft N)\n"
            "                          Both give the same text as without them, faster when the\n"
            "                          drafts are often right (docs/speculative.md)\n"
            "\n"
            "Prints the text to stdout as it is generated and a timing summary to stderr.\n"
            "Environment: BITNET_ISA=scalar|avx2|avx512|neon forces a kernel set.\n");
}

/* --chat options, kept apart from `options`; run_chat() below uses them. */
static struct {
    int on;
    const char *system;
} g_chat;

/* --chat / -cnv / -sys: 1 if argv[*i] was one (value consumed), 0 if not, -1 on a missing value. */
static int parse_chat_arg(int argc, char **argv, int *i) {
    const char *a = argv[*i];
    if (!strcmp(a, "--chat") || !strcmp(a, "-cnv") || !strcmp(a, "--conversation")) return g_chat.on = 1;
    if (strcmp(a, "-sys") && strcmp(a, "--system-prompt")) return 0;
    if (*i + 1 >= argc) {
        fprintf(stderr, "infer: option %s needs a value (see --help)\n", a);
        return -1;
    }
    g_chat.system = argv[++*i];
    return 1;
}

/* Physical cores (distinct core ids per package, from sysfs), at most the
 * online CPUs; the online CPUs when sysfs says nothing. llama.cpp's default. */
static int physical_cores(void) {
    const int online = online_cpus();
    int n = 0, seen[1024][2];
    for (int cpu = 0; cpu < 1024 && n < 1024; cpu++) {
        char path[128];
        int ids[2] = {-1, -1};
        for (int k = 0; k < 2; k++) {
            snprintf(path, sizeof path, "/sys/devices/system/cpu/cpu%d/topology/%s", cpu,
                     k ? "physical_package_id" : "core_id");
            FILE *f = fopen(path, "r");
            if (f) {
                if (fscanf(f, "%d", &ids[k]) != 1) ids[k] = -1;
                fclose(f);
            }
        }
        if (ids[0] < 0) continue;
        int dup = 0;
        for (int i = 0; i < n && !dup; i++) dup = seen[i][0] == ids[0] && seen[i][1] == ids[1];
        if (!dup) seen[n][0] = ids[0], seen[n][1] = ids[1], n++;
    }
    if (n < 1 || n > online) n = online;
    return n;
}

/* -e: \n \t \\ \" \' \xNN (llama.cpp's process_escapes), in place. */
static void process_escapes(char *s) {
    char *w = s;
    for (const char *r = s; *r; r++) {
        if (*r != '\\' || !r[1]) {
            *w++ = *r;
            continue;
        }
        switch (*++r) {
        case 'n': *w++ = '\n'; break;
        case 't': *w++ = '\t'; break;
        case 'r': *w++ = '\r'; break;
        case '\\': *w++ = '\\'; break;
        case '"': *w++ = '"'; break;
        case '\'': *w++ = '\''; break;
        case 'x':
            if (isxdigit((unsigned char)r[1]) && isxdigit((unsigned char)r[2])) {
                char hex[3] = {r[1], r[2], 0};
                *w++ = (char)strtol(hex, NULL, 16);
                r += 2;
            } else { /* not an escape: kept as written */
                *w++ = '\\';
                *w++ = *r;
            }
            break;
        default:
            *w++ = '\\';
            *w++ = *r;
        }
    }
    *w = 0;
}

/* -l/--logit-bias TOKEN_ID(+/-)BIAS: "15043+1", "15043-0.5", "15043-inf" (llama.cpp's syntax). */
static int parse_logit_bias(const char *flag, const char *v, options *o) {
    char *end;
    errno = 0;
    long tok = strtol(v, &end, 10);
    float bias = 0.0f;
    int ok = end != v && (*end == '+' || *end == '-') && errno == 0 && tok >= 0 && tok < (1L << 30);
    if (ok) {
        const char *b = end;
        if (!strcmp(b + 1, "inf")) bias = *b == '-' ? -INFINITY : INFINITY;
        else {
            bias = strtof(b, &end);
            ok = end != b + 1 && *end == 0 && isfinite(bias);
        }
    }
    if (!ok) {
        fprintf(stderr, "infer: %s '%s': expected TOKEN_ID+BIAS or TOKEN_ID-BIAS (e.g. 15043+1, 15043-inf)\n", flag, v);
        return 0;
    }
    if (o->n_biases == (int)(sizeof o->biases / sizeof o->biases[0])) {
        fprintf(stderr, "infer: at most %d %s options\n", o->n_biases, flag);
        return 0;
    }
    o->biases[o->n_biases].token = (int)tok;
    o->biases[o->n_biases++].bias = bias;
    return 1;
}

/* The per-token bias added to the logits before sampling: -l/--logit-bias, and -inf on the
 * end-of-generation tokens with --ignore-eos. *out stays NULL when there is none. Returns 0, or -1
 * after one line on stderr (a token outside the vocabulary, or out of memory). */
static int make_logit_bias(const bitnet_model *model, const options *o, float **out) {
    const int n_vocab = bitnet_n_vocab(model);
    *out = NULL;
    for (int i = 0; i < o->n_biases; i++)
        if (o->biases[i].token >= n_vocab) {
            fprintf(stderr, "infer: --logit-bias: token %d is outside the vocabulary (0..%d)\n", o->biases[i].token,
                    n_vocab - 1);
            return -1;
        }
    if (!o->ignore_eos && !o->n_biases) return 0;
    float *bias = calloc((size_t)n_vocab, sizeof *bias);
    if (!bias) {
        fprintf(stderr, "infer: out of memory\n");
        return -1;
    }
    for (int i = 0; i < o->n_biases; i++) bias[o->biases[i].token] += o->biases[i].bias;
    if (o->ignore_eos) /* after the biases: --ignore-eos wins over a +inf on EOS (and -inf + inf is NaN) */
        for (int i = 0; i < n_vocab; i++)
            if (bitnet_token_is_eog(model, i) || i == bitnet_token_eos(model)) bias[i] = -INFINITY;
    *out = bias;
    return 0;
}

/* A whole file as a NUL-terminated string (malloc'd), or NULL after one line on stderr. */
static char *read_text_file(const char *path, const char *what) {
    size_t len;
    char *text = read_whole_file(path, &len);
    if (!text) fprintf(stderr, "infer: cannot read %s %s: %s\n", what, path, errno ? strerror(errno) : "read error");
    return text;
}

static int parse_args(int argc, char **argv, options *o) {
    *o = (options){
        .m = MODEL_OPTIONS_DEFAULT,
        .prompt = "",
        .n_predict = -1,
        .n_ctx = 512,
        .n_batch = 64,
        .draft_max = 8,
        .sp = bitnet_sampler_default_params(),
    };
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            exit(0);
        }
        int chat_arg = parse_chat_arg(argc, argv, &i); /* --chat, -cnv, -sys */
        if (chat_arg < 0) return 0;
        if (chat_arg) continue;
        if (!strcmp(a, "--version")) {
            printf("infer (libbitnet %s)\n", bitnet_version());
            exit(0);
        }
        int is_flag = !strcmp(a, "--mlock") || !strcmp(a, "--margins") || !strcmp(a, "--no-mmap") ||
                      !strcmp(a, "--kv-int2") || !strcmp(a, "--ignore-eos") || !strcmp(a, "--no-display-prompt") ||
                      !strcmp(a, "-e") || !strcmp(a, "--escape") || !strcmp(a, "--no-context-shift") ||
                      !strcmp(a, "-st") || !strcmp(a, "--single-turn") || !strcmp(a, "-no-cnv") ||
                      !strcmp(a, "--no-conversation") || !strcmp(a, "-v") || !strcmp(a, "--verbose") ||
                      !strcmp(a, "--log-disable") || !strcmp(a, "-i") || !strcmp(a, "--interactive") ||
                      !strcmp(a, "-if") || !strcmp(a, "--interactive-first") || !strcmp(a, "--color") ||
                      !strcmp(a, "-co") || !strcmp(a, "--prompt-cache-ro");
        if (is_flag) {
            if (!strcmp(a, "--kv-int2")) o->m.kv = (kv_flags){BITNET_KV_Q2, NULL, NULL};
            if (!strcmp(a, "--mlock")) o->use_mlock = 1;
            if (!strcmp(a, "--color") || !strcmp(a, "-co")) o->color = 1;
            if (!strcmp(a, "--margins")) o->margins = 1;
            if (!strcmp(a, "--no-mmap")) o->no_mmap = 1;
            if (!strcmp(a, "--ignore-eos")) o->ignore_eos = 1;
            if (!strcmp(a, "--no-display-prompt")) o->no_display_prompt = 1;
            if (!strcmp(a, "-e") || !strcmp(a, "--escape")) o->escape = 1;
            if (!strcmp(a, "--no-context-shift")) o->no_context_shift = 1;
            if (!strcmp(a, "--prompt-cache-ro")) o->prompt_cache_ro = 1;
            if (!strcmp(a, "-st") || !strcmp(a, "--single-turn")) o->single_turn = g_chat.on = 1;
            if (!strcmp(a, "-no-cnv") || !strcmp(a, "--no-conversation")) g_chat.on = 0;
            if (!strcmp(a, "-v") || !strcmp(a, "--verbose")) o->verbose = 1;
            if (!strcmp(a, "--log-disable")) o->quiet = 1;
            if (!strcmp(a, "-i") || !strcmp(a, "--interactive")) o->interactive = 1;
            if (!strcmp(a, "-if") || !strcmp(a, "--interactive-first")) o->interactive = o->interactive_first = 1;
            continue;
        }
        const char *v = option_value(argc, argv, &i, usage);
        if (!v) return 0;
        int ok = 1, seed = -1;
        if (!strcmp(a, "-p") || !strcmp(a, "--prompt")) o->prompt = v;
        else if (!strcmp(a, "-f") || !strcmp(a, "--file")) o->prompt_file = v;
        else if (!strcmp(a, "--cpu-affinity") || !strcmp(a, "-C") || !strcmp(a, "--cpu-range")) o->cpu_affinity = v;
        else if (!strcmp(a, "-n") || !strcmp(a, "--n-predict") || !strcmp(a, "--max-tokens") || !strcmp(a, "--max_tokens"))
            ok = parse_int(a, v, -1, 1 << 24, &o->n_predict);
        else if (!strcmp(a, "--steps")) ok = parse_int(a, v, 1, 1 << 24, &o->steps);
        else if (!strcmp(a, "--lookup")) ok = parse_int(a, v, 1, 64, &o->lookup);
        else if (!strcmp(a, "--draft-max") || !strcmp(a, "--draft-n") ||
                 (!strcmp(a, "--draft") && v[0] >= '0' && v[0] <= '9')) /* llama.cpp: --draft N = tokens */
            ok = parse_int(a, v, 1, 256, &o->draft_max);
        else if (!strcmp(a, "--draft") || !strcmp(a, "-md") || !strcmp(a, "--model-draft")) o->draft_model = v;
        else if (!strcmp(a, "--prompt-cache")) o->prompt_cache = v;
        else if (!strcmp(a, "--keep")) ok = parse_int(a, v, -1, 1 << 20, &o->keep);
        else if (!strcmp(a, "--chat-template")) o->chat_template = v;
        else if (!strcmp(a, "-l") || !strcmp(a, "--logit-bias")) ok = parse_logit_bias(a, v, o);
        else if (!strcmp(a, "--grammar")) o->grammar = v;
        else if (!strcmp(a, "--grammar-file")) o->grammar_file = v;
        else if (!strcmp(a, "-j") || !strcmp(a, "--json-schema")) o->json_schema = v;
        else if (!strcmp(a, "-jf") || !strcmp(a, "--json-schema-file")) o->json_schema_file = v;
        else if (!strcmp(a, "--in-prefix")) o->in_prefix = v;
        else if (!strcmp(a, "--in-suffix")) o->in_suffix = v;
        else if (!strcmp(a, "-r") || !strcmp(a, "--reverse-prompt")) {
            if (o->n_rprompts == 8) {
                fprintf(stderr, "infer: at most 8 reverse prompts\n");
                return 0;
            }
            o->rprompts[o->n_rprompts++] = v;
        }
        else if (!strcmp(a, "-c") || !strcmp(a, "--ctx-size")) ok = parse_int(a, v, 1, 1 << 20, &o->n_ctx);
        else if (!strcmp(a, "-b") || !strcmp(a, "--batch-size")) ok = parse_int(a, v, 1, 1 << 16, &o->n_batch);
        else if (!strcmp(a, "-ngl") || !strcmp(a, "--n-gpu-layers") || !strcmp(a, "--gpu-layers"))
            fprintf(stderr, "infer: %s %s ignored: this runtime runs on the CPU only\n", a, v);
        else if (!strcmp(a, "--temp") || !strcmp(a, "-temp") || !strcmp(a, "--temperature"))
            ok = parse_float(a, v, &o->sp.temp);
        else if (!strcmp(a, "--top-k")) ok = parse_int(a, v, 0, 1 << 24, &o->sp.top_k);
        else if (!strcmp(a, "--top-p")) ok = parse_float(a, v, &o->sp.top_p);
        else if (!strcmp(a, "--min-p")) ok = parse_float(a, v, &o->sp.min_p);
        else if (!strcmp(a, "--repeat-penalty")) ok = parse_float(a, v, &o->sp.repeat_penalty);
        else if (!strcmp(a, "--repeat-last-n")) ok = parse_int(a, v, 0, 1 << 16, &o->sp.repeat_last_n);
        else if (!strcmp(a, "--presence-penalty")) ok = parse_float(a, v, &o->sp.presence_penalty);
        else if (!strcmp(a, "--frequency-penalty")) ok = parse_float(a, v, &o->sp.frequency_penalty);
        else if (!strcmp(a, "-s") || !strcmp(a, "--seed")) {
            ok = parse_int(a, v, -1, 2147483647, &seed);
            o->seed_given = seed >= 0;
            o->sp.seed = (uint64_t)seed;
        } else
            ok = model_option(a, v, &o->m); /* -m, -t, ..., or an unknown option */
        if (!ok) return 0;
    }
    if (!o->seed_given) { /* as llama.cpp: a fresh seed unless one is given */
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        o->sp.seed = ((uint64_t)ts.tv_nsec ^ ((uint64_t)ts.tv_sec << 20) ^ ((uint64_t)getpid() << 40)) & 0x7fffffff;
        if (!o->sp.seed) o->sp.seed = 1;
    }
    if (!o->m.threads_given) o->m.n_threads = physical_cores();
    if (o->lookup && o->draft_model) {
        fprintf(stderr, "infer: --lookup and --draft are two ways to draft: give one\n");
        return 0;
    }
    if ((o->lookup || o->draft_model) && o->margins) {
        fprintf(stderr, "infer: --margins prints one step's logits, which speculative decoding does not keep: "
                        "drop --lookup/--draft\n");
        return 0;
    }
    if (o->steps > o->n_ctx) {
        fprintf(stderr, "infer: --steps %d does not fit in --ctx-size %d (--steps counts the prompt too); raise --ctx-size "
                        "or lower --steps\n", o->steps, o->n_ctx);
        return 0;
    }
    if (o->prompt_file) {
        if (!(o->prompt = o->prompt_owned = read_text_file(o->prompt_file, "the prompt file"))) return 0;
    }
    if (!!o->grammar + !!o->grammar_file + !!o->json_schema + !!o->json_schema_file > 1) {
        fprintf(stderr, "infer: give one of --grammar, --grammar-file, --json-schema and --json-schema-file\n");
        return 0;
    }
    if ((o->grammar || o->grammar_file || o->json_schema || o->json_schema_file) &&
        (o->lookup || o->draft_model || o->interactive || g_chat.on)) {
        fprintf(stderr, "infer: a grammar or JSON schema constrains plain generation only (not --lookup/--draft, -i or --chat)\n");
        return 0;
    }
    if (o->grammar && !(o->gbnf = strdup(o->grammar))) return 0;
    if (o->grammar_file && !(o->gbnf = read_text_file(o->grammar_file, "the grammar file"))) return 0;
    if (o->json_schema || o->json_schema_file) {
        char *schema = o->json_schema ? strdup(o->json_schema) : read_text_file(o->json_schema_file, "the JSON schema file");
        const int bad = !schema || bitnet_json_schema_to_grammar(schema, strlen(schema), &o->gbnf) != BITNET_OK;
        if (bad && schema)
            fprintf(stderr, "infer: %s%s%s\n", o->json_schema_file ? o->json_schema_file : "--json-schema",
                    o->json_schema_file ? ": " : ": ", bitnet_last_error());
        free(schema);
        if (bad) return 0;
    }
    if (o->escape) {
        if (!o->prompt_owned && !(o->prompt_owned = strdup(o->prompt))) return 0;
        process_escapes(o->prompt_owned);
        o->prompt = o->prompt_owned;
    }
    return 1;
}

static void print_piece(const bitnet_model *m, bitnet_token prev, bitnet_token tok) {
    char buf[256];
    int n = bitnet_token_to_piece(m, prev, tok, buf, sizeof buf);
    if (n > 0) fwrite(buf, 1, (size_t)BN_MIN_INT(n, (int)sizeof buf - 1), stdout);
    fflush(stdout);
}

/* --color: ANSI colours on stdout (llama-cli's: prompt yellow, user input bold green). */
#define COLOR_PROMPT "\x1b[33m"
#define COLOR_INPUT "\x1b[1;32m"
#define COLOR_RESET "\x1b[0m"
static void set_color(const options *o, const char *code) {
    if (o->color) {
        fputs(code, stdout);
        fflush(stdout);
    }
}

/* ---- --chat: interactive conversation ---------------------------------------- *
 * Each user line becomes a turn of the model's chat template (src/tokenizer/chat.h). The
 * KV cache keeps the whole conversation: a turn evaluates only the text the
 * template adds since the last one (the rendered conversation minus what was
 * rendered before, as llama.cpp's common_chat_format_single), plus the token
 * that ended the previous reply. Replies stop at an end-of-generation token
 * (EOS, EOT, <|eot_id|>) or after -n tokens. */

static int chat_add(bitnet_chat_message **msgs, int *n, const char *role, const char *content, size_t len) {
    bitnet_chat_message *nm = realloc(*msgs, (size_t)(*n + 1) * sizeof *nm);
    char *c = malloc(len + 1);
    if (nm) *msgs = nm;
    if (!nm || !c) {
        free(c);
        return 0;
    }
    memcpy(c, content, len);
    c[len] = 0;
    nm[*n].role = role;
    nm[(*n)++].content = c;
    return 1;
}

/* --chat's context shift, as llama.cpp's: the cache holds
 * positions 0..*pos-1. To make room for `need` more, keep the first `keep` (BOS
 * included) and drop half of the rest (or more, if need asks): the cache
 * moves the later tokens down and re-rotates their keys (bitnet_seq_rm of a
 * middle range), so nothing is evaluated again. 0, or -1 if even that cannot
 * make room. */
static int shift_context(bitnet_context *ctx, int *pos, int keep, int need) {
    const int n_ctx = bitnet_n_ctx(ctx);
    if (keep + need > n_ctx || keep >= *pos) return -1;
    int discard = (*pos - keep) / 2;
    if (*pos - discard + need > n_ctx) discard = *pos + need - n_ctx;
    if (discard <= 0 || discard > *pos - keep) return -1;
    if (bitnet_seq_rm(ctx, 0, keep, keep + discard) != BITNET_OK) return -1;
    *pos -= discard;
    fprintf(stderr, "\n[context shift: dropped %d tokens after the first %d; %d kept]\n", discard, keep, *pos);
    return 0;
}

static int run_chat(bitnet_model *model, bitnet_context *ctx, bitnet_sampler *smp, const options *o) {
    const char *text = o->chat_template ? o->chat_template : bitnet_model_chat_template(model);
    const char *tmpl = bitnet_chat_template_name(text);
    if (!tmpl) {
        fprintf(stderr, "infer: warning: %s; using a plain \"User: ...\\nAssistant:\" format\n",
                text ? "the model's chat template (tokenizer.chat_template) is not one we recognise (Llama-3, BitNet-b1.58-2B-4T, ChatML, Gemma, Falcon 3)"
                     : "the model has no chat template (tokenizer.chat_template)");
        tmpl = "plain";
    } else {
        fprintf(stderr, "infer: chat template: %s\n", tmpl);
    }
    /* what closes an assistant turn cut short by -n: the template's end of turn */
    const char *closing = bitnet_chat_turn_end(tmpl);
    const int n_ctx = bitnet_n_ctx(ctx), n_vocab = bitnet_n_vocab(model), interactive = isatty(0);
    bitnet_chat_message *msgs = NULL;
    int n_msgs = 0, pos = 0, turn = 0, rc = 0;
    bitnet_token pending = -1; /* the end-of-generation token of the last reply, not yet evaluated */
    const char *sys = g_chat.system ? g_chat.system : o->prompt; /* llama.cpp: -p is the system prompt in -cnv */
    if (sys && *sys && !chat_add(&msgs, &n_msgs, "system", sys, strlen(sys))) rc = -1;
    char *line = NULL, *full = NULL, *reply = NULL;
    unsigned char *plain = NULL; /* which bytes of full are message text (never control tokens) */
    size_t line_cap = 0, reply_cap = 0;
    bitnet_token *toks = NULL;
    int keep = 1;      /* BOS, and --keep more, fixed after the first turn */
    float *bias = NULL; /* -l/--logit-bias, --ignore-eos */
    if (make_logit_bias(model, o, &bias) != 0) rc = 1;
    while (rc == 0) {
        if (interactive) {
            printf("> ");
            fflush(stdout);
        }
        set_color(o, COLOR_INPUT);
        ssize_t got = read_line(&line, &line_cap, stdin);
        set_color(o, COLOR_RESET);
        if (got < 0) break;
        while (got > 0 && (line[got - 1] == '\n' || line[got - 1] == '\r')) line[--got] = 0;
        if (got == 0) continue;
        if (!chat_add(&msgs, &n_msgs, "user", line, (size_t)got)) {
            rc = -1;
            break;
        }
        /* the new text: this turn's rendering past what the previous turns (in
         * the cache since the first turn, which also brings the system prompt) render to */
        const int r_before = turn > 0 ? bitnet_chat_apply_template(tmpl, msgs, (size_t)n_msgs - 1, 0, NULL, 0) : 0;
        const int r_len = bitnet_chat_apply_template(tmpl, msgs, (size_t)n_msgs, 1, NULL, 0);
        if (r_before < 0 || r_len < 0) {
            rc = -1;
            break;
        }
        const size_t before = (size_t)r_before, len = (size_t)r_len;
        size_t clen = pending < 0 && turn > 0 ? strlen(closing) : 0;
        char *nf = realloc(full, len + 1 + clen);
        if (nf) full = nf;
        unsigned char *np = nf ? realloc(plain, len + 1 + clen) : NULL;
        if (np) plain = np;
        bitnet_token *nt = np ? realloc(toks, (len + clen + 3) * sizeof *toks) : NULL;
        if (!nf || !np || !nt) {
            rc = -1;
            break;
        }
        toks = nt;
        bitnet_chat_apply_template_ex(tmpl, msgs, (size_t)n_msgs, 1, full + clen, plain + clen, (int)len + 1);
        char *delta = full + before; /* the closing text, if any, goes just before it */
        memcpy(delta, closing, clen);
        memset(plain + before, 0, clen); /* the template's markup */
        int n_new = pending >= 0;
        if (pending >= 0) toks[0] = pending;
        /* control tokens only from the template: what the user types stays text */
        int n = bitnet_tokenize_chat(model, delta, clen + len - before, plain + before, pos == 0, toks + n_new,
                                     (int)(len + clen + 2));
        if (n < 0) {
            fprintf(stderr, "infer: %s\n", bitnet_last_error());
            rc = 1;
            break;
        }
        n_new += n;
        if (turn == 0) /* --keep counts from the start of the conversation, BOS aside; -1: the whole first turn */
            keep = o->keep < 0 ? n_new : BN_MIN_INT(1 + o->keep, n_new);
        if (pos + n_new > n_ctx && (o->no_context_shift || shift_context(ctx, &pos, keep, n_new + 1) != 0)) {
            fprintf(stderr, "\ninfer: context full: this turn needs %d more tokens but only %d of --ctx-size %d are "
                    "left; start again with a larger -c%s\n", n_new, n_ctx - pos, n_ctx,
                    o->no_context_shift ? "" : " or a smaller --keep");
            rc = 1;
            break;
        }
        bitnet_status st = bitnet_eval(ctx, toks, n_new, pos);
        if (st != BITNET_OK) {
            fprintf(stderr, "infer: %s\n", bitnet_last_error());
            rc = 1;
            break;
        }
        for (int i = 0; i < n_new; i++) bitnet_sampler_accept(smp, toks[i]);
        pos += n_new;
        pending = -1;
        size_t rlen = 0;
        int n_gen = 0;
        bitnet_token prev = toks[n_new - 1];
        for (;;) {
            float *logits = bitnet_get_logits(ctx);
            if (bias)
                for (int i = 0; i < n_vocab; i++) logits[i] += bias[i];
            bitnet_token next = bitnet_sampler_sample(smp, logits);
            if (next < 0 || next >= n_vocab || bitnet_token_is_eog(model, next)) {
                pending = next >= 0 && next < n_vocab ? next : -1;
                break;
            }
            if (n_gen == o->n_predict) break; /* -n: cut short, `closing` ends the turn */
            if (pos == n_ctx && (o->no_context_shift || shift_context(ctx, &pos, keep, 1) != 0)) {
                fprintf(stderr, "\ninfer: context full (%d tokens) in the middle of a reply; start again with a "
                        "larger -c\n", n_ctx);
                rc = 1;
                break;
            }
            char piece[256];
            int pl = bitnet_token_to_piece(model, prev, next, piece, sizeof piece);
            if (pl > 0) {
                pl = BN_MIN_INT(pl, (int)sizeof piece - 1);
                fwrite(piece, 1, (size_t)pl, stdout);
                fflush(stdout);
                if (rlen + (size_t)pl + 1 > reply_cap) {
                    char *nr = realloc(reply, reply_cap = 2 * reply_cap + (size_t)pl + 256);
                    if (!nr) {
                        rc = -1;
                        break;
                    }
                    reply = nr;
                }
                memcpy(reply + rlen, piece, (size_t)pl);
                rlen += (size_t)pl;
            }
            bitnet_sampler_accept(smp, next);
            if ((st = bitnet_eval(ctx, &next, 1, pos)) != BITNET_OK) {
                fprintf(stderr, "\ninfer: %s\n", bitnet_last_error());
                rc = 1;
                break;
            }
            pos++;
            n_gen++;
            prev = next;
        }
        printf("\n");
        fflush(stdout);
        fprintf(stderr, "[turn %d: %d new tokens evaluated, %d generated, context %d/%d]\n", ++turn, n_new, n_gen,
                pos, n_ctx);
        if (rc == 0 && !chat_add(&msgs, &n_msgs, "assistant", reply ? reply : "", rlen)) rc = -1;
        if (o->single_turn) break;
    }
    if (rc < 0) fprintf(stderr, "infer: out of memory\n");
    for (int i = 0; i < n_msgs; i++) free((char *)msgs[i].content);
    free(msgs);
    free(line);
    free(full);
    free(plain);
    free(reply);
    free(toks);
    free(bias);
    return rc ? 1 : 0;
}

/* -i: reads a line from stdin and evaluates --in-prefix + line + "\n" +
 * --in-suffix (as text: a typed control token stays text) at *pos. Returns
 * the number of tokens added, 0 at EOF, -1 on an error (reported). */
static int user_turn(bitnet_model *model, bitnet_context *ctx, bitnet_sampler *smp, const options *o, int *pos) {
    char *line = NULL;
    size_t cap = 0;
    set_color(o, COLOR_INPUT);
    ssize_t got = read_line(&line, &cap, stdin);
    set_color(o, COLOR_RESET);
    if (got < 0) {
        free(line);
        return 0;
    }
    const size_t len = strlen(o->in_prefix ? o->in_prefix : "") + (size_t)got + strlen(o->in_suffix ? o->in_suffix : "") + 2;
    char *text = malloc(len);
    bitnet_token *toks = malloc((len + 2) * sizeof *toks);
    int n = -1;
    if (text && toks) {
        while (got > 0 && (line[got - 1] == '\n' || line[got - 1] == '\r')) line[--got] = 0;
        snprintf(text, len, "%s%s\n%s", o->in_prefix ? o->in_prefix : "", line, o->in_suffix ? o->in_suffix : "");
        n = bitnet_tokenize_ex(model, text, strlen(text), 0, 0, toks, (int)len + 2);
        if (n > 0 && *pos + n >= bitnet_n_ctx(ctx)) {
            fprintf(stderr, "\ninfer: context full (--ctx-size %d)\n", bitnet_n_ctx(ctx));
            n = -1;
        } else if (n > 0 && bitnet_eval(ctx, toks, n, *pos) != BITNET_OK) {
            fprintf(stderr, "\ninfer: %s\n", bitnet_last_error());
            n = -1;
        }
        for (int i = 0; i < n; i++) bitnet_sampler_accept(smp, toks[i]);
        if (n > 0) *pos += n;
        if (n == 0) n = 1; /* an empty line: go on generating */
    }
    free(line);
    free(text);
    free(toks);
    return n;
}

/* Whether the output so far (its last bytes in tail) ends with a reverse prompt. */
static int ends_with_rprompt(const options *o, const char *tail, size_t n) {
    for (int i = 0; i < o->n_rprompts; i++) {
        const size_t k = strlen(o->rprompts[i]);
        if (k && k <= n && !memcmp(tail + n - k, o->rprompts[i], k)) return 1;
    }
    return 0;
}

/* --prompt-cache: loads FILE into the context and keeps the part of it that
 * starts the prompt (all but the prompt's last token, whose logits the first
 * step needs). Returns the number of prompt tokens already evaluated: 0 when
 * the file does not exist yet; -1 (with one line) when it cannot be used. */
static int load_prompt_cache(bitnet_context *ctx, const options *o, const bitnet_token *prompt, int np) {
    if (access(o->prompt_cache, F_OK) != 0 && errno == ENOENT) {
        if (!o->quiet) fprintf(stderr, "infer: --prompt-cache %s does not exist yet: it will be written\n", o->prompt_cache);
        return 0;
    }
    const int cap = bitnet_n_ctx(ctx);
    bitnet_token *saved = malloc((size_t)cap * sizeof *saved);
    int n = 0;
    if (!saved || bitnet_state_load_file(ctx, o->prompt_cache, saved, cap, &n) != BITNET_OK) {
        fprintf(stderr, "infer: --prompt-cache: %s\n", saved ? bitnet_last_error() : "out of memory");
        free(saved);
        return -1;
    }
    int same = 0;
    while (same < n && same < np - 1 && saved[same] == prompt[same]) same++;
    free(saved);
    bitnet_seq_rm(ctx, 0, same, -1); /* a tail: cannot fail */
    if (!o->quiet) fprintf(stderr, "infer: --prompt-cache %s: reused %d of the prompt's %d tokens\n", o->prompt_cache, same, np);
    return same;
}

/* Plain generation: the prompt, then tokens until -n, BOS or EOS. Every exit
 * frees what it allocated (the error paths are checked under LeakSanitizer). */
static int run_generate(bitnet_model *model, bitnet_context *ctx, bitnet_sampler *smp, bitnet_draft *spec,
                        const options *op, uint64_t t0, uint64_t t_loaded) {
    const options o = *op;
    const int n_vocab = bitnet_n_vocab(model);
    /* --steps: llama2.c's positions, prompt included; -n: tokens to generate, within the context */
    int steps = o.steps ? o.steps : o.n_ctx, rc = 1;
    float *bias = NULL; /* -l/--logit-bias and --ignore-eos (-inf on the end-of-generation tokens) */
    bitnet_grammar *grammar = NULL; /* --grammar, --json-schema */
    int max_prompt = (int)strlen(o.prompt) + 3;
    /* the prompt, then the generated tokens: the history speculative drafts read */
    bitnet_token *prompt = malloc(((size_t)max_prompt + (size_t)o.n_ctx + 1) * sizeof(bitnet_token));
    int np = prompt ? bitnet_tokenize(model, o.prompt, 1, prompt, max_prompt) : -1;
    bitnet_token queue[257]; /* --lookup/--draft: tokens of the last step not yet printed */
    int q_head = 0, q_len = 0, pending = 0; /* pending: the last token is sampled but not evaluated */
    if (np < 1) {
        fprintf(stderr, "infer: cannot tokenize the prompt: %s\n", prompt ? bitnet_last_error() : "out of memory");
        goto done;
    }
    if (np > steps || (!o.steps && np >= o.n_ctx)) {
        fprintf(stderr, "infer: the prompt has %d tokens, more than %s allow (%d)\n", np,
                o.steps ? "--steps/--ctx-size" : "--ctx-size (with one token to generate)", o.steps ? steps : o.n_ctx - 1);
        goto done;
    }
    const bitnet_token bos = bitnet_token_bos(model), eos = bitnet_token_eos(model);
    if (make_logit_bias(model, &o, &bias) != 0) goto done;
    if (o.gbnf && bitnet_grammar_new(model, o.gbnf, &grammar) != BITNET_OK) {
        fprintf(stderr, "infer: %s: %s\n", o.grammar_file ? o.grammar_file : "--grammar", bitnet_last_error());
        goto done;
    }

    const int n_reused = o.prompt_cache ? load_prompt_cache(ctx, &o, prompt, np) : 0;
    if (n_reused < 0) goto done;
    /* echo the prompt as its tokens decode, then evaluate it (what --prompt-cache did not hold) in one batch */
    if (!o.no_display_prompt) set_color(&o, COLOR_PROMPT);
    for (int i = 1; i < np && !o.no_display_prompt; i++) print_piece(model, prompt[i - 1], prompt[i]);
    if (!o.no_display_prompt) set_color(&o, COLOR_RESET);
    uint64_t t_p0 = now_ns();
    if (bitnet_eval(ctx, prompt + n_reused, np - n_reused, n_reused) != BITNET_OK) {
        fprintf(stderr, "\ninfer: %s\n", bitnet_last_error());
        goto done;
    }
    if (o.prompt_cache && !o.prompt_cache_ro && n_reused < np - 1 &&
        bitnet_state_save_file(ctx, o.prompt_cache, prompt, np) != BITNET_OK)
        fprintf(stderr, "\ninfer: warning: --prompt-cache: %s (going on without saving)\n", bitnet_last_error());
    for (int i = 0; i < np; i++) bitnet_sampler_accept(smp, prompt[i]);
    uint64_t t_p1 = now_ns();

    int pos = np - 1, n_gen = 0, n_turn = 0;
    bitnet_token token = prompt[np - 1];
    float *logits = bitnet_get_logits(ctx);
    char tail[256]; /* -i: the last bytes of the output, for the reverse prompts */
    size_t n_tail = 0;
    if (o.interactive_first) {
        pos++; /* positions from here on are "next free" */
        int u = user_turn(model, ctx, smp, &o, &pos);
        if (u <= 0) goto generation_done;
        pos--;
    }
    while (pos < steps) {
        if (o.margins) {
            float a = -INFINITY, b = -INFINITY;
            for (int i = 0; i < n_vocab; i++) {
                if (logits[i] > a) { b = a; a = logits[i]; }
                else if (logits[i] > b) b = logits[i];
            }
            fprintf(stderr, "[margin] pos %d top2 %.6f\n", pos, (double)(a - b));
        }
        bitnet_token next;
        if (spec && pending) { /* a speculative step samples (and accepts) up to 1 + --draft-max tokens */
            if (q_head == q_len) {
                int room = steps - pos;
                if (o.n_predict > 0) room = BN_MIN_INT(room, o.n_predict - n_gen);
                q_head = 0;
                q_len = bitnet_spec_step(ctx, spec, smp, bias, prompt, np + n_gen, queue,
                                         BN_MIN_INT(room, (int)(sizeof queue / sizeof queue[0])));
                if (q_len < 1) {
                    fprintf(stderr, "\ninfer: %s\n", bitnet_last_error());
                    goto done;
                }
            }
            next = queue[q_head++];
        } else {
            if (bias)
                for (int i = 0; i < n_vocab; i++) logits[i] += bias[i];
            if (grammar) { /* the grammar is complete and nothing may follow, or no token can continue it */
                const int left = bitnet_grammar_is_complete(grammar) == 2 ? 0 : bitnet_grammar_apply(grammar, logits);
                if (left < 0) {
                    fprintf(stderr, "\ninfer: %s\n", bitnet_last_error());
                    goto done;
                }
                if (left == 0) break;
            }
            next = bitnet_sampler_sample(smp, logits);
            if (grammar && bitnet_grammar_accept(grammar, next) != BITNET_OK) {
                fprintf(stderr, "\ninfer: %s\n", bitnet_last_error());
                goto done;
            }
            if (spec) bitnet_sampler_accept(smp, next); /* the first token; the steps accept theirs */
        }
        pos++;
        const int end = o.steps ? next == bos || next == eos : !o.ignore_eos && bitnet_token_is_eog(model, next);
        if (end && !o.interactive) break;
        if (!end) {
            print_piece(model, token, next);
            if (!spec) bitnet_sampler_accept(smp, next);
            prompt[np + n_gen] = next;
            n_gen++;
            n_turn++;
            token = next;
            if (o.interactive) { /* keep the output's last bytes */
                char piece[256];
                int pl = bitnet_token_to_piece(model, -1, next, piece, sizeof piece);
                pl = pl < 0 ? 0 : BN_MIN_INT(pl, (int)sizeof piece - 1);
                if (n_tail + (size_t)pl > sizeof tail) {
                    const size_t drop = n_tail + (size_t)pl - sizeof tail;
                    memmove(tail, tail + drop, n_tail - drop);
                    n_tail -= drop;
                }
                memcpy(tail + n_tail, piece, (size_t)pl);
                n_tail += (size_t)pl;
            }
        }
        if (pos >= steps) break;
        /* -i: your turn at an end of generation, a reverse prompt, or -n tokens */
        if (o.interactive && (end || ends_with_rprompt(&o, tail, n_tail) || n_turn == o.n_predict)) {
            /* pos: the next free position, after the last token (an end token is not kept) */
            if (!end && bitnet_eval(ctx, &token, 1, pos++) != BITNET_OK) {
                fprintf(stderr, "\ninfer: %s\n", bitnet_last_error());
                goto done;
            }
            int u = user_turn(model, ctx, smp, &o, &pos);
            if (u < 0) goto done;
            if (u == 0) break; /* EOF */
            pos--;          /* the loop samples from the logits of the last token evaluated */
            n_turn = n_tail = 0;
            continue;
        }
        if (end || n_gen == o.n_predict) break;
        if (spec) { /* the next step evaluates it with its draft */
            pending = 1;
            continue;
        }
        if (bitnet_eval(ctx, &token, 1, pos) != BITNET_OK) {
            fprintf(stderr, "\ninfer: %s\n", bitnet_last_error());
            goto done;
        }
    }
generation_done:;
    uint64_t t_end = now_ns();

    if (isatty(1)) putchar('\n'); /* as llama.cpp: the shell prompt on a line of its own */
    fflush(stdout);
    double load_ms = (t_loaded - t0) / 1e6, prompt_ms = (t_p1 - t_p0) / 1e6, gen_ms = (t_end - t_p1) / 1e6;
    int n_eval_gen = n_gen > 0 ? n_gen : 1;
    if (o.quiet) goto summary_done;
    fprintf(stderr, "\n\n[%s | %s | isa %s | %d threads | kv %s, %d ctx, %.2f MiB]\n",
            o.m.model ? o.m.model : "embedded default model", bitnet_version(), bitnet_isa_name(), o.m.n_threads,
            bitnet_kv_type_name(bitnet_context_kv_type(ctx)), o.n_ctx, bitnet_context_kv_bytes(ctx) / 1048576.0);
    fprintf(stderr, "load:       %8.2f ms\n", load_ms);
    const int n_prompt_eval = np - n_reused; /* --prompt-cache: the rest was loaded */
    fprintf(stderr, "prompt:     %8.2f ms / %d tokens (%.3f ms/token, %.1f tokens/s)\n", prompt_ms, n_prompt_eval,
            prompt_ms / n_prompt_eval, n_prompt_eval / (prompt_ms / 1e3));
    fprintf(stderr, "generation: %8.2f ms / %d tokens (%.3f ms/token, %.1f tokens/s)\n", gen_ms, n_gen,
            gen_ms / n_eval_gen, n_gen / (gen_ms / 1e3 > 0 ? gen_ms / 1e3 : 1e-9));
    if (spec) {
        long drafted, accepted, n_steps;
        bitnet_draft_stats(spec, &drafted, &accepted, &n_steps);
        fprintf(stderr, "speculative: %ld of %ld drafted tokens accepted (%.1f%%), %.2f tokens per target pass\n",
                accepted, drafted, drafted ? 100.0 * accepted / drafted : 0.0,
                n_steps ? (double)(accepted + n_steps) / n_steps : 0.0);
    }
    fprintf(stderr, "peak RSS:   %8.1f MiB\n", peak_rss_mib());
    const double locked = o.use_mlock ? process_mib("VmLck:") : -1; /* not known on Windows */
    if (locked >= 0) fprintf(stderr, "locked:     %8.1f MiB\n", locked);
summary_done:
    rc = 0;
done:
    free(prompt);
    free(bias);
    bitnet_grammar_free(grammar);
    return rc;
}

static int run_main(options o) {
    uint64_t t0 = now_ns();
    if (o.verbose)
        fprintf(stderr, "infer: seed %llu, %d threads, ctx %d, batch %d, temp %g, top-k %d, top-p %g, min-p %g\n",
                (unsigned long long)o.sp.seed, o.m.n_threads, o.n_ctx, o.n_batch, (double)o.sp.temp, o.sp.top_k,
                (double)o.sp.top_p, (double)o.sp.min_p);
    bitnet_model_params mp = bitnet_model_default_params();
    mp.tokenizer_path = o.m.tokenizer;
    mp.use_mlock = o.use_mlock;
    mp.use_mmap = !o.no_mmap;
    bitnet_model *model = load_model(o.m.model, NULL, &mp);
    if (!model) return 1;
    bitnet_context_params cp = bitnet_context_default_params();
    cp.n_ctx = o.n_ctx;
    cp.n_batch = o.n_batch;
    cp.n_threads = o.m.n_threads;
    cp.cpu_affinity = o.cpu_affinity;
    cp.use_mlock = o.use_mlock;
    cp.kv_type = o.m.kv.type;
    bitnet_context *ctx = NULL;
    bitnet_status st;
    if ((st = bitnet_context_new(model, &cp, &ctx)) != BITNET_OK) {
        fprintf(stderr, "infer: %s\n", bitnet_last_error());
        bitnet_model_free(model);
        return 1;
    }
    bitnet_sampler *smp = NULL;
    bitnet_sampler_new(&o.sp, bitnet_n_vocab(model), &smp);
    if (!smp) {
        fprintf(stderr, "infer: %s\n", bitnet_last_error());
        bitnet_context_free(ctx);
        bitnet_model_free(model);
        return 1;
    }
    uint64_t t_loaded = now_ns();
    if (g_chat.on) { /* --chat: see run_chat */
        if (o.lookup || o.draft_model) fprintf(stderr, "infer: --lookup/--draft are not used in --chat\n");
        int rc = run_chat(model, ctx, smp, &o);
        bitnet_sampler_free(smp);
        bitnet_context_free(ctx);
        bitnet_model_free(model);
        return rc;
    }

    /* --lookup / --draft: speculative decoding in plain generation */
    bitnet_draft *spec = NULL;
    bitnet_model *dmodel = NULL;
    bitnet_context *dctx = NULL;
    int said = 0; /* the error is printed already */
    if ((o.lookup || o.draft_model) && o.interactive) {
        fprintf(stderr, "infer: --lookup/--draft are not used in interactive mode\n");
    } else if (o.lookup) {
        st = bitnet_draft_lookup_new(o.lookup, o.draft_max, &spec);
    } else if (o.draft_model) {
        bitnet_model_params dp = bitnet_model_default_params();
        dp.use_mmap = !o.no_mmap;
        dp.tokenizer_path = o.m.tokenizer; /* one vocabulary serves both (an ak42 draft has none of its own) */
        if ((st = bitnet_model_load(o.draft_model, &dp, &dmodel)) == BITNET_OK &&
            bitnet_n_vocab(dmodel) != bitnet_n_vocab(model)) {
            fprintf(stderr, "infer: the draft model %s has %d tokens, the model %d: they must share a vocabulary\n",
                    o.draft_model, bitnet_n_vocab(dmodel), bitnet_n_vocab(model));
            st = BITNET_ERR_ARG;
            said = 1;
        }
        bitnet_context_params dcp = cp;
        dcp.cpu_affinity = NULL;
        dcp.kv_type = BITNET_KV_DEFAULT;
        if (st == BITNET_OK && (st = bitnet_context_new(dmodel, &dcp, &dctx)) == BITNET_OK)
            st = bitnet_draft_model_new(dctx, o.draft_max, &spec);
    }
    int rc = 1;
    if (st != BITNET_OK) {
        if (!said) fprintf(stderr, "infer: %s%s\n", o.draft_model ? "draft model: " : "", bitnet_last_error());
    } else {
        rc = run_generate(model, ctx, smp, spec, &o, t0, t_loaded);
    }
    bitnet_draft_free(spec);
    bitnet_context_free(dctx);
    bitnet_model_free(dmodel);
    bitnet_sampler_free(smp);
    bitnet_context_free(ctx);
    bitnet_model_free(model);
    return rc;
}

int main(int argc, char **argv) {
    handle_version(argc, argv);
    options o;
    int rc = parse_args(argc, argv, &o) ? run_main(o) : 2;
    free(o.prompt_owned);
    free(o.gbnf);
    return rc;
}
