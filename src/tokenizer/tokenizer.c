/*
 * tokenizer.c - the tokenizer entry points (load from GGUF or tokenizer.bin,
 * the llama.cpp-style split around special tokens, encode, pieces) and the
 * SentencePiece-style (score-driven BPE + byte fallback) tokenizer.
 * Byte-level BPE is in tokenizer_bpe.c; the piece table, special tokens and
 * accessors both use are in vocab.c.
 *
 * One SentencePiece encoder serves both reference behaviours we must reproduce:
 *  - llama2.c encode(): dummy-prefix space, split into UTF-8 code points (byte
 *    fallback id for code points missing from the vocabulary), then repeatedly
 *    merge the adjacent pair whose concatenation is in the vocabulary with the
 *    highest score, the left-most pair winning ties (it only replaces on '>').
 *  - llama.cpp llm_tokenizer_spm: the same greedy merge run with a priority
 *    queue ordered by (score desc, left index asc), then each final symbol is
 *    looked up and, if absent, emitted as <0xXX> byte tokens.
 * Both pick exactly the same pair at every step, so we implement the efficient
 * one: a binary heap of candidate bigrams with lazy invalidation plus an
 * open-addressing hash from piece bytes to id, O(n log n) per text.
 * Where the two differ we follow llama.cpp: code points are cut by the length
 * their lead byte announces (differs from llama2.c on invalid UTF-8 only), a
 * code point missing from the vocabulary may still merge with a neighbour
 * (llama2.c turns it into bytes first; SentencePiece-trained vocabularies hold
 * every character of every piece, so this never shows), and scores below
 * llama2.c's -1e10 starting value still merge.
 *
 * SentencePiece pieces are stored with U+2581 ("▁") already turned into ' ',
 * so the input text needs no whitespace escaping and both sources look alike.
 */
#include <ctype.h>
#include <errno.h>
#include <math.h>

#include "formats/gguf.h"
#include "formats/mapped_file.h"
#include "tokenizer/key_heap.h"
#include "tokenizer/tokenizer_impl.h"


/* SPM: piece table, byte-fallback table and special ids. */
static bitnet_status spm_finish(bn_tokenizer *t, const bn_gguf_file *f, const char *name) {
    bitnet_status st = bn_tok_build_table(t, name, 0);
    if (st != BITNET_OK) return st;
    t->space_split = 1;
    for (int32_t id = 0; id < t->n_vocab; id++) {
        const char *s = t->pool + t->off[id];
        for (int32_t j = 1; j < t->len[id]; j++)
            if (s[j] == ' ' && s[j - 1] != ' ') t->space_split = 0; /* e.g. "a b": merges may span words */
    }
    /* Byte fallback as llama.cpp's byte_to_token: "<0xXX>", else the one-byte
     * piece, else <unk>. For llama2.c files this gives byte + 3. */
    for (int b = 0; b < 256; b++) {
        char hex[7];
        snprintf(hex, sizeof hex, "<0x%02X>", b);
        char one = (char)b;
        int32_t id = bn_tok_lookup(t, hex, 6);
        if (id < 0) id = bn_tok_lookup(t, &one, 1);
        t->byte_id[b] = id >= 0 ? id : t->unk;
        t->raw[b] = (unsigned char)b;
    }
    if (t->bos < 0 || t->bos >= t->n_vocab || t->eos < 0 || t->eos >= t->n_vocab ||
        t->unk < 0 || t->unk >= t->n_vocab)
        return bn_error(BITNET_ERR_FORMAT, "%s: special token id out of range (bos %d, eos %d, unk %d, n_vocab %d)",
                        name, (int)t->bos, (int)t->eos, (int)t->unk, t->n_vocab);
    return bn_tok_finish_special(t, f, name);
}

/* ---- llama2.c tokenizer.bin ------------------------------------------------ */

static int32_t rd_i32(const uint8_t *p) {
    uint32_t v = (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
    int32_t r;
    memcpy(&r, &v, 4);
    return r;
}

static float rd_f32(const uint8_t *p) {
    int32_t v = rd_i32(p);
    float f;
    memcpy(&f, &v, 4);
    return f;
}

bitnet_status bn_tokenizer_from_llama2c_memory(const void *data, uint64_t size, const char *name,
                                              int n_vocab, bn_tokenizer **out) {
    if (!out) return bn_error(BITNET_ERR_ARG, "tokenizer: NULL out");
    *out = NULL;
    if (!name) name = "(memory)";
    if (!data && size) return bn_error(BITNET_ERR_ARG, "%s: NULL data", name);
    const uint8_t *p = data;
    if (size < 4) return bn_error(BITNET_ERR_FORMAT, "%s: truncated header (%llu bytes)", name, (unsigned long long)size);
    if (n_vocab == 0) /* every entry: count them (a short tail is an error below) */
        for (uint64_t pos = 4; size - pos >= 8 && n_vocab < TOK_MAX_VOCAB; n_vocab++) {
            uint32_t len = (uint32_t)rd_i32(p + pos + 4);
            if (len > size - pos - 8) break;
            pos += 8 + len;
        }
    if (n_vocab < 3 || n_vocab > TOK_MAX_VOCAB)
        return bn_error(BITNET_ERR_ARG, "%s: n_vocab %d out of range [3, %d]", name, n_vocab, TOK_MAX_VOCAB);
    int32_t max_token_length = rd_i32(p);
    /* llama2.c sizes its merge buffer from this; we do not need it, but a
     * negative or absurd value means this is not a tokenizer.bin at all. */
    if (max_token_length < 0 || max_token_length > TOK_MAX_PIECE)
        return bn_error(BITNET_ERR_FORMAT, "%s: max_token_length %d out of range", name, (int)max_token_length);

    bn_tokenizer *t;
    bitnet_status st = bn_tok_alloc(n_vocab, size, &t); /* pieces total < file size */
    if (st != BITNET_OK) return st;
    uint64_t pos = 4;
    size_t used = 0;
    for (int i = 0; i < n_vocab; i++) {
        /* Each check compares against what is left, so pos never passes size. */
        if (size - pos < 8) {
            bn_tokenizer_free(t);
            return bn_error(BITNET_ERR_FORMAT, "%s: truncated at token %d of %d (offset %llu): file has fewer tokens than n_vocab",
                            name, i, n_vocab, (unsigned long long)pos);
        }
        float score = rd_f32(p + pos);
        int32_t len = rd_i32(p + pos + 4);
        pos += 8;
        if (isnan(score)) {
            bn_tokenizer_free(t);
            return bn_error(BITNET_ERR_FORMAT, "%s: token %d has a NaN score", name, i);
        }
        if (len < 0 || len > TOK_MAX_PIECE || (uint64_t)len > size - pos) {
            bn_tokenizer_free(t);
            return bn_error(BITNET_ERR_FORMAT, "%s: token %d has bad length %d (offset %llu, %llu bytes left)",
                            name, i, (int)len, (unsigned long long)(pos - 4), (unsigned long long)(size - pos));
        }
        bn_tok_set_piece(t, i, (const char *)p + pos, (size_t)len, 0, &used);
        pos += (uint64_t)len;
        t->score[i] = score;
        t->type[i] = bn_tok_parse_byte_piece(t->pool + t->off[i], t->len[i]) >= 0 ? BN_TOKEN_BYTE : BN_TOKEN_NORMAL;
    }
    /* Fixed by llama2.c's export script (SentencePiece defaults). */
    t->unk = 0;
    t->bos = 1;
    t->eos = 2;
    t->type[0] = BN_TOKEN_UNKNOWN;
    t->type[1] = t->type[2] = BN_TOKEN_CONTROL;
    st = spm_finish(t, NULL, name);
    if (st != BITNET_OK) {
        bn_tokenizer_free(t);
        return st;
    }
    *out = t;
    return BITNET_OK;
}

bitnet_status bn_tokenizer_from_llama2c(const char *path, int n_vocab, bn_tokenizer **out) {
    if (!out || !path) return bn_error(BITNET_ERR_ARG, "tokenizer: NULL argument");
    *out = NULL;
    char *buf;
    size_t n;
    bitnet_status st = bn_read_file(path, BN_TOK_MAX_FILE, &buf, &n, NULL);
    if (st != BITNET_OK) return st;
    st = bn_tokenizer_from_llama2c_memory(buf, n, path, n_vocab, out);
    free(buf);
    return st;
}

static bitnet_status spm_from_gguf(const bn_gguf_file *f, bn_tokenizer **out) {
    const char *name = f->path ? f->path : "(gguf)";
    bn_tokenizer *t;
    bitnet_status st = bn_tok_load_gguf_pieces(f, 1, &t);
    if (st != BITNET_OK) return st;
    int has_types = bn_gguf_find_kv(f, "tokenizer.ggml.token_type") != NULL;
    /* llama.cpp's defaults for SentencePiece vocabularies. */
    t->unk = 0;
    t->bos = 1;
    t->eos = 2;
    bool b;
    int r;
    if (bn_tok_get_id(f, "tokenizer.ggml.bos_token_id", &t->bos) < 0 || bn_tok_get_id(f, "tokenizer.ggml.eos_token_id", &t->eos) < 0 ||
        bn_tok_get_id(f, "tokenizer.ggml.unknown_token_id", &t->unk) < 0)
        st = BITNET_ERR_FORMAT;
    if (st == BITNET_OK && (r = bn_gguf_get_bool(f, "tokenizer.ggml.add_space_prefix", &b)) != 0) {
        if (r < 0) st = BITNET_ERR_FORMAT;
        else t->add_space_prefix = b;
    }
    if (st == BITNET_OK && (r = bn_gguf_get_bool(f, "tokenizer.ggml.add_bos_token", &b)) != 0) {
        if (r < 0) st = BITNET_ERR_FORMAT;
        else t->add_bos = b;
    }
    if (st == BITNET_OK && !has_types) /* no token_type: mark the specials ourselves */
        if (t->unk >= 0 && t->unk < t->n_vocab && t->bos >= 0 && t->bos < t->n_vocab && t->eos >= 0 && t->eos < t->n_vocab) {
            t->type[t->unk] = BN_TOKEN_UNKNOWN;
            t->type[t->bos] = t->type[t->eos] = BN_TOKEN_CONTROL;
        }
    if (st == BITNET_OK) st = spm_finish(t, f, name);
    if (st != BITNET_OK) {
        bn_tokenizer_free(t);
        return st;
    }
    *out = t;
    return BITNET_OK;
}

bitnet_status bn_tokenizer_from_gguf(const struct bn_gguf_file *f, bn_tokenizer **out) {
    if (!out || !f) return bn_error(BITNET_ERR_ARG, "tokenizer: NULL argument");
    *out = NULL;
    const char *name = f->path ? f->path : "(gguf)";
    const bn_gguf_kv *model = bn_gguf_find_kv(f, "tokenizer.ggml.model");
    if (!model) return bn_error(BITNET_ERR_FORMAT, "%s: missing tokenizer.ggml.model", name);
    if (model->value.type != BN_GGUF_TYPE_STRING)
        return bn_error(BITNET_ERR_FORMAT, "%s: tokenizer.ggml.model is not a string", name);
    if (bn_gguf_str_eq(model->value.str, "llama")) return spm_from_gguf(f, out);
    if (bn_gguf_str_eq(model->value.str, "gpt2")) return bn_bpe_from_gguf(f, out);
    bn_gguf_str s = model->value.str;
    return bn_error(BITNET_ERR_UNSUPPORTED,
                    "%s: tokenizer model \"%.*s\" is not supported (\"llama\" SentencePiece or \"gpt2\" byte-level BPE)",
                    name, (int)BN_MIN(s.len, 40), s.data);
}

const char *bn_tokenizer_piece(const bn_tokenizer *t, int32_t prev, int32_t token, int *out_len) {
    if (out_len) *out_len = 0;
    if (!t || token < 0 || token >= t->n_vocab) return NULL; /* no tokenizer: memory loads (fuzzing) */
    if (t->kind == BN_TOK_BPE) return bn_bpe_piece(t, token, out_len);
    const char *s = t->pool + t->off[token];
    int n = t->len[token];
    if (t->type[token] == BN_TOKEN_BYTE) {
        s = (const char *)&t->raw[bn_tok_parse_byte_piece(s, n)];
        n = 1;
    } else if (prev == t->bos && n > 0 && s[0] == ' ') {
        s++; /* the dummy-prefix space of the first word */
        n--;
    }
    if (out_len) *out_len = n;
    return s;
}

/* ---- encoder ------------------------------------------------------------- */

typedef struct {
    int32_t start, n;   /* bytes [start, start+n) of the work buffer; n == 0: merged away */
    int32_t prev, next; /* live neighbours, -1 at the ends */
} tok_sym;

typedef struct {
    uint64_t key;        /* see bigram_key(); the heap's top has the largest key */
    int32_t right, size; /* size: left.n + right.n when queued, to spot stale entries */
} tok_bigram;

typedef struct {
    const bn_tokenizer *t;
    const char *buf;
    tok_sym *sym;
    tok_bigram *heap;
    int32_t n_heap;
} tok_enc;

/* llama.cpp's queue order (higher score first, then the left-most pair) packed
 * into one integer, which makes the heap about twice as fast as comparing
 * floats and indices: the float's bits are mapped to an order-preserving
 * unsigned key (+0.0f first folds -0.0 into 0.0, which compare equal as
 * floats), and the low half holds ~left so smaller left sorts higher. */
static uint64_t bigram_key(float score, int32_t left) {
    uint32_t u;
    score += 0.0f;
    memcpy(&u, &score, 4);
    u = (u & 0x80000000u) ? ~u : u | 0x80000000u;
    return (uint64_t)u << 32 | (uint32_t)~(uint32_t)left;
}

static int32_t bigram_left(const tok_bigram *b) { return (int32_t)~(uint32_t)b->key; }

#define KEY_ABOVE(a, b) ((a) > (b)) /* the highest score on top */
BN_KEY_HEAP(bigrams, tok_bigram, KEY_ABOVE)

static void try_bigram(tok_enc *e, int32_t l, int32_t r) {
    if (l < 0 || r < 0) return;
    int32_t size = e->sym[l].n + e->sym[r].n; /* live symbols are contiguous */
    int32_t id = bn_tok_lookup(e->t, e->buf + e->sym[l].start, (size_t)size);
    if (id < 0) return;
    bigrams_push(e->heap, &e->n_heap, (tok_bigram){bigram_key(e->t->score[id], l), r, size});
}

/* Length of the UTF-8 sequence a lead byte announces, as llama.cpp's
 * unicode_len_utf8 (stray continuation bytes count as 1). Only invalid UTF-8
 * can split differently from llama2.c, and then byte fallback applies anyway. */
static int utf8_len(uint8_t c) {
    static const uint8_t lut[16] = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 3, 4};
    return lut[c >> 4];
}

static int emit(int32_t *out, int max_tokens, int n, int32_t id) {
    if (n < max_tokens) out[n] = id;
    return n + 1;
}

/* Runs the merges over symbols [first, end) (already linked, ends at -1) and
 * appends the resulting ids; returns the new token count. */
static int merge_segment(tok_enc *e, int32_t first, int32_t end, int32_t *out, int max_tokens, int n_out) {
    const bn_tokenizer *t = e->t;
    e->n_heap = 0;
    for (int32_t i = first + 1; i < end; i++) try_bigram(e, i - 1, i);
    while (e->n_heap > 0) {
        tok_bigram b = bigrams_pop(e->heap, &e->n_heap);
        int32_t left = bigram_left(&b);
        tok_sym *L = &e->sym[left], *R = &e->sym[b.right];
        /* n only grows or drops to 0, so a changed sum means a stale entry */
        if (L->n == 0 || R->n == 0 || L->n + R->n != b.size) continue;
        L->n += R->n;
        R->n = 0;
        L->next = R->next;
        if (R->next >= 0) e->sym[R->next].prev = left;
        try_bigram(e, L->prev, left);
        try_bigram(e, left, L->next);
    }
    /* Merged symbols are in the vocabulary by construction; only single
     * code points can be missing, and those fall back to bytes. */
    for (int32_t i = first; i >= 0; i = e->sym[i].next) {
        const char *s = e->buf + e->sym[i].start;
        int32_t id = bn_tok_lookup(t, s, (size_t)e->sym[i].n);
        if (id >= 0) {
            n_out = emit(out, max_tokens, n_out, id);
        } else {
            for (int32_t j = 0; j < e->sym[i].n; j++) n_out = emit(out, max_tokens, n_out, t->byte_id[(uint8_t)s[j]]);
        }
    }
    return n_out;
}

/* SentencePiece encoding of one piece of text (no special tokens in it);
 * `prefix` adds the dummy-prefix space. Returns the new count or a status. */
static int spm_encode_fragment(const bn_tokenizer *t, const char *text, size_t len, int prefix, int32_t *out,
                               int max_tokens, int n_out) {
    int pre = prefix ? 1 : 0;
    size_t n = len + (size_t)pre;
    char *buf = malloc(n);
    /* Each merge queues at most 2 bigrams: a segment's heap stays < 3n. */
    tok_enc e = {t, buf, malloc(n * sizeof(tok_sym)), malloc(3 * n * sizeof(tok_bigram)), 0};
    if (!buf || !e.sym || !e.heap) {
        free(buf);
        free(e.sym);
        free(e.heap);
        return bn_error(BITNET_ERR_NOMEM, "tokenize: out of memory");
    }
    if (pre) buf[0] = ' ';
    memcpy(buf + pre, text, len);
    /* Split into code points (llama.cpp's rule) and cut the symbol list into
     * independent segments at every "non-space, space" boundary when no piece
     * contains such a pair (see space_split): no merge can cross one, and
     * merges in disjoint segments never interact, so each segment gets its
     * own small, cache-resident heap with the same result. */
    int32_t ns = 0, first = 0;
    for (size_t o = 0; o < n; ns++) {
        int32_t l = (int32_t)BN_MIN((size_t)utf8_len((uint8_t)buf[o]), n - o);
        if (ns > 0 && t->space_split && buf[o] == ' ' && buf[o - 1] != ' ') {
            n_out = merge_segment(&e, first, ns, out, max_tokens, n_out);
            first = ns;
        }
        e.sym[ns] = (tok_sym){(int32_t)o, l, ns > first ? ns - 1 : -1, -1};
        if (ns > first) e.sym[ns - 1].next = ns;
        o += (size_t)l;
    }
    n_out = merge_segment(&e, first, ns, out, max_tokens, n_out);
    free(buf);
    free(e.sym);
    free(e.heap);
    return n_out;
}

/* ---- special tokens in the text --------------------------------------------- *
 * llama.cpp's tokenizer_st_partition: for each special token, longest first,
 * every occurrence inside the text pieces not yet claimed becomes that token. */

typedef struct {
    uint64_t off, len;
    int32_t tok; /* -1: text */
} tok_frag;

/* Whether a special token at [at, at + n) may be matched: control tokens not
 * across a byte marked plain (text from a chat message). */
static int may_match(const bn_tokenizer *t, int32_t id, const uint8_t *plain, uint64_t at, uint64_t n) {
    if (!plain || t->type[id] == BN_TOKEN_USER_DEFINED) return 1;
    for (uint64_t i = 0; i < n; i++)
        if (plain[at + i]) return 0;
    return 1;
}

static tok_frag *partition(const bn_tokenizer *t, const char *text, uint64_t len, int parse_special,
                           const uint8_t *plain, int *n_frag) {
    int cap = 16, n = 1;
    tok_frag *fr = malloc((size_t)cap * sizeof *fr);
    if (!fr) return NULL;
    fr[0] = (tok_frag){0, len, -1};
    if (!parse_special && t->n_user_defined == 0) {
        *n_frag = 1;
        return fr;
    }
    for (int k = 0; k < t->n_special; k++) {
        const int32_t id = t->special[k];
        if (!parse_special && t->type[id] != BN_TOKEN_USER_DEFINED) continue; /* only with parse_special */
        const char *s = t->pool + t->off[id];
        const uint64_t sl = (uint64_t)t->len[id];
        for (int i = 0; i < n; i++) {
            if (fr[i].tok >= 0 || fr[i].len < sl) continue;
            const char *m = bn_memmem(text + fr[i].off, (size_t)fr[i].len, s, (size_t)sl);
            while (m && !may_match(t, id, plain, (uint64_t)(m - text), sl)) { /* a message's text: look further */
                const uint64_t from = (uint64_t)(m - text) + 1, end = fr[i].off + fr[i].len;
                m = end - from >= sl ? bn_memmem(text + from, (size_t)(end - from), s, (size_t)sl) : NULL;
            }
            if (!m) continue;
            if (n + 2 > cap) {
                tok_frag *nf = realloc(fr, (size_t)(cap *= 2) * sizeof *fr);
                if (!nf) {
                    free(fr);
                    return NULL;
                }
                fr = nf;
            }
            const uint64_t mo = (uint64_t)(m - text), end = fr[i].off + fr[i].len;
            tok_frag left = {fr[i].off, mo - fr[i].off, -1}, right = {mo + sl, end - mo - sl, -1};
            int add = (left.len > 0) + 1 + (right.len > 0) - 1; /* fragments added in place of fr[i] */
            memmove(fr + i + 1 + add, fr + i + 1, (size_t)(n - i - 1) * sizeof *fr);
            n += add;
            if (left.len > 0) fr[i++] = left;
            fr[i] = (tok_frag){mo, sl, id};
            if (right.len > 0) fr[i + 1] = right; /* scanned next, for further matches */
        }
    }
    *n_frag = n;
    return fr;
}

int bn_tokenizer_encode_ex(const bn_tokenizer *t, const char *text, uint64_t len, int add_bos, int parse_special,
                           int32_t *out, int max_tokens) {
    return bn_tokenizer_encode_plain(t, text, len, NULL, add_bos, parse_special, out, max_tokens);
}

int bn_tokenizer_encode_plain(const bn_tokenizer *t, const char *text, uint64_t len, const uint8_t *plain, int add_bos,
                              int parse_special, int32_t *out, int max_tokens) {
    if (!t || (!text && len) || max_tokens < 0 || (!out && max_tokens > 0))
        return bn_error(BITNET_ERR_ARG, "tokenize: bad argument");
    if (len > TOK_MAX_TEXT) return bn_error(BITNET_ERR_ARG, "tokenize: text of %llu bytes is too long", (unsigned long long)len);
    int n_out = 0;
    if (add_bos) {
        if (t->bos < 0) return bn_error(BITNET_ERR_ARG, "tokenize: this vocabulary has no BOS token");
        n_out = emit(out, max_tokens, n_out, t->bos);
    }
    if (len > 0) { /* like SentencePiece, an empty text gets no dummy prefix */
        int n_frag;
        tok_frag *fr = partition(t, text, len, parse_special, plain, &n_frag);
        if (!fr) return bn_error(BITNET_ERR_NOMEM, "tokenize: out of memory");
        int prev_special = 1; /* SPM: a space goes before text that starts the input or follows a special token */
        for (int i = 0; i < n_frag && n_out >= 0; i++) {
            if (fr[i].tok >= 0) {
                n_out = emit(out, max_tokens, n_out, fr[i].tok);
                prev_special = 1;
            } else if (t->kind == BN_TOK_BPE) {
                n_out = bn_bpe_encode(t, text + fr[i].off, (size_t)fr[i].len, out, max_tokens, n_out);
            } else {
                n_out = spm_encode_fragment(t, text + fr[i].off, (size_t)fr[i].len, t->add_space_prefix && prev_special,
                                            out, max_tokens, n_out);
                prev_special = 0;
            }
        }
        free(fr);
        if (n_out < 0) return n_out;
    }
    if (n_out > max_tokens)
        return bn_error(BITNET_ERR_ARG, "tokenize: text needs %d tokens, buffer holds %d", n_out, max_tokens);
    return n_out;
}

int bn_tokenizer_encode(const bn_tokenizer *t, const char *text, uint64_t len, int add_bos, int32_t *out,
                        int max_tokens) {
    return bn_tokenizer_encode_ex(t, text, len, add_bos, 0, out, max_tokens);
}
