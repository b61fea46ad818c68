/* model_writer.c - the tools' model-writing interface (see model_writer.h):
 * names to layouts, the output checks, and the choice among the three
 * writers (GGUF re-encoded or copied: gguf_copy.c; safetensors:
 * safetensors_model.c). */
#include "model/model_writer.h"

#include <strings.h>

#include "formats/safetensors.h"
#include "model/gguf_copy.h"

static const struct {
    const char *name;
    bn_tensor_type type;
    int head; /* also a head layout */
} layouts[] = {
    {"i2_s", BN_TT_I2_S, 0}, {"tq2_0", BN_TT_TQ2_0, 0}, {"tq1_0", BN_TT_TQ1_0, 0},
    {"f16", BN_TT_F16, 1},   {"f32", BN_TT_F32, 1},     {"q8_0", BN_TT_Q8_0, 2},
    {"q6_k", BN_TT_Q6_K, 2}, {"q4_k", BN_TT_Q4_K, 2},
    {"keep", BN_TT_COUNT, 2}, /* as the input stores them */
};

int bn_layout_by_name(const char *name, int head, bn_tensor_type *t) {
    for (size_t i = 0; name && i < sizeof layouts / sizeof layouts[0]; i++)
        if (!strcasecmp(name, layouts[i].name) && /* llama-quantize writes q6_K */ (head ? layouts[i].head > 0 : layouts[i].head < 2)) {
            *t = layouts[i].type;
            return 1;
        }
    return 0;
}

bn_write_params bn_write_default_params(void) {
    return (bn_write_params){.linear_type = NULL, .head_type = NULL, .drop = NULL, .safetensors = 0, .progress = NULL};
}

int bn_write_linear_type_ok(const char *name) {
    bn_tensor_type t;
    return bn_layout_by_name(name, 0, &t);
}

int bn_write_head_type_ok(const char *name) {
    bn_tensor_type t;
    return bn_layout_by_name(name, 1, &t);
}

bitnet_status bn_model_write_check(const bitnet_model *m, const bn_write_params *p) {
    if (!m || !p) return bn_error(BITNET_ERR_ARG, "bn_model_write_check: NULL argument");
    if (p->linear_type && !bn_write_linear_type_ok(p->linear_type))
        return bn_error(BITNET_ERR_ARG, "unknown linear layout '%s' (i2_s, tq2_0, tq1_0, f16, f32)", p->linear_type);
    if (p->head_type && !bn_write_head_type_ok(p->head_type))
        return bn_error(BITNET_ERR_ARG, "unknown head layout '%s' (keep, f32, f16, q8_0, q6_k, q4_k)", p->head_type);
    if (p->safetensors && !m->arch->hf_name)
        return bn_error(BITNET_ERR_UNSUPPORTED, "architecture %s has no Hugging Face form here; write GGUF instead",
                        m->arch->name);
    if (p->drop && m->hp.swa_window > 0) /* which layers are global is a function of their index */
        return bn_error(BITNET_ERR_UNSUPPORTED,
                        "its sliding-window layers are chosen by index (every %dth is global); removing layers "
                        "would change which ones are, so %s models cannot be pruned",
                        m->hp.swa_pattern, bn_model_arch_name(m));
    return BITNET_OK;
}

bitnet_status bn_model_write(const bitnet_model *m, const bn_write_params *p, const char *path) {
    if (!path) return bn_error(BITNET_ERR_ARG, "bn_model_write: NULL path");
    bitnet_status st = bn_model_write_check(m, p);
    if (st != BITNET_OK) return st;
    const int n_in = m->hp.n_layers;
    int *kept = malloc((size_t)n_in * sizeof *kept), n = 0;
    bn_layer *layers = malloc((size_t)n_in * sizeof *layers);
    if (!kept || !layers) {
        free(kept);
        free(layers);
        return bn_error(BITNET_ERR_NOMEM, "out of memory writing %s", path);
    }
    for (int l = 0; l < n_in; l++)
        if (!p->drop || !p->drop[l]) {
            layers[n] = m->layers[l];
            kept[n++] = l;
        }
    bn_tensor_type linear = BN_TT_I2_S, head = BN_TT_COUNT; /* head: as stored unless asked */
    bn_layout_by_name(p->linear_type, 0, &linear);
    bn_layout_by_name(p->head_type, 1, &head);
    if (n < 1) {
        st = bn_error(BITNET_ERR_ARG, "%s: a model needs at least one layer", path);
    } else if (p->safetensors) {
        bitnet_model view = *m; /* a shallow view with only the kept layers */
        view.layers = layers;
        view.hp.n_layers = n;
        st = bn_safetensors_write_model(&view, path);
    } else if (m->gguf && !p->linear_type) {
        st = bn_gguf_write_pruned(m->gguf, kept, n, path);
    } else {
        st = bn_model_write_gguf(m, kept, n, linear, head, path, p->progress, p->progress_user);
    }
    free(kept);
    free(layers);
    return st;
}

uint64_t bn_model_source_bytes(const bitnet_model *m) {
    if (!m) return 0;
    if (m->gguf) return m->gguf->size;
    uint64_t n = m->map_size;
    for (int i = 0; i < m->n_shards; i++) n += m->shard_size[i];
    return n;
}
