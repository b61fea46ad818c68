/* gguf_copy.h - writing models as GGUF: a loaded bitnet_model re-encoded
 * (build/convert, build/prune of ak42 input), or a GGUF file copied with some
 * of its blocks left out (build/prune).
 *
 * All writes go through bn_gguf_writer_write, i.e. a temporary beside PATH, then rename: a failed
 * write never leaves a partial PATH. */
#ifndef BN_GGUF_COPY_H
#define BN_GGUF_COPY_H

#include "formats/gguf.h"
#include "model/model.h"

/* Buffers that a bn_gguf_writer references until bn_gguf_writer_write returns.
 * Start from {0}; bn_keep_free releases them all. */
typedef struct {
    void **bufs;
    int n, cap;
    /* ternary tensors whose rows are too short for tq2_0/tq1_0, stored as i2_s:
     * counted here and reported in one line by bn_keep_report */
    int n_fallback, fallback_cols;
    int n_expert_fallback; /* expert tensors stored as tq2_0 instead of the type asked for */
    char fallback_first[96];
    const char *fallback_type;
} bn_keep_list;

/* A zeroed buffer of `bytes` kept in k; NULL when out of memory. */
void *bn_keep(bn_keep_list *k, size_t bytes);
void bn_keep_free(bn_keep_list *k);
/* One warning line on stderr for the tensors stored in a fallback layout, if any. */
void bn_keep_report(const bn_keep_list *k);

/* The layout named `name` as model_writer.h spells it: head = 0 for the
 * linears (i2_s, tq2_0, tq1_0, f16, f32), 1 for the embedding and classifier
 * (keep, f32, f16, q8_0, q6_k, q4_k). Returns 1 and sets *t, or 0 for an unknown name. */
int bn_layout_by_name(const char *name, int head, bn_tensor_type *t);

/* The ARCH.* hyper-parameter keys llama.cpp reads (block_count = hp->n_layers). */
void bn_gguf_set_hparams(bn_gguf_writer *w, const char *arch, const bn_hparams *hp);

/* Adds I2 matrix m as tensor `name` (ending in ".weight") in layout `type`
 * (i2_s, tq2_0, tq1_0, f16, f32), plus "NAME.scale" where the layout has no
 * room for the per-tensor scale. TQ2_0/TQ1_0 need rows of a multiple of 256
 * weights: other tensors are stored as i2_s (counted in k, bn_keep_report).
 * Errors: i2_s rows that are not a multiple of 128 weights, out of memory. */
bitnet_status bn_gguf_add_ternary(bn_gguf_writer *w, bn_keep_list *k, const char *name, const bn_matrix *m,
                                  bn_tensor_type type);

/* Writes m as GGUF: metadata, vocabulary, f32 norms, ternary linears in
 * layout `ternary_type` (float models: f32, or f16 when ternary_type is f16),
 * the token embedding and classifier as head_type (f32, f16, q8_0, q6_k, q4_k, or
 * BN_TT_COUNT: as m stores them, bytes copied).
 * layers[i] (i < n_layers) is the layer of m that becomes blk.i;
 * layers == NULL writes all of m's layers. progress (or NULL) gets the
 * fraction done: packing the layers, then writing the file. */
bitnet_status bn_model_write_gguf(const bitnet_model *m, const int *layers, int n_layers, bn_tensor_type ternary_type,
                                  bn_tensor_type head_type, const char *path, void (*progress)(void *user, double frac),
                                  void *progress_user);

/* Copies GGUF file f to path keeping only blocks layers[0..n_layers)
 * (strictly increasing indices of f's blocks), renumbered blk.0 .. blk.N-1.
 * Every other tensor and every metadata key is copied unchanged, the tensor
 * data byte for byte in the file's own type numbering, except ARCH.block_count,
 * which becomes n_layers. */
bitnet_status bn_gguf_write_pruned(const bn_gguf_file *f, const int *layers, int n_layers, const char *path);

#endif
