#!/usr/bin/env python3
"""bench/prefix_cache.py - time to first token of build/server with and without
its prefix cache, on a shared system prompt (Python standard library only).

    build/server -m MODEL --slots 2 -c 1024 &
    python3 bench/prefix_cache.py --url http://127.0.0.1:8080 [--system-tokens 400] [--rounds 5]

Each round sends a chat-style completion: the same system prompt (about
--system-tokens tokens) followed by a different short question, streamed, and
measures the time from sending the request to its first token, alternating
"cold" (cache_prompt false: the whole prompt is evaluated) and "warm"
(cache_prompt true, after the system prompt was evaluated once by an earlier
request). Prints the median of each, their ratio, and the cached token counts.
"""
import argparse
import http.client
import json
import statistics
import time
import urllib.parse

WORDS = ("the little robot walked along the quiet river and counted the stones it saw, "
         "thinking about the stars, the rain and the old lighthouse on the hill. ").split()


def system_prompt(n_words):
    return "You are a helpful assistant. " + " ".join(WORDS[i % len(WORDS)] for i in range(n_words))


def ttft(host, port, prompt, cache, api_key):
    body = {"prompt": prompt, "max_tokens": 4, "temperature": 0, "stream": True, "cache_prompt": cache,
            "stream_options": {"include_usage": True}}
    headers = {"Content-Type": "application/json"}
    if api_key:
        headers["Authorization"] = "Bearer " + api_key
    conn = http.client.HTTPConnection(host, port, timeout=600)
    t0 = time.monotonic()
    conn.request("POST", "/v1/completions", json.dumps(body), headers)
    r = conn.getresponse()
    if r.status != 200:
        raise SystemExit("HTTP %d: %s" % (r.status, r.read()[:200]))
    first, cached = None, None
    for raw in r:
        line = raw.decode("utf-8", "replace").strip()
        if not line.startswith("data: ") or line == "data: [DONE]":
            continue
        ev = json.loads(line[6:])
        if first is None and ev.get("choices"):
            first = time.monotonic() - t0
        if ev.get("usage"):
            cached = ev["usage"].get("prompt_tokens_details", {}).get("cached_tokens")
            prompt_tokens = ev["usage"]["prompt_tokens"]
    conn.close()
    return first, cached, prompt_tokens


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--url", default="http://127.0.0.1:8080")
    ap.add_argument("--system-tokens", type=int, default=400)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--api-key", default="")
    a = ap.parse_args()
    u = urllib.parse.urlparse(a.url)
    # words per token differ between vocabularies: measure with 100 words, then scale
    _, _, n100 = ttft(u.hostname, u.port, system_prompt(100), False, a.api_key)
    sys_p = system_prompt(max(1, round(a.system_tokens * 100 / n100)))
    questions = ["\nUser: What did the robot count? Tell me in one short sentence please.\nAssistant:",
                 "\nUser: Where was the lighthouse standing, and what did the robot think about?\nAssistant:",
                 "\nUser: Describe the river that the little robot walked along, in a few words.\nAssistant:",
                 "\nUser: Was it raining when the robot walked by the river? Answer yes or no.\nAssistant:",
                 "\nUser: Write a title for this story about the robot and the old lighthouse.\nAssistant:"]
    ttft(u.hostname, u.port, sys_p + questions[0], True, a.api_key)  # warm-up: the system prompt in a slot
    cold, warm, cached, n_prompt = [], [], [], 0
    for i in range(a.rounds):
        # a question no earlier request asked: only the system prompt can come from the cache
        q = questions[i % len(questions)] + " (%d)" % i
        t, _, n_prompt = ttft(u.hostname, u.port, sys_p + q, False, a.api_key)
        cold.append(t)
        q = questions[(i + 2) % len(questions)] + " [%d]" % i
        t, c, _ = ttft(u.hostname, u.port, sys_p + q, True, a.api_key)
        warm.append(t)
        cached.append(c)
    mc, mw = statistics.median(cold), statistics.median(warm)
    print("prefix cache: prompt %d tokens, cached %s; time to first token cold %.1f ms, warm %.1f ms (median of %d): "
          "%.1fx" % (n_prompt, cached, mc * 1e3, mw * 1e3, a.rounds, mc / mw))


if __name__ == "__main__":
    main()
