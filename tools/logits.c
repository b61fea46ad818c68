/* logits - teacher-forced logits of every position, for comparing runtimes.
 *
 *   build/logits -m MODEL --tokens 1,450,4996 -o OUT.bin [--compare REF.bin]
 *
 * The tokens are evaluated as one batch from position 0 (as llama.cpp's
 * llama_decode of the whole sequence with logits for every position), and the
 * logits written as raw little-endian float32 [n_tokens][n_vocab], the layout
 * of ../shared/peer-fixtures/<model>.<runtime>.logits.bin. With --compare, the
 * same metrics that folder's README uses are printed against a reference file
 * of that layout: per position the cosine similarity, the argmax of each side
 * and the reference's top-2 margin; then one summary line
 *   compare: max_abs A max_abs_over_sd B rms_over_sd C cos_min D argmax K/N
 * where sd is the standard deviation of a reference row (the largest ratio
 * over the positions is reported, as the README does). */
#include <errno.h>
#include <math.h>

#include "bitnet.h"
#define TOOL_NAME "logits"
#include "util.h"

typedef struct {
    model_options m; /* -m, --tokenizer, -t, --kv-type / -ctk / -ctv */
    const char *tokens, *prompt, *out, *compare;
} options;

static void usage(FILE *out) {
    fprintf(out,
            "usage: logits -m MODEL (--tokens ID,ID,... | -p TEXT) [-o OUT.bin] [--compare REF.bin] [options]\n"
            "Teacher-forced logits of every position: the tokens are evaluated as one batch\n"
            "from position 0 and the logits written as little-endian float32 [n_tokens][n_vocab].\n\n"
            "  -m, --model FILE      model (GGUF, ak42, safetensors file or Hugging Face directory)\n"
            "      --tokens LIST     token ids, comma-separated (given as they are: no BOS is added)\n"
            "  -p, --prompt TEXT     text to tokenize instead (with BOS when the model adds one)\n"
            "  -o, --output FILE     where to write the logits\n"
            "      --compare FILE    a reference of the same layout: print cosine per position,\n"
            "                        argmax agreement, max |diff| and rms(diff), also over the\n"
            "                        reference row's standard deviation\n"
            MODEL_OPTIONS_HELP
            "  -h, --help            this help\n");
}

static int parse_args(int argc, char **argv, options *o) {
    *o = (options){.m = MODEL_OPTIONS_DEFAULT};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = option_value(argc, argv, &i, usage);
        if (!v) return 0;
        int ok = 1;
        if (!strcmp(a, "--tokens")) o->tokens = v;
        else if (!strcmp(a, "-p") || !strcmp(a, "--prompt")) o->prompt = v;
        else if (!strcmp(a, "-o") || !strcmp(a, "--output")) o->out = v;
        else if (!strcmp(a, "--compare")) o->compare = v;
        else ok = model_option(a, v, &o->m); /* -m, -t, ..., or an unknown option */
        if (!ok) return 0;
    }
    if (!o->m.model || (!o->tokens == !o->prompt) || (!o->out && !o->compare)) {
        fprintf(stderr, "logits: need -m MODEL, one of --tokens or -p, and -o and/or --compare (see --help)\n");
        return 0;
    }
    return 1;
}

/* "1,450,4996" into ids; returns the count, or -1 after a message. */
static int parse_tokens(const char *s, bitnet_token **out) {
    int cap = 16, n = 0;
    bitnet_token *t = malloc((size_t)cap * sizeof *t);
    while (t && *s) {
        char *end;
        errno = 0;
        long v = strtol(s, &end, 10);
        if (errno || end == s || v < 0 || v > INT32_MAX || (*end && *end != ',')) {
            fprintf(stderr, "logits: --tokens: '%s' is not a comma-separated list of token ids\n", s);
            free(t);
            return -1;
        }
        if (n == cap) {
            bitnet_token *nt = realloc(t, (size_t)(cap *= 2) * sizeof *t);
            if (!nt) break;
            t = nt;
        }
        t[n++] = (bitnet_token)v;
        s = *end ? end + 1 : end;
    }
    if (!t || n == 0) {
        fprintf(stderr, "logits: --tokens: %s\n", t ? "no token ids" : "out of memory");
        free(t);
        return -1;
    }
    *out = t;
    return n;
}

/* The README's metrics of ours against ref, both [n][vocab]. */
static void compare(const float *ours, const float *ref, int n, int vocab) {
    double max_abs = 0, max_abs_sd = 0, rms_sd = 0, cos_min = 1;
    int agree = 0;
    for (int t = 0; t < n; t++) {
        const float *a = ours + (size_t)t * vocab, *b = ref + (size_t)t * vocab;
        double mean = 0, dot = 0, na = 0, nb = 0, d2 = 0, dmax = 0;
        int am = 0, bm = 0, b2 = -1;
        for (int i = 0; i < vocab; i++) mean += b[i];
        mean /= vocab;
        double var = 0;
        for (int i = 0; i < vocab; i++) {
            const double d = (double)a[i] - b[i];
            var += (b[i] - mean) * (b[i] - mean);
            dot += (double)a[i] * b[i];
            na += (double)a[i] * a[i];
            nb += (double)b[i] * b[i];
            d2 += d * d;
            dmax = fmax(dmax, fabs(d));
            if (a[i] > a[am]) am = i;
            if (b[i] > b[bm]) b2 = bm, bm = i;
            else if (i != bm && (b2 < 0 || b[i] > b[b2])) b2 = i;
        }
        const double sd = sqrt(var / vocab), cs = dot / (sqrt(na) * sqrt(nb) + 1e-30);
        const double rms = sqrt(d2 / vocab);
        printf("pos %2d  cos %.6f  max_abs %.4f  rms %.4f  argmax %d %s %d  ref_margin %.4f\n", t, cs, dmax, rms, am,
               am == bm ? "==" : "!=", bm, b2 >= 0 ? (double)b[bm] - b[b2] : 0.0);
        max_abs = fmax(max_abs, dmax);
        max_abs_sd = fmax(max_abs_sd, sd > 0 ? dmax / sd : 0);
        rms_sd = fmax(rms_sd, sd > 0 ? rms / sd : 0);
        cos_min = fmin(cos_min, cs);
        agree += am == bm;
    }
    printf("compare: max_abs %.4f max_abs_over_sd %.4f rms_over_sd %.5f cos_min %.6f argmax %d/%d\n", max_abs, max_abs_sd,
           rms_sd, cos_min, agree, n);
}

int main(int argc, char **argv) {
    handle_version(argc, argv);
    options o;
    if (!parse_args(argc, argv, &o)) return 2;
    bitnet_model *model = load_model(o.m.model, o.m.tokenizer, NULL);
    if (!model) return 1;
    bitnet_token *toks = NULL;
    int n = 0, rc = 1;
    if (o.tokens) {
        n = parse_tokens(o.tokens, &toks);
    } else {
        const int cap = (int)strlen(o.prompt) + 2;
        toks = malloc((size_t)cap * sizeof *toks);
        n = toks ? bitnet_tokenize(model, o.prompt, 1, toks, cap) : -1;
        if (n <= 0) fprintf(stderr, "logits: cannot tokenize the prompt: %s\n", n < 0 ? bitnet_last_error() : "empty");
        if (n == 0) n = -1;
    }
    const int vocab = bitnet_n_vocab(model);
    bitnet_context_params cp = bitnet_context_default_params();
    cp.n_ctx = n > 0 ? n : 1;
    cp.n_batch = cp.n_ctx;
    cp.n_threads = o.m.n_threads;
    cp.kv_type = o.m.kv.type;
    bitnet_context *ctx = NULL;
    float *logits = NULL, *ref = NULL;
    if (n > 0 && bitnet_context_new(model, &cp, &ctx) != BITNET_OK) {
        fprintf(stderr, "logits: %s\n", bitnet_last_error());
    } else if (n > 0 && !(logits = malloc((size_t)n * vocab * sizeof(float)))) {
        fprintf(stderr, "logits: out of memory for %d x %d logits\n", n, vocab);
    } else if (n > 0 && bitnet_eval_all_logits(ctx, toks, n, 0, logits) != BITNET_OK) {
        fprintf(stderr, "logits: %s\n", bitnet_last_error());
    } else if (n > 0) {
        rc = 0;
        if (o.out) {
            FILE *f = fopen(o.out, "wb");
            if (!f || fwrite(logits, sizeof(float), (size_t)n * vocab, f) != (size_t)n * vocab || fclose(f) != 0) {
                fprintf(stderr, "logits: cannot write %s: %s\n", o.out, strerror(errno));
                if (f) fclose(f);
                remove(o.out);
                rc = 1;
            } else {
                fprintf(stderr, "logits: wrote %d x %d float32 to %s\n", n, vocab, o.out);
            }
        }
        if (rc == 0 && o.compare) {
            FILE *f = fopen(o.compare, "rb");
            ref = malloc((size_t)n * vocab * sizeof(float));
            long size = -1;
            if (f && fseek(f, 0, SEEK_END) == 0) size = ftell(f);
            if (!f || !ref) {
                fprintf(stderr, "logits: cannot read %s: %s\n", o.compare, f ? "out of memory" : strerror(errno));
                rc = 1;
            } else if (size != (long)((size_t)n * vocab * sizeof(float))) {
                fprintf(stderr, "logits: %s has %ld bytes, not %d x %d float32 (%zu bytes)\n", o.compare, size, n, vocab,
                        (size_t)n * vocab * sizeof(float));
                rc = 1;
            } else if (fseek(f, 0, SEEK_SET) != 0 || fread(ref, sizeof(float), (size_t)n * vocab, f) != (size_t)n * vocab) {
                fprintf(stderr, "logits: cannot read %s\n", o.compare);
                rc = 1;
            } else {
                compare(logits, ref, n, vocab);
            }
            if (f) fclose(f);
        }
    }
    free(ref);
    free(logits);
    free(toks);
    bitnet_context_free(ctx);
    bitnet_model_free(model);
    return rc;
}
