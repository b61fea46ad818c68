#!/usr/bin/env bash
# deploy/test.sh - three build/server replicas behind Debian's nginx, run with
# deploy/nginx/bitnet.conf itself (only the ports rewritten), driven by
# deploy/load.py (make test-deploy; CI runs it):
#
#   1. throughput: the same load through nginx with 1 replica, then 3;
#   2. rolling restart: during a load of at least REQUESTS requests at
#      CONCURRENCY (it goes on until the restarts are over), every replica in
#      turn gets SIGTERM, drains, exits 0 and is started again; every response
#      must be complete (0 failed, streams end with [DONE]);
#   3. crash: during a load, one replica gets SIGKILL; only the requests in
#      flight on it may fail, each with a 502/503 or a cut stream, none hangs;
#      nginx routes the rest around it, and it serves again once restarted.
#
# Loopback only. Everything it starts it stops, by PID, also on failure.
# Installs nginx with apt-get if it is missing (root), else skips with a message.
#
#   REQUESTS=600 CONCURRENCY=24 MAX_TOKENS=96 BUILD=build deploy/test.sh
set -uo pipefail
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
REQUESTS=${REQUESTS:-600}
CONCURRENCY=${CONCURRENCY:-24}
MAX_TOKENS=${MAX_TOKENS:-96}
REPLICA_OPTS=${REPLICA_OPTS:-"--slots 4 --queue 32 -t 1 --max-connections 128 --max-connections-per-client 128 --shutdown-grace 30000"}

passed=0
say() { echo "deploy: $*"; }
# the test runner's summary line, which .ci/run adds up
die() { keep_logs=1; say "FAIL: $*"; echo "$passed passed, 1 failed, 0 skipped"; exit 1; }
pass() { passed=$((passed + 1)); say "$*"; }

if ! command -v nginx >/dev/null 2>&1 && [ -x /usr/sbin/nginx ]; then PATH=$PATH:/usr/sbin; fi
if ! command -v nginx >/dev/null 2>&1; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        say "installing nginx"
        (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nginx-light || \
            DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nginx) >/dev/null 2>&1
        PATH=$PATH:/usr/sbin
    fi
    command -v nginx >/dev/null 2>&1 || { say "SKIP: nginx is not installed and cannot be installed here"; echo "0 passed, 0 failed, 1 skipped"; exit 0; }
fi
for t in python3 curl; do command -v $t >/dev/null || die "$t is needed"; done
[ -x "$BUILD/server" ] || die "$BUILD/server is missing (make first)"

work=$(mktemp -d /tmp/bitnet-deploy.XXXXXX)
chmod 755 "$work"
mkdir -m 1777 "$work/tmp"
declare -a pids ports
nginx_pid=
cleanup() {
    for p in "${pids[@]:-}"; do [ -n "$p" ] && kill -KILL "$p" 2>/dev/null; done
    [ -n "$nginx_pid" ] && kill -TERM "$nginx_pid" 2>/dev/null
    [ -n "${load_pid:-}" ] && kill -KILL "$load_pid" 2>/dev/null
    wait 2>/dev/null
    if [ "${keep_logs:-0}" = 1 ]; then say "logs kept in $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT
trap 'exit 1' INT TERM

# five free loopback ports: nginx and the replicas
ports_line=$(python3 -c '
import socket
ss = [socket.socket() for _ in range(5)]
for s in ss: s.bind(("127.0.0.1", 0))
ports = [s.getsockname()[1] for s in ss]
for s in ss: s.close()
print(" ".join(map(str, ports)))')
read -r -a ports <<<"$ports_line"
front=${ports[0]}

health() { curl -s -o /dev/null -m 2 -w '%{http_code}' "http://127.0.0.1:$1/health" 2>/dev/null; }

start_replica() { # index
    local i=$1
    # shellcheck disable=SC2086
    "$BUILD/server" --host 127.0.0.1 --port "${ports[$i]}" $REPLICA_OPTS 2>>"$work/replica$i.log" &
    pids[$i]=$!
}
wait_ready() { # index
    local i=$1 t=0
    until [ "$(health "${ports[$i]}")" = 200 ]; do
        kill -0 "${pids[$i]}" 2>/dev/null || die "replica $i exited: $(tail -3 "$work/replica$i.log")"
        sleep 0.1; t=$((t + 1)); [ $t -lt 600 ] || die "replica $i not ready after 60 s"
    done
}

start_nginx() { # number of replicas in the upstream
    local n=$1 servers="" i
    for ((i = 1; i <= n; i++)); do servers+="    server 127.0.0.1:${ports[$i]} max_fails=1 fail_timeout=3s;\n"; done
    # the shipped file, with our ports: its upstream servers replaced, its listen port changed
    sed -e '/^    server 127\.0\.0\.1:808[0-9] /d' -e "s/^    least_conn;/    least_conn;\n$servers/" \
        -e "s/listen 127\.0\.0\.1:8080;/listen 127.0.0.1:$front;/" deploy/nginx/bitnet.conf >"$work/bitnet.conf"
    cat >"$work/nginx.conf" <<EOF
worker_processes 1;
pid $work/nginx.pid;
error_log $work/nginx-error.log warn;
events { worker_connections 1024; }
http {
    log_format upstreams '\$status \$request_uri upstream \$upstream_addr \$upstream_status \$request_time';
    access_log $work/access.log upstreams;
    client_body_temp_path $work/tmp/body;
    proxy_temp_path $work/tmp/proxy;
    fastcgi_temp_path $work/tmp/fastcgi;
    uwsgi_temp_path $work/tmp/uwsgi;
    scgi_temp_path $work/tmp/scgi;
    include $work/bitnet.conf;
}
EOF
    nginx -t -q -c "$work/nginx.conf" -p "$work" 2>"$work/nginx-t.log" || die "nginx rejects the config: $(cat "$work/nginx-t.log")"
    nginx -c "$work/nginx.conf" -p "$work" -g 'daemon off;' 2>>"$work/nginx-error.log" &
    nginx_pid=$!
    local t=0
    until [ "$(health "$front")" = 200 ]; do
        sleep 0.1; t=$((t + 1)); [ $t -lt 100 ] || die "nginx not answering on $front: $(tail -3 "$work/nginx-error.log")"
    done
}
stop_nginx() { kill -TERM "$nginx_pid"; wait "$nginx_pid" 2>/dev/null; nginx_pid=; }

load() { # json-file extra-args...
    local out=$1; shift
    python3 deploy/load.py --url "http://127.0.0.1:$front" --requests "$REQUESTS" --concurrency "$CONCURRENCY" \
        --max-tokens "$MAX_TOKENS" --json "$out" "$@"
}
field() { python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])' "$1" "$2"; }

# the systemd unit parses, with its ExecStart pointed at this build
if command -v systemd-analyze >/dev/null 2>&1; then
    sed "s|/usr/local/bin/bitnet-server|$PWD/$BUILD/server|" deploy/systemd/bitnet-server.service >"$work/bitnet-server.service"
    systemd-analyze verify "$work/bitnet-server.service" >"$work/systemd.log" 2>&1 || die "systemd-analyze verify: $(cat "$work/systemd.log")"
    exposure=$(systemd-analyze security --offline=yes "$work/bitnet-server.service" 2>/dev/null | grep -o 'exposure level for.*' || true)
    pass "systemd unit verified; ${exposure:-security not rated}"
fi

for i in 1 2 3; do start_replica $i; done
for i in 1 2 3; do wait_ready $i; done
say "3 replicas ready on ports ${ports[1]} ${ports[2]} ${ports[3]}; nginx on $front"

# ---- 1. throughput: 1 replica, then 3 -------------------------------------------------------
start_nginx 1
load "$work/one.json" || die "load on 1 replica failed"
stop_nginx
start_nginx 3
load "$work/three.json" || die "load on 3 replicas failed"
t1=$(field "$work/one.json" tokens_per_s); t3=$(field "$work/three.json" tokens_per_s)
pass "throughput: 1 replica $t1 tokens/s, 3 replicas $t3 tokens/s ($(python3 -c "print(round($t3 / $t1, 2))")x), $(nproc) CPUs"

# ---- 2. rolling restart under load ----------------------------------------------------------
# the load goes on until the restarts are over (--until), however fast the machine
load "$work/rolling.json" --until "$work/restarts-done" & load_pid=$!
sleep 1
for i in 1 2 3; do
    kill -TERM "${pids[$i]}"
    wait "${pids[$i]}"; rc=$?
    [ $rc = 0 ] || die "replica $i exited $rc after SIGTERM: $(tail -3 "$work/replica$i.log")"
    kill -0 "$load_pid" 2>/dev/null || die "the load ended before replica $i was restarted"
    start_replica $i
    wait_ready $i
    # nginx's health checks are passive: the 503s of the drain marked this
    # replica down for fail_timeout (3 s); only after that does nginx send it
    # requests again. Stopping the next one earlier would leave too few.
    sleep 4
    say "replica $i restarted (SIGTERM, drained, exit 0, ready again, back in nginx's rotation)"
done
kill -0 "$load_pid" 2>/dev/null || die "the load ended before the last restart completed"
touch "$work/restarts-done"
wait "$load_pid"; rc=$?; load_pid=
[ $rc = 0 ] || { keep_logs=1; die "rolling restart: $(field "$work/rolling.json" failed) failed responses: $(field "$work/rolling.json" failures)"; }
for i in 1 2 3; do
    n=$(grep -c "server: stopped" "$work/replica$i.log")
    [ "$n" = 1 ] || die "replica $i stopped $n times, expected once"
done
pass "rolling restart: $(field "$work/rolling.json" requests) requests, 0 failed, every replica restarted once"

# ---- 3. one replica killed (SIGKILL) under load ---------------------------------------------
load "$work/kill.json" --allow-failures "$CONCURRENCY" & load_pid=$!
sleep 2
kill -0 "$load_pid" 2>/dev/null || die "the load ended before the kill: raise REQUESTS or MAX_TOKENS"
# connections open on the victim: an upper bound on the requests in flight there
inflight=$(ss -Htn state established "( sport = :${ports[2]} )" | wc -l)
kill -KILL "${pids[2]}"; wait "${pids[2]}" 2>/dev/null
t0=$(date +%s)
wait "$load_pid"; load_pid=
failed=$(field "$work/kill.json" failed)
kinds=$(field "$work/kill.json" failures)
slowest=$(field "$work/kill.json" slowest_s)
[ "$failed" -le "$inflight" ] || die "SIGKILL: $failed failed, more than the $inflight connections open on the killed replica: $kinds"
python3 - "$work/kill.json" <<'EOF' || die "SIGKILL: failures other than 502/503/cut stream: $kinds"
import json, sys
kinds = json.load(open(sys.argv[1]))["failures"]
sys.exit(0 if all(k in ("HTTP 502", "HTTP 503", "truncated") for k in kinds) else 1)
EOF
pass "SIGKILL of one replica: $failed of $REQUESTS failed (connections open on it: $inflight) $kinds, slowest request ${slowest} s, no hang"
start_replica 2
wait_ready 2
curl -s -m 30 -o /dev/null -w '%{http_code}' "http://127.0.0.1:$front/v1/completions" -H 'Content-Type: application/json' \
    -d '{"prompt":"Once","max_tokens":4}' | grep -q 200 || die "no answer after the restart"
pass "the killed replica serves again once restarted"
echo "$passed passed, 0 failed, 0 skipped"
