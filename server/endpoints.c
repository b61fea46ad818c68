/* endpoints.c - the routes of build/server and their handlers: OpenAI's
 * completions, chat and embeddings, llama-server's own endpoints, health,
 * models, metrics (docs/server.md). */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <ctype.h>
#include <sys/stat.h>

#include "formats/json.h"
#include "server_main.h"

/* ---- generation ------------------------------------------------------------------------ */

static uint64_t fresh_seed(void) {
    uint64_t z = now_ns() + 0x9E3779B97F4A7C15ull * (atomic_fetch_add(&g.next_id, 1) + 1);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return (z ^ (z >> 31)) | 1;
}

/* What the answer reports of a finished job. */
static void job_info(bn_resp_info *ri, const bn_job *job) {
    ri->completion_tokens = job->n_gen;
    ri->cached_tokens = job->n_cached;
    ri->id_slot = job->slot;
    ri->stop_word = job->stop_word;
    ri->prompt_ms = job->t_first > job->t_start ? (double)(job->t_first - job->t_start) * 1e-6 : 0.0;
    ri->predicted_ms = job->t_end > job->t_first && job->t_first ? (double)(job->t_end - job->t_first) * 1e-6 : 0.0;
}

/* One streamed event of text: OpenAI's chunk, or llama.cpp's /completion one. */
static int text_event(bn_buf *ev, const bn_resp_info *ri, const char *text, size_t n) {
    return ri->req->native ? bn_server_native_chunk(ev, ri, text, n) : bn_server_sse_chunk(ev, ri, text, n, 0, BN_FINISH_NONE);
}

/* Points ri at the job's logprob entries not sent yet (*sent of them were);
 * text_offset: bytes of text sent before them. */
static void next_logprobs(bn_resp_info *ri, bn_job *job, int *sent, size_t text_offset) {
    if (!job->lp) return;
    const int n = bn_sched_logprobs(g.sched, job);
    ri->lp = job->lp + *sent;
    ri->n_lp = n - *sent;
    ri->lp_prev = *sent ? job->lp[*sent - 1].id : job->prompt[job->n_prompt - 1];
    ri->text_offset = text_offset;
    *sent = n;
}

/* Streams the job's text as SSE events until it is done; always closes the connection. */
static int stream_job(conn *c, bn_job *job, bn_resp_info *ri) {
    char head[512];
    int h = bn_http_format_head(head, sizeof head, 200, "text/event-stream", -1, 0, "Cache-Control: no-cache\r\n");
    count_status(200);
    bn_buf text = {0}, ev = {0}, held = {0}; /* held: 'tools': the whole answer, sent at the end */
    const int hold = job->req->tools_system != NULL;
    int ok = send_all(c->fd, head, (size_t)h) == 0;
    if (ok && ri->chat) ok = bn_server_sse_chunk(&ev, ri, "", 0, 1, BN_FINISH_NONE) == 0 && send_all(c->fd, ev.data, ev.len) == 0;
    int done = 0, lp_sent = 0;
    size_t sent_bytes = 0;
    while (ok && !done) {
        done = bn_sched_wait(g.sched, job, &text, 50);
        ev.len = 0;
        if (text.len && hold) {
            ok = bn_buf_append(&held, text.data, text.len) == 0;
            text.len = 0;
        } else if (text.len) {
            ri->id_slot = job->slot; /* set at admission, before any text (bn_sched_wait ordered it) */
            next_logprobs(ri, job, &lp_sent, sent_bytes);
            ok = text_event(&ev, ri, text.data, text.len) == 0 && send_all(c->fd, ev.data, ev.len) == 0;
            sent_bytes += text.len;
            text.len = 0;
        } else if (!done && peer_gone(c->fd)) {
            ok = 0;
        }
    }
    if (!ok) {
        bn_sched_cancel(g.sched, job); /* frees the slot now */
    } else {
        ev.len = 0;
        job_info(ri, job);
        next_logprobs(ri, job, &lp_sent, sent_bytes); /* what came without text (cut by a stop string) */
        int rc = 0;
        if (bn_finish_reason(job->finish) && job->req->native) { /* the whole answer, no [DONE] */
            rc |= bn_buf_printf(&ev, "data: ");
            rc |= bn_server_native_result(&ev, ri, "", 0, job->finish);
            rc |= bn_buf_printf(&ev, "\n\n");
        } else if (bn_finish_reason(job->finish) && hold) {
            rc |= bn_server_sse_tools_answer(&ev, ri, held.data ? held.data : "", held.len, job->finish);
            if (job->req->include_usage) rc |= bn_server_sse_usage(&ev, ri);
        } else if (bn_finish_reason(job->finish)) {
            rc |= bn_server_sse_chunk(&ev, ri, "", 0, 0, job->finish);
            if (job->req->include_usage) rc |= bn_server_sse_usage(&ev, ri);
        } else { /* aborted by shutdown or a failed forward pass: an error event, as OpenAI does */
            const char *m = job->finish == BN_FINISH_ABORTED ? "the server is shutting down" : "generation failed";
            int st = job->finish == BN_FINISH_ABORTED ? 503 : 500;
            rc |= bn_buf_printf(&ev, "data: ");
            rc |= bn_server_json_error(&ev, st, m);
            rc |= bn_buf_printf(&ev, "\n\n");
        }
        if (!job->req->native || !bn_finish_reason(job->finish)) rc |= bn_buf_printf(&ev, "data: [DONE]\n\n");
        if (rc == 0) send_all(c->fd, ev.data, ev.len);
    }
    bn_buf_free(&text);
    bn_buf_free(&held);
    bn_buf_free(&ev);
    return 0;
}

/* Waits for the whole completion, watching for the client to leave. */
static int wait_job(conn *c, bn_job *job, bn_resp_info *ri, int keep_alive) {
    bn_buf text = {0}, body = {0};
    while (!bn_sched_wait(g.sched, job, &text, 50))
        if (peer_gone(c->fd)) {
            bn_sched_cancel(g.sched, job);
            bn_buf_free(&text);
            return 0;
        }
    int rc, lp_sent = 0;
    job_info(ri, job);
    next_logprobs(ri, job, &lp_sent, 0);
    const char *t = text.data ? text.data : "";
    if (job->finish == BN_FINISH_ABORTED) {
        rc = respond_error(c, 503, "the server is shutting down", 0, NULL);
    } else if (job->finish == BN_FINISH_ERROR ||
               (job->req->native ? bn_server_native_result(&body, ri, t, text.len, job->finish)
                                 : bn_server_json_result(&body, ri, t, text.len, job->finish)) != 0) {
        rc = respond_error(c, 500, "generation failed", 0, NULL);
    } else {
        rc = respond_buf(c, 200, "application/json", &body, keep_alive, NULL);
    }
    bn_buf_free(&body);
    bn_buf_free(&text);
    return rc;
}

/* A request's grammar, sharing the vocabulary index the first one built (it
 * costs tens of ms for a 128k vocabulary; parsing the grammar, microseconds). */
static bitnet_status request_grammar(const char *gbnf, bitnet_grammar **out) {
    pthread_mutex_lock(&g.grammar_mu);
    bitnet_status st = g.grammar_base ? BITNET_OK : bitnet_grammar_new(g.model, "root ::= \"\"", &g.grammar_base);
    pthread_mutex_unlock(&g.grammar_mu);
    return st == BITNET_OK ? bitnet_grammar_new_sharing(g.grammar_base, gbnf, out) : st;
}

/* 'n' > 1, streamed: every choice's text as it comes, in chunks carrying its
 * index; each choice's last chunk when it ends; then usage and [DONE]. text[i]
 * holds what arrived before the stream started (job 0's first piece). */
static void stream_choices(conn *c, bn_job **jobs, int n, bn_buf *text, const bn_resp_info *ri0) {
    char head[512];
    const int h = bn_http_format_head(head, sizeof head, 200, "text/event-stream", -1, 0, "Cache-Control: no-cache\r\n");
    count_status(200);
    bn_resp_info ri[BN_MAX_CHOICES];
    bn_buf ev = {0}, held[BN_MAX_CHOICES] = {{0}}; /* held: 'tools': each answer, sent whole at its end */
    const int hold = jobs[0]->req->tools_system != NULL;
    int done[BN_MAX_CHOICES] = {0}, lp_sent[BN_MAX_CHOICES] = {0}, n_done = 0;
    size_t sent_bytes[BN_MAX_CHOICES] = {0};
    int ok = send_all(c->fd, head, (size_t)h) == 0;
    for (int i = 0; i < n && ok; i++) {
        ri[i] = *ri0;
        ri[i].index = i;
        ev.len = 0;
        if (ri0->chat) /* chat streams open each choice with its role, as a single stream does */
            ok = bn_server_sse_chunk(&ev, &ri[i], "", 0, 1, BN_FINISH_NONE) == 0 && send_all(c->fd, ev.data, ev.len) == 0;
    }
    while (ok && n_done < n) {
        int quiet = 1;
        for (int i = 0; i < n && ok; i++) {
            if (done[i]) continue;
            done[i] = bn_sched_wait(g.sched, jobs[i], &text[i], n - n_done > 1 ? 5 : 50);
            ev.len = 0;
            if (text[i].len) {
                quiet = 0;
                ri[i].id_slot = jobs[i]->slot;
                next_logprobs(&ri[i], jobs[i], &lp_sent[i], sent_bytes[i]);
                if (hold) ok = bn_buf_append(&held[i], text[i].data, text[i].len) == 0;
                else ok = bn_server_sse_chunk(&ev, &ri[i], text[i].data, text[i].len, 0, BN_FINISH_NONE) == 0;
                sent_bytes[i] += text[i].len;
                text[i].len = 0;
            }
            if (ok && done[i]) { /* this choice's end: its last chunk, as a single stream sends it */
                n_done++;
                quiet = 0;
                job_info(&ri[i], jobs[i]);
                next_logprobs(&ri[i], jobs[i], &lp_sent[i], sent_bytes[i]);
                if (!bn_finish_reason(jobs[i]->finish)) ok = 0; /* aborted or failed: the error event below */
                else if (hold) ok = bn_server_sse_tools_answer(&ev, &ri[i], held[i].data ? held[i].data : "", held[i].len,
                                                               jobs[i]->finish) == 0;
                else ok = bn_server_sse_chunk(&ev, &ri[i], "", 0, 0, jobs[i]->finish) == 0;
            }
            if (ok && ev.len) ok = send_all(c->fd, ev.data, ev.len) == 0;
        }
        if (ok && quiet && peer_gone(c->fd)) ok = 0;
    }
    ev.len = 0;
    if (n_done < n || !ok) { /* the client left, or a choice failed */
        int failed = -1;
        for (int i = 0; i < n; i++) {
            bn_sched_cancel(g.sched, jobs[i]);
            if (failed < 0 && !bn_finish_reason(jobs[i]->finish) && jobs[i]->finish != BN_FINISH_CANCELLED) failed = i;
        }
        if (failed >= 0) {
            const int aborted = jobs[failed]->finish == BN_FINISH_ABORTED;
            if (!bn_buf_printf(&ev, "data: ") &&
                !bn_server_json_error(&ev, aborted ? 503 : 500, aborted ? "the server is shutting down" : "generation failed") &&
                !bn_buf_printf(&ev, "\n\ndata: [DONE]\n\n"))
                send_all(c->fd, ev.data, ev.len);
        }
    } else {
        bn_resp_info total = ri[0];
        total.completion_tokens = 0;
        for (int i = 0; i < n; i++) total.completion_tokens += jobs[i]->n_gen;
        int rc = jobs[0]->req->include_usage ? bn_server_sse_usage(&ev, &total) : 0;
        if (!rc && !bn_buf_printf(&ev, "data: [DONE]\n\n")) send_all(c->fd, ev.data, ev.len);
    }
    for (int i = 0; i < n; i++) bn_buf_free(&held[i]);
    bn_buf_free(&ev);
}

/* 'n' > 1: job 0 is submitted first; once its prompt is evaluated (its first
 * output), the other choices start from a copy of that prefix (the scheduler's
 * prefix cache borrows it), each with its own sampler seed (and grammar). Then
 * the answers stream as they come, or the whole response waits for them all. */
static int run_choices(conn *c, bn_job *job0, const bn_gen_request *req, const bitnet_sampler_params *sp,
                       bn_resp_info *ri, int ka) {
    const int n = req->n_choices;
    bn_job extra[BN_MAX_CHOICES], *jobs[BN_MAX_CHOICES] = {job0}; /* job0: submitted by the caller */
    bn_buf text[BN_MAX_CHOICES] = {{0}};
    int submitted = 1, rc = 0, gone = 0;
    for (int i = 1; i < n; i++) {
        bn_job *j = jobs[i] = &extra[i];
        bn_job_init(j);
        j->req = req;
        j->n_prompt = job0->n_prompt;
        bitnet_sampler_params spi = *sp;
        spi.seed = sp->seed + (uint64_t)i; /* distinct, and reproducible for a given seed */
        j->prompt = malloc((size_t)job0->n_prompt * sizeof(bitnet_token));
        bitnet_sampler_new(&spi, g.n_vocab, &j->sampler);
        if (req->grammar && request_grammar(req->grammar, &j->grammar) != BITNET_OK) j->grammar = NULL, rc = 1;
        if (req->logprobs && (!(j->lp = calloc((size_t)g.n_ctx, sizeof *j->lp)) ||
                              !(j->lp_logits = malloc((size_t)g.n_vocab * sizeof *j->lp_logits))))
            rc = 1;
        if (!j->prompt || !j->sampler) {
            rc = 1;
            continue;
        }
        memcpy(j->prompt, job0->prompt, (size_t)job0->n_prompt * sizeof(bitnet_token));
        for (int k = 0; k < job0->n_prompt; k++) bitnet_sampler_accept(j->sampler, j->prompt[k]);
    }
    int done0 = 0;
    while (rc == 0 && !done0 && text[0].len == 0 && !gone) { /* job 0's prompt first */
        done0 = bn_sched_wait(g.sched, jobs[0], &text[0], 50);
        gone = !done0 && peer_gone(c->fd);
    }
    for (int i = 1; rc == 0 && !gone && i < n; i++) {
        const int sub = bn_sched_submit(g.sched, jobs[i]);
        if (sub != 0) rc = sub;
        else submitted++;
    }
    if (rc == 0 && !gone && req->stream) {
        stream_choices(c, jobs, n, text, ri);
        for (int i = 0; i < n; i++) bn_buf_free(&text[i]);
        for (int i = 1; i < n; i++) bn_job_destroy(jobs[i]);
        return 0; /* a stream always closes the connection */
    }
    for (int i = 0; i < submitted && !gone && rc == 0; i++)
        while (!bn_sched_wait(g.sched, jobs[i], &text[i], 50))
            if ((gone = peer_gone(c->fd))) break;
    for (int i = 0; i < submitted && (gone || rc != 0); i++) bn_sched_cancel(g.sched, jobs[i]); /* waits until done */
    int status;
    if (gone) status = 0;
    else if (rc == -2) status = respond_error(c, 503, "the server is shutting down", 0, NULL);
    else if (rc == -1) status = respond_error(c, 503, "all slots are busy and the queue is full; retry later", 0,
                                              "Retry-After: 1\r\n");
    else if (rc != 0) status = respond_error(c, 500, "out of memory", 0, NULL);
    else {
        const char *t[BN_MAX_CHOICES];
        size_t len[BN_MAX_CHOICES];
        bn_finish f[BN_MAX_CHOICES];
        bn_resp_info ris[BN_MAX_CHOICES];
        int failed = 0;
        job_info(ri, jobs[0]);
        ri->completion_tokens = 0;
        for (int i = 0; i < n; i++) {
            t[i] = text[i].data ? text[i].data : "";
            len[i] = text[i].len;
            f[i] = jobs[i]->finish;
            ri->completion_tokens += jobs[i]->n_gen;
            failed |= !bn_finish_reason(f[i]);
        }
        for (int i = 0; i < n; i++) { /* each choice's logprobs */
            int sent = 0;
            ris[i] = *ri;
            ris[i].index = i;
            next_logprobs(&ris[i], jobs[i], &sent, 0);
        }
        bn_buf body = {0};
        if (failed || bn_server_json_results(&body, ris, t, len, f, n) != 0) {
            bn_buf_free(&body);
            status = respond_error(c, jobs[0]->finish == BN_FINISH_ABORTED ? 503 : 500, "generation failed", 0, NULL);
        } else {
            status = respond_buf(c, 200, "application/json", &body, ka, NULL);
        }
    }
    for (int i = 0; i < n; i++) bn_buf_free(&text[i]);
    for (int i = 1; i < n; i++) bn_job_destroy(jobs[i]);
    return status;
}

static int handle_completion(conn *c, const bn_http_request *rq, int api) {
    bn_gen_request req;
    char err[320];
    int ka = rq->keep_alive;
    const int chat = api == BN_API_CHAT;
    if (bn_server_parse_request(rq->body, (size_t)rq->content_length, api, &req, err, sizeof err) != 0)
        return respond_error(c, 400, err, ka, NULL);
    unsigned char *plain = NULL; /* chat: which prompt bytes are message text */
    if (chat && !(req.prompt = bn_server_chat_prompt(g.model, req.messages, req.tools_system, &plain))) {
        bn_gen_request_free(&req);
        return respond_error(c, 500, "out of memory", 0, NULL);
    }
    bn_job job;
    bn_job_init(&job);
    size_t cap = req.prompt_ids ? (size_t)req.n_prompt_ids : strlen(req.prompt) + 3; /* BOS + dummy prefix + a byte each */
    int rc;
    job.prompt = cap < INT_MAX ? malloc((cap ? cap : 1) * sizeof(bitnet_token)) : NULL;
    /* Chat templates spell their control tokens (<|eot_id|>, ...) as text: they
     * are parsed in the template's markup only, never in a message; an OpenAI
     * completion prompt is text throughout; llama.cpp's /completion parses them
     * (as llama-server), and takes token ids as they are. */
    if (!job.prompt) job.n_prompt = -1;
    else if (req.prompt_ids) memcpy(job.prompt, req.prompt_ids, cap * sizeof(bitnet_token)), job.n_prompt = (int)cap;
    else if (chat) job.n_prompt = bitnet_tokenize_chat(g.model, req.prompt, strlen(req.prompt), plain, 1, job.prompt, (int)cap);
    else job.n_prompt = bitnet_tokenize_ex(g.model, req.prompt, strlen(req.prompt), 1, req.native, job.prompt, (int)cap);
    if (job.n_prompt < 1) {
        snprintf(err, sizeof err, "cannot tokenize the prompt: %s", bitnet_last_error());
        rc = respond_error(c, 400, err, ka, NULL);
        goto out;
    }
    if (job.n_prompt >= g.n_ctx) {
        snprintf(err, sizeof err,
                 "the prompt has %d tokens, but the context holds %d (-c), the prompt and at least one "
                 "generated token", job.n_prompt, g.n_ctx);
        rc = respond_error(c, 400, err, ka, NULL);
        goto out;
    }
    if (bn_server_check_bias(&req, g.n_vocab, err, sizeof err) != 0) {
        rc = respond_error(c, 400, err, ka, NULL);
        goto out;
    }
    bitnet_sampler_params sp = req.sp;
    if (!req.has_seed) sp.seed = fresh_seed();
    job.req = &req;
    if (bitnet_sampler_new(&sp, g.n_vocab, &job.sampler) != BITNET_OK) {
        rc = respond_error(c, 500, "out of memory", 0, NULL);
        goto out;
    }
    for (int i = 0; i < job.n_prompt; i++) bitnet_sampler_accept(job.sampler, job.prompt[i]);
    if (req.grammar && request_grammar(req.grammar, &job.grammar) != BITNET_OK) {
        snprintf(err, sizeof err, "%s", bitnet_last_error());
        rc = respond_error(c, strstr(err, "out of memory") ? 500 : 400, err, ka, NULL);
        goto out;
    }
    if (req.logprobs && (!(job.lp = calloc((size_t)g.n_ctx, sizeof *job.lp)) ||
                         !(job.lp_logits = malloc((size_t)g.n_vocab * sizeof *job.lp_logits)))) {
        rc = respond_error(c, 500, "out of memory", 0, NULL);
        goto out;
    }
    int sub = bn_sched_submit(g.sched, &job);
    if (sub == -3) { /* a token the model has no embedding for */
        rc = respond_error(c, 400, bitnet_last_error(), ka, NULL);
        goto out;
    }
    if (sub != 0) {
        rc = respond_error(c, 503, sub == -2 ? "the server is shutting down"
                                             : "all slots are busy and the queue is full; retry later", 0, "Retry-After: 1\r\n");
        goto out;
    }
    char id[48];
    snprintf(id, sizeof id, "%s-%llx-%llu", chat ? "chatcmpl" : "cmpl", (unsigned long long)g.started,
             (unsigned long long)atomic_fetch_add(&g.next_id, 1));
    bn_resp_info ri = {.chat = chat, .id = id, .model = g.model_name, .created = (long long)time(NULL),
                       .prompt_tokens = job.n_prompt, .id_slot = -1, .req = &req, .vocab = g.model};
    if (req.n_choices > 1) rc = run_choices(c, &job, &req, &sp, &ri, ka);
    else rc = req.stream ? stream_job(c, &job, &ri) : wait_job(c, &job, &ri, ka);
out:
    bn_job_destroy(&job);
    bn_gen_request_free(&req);
    free(plain);
    return rc;
}

/* ---- other endpoints -------------------------------------------------------------------- */

/* 200 only when ready: a load balancer sends nothing while the model loads
 * or the server drains (llama-server's "loading model" is a 503 too). */
int handle_health(conn *c, int ka) {
    bn_buf b = {0};
    if (atomic_load(&g.phase) == PHASE_LOADING) {
        bn_buf_printf(&b, "{\"status\":\"loading model\"}");
        return respond_buf(c, 503, "application/json", &b, ka, "Retry-After: 1\r\n");
    }
    bn_sched_stats st;
    bn_sched_get_stats(g.sched, &st);
    int stopping = atomic_load(&g.stopping);
    bn_buf_printf(&b, "{\"status\":\"%s\",\"slots_idle\":%d,\"slots_processing\":%d,\"queued\":%d}",
                  stopping ? "shutting down" : "ok", st.n_slots - st.slots_busy, st.slots_busy, st.queued);
    return respond_buf(c, stopping ? 503 : 200, "application/json", &b, ka, NULL);
}

static int handle_models(conn *c, int ka) {
    bn_buf b = {0};
    bn_buf_printf(&b, "{\"object\":\"list\",\"data\":[{\"id\":");
    bn_json_append_string(&b, g.model_name, strlen(g.model_name));
    bn_buf_printf(&b, ",\"object\":\"model\",\"created\":%lld,\"owned_by\":\"libbitnet\",\"meta\":{\"n_ctx\":%d,"
                      "\"n_vocab\":%d,\"slots\":%d}}]}", g.started, g.n_ctx, g.n_vocab, g.o.slots);
    return respond_buf(c, 200, "application/json", &b, ka, NULL);
}

static int handle_metrics(conn *c, int ka) {
    bn_sched_stats st;
    bn_sched_get_stats(g.sched, &st);
    bn_buf b = {0};
    bn_buf_printf(&b, "# HELP bitnet_requests_total HTTP requests answered, by status code.\n"
                      "# TYPE bitnet_requests_total counter\n");
    pthread_mutex_lock(&g.mu);
    for (int i = 0; i <= N_CODES; i++) {
        if (i < N_CODES) bn_buf_printf(&b, "bitnet_requests_total{status=\"%d\"} %llu\n", k_codes[i], g.requests[i]);
        else bn_buf_printf(&b, "bitnet_requests_total{status=\"other\"} %llu\n", g.requests[i]);
    }
    pthread_mutex_unlock(&g.mu);
    double tps = st.busy_seconds > 0 ? (double)st.tokens_generated / st.busy_seconds : 0.0;
    bn_buf_printf(&b,
                  "# HELP bitnet_tokens_generated_total Tokens generated (all slots).\n"
                  "# TYPE bitnet_tokens_generated_total counter\nbitnet_tokens_generated_total %llu\n"
                  "# HELP bitnet_prompt_tokens_total Prompt tokens evaluated.\n"
                  "# TYPE bitnet_prompt_tokens_total counter\nbitnet_prompt_tokens_total %llu\n"
                  "# HELP bitnet_decode_busy_seconds_total Time spent in forward passes that generated tokens.\n"
                  "# TYPE bitnet_decode_busy_seconds_total counter\nbitnet_decode_busy_seconds_total %.6f\n"
                  "# HELP bitnet_tokens_per_second Generated tokens per busy second (all slots together).\n"
                  "# TYPE bitnet_tokens_per_second gauge\nbitnet_tokens_per_second %.3f\n"
                  "# HELP bitnet_decode_steps_total Batched forward passes.\n"
                  "# TYPE bitnet_decode_steps_total counter\nbitnet_decode_steps_total %llu\n"
                  "# HELP bitnet_requests_cancelled_total Generations ended because the client went away.\n"
                  "# TYPE bitnet_requests_cancelled_total counter\nbitnet_requests_cancelled_total %llu\n"
                  "# HELP bitnet_slots_busy Slots generating now (of bitnet_slots).\n"
                  "# TYPE bitnet_slots_busy gauge\nbitnet_slots_busy %d\n"
                  "# TYPE bitnet_slots gauge\nbitnet_slots %d\n"
                  "# HELP bitnet_queue_length Requests waiting for a slot.\n"
                  "# TYPE bitnet_queue_length gauge\nbitnet_queue_length %d\n",
                  (unsigned long long)st.tokens_generated, (unsigned long long)st.prompt_tokens, st.busy_seconds,
                  tps, (unsigned long long)st.steps, (unsigned long long)st.jobs_cancelled, st.slots_busy,
                  st.n_slots, st.queued);
    bn_buf_printf(&b,
                  "# HELP bitnet_draft_tokens_total Tokens drafted by --lookup and evaluated.\n"
                  "# TYPE bitnet_draft_tokens_total counter\nbitnet_draft_tokens_total %llu\n"
                  "# HELP bitnet_draft_accepted_tokens_total Drafted tokens the model's own sampling kept.\n"
                  "# TYPE bitnet_draft_accepted_tokens_total counter\nbitnet_draft_accepted_tokens_total %llu\n"
                  "# HELP bitnet_context_shifts_total Context shifts of generations that filled their slot (--context-shift).\n"
                  "# TYPE bitnet_context_shifts_total counter\nbitnet_context_shifts_total %llu\n",
                  (unsigned long long)st.drafted, (unsigned long long)st.draft_accepted,
                  (unsigned long long)st.context_shifts);
    bn_buf_printf(&b, "# HELP bitnet_token_latency_seconds Time between consecutive tokens of a request.\n"
                      "# TYPE bitnet_token_latency_seconds histogram\n");
    uint64_t cum = 0;
    for (int i = 0; i <= BN_LAT_BUCKETS; i++) {
        cum += st.lat_count[i];
        if (i < BN_LAT_BUCKETS)
            bn_buf_printf(&b, "bitnet_token_latency_seconds_bucket{le=\"%g\"} %llu\n", bn_lat_bucket_le[i], (unsigned long long)cum);
        else bn_buf_printf(&b, "bitnet_token_latency_seconds_bucket{le=\"+Inf\"} %llu\n", (unsigned long long)cum);
    }
    bn_buf_printf(&b,
                  "bitnet_token_latency_seconds_sum %.6f\nbitnet_token_latency_seconds_count %llu\n"
                  "# HELP bitnet_time_to_first_token_seconds From submission to the first token.\n"
                  "# TYPE bitnet_time_to_first_token_seconds summary\n"
                  "bitnet_time_to_first_token_seconds_sum %.6f\nbitnet_time_to_first_token_seconds_count %llu\n",
                  st.lat_sum, (unsigned long long)cum, st.ttft_sum, (unsigned long long)st.ttft_count);
    return respond_buf(c, 200, "text/plain; version=0.0.4", &b, ka, NULL);
}

/* llama-server's GET /props: the defaults a request starts from, the slots,
 * the model and its chat template. */
static int handle_props(conn *c, int ka) {
    const bitnet_sampler_params sp = bitnet_sampler_default_params();
    const char *tmpl = bitnet_model_chat_template(g.model);
    bn_buf b = {0};
    int rc = bn_buf_printf(&b,
                           "{\"default_generation_settings\":{\"n_ctx\":%d,\"params\":{\"n_predict\":-1,"
                           "\"temperature\":%g,\"top_k\":%d,\"top_p\":%g,\"min_p\":%g,\"repeat_penalty\":%g,"
                           "\"cache_prompt\":true}},\"total_slots\":%d,\"model_path\":",
                           g.n_ctx, (double)sp.temp, sp.top_k, (double)sp.top_p, (double)sp.min_p,
                           (double)sp.repeat_penalty, g.o.slots);
    rc |= bn_json_append_string(&b, g.o.m.model ? g.o.m.model : "(embedded)", strlen(g.o.m.model ? g.o.m.model : "(embedded)"));
    rc |= bn_buf_printf(&b, ",\"model_alias\":");
    rc |= bn_json_append_string(&b, g.model_name, strlen(g.model_name));
    rc |= bn_buf_printf(&b, ",\"chat_template\":");
    rc |= bn_json_append_string(&b, tmpl ? tmpl : "", tmpl ? strlen(tmpl) : 0);
    rc |= bn_buf_printf(&b, ",\"modalities\":{\"vision\":false,\"audio\":false},\"build_info\":\"libbitnet %s (%s)\"}",
                        bitnet_version(), bitnet_isa_name());
    if (rc) bn_buf_free(&b);
    return respond_buf(c, 200, "application/json", &b, ka, NULL);
}

/* llama-server's GET /slots: each slot's state and cached tokens. */
static int handle_slots(conn *c, int ka) {
    bn_buf b = {0};
    int rc = bn_buf_printf(&b, "[");
    for (int i = 0; i < g.o.slots; i++) {
        int busy = 0, cached = 0;
        bn_sched_slot_info(g.sched, i, &busy, &cached);
        rc |= bn_buf_printf(&b, "%s{\"id\":%d,\"n_ctx\":%d,\"is_processing\":%s,\"n_cached\":%d}", i ? "," : "", i,
                            g.n_ctx, busy ? "true" : "false", cached);
    }
    rc |= bn_buf_printf(&b, "]");
    if (rc) bn_buf_free(&b);
    return respond_buf(c, 200, "application/json", &b, ka, NULL);
}

/* llama-server's POST /slots/{id}?action=save|restore|erase with body
 * {"filename": "NAME"} (save, restore): a slot's cached tokens and KV rows to
 * or from --slot-save-path/NAME. The slot must be idle. */
static int valid_filename(const char *f) {
    size_t n = strlen(f);
    if (n == 0 || n > 128 || f[0] == '.') return 0;
    for (size_t i = 0; i < n; i++)
        if (!(isalnum((unsigned char)f[i]) || f[i] == '.' || f[i] == '_' || f[i] == '-')) return 0;
    return 1;
}

/* The value of key in the request's query string (?a=1&b=2), undecoded; 0 if absent or longer than cap - 1. */
static int query_param(const bn_http_request *rq, const char *key, char *out, size_t cap) {
    const char *p = rq->target + rq->path_len, *end = rq->target + rq->target_len;
    const size_t k = strlen(key);
    if (p >= end || *p != '?') return 0;
    for (p++; p < end;) {
        const char *amp = memchr(p, '&', (size_t)(end - p)), *stop = amp ? amp : end;
        if ((size_t)(stop - p) > k && p[k] == '=' && !memcmp(p, key, k)) {
            const size_t n = (size_t)(stop - p) - k - 1;
            if (n >= cap) return 0;
            memcpy(out, p + k + 1, n);
            out[n] = 0;
            return 1;
        }
        p = stop + 1;
    }
    return 0;
}

static int handle_slot_action(conn *c, const bn_http_request *rq, int ka) {
    if (!g.o.slot_save_path)
        return respond_error(c, 501, "slot actions are off: start the server with --slot-save-path DIR", ka, NULL);
    char *end = NULL;
    const char *id_text = rq->path + 7; /* after "/slots/" */
    const long id = strtol(id_text, &end, 10);
    if (end == id_text || end != rq->path + rq->path_len || id < 0 || id >= g.o.slots)
        return respond_error(c, 400, "slot id: expected /slots/N with N in 0..--slots-1", ka, NULL);
    char action[16];
    bn_slot_action a;
    if (!query_param(rq, "action", action, sizeof action)) a = (bn_slot_action)-1;
    else if (!strcmp(action, "save")) a = BN_SLOT_SAVE;
    else if (!strcmp(action, "restore")) a = BN_SLOT_RESTORE;
    else if (!strcmp(action, "erase")) a = BN_SLOT_ERASE;
    else a = (bn_slot_action)-1;
    if ((int)a < 0) return respond_error(c, 400, "expected ?action=save, restore or erase", ka, NULL);
    char name[160] = "", path[4096];
    if (a != BN_SLOT_ERASE) {
        bn_json *v = bn_json_parse(rq->body ? rq->body : "", (size_t)rq->content_length, NULL, 0);
        const bn_json *f = bn_json_get(v, "filename");
        const int ok = f && f->type == BN_JSON_STRING && valid_filename(f->str);
        if (ok) snprintf(name, sizeof name, "%s", f->str);
        bn_json_free(v);
        if (!ok)
            return respond_error(c, 400, "body: expected {\"filename\": NAME}, NAME of 1..128 letters, digits, '.', '_', '-' not starting with '.'", ka, NULL);
    }
    snprintf(path, sizeof path, "%s/%s", g.o.slot_save_path, name);
    char err[320];
    int n = 0;
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    const int rc = bn_sched_slot_action(g.sched, (int)id, a, path, &n, err, sizeof err);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    const double ms = (double)(t1.tv_sec - t0.tv_sec) * 1e3 + (double)(t1.tv_nsec - t0.tv_nsec) / 1e6;
    if (rc == 1) return respond_error(c, 409, "the slot is processing a request; try again when it is idle", ka, NULL);
    if (rc < 0) return respond_error(c, a == BN_SLOT_RESTORE ? 400 : 500, err, ka, NULL);
    struct stat sb;
    const long long bytes = a != BN_SLOT_ERASE && stat(path, &sb) == 0 ? (long long)sb.st_size : 0;
    bn_buf b = {0};
    int e = bn_buf_printf(&b, "{\"id_slot\":%ld", id);
    if (a == BN_SLOT_ERASE) {
        e |= bn_buf_printf(&b, ",\"n_erased\":%d}", n);
    } else {
        e |= bn_buf_printf(&b, ",\"filename\":");
        e |= bn_json_append_string(&b, name, strlen(name));
        e |= bn_buf_printf(&b, a == BN_SLOT_SAVE ? ",\"n_saved\":%d,\"n_written\":%lld,\"timings\":{\"save_ms\":%.3f}}"
                                                 : ",\"n_restored\":%d,\"n_read\":%lld,\"timings\":{\"restore_ms\":%.3f}}",
                            n, bytes, ms);
    }
    if (e) bn_buf_free(&b);
    return respond_buf(c, 200, "application/json", &b, ka, NULL);
}

/* POST /tokenize, /detokenize, /apply-template (server_native.c). */
static int handle_native(conn *c, const bn_http_request *rq,
                         int (*fn)(const bitnet_model *, const char *, size_t, bn_buf *, char *, size_t)) {
    bn_buf b = {0};
    char err[320];
    const int status = fn(g.model, rq->body ? rq->body : "", (size_t)rq->content_length, &b, err, sizeof err);
    if (status != 200) {
        bn_buf_free(&b);
        return respond_error(c, status, err, status == 400 ? rq->keep_alive : 0, NULL);
    }
    return respond_buf(c, 200, "application/json", &b, rq->keep_alive, NULL);
}

/* GET /: the chat page (server/chat.html, embedded by chat_page.S). */
extern const char bn_chat_page[];
extern const uint64_t bn_chat_page_size;

static int handle_page(conn *c, int ka) {
    return respond(c, 200, "text/html; charset=utf-8", bn_chat_page, (size_t)bn_chat_page_size, ka, NULL);
}

/* POST /v1/embeddings (oai) and /embedding: one request at a time on the
 * embeddings context, beside the generation slots. */
static int handle_embeddings(conn *c, const bn_http_request *rq, int oai) {
    if (!g.embd_ctx)
        return respond_error(c, 501, "this server does not compute embeddings: start it with --embeddings", rq->keep_alive,
                             NULL);
    bn_buf b = {0};
    char err[320];
    pthread_mutex_lock(&g.embd_mu);
    const int status = bn_native_embeddings(g.model, g.embd_ctx, g.model_name, oai, rq->body ? rq->body : "",
                                            (size_t)rq->content_length, &b, err, sizeof err);
    pthread_mutex_unlock(&g.embd_mu);
    if (status != 200) {
        bn_buf_free(&b);
        return respond_error(c, status, err, status == 400 ? rq->keep_alive : 0, NULL);
    }
    return respond_buf(c, 200, "application/json", &b, rq->keep_alive, NULL);
}

/* Constant-time comparison of the Bearer token with --api-key. */
static int authorized(const bn_http_request *rq) {
    const bn_http_header *h = bn_http_find_header(rq, "authorization");
    if (!h || h->value_len < 7 || !bn_http_eq_nocase(h->value, 7, "bearer ")) return 0;
    const char *tok = h->value + 7, *key = g.o.api_key;
    size_t n = h->value_len - 7, k = strlen(key);
    unsigned diff = n != k;
    for (size_t i = 0; i < n; i++) diff |= (unsigned char)tok[i] ^ (unsigned char)key[i % (k ? k : 1)];
    return diff == 0;
}

int route(conn *c, const bn_http_request *rq) {
    /* OpenAI's paths, llama-server's un-prefixed aliases of them, and its own endpoints */
    enum { PAGE, HEALTH, MODELS, METRICS, COMPLETIONS, CHAT, NATIVE, TOKENIZE, DETOKENIZE, PROPS, SLOTS, APPLY_TEMPLATE,
           EMBEDDINGS, EMBEDDING };
    static const struct { const char *path, *method; int id; } routes[] = {
        {"/", "GET", PAGE},                   {"/health", "GET", HEALTH},
        {"/v1/models", "GET", MODELS},
        {"/models", "GET", MODELS},           {"/metrics", "GET", METRICS},
        {"/v1/completions", "POST", COMPLETIONS}, {"/completions", "POST", COMPLETIONS},
        {"/v1/chat/completions", "POST", CHAT},   {"/chat/completions", "POST", CHAT},
        {"/completion", "POST", NATIVE},      {"/tokenize", "POST", TOKENIZE},
        {"/detokenize", "POST", DETOKENIZE},  {"/props", "GET", PROPS},
        {"/slots", "GET", SLOTS},             {"/apply-template", "POST", APPLY_TEMPLATE},
        {"/v1/embeddings", "POST", EMBEDDINGS}, {"/embeddings", "POST", EMBEDDINGS},
        {"/embedding", "POST", EMBEDDING}};
    int ka = rq->keep_alive;
    int r = -1;
    for (int i = 0; i < (int)(sizeof routes / sizeof routes[0]); i++)
        if (rq->path_len == strlen(routes[i].path) && !memcmp(rq->path, routes[i].path, rq->path_len)) r = i;
    if (g.o.api_key && (r < 0 || (routes[r].id != HEALTH && routes[r].id != PAGE)) && !authorized(rq))
        return respond_error(c, 401, "invalid or missing API key (send 'Authorization: Bearer KEY')", ka,
                             "WWW-Authenticate: Bearer\r\n");
    if (r < 0 && rq->path_len > 7 && !memcmp(rq->path, "/slots/", 7)) { /* llama-server's slot actions */
        if (!bn_http_eq_nocase(rq->method, rq->method_len, "POST"))
            return respond_error(c, 405, "method not allowed for this endpoint", ka, "Allow: POST\r\n");
        return handle_slot_action(c, rq, ka);
    }
    if (r < 0) return respond_error(c, 404, "no such endpoint", ka, NULL);
    if (!bn_http_eq_nocase(rq->method, rq->method_len, routes[r].method)) {
        char allow[32];
        snprintf(allow, sizeof allow, "Allow: %s\r\n", routes[r].method);
        return respond_error(c, 405, "method not allowed for this endpoint", ka, allow);
    }
    switch (routes[r].id) {
    case PAGE: return handle_page(c, ka);
    case HEALTH: return handle_health(c, ka);
    case MODELS: return handle_models(c, ka);
    case METRICS: return handle_metrics(c, ka);
    case PROPS: return handle_props(c, ka);
    case SLOTS: return handle_slots(c, ka);
    case TOKENIZE: return handle_native(c, rq, bn_native_tokenize);
    case DETOKENIZE: return handle_native(c, rq, bn_native_detokenize);
    case APPLY_TEMPLATE: return handle_native(c, rq, bn_native_apply_template);
    case EMBEDDINGS: return handle_embeddings(c, rq, 1);
    case EMBEDDING: return handle_embeddings(c, rq, 0);
    case CHAT: return handle_completion(c, rq, BN_API_CHAT);
    case NATIVE: return handle_completion(c, rq, BN_API_NATIVE);
    default: return handle_completion(c, rq, BN_API_COMPLETIONS);
    }
}

