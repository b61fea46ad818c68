#!/usr/bin/env bash
# fuzz/make-corpus.sh - writes the seed corpora of the fuzz targets from our own
# valid files: models/default.gguf, tests/fixtures, the small files of ../shared
# (when present), and tiny models written by fuzz/seeds.c and build/convert.
# Nothing here is committed: the seeds are regenerated on every `make fuzz-run`.
#
#   fuzz/make-corpus.sh [OUTDIR]     (default build-fuzz/seeds; needs `make` first)
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-build-fuzz/seeds}
shared=${BITNET_SHARED:-../shared}
tmp=$out/tmp
rm -rf "$out"
mkdir -p "$out"/{gguf,model,ak42,tokenizer,safetensors,json,http,grammar} "$tmp"

# tiny models (a few KB: libFuzzer mutates them quickly and reaches the deep checks)
${CC:-cc} -std=c11 -D_GNU_SOURCE -O1 -Iinclude -Isrc -Isrc/kernels fuzz/seeds.c build/libbitnet.a -lm -pthread -o "$tmp/seeds"
"$tmp/seeds" "$tmp"
for t in f32 f16; do build/convert "$tmp/tiny8.ak42.bin" --tokenizer "$tmp/tiny.tok.bin" --type $t -o "$tmp/ak42-tiny8-$t.gguf" 2>/dev/null; done
for t in i2_s tq2_0 tq1_0; do build/convert "$tmp/tiny256.ak42.bin" --tokenizer "$tmp/tiny.tok.bin" --type $t -o "$tmp/ak42-tiny256-$t.gguf" 2>/dev/null; done
build/convert --synthetic custom --dim 128 --ff 128 --layers 1 --heads 2 --kv-heads 1 --vocab-size 260 --type i2_s \
    -o "$tmp/bitnet-i2_s.gguf" 2>/dev/null
build/convert --synthetic custom --dim 256 --ff 256 --layers 1 --heads 2 --kv-heads 1 --vocab-size 260 --type tq2_0 \
    -o "$tmp/bitnet-tq2_0.gguf" 2>/dev/null

# GGUF reader: every GGUF we have, big and small
cp "$tmp"/*.gguf models/default.gguf "$out/gguf/"
cp tests/fixtures/bitnet-ref/model.gguf "$out/gguf/bitnet-ref.gguf"
for f in models/stories260K.gguf tokenizers/ggml-vocab-llama-spm.gguf; do
    [ -f "$shared/$f" ] && cp "$shared/$f" "$out/gguf/"
done
# the model path: small models of every architecture and weight type
cp "$tmp"/*.gguf "$out/model/"
cp tests/fixtures/bitnet-ref/model.gguf "$out/model/bitnet-ref.gguf"
# ak42 (the real 1M / 3M files take ~10 ms a run: the tiny ones reach the same code)
cp "$tmp"/tiny8.ak42.bin "$tmp"/tiny256.ak42.bin "$out/ak42/"

# tokenizer: the first byte is the mode (see fuzz/fuzz_tokenizer.c)
text_seed() { # mode name text...
    { printf "\\x$1"; cat; } > "$out/tokenizer/$2"
}
printf 'Once upon a time, there was a little girl named Lily.' | text_seed 00 tok512-en
printf 'caf\xc3\xa9 na\xc3\xafve \xe2\x96\x81\xe2\x96\x81 \xf0\x9f\x98\x80 \xe4\xbd\xa0\xe5\xa5\xbd \xff\xfe\x00 x' | text_seed 00 tok512-utf8
printf '   multiple   spaces\n\ttabs\r\n' | text_seed 01 spm-space
if [ -f "$shared/corpora/tinystories-excerpt.txt" ]; then
    head -c 2000 "$shared/corpora/tinystories-excerpt.txt" | text_seed 00 tok512-story
    head -c 2000 "$shared/corpora/wikipedia-sample.txt" | text_seed 01 spm-wiki
fi
# mode 2: n_vocab (LE16) | text length | tokenizer.bin | text
tok_seed() { # name file n_vocab text
    { printf '\x02'; printf "\\x$(printf %02x $(($3 & 255)))\\x$(printf %02x $(($3 >> 8)))";
      printf "\\x$(printf %02x ${#4})"; cat "$2"; printf '%s' "$4"; } > "$out/tokenizer/$1"
}
tok_seed tiny-bin "$tmp/tiny.tok.bin" 5 "ab c"   # 3 + 5 = 8 tokens
[ -f "$shared/models/tok512.bin" ] && tok_seed tok512-bin "$shared/models/tok512.bin" 509 "Once upon a time"
# mode 3: a GGUF with a vocabulary
{ printf '\x03'; cat "$tmp/llama-f32.gguf"; } > "$out/tokenizer/gguf-tiny"
{ printf '\x03'; cat "$tmp/bpe.gguf"; } > "$out/tokenizer/gguf-bpe"
# first byte >= 0xf0: a Hugging Face tokenizer.json (GPT-2's and Llama-3's pre-tokenizers)
printf '{"pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": false, "use_regex": true}, "model": {"type": "BPE", "vocab": {"O": 0, "n": 1, "c": 2, "e": 3, "On": 4, "ce": 5, "\u0120": 6}, "merges": ["O n", ["c", "e"]]}, "added_tokens": [{"id": 7, "content": "<|x|>", "special": true}]}' \
    | text_seed f0 hf-json-gpt2
printf '%s' '{"pre_tokenizer": {"type": "Sequence", "pretokenizers": [{"type": "Split", "pattern": {"Regex": "(?i:'"'"'s|'"'"'t|'"'"'re|'"'"'ve|'"'"'m|'"'"'ll|'"'"'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"}, "behavior": "Isolated", "invert": false}, {"type": "ByteLevel", "use_regex": false}]}, "post_processor": {"type": "TemplateProcessing", "single": [{"SpecialToken": {"id": "<|b|>"}}, {"Sequence": {"id": "A"}}]}, "model": {"type": "BPE", "ignore_merges": true, "vocab": {"a": 0, "b": 1, "ab": 2}, "merges": ["a b"]}, "added_tokens": [{"id": 3, "content": "<|b|>", "special": true}]}' \
    | text_seed f1 hf-json-llama3
# modes 4 and 5: GPT-2 and Llama-3 BPE; 6: a tiktoken rank file; 7: special tokens
printf "Hello world! It's   2024... caf\xc3\xa9 \xf0\x9f\x98\x80\n\tx" | text_seed 04 gpt2-text
printf "Hello world! It's   2024... caf\xc3\xa9 \xf0\x9f\x98\x80\n\tx" | text_seed 05 llama3-text
printf 'IQ== 0\nIg== 1\nIw== 2\nJA== 3\n' | text_seed 06 tiktoken-lines
printf '<s>Once</s> upon <unk> a <0x41> time' | text_seed 07 tok512-special

# safetensors: the writer's models (config embedded), and a bare header
cp "$tmp"/*.safetensors "$out/safetensors/"
hdr='{"__metadata__":{"format":"pt"},"a":{"dtype":"F32","shape":[2,2],"data_offsets":[0,16]},"b":{"dtype":"BF16","shape":[3],"data_offsets":[16,22]}}'
{ printf "\\x$(printf %02x ${#hdr})\\x00\\x00\\x00\\x00\\x00\\x00\\x00"; printf '%s' "$hdr"; head -c 22 /dev/zero; } > "$out/safetensors/bare"

# json: 0 parse, 1 string writer, 2 JSON Lines, 3 paragraphs
printf '\x00{"a":[1,-0.5e3,true,null,"x\\u00e9\\ud83d\\ude00"],"b":{"c":""}}' > "$out/json/object"
printf '\x00[1e308, 5e-324, -0, 123456789012345678901234567890]' > "$out/json/numbers"
printf '\x01caf\xc3\xa9 "quoted" \\ \x01\x1f \xff' > "$out/json/string"
printf '\x02{"text": "one"}\n\n{"text": "two\\nlines", "id": 2}\n' > "$out/json/jsonl"
printf '\x03para one\nstill one\n\n  \npara two\r\n' > "$out/json/paragraphs"
for f in tinystories-calib.jsonl wiki-calib.jsonl; do
    [ -f "$shared/corpora/$f" ] && { printf '\x02'; head -c 4000 "$shared/corpora/$f"; } > "$out/json/$f"
done

# http: the first byte picks the limits (odd: small)
req='POST /v1/completions?x=1 HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: 13\r\n\r\n{"prompt":1}\n'
printf "\\x00$req" > "$out/http/post"
printf "\\x00GET /health HTTP/1.1\\r\\nHost: x\\r\\nConnection: keep-alive\\r\\n\\r\\n$req" > "$out/http/pipelined"
printf '\x41GET / HTTP/1.0\r\nExpect: 100-continue\r\nConnection: close\r\n\r\n' > "$out/http/small-limits"
post() { # name path body: a request with the default limits
    printf '\x00POST %s HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n%s' "$2" "${#3}" "$3" > "$out/http/$1"
}
post completion /v1/completions '{"prompt":"Once upon","max_tokens":8,"temperature":0.5,"top_k":4,"stop":["\n","ab"],"seed":3}'
post chat /v1/chat/completions '{"messages":[{"role":"system","content":"Be brief."},{"role":"user","content":[{"type":"text","text":"Hi \u00e9"}]}],"stream":true,"stream_options":{"include_usage":true}}'
post bad-n /v1/completions '{"prompt":"x","n":2}'
post native /completion '{"prompt":[1,2,3],"n_predict":-1,"cache_prompt":false,"stop":["x"],"stream":true}'
post native-text /completion '{"prompt":"Once","n_predict":4,"n_probs":0,"grammar":""}'

post schema /v1/chat/completions '{"messages":[{"role":"user","content":"x"}],"response_format":{"type":"json_schema","json_schema":{"schema":{"type":"object","properties":{"a":{"enum":[1,"x"]}},"required":["a"]}}}}'
post tools /v1/chat/completions '{"messages":[{"role":"user","content":"x"},{"role":"assistant","content":null,"tool_calls":[{"id":"c","type":"function","function":{"name":"f","arguments":"{}"}}]},{"role":"tool","content":"ok"}],"tools":[{"type":"function","function":{"name":"f","parameters":{"type":"object","properties":{"n":{"type":"integer"}}}}}]}'
post grammar /completion '{"prompt":"x","grammar":"root ::= [a-c]{2,3} (\"!\" | .)"}'

# grammar: even first byte GBNF, odd a JSON Schema; bytes after a NUL pick the tokens
printf '\x00root ::= (expr "=" ws term "\\n")+\nexpr ::= term ([-+*/] term)*\nterm ::= [a-z]+ ws | [0-9]+ ws | "(" ws expr ")" ws\nws ::= [ \\t]*\n\x00\x01\x07\x03' > "$out/grammar/arithmetic"
printf '\x00root ::= "{" ws ( str ":" ws str ( "," ws str ":" ws str )* )? "}"\nstr ::= "\\"" ( [^"\\\\\\x00-\\x1f] | "\\\\" ["\\\\nt] )* "\\""\nws ::= " "?\n' > "$out/grammar/json"
printf '\x00root ::= [\\u00e0-\\u00ff]{1,3} . "x"? # utf-8\n\x00\x05' > "$out/grammar/utf8"
printf '\x01{"type":"object","properties":{"name":{"type":"string","maxLength":8},"n":{"type":"array","items":{"type":"integer"},"minItems":1,"maxItems":3},"k":{"enum":["a",1,null]}},"required":["name"]}\x00\x02\x09' > "$out/grammar/schema-object"
printf '\x01{"$defs":{"t":{"type":"object","properties":{"v":{"type":"number"},"c":{"type":"array","items":{"$ref":"#/$defs/t"}}}}},"anyOf":[{"$ref":"#/$defs/t"},{"type":["boolean","null"]}]}' > "$out/grammar/schema-ref"
printf '\x01{"type":"object","properties":{"c":{"type":"string","pattern":"^(?:[A-Z][a-z]{1,5}|\\\\d+)-[^x-z\\"]\\\\.(a|b)*$"},"n":{"type":"integer","minimum":-15,"exclusiveMaximum":1234},"d":{"format":"date-time"}},"required":["c","n"]}\x00\x03\x01' > "$out/grammar/schema-pattern-range"
printf '\x01{"type":"object","properties":{"a":{"type":"integer"},"ab":{"type":"boolean"}},"required":["ab"],"additionalProperties":{"type":"string","maxLength":3}}\x00\x05\x02' > "$out/grammar/schema-extra-keys"
printf '\x01{"prefixItems":[{"type":"string","format":"uuid"},{"type":"integer","maximum":-7}],"items":false}\x00\x04' > "$out/grammar/schema-tuple"

rm -rf "$tmp"
for d in "$out"/*/; do echo "$(ls "$d" | wc -l) seeds in $d"; done
