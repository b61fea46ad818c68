/* perplexity.h - perplexity over fixed windows, shared by build/perplexity and
 * build/prune (calibration and held-out scoring), so both print the same number
 * for the same model, text and window size.
 *
 * A token stream (the text tokenized without BOS) is cut into NON-overlapping
 * windows of [BOS] + (n_ctx-1) tokens, each evaluated from position 0. As in
 * llama.cpp, only the second half of a window is scored: the logits at
 * positions n_ctx/2 .. n_ctx-2 predict the tokens at n_ctx/2+1 .. n_ctx-1.
 * Log-probabilities use log-sum-exp in double. */
#ifndef BN_PERPLEXITY_H
#define BN_PERPLEXITY_H

#include "bitnet.h"

/* Running sums of the per-token negative log-likelihoods. */
typedef struct {
    double sum, sum2;
    long count;
} bn_nll_acc;

/* Reads a whole file into a malloc'd NUL-terminated string.
 * Errors (one line): "cannot open PATH: reason", "cannot read PATH: reason". */
bitnet_status bn_read_text_file(const char *path, char **out);

/* Tokenizes `text` without BOS into a malloc'd array (*out, free() it);
 * returns the number of tokens or a negative status. */
int bn_tokenize_alloc(const bitnet_model *m, const char *text, bitnet_token **out);

/* The texts of a JSONL calibration file (one {"text": ...} per line, see
 * bn_jsonl_read_texts) tokenized without BOS and concatenated into one stream
 * (*out, free() it) of *n_out tokens from *n_texts texts (build/prune). */
bitnet_status bn_read_calibration(const bitnet_model *m, const char *path, bitnet_token **out, int *n_out,
                                  int *n_texts);

/* -log softmax(logits)[target]. */
double bn_token_nll(const float *logits, int n_vocab, int target);

/* PPL = exp(mean) and llama.cpp's standard error PPL * sqrt(var / (N-1)). */
void bn_nll_acc_ppl(const bn_nll_acc *a, double *ppl, double *err);

/* Number of whole windows of n_ctx in n_toks tokens (each takes n_ctx-1 text
 * tokens), capped at max_windows when that is > 0. */
int bn_ppl_n_windows(int n_toks, int n_ctx, int max_windows);

/* Evaluates window `c` of the stream toks (BOS + toks[c*(n_ctx-1) ..]) in ctx
 * from position 0 and adds its scored tokens to acc. Scratch: win holds n_ctx
 * tokens, logits n_ctx * n_vocab floats. ctx needs n_ctx >= the window. */
bitnet_status bn_ppl_window(bitnet_context *ctx, const bitnet_token *toks, int c, int n_ctx, bitnet_token *win,
                            float *logits, bn_nll_acc *acc);

#endif
