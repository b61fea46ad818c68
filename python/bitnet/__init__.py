"""bitnet - Python bindings for libbitnet (ctypes, standard library only).

    import bitnet
    m = bitnet.Model()                       # the model embedded in libbitnet
    print(m.generate("Once upon a time", n_predict=16, temp=0))
    for piece in m.generate("Once", n_predict=32, stream=True):
        print(piece, end="", flush=True)

The shared library is found, in order, at $BITNET_LIB, in the source tree
(../build/libbitnet.so next to this package), or where the dynamic linker
looks (`make install`). Every failure of the library raises BitnetError with
bitnet_last_error()'s one-line message.

Thread safety is the library's: one Model may serve several Contexts, each
used by one thread at a time (docs in bitnet.h).
"""
from __future__ import annotations

import ctypes
import ctypes.util
import json
import os
from typing import Iterator, List, Optional, Sequence, Union

__all__ = ["BitnetError", "Model", "Context", "Sampler", "Grammar", "version"]


class BitnetError(RuntimeError):
    """A libbitnet call failed; the message is bitnet_last_error()."""

    def __init__(self, message: str, status: int = 0):
        super().__init__(message)
        self.status = status


# ---- the shared library -------------------------------------------------------------

def _find_library() -> str:
    env = os.environ.get("BITNET_LIB")
    if env:
        return env
    here = os.path.dirname(os.path.abspath(__file__))
    for cand in (os.path.join(here, "..", "..", "build", "libbitnet.so"),
                 os.path.join(here, "libbitnet.so")):
        if os.path.exists(cand):
            return os.path.normpath(cand)
    found = ctypes.util.find_library("bitnet")
    if found:
        return found
    for prefix in ("/usr/local/lib", "/usr/lib"):
        for name in ("libbitnet.so", "libbitnet.so.0.2"):  # the SONAME of the ABI this package speaks
            cand = os.path.join(prefix, name)
            if os.path.exists(cand):
                return cand
    raise BitnetError("libbitnet.so not found: build it (make), install it (make install) "
                      "or set BITNET_LIB to its path")


_lib = ctypes.CDLL(_find_library())

_token = ctypes.c_int32
_p = ctypes.c_void_p


class _ModelParams(ctypes.Structure):
    _fields_ = [("tokenizer_path", ctypes.c_char_p), ("use_mmap", ctypes.c_int), ("use_mlock", ctypes.c_int)]


class _ModelInfo(ctypes.Structure):
    _fields_ = [("arch", ctypes.c_char_p), ("name", ctypes.c_char_p),
                ("n_vocab", ctypes.c_int), ("n_embd", ctypes.c_int), ("n_ff", ctypes.c_int),
                ("n_layer", ctypes.c_int), ("n_head", ctypes.c_int), ("n_head_kv", ctypes.c_int),
                ("n_ctx_train", ctypes.c_int), ("n_params", ctypes.c_uint64),
                ("weight_bytes", ctypes.c_uint64), ("weight_type", ctypes.c_char_p)]


class _ContextParams(ctypes.Structure):
    _fields_ = [("n_ctx", ctypes.c_int), ("n_batch", ctypes.c_int), ("n_threads", ctypes.c_int),
                ("kv_type", ctypes.c_int), ("cpu_affinity", ctypes.c_char_p), ("use_mlock", ctypes.c_int),
                ("n_seq", ctypes.c_int)]


class _SamplerParams(ctypes.Structure):
    _fields_ = [("temp", ctypes.c_float), ("top_k", ctypes.c_int), ("top_p", ctypes.c_float),
                ("min_p", ctypes.c_float), ("repeat_penalty", ctypes.c_float), ("repeat_last_n", ctypes.c_int),
                ("seed", ctypes.c_uint64), ("presence_penalty", ctypes.c_float),
                ("frequency_penalty", ctypes.c_float)]


class _ChatMessage(ctypes.Structure):
    _fields_ = [("role", ctypes.c_char_p), ("content", ctypes.c_char_p)]


def _sig(name, restype, *argtypes):
    f = getattr(_lib, name)
    f.restype = restype
    f.argtypes = list(argtypes)
    return f


_version = _sig("bitnet_version", ctypes.c_char_p)
_last_error = _sig("bitnet_last_error", ctypes.c_char_p)
_model_default_params = _sig("bitnet_model_default_params", _ModelParams)
_model_load = _sig("bitnet_model_load", ctypes.c_int, ctypes.c_char_p, ctypes.POINTER(_ModelParams), ctypes.POINTER(_p))
_model_load_default = _sig("bitnet_model_load_default", ctypes.c_int, ctypes.POINTER(_ModelParams), ctypes.POINTER(_p))
_model_free = _sig("bitnet_model_free", None, _p)
_model_get_info = _sig("bitnet_model_get_info", None, _p, ctypes.POINTER(_ModelInfo))
_n_vocab = _sig("bitnet_n_vocab", ctypes.c_int, _p)
_n_embd = _sig("bitnet_n_embd", ctypes.c_int, _p)
_token_bos = _sig("bitnet_token_bos", _token, _p)
_token_eos = _sig("bitnet_token_eos", _token, _p)
_token_is_eog = _sig("bitnet_token_is_eog", ctypes.c_int, _p, _token)
_tokenize_ex = _sig("bitnet_tokenize_ex", ctypes.c_int, _p, ctypes.c_char_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int,
                    ctypes.POINTER(_token), ctypes.c_int)
_tokenize_chat = _sig("bitnet_tokenize_chat", ctypes.c_int, _p, ctypes.c_char_p, ctypes.c_size_t,
                      ctypes.POINTER(ctypes.c_ubyte), ctypes.c_int, ctypes.POINTER(_token), ctypes.c_int)
_token_to_piece = _sig("bitnet_token_to_piece", ctypes.c_int, _p, _token, _token, ctypes.c_char_p, ctypes.c_int)
_chat_template = _sig("bitnet_model_chat_template", ctypes.c_char_p, _p)
_chat_apply_ex = _sig("bitnet_chat_apply_template_ex", ctypes.c_int, ctypes.c_char_p, ctypes.POINTER(_ChatMessage),
                      ctypes.c_size_t, ctypes.c_int, ctypes.c_char_p, ctypes.POINTER(ctypes.c_ubyte), ctypes.c_int)
_context_default_params = _sig("bitnet_context_default_params", _ContextParams)
_context_new = _sig("bitnet_context_new", ctypes.c_int, _p, ctypes.POINTER(_ContextParams), ctypes.POINTER(_p))
_context_free = _sig("bitnet_context_free", None, _p)
_eval = _sig("bitnet_eval", ctypes.c_int, _p, ctypes.POINTER(_token), ctypes.c_int, ctypes.c_int)
_get_logits = _sig("bitnet_get_logits", ctypes.POINTER(ctypes.c_float), _p)
_n_ctx = _sig("bitnet_n_ctx", ctypes.c_int, _p)
_seq_rm = _sig("bitnet_seq_rm", ctypes.c_int, _p, ctypes.c_int, ctypes.c_int, ctypes.c_int)
_seq_n_pos = _sig("bitnet_seq_n_pos", ctypes.c_int, _p, ctypes.c_int)
_state_save = _sig("bitnet_state_save_file", ctypes.c_int, _p, ctypes.c_char_p, ctypes.POINTER(_token), ctypes.c_int)
_state_load = _sig("bitnet_state_load_file", ctypes.c_int, _p, ctypes.c_char_p, ctypes.POINTER(_token), ctypes.c_int,
                   ctypes.POINTER(ctypes.c_int))
_embed = _sig("bitnet_embed", ctypes.c_int, _p, ctypes.POINTER(_token), ctypes.c_int, ctypes.c_int, ctypes.c_int,
              ctypes.POINTER(ctypes.c_float))
_sampler_default_params = _sig("bitnet_sampler_default_params", _SamplerParams)
_sampler_new = _sig("bitnet_sampler_new", ctypes.c_int, ctypes.POINTER(_SamplerParams), ctypes.c_int, ctypes.POINTER(_p))
_sampler_sample = _sig("bitnet_sampler_sample", _token, _p, ctypes.POINTER(ctypes.c_float))
_sampler_accept = _sig("bitnet_sampler_accept", None, _p, _token)
_sampler_free = _sig("bitnet_sampler_free", None, _p)
_grammar_new = _sig("bitnet_grammar_new", ctypes.c_int, _p, ctypes.c_char_p, ctypes.POINTER(_p))
_grammar_apply = _sig("bitnet_grammar_apply", ctypes.c_int, _p, ctypes.POINTER(ctypes.c_float))
_grammar_accept = _sig("bitnet_grammar_accept", ctypes.c_int, _p, _token)
_grammar_is_complete = _sig("bitnet_grammar_is_complete", ctypes.c_int, _p)
_grammar_free = _sig("bitnet_grammar_free", None, _p)
_json_schema_to_grammar = _sig("bitnet_json_schema_to_grammar", ctypes.c_int, ctypes.c_char_p, ctypes.c_size_t,
                               ctypes.POINTER(ctypes.c_char_p))
_libc_free = ctypes.CDLL(None).free
_libc_free.argtypes = [ctypes.c_void_p]
_libc_free.restype = None


def _check(status: int) -> None:
    if status != 0:
        raise BitnetError(_last_error().decode("utf-8", "replace"), status)


def version() -> str:
    """libbitnet's version (BITNET_VERSION)."""
    return _version().decode()


# ---- model --------------------------------------------------------------------------------

class Model:
    """A loaded model: GGUF, safetensors (file or Hugging Face directory) or ak42.

    Model() loads the small model embedded in libbitnet. Free it with close()
    (or a `with` block); it is freed when garbage-collected otherwise.
    """

    def __init__(self, path: Optional[str] = None, *, tokenizer: Optional[str] = None,
                 mmap: bool = True, mlock: bool = False):
        params = _model_default_params()
        self._tok_path = tokenizer.encode() if tokenizer else None  # kept alive while loading
        params.tokenizer_path = self._tok_path
        params.use_mmap = int(mmap)
        params.use_mlock = int(mlock)
        out = _p()
        if path is None:
            _check(_model_load_default(ctypes.byref(params), ctypes.byref(out)))
        else:
            _check(_model_load(os.fsencode(path), ctypes.byref(params), ctypes.byref(out)))
        self._h = out
        info = _ModelInfo()
        _model_get_info(self._h, ctypes.byref(info))
        self.arch: str = info.arch.decode() if info.arch else ""
        self.name: str = info.name.decode("utf-8", "replace") if info.name else ""
        self.n_vocab: int = info.n_vocab
        self.n_embd: int = info.n_embd
        self.n_layer: int = info.n_layer
        self.n_ctx_train: int = info.n_ctx_train
        self.n_params: int = info.n_params

    # lifetime
    def close(self) -> None:
        """Frees the model (contexts made from it must be closed first)."""
        if getattr(self, "_h", None):
            _model_free(self._h)
            self._h = None

    def __enter__(self) -> "Model":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __del__(self) -> None:
        self.close()

    # tokens
    @property
    def bos(self) -> int:
        return _token_bos(self._h)

    @property
    def eos(self) -> int:
        return _token_eos(self._h)

    def is_eog(self, token: int) -> bool:
        """End of generation: EOS, EOT and the like."""
        return bool(_token_is_eog(self._h, token))

    def tokenize(self, text: str, *, bos: bool = True, special: bool = False) -> List[int]:
        """Token ids of text (with BOS first if bos; control tokens parsed if special)."""
        data = text.encode("utf-8")
        cap = len(data) + 8
        buf = (_token * cap)()
        n = _tokenize_ex(self._h, data, len(data), int(bos), int(special), buf, cap)
        if n < 0:
            raise BitnetError(_last_error().decode("utf-8", "replace"), n)
        return list(buf[:n])

    def token_to_piece(self, token: int, prev: int = -1) -> bytes:
        """The bytes of one token (prev: the token before it, for SentencePiece's leading space)."""
        buf = ctypes.create_string_buffer(256)
        n = _token_to_piece(self._h, prev, token, buf, 256)
        if n < 0:
            raise BitnetError(_last_error().decode("utf-8", "replace"), n)
        return buf.raw[:min(n, 255)]

    def detokenize(self, tokens: Sequence[int]) -> str:
        """The text of tokens (BOS and EOS left out, invalid UTF-8 replaced)."""
        out, prev, skip = bytearray(), -1, (self.bos, self.eos)
        for t in tokens:
            if t not in skip:
                out += self.token_to_piece(t, prev)
            prev = t
        return out.decode("utf-8", "replace")

    # chat
    @property
    def chat_template(self) -> Optional[str]:
        t = _chat_template(self._h)
        return t.decode("utf-8", "replace") if t else None

    def apply_chat_template(self, messages: Sequence[dict], *, template: Optional[str] = None,
                            add_assistant: bool = True) -> str:
        """The conversation as the model's chat template renders it (or template: a name
        such as "llama3", "chatml", "gemma", "falcon3", "plain", or a template's text)."""
        text, _ = self._render(messages, template, add_assistant)
        return text.decode("utf-8", "replace")

    def _render(self, messages, template, add_assistant):
        tmpl = template.encode() if template else _chat_template(self._h)
        if tmpl is None:
            tmpl = b"plain"
        keep = [(m["role"].encode(), (m.get("content") or "").encode()) for m in messages]
        arr = (_ChatMessage * max(1, len(keep)))(*[_ChatMessage(r, c) for r, c in keep])
        n = _chat_apply_ex(tmpl, arr, len(keep), int(add_assistant), None, None, 0)
        if n < 0:
            raise BitnetError(_last_error().decode("utf-8", "replace"), n)
        buf = ctypes.create_string_buffer(n + 1)
        plain = (ctypes.c_ubyte * (n + 1))()
        _chat_apply_ex(tmpl, arr, len(keep), int(add_assistant), buf, plain, n + 1)
        return buf.raw[:n], plain

    # generation
    def generate(self, prompt: Union[str, Sequence[int]], *, n_predict: int = -1, temp: float = 0.8,
                 top_k: int = 40, top_p: float = 0.95, min_p: float = 0.05, repeat_penalty: float = 1.0,
                 seed: Optional[int] = None, stop: Sequence[str] = (), grammar: Optional[str] = None,
                 json_schema: Union[None, str, dict] = None, n_ctx: int = 512, threads: Optional[int] = None,
                 stream: bool = False) -> Union[str, Iterator[str]]:
        """Continues prompt (text, or token ids starting with BOS) as build/infer does:
        n_predict tokens (-1: until end of generation or a full context). temp 0 is greedy and
        gives build/infer --temp 0's text. grammar (GBNF) or json_schema constrain the output.
        stop: strings that end it (not returned). stream=True returns an iterator of pieces."""
        it = self._generate(prompt, n_predict, temp, top_k, top_p, min_p, repeat_penalty, seed, stop, grammar,
                            json_schema, n_ctx, threads)
        return it if stream else "".join(it)

    def chat(self, messages: Sequence[dict], *, template: Optional[str] = None, **kw) -> Union[str, Iterator[str]]:
        """The assistant's answer to messages ([{"role", "content"}, ...]) in the chat template;
        the keywords are generate()'s."""
        text, plain = self._render(messages, template, True)
        cap = len(text) + 8
        buf = (_token * cap)()
        n = _tokenize_chat(self._h, text, len(text), plain, 1, buf, cap)
        if n < 0:
            raise BitnetError(_last_error().decode("utf-8", "replace"), n)
        stream = kw.pop("stream", False)
        it = self.generate(list(buf[:n]), stream=True, **kw)
        return it if stream else "".join(it)

    def _generate(self, prompt, n_predict, temp, top_k, top_p, min_p, repeat_penalty, seed, stop, grammar,
                  json_schema, n_ctx, threads) -> Iterator[str]:
        toks = self.tokenize(prompt) if isinstance(prompt, str) else list(prompt)
        if not toks:
            raise BitnetError("the prompt has no tokens")
        if json_schema is not None:
            grammar = Grammar.from_json_schema(json_schema)
        with Context(self, n_ctx=n_ctx, threads=threads or 1) as ctx, \
                Sampler(self, temp=temp, top_k=top_k, top_p=top_p, min_p=min_p,
                        repeat_penalty=repeat_penalty, seed=seed) as smp:
            g = Grammar(self, grammar) if grammar else None
            try:
                if len(toks) >= ctx.n_ctx:
                    raise BitnetError(f"the prompt has {len(toks)} tokens, more than n_ctx {ctx.n_ctx} allows")
                ctx.eval(toks, 0)
                for t in toks:
                    smp.accept(t)
                pos, prev, n_gen = len(toks), toks[-1], 0
                pending = bytearray()  # bytes of an unfinished UTF-8 sequence, and text a stop string may start
                held = ""
                while n_predict < 0 or n_gen < n_predict:
                    logits = ctx._logits_ptr()
                    if g is not None:
                        if g.is_complete() == 2 or g._apply(logits) == 0:
                            break
                    tok = smp._sample(logits)
                    if self.is_eog(tok) or tok == self.eos:
                        break
                    if g is not None:
                        g.accept(tok)
                    smp.accept(tok)
                    n_gen += 1
                    pending += self.token_to_piece(tok, prev)
                    prev = tok
                    try:
                        piece = pending.decode("utf-8")
                        pending.clear()
                    except UnicodeDecodeError as e:
                        if e.reason != "unexpected end of data":
                            piece = pending.decode("utf-8", "replace")
                            pending.clear()
                        else:
                            piece = ""
                    held += piece
                    cut = min((held.find(s) for s in stop if s and s in held), default=-1)
                    if cut >= 0:
                        if held[:cut]:
                            yield held[:cut]
                        return
                    # hold back the end of the text that could still become a stop string
                    k = max((k for s in stop for k in range(1, len(s)) if held.endswith(s[:k])), default=0)
                    if len(held) > k:
                        yield held[:len(held) - k]
                        held = held[len(held) - k:]
                    if pos >= ctx.n_ctx:
                        break
                    ctx.eval([tok], pos)
                    pos += 1
                if pending:
                    held += pending.decode("utf-8", "replace")
                if held:
                    yield held
            finally:
                if g is not None:
                    g.close()

    # embeddings
    def embed(self, text: Union[str, Sequence[int]], *, normalize: bool = True, n_ctx: int = 512) -> List[float]:
        """One vector for text: the model's pooling (else mean), L2-normalised if normalize."""
        toks = self.tokenize(text) if isinstance(text, str) else list(text)
        n_embd = _n_embd(self._h)
        out = (ctypes.c_float * n_embd)()
        with Context(self, n_ctx=max(n_ctx, len(toks) + 1)) as ctx:
            arr = (_token * len(toks))(*toks)
            _check(_embed(ctx._h, arr, len(toks), -1, int(normalize), out))
        return list(out)


# ---- context, sampler, grammar -------------------------------------------------------------

class Context:
    """A KV cache and buffers for one model: eval() tokens at positions, read logits."""

    def __init__(self, model: Model, *, n_ctx: int = 512, threads: int = 1, n_batch: int = 64,
                 kv_type: Optional[int] = None):
        params = _context_default_params()
        params.n_ctx = n_ctx
        params.n_threads = threads
        params.n_batch = n_batch
        if kv_type is not None:
            params.kv_type = kv_type
        out = _p()
        _check(_context_new(model._h, ctypes.byref(params), ctypes.byref(out)))
        self._h = out
        self.model = model
        self.n_ctx: int = _n_ctx(self._h)
        self.n_vocab: int = model.n_vocab

    def eval(self, tokens: Sequence[int], pos: int = 0) -> None:
        """Evaluates tokens at positions pos, pos+1, ...; logits() is then the last one's."""
        arr = (_token * len(tokens))(*tokens)
        _check(_eval(self._h, arr, len(tokens), pos))

    @property
    def n_past(self) -> int:
        """Positions the KV cache holds (bitnet_seq_n_pos of sequence 0)."""
        return _seq_n_pos(self._h, 0)

    def truncate(self, n: int) -> None:
        """Drops every position from n on (bitnet_seq_rm of a tail): the next eval continues at n."""
        _check(_seq_rm(self._h, 0, n, -1))

    def save_state(self, path: str, tokens: Sequence[int]) -> None:
        """Writes the first len(tokens) positions' keys and values and the tokens to path (a session
        file, as infer --prompt-cache writes; replaced atomically)."""
        arr = (_token * len(tokens))(*tokens)
        _check(_state_save(self._h, os.fsencode(path), arr, len(tokens)))

    def load_state(self, path: str) -> List[int]:
        """Loads a session file written for this model and KV type; returns its tokens. Evaluate at
        least one token afterwards (the logits are not saved)."""
        arr = (_token * self.n_ctx)()
        n = ctypes.c_int(0)
        _check(_state_load(self._h, os.fsencode(path), arr, self.n_ctx, ctypes.byref(n)))
        return list(arr[: n.value])

    def _logits_ptr(self):
        return _get_logits(self._h)

    def logits(self) -> List[float]:
        """The last evaluated token's logits (a copy)."""
        return self._logits_ptr()[: self.n_vocab]

    def close(self) -> None:
        if getattr(self, "_h", None):
            _context_free(self._h)
            self._h = None

    def __enter__(self) -> "Context":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __del__(self) -> None:
        self.close()


class Sampler:
    """Temperature, top-k, top-p, min-p and penalties, as bitnet_sampler (seeded)."""

    def __init__(self, model: Model, *, temp: float = 0.8, top_k: int = 40, top_p: float = 0.95,
                 min_p: float = 0.05, repeat_penalty: float = 1.0, seed: Optional[int] = None):
        p = _sampler_default_params()
        p.temp, p.top_k, p.top_p, p.min_p, p.repeat_penalty = temp, top_k, top_p, min_p, repeat_penalty
        p.seed = seed if seed is not None else int.from_bytes(os.urandom(4), "little")
        out = _p()
        _check(_sampler_new(ctypes.byref(p), model.n_vocab, ctypes.byref(out)))
        self._h = out
        self.n_vocab = model.n_vocab

    def _sample(self, logits_ptr) -> int:
        return _sampler_sample(self._h, logits_ptr)

    def sample(self, logits: Sequence[float]) -> int:
        arr = (ctypes.c_float * self.n_vocab)(*logits)
        return _sampler_sample(self._h, arr)

    def accept(self, token: int) -> None:
        _sampler_accept(self._h, token)

    def close(self) -> None:
        if getattr(self, "_h", None):
            _sampler_free(self._h)
            self._h = None

    def __enter__(self) -> "Sampler":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __del__(self) -> None:
        self.close()


class Grammar:
    """A GBNF grammar (llama.cpp's format) over a model's vocabulary (docs/grammar.md)."""

    def __init__(self, model: Model, gbnf: str):
        out = _p()
        _check(_grammar_new(model._h, gbnf.encode("utf-8"), ctypes.byref(out)))
        self._h = out

    @staticmethod
    def from_json_schema(schema: Union[str, dict]) -> str:
        """GBNF for a JSON Schema (a dict or its JSON text)."""
        text = (schema if isinstance(schema, str) else json.dumps(schema)).encode("utf-8")
        out = ctypes.c_char_p()
        _check(_json_schema_to_grammar(text, len(text), ctypes.byref(out)))
        try:
            return out.value.decode("utf-8")
        finally:
            _libc_free(ctypes.cast(out, ctypes.c_void_p))

    def _apply(self, logits_ptr) -> int:
        n = _grammar_apply(self._h, logits_ptr)
        if n < 0:
            raise BitnetError(_last_error().decode("utf-8", "replace"), n)
        return n

    def accept(self, token: int) -> None:
        _check(_grammar_accept(self._h, token))

    def is_complete(self) -> int:
        """0: not a whole sentence yet; 1: it is and may go on; 2: it is and must end."""
        return _grammar_is_complete(self._h)

    def close(self) -> None:
        if getattr(self, "_h", None):
            _grammar_free(self._h)
            self._h = None

    def __del__(self) -> None:
        self.close()
