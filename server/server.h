/* server.h - the socket-free parts of build/server (server/main.c):
 *
 *   server_api.c    OpenAI request bodies -> bn_gen_request, response JSON and SSE
 *                   chunks, the stop-string filter, a plain chat prompt fallback
 *   server_sched.c  the slot scheduler: one decode thread runs every active request
 *                   in one batched forward pass per step (bitnet_eval_batch)
 *   server_native.c llama.cpp's /tokenize, /detokenize and /apply-template
 *
 * They live in the library so that tests/test_server.c can test them directly. */
#ifndef BN_SERVER_H
#define BN_SERVER_H

#include <pthread.h>
#include <stdint.h>

#include "bitnet.h"
#include "formats/json.h"
#include "json_mode.h"

#define BN_MAX_STOP 4          /* stop strings per request (as OpenAI)                 */
#define BN_STOP_MAX_LEN 256    /* bytes per stop string                                */
#define BN_PIECE_MAX 256       /* bytes of one token's text (longer pieces are cut)    */
#define BN_SPEC_MAX 16         /* --draft-max: tokens drafted per slot and step          */
#define BN_MAX_CHOICES 8       /* 'n': completions of one prompt in one request         */

/* ---- requests ---------------------------------------------------------------- */

#define BN_TOP_LOGPROBS_MAX 20 /* alternatives per token (OpenAI's top_logprobs limit) */

/* One generated token's log-probability (log-softmax of the model's logits,
 * before sampling), and the most likely alternatives at its position. */
typedef struct {
    bitnet_token id;
    float logprob;
    int n_top;
    bitnet_token top_id[BN_TOP_LOGPROBS_MAX];
    float top_logprob[BN_TOP_LOGPROBS_MAX];
} bn_logprob;

/* Which endpoint a request body is for. */
enum { BN_API_COMPLETIONS = 0, BN_API_CHAT = 1, BN_API_NATIVE = 2 /* llama.cpp's POST /completion */ };

typedef struct {
    int chat;                /* /v1/chat/completions (else /v1/completions)            */
    int native;              /* llama.cpp's /completion: its field names and answers   */
    bitnet_token *prompt_ids; /* native: a prompt given as token ids (malloc'd), or NULL */
    int n_prompt_ids;
    char *prompt;            /* completion prompt (malloc'd); chat: NULL until the
                                caller renders messages into it                        */
    bn_json *doc;            /* the parsed body (owns messages)                         */
    const bn_json *messages; /* chat: validated array of {role, content}              */
    int stream;              /* "stream": true -> Server-Sent Events                   */
    int include_usage;       /* "stream_options": {"include_usage": true}              */
    int max_tokens;          /* generated tokens; -1 = until EOS or the context is full */
    int ignore_eos;          /* llama.cpp extension: never stop at EOS/BOS             */
    int cache_prompt;        /* llama.cpp's: reuse a slot's cached prefix (default 1)  */
    int n_keep;              /* --context-shift: prompt tokens (after BOS) kept when the
                                context is full; -1: the whole prompt (llama-server's)  */
    int logprobs;            /* report each token's log-probability                    */
    int top_logprobs;        /* ... and this many alternatives (0..BN_TOP_LOGPROBS_MAX) */
    int n_choices;           /* 'n': completions of the prompt (1..BN_MAX_CHOICES)      */
    int json_object;         /* response_format {"type": "json_object"}: JSON output only */
    char *grammar;           /* GBNF the output must follow (malloc'd), from 'grammar',
                                'json_schema', response_format json_schema or 'tools'; or NULL */
    int n_bias;              /* logit_bias: added to these tokens' logits (malloc'd)   */
    struct bn_bias { int token; float bias; } *bias;
    char *tools_system;      /* 'tools' (tool_choice not "none"): the system text listing
                                them (malloc'd); the answer may be a call (tools.c)     */
    bitnet_sampler_params sp; /* absent fields: the library defaults (as llama.cpp's server) */
    int has_seed;            /* else the server picks a seed                            */
    int n_stop;
    char stop[BN_MAX_STOP][BN_STOP_MAX_LEN + 1];
    size_t stop_len[BN_MAX_STOP];
} bn_gen_request;

/* Parses and validates a body for `api` (BN_API_*): OpenAI /v1/completions,
 * /v1/chat/completions, or llama.cpp's /completion. Fields: prompt | messages
 * (native: a string or an array of token ids), max_tokens (max_completion_tokens;
 * native: n_predict, default -1), temperature, top_p, top_k, min_p,
 * repeat_penalty, seed, stop (string or array), stream,
 * stream_options.include_usage, n (must be 1), ignore_eos, cache_prompt.
 * Unknown fields are ignored, as OpenAI clients send many; fields the server
 * cannot honour (logprobs, top_logprobs, n_probs, response_format other than
 * text, tools, grammar, json_schema) are refused rather than ignored. Returns 0,
 * or -1 with a one-line reason in err (the server answers 400 with it). */
int bn_server_parse_request(const char *body, size_t len, int api, bn_gen_request *out, char *err,
                            size_t errlen);
void bn_gen_request_free(bn_gen_request *r);

/* Text of a validated chat message's content (a string, null, or an array of
 * {"type": "text", "text": ...} parts, concatenated) appended to b; 0 or -1 (OOM). */
int bn_server_message_text(const bn_json *msg, bn_buf *b);
/* Renders validated chat messages with the model's chat template (the plain
 * "User: ... Assistant:" format when it has none we recognise), ending with the
 * opening of the assistant's turn; tools_system (or NULL) opens the system
 * message, and an assistant's tool_calls are rendered as the calls it wrote. malloc'd, or NULL (OOM). *plain gets a
 * malloc'd mask of the bytes that come from the messages, for
 * bitnet_tokenize_chat (control tokens only in the template's markup). */
char *bn_server_chat_prompt(const bitnet_model *model, const bn_json *messages, const char *tools_system,
                           unsigned char **plain);

/* ---- stop strings -------------------------------------------------------------- */

/* Turns the stream of token pieces into the text the client may see: text that
 * could still become the start of a stop string, and an incomplete UTF-8 sequence
 * at the end, are held back until the next piece decides. A stop string found
 * anywhere in the held text (also across pieces) ends the output right before it. */
typedef struct {
    const bn_gen_request *req;
    char held[BN_STOP_MAX_LEN + BN_PIECE_MAX + 8];
    size_t n_held;
} bn_stop_filter;

void bn_stop_filter_init(bn_stop_filter *f, const bn_gen_request *req);
/* Adds a piece (n <= BN_PIECE_MAX); appends the releasable text to out[*out_len..]
 * (out needs BN_STOP_MAX_LEN + BN_PIECE_MAX + 8 bytes of room). Returns 1 if a stop
 * string was found: the output is complete and the stop string is not in it. */
int bn_stop_filter_push(bn_stop_filter *f, const char *piece, size_t n, char *out, size_t *out_len);
/* End of generation without a stop string: releases everything held. */
void bn_stop_filter_flush(bn_stop_filter *f, char *out, size_t *out_len);

/* ---- responses -------------------------------------------------------------------- */

typedef enum {
    BN_FINISH_NONE = 0,
    BN_FINISH_STOP,      /* EOS or a stop string                     */
    BN_FINISH_LENGTH,    /* max_tokens or the context is full         */
    BN_FINISH_CANCELLED, /* the client went away                      */
    BN_FINISH_ABORTED,   /* the server shut down before the end        */
    BN_FINISH_ERROR      /* the forward pass failed                    */
} bn_finish;

/* "stop" or "length" (the OpenAI finish_reason), else NULL. */
const char *bn_finish_reason(bn_finish f);

typedef struct {
    int chat;
    int index;                      /* the choice ('n' > 1) a chunk or result belongs to */
    const char *id, *model;
    long long created;
    int prompt_tokens, completion_tokens;
    int cached_tokens; /* prompt tokens whose KV the slot already held (usage.prompt_tokens_details) */
    /* llama.cpp's /completion answers also carry: */
    int id_slot, stop_word;
    double prompt_ms, predicted_ms; /* timings: prompt evaluation, generation */
    const bn_gen_request *req;      /* generation_settings */
    /* logprobs of the tokens this answer or chunk covers (lp NULL: none asked) */
    const bitnet_model *vocab;      /* for the tokens' text */
    const bn_logprob *lp;
    int n_lp;
    bitnet_token lp_prev;           /* the token before lp[0] (the text of a piece may depend on it) */
    size_t text_offset;             /* legacy completions: offset of lp[0]'s text in the whole text */
} bn_resp_info;

/* The whole non-streaming response object. Each writer returns 0, or -1 out of memory. */
int bn_server_json_result(bn_buf *b, const bn_resp_info *ri, const char *text, size_t n, bn_finish f);
/* The same with n_choices choices (OpenAI's 'n'; logprobs only when n_choices is 1). */
int bn_server_json_results(bn_buf *b, const bn_resp_info *ris, const char *const *texts, const size_t *lens,
                           const bn_finish *f, int n_choices);
/* One SSE event "data: {chunk}\n\n". role != 0: the first chat chunk (delta.role);
 * f != BN_FINISH_NONE: the last chunk, with finish_reason (its text may be empty). */
int bn_server_sse_chunk(bn_buf *b, const bn_resp_info *ri, const char *text, size_t n, int role, bn_finish f);
/* The usage chunk of stream_options.include_usage (empty choices). */
/* With 'tools', a stream holds the answer back until it is whole (a call is
 * known only then): one chunk with it (tool_calls or content), then the final
 * chunk (finish_reason "tool_calls" for a call). */
int bn_server_sse_tools_answer(bn_buf *b, const bn_resp_info *ri, const char *text, size_t n, bn_finish f);
int bn_server_sse_usage(bn_buf *b, const bn_resp_info *ri);
/* llama.cpp's /completion: the whole answer ({"content", "stop": true,
 * "tokens_predicted", "tokens_evaluated", "tokens_cached", "stop_type",
 * "timings", "generation_settings", ...}), and one streamed event
 * ("data: {"content": TEXT, "stop": false, ...}\n\n"; the last is the whole
 * answer with empty content, and no [DONE] follows, as llama-server). */
int bn_server_native_result(bn_buf *b, const bn_resp_info *ri, const char *text, size_t n, bn_finish f);
int bn_server_native_chunk(bn_buf *b, const bn_resp_info *ri, const char *text, size_t n);
/* {"error": {"message", "type", "param": null, "code"}} for an HTTP status. */
int bn_server_json_error(bn_buf *b, int status, const char *message);

/* ---- llama.cpp's endpoints (server_native.c) -------------------------------------------
 * Each takes the request body and writes the answer's JSON into out; returns the
 * HTTP status (200, 400 with a one-line reason in err, 500 out of memory).
 *   /tokenize      {"content", "add_special" (false), "parse_special" (true),
 *                   "with_pieces" (false)} -> {"tokens": [id | {"id", "piece"}]}
 *   /detokenize    {"tokens": [id]} -> {"content"}
 *   /apply-template {"messages": [...]} -> {"prompt"}: the chat prompt as
 *                   /v1/chat/completions would evaluate it */
int bn_native_tokenize(const bitnet_model *m, const char *body, size_t len, bn_buf *out, char *err, size_t errlen);
int bn_native_detokenize(const bitnet_model *m, const char *body, size_t len, bn_buf *out, char *err, size_t errlen);
int bn_native_apply_template(const bitnet_model *m, const char *body, size_t len, bn_buf *out, char *err,
                             size_t errlen);
/* Embeddings of each input with ctx (one sequence; the caller serialises its
 * use), the model's pooling, L2-normalised. oai: /v1/embeddings ({"input": text
 * | [texts] | [ids] | [[ids]], "encoding_format": "float" | "base64"} ->
 * {"object": "list", "data": [{"object": "embedding", "index", "embedding"}],
 * "model", "usage"}); else llama.cpp's /embedding ({"content": ...} ->
 * [{"index", "embedding": [[...]]}]). */
int bn_native_embeddings(const bitnet_model *m, bitnet_context *ctx, const char *model_name, int oai, const char *body,
                         size_t len, bn_buf *out, char *err, size_t errlen);

/* Writes a one-line 400 message into err (control characters quoted from the
 * request become spaces) and returns -1: every request parser's error path. */
int bn_server_bad(char *err, size_t errlen, const char *fmt, ...) BN_PRINTF(3, 4);
/* 0 if every logit_bias token is in the vocabulary, else -1 with a 400 message. */
int bn_server_check_bias(const bn_gen_request *r, int n_vocab, char *err, size_t errlen);

/* ---- function calling (tools.c) ---------------------------------------------------- */

/* 'tools' and 'tool_choice' of a chat request: sets r->grammar (one call, or with
 * "auto" a call or plain text) and r->tools_system. 0, or -1 with a one-line 400
 * message (a bad tool, an unknown tool_choice, an unsupported parameters keyword). */
int bn_tools_parse(bn_gen_request *r, const bn_json *o, char *err, size_t errlen);
/* 1 if an answer is a call: *name and *args (compact JSON) filled; else 0. */
int bn_tools_call(const char *text, size_t n, bn_buf *name, bn_buf *args);
/* An assistant message's tool_calls as the model writes them (appended to b). */
int bn_tools_render_history(const bn_json *msg, bn_buf *b);

/* ---- scheduler ---------------------------------------------------------------------- */

/* One generation request. The caller fills the inputs, submits it, reads output
 * with bn_sched_wait until done, and frees it only after done (bn_sched_cancel
 * waits for that). */
typedef struct bn_job {
    /* inputs, read-only once submitted */
    bitnet_token *prompt;    /* BOS + prompt tokens                           */
    int n_prompt;
    const bn_gen_request *req;
    bitnet_sampler *sampler; /* fresh, with the prompt already accepted       */
    /* outputs, guarded by the scheduler's lock */
    bn_buf out;              /* text produced and not yet taken by bn_sched_wait */
    int n_gen, done, cancelled;
    int n_cached;            /* prompt tokens reused from the slot's cache (set at admission) */
    int slot;                /* the slot that ran it, -1 before admission              */
    int stop_word;           /* finished at a stop string (else EOS, length, ...)      */
    uint64_t t_start, t_first, t_end; /* admission, first token, end (bn_time_ns)     */
    bn_logprob *lp;          /* req->logprobs: [n_ctx] entries, allocated by the caller */
    int n_lp;                /* entries written (read it with bn_sched_logprobs)       */
    float *lp_logits;        /* req->logprobs: [n_vocab] scratch for the decode thread  */
    bn_json_mode json;       /* req->json_object: the output so far, as JSON (decode thread) */
    bitnet_grammar *grammar; /* req->grammar, compiled by the caller (the decode thread runs it) */
    bn_finish finish;
    uint64_t t_submit;       /* bn_time_ns() when submitted (time to first token)  */
    pthread_cond_t cond;
    struct bn_job *next;     /* queue link */
} bn_job;

void bn_job_init(bn_job *j);    /* zeroes it and sets up the condition variable */
void bn_job_destroy(bn_job *j); /* frees out, prompt and sampler; not req       */

#define BN_LAT_BUCKETS 12
extern const double bn_lat_bucket_le[BN_LAT_BUCKETS]; /* seconds; +Inf is the last count */

typedef struct {
    int n_slots, slots_busy, queued, max_queue;
    uint64_t tokens_generated, prompt_tokens, steps, jobs_cancelled;
    uint64_t drafted, draft_accepted;           /* --lookup: draft tokens evaluated, and kept */
    uint64_t context_shifts;                    /* --context-shift: shifts done               */
    double busy_seconds;                        /* time spent in steps that generated tokens */
    uint64_t lat_count[BN_LAT_BUCKETS + 1];     /* per-token latency histogram, not cumulative */
    double lat_sum;                             /* seconds */
    uint64_t ttft_count;
    double ttft_sum;                            /* time to first token: submit -> first token */
} bn_sched_stats;

typedef struct bn_sched bn_sched;

/* Starts the decode thread over ctx: its n_seq sequences are the slots, and each
 * step evaluates at most n_batch tokens (the context's n_batch; >= the slots).
 * max_queue requests may wait beyond the slots. lookup > 0: speculative
 * decoding by prompt lookup (n-grams of up to `lookup` tokens, at most
 * draft_max <= BN_SPEC_MAX tokens drafted per slot and step); 0: off. */
bitnet_status bn_sched_new(bitnet_model *model, bitnet_context *ctx, int n_batch, int max_queue, int lookup,
                           int draft_max, bn_sched **out);
/* --context-shift: a generation that fills its slot's context drops half of
 * the tokens after the request's n_keep (bitnet_seq_rm of a middle range) and
 * goes on, instead of ending with "length". Set before the first request. */
void bn_sched_set_context_shift(bn_sched *s, int on);
/* 0: accepted; -1: slots and queue are full (503); -2: shutting down (503);
 * -3: a prompt token outside the vocabulary (400, bitnet_last_error() says which). */
int bn_sched_submit(bn_sched *s, bn_job *j);
/* Waits up to timeout_ms for output, appends what is new to dst, returns job->done. */
int bn_sched_wait(bn_sched *s, bn_job *j, bn_buf *dst, int timeout_ms);
/* How many logprob entries of the job are complete (job->lp[0..n)). */
int bn_sched_logprobs(bn_sched *s, bn_job *j);
/* The client is gone: frees its slot at the next step; returns once the job is done. */
void bn_sched_cancel(bn_sched *s, bn_job *j);
/* Refuses new jobs (bn_sched_submit returns -2); running and queued ones go on. */
void bn_sched_stop(bn_sched *s);
/* Refuses new jobs, waits up to grace_ms for running and queued ones to finish,
 * then ends the rest as BN_FINISH_ABORTED. */
void bn_sched_drain(bn_sched *s, int grace_ms);
void bn_sched_get_stats(bn_sched *s, bn_sched_stats *out);
/* Slot i: whether it runs a request, and how many tokens its KV cache holds. */
void bn_sched_slot_info(bn_sched *s, int i, int *busy, int *n_cached);

/* llama-server's slot actions on an idle slot, run by the decode thread
 * between two steps: save its cached tokens and their KV rows to path
 * (bitnet_state_seq_save_file), restore them from path (the slot's prefix
 * cache then holds them: a request that starts the same reuses them), erase
 * them. Returns 0 with *n_tokens set; 1 the slot is busy; -1 failed (err has
 * the line). */
typedef enum { BN_SLOT_SAVE, BN_SLOT_RESTORE, BN_SLOT_ERASE } bn_slot_action;
int bn_sched_slot_action(bn_sched *s, int slot, bn_slot_action a, const char *path, int *n_tokens, char *err,
                         size_t err_cap);
void bn_sched_free(bn_sched *s); /* drains with no grace and joins the thread */

#endif
