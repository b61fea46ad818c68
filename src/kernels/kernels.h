/*
 * kernels.h - the compute kernels behind a dispatch table, one table per ISA
 * (scalar reference, AVX2, AVX-512/VNNI, ARM64 NEON/SDOT, RISC-V RVV), chosen at run time.
 *
 * Kernels are single-threaded over a range of output rows; the caller splits
 * rows across the thread pool. They never allocate.
 *
 * Native ternary layout "I2" (byte-identical to bitnet.cpp's I2_S data):
 *   - a row of `cols` weights is stored as cols/128 blocks of 32 bytes
 *     (cols is a multiple of BN_I2_BLOCK; rows are padded with zero weights);
 *   - in a block, byte p holds weights p, p+32, p+64, p+96 in bits
 *     7-6, 5-4, 3-2, 1-0 respectively;
 *   - codes 0, 1, 2 mean -1, 0, +1 (3 is never written; kernels may treat it as +2).
 * So a row occupies cols/4 bytes and weight c of row r is
 *   ((W[r*cols/4 + (c/128)*32 + c%32] >> (6 - 2*((c%128)/32))) & 3) - 1.
 * This lets SIMD code unpack 4 vectors per load with one shift+mask each and use
 * unsigned*signed byte dot products (pmaddubsw / vpdpbusd / sdot):
 *   sum_c (code_c - 1) * x_c  =  sum_c code_c * x_c  -  sum_c x_c.
 */
#ifndef BN_KERNELS_H
#define BN_KERNELS_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define BN_I2_BLOCK 128
#define BN_I2_BLOCK_BYTES 32

/* Q8_0 as llama.cpp defines it: 32 int8 weights with one fp16 scale. */
#define BN_Q8_BLOCK 32
typedef struct {
    uint16_t d; /* fp16 scale */
    int8_t qs[BN_Q8_BLOCK];
} bn_block_q8_0;

typedef struct bn_kernels {
    const char *isa; /* "scalar", "avx2", "avx512", "avx512vnni", "neon", "neon-dotprod", "rvv" */

    /* Ternary GEMV: y[r] = sum_c t[r][c] * x[c] for r in [0, rows), exact in int32.
     * W points at the first of `rows` consecutive I2 rows of `cols` weights
     * (cols % 128 == 0); x holds cols int8 values (any value in [-128, 127]). */
    void (*i2_gemv)(int rows, int cols, const uint8_t *W, const int8_t *x, int32_t *y);

    /* Ternary GEMM over n activation vectors: X is n rows of `cols` int8,
     * Y[j*ldy + r] = sum_c t[r][c] * X[j*cols + c]. Loads each weight byte once
     * for up to n vectors (prompt processing and batched decoding). */
    void (*i2_gemm)(int rows, int cols, const uint8_t *W, int n, const int8_t *X, int32_t *Y,
                    int ldy);

    /* Q8_0 GEMV (8-bit output head): W has rows*cols/32 blocks, xq holds cols
     * int8 activations quantised per 32-block with scales xd[cols/32].
     * y[r] = sum_b d_w(b) * xd[b] * sum_{i<32} w_i * x_i. */
    void (*q8_0_gemv)(int rows, int cols, const bn_block_q8_0 *W, const int8_t *xq,
                      const float *xd, float *y);

    /* K-quant GEMVs (embeddings and heads of llama.cpp's files) with Q8_K
     * activations (bn_quantize_q8_k_act), as llama.cpp multiplies them. W is
     * `rows` rows of cols/256 Q4_K (144-byte) or Q6_K (210-byte) blocks. Per
     * block b the integer dot product isum_b is exact; the row's sum runs over
     * the blocks in order: y = fmaf(d_w * xd[b], isum_b, y) (Q4_K also
     * y = fmaf(-(dmin_w * xd[b]), msum_b, y) for its minimums), so every ISA
     * gives the same bits. */
    void (*q4_k_gemv)(int rows, int cols, const uint8_t *W, const int8_t *xq, const float *xd,
                      const int16_t *bsums, float *y);
    void (*q6_k_gemv)(int rows, int cols, const uint8_t *W, const int8_t *xq, const float *xd,
                      const int16_t *bsums, float *y);
    /* BitNet b1.58 activation quantisation, per token: amax = max |x[i]| over
     * the non-NaN values; q[i] = x[i] * (127/amax) rounded half to even and
     * clamped to [-128, 127] (NaN -> 0), q[n..n_padded) = 0; returns amax/127,
     * or 0 with every q = 0 when amax is 0 or infinite. Exact: the same bits
     * on every ISA. */
    float (*quantize_i8)(const float *x, int n, int n_padded, int8_t *q);
    /* Float GEMV: y[r] = sum_c W[r*cols + c] * x[c]. */
    void (*f32_gemv)(int rows, int cols, const float *W, const float *x, float *y);
    void (*f16_gemv)(int rows, int cols, const uint16_t *W, const float *x, float *y);

    /* Attention over the KV-cache formats (kv_kernels.h) for this ISA. */
    const struct bn_kv_ops *kv;
} bn_kernels;

/* A table with every kernel named (scalar.c, avx2.c, avx512.c, neon.c): a
 * kernel added to bn_kernels is a compile error in each table until that
 * table names its version, never a NULL found at run time. */
#define BN_KERNEL_TABLE(ISA, KV, I2_GEMV, I2_GEMM, Q8_0_GEMV, Q4_K_GEMV, Q6_K_GEMV, QUANTIZE_I8, F32_GEMV, F16_GEMV) \
    {.isa = (ISA), .i2_gemv = (I2_GEMV), .i2_gemm = (I2_GEMM), .q8_0_gemv = (Q8_0_GEMV),                       \
     .q4_k_gemv = (Q4_K_GEMV), .q6_k_gemv = (Q6_K_GEMV), .quantize_i8 = (QUANTIZE_I8),                          \
     .f32_gemv = (F32_GEMV), .f16_gemv = (F16_GEMV), .kv = (KV)}

/* Table for the best ISA this CPU supports, or the one named by the
 * environment variable BITNET_ISA (scalar|avx2|avx512|neon). An unsupported
 * BITNET_ISA falls back to the best table with a warning on stderr. */
const bn_kernels *bn_kernels_get(void);
/* Table by name, or NULL if not compiled in or not supported by this CPU. */
const bn_kernels *bn_kernels_by_name(const char *isa);
/* All tables usable on this machine (scalar first); returns the count. */
int bn_kernels_list(const bn_kernels **out, int cap);

/* Per-ISA tables (defined only where compiled in). */
extern const bn_kernels bn_kernels_scalar;
extern const bn_kernels bn_kernels_avx2;
extern const bn_kernels bn_kernels_avx512;
extern const bn_kernels bn_kernels_neon;
/* KV-cache kernel tables the ISA tables point at (kv_kernels.h). */
extern const struct bn_kv_ops bn_kv_ops_scalar, bn_kv_ops_avx2, bn_kv_ops_neon;

/* ---- packing helpers (scalar, used by loaders and the converter) ------ */
/* Packs rows x cols ternary values t in {-1,0,1} (row-major, cols arbitrary)
 * into I2 rows of cols_padded = round_up(cols, 128); returns bytes written
 * (rows * cols_padded / 4). */
size_t bn_i2_pack(const int8_t *t, int rows, int cols, uint8_t *out);
/* Inverse for one row: writes cols values in {-1,0,1}. */
void bn_i2_unpack_row(const uint8_t *row, int cols, int8_t *t);
static inline int bn_i2_cols_padded(int cols) { return (cols + BN_I2_BLOCK - 1) / BN_I2_BLOCK * BN_I2_BLOCK; }

/* llama.cpp TQ2_0 / TQ1_0 blocks (256 weights, fp16 scale d). Row-length must
 * be a multiple of 256. Convert one row to/from ternary values + block scales. */
#define BN_QK_K 256
#define BN_TQ2_0_BYTES 66
#define BN_TQ1_0_BYTES 54
void bn_tq2_0_pack_row(const int8_t *t, int cols, const float *block_d, uint8_t *out);
void bn_tq2_0_unpack_row(const uint8_t *in, int cols, int8_t *t, float *block_d);
void bn_tq1_0_pack_row(const int8_t *t, int cols, const float *block_d, uint8_t *out);
void bn_tq1_0_unpack_row(const uint8_t *in, int cols, int8_t *t, float *block_d);

/* ---- block-quantised float formats (quants.c) --------------------------
 * ggml's layouts for embeddings and heads of real files, dequantised by row;
 * linear.c multiplies them as floats. */
typedef enum {
    BN_QUANT_Q4_0 = 0,
    BN_QUANT_Q5_0,
    BN_QUANT_Q8_0,
    BN_QUANT_Q4_K,
    BN_QUANT_Q5_K,
    BN_QUANT_Q6_K,
    BN_QUANT_BF16,
    BN_QUANT_COUNT
} bn_quant;

typedef struct {
    const char *name;       /* as ggml names it: "q6_K" */
    unsigned block_elems;   /* values per block         */
    unsigned block_bytes;
    void (*dequant_block)(const uint8_t *block, float *y);
} bn_quant_traits;

const bn_quant_traits *bn_quant_get(bn_quant q);
/* y[0..cols) from one row of cols values (cols a multiple of the block size). */
void bn_dequant_row(bn_quant q, const void *row, int cols, float *y);

/* Q8_K activations for the K-quant GEMVs: per 256 values (n a multiple of
 * 256) the quantize_i8 of kernel table k (xd[b] = amax/127, values in
 * [-127, 127]), and bsums[g] = the sum of the g-th 16 values. */
void bn_quantize_q8_k_act(const struct bn_kernels *k, const float *x, int n, int8_t *xq, float *xd, int16_t *bsums);
#define BN_Q4_K_BYTES 144
#define BN_Q6_K_BYTES 210

/* The fp16 bits at p (a block's scale: any alignment). */
static inline uint16_t bn_load_f16_bits(const uint8_t *p) {
    uint16_t h;
    memcpy(&h, p, 2);
    return h;
}

/* The 6-bit scale and min of sub-block j (0..7) of a Q4_K/Q5_K block's 12
 * scale bytes q (ggml's get_scale_min_k4). */
static inline void bn_k4_scale_min(int j, const uint8_t *q, int *d, int *m) {
    if (j < 4) {
        *d = q[j] & 63;
        *m = q[j + 4] & 63;
    } else {
        *d = (q[j + 4] & 0x0F) | ((q[j - 4] >> 6) << 4);
        *m = (q[j + 4] >> 4) | ((q[j] >> 6) << 4);
    }
}

/* All eight: out[0..7] = the scales, out[8..15] = the mins (the same values
 * as bn_k4_scale_min, four bytes at a time). */
static inline void bn_k4_unpack_scales(const uint8_t *q, uint8_t out[16]) {
    uint32_t u[3], o[4];
    memcpy(u, q, 12);
    o[0] = u[0] & 0x3f3f3f3fu;                                              /* sc 0..3: low 6 bits of q0..3 */
    o[1] = (u[2] & 0x0f0f0f0fu) | ((u[0] >> 6) & 0x03030303u) << 4;         /* sc 4..7 */
    o[2] = u[1] & 0x3f3f3f3fu;                                              /* m 0..3: low 6 bits of q4..7 */
    o[3] = ((u[2] >> 4) & 0x0f0f0f0fu) | ((u[1] >> 6) & 0x03030303u) << 4;  /* m 4..7 */
    memcpy(out, o, 16);
}

/* Quantises x (n floats) to Q8_0 activations: xq int8 and xd per-32 scales. */
void bn_quantize_q8_0_act(const float *x, int n, int8_t *xq, float *xd);
/* Quantises one row of cols floats (a multiple of 256) to Q6_K / Q4_K blocks
 * (convert --head-type q6_k|q4_k): every value is the nearest point of its
 * group's grid (d * sc * (q - 32), or d * sc * q - dmin * m) once the group
 * scales are chosen and quantised. */
void bn_quantize_q6_k_row(const float *x, int cols, uint8_t *out);
void bn_quantize_q4_k_row(const float *x, int cols, uint8_t *out);
/* Quantises W rows to Q8_0 blocks (for the converter's 8-bit head). */
void bn_quantize_q8_0_row(const float *w, int cols, bn_block_q8_0 *out);

#endif
