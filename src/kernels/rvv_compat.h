/*
 * rvv_compat.h - the two spellings of the RISC-V Vector intrinsics: v0.10
 * (clang 14-16: vle8_v_u8m2, reductions with a destination operand) and
 * v0.11+ (gcc 14, clang 17: __riscv_vle8_v_u8m2). rvv.c and kv_rvv.c write
 * RV(vle8_v_u8m2) and the macros below for the operations whose argument
 * order changed between the two (reductions, merges); other masked forms are
 * not used.
 */
#ifndef BN_RVV_COMPAT_H
#define BN_RVV_COMPAT_H

#include <riscv_vector.h>

#if defined(__riscv_v_intrinsic) && __riscv_v_intrinsic >= 11000
#define RV(f) __riscv_##f
#define REDSUM_I32M8(v, zero, vl) __riscv_vredsum_vs_i32m8_i32m1(v, zero, vl)
#define WREDSUM_I16M4(v, zero, vl) __riscv_vwredsum_vs_i16m4_i32m1(v, zero, vl)
#define REDMAX_F32M4(v, init, vl) __riscv_vfredmax_vs_f32m4_f32m1(v, init, vl)
#define MERGE_VXM_I32M4(mask, a, x, vl) __riscv_vmerge_vxm_i32m4(a, x, mask, vl) /* mask ? x : a */
#else
#define RV(f) f
#define REDSUM_I32M8(v, zero, vl) vredsum_vs_i32m8_i32m1(zero, v, zero, vl)
#define WREDSUM_I16M4(v, zero, vl) vwredsum_vs_i16m4_i32m1(zero, v, zero, vl)
#define REDMAX_F32M4(v, init, vl) vfredmax_vs_f32m4_f32m1(init, v, init, vl)
#define MERGE_VXM_I32M4(mask, a, x, vl) vmerge_vxm_i32m4(mask, a, x, vl)
#endif

#endif
