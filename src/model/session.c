/*
 * session.c - a sequence's state in a file (llama.cpp's session / prompt-cache
 * files, llama_state_seq_save_file): the tokens of one sequence and their keys
 * and values, so that a later process (or another slot) continues after the
 * same prefix without evaluating it.
 *
 * Layout (little-endian, the byte order of every target we build for):
 *   char[8]  "BNSESS\0\1"  (magic; the last byte is the format version)
 *   u64      the model's fingerprint (model_fingerprint below)
 *   u32 x 6  n_vocab, n_layers, n_kv_heads, head_dim, KV type, n_tokens
 *   i32      tokens[n_tokens]
 *   for each layer: K head-rows of positions 0..n_tokens-1, then V's
 *            (n_tokens * pos_bytes bytes each, the cache's own format)
 *   u64      FNV-1a of every byte before it
 * Written through atomic_file (a crash leaves the old file or the new one).
 * The logits are not saved: after loading, evaluate at least one token.
 */
#include <errno.h>
#include <stdio.h>
#include <sys/stat.h>

#include "formats/atomic_file.h"
#include "model/context.h"

static const char MAGIC[8] = {'B', 'N', 'S', 'E', 'S', 'S', 0, 1};
enum { HEADER_BYTES = 8 + 8 + 6 * 4 };

static uint64_t fnv(uint64_t h, const void *p, size_t n) {
    const uint8_t *b = p;
    for (size_t i = 0; i < n; i++) h = (h ^ b[i]) * 0x100000001b3ULL;
    return h;
}
#define FNV_START 0xcbf29ce484222325ULL

static uint64_t fnv_matrix(uint64_t h, const bn_matrix *w) {
    const int32_t shape[3] = {(int32_t)w->type, w->rows, w->cols};
    h = fnv(h, shape, sizeof shape);
    h = fnv(h, &w->scale, sizeof w->scale);
    if (w->data && w->rows > 0) h = fnv(h, w->data, BN_MIN((size_t)256, bn_matrix_row_bytes(w)));
    return h;
}

/* The model's shape and a sample of its weights (the first bytes of every
 * matrix, the final norm): a session written for another model, or another
 * conversion of the same one, is refused instead of continuing garbage. */
static uint64_t model_fingerprint(const bitnet_model *m) {
    const bn_hparams *hp = &m->hp;
    const char *arch = bn_model_arch_name(m);
    uint64_t h = fnv(FNV_START, arch, strlen(arch));
    const int32_t dims[] = {hp->dim, hp->ff, hp->n_layers, hp->n_heads, hp->n_kv_heads, hp->head_dim, hp->rope_dim,
                            hp->vocab, hp->swa_window, hp->swa_pattern, hp->n_expert, hp->n_expert_used, hp->ff_exp};
    const float fl[] = {hp->norm_eps, hp->rope_theta, hp->rope_theta_swa};
    h = fnv(h, dims, sizeof dims);
    h = fnv(h, fl, sizeof fl);
    h = fnv_matrix(h, &m->tok_embd);
    h = fnv_matrix(h, &m->output);
    if (m->output_norm) h = fnv(h, m->output_norm, (size_t)hp->dim * sizeof(float));
    for (int l = 0; l < hp->n_layers; l++) {
        bn_matrix_iter it = {0, 0};
        for (const bn_matrix *W; (W = bn_layer_next_matrix(&m->layers[l], hp->n_expert, &it));) h = fnv_matrix(h, W);
    }
    return h;
}

static void put_u32(uint8_t *p, uint32_t v) { memcpy(p, &v, 4); }
static uint32_t get_u32(const uint8_t *p) {
    uint32_t v;
    memcpy(&v, p, 4);
    return v;
}

static void header(const bitnet_context *ctx, int n_tokens, uint8_t out[HEADER_BYTES]) {
    const bn_kv_cache *kv = &ctx->kv;
    const uint64_t fp = model_fingerprint(ctx->model);
    memcpy(out, MAGIC, 8);
    memcpy(out + 8, &fp, 8);
    const uint32_t f[6] = {(uint32_t)ctx->model->hp.vocab, (uint32_t)kv->n_layers, (uint32_t)kv->n_kv_heads,
                           (uint32_t)kv->head_dim, (uint32_t)kv->type, (uint32_t)n_tokens};
    for (int i = 0; i < 6; i++) put_u32(out + 16 + 4 * i, f[i]);
}

bitnet_status bitnet_state_seq_save_file(bitnet_context *ctx, int seq, const char *path, const bitnet_token *tokens,
                                         int n_tokens) {
    if (!ctx || !path || (!tokens && n_tokens > 0)) return bn_error(BITNET_ERR_ARG, "state_save_file: NULL argument");
    if (seq < 0 || seq >= ctx->n_seq)
        return bn_error(BITNET_ERR_ARG, "state_save_file: sequence %d outside 0..%d", seq, ctx->n_seq - 1);
    if (n_tokens < 0 || n_tokens > ctx->seq_n[seq])
        return bn_error(BITNET_ERR_ARG, "%s: %d tokens to save, but sequence %d holds %d positions", path, n_tokens, seq,
                        ctx->seq_n[seq]);
    bn_atomic_file f;
    bitnet_status st = bn_atomic_open(&f, path);
    if (st != BITNET_OK) return st;
    const bn_kv_cache *kv = &ctx->kv;
    const size_t bytes = (size_t)n_tokens * kv->pos_bytes;
    uint8_t head[HEADER_BYTES];
    header(ctx, n_tokens, head);
    uint64_t h = fnv(FNV_START, head, sizeof head);
    bn_atomic_write(&f, head, sizeof head);
    h = fnv(h, tokens, (size_t)n_tokens * sizeof *tokens);
    bn_atomic_write(&f, tokens, (uint64_t)n_tokens * sizeof *tokens);
    for (int l = 0; l < kv->n_layers; l++) {
        const uint8_t *k = bn_kv_row(kv, kv->k, seq, l, 0, 0), *v = bn_kv_row(kv, kv->v, seq, l, 0, 0);
        h = fnv(fnv(h, k, bytes), v, bytes);
        bn_atomic_write(&f, k, bytes);
        bn_atomic_write(&f, v, bytes);
    }
    bn_atomic_write(&f, &h, sizeof h);
    return bn_atomic_commit(&f);
}

/* Reads exactly n bytes into p and hashes them; 0, or -1 at a short read. */
static int read_hashed(FILE *fp, void *p, size_t n, uint64_t *h) {
    if (n && fread(p, 1, n, fp) != n) return -1;
    *h = fnv(*h, p, n);
    return 0;
}

static bitnet_status load(bitnet_context *ctx, int seq, const char *path, FILE *fp, bitnet_token *tokens,
                          int max_tokens, int *n_out) {
    bn_kv_cache *kv = &ctx->kv;
    struct stat sb;
    uint8_t got[HEADER_BYTES], want[HEADER_BYTES];
    if (fstat(fileno(fp), &sb) != 0 || fread(got, 1, sizeof got, fp) != sizeof got || memcmp(got, MAGIC, 8) != 0)
        return bn_error(BITNET_ERR_FORMAT, "%s: not a session file of this version (no BNSESS header)", path);
    const uint32_t n = get_u32(got + 36);
    header(ctx, (int)n, want);
    static const char *field[4] = {"n_vocab", "layers", "KV heads", "head size"};
    for (int i = 0; i < 4; i++) /* the shape first: the most telling message */
        if (get_u32(got + 16 + 4 * i) != get_u32(want + 16 + 4 * i))
            return bn_error(BITNET_ERR_ARG, "%s: written for another model (%s %u, this model's %u)", path, field[i],
                            get_u32(got + 16 + 4 * i), get_u32(want + 16 + 4 * i));
    if (memcmp(got + 8, want + 8, 8) != 0)
        return bn_error(BITNET_ERR_ARG, "%s: written for another model (its weights differ)", path);
    if (get_u32(got + 32) != (uint32_t)kv->type)
        return bn_error(BITNET_ERR_ARG, "%s: the session's KV cache is %s, this context's %s", path,
                        get_u32(got + 32) < BN_KV_N_TYPES ? bitnet_kv_type_name((bitnet_kv_type)get_u32(got + 32)) : "unknown",
                        bitnet_kv_type_name(kv->type));
    if (n > (uint32_t)ctx->n_ctx || n > (uint32_t)max_tokens)
        return bn_error(BITNET_ERR_ARG, "%s: %u tokens, more than %s (%d)", path, n,
                        n > (uint32_t)ctx->n_ctx ? "the context holds" : "the token buffer holds",
                        n > (uint32_t)ctx->n_ctx ? ctx->n_ctx : max_tokens);
    const size_t bytes = (size_t)n * kv->pos_bytes;
    const uint64_t size = HEADER_BYTES + (uint64_t)n * 4 + 2 * (uint64_t)kv->n_layers * bytes + 8;
    if ((uint64_t)sb.st_size != size)
        return bn_error(BITNET_ERR_FORMAT, "%s: %lld bytes, but its header describes %llu (truncated or damaged)", path,
                        (long long)sb.st_size, (unsigned long long)size);
    uint64_t h = fnv(FNV_START, got, sizeof got), stored = 0;
    /* from here the cache is being overwritten: any failure empties the sequence */
    bn_kv_seq_clear(kv, seq, 0, ctx->seq_n[seq]);
    ctx->seq_n[seq] = 0;
    int bad = read_hashed(fp, tokens, (size_t)n * sizeof *tokens, &h);
    for (int l = 0; l < kv->n_layers && !bad; l++)
        bad = read_hashed(fp, bn_kv_row(kv, kv->k, seq, l, 0, 0), bytes, &h) ||
              read_hashed(fp, bn_kv_row(kv, kv->v, seq, l, 0, 0), bytes, &h);
    if (bad || fread(&stored, 1, sizeof stored, fp) != sizeof stored) {
        bn_kv_seq_clear(kv, seq, 0, (int)n);
        return bn_error(BITNET_ERR_IO, "%s: read failed: %s", path, ferror(fp) ? strerror(errno) : "short file");
    }
    for (uint32_t i = 0; i < n; i++)
        if (tokens[i] < 0 || tokens[i] >= ctx->model->hp.vocab) bad = 1;
    if (stored != h || bad) {
        bn_kv_seq_clear(kv, seq, 0, (int)n);
        return bn_error(BITNET_ERR_FORMAT, "%s: checksum mismatch: the file is damaged", path);
    }
    ctx->seq_n[seq] = (int)n;
    *n_out = (int)n;
    return BITNET_OK;
}

bitnet_status bitnet_state_seq_load_file(bitnet_context *ctx, int seq, const char *path, bitnet_token *tokens,
                                         int max_tokens, int *n_tokens) {
    if (!ctx || !path || !tokens || !n_tokens) return bn_error(BITNET_ERR_ARG, "state_load_file: NULL argument");
    *n_tokens = 0;
    if (seq < 0 || seq >= ctx->n_seq)
        return bn_error(BITNET_ERR_ARG, "state_load_file: sequence %d outside 0..%d", seq, ctx->n_seq - 1);
    FILE *fp = fopen(path, "rb");
    if (!fp) return bn_error(BITNET_ERR_IO, "%s: %s", path, strerror(errno));
    bitnet_status st = load(ctx, seq, path, fp, tokens, max_tokens, n_tokens);
    fclose(fp);
    return st;
}

bitnet_status bitnet_state_save_file(bitnet_context *ctx, const char *path, const bitnet_token *tokens, int n_tokens) {
    return bitnet_state_seq_save_file(ctx, 0, path, tokens, n_tokens);
}

bitnet_status bitnet_state_load_file(bitnet_context *ctx, const char *path, bitnet_token *tokens, int max_tokens,
                                     int *n_tokens) {
    return bitnet_state_seq_load_file(ctx, 0, path, tokens, max_tokens, n_tokens);
}
