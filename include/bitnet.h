/*
 * bitnet.h - public API of libbitnet, a CPU inference runtime for ternary
 * (BitNet b1.58) and small float Llama-family language models.
 *
 * Lifecycle:   model = load(file)  ->  ctx = context_new(model)
 *              tokens = tokenize(text) -> eval(ctx, tokens) -> logits -> sample
 *              -> eval(next) ... -> context_free -> model_free
 *
 * Errors: every fallible call returns a bitnet_status (BITNET_OK == 0). The
 * human-readable reason (one line, naming the file and what is wrong) is in
 * bitnet_last_error(), which is thread-local. The library never calls exit().
 * Constructors return a status and write the object to an out-parameter
 * (NULL on failure).
 *
 * Ownership: what *_load / *_new returns is freed with the matching *_free
 * (NULL is accepted). A model must outlive its contexts, grammars and
 * samplers' users; a draft context must outlive its bitnet_draft. Pointers
 * the library returns (logits, chat templates, names) belong to it: logits
 * stay valid until the next eval on, or the free of, that context; model
 * strings until the model is freed. bitnet_json_schema_to_grammar's text is
 * the caller's (free()).
 *
 * Threads: a model is read-only once loaded, so every call that takes a
 * const bitnet_model * (tokenize, token_to_piece, info, templates) may run
 * concurrently, and several contexts of one model may each be used from its
 * own thread at the same time (what a server's workers do). A context,
 * sampler, grammar or draft is used by one thread at a time; a context runs
 * its own pool of n_threads workers inside each eval. bitnet_log_set is meant
 * to be called once, before other calls.
 */
#ifndef BITNET_H
#define BITNET_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The one place the version is written: the Makefile reads it for the
 * shared library's SONAME and bitnet.pc. The SONAME is libbitnet.so.MAJOR,
 * and libbitnet.so.0.MINOR before 1.0, where a minor version may change the
 * ABI (0.2 did: bitnet_sampler_new returns a status). */
#define BITNET_VERSION "0.2.0"

/* Every public function is declared BITNET_API; the library is built with
 * -fvisibility=hidden, so libbitnet.so exports these and nothing else. On
 * Windows the library's own objects are compiled with BITNET_BUILD: bitnet.dll
 * exports these (a program links its import library, libbitnet.dll.a). */
#if defined(_WIN32)
#if defined(BITNET_BUILD)
#define BITNET_API __declspec(dllexport)
#else
#define BITNET_API
#endif
#elif defined(__GNUC__) || defined(__clang__)
#define BITNET_API __attribute__((visibility("default")))
#else
#define BITNET_API
#endif

typedef int32_t bitnet_token;

typedef enum {
    BITNET_OK = 0,
    BITNET_ERR_IO = -1,          /* cannot open / read / map a file       */
    BITNET_ERR_FORMAT = -2,      /* malformed or hostile file contents    */
    BITNET_ERR_UNSUPPORTED = -3, /* valid file, feature we cannot compute */
    BITNET_ERR_NOMEM = -4,       /* allocation failed                     */
    BITNET_ERR_ARG = -5,         /* bad argument from the caller          */
    BITNET_ERR_CONTEXT_FULL = -6 /* position would pass n_ctx             */
} bitnet_status;

typedef struct bitnet_model bitnet_model;
typedef struct bitnet_context bitnet_context;
typedef struct bitnet_sampler bitnet_sampler;

/* ---- model ------------------------------------------------------------ */
typedef struct {
    const char *tokenizer_path; /* llama2.c tokenizer.bin for files without a vocabulary, or NULL */
    int use_mmap;               /* 1 (default): map the file; 0: read weights into memory          */
    int use_mlock;              /* lock the weights in RAM (best effort, reported on stderr)      */
} bitnet_model_params;

BITNET_API bitnet_model_params bitnet_model_default_params(void);

/* Loads GGUF (any version-3 file of a supported architecture) or a legacy ak42 file. */
BITNET_API bitnet_status bitnet_model_load(const char *path, const bitnet_model_params *params,
                                bitnet_model **out);
/* Loads the model compiled into the library (models/default.gguf); NULL-safe params. */
BITNET_API bitnet_status bitnet_model_load_default(const bitnet_model_params *params, bitnet_model **out);
BITNET_API void bitnet_model_free(bitnet_model *model);

typedef struct {
    const char *arch;     /* "llama", "bitnet-b1.58", "ak42"       */
    const char *name;     /* general.name or file name                */
    int n_vocab, n_embd, n_ff, n_layer, n_head, n_head_kv, n_ctx_train;
    uint64_t n_params;    /* number of weights                        */
    uint64_t weight_bytes;/* bytes of weights read per token          */
    const char *weight_type; /* dominant weight type, e.g. "i2_s"    */
} bitnet_model_info;

BITNET_API void bitnet_model_get_info(const bitnet_model *model, bitnet_model_info *info);

/* ---- tokenizer -------------------------------------------------------- */
BITNET_API bitnet_token bitnet_token_bos(const bitnet_model *model);
BITNET_API bitnet_token bitnet_token_eos(const bitnet_model *model);
/* Returns the number of tokens written (<= max_tokens), or a negative status
 * (BITNET_ERR_ARG when the text needs more than max_tokens). */
BITNET_API int bitnet_tokenize(const bitnet_model *model, const char *text, int add_bos,
                    bitnet_token *tokens, int max_tokens);
/* Text of `token` as it follows `prev` (llama2.c rule: the leading space of the
 * first piece after BOS is dropped; <0xXX> byte tokens give the raw byte).
 * Writes at most len-1 bytes plus NUL; returns the piece length (may contain
 * NUL bytes only for byte token <0x00>) or a negative status. */
BITNET_API int bitnet_token_to_piece(const bitnet_model *model, bitnet_token prev, bitnet_token token,
                          char *buf, int len);

/* ---- special tokens and chat templates -------------------------------- */
/* End-of-turn token (Llama-3's <|eot_id|>, GPT-2's <|endoftext|>, ...), or -1. */
BITNET_API bitnet_token bitnet_token_eot(const bitnet_model *model);
/* 1 if `token` ends a generation: EOS, EOT and the end-of-text / end-of-turn
 * tokens llama.cpp recognises (<|eot_id|>, <|end_of_text|>, <|im_end|>, ...). */
BITNET_API int bitnet_token_is_eog(const bitnet_model *model, bitnet_token token);
/* bitnet_tokenize for `len` bytes of text. parse_special = 1 turns the text of
 * control tokens ("<|eot_id|>", "<s>") into those tokens, as llama.cpp's
 * parse_special; with 0 they are plain text, as in bitnet_tokenize. */
BITNET_API int bitnet_tokenize_ex(const bitnet_model *model, const char *text, size_t len, int add_bos,
                       int parse_special, bitnet_token *tokens, int max_tokens);
/* The model's GGUF tokenizer.chat_template (NUL-terminated), or NULL. */
BITNET_API const char *bitnet_model_chat_template(const bitnet_model *model);

typedef struct {
    const char *role;    /* "system", "user", "assistant" */
    const char *content;
} bitnet_chat_message;

/* Formats a conversation as llama.cpp's llama_chat_apply_template does: tmpl
 * is a template text, recognised by its distinctive parts (Llama-3 Instruct,
 * BitNet-b1.58-2B-4T), or one of the names "llama3", "bitnet", "plain". The
 * BOS token is not part of the text. add_assistant appends the opening of
 * the assistant's turn. Writes at most len-1 bytes plus NUL; returns the full
 * length (larger than len-1: call again with a bigger buffer), or
 * BITNET_ERR_UNSUPPORTED when the template is not recognised. */
BITNET_API int bitnet_chat_apply_template(const char *tmpl, const bitnet_chat_message *msgs, size_t n_msgs,
                               int add_assistant, char *buf, int len);
/* As bitnet_chat_apply_template; plain (len bytes, or NULL) also gets 1 for
 * each byte of buf that comes from a message (its content or role) and 0 for
 * the template's own markup, for bitnet_tokenize_chat. */
BITNET_API int bitnet_chat_apply_template_ex(const char *tmpl, const bitnet_chat_message *msgs, size_t n_msgs,
                                  int add_assistant, char *buf, unsigned char *plain, int len);
/* Tokenizes a rendered conversation: control tokens (<|eot_id|>, </s>, ...)
 * are parsed only in the template's markup; bytes marked in plain (from
 * bitnet_chat_apply_template_ex) are always text, so a message cannot forge a
 * turn or end the sequence (as llama.cpp keeps user content plain). */
BITNET_API int bitnet_tokenize_chat(const bitnet_model *model, const char *text, size_t len, const unsigned char *plain,
                         int add_bos, bitnet_token *tokens, int max_tokens);
/* The name ("llama3", "bitnet", "chatml", "gemma", "falcon3", "plain") of the template tmpl is recognised
 * as, or NULL when bitnet_chat_apply_template would refuse it. */
BITNET_API const char *bitnet_chat_template_name(const char *tmpl);
/* The text that closes a turn in template tmpl ("<|eot_id|>" for Llama-3 and
 * BitNet, "<|im_end|>" for ChatML, "<end_of_turn>" for Gemma, a newline for
 * Falcon 3 and plain), for a reply cut short before the model wrote
 * it; NULL when the template is not recognised. */
BITNET_API const char *bitnet_chat_turn_end(const char *tmpl);

/* ---- context ---------------------------------------------------------- */
/* KV cache storage (docs/kv-cache.md): f32, f16, or quantised per head-row
 * to 8, 4 or 2 bits. BITNET_KV_DEFAULT picks per architecture at context
 * creation (f16, but f32 for ak42 models: docs/kv-cache.md). */
typedef enum {
    BITNET_KV_DEFAULT = -1,
    BITNET_KV_F32 = 0,
    BITNET_KV_F16 = 1,
    BITNET_KV_Q8 = 2,
    BITNET_KV_Q4 = 3,
    BITNET_KV_Q2 = 4
} bitnet_kv_type;

/* "f32", "f16", "q8", "q4", "q2" ("default" for BITNET_KV_DEFAULT). */
BITNET_API const char *bitnet_kv_type_name(bitnet_kv_type type);
/* Parses one of those names into *out; returns 0, or -1 if unknown. llama.cpp's
 * q8_0, q4_0 and q4_1 are accepted as q8, q4, q4 (same bits, per-row scales). */
BITNET_API int bitnet_kv_type_from_name(const char *name, bitnet_kv_type *out);

typedef struct {
    int n_ctx;          /* context size in tokens (default 512)            */
    int n_batch;        /* max tokens per bitnet_eval call (default 64)     */
    int n_threads;      /* worker threads including the caller (default 1)  */
    bitnet_kv_type kv_type;  /* default BITNET_KV_DEFAULT (see above)        */
    const char *cpu_affinity; /* "0-1,3" as taskset takes, or NULL         */
    int use_mlock;      /* lock the context arena                           */
    int n_seq;          /* independent sequences (KV cache slots) decoded
                           together by bitnet_eval_batch (default 1)         */
} bitnet_context_params;

BITNET_API bitnet_context_params bitnet_context_default_params(void);
BITNET_API bitnet_status bitnet_context_new(bitnet_model *model, const bitnet_context_params *params,
                                 bitnet_context **out);
BITNET_API void bitnet_context_free(bitnet_context *ctx);

/* Runs the model over tokens[0..n) placed at positions pos..pos+n-1. Afterwards
 * bitnet_get_logits() holds the logits of the last token. pos+n must be <= n_ctx. */
BITNET_API bitnet_status bitnet_eval(bitnet_context *ctx, const bitnet_token *tokens, int n_tokens, int pos);
/* Same, but keeps the logits of every token: out must hold n_tokens * n_vocab floats. */
BITNET_API bitnet_status bitnet_eval_all_logits(bitnet_context *ctx, const bitnet_token *tokens,
                                     int n_tokens, int pos, float *out);
BITNET_API float *bitnet_get_logits(bitnet_context *ctx);

/* Batched decoding of several sequences in one forward pass (a server's
 * slots): token i is placed in sequence seq[i] (0..n_seq-1) at position pos[i].
 * Every weight is read once for the whole batch. Tokens of one sequence must
 * appear in increasing, consecutive positions, and positions 0..pos-1 of that
 * sequence must have been evaluated before (re-evaluating from an earlier
 * position overwrites the cache from there: that is how a slot is reused).
 * Afterwards bitnet_get_logits_seq(ctx, s) holds the logits of the last token
 * of sequence s in this batch; sequences absent from the batch keep theirs.
 * bitnet_eval(ctx, t, n, pos) is bitnet_eval_batch with seq[i] = 0. */
BITNET_API bitnet_status bitnet_eval_batch(bitnet_context *ctx, const bitnet_token *tokens, const int *pos,
                                const int *seq, int n_tokens);
BITNET_API float *bitnet_get_logits_seq(bitnet_context *ctx, int seq);
/* bitnet_eval_batch that also returns the logits of chosen tokens (the logits
 * flags of llama.cpp's llama_batch): out receives n_vocab floats for each
 * token i with logits[i] != 0, packed in batch order (out holds as many rows
 * as flags are set). Only those tokens pass through the classifier. A
 * sequence's bitnet_get_logits_seq row is updated when its last token in the
 * batch is flagged. */
BITNET_API bitnet_status bitnet_eval_batch_logits(bitnet_context *ctx, const bitnet_token *tokens, const int *pos,
                                                  const int *seq, const int8_t *logits, int n_tokens, float *out);
BITNET_API int bitnet_n_seq(const bitnet_context *ctx);
/* ---- sequences in the KV cache (llama.cpp's llama_memory_seq_*) --------
 * Sequence s holds positions 0..n-1 (bitnet_seq_n_pos): an eval at position
 * p of s keeps 0..p-1 and makes p.. its last evaluated token the end. None of
 * these may run concurrently with an eval on the same context. */
/* Copies the keys and values of positions [p0, p1) of sequence src into
 * sequence dst (p1 = -1: all of src), so that dst continues after a prefix it
 * shares with src without evaluating it: a server's slots sharing a system
 * prompt, n > 1 completions of one prompt. dst's positions outside [p0, p1)
 * are untouched; p0 must not be past dst's end (no gap). Logits are not
 * copied (evaluate at least one token). */
BITNET_API bitnet_status bitnet_seq_cp(bitnet_context *ctx, int src, int dst, int p0, int p1);
/* Removes positions [p0, p1) of sequence seq; p1 = -1 means to the end.
 * - A tail (p1 at or past the end): seq then ends at p0, and the next eval at
 *   p0 continues as if the removed tokens had never been evaluated
 *   (speculative decoding's rollback, regenerating an answer).
 * - A middle range: the later positions move down by p1 - p0 and their keys
 *   are re-rotated for their new positions (RoPE), as llama.cpp's seq_rm +
 *   seq_add do for a context shift: keep a prefix, drop the oldest turns, go
 *   on without re-evaluating. The moved keys pass through float once, so the
 *   result equals a fresh evaluation up to float rounding (and the cache
 *   type's quantisation), not bit for bit. */
BITNET_API bitnet_status bitnet_seq_rm(bitnet_context *ctx, int seq, int p0, int p1);
/* Empties every sequence but seq (llama_memory_seq_keep). */
BITNET_API bitnet_status bitnet_seq_keep(bitnet_context *ctx, int seq);
/* The number of positions sequence seq holds, or -1 for a bad argument. */
BITNET_API int bitnet_seq_n_pos(const bitnet_context *ctx, int seq);

/* ---- session files (llama.cpp's llama_state_save_file / load_file) -----
 * Sequence 0's first n_tokens positions (keys and values, in the cache's own
 * type) and the tokens themselves, so that a later process skips evaluating a
 * prompt it has seen (infer --prompt-cache). The file names the model (its
 * shape and a sample of its weights) and the KV type; loading into another
 * model or cache type is refused with one line, as are damaged files
 * (checksum). Saving replaces path atomically. The logits are not saved:
 * after loading, evaluate at least one token (e.g. remove the last position
 * with bitnet_seq_rm and evaluate that token again). Not concurrently with an
 * eval on the same context. */
BITNET_API bitnet_status bitnet_state_save_file(bitnet_context *ctx, const char *path, const bitnet_token *tokens,
                                                int n_tokens);
/* Replaces sequence 0 with the file's positions and writes its tokens to
 * tokens (at most max_tokens) and their number to *n_tokens. On any error
 * sequence 0 is left empty (or untouched, when the header is refused). */
BITNET_API bitnet_status bitnet_state_load_file(bitnet_context *ctx, const char *path, bitnet_token *tokens,
                                                int max_tokens, int *n_tokens);
/* The same for sequence seq (llama_state_seq_save_file / load_file: a
 * server's slot); the file is the same, so a state saved from one sequence
 * loads into any sequence of a context of the same model and KV type. */
BITNET_API bitnet_status bitnet_state_seq_save_file(bitnet_context *ctx, int seq, const char *path,
                                                    const bitnet_token *tokens, int n_tokens);
BITNET_API bitnet_status bitnet_state_seq_load_file(bitnet_context *ctx, int seq, const char *path, bitnet_token *tokens,
                                                    int max_tokens, int *n_tokens);

BITNET_API const bitnet_model *bitnet_get_model(const bitnet_context *ctx); /* as llama_get_model */
BITNET_API int bitnet_n_vocab(const bitnet_model *model);
BITNET_API int bitnet_n_ctx(const bitnet_context *ctx);
/* The context's KV cache type (the default resolved) and its size in bytes (K + V). */
BITNET_API bitnet_kv_type bitnet_context_kv_type(const bitnet_context *ctx);
BITNET_API size_t bitnet_context_kv_bytes(const bitnet_context *ctx);

/* ---- embeddings ------------------------------------------------------- */
/* How token states become one vector (llama.cpp's pooling_type values). */
typedef enum {
    BITNET_POOLING_DEFAULT = -1, /* the model's ARCH.pooling_type, else mean */
    BITNET_POOLING_NONE = 0,     /* one vector per token                     */
    BITNET_POOLING_MEAN = 1,
    BITNET_POOLING_CLS = 2,      /* the first token's                        */
    BITNET_POOLING_LAST = 3      /* the last token's                         */
} bitnet_pooling;

/* Embedding of tokens[0..n) evaluated from position 0 of sequence 0 (the
 * context's cache is overwritten): the final-norm hidden states, pooled, and
 * L2-normalised when normalize != 0. out receives n_embd floats, or
 * n * n_embd with BITNET_POOLING_NONE (each row normalised). */
BITNET_API bitnet_status bitnet_embed(bitnet_context *ctx, const bitnet_token *tokens, int n, bitnet_pooling pooling,
                           int normalize, float *out);
BITNET_API int bitnet_n_embd(const bitnet_model *model);
/* The model's pooling (GGUF ARCH.pooling_type), or BITNET_POOLING_DEFAULT if it names none. */
BITNET_API bitnet_pooling bitnet_model_pooling(const bitnet_model *model);

/* ---- analysis hooks (build/prune) ------------------------------------- */
/* Called after the embedding (layer -1) and after every layer with the
 * residual stream x[n][dim] of the n tokens being evaluated. NULL removes it. */
typedef void (*bitnet_layer_hook)(void *user, int layer, const float *x, int n, int dim);
BITNET_API void bitnet_context_set_layer_hook(bitnet_context *ctx, bitnet_layer_hook hook, void *user);
/* skip[l] != 0 leaves layer l out of the forward pass (skip has n_layer
 * entries and must outlive its use); NULL runs every layer. */
BITNET_API void bitnet_context_set_skip_layers(bitnet_context *ctx, const uint8_t *skip);

/* ---- sampler ---------------------------------------------------------- */
typedef struct {
    float temp;            /* 0 = greedy (argmax)                   */
    int top_k;             /* 0 = off                               */
    float top_p;           /* 1 = off                               */
    float min_p;           /* 0 = off                               */
    float repeat_penalty;  /* 1 = off                               */
    int repeat_last_n;     /* tokens considered for the penalties   */
    uint64_t seed;
    float presence_penalty;  /* minus this on a token seen in the last repeat_last_n; 0 = off */
    float frequency_penalty; /* minus this times its count there; 0 = off (OpenAI's, llama.cpp's) */
} bitnet_sampler_params;

BITNET_API bitnet_sampler_params bitnet_sampler_default_params(void);
/* params NULL: the defaults. Errors: n_vocab <= 0, out of memory. */
BITNET_API bitnet_status bitnet_sampler_new(const bitnet_sampler_params *params, int n_vocab, bitnet_sampler **out);
/* Picks the next token; logits may be modified (penalties). */
BITNET_API bitnet_token bitnet_sampler_sample(bitnet_sampler *s, float *logits);
/* Tells the sampler that `token` was emitted (for the repetition penalty). */
BITNET_API void bitnet_sampler_accept(bitnet_sampler *s, bitnet_token token);
BITNET_API void bitnet_sampler_free(bitnet_sampler *s);

/* ---- constrained output: grammars and JSON Schema (docs/grammar.md) ----
 * A grammar in llama.cpp's GBNF (start rule `root`) masks, before each
 * sampling, every token whose text cannot continue the output so far, so the
 * output is always a prefix of a sentence of the grammar, and end-of-generation
 * tokens are allowed only once it is a whole one. One grammar object follows
 * one output; it is not thread-safe (use one per sequence). */
typedef struct bitnet_grammar bitnet_grammar;
/* Parses gbnf for model's vocabulary. Errors: BITNET_ERR_ARG with the one-line
 * message "grammar line L: what is wrong" (an undefined or left-recursive rule,
 * no `root`, a syntax error). */
BITNET_API bitnet_status bitnet_grammar_new(const bitnet_model *model, const char *gbnf, bitnet_grammar **out);
/* Another grammar for the same model as `like`, sharing its vocabulary index
 * (built once per model by bitnet_grammar_new: tens of ms for 128k tokens),
 * so only gbnf is parsed. The two may then be used from different threads;
 * `like` may be freed first. */
BITNET_API bitnet_status bitnet_grammar_new_sharing(const bitnet_grammar *like, const char *gbnf, bitnet_grammar **out);
/* Sets logits[t] = -INFINITY for every token t that cannot come next. Returns
 * the number of tokens left (0: none can, the caller should stop), or a
 * negative status (the grammar is too ambiguous to follow, out of memory). */
BITNET_API int bitnet_grammar_apply(bitnet_grammar *g, float *logits);
/* Advances past the token the caller chose (one apply allowed). */
BITNET_API bitnet_status bitnet_grammar_accept(bitnet_grammar *g, bitnet_token token);
/* 0: the output is not a whole sentence yet; 1: it is, and may go on;
 * 2: it is, and nothing may follow (only end-of-generation). */
BITNET_API int bitnet_grammar_is_complete(const bitnet_grammar *g);
/* Back to the empty output. */
BITNET_API bitnet_status bitnet_grammar_reset(bitnet_grammar *g);
BITNET_API void bitnet_grammar_free(bitnet_grammar *g);
/* Converts a JSON Schema (schema[0..len)) to GBNF, as llama.cpp's
 * json-schema-to-grammar does for the keywords docs/grammar.md lists; any
 * other keyword is refused: BITNET_ERR_ARG, "unsupported JSON Schema keyword
 * 'pattern' at $.properties.name". *gbnf is malloc'd text; free() it. */
BITNET_API bitnet_status bitnet_json_schema_to_grammar(const char *schema, size_t len, char **gbnf);

/* ---- speculative decoding (exact) --------------------------------------
 * A drafter guesses up to n_draft tokens; the target evaluates them in one
 * batch and keeps those its own sampler would have produced. The output is
 * the same text as plain decoding for every sampler setting and seed; it
 * only runs faster when drafts are often right (docs/speculative.md). */
typedef struct bitnet_draft bitnet_draft;
/* Prompt lookup: the tokens that followed the latest earlier occurrence of
 * the history's last n-gram (ngram_max down to 1 tokens), no model needed. */
BITNET_API bitnet_status bitnet_draft_lookup_new(int ngram_max, int n_draft, bitnet_draft **out);
/* The prompt-lookup draft itself, for a caller that runs its own verification
 * (a server's slots): up to max tokens that followed the latest earlier
 * occurrence of hist's last ngram_max..1 tokens, written to out; returns
 * their number (0: no n-gram recurs). Pure function of its arguments. */
BITNET_API int bitnet_draft_lookup(int ngram_max, const bitnet_token *hist, int n_hist, bitnet_token *out, int max);
/* A smaller model with the same vocabulary, greedy, in its own context
 * (which the drafter keeps in step with the history; it must outlive d). */
BITNET_API bitnet_status bitnet_draft_model_new(bitnet_context *draft_ctx, int n_draft, bitnet_draft **out);
BITNET_API void bitnet_draft_free(bitnet_draft *d);
/* Totals so far: tokens drafted, draft tokens accepted, steps. */
BITNET_API void bitnet_draft_stats(const bitnet_draft *d, long *drafted, long *accepted, long *steps);
/* One step of sequence 0: hist[0..n_hist) are the tokens so far, all but the
 * last already evaluated in ctx at positions 0..n_hist-2; hist[n_hist-1] (the
 * pending token) is not. Drafts, evaluates the pending token and the draft in
 * one batch, and samples each row in order with smp (logit_bias, if not NULL,
 * added to every row first: n_vocab floats, e.g. -INFINITY to ban a token),
 * calling bitnet_sampler_accept for each sampled token, as plain decoding
 * does. Writes the k >= 1 sampled tokens to out (at most max_out) and returns
 * k, or a negative status. Afterwards ctx holds hist and out[0..k-2];
 * out[k-1] is the new pending token. A caller that stops early (end of
 * generation, a length limit) simply ignores the tokens after it. */
BITNET_API int bitnet_spec_step(bitnet_context *ctx, bitnet_draft *d, bitnet_sampler *smp, const float *logit_bias,
                     const bitnet_token *hist, int n_hist, bitnet_token *out, int max_out);

/* ---- misc ------------------------------------------------------------- */
BITNET_API const char *bitnet_last_error(void);

/* Where the library's warnings go (a context that could not lock its memory,
 * a requested kernel set the CPU lacks, a converted tensor stored in another
 * type...): by default one line on stderr. bitnet_log_set(fn, user) sends each
 * to fn instead (the message has no newline); fn NULL restores stderr. Set it
 * before other calls: it may be called from any thread that uses the library.
 * Errors are not logged: every failing call returns a status and sets
 * bitnet_last_error(). */
typedef enum { BITNET_LOG_WARN = 1 } bitnet_log_level;
typedef void (*bitnet_log_fn)(bitnet_log_level level, const char *message, void *user);
BITNET_API void bitnet_log_set(bitnet_log_fn fn, void *user);
BITNET_API const char *bitnet_isa_name(void);   /* kernel set in use: "scalar", "avx2", ... */
BITNET_API const char *bitnet_version(void);

#ifdef __cplusplus
}
#endif
#endif
