/* server_native.c - llama.cpp's own server endpoints besides /completion (see
 * server.h): POST /tokenize, POST /detokenize and POST /apply-template, with
 * llama-server's field names, so that its clients and scripts work unchanged. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"
#include "server.h"

/* The body as a JSON object, or NULL with a 400 message in err. */
static bn_json *parse_object(const char *body, size_t len, char *err, size_t errlen) {
    char jerr[160];
    bn_json *doc = bn_json_parse(body, len, jerr, sizeof jerr);
    if (!doc) snprintf(err, errlen, "request body is not valid JSON: %s", jerr);
    else if (doc->type != BN_JSON_OBJECT) {
        snprintf(err, errlen, "request body must be a JSON object, got %s", bn_json_type_name(doc->type));
        bn_json_free(doc);
        doc = NULL;
    }
    return doc;
}

/* A boolean field (absent: def); -1 if it is not a boolean. */
static int flag(const bn_json *o, const char *key, int def, char *err, size_t errlen) {
    const bn_json *v = bn_json_get(o, key);
    if (!v || v->type == BN_JSON_NULL) return def;
    if (v->type == BN_JSON_BOOL) return v->boolean;
    snprintf(err, errlen, "'%s' must be a boolean", key);
    return -1;
}

/* A piece as llama-server writes it with with_pieces: a string when it is
 * valid UTF-8 on its own, else the array of its bytes. */
static int append_piece(bn_buf *b, const char *p, int n) {
    int valid = 1;
    for (int i = 0; i < n && valid;) {
        const unsigned char c = (unsigned char)p[i];
        const int len = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
        valid = len > 0 && i + len <= n;
        for (int k = 1; valid && k < len; k++) valid = ((unsigned char)p[i + k] & 0xC0) == 0x80;
        i += len ? len : 1;
    }
    if (valid) return bn_json_append_string(b, p, (size_t)n);
    int rc = bn_buf_printf(b, "[");
    for (int i = 0; i < n; i++) rc |= bn_buf_printf(b, i ? ",%u" : "%u", (unsigned char)p[i]);
    return rc | bn_buf_printf(b, "]");
}

int bn_native_tokenize(const bitnet_model *m, const char *body, size_t len, bn_buf *out, char *err, size_t errlen) {
    bn_json *o = parse_object(body, len, err, errlen);
    if (!o) return 400;
    const bn_json *content = bn_json_get(o, "content");
    const int add_special = flag(o, "add_special", 0, err, errlen), parse_special = flag(o, "parse_special", 1, err, errlen),
              with_pieces = flag(o, "with_pieces", 0, err, errlen);
    int status = 400;
    bitnet_token *ids = NULL;
    if (!content || content->type != BN_JSON_STRING) snprintf(err, errlen, "'content' must be a string");
    else if (add_special >= 0 && parse_special >= 0 && with_pieces >= 0) {
        const size_t cap = content->len + 3;
        ids = cap < (1u << 30) ? malloc(cap * sizeof *ids) : NULL;
        const int n = ids ? bitnet_tokenize_ex(m, content->str, content->len, add_special, parse_special, ids, (int)cap) : -1;
        if (n < 0) {
            snprintf(err, errlen, "cannot tokenize 'content': %s", ids ? bitnet_last_error() : "out of memory");
            status = ids ? 400 : 500;
        } else {
            int rc = bn_buf_printf(out, "{\"tokens\":[");
            for (int i = 0; i < n; i++) {
                rc |= i ? bn_buf_printf(out, ",") : 0;
                if (!with_pieces) {
                    rc |= bn_buf_printf(out, "%d", ids[i]);
                    continue;
                }
                char piece[BN_PIECE_MAX + 1];
                const int pn = bitnet_token_to_piece(m, i ? ids[i - 1] : -1, ids[i], piece, sizeof piece);
                rc |= bn_buf_printf(out, "{\"id\":%d,\"piece\":", ids[i]);
                rc |= append_piece(out, piece, pn < 0 ? 0 : BN_MIN(pn, BN_PIECE_MAX));
                rc |= bn_buf_printf(out, "}");
            }
            rc |= bn_buf_printf(out, "]}");
            status = rc ? 500 : 200;
            if (rc) snprintf(err, errlen, "out of memory");
        }
    }
    free(ids);
    bn_json_free(o);
    return status;
}

int bn_native_detokenize(const bitnet_model *m, const char *body, size_t len, bn_buf *out, char *err, size_t errlen) {
    bn_json *o = parse_object(body, len, err, errlen);
    if (!o) return 400;
    const bn_json *t = bn_json_get(o, "tokens");
    int status = 200;
    bn_buf text = {0};
    if (!t || t->type != BN_JSON_ARRAY) {
        snprintf(err, errlen, "'tokens' must be an array of token ids");
        status = 400;
    }
    const int n_vocab = bitnet_n_vocab(m);
    bitnet_token prev = -1;
    for (size_t i = 0; status == 200 && i < t->n; i++) {
        const bn_json *v = &t->items[i];
        if (v->type != BN_JSON_NUMBER || v->number != floor(v->number) || v->number < 0 || v->number >= n_vocab) {
            snprintf(err, errlen, "'tokens'[%zu] is not a token id of this model (0..%d)", i, n_vocab - 1);
            status = 400;
            break;
        }
        char piece[BN_PIECE_MAX + 1];
        const int pn = bitnet_token_to_piece(m, prev, (bitnet_token)v->number, piece, sizeof piece);
        if (pn > 0 && bn_buf_append(&text, piece, (size_t)BN_MIN(pn, BN_PIECE_MAX)) != 0) status = 500;
        prev = (bitnet_token)v->number;
    }
    if (status == 200 && (bn_buf_printf(out, "{\"content\":") ||
                          bn_json_append_string(out, text.data ? text.data : "", text.len) || bn_buf_printf(out, "}")))
        status = 500;
    if (status == 500) snprintf(err, errlen, "out of memory");
    bn_buf_free(&text);
    bn_json_free(o);
    return status;
}

int bn_native_apply_template(const bitnet_model *m, const char *body, size_t len, bn_buf *out, char *err,
                             size_t errlen) {
    /* the chat request's parser validates the messages exactly as for /v1/chat/completions */
    bn_gen_request req;
    if (bn_server_parse_request(body, len, BN_API_CHAT, &req, err, errlen) != 0) return 400;
    unsigned char *plain = NULL;
    char *prompt = bn_server_chat_prompt(m, req.messages, &plain);
    int status = prompt && !bn_buf_printf(out, "{\"prompt\":") && !bn_json_append_string(out, prompt, strlen(prompt)) &&
                         !bn_buf_printf(out, "}")
                     ? 200
                     : 500;
    if (status == 500) snprintf(err, errlen, "out of memory");
    free(prompt);
    free(plain);
    bn_gen_request_free(&req);
    return status;
}
