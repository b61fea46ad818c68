#!/usr/bin/env python3
"""deploy/load.py - a bounded load on build/server (directly or behind nginx)
that checks every answer. Python standard library only.

    python3 deploy/load.py --url http://127.0.0.1:8080 --requests 600 --concurrency 24

Sends --requests requests from --concurrency threads, each on a new
connection, alternating four kinds: /v1/completions and /v1/chat/completions,
each streamed (SSE) and not. An answer counts as ok only if it is complete:
HTTP 200 and, for a stream, every event valid JSON, a finish_reason, and the
final "data: [DONE]"; otherwise, valid JSON with a finish_reason and usage.
Prints one summary line and, with --json FILE, writes the counts (ok, failed,
failures by kind, generated tokens, wall time, tokens/s). Exits 1 if any
request failed, unless --allow-failures N permits that many.
"""
import argparse
import http.client
import json
import os
import sys
import threading
import time
import urllib.parse


def one_request(host, port, i, args):
    """Returns (ok, failure_kind or None, completion tokens, seconds)."""
    chat = (i // 2) % 2 == 1
    stream = i % 2 == 0
    body = {"max_tokens": args.max_tokens, "temperature": 0.8, "seed": i, "stream": stream}
    if stream:
        body["stream_options"] = {"include_usage": True}
    if chat:
        body["messages"] = [{"role": "user", "content": "Tell me a story about a cat number %d." % i}]
        path = "/v1/chat/completions"
    else:
        body["prompt"] = "Once upon a time, number %d" % i
        path = "/v1/completions"
    headers = {"Content-Type": "application/json"}
    if args.api_key:
        headers["Authorization"] = "Bearer " + args.api_key
    t0 = time.monotonic()
    conn = http.client.HTTPConnection(host, port, timeout=args.timeout)
    try:
        conn.request("POST", path, json.dumps(body), headers)
        r = conn.getresponse()
        data = r.read()
    except (TimeoutError, OSError) as e:  # socket.timeout is a TimeoutError
        kind = "timeout" if isinstance(e, TimeoutError) else "connection: " + type(e).__name__
        return False, kind, 0, time.monotonic() - t0
    except http.client.IncompleteRead:
        return False, "truncated", 0, time.monotonic() - t0
    except http.client.HTTPException as e:
        return False, "http: " + type(e).__name__, 0, time.monotonic() - t0
    finally:
        conn.close()
    dt = time.monotonic() - t0
    if r.status != 200:
        return False, "HTTP %d" % r.status, 0, dt
    text = data.decode("utf-8", "replace")
    try:
        if not stream:
            j = json.loads(text)
            if not j["choices"][0].get("finish_reason"):
                return False, "no finish_reason", 0, dt
            return True, None, int(j["usage"]["completion_tokens"]), dt
        if not text.endswith("data: [DONE]\n\n"):
            return False, "truncated", 0, dt
        finish, tokens = None, 0
        for line in text.split("\n"):
            if not line.startswith("data: ") or line == "data: [DONE]":
                continue
            ev = json.loads(line[6:])
            if "error" in ev:
                return False, "stream error", 0, dt
            for c in ev.get("choices") or []:
                finish = c.get("finish_reason") or finish
            if ev.get("usage"):
                tokens = int(ev["usage"]["completion_tokens"])
        if not finish:
            return False, "no finish_reason", 0, dt
        return True, None, tokens, dt
    except (ValueError, KeyError, IndexError, TypeError):
        return False, "bad JSON", 0, dt


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--url", default="http://127.0.0.1:8080")
    ap.add_argument("--requests", type=int, default=600)
    ap.add_argument("--concurrency", type=int, default=24)
    ap.add_argument("--max-tokens", type=int, default=16)
    ap.add_argument("--timeout", type=float, default=120.0, help="seconds without a byte before a request counts as hung")
    ap.add_argument("--api-key", default="")
    ap.add_argument("--json", help="write the counts here")
    ap.add_argument("--allow-failures", type=int, default=0)
    ap.add_argument("--until", metavar="FILE",
                    help="after the --requests, keep sending until FILE exists (a test's events happen during the load "
                         "however fast the machine)")
    args = ap.parse_args()
    u = urllib.parse.urlparse(args.url)
    host, port = u.hostname, u.port or 80

    lock = threading.Lock()
    state = {"next": 0, "ok": 0, "failed": 0, "tokens": 0, "kinds": {}, "slowest": 0.0}

    def worker():
        while True:
            with lock:
                i = state["next"]
                if i >= args.requests and not (args.until and not os.path.exists(args.until)):
                    return
                state["next"] += 1
            ok, kind, tokens, dt = one_request(host, port, i, args)
            with lock:
                state["slowest"] = max(state["slowest"], dt)
                if ok:
                    state["ok"] += 1
                    state["tokens"] += tokens
                else:
                    state["failed"] += 1
                    state["kinds"][kind] = state["kinds"].get(kind, 0) + 1

    t0 = time.monotonic()
    threads = [threading.Thread(target=worker) for _ in range(args.concurrency)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.monotonic() - t0
    n = state["next"]
    res = {
        "requests": n, "concurrency": args.concurrency, "ok": state["ok"], "failed": state["failed"],
        "failures": state["kinds"], "tokens": state["tokens"], "wall_s": round(wall, 3),
        "tokens_per_s": round(state["tokens"] / wall, 1), "requests_per_s": round(n / wall, 2),
        "slowest_s": round(state["slowest"], 3),
    }
    print("load: %d requests at %d concurrent: %d ok, %d failed %s, %d tokens in %.1f s (%.1f tokens/s, "
          "%.2f requests/s, slowest %.1f s)" % (n, args.concurrency, res["ok"], res["failed"],
                                                 json.dumps(res["failures"]), res["tokens"], wall,
                                                 res["tokens_per_s"], res["requests_per_s"], res["slowest_s"]))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(res, f)
    return 0 if res["failed"] <= args.allow_failures else 1


if __name__ == "__main__":
    sys.exit(main())
