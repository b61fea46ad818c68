/* speculative.c - exact speculative decoding (bitnet.h: bitnet_draft_*,
 * bitnet_spec_step).
 *
 * A drafter guesses the next few tokens: prompt lookup (the continuation of
 * the latest earlier occurrence of the history's last n-gram, as llama.cpp's
 * lookup decoding) or a smaller model with the same vocabulary, greedily. The
 * target then evaluates the pending token and the whole draft in one batch
 * (its weights read once) and samples every row with the caller's sampler,
 * in order, exactly as plain decoding would: a sampled token that equals the
 * next draft token lets the next row count; the first that differs ends the
 * step. Each emitted token is drawn from the target's own distribution with
 * one sampler call, as in plain decoding, so the text is the same as plain
 * decoding's for every sampler setting and seed (for a deterministic draft
 * this is the standard acceptance rule: the draft token is kept with
 * probability p(token), and a rejection draws from p without it). The
 * rejected positions are removed from the cache (bitnet_seq_rm of a tail). */
#include "model/context.h"

struct bitnet_draft {
    int n_draft;             /* most tokens drafted per step */
    int k_next;              /* tokens to draft next step: grows after a fully accepted draft, shrinks after a miss */
    int ngram_max;           /* lookup: longest n-gram matched (0 for a draft model) */
    bitnet_context *dctx;    /* draft model's context, or NULL */
    int d_valid;             /* tokens of the history whose draft-cache entries are right */
    float *rows;             /* [1 + n_draft][n_vocab] the target's logits of one step */
    int rows_vocab;
    bitnet_token *draft;     /* [n_draft] */
    long n_drafted, n_accepted, n_steps;
};

static bitnet_status draft_alloc(int n_draft, bitnet_draft **out) {
    if (!out) return bn_error(BITNET_ERR_ARG, "draft: out is NULL");
    *out = NULL;
    if (n_draft < 1 || n_draft > 256) return bn_error(BITNET_ERR_ARG, "draft: --draft-max %d is outside 1..256", n_draft);
    bitnet_draft *d = calloc(1, sizeof *d);
    if (!d || !(d->draft = malloc((size_t)n_draft * sizeof *d->draft))) {
        free(d);
        return bn_error(BITNET_ERR_NOMEM, "draft: out of memory");
    }
    d->n_draft = d->k_next = n_draft;
    *out = d;
    return BITNET_OK;
}

bitnet_status bitnet_draft_lookup_new(int ngram_max, int n_draft, bitnet_draft **out) {
    if (ngram_max < 1 || ngram_max > 64) return bn_error(BITNET_ERR_ARG, "draft: --lookup %d is outside 1..64", ngram_max);
    bitnet_status st = draft_alloc(n_draft, out);
    if (st == BITNET_OK) (*out)->ngram_max = ngram_max;
    return st;
}

bitnet_status bitnet_draft_model_new(bitnet_context *draft_ctx, int n_draft, bitnet_draft **out) {
    if (!draft_ctx) return bn_error(BITNET_ERR_ARG, "draft: the draft context is NULL");
    bitnet_status st = draft_alloc(n_draft, out);
    if (st == BITNET_OK) (*out)->dctx = draft_ctx;
    return st;
}

void bitnet_draft_free(bitnet_draft *d) {
    if (!d) return;
    free(d->rows);
    free(d->draft);
    free(d);
}

void bitnet_draft_stats(const bitnet_draft *d, long *drafted, long *accepted, long *steps) {
    if (drafted) *drafted = d ? d->n_drafted : 0;
    if (accepted) *accepted = d ? d->n_accepted : 0;
    if (steps) *steps = d ? d->n_steps : 0;
}

/* Prompt lookup: the longest suffix of hist (ngram_max down to 1 tokens) that
 * also occurs earlier; the tokens after its latest earlier occurrence. */
int bitnet_draft_lookup(int ngram_max, const bitnet_token *hist, int n, bitnet_token *out, int max) {
    if (!hist || !out || n < 2 || max < 1) return 0;
    for (int g = BN_MIN(ngram_max, n - 1); g >= 1; g--) {
        const bitnet_token *suffix = hist + n - g;
        for (int start = n - g - 1; start >= 0; start--) { /* latest first */
            if (memcmp(hist + start, suffix, (size_t)g * sizeof *hist) != 0) continue;
            int k = 0;
            while (k < max && start + g + k < n) out[k] = hist[start + g + k], k++;
            if (k > 0) return k;
        }
    }
    return 0;
}

static int argmax(const float *v, int n) {
    int best = 0;
    for (int i = 1; i < n; i++)
        if (v[i] > v[best]) best = i;
    return best;
}

/* Draft model: bring its cache up to hist (only what changed since its last
 * step), then `max` greedy tokens, each evaluated but the last. Returns the
 * count, or a (negative) status. */
static int draft_model(bitnet_draft *d, const bitnet_token *hist, int n, int max, bitnet_token *out) {
    bitnet_context *dc = d->dctx;
    const int nv = bitnet_n_vocab(bitnet_get_model(dc));
    max = BN_MIN(max, bitnet_n_ctx(dc) - n);
    if (max < 1) return 0;
    const int from = BN_MIN(d->d_valid, n - 1); /* at least the pending token is new */
    bitnet_status st = bitnet_eval(dc, hist + from, n - from, from);
    if (st != BITNET_OK) return st;
    int k = 0;
    for (;;) {
        out[k] = argmax(bitnet_get_logits(dc), nv);
        if (++k == max) break;
        if ((st = bitnet_eval(dc, &out[k - 1], 1, n + k - 1)) != BITNET_OK) return st;
    }
    d->d_valid = n + k - 1; /* hist and out[0..k-2] are in the draft cache */
    return k;
}

int bitnet_spec_step(bitnet_context *ctx, bitnet_draft *d, bitnet_sampler *smp, const float *logit_bias,
                     const bitnet_token *hist, int n_hist, bitnet_token *out, int max_out) {
    if (!ctx || !d || !smp || !hist || !out) return bn_error(BITNET_ERR_ARG, "spec: NULL argument");
    if (n_hist < 1 || max_out < 1) return bn_error(BITNET_ERR_ARG, "spec: need a pending token and room for one");
    const int nv = bitnet_n_vocab(bitnet_get_model(ctx));
    if (d->dctx && bitnet_n_vocab(bitnet_get_model(d->dctx)) != nv)
        return bn_error(BITNET_ERR_ARG, "spec: the draft model has %d tokens, the target %d: they must share a vocabulary",
                        bitnet_n_vocab(bitnet_get_model(d->dctx)), nv);
    const int pos = n_hist - 1; /* the pending token's position */
    if (pos >= bitnet_n_ctx(ctx))
        return bn_error(BITNET_ERR_CONTEXT_FULL, "context is full: position %d does not fit in --ctx-size %d", pos,
                        bitnet_n_ctx(ctx));
    /* draft no more than the caller takes, the batch holds and the context has room for */
    int max = BN_MIN(BN_MIN(d->k_next, max_out - 1), BN_MIN(ctx->n_batch - 1, bitnet_n_ctx(ctx) - n_hist));
    int k = max < 1 ? 0 : d->dctx ? draft_model(d, hist, n_hist, max, d->draft) : bitnet_draft_lookup(d->ngram_max, hist, n_hist, d->draft, max);
    if (k < 0) return k; /* the draft model's eval failed: its error */
    if (d->rows_vocab != nv || !d->rows) {
        free(d->rows);
        d->rows = malloc((size_t)(1 + d->n_draft) * nv * sizeof(float));
        d->rows_vocab = d->rows ? nv : 0;
        if (!d->rows) return bn_error(BITNET_ERR_NOMEM, "spec: out of memory for %d x %d logits", 1 + d->n_draft, nv);
    }
    bitnet_token batch[257];
    batch[0] = hist[n_hist - 1];
    memcpy(batch + 1, d->draft, (size_t)k * sizeof *batch);
    bitnet_status st = bitnet_eval_all_logits(ctx, batch, 1 + k, pos, d->rows);
    if (st != BITNET_OK) return st;
    int n_out = 0;
    for (int i = 0; i <= k; i++) {
        float *row = d->rows + (size_t)i * nv;
        if (logit_bias)
            for (int v = 0; v < nv; v++) row[v] += logit_bias[v];
        const bitnet_token t = bitnet_sampler_sample(smp, row);
        bitnet_sampler_accept(smp, t);
        out[n_out++] = t;
        if (i == k || t != d->draft[i]) break; /* the last row, or the draft is wrong from here */
    }
    /* roll back the rejected draft tokens: ctx holds hist and out[0..n_out-2] */
    if ((st = bitnet_seq_rm(ctx, 0, pos + n_out, -1)) != BITNET_OK) return st;
    if (d->dctx && k > 0) { /* the draft cache stays right as far as the emitted tokens agree with the draft */
        int same = 0;
        while (same < n_out && same < k - 1 && out[same] == d->draft[same]) same++;
        d->d_valid = n_hist + same;
    }
    /* Verifying a token costs little next to reading the weights on a large
     * model but almost a whole step on a small one: draft one more than the
     * last step got right (up to n_draft), twice as many after a full hit. */
    if (k > 0) d->k_next = n_out - 1 == k ? BN_MIN(d->n_draft, 2 * k) : BN_MAX(1, n_out);
    d->n_steps++;
    d->n_drafted += k;
    d->n_accepted += n_out - 1;
    return n_out;
}
