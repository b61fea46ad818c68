#!/usr/bin/python3
"""ak42_reference.py - numpy reference for the legacy `ak42` BitNet b1.58 files.

Implements docs/ak42.md (file format, forward pass, llama2.c-style greedy
generation) with the arithmetic that libbitnet uses for BN_AF_AK42 ("spec"),
which reproduces /work/shared/models/bitnet158-tinystories-1M.reference-greedy.txt
byte for byte:

    EXACT ARITHMETIC, realised in float64: every activation (residual stream,
    q/k/v, RoPE'd q/k, the KV cache, attention output, SwiGLU product,
    BitLinear outputs) is computed AND kept in float64; float32 only appears in
    the file data (embeddings, final_norm, scales) and in the final normed
    vector that the tied classifier multiplies (the logits are not fed back).

The int8 quantiser xq = round(127 * x / max|x|) then decides every element as
exact real arithmetic would: on both shipped models, along the whole greedy
run, the closest quantiser input to a .5 boundary is 8e-9 (relative) away,
while float64 evaluation noise is ~1e-16. Any float64 implementation, in any
summation order, with or without FMA, gives the same tokens. Float32 storage
(6e-8 rounding) does NOT: it lands on the wrong side of such near-ties, which
is harmless on the 1M run but changes the 3M text (see --sweep, docs/ak42.md).

src/ak42_math.c implements the same arithmetic in C;
tests/tools/ak42_standalone.c checks it (its --dump-logits matches --dump here).

Usage (Debian numpy: use /usr/bin/python3):
    ak42_reference.py MODEL.ak42.bin tok512.bin [--steps 256] [--margins [-v]]
                      [--variant NAME] [--sweep REFERENCE.txt|-] [--dump FILE]
  prints the greedy generation to stdout (llama2.c run.c rules, no newline).
  --margins  prints the 5 smallest top-2 logit margins on stderr (-v: all of them).
  --variant  runs one of the arithmetic variants in VARIANTS instead of "spec".
  --sweep    for every variant: teacher-forced on the reference tokens (or, with
             "-", on the spec's own output), where the reference token stops
             being the argmax, and where free-running generation first differs.
  --dump     writes the float64 logits of each step (steps x vocab, raw) for
             bit-exact comparison with the C implementation.
"""
import argparse
import struct
import sys

import numpy as np

f32, f64 = np.float32, np.float64
MAGIC = 0x616B3432
TENSORS = ("wq", "wk", "wv", "wo", "w1", "w2", "w3")  # file order (tensor-major)

# --------------------------------------------------------------------------
# file format
# --------------------------------------------------------------------------


def load_ak42(path):
    b = open(path, "rb").read()
    if len(b) < 256:
        raise ValueError(f"{path}: too short for an ak42 header")
    magic, ver, dim, hid, nl, nh, nkv, vocab, seq = struct.unpack_from("<Iiiiiiiii", b, 0)
    shared = b[36]
    if magic != MAGIC or ver != 1:
        raise ValueError(f"{path}: not an ak42 version-1 file")
    if min(dim, hid, nl, nh, nkv, vocab, seq) <= 0 or dim % nh or nh % nkv or shared != 1:
        raise ValueError(f"{path}: bad header")
    hd = dim // nh
    kvd = nkv * hd
    shapes = {"wq": (dim, dim), "wk": (kvd, dim), "wv": (kvd, dim), "wo": (dim, dim),
              "w1": (hid, dim), "w2": (dim, hid), "w3": (hid, dim)}
    size = 256 + dim * 4 + vocab * dim * 4 + nl * sum(4 + r * c // 4 for r, c in shapes.values())
    if len(b) != size:
        raise ValueError(f"{path}: size {len(b)}, expected {size}")
    off = 256
    final_norm = np.frombuffer(b, f32, dim, off); off += dim * 4
    emb = np.frombuffer(b, f32, vocab * dim, off).reshape(vocab, dim); off += vocab * dim * 4
    # 2-bit codes, MSB first: 00 = 0, 01 = +1, 11 = -1 (10 never occurs)
    lut = np.array([0, 1, 0, -1], np.int64)
    W = {}
    for name in TENSORS:
        r, c = shapes[name]
        for l in range(nl):
            s = f32(np.frombuffer(b, f32, 1, off)[0]); off += 4
            p = np.frombuffer(b, np.uint8, r * c // 4, off); off += r * c // 4
            codes = np.stack([p >> 6, (p >> 4) & 3, (p >> 2) & 3, p & 3], 1).reshape(r, c)
            if np.any(codes == 2):
                raise ValueError(f"{path}: code 10 in {name}[{l}]")
            W[name, l] = (lut[codes], s)
    return dict(dim=dim, hidden=hid, n_layers=nl, n_heads=nh, n_kv_heads=nkv, vocab=vocab,
                seq_len=seq, head_dim=hd, final_norm=final_norm, emb=emb, W=W)


def load_tokenizer(path, vocab):
    b = open(path, "rb").read()
    off = 4
    pieces = []
    for _ in range(vocab):
        _score, n = struct.unpack_from("<fi", b, off); off += 8
        pieces.append(b[off:off + n]); off += n
    return pieces


def decode(pieces, prev, tok):
    p = pieces[tok]
    if prev == 1 and p.startswith(b" "):
        p = p[1:]
    if len(p) == 6 and p.startswith(b"<0x") and p.endswith(b">"):
        p = bytes([int(p[3:5], 16)])
    return p


# --------------------------------------------------------------------------
# arithmetic: "spec" and the variants studied in docs/ak42.md
# --------------------------------------------------------------------------

VARIANTS = {
    "spec": {},
    # the doc formula u = x/rms, a = max|u|, round(u*127/a), in float64
    "quant=u64": {"quant": "u64"},
    # float64 computation but float32 storage of every activation (incl. KV cache)
    "store=f32": {"store": "f32"},
    # only the KV cache stored as float32
    "store=f32kv": {"store": "f32kv"},
    # the doc formula in float32 with numpy reductions (np.mean = pairwise summation)
    "quant=f32np": {"quant": "f32np"},
    # the doc formula in float32, sum of squares sequential (what a C loop does)
    "quant=f32seq": {"quant": "f32seq"},
    # float32 quantiser (numpy pairwise) with C roundf (half away from zero)
    "quant=f32np,round=away": {"quant": "f32np", "round": "away"},
    # dequantisation in float32, left to right: acc*(a/127)*s/n
    "dequant=f32": {"dequant": "f32"},
    # dequantisation in float32 with one fused factor: acc*((a/127)*s/n)
    "dequant=f32fused": {"dequant": "f32fused"},
    # RoPE as llama2.c: powf/float angle/cosf/sinf and float32 rotation
    "rope=llama2c": {"rope": "llama2c"},
    # RoPE table from float64 but stored as float32, rotation in float32
    "rope=tab32": {"rope": "tab32"},
    # attention as llama2.c: float32 sequential dot products, softmax, weighted sum
    "att=f32seq": {"att": "f32seq"},
    # attention scores rounded to float32 (llama2.c att[] buffer), rest float64
    "att=scores32": {"att": "scores32"},
    # SwiGLU in float32: silu(g) = g/(1+expf(-g)), times u
    "swiglu=f32": {"swiglu": "f32"},
    # final RMS norm (eps 1e-5) and logits in float32
    "final=f32": {"final": "f32"},
    # everything float32 the llama2.c way (a naive C port of the doc)
    "all=llama2c": {"store": "f32", "quant": "f32seq", "round": "away", "dequant": "f32",
                    "rope": "llama2c", "att": "f32seq", "swiglu": "f32", "final": "f32"},
    # numpy float32 everywhere (pairwise sums, BLAS, numpy's SIMD exp/cos/sin)
    "all=numpy32": {"store": "f32", "quant": "f32np", "dequant": "f32", "rope": "np32",
                    "att": "np32", "swiglu": "np32", "final": "f32"},
}


class Arith:
    def __init__(self, **kw):
        self.quant = kw.get("quant", "exact")
        self.round = kw.get("round", "even")
        self.dequant = kw.get("dequant", "f64")
        self.rope = kw.get("rope", "f64")
        self.att = kw.get("att", "f64")
        self.swiglu = kw.get("swiglu", "f64")
        self.store = kw.get("store", "f64")
        self.final = kw.get("final", "f64")
        self.S = f32 if self.store == "f32" else f64  # storage type of activations
        self.KV = f32 if self.store in ("f32", "f32kv") else f64  # KV cache type


def seq_sum32(v):
    """float32 sum in index order, as `for (i...) s += v[i];` in C."""
    acc = f32(0)
    for e in v.astype(f32):
        acc = f32(acc + e)
    return acc


def rint(v, mode):
    if mode == "even":
        return np.round(v)  # round half to even
    return np.sign(v) * np.floor(np.abs(v) + v.dtype.type(0.5))  # C round(): half away


def bitlinear(x, T, s, ar):
    """BitLinear: int8 absmax quantisation of the weightless RMS-normed input,
    exact ternary integer dot product, dequantisation. Returns storage dtype."""
    n = T.shape[1]
    if ar.quant == "exact":
        # spec: xq = round(127 x / max|x|); the weightless RMS norm cancels out of
        # it and only survives in the dequantisation factor act = a/127 with
        # a = max|u| = amax/rms. Ties go to even (np.round); none occur.
        xd = x.astype(f64)
        amax = np.max(np.abs(xd))
        ss = np.sum(xd * xd)
        rms = np.sqrt(ss / n)
        xq = rint(xd * 127.0 / amax, ar.round)
        act = amax / rms / 127.0
    elif ar.quant == "u64":
        xd = x.astype(f64)
        u = xd / np.sqrt(np.mean(xd * xd))
        a = np.max(np.abs(u))
        xq = rint(u * 127.0 / a, ar.round)
        act = a / 127.0
    else:  # float32 versions of the doc formula
        xx = x.astype(f32)
        ms = np.mean(xx * xx) if ar.quant == "f32np" else f32(seq_sum32(xx * xx) / f32(n))
        u = (xx / np.sqrt(f32(ms))).astype(f32)
        a = f32(np.max(np.abs(u)))
        xq = rint((u * f32(127) / a).astype(f32), ar.round)
        act = a / f32(127)
    xq = np.clip(xq, -128, 127).astype(np.int64)
    acc = T @ xq  # exact
    if ar.dequant == "f64":
        k = f64(act) * f64(s) / f64(n)
        y = acc.astype(f64) * k
    elif ar.dequant == "f32":
        y = acc.astype(f32) * f32(act) * f32(s) / f32(n)
    else:
        y = acc.astype(f32) * f32(f32(act) * f32(s) / f32(n))
    return y.astype(ar.S)


def rope_tables(pos, hd, ar):
    i = np.arange(0, hd, 2)
    if ar.rope in ("llama2c", "np32"):
        freq = (f32(1) / np.power(f32(10000), i.astype(f32) / f32(hd))).astype(f32)
        ang = (f32(pos) * freq).astype(f32)
        if ar.rope == "np32":
            return np.cos(ang), np.sin(ang)  # numpy's float32 SIMD cos/sin
        return (np.cos(ang.astype(f64)).astype(f32), np.sin(ang.astype(f64)).astype(f32))
    ang = pos * np.power(10000.0, -(i / hd))  # float64: theta^(-2i/hd)
    c, s = np.cos(ang), np.sin(ang)
    if ar.rope == "tab32":
        return c.astype(f32), s.astype(f32)
    return c, s


def rope(z, nheads, hd, c, s, ar):
    z = z.reshape(nheads, hd // 2, 2)
    if c.dtype == f32:
        z = z.astype(f32)
    else:
        z = z.astype(f64)
    z0, z1 = z[:, :, 0], z[:, :, 1]
    r = np.stack([z0 * c - z1 * s, z0 * s + z1 * c], -1).reshape(-1)
    return r.astype(ar.S)


def attention_head(q, K, V, hd, ar):
    """q [hd], K/V [t][hd] (storage dtype) -> out [hd] (storage dtype)."""
    if ar.att == "f32seq":
        sc = np.zeros(K.shape[0], f32)
        for j in range(hd):
            sc = (sc + K[:, j].astype(f32) * f32(q[j])).astype(f32)
        sc = (sc / f32(np.sqrt(f32(hd)))).astype(f32)
        e = np.exp((sc - sc.max()).astype(f64)).astype(f32)  # expf ~ correctly rounded
        tot = seq_sum32(e)
        p = (e / tot).astype(f32)
        out = np.zeros(hd, f32)
        for t in range(K.shape[0]):
            out = (out + p[t] * V[t].astype(f32)).astype(f32)
        return out.astype(ar.S)
    if ar.att == "np32":
        sc = (K.astype(f32) @ q.astype(f32)) / np.sqrt(f32(hd))
        e = np.exp(sc - sc.max())
        return ((e / e.sum()) @ V.astype(f32)).astype(ar.S)
    sc = (K.astype(f64) @ q.astype(f64)) / np.sqrt(f64(hd))
    if ar.att == "scores32":
        sc = sc.astype(f32).astype(f64)
    e = np.exp(sc - sc.max())
    p = e / e.sum()
    return (p @ V.astype(f64)).astype(ar.S)


def swiglu(g, u, ar):
    if ar.swiglu == "f32":
        g32 = g.astype(f32)
        sig_den = (f32(1) + np.exp((-g32).astype(f64)).astype(f32)).astype(f32)
        return ((g32 / sig_den).astype(f32) * u.astype(f32)).astype(ar.S)
    if ar.swiglu == "np32":
        g32 = g.astype(f32)
        return ((g32 / (f32(1) + np.exp(-g32))) * u.astype(f32)).astype(ar.S)
    gd = g.astype(f64)
    return (gd / (1.0 + np.exp(-gd)) * u.astype(f64)).astype(ar.S)


def forward(M, tok, pos, cache, ar):
    dim, nh, nkv, hd = M["dim"], M["n_heads"], M["n_kv_heads"], M["head_dim"]
    W = M["W"]
    x = M["emb"][tok].astype(ar.S)
    c, s = rope_tables(pos, hd, ar)
    for l in range(M["n_layers"]):
        q = rope(bitlinear(x, *W["wq", l], ar), nh, hd, c, s, ar)
        k = rope(bitlinear(x, *W["wk", l], ar), nkv, hd, c, s, ar)
        v = bitlinear(x, *W["wv", l], ar)
        cache[l][0][pos] = k
        cache[l][1][pos] = v
        K = cache[l][0][:pos + 1].reshape(pos + 1, nkv, hd)
        V = cache[l][1][:pos + 1].reshape(pos + 1, nkv, hd)
        att = np.zeros(dim, ar.S)
        for h in range(nh):
            kh = h // (nh // nkv)
            att[h * hd:(h + 1) * hd] = attention_head(q[h * hd:(h + 1) * hd], K[:, kh], V[:, kh], hd, ar)
        x = (x + bitlinear(att, *W["wo", l], ar)).astype(ar.S)
        hb = swiglu(bitlinear(x, *W["w1", l], ar), bitlinear(x, *W["w3", l], ar), ar)
        x = (x + bitlinear(hb, *W["w2", l], ar)).astype(ar.S)
    if ar.final == "f32":
        x32 = x.astype(f32)
        ss = f32(seq_sum32(x32 * x32) / f32(dim) + f32(1e-5))
        h = (M["final_norm"] * (x32 * (f32(1) / np.sqrt(ss)))).astype(f32)
        return (M["emb"] @ h).astype(f64)
    xd = x.astype(f64)
    h = (M["final_norm"].astype(f64) * (xd / np.sqrt(np.sum(xd * xd) / dim + 1e-5))).astype(f32)
    return M["emb"].astype(f64) @ h.astype(f64)  # any float order: only the argmax matters


def new_cache(M, steps, ar):
    kvd = M["n_kv_heads"] * M["head_dim"]
    return [[np.zeros((steps, kvd), ar.KV), np.zeros((steps, kvd), ar.KV)] for _ in range(M["n_layers"])]


def top2_margin(lg):
    o = np.argsort(-lg, kind="stable")
    return float(lg[o[0]] - lg[o[1]])


def generate(M, steps, ar, dump=None):
    """llama2.c run.c greedy loop: BOS at pos 0, pos < steps, stop on BOS."""
    cache = new_cache(M, steps, ar)
    tok, out, margins = 1, [], []
    for pos in range(steps):
        lg = forward(M, tok, pos, cache, ar)
        if dump is not None:
            dump.append(lg.copy())
        nxt = int(np.argmax(lg))
        margins.append(top2_margin(lg))
        if nxt == 1:
            break
        out.append(nxt)
        tok = nxt
    return out, margins


def teacher_forced(M, toks, ar):
    """Signed margin logit[ref] - max(other logits) at each step (negative = flip)."""
    cache = new_cache(M, len(toks), ar)
    tok, sm = 1, []
    for pos, r in enumerate(toks):
        lg = forward(M, tok, pos, cache, ar)
        sm.append(float(lg[r] - np.max(np.delete(lg, r))))
        tok = r
    return np.array(sm)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("model")
    ap.add_argument("tokenizer")
    ap.add_argument("--steps", type=int, default=256)
    ap.add_argument("--margins", action="store_true")
    ap.add_argument("-v", action="store_true")
    ap.add_argument("--variant", default="spec", choices=sorted(VARIANTS))
    ap.add_argument("--sweep", metavar="REFERENCE_TXT")
    ap.add_argument("--dump", metavar="FILE")
    a = ap.parse_args()
    M = load_ak42(a.model)
    pieces = load_tokenizer(a.tokenizer, M["vocab"])
    steps = min(a.steps, M["seq_len"])
    dump = [] if a.dump else None
    toks, margins = generate(M, steps, Arith(**VARIANTS[a.variant]), dump)
    text = b""
    prev = 1
    for t in toks:
        text += decode(pieces, prev, t)
        prev = t
    if a.dump:
        np.array(dump, f64).tofile(a.dump)
    if a.sweep:
        if a.variant != "spec":
            sys.exit("--sweep compares the variants with the spec arithmetic: no --variant")
        if a.sweep == "-":
            ref_toks, what = toks, "the spec's own output (no reference)"
        else:
            ref = open(a.sweep, "rb").read()
            if text != ref:
                sys.exit("the spec arithmetic does not reproduce " + a.sweep)
            ref_toks, what = toks, a.sweep + " (reproduced byte for byte by spec)"
        print(f"{a.model}: {len(ref_toks)} tokens of {what}")
        print("tf = teacher-forced on those tokens: steps where another token wins;")
        print("free = free-running generation: first step whose token differs\n")
        print(f"{'variant':24s} {'tf flips':16s} {'min tf margin@pos':18s} {'free 1st diff':>13s}")
        for name, kw in VARIANTS.items():
            ar = Arith(**kw)
            sm = teacher_forced(M, ref_toks, ar)
            neg = [int(i) for i in np.where(sm < 0)[0]]
            ft, _ = generate(M, steps, ar) if name != "spec" else (toks, None)
            diff = next((i for i, (p, q) in enumerate(zip(ft, ref_toks)) if p != q),
                        None if len(ft) == len(ref_toks) else min(len(ft), len(ref_toks)))
            flips = (str(neg[:4])[1:-1] + (" ..." if len(neg) > 4 else "")) if neg else "-"
            print(f"{name:24s} {flips:16s} {sm.min():+.5f}@{int(sm.argmin()):<9d} "
                  f"{'-' if diff is None else diff:>13}")
            sys.stdout.flush()
        return
    sys.stdout.buffer.write(text)
    sys.stdout.flush()
    if a.margins:
        order = np.argsort(margins, kind="stable")
        print(f"\n{len(toks)} tokens; 5 smallest top-2 margins (pos: margin):", file=sys.stderr)
        for i in order[:5]:
            print(f"  {i:4d}: {margins[i]:.6f}", file=sys.stderr)
        if a.v:
            for i, mg in enumerate(margins):
                print(f"margin {i} {mg:.6f}", file=sys.stderr)


if __name__ == "__main__":
    main()
