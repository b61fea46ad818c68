/*
 * tokenizer_bpe.c - byte-level BPE (GPT-2, Llama-3) as llama.cpp's
 * llm_tokenizer_bpe_session implements it:
 *
 *  1. the text is decoded to code points (invalid UTF-8 -> U+FFFD) and split
 *     into words by the pre-tokenizer regex of the vocabulary (unicode.c);
 *  2. with ignore_merges (Llama-3), a word that is itself a token is emitted
 *     whole;
 *  3. otherwise every byte of the word starts as one symbol, shown as its
 *     GPT-2 character ("Ġ" for ' '), and the adjacent pair with the lowest
 *     merge rank is merged (the left-most on ties) until none is left;
 *  4. each symbol is emitted as its token; a symbol that is no token (only in
 *     malformed vocabularies) gives the tokens of its single bytes, if any.
 *
 * Tokens are stored as GGUF spells them (GPT-2 characters), as llama.cpp
 * looks them up; the bytes each one decodes to are kept beside them for
 * bn_tokenizer_piece. Merges are resolved once at load into pairs of symbol
 * ids, so the merge loop hashes two integers instead of two strings. Strings
 * that merges use but that are not tokens get "virtual" ids >= n_vocab, which
 * keeps malformed vocabularies exact without slowing down the normal case.
 *
 * Sources: GGUF (tokenizer.ggml.model "gpt2": tokens, merges, pre) or a
 * tiktoken rank file, whose merges are derived as Hugging Face's
 * TikTokenConverter derives the Llama-3 tokenizer.json merges: every split
 * of a token into two tokens, ordered by the token's rank, then by the ranks
 * of the two halves.
 */
#include <limits.h>

#include "formats/gguf.h"
#include "formats/mapped_file.h"
#include "tokenizer/key_heap.h"
#include "tokenizer/tokenizer_impl.h"
#include "tokenizer/unicode.h"

typedef struct {
    int32_t l, r, rank; /* l < 0: empty slot */
} merge_slot;

struct bn_bpe {
    bn_pretok pre;
    int ignore_merges;
    char pre_name[48];
    char enc[256][2];   /* GPT-2 character of each byte, UTF-8 */
    uint8_t enc_len[256];
    int32_t byte_sym[256]; /* symbol id of each byte's character */
    char *dec;          /* bytes each token decodes to (its piece) */
    size_t *dec_off;
    int32_t *dec_len;
    /* virtual symbols: ids n_vocab + k, text vpool + voff[k] (vlen[k] bytes) */
    int32_t n_virtual, cap_virtual;
    char *vpool;
    size_t vpool_used, vpool_cap;
    size_t *voff;
    int32_t *vlen;
    int32_t *vtable; /* open addressing over the virtual texts, -1 empty */
    uint32_t vmask;
    /* merges in rank order (for writing GGUF) and (left, right) -> rank */
    int32_t n_merges;
    int32_t *m_left, *m_right, *m_result;
    merge_slot *slots;
    uint32_t slot_mask;
};

void bn_bpe_free(struct bn_bpe *b) {
    if (!b) return;
    free(b->dec);
    free(b->dec_off);
    free(b->dec_len);
    free(b->vpool);
    free(b->voff);
    free(b->vlen);
    free(b->vtable);
    free(b->m_left);
    free(b->m_right);
    free(b->m_result);
    free(b->slots);
    free(b);
}

/* ---- symbols ------------------------------------------------------------- */

static const char *sym_text(const bn_tokenizer *t, int32_t id, int32_t *len) {
    if (id < t->n_vocab) {
        *len = t->len[id];
        return t->pool + t->off[id];
    }
    *len = t->bpe->vlen[id - t->n_vocab];
    return t->bpe->vpool + t->bpe->voff[id - t->n_vocab];
}

static int32_t vlookup(const struct bn_bpe *b, const char *s, size_t n, uint32_t *slot) {
    if (!b->vtable) return -1;
    uint32_t i = bn_tok_hash(s, n) & b->vmask;
    for (;; i = (i + 1) & b->vmask) {
        int32_t k = b->vtable[i];
        if (k < 0) break;
        if ((size_t)b->vlen[k] == n && memcmp(b->vpool + b->voff[k], s, n) == 0) return k;
    }
    if (slot) *slot = i;
    return -1;
}

/* Symbol id of s: its token, else a virtual symbol (created on first use);
 * -1 when out of memory. */
static int32_t sym_intern(bn_tokenizer *t, const char *s, size_t n) {
    struct bn_bpe *b = t->bpe;
    int32_t id = bn_tok_lookup(t, s, n);
    if (id >= 0) return id;
    int32_t k = vlookup(b, s, n, NULL);
    if (k >= 0) return t->n_vocab + k;
    if (2 * (uint32_t)(b->n_virtual + 1) > b->vmask) { /* grow the table (load <= 1/2) and rehash */
        uint32_t cap = b->vmask ? 2 * (b->vmask + 1) : 64;
        int32_t *nt = malloc((size_t)cap * sizeof *nt);
        if (!nt) return -1;
        memset(nt, 0xff, (size_t)cap * sizeof *nt);
        free(b->vtable);
        b->vtable = nt;
        b->vmask = cap - 1;
        for (int32_t j = 0; j < b->n_virtual; j++) {
            uint32_t i = bn_tok_hash(b->vpool + b->voff[j], (size_t)b->vlen[j]) & b->vmask;
            while (b->vtable[i] >= 0) i = (i + 1) & b->vmask;
            b->vtable[i] = j;
        }
    }
    if (b->n_virtual == b->cap_virtual) {
        int32_t cap = b->cap_virtual ? 2 * b->cap_virtual : 64;
        size_t *no = realloc(b->voff, (size_t)cap * sizeof *no);
        if (!no) return -1;
        b->voff = no;
        int32_t *nl = realloc(b->vlen, (size_t)cap * sizeof *nl);
        if (!nl) return -1;
        b->vlen = nl;
        b->cap_virtual = cap;
    }
    if (b->vpool_used + n > b->vpool_cap) {
        size_t cap = BN_MAX(2 * b->vpool_cap, b->vpool_used + n + 4096);
        char *np = realloc(b->vpool, cap);
        if (!np) return -1;
        b->vpool = np;
        b->vpool_cap = cap;
    }
    if (t->n_vocab + b->n_virtual == INT32_MAX) return -1;
    uint32_t slot = 0;
    vlookup(b, s, n, &slot); /* absent (checked above): gives the free slot */
    k = b->n_virtual++;
    memcpy(b->vpool + b->vpool_used, s, n);
    b->voff[k] = b->vpool_used;
    b->vlen[k] = (int32_t)n;
    b->vpool_used += n;
    b->vtable[slot] = k;
    return t->n_vocab + k;
}

/* ---- merges ------------------------------------------------------------- */

static uint32_t pair_hash(int32_t l, int32_t r) {
    uint64_t h = ((uint64_t)(uint32_t)l << 32 | (uint32_t)r) * 0x9E3779B97F4A7C15ull;
    return (uint32_t)(h >> 32);
}

static int32_t merge_rank(const struct bn_bpe *b, int32_t l, int32_t r) {
    for (uint32_t i = pair_hash(l, r) & b->slot_mask;; i = (i + 1) & b->slot_mask) {
        const merge_slot *s = &b->slots[i];
        if (s->l < 0) return -1;
        if (s->l == l && s->r == r) return s->rank;
    }
}

static bitnet_status merges_alloc(struct bn_bpe *b, uint64_t n, const char *name) {
    uint32_t cap = 16;
    while (cap < n + n / 2 + 1) cap <<= 1; /* load <= 2/3 */
    b->slots = malloc((size_t)cap * sizeof *b->slots);
    b->m_left = malloc((size_t)(n ? n : 1) * sizeof(int32_t));
    b->m_right = malloc((size_t)(n ? n : 1) * sizeof(int32_t));
    b->m_result = malloc((size_t)(n ? n : 1) * sizeof(int32_t));
    if (!b->slots || !b->m_left || !b->m_right || !b->m_result)
        return bn_error(BITNET_ERR_NOMEM, "%s: tokenizer: out of memory for %llu merges", name, (unsigned long long)n);
    for (uint32_t i = 0; i < cap; i++) b->slots[i].l = -1;
    b->slot_mask = cap - 1;
    return BITNET_OK;
}

/* Adds merge (l, r) -> result with the next rank; a repeated pair keeps its
 * first rank, as llama.cpp's bpe_ranks.emplace does. */
static void merge_add(struct bn_bpe *b, int32_t l, int32_t r, int32_t result) {
    int32_t rank = b->n_merges++;
    b->m_left[rank] = l;
    b->m_right[rank] = r;
    b->m_result[rank] = result;
    uint32_t i = pair_hash(l, r) & b->slot_mask;
    for (; b->slots[i].l >= 0; i = (i + 1) & b->slot_mask)
        if (b->slots[i].l == l && b->slots[i].r == r) return;
    b->slots[i] = (merge_slot){l, r, rank};
}

/* ---- loading -------------------------------------------------------------- */

/* Byte characters, byte symbols and decoded pieces, once tokens and types are set. */
static bitnet_status bpe_prepare(bn_tokenizer *t, const char *name) {
    struct bn_bpe *b = t->bpe;
    for (int c = 0; c < 256; c++) b->enc_len[c] = (uint8_t)bn_utf8_encode(bn_gpt2_byte_to_cp((uint8_t)c), b->enc[c]);
    for (int c = 0; c < 256; c++)
        if ((b->byte_sym[c] = sym_intern(t, b->enc[c], b->enc_len[c])) < 0)
            return bn_error(BITNET_ERR_NOMEM, "%s: tokenizer: out of memory", name);
    size_t total = 0;
    for (int i = 0; i < t->n_vocab; i++) total += (size_t)t->len[i];
    b->dec = malloc(3 * total + 1); /* an invalid byte decodes to U+FFFD: 3 bytes */
    b->dec_off = malloc((size_t)t->n_vocab * sizeof *b->dec_off);
    b->dec_len = malloc((size_t)t->n_vocab * sizeof *b->dec_len);
    uint32_t *cps = malloc((size_t)(t->max_len + 1) * sizeof *cps);
    if (!b->dec || !b->dec_off || !b->dec_len || !cps) {
        free(cps);
        return bn_error(BITNET_ERR_NOMEM, "%s: tokenizer: out of memory", name);
    }
    size_t o = 0;
    for (int i = 0; i < t->n_vocab; i++) {
        const char *s = t->pool + t->off[i];
        b->dec_off[i] = o;
        switch (t->type[i]) {
        case BN_TOKEN_NORMAL: { /* GPT-2 characters back to bytes (llama_decode_text) */
            size_t n = bn_utf8_decode(s, (size_t)t->len[i], cps);
            for (size_t j = 0; j < n; j++) {
                int byte = bn_gpt2_cp_to_byte(cps[j]);
                /* llama.cpp prints "[UNK_BYTE_0x..]" for a character outside
                 * GPT-2's map; we keep the character itself */
                if (byte >= 0) b->dec[o++] = (char)byte;
                else o += (size_t)bn_utf8_encode(cps[j], b->dec + o);
            }
            break;
        }
        case BN_TOKEN_BYTE: /* "<0xXX>" (only such pieces keep this type) */
            b->dec[o++] = (char)strtol(s + 3, NULL, 16);
            break;
        case BN_TOKEN_CONTROL:
        case BN_TOKEN_USER_DEFINED:
        case BN_TOKEN_UNKNOWN: /* as llama.cpp's token_to_piece with special = true */
            memcpy(b->dec + o, s, (size_t)t->len[i]);
            o += (size_t)t->len[i];
            break;
        default: /* unused / undefined tokens print nothing */
            break;
        }
        b->dec_len[i] = (int32_t)(o - b->dec_off[i]);
    }
    free(cps);
    return BITNET_OK;
}

/* Pre-tokenizer names as llama.cpp's llama_vocab::impl::load maps them
 * (those whose regex we implement). */
static int select_pre(struct bn_bpe *b, const char *pre, int *add_bos) {
    static const char *const llama3[] = {"llama3", "llama-v3", "llama-bpe", "falcon3", "pixtral"};
    static const char *const llama3_merges[] = {"dbrx", "smaug-bpe"}; /* same regex, merges always */
    static const char *const gpt2[] = {"gpt-2", "phi-2", "mpt", "olmo", "jais"};
    static const char *const qwen2[] = {"qwen2", "deepseek-r1-qwen", "megrez", "kormo", "f2llmv2"};
    for (size_t i = 0; i < sizeof qwen2 / sizeof qwen2[0]; i++)
        if (!strcmp(pre, qwen2[i])) {
            b->pre = BN_PRETOK_QWEN2;
            return 1;
        }
    for (size_t i = 0; i < sizeof llama3 / sizeof llama3[0]; i++)
        if (!strcmp(pre, llama3[i])) {
            b->pre = BN_PRETOK_LLAMA3;
            b->ignore_merges = 1;
            *add_bos = 1;
            return 1;
        }
    for (size_t i = 0; i < sizeof llama3_merges / sizeof llama3_merges[0]; i++)
        if (!strcmp(pre, llama3_merges[i])) {
            b->pre = BN_PRETOK_LLAMA3;
            return 1;
        }
    for (size_t i = 0; i < sizeof gpt2 / sizeof gpt2[0]; i++)
        if (!strcmp(pre, gpt2[i])) {
            b->pre = BN_PRETOK_GPT2;
            return 1;
        }
    return 0;
}

/* Special ids, add_bos and the special-token lists, once merges are in. */
static bitnet_status bpe_finish(bn_tokenizer *t, const bn_gguf_file *f, int add_bos, const char *name) {
    bool ab;
    int r;
    t->add_bos = add_bos;
    t->add_space_prefix = 0;
    if (f) {
        if (bn_tok_get_id(f, "tokenizer.ggml.bos_token_id", &t->bos) < 0 ||
            bn_tok_get_id(f, "tokenizer.ggml.eos_token_id", &t->eos) < 0 ||
            bn_tok_get_id(f, "tokenizer.ggml.unknown_token_id", &t->unk) < 0)
            return BITNET_ERR_FORMAT;
        if ((r = bn_gguf_get_bool(f, "tokenizer.ggml.add_bos_token", &ab)) < 0) return BITNET_ERR_FORMAT;
        if (r > 0) t->add_bos = ab;
    }
    if (t->bos >= t->n_vocab || t->eos >= t->n_vocab || t->unk >= t->n_vocab)
        return bn_error(BITNET_ERR_FORMAT, "%s: special token id out of range (bos %d, eos %d, unk %d, n_vocab %d)",
                        name, (int)t->bos, (int)t->eos, (int)t->unk, t->n_vocab);
    if (t->add_bos && t->bos < 0)
        return bn_error(BITNET_ERR_FORMAT, "%s: tokenizer.ggml.add_bos_token is true but there is no BOS token", name);
    return bn_tok_finish_special(t, f, name);
}

bitnet_status bn_bpe_from_gguf(const bn_gguf_file *f, bn_tokenizer **out) {
    const char *name = f->path ? f->path : "(gguf)";
    char pre[48];
    int r = bn_gguf_get_str(f, "tokenizer.ggml.pre", pre, sizeof pre);
    if (r < 0) return BITNET_ERR_FORMAT;
    if (r == 0)
        return bn_error(BITNET_ERR_UNSUPPORTED, "%s: gpt2 tokenizer without tokenizer.ggml.pre: llama.cpp's 'default' BPE "
                        "pre-tokenizer is not supported (llama-bpe and gpt-2 are)", name);
    const bn_gguf_value *merges = NULL;
    if ((r = bn_tok_gguf_arr(f, "tokenizer.ggml.merges", BN_GGUF_TYPE_STRING, &merges)) < 0) return BITNET_ERR_FORMAT;
    if (r == 0 || !merges->arr.items) return bn_error(BITNET_ERR_FORMAT, "%s: missing tokenizer.ggml.merges", name);
    bn_tokenizer *t;
    bitnet_status st = bn_tok_load_gguf_pieces(f, 0, &t);
    if (st != BITNET_OK) return st;
    t->kind = BN_TOK_BPE;
    /* llama.cpp's defaults for BPE vocabularies (id 11 only if it exists) */
    t->bos = t->eos = t->n_vocab > 11 ? 11 : -1;
    t->unk = -1;
    int add_bos = 0;
    char *cat = NULL;
    if ((t->bpe = calloc(1, sizeof *t->bpe))) t->bpe_free = bn_bpe_free;
    if (!t->bpe) st = bn_error(BITNET_ERR_NOMEM, "%s: tokenizer: out of memory", name);
    else if (!select_pre(t->bpe, pre, &add_bos))
        st = bn_error(BITNET_ERR_UNSUPPORTED, "%s: BPE pre-tokenizer \"%s\" is not supported (llama-bpe, llama3, qwen2, gpt-2 and "
                      "the names llama.cpp maps to their regexes)", name, pre);
    else {
        snprintf(t->bpe->pre_name, sizeof t->bpe->pre_name, "%s", pre);
        st = bn_tok_build_table(t, name, 1);
    }
    if (st == BITNET_OK) st = bpe_prepare(t, name);
    if (st == BITNET_OK) st = merges_alloc(t->bpe, merges->arr.n, name);
    if (st == BITNET_OK && !(cat = malloc(2 * (size_t)TOK_MAX_PIECE)))
        st = bn_error(BITNET_ERR_NOMEM, "%s: tokenizer: out of memory", name);
    for (uint64_t i = 0; i < merges->arr.n && st == BITNET_OK; i++) {
        const bn_gguf_value *v = &merges->arr.items[i];
        if (v->type != BN_GGUF_TYPE_STRING || v->str.len > TOK_MAX_PIECE) {
            st = bn_error(BITNET_ERR_FORMAT, "%s: tokenizer.ggml.merges[%llu] is not a string of at most %d bytes",
                          name, (unsigned long long)i, TOK_MAX_PIECE);
            break;
        }
        /* "A B", split at the first space after the first byte; a merge
         * without one can never apply (llama.cpp keeps it as ("", "")) */
        const char *s = v->str.data, *sp = v->str.len > 1 ? memchr(s + 1, ' ', (size_t)v->str.len - 1) : NULL;
        if (!sp) continue;
        size_t la = (size_t)(sp - s), lb = (size_t)v->str.len - la - 1;
        memcpy(cat, s, la);
        memcpy(cat + la, sp + 1, lb);
        int32_t a = sym_intern(t, s, la), bb = lb ? sym_intern(t, sp + 1, lb) : -2,
                ab = lb ? sym_intern(t, cat, la + lb) : -2;
        if (bb == -2) continue; /* "A " : the right half is empty, never a symbol */
        if (a < 0 || bb < 0 || ab < 0) st = bn_error(BITNET_ERR_NOMEM, "%s: tokenizer: out of memory", name);
        else merge_add(t->bpe, a, bb, ab);
    }
    free(cat);
    if (st == BITNET_OK) st = bpe_finish(t, f, add_bos, name);
    if (st != BITNET_OK) {
        bn_tokenizer_free(t);
        return st;
    }
    *out = t;
    return BITNET_OK;
}

/* ---- tiktoken rank file ----------------------------------------------------- */

#define LLAMA3_N_RANKS 128000
#define LLAMA3_N_SPECIAL 256

/* Llama-3's special tokens (meta-llama/llama3 tokenizer.py): 128000 + i. */
static void llama3_special_name(int i, char *buf, size_t cap) {
    static const char *const named[] = {"<|begin_of_text|>", "<|end_of_text|>", "<|reserved_special_token_0|>",
                                        "<|reserved_special_token_1|>", "<|reserved_special_token_2|>",
                                        "<|reserved_special_token_3|>", "<|start_header_id|>", "<|end_header_id|>",
                                        "<|reserved_special_token_4|>", "<|eot_id|>"};
    if (i < 10) snprintf(buf, cap, "%s", named[i]);
    else snprintf(buf, cap, "<|reserved_special_token_%d|>", i - 5);
}

static int b64_value(uint8_t c) {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+') return 62;
    if (c == '/') return 63;
    return -1;
}

/* Decodes standard base64 (with '=' padding) into out; -1 if malformed. */
static int b64_decode(const uint8_t *s, size_t n, uint8_t *out) {
    if (n == 0 || n % 4) return -1;
    int o = 0;
    for (size_t i = 0; i < n; i += 4) {
        int v[4], pad = 0;
        for (int j = 0; j < 4; j++) {
            if (s[i + j] == '=' && i + 4 == n && j >= 2) {
                v[j] = 0;
                pad++;
            } else if ((v[j] = b64_value(s[i + j])) < 0 || pad) {
                return -1;
            }
        }
        uint32_t w = (uint32_t)v[0] << 18 | (uint32_t)v[1] << 12 | (uint32_t)v[2] << 6 | (uint32_t)v[3];
        out[o++] = (uint8_t)(w >> 16);
        if (pad < 2) out[o++] = (uint8_t)(w >> 8);
        if (pad < 1) out[o++] = (uint8_t)w;
    }
    return o;
}

typedef struct {
    int32_t l, r, id; /* merge l + r -> id */
} split;

static int split_cmp(const void *a, const void *b) {
    const split *x = a, *y = b;
    if (x->l != y->l) return x->l < y->l ? -1 : 1;
    return (x->r > y->r) - (x->r < y->r);
}

/* Hugging Face's TikTokenConverter: for each token (rank order), every split
 * into two tokens is a merge, the splits of one token ordered by their ranks.
 * The splits are found once (two lookups per split point: most of the load
 * time of a 128k vocabulary), kept, and then added. */
static bitnet_status derive_merges(bn_tokenizer *t, int n_ranks, const char *name) {
    split *sp = NULL;
    size_t n = 0, cap = 0;
    for (int32_t id = 0; id < n_ranks; id++) {
        const char *s = t->pool + t->off[id];
        const int32_t len = t->len[id];
        const size_t first = n;
        /* split points fall between GPT-2 characters, i.e. between bytes */
        for (int32_t i = (uint8_t)s[0] < 0x80 ? 1 : 2; i < len; i += (uint8_t)s[i] < 0x80 ? 1 : 2) {
            const int32_t l = bn_tok_lookup(t, s, (size_t)i);
            const int32_t r = l >= 0 && l < n_ranks ? bn_tok_lookup(t, s + i, (size_t)(len - i)) : -1;
            if (r < 0 || r >= n_ranks) continue;
            if (n == cap) {
                cap = cap ? 2 * cap : 4096;
                split *grown = realloc(sp, cap * sizeof *sp);
                if (!grown) {
                    free(sp);
                    return bn_error(BITNET_ERR_NOMEM, "%s: tokenizer: out of memory", name);
                }
                sp = grown;
            }
            sp[n++] = (split){l, r, id};
        }
        if (n > first) qsort(sp + first, n - first, sizeof *sp, split_cmp); /* sp is NULL until a split is found */
    }
    bitnet_status st = merges_alloc(t->bpe, n, name);
    for (size_t i = 0; st == BITNET_OK && i < n; i++) merge_add(t->bpe, sp[i].l, sp[i].r, sp[i].id);
    free(sp);
    return st;
}

bitnet_status bn_tokenizer_from_tiktoken_memory(const void *data, uint64_t size, const char *name, bn_tokenizer **out) {
    if (!out) return bn_error(BITNET_ERR_ARG, "tokenizer: NULL out");
    *out = NULL;
    if (!name) name = "(memory)";
    if (!data && size) return bn_error(BITNET_ERR_ARG, "%s: NULL data", name);
    const uint8_t *p = data, *end = p + size;
    /* pass 1: count and check the lines; the ranks must be 0, 1, 2, ... */
    int n = 0;
    uint64_t raw_total = 0;
    for (const uint8_t *q = p; q < end; n++) {
        const uint8_t *eol = memchr(q, '\n', (size_t)(end - q)), *le = eol ? eol : end;
        if (le > q && le[-1] == '\r') le--;
        const uint8_t *spc = memchr(q, ' ', (size_t)(le - q)), *d = spc ? spc + 1 : le;
        long rank = d < le ? 0 : -1;
        for (; d < le && *d >= '0' && *d <= '9' && rank <= INT_MAX; d++) rank = rank * 10 + (*d - '0');
        int b64 = spc && spc > q && (spc - q) % 4 == 0;
        for (const uint8_t *c = q; b64 && c < spc; c++) b64 = b64_value(*c) >= 0 || *c == '=';
        if (!b64 || d != le || rank != n || n >= TOK_MAX_VOCAB)
            return bn_error(BITNET_ERR_FORMAT, "%s: line %d is not \"<base64 token> %d\"", name, n + 1, n);
        raw_total += (uint64_t)(spc - q) / 4 * 3;
        q = eol ? eol + 1 : end;
    }
    if (n != LLAMA3_N_RANKS)
        return bn_error(BITNET_ERR_UNSUPPORTED, "%s: %d ranks; only Llama-3's rank file (%d ranks) is supported, since "
                        "the special tokens are not in the file", name, n, LLAMA3_N_RANKS);
    /* a byte takes at most 2 bytes as a GPT-2 character; specials < 32 bytes */
    bn_tokenizer *t;
    bitnet_status st = bn_tok_alloc(n + LLAMA3_N_SPECIAL, 2 * raw_total + 32 * LLAMA3_N_SPECIAL, &t);
    if (st != BITNET_OK) return st;
    t->kind = BN_TOK_BPE;
    size_t used = 0;
    uint8_t *raw = malloc(TOK_MAX_PIECE);
    char *enc = malloc(2 * TOK_MAX_PIECE);
    if (!raw || !enc) st = bn_error(BITNET_ERR_NOMEM, "%s: tokenizer: out of memory", name);
    int i = 0;
    for (const uint8_t *q = p; q < end && st == BITNET_OK; i++) {
        const uint8_t *eol = memchr(q, '\n', (size_t)(end - q)), *spc = memchr(q, ' ', (size_t)(end - q));
        int nr = (size_t)(spc - q) / 4 * 3 <= TOK_MAX_PIECE ? b64_decode(q, (size_t)(spc - q), raw) : -1;
        if (nr <= 0) {
            st = bn_error(BITNET_ERR_FORMAT, "%s: line %d: bad base64 token", name, i + 1);
            break;
        }
        size_t ne = 0; /* the token as GGUF would spell it: GPT-2 characters */
        for (int j = 0; j < nr; j++) ne += (size_t)bn_utf8_encode(bn_gpt2_byte_to_cp(raw[j]), enc + ne);
        bn_tok_set_piece(t, i, enc, ne, 0, &used);
        t->type[i] = BN_TOKEN_NORMAL;
        q = eol ? eol + 1 : end;
    }
    free(raw);
    free(enc);
    for (int k = 0; k < LLAMA3_N_SPECIAL && st == BITNET_OK; k++) {
        char s[32];
        llama3_special_name(k, s, sizeof s);
        bn_tok_set_piece(t, n + k, s, strlen(s), 0, &used);
        t->type[n + k] = BN_TOKEN_CONTROL;
    }
    if (st == BITNET_OK && (t->bpe = calloc(1, sizeof *t->bpe))) t->bpe_free = bn_bpe_free;
    else if (st == BITNET_OK)
        st = bn_error(BITNET_ERR_NOMEM, "%s: tokenizer: out of memory", name);
    if (st == BITNET_OK) {
        t->bpe->pre = BN_PRETOK_LLAMA3;
        t->bpe->ignore_merges = 1;
        snprintf(t->bpe->pre_name, sizeof t->bpe->pre_name, "llama-bpe");
        st = bn_tok_build_table(t, name, 1);
    }
    if (st == BITNET_OK) st = bpe_prepare(t, name);
    if (st == BITNET_OK) st = derive_merges(t, n, name);
    if (st == BITNET_OK) {
        t->bos = n;     /* <|begin_of_text|> */
        t->eos = n + 1; /* <|end_of_text|>; <|eot_id|> is found as EOT */
        t->unk = -1;
        st = bpe_finish(t, NULL, 1, name);
    }
    if (st != BITNET_OK) {
        bn_tokenizer_free(t);
        return st;
    }
    *out = t;
    return BITNET_OK;
}

bitnet_status bn_tokenizer_from_tiktoken(const char *path, bn_tokenizer **out) {
    if (!out || !path) return bn_error(BITNET_ERR_ARG, "tokenizer: NULL argument");
    *out = NULL;
    char *buf;
    size_t n;
    bitnet_status st = bn_read_file(path, BN_TOK_MAX_FILE, &buf, &n, NULL);
    if (st != BITNET_OK) return st;
    st = bn_tokenizer_from_tiktoken_memory(buf, n, path, out);
    free(buf);
    return st;
}

/* ---- encoding -------------------------------------------------------------- */

typedef struct {
    int32_t id;         /* symbol id; -1 once merged into its left neighbour */
    int32_t prev, next; /* live neighbours, -1 at the ends */
} bpe_sym;

typedef struct {
    uint64_t key; /* rank << 32 | left: the heap's top has the smallest */
    int32_t right, l_id, r_id;
} bpe_bigram;

typedef struct {
    const bn_tokenizer *t;
    bpe_sym *sym;
    bpe_bigram *heap;
    int32_t n_heap;
} bpe_work;

#define KEY_BELOW(a, b) ((a) < (b)) /* the lowest rank (then the leftmost pair) on top */
BN_KEY_HEAP(pairs, bpe_bigram, KEY_BELOW)

static void push_pair(bpe_work *w, int32_t l, int32_t r) {
    if (l < 0 || r < 0) return;
    int32_t rank = merge_rank(w->t->bpe, w->sym[l].id, w->sym[r].id);
    if (rank < 0) return;
    pairs_push(w->heap, &w->n_heap, (bpe_bigram){(uint64_t)rank << 32 | (uint32_t)l, r, w->sym[l].id, w->sym[r].id});
}

static int emit(int32_t *out, int max_tokens, int n, int32_t id) {
    if (n < max_tokens) out[n] = id;
    return n + 1;
}

/* Merges the bytes word[0..n) and appends the resulting tokens. */
static int merge_word(bpe_work *w, const uint8_t *word, int32_t n, int32_t *out, int max_tokens, int n_out) {
    const bn_tokenizer *t = w->t;
    const struct bn_bpe *b = t->bpe;
    for (int32_t i = 0; i < n; i++) w->sym[i] = (bpe_sym){b->byte_sym[word[i]], i - 1, i + 1 < n ? i + 1 : -1};
    w->n_heap = 0;
    for (int32_t i = 1; i < n; i++) push_pair(w, i - 1, i);
    while (w->n_heap > 0) {
        bpe_bigram g = pairs_pop(w->heap, &w->n_heap);
        int32_t left = (int32_t)(uint32_t)g.key;
        bpe_sym *L = &w->sym[left], *R = &w->sym[g.right];
        if (L->id != g.l_id || R->id != g.r_id) continue; /* stale: one side changed since */
        L->id = b->m_result[g.key >> 32];
        R->id = -1;
        L->next = R->next;
        if (R->next >= 0) w->sym[R->next].prev = left;
        push_pair(w, L->prev, left);
        push_pair(w, left, L->next);
    }
    for (int32_t i = 0; i >= 0; i = w->sym[i].next) {
        int32_t id = w->sym[i].id;
        if (id < t->n_vocab) {
            n_out = emit(out, max_tokens, n_out, id);
            continue;
        }
        int32_t len; /* not a token: the tokens of its single bytes, as llama.cpp */
        const char *s = sym_text(t, id, &len);
        for (int32_t j = 0; j < len; j++) {
            int32_t one = bn_tok_lookup(t, s + j, 1);
            if (one >= 0) n_out = emit(out, max_tokens, n_out, one);
        }
    }
    return n_out;
}

int bn_bpe_encode(const bn_tokenizer *t, const char *text, size_t len, int32_t *out, int max_tokens, int n_out) {
    const struct bn_bpe *b = t->bpe;
    uint32_t *cps = malloc(len * sizeof *cps), *ends = malloc(len * sizeof *ends);
    uint8_t *fl = malloc(len);
    if (!cps || !ends || !fl) {
        free(cps);
        free(ends);
        free(fl);
        return bn_error(BITNET_ERR_NOMEM, "tokenize: out of memory");
    }
    size_t n = bn_utf8_decode(text, len, cps);
    for (size_t i = 0; i < n; i++) fl[i] = bn_unicode_flags(cps[i]);
    size_t n_words = bn_pretokenize(b->pre, cps, fl, n, ends);
    size_t maxw = 0;
    for (size_t i = 0, prev = 0; i < n_words; prev = ends[i++]) maxw = BN_MAX(maxw, ends[i] - prev);
    /* a code point is at most 4 bytes, a byte at most 2 bytes of GPT-2 text,
     * and each merge queues at most 2 pairs: the heap stays under 3 per byte */
    const size_t maxb = 4 * maxw;
    uint8_t *word = malloc(maxb ? maxb : 1);
    char *enc = malloc(2 * maxb + 1);
    bpe_work w = {t, malloc((maxb ? maxb : 1) * sizeof(bpe_sym)), malloc((3 * maxb + 1) * sizeof(bpe_bigram)), 0};
    if (!word || !enc || !w.sym || !w.heap) n_out = bn_error(BITNET_ERR_NOMEM, "tokenize: out of memory");
    for (size_t i = 0, start = 0; i < n_words && n_out >= 0; start = ends[i++]) {
        int32_t nb = 0;
        for (size_t c = start; c < ends[i]; c++) nb += bn_utf8_encode(cps[c], (char *)word + nb);
        if (b->ignore_merges) { /* a word that is a token stays whole */
            size_t ne = 0;
            for (int32_t j = 0; j < nb; j++) {
                memcpy(enc + ne, b->enc[word[j]], b->enc_len[word[j]]);
                ne += b->enc_len[word[j]];
            }
            int32_t id = bn_tok_lookup(t, enc, ne);
            if (id >= 0) {
                n_out = emit(out, max_tokens, n_out, id);
                continue;
            }
        }
        n_out = merge_word(&w, word, nb, out, max_tokens, n_out);
    }
    free(cps);
    free(ends);
    free(fl);
    free(word);
    free(enc);
    free(w.sym);
    free(w.heap);
    return n_out;
}

const char *bn_bpe_piece(const bn_tokenizer *t, int32_t token, int *len) {
    if (len) *len = t->bpe->dec_len[token];
    return t->bpe->dec + t->bpe->dec_off[token];
}

/* ---- GGUF output -------------------------------------------------------------- */

bitnet_status bn_bpe_write_gguf(const bn_tokenizer *t, bn_gguf_writer *w) {
    const struct bn_bpe *b = t->bpe;
    size_t total = 0;
    for (int32_t i = 0; i < b->n_merges; i++) {
        int32_t la, lb;
        sym_text(t, b->m_left[i], &la);
        sym_text(t, b->m_right[i], &lb);
        total += (size_t)la + (size_t)lb + 1;
    }
    char *pool = malloc(total + 1);
    const char **texts = malloc((size_t)(b->n_merges + 1) * sizeof *texts);
    uint64_t *lens = malloc((size_t)(b->n_merges + 1) * sizeof *lens);
    if (!pool || !texts || !lens) {
        free(pool);
        free(texts);
        free(lens);
        return bn_error(BITNET_ERR_NOMEM, "tokenizer: out of memory writing %d merges", (int)b->n_merges);
    }
    size_t o = 0;
    for (int32_t i = 0; i < b->n_merges; i++) {
        int32_t la, lb;
        const char *sa = sym_text(t, b->m_left[i], &la), *sb = sym_text(t, b->m_right[i], &lb);
        texts[i] = pool + o;
        memcpy(pool + o, sa, (size_t)la);
        pool[o + (size_t)la] = ' ';
        memcpy(pool + o + (size_t)la + 1, sb, (size_t)lb);
        lens[i] = (uint64_t)la + (uint64_t)lb + 1;
        o += lens[i];
    }
    bn_gguf_writer_set_str(w, "tokenizer.ggml.pre", b->pre_name);
    bn_gguf_writer_set_arr_str(w, "tokenizer.ggml.merges", texts, lens, (uint64_t)b->n_merges);
    free(pool);
    free(texts);
    free(lens);
    return BITNET_OK;
}
