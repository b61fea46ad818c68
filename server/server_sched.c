/* server_sched.c - slot scheduler of build/server (see server.h).
 *
 * One decode thread owns the context. Each step it gathers one token from every
 * slot that is generating plus, with the rest of the n_batch budget, chunks of the
 * prompts of newly admitted requests, runs them in ONE bitnet_eval_batch call (the
 * weights are read once per step however many streams there are), samples each
 * slot that needs a token with its own sampler, and hands the new text to the
 * connection threads. Everything a step needs is allocated when a request is
 * admitted (or at start-up), so the step loop does not allocate except when a
 * job's output buffer grows (amortised doubling).
 *
 * Prefix cache (llama.cpp's cache_prompt): a slot keeps the tokens its KV
 * cache holds after its request ends. A new request goes to the free slot whose
 * cached tokens share the longest prefix with its prompt (least recently used
 * among equals); when another slot, busy or not, holds a longer one, those
 * positions are copied over (bitnet_seq_cp, between steps), and only the rest
 * of the prompt is evaluated: a system prompt shared by the requests is
 * evaluated once. The cached positions are
 * exactly what a fresh evaluation would have written (the forward pass of a
 * position depends only on the tokens before it), so the output is the same.
 *
 * Speculative decoding (--lookup N): a generating slot also puts into the
 * step the tokens that followed the latest earlier occurrence of its last
 * N..1 tokens (prompt lookup, bitnet_draft_lookup), with logits for each
 * (bitnet_eval_batch_logits); its rows are sampled in order with its own
 * sampler, grammar and stop filter, exactly as plain decoding would, and a
 * sampled token that equals the next draft token lets the next row count.
 * The rejected tail is removed (bitnet_seq_rm). The text is plain decoding's
 * for every sampler and seed; a repetitive output takes several tokens a step.
 *
 * Locking: one mutex guards the queue, the slot <-> job assignment, the jobs'
 * output fields and the statistics. The decode thread drops it during the forward
 * pass and sampling, which touch only decode-thread state and read-only job inputs. */
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <time.h>

#include "common.h"
#include "server.h"

const double bn_lat_bucket_le[BN_LAT_BUCKETS] = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
                                                 0.05,   0.1,   0.25,   0.5,   1.0,  2.5};

typedef struct {
    bn_job *job;             /* NULL: free                                          */
    int n_past;              /* tokens of this sequence in the KV cache               */
    int n_fed;               /* prompt tokens put into batches so far                 */
    int limit;               /* tokens to generate at most                            */
    bitnet_token last, prev; /* last sampled token (fed next step) and the one before */
    int sample_now;          /* this step ends with this sequence's logits             */
    int failed;              /* this step's forward pass failed for this sequence     */
    int new_token;           /* tokens this step produced (not EOS)                    */
    int new_lp;              /* ... and the logprob entries written for them            */
    int generating;          /* this step decodes (rather than feeds the prompt)        */
    int p0;                  /* n_past before this step                                 */
    int n_draft, k_next;     /* --lookup: tokens drafted this step, to draft next step  */
    bitnet_token draft[BN_SPEC_MAX];
    int row;                 /* --lookup: its first logits row in the step's rows       */
    int full;                /* --context-shift: the context is full, shift after the step */
    int exact_end;           /* cache positions from here were computed with tokens a context
                                shift dropped: not a fresh evaluation's, not for reuse   */
    uint64_t t_last;         /* when the previous token was produced                   */
    bn_stop_filter filter;
    char emit[BN_STOP_MAX_LEN + (BN_SPEC_MAX + 3) * BN_PIECE_MAX + 16]; /* text released this step */
    size_t n_emit;
    bn_finish finish;        /* set when the job ends this step                        */
    bitnet_token *cache;     /* [n_ctx] the tokens at positions 0..n_cache-1 of the KV cache */
    int n_cache;
    uint64_t last_used;      /* admission counter: least recently used among equals   */
} slot;

struct bn_sched {
    bitnet_model *model;
    bitnet_context *ctx;
    int n_slots, n_batch, n_ctx, n_vocab, max_queue;
    int lookup, draft_max;   /* --lookup N, --draft-max: speculative decoding, 0 = off */
    int context_shift;       /* --context-shift                                        */
    int step_shifts;         /* this step's context shifts (published under the lock)  */
    int8_t *b_want, *r_want; /* [n_batch] --lookup: which tokens' logits the step needs */
    int step_drafted, step_accepted; /* --lookup: this step's draft tokens and those kept */
    /* bn_sched_slot_action: one at a time, run by the decode thread in housekeeping */
    struct {
        int pending, slot, result, n;
        bn_slot_action what;
        const char *path;
        char err[320];
    } act;
    pthread_cond_t act_done;
    float *rows;             /* [n_batch][n_vocab] --lookup: those logits, packed      */
    bitnet_token bos, eos;
    bn_vocab_pieces pieces; /* every token's text, built at the first JSON-mode request */
    slot *slots;
    bitnet_token *b_tok; /* [n_batch] the step's batch */
    int *b_pos, *b_seq;
    bitnet_token *r_tok; /* [n_batch] one sequence's part of it, when the batch failed */
    int *r_pos, *r_seq;

    pthread_mutex_t mu;
    pthread_cond_t wake; /* new job, cancellation, shutdown        */
    pthread_cond_t idle; /* a slot was freed (bn_sched_drain waits) */
    pthread_t thread;
    int started;
    bn_job *q_head, *q_tail;
    int n_queued, n_busy;
    uint64_t n_admitted;
    int stopping, abort_all, quit;
    bn_sched_stats st;
};

void bn_job_init(bn_job *j) {
    memset(j, 0, sizeof *j);
    bn_json_mode_init(&j->json);
    j->slot = -1;
    pthread_condattr_t a;
    pthread_condattr_init(&a);
    pthread_condattr_setclock(&a, CLOCK_MONOTONIC);
    pthread_cond_init(&j->cond, &a);
    pthread_condattr_destroy(&a);
}

void bn_job_destroy(bn_job *j) {
    bn_buf_free(&j->out);
    free(j->lp);
    free(j->lp_logits);
    j->lp = NULL;
    j->lp_logits = NULL;
    free(j->prompt);
    bitnet_grammar_free(j->grammar);
    j->grammar = NULL;
    bitnet_sampler_free(j->sampler);
    pthread_cond_destroy(&j->cond);
    j->prompt = NULL;
    j->sampler = NULL;
}

/* ---- under the lock ---------------------------------------------------------------- */

static void job_done(bn_sched *s, bn_job *j, bn_finish f) {
    j->t_end = bn_time_ns();
    j->done = 1;
    j->finish = f;
    if (f == BN_FINISH_CANCELLED) s->st.jobs_cancelled++;
    pthread_cond_broadcast(&j->cond);
}

static void slot_release(bn_sched *s, slot *sl, bn_finish f) {
    job_done(s, sl->job, f);
    sl->job = NULL;
    s->n_busy--;
    pthread_cond_broadcast(&s->idle);
}

/* Tokens of the prompt the slot's cache already holds; at most n_prompt - 1,
 * since the last prompt token is evaluated again for its logits. */
static int reusable(const slot *sl, const bn_job *j) {
    if (!j->req->cache_prompt) return 0;
    int n = 0;
    const int max = BN_MIN(BN_MIN(sl->n_cache, sl->exact_end), j->n_prompt - 1);
    while (n < max && sl->cache[n] == j->prompt[n]) n++;
    return n;
}

/* A longer cached prefix of j's prompt in another slot than in `to`: copied
 * into `to` (its KV rows and tokens). Under the lock, between steps. */
static void borrow_prefix(bn_sched *s, slot *to, const bn_job *j) {
    int best = -1, best_n = reusable(to, j);
    for (int i = 0; i < s->n_slots; i++) {
        if (&s->slots[i] == to) continue;
        const int n = reusable(&s->slots[i], j);
        if (n > best_n) best = i, best_n = n;
    }
    if (best < 0 || bitnet_seq_cp(s->ctx, best, (int)(to - s->slots), 0, best_n) != BITNET_OK) return;
    memcpy(to->cache, s->slots[best].cache, (size_t)best_n * sizeof *to->cache);
    to->n_cache = best_n;
}

static void slot_start(bn_sched *s, slot *sl, bn_job *j) {
    sl->job = j;
    if (j->req->cache_prompt && j->n_prompt >= 1 && j->n_prompt < s->n_ctx) borrow_prefix(s, sl, j);
    sl->n_past = sl->n_fed = j->n_cached = j->n_prompt >= 1 && j->n_prompt < s->n_ctx ? reusable(sl, j) : 0;
    sl->n_cache = sl->n_past; /* what lies beyond is overwritten from here on */
    sl->exact_end = INT_MAX;  /* the reused part was exact, and what follows is evaluated fresh */
    sl->full = 0;
    sl->last_used = ++s->n_admitted;
    j->slot = (int)(sl - s->slots);
    j->t_start = bn_time_ns();
    sl->limit = j->req->max_tokens < 0 ? INT_MAX : j->req->max_tokens;
    sl->prev = sl->last = j->n_prompt > 0 ? j->prompt[j->n_prompt - 1] : 0;
    sl->sample_now = 0;
    sl->k_next = s->draft_max;
    sl->t_last = 0;
    sl->n_emit = 0;
    sl->finish = BN_FINISH_NONE;
    bn_stop_filter_init(&sl->filter, j->req);
    s->n_busy++;
    s->st.prompt_tokens += (uint64_t)j->n_prompt;
    if (j->n_prompt < 1 || j->n_prompt >= s->n_ctx) slot_release(s, sl, BN_FINISH_ERROR); /* caller's job to check */
    else if (sl->limit == 0) slot_release(s, sl, BN_FINISH_LENGTH);
}

/* A pending slot action (bn_sched_slot_action), between steps. */
static void run_slot_action(bn_sched *s) {
    slot *sl = &s->slots[s->act.slot];
    bitnet_status st = BITNET_OK;
    s->act.result = 0;
    if (sl->job) {
        s->act.result = 1;
    } else if (s->act.what == BN_SLOT_SAVE) {
        s->act.n = BN_MIN(sl->n_cache, sl->exact_end); /* what a fresh evaluation would hold */
        st = bitnet_state_seq_save_file(s->ctx, s->act.slot, s->act.path, sl->cache, s->act.n);
    } else if (s->act.what == BN_SLOT_RESTORE) {
        st = bitnet_state_seq_load_file(s->ctx, s->act.slot, s->act.path, sl->cache, s->n_ctx, &s->act.n);
        sl->n_cache = st == BITNET_OK ? s->act.n : bitnet_seq_n_pos(s->ctx, s->act.slot) == 0 ? 0 : sl->n_cache;
        if (st == BITNET_OK) sl->exact_end = INT_MAX;
        sl->last_used = ++s->n_admitted; /* the least likely to be taken for another prompt */
    } else {
        s->act.n = sl->n_cache;
        st = bitnet_seq_rm(s->ctx, s->act.slot, 0, -1);
        sl->n_cache = 0;
        sl->exact_end = INT_MAX;
    }
    if (st != BITNET_OK) {
        s->act.result = -1;
        snprintf(s->act.err, sizeof s->act.err, "%s", bitnet_last_error());
    }
    s->act.pending = 0;
    pthread_cond_broadcast(&s->act_done);
}

/* Cancellations, shutdown, and admission of queued jobs into free slots. */
static void housekeeping(bn_sched *s) {
    if (s->act.pending) run_slot_action(s);
    for (int i = 0; i < s->n_slots; i++) {
        slot *sl = &s->slots[i];
        if (sl->job && (sl->job->cancelled || s->abort_all))
            slot_release(s, sl, sl->job->cancelled ? BN_FINISH_CANCELLED : BN_FINISH_ABORTED);
    }
    bn_job **pp = &s->q_head;
    s->q_tail = NULL;
    while (*pp) { /* drop cancelled (or, when aborting, all) queued jobs */
        bn_job *j = *pp;
        if (j->cancelled || s->abort_all) {
            *pp = j->next;
            s->n_queued--;
            job_done(s, j, j->cancelled ? BN_FINISH_CANCELLED : BN_FINISH_ABORTED);
        } else {
            s->q_tail = j;
            pp = &j->next;
        }
    }
    while (s->q_head && s->n_busy < s->n_slots) { /* FIFO; each to the free slot with the longest cached prefix */
        bn_job *j = s->q_head;
        int best = -1, best_n = -1;
        for (int i = 0; i < s->n_slots; i++) {
            if (s->slots[i].job) continue;
            const int n = reusable(&s->slots[i], j);
            if (n > best_n || (n == best_n && s->slots[i].last_used < s->slots[best].last_used)) best = i, best_n = n;
        }
        s->q_head = j->next;
        if (!s->q_head) s->q_tail = NULL;
        s->n_queued--;
        slot_start(s, &s->slots[best], j);
    }
    if (s->n_busy == 0 && s->n_queued == 0) pthread_cond_broadcast(&s->idle);
}

/* ---- outside the lock ------------------------------------------------------------------ */

/* --lookup: up to max draft tokens for slot i, written after its pending
 * token (batch index n) into the batch and the slot's token cache. */
static int add_draft(bn_sched *s, int i, int n, int max) {
    slot *sl = &s->slots[i];
    max = BN_MIN(BN_MIN(max, sl->k_next), s->n_ctx - sl->n_past - 1); /* room in the cache */
    max = BN_MIN(max, sl->limit - sl->job->n_gen - 1);                 /* tokens the request still takes */
    const int k = max > 0 ? bitnet_draft_lookup(s->lookup, sl->cache, sl->n_past + 1, sl->draft, max) : 0;
    for (int j = 0; j < k; j++) {
        s->b_tok[n + j] = sl->cache[sl->n_past + 1 + j] = sl->draft[j];
        s->b_pos[n + j] = sl->n_past + 1 + j;
        s->b_seq[n + j] = i;
        s->b_want[n + j] = 1;
    }
    return sl->n_draft = k;
}

/* Fills the batch: one token (and --lookup's draft) per generating slot, then
 * prompt chunks. */
static int build_batch(bn_sched *s) {
    int n = 0, spare = s->n_batch;
    for (int i = 0; i < s->n_slots; i++) {
        slot *sl = &s->slots[i];
        sl->generating = sl->job && sl->n_fed >= sl->job->n_prompt;
        spare -= sl->generating;
    }
    for (int i = 0; i < s->n_slots; i++) {
        slot *sl = &s->slots[i];
        sl->sample_now = sl->n_draft = 0;
        if (!sl->generating) continue;
        sl->p0 = sl->n_past;
        s->b_tok[n] = sl->cache[sl->n_past] = sl->last;
        s->b_pos[n] = sl->n_past;
        s->b_seq[n] = i;
        if (s->b_want) s->b_want[n] = 1;
        sl->sample_now = 1;
        n++;
        if (s->lookup) {
            const int k = add_draft(s, i, n, BN_MIN(spare, s->draft_max));
            n += k;
            spare -= k;
        }
    }
    for (int i = 0; i < s->n_slots && n < s->n_batch; i++) {
        slot *sl = &s->slots[i];
        if (!sl->job || sl->n_fed >= sl->job->n_prompt) continue;
        int chunk = BN_MIN(sl->job->n_prompt - sl->n_fed, s->n_batch - n);
        for (int k = 0; k < chunk; k++, n++) {
            s->b_tok[n] = sl->cache[sl->n_fed + k] = sl->job->prompt[sl->n_fed + k];
            s->b_pos[n] = sl->n_fed + k;
            s->b_seq[n] = i;
            if (s->b_want) s->b_want[n] = 0;
        }
        sl->n_fed += chunk;
        sl->sample_now = sl->n_fed == sl->job->n_prompt;
        if (s->b_want && sl->sample_now) s->b_want[n - 1] = 1;
    }
    for (int k = 0, r = 0; k < n; k++) {
        slot *sl = &s->slots[s->b_seq[k]];
        if (s->b_want && s->b_want[k] && (k == 0 || s->b_seq[k - 1] != s->b_seq[k] || !s->b_want[k - 1])) sl->row = r;
        r += s->b_want && s->b_want[k];
        sl->n_past++;
    }
    return n;
}

/* Log-softmax of the raw logits at `tok`, and the `k` most likely tokens. */
static void logprob_entry(const float *l, int n, bitnet_token tok, int k, bn_logprob *e) {
    float mx = -INFINITY;
    for (int i = 0; i < n; i++) mx = l[i] > mx ? l[i] : mx;
    double sum = 0.0;
    for (int i = 0; i < n; i++) sum += exp((double)(l[i] - mx));
    const double lse = (double)mx + log(sum);
    e->id = tok;
    e->logprob = (float)((double)l[tok] - lse);
    e->n_top = 0;
    for (int i = 0; i < n && k > 0; i++) { /* insertion into the k best so far, highest first */
        if (e->n_top == k && l[i] <= l[e->top_id[k - 1]]) continue;
        int p = e->n_top < k ? e->n_top++ : k - 1;
        while (p > 0 && l[e->top_id[p - 1]] < l[i]) {
            e->top_id[p] = e->top_id[p - 1];
            p--;
        }
        e->top_id[p] = i;
    }
    for (int t = 0; t < e->n_top; t++) e->top_logprob[t] = (float)((double)l[e->top_id[t]] - lse);
}

/* Samples the next token of a slot from logits and runs it through the stop filter. */
static void sample_slot(bn_sched *s, int i, float *logits) {
    slot *sl = &s->slots[i];
    const bn_gen_request *r = sl->job->req;
    bn_job *j = sl->job;
    if (r->logprobs) memcpy(j->lp_logits, logits, (size_t)s->n_vocab * sizeof *logits); /* the model's, unedited */
    for (int k = 0; k < r->n_bias; k++) logits[r->bias[k].token] += r->bias[k].bias; /* checked < n_vocab */
    if (r->ignore_eos) {
        if (s->eos >= 0 && s->eos < s->n_vocab) logits[s->eos] = -INFINITY;
        if (s->bos >= 0 && s->bos < s->n_vocab) logits[s->bos] = -INFINITY;
    }
    if (r->json_object) { /* only tokens that keep the output a prefix of a JSON object */
        if (!s->pieces.off && bn_vocab_pieces_init(&s->pieces, s->model) != 0) {
            sl->finish = BN_FINISH_ERROR;
            return;
        }
        if (bn_json_mode_done(&j->json) || bn_json_mode_mask(&j->json, &s->pieces, -1, logits) == 0) {
            bn_stop_filter_flush(&sl->filter, sl->emit, &sl->n_emit); /* complete: end of text */
            sl->finish = BN_FINISH_STOP;
            return;
        }
    }
    if (j->grammar) { /* only tokens that continue the grammar; end-of-generation once it is complete */
        const int left = bitnet_grammar_is_complete(j->grammar) == 2 ? 0 : bitnet_grammar_apply(j->grammar, logits);
        if (left < 0) {
            sl->finish = BN_FINISH_ERROR;
            return;
        }
        if (left == 0) {
            bn_stop_filter_flush(&sl->filter, sl->emit, &sl->n_emit);
            sl->finish = bitnet_grammar_is_complete(j->grammar) ? BN_FINISH_STOP : BN_FINISH_ERROR;
            return;
        }
    }
    bitnet_token tok = bitnet_sampler_sample(sl->job->sampler, logits);
    if (!r->ignore_eos && (tok == s->bos || bitnet_token_is_eog(s->model, tok))) {
        bn_stop_filter_flush(&sl->filter, sl->emit, &sl->n_emit);
        sl->finish = BN_FINISH_STOP;
        return;
    }
    bitnet_sampler_accept(sl->job->sampler, tok);
    if (j->grammar && bitnet_grammar_accept(j->grammar, tok) != BITNET_OK) { /* apply allowed it: cannot happen */
        sl->finish = BN_FINISH_ERROR;
        return;
    }
    if (r->json_object)
        bn_json_mode_feed(&j->json, s->pieces.pieces + s->pieces.off[tok], s->pieces.off[tok + 1] - s->pieces.off[tok]);
    if (r->logprobs && j->n_lp + sl->new_lp < s->n_ctx) {
        logprob_entry(j->lp_logits, s->n_vocab, tok, r->top_logprobs, &j->lp[j->n_lp + sl->new_lp]);
        sl->new_lp++;
    }
    char piece[BN_PIECE_MAX + 1];
    int n = bitnet_token_to_piece(s->model, sl->prev, tok, piece, sizeof piece);
    n = n < 0 ? 0 : BN_MIN(n, BN_PIECE_MAX);
    sl->prev = sl->last = tok;
    sl->job->n_gen++; /* only the decode thread writes n_gen while the job runs */
    sl->new_token++;
    if (bn_stop_filter_push(&sl->filter, piece, (size_t)n, sl->emit, &sl->n_emit)) {
        sl->finish = BN_FINISH_STOP;
        sl->job->stop_word = 1;
    } else if (sl->job->n_gen >= sl->limit || (sl->n_past >= s->n_ctx && !s->context_shift)) {
        /* n_past == n_ctx: the new token would not fit in the cache */
        bn_stop_filter_flush(&sl->filter, sl->emit, &sl->n_emit);
        sl->finish = BN_FINISH_LENGTH;
    } else if (sl->n_past >= s->n_ctx) {
        sl->full = 1; /* --context-shift, after the step */
    }
}

/* --context-shift, as llama-server's: keep the request's first n_keep prompt
 * tokens (after BOS; -1: the whole prompt), drop half of the rest, move the
 * later positions down (bitnet_seq_rm re-rotates their keys). Those positions
 * now differ from a fresh evaluation of their tokens, so the prefix cache
 * reuses no more than the kept ones. */
static void shift_slot(bn_sched *s, int i) {
    slot *sl = &s->slots[i];
    const bn_job *j = sl->job;
    const int bos = j->n_prompt > 0 && j->prompt[0] == s->bos;
    int keep = j->req->n_keep < 0 ? j->n_prompt : BN_MIN(j->n_prompt, j->req->n_keep + bos);
    keep = BN_MIN(keep, s->n_ctx / 2); /* room to go on */
    const int discard = (sl->n_past - keep) / 2;
    sl->full = 0;
    if (discard < 1 || bitnet_seq_rm(s->ctx, i, keep, keep + discard) != BITNET_OK) {
        bn_stop_filter_flush(&sl->filter, sl->emit, &sl->n_emit);
        sl->finish = BN_FINISH_LENGTH;
        return;
    }
    memmove(sl->cache + keep, sl->cache + keep + discard, (size_t)(sl->n_past - keep - discard) * sizeof *sl->cache);
    sl->n_past -= discard;
    sl->exact_end = BN_MIN(sl->exact_end, keep);
    s->step_shifts++;
}

/* A slot's step: its rows sampled in order (the pending token's, then one
 * after each draft token) while the sampled token equals the draft; the cache
 * then holds the tokens that led to the rows used, and the rest is removed. */
static void sample_step(bn_sched *s, int i) {
    slot *sl = &s->slots[i];
    float *row = s->rows ? s->rows + (size_t)sl->row * s->n_vocab : bitnet_get_logits_seq(s->ctx, i);
    if (!sl->generating) { /* the prompt's last token */
        sample_slot(s, i, row);
        if (sl->full && sl->finish == BN_FINISH_NONE) shift_slot(s, i);
        return;
    }
    int r = 0;
    for (;; r++) {
        sl->n_past = sl->p0 + r + 1;
        sample_slot(s, i, row + (size_t)r * s->n_vocab);
        if (sl->finish != BN_FINISH_NONE || r == sl->n_draft || sl->last != sl->draft[r]) break;
    }
    if (sl->n_draft && sl->n_past < sl->p0 + 1 + sl->n_draft)
        bitnet_seq_rm(s->ctx, i, sl->n_past, -1); /* a tail: cannot fail */
    if (sl->full && sl->finish == BN_FINISH_NONE) shift_slot(s, i); /* after the rollback: n_past is the end */
    if (!sl->n_draft) return;
    /* rows 1..r were used because draft tokens 0..r-1 were sampled: r accepted.
     * Draft one more than that next time, twice as many after a full hit. */
    sl->k_next = r == sl->n_draft ? BN_MIN(s->draft_max, 2 * sl->n_draft) : BN_MAX(1, r + 1);
    s->step_drafted += sl->n_draft; /* published under the lock */
    s->step_accepted += r;
}

static void observe_latency(bn_sched *s, double sec) {
    int b = 0;
    while (b < BN_LAT_BUCKETS && sec > bn_lat_bucket_le[b]) b++;
    s->st.lat_count[b]++;
    s->st.lat_sum += sec;
}

static void *decode_main(void *arg) {
    bn_sched *s = arg;
    pthread_mutex_lock(&s->mu);
    for (;;) {
        housekeeping(s);
        if (s->n_busy == 0) {
            if (s->quit) break;
            pthread_cond_wait(&s->wake, &s->mu);
            continue;
        }
        pthread_mutex_unlock(&s->mu);

        int n = build_batch(s);
        uint64_t t0 = bn_time_ns();
        bitnet_status st = s->rows ? bitnet_eval_batch_logits(s->ctx, s->b_tok, s->b_pos, s->b_seq, s->b_want, n, s->rows)
                                   : bitnet_eval_batch(s->ctx, s->b_tok, s->b_pos, s->b_seq, n);
        for (int i = 0; i < s->n_slots; i++) s->slots[i].failed = 0;
        if (st != BITNET_OK) {
            /* The batch is checked before any cache is written, so nothing was
             * computed: run each sequence's part alone, and fail only those that
             * fail alone, never one request for another's. */
            fprintf(stderr, "server: batched forward pass failed (%s); evaluating the sequences one by one\n",
                    bitnet_last_error());
            for (int i = 0; i < s->n_slots; i++) {
                int m = 0;
                for (int k = 0; k < n; k++)
                    if (s->b_seq[k] == i) {
                        s->r_tok[m] = s->b_tok[k], s->r_pos[m] = s->b_pos[k], s->r_seq[m] = i;
                        if (s->rows) s->r_want[m] = s->b_want[k];
                        m++;
                    }
                /* a slot's wanted rows are consecutive in the batch's: they go where the batch put them */
                const bitnet_status sst =
                    !m ? BITNET_OK
                    : s->rows ? bitnet_eval_batch_logits(s->ctx, s->r_tok, s->r_pos, s->r_seq, s->r_want, m,
                                                         s->rows + (size_t)s->slots[i].row * s->n_vocab)
                              : bitnet_eval_batch(s->ctx, s->r_tok, s->r_pos, s->r_seq, m);
                if (sst != BITNET_OK) {
                    fprintf(stderr, "server: slot %d failed: %s\n", i, bitnet_last_error());
                    s->slots[i].failed = 1;
                }
            }
        }
        int n_new = 0;
        for (int i = 0; i < s->n_slots; i++) {
            slot *sl = &s->slots[i];
            sl->new_token = sl->new_lp = 0;
            if (!sl->job) continue;
            if (sl->failed) sl->finish = BN_FINISH_ERROR;
            else if (sl->sample_now) sample_step(s, i);
            n_new += sl->new_token;
        }
        uint64_t t1 = bn_time_ns();

        pthread_mutex_lock(&s->mu);
        for (int i = 0; i < s->n_slots; i++) /* the cache now holds what was fed (unknown where a step failed) */
            if (s->slots[i].job) s->slots[i].n_cache = s->slots[i].failed ? 0 : s->slots[i].n_past;
        s->st.steps++;
        s->st.tokens_generated += (uint64_t)n_new;
        s->st.drafted += (uint64_t)s->step_drafted;
        s->st.draft_accepted += (uint64_t)s->step_accepted;
        s->st.context_shifts += (uint64_t)s->step_shifts;
        s->step_drafted = s->step_accepted = s->step_shifts = 0;
        if (n_new) s->st.busy_seconds += (double)(t1 - t0) * 1e-9;
        for (int i = 0; i < s->n_slots; i++) {
            slot *sl = &s->slots[i];
            if (!sl->job) continue;
            bn_job *j = sl->job;
            j->n_lp += sl->new_lp; /* published with the lock: the reader sees the whole entry */
            if (sl->new_token) {
                if (sl->t_last) observe_latency(s, (double)(t1 - sl->t_last) * 1e-9);
                else {
                    s->st.ttft_count++;
                    s->st.ttft_sum += (double)(t1 - j->t_submit) * 1e-9;
                    j->t_first = t1;
                }
                sl->t_last = t1;
            }
            if (sl->n_emit) {
                if (bn_buf_append(&j->out, sl->emit, sl->n_emit) != 0) sl->finish = BN_FINISH_ERROR;
                sl->n_emit = 0;
                pthread_cond_broadcast(&j->cond);
            }
            if (sl->finish != BN_FINISH_NONE) slot_release(s, sl, sl->finish);
        }
    }
    pthread_mutex_unlock(&s->mu);
    return NULL;
}

/* ---- public ------------------------------------------------------------------------------- */

/* Frees the scheduler's arrays and s itself. */
static void free_arrays(bn_sched *s) {
    bn_vocab_pieces_free(&s->pieces);
    for (int i = 0; s->slots && i < s->n_slots; i++) free(s->slots[i].cache);
    free(s->slots);
    free(s->b_tok);
    free(s->b_pos);
    free(s->b_seq);
    free(s->r_tok);
    free(s->r_pos);
    free(s->r_seq);
    free(s->b_want);
    free(s->r_want);
    free(s->rows);
    free(s);
}

bitnet_status bn_sched_new(bitnet_model *model, bitnet_context *ctx, int n_batch, int max_queue, int lookup,
                           int draft_max, bn_sched **out) {
    *out = NULL;
    if (n_batch < bitnet_n_seq(ctx))
        return bn_error(BITNET_ERR_ARG, "server: batch size %d is smaller than the %d slots", n_batch, bitnet_n_seq(ctx));
    if (lookup < 0 || lookup > 64 || (lookup && (draft_max < 1 || draft_max > BN_SPEC_MAX)))
        return bn_error(BITNET_ERR_ARG, "server: --lookup %d / --draft-max %d outside 0..64 / 1..%d", lookup, draft_max,
                        BN_SPEC_MAX);
    bn_sched *s = calloc(1, sizeof *s);
    if (!s) return bn_error(BITNET_ERR_NOMEM, "server: out of memory");
    s->model = model;
    s->ctx = ctx;
    s->n_slots = bitnet_n_seq(ctx);
    s->n_ctx = bitnet_n_ctx(ctx);
    s->n_batch = n_batch;
    s->n_vocab = bitnet_n_vocab(model);
    s->max_queue = max_queue < 0 ? 0 : max_queue;
    s->bos = bitnet_token_bos(model);
    s->eos = bitnet_token_eos(model);
    s->slots = calloc((size_t)s->n_slots, sizeof *s->slots);
    s->b_tok = malloc((size_t)s->n_batch * sizeof *s->b_tok);
    s->b_pos = malloc((size_t)s->n_batch * sizeof *s->b_pos);
    s->b_seq = malloc((size_t)s->n_batch * sizeof *s->b_seq);
    s->r_tok = malloc((size_t)s->n_batch * sizeof *s->r_tok);
    s->r_pos = malloc((size_t)s->n_batch * sizeof *s->r_pos);
    s->r_seq = malloc((size_t)s->n_batch * sizeof *s->r_seq);
    int ok = s->slots && s->b_tok && s->b_pos && s->b_seq && s->r_tok && s->r_pos && s->r_seq;
    if (lookup && ok) { /* every row a step can want: each slot's pending token and draft */
        s->lookup = lookup;
        s->draft_max = draft_max;
        const size_t n_rows = (size_t)BN_MIN(s->n_batch, s->n_slots * (1 + draft_max));
        s->b_want = malloc((size_t)s->n_batch);
        s->r_want = malloc((size_t)s->n_batch);
        s->rows = malloc(n_rows * (size_t)s->n_vocab * sizeof *s->rows);
        ok = s->b_want && s->r_want && s->rows;
    }
    for (int i = 0; ok && i < s->n_slots; i++) {
        ok = (s->slots[i].cache = malloc((size_t)s->n_ctx * sizeof(bitnet_token))) != NULL;
        s->slots[i].exact_end = INT_MAX;
    }
    if (!ok) {
        free_arrays(s);
        return bn_error(BITNET_ERR_NOMEM, "server: out of memory");
    }
    s->st.n_slots = s->n_slots;
    s->st.max_queue = s->max_queue;
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->wake, NULL);
    pthread_cond_init(&s->act_done, NULL);
    pthread_condattr_t a;
    pthread_condattr_init(&a);
    pthread_condattr_setclock(&a, CLOCK_MONOTONIC);
    pthread_cond_init(&s->idle, &a);
    pthread_condattr_destroy(&a);
    if (pthread_create(&s->thread, NULL, decode_main, s) != 0) {
        bn_sched_free(s); /* never started: nothing to join */
        return bn_error(BITNET_ERR_NOMEM, "server: cannot start the decode thread");
    }
    s->started = 1;
    *out = s;
    return BITNET_OK;
}

int bn_sched_submit(bn_sched *s, bn_job *j) {
    /* a token without an embedding row would fail the shared batch of every slot */
    for (int i = 0; i < j->n_prompt; i++)
        if (j->prompt[i] < 0 || j->prompt[i] >= s->n_vocab) {
            bn_error(BITNET_ERR_ARG, "token id %d at prompt position %d is outside the model's vocabulary (0..%d)",
                     j->prompt[i], i, s->n_vocab - 1);
            return -3;
        }
    pthread_mutex_lock(&s->mu);
    int rc = 0;
    if (s->stopping) rc = -2;
    else if (s->n_busy + s->n_queued >= s->n_slots + s->max_queue) rc = -1;
    else {
        j->next = NULL;
        if (s->q_tail) s->q_tail->next = j;
        else s->q_head = j;
        s->q_tail = j;
        s->n_queued++;
        j->done = 0;
        j->t_submit = bn_time_ns();
        pthread_cond_signal(&s->wake);
    }
    pthread_mutex_unlock(&s->mu);
    return rc;
}

static void deadline_after(struct timespec *ts, int ms) {
    clock_gettime(CLOCK_MONOTONIC, ts);
    ts->tv_sec += ms / 1000;
    ts->tv_nsec += (long)(ms % 1000) * 1000000L;
    if (ts->tv_nsec >= 1000000000L) {
        ts->tv_sec++;
        ts->tv_nsec -= 1000000000L;
    }
}

int bn_sched_wait(bn_sched *s, bn_job *j, bn_buf *dst, int timeout_ms) {
    pthread_mutex_lock(&s->mu);
    if (j->out.len == 0 && !j->done && timeout_ms > 0) {
        struct timespec ts;
        deadline_after(&ts, timeout_ms);
        while (j->out.len == 0 && !j->done)
            if (pthread_cond_timedwait(&j->cond, &s->mu, &ts) == ETIMEDOUT) break;
    }
    int rc = 0;
    if (j->out.len) {
        rc = bn_buf_append(dst, j->out.data, j->out.len);
        j->out.len = 0; /* keeps its capacity: no allocation per token */
    }
    int done = j->done;
    pthread_mutex_unlock(&s->mu);
    return rc != 0 ? (bn_sched_cancel(s, j), 1) : done;
}

int bn_sched_logprobs(bn_sched *s, bn_job *j) {
    pthread_mutex_lock(&s->mu);
    const int n = j->n_lp;
    pthread_mutex_unlock(&s->mu);
    return n;
}

void bn_sched_cancel(bn_sched *s, bn_job *j) {
    pthread_mutex_lock(&s->mu);
    if (!j->done) {
        j->cancelled = 1;
        pthread_cond_signal(&s->wake);
        while (!j->done) pthread_cond_wait(&j->cond, &s->mu);
    }
    pthread_mutex_unlock(&s->mu);
}

void bn_sched_stop(bn_sched *s) {
    pthread_mutex_lock(&s->mu);
    s->stopping = 1;
    pthread_mutex_unlock(&s->mu);
}

void bn_sched_drain(bn_sched *s, int grace_ms) {
    pthread_mutex_lock(&s->mu);
    s->stopping = 1;
    struct timespec ts;
    deadline_after(&ts, grace_ms > 0 ? grace_ms : 0);
    while ((s->n_busy || s->n_queued) && grace_ms > 0)
        if (pthread_cond_timedwait(&s->idle, &s->mu, &ts) == ETIMEDOUT) break;
    if (s->n_busy || s->n_queued) {
        s->abort_all = 1;
        pthread_cond_signal(&s->wake);
        while (s->n_busy || s->n_queued) pthread_cond_wait(&s->idle, &s->mu);
    }
    pthread_mutex_unlock(&s->mu);
}

void bn_sched_get_stats(bn_sched *s, bn_sched_stats *out) {
    pthread_mutex_lock(&s->mu);
    *out = s->st;
    out->slots_busy = s->n_busy;
    out->queued = s->n_queued;
    pthread_mutex_unlock(&s->mu);
}

void bn_sched_slot_info(bn_sched *s, int i, int *busy, int *n_cached) {
    pthread_mutex_lock(&s->mu);
    *busy = i >= 0 && i < s->n_slots && s->slots[i].job != NULL;
    *n_cached = i >= 0 && i < s->n_slots ? s->slots[i].n_cache : 0;
    pthread_mutex_unlock(&s->mu);
}

void bn_sched_set_context_shift(bn_sched *s, int on) {
    pthread_mutex_lock(&s->mu);
    s->context_shift = on;
    pthread_mutex_unlock(&s->mu);
}

int bn_sched_slot_action(bn_sched *s, int i, bn_slot_action a, const char *path, int *n_tokens, char *err,
                         size_t err_cap) {
    int rc;
    pthread_mutex_lock(&s->mu);
    while (s->act.pending && !s->quit) pthread_cond_wait(&s->act_done, &s->mu); /* one at a time */
    if (s->quit || s->stopping) {
        snprintf(err, err_cap, "the server is shutting down");
        pthread_mutex_unlock(&s->mu);
        return -1;
    }
    if (s->slots[i].job) {
        pthread_mutex_unlock(&s->mu);
        return 1;
    }
    s->act.pending = 1;
    s->act.slot = i;
    s->act.what = a;
    s->act.path = path;
    pthread_cond_broadcast(&s->wake);
    while (s->act.pending) pthread_cond_wait(&s->act_done, &s->mu);
    rc = s->act.result;
    *n_tokens = s->act.n;
    if (rc < 0) snprintf(err, err_cap, "%s", s->act.err);
    pthread_cond_broadcast(&s->act_done); /* the next waiting action */
    pthread_mutex_unlock(&s->mu);
    return rc;
}

void bn_sched_free(bn_sched *s) {
    if (!s) return;
    if (s->started) {
        bn_sched_drain(s, 0);
        pthread_mutex_lock(&s->mu);
        s->quit = 1;
        pthread_cond_signal(&s->wake);
        pthread_mutex_unlock(&s->mu);
        pthread_join(s->thread, NULL);
    }
    pthread_mutex_destroy(&s->mu);
    pthread_cond_destroy(&s->wake);
    pthread_cond_destroy(&s->idle);
    pthread_cond_destroy(&s->act_done);
    free_arrays(s);
}
