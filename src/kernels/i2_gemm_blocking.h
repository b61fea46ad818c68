/*
 * i2_gemm_blocking.h - the ISA-independent blocking of the ternary GEMM
 * (bn_kernels.i2_gemm), written once for every ISA file. An ISA supplies the
 * register tile and the activation sum; this supplies the loops around them,
 * as ggml separates the blocking from vec_dot.
 *
 * Y[j*ldy + r] = sum_c t[r][c] * X[j*cols + c] is computed by
 *   - vectors in chunks of CHUNK (their int8 sums, for the unsigned-code trick
 *     of kernels.h, kept on the stack): a chunk's activations stay in L1;
 *   - inside a chunk, weight rows in tiles of TILE_R: each row tile is read once
 *     per chunk and reused by every vector of the chunk, BN_GEMM_TILE_N at a time;
 *   - rows left over (rows % TILE_R) one at a time.
 * The tile macro or function is called as
 *   TILE(R, NJ, cols, w, rb, Xj, sx, Yj, ldy, pf)
 * for R rows (TILE_R, or 1 for the leftovers) starting at w (row stride rb
 * bytes) and NJ (1..BN_GEMM_TILE_N, a constant at each call) vectors Xj with
 * sums sx, writing Yj[j*ldy + i]; pf is the next row tile while the first
 * vector tile runs (for a software prefetch), else NULL.
 *
 * Use inside the ISA's i2_gemm, whose parameters must be named
 * (rows, cols, W, n, X, Y, ldy):
 *   BN_I2_GEMM_BLOCKING(TILE_R, CHUNK, SUM, TILE)
 */
#ifndef BN_I2_GEMM_BLOCKING_H
#define BN_I2_GEMM_BLOCKING_H

#define BN_GEMM_TILE_N 4     /* activation vectors per register tile              */
#define BN_GEMM_MAX_CHUNK 64 /* most vectors per chunk (their sums on the stack)   */

/* Vectors per chunk when a register tile holds one row: every activation byte
 * is then loaded once per MAC, so the chunk's activations must stay in L1
 * (x_bytes of them; at 64 vectors x 6912 columns they would come from L2 and
 * halve the speed); the weights are re-read once per chunk, from L2/L3 for
 * matrices of a few MB. At least one register tile. */
static inline int bn_gemm_chunk_l1(int cols, int x_bytes) {
    int c = x_bytes / cols / BN_GEMM_TILE_N * BN_GEMM_TILE_N;
    return c < BN_GEMM_TILE_N ? BN_GEMM_TILE_N : (c > BN_GEMM_MAX_CHUNK ? BN_GEMM_MAX_CHUNK : c);
}

#define BN_GEMM_TILE_SWITCH(TILE, R, wp, Yp, pf)                             \
    switch (nj) {                                                            \
    case 4: TILE(R, 4, cols, wp, rb, Xj, sx, Yp, ldy, pf); break;            \
    case 3: TILE(R, 3, cols, wp, rb, Xj, sx, Yp, ldy, pf); break;            \
    case 2: TILE(R, 2, cols, wp, rb, Xj, sx, Yp, ldy, pf); break;            \
    default: TILE(R, 1, cols, wp, rb, Xj, sx, Yp, ldy, pf); break;           \
    }

#define BN_I2_GEMM_BLOCKING(TILE_R, CHUNK, SUM, TILE)                                                        \
    do {                                                                                                     \
        const size_t rb = (size_t)cols / 4;                                                                  \
        int32_t sxs[BN_GEMM_MAX_CHUNK];                                                                      \
        const int chunk = (CHUNK);                                                                           \
        for (int c0 = 0; c0 < n; c0 += chunk) {                                                              \
            const int nc = BN_MIN(chunk, n - c0);                                                            \
            for (int j = 0; j < nc; j++) sxs[j] = SUM(X + (size_t)(c0 + j) * cols, cols);                    \
            for (int r = 0; r < rows; r += (TILE_R)) {                                                       \
                const int nr = BN_MIN((TILE_R), rows - r);                                                   \
                const uint8_t *w = W + (size_t)r * rb;                                                       \
                for (int j0 = c0; j0 < c0 + nc; j0 += BN_GEMM_TILE_N) {                                      \
                    const int nj = BN_MIN(BN_GEMM_TILE_N, c0 + nc - j0);                                     \
                    const int8_t *Xj = X + (size_t)j0 * cols;                                                \
                    int32_t *Yj = Y + (size_t)j0 * ldy + r;                                                  \
                    const int32_t *sx = sxs + (j0 - c0);                                                     \
                    const char *pf =                                                                         \
                        (j0 == c0 && r + 2 * (TILE_R) <= rows) ? (const char *)(w + (TILE_R) * rb) : NULL;   \
                    (void)pf; /* tiles without a prefetch ignore it */                                       \
                    if (nr == (TILE_R)) {                                                                    \
                        BN_GEMM_TILE_SWITCH(TILE, (TILE_R), w, Yj, pf)                                       \
                    } else {                                                                                 \
                        for (int i = 0; i < nr; i++)                                                         \
                            BN_GEMM_TILE_SWITCH(TILE, 1, w + (size_t)i * rb, Yj + i, (const char *)NULL)     \
                    }                                                                                        \
                }                                                                                            \
            }                                                                                                \
        }                                                                                                    \
    } while (0)

#endif
