/* perplexity.c - windowed perplexity scoring (see perplexity.h). */
#include "model/perplexity.h"

#include <errno.h>
#include <math.h>

#include "formats/json.h"
#include "model/context.h"

bitnet_status bn_read_text_file(const char *path, char **out) {
    *out = NULL;
    FILE *f = fopen(path, "rb");
    if (!f) return bn_error(BITNET_ERR_IO, "cannot open %s: %s", path, strerror(errno));
    size_t cap = 1 << 16, n = 0, got;
    char *buf = malloc(cap);
    while (buf && (got = fread(buf + n, 1, cap - n - 1, f)) > 0) {
        n += got;
        if (cap - n < 2) {
            char *nb = cap <= SIZE_MAX / 2 ? realloc(buf, cap *= 2) : NULL;
            if (!nb) free(buf);
            buf = nb;
        }
    }
    /* a directory opens but does not read: say so instead of scoring nothing */
    int err = ferror(f) ? errno : 0;
    fclose(f);
    if (!buf) return bn_error(BITNET_ERR_NOMEM, "out of memory reading %s", path);
    if (err) {
        free(buf);
        return bn_error(BITNET_ERR_IO, "cannot read %s: %s", path, strerror(err));
    }
    buf[n] = 0;
    *out = buf;
    return BITNET_OK;
}

int bn_tokenize_alloc(const bitnet_model *m, const char *text, bitnet_token **out) {
    *out = NULL;
    size_t len = strlen(text);
    /* a token never covers less than one byte, so len + a few is enough */
    if (len > (size_t)(1 << 30)) return bn_error(BITNET_ERR_ARG, "text of %zu bytes is too long to tokenize", len);
    int cap = (int)len + 16;
    *out = malloc((size_t)cap * sizeof **out);
    if (!*out) return bn_error(BITNET_ERR_NOMEM, "out of memory for %d tokens", cap);
    return bitnet_tokenize(m, text, 0, *out, cap);
}

bitnet_status bn_read_calibration(const bitnet_model *m, const char *path, bitnet_token **out, int *n_out,
                                  int *n_texts) {
    char **texts = NULL;
    int n = 0;
    *out = NULL;
    *n_out = *n_texts = 0;
    bitnet_status st = bn_jsonl_read_texts(path, &texts, &n);
    if (st != BITNET_OK) return st;
    size_t cap = 0;
    for (int i = 0; i < n; i++) cap += strlen(texts[i]) + 16; /* a token covers at least one byte */
    bitnet_token *all = cap < (size_t)(1 << 30) ? malloc(cap * sizeof *all) : NULL;
    if (!all) st = bn_error(BITNET_ERR_NOMEM, "%s: out of memory for the calibration tokens", path);
    int total = 0;
    for (int i = 0; st == BITNET_OK && i < n; i++) {
        int got = bitnet_tokenize(m, texts[i], 0, all + total, (int)(cap - (size_t)total));
        if (got < 0) {
            char why[256]; /* bn_error writes the buffer bitnet_last_error() reads */
            snprintf(why, sizeof why, "%s", bitnet_last_error());
            st = bn_error((bitnet_status)got, "%s: text %d: cannot tokenize: %s", path, i + 1, why);
        } else {
            total += got;
        }
    }
    bn_jsonl_free_texts(texts, n);
    if (st != BITNET_OK) {
        free(all);
        return st;
    }
    *out = all;
    *n_out = total;
    *n_texts = n;
    return BITNET_OK;
}

double bn_token_nll(const float *logits, int n_vocab, int target) {
    double mx = logits[0];
    for (int i = 1; i < n_vocab; i++)
        if (logits[i] > mx) mx = logits[i];
    double s = 0.0;
    for (int i = 0; i < n_vocab; i++) s += exp((double)logits[i] - mx);
    return mx + log(s) - (double)logits[target];
}

void bn_nll_acc_ppl(const bn_nll_acc *a, double *ppl, double *err) {
    if (a->count <= 0) {
        *ppl = *err = 0.0;
        return;
    }
    double mean = a->sum / a->count, var = a->sum2 / a->count - mean * mean;
    *ppl = exp(mean);
    *err = (var > 0 && a->count > 1) ? *ppl * sqrt(var / (a->count - 1)) : 0.0;
}

int bn_ppl_n_windows(int n_toks, int n_ctx, int max_windows) {
    int n = n_ctx > 1 && n_toks > 0 ? n_toks / (n_ctx - 1) : 0;
    return max_windows > 0 && n > max_windows ? max_windows : n;
}

bitnet_status bn_ppl_window(bitnet_context *ctx, const bitnet_token *toks, int c, int n_ctx, bitnet_token *win,
                            float *logits, bn_nll_acc *acc) {
    const bitnet_model *m = ctx->model;
    const int per = n_ctx - 1, n_vocab = bitnet_n_vocab(m);
    win[0] = bitnet_token_bos(m);
    memcpy(win + 1, toks + (size_t)c * per, (size_t)per * sizeof *win);
    bitnet_status st = bitnet_eval_all_logits(ctx, win, n_ctx, 0, logits);
    if (st != BITNET_OK) return st;
    for (int j = n_ctx / 2; j < n_ctx - 1; j++) {
        double nll = bn_token_nll(logits + (size_t)j * n_vocab, n_vocab, win[j + 1]);
        acc->sum += nll;
        acc->sum2 += nll * nll;
        acc->count++;
    }
    return BITNET_OK;
}
