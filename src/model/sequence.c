/*
 * sequence.c - what a caller does with the KV cache's sequences besides
 * evaluating into them (llama.cpp's llama_memory_seq_*): copy a prefix to
 * another sequence, remove a range (a tail, or a middle range whose later
 * keys move down and are re-rotated: the context shift), keep one sequence.
 *
 * A position is a slot: sequence s holds positions 0..seq_n[s]-1, contiguous,
 * which bn_forward sets (a sequence ends at its last evaluated token).
 */
#include <stdlib.h>

#include "model/context.h"

static bitnet_status check_seq(const bitnet_context *ctx, const char *what, int seq) {
    if (seq < 0 || seq >= ctx->n_seq)
        return bn_error(BITNET_ERR_ARG, "%s: sequence %d outside 0..%d", what, seq, ctx->n_seq - 1);
    return BITNET_OK;
}

bitnet_status bitnet_seq_cp(bitnet_context *ctx, int src, int dst, int p0, int p1) {
    if (!ctx) return bn_error(BITNET_ERR_ARG, "seq_cp: NULL context");
    if (src < 0 || src >= ctx->n_seq || dst < 0 || dst >= ctx->n_seq || src == dst)
        return bn_error(BITNET_ERR_ARG, "seq_cp: sequences %d -> %d: need two different ones in 0..%d", src, dst,
                        ctx->n_seq - 1);
    if (p1 < 0) p1 = ctx->seq_n[src];
    if (p0 < 0 || p1 < p0 || p1 > ctx->n_ctx)
        return bn_error(BITNET_ERR_ARG, "seq_cp: positions [%d, %d) outside [0, %d]", p0, p1, ctx->n_ctx);
    if (p0 > ctx->seq_n[dst])
        return bn_error(BITNET_ERR_ARG, "seq_cp: sequence %d holds %d positions; copying [%d, %d) would leave a gap",
                        dst, ctx->seq_n[dst], p0, p1);
    bn_kv_seq_copy(&ctx->kv, src, dst, p0, p1);
    if (p1 > ctx->seq_n[dst]) ctx->seq_n[dst] = p1;
    return BITNET_OK;
}

/* Positions [p1, n) of seq move to [p1 - d, n - d), d = p1 - p0, each key
 * re-rotated for its new position; the vacated tail is zeroed. Rows go
 * through float (dequantise, rotate, quantise), as llama.cpp's K-shift does. */
static bitnet_status shift_down(bitnet_context *ctx, int seq, int p0, int p1, int n) {
    bn_kv_cache *kv = &ctx->kv;
    const int d = p1 - p0, hd = kv->head_dim, kv_dim = kv->n_kv_heads * hd;
    float *k = malloc((size_t)kv_dim * sizeof *k);
    double *scratch = malloc((size_t)hd * sizeof *scratch);
    if (!k || !scratch) {
        free(k);
        free(scratch);
        return bn_error(BITNET_ERR_NOMEM, "seq_rm: out of memory");
    }
    for (int l = 0; l < kv->n_layers; l++)
        for (int p = p1; p < n; p++) {
            for (int h = 0; h < kv->n_kv_heads; h++)
                bn_kv_dequantize_row(kv->type, bn_kv_row(kv, kv->k, seq, l, p, h), hd, k + (size_t)h * hd);
            bn_rope_shift_keys(ctx, l, k, d, scratch);
            for (int h = 0; h < kv->n_kv_heads; h++)
                bn_kv_quantize_row(kv->type, k + (size_t)h * hd, hd, bn_kv_row(kv, kv->k, seq, l, p - d, h));
            memcpy(bn_kv_row(kv, kv->v, seq, l, p - d, 0), bn_kv_row(kv, kv->v, seq, l, p, 0), kv->pos_bytes);
        }
    free(k);
    free(scratch);
    bn_kv_seq_clear(kv, seq, n - d, n);
    return BITNET_OK;
}

bitnet_status bitnet_seq_rm(bitnet_context *ctx, int seq, int p0, int p1) {
    if (!ctx) return bn_error(BITNET_ERR_ARG, "seq_rm: NULL context");
    bitnet_status st = check_seq(ctx, "seq_rm", seq);
    if (st != BITNET_OK) return st;
    const int n = ctx->seq_n[seq];
    if (p1 < 0) p1 = BN_MAX(n, p0);
    if (p0 < 0 || p0 > p1 || p1 > ctx->n_ctx)
        return bn_error(BITNET_ERR_ARG, "seq_rm: positions [%d, %d) outside [0, %d]", p0, p1, ctx->n_ctx);
    if (p0 >= n) return BITNET_OK; /* nothing there */
    if (p1 >= n) {                 /* a tail: zeroed so that nothing stale can be read */
        bn_kv_seq_clear(&ctx->kv, seq, p0, n);
        ctx->seq_n[seq] = p0;
        return BITNET_OK;
    }
    if (p0 == p1) return BITNET_OK;
    if ((st = shift_down(ctx, seq, p0, p1, n)) != BITNET_OK) return st;
    ctx->seq_n[seq] = n - (p1 - p0);
    return BITNET_OK;
}

bitnet_status bitnet_seq_keep(bitnet_context *ctx, int seq) {
    if (!ctx) return bn_error(BITNET_ERR_ARG, "seq_keep: NULL context");
    bitnet_status st = check_seq(ctx, "seq_keep", seq);
    if (st != BITNET_OK) return st;
    for (int s = 0; s < ctx->n_seq; s++)
        if (s != seq) {
            bn_kv_seq_clear(&ctx->kv, s, 0, ctx->seq_n[s]);
            ctx->seq_n[s] = 0;
        }
    return BITNET_OK;
}

int bitnet_seq_n_pos(const bitnet_context *ctx, int seq) {
    return ctx && seq >= 0 && seq < ctx->n_seq ? ctx->seq_n[seq] : -1;
}
