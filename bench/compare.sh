#!/bin/sh
# compare.sh - our build/bench against the peers' llama-bench on the same GGUF file,
# run alternately, with the ratios from that one run.
#
#   LLAMA_BENCH=/path/llama-bench BITNET_BENCH=/path/llama-bench bench/compare.sh MODEL.gguf
#
# Environment (a peer left unset is skipped; the peers are not part of this repository):
#   LLAMA_BENCH   llama.cpp's llama-bench       BITNET_BENCH  bitnet.cpp's llama-bench
#   IK_BENCH      ik_llama.cpp's llama-bench
#   THREADS (default 1,2), P (prompt tokens, default 64), N (generated tokens, default 32),
#   ROUNDS (default 3: ours, then each peer, ROUNDS times), BUILD (default build)
# Every run is `-m MODEL -p P -n N -t THREADS -r 3 -o csv` (llama-bench's flags, which ours
# takes too). Prints, per test and thread count, the median tokens/s of each runtime over the
# rounds and ours / peer. Exit 2 on bad usage, 1 when a runtime fails.
set -eu
[ $# -eq 1 ] || { sed -n '2,14p' "$0"; exit 2; }
MODEL=$1
BUILD=${BUILD:-build}
[ -f "$MODEL" ] || { echo "compare.sh: $MODEL: no such file" >&2; exit 2; }
[ -x "$BUILD/bench" ] || { echo "compare.sh: $BUILD/bench not found (run make)" >&2; exit 1; }
OUT=$(mktemp -d)
trap 'rm -rf "$OUT"' EXIT

run() { # NAME BINARY
    if ! "$2" -m "$MODEL" -p "${P:-64}" -n "${N:-32}" -t "${THREADS:-1,2}" -r 3 -o csv >"$OUT/run.csv" 2>"$OUT/err"; then
        echo "compare.sh: $1 ($2) failed:" >&2
        tail -n 5 "$OUT/err" >&2
        exit 1
    fi
    sed "s|^|$1,|" "$OUT/run.csv" >>"$OUT/all.csv"
}

for _ in $(seq "${ROUNDS:-3}"); do
    run ours "$BUILD/bench"
    [ -n "${LLAMA_BENCH:-}" ] && run llama.cpp "$LLAMA_BENCH"
    [ -n "${BITNET_BENCH:-}" ] && run bitnet.cpp "$BITNET_BENCH"
    [ -n "${IK_BENCH:-}" ] && run ik_llama.cpp "$IK_BENCH"
done

python3 - "$OUT/all.csv" "$MODEL" <<'PY'
import csv, statistics, sys
from collections import defaultdict
rows, header = defaultdict(list), {}
for line in csv.reader(open(sys.argv[1])):
    name, fields = line[0], line[1:]
    if "avg_ts" in fields:          # each run's header line (its columns, by name)
        header[name] = {k: i for i, k in enumerate(fields)}
        continue
    h = header[name]
    p, n = int(fields[h["n_prompt"]]), int(fields[h["n_gen"]])
    test = f"pp{p}" if p else f"tg{n}"
    rows[(test, int(fields[h["n_threads"]]), name)].append(float(fields[h["avg_ts"]]))
names = ["ours"] + sorted({k[2] for k in rows} - {"ours"})
print(f"{sys.argv[2]}: median tokens/s over the rounds, ours / peer from the same run\n")
print("| test | threads | " + " | ".join(names) + " | " + " | ".join(f"ours / {n}" for n in names[1:]) + " |")
print("|---|---:|" + "---:|" * (2 * len(names) - 1))
for test, thr in sorted({(k[0], k[1]) for k in rows}):
    med = {n: statistics.median(rows[(test, thr, n)]) for n in names if rows.get((test, thr, n))}
    cells = [f"{med[n]:.2f}" if n in med else "-" for n in names]
    ratios = [f"{med['ours'] / med[n]:.2f}x" if n in med and "ours" in med else "-" for n in names[1:]]
    print(f"| {test} | {thr} | " + " | ".join(cells + ratios) + " |")
PY
