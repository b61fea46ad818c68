#!/usr/bin/env python3
"""check-layers.py BUILD - the layering rules of docs/architecture.md.

1. No cycle among the src/ files of libbitnet, by calls: file A depends on B
   when A's object uses a symbol B's object defines (nm). A cycle means two
   files know each other, which the layout exists to prevent.
2. No cycle among src/ headers by #include.
3. libbitnet.a holds no server code (HTTP parser, OpenAI API, scheduler).
4. Tools include only the public header bitnet.h and their own helpers, plus
   the internal headers listed for them below (each one a known, narrow need).
Prints one line per violation; exit status 1 if there is any.
"""
import glob, os, re, subprocess, sys

build = sys.argv[1] if len(sys.argv) > 1 else "build"
bad = []

# ---- 1. call cycles ---------------------------------------------------------
objs = [o for o in glob.glob(f"{build}/obj/src/**/*.o", recursive=True)
        if os.path.exists(o[len(build) + 5:-2] + ".c")]
defs, uses = {}, {}
for o in objs:
    d, u = set(), set()
    for line in subprocess.run(["nm", o], capture_output=True, text=True).stdout.splitlines():
        f = line.split()
        if len(f) == 2 and f[0] == "U":
            u.add(f[1])
        elif len(f) == 3 and f[1] in "TDRB":
            d.add(f[2])
    defs[o], uses[o] = d, u
owner = {s: o for o, d in defs.items() for s in d}
graph = {o: {owner[s] for s in uses[o] if s in owner and owner[s] != o} for o in objs}

def cycles(g):
    """Strongly connected components with more than one node (Tarjan)."""
    index, low, stack, on, out, n = {}, {}, [], set(), [], [0]
    def visit(v):
        index[v] = low[v] = n[0]; n[0] += 1; stack.append(v); on.add(v)
        for w in g.get(v, ()):
            if w not in index:
                visit(w); low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop(); on.discard(w); comp.append(w)
                if w == v: break
            if len(comp) > 1: out.append(comp)
    sys.setrecursionlimit(100000)
    for v in list(g):
        if v not in index: visit(v)
    return out

src_of = lambda o: o[len(build) + 5:-2] + ".c"
for comp in cycles(graph):
    edges = [f"{src_of(a)} -> {src_of(b)} ({', '.join(sorted(uses[a] & defs[b])[:3])})"
             for a in comp for b in graph[a] if b in comp]
    bad.append("call cycle: " + "; ".join(sorted(edges)))

# ---- 2. include cycles ------------------------------------------------------
inc = {}
for p in glob.glob("src/**/*.[ch]", recursive=True):
    inc[p] = set()
    for h in re.findall(r'#\s*include\s+"([^"]+)"', open(p, encoding="utf-8").read()):
        for cand in ("src/" + h, os.path.join(os.path.dirname(p), h)):
            if os.path.exists(cand):
                inc[p].add(os.path.normpath(cand)); break
for comp in cycles(inc):
    bad.append("include cycle: " + " <-> ".join(sorted(comp)))

# ---- 3. no server code in libbitnet -----------------------------------------
lib = f"{build}/libbitnet.a"
if os.path.exists(lib):
    syms = subprocess.run(["nm", "--defined-only", lib], capture_output=True, text=True).stdout
    for s in sorted(set(re.findall(r"\b(bn_(?:http|server|sched)\w*)", syms))):
        bad.append(f"{lib}: server symbol {s} (it belongs in libbitnet-server.a)")
else:
    bad.append(f"{lib}: missing (run make first)")

# ---- 4. what tools include --------------------------------------------------
own = {"bitnet.h", "util.h", "portable.h", "bench.h", "latency.h", "http.h", "server.h", "server_main.h", "net.h"}
allowed = {
    # the tokenizer on its own, without a model (tokenize --vocab-only files)
    "tools/tokenize.c": {"tokenizer/tokenizer.h"},
    # the perplexity windows shared with prune (same number for the same input)
    "tools/perplexity.c": {"model/perplexity.h"},
    # the request-body JSON the server shares with the library's parser
    "server/main.c": {"formats/json.h"},
    "server/endpoints.c": {"formats/json.h"},
    # Writers of model files: through the narrow model-writer interface only
    "tools/convert.c": {"model/model_writer.h"},
    # prune also scores the same windows as build/perplexity, and publishes -o
    # and --report only after the written model loaded back (atomic files)
    "tools/prune.c": {"model/model_writer.h", "model/perplexity.h", "formats/atomic_file.h"},
}
for p in sorted(glob.glob("tools/*.c")) + ["server/main.c", "server/endpoints.c", "server/server_main.h"]:
    for h in re.findall(r'#\s*include\s+"([^"]+)"', open(p, encoding="utf-8").read()):
        if h not in own and h not in allowed.get(p, ()):
            bad.append(f"{p}: includes internal header {h}")

for b in bad:
    print(b)
print(f"check-layers: {len(objs)} objects, {len(inc)} files: {'OK' if not bad else f'{len(bad)} violation(s)'}")
sys.exit(1 if bad else 0)
