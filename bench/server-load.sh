#!/bin/sh
# server-load.sh - K concurrent streaming clients against build/server for S seconds.
#
#   bench/server-load.sh URL K S        one run, e.g. http://127.0.0.1:8080 4 10
#   bench/server-load.sh URL all S      K = 1, 2, 4, 8 and the 4-stream / 1-stream throughput ratio
#   bench/server-load.sh start all S    starts build/server itself (--slots 8 --port 0, the
#                                       embedded model unless $SERVER_ARGS has -m FILE) and
#                                       stops it afterwards
#
# Each line: total tok/s over all clients, per-token latency p50/p95/p99 (gap between
# consecutive SSE events of a request, measured by the client), time to first token.
# Environment: MAX_TOKENS (per request, default 128), API_KEY, BUILD (default build).
set -eu
[ $# -eq 3 ] || { sed -n '2,12p' "$0"; exit 2; }
URL=$1 K=$2 S=$3
BUILD=${BUILD:-build}
LOAD="$BUILD/server_load"
[ -x "$LOAD" ] || { echo "server-load.sh: $LOAD not found (run make)" >&2; exit 1; }
set -- --max-tokens "${MAX_TOKENS:-128}"
[ -n "${API_KEY:-}" ] && set -- "$@" --api-key "$API_KEY"

SERVER_PID=
if [ "$URL" = start ]; then
    LOG=$(mktemp)
    # shellcheck disable=SC2086
    "$BUILD/server" --port 0 --slots 8 ${SERVER_ARGS:-} 2>"$LOG" &
    SERVER_PID=$!
    trap 'kill -TERM $SERVER_PID 2>/dev/null; wait $SERVER_PID 2>/dev/null; rm -f "$LOG"' EXIT
    for _ in $(seq 100); do
        grep -q 'listening on' "$LOG" && break
        sleep 0.1
    done
    URL=$(sed -n 's/.*listening on \(http:[^ ]*\).*/\1/p' "$LOG")
    [ -n "$URL" ] || { cat "$LOG" >&2; exit 1; }
    head -1 "$LOG"
fi

if [ "$K" != all ]; then
    "$LOAD" "$URL" "$K" "$S" "$@"
    exit
fi
OUT=$(mktemp)
for k in 1 2 4 8; do
    "$LOAD" "$URL" "$k" "$S" "$@" | tee -a "$OUT"
done
awk '/^K=1 /{for(i=1;i<=NF;i++) if($i=="total") one=$(i+1)}
     /^K=4 /{for(i=1;i<=NF;i++) if($i=="total") four=$(i+1)}
     END{if (one > 0) printf "4-stream / 1-stream total throughput: %.2fx\n", four / one}' "$OUT"
rm -f "$OUT"
