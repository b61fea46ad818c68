#!/bin/sh
# insn_count.sh - guest instructions per kernel call under qemu-user, for the
# targets built here (build/ x86-64, build-arm64, build-riscv64, build-armhf:
# make test-arm64 etc. build them), as a speed proxy where no hardware is at
# hand. Each (target, table, kernel) runs `bench --calls` with N and 2N calls
# under a counting TCG plugin (bench/qemu_plugin/insn.c); the difference over
# N is one call's instructions. Prints a markdown table: instructions per call,
# per 1,000 weights, and the ratio to the scalar table of the same target.
#
# Caveat: an instruction count is not a time. A SIMD instruction does more
# work than a scalar one, wide vectors (RVV at VLEN 256) need fewer, and cores
# differ in how many they issue per cycle and in memory bandwidth, which bounds
# decode on real boards. Use it to compare tables of one target, not targets.
#
# usage: bench/insn_count.sh [SHAPE] [N]     (default 256x2560, 4)
set -eu
shape=${1:-256x2560}
n=${2:-4}
cc=${HOST_CC:-cc}
plugin=build/qemu-insn.so
mkdir -p build
$cc -shared -fPIC -O2 -o "$plugin" bench/qemu_plugin/insn.c
rows=${shape%x*}
cols=${shape#*x}

# insns QEMU CPU BENCH ARGS...: the guest instructions of one run
insns() {
    q=$1 cpu=$2
    shift 2
    if [ -n "$cpu" ]; then QEMU_CPU=$cpu $q -plugin "$plugin" -d plugin "$@" 2>&1 >/dev/null | sed -n 's/^insns: //p'
    else $q -plugin "$plugin" -d plugin "$@" 2>&1 >/dev/null | sed -n 's/^insns: //p'; fi
}

echo "| target | table | kernel | instructions / call | per 1,000 weights | x scalar |"
echo "|---|---|---|---:|---:|---:|"
# target  qemu  cpu  bench  tables
for row in "x86-64 qemu-x86_64 max build/bench scalar,avx2" \
           "arm64 qemu-aarch64 max build-arm64/bench scalar,neon-nodot,neon-dotprod" \
           "riscv64-v128 qemu-riscv64 rv64,v=true,vlen=128 build-riscv64/bench scalar,rvv" \
           "riscv64-v256 qemu-riscv64 rv64,v=true,vlen=256 build-riscv64/bench rvv" \
           "armhf qemu-arm max build-armhf/bench scalar,neon"; do
    set -- $row
    target=$1 q=$2 cpu=$3 bin=$4 tables=$5
    [ -x "$bin" ] || continue
    command -v "$q" >/dev/null || continue
    for kernel in i2_gemv i2_gemm q8_0_gemv; do
        base=
        for t in $(echo "$tables" | tr , ' '); do
            a=$(insns "$q" "$cpu" "$bin" --calls "$kernel" --isa "$t" --shape "$shape" -n "$n")
            b=$(insns "$q" "$cpu" "$bin" --calls "$kernel" --isa "$t" --shape "$shape" -n $((2 * n)))
            [ -n "$a" ] && [ -n "$b" ] || { echo "| $target | $t | $kernel | (does not run) | | |"; continue; }
            per=$(( (b - a) / n ))
            vec=1
            [ "$kernel" = i2_gemm ] && vec=8
            perk=$(awk -v p="$per" -v r="$rows" -v c="$cols" -v v="$vec" 'BEGIN { printf "%.1f", p * 1000 / (r * c * v) }')
            [ "$t" = scalar ] && base=$per
            ratio=$( [ -n "$base" ] && awk -v b="$base" -v p="$per" 'BEGIN { printf "%.1f", b / p }' || echo "-")
            echo "| $target | $t | $kernel | $per | $perk | $ratio |"
        done
    done
done
