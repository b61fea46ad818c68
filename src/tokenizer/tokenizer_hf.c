/* tokenizer_hf.c - a Hugging Face tokenizer.json (the `tokenizers` library's
 * file, which every HF checkpoint ships) read as the GGUF vocabulary that
 * llama.cpp's convert_hf_to_gguf.py would have written from it.
 *
 * The JSON is translated into tokenizer.ggml.* keys (an in-memory GGUF with no
 * tensors) and handed to bn_tokenizer_from_gguf, so a tokenizer.json and the
 * GGUF converted from it go through one loader and cannot disagree.
 *
 * What is read, as convert_hf_to_gguf.py reads it:
 *   model.type "BPE" over byte-level pieces (GPT-2's byte-to-character map):
 *     model.vocab {piece: id}, model.merges ("a b" or ["a", "b"]),
 *     model.ignore_merges;
 *   added_tokens [{id, content, special}]: special ones are control tokens,
 *     the others user-defined;
 *   the pre-tokenizer, recognised by its regex: Llama-3's Split pattern
 *     ("llama-bpe"; with ignore_merges false, "smaug-bpe"), Qwen2's ("qwen2") or GPT-2's
 *     ByteLevel with use_regex ("gpt-2");
 *   beside it, tokenizer_config.json (optional): bos_token, eos_token,
 *     add_bos_token, chat_template. A post_processor that puts a special
 *     token before $A names BOS and adds it (unless add_bos_token says
 *     otherwise); config.json's bos_token_id / eos_token_id fill the ids
 *     the tokenizer files leave open.
 * Anything else (Unigram, WordPiece, SentencePiece-style BPE with
 * byte_fallback, other pre-tokenizers) is refused with one line naming the
 * file and the field: a tokenizer that splits text differently from its
 * training would run and quietly produce wrong ids. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "formats/gguf.h"
#include "formats/json.h"
#include "formats/mapped_file.h"
#include "tokenizer/tokenizer.h"

#define HF_MAX_JSON (256u << 20) /* tokenizer.json of 256k-token vocabularies is ~35 MB */
#define HF_MAX_VOCAB (1 << 22)

/* The Llama-3 pre-tokenizer as tokenizer.json spells it (JSON-decoded). */
static const char llama3_regex[] =
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|"
    "\\s+(?!\\S)|\\s+";

/* Qwen2's (also Qwen3's): digits one at a time. */
static const char qwen2_regex[] =
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|"
    "\\s+(?!\\S)|\\s+";

static int is_str(const bn_json *v) { return v && v->type == BN_JSON_STRING; }
static int is_type(const bn_json *v, const char *type) {
    const bn_json *t = bn_json_get(v, "type");
    return is_str(t) && !strcmp(t->str, type);
}

/* The pre-tokenizer's name in llama.cpp's terms, or NULL with *why set. */
static const char *pre_name(const bn_json *root, const bn_json *model, const char **why) {
    const bn_json *pre = bn_json_get(root, "pre_tokenizer");
    const bn_json *ign = bn_json_get(model, "ignore_merges");
    const int ignore_merges = ign && ign->type == BN_JSON_BOOL && ign->boolean;
    if (is_type(pre, "ByteLevel")) {
        const bn_json *ur = bn_json_get(pre, "use_regex"), *aps = bn_json_get(pre, "add_prefix_space");
        if (!(ur && ur->type == BN_JSON_BOOL && ur->boolean)) return *why = "ByteLevel without use_regex", NULL;
        if (aps && aps->type == BN_JSON_BOOL && aps->boolean) return *why = "ByteLevel with add_prefix_space", NULL;
        return "gpt-2";
    }
    if (!is_type(pre, "Sequence")) return *why = "not ByteLevel or a Sequence", NULL;
    const bn_json *seq = bn_json_get(pre, "pretokenizers");
    if (!seq || seq->type != BN_JSON_ARRAY || seq->n != 2) return *why = "a Sequence other than Split + ByteLevel", NULL;
    const bn_json *split = &seq->items[0], *bl = &seq->items[1];
    const bn_json *pat = bn_json_get(bn_json_get(split, "pattern"), "Regex"), *beh = bn_json_get(split, "behavior");
    const bn_json *inv = bn_json_get(split, "invert"), *ur = bn_json_get(bl, "use_regex");
    if (!is_type(split, "Split") || !is_type(bl, "ByteLevel") || !is_str(beh) || strcmp(beh->str, "Isolated") ||
        (inv && !(inv->type == BN_JSON_BOOL && !inv->boolean)) || !(ur && ur->type == BN_JSON_BOOL && !ur->boolean))
        return *why = "a Sequence other than Split (Isolated) + ByteLevel (use_regex false)", NULL;
    if (is_str(pat) && !strcmp(pat->str, qwen2_regex)) return "qwen2";
    if (!is_str(pat) || strcmp(pat->str, llama3_regex)) return *why = "a Split regex other than Llama-3's or Qwen2's", NULL;
    return ignore_merges ? "llama-bpe" : "smaug-bpe";
}

/* tokenizer_config.json's bos_token / eos_token: "text" or {"content": "text"}. */
static const char *special_text(const bn_json *cfg, const char *key) {
    const bn_json *v = bn_json_get(cfg, key);
    if (v && v->type == BN_JSON_OBJECT) v = bn_json_get(v, "content");
    return is_str(v) ? v->str : NULL;
}

/* The special token the post_processor puts before the text ($A), or NULL:
 * that is BOS, and the tokenizer adds it (Llama-3: TemplateProcessing inside
 * a Sequence). */
static const char *post_bos(const bn_json *pp) {
    if (!pp || pp->type != BN_JSON_OBJECT) return NULL;
    if (is_type(pp, "Sequence")) {
        const bn_json *list = bn_json_get(pp, "processors");
        for (size_t i = 0; list && list->type == BN_JSON_ARRAY && i < list->n; i++) {
            const char *b = post_bos(&list->items[i]);
            if (b) return b;
        }
        return NULL;
    }
    const bn_json *single = bn_json_get(pp, "single");
    if (!is_type(pp, "TemplateProcessing") || !single || single->type != BN_JSON_ARRAY || single->n == 0) return NULL;
    const bn_json *id = bn_json_get(bn_json_get(&single->items[0], "SpecialToken"), "id");
    return is_str(id) ? id->str : NULL;
}

/* config.json's bos_token_id / eos_token_id (a number, or a list: the first). */
static long config_id(const bn_json *model_cfg, const char *key) {
    const bn_json *v = bn_json_get(model_cfg, key);
    if (v && v->type == BN_JSON_ARRAY && v->n > 0) v = &v->items[0];
    return v && v->type == BN_JSON_NUMBER && v->number >= 0 && v->number < HF_MAX_VOCAB &&
                   v->number == (double)(long)v->number
               ? (long)v->number
               : -1;
}

typedef struct {
    const char *path; /* for messages */
    char **text;      /* [n] pointers into the JSON tree */
    uint64_t *len;
    int32_t *type;
    int n;
} hf_vocab;

static bitnet_status vocab_put(hf_vocab *v, const char *field, double id_num, const char *s, size_t len, int32_t type) {
    /* range first: converting an out-of-range double to an integer is undefined */
    const long id = id_num >= 0 && id_num < (double)v->n ? (long)id_num : -1;
    if (id < 0 || (double)id != id_num)
        return bn_error(BITNET_ERR_FORMAT, "%s: %s: id %g is not a whole number in 0..%d", v->path, field, id_num, v->n - 1);
    if (v->text[id]) {
        /* an added token may repeat its vocabulary entry (same text): it keeps the added token's type */
        if (v->len[id] == len && !memcmp(v->text[id], s, len)) {
            v->type[id] = type;
            return BITNET_OK;
        }
        return bn_error(BITNET_ERR_FORMAT, "%s: %s: id %ld is given to two different tokens", v->path, field, id);
    }
    v->text[id] = (char *)s;
    v->len[id] = len;
    v->type[id] = type;
    return BITNET_OK;
}

/* Counts the ids (max + 1) over model.vocab and added_tokens. */
static bitnet_status vocab_size(const char *path, const bn_json *vocab, const bn_json *added, int *n) {
    double max = -1;
    for (size_t i = 0; i < vocab->n; i++) {
        if (vocab->items[i].type != BN_JSON_NUMBER)
            return bn_error(BITNET_ERR_FORMAT, "%s: model.vocab[\"%.40s\"] is %s, not an id", path, vocab->keys[i],
                            bn_json_type_desc(vocab->items[i].type));
        if (vocab->items[i].number > max) max = vocab->items[i].number;
    }
    for (size_t i = 0; added && i < added->n; i++) {
        const bn_json *id = bn_json_get(&added->items[i], "id");
        if (!id || id->type != BN_JSON_NUMBER)
            return bn_error(BITNET_ERR_FORMAT, "%s: added_tokens[%zu].id is missing or not a number", path, i);
        if (id->number > max) max = id->number;
    }
    if (!(max >= 0 && max < HF_MAX_VOCAB))
        return bn_error(BITNET_ERR_FORMAT, "%s: %s", path, max < 0 ? "model.vocab is empty" : "an id is larger than 4M");
    /* ids run 0..n-1 without gaps, so there are at least n entries (checked before allocating n) */
    const size_t entries = vocab->n + (added ? added->n : 0);
    if ((size_t)max >= entries)
        return bn_error(BITNET_ERR_FORMAT, "%s: id %.0f with only %zu tokens (ids must be 0..%zu without gaps)", path, max,
                        entries, entries - 1);
    *n = (int)max + 1;
    return BITNET_OK;
}

/* The vocabulary, merges and special tokens of ROOT as tokenizer.ggml.* keys.
 * CFG: tokenizer_config.json, MODEL_CFG: config.json (either may be NULL). */
static bitnet_status translate(const char *path, const bn_json *root, const bn_json *cfg, const bn_json *model_cfg,
                               bn_gguf_writer *w) {
    const bn_json *model = bn_json_get(root, "model");
    if (!model || model->type != BN_JSON_OBJECT) return bn_error(BITNET_ERR_FORMAT, "%s: no \"model\" object", path);
    const bn_json *mt = bn_json_get(model, "type");
    if (!is_str(mt) || strcmp(mt->str, "BPE"))
        return bn_error(BITNET_ERR_UNSUPPORTED, "%s: model.type %s%s%s is not supported (byte-level \"BPE\" is); convert "
                        "the checkpoint with llama.cpp's convert_hf_to_gguf.py and pass the GGUF", path,
                        is_str(mt) ? "\"" : "", is_str(mt) ? mt->str : "(missing)", is_str(mt) ? "\"" : "");
    const bn_json *bf = bn_json_get(model, "byte_fallback");
    if (bf && bf->type == BN_JSON_BOOL && bf->boolean)
        return bn_error(BITNET_ERR_UNSUPPORTED, "%s: model.byte_fallback: SentencePiece-style BPE is not supported from "
                        "tokenizer.json (byte-level BPE is); pass the GGUF vocabulary with --tokenizer", path);
    const char *why = NULL, *pre = pre_name(root, model, &why);
    if (!pre)
        return bn_error(BITNET_ERR_UNSUPPORTED, "%s: pre_tokenizer is %s: only Llama-3's, Qwen2's and GPT-2's are supported; pass "
                        "a GGUF vocabulary with --tokenizer", path, why);
    const bn_json *vocab = bn_json_get(model, "vocab"), *merges = bn_json_get(model, "merges");
    const bn_json *added = bn_json_get(root, "added_tokens");
    if (!vocab || vocab->type != BN_JSON_OBJECT) return bn_error(BITNET_ERR_FORMAT, "%s: model.vocab is not an object", path);
    if (!merges || merges->type != BN_JSON_ARRAY) return bn_error(BITNET_ERR_FORMAT, "%s: model.merges is not an array", path);
    if (added && added->type != BN_JSON_ARRAY) return bn_error(BITNET_ERR_FORMAT, "%s: added_tokens is not an array", path);

    hf_vocab v = {.path = path};
    bitnet_status st = vocab_size(path, vocab, added, &v.n);
    if (st) return st;
    v.text = calloc((size_t)v.n, sizeof *v.text);
    v.len = calloc((size_t)v.n, sizeof *v.len);
    v.type = calloc((size_t)v.n, sizeof *v.type);
    char *mpool = NULL, **mtext = NULL;
    uint64_t *mlen = NULL;
    if (!v.text || !v.len || !v.type) st = bn_error(BITNET_ERR_NOMEM, "%s: out of memory", path);
    for (size_t i = 0; !st && i < vocab->n; i++)
        st = vocab_put(&v, "model.vocab", vocab->items[i].number, vocab->keys[i], strlen(vocab->keys[i]), BN_TOKEN_NORMAL);
    for (size_t i = 0; !st && added && i < added->n; i++) {
        const bn_json *a = &added->items[i], *c = bn_json_get(a, "content"), *sp = bn_json_get(a, "special");
        if (!is_str(c) || c->len == 0)
            st = bn_error(BITNET_ERR_FORMAT, "%s: added_tokens[%zu].content is missing or not a non-empty string", path, i);
        else
            st = vocab_put(&v, "added_tokens", bn_json_get(a, "id")->number, c->str, c->len,
                           sp && sp->type == BN_JSON_BOOL && sp->boolean ? BN_TOKEN_CONTROL : BN_TOKEN_USER_DEFINED);
    }
    for (int i = 0; !st && i < v.n; i++)
        if (!v.text[i]) st = bn_error(BITNET_ERR_FORMAT, "%s: id %d has no token (ids must be 0..%d without gaps)", path, i, v.n - 1);

    /* merges: "a b", or ["a", "b"] (tokenizers >= 0.20) joined as "a b" */
    size_t pool = 0;
    for (size_t i = 0; !st && i < merges->n; i++) {
        const bn_json *m = &merges->items[i];
        if (is_str(m)) pool += m->len + 1;
        else if (m->type == BN_JSON_ARRAY && m->n == 2 && is_str(&m->items[0]) && is_str(&m->items[1]))
            pool += m->items[0].len + m->items[1].len + 2;
        else
            st = bn_error(BITNET_ERR_FORMAT, "%s: model.merges[%zu] is neither \"a b\" nor [\"a\", \"b\"]", path, i);
    }
    if (!st && (!(mpool = malloc(pool + 1)) || !(mtext = malloc((merges->n + 1) * sizeof *mtext)) ||
                !(mlen = malloc((merges->n + 1) * sizeof *mlen))))
        st = bn_error(BITNET_ERR_NOMEM, "%s: out of memory", path);
    for (size_t i = 0, o = 0; !st && i < merges->n; i++) {
        const bn_json *m = &merges->items[i];
        mtext[i] = mpool + o;
        if (is_str(m)) {
            memcpy(mpool + o, m->str, m->len);
            mlen[i] = m->len;
        } else {
            memcpy(mpool + o, m->items[0].str, m->items[0].len);
            mpool[o + m->items[0].len] = ' ';
            memcpy(mpool + o + m->items[0].len + 1, m->items[1].str, m->items[1].len);
            mlen[i] = m->items[0].len + 1 + m->items[1].len;
        }
        o += mlen[i] + 1;
    }

    if (!st) {
        bn_gguf_writer_set_str(w, "tokenizer.ggml.model", "gpt2");
        bn_gguf_writer_set_str(w, "tokenizer.ggml.pre", pre);
        bn_gguf_writer_set_arr_str(w, "tokenizer.ggml.tokens", (const char *const *)v.text, v.len, (uint64_t)v.n);
        bn_gguf_writer_set_arr_data(w, "tokenizer.ggml.token_type", BN_GGUF_TYPE_INT32, v.type, (uint64_t)v.n);
        bn_gguf_writer_set_arr_str(w, "tokenizer.ggml.merges", (const char *const *)mtext, mlen, merges->n);
        /* BOS and EOS: by their text in tokenizer_config.json; else BOS is the
         * token the post-processor adds, and config.json's ids fill the rest */
        const char *pbos = post_bos(bn_json_get(root, "post_processor"));
        static const char *const keys[][3] = {{"bos_token", "tokenizer.ggml.bos_token_id", "bos_token_id"},
                                              {"eos_token", "tokenizer.ggml.eos_token_id", "eos_token_id"}};
        for (int k = 0; k < 2 && !st; k++) {
            const char *text = special_text(cfg, keys[k][0]), *from = "tokenizer_config.json";
            if (!text && k == 0 && pbos) text = pbos, from = "post_processor";
            long id = text ? -1 : config_id(model_cfg, keys[k][2]);
            for (int i = 0; text && i < v.n && id < 0; i++)
                if (v.len[i] == strlen(text) && !memcmp(v.text[i], text, v.len[i])) id = i;
            if (text && id < 0)
                st = bn_error(BITNET_ERR_FORMAT, "%s: %s %s \"%.60s\" is not a token", path, from, keys[k][0], text);
            else if (id >= v.n)
                st = bn_error(BITNET_ERR_FORMAT, "%s: config.json %s %ld is not below the %d tokens", path, keys[k][2], id, v.n);
            else if (id >= 0)
                bn_gguf_writer_set_u32(w, keys[k][1], (uint32_t)id);
        }
        const bn_json *ab = bn_json_get(cfg, "add_bos_token");
        bn_gguf_writer_set_bool(w, "tokenizer.ggml.add_bos_token", ab && ab->type == BN_JSON_BOOL ? ab->boolean : pbos != NULL);
        const bn_json *ct = bn_json_get(cfg, "chat_template");
        if (ct && ct->type == BN_JSON_ARRAY) { /* [{name, template}]: the "default" one */
            const bn_json *pick = NULL;
            for (size_t i = 0; i < ct->n; i++) {
                const bn_json *nm = bn_json_get(&ct->items[i], "name");
                if (is_str(nm) && !strcmp(nm->str, "default")) pick = bn_json_get(&ct->items[i], "template");
            }
            ct = pick;
        }
        if (is_str(ct) && strlen(ct->str) == ct->len) bn_gguf_writer_set_str(w, "tokenizer.chat_template", ct->str);
    }
    free(v.text);
    free(v.len);
    free(v.type);
    free(mpool);
    free(mtext);
    free(mlen);
    return st;
}

static bn_json *parse_text(const char *text, size_t len, const char *name, bitnet_status *st) {
    char err[200];
    bn_json *v = bn_json_parse(text, len, err, sizeof err);
    *st = BITNET_OK;
    if (!v) *st = bn_error(BITNET_ERR_FORMAT, "%s: %s", name, err);
    else if (v->type != BN_JSON_OBJECT) {
        *st = bn_error(BITNET_ERR_FORMAT, "%s: not a JSON object", name);
        bn_json_free(v);
        v = NULL;
    }
    return v;
}

/* A JSON object from PATH; an OPTIONAL file that does not exist gives NULL with *st OK. */
static bn_json *parse_file(const char *path, size_t max, int optional, bitnet_status *st) {
    char *text = NULL;
    size_t len = 0;
    int missing = 0;
    *st = bn_read_file(path, max, &text, &len, &missing);
    if (*st) {
        if (optional && missing) *st = BITNET_OK;
        return NULL;
    }
    bn_json *v = parse_text(text, len, path, st);
    free(text);
    return v;
}

/* The translated keys as an in-memory GGUF, loaded by the GGUF path. */
static bitnet_status from_trees(const char *path, const bn_json *root, const bn_json *cfg, const bn_json *model_cfg,
                                bn_tokenizer **out) {
    bn_gguf_writer *w = bn_gguf_writer_new();
    bitnet_status st = w ? translate(path, root, cfg, model_cfg, w) : bn_error(BITNET_ERR_NOMEM, "%s: out of memory", path);
    uint8_t *buf = NULL;
    uint64_t size = 0;
    bn_gguf_file *g = NULL;
    if (!st) st = bn_gguf_writer_write_memory(w, &buf, &size);
    if (!st) st = bn_gguf_open_memory(buf, size, path, &g);
    if (!st) st = bn_tokenizer_from_gguf(g, out);
    bn_gguf_close(g);
    free(buf);
    bn_gguf_writer_free(w);
    return st;
}

bitnet_status bn_tokenizer_from_hf_json(const char *path, bn_tokenizer **out) {
    if (!path || !out) return bn_error(BITNET_ERR_ARG, "tokenizer: NULL argument");
    *out = NULL;
    bitnet_status st;
    bn_json *root = parse_file(path, HF_MAX_JSON, 0, &st), *cfg = NULL;
    if (!root) return st;
    /* tokenizer_config.json and config.json beside it: optional, but a broken one is an error */
    char cfg_path[4200];
    const char *slash = strrchr(path, '/');
    const int dir_len = slash ? (int)(slash - path) : 0;
    snprintf(cfg_path, sizeof cfg_path, "%.*s%stokenizer_config.json", dir_len, path, slash ? "/" : "");
    cfg = parse_file(cfg_path, 16u << 20, 1, &st);
    bn_json *model_cfg = NULL;
    if (!st) {
        snprintf(cfg_path, sizeof cfg_path, "%.*s%sconfig.json", dir_len, path, slash ? "/" : "");
        model_cfg = parse_file(cfg_path, 1u << 20, 1, &st);
    }
    if (!st) st = from_trees(path, root, cfg, model_cfg, out);
    bn_json_free(root);
    bn_json_free(cfg);
    bn_json_free(model_cfg);
    return st;
}

bitnet_status bn_tokenizer_from_hf_json_memory(const char *json, size_t len, const char *name, bn_tokenizer **out) {
    if (!json || !name || !out) return bn_error(BITNET_ERR_ARG, "tokenizer: NULL argument");
    *out = NULL;
    bitnet_status st;
    bn_json *root = parse_text(json, len, name, &st);
    if (root) st = from_trees(name, root, NULL, NULL, out);
    bn_json_free(root);
    return st;
}
