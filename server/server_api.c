/* server_api.c - OpenAI request parsing, response JSON, stop strings (see server.h). */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"
#include "grammar/grammar.h"
#include "server.h"

#include "tokenizer/chat.h"

/* ---- request parsing ------------------------------------------------------------ */

int bn_server_bad(char *err, size_t errlen, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    if (err && errlen) {
        vsnprintf(err, errlen, fmt, ap);
        bn_one_line(err); /* text quoted from the request */
    }
    va_end(ap);
    return -1;
}

static const char *type_of(const bn_json *v) { return bn_json_type_name(v->type); }

/* A number field in [lo, hi] (integral if integer): 1 present, 0 absent or null, -1 bad. */
static int get_number(const bn_json *o, const char *key, double lo, double hi, int integer, double *out,
                      char *err, size_t errlen) {
    const bn_json *v = bn_json_get(o, key);
    if (!v || v->type == BN_JSON_NULL) return 0;
    const char *what = integer ? "an integer" : "a number";
    if (v->type != BN_JSON_NUMBER) return bn_server_bad(err, errlen, "'%s' must be %s, got %s", key, what, type_of(v));
    if (integer && v->number != floor(v->number)) return bn_server_bad(err, errlen,
            "'%s' must be %s, got %g", key, what, v->number);
    if (!(v->number >= lo && v->number <= hi))
        return bn_server_bad(err, errlen, "'%s' must be in [%g, %g], got %g", key, lo, hi, v->number);
    *out = v->number;
    return 1;
}

/* A boolean field: 1 present, 0 absent or null, -1 bad. */
static int get_bool(const bn_json *o, const char *key, int *out, char *err, size_t errlen) {
    const bn_json *v = bn_json_get(o, key);
    if (!v || v->type == BN_JSON_NULL) return 0;
    if (v->type != BN_JSON_BOOL) return bn_server_bad(err, errlen, "'%s' must be a boolean, got %s", key, type_of(v));
    *out = v->boolean;
    return 1;
}

static int add_stop(bn_gen_request *r, const bn_json *s, char *err, size_t errlen) {
    if (s->type != BN_JSON_STRING) return bn_server_bad(err, errlen, "'stop' must be a string or an array of strings");
    if (s->len > BN_STOP_MAX_LEN) return bn_server_bad(err, errlen,
            "a 'stop' string is longer than %d bytes", BN_STOP_MAX_LEN);
    if (s->len == 0) return 0; /* matches nothing */
    memcpy(r->stop[r->n_stop], s->str, s->len);
    r->stop_len[r->n_stop++] = s->len;
    return 0;
}

static int parse_stop(bn_gen_request *r, const bn_json *o, char *err, size_t errlen) {
    const bn_json *v = bn_json_get(o, "stop");
    if (!v || v->type == BN_JSON_NULL) return 0;
    if (v->type == BN_JSON_STRING) return add_stop(r, v, err, errlen);
    if (v->type != BN_JSON_ARRAY) return bn_server_bad(err, errlen,
            "'stop' must be a string or an array of strings, got %s", type_of(v));
    if (v->n > BN_MAX_STOP) return bn_server_bad(err, errlen,
            "'stop' has %zu strings, at most %d are allowed", v->n, BN_MAX_STOP);
    for (size_t i = 0; i < v->n; i++)
        if (add_stop(r, &v->items[i], err, errlen) != 0) return -1;
    return 0;
}

/* messages: a non-empty array of {"role": string, "content": string | null | [text parts]}. */
static int check_messages(const bn_json *m, char *err, size_t errlen) {
    if (!m) return bn_server_bad(err, errlen, "'messages' is required");
    if (m->type != BN_JSON_ARRAY || m->n == 0) return bn_server_bad(err, errlen,
            "'messages' must be a non-empty array");
    for (size_t i = 0; i < m->n; i++) {
        const bn_json *msg = &m->items[i];
        if (msg->type != BN_JSON_OBJECT) return bn_server_bad(err, errlen, "messages[%zu] must be an object", i);
        const bn_json *role = bn_json_get(msg, "role"), *c = bn_json_get(msg, "content");
        if (!role || role->type != BN_JSON_STRING || role->len == 0 || strlen(role->str) != role->len)
            return bn_server_bad(err, errlen, "messages[%zu].role must be a non-empty string", i);
        /* a role goes into the prompt as the template spells it: only the known ones */
        if (strcmp(role->str, "system") && strcmp(role->str, "user") && strcmp(role->str, "assistant") &&
            strcmp(role->str, "tool") && strcmp(role->str, "developer"))
            return bn_server_bad(err, errlen,
                    "messages[%zu].role must be one of system, developer, user, assistant, tool", i);
        if (!c || c->type == BN_JSON_NULL || c->type == BN_JSON_STRING) continue;
        if (c->type != BN_JSON_ARRAY)
            return bn_server_bad(err, errlen, "messages[%zu].content must be a string or an array of text parts", i);
        for (size_t k = 0; k < c->n; k++) {
            const bn_json *part = &c->items[k], *t = bn_json_get(part, "type"), *x = bn_json_get(part, "text");
            if (!t || t->type != BN_JSON_STRING || strcmp(t->str, "text") != 0 || !x || x->type != BN_JSON_STRING)
                return bn_server_bad(err, errlen,
                        "messages[%zu].content[%zu] must be {\"type\": \"text\", \"text\": string}", i, k);
        }
    }
    return 0;
}

/* Log-probabilities as each API asks for them: chat "logprobs": true with
 * "top_logprobs": N (0..20); legacy completions "logprobs": N (0..5, N
 * alternatives); llama.cpp's "n_probs": N. */
static int parse_logprobs(bn_gen_request *r, const bn_json *o, char *err, size_t errlen) {
    double x;
    int rc, on = 0;
    if (r->native) {
        if ((rc = get_number(o, "n_probs", 0, BN_TOP_LOGPROBS_MAX, 1, &x, err, errlen)) < 0) return -1;
        r->logprobs = rc && x > 0;
        r->top_logprobs = rc ? (int)x : 0;
    } else if (r->chat) {
        if (get_bool(o, "logprobs", &on, err, errlen) < 0) return -1;
        if ((rc = get_number(o, "top_logprobs", 0, BN_TOP_LOGPROBS_MAX, 1, &x, err, errlen)) < 0) return -1;
        if (rc && !on) return bn_server_bad(err, errlen, "'top_logprobs' needs 'logprobs': true");
        r->logprobs = on;
        r->top_logprobs = rc ? (int)x : 0;
    } else {
        if ((rc = get_number(o, "logprobs", 0, 5, 1, &x, err, errlen)) < 0) return -1;
        r->logprobs = rc;
        r->top_logprobs = rc ? (int)x : 0;
    }
    return 0;
}

/* logit_bias: OpenAI's {"token id": bias} (bias in [-100, 100]), and llama.cpp's
 * [[id, bias], ...] where bias may be false (never that token). Token ids are
 * checked against the vocabulary when the request runs (bn_server_check_bias). */
static int parse_logit_bias(bn_gen_request *r, const bn_json *o, char *err, size_t errlen) {
    const bn_json *lb = bn_json_get(o, "logit_bias");
    if (!lb || lb->type == BN_JSON_NULL) return 0;
    if (lb->type != BN_JSON_OBJECT && lb->type != BN_JSON_ARRAY)
        return bn_server_bad(err, errlen,
                "'logit_bias' must be an object {\"token id\": bias} or an array [[id, bias], ...]");
    if (lb->n == 0) return 0;
    if (lb->n > 4096) return bn_server_bad(err, errlen, "'logit_bias' has more than 4096 entries");
    if (!(r->bias = calloc(lb->n, sizeof *r->bias))) return bn_server_bad(err, errlen, "out of memory");
    for (size_t i = 0; i < lb->n; i++) {
        const bn_json *id = NULL, *b = &lb->items[i];
        char *end = NULL;
        long tok = -1;
        if (lb->type == BN_JSON_OBJECT) {
            tok = strtol(lb->keys[i], &end, 10);
            if (end == lb->keys[i] || *end) tok = -1;
        } else if (b->type == BN_JSON_ARRAY && b->n == 2) {
            id = &b->items[0];
            b = &b->items[1];
            if (id->type == BN_JSON_NUMBER && id->integer) tok = (long)id->number;
        }
        if (tok < 0 || tok > INT32_MAX)
            return bn_server_bad(err, errlen,
                    "'logit_bias' entry %zu: the key must be a token id (strings of text are not supported)", i);
        float v;
        if (b->type == BN_JSON_BOOL && !b->boolean) v = -INFINITY;
        else if (b->type == BN_JSON_NUMBER && b->number >= -100 && b->number <= 100) v = (float)b->number;
        else return bn_server_bad(err, errlen,
                "'logit_bias' entry %zu: the bias must be a number in [-100, 100] (or false)", i);
        r->bias[r->n_bias].token = (int)tok;
        r->bias[r->n_bias++].bias = v;
    }
    return 0;
}

int bn_server_check_bias(const bn_gen_request *r, int n_vocab, char *err, size_t errlen) {
    for (int i = 0; i < r->n_bias; i++)
        if (r->bias[i].token >= n_vocab)
            return bn_server_bad(err, errlen,
                    "'logit_bias': token %d is outside the vocabulary (0..%d)", r->bias[i].token, n_vocab - 1);
    return 0;
}

/* Constrained output, as GBNF in r->grammar: llama.cpp's 'grammar' (GBNF) and
 * 'json_schema' (a schema), OpenAI's response_format {"type": "json_schema",
 * "json_schema": {"schema": ...}}, and llama-server's response_format
 * {"type": "json_object", "schema": ...}. A plain json_object is the JSON mode
 * (r->json_object). A grammar that does not parse, or a schema keyword the
 * converter cannot enforce, is a 400 that names it. */
static int parse_constraints(bn_gen_request *r, const bn_json *o, char *err, size_t errlen) {
    const bn_json *g = bn_json_get(o, "grammar"), *js = bn_json_get(o, "json_schema"), *rf = bn_json_get(o, "response_format");
    const bn_json *schema = NULL;
    const char *from = NULL;
    int n = 0;
    if (g && g->type != BN_JSON_NULL && !(g->type == BN_JSON_STRING && g->len == 0)) {
        if (g->type != BN_JSON_STRING) return bn_server_bad(err, errlen,
                "'grammar' must be a string (GBNF), got %s", type_of(g));
        n++;
    } else {
        g = NULL;
    }
    if (js && js->type != BN_JSON_NULL) schema = js, from = "'json_schema'", n++;
    if (rf && rf->type != BN_JSON_NULL) {
        const bn_json *t = bn_json_get(rf, "type");
        if (rf->type != BN_JSON_OBJECT || !t || t->type != BN_JSON_STRING)
            return bn_server_bad(err, errlen, "'response_format' must be an object with a string 'type'");
        if (!strcmp(t->str, "json_schema")) {
            const bn_json *w = bn_json_get(rf, "json_schema");
            schema = w ? bn_json_get(w, "schema") : NULL;
            if (!schema) return bn_server_bad(err, errlen,
                    "'response_format' json_schema needs 'json_schema': {\"schema\": {...}}");
            from = "'response_format'";
            n++;
        } else if (!strcmp(t->str, "json_object")) {
            if ((schema = bn_json_get(rf, "schema")) && schema->type != BN_JSON_NULL) from = "'response_format'", n++;
            else r->json_object = 1;
        } else if (strcmp(t->str, "text")) {
            return bn_server_bad(err, errlen,
                    "'response_format' type \"%.40s\" is not supported (text, json_object and json_schema are)",
                       t->str);
        }
    }
    if (n > 1) return bn_server_bad(err, errlen,
            "give one of 'grammar', 'json_schema' and 'response_format' with a schema");
    if (g) {
        bn_gbnf check;
        char gerr[256];
        if (bn_gbnf_parse(g->str, &check, gerr, sizeof gerr) != 0) return bn_server_bad(err, errlen,
                "'grammar': %s", gerr);
        bn_gbnf_free(&check);
        if (strlen(g->str) != g->len) return bn_server_bad(err, errlen, "'grammar' contains a NUL character");
        if (!(r->grammar = strdup(g->str))) return bn_server_bad(err, errlen, "out of memory");
    } else if (from) {
        char serr[300];
        if (bn_json_schema_gbnf(schema, &r->grammar, serr, sizeof serr) != 0) return bn_server_bad(err, errlen,
                "%s: %s", from, serr);
    }
    return 0;
}

/* llama.cpp's /completion prompt: a string, or token ids (an array of integers). */
static int native_prompt(bn_gen_request *r, const bn_json *p, char *err, size_t errlen) {
    if (p->type == BN_JSON_ARRAY && p->n > 0 && p->items[0].type == BN_JSON_NUMBER) {
        if (p->n > (1u << 24)) return bn_server_bad(err, errlen, "'prompt' has too many tokens");
        if (!(r->prompt_ids = malloc(p->n * sizeof *r->prompt_ids))) return bn_server_bad(err, errlen, "out of memory");
        for (size_t i = 0; i < p->n; i++) {
            const bn_json *t = &p->items[i];
            if (t->type != BN_JSON_NUMBER || t->number != floor(t->number) || t->number < 0 || t->number > INT32_MAX)
                return bn_server_bad(err, errlen, "'prompt'[%zu] must be a token id (an integer >= 0)", i);
            r->prompt_ids[i] = (bitnet_token)t->number;
        }
        r->n_prompt_ids = (int)p->n;
        return !(r->prompt = strdup("")) ? bn_server_bad(err, errlen, "out of memory") : 0;
    }
    if (p->type != BN_JSON_STRING) return bn_server_bad(err, errlen,
            "'prompt' must be a string or an array of token ids");
    if (strlen(p->str) != p->len) return bn_server_bad(err, errlen, "'prompt' contains a NUL character");
    return !(r->prompt = strdup(p->str)) ? bn_server_bad(err, errlen, "out of memory") : 0;
}

static int parse_fields(bn_gen_request *r, const bn_json *o, char *err, size_t errlen) {
    double x;
    int rc;
    if (parse_logprobs(r, o, err, errlen) != 0 ||
        parse_constraints(r, o, err, errlen) != 0 || bn_tools_parse(r, o, err, errlen) != 0 ||
        parse_logit_bias(r, o, err, errlen) != 0)
        return -1;
    if (r->native) {
        const bn_json *p = bn_json_get(o, "prompt");
        if (!p) return bn_server_bad(err, errlen, "'prompt' is required");
        if (native_prompt(r, p, err, errlen) != 0) return -1;
    } else if (r->chat) {
        r->messages = bn_json_get(o, "messages");
        if (check_messages(r->messages, err, errlen) != 0) return -1;
    } else {
        const bn_json *p = bn_json_get(o, "prompt");
        if (p && p->type == BN_JSON_ARRAY && p->n == 1) p = &p->items[0]; /* ["text"]: one prompt */
        if (!p) return bn_server_bad(err, errlen, "'prompt' is required");
        if (p->type != BN_JSON_STRING)
            return bn_server_bad(err, errlen,
                    "'prompt' must be a string (token arrays and several prompts are not supported)");
        if (strlen(p->str) != p->len) return bn_server_bad(err, errlen, "'prompt' contains a NUL character");
        if (!(r->prompt = strdup(p->str))) return bn_server_bad(err, errlen, "out of memory");
    }
    r->max_tokens = r->chat || r->native ? -1 : 16; /* OpenAI's and llama.cpp's defaults */
    const char *mt = r->native && bn_json_get(o, "n_predict") ? "n_predict"
                     : bn_json_get(o, "max_completion_tokens") ? "max_completion_tokens"
                                                               : "max_tokens";
    if ((rc = get_number(o, mt, r->native ? -1 : 0, 1 << 30, 1, &x, err, errlen)) < 0) return -1;
    if (rc) r->max_tokens = (int)x;
    if ((rc = get_number(o, "temperature", 0, 100, 0, &x, err, errlen)) < 0) return -1;
    if (rc) r->sp.temp = (float)x;
    if ((rc = get_number(o, "top_p", 0, 1, 0, &x, err, errlen)) < 0) return -1;
    if (rc) r->sp.top_p = (float)x;
    if ((rc = get_number(o, "min_p", 0, 1, 0, &x, err, errlen)) < 0) return -1;
    if (rc) r->sp.min_p = (float)x;
    if ((rc = get_number(o, "top_k", 0, 1 << 30, 1, &x, err, errlen)) < 0) return -1;
    if (rc) r->sp.top_k = (int)x;
    if ((rc = get_number(o, "repeat_penalty", 0.01, 100, 0, &x, err, errlen)) < 0) return -1;
    if (rc) r->sp.repeat_penalty = (float)x;
    if ((rc = get_number(o, "presence_penalty", -2, 2, 0, &x, err, errlen)) < 0) return -1;
    if (rc) r->sp.presence_penalty = (float)x;
    if ((rc = get_number(o, "frequency_penalty", -2, 2, 0, &x, err, errlen)) < 0) return -1;
    if (rc) r->sp.frequency_penalty = (float)x;
    if ((rc = get_number(o, "repeat_last_n", 0, 1 << 16, 1, &x, err, errlen)) < 0) return -1;
    if (rc) r->sp.repeat_last_n = (int)x;
    if ((rc = get_number(o, "seed", -9007199254740992.0, 9007199254740992.0, 1, &x, err, errlen)) < 0) return -1;
    if (rc) {
        r->sp.seed = (uint64_t)(int64_t)x;
        r->has_seed = 1;
    }
    r->n_choices = 1;
    if ((rc = get_number(o, "n", 1, BN_MAX_CHOICES, 1, &x, err, errlen)) < 0) return -1;
    if (rc) r->n_choices = (int)x;
    if (get_bool(o, "stream", &r->stream, err, errlen) < 0) return -1;
    if (get_bool(o, "ignore_eos", &r->ignore_eos, err, errlen) < 0) return -1;
    r->cache_prompt = 1;
    if (get_bool(o, "cache_prompt", &r->cache_prompt, err, errlen) < 0) return -1;
    if ((rc = get_number(o, "n_keep", -1, 1 << 30, 1, &x, err, errlen)) < 0) return -1;
    if (rc) r->n_keep = (int)x;
    const bn_json *so = bn_json_get(o, "stream_options");
    if (so && so->type != BN_JSON_NULL) {
        if (so->type != BN_JSON_OBJECT) return bn_server_bad(err, errlen,
                "'stream_options' must be an object, got %s", type_of(so));
        if (get_bool(so, "include_usage", &r->include_usage, err, errlen) < 0) return -1;
    }
    if (r->n_choices > 1 && r->native) return bn_server_bad(err, errlen,
            "'n' is for the OpenAI endpoints (llama.cpp's /completion has none)");
    return parse_stop(r, o, err, errlen);
}

int bn_server_parse_request(const char *body, size_t len, int api, bn_gen_request *out, char *err,
                            size_t errlen) {
    memset(out, 0, sizeof *out);
    out->chat = api == BN_API_CHAT;
    out->native = api == BN_API_NATIVE;
    out->sp = bitnet_sampler_default_params();
    char jerr[160];
    out->doc = bn_json_parse(body, len, jerr, sizeof jerr);
    if (!out->doc) return bn_server_bad(err, errlen, "request body is not valid JSON: %s", jerr);
    if (out->doc->type != BN_JSON_OBJECT) {
        bn_server_bad(err, errlen, "request body must be a JSON object, got %s", type_of(out->doc));
    } else if (parse_fields(out, out->doc, err, errlen) == 0) {
        return 0;
    }
    bn_gen_request_free(out);
    return -1;
}

void bn_gen_request_free(bn_gen_request *r) {
    free(r->grammar);
    free(r->tools_system);
    free(r->bias);
    r->grammar = r->tools_system = NULL;
    r->bias = NULL;
    r->n_bias = 0;
    free(r->prompt);
    free(r->prompt_ids);
    r->prompt_ids = NULL;
    bn_json_free(r->doc);
    r->prompt = NULL;
    r->doc = NULL;
    r->messages = NULL;
}

int bn_server_message_text(const bn_json *msg, bn_buf *b) {
    const bn_json *c = bn_json_get(msg, "content");
    if (!c || c->type == BN_JSON_NULL) return 0;
    if (c->type == BN_JSON_STRING) return bn_buf_append(b, c->str, c->len);
    for (size_t k = 0; k < c->n; k++) {
        const bn_json *x = bn_json_get(&c->items[k], "text");
        if (bn_buf_append(b, x->str, x->len) != 0) return -1;
    }
    return 0;
}

/* The conversation rendered with the model's chat template (llama.cpp's
 * llama_chat_apply_template rules, src/tokenizer/chat.c); a model without a recognised
 * template gets the plain "User: ... Assistant:" format. */
char *bn_server_chat_prompt(const bitnet_model *model, const bn_json *messages, const char *tools_system,
                           unsigned char **plain) {
    /* tools: their description opens the system message (one is added if there is none) */
    const size_t extra = tools_system ? 1 : 0, n = messages->n + extra;
    bitnet_chat_message *msgs = calloc(n ? n : 1, sizeof *msgs);
    bn_buf *texts = calloc(n ? n : 1, sizeof *texts);
    char *out = NULL;
    int ok = msgs && texts;
    const int merge = tools_system && messages->n && !strcmp(bn_json_get(&messages->items[0], "role")->str, "system");
    size_t k = 0;
    if (ok && tools_system) {
        msgs[k].role = "system";
        ok = bn_buf_printf(&texts[k], "%s", tools_system) == 0;
        if (ok && merge) ok = bn_buf_printf(&texts[k], "\n") == 0 && bn_server_message_text(&messages->items[0], &texts[k]) == 0;
        ok = ok && bn_buf_append(&texts[k], "", 1) == 0;
        msgs[k].content = texts[k].data;
        k++;
    }
    for (size_t i = merge ? 1 : 0; ok && i < messages->n; i++, k++) {
        const bn_json *m = &messages->items[i];
        /* an assistant's earlier tool calls, as it wrote them */
        ok = bn_server_message_text(m, &texts[k]) == 0 && bn_tools_render_history(m, &texts[k]) == 0 &&
             bn_buf_append(&texts[k], "", 1) == 0;
        msgs[k].role = bn_json_get(m, "role")->str;
        msgs[k].content = texts[k].data ? texts[k].data : "";
    }
    const char *tmpl = bitnet_model_chat_template(model);
    if (bn_chat_detect(tmpl) == BN_CHAT_UNKNOWN) tmpl = "plain";
    const int len = ok ? bitnet_chat_apply_template(tmpl, msgs, k, 1, NULL, 0) : -1;
    *plain = len >= 0 ? malloc((size_t)len + 1) : NULL;
    if (*plain && (out = malloc((size_t)len + 1)) != NULL)
        bitnet_chat_apply_template_ex(tmpl, msgs, k, 1, out, *plain, len + 1);
    if (!out) {
        free(*plain);
        *plain = NULL;
    }
    for (size_t i = 0; texts && i < n; i++) bn_buf_free(&texts[i]);
    free(texts);
    free(msgs);
    return out;
}

/* ---- stop strings ------------------------------------------------------------------ */

void bn_stop_filter_init(bn_stop_filter *f, const bn_gen_request *req) {
    f->req = req;
    f->n_held = 0;
}

static void release(bn_stop_filter *f, size_t n, char *out, size_t *out_len) {
    memcpy(out + *out_len, f->held, n);
    *out_len += n;
    memmove(f->held, f->held + n, f->n_held - n);
    f->n_held -= n;
}

/* Start of an incomplete UTF-8 sequence at the end of s[0..n), or n. */
static size_t utf8_complete(const char *s, size_t n) {
    for (size_t back = 1; back <= 3 && back <= n; back++) {
        unsigned char c = (unsigned char)s[n - back];
        if ((c & 0xC0) == 0x80) continue; /* continuation byte: look further back */
        if (c < 0xC0) return n;           /* ASCII */
        size_t need = c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : 2;
        return back < need ? n - back : n;
    }
    return n;
}

int bn_stop_filter_push(bn_stop_filter *f, const char *piece, size_t n, char *out, size_t *out_len) {
    const bn_gen_request *r = f->req;
    if (n > BN_PIECE_MAX) n = BN_PIECE_MAX;
    memcpy(f->held + f->n_held, piece, n);
    f->n_held += n;
    /* the earliest complete stop string ends the output */
    size_t first = f->n_held;
    for (int k = 0; k < r->n_stop; k++) {
        size_t L = r->stop_len[k];
        for (size_t i = 0; i + L <= f->n_held && i < first; i++)
            if (memcmp(f->held + i, r->stop[k], L) == 0) {
                first = i;
                break;
            }
    }
    if (first < f->n_held) {
        release(f, first, out, out_len);
        f->n_held = 0;
        return 1;
    }
    /* hold back the longest tail that is a proper prefix of a stop string */
    size_t keep_from = f->n_held;
    for (int k = 0; k < r->n_stop; k++) {
        size_t max = BN_MIN(r->stop_len[k] - 1, f->n_held);
        for (size_t L = max; L > 0; L--)
            if (memcmp(f->held + f->n_held - L, r->stop[k], L) == 0) {
                keep_from = BN_MIN(keep_from, f->n_held - L);
                break;
            }
    }
    release(f, utf8_complete(f->held, keep_from), out, out_len);
    return 0;
}

void bn_stop_filter_flush(bn_stop_filter *f, char *out, size_t *out_len) { release(f, f->n_held, out, out_len); }

/* ---- responses ------------------------------------------------------------------------ */

const char *bn_finish_reason(bn_finish f) {
    return f == BN_FINISH_STOP ? "stop" : f == BN_FINISH_LENGTH ? "length" : NULL;
}

/* ---- log-probabilities ----------------------------------------------------------- */

/* The text of token id after prev (cut to BN_PIECE_MAX); its length. */
static int piece_of(const bn_resp_info *ri, bitnet_token prev, bitnet_token id, char *buf) {
    const int n = bitnet_token_to_piece(ri->vocab, prev, id, buf, BN_PIECE_MAX + 1);
    return n < 0 ? 0 : BN_MIN(n, BN_PIECE_MAX);
}

static int bytes_json(bn_buf *b, const char *p, int n) {
    int rc = bn_buf_printf(b, "[");
    for (int i = 0; i < n; i++) rc |= bn_buf_printf(b, i ? ",%u" : "%u", (unsigned char)p[i]);
    return rc | bn_buf_printf(b, "]");
}

/* {"id", "token", "bytes", "logprob"} (llama.cpp adds the id to OpenAI's fields) */
static int token_lp(bn_buf *b, const bn_resp_info *ri, bitnet_token prev, bitnet_token id, float lp) {
    char p[BN_PIECE_MAX + 1];
    const int n = piece_of(ri, prev, id, p);
    return bn_buf_printf(b, "{\"id\":%d,\"token\":", id) | bn_json_append_string(b, p, (size_t)n) |
           bn_buf_printf(b, ",\"bytes\":") | bytes_json(b, p, n) | bn_buf_printf(b, ",\"logprob\":%.7g", (double)lp);
}

/* Chat: {"content": [{..., "top_logprobs": [...]}]}; llama.cpp's /completion:
 * the array alone (its completion_probabilities). */
static int lp_entries(bn_buf *b, const bn_resp_info *ri) {
    int rc = bn_buf_printf(b, "[");
    for (int k = 0; k < ri->n_lp; k++) {
        const bn_logprob *e = &ri->lp[k];
        const bitnet_token prev = k ? ri->lp[k - 1].id : ri->lp_prev;
        rc |= (k ? bn_buf_printf(b, ",") : 0) | token_lp(b, ri, prev, e->id, e->logprob) |
              bn_buf_printf(b, ",\"top_logprobs\":[");
        for (int t = 0; t < e->n_top; t++)
            rc |= (t ? bn_buf_printf(b, ",") : 0) | token_lp(b, ri, prev, e->top_id[t], e->top_logprob[t]) |
                  bn_buf_printf(b, "}");
        rc |= bn_buf_printf(b, "]}");
    }
    return rc | bn_buf_printf(b, "]");
}

/* Legacy completions: {"tokens", "token_logprobs", "top_logprobs": [{text: lp}], "text_offset"}. */
static int lp_legacy(bn_buf *b, const bn_resp_info *ri) {
    char p[BN_PIECE_MAX + 1];
    int rc = bn_buf_printf(b, "{\"tokens\":[");
    for (int k = 0; k < ri->n_lp; k++) {
        const int n = piece_of(ri, k ? ri->lp[k - 1].id : ri->lp_prev, ri->lp[k].id, p);
        rc |= (k ? bn_buf_printf(b, ",") : 0) | bn_json_append_string(b, p, (size_t)n);
    }
    rc |= bn_buf_printf(b, "],\"token_logprobs\":[");
    for (int k = 0; k < ri->n_lp; k++) rc |= bn_buf_printf(b, k ? ",%.7g" : "%.7g", (double)ri->lp[k].logprob);
    rc |= bn_buf_printf(b, "],\"top_logprobs\":[");
    for (int k = 0; k < ri->n_lp; k++) {
        const bn_logprob *e = &ri->lp[k];
        rc |= bn_buf_printf(b, k ? ",{" : "{");
        for (int t = 0; t < e->n_top; t++) {
            const int n = piece_of(ri, k ? ri->lp[k - 1].id : ri->lp_prev, e->top_id[t], p);
            rc |= (t ? bn_buf_printf(b, ",") : 0) | bn_json_append_string(b, p, (size_t)n) |
                  bn_buf_printf(b, ":%.7g", (double)e->top_logprob[t]);
        }
        rc |= bn_buf_printf(b, "}");
    }
    rc |= bn_buf_printf(b, "],\"text_offset\":[");
    size_t off = ri->text_offset;
    for (int k = 0; k < ri->n_lp; k++) {
        rc |= bn_buf_printf(b, k ? ",%zu" : "%zu", off);
        off += (size_t)piece_of(ri, k ? ri->lp[k - 1].id : ri->lp_prev, ri->lp[k].id, p);
    }
    return rc | bn_buf_printf(b, "]}");
}

/* The value of "logprobs" in an OpenAI answer or chunk. */
static int logprobs_value(bn_buf *b, const bn_resp_info *ri) {
    if (!ri->lp || !ri->vocab) return bn_buf_printf(b, "null");
    if (!ri->chat) return lp_legacy(b, ri);
    return bn_buf_printf(b, "{\"content\":") | lp_entries(b, ri) | bn_buf_printf(b, "}");
}

static int head(bn_buf *b, const bn_resp_info *ri, const char *object) {
    if (bn_buf_printf(b, "{\"id\":") || bn_json_append_string(b, ri->id, strlen(ri->id)) ||
        bn_buf_printf(b, ",\"object\":\"%s\",\"created\":%lld,\"model\":", object, ri->created) ||
        bn_json_append_string(b, ri->model, strlen(ri->model)))
        return -1;
    return 0;
}

static int usage(bn_buf *b, const bn_resp_info *ri) {
    return bn_buf_printf(b,
                         "\"usage\":{\"prompt_tokens\":%d,\"completion_tokens\":%d,\"total_tokens\":%d,"
                         "\"prompt_tokens_details\":{\"cached_tokens\":%d}}",
                         ri->prompt_tokens, ri->completion_tokens, ri->prompt_tokens + ri->completion_tokens,
                         ri->cached_tokens);
}

static int finish_json(bn_buf *b, bn_finish f) {
    const char *r = bn_finish_reason(f);
    return r ? bn_buf_printf(b, "\"finish_reason\":\"%s\"", r) : bn_buf_printf(b, "\"finish_reason\":null");
}

/* An answer that is a tool call: `null,"tool_calls":[...]` after "content": (OpenAI's
 * message; in a stream's delta each call also has its "index"). Returns 1 if
 * written, 0 if the text is not a call (nothing written), -1 out of memory. */
static int tool_calls_json(bn_buf *b, const bn_resp_info *ri, const char *text, size_t n, int choice, int delta) {
    bn_buf name = {0}, args = {0};
    int call = bn_tools_call(text, n, &name, &args), rc = 0;
    if (call)
        rc = bn_buf_printf(b, "null,\"tool_calls\":[{%s\"id\":\"call_%s_%d\",\"type\":\"function\",\"function\":{\"name\":",
                           delta ? "\"index\":0," : "", ri->id, choice) ||
             bn_json_append_string(b, name.data, name.len) || bn_buf_printf(b, ",\"arguments\":") ||
             bn_json_append_string(b, args.data, args.len) || bn_buf_printf(b, "}}]");
    bn_buf_free(&name);
    bn_buf_free(&args);
    return rc ? -1 : call;
}

int bn_server_json_results(bn_buf *b, const bn_resp_info *ris, const char *const *texts, const size_t *lens,
                           const bn_finish *f, int n_choices) {
    const bn_resp_info *ri = &ris[0]; /* the id, model and usage; each choice's logprobs in its own */
    if (head(b, ri, ri->chat ? "chat.completion" : "text_completion") || bn_buf_printf(b, ",\"choices\":["))
        return -1;
    for (int i = 0; i < n_choices; i++) {
        if (bn_buf_printf(b, ri->chat ? "%s{\"index\":%d,\"message\":{\"role\":\"assistant\",\"content\":"
                                      : "%s{\"index\":%d,\"text\":",
                          i ? "," : "", i))
            return -1;
        const int call = ri->chat && ri->req && ri->req->tools_system && f[i] == BN_FINISH_STOP ? tool_calls_json(b, ri, texts[i], lens[i], i, 0) : 0;
        if (call < 0 || (!call && bn_json_append_string(b, texts[i], lens[i])) ||
            bn_buf_printf(b, ri->chat ? "},\"logprobs\":" : ",\"logprobs\":") || logprobs_value(b, &ris[i]) ||
            bn_buf_printf(b, ",") ||
            (call ? bn_buf_printf(b, "\"finish_reason\":\"tool_calls\"") : finish_json(b, f[i])) || bn_buf_printf(b, "}"))
            return -1;
    }
    if (bn_buf_printf(b, "],") || usage(b, ri) || bn_buf_printf(b, "}")) return -1;
    return 0;
}

int bn_server_json_result(bn_buf *b, const bn_resp_info *ri, const char *text, size_t n, bn_finish f) {
    return bn_server_json_results(b, ri, &text, &n, &f, 1);
}

int bn_server_sse_chunk(bn_buf *b, const bn_resp_info *ri, const char *text, size_t n, int role, bn_finish f) {
    if (bn_buf_printf(b, "data: ") || head(b, ri, ri->chat ? "chat.completion.chunk" : "text_completion") ||
        bn_buf_printf(b, ",\"choices\":[{\"index\":%d,", ri->index))
        return -1;
    if (ri->chat) {
        if (bn_buf_printf(b, "\"delta\":{") || (role && bn_buf_printf(b, "\"role\":\"assistant\"%s", n || !f ? "," : "")))
            return -1;
        if ((n || (role && !f)) && (bn_buf_printf(b, "\"content\":") || bn_json_append_string(b, text, n))) return -1;
        if (bn_buf_printf(b, "},")) return -1;
    } else if (bn_buf_printf(b, "\"text\":") || bn_json_append_string(b, text, n) || bn_buf_printf(b, ",")) {
        return -1;
    }
    if (bn_buf_printf(b, "\"logprobs\":") || logprobs_value(b, ri) || bn_buf_printf(b, ",") || finish_json(b, f) ||
        bn_buf_printf(b, "}]}\n\n"))
        return -1;
    return 0;
}

int bn_server_sse_tools_answer(bn_buf *b, const bn_resp_info *ri, const char *text, size_t n, bn_finish f) {
    if (bn_buf_printf(b, "data: ") || head(b, ri, "chat.completion.chunk") ||
        bn_buf_printf(b, ",\"choices\":[{\"index\":%d,\"delta\":{\"content\":", ri->index))
        return -1;
    const int call = f == BN_FINISH_STOP ? tool_calls_json(b, ri, text, n, ri->index, 1) : 0;
    if (call < 0 || (!call && bn_json_append_string(b, text, n)) ||
        bn_buf_printf(b, "},\"logprobs\":null,\"finish_reason\":null}]}\n\ndata: ") || head(b, ri, "chat.completion.chunk") ||
        bn_buf_printf(b, ",\"choices\":[{\"index\":%d,\"delta\":{},\"logprobs\":null,", ri->index) ||
        (call ? bn_buf_printf(b, "\"finish_reason\":\"tool_calls\"") : finish_json(b, f)) || bn_buf_printf(b, "}]}\n\n"))
        return -1;
    return 0;
}

int bn_server_sse_usage(bn_buf *b, const bn_resp_info *ri) {
    if (bn_buf_printf(b, "data: ") || head(b, ri, ri->chat ? "chat.completion.chunk" : "text_completion") ||
        bn_buf_printf(b, ",\"choices\":[],") || usage(b, ri) || bn_buf_printf(b, "}\n\n"))
        return -1;
    return 0;
}

static int native_timings(bn_buf *b, const bn_resp_info *ri) {
    const int pn = ri->prompt_tokens - ri->cached_tokens, gn = ri->completion_tokens;
    const double pms = ri->prompt_ms, gms = ri->predicted_ms;
    return bn_buf_printf(b,
                         "\"timings\":{\"cache_n\":%d,\"prompt_n\":%d,\"prompt_ms\":%.3f,\"prompt_per_token_ms\":%.3f,"
                         "\"prompt_per_second\":%.3f,\"predicted_n\":%d,\"predicted_ms\":%.3f,"
                         "\"predicted_per_token_ms\":%.3f,\"predicted_per_second\":%.3f}",
                         ri->cached_tokens, pn, pms, pn ? pms / pn : 0.0, pms > 0 ? 1e3 * pn / pms : 0.0, gn, gms,
                         gn ? gms / gn : 0.0, gms > 0 ? 1e3 * gn / gms : 0.0);
}

static int native_settings(bn_buf *b, const bn_resp_info *ri) {
    const bn_gen_request *r = ri->req;
    if (!r) return bn_buf_printf(b, "\"generation_settings\":{}");
    int rc = bn_buf_printf(b,
                           "\"generation_settings\":{\"n_predict\":%d,\"temperature\":%g,\"top_k\":%d,\"top_p\":%g,"
                           "\"min_p\":%g,\"repeat_penalty\":%g,\"ignore_eos\":%s,\"cache_prompt\":%s,\"stop\":[",
                           r->max_tokens, (double)r->sp.temp, r->sp.top_k, (double)r->sp.top_p, (double)r->sp.min_p,
                           (double)r->sp.repeat_penalty, r->ignore_eos ? "true" : "false",
                           r->cache_prompt ? "true" : "false");
    for (int i = 0; i < r->n_stop; i++)
        rc |= (i ? bn_buf_printf(b, ",") : 0) | bn_json_append_string(b, r->stop[i], r->stop_len[i]);
    return rc | bn_buf_printf(b, "]}");
}

int bn_server_native_result(bn_buf *b, const bn_resp_info *ri, const char *text, size_t n, bn_finish f) {
    const char *stop_type = f == BN_FINISH_STOP ? (ri->stop_word ? "word" : "eos") : f == BN_FINISH_LENGTH ? "limit" : "none";
    if (bn_buf_printf(b, "{\"index\":0,\"content\":") || bn_json_append_string(b, text, n) ||
        bn_buf_printf(b, ",\"tokens\":[],\"id_slot\":%d,\"stop\":true,\"model\":", ri->id_slot) ||
        bn_json_append_string(b, ri->model, strlen(ri->model)) ||
        bn_buf_printf(b, ",\"tokens_predicted\":%d,\"tokens_evaluated\":%d,\"tokens_cached\":%d,\"truncated\":false,"
                         "\"stop_type\":\"%s\",\"stopping_word\":\"\",",
                      ri->completion_tokens, ri->prompt_tokens, ri->cached_tokens, stop_type) ||
        native_settings(b, ri) || bn_buf_printf(b, ",") || native_timings(b, ri) ||
        (ri->lp && ri->vocab && (bn_buf_printf(b, ",\"completion_probabilities\":") || lp_entries(b, ri))) ||
        bn_buf_printf(b, "}"))
        return -1;
    return 0;
}

int bn_server_native_chunk(bn_buf *b, const bn_resp_info *ri, const char *text, size_t n) {
    if (bn_buf_printf(b, "data: {\"index\":0,\"content\":") || bn_json_append_string(b, text, n) ||
        bn_buf_printf(b, ",\"tokens\":[],\"stop\":false,\"id_slot\":%d", ri->id_slot) ||
        (ri->lp && ri->vocab && (bn_buf_printf(b, ",\"completion_probabilities\":") || lp_entries(b, ri))) ||
        bn_buf_printf(b, "}\n\n"))
        return -1;
    return 0;
}

int bn_server_json_error(bn_buf *b, int status, const char *message) {
    const char *type = status == 401 ? "authentication_error"
                       : status == 404 ? "not_found_error"
                       : status == 503 ? "unavailable_error"
                       : status >= 500 ? "server_error"
                                       : "invalid_request_error";
    if (bn_buf_printf(b, "{\"error\":{\"message\":") || bn_json_append_string(b, message, strlen(message)) ||
        bn_buf_printf(b, ",\"type\":\"%s\",\"param\":null,\"code\":%d}}", type, status))
        return -1;
    return 0;
}
