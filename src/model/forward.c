/* forward.c - the transformer forward pass over a batch of tokens.
 *
 * One function reads like llama2.c's forward(): embed, then per layer
 * attention and feed-forward with residual adds, then the final norm and the
 * classifier. The architectures of arch.h differ only in small places, each
 * marked with its flag:
 *
 *   llama        x += Wo·attn(RoPE(Wq·n(x)), RoPE(Wk·n(x)), Wv·n(x))
 *                x += Wdown·(silu(Wgate·n(x)) * Wup·n(x))           n = RMSNorm with weights
 *   bitnet-b1.58 BN_AF_SUB_NORMS: the attention output goes through attn_sub_norm
 *                before Wo, the FFN product through ffn_sub_norm before Wdown; the
 *                gate is relu(gate)^2 (llama.cpp's "bitnet": SiLU); ternary linears
 *                quantise activations to int8 (linear.c); neox RoPE.
 *   qwen3        BN_AF_QK_NORM: each head of q and k is RMS-normalised (attn_q_norm,
 *                attn_k_norm) before RoPE.
 *   gemma3       as qwen3, plus BN_AF_EMBD_SCALE (embedding * sqrt(dim)),
 *                BN_AF_POST_NORMS (Wo and Wdown outputs normalised before the
 *                residual add), a GELU gate, and BN_AF_SWA: sliding-window layers
 *                with their own RoPE base.
 *   ak42         BN_AF_AK42: no per-layer norms; every ternary linear normalises its
 *                own input (weightless RMS, no eps) before int8 quantisation, in
 *                double arithmetic (ak42_math.h).
 *
 * Float arithmetic deliberately follows llama2.c (sequential float sums,
 * expf/sqrtf in float): the reference outputs in ../shared were produced that
 * way, and greedy decoding is sensitive to last-bit differences. */
#include <math.h>

#include "model/ak42_math.h"
#include "model/context.h"

static void rmsnorm(float *o, const float *x, const float *w, int n, float eps) {
    float ss = 0.0f;
    for (int j = 0; j < n; j++) ss += x[j] * x[j];
    ss /= (float)n;
    ss += eps;
    ss = 1.0f / sqrtf(ss);
    for (int j = 0; j < n; j++) o[j] = w[j] * (ss * x[j]);
}

/* ---- per-token work, split over the pool by rows ----
 * Norms, RoPE, activations and residual adds are independent per token (row):
 * in a prompt of many tokens they run on every thread (bn_pool_rows), one
 * token runs them on the caller. The split never changes a result. */

typedef struct {
    float *o;
    const float *x, *w;
    int len;
    float eps;
} norm_job;

static void norm_rows_fn(void *arg, int r0, int r1) {
    const norm_job *j = arg;
    for (int t = r0; t < r1; t++) rmsnorm(j->o + (size_t)t * j->len, j->x + (size_t)t * j->len, j->w, j->len, j->eps);
}

/* RMSNorm of n rows of `len` floats each, in place or from x to o. */
static void rmsnorm_rows(bitnet_context *ctx, float *o, const float *x, const float *w, int n, int len, float eps) {
    norm_job j = {o, x, w, len, eps};
    bn_pool_rows(ctx->pool, n, len, norm_rows_fn, &j);
}

typedef struct {
    float *x;
    const float *y;
    int len;
} add_job;

static void add_rows_fn(void *arg, int r0, int r1) {
    const add_job *j = arg;
    for (size_t i = (size_t)r0 * j->len; i < (size_t)r1 * j->len; i++) j->x[i] += j->y[i];
}

/* The residual add x += y over n rows of len floats. */
static void add_rows(bitnet_context *ctx, float *x, const float *y, int n, int len) {
    add_job j = {x, y, len};
    bn_pool_rows(ctx->pool, n, len, add_rows_fn, &j);
}

/* RoPE on one head vector. Frequency i/2 turns the pair (v[i], v[i+1]) in the
 * interleaved layout (llama2.c, ggml "normal"), or (v[i/2], v[i/2 + rope_dim/2])
 * in the neox layout (Hugging Face rotate_half; llama.cpp/bitnet.cpp BitNet). */
static void rope_head(float *v, const float *cosv, const float *sinv, int rope_dim, int neox) {
    const int half = rope_dim / 2;
    for (int i = 0; i < rope_dim; i += 2) {
        float c = cosv[i / 2], s = sinv[i / 2];
        const int a = neox ? i / 2 : i, b = neox ? i / 2 + half : i + 1;
        float v0 = v[a], v1 = v[b];
        v[a] = v0 * c - v1 * s;
        v[b] = v0 * s + v1 * c;
    }
}

/* Turns the keys k[n_kv_heads][head_dim] of layer `layer`, rotated for
 * position p, to position p - d (bitnet_seq_rm of a middle range moves the
 * later keys down by d). Every RoPE angle is the position times a per-pair
 * frequency, so rotating by the angles of -d (cos d, -sin d) composes.
 * scratch holds head_dim doubles. */
void bn_rope_shift_keys(const bitnet_context *ctx, int layer, float *k, int d, double *scratch) {
    const bitnet_model *m = ctx->model;
    const bn_hparams *hp = &m->hp;
    const int hd = hp->head_dim;
    if (bn_model_has(m, BN_AF_AK42)) {
        double *cs = scratch;
        memcpy(cs, ctx->ak_rope + (size_t)d * hd, (size_t)hd * sizeof(double));
        for (int i = 1; i < hd; i += 2) cs[i] = -cs[i];
        bn_ak42_rope(k, hp->n_kv_heads, hd, cs);
        return;
    }
    const int half = hp->rope_dim / 2, swa = bn_layer_is_swa(hp, layer);
    const float *cosv = (swa ? ctx->rope_cos_swa : ctx->rope_cos) + (size_t)d * half;
    const float *sinv = (swa ? ctx->rope_sin_swa : ctx->rope_sin) + (size_t)d * half;
    float *neg_sin = (float *)scratch;
    for (int i = 0; i < half; i++) neg_sin[i] = -sinv[i];
    for (int h = 0; h < hp->n_kv_heads; h++)
        rope_head(k + (size_t)h * hd, cosv, neg_sin, hp->rope_dim, bn_model_has(m, BN_AF_ROPE_NEOX));
}

/* gelu with the tanh approximation, as Gemma's gelu_pytorch_tanh and ggml's gelu */
static float gelu_tanh(float x) {
    const float sqrt_2_over_pi = 0.79788456080286535588f;
    return 0.5f * x * (1.0f + tanhf(sqrt_2_over_pi * x * (1.0f + 0.044715f * x * x)));
}

typedef struct {
    bitnet_context *ctx;
    int layer, n;
} attn_job;

/* Causal attention for every (token, head) pair; pairs are split over threads.
 * The arithmetic over the cache (and its formats) lives in kv_cache.c. */
static void run_attention(void *arg, int ith, int nth) {
    attn_job *j = arg;
    bitnet_context *ctx = j->ctx;
    const bn_hparams *hp = &ctx->model->hp;
    const int hd = hp->head_dim, q_dim = hp->n_heads * hd, group = hp->n_heads / hp->n_kv_heads;
    const int window = bn_layer_is_swa(hp, j->layer) ? hp->swa_window : 0;
    float *att = ctx->att + (size_t)ith * ctx->n_ctx;
    void *scratch = ctx->kv_scratch + (size_t)ith * ctx->kv_scratch_bytes;
    const int total = j->n * hp->n_heads;
    for (int w = ith; w < total; w += nth) {
        const int t = w / hp->n_heads, h = w % hp->n_heads;
        const int n_pos = ctx->tok_pos[t] + 1, seq = ctx->tok_seq[t];
        const float *q = ctx->q + (size_t)t * q_dim + h * hd;
        float *out = ctx->xb2 + (size_t)t * q_dim + h * hd;
        if (bn_model_has(ctx->model, BN_AF_AK42))
            bn_kv_attend_ak42(&ctx->kv, seq, j->layer, h / group, q, n_pos, ctx->ak_scratch + (size_t)ith * ctx->n_ctx,
                              scratch, out);
        else /* BN_AF_SWA: a sliding-window layer sees the last `window` positions */
            bn_kv_attend(&ctx->kv, seq, j->layer, h / group, q, window && n_pos > window ? n_pos - window : 0, n_pos,
                         att, scratch, out);
    }
}

/* RoPE on the q and k of tokens r0..r1-1, whose k and v then go to the cache. */
static void rope_rows_fn(void *arg, int r0, int r1) {
    const attn_job *j = arg;
    bitnet_context *ctx = j->ctx;
    const bitnet_model *m = ctx->model;
    const bn_hparams *hp = &m->hp;
    const int hd = hp->head_dim, q_dim = hp->n_heads * hd, kv_dim = hp->n_kv_heads * hd;
    const int neox = bn_model_has(m, BN_AF_ROPE_NEOX), half = hp->rope_dim / 2;
    const int swa = bn_layer_is_swa(hp, j->layer); /* BN_AF_SWA: local layers have their own RoPE base */
    const float *cos_tab = swa ? ctx->rope_cos_swa : ctx->rope_cos, *sin_tab = swa ? ctx->rope_sin_swa : ctx->rope_sin;
    for (int t = r0; t < r1; t++) {
        const int p = ctx->tok_pos[t];
        if (bn_model_has(m, BN_AF_AK42)) {
            const double *cs = ctx->ak_rope + (size_t)p * hd;
            bn_ak42_rope(ctx->q + (size_t)t * q_dim, hp->n_heads, hd, cs);
            bn_ak42_rope(ctx->k + (size_t)t * kv_dim, hp->n_kv_heads, hd, cs);
        } else {
            const float *cs = cos_tab + (size_t)p * half, *sn = sin_tab + (size_t)p * half;
            for (int h = 0; h < hp->n_heads; h++) rope_head(ctx->q + (size_t)t * q_dim + h * hd, cs, sn, hp->rope_dim, neox);
            for (int h = 0; h < hp->n_kv_heads; h++) rope_head(ctx->k + (size_t)t * kv_dim + h * hd, cs, sn, hp->rope_dim, neox);
        }
        bn_kv_write(&ctx->kv, ctx->tok_seq[t], j->layer, p, ctx->k + (size_t)t * kv_dim, ctx->v + (size_t)t * kv_dim);
    }
}

static void attention_block(bitnet_context *ctx, const bn_layer *L, int l, int n) {
    const bitnet_model *m = ctx->model;
    const bn_hparams *hp = &m->hp;
    const int dim = hp->dim, hd = hp->head_dim, q_dim = hp->n_heads * hd, kv_dim = hp->n_kv_heads * hd;

    /* input of q/k/v: RMSNorm with weights, except ak42 whose linears normalise themselves */
    const float *in = ctx->x;
    if (L->attn_norm) {
        rmsnorm_rows(ctx, ctx->xb, ctx->x, L->attn_norm, n, dim, hp->norm_eps);
        in = ctx->xb;
    }
    bn_linear(ctx, &L->wq, in, n, ctx->q);
    bn_linear_ex(ctx, &L->wk, in, n, ctx->k, bn_can_share_quant(&L->wq, &L->wk));
    bn_linear_ex(ctx, &L->wv, in, n, ctx->v, bn_can_share_quant(&L->wk, &L->wv) && bn_can_share_quant(&L->wq, &L->wk));

    /* BN_AF_QK_NORM: every head of q and k normalised on its own */
    if (L->attn_q_norm) {
        rmsnorm_rows(ctx, ctx->q, ctx->q, L->attn_q_norm, n * hp->n_heads, hd, hp->norm_eps);
        rmsnorm_rows(ctx, ctx->k, ctx->k, L->attn_k_norm, n * hp->n_kv_heads, hd, hp->norm_eps);
    }

    /* RoPE, then append k and v to the cache */
    attn_job rj = {ctx, l, n};
    bn_pool_rows(ctx->pool, n, q_dim + 2 * kv_dim, rope_rows_fn, &rj);
    int64_t att_work = 0;
    for (int t = 0; t < n; t++) att_work += ctx->tok_pos[t] + 1;

    attn_job job = {ctx, l, n};
    /* small attention (short context, few heads) is cheaper than a pool wake-up */
    if (att_work * hp->n_heads * hd < (1 << 15))
        run_attention(&job, 0, 1);
    else
        bn_pool_run(ctx->pool, run_attention, &job);

    const float *o_in = ctx->xb2;
    if (L->attn_sub_norm) { /* BN_AF_SUB_NORMS */
        rmsnorm_rows(ctx, ctx->xb, ctx->xb2, L->attn_sub_norm, n, q_dim, hp->norm_eps);
        o_in = ctx->xb;
    }
    bn_linear(ctx, &L->wo, o_in, n, ctx->q); /* q is free again: use it for the output */
    if (L->post_attn_norm) rmsnorm_rows(ctx, ctx->q, ctx->q, L->post_attn_norm, n, dim, hp->norm_eps); /* BN_AF_POST_NORMS */
    add_rows(ctx, ctx->x, ctx->q, n, dim);
}

typedef struct {
    bitnet_context *ctx;
    int len;
} gate_job;

/* hb = act(hb) * hb2 on rows r0..r1-1 (the gated FFN's element-wise product). */
static void gate_rows_fn(void *arg, int r0, int r1) {
    const gate_job *j = arg;
    const bitnet_model *m = j->ctx->model;
    float *hb = j->ctx->hb, *hb2 = j->ctx->hb2;
    const size_t i0 = (size_t)r0 * j->len, i1 = (size_t)r1 * j->len;
    if (bn_model_has(m, BN_AF_AK42)) {
        bn_ak42_swiglu(hb + i0, hb2 + i0, (int)(i1 - i0), hb + i0);
    } else if (m->arch->act == BN_ACT_RELU_SQ) {
        for (size_t i = i0; i < i1; i++) {
            float g = hb[i] > 0.0f ? hb[i] : 0.0f; /* squared ReLU gate */
            hb[i] = g * g * hb2[i];
        }
    } else if (m->arch->act == BN_ACT_GELU_TANH) {
        for (size_t i = i0; i < i1; i++) hb[i] = gelu_tanh(hb[i]) * hb2[i];
    } else {
        for (size_t i = i0; i < i1; i++) {
            float g = hb[i];
            g *= (1.0f / (1.0f + expf(-g))); /* SiLU, written as llama2.c does */
            hb[i] = g * hb2[i];
        }
    }
}

static void gate_rows(bitnet_context *ctx, int n, int len) {
    gate_job j = {ctx, len};
    bn_pool_rows(ctx->pool, n, len, gate_rows_fn, &j);
}

static void ffn_block(bitnet_context *ctx, const bn_layer *L, int n) {
    const bitnet_model *m = ctx->model;
    const bn_hparams *hp = &m->hp;
    const int dim = hp->dim, ff = hp->ff;

    const float *in = ctx->x;
    if (L->ffn_norm) {
        rmsnorm_rows(ctx, ctx->xb, ctx->x, L->ffn_norm, n, dim, hp->norm_eps);
        in = ctx->xb;
    }
    bn_linear(ctx, &L->w_gate, in, n, ctx->hb);
    bn_linear_ex(ctx, &L->w_up, in, n, ctx->hb2, bn_can_share_quant(&L->w_gate, &L->w_up));

    gate_rows(ctx, n, ff);
    const float *d_in = ctx->hb;
    if (L->ffn_sub_norm) { /* BN_AF_SUB_NORMS */
        rmsnorm_rows(ctx, ctx->hb2, ctx->hb, L->ffn_sub_norm, n, ff, hp->norm_eps);
        d_in = ctx->hb2;
    }
    bn_linear(ctx, &L->w_down, d_in, n, ctx->xb2);
    if (L->post_ffn_norm) rmsnorm_rows(ctx, ctx->xb2, ctx->xb2, L->post_ffn_norm, n, dim, hp->norm_eps); /* BN_AF_POST_NORMS */
    add_rows(ctx, ctx->x, ctx->xb2, n, dim);
}

/* BN_AF_MOE (qwen3moe): each token's FFN is the weighted sum of the FFNs of
 * the n_expert_used experts its router ranks highest (softmax over all
 * experts, the chosen weights renormalised to sum to 1), as llama.cpp's
 * build_moe_ffn computes it. Tokens are grouped by expert so that each
 * expert's weights are read once per batch; the sum runs in the order of the
 * choices, as llama.cpp adds them. */
static void moe_block(bitnet_context *ctx, const bn_layer *L, int n) {
    const bn_hparams *hp = &ctx->model->hp;
    const int dim = hp->dim, ffe = hp->ff_exp, ne = hp->n_expert, k = hp->n_expert_used;
    rmsnorm_rows(ctx, ctx->xb, ctx->x, L->ffn_norm, n, dim, hp->norm_eps);
    bn_linear(ctx, &L->ffn_gate_inp, ctx->xb, n, ctx->moe_logits);
    for (int t = 0; t < n; t++) {
        float *p = ctx->moe_logits + (size_t)t * ne, mx = p[0], sum = 0.0f, wsum = 0.0f;
        for (int e = 1; e < ne; e++) mx = p[e] > mx ? p[e] : mx;
        for (int e = 0; e < ne; e++) sum += p[e] = expf(p[e] - mx);
        for (int e = 0; e < ne; e++) p[e] /= sum;
        int *sel = ctx->moe_sel + (size_t)t * k;
        for (int j = 0; j < k; j++) { /* top-k, ties to the lower id */
            int best = -1;
            for (int e = 0; e < ne; e++) {
                int taken = 0;
                for (int i = 0; i < j; i++) taken |= sel[i] == e;
                if (!taken && (best < 0 || p[e] > p[best])) best = e;
            }
            sel[j] = best;
            wsum += p[best];
        }
        for (int j = 0; j < k; j++) ctx->moe_w[(size_t)t * k + j] = p[sel[j]] / wsum;
    }
    for (int e = 0; e < ne; e++) {
        int m = 0; /* gather the tokens that chose expert e */
        for (int t = 0; t < n; t++)
            for (int j = 0; j < k; j++)
                if (ctx->moe_sel[(size_t)t * k + j] == e) {
                    ctx->moe_tok[m] = t;
                    ctx->moe_slot[m] = j;
                    memcpy(ctx->moe_in + (size_t)m * dim, ctx->xb + (size_t)t * dim, (size_t)dim * sizeof(float));
                    m++;
                }
        if (m == 0) continue;
        bn_linear(ctx, &L->gate_exps[e], ctx->moe_in, m, ctx->hb);
        bn_linear_ex(ctx, &L->up_exps[e], ctx->moe_in, m, ctx->hb2, bn_can_share_quant(&L->gate_exps[e], &L->up_exps[e]));
        for (size_t i = 0; i < (size_t)m * ffe; i++) {
            float g = ctx->hb[i];
            g *= (1.0f / (1.0f + expf(-g)));
            ctx->hb[i] = g * ctx->hb2[i];
        }
        bn_linear(ctx, &L->down_exps[e], ctx->hb, m, ctx->xb2);
        for (int i = 0; i < m; i++) {
            const int t = ctx->moe_tok[i], j = ctx->moe_slot[i];
            const float w = ctx->moe_w[(size_t)t * k + j];
            float *o = ctx->moe_out + ((size_t)t * k + j) * dim;
            for (int d = 0; d < dim; d++) o[d] = w * ctx->xb2[(size_t)i * dim + d];
        }
    }
    for (int t = 0; t < n; t++)
        for (int j = 0; j < k; j++) {
            const float *o = ctx->moe_out + ((size_t)t * k + j) * dim;
            for (int d = 0; d < dim; d++) ctx->x[(size_t)t * dim + d] += o[d];
        }
}

/* Final norm of token t's residual stream into out. */
static void final_norm(const bitnet_context *ctx, int t, float *out) {
    const bitnet_model *m = ctx->model;
    const int dim = m->hp.dim;
    if (bn_model_has(m, BN_AF_AK42))
        bn_ak42_final_norm(ctx->x + (size_t)t * dim, m->output_norm, dim, BN_AK42_NORM_EPS, out);
    else
        rmsnorm(out, ctx->x + (size_t)t * dim, m->output_norm, dim, m->hp.norm_eps);
}

/* One chunk of at most n_batch tokens; tok_pos/tok_seq hold their places and
 * `first` is the chunk's index in the whole batch (for seq_last). */
static void forward_chunk(bitnet_context *ctx, const bitnet_token *tokens, int n, int first, const int8_t *want,
                          float *rows) {
    const bitnet_model *m = ctx->model;
    const bn_hparams *hp = &m->hp;
    const int dim = hp->dim, vocab = hp->vocab;

    for (int t = 0; t < n; t++) bn_matrix_get_row(&m->tok_embd, tokens[t], ctx->x + (size_t)t * dim);
    if (bn_model_has(m, BN_AF_EMBD_SCALE)) { /* gemma: embeddings times sqrt(n_embd) */
        const float scale = sqrtf((float)dim);
        for (size_t i = 0; i < (size_t)n * dim; i++) ctx->x[i] *= scale;
    }
    if (ctx->layer_hook) ctx->layer_hook(ctx->layer_hook_user, -1, ctx->x, n, dim);

    for (int l = 0; l < hp->n_layers; l++) {
        if (ctx->skip_layer && ctx->skip_layer[l]) continue;
        attention_block(ctx, &m->layers[l], l, n);
        if (bn_model_has(m, BN_AF_MOE))
            moe_block(ctx, &m->layers[l], n);
        else
            ffn_block(ctx, &m->layers[l], n);
        if (ctx->layer_hook) ctx->layer_hook(ctx->layer_hook_user, l, ctx->x, n, dim);
    }

    if (ctx->embd_out) { /* bitnet_embed: pool the final-norm states, no classifier */
        for (int t = 0; t < n; t++) {
            const int p = ctx->tok_pos[t]; /* from position 0: the token's index in the input */
            float *h = ctx->xb + (size_t)t * dim;
            final_norm(ctx, t, h);
            if (ctx->embd_pooling == BITNET_POOLING_NONE) memcpy(ctx->embd_out + (size_t)p * dim, h, (size_t)dim * sizeof(float));
            else if (ctx->embd_pooling == BITNET_POOLING_MEAN)
                for (int i = 0; i < dim; i++) ctx->embd_out[i] += h[i];
            else if ((ctx->embd_pooling == BITNET_POOLING_CLS && p == 0) ||
                     (ctx->embd_pooling == BITNET_POOLING_LAST && p == ctx->embd_total - 1))
                memcpy(ctx->embd_out, h, (size_t)dim * sizeof(float));
        }
        return;
    }

    /* Classifier, as one matmul over the tokens whose logits are wanted, so
     * that the (large) output matrix is read once per step. */
    if (rows) { /* every token's (want NULL) or the flagged ones', packed in order */
        int n_rows = 0;
        for (int t = 0; t < n; t++)
            if (!want || want[t]) final_norm(ctx, t, ctx->xb + (size_t)n_rows++ * dim);
        if (n_rows) bn_linear(ctx, &m->output, ctx->xb, n_rows, rows);
        for (int t = 0, r = 0; t < n; t++) {
            if (want && !want[t]) continue;
            if (ctx->seq_last[ctx->tok_seq[t]] == first + t)
                memcpy(ctx->logits + (size_t)ctx->tok_seq[t] * vocab, rows + (size_t)r * vocab,
                       (size_t)vocab * sizeof(float));
            r++;
        }
        return;
    }
    int wanted[BN_MAX_SEQ], n_out = 0;
    for (int t = 0; t < n; t++)
        if (ctx->seq_last[ctx->tok_seq[t]] == first + t) {
            final_norm(ctx, t, ctx->xb + (size_t)n_out * dim);
            wanted[n_out++] = ctx->tok_seq[t];
        }
    if (n_out == 1) {
        bn_linear(ctx, &m->output, ctx->xb, 1, ctx->logits + (size_t)wanted[0] * vocab);
    } else if (n_out > 1) {
        bn_linear(ctx, &m->output, ctx->xb, n_out, ctx->head_out);
        for (int i = 0; i < n_out; i++)
            memcpy(ctx->logits + (size_t)wanted[i] * vocab, ctx->head_out + (size_t)i * vocab,
                   (size_t)vocab * sizeof(float));
    }
}

bitnet_status bn_forward(bitnet_context *ctx, const bitnet_token *tokens, const int *pos, const int *seq,
                         int n, const int8_t *want, float *rows) {
    const bn_hparams *hp = &ctx->model->hp;
    if (n < 1) return bn_error(BITNET_ERR_ARG, "eval: need at least one token");
    /* Validate the whole batch before touching the cache. */
    for (int s = 0; s < ctx->n_seq; s++) ctx->seq_last[s] = -1;
    for (int i = 0; i < n; i++) {
        const int s = seq ? seq[i] : 0;
        if (tokens[i] < 0 || tokens[i] >= hp->vocab)
            return bn_error(BITNET_ERR_ARG, "token id %d is outside the vocabulary (0..%d)", tokens[i], hp->vocab - 1);
        if (s < 0 || s >= ctx->n_seq)
            return bn_error(BITNET_ERR_ARG, "eval: sequence %d is outside 0..%d (n_seq)", s, ctx->n_seq - 1);
        if (pos[i] < 0)
            return bn_error(BITNET_ERR_ARG, "eval: position %d is negative", pos[i]);
        if (pos[i] >= ctx->n_ctx)
            return bn_error(BITNET_ERR_CONTEXT_FULL, "context is full: position %d does not fit in --ctx-size %d",
                            pos[i], ctx->n_ctx);
        const int prev = ctx->seq_last[s];
        if (prev >= 0 && pos[i] != pos[prev] + 1)
            return bn_error(BITNET_ERR_ARG, "eval: sequence %d has position %d after %d (must be consecutive)", s,
                            pos[i], pos[prev]);
        ctx->seq_last[s] = i;
    }
    float *out = rows; /* the next chunk's first row */
    for (int done = 0; done < n; done += ctx->n_batch) {
        const int chunk = BN_MIN(ctx->n_batch, n - done);
        for (int t = 0; t < chunk; t++) {
            ctx->tok_pos[t] = pos[done + t];
            ctx->tok_seq[t] = seq ? seq[done + t] : 0;
        }
        forward_chunk(ctx, tokens + done, chunk, done, want ? want + done : NULL, out);
        for (int t = 0; out && t < chunk; t++) out += !want || want[done + t] ? hp->vocab : 0;
    }
    /* a sequence now ends at its last token here (evaluating from an earlier
     * position overwrote the rest) */
    for (int s = 0; s < ctx->n_seq; s++)
        if (ctx->seq_last[s] >= 0) ctx->seq_n[s] = pos[ctx->seq_last[s]] + 1;
    return BITNET_OK;
}

/* ---- public eval API ------------------------------------------------------ */

/* Positions pos, pos+1, ... of sequence 0, without a per-call array: the
 * batch is walked in n_batch pieces whose positions are filled in here. */
static bitnet_status eval_seq0(bitnet_context *ctx, const bitnet_token *tokens, int n, int pos, float *all_logits) {
    if (!ctx || !tokens) return bn_error(BITNET_ERR_ARG, "eval: NULL argument");
    if (n < 1 || pos < 0) return bn_error(BITNET_ERR_ARG, "eval: need at least one token at pos >= 0");
    if ((int64_t)pos + n > ctx->n_ctx)
        return bn_error(BITNET_ERR_CONTEXT_FULL, "context is full: %d tokens at position %d do not fit in --ctx-size %d",
                        n, pos, ctx->n_ctx);
    for (int done = 0; done < n; done += BN_EVAL_CHUNK) {
        int chunk = BN_MIN(BN_EVAL_CHUNK, n - done), p[BN_EVAL_CHUNK];
        for (int i = 0; i < chunk; i++) p[i] = pos + done + i;
        bitnet_status st = bn_forward(ctx, tokens + done, p, NULL, chunk, NULL,
                                      all_logits ? all_logits + (size_t)done * ctx->model->hp.vocab : NULL);
        if (st != BITNET_OK) return st;
    }
    return BITNET_OK;
}

bitnet_status bitnet_eval(bitnet_context *ctx, const bitnet_token *tokens, int n_tokens, int pos) {
    return eval_seq0(ctx, tokens, n_tokens, pos, NULL);
}

bitnet_status bitnet_eval_all_logits(bitnet_context *ctx, const bitnet_token *tokens, int n_tokens,
                                     int pos, float *out) {
    if (!out) return bn_error(BITNET_ERR_ARG, "eval: NULL argument");
    return eval_seq0(ctx, tokens, n_tokens, pos, out);
}

bitnet_status bitnet_eval_batch(bitnet_context *ctx, const bitnet_token *tokens, const int *pos, const int *seq,
                                int n_tokens) {
    if (!ctx || !tokens || !pos || !seq) return bn_error(BITNET_ERR_ARG, "eval: NULL argument");
    return bn_forward(ctx, tokens, pos, seq, n_tokens, NULL, NULL);
}

bitnet_status bitnet_eval_batch_logits(bitnet_context *ctx, const bitnet_token *tokens, const int *pos, const int *seq,
                                       const int8_t *logits, int n_tokens, float *out) {
    if (!ctx || !tokens || !pos || !seq || !logits || !out) return bn_error(BITNET_ERR_ARG, "eval: NULL argument");
    return bn_forward(ctx, tokens, pos, seq, n_tokens, logits, out);
}

float *bitnet_get_logits(bitnet_context *ctx) { return ctx->logits; }
float *bitnet_get_logits_seq(bitnet_context *ctx, int seq) {
    return seq >= 0 && seq < ctx->n_seq ? ctx->logits + (size_t)seq * ctx->model->hp.vocab : NULL;
}

/* ---- embeddings ------------------------------------------------------------ */

static void l2_normalize(float *v, int n) {
    double ss = 0.0;
    for (int i = 0; i < n; i++) ss += (double)v[i] * v[i];
    const float inv = ss > 0.0 ? (float)(1.0 / sqrt(ss)) : 0.0f;
    for (int i = 0; i < n; i++) v[i] *= inv;
}

bitnet_status bitnet_embed(bitnet_context *ctx, const bitnet_token *tokens, int n, bitnet_pooling pooling,
                           int normalize, float *out) {
    if (!ctx || !tokens || !out) return bn_error(BITNET_ERR_ARG, "embed: NULL argument");
    const int dim = ctx->model->hp.dim;
    if (pooling == BITNET_POOLING_DEFAULT)
        pooling = ctx->model->hp.pooling >= 0 ? (bitnet_pooling)ctx->model->hp.pooling : BITNET_POOLING_MEAN;
    if (pooling < BITNET_POOLING_NONE || pooling > BITNET_POOLING_LAST)
        return bn_error(BITNET_ERR_ARG, "embed: unknown pooling %d", (int)pooling);
    if (ctx->n_seq != 1) return bn_error(BITNET_ERR_ARG, "embed: the context must have one sequence (it has %d)", ctx->n_seq);
    if (n < 1) return bn_error(BITNET_ERR_ARG, "embed: need at least one token");
    memset(out, 0, (size_t)(pooling == BITNET_POOLING_NONE ? n : 1) * dim * sizeof(float));
    ctx->embd_out = out;
    ctx->embd_pooling = pooling;
    ctx->embd_total = n;
    bitnet_status st = eval_seq0(ctx, tokens, n, 0, NULL);
    ctx->embd_out = NULL;
    if (st != BITNET_OK) return st;
    if (pooling == BITNET_POOLING_MEAN)
        for (int i = 0; i < dim; i++) out[i] /= (float)n;
    for (int r = 0; normalize && r < (pooling == BITNET_POOLING_NONE ? n : 1); r++) l2_normalize(out + (size_t)r * dim, dim);
    return BITNET_OK;
}
