#!/usr/bin/python3
"""bitnet_ref.py - the exact reference for tests/fixtures/bitnet-ref: a numpy
emulation of the C runtime's float32 arithmetic for bitnet-b1.58 models, op for
op (sequential sums as in src/forward.c, quantize_absmax of src/linear.c, exact
int32 dot products, glibc powf/cosf/sinf/expf through ctypes), reading the
weights from the GGUF file itself. Needs only numpy (Debian python3-numpy).

    /usr/bin/python3 tools/train/bitnet_ref.py tests/fixtures/bitnet-ref [--gen 16]

rewrites expected.bin / expected.json in that directory from model.gguf: the
prompts and their tokens are kept from the existing expected.bin, the greedy
continuation is recomputed. train_bitnet.py exports model.gguf and calls the
same code.
"""
import ctypes
import json
import os
import struct
import sys

import numpy as np

_libm = ctypes.CDLL("libm.so.6")
for _fn in ("powf", "cosf", "sinf", "expf"):
    getattr(_libm, _fn).restype = ctypes.c_float
_libm.powf.argtypes = [ctypes.c_float, ctypes.c_float]
_libm.cosf.argtypes = _libm.sinf.argtypes = _libm.expf.argtypes = [ctypes.c_float]

f32 = np.float32


def c_rmsnorm(x, w, eps):
    """src/forward.c rmsnorm on rows of x (float32, sequential sum)."""
    ss = np.zeros(x.shape[0], dtype=f32)
    for j in range(x.shape[1]):
        ss = (ss + x[:, j] * x[:, j]).astype(f32)
    ss = (ss / f32(x.shape[1])).astype(f32)
    ss = (ss + f32(eps)).astype(f32)
    ss = (f32(1.0) / np.sqrt(ss)).astype(f32)
    return (w[None, :] * (ss[:, None] * x)).astype(f32)


def c_bitlinear(x, t, scale):
    """src/linear.c quantize_absmax + exact int32 dot + (amax/127)*scale."""
    amax = np.abs(x).max(axis=1).astype(f32)
    y = np.zeros((x.shape[0], t.shape[0]), dtype=f32)
    for r in range(x.shape[0]):
        a = amax[r]
        if not (a > 0) or not np.isfinite(a):
            continue
        s = f32(f32(127.0) / a)
        q = np.rint((x[r] * s).astype(f32))  # nearbyintf: round half to even
        q = np.clip(q, -128, 127).astype(np.int64)
        acc = t.astype(np.int64) @ q
        f = f32(f32(a / f32(127.0)) * f32(scale))
        y[r] = (acc.astype(f32) * f).astype(f32)
    return y


def c_rope_tables(hd, n, theta):
    half = hd // 2
    cos = np.zeros((n, half), dtype=f32)
    sin = np.zeros((n, half), dtype=f32)
    for i in range(0, hd, 2):
        freq = f32(f32(1.0) / f32(_libm.powf(f32(theta), f32(f32(i) / f32(hd)))))
        for p in range(n):
            val = f32(f32(p) * freq)
            cos[p, i // 2] = _libm.cosf(val)
            sin[p, i // 2] = _libm.sinf(val)
    return cos, sin


def c_rope(v, cs, sn):
    """v [H, hd], one position, RoPE in the neox layout of bitnet-b1.58 GGUF
    files (src/forward.c rope_head with BN_AF_ROPE_NEOX): frequency j turns the
    pair (v[j], v[j + hd/2])."""
    half = v.shape[1] // 2
    v0, v1 = v[:, :half].copy(), v[:, half:].copy()
    out = np.empty_like(v)
    out[:, :half] = (v0 * cs - v1 * sn).astype(f32)
    out[:, half:] = (v0 * sn + v1 * cs).astype(f32)
    return out


class RefModel:
    """Quantised weights + the C runtime's float32 arithmetic, op for op."""

    def __init__(self, c, emb, out_norm, layers):
        """c: dims (dim, n_heads, n_kv_heads, n_layers, eps, theta, ctx); emb
        [vocab, dim] f32 (tied classifier); layers: dicts of the four norms and
        the seven linears as (int8 ternary [out, in], f32 scale), q/k rows in
        the neox layout (as in the GGUF file)."""
        self.c, self.emb, self.out_norm, self.layers = c, emb, out_norm, layers
        hd = c["dim"] // c["n_heads"]
        self.cos, self.sin = c_rope_tables(hd, c["ctx"], c["theta"])

    def forward(self, toks):
        """all-position logits [n, vocab] for one sequence starting at pos 0."""
        c = self.c
        n, D, H, KV = len(toks), c["dim"], c["n_heads"], c["n_kv_heads"]
        hd = D // H
        group = H // KV
        inv_sqrt = f32(f32(1.0) / np.sqrt(f32(hd)))
        eps = c["eps"]
        x = self.emb[toks].copy()
        for L in self.layers:
            h = c_rmsnorm(x, L["attn_norm"], eps)
            q = c_bitlinear(h, *L["wq"]).reshape(n, H, hd)
            k = c_bitlinear(h, *L["wk"]).reshape(n, KV, hd)
            v = c_bitlinear(h, *L["wv"]).reshape(n, KV, hd)
            for p in range(n):
                q[p] = c_rope(q[p], self.cos[p], self.sin[p])
                k[p] = c_rope(k[p], self.cos[p], self.sin[p])
            out = np.zeros((n, H, hd), dtype=f32)
            causal = np.tril(np.ones((n, n), dtype=bool))
            for hh in range(H):
                kv = hh // group
                K, V, Q = k[:, kv, :], v[:, kv, :], q[:, hh, :]
                # scores[p, u]: sequential float sum over i (vectorised over p, u)
                sc = np.zeros((n, n), dtype=f32)
                for i in range(hd):
                    sc = (sc + np.outer(Q[:, i], K[:, i]).astype(f32)).astype(f32)
                att = (sc * inv_sqrt).astype(f32)
                mx = np.where(causal, att, -np.inf).max(axis=1).astype(f32)
                e = np.zeros((n, n), dtype=f32)
                for p_ in range(n):
                    for u in range(p_ + 1):
                        e[p_, u] = _libm.expf(f32(att[p_, u] - mx[p_]))
                ssum = np.zeros(n, dtype=f32)
                for u in range(n):  # positions u > p add exact zeros
                    ssum = (ssum + e[:, u]).astype(f32)
                e = (e / ssum[:, None]).astype(f32)
                o = np.zeros((n, hd), dtype=f32)
                for u in range(n):
                    o = (o + (e[:, u:u + 1] * V[u][None, :]).astype(f32)).astype(f32)
                out[:, hh] = o
            a = c_rmsnorm(out.reshape(n, D), L["attn_sub_norm"], eps)
            x = (x + c_bitlinear(a, *L["wo"])).astype(f32)
            h = c_rmsnorm(x, L["ffn_norm"], eps)
            g = c_bitlinear(h, *L["w_gate"])
            u = c_bitlinear(h, *L["w_up"])
            g = np.maximum(g, f32(0.0))
            hb = ((g * g).astype(f32) * u).astype(f32)
            hb = c_rmsnorm(hb, L["ffn_sub_norm"], eps)
            x = (x + c_bitlinear(hb, *L["w_down"])).astype(f32)
        xn = c_rmsnorm(x, self.out_norm, eps)
        # classifier: f32 gemv; the C kernel's summation order is SIMD-specific,
        # so this is the one place where last-bit differences are expected
        return (xn.astype(np.float64) @ self.emb.astype(np.float64).T).astype(f32)

# ---------------------------------------------------------------- GGUF reading
# Value type ids of the GGUF spec; sizes of the fixed-size ones.
_GGUF_FIXED = {0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8}
_GGUF_STRING, _GGUF_ARRAY = 8, 9
_T_F32, _T_I2_S = 0, 36


class _Reader:
    def __init__(self, b):
        self.b, self.o = b, 0

    def take(self, fmt):
        v = struct.unpack_from("<" + fmt, self.b, self.o)
        self.o += struct.calcsize("<" + fmt)
        return v[0] if len(v) == 1 else v

    def string(self):
        n = self.take("Q")
        s = self.b[self.o:self.o + n]
        self.o += n
        return s

    def value(self, t):
        if t == _GGUF_STRING:
            return self.string()
        if t == _GGUF_ARRAY:
            et, n = self.take("I"), self.take("Q")
            return [self.value(et) for _ in range(n)]
        fmt = {0: "B", 1: "b", 2: "H", 3: "h", 4: "I", 5: "i", 6: "f", 7: "B", 10: "Q", 11: "q", 12: "d"}[t]
        return self.take(fmt)


def read_gguf(path):
    """(metadata dict, {name: (type, ne, bytes)}) of a GGUF v3 file."""
    b = open(path, "rb").read()
    r = _Reader(b)
    magic, version, n_t, n_kv = r.take("4s"), r.take("I"), r.take("Q"), r.take("Q")
    assert magic == b"GGUF" and version == 3, path
    kv = {}
    for _ in range(n_kv):
        k = r.string().decode()
        kv[k] = r.value(r.take("I"))
    infos = []
    for _ in range(n_t):
        name = r.string().decode()
        nd = r.take("I")
        ne = [r.take("Q") for _ in range(nd)]
        infos.append((name, ne, r.take("I"), r.take("Q")))
    align = kv.get("general.alignment", 32)
    data = (r.o + align - 1) // align * align
    tensors = {}
    for name, ne, t, off in infos:
        n = int(np.prod(ne))
        size = n * 4 if t == _T_F32 else n // 4 + 32
        assert t in (_T_F32, _T_I2_S), (name, t)
        tensors[name] = (t, ne, b[data + off:data + off + size])
    return kv, tensors


def unpack_i2_s(raw, rows, cols):
    """Inverse of train_bitnet.pack_i2_s: (int8 [rows, cols], f32 scale)."""
    b = np.frombuffer(raw[:rows * cols // 4], dtype=np.uint8).reshape(rows, cols // 128, 32)
    c = np.stack([(b >> 6) & 3, (b >> 4) & 3, (b >> 2) & 3, b & 3], axis=2)  # [rows, blocks, 4, 32]
    t = c.reshape(rows, cols).astype(np.int8) - 1
    return t, struct.unpack_from("<f", raw, rows * cols // 4)[0]


def model_from_gguf(path):
    kv, ts = read_gguf(path)
    A = kv["general.architecture"].decode()
    c = {"dim": kv[A + ".embedding_length"], "n_heads": kv[A + ".attention.head_count"],
         "n_kv_heads": kv[A + ".attention.head_count_kv"], "n_layers": kv[A + ".block_count"],
         "eps": kv[A + ".attention.layer_norm_rms_epsilon"], "theta": kv[A + ".rope.freq_base"],
         "ctx": kv[A + ".context_length"], "ff": kv[A + ".feed_forward_length"]}

    def f32v(name):
        t, ne, raw = ts[name]
        return np.frombuffer(raw, dtype="<f4").reshape(list(reversed(ne))).astype(f32)

    c["vocab"] = ts["token_embd.weight"][1][1]
    layers = []
    for l in range(c["n_layers"]):
        L = {}
        for n in ("attn_norm", "attn_sub_norm", "ffn_norm", "ffn_sub_norm"):
            L[n] = f32v(f"blk.{l}.{n}.weight")
        for n, g in (("wq", "attn_q"), ("wk", "attn_k"), ("wv", "attn_v"), ("wo", "attn_output"),
                     ("w_gate", "ffn_gate"), ("w_up", "ffn_up"), ("w_down", "ffn_down")):
            t, ne, raw = ts[f"blk.{l}.{g}.weight"]
            tern, s = unpack_i2_s(raw, ne[1], ne[0])
            L[n] = (tern, f32(s))
        layers.append(L)
    return RefModel(c, f32v("token_embd.weight"), f32v("output_norm.weight"), layers)


# ---------------------------------------------------------------- expected.bin
# expected.bin (little-endian): "BNRF" u32 version=1, u32 n_seq, u32 vocab; per sequence:
#   u32 text_len, text bytes (the prompt), u32 n_prompt, u32 n_total,
#   i32 tokens[n_total], f32 logits[n_total][vocab]
# tokens = BOS + prompt, then the greedy continuation (argmax of the reference
# logits); logits are those of every position of the full sequence.
def write_expected(outdir, ref, seqs, decode=None):
    """seqs: [(prompt text, tokens with the full greedy continuation)]."""
    blob = bytearray(b"BNRF" + struct.pack("<III", 1, len(seqs), ref.c["vocab"]))
    report = []
    for text, n_prompt, toks in seqs:
        lg = ref.forward(toks)
        bad = [t for t in range(n_prompt - 1, len(toks) - 1) if int(np.argmax(lg[t])) != toks[t + 1]]
        assert not bad, f"{text!r}: tokens are not the greedy continuation at {bad}"
        pb = text.encode("utf-8")
        blob += struct.pack("<I", len(pb)) + pb
        blob += struct.pack("<II", n_prompt, len(toks)) + np.array(toks, dtype="<i4").tobytes()
        blob += lg.astype("<f4").tobytes()
        item = {"prompt": text, "tokens": toks}
        if decode:
            item["text"] = decode(toks[1:])
        report.append(item)
    open(os.path.join(outdir, "expected.bin"), "wb").write(blob)
    return report


def greedy(ref, toks, n_prompt, gen):
    """toks[:n_prompt] continued greedily to n_prompt + gen tokens (exact path)."""
    toks = list(toks[:n_prompt])
    while len(toks) < n_prompt + gen:
        toks.append(int(np.argmax(ref.forward(toks)[-1])))
    return toks


def read_expected(path):
    b = open(path, "rb").read()
    r = _Reader(b)
    assert r.take("4s") == b"BNRF" and r.take("I") == 1
    n_seq, vocab = r.take("I"), r.take("I")
    out = []
    for _ in range(n_seq):
        n = r.take("I")
        text = b[r.o:r.o + n].decode()
        r.o += n
        n_prompt, n_total = r.take("I"), r.take("I")
        toks = list(struct.unpack_from(f"<{n_total}i", b, r.o))
        r.o += 4 * n_total + 4 * n_total * vocab
        out.append((text, n_prompt, toks))
    return out


def main():
    d = sys.argv[1]
    old = read_expected(os.path.join(d, "expected.bin"))
    ref = model_from_gguf(os.path.join(d, "model.gguf"))
    seqs = [(text, n_prompt, greedy(ref, toks, n_prompt, len(toks) - n_prompt)) for text, n_prompt, toks in old]
    texts = {}
    jp = os.path.join(d, "expected.json")
    if os.path.exists(jp):  # keep the decoded texts where the tokens did not change
        texts = {tuple(e["tokens"]): e.get("text") for e in json.load(open(jp))}
    report = write_expected(d, ref, seqs)
    for e in report:
        e["text"] = texts.get(tuple(e["tokens"]))
    json.dump(report, open(jp, "w"), indent=1)
    for (text, n_prompt, toks), (_, _, new) in zip(old, seqs):
        print(f"{text!r}: {n_prompt}+{len(new) - n_prompt} tokens, continuation "
              f"{'unchanged' if toks == new else 'CHANGED'}")


if __name__ == "__main__":
    main()
