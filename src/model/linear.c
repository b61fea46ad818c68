/* linear.c - y = W x for every weight type, split by rows over the thread pool.
 *
 * Ternary (I2) weights take int8 activations: the float input is quantised
 * once per token (per-token absmax, as BitNet b1.58 defines it, or the ak42
 * variant with a weightless RMS norm in front), the kernel accumulates exact
 * int32 dot products, and a single scale multiply per output turns them back
 * into floats. Weights are never expanded to float. */
#include <math.h>

#include "model/ak42_math.h"
#include "model/context.h"

typedef struct {
    bitnet_context *ctx;
    const bn_matrix *W;
    const float *x;
    int n;
    float *y;
} linear_job;

/* Row range of thread ith: equal shares rounded to 16 rows so that the
 * kernels' multi-row tiles are not cut (the last thread takes the rest). */
static void thread_rows(int rows, int ith, int nth, int *r0, int *r1) {
    int per = (rows + nth - 1) / nth;
    per = (per + 15) & ~15;
    *r0 = BN_MIN(rows, ith * per);
    *r1 = BN_MIN(rows, *r0 + per);
}

/* Float and Q8_0 matrices have no multi-token kernel: for several tokens the
 * rows are walked in tiles small enough to stay in L2 while every token uses
 * them, so a batch still reads each weight from memory once. Tiles are a
 * multiple of every kernel's row group, so results do not depend on n.
 * One token takes its thread's whole row range in one call: the kernel's
 * row streams then run from end to end instead of restarting every 64 rows
 * (a 128256-row head is 2,000 restarts per token otherwise). */
#define ROW_TILE 64

static int row_tile(int n, int r0, int r1) { return n == 1 ? BN_MAX(r1 - r0, 1) : ROW_TILE; }

/* Thread ith's rows in tiles (row_tile), every token per tile: fn(j, rb, re, t)
 * multiplies rows rb..re-1 with token t. Float, Q8_0 and K-quant matrices. */
typedef void (*tile_fn)(const linear_job *j, int rb, int re, int t);

static void walk_tiles(const linear_job *j, int ith, int nth, tile_fn fn) {
    int r0, r1;
    thread_rows(j->W->rows, ith, nth, &r0, &r1);
    const int tile = row_tile(j->n, r0, r1);
    for (int rb = r0; rb < r1; rb += tile) {
        const int re = BN_MIN(r1, rb + tile);
        for (int t = 0; t < j->n; t++) fn(j, rb, re, t);
    }
}

static void float_tile(const linear_job *j, int rb, int re, int t) {
    const bn_matrix *W = j->W;
    const float *x = j->x + (size_t)t * W->cols;
    float *y = j->y + (size_t)t * W->rows + rb;
    if (W->type == BN_W_F32)
        j->ctx->kern->f32_gemv(re - rb, W->cols, (const float *)W->data + (size_t)rb * W->cols, x, y);
    else
        j->ctx->kern->f16_gemv(re - rb, W->cols, (const uint16_t *)W->data + (size_t)rb * W->cols, x, y);
}

static void run_float(void *arg, int ith, int nth) { walk_tiles(arg, ith, nth, float_tile); }

/* Q4_K and Q6_K (the embeddings and heads of llama.cpp's files): their own
 * kernels with Q8_K activations, as llama.cpp computes them. */
static int has_k_kernel(const bn_matrix *W) { return W->quant == BN_QUANT_Q4_K || W->quant == BN_QUANT_Q6_K; }

static void kq_tile(const linear_job *j, int rb, int re, int t) {
    const bn_matrix *W = j->W;
    bitnet_context *ctx = j->ctx;
    (W->quant == BN_QUANT_Q6_K ? ctx->kern->q6_k_gemv : ctx->kern->q4_k_gemv)(
        re - rb, W->cols, (const uint8_t *)W->data + (size_t)rb * bn_quant_row_bytes(W), ctx->xq + (size_t)t * ctx->max_cols,
        ctx->xq_f + (size_t)t * (W->cols / BN_QK_K), ctx->xq_bsum + (size_t)t * (W->cols / 16),
        j->y + (size_t)t * W->rows + rb);
}

static void run_kq(void *arg, int ith, int nth) { walk_tiles(arg, ith, nth, kq_tile); }

/* The other block-quantised float formats (Q4_0, Q5_0, Q5_K, BF16): each row is dequantised
 * once into this thread's scratch and multiplied with every token, so the
 * weights are read once per batch as for the other types. */
static void run_quant(void *arg, int ith, int nth) {
    linear_job *j = arg;
    const bn_matrix *W = j->W;
    bitnet_context *ctx = j->ctx;
    float *row = ctx->deq_row + (size_t)ith * ctx->max_cols;
    const size_t rb = bn_quant_row_bytes(W);
    int r0, r1;
    thread_rows(W->rows, ith, nth, &r0, &r1);
    for (int r = r0; r < r1; r++) {
        bn_dequant_row(W->quant, (const uint8_t *)W->data + (size_t)r * rb, W->cols, row);
        for (int t = 0; t < j->n; t++)
            ctx->kern->f32_gemv(1, W->cols, row, j->x + (size_t)t * W->cols, j->y + (size_t)t * W->rows + r);
    }
}

static void q8_tile(const linear_job *j, int rb, int re, int t) {
    const bn_matrix *W = j->W;
    bitnet_context *ctx = j->ctx;
    const int nb = W->cols / BN_Q8_BLOCK;
    ctx->kern->q8_0_gemv(re - rb, W->cols, (const bn_block_q8_0 *)W->data + (size_t)rb * nb,
                         ctx->xq + (size_t)t * ctx->max_cols, ctx->xq_f + (size_t)t * nb, j->y + (size_t)t * W->rows + rb);
}

static void run_q8(void *arg, int ith, int nth) { walk_tiles(arg, ith, nth, q8_tile); }

/* I2 with a scale per block (TQ files whose block scales differ): the data is
 * block-major, so each block of columns is a matrix of its own for the GEMV
 * kernel; its int32 sums are scaled and added per row. */
static void run_i2_blocks(linear_job *j, int r0, int r1) {
    const bn_matrix *W = j->W;
    bitnet_context *ctx = j->ctx;
    const int bc = W->block_cols, nb = W->cols / bc, cp = W->cols_padded;
    for (int t = 0; t < j->n; t++) {
        int32_t *acc = ctx->acc + (size_t)t * W->rows;
        float *y = j->y + (size_t)t * W->rows;
        for (int r = r0; r < r1; r++) y[r] = 0.0f;
        for (int b = 0; b < nb; b++) {
            const uint8_t *w = (const uint8_t *)W->data + ((size_t)b * W->rows + r0) * (size_t)(bc / 4);
            ctx->kern->i2_gemv(r1 - r0, bc, w, ctx->xq + (size_t)t * cp + (size_t)b * bc, acc + r0);
            for (int r = r0; r < r1; r++) y[r] += (float)acc[r] * W->block_scales[(size_t)r * nb + b];
        }
        for (int r = r0; r < r1; r++) y[r] *= ctx->xq_f[t];
    }
}

static void run_i2(void *arg, int ith, int nth) {
    linear_job *j = arg;
    const bn_matrix *W = j->W;
    bitnet_context *ctx = j->ctx;
    int r0, r1;
    thread_rows(W->rows, ith, nth, &r0, &r1);
    if (r0 >= r1) return;
    if (W->block_scales) {
        run_i2_blocks(j, r0, r1);
        return;
    }
    const int cp = W->cols_padded;
    const uint8_t *w = (const uint8_t *)W->data + (size_t)r0 * (cp / 4);
    int32_t *acc = ctx->acc;
    if (j->n == 1)
        ctx->kern->i2_gemv(r1 - r0, cp, w, ctx->xq, acc + r0);
    else
        ctx->kern->i2_gemm(r1 - r0, cp, w, j->n, ctx->xq, acc + r0, W->rows);
    for (int t = 0; t < j->n; t++) {
        const int32_t *a = acc + (size_t)t * W->rows;
        float *y = j->y + (size_t)t * W->rows;
        if (bn_model_has(ctx->model, BN_AF_AK42)) {
            bn_ak42_dequant(a + r0, r1 - r0, ctx->ak_act[t], W->scale, W->cols, y + r0);
        } else {
            const float f = ctx->xq_f[t] * W->scale;
            for (int r = r0; r < r1; r++) y[r] = (float)a[r] * f;
        }
    }
}

/* Activation quantisation of tokens r0..r1-1 (per token, so the pool may
 * split a prompt's tokens over its threads). */
static void quantize_i2_rows(void *arg, int r0, int r1) {
    const linear_job *j = arg;
    const bn_matrix *W = j->W;
    bitnet_context *ctx = j->ctx;
    const int cp = W->cols_padded;
    for (int t = r0; t < r1; t++) {
        int8_t *q = ctx->xq + (size_t)t * cp;
        const float *xt = j->x + (size_t)t * W->cols;
        if (bn_model_has(ctx->model, BN_AF_AK42)) {
            ctx->ak_act[t] = bn_ak42_quantize(xt, W->cols, q);
            memset(q + W->cols, 0, (size_t)(cp - W->cols));
        } else {
            ctx->xq_f[t] = ctx->kern->quantize_i8(xt, W->cols, cp, q); /* absmax/127 */
        }
    }
}

static void quantize_q8k_rows(void *arg, int r0, int r1) {
    const linear_job *j = arg;
    const int cols = j->W->cols;
    bitnet_context *ctx = j->ctx;
    for (int t = r0; t < r1; t++)
        bn_quantize_q8_k_act(ctx->kern, j->x + (size_t)t * cols, cols, ctx->xq + (size_t)t * ctx->max_cols,
                             ctx->xq_f + (size_t)t * (cols / BN_QK_K), ctx->xq_bsum + (size_t)t * (cols / 16));
}

static void quantize_q8_rows(void *arg, int r0, int r1) {
    const linear_job *j = arg;
    const int cols = j->W->cols, nb = cols / BN_Q8_BLOCK;
    bitnet_context *ctx = j->ctx;
    for (int t = r0; t < r1; t++)
        bn_quantize_q8_0_act(j->x + (size_t)t * cols, cols, ctx->xq + (size_t)t * ctx->max_cols,
                             ctx->xq_f + (size_t)t * nb);
}

/* Below this many weight-token products a matmul runs on the calling thread:
 * waking the pool costs more than it saves (tiny models, small projections). */
#define PARALLEL_MIN_WORK (1 << 17)

static void run(bitnet_context *ctx, bn_pool_fn fn, linear_job *job) {
    if ((int64_t)job->W->rows * job->W->cols * job->n < PARALLEL_MIN_WORK)
        fn(job, 0, 1);
    else
        bn_pool_run(ctx->pool, fn, job);
}

void bn_linear(bitnet_context *ctx, const bn_matrix *W, const float *x, int n, float *y) {
    bn_linear_ex(ctx, W, x, n, y, 0);
}

void bn_linear_ex(bitnet_context *ctx, const bn_matrix *W, const float *x, int n, float *y, int reuse) {
    linear_job job = {ctx, W, x, n, y};
    BN_ASSERT(n >= 1 && n <= ctx->n_batch);
    switch (W->type) {
    case BN_W_F32:
    case BN_W_F16:
        run(ctx, run_float, &job);
        break;
    case BN_W_QUANT:
        if (has_k_kernel(W)) {
            bn_pool_rows(ctx->pool, n, W->cols, quantize_q8k_rows, &job);
            run(ctx, run_kq, &job);
        } else {
            run(ctx, run_quant, &job);
        }
        break;
    case BN_W_Q8_0:
        bn_pool_rows(ctx->pool, n, W->cols, quantize_q8_rows, &job);
        run(ctx, run_q8, &job);
        break;
    case BN_W_I2:
        if (!reuse) bn_pool_rows(ctx->pool, n, W->cols, quantize_i2_rows, &job);
        run(ctx, run_i2, &job);
        break;
    }
}
