/*
 * vocab.c - what every tokenizer shares: the piece table (pieces, scores,
 * types, hash lookup), special and end-of-generation tokens, GGUF
 * tokenizer.ggml.* arrays, file reading and the accessors. tokenizer.c
 * (SentencePiece) and tokenizer_bpe.c (byte-level BPE) build on it; it calls
 * neither (a BPE tokenizer's extra state is freed through t->bpe_free).
 */
#include <ctype.h>
#include <math.h>

#include "formats/gguf.h"
#include "tokenizer/tokenizer_impl.h"

/* ---- piece table --------------------------------------------------------- */

uint32_t bn_tok_hash(const char *s, size_t n) {
    uint64_t h = 1469598103934665603ull; /* FNV-1a */
    for (size_t i = 0; i < n; i++) h = (h ^ (uint8_t)s[i]) * 1099511628211ull;
    return (uint32_t)(h ^ (h >> 32));
}

int32_t bn_tok_lookup(const bn_tokenizer *t, const char *s, size_t n) {
    if (n == 0 || n > (size_t)t->max_len) return -1;
    for (uint32_t i = bn_tok_hash(s, n) & t->mask;; i = (i + 1) & t->mask) {
        int32_t id = t->table[i];
        if (id < 0) return -1;
        if ((size_t)t->len[id] == n && memcmp(t->pool + t->off[id], s, n) == 0) return id;
    }
}

/* Parses "<0xXX>" (either hex case, as llama2.c's sscanf accepts); -1 if not. */
int bn_tok_parse_byte_piece(const char *s, int n) {
    if (n != 6 || memcmp(s, "<0x", 3) != 0 || s[5] != '>') return -1;
    int v = 0;
    for (int i = 3; i < 5; i++) {
        char c = s[i];
        int d = c >= '0' && c <= '9' ? c - '0' : c >= 'A' && c <= 'F' ? c - 'A' + 10
              : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
        if (d < 0) return -1;
        v = v * 16 + d;
    }
    return v;
}

void bn_tokenizer_free(bn_tokenizer *t) {
    if (!t) return;
    if (t->bpe_free) t->bpe_free(t->bpe);
    free(t->pool);
    free(t->off);
    free(t->len);
    free(t->score);
    free(t->type);
    free(t->table);
    free(t->special);
    free(t->chat_template);
    free(t);
}

bitnet_status bn_tok_alloc(int n, uint64_t pool_bytes, bn_tokenizer **out) {
    bn_tokenizer *t = calloc(1, sizeof *t);
    uint64_t pool = pool_bytes + (uint64_t)n; /* + NULs; both bounded by the caps/file */
    if (!t || pool > SIZE_MAX) {
        free(t);
        return bn_error(BITNET_ERR_NOMEM, "tokenizer: out of memory");
    }
    t->n_vocab = n;
    t->pool = malloc((size_t)pool ? (size_t)pool : 1);
    t->off = malloc((size_t)n * sizeof *t->off);
    t->len = malloc((size_t)n * sizeof *t->len);
    t->score = calloc((size_t)n, sizeof *t->score);
    t->type = malloc((size_t)n);
    if (!t->pool || !t->off || !t->len || !t->score || !t->type) {
        bn_tokenizer_free(t);
        return bn_error(BITNET_ERR_NOMEM, "tokenizer: out of memory");
    }
    t->add_bos = 1;
    t->add_space_prefix = 1;
    t->eot = -1;
    *out = t;
    return BITNET_OK;
}

void bn_tok_set_piece(bn_tokenizer *t, int i, const char *s, size_t n, int sp, size_t *used) {
    char *dst = t->pool + *used;
    size_t k = 0;
    for (size_t j = 0; j < n; j++) {
        if (sp && j + 2 < n && (uint8_t)s[j] == 0xE2 && (uint8_t)s[j + 1] == 0x96 &&
            (uint8_t)s[j + 2] == 0x81) {
            dst[k++] = ' ';
            j += 2;
        } else {
            dst[k++] = s[j];
        }
    }
    dst[k] = 0;
    t->off[i] = *used;
    t->len[i] = (int32_t)k;
    *used += k + 1;
}

bitnet_status bn_tok_build_table(bn_tokenizer *t, const char *name, int reject_duplicates) {
    uint32_t cap = 16;
    while (cap < 2u * (uint32_t)t->n_vocab) cap <<= 1; /* load factor <= 1/2 */
    t->table = malloc((size_t)cap * sizeof *t->table);
    if (!t->table) return bn_error(BITNET_ERR_NOMEM, "%s: tokenizer: out of memory", name);
    memset(t->table, 0xff, (size_t)cap * sizeof *t->table);
    t->mask = cap - 1;
    t->max_len = 0;
    for (int32_t id = 0; id < t->n_vocab; id++) {
        int32_t n = t->len[id];
        const char *s = t->pool + t->off[id];
        if (n == 0) continue; /* an empty piece can never match a symbol */
        if (n > t->max_len) t->max_len = n;
        uint32_t i = bn_tok_hash(s, (size_t)n) & t->mask;
        for (;; i = (i + 1) & t->mask) {
            int32_t o = t->table[i];
            if (o < 0) break;
            if (t->len[o] == n && memcmp(t->pool + t->off[o], s, (size_t)n) == 0) {
                if (reject_duplicates)
                    return bn_error(BITNET_ERR_FORMAT, "%s: duplicate token in the vocabulary: ids %d and %d are both \"%.*s\"",
                                    name, (int)o, (int)id, (int)BN_MIN(n, 40), s);
                break;
            }
        }
        t->table[i] = id; /* SPM duplicates: the last one wins, as in llama.cpp's old map */
    }
    return BITNET_OK;
}

/* ---- special tokens -------------------------------------------------------- *
 * llama.cpp finds an end-of-turn token by its text when the file names none,
 * and ends generation on any of a list of such texts (llama-vocab.cpp,
 * special_eot_id / special_eog_ids); texts are compared as stored in GGUF. */

static const char *const eot_texts[] = {"<|eot_id|>", "<|im_end|>", "<|end|>", "<end_of_turn>", "<|endoftext|>",
                                        "<|end_of_text|>", "<EOT>", "_<EOT>"};
static const char *const eog_texts[] = {"<|eot_id|>", "<|im_end|>", "<|end|>", "<end_of_turn>", "<|endoftext|>",
                                        "<|eom_id|>", "<EOT>", "_<EOT>", "<|end_of_text|>"};

int32_t bn_tokenizer_find(const bn_tokenizer *t, const char *text, size_t len) {
    if (t->kind == BN_TOK_SPM) { /* stored with ' ' for ▁: look up a converted copy */
        char buf[256];
        size_t k = 0;
        for (size_t i = 0; i < len && k < sizeof buf; i++) {
            if (i + 2 < len && !memcmp(text + i, "\xe2\x96\x81", 3)) buf[k++] = ' ', i += 2;
            else buf[k++] = text[i];
        }
        return len < sizeof buf ? bn_tok_lookup(t, buf, k) : -1;
    }
    return bn_tok_lookup(t, text, len);
}

/* by_text: found by its text; llama.cpp then makes a "control-looking" token
 * that is not CONTROL one (ids named by the file keep their type). */
static void add_eog(bn_tokenizer *t, int32_t id, int by_text) {
    if (id < 0 || id >= t->n_vocab || t->n_eog == TOK_MAX_EOG) return;
    if (by_text) t->type[id] = BN_TOKEN_CONTROL;
    for (int i = 0; i < t->n_eog; i++)
        if (t->eog[i] == id) return;
    t->eog[t->n_eog++] = id;
}

/* Longest first, then by id: the key (len descending, id ascending) in one
 * integer, so that plain qsort orders it (qsort_r is not in every C library). */
static int u64_cmp(const void *a, const void *b) {
    const uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

bitnet_status bn_tok_finish_special(bn_tokenizer *t, const bn_gguf_file *f, const char *name) {
    int32_t eom = -1, eot_key = -1;
    if (f && (bn_tok_get_id(f, "tokenizer.ggml.eot_token_id", &t->eot) < 0 ||
              bn_tok_get_id(f, "tokenizer.ggml.eom_token_id", &eom) < 0))
        return BITNET_ERR_FORMAT;
    if (t->eot >= t->n_vocab || eom >= t->n_vocab)
        return bn_error(BITNET_ERR_FORMAT, "%s: eot/eom token id out of range (eot %d, eom %d, n_vocab %d)", name,
                        (int)t->eot, (int)eom, t->n_vocab);
    eot_key = t->eot;
    /* llama.cpp takes the first text match in hash-map order (e.g. either of
     * <|eot_id|> and <|end_of_text|> in Llama-3); we take eot_texts' order */
    for (size_t i = 0; t->eot < 0 && i < sizeof eot_texts / sizeof eot_texts[0]; i++)
        t->eot = bn_tokenizer_find(t, eot_texts[i], strlen(eot_texts[i]));
    t->n_eog = 0;
    add_eog(t, t->eos, 0);
    add_eog(t, t->eot, eot_key < 0);
    add_eog(t, eom, 0);
    for (size_t i = 0; i < sizeof eog_texts / sizeof eog_texts[0]; i++) /* <|eom_id|> among them */
        add_eog(t, bn_tokenizer_find(t, eog_texts[i], strlen(eog_texts[i])), 1);
    /* tokens that bn_tokenizer_encode_ex may cut out of the text, longest first */
    free(t->special);
    t->special = malloc((size_t)t->n_vocab * sizeof *t->special);
    if (!t->special) return bn_error(BITNET_ERR_NOMEM, "%s: tokenizer: out of memory", name);
    t->n_special = t->n_user_defined = 0;
    for (int32_t id = 0; id < t->n_vocab; id++) {
        int ty = t->type[id];
        if (t->len[id] > 0 && (ty == BN_TOKEN_CONTROL || ty == BN_TOKEN_USER_DEFINED || ty == BN_TOKEN_UNKNOWN)) {
            t->special[t->n_special++] = id;
            t->n_user_defined += ty == BN_TOKEN_USER_DEFINED;
        }
    }
    uint64_t *key = malloc((size_t)BN_MAX(t->n_special, 1) * sizeof *key);
    if (!key) return bn_error(BITNET_ERR_NOMEM, "%s: tokenizer: out of memory", name);
    for (int32_t i = 0; i < t->n_special; i++)
        key[i] = (uint64_t)(UINT32_MAX - (uint32_t)t->len[t->special[i]]) << 32 | (uint32_t)t->special[i];
    qsort(key, (size_t)t->n_special, sizeof *key, u64_cmp);
    for (int32_t i = 0; i < t->n_special; i++) t->special[i] = (int32_t)(uint32_t)key[i];
    free(key);
    return BITNET_OK;
}


/* ---- GGUF tokenizer.ggml.* ---------------------------------------------- */

int bn_tok_gguf_arr(const bn_gguf_file *f, const char *key, int et, const bn_gguf_value **out) {
    const bn_gguf_kv *kv = bn_gguf_find_kv(f, key);
    if (!kv) return 0;
    if (kv->value.type != BN_GGUF_TYPE_ARRAY || kv->value.arr.type != (bn_gguf_vtype)et) {
        bn_error(BITNET_ERR_FORMAT, "%s: %s has the wrong type", f->path ? f->path : "(gguf)", key);
        return -1;
    }
    *out = &kv->value;
    return 1;
}

int bn_tok_get_id(const bn_gguf_file *f, const char *key, int32_t *id) {
    uint32_t v;
    int r = bn_gguf_get_u32(f, key, &v);
    if (r < 0) return -1;
    if (r > 0) {
        if (v > INT32_MAX) {
            bn_error(BITNET_ERR_FORMAT, "%s: %s = %u out of range", f->path ? f->path : "(gguf)", key, v);
            return -1;
        }
        *id = (int32_t)v;
    }
    return 0;
}

bitnet_status bn_tok_load_gguf_pieces(const bn_gguf_file *f, int sp, bn_tokenizer **out) {
    const char *name = f->path ? f->path : "(gguf)";
    const bn_gguf_value *toks = NULL, *scores = NULL, *types = NULL;
    int r = bn_tok_gguf_arr(f, "tokenizer.ggml.tokens", BN_GGUF_TYPE_STRING, &toks);
    if (r < 0) return BITNET_ERR_FORMAT;
    if (r == 0) return bn_error(BITNET_ERR_FORMAT, "%s: missing tokenizer.ggml.tokens", name);
    uint64_t n = toks->arr.n;
    if (n < 1 || n > TOK_MAX_VOCAB || !toks->arr.items)
        return bn_error(BITNET_ERR_FORMAT, "%s: tokenizer.ggml.tokens has %llu entries", name, (unsigned long long)n);
    if (bn_tok_gguf_arr(f, "tokenizer.ggml.scores", BN_GGUF_TYPE_FLOAT32, &scores) < 0 ||
        bn_tok_gguf_arr(f, "tokenizer.ggml.token_type", BN_GGUF_TYPE_INT32, &types) < 0)
        return BITNET_ERR_FORMAT;
    if ((scores && scores->arr.n != n) || (types && types->arr.n != n))
        return bn_error(BITNET_ERR_FORMAT, "%s: tokenizer arrays differ in length (tokens %llu, scores %llu, token_type %llu)",
                        name, (unsigned long long)n, (unsigned long long)(scores ? scores->arr.n : n),
                        (unsigned long long)(types ? types->arr.n : n));
    uint64_t total = 0;
    for (uint64_t i = 0; i < n; i++) {
        const bn_gguf_value *v = &toks->arr.items[i];
        if (v->type != BN_GGUF_TYPE_STRING || v->str.len > TOK_MAX_PIECE)
            return bn_error(BITNET_ERR_FORMAT, "%s: tokenizer.ggml.tokens[%llu] is not a string of at most %d bytes",
                            name, (unsigned long long)i, TOK_MAX_PIECE);
        total += v->str.len;
    }
    bn_tokenizer *t;
    bitnet_status st = bn_tok_alloc((int)n, total, &t);
    if (st != BITNET_OK) return st;
    size_t used = 0;
    for (uint64_t i = 0; i < n && st == BITNET_OK; i++) {
        bn_gguf_str s = toks->arr.items[i].str;
        bn_tok_set_piece(t, (int)i, s.data, (size_t)s.len, sp, &used);
        float sc = 0.0f;
        if (scores) memcpy(&sc, (const uint8_t *)scores->arr.data + 4 * i, 4); /* LE, unaligned */
        if (isnan(sc)) st = bn_error(BITNET_ERR_FORMAT, "%s: tokenizer.ggml.scores[%llu] is NaN", name, (unsigned long long)i);
        t->score[i] = sc;
        int is_byte = bn_tok_parse_byte_piece(t->pool + t->off[i], t->len[i]) >= 0;
        int32_t ty = is_byte && sp ? BN_TOKEN_BYTE : BN_TOKEN_NORMAL;
        if (types) {
            memcpy(&ty, (const uint8_t *)types->arr.data + 4 * i, 4);
            if (ty < 0 || ty > BN_TOKEN_BYTE)
                st = bn_error(BITNET_ERR_FORMAT, "%s: tokenizer.ggml.token_type[%llu] = %d is invalid", name,
                              (unsigned long long)i, (int)ty);
            if (ty == BN_TOKEN_BYTE && !is_byte) ty = BN_TOKEN_NORMAL; /* only <0xXX> decodes to a byte */
        }
        t->type[i] = (uint8_t)ty;
    }
    const bn_gguf_kv *ct = bn_gguf_find_kv(f, "tokenizer.chat_template");
    if (st == BITNET_OK && ct) {
        if (ct->value.type != BN_GGUF_TYPE_STRING || ct->value.str.len > (1u << 24) ||
            memchr(ct->value.str.data, 0, (size_t)ct->value.str.len))
            st = bn_error(BITNET_ERR_FORMAT, "%s: tokenizer.chat_template is not a string of text", name);
        else if (!(t->chat_template = malloc((size_t)ct->value.str.len + 1)))
            st = bn_error(BITNET_ERR_NOMEM, "%s: tokenizer: out of memory", name);
        else {
            memcpy(t->chat_template, ct->value.str.data, (size_t)ct->value.str.len);
            t->chat_template[ct->value.str.len] = 0;
        }
    }
    if (st != BITNET_OK) {
        bn_tokenizer_free(t);
        return st;
    }
    *out = t;
    return BITNET_OK;
}


/* ---- accessors ------------------------------------------------------------ */

bn_tokenizer_kind bn_tokenizer_get_kind(const bn_tokenizer *t) { return t->kind; }
int bn_tokenizer_n_vocab(const bn_tokenizer *t) { return t->n_vocab; }
int32_t bn_tokenizer_bos(const bn_tokenizer *t) { return t->bos; }
int32_t bn_tokenizer_eos(const bn_tokenizer *t) { return t->eos; }
int32_t bn_tokenizer_eot(const bn_tokenizer *t) { return t->eot; }
int bn_tokenizer_add_bos(const bn_tokenizer *t) { return t->add_bos; }
const char *bn_tokenizer_chat_template(const bn_tokenizer *t) { return t->chat_template; }

int bn_tokenizer_is_eog(const bn_tokenizer *t, int32_t token) {
    for (int i = 0; i < t->n_eog; i++)
        if (t->eog[i] == token) return 1;
    return 0;
}

void bn_tokenizer_get_entry(const bn_tokenizer *t, int32_t id, const char **text, int *len, float *score,
                            int *type) {
    int ok = id >= 0 && id < t->n_vocab;
    if (text) *text = ok ? t->pool + t->off[id] : NULL;
    if (len) *len = ok ? t->len[id] : 0;
    if (score) *score = ok ? t->score[id] : 0.0f;
    if (type) *type = ok ? t->type[id] : 0;
}

