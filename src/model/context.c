/* context.c - context creation: one arena for the KV cache and activations. */
#include "model/context.h"

#include <errno.h>
#include <math.h>

#include "model/ak42_math.h"
#include "os.h"

bitnet_context_params bitnet_context_default_params(void) {
    bitnet_context_params p;
    memset(&p, 0, sizeof p);
    p.n_ctx = 512;
    p.n_batch = 64;
    p.n_threads = 1;
    p.kv_type = BITNET_KV_DEFAULT;
    p.n_seq = 1;
    return p;
}

/* Bump allocator over the arena: 64-byte aligned slices. */
typedef struct {
    uint8_t *base;
    size_t used, cap;
} carver;

static void *carve(carver *c, size_t bytes) {
    size_t off = (c->used + 63) & ~(size_t)63;
    if (c->base) BN_ASSERT(off + bytes <= c->cap);
    c->used = off + bytes;
    return c->base ? c->base + off : NULL;
}

static int matrix_cols(const bn_matrix *w) { return w->type == BN_W_I2 ? w->cols_padded : w->cols; }

/* Lays out (or, with c->base == NULL, only measures) every buffer. */
static void layout(bitnet_context *ctx, carver *c) {
    const bitnet_model *m = ctx->model;
    const bn_hparams *hp = &m->hp;
    const size_t B = (size_t)ctx->n_batch, kv_dim = (size_t)hp->n_kv_heads * hp->head_dim;
    const size_t q_dim = (size_t)hp->n_heads * hp->head_dim, dq = BN_MAX((size_t)hp->dim, q_dim);
    const size_t ff = (size_t)BN_MAX(hp->ff, hp->ff_exp);
    const size_t wide = BN_MAX(dq, ff);
    const int nth = ctx->params.n_threads;

    const size_t kv_bytes = bn_kv_init(&ctx->kv, ctx->params.kv_type, ctx->n_seq, hp->n_layers, ctx->n_ctx,
                                       hp->n_kv_heads, hp->head_dim, ctx->kern);
    ctx->kv.k = carve(c, kv_bytes);
    ctx->kv.v = carve(c, kv_bytes);
    ctx->kv_scratch_bytes = bn_kv_scratch_bytes(hp->head_dim);
    ctx->kv_scratch = carve(c, (size_t)nth * ctx->kv_scratch_bytes);
    ctx->tok_pos = carve(c, B * sizeof(int));
    ctx->tok_seq = carve(c, B * sizeof(int));
    ctx->seq_last = carve(c, (size_t)ctx->n_seq * sizeof(int));
    ctx->seq_n = carve(c, (size_t)ctx->n_seq * sizeof(int));
    if (ctx->n_seq > 1) ctx->head_out = carve(c, (size_t)ctx->n_seq * hp->vocab * sizeof(float));
    ctx->x = carve(c, B * hp->dim * sizeof(float));
    ctx->xb = carve(c, B * wide * sizeof(float));
    ctx->xb2 = carve(c, B * dq * sizeof(float));
    ctx->q = carve(c, B * dq * sizeof(float));
    ctx->k = carve(c, B * kv_dim * sizeof(float));
    ctx->v = carve(c, B * kv_dim * sizeof(float));
    ctx->hb = carve(c, B * ff * sizeof(float));
    ctx->hb2 = carve(c, B * ff * sizeof(float));
    if (hp->n_expert) {
        const size_t k = (size_t)hp->n_expert_used;
        ctx->moe_logits = carve(c, B * hp->n_expert * sizeof(float));
        ctx->moe_sel = carve(c, B * k * sizeof(int));
        ctx->moe_w = carve(c, B * k * sizeof(float));
        ctx->moe_tok = carve(c, B * sizeof(int));
        ctx->moe_slot = carve(c, B * sizeof(int));
        ctx->moe_in = carve(c, B * hp->dim * sizeof(float));
        ctx->moe_out = carve(c, B * k * hp->dim * sizeof(float));
    }
    ctx->att = carve(c, (size_t)nth * ctx->n_ctx * sizeof(float));
    ctx->logits = carve(c, (size_t)ctx->n_seq * hp->vocab * sizeof(float));
    ctx->rope_cos = carve(c, (size_t)ctx->n_ctx * (hp->rope_dim / 2) * sizeof(float));
    ctx->rope_sin = carve(c, (size_t)ctx->n_ctx * (hp->rope_dim / 2) * sizeof(float));
    if (hp->swa_window > 0) {
        ctx->rope_cos_swa = carve(c, (size_t)ctx->n_ctx * (hp->rope_dim / 2) * sizeof(float));
        ctx->rope_sin_swa = carve(c, (size_t)ctx->n_ctx * (hp->rope_dim / 2) * sizeof(float));
    }
    if (bn_model_has(m, BN_AF_AK42)) {
        ctx->ak_act = carve(c, B * sizeof(double));
        ctx->ak_rope = carve(c, (size_t)ctx->n_ctx * hp->head_dim * sizeof(double));
        ctx->ak_scratch = carve(c, (size_t)nth * ctx->n_ctx * sizeof(double));
    }
    ctx->xq = carve(c, B * ctx->max_cols + 64);
    ctx->xq_f = carve(c, B * (ctx->max_cols / BN_Q8_BLOCK + 1) * sizeof(float));
    ctx->acc = carve(c, B * ctx->max_rows * sizeof(int32_t));
    if (ctx->has_quant) ctx->deq_row = carve(c, (size_t)nth * ctx->max_cols * sizeof(float));
    if (ctx->has_quant) ctx->xq_bsum = carve(c, B * (ctx->max_cols / 16) * sizeof(int16_t));
}

/* KV cache type when the caller asks for the default (docs/kv-cache.md):
 * f16 (half the memory of f32; stories260K still reproduces its greedy
 * reference byte for byte with it), except for ak42, whose reference is
 * byte-exact only with a float32 cache (ak42_math.h). */
static bitnet_kv_type default_kv_type(const bitnet_model *m) {
    return bn_model_has(m, BN_AF_AK42) ? BITNET_KV_F32 : BITNET_KV_F16;
}

/* The arena: explicit huge pages when it is at least one huge page and the
 * system has them reserved, else ordinary pages with a transparent-huge-page
 * hint (bn_os_alloc_pages falls back silently). NULL on failure. */
static void *map_arena(bitnet_context *ctx) {
    const size_t huge = (size_t)2 << 20;
    const int big = ctx->arena_size >= huge;
    ctx->arena_mapped = big ? (ctx->arena_size + huge - 1) & ~(huge - 1) : ctx->arena_size;
    return bn_os_alloc_pages(ctx->arena_mapped, big, &ctx->arena_hugetlb);
}

/* cos/sin of pos * theta^(-i/rope_dim), i even, with the same float
 * expressions as llama2.c. */
static void rope_table(float *cos_t, float *sin_t, int n_ctx, int rope_dim, float theta) {
    const int half = rope_dim / 2;
    for (int pos = 0; pos < n_ctx; pos++) {
        for (int i = 0; i < rope_dim; i += 2) {
            float freq = 1.0f / powf(theta, (float)i / (float)rope_dim);
            float val = (float)pos * freq;
            cos_t[(size_t)pos * half + i / 2] = cosf(val);
            sin_t[(size_t)pos * half + i / 2] = sinf(val);
        }
    }
}

static void max_shape(bitnet_context *ctx, const bn_matrix *w) {
    ctx->has_quant |= w->type == BN_W_QUANT;
    ctx->max_cols = BN_MAX(ctx->max_cols, matrix_cols(w));
    ctx->max_rows = BN_MAX(ctx->max_rows, w->rows);
}

bitnet_status bitnet_context_new(bitnet_model *model, const bitnet_context_params *params,
                                 bitnet_context **out) {
    *out = NULL;
    if (!model) return bn_error(BITNET_ERR_ARG, "context: model is NULL");
    bitnet_context_params p = params ? *params : bitnet_context_default_params();
    if (p.n_ctx <= 0) p.n_ctx = 512;
    if (p.n_batch <= 0) p.n_batch = 64;
    if (p.n_threads <= 0) p.n_threads = 1;
    if (p.n_seq <= 0) p.n_seq = 1;
    if (p.n_seq > BN_MAX_SEQ) return bn_error(BITNET_ERR_ARG, "context: %d sequences requested, at most %d", p.n_seq, BN_MAX_SEQ);
    if (p.n_ctx > 1 << 20) return bn_error(BITNET_ERR_ARG, "--ctx-size %d is too large", p.n_ctx);
    if (p.kv_type == BITNET_KV_DEFAULT) p.kv_type = default_kv_type(model);
    if ((int)p.kv_type < 0 || (int)p.kv_type >= BN_KV_N_TYPES)
        return bn_error(BITNET_ERR_ARG, "context: unknown KV cache type %d (f32, f16, q8, q4, q2)", (int)p.kv_type);
    if (p.n_batch > p.n_ctx) p.n_batch = p.n_ctx;
    if (p.n_batch < p.n_seq) p.n_batch = p.n_seq; /* one token of every sequence fits in a step */
    /* A spinning pool with more threads than cores makes every matmul wait for
     * a descheduled thread: cap the count at the online CPUs. */
    const int n_cpu = bn_os_cpu_count();
    if (n_cpu > 0 && p.n_threads > n_cpu) {
        bn_warn("warning: %d threads requested but %d CPUs are online; using %d", p.n_threads, n_cpu, n_cpu);
        p.n_threads = n_cpu;
    }

    bitnet_context *ctx = calloc(1, sizeof *ctx);
    if (!ctx) return bn_error(BITNET_ERR_NOMEM, "context: out of memory");
    ctx->model = model;
    ctx->params = p;
    ctx->n_ctx = p.n_ctx;
    ctx->n_batch = p.n_batch;
    ctx->n_seq = p.n_seq;
    ctx->kern = bn_kernels_get();

    const bn_hparams *hp = &model->hp;
    for (int l = 0; l < hp->n_layers; l++) {
        bn_matrix_iter it = {0, 0};
        for (const bn_matrix *W; (W = bn_layer_next_matrix(&model->layers[l], hp->n_expert, &it));) max_shape(ctx, W);
    }
    max_shape(ctx, &model->output);
    ctx->max_cols = (ctx->max_cols + 127) & ~127;

    carver c = {NULL, 0, 0};
    layout(ctx, &c);
    ctx->arena_size = c.used;
    void *mem = map_arena(ctx);
    if (!mem) {
        free(ctx);
        return bn_error(BITNET_ERR_NOMEM, "context: cannot allocate %zu bytes for --ctx-size %d",
                        c.used, p.n_ctx);
    }
    ctx->arena = mem;
    ctx->arena_is_mmap = 1;
    c = (carver){ctx->arena, 0, ctx->arena_size};
    layout(ctx, &c);

    /* RoPE tables (ak42 uses its own double table below instead) */
    const int ak42 = bn_model_has(model, BN_AF_AK42);
    if (!ak42) rope_table(ctx->rope_cos, ctx->rope_sin, ctx->n_ctx, hp->rope_dim, hp->rope_theta);
    if (!ak42 && ctx->rope_cos_swa) rope_table(ctx->rope_cos_swa, ctx->rope_sin_swa, ctx->n_ctx, hp->rope_dim, hp->rope_theta_swa);
    if (ak42)
        for (int pos = 0; pos < ctx->n_ctx; pos++)
            bn_ak42_rope_table(pos, hp->head_dim, ctx->ak_rope + (size_t)pos * hp->head_dim);

    bitnet_status st = bn_pool_new(p.n_threads, p.cpu_affinity, &ctx->pool);
    if (st != BITNET_OK) {
        bn_os_unmap(ctx->arena, ctx->arena_mapped);
        free(ctx);
        return st;
    }
    int e;
    if (p.use_mlock && (e = bn_os_lock(ctx->arena, ctx->arena_mapped)) != 0) {
        bn_warn("warning: cannot lock the %.1f MiB context arena in RAM (%s%s); continuing unlocked",
                ctx->arena_mapped / 1048576.0, strerror(e),
                e == ENOMEM || e == EPERM ? ": RLIMIT_MEMLOCK too low, see ulimit -l" : "");
    }
    *out = ctx;
    return BITNET_OK;
}

void bitnet_context_free(bitnet_context *ctx) {
    if (!ctx) return;
    bn_pool_free(ctx->pool);
    if (ctx->arena) bn_os_unmap(ctx->arena, ctx->arena_mapped);
    free(ctx);
}

void bitnet_context_set_layer_hook(bitnet_context *ctx, bitnet_layer_hook hook, void *user) {
    ctx->layer_hook = hook;
    ctx->layer_hook_user = hook ? user : NULL;
}
void bitnet_context_set_skip_layers(bitnet_context *ctx, const uint8_t *skip) { ctx->skip_layer = skip; }
const bitnet_model *bitnet_get_model(const bitnet_context *ctx) { return ctx->model; }
int bitnet_n_seq(const bitnet_context *ctx) { return ctx->n_seq; }

int bitnet_n_ctx(const bitnet_context *ctx) { return ctx->n_ctx; }
bitnet_kv_type bitnet_context_kv_type(const bitnet_context *ctx) { return ctx->kv.type; }
size_t bitnet_context_kv_bytes(const bitnet_context *ctx) {
    return 2 * (size_t)ctx->kv.n_seq * ctx->kv.n_layers * ctx->kv.n_ctx * ctx->kv.pos_bytes;
}
const char *bitnet_isa_name(void) { return bn_kernels_get()->isa; }
