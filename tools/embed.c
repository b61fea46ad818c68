/* embed - sentence embeddings, as llama.cpp's llama-embedding.
 *
 *   build/embed -m MODEL -p "text" [--pooling mean|cls|last|none] [--no-normalize]
 *
 * The text (or --tokens) is evaluated from position 0; the final-norm hidden
 * states are pooled as the model's GGUF pooling_type says (mean when it says
 * nothing) or --pooling, and L2-normalised. stdout: the vector as one line of
 * space-separated floats (one line per token with --pooling none), or a JSON
 * array with --json. */
#include <errno.h>

#include "bitnet.h"
#define TOOL_NAME "embed"
#include "util.h"

static void usage(FILE *out) {
    fprintf(out,
            "usage: embed -m MODEL (-p TEXT | --tokens ID,ID,...) [options]\n"
            "Embedding of a text: final-norm hidden states, pooled, L2-normalised.\n\n"
            "  -m, --model FILE      model (GGUF, ak42, safetensors)\n"
            "  -p, --prompt TEXT     text to embed (with BOS when the model adds one)\n"
            "      --tokens LIST     token ids instead, comma-separated, used as they are\n"
            "      --pooling P       mean, cls, last or none (default: the model's pooling_type, else mean)\n"
            "      --no-normalize    leave the vector unnormalised\n"
            "      --json            print a JSON array (of arrays with --pooling none)\n"
            MODEL_OPTIONS_HELP
            "  -h, --help            this help\n");
}

int main(int argc, char **argv) {
    handle_version(argc, argv);
    model_options mopt = MODEL_OPTIONS_DEFAULT; /* -m, --tokenizer, -t, --kv-type / -ctk / -ctv */
    const char *prompt = NULL, *ids = NULL;
    int normalize = 1, json = 0;
    bitnet_pooling pooling = BITNET_POOLING_DEFAULT;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--no-normalize")) { normalize = 0; continue; }
        if (!strcmp(a, "--json")) { json = 1; continue; }
        const char *v = option_value(argc, argv, &i, usage); /* -h: the help, exit 0 */
        if (!v) return 2;
        if (!strcmp(a, "-p") || !strcmp(a, "--prompt")) prompt = v;
        else if (!strcmp(a, "--tokens")) ids = v;
        else if (!strcmp(a, "--pooling")) {
            if (!strcmp(v, "mean")) pooling = BITNET_POOLING_MEAN;
            else if (!strcmp(v, "cls")) pooling = BITNET_POOLING_CLS;
            else if (!strcmp(v, "last")) pooling = BITNET_POOLING_LAST;
            else if (!strcmp(v, "none")) pooling = BITNET_POOLING_NONE;
            else {
                fprintf(stderr, "embed: --pooling expects mean, cls, last or none, got '%s'\n", v);
                return 2;
            }
        } else if (!model_option(a, v, &mopt)) /* -m, -t, ..., or an unknown option */
            return 2;
    }
    if (!mopt.model || !prompt == !ids) {
        fprintf(stderr, "embed: need -m MODEL and one of -p TEXT or --tokens (see --help)\n");
        return 2;
    }
    bitnet_model *m = load_model(mopt.model, mopt.tokenizer, NULL);
    if (!m) return 1;
    int n = 0, rc = 1;
    bitnet_token *toks = NULL;
    if (prompt) {
        const int cap = (int)strlen(prompt) + 3;
        toks = malloc((size_t)cap * sizeof *toks);
        n = toks ? bitnet_tokenize(m, prompt, 1, toks, cap) : -1;
    } else {
        int cap = 1;
        for (const char *c = ids; *c; c++) cap += *c == ',';
        toks = malloc((size_t)cap * sizeof *toks);
        for (const char *c = ids; toks && *c;) {
            char *end;
            errno = 0;
            long id = strtol(c, &end, 10);
            if (errno || end == c || id < 0 || id > INT32_MAX || (*end && *end != ',')) {
                fprintf(stderr, "embed: --tokens: '%s' is not a comma-separated list of token ids\n", ids);
                n = -2;
                break;
            }
            toks[n++] = (bitnet_token)id;
            c = *end ? end + 1 : end;
        }
    }
    const int dim = bitnet_n_embd(m);
    bitnet_context *ctx = NULL;
    float *out = NULL;
    if (n < 1) {
        if (n != -2) fprintf(stderr, "embed: nothing to embed: %s\n", n < 0 ? bitnet_last_error() : "no tokens");
    } else {
        bitnet_context_params cp = bitnet_context_default_params();
        cp.n_ctx = n;
        cp.n_batch = n;
        cp.n_threads = mopt.n_threads;
        cp.kv_type = mopt.kv.type;
        const bitnet_pooling eff = pooling != BITNET_POOLING_DEFAULT ? pooling
                                   : bitnet_model_pooling(m) != BITNET_POOLING_DEFAULT ? bitnet_model_pooling(m)
                                                                                      : BITNET_POOLING_MEAN;
        const int rows = eff == BITNET_POOLING_NONE ? n : 1;
        if (bitnet_context_new(m, &cp, &ctx) != BITNET_OK || !(out = malloc((size_t)rows * dim * sizeof(float))) ||
            bitnet_embed(ctx, toks, n, eff, normalize, out) != BITNET_OK) {
            fprintf(stderr, "embed: %s\n", out ? bitnet_last_error() : "out of memory");
        } else {
            if (json) printf(rows > 1 ? "[" : "");
            for (int r = 0; r < rows; r++) {
                if (json) printf("%s[", r ? "," : "");
                for (int i = 0; i < dim; i++) printf(json ? "%s%.9g" : "%s%.9g", i ? (json ? "," : " ") : "", (double)out[(size_t)r * dim + i]);
                printf(json ? "]" : "\n");
            }
            if (json) printf(rows > 1 ? "]\n" : "\n");
            rc = 0;
        }
    }
    free(out);
    free(toks);
    bitnet_context_free(ctx);
    bitnet_model_free(m);
    return rc;
}
