/* server_native.c - llama.cpp's own server endpoints besides /completion (see
 * server.h): POST /tokenize, POST /detokenize and POST /apply-template, with
 * llama-server's field names, so that its clients and scripts work unchanged;
 * and the embeddings of /embedding (llama.cpp's) and /v1/embeddings (OpenAI's). */
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
    char *prompt = bn_server_chat_prompt(m, req.messages, req.tools_system, &plain);
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

/* ---- embeddings ------------------------------------------------------------------- */

static int base64_floats(bn_buf *b, const float *v, int n) {
    static const char a[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    const size_t len = (size_t)n * 4;
    unsigned char *p = malloc(len ? len : 1);
    if (!p) return -1;
    for (int i = 0; i < n; i++) { /* little-endian float32, as OpenAI's base64 embeddings */
        uint32_t u;
        memcpy(&u, &v[i], 4);
        p[4 * i] = (unsigned char)u, p[4 * i + 1] = (unsigned char)(u >> 8);
        p[4 * i + 2] = (unsigned char)(u >> 16), p[4 * i + 3] = (unsigned char)(u >> 24);
    }
    int rc = bn_buf_printf(b, "\"");
    for (size_t i = 0; i < len && !rc; i += 3) {
        const uint32_t x = (uint32_t)p[i] << 16 | (i + 1 < len ? (uint32_t)p[i + 1] << 8 : 0) | (i + 2 < len ? p[i + 2] : 0);
        char q[4] = {a[x >> 18 & 63], a[x >> 12 & 63], i + 1 < len ? a[x >> 6 & 63] : '=', i + 2 < len ? a[x & 63] : '='};
        rc = bn_buf_append(b, q, 4);
    }
    free(p);
    return rc | bn_buf_printf(b, "\"");
}

static int float_array(bn_buf *b, const float *v, int n) {
    int rc = bn_buf_printf(b, "[");
    for (int i = 0; i < n; i++) rc |= bn_buf_printf(b, i ? ",%.9g" : "%.9g", (double)v[i]);
    return rc | bn_buf_printf(b, "]");
}

/* The inputs: one string, an array of strings, token ids, or arrays of ids. */
static int embed_inputs(const bn_json *in, const bn_json **items, size_t *n, char *err, size_t errlen) {
    if (!in) return snprintf(err, errlen, "'input' (or 'content') is required"), -1;
    if (in->type == BN_JSON_STRING || (in->type == BN_JSON_ARRAY && in->n && in->items[0].type == BN_JSON_NUMBER)) {
        *items = in;
        *n = 1;
        return 0;
    }
    if (in->type != BN_JSON_ARRAY || in->n == 0 || in->n > 2048)
        return snprintf(err, errlen, "'input' must be a string, token ids, or a non-empty array of them (at most 2048)"), -1;
    *items = in->items;
    *n = in->n;
    return 0;
}

/* One input's tokens (malloc'd), or NULL with err set. */
static bitnet_token *embed_tokens(const bitnet_model *m, const bn_json *x, int n_ctx, int *n, char *err, size_t errlen) {
    bitnet_token *t = NULL;
    if (x->type == BN_JSON_STRING) {
        const size_t cap = x->len + 3;
        t = cap < (1u << 30) ? malloc(cap * sizeof *t) : NULL;
        *n = t ? bitnet_tokenize_ex(m, x->str, x->len, 1, 0, t, (int)cap) : -1;
    } else if (x->type == BN_JSON_ARRAY) {
        t = malloc((x->n ? x->n : 1) * sizeof *t);
        *n = t ? (int)x->n : -1;
        for (size_t i = 0; t && i < x->n; i++) {
            const bn_json *v = &x->items[i];
            if (v->type != BN_JSON_NUMBER || v->number != floor(v->number) || v->number < 0 ||
                v->number >= bitnet_n_vocab(m)) {
                snprintf(err, errlen, "token %zu of an input is not a token id of this model", i);
                free(t);
                return NULL;
            }
            t[i] = (bitnet_token)v->number;
        }
    } else {
        snprintf(err, errlen, "each input must be a string or an array of token ids");
        return NULL;
    }
    if (*n < 1 || *n > n_ctx) {
        snprintf(err, errlen, *n < 1 ? "an input has no tokens" : "an input has %d tokens, more than the context (%d)", *n,
                 n_ctx);
        free(t);
        return NULL;
    }
    return t;
}

int bn_native_embeddings(const bitnet_model *m, bitnet_context *ctx, const char *model_name, int oai, const char *body,
                         size_t len, bn_buf *out, char *err, size_t errlen) {
    bn_json *o = parse_object(body, len, err, errlen);
    if (!o) return 400;
    const int dim = bitnet_n_embd(m), n_ctx = bitnet_n_ctx(ctx);
    const bn_json *items = NULL, *fmt = bn_json_get(o, "encoding_format");
    size_t n_in = 0;
    int status = 400, b64 = 0, total = 0;
    if (fmt && fmt->type != BN_JSON_NULL) {
        if (fmt->type == BN_JSON_STRING && (!strcmp(fmt->str, "float") || !strcmp(fmt->str, "base64")))
            b64 = !strcmp(fmt->str, "base64");
        else {
            snprintf(err, errlen, "'encoding_format' must be \"float\" or \"base64\"");
            goto done;
        }
    }
    if (embed_inputs(bn_json_get(o, oai ? "input" : "content"), &items, &n_in, err, errlen) != 0) goto done;
    float *vec = malloc((size_t)dim * sizeof *vec);
    int rc = vec ? 0 : -1;
    rc |= oai ? bn_buf_printf(out, "{\"object\":\"list\",\"data\":[") : bn_buf_printf(out, "[");
    for (size_t i = 0; i < n_in && !rc; i++) {
        int n = 0;
        bitnet_token *t = embed_tokens(m, &items[i], n_ctx, &n, err, errlen);
        if (!t) {
            free(vec);
            goto done;
        }
        const bitnet_status st = bitnet_embed(ctx, t, n, BITNET_POOLING_DEFAULT, 1, vec);
        free(t);
        if (st != BITNET_OK) {
            snprintf(err, errlen, "embedding failed: %s", bitnet_last_error());
            free(vec);
            status = 500;
            goto done;
        }
        total += n;
        rc |= bn_buf_printf(out, i ? "," : "");
        if (oai) rc |= bn_buf_printf(out, "{\"object\":\"embedding\",\"index\":%zu,\"embedding\":", i);
        else rc |= bn_buf_printf(out, "{\"index\":%zu,\"embedding\":[", i); /* llama-server: one row per pooled input */
        rc |= b64 ? base64_floats(out, vec, dim) : float_array(out, vec, dim);
        rc |= bn_buf_printf(out, oai ? "}" : "]}");
    }
    free(vec);
    if (oai && !rc) {
        rc |= bn_buf_printf(out, "],\"model\":") | bn_json_append_string(out, model_name, strlen(model_name)) |
              bn_buf_printf(out, ",\"usage\":{\"prompt_tokens\":%d,\"total_tokens\":%d}}", total, total);
    } else if (!rc) {
        rc |= bn_buf_printf(out, "]");
    }
    status = rc ? 500 : 200;
    if (rc) snprintf(err, errlen, "out of memory");
done:
    bn_json_free(o);
    return status;
}
