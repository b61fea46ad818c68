#!/usr/bin/python3
"""train_bitnet.py - train a small BitNet b1.58 model with PyTorch and export it
to GGUF ("bitnet-b1.58") together with reference logits for the C runtime.

    /usr/bin/python3 tools/train/train_bitnet.py train  --minutes 15 --out /tmp/bitnet-ref.pt
    /usr/bin/python3 tools/train/train_bitnet.py export --ckpt /tmp/bitnet-ref.pt --outdir tests/fixtures/bitnet-ref
    /usr/bin/python3 tools/train/train_bitnet.py ppl    --ckpt /tmp/bitnet-ref.pt

Architecture = bitnet-b1.58 in src/model/arch.c: per layer
  x += Wo( subnorm_a( attn( RoPE(Wq n(x)), RoPE(Wk n(x)), Wv n(x) ) ) )
  x += Wdown( subnorm_f( relu(Wgate n(x))^2 * Wup n(x) ) )
with every W a BitLinear (absmean ternary weights, per-token absmax int8
activations, straight-through estimator in training), then output_norm and a
float classifier tied to token_embd.

Two forward paths:
  * training: vectorised float32 with STE (fast);
  * reference (bitnet_ref.py, RefModel): bit-exact emulation of the C runtime's
    float32 arithmetic (sequential sums as in src/forward.c, quantize_absmax of
    src/linear.c, exact int32 dot products, glibc powf/cosf/sinf/expf through
    ctypes) on the exported weights - this is what the exported logits come from.
The model trains with interleaved-pair RoPE; the export reorders q/k rows to the
neox layout of bitnet-b1.58 GGUF files (see export_gguf), and the reference
runs on the exported layout.
Only dependencies: torch, numpy (Debian python3-torch / python3-numpy).
"""
import argparse
import json
import math
import os
import random
import struct
import sys
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bitnet_ref import RefModel, f32, write_expected  # noqa: E402  (numpy-only exact reference)

HERE = os.path.dirname(os.path.abspath(__file__))
SHARED = os.environ.get("BITNET_SHARED", "/work/shared")
TOK_PATH = os.path.join(SHARED, "models/tok512.bin")

# Training text. tinystories-calib.jsonl is NOT used: all 48 of its documents are
# (truncated) copies of stories in tinystories-excerpt.txt, the held-out text.
TRAIN_FILES = ["corpora/tinyshakespeare.txt", "corpora/wikipedia-sample.txt", "corpora/wikitext-2-raw-valid.txt"]
HELDOUT = "corpora/tinystories-excerpt.txt"


# ---------------------------------------------------------------- tokenizer
class Tokenizer:
    """llama2.c tokenizer.bin: dummy prefix space, byte fallback (+3), merge the
    highest-score pair (left-most on ties). Same result as src/tokenizer.c."""

    def __init__(self, path=TOK_PATH):
        d = open(path, "rb").read()
        self.max_len = struct.unpack_from("<i", d, 0)[0]
        o = 4
        self.pieces, self.scores = [], []
        while o < len(d):
            s, n = struct.unpack_from("<fi", d, o)
            o += 8
            self.pieces.append(d[o:o + n])
            self.scores.append(s)
            o += n
        self.lookup = {p: i for i, p in enumerate(self.pieces)}
        self.cache = {}

    def _encode_word(self, w):
        ids = []
        for ch in w:
            b = ch.encode("utf-8")
            if b in self.lookup:
                ids.append(self.lookup[b])
            else:
                ids.extend(x + 3 for x in b)
        while True:
            best, bi, bid = -1e10, -1, -1
            for i in range(len(ids) - 1):
                m = self.pieces[ids[i]] + self.pieces[ids[i + 1]]
                j = self.lookup.get(m)
                if j is not None and self.scores[j] > best:
                    best, bi, bid = self.scores[j], i, j
            if bi < 0:
                return ids
            ids[bi:bi + 2] = [bid]

    def encode(self, text, bos=True):
        out = [1] if bos else []
        if not text:
            return out
        text = " " + text
        # no tok512 piece has a space after a non-space byte, so merges never
        # cross a "word|space" boundary: encode each such segment on its own
        seg, start = [], 0
        for i in range(1, len(text)):
            if text[i] == " " and text[i - 1] != " ":
                seg.append(text[start:i])
                start = i
        seg.append(text[start:])
        for w in seg:
            r = self.cache.get(w)
            if r is None:
                r = self._encode_word(w)
                if len(self.cache) < 500000:
                    self.cache[w] = r
            out.extend(r)
        return out

    def decode(self, ids):
        bs = b""
        prev = 1
        for t in ids:
            p = self.pieces[t]
            if prev == 1 and p.startswith(b" "):
                p = p[1:]
            if p.startswith(b"<0x") and len(p) == 6 and p.endswith(b">"):
                p = bytes([int(p[3:5], 16)])
            bs += p
            prev = t
        return bs.decode("utf-8", "replace")


# ---------------------------------------------------------------- model
CFG = dict(dim=128, n_layers=4, n_heads=4, n_kv_heads=2, ff=384, vocab=512, ctx=256, eps=1e-5, theta=10000.0)


def weight_quant(w):
    """absmean ternary: s = mean|W| (>= 1e-5), T = clip(round(W / s), -1, 1)."""
    s = w.abs().mean().clamp(min=1e-5)
    t = (w / s).round().clamp(-1, 1)
    return t, s


def act_quant(x):
    """per-token absmax int8 (training path, float; STE applied by the caller)."""
    amax = x.abs().amax(dim=-1, keepdim=True).clamp(min=1e-5)
    return (x * (127.0 / amax)).round().clamp(-128, 127) * (amax / 127.0)


class BitLinear(nn.Linear):
    def __init__(self, fin, fout):
        super().__init__(fin, fout, bias=False)

    def forward(self, x):
        t, s = weight_quant(self.weight)
        wq = self.weight + (t * s - self.weight).detach()
        xq = x + (act_quant(x) - x).detach()
        return F.linear(xq, wq)


class RMSNorm(nn.Module):
    def __init__(self, n, eps):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(n))
        self.eps = eps

    def forward(self, x):
        return self.weight * (x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps))


class Block(nn.Module):
    def __init__(self, c):
        super().__init__()
        d, hd = c["dim"], c["dim"] // c["n_heads"]
        kv = c["n_kv_heads"] * hd
        self.attn_norm = RMSNorm(d, c["eps"])
        self.wq, self.wk, self.wv = BitLinear(d, d), BitLinear(d, kv), BitLinear(d, kv)
        self.attn_sub_norm = RMSNorm(d, c["eps"])
        self.wo = BitLinear(d, d)
        self.ffn_norm = RMSNorm(d, c["eps"])
        self.w_gate, self.w_up = BitLinear(d, c["ff"]), BitLinear(d, c["ff"])
        self.ffn_sub_norm = RMSNorm(c["ff"], c["eps"])
        self.w_down = BitLinear(c["ff"], d)


def rope_tables(c, n):
    hd = c["dim"] // c["n_heads"]
    i = torch.arange(0, hd, 2, dtype=torch.float64)
    freq = 1.0 / c["theta"] ** (i / hd)
    ang = torch.arange(n, dtype=torch.float64)[:, None] * freq[None, :]
    return torch.cos(ang).float(), torch.sin(ang).float()


def apply_rope(x, cos, sin):
    """x [B, T, H, hd]; interleaved pairs (2i, 2i+1) as llama2.c."""
    x0, x1 = x[..., 0::2], x[..., 1::2]
    c, s = cos[None, :, None, :], sin[None, :, None, :]
    return torch.stack([x0 * c - x1 * s, x0 * s + x1 * c], dim=-1).flatten(-2)


class BitNet(nn.Module):
    def __init__(self, c=CFG):
        super().__init__()
        self.c = dict(c)
        self.tok_embd = nn.Embedding(c["vocab"], c["dim"])
        self.layers = nn.ModuleList([Block(c) for _ in range(c["n_layers"])])
        self.output_norm = RMSNorm(c["dim"], c["eps"])
        nn.init.normal_(self.tok_embd.weight, std=0.02)
        for L in self.layers:
            for m in (L.wq, L.wk, L.wv, L.wo, L.w_gate, L.w_up, L.w_down):
                nn.init.normal_(m.weight, std=0.02)
        cos, sin = rope_tables(c, c["ctx"])
        self.register_buffer("cos", cos, persistent=False)
        self.register_buffer("sin", sin, persistent=False)
        self.register_buffer("mask", torch.triu(torch.ones(c["ctx"], c["ctx"], dtype=torch.bool), 1),
                             persistent=False)

    def forward(self, idx):
        c = self.c
        B, T = idx.shape
        H, KV = c["n_heads"], c["n_kv_heads"]
        hd = c["dim"] // H
        x = self.tok_embd(idx)
        cos, sin = self.cos[:T], self.sin[:T]
        for L in self.layers:
            h = L.attn_norm(x)
            q = apply_rope(L.wq(h).view(B, T, H, hd), cos, sin)
            k = apply_rope(L.wk(h).view(B, T, KV, hd), cos, sin)
            v = L.wv(h).view(B, T, KV, hd)
            k = k.repeat_interleave(H // KV, dim=2)
            v = v.repeat_interleave(H // KV, dim=2)
            att = (q.transpose(1, 2) @ k.permute(0, 2, 3, 1)) * (1.0 / math.sqrt(hd))
            att = att.masked_fill(self.mask[:T, :T], float("-inf")).softmax(-1)
            a = (att @ v.transpose(1, 2)).transpose(1, 2).reshape(B, T, c["dim"])
            x = x + L.wo(L.attn_sub_norm(a))
            h = L.ffn_norm(x)
            g = F.relu(L.w_gate(h))
            x = x + L.w_down(L.ffn_sub_norm(g * g * L.w_up(h)))
        return F.linear(self.output_norm(x), self.tok_embd.weight)


# ---------------------------------------------------------------- data
def load_corpus(tok):
    docs = []
    for rel in TRAIN_FILES:
        text = open(os.path.join(SHARED, rel), encoding="utf-8").read()
        if "shakespeare" in rel:
            parts = [p.strip() for p in text.split("\n\n")]
        else:
            parts = [p.strip() for p in text.split("\n")]
        ids = []
        for p in parts:
            if p:
                ids.extend(tok.encode(p))
        arr = np.array(ids, dtype=np.int16)
        cut = int(len(arr) * 0.98)
        docs.append((rel, arr[:cut], arr[cut:]))
        print(f"{rel}: {len(arr)} tokens", flush=True)
    return docs


def heldout_tokens(tok, path):
    ids = []
    for line in open(path, encoding="utf-8"):
        line = line.strip()
        if line:
            ids.extend(tok.encode(line))
    return np.array(ids, dtype=np.int64)


@torch.no_grad()
def perplexity(model, ids, ctx):
    model.eval()
    nll, cnt = 0.0, 0
    for s in range(0, len(ids) - 1, ctx):
        chunk = torch.from_numpy(ids[s:s + ctx + 1].astype(np.int64))
        if len(chunk) < 2:
            break
        logits = model(chunk[None, :-1])
        nll += F.cross_entropy(logits[0], chunk[1:], reduction="sum").item()
        cnt += len(chunk) - 1
    return math.exp(nll / cnt), cnt


# ---------------------------------------------------------------- commands
def cmd_train(a):
    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    random.seed(a.seed)
    tok = Tokenizer()
    t0 = time.time()
    docs = load_corpus(tok)
    print(f"tokenised in {time.time() - t0:.1f}s", flush=True)
    train = np.concatenate([d[1] for d in docs]).astype(np.int64)
    val = np.concatenate([d[2] for d in docs]).astype(np.int64)
    model = BitNet()
    nparam = sum(p.numel() for p in model.parameters())
    print(f"params {nparam}", flush=True)
    opt = torch.optim.AdamW(model.parameters(), lr=a.lr, betas=(0.9, 0.95), weight_decay=0.05)
    T, B = a.seq, a.batch
    budget = a.minutes * 60.0
    t0 = time.time()
    step, tokens_seen = 0, 0
    while True:
        el = time.time() - t0
        if el > budget:
            break
        frac = el / budget
        lr = a.lr * min(1.0, (step + 1) / 30) * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * frac)))
        for g in opt.param_groups:
            g["lr"] = lr
        ix = np.random.randint(0, len(train) - T - 1, B)
        xb = torch.from_numpy(np.stack([train[i:i + T] for i in ix]))
        yb = torch.from_numpy(np.stack([train[i + 1:i + T + 1] for i in ix]))
        model.train()
        loss = F.cross_entropy(model(xb).view(-1, CFG["vocab"]), yb.view(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        step += 1
        tokens_seen += B * T
        if step % 50 == 0:
            print(f"step {step} {el:.0f}s lr {lr:.2e} loss {loss.item():.3f} tok/s {tokens_seen / max(el, 1e-9):.0f}",
                  flush=True)
    train_s = time.time() - t0
    vppl, _ = perplexity(model, val[:20000], CFG["ctx"])
    print(f"done: {step} steps, {tokens_seen} tokens, {train_s:.0f}s, val ppl {vppl:.2f}", flush=True)
    torch.save({"model": model.state_dict(), "cfg": CFG, "steps": step, "tokens": tokens_seen,
                "train_s": train_s, "val_ppl": vppl, "train_tokens": int(len(train))}, a.out)


def load_ckpt(path):
    ck = torch.load(path, map_location="cpu")
    m = BitNet(ck["cfg"])
    m.load_state_dict(ck["model"])
    m.eval()
    return m, ck


def cmd_ppl(a):
    torch.set_num_threads(a.threads)
    m, ck = load_ckpt(a.ckpt)
    tok = Tokenizer()
    ids = heldout_tokens(tok, os.path.join(SHARED, HELDOUT))
    ppl, n = perplexity(m, ids, m.c["ctx"])
    print(json.dumps({"heldout": HELDOUT, "tokens": n, "ppl": ppl, "val_ppl": ck.get("val_ppl"),
                      "steps": ck.get("steps"), "train_tokens_seen": ck.get("tokens"), "train_s": ck.get("train_s")}))


# ---------------------------------------------------------------- GGUF writer
GGUF_U32, GGUF_I32, GGUF_F32, GGUF_BOOL, GGUF_STR, GGUF_ARR = 4, 5, 6, 7, 8, 9
T_F32, T_I2_S = 0, 36  # 36 = bitnet.cpp I2_S


def pack_i2_s(t, scale):
    """I2_S tensor data (src/kernels/kernels.h layout): per row, cols/128 blocks of
    32 bytes; byte p of a block holds weights p, p+32, p+64, p+96 in bits 7-6,
    5-4, 3-2, 1-0 as codes 0/1/2 = -1/0/+1. Then a 32-byte tail whose first 4
    bytes are the f32 per-tensor scale."""
    rows, cols = t.shape
    assert cols % 128 == 0
    c = (t.astype(np.int16) + 1).astype(np.uint8).reshape(rows, cols // 128, 4, 32)
    b = (c[:, :, 0] << 6) | (c[:, :, 1] << 4) | (c[:, :, 2] << 2) | c[:, :, 3]
    return b.astype(np.uint8).tobytes() + struct.pack("<f", scale) + b"\0" * 28


def _gstr(s):
    b = s.encode("utf-8") if isinstance(s, str) else s
    return struct.pack("<Q", len(b)) + b


def _gval(t, v):
    if t == GGUF_U32:
        return struct.pack("<I", v)
    if t == GGUF_I32:
        return struct.pack("<i", v)
    if t == GGUF_F32:
        return struct.pack("<f", v)
    if t == GGUF_BOOL:
        return struct.pack("<B", 1 if v else 0)
    if t == GGUF_STR:
        return _gstr(v)
    raise ValueError(t)


def write_gguf(path, kvs, tensors):
    """kvs: [(key, type, value)] with arrays as (key, GGUF_ARR, (elem_type, [values]));
    tensors: [(name, float32 ndarray)] (shape numpy order: rows, cols)."""
    out = bytearray(b"GGUF" + struct.pack("<IQQ", 3, len(tensors), len(kvs)))
    for k, t, v in kvs:
        out += _gstr(k) + struct.pack("<I", t)
        if t == GGUF_ARR:
            et, vals = v
            out += struct.pack("<IQ", et, len(vals))
            for x in vals:
                out += _gval(et, x)
        else:
            out += _gval(t, v)
    off = 0
    blobs = []
    for name, arr in tensors:
        if isinstance(arr, tuple):  # (ggml type, ne list, raw bytes)
            ttype, ne, b = arr
        else:
            arr = np.ascontiguousarray(arr, dtype="<f4")
            ttype, ne, b = T_F32, list(arr.shape[::-1]), arr.tobytes()
        out += _gstr(name) + struct.pack("<I", len(ne)) + b"".join(struct.pack("<Q", n) for n in ne)
        out += struct.pack("<IQ", ttype, off)
        pad = (-len(b)) % 32
        blobs.append(b + b"\0" * pad)
        off += len(b) + pad
    out += b"\0" * ((-len(out)) % 32)
    for b in blobs:
        out += b
    with open(path, "wb") as f:
        f.write(out)
    return len(out)


def neox_rows(t, hd):
    """q/k rows [out, in] reordered per head to [even dims, odd dims]: the
    interleaved-pair RoPE this model trains with, as the neox (rotate-half)
    RoPE of bitnet-b1.58 GGUF files, which bitnet.cpp computes."""
    to_neox = np.concatenate([np.arange(0, hd, 2), np.arange(1, hd, 2)])
    return t.reshape(-1, hd, t.shape[1])[:, to_neox, :].reshape(t.shape)


def ternary_layers(model):
    """Per layer: the four norms and the seven linears as (int8 ternary, scale),
    q/k rows in the neox layout - what export_gguf writes."""
    c = model.c
    hd = c["dim"] // c["n_heads"]
    sd = {k: v.detach().float() for k, v in model.state_dict().items()}
    layers = []
    for l in range(c["n_layers"]):
        L = {}
        for n in ("attn_norm", "attn_sub_norm", "ffn_norm", "ffn_sub_norm"):
            L[n] = sd[f"layers.{l}.{n}.weight"].numpy().astype(f32)
        for n in ("wq", "wk", "wv", "wo", "w_gate", "w_up", "w_down"):
            t, s = weight_quant(sd[f"layers.{l}.{n}.weight"])
            t = t.numpy().astype(np.int8)
            L[n] = (neox_rows(t, hd) if n in ("wq", "wk") else t, f32(s.item()))
        layers.append(L)
    return sd, layers


def export_gguf(model, path, tok, i2s=True):
    c = model.c
    A = "bitnet-b1.58"
    pieces = [p.replace(b" ", "\u2581".encode()) for p in tok.pieces]
    types = []
    for i, p in enumerate(tok.pieces):
        if i == 0:
            types.append(2)
        elif i in (1, 2):
            types.append(3)
        elif p.startswith(b"<0x") and len(p) == 6 and p.endswith(b">"):
            types.append(6)
        else:
            types.append(1)
    kvs = [
        ("general.architecture", GGUF_STR, A),
        ("general.name", GGUF_STR, "bitnet-ref (libbitnet tools/train/train_bitnet.py)"),
        (A + ".embedding_length", GGUF_U32, c["dim"]),
        (A + ".feed_forward_length", GGUF_U32, c["ff"]),
        (A + ".block_count", GGUF_U32, c["n_layers"]),
        (A + ".attention.head_count", GGUF_U32, c["n_heads"]),
        (A + ".attention.head_count_kv", GGUF_U32, c["n_kv_heads"]),
        (A + ".context_length", GGUF_U32, c["ctx"]),
        (A + ".rope.dimension_count", GGUF_U32, c["dim"] // c["n_heads"]),
        (A + ".attention.layer_norm_rms_epsilon", GGUF_F32, c["eps"]),
        (A + ".rope.freq_base", GGUF_F32, c["theta"]),
        ("tokenizer.ggml.model", GGUF_STR, "llama"),
        ("tokenizer.ggml.tokens", GGUF_ARR, (GGUF_STR, pieces)),
        ("tokenizer.ggml.scores", GGUF_ARR, (GGUF_F32, tok.scores)),
        ("tokenizer.ggml.token_type", GGUF_ARR, (GGUF_I32, types)),
        ("tokenizer.ggml.bos_token_id", GGUF_U32, 1),
        ("tokenizer.ggml.eos_token_id", GGUF_U32, 2),
        ("tokenizer.ggml.unknown_token_id", GGUF_U32, 0),
        ("tokenizer.ggml.add_bos_token", GGUF_BOOL, True),
        ("tokenizer.ggml.add_space_prefix", GGUF_BOOL, True),
    ]
    sd, layers = ternary_layers(model)
    ts = [("token_embd.weight", sd["tok_embd.weight"].numpy()),
          ("output_norm.weight", sd["output_norm.weight"].numpy())]
    lin = [("wq", "attn_q"), ("wk", "attn_k"), ("wv", "attn_v"), ("wo", "attn_output"),
           ("w_gate", "ffn_gate"), ("w_up", "ffn_up"), ("w_down", "ffn_down")]
    for l, L in enumerate(layers):
        for n in ("attn_norm", "attn_sub_norm", "ffn_norm", "ffn_sub_norm"):
            ts.append((f"blk.{l}.{n}.weight", L[n]))
        for a, g in lin:
            t, s = L[a]
            if i2s:
                ts.append((f"blk.{l}.{g}.weight", (T_I2_S, [t.shape[1], t.shape[0]], pack_i2_s(t, float(s)))))
            else:  # exact -1/0/+1 floats plus a companion scale (packed to I2 at load)
                ts.append((f"blk.{l}.{g}.weight", t.astype(f32)))
                ts.append((f"blk.{l}.{g}.scale", np.array([s], dtype=f32)))
    return write_gguf(path, kvs, ts)


PROMPTS = ["Once upon a time", "The little dog was happy because", "ROMEO: What light through yonder"]


def cmd_export(a):
    torch.set_num_threads(a.threads)
    m, ck = load_ckpt(a.ckpt)
    tok = Tokenizer()
    os.makedirs(a.outdir, exist_ok=True)
    size = export_gguf(m, os.path.join(a.outdir, "model.gguf"), tok, i2s=not a.f32)
    print(f"model.gguf: {size} bytes", flush=True)
    sd, layers = ternary_layers(m)
    ref = RefModel(dict(m.c), sd["tok_embd.weight"].numpy().astype(f32), sd["output_norm.weight"].numpy().astype(f32),
                   layers)
    seqs = []
    for p in PROMPTS:
        toks = tok.encode(p)
        n_prompt = len(toks)
        t0 = time.time()
        # greedy continuation with the fast float path, then made consistent with
        # the exact path (argmax of the exact logits at t must be token t+1)
        with torch.no_grad():
            for _ in range(a.gen):
                toks.append(int(m(torch.tensor([toks]))[0, -1].argmax()))
        while True:
            lg = ref.forward(toks)
            bad = [t for t in range(n_prompt - 1, len(toks) - 1) if int(np.argmax(lg[t])) != toks[t + 1]]
            if not bad:
                break
            t = bad[0]
            print(f"  greedy fix-up at position {t + 1}", flush=True)
            toks = toks[:t + 1] + [int(np.argmax(lg[t]))]
            with torch.no_grad():
                while len(toks) < n_prompt + a.gen:
                    toks.append(int(m(torch.tensor([toks]))[0, -1].argmax()))
        # sanity: the fast float path agrees with the exact emulation up to fp noise
        with torch.no_grad():
            fast = m(torch.tensor([toks]))[0].numpy()
        print(f"{p!r}: {n_prompt}+{a.gen} tokens, {time.time() - t0:.1f}s, |exact - torch float| max "
              f"{np.abs(fast - lg).max():.3g}; text: {tok.decode(toks[1:])!r}", flush=True)
        seqs.append((p, n_prompt, toks))
    report = write_expected(a.outdir, ref, seqs, decode=tok.decode)
    json.dump(report, open(os.path.join(a.outdir, "expected.json"), "w"), indent=1)
    print("expected.bin written", flush=True)


def main():
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    t = sub.add_parser("train")
    t.add_argument("--minutes", type=float, default=15)
    t.add_argument("--out", default="/tmp/bitnet-ref.pt")
    t.add_argument("--lr", type=float, default=2e-3)
    t.add_argument("--batch", type=int, default=16)
    t.add_argument("--seq", type=int, default=256)
    t.add_argument("--seed", type=int, default=1234)
    e = sub.add_parser("export")
    e.add_argument("--ckpt", default="/tmp/bitnet-ref.pt")
    e.add_argument("--outdir", default=os.path.join(HERE, "../../tests/fixtures/bitnet-ref"))
    e.add_argument("--gen", type=int, default=16)
    e.add_argument("--f32", action="store_true", help="ternary weights as F32 + .scale instead of I2_S")
    p = sub.add_parser("ppl")
    p.add_argument("--ckpt", default="/tmp/bitnet-ref.pt")
    for s in (t, e, p):
        s.add_argument("--threads", type=int, default=2)
    a = ap.parse_args()
    {"train": cmd_train, "export": cmd_export, "ppl": cmd_ppl}[a.cmd](a)


if __name__ == "__main__":
    main()
