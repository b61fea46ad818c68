/* fuzz_http.c - libFuzzer target for what build/server does with the bytes a
 * client sends: the HTTP/1.1 request parser (server/http.c), then for each
 * complete request the OpenAI request-body parser (server/server_api.c: JSON,
 * field validation), the chat prompt rendering with the default model's
 * template (src/tokenizer/chat.c), an accepted grammar / JSON schema / tools compiled and
 * masked (src/grammar), the stop-string filter over the prompt's bytes, and the response
 * writers (tool calls included).
 *
 * The input is a byte stream from a client (pipelined requests included).
 * Checked besides the sanitizers: every pointer the parser returns lies in
 * the buffer, lengths add up, an error carries a status the server may send
 * and a one-line reason, feeding the same bytes in two pieces gives the same
 * answer (the server re-parses as bytes arrive), the small limits are
 * enforced (the first input byte picks default or small limits), a rejected
 * body gives a one-line reason, and every response written is valid JSON. */
#include "common.h"
#include "fuzz.h"
#include "http.h"
#include "server.h"

static bitnet_model *g_model; /* for chat templates; kept for the whole run */

static void check_json(const bn_buf *b, size_t skip, const char *what) {
    char err[200];
    bn_json *v = bn_json_parse(b->data + skip, b->len - skip, err, sizeof err);
    if (!v) fuzz_fail(what, err);
    bn_json_free(v);
}

/* The hostile messages through the built-in templates too (the default model has none). */
static void render_named_templates(const bn_json *messages) {
    size_t n = messages->n;
    bitnet_chat_message *msgs = calloc(n ? n : 1, sizeof *msgs);
    bn_buf *texts = calloc(n ? n : 1, sizeof *texts);
    if (!msgs || !texts) abort();
    for (size_t i = 0; i < n; i++) {
        if (bn_server_message_text(&messages->items[i], &texts[i]) != 0 || bn_buf_append(&texts[i], "", 1) != 0) abort();
        msgs[i].role = bn_json_get(&messages->items[i], "role")->str;
        msgs[i].content = texts[i].data;
    }
    static const char *names[] = {"llama3", "bitnet", "plain"};
    for (int k = 0; k < 3; k++) {
        int len = bitnet_chat_apply_template(names[k], msgs, n, k != 1, NULL, 0);
        if (len < 0) fuzz_fail("a built-in template failed", names[k]);
        char *buf = malloc((size_t)len + 1);
        if (!buf) abort();
        if (bitnet_chat_apply_template(names[k], msgs, n, k != 1, buf, len + 1) != len || strlen(buf) > (size_t)len)
            fuzz_fail("template length differs between the two calls", names[k]);
        free(buf);
    }
    for (size_t i = 0; i < n; i++) bn_buf_free(&texts[i]);
    free(texts);
    free(msgs);
}

/* What the server does with a complete request's body. */
static void serve(const bn_http_request *q) {
    const int chat = q->path_len >= 5 && memmem(q->path, q->path_len, "chat", 4) != NULL;
    const int api = chat ? BN_API_CHAT : q->path_len == 11 && !memcmp(q->path, "/completion", 11) ? BN_API_NATIVE
                                                                                               : BN_API_COMPLETIONS;
    const char *body = q->content_length > 0 ? q->body : "";
    size_t n = q->content_length > 0 ? (size_t)q->content_length : 0;
    bn_json_mode jm; /* the JSON-mode recogniser on arbitrary bytes: no crash, no overrun */
    bn_json_mode_init(&jm);
    (void)bn_json_mode_feed(&jm, body, n);
    bn_gen_request r;
    char err[256];
    if (bn_server_parse_request(body, n, api, &r, err, sizeof err) != 0) {
        if (!err[0] || strchr(err, '\n')) fuzz_fail("request rejected without a one-line reason", err);
        bn_buf b = {0};
        if (bn_server_json_error(&b, 400, err) != 0) abort();
        check_json(&b, 0, "error response is not JSON");
        bn_buf_free(&b);
        return;
    }
    char *owned = NULL;
    const char *text = r.prompt;
    if (chat) {
        if (!g_model && bitnet_model_load_default(NULL, &g_model) != BITNET_OK) abort();
        unsigned char *plain = NULL;
        text = owned = bn_server_chat_prompt(g_model, r.messages, r.tools_system, &plain);
        if (!owned) fuzz_fail("chat prompt rendering failed", "");
        bitnet_token toks[256];
        (void)bitnet_tokenize_chat(g_model, text, strlen(text), plain, 1, toks, 256); /* must not crash */
        free(plain);
        render_named_templates(r.messages);
    }
    if (r.grammar) { /* a grammar the request parser accepted compiles and masks */
        if (!g_model && bitnet_model_load_default(NULL, &g_model) != BITNET_OK) abort();
        bitnet_grammar *gr = NULL;
        bitnet_status gst = bitnet_grammar_new(g_model, r.grammar, &gr);
        if (gst != BITNET_OK && gst != BITNET_ERR_NOMEM) fuzz_fail("an accepted grammar does not compile", bitnet_last_error());
        float logits[512] = {0};
        if (gr && bitnet_n_vocab(g_model) <= 512 && bitnet_grammar_apply(gr, logits) < -1000) abort();
        bitnet_grammar_free(gr);
    }
    size_t len = text ? strlen(text) : 0;
    /* the prompt's bytes as the generated pieces: the stop filter and the writers */
    bn_stop_filter f;
    bn_stop_filter_init(&f, &r);
    char out[BN_STOP_MAX_LEN + BN_PIECE_MAX + 8];
    bn_buf all = {0}, sse = {0};
    int stopped = 0;
    for (size_t i = 0; i < len && !stopped; i += 7) {
        size_t k = BN_MIN((size_t)7, len - i), o = 0;
        stopped = bn_stop_filter_push(&f, text + i, k, out, &o);
        if (o > sizeof out) fuzz_fail("stop filter overflowed its output", "");
        bn_buf_append(&all, out, o);
    }
    if (!stopped) {
        size_t o = 0;
        bn_stop_filter_flush(&f, out, &o);
        bn_buf_append(&all, out, o);
    }
    if (all.len > len) fuzz_fail("stop filter released more than it was given", "");
    bn_resp_info ri = {.chat = chat, .id = "id-1", .model = "fuzz", .prompt_tokens = 1, .completion_tokens = 2,
                       .req = &r};
    bn_buf res = {0};
    if (bn_server_json_result(&res, &ri, all.data ? all.data : "", all.len, BN_FINISH_STOP) != 0) abort();
    check_json(&res, 0, "result is not JSON");
    res.len = 0;
    if (bn_server_native_result(&res, &ri, all.data ? all.data : "", all.len, BN_FINISH_STOP) != 0) abort();
    check_json(&res, 0, "llama.cpp result is not JSON");
    if (bn_server_sse_chunk(&sse, &ri, all.data ? all.data : "", all.len, 1, BN_FINISH_LENGTH) != 0) abort();
    if (sse.len < 8 || memcmp(sse.data, "data: ", 6) || memcmp(sse.data + sse.len - 2, "\n\n", 2))
        fuzz_fail("SSE chunk framing", "");
    sse.len -= 2;
    check_json(&sse, 6, "SSE chunk is not JSON");
    bn_buf_free(&res);
    bn_buf_free(&sse);
    bn_buf_free(&all);
    free(owned);
    bn_gen_request_free(&r);
}

static void in_buf(const char *buf, size_t len, const char *p, size_t n, const char *what) {
    if (n && (p < buf || p > buf + len || n > (size_t)(buf + len - p))) fuzz_fail("pointer outside the buffer", what);
    fuzz_touch(p, n);
}

static void check(const char *buf, size_t len, bn_http_result r, const bn_http_request *q, const bn_http_limits *lim) {
    if (r == BN_HTTP_ERROR) {
        int s = q->status;
        if (s != 400 && s != 411 && s != 413 && s != 431 && s != 505) fuzz_fail("error status the server may not send", "");
        if (!q->error || !q->error[0] || strchr(q->error, '\n')) fuzz_fail("error reason is not one line", q->error);
        return;
    }
    if (r == BN_HTTP_NEED_MORE) {
        if (q->header_len > len) fuzz_fail("header_len past the bytes read", "");
        return;
    }
    if (r != BN_HTTP_COMPLETE) fuzz_fail("unknown result", "");
    if (q->header_len == 0 || q->header_len > lim->max_header_bytes || q->total_len < q->header_len || q->total_len > len)
        fuzz_fail("lengths do not add up", "");
    if (q->content_length > (long long)lim->max_body_bytes) fuzz_fail("body over the limit accepted", "");
    if ((q->content_length < 0 ? 0 : (size_t)q->content_length) != q->total_len - q->header_len)
        fuzz_fail("body length differs from Content-Length", "");
    in_buf(buf, len, q->method, q->method_len, "method");
    in_buf(buf, len, q->target, q->target_len, "target");
    in_buf(buf, len, q->path, q->path_len, "path");
    if (q->content_length > 0) in_buf(buf, len, q->body, (size_t)q->content_length, "body");
    if (q->n_headers < 0 || q->n_headers > BN_HTTP_MAX_HEADERS) fuzz_fail("header count", "");
    for (int i = 0; i < q->n_headers; i++) {
        in_buf(buf, len, q->headers[i].name, q->headers[i].name_len, "header name");
        in_buf(buf, len, q->headers[i].value, q->headers[i].value_len, "header value");
    }
    const bn_http_header *h = bn_http_find_header(q, "connection");
    if (h) bn_http_has_token(h->value, h->value_len, "close");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    bn_http_limits lim = bn_http_default_limits();
    if (data[0] & 1) { /* small limits: reached by small inputs */
        lim.max_header_bytes = 64 + data[0];
        lim.max_body_bytes = data[0] >> 1;
    }
    /* an exact-size copy: ASan sees any read past the end */
    size_t len = size - 1;
    char *buf = malloc(len ? len : 1);
    if (!buf) abort();
    memcpy(buf, data + 1, len);
    size_t pos = 0;
    for (int n = 0; n < 16 && pos < len; n++) { /* pipelined requests */
        bn_http_request q, first;
        memset(&q, 0, sizeof q);
        bn_http_result r = bn_http_parse_request(buf + pos, len - pos, &q, &lim);
        check(buf + pos, len - pos, r, &q, &lim);
        /* the bytes split in two reads: the first part must not be a different complete request */
        size_t cut = (len - pos) / 2;
        memset(&first, 0, sizeof first);
        bn_http_result r1 = bn_http_parse_request(buf + pos, cut, &first, &lim);
        check(buf + pos, cut, r1, &first, &lim);
        if (r1 == BN_HTTP_COMPLETE && (r != BN_HTTP_COMPLETE || first.total_len != q.total_len))
            fuzz_fail("a prefix parsed as a different request", "");
        if (r1 == BN_HTTP_ERROR && r != BN_HTTP_ERROR) fuzz_fail("a prefix failed but the whole did not", first.error);
        if (r != BN_HTTP_COMPLETE) break;
        serve(&q);
        pos += q.total_len;
    }
    free(buf);
    return 0;
}
