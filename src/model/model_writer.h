/* model_writer.h - the narrow interface through which tools write model files
 * (build/convert, build/prune): a loaded model re-encoded or copied with some
 * layers left out, and random models with the shapes of real ones.
 *
 * Tools include bitnet.h and this header only: the model struct, the GGUF
 * writer and the tensor types stay inside the library, so a tool never writes
 * a model field by field. Every write is atomic (a temporary beside PATH, then
 * rename): a failed write leaves PATH as it was. Errors are one line from
 * bitnet_last_error() naming the file and what is wrong. */
#ifndef BN_MODEL_WRITER_H
#define BN_MODEL_WRITER_H

#include "bitnet.h"

typedef struct {
    /* Layout of the ternary linears: "i2_s", "tq2_0", "tq1_0", "f16" or "f32"
     * (a float model's linears: f16 with "f16", else f32). NULL: a GGUF input
     * is copied tensor by tensor, byte for byte; anything else is written as
     * i2_s. */
    const char *linear_type;
    /* Token embedding and classifier: "f32", "f16", "q8_0", "q6_k" or "q4_k"
     * (rows of a multiple of 256 values, else q8_0), or "keep" (=
     * NULL): as the input stores them, bytes copied (f32, f16, q8_0, or a
     * llama.cpp file's Q6_K/Q4_K/...). Ignored when a GGUF input is copied. */
    const char *head_type;
    /* NULL, or one flag per layer of the model: 1 = leave that layer out; the
     * others are renumbered blk.0 .. blk.N-1. */
    const uint8_t *drop;
    /* 1: the Hugging Face safetensors layout (docs/formats.md) instead of GGUF;
     * it holds no vocabulary. */
    int safetensors;
    /* NULL, or called with the fraction done (0..1) as the model is packed and
     * written (GGUF output): a tool's progress line. */
    void (*progress)(void *user, double frac);
    void *progress_user;
} bn_write_params;

bn_write_params bn_write_default_params(void);

/* 1 if `name` is a layout bn_write_params accepts for linear_type / head_type. */
int bn_write_linear_type_ok(const char *name);
int bn_write_head_type_ok(const char *name);

/* The checks bn_model_write makes before writing anything, so that a tool can
 * refuse early (before minutes of scoring): an unknown type name; safetensors
 * for an architecture with no Hugging Face form; dropping layers (p->drop
 * non-NULL, whatever its flags) of a model whose sliding-window layers are
 * chosen by their index. */
bitnet_status bn_model_write_check(const bitnet_model *m, const bn_write_params *p);

/* Writes m to path as p says; at least one layer must be kept. */
bitnet_status bn_model_write(const bitnet_model *m, const bn_write_params *p, const char *path);

/* Bytes of the file (or embedded image) m was loaded from; 0 when unknown. */
uint64_t bn_model_source_bytes(const bitnet_model *m);

/* ---- random models (convert --synthetic) ---- */

typedef struct {
    const char *name; /* general.name */
    int dim, ff, n_layers, n_heads, n_kv_heads, n_vocab, n_ctx_train;
    float rope_theta;
} bn_synthetic_shape;

/* 1 if s is a model the runtime computes: dim and ff multiples of 128, heads
 * that divide dim into an even head size, kv-heads that divide heads, at least
 * 260 tokens (the placeholder vocabulary's specials and bytes). */
int bn_synthetic_shape_ok(const bn_synthetic_shape *s);

/* Writes a bitnet-b1.58 GGUF model of shape s with random ternary linears in
 * layout linear_type (NULL = i2_s), a tied Q8_0 embedding/classifier, unit
 * norms and, when vocab_path is NULL, a placeholder SentencePiece vocabulary of
 * s->n_vocab tokens; else the vocabulary of that file (any tokenizer
 * bn_tokenizer_load_file reads), which must have exactly s->n_vocab tokens.
 * The random stream is fixed: the same shape gives the same file.
 * Errors: a shape bn_synthetic_shape_ok refuses, an unknown layout, a
 * vocabulary of another size. */
bitnet_status bn_write_synthetic(const bn_synthetic_shape *s, const char *linear_type, const char *vocab_path,
                                 const char *path);

#endif
