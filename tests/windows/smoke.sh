#!/usr/bin/env bash
# smoke.sh BUILD - the Windows build end to end under Wine: server.exe (Winsock)
# talked to with curl from this side (/health, a temperature-0 completion that
# must equal infer.exe's text for the same prompt, a streamed chat completion,
# a 400 for a broken body, /metrics), and dll_smoke.exe, a program linked with
# bitnet.dll's import library, whose greedy text must be infer.exe's too.
# Prints "N passed, N failed, N skipped" like run_tests.
set -u
build=${1:-build-win64}
export WINEDEBUG=${WINEDEBUG:--all}
log=$(mktemp)
pass=0 fail=0
check() { # check NAME CONDITION-EXIT-STATUS
    if [ "$2" -eq 0 ]; then echo "ok   windows_$1"; pass=$((pass + 1))
    else echo "FAIL windows_$1"; fail=$((fail + 1)); fi
}
wine "$build/server.exe" --port 0 >"$log" 2>&1 &
pid=$!
disown $pid # no "Killed" notice from this shell when the trap ends it
trap 'kill -9 $pid 2>/dev/null; rm -f "$log"' EXIT
port=
for _ in $(seq 1 120); do
    port=$(sed -n 's/.*listening on http:\/\/127\.0\.0\.1:\([0-9]*\) .*/\1/p' "$log")
    [ -n "$port" ] && break
    sleep 0.25
done
if [ -z "$port" ]; then
    echo "FAIL windows_server_starts: no 'listening on' line:"; cat "$log"
    echo "0 passed, 1 failed, 0 skipped"; exit 1
fi
url=http://127.0.0.1:$port

curl -sf -m 10 "$url/health" | grep -q '"status":"ok"'
check server_health $?

want=$(wine "$build/infer.exe" -p "Once upon a time" -n 24 --temp 0 --no-display-prompt 2>/dev/null)
got=$(curl -sf -m 60 "$url/v1/completions" -d '{"prompt":"Once upon a time","max_tokens":24,"temperature":0}' |
      python3 -c 'import json,sys; print(json.load(sys.stdin)["choices"][0]["text"], end="")')
[ -n "$want" ] && [ "$got" = "$want" ]
r=$?
[ $r -eq 0 ] || printf '    completion: %q\n    infer:      %q\n' "$got" "$want"
check server_completion_equals_infer $r

dll=$(wine "$build/dll_smoke.exe" "Once upon a time" 24 2>&1)
[ -n "$want" ] && [ "$dll" = "$want" ]
r=$?
[ $r -eq 0 ] || printf '    dll_smoke: %q\n    infer:     %q\n' "$dll" "$want"
check dll_program_equals_infer $r

n=$(curl -sfN -m 60 "$url/v1/chat/completions" \
    -d '{"messages":[{"role":"user","content":"Hi"}],"max_tokens":6,"stream":true}' | grep -c '^data: ')
[ "${n:-0}" -ge 3 ]
check server_chat_stream $?

code=$(curl -s -o /dev/null -w '%{http_code}' -m 10 "$url/v1/completions" -d '{"prompt": ')
[ "$code" = 400 ]
check server_bad_json_is_400 $?

curl -sf -m 10 "$url/metrics" | grep -q '^bitnet_requests_total'
check server_metrics $?

echo "$pass passed, $fail failed, 0 skipped"
[ $fail -eq 0 ]
