/* sampler.c - greedy, temperature, top-k, top-p, min-p and repetition penalty.
 *
 * Order of operations (as llama.cpp's default chain): repetition penalty ->
 * top-k -> temperature -> softmax -> top-p -> min-p -> draw. temp <= 0 is
 * greedy argmax (the first maximum wins, as in llama2.c). All buffers are
 * allocated once in bitnet_sampler_new: sampling never allocates. */
#include <math.h>

#include "common.h"

typedef struct {
    float p;
    int id;
} candidate;

struct bitnet_sampler {
    bitnet_sampler_params p;
    int n_vocab;
    candidate *cand;
    bitnet_token *history; /* ring buffer of the last repeat_last_n tokens */
    int hist_len, hist_pos;
    uint64_t rng;
};

bitnet_sampler_params bitnet_sampler_default_params(void) {
    bitnet_sampler_params p;
    p.temp = 0.8f;
    p.top_k = 40;
    p.top_p = 0.95f;
    p.min_p = 0.05f;
    p.repeat_penalty = 1.0f;
    p.repeat_last_n = 64;
    p.seed = 42;
    return p;
}

bitnet_status bitnet_sampler_new(const bitnet_sampler_params *params, int n_vocab, bitnet_sampler **out) {
    if (!out) return bn_error(BITNET_ERR_ARG, "sampler: NULL out");
    *out = NULL;
    if (n_vocab <= 0) return bn_error(BITNET_ERR_ARG, "sampler: n_vocab %d (must be > 0)", n_vocab);
    bitnet_sampler *s = calloc(1, sizeof *s);
    if (!s) return bn_error(BITNET_ERR_NOMEM, "sampler: out of memory");
    s->p = params ? *params : bitnet_sampler_default_params();
    if (s->p.repeat_last_n < 0) s->p.repeat_last_n = 0;
    s->n_vocab = n_vocab;
    s->cand = malloc((size_t)n_vocab * sizeof(candidate));
    s->history = malloc((size_t)BN_MAX(s->p.repeat_last_n, 1) * sizeof(bitnet_token));
    s->rng = s->p.seed ? s->p.seed : 0x9E3779B97F4A7C15ull;
    if (!s->cand || !s->history) {
        bitnet_sampler_free(s);
        return bn_error(BITNET_ERR_NOMEM, "sampler: out of memory for %d tokens", n_vocab);
    }
    *out = s;
    return BITNET_OK;
}

void bitnet_sampler_free(bitnet_sampler *s) {
    if (!s) return;
    free(s->cand);
    free(s->history);
    free(s);
}

void bitnet_sampler_accept(bitnet_sampler *s, bitnet_token token) {
    if (s->p.repeat_last_n <= 0) return;
    s->history[s->hist_pos] = token;
    s->hist_pos = (s->hist_pos + 1) % s->p.repeat_last_n;
    if (s->hist_len < s->p.repeat_last_n) s->hist_len++;
}

/* xorshift64*: small, fast, and reproducible across platforms for a given seed. */
static float rng_f32(uint64_t *state) {
    *state ^= *state >> 12;
    *state ^= *state << 25;
    *state ^= *state >> 27;
    return (float)((*state * 0x2545F4914F6CDD1Dull) >> 40) / 16777216.0f;
}

static int cmp_desc(const void *a, const void *b) {
    float pa = ((const candidate *)a)->p, pb = ((const candidate *)b)->p;
    if (pa != pb) return pa > pb ? -1 : 1;
    return ((const candidate *)a)->id - ((const candidate *)b)->id;
}

/* In-place heapsort in cmp_desc order. Not qsort: glibc's allocates a merge
 * buffer for arrays over 1 KiB (with top-k off the whole vocabulary is sorted
 * every token), and sampling must not allocate (tests/test_alloc.c). cmp_desc
 * is a total order (ties broken by id), so the result is qsort's. */
static void sift_down(candidate *c, int i, int n) {
    for (;;) {
        int top = i, l = 2 * i + 1, r = l + 1;
        if (l < n && cmp_desc(&c[l], &c[top]) > 0) top = l;
        if (r < n && cmp_desc(&c[r], &c[top]) > 0) top = r;
        if (top == i) return;
        candidate t = c[i];
        c[i] = c[top];
        c[top] = t;
        i = top;
    }
}

static void sort_desc(candidate *c, int n) {
    for (int i = n / 2 - 1; i >= 0; i--) sift_down(c, i, n);
    for (int end = n - 1; end > 0; end--) {
        candidate t = c[0];
        c[0] = c[end];
        c[end] = t;
        sift_down(c, 0, end);
    }
}

/* Moves the k largest candidates to the front, sorted (quickselect + sort). */
static void top_k_select(candidate *c, int n, int k) {
    int lo = 0, hi = n - 1;
    while (lo < hi) {
        float pivot = c[(lo + hi) / 2].p;
        int i = lo, j = hi;
        while (i <= j) {
            while (c[i].p > pivot) i++;
            while (c[j].p < pivot) j--;
            if (i <= j) {
                candidate t = c[i];
                c[i] = c[j];
                c[j] = t;
                i++;
                j--;
            }
        }
        if (k - 1 <= j) hi = j;
        else if (k - 1 >= i) lo = i;
        else break;
    }
    sort_desc(c, k);
}

bitnet_token bitnet_sampler_sample(bitnet_sampler *s, float *logits) {
    const int n = s->n_vocab;
    const int repeat = s->p.repeat_penalty != 1.0f && s->p.repeat_penalty > 0.0f;
    if (repeat || s->p.presence_penalty != 0.0f || s->p.frequency_penalty != 0.0f) {
        for (int i = 0; i < s->hist_len; i++) {
            int t = s->history[i];
            if (t < 0 || t >= n) continue;
            /* applied once per distinct token (its first entry), with its count */
            int seen = 0, count = 1;
            for (int j = 0; j < i; j++) seen |= s->history[j] == t;
            if (seen) continue;
            for (int j = i + 1; j < s->hist_len; j++) count += s->history[j] == t;
            if (repeat) logits[t] = logits[t] > 0.0f ? logits[t] / s->p.repeat_penalty : logits[t] * s->p.repeat_penalty;
            logits[t] -= (float)count * s->p.frequency_penalty + s->p.presence_penalty;
        }
    }
    if (s->p.temp <= 0.0f) {
        int best = 0;
        for (int i = 1; i < n; i++)
            if (logits[i] > logits[best]) best = i;
        return best;
    }
    for (int i = 0; i < n; i++) s->cand[i] = (candidate){logits[i], i};
    int m = n;
    if (s->p.top_k > 0 && s->p.top_k < n) {
        top_k_select(s->cand, n, s->p.top_k);
        m = s->p.top_k;
    } else {
        sort_desc(s->cand, n);
    }
    /* softmax with temperature over the survivors (sorted descending) */
    const float max = s->cand[0].p;
    float sum = 0.0f;
    for (int i = 0; i < m; i++) {
        s->cand[i].p = expf((s->cand[i].p - max) / s->p.temp);
        sum += s->cand[i].p;
    }
    for (int i = 0; i < m; i++) s->cand[i].p /= sum;
    if (s->p.top_p > 0.0f && s->p.top_p < 1.0f) {
        float cum = 0.0f;
        for (int i = 0; i < m; i++) {
            cum += s->cand[i].p;
            if (cum >= s->p.top_p) {
                m = i + 1;
                break;
            }
        }
    }
    if (s->p.min_p > 0.0f) {
        const float floor_p = s->p.min_p * s->cand[0].p;
        int keep = 1;
        while (keep < m && s->cand[keep].p >= floor_p) keep++;
        m = keep;
    }
    float total = 0.0f;
    for (int i = 0; i < m; i++) total += s->cand[i].p;
    float r = rng_f32(&s->rng) * total, cdf = 0.0f;
    for (int i = 0; i < m; i++) {
        cdf += s->cand[i].p;
        if (r < cdf) return s->cand[i].id;
    }
    return s->cand[m - 1].id;
}
