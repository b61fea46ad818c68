#!/usr/bin/env bash
# fuzz/run.sh - runs every fuzz target (build-fuzz/fuzz_*, from `make fuzz`) for
# FUZZ_SECONDS seconds each, after replaying the inputs that once crashed it
# (fuzz/regressions/TARGET/). Exits non-zero if any target crashes, leaks, times
# out or runs out of memory; the input is kept in build-fuzz/artifacts/.
#
#   FUZZ_SECONDS=60 fuzz/run.sh [TARGET...]      (make fuzz-run does this)
#
# Corpora grow in build-fuzz/corpus/TARGET across runs; the seeds are rebuilt
# by fuzz/make-corpus.sh. Logs: build-fuzz/logs/TARGET.log.
set -uo pipefail
cd "$(dirname "$0")/.."
secs=${FUZZ_SECONDS:-60}
fuzz/make-corpus.sh build-fuzz/seeds >/dev/null || exit 1
mkdir -p build-fuzz/artifacts build-fuzz/logs
targets=("$@")
[ ${#targets[@]} -eq 0 ] && targets=($(ls build-fuzz/fuzz_* | sed 's|build-fuzz/fuzz_||'))
failed=()
for t in "${targets[@]}"; do
    bin=build-fuzz/fuzz_$t
    log=build-fuzz/logs/$t.log
    mkdir -p "build-fuzz/corpus/$t"
    seeds=()
    [ -d "build-fuzz/seeds/$t" ] && seeds=("build-fuzz/seeds/$t")
    dict=()
    [ -f "fuzz/$t.dict" ] && dict=(-dict="fuzz/$t.dict")
    case $t in model) dict=(-dict=fuzz/gguf.dict) ;; safetensors) dict=(-dict=fuzz/json.dict) ;; esac
    # a crash found earlier must stay fixed
    if compgen -G "fuzz/regressions/$t/*" >/dev/null; then
        if ! "$bin" fuzz/regressions/$t/* >"$log" 2>&1; then
            echo "FAIL $t: a regression input crashes again"; tail -40 "$log"; failed+=("$t"); continue
        fi
    fi
    # -timeout: one input may not take longer; -rss_limit_mb / -malloc_limit_mb:
    # a hostile file must not make us allocate more than that.
    "$bin" -max_total_time="$secs" -timeout=25 -rss_limit_mb=2560 -malloc_limit_mb=2048 \
        -print_final_stats=1 -artifact_prefix="build-fuzz/artifacts/$t-" "${dict[@]}" \
        "build-fuzz/corpus/$t" "${seeds[@]}" >"$log" 2>&1
    rc=$?
    execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$')
    cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1)
    if [ $rc -ne 0 ]; then
        echo "FAIL $t (exit $rc) after ${execs:-?} executions:"; grep -A30 -m1 'ERROR\|contract violated\|deadly' "$log"
        failed+=("$t")
    else
        echo "ok   $t: ${execs:-?} executions in ${secs}s, $cov, corpus $(ls "build-fuzz/corpus/$t" | wc -l) files"
    fi
done
[ ${#failed[@]} -eq 0 ] || { echo "fuzz: crashes in: ${failed[*]}"; exit 1; }
