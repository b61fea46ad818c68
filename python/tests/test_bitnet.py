"""Tests of the Python package (run by `make test` through tests/test_python.c, or
directly: python3 python/tests/test_bitnet.py with BITNET_LIB and BITNET_BUILD set)."""
import json
import os
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import bitnet  # noqa: E402

BUILD = os.environ.get("BITNET_BUILD", os.path.join(os.path.dirname(__file__), "..", "..", "build"))
REPO = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")


def rss_kib():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") // 1024


class TestModel(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.m = bitnet.Model()

    def test_generate_equals_infer(self):
        """temp 0: the same text as build/infer with the same settings."""
        for prompt, n in (("Once upon a time", 16), ("The cat", 40)):
            ours = self.m.generate(prompt, n_predict=n, temp=0)
            infer = subprocess.run([os.path.join(BUILD, "infer"), "-p", prompt, "-n", str(n), "--temp", "0",
                                    "--no-display-prompt"], capture_output=True, check=True).stdout.decode()
            self.assertEqual(ours, infer)
            self.assertEqual("".join(self.m.generate(prompt, n_predict=n, temp=0, stream=True)), ours)

    def test_seeded_sampling_repeats(self):
        a = self.m.generate("Once", n_predict=24, temp=0.9, seed=7)
        self.assertEqual(a, self.m.generate("Once", n_predict=24, temp=0.9, seed=7))

    def test_stop_strings(self):
        full = self.m.generate("Once upon a time", n_predict=40, temp=0)
        self.assertIn("Lily", full)
        cut = self.m.generate("Once upon a time", n_predict=40, temp=0, stop=["Lily"])
        self.assertEqual(cut, full[:full.index("Lily")])

    def test_tokens(self):
        toks = self.m.tokenize("Hello world")
        self.assertEqual(toks[0], self.m.bos)
        self.assertEqual(self.m.detokenize(toks), "Hello world")
        self.assertEqual(self.m.tokenize("Hello world", bos=False), toks[1:])

    def test_json_schema_and_grammar(self):
        schema = {"type": "object", "properties": {"name": {"type": "string", "maxLength": 10},
                                                   "n": {"type": "integer"}}, "required": ["name", "n"]}
        for seed in range(3):
            out = json.loads(self.m.generate("Once", json_schema=schema, temp=1.0, seed=seed, n_predict=200))
            self.assertEqual(sorted(out), ["n", "name"])
            self.assertIsInstance(out["n"], int)
        self.assertIn(self.m.generate("Once", grammar='root ::= "yes" | "no"', temp=0), ("yes", "no"))
        with self.assertRaises(bitnet.BitnetError) as e:
            self.m.generate("x", json_schema={"type": "string", "multipleOf": 2})
        self.assertIn("unsupported JSON Schema keyword 'multipleOf'", str(e.exception))

    def test_chat_and_embed(self):
        text = self.m.apply_chat_template([{"role": "user", "content": "Hi"}])
        self.assertIn("Hi", text)
        self.assertIsInstance(self.m.chat([{"role": "user", "content": "Hi"}], n_predict=4, temp=0), str)
        v = self.m.embed("hello there")
        self.assertEqual(len(v), self.m.n_embd)
        self.assertAlmostEqual(sum(x * x for x in v), 1.0, places=4)

    def test_errors_on_bad_files(self):
        with self.assertRaises(bitnet.BitnetError) as e:
            bitnet.Model("/nonexistent/model.gguf")
        self.assertIn("/nonexistent/model.gguf: cannot open", str(e.exception))
        with self.assertRaises(bitnet.BitnetError) as e:
            bitnet.Model(os.path.join(REPO, "Makefile"))
        self.assertIn("unknown file format", str(e.exception))
        with self.assertRaises(bitnet.BitnetError) as e:
            bitnet.Context(self.m, kv_type=99)
        self.assertIn("unknown KV cache type 99", str(e.exception))

    def test_session_state_round_trip(self):
        """save_state / load_state: a new context continues with the same logits."""
        m = bitnet.Model()
        toks = m.tokenize("Lily and Ben went to the park")
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "s.session")
            with bitnet.Context(m, n_ctx=64) as a, bitnet.Context(m, n_ctx=64) as b:
                a.eval(toks[:-1])
                a.save_state(path, toks[:-1])
                self.assertEqual(b.load_state(path), toks[:-1])
                self.assertEqual(b.n_past, len(toks) - 1)
                a.eval(toks[-1:], len(toks) - 1)
                b.eval(toks[-1:], len(toks) - 1)
                self.assertEqual(a.logits(), b.logits())
                b.truncate(2)
                self.assertEqual(b.n_past, 2)
            with open(path, "r+b") as f:
                f.seek(-20, os.SEEK_END)
                f.write(b"\x00\x01\x02")
            with bitnet.Context(m, n_ctx=64) as c, self.assertRaises(bitnet.BitnetError) as e:
                c.load_state(path)
            self.assertIn("checksum", str(e.exception))

    def test_no_leak_over_1000_cycles(self):
        """1,000 model + context + sampler create/free cycles: RSS flat."""
        def cycle():
            with bitnet.Model() as m, bitnet.Context(m, n_ctx=64) as c, bitnet.Sampler(m, temp=0) as s:
                c.eval([m.bos], 0)
                s.accept(m.bos)
        for _ in range(50):
            cycle()
        before = rss_kib()
        for _ in range(1000):
            cycle()
        grown = rss_kib() - before
        print(f"  RSS after 1000 cycles: {grown:+d} KiB", file=sys.stderr)
        self.assertLess(grown, 2048)


if __name__ == "__main__":
    unittest.main(verbosity=2)
