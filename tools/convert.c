/* convert - write a model as GGUF with ternary tensors packed.
 *
 *   build/convert IN -o OUT.gguf --type tq2_0|tq1_0|i2_s|f16|f32 [--tokenizer tok512.bin]
 *
 * IN is anything the runtime loads (ak42, GGUF, safetensors). The ternary linears are
 * written in the chosen layout; embeddings and norms stay f32. For a ternary
 * model, f32/f16 store the exact values -1/0/+1 with the per-tensor scale in a
 * companion `NAME.scale` f32 tensor, as do tq2_0/tq1_0 (whose fp16 block
 * scales are then 1.0, so no precision is lost); i2_s carries its scale after
 * the data as bitnet.cpp does. TQ1_0/TQ2_0 need rows that are a multiple of
 * 256 weights: other tensors fall back to i2_s with a warning.
 * The vocabulary goes into the GGUF metadata, so OUT runs without --tokenizer. */
#include <math.h>
#include <sys/stat.h>

#include "bitnet.h"
#include "model/model_writer.h"
#define TOOL_NAME "convert"
#include "util.h"

static void usage(FILE *out) {
    fprintf(out,
            "usage: convert IN -o OUT.gguf [--type tq2_0|tq1_0|i2_s|f16|f32] [--head-type keep|f32|f16|q8_0|q6_k|q4_k]\n"
            "               [--tokenizer tokenizer.bin]\n"
            "       convert IN OUT.gguf [TYPE]   (llama-quantize's form, TYPE as above in any case)\n"
            "Converts a model (ak42, GGUF or safetensors) to GGUF. Ternary linears are stored packed\n"
            "(default i2_s); the linears of a float model are f32, or f16 with --type f16;\n"
            "norms are f32, embedding/classifier as the input stores them unless --head-type.\n"
            "The vocabulary is embedded.\n"
            "  -o FILE        output GGUF (written atomically)\n"
            "  --type T       layout of the ternary linear layers (default i2_s)\n"
            "  --head-type T  token embedding and classifier: keep (default: as stored, e.g. the\n"
            "                 Q6_K of a llama.cpp file or the f32 of ak42), f32, f16, q8_0,\n"
            "                 q6_k or q4_k (rows of a multiple of 256 values, else q8_0)\n"
            "                 (also --token-embedding-type, --output-tensor-type)\n"
            "                 (8-bit head: less memory read per token; docs/perplexity.md has its cost)\n"
            "  -q, --quiet    no progress line on stderr (else: percent done, ETA)\n"
            "  --tokenizer F  vocabulary for inputs without one: llama2.c tokenizer.bin (ak42,\n"
            "                 safetensors), a GGUF file that has one or a tokenizer.json\n"
            "                 (safetensors; a Hugging Face directory's own tokenizer.json is read)\n"
            "\n"
            "       convert --synthetic PRESET [--type T] [--vocab FILE] -o OUT.gguf\n"
            "       convert --synthetic custom --dim D --ff F --layers L --heads H --kv-heads K --vocab-size V -o OUT.gguf\n"
            "Writes a bitnet-b1.58 model with random ternary weights (--type, default i2_s), a tied Q8_0\n"
            "embedding/classifier and a placeholder vocabulary, with the shapes of a real\n"
            "model, to measure speed without downloading one. Presets:\n"
            "  bitnet-b1.58-2B-4T  dim 2560, 30 layers, ff 6912, 20/5 heads, vocab 128256\n"
            "  bitnet-700M         dim 1536, 24 layers, ff 4096, 16/16 heads, vocab 32002\n"
            "  tiny                dim 256, 2 layers, ff 512, 4/2 heads, vocab 512 (tests)\n"
            "  --vocab FILE   write this real vocabulary instead of the placeholder, e.g. Llama-3's\n"
            "                 tiktoken tokenizer.model (as tokenizer.ggml.model gpt2, pre llama-bpe,\n"
            "                 merges, BOS/EOS/EOT and the BitNet-b1.58-2B-4T chat template) or any\n"
            "                 GGUF / tokenizer.bin that `tokenize -m` reads; its size must equal\n"
            "                 the model's vocabulary (128256 for bitnet-b1.58-2B-4T)\n");
}

static void on_progress(void *user, double frac) { progress_update(user, frac, 1.0, NULL); }

/* ---- --synthetic: random ternary models with the shapes of real ones ---- */

static const bn_synthetic_shape presets[] = {
    /* microsoft/BitNet-b1.58-2B-4T */
    {"bitnet-b1.58-2B-4T", 2560, 6912, 30, 20, 5, 128256, 4096, 500000.0f},
    /* 1bitLLM/bitnet_b1_58-large (~700M) */
    {"bitnet-700M", 1536, 4096, 24, 16, 16, 32002, 2048, 10000.0f},
    /* a small one for CI */
    {"tiny", 256, 512, 2, 4, 2, 512, 256, 10000.0f},
};

static int write_synthetic(const bn_synthetic_shape *shape, const char *type, const char *out, const char *vocab) {
    if (bn_write_synthetic(shape, type, vocab, out) != BITNET_OK) {
        fprintf(stderr, "convert: %s\n", bitnet_last_error());
        return 1;
    }
    fprintf(stderr, "convert: wrote synthetic %s model to %s\n", shape->name, out);
    return 0;
}

int main(int argc, char **argv) {
    handle_version(argc, argv);
    const char *in = NULL, *out = NULL, *tokenizer = NULL, *synthetic = NULL, *vocab = NULL, *pos_type = NULL;
    int quiet = 0;
    bn_write_params wp = bn_write_default_params();
    wp.linear_type = "i2_s";
    bn_synthetic_shape custom = {"custom", 0, 0, 0, 0, 0, 0, 2048, 10000.0f};
    char lower[16]; /* the positional TYPE in lower case (llama-quantize writes TQ2_0) */
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) { usage(stdout); return 0; }
        else if (!strcmp(argv[i], "-q") || !strcmp(argv[i], "--quiet")) quiet = 1;
        else if (!strcmp(argv[i], "-o") && i + 1 < argc) out = argv[++i];
        else if (!strcmp(argv[i], "--tokenizer") && i + 1 < argc) tokenizer = argv[++i];
        else if (!strcmp(argv[i], "--synthetic") && i + 1 < argc) synthetic = argv[++i];
        else if (!strcmp(argv[i], "--vocab") && i + 1 < argc) vocab = argv[++i];
        else if (!strcmp(argv[i], "--dim") && i + 1 < argc) custom.dim = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--layers") && i + 1 < argc) custom.n_layers = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--ff") && i + 1 < argc) custom.ff = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--heads") && i + 1 < argc) custom.n_heads = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--kv-heads") && i + 1 < argc) custom.n_kv_heads = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--vocab-size") && i + 1 < argc) custom.n_vocab = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--type") && i + 1 < argc) {
            if (!bn_write_linear_type_ok(wp.linear_type = argv[++i])) { fprintf(stderr, "convert: unknown --type '%s' (tq2_0, tq1_0, i2_s, f16, f32)\n", argv[i]); return 2; }
        } else if ((!strcmp(argv[i], "--head-type") || !strcmp(argv[i], "--token-embedding-type") ||
                    !strcmp(argv[i], "--output-tensor-type")) && i + 1 < argc) { /* llama-quantize's names too */
            if (!bn_write_head_type_ok(wp.head_type = argv[++i])) { fprintf(stderr, "convert: unknown --head-type '%s' (keep, f32, f16, q8_0, q6_k, q4_k)\n", argv[i]); return 2; }
        } else if (argv[i][0] == '-') { fprintf(stderr, "convert: unknown option '%s' (see --help)\n", argv[i]); return 2; }
        else if (!in) in = argv[i];
        else if (!out) out = argv[i]; /* llama-quantize's positional form: IN OUT TYPE */
        else if (!pos_type) pos_type = argv[i];
        else { fprintf(stderr, "convert: too many arguments: '%s' (convert IN OUT [TYPE], or IN -o OUT --type TYPE)\n", argv[i]); return 2; }
    }
    if (pos_type) {
        size_t k = 0;
        for (; pos_type[k] && k < sizeof lower - 1; k++) lower[k] = (char)(pos_type[k] | (pos_type[k] >= 'A' && pos_type[k] <= 'Z' ? 32 : 0));
        lower[k] = 0;
        if (!bn_write_linear_type_ok(wp.linear_type = lower)) {
            fprintf(stderr, "convert: unknown type '%s' (TQ2_0, TQ1_0, I2_S, F16, F32)\n", pos_type);
            return 2;
        }
    }
    if (synthetic && out) {
        if (!strcmp(synthetic, "custom")) {
            if (!bn_synthetic_shape_ok(&custom)) {
                fprintf(stderr, "convert: custom needs --dim, --ff (multiples of 128), --layers, --heads, --kv-heads "
                                "(dividing heads, even head size) and --vocab-size >= 260\n");
                return 2;
            }
            return write_synthetic(&custom, wp.linear_type, out, vocab);
        }
        for (size_t i = 0; i < sizeof presets / sizeof presets[0]; i++)
            if (!strcmp(synthetic, presets[i].name)) return write_synthetic(&presets[i], wp.linear_type, out, vocab);
        fprintf(stderr, "convert: unknown preset '%s' (bitnet-b1.58-2B-4T, bitnet-700M, tiny)\n", synthetic);
        return 2;
    }
    if (!in || !out) { usage(stderr); return 2; }

    bitnet_model *m = load_model(in, tokenizer, NULL);
    if (!m) return 1;
    bitnet_model_info info;
    bitnet_model_get_info(m, &info);
    const uint64_t t0 = now_ns();
    progress pr;
    progress_start(&pr, "converting", quiet);
    wp.progress = on_progress;
    wp.progress_user = &pr;
    bitnet_status st = bn_model_write(m, &wp, out);
    progress_end(&pr);
    struct stat sb;
    if (st != BITNET_OK) fprintf(stderr, "convert: %s\n", bitnet_last_error());
    else /* llama-quantize's summary: sizes before and after, the time */
        fprintf(stderr, "convert: wrote %s (%s, linear layers %s, head %s): %.2f MB -> %.2f MB in %.2f s\n", out,
                info.arch, wp.linear_type, wp.head_type ? wp.head_type : "as stored",
                bn_model_source_bytes(m) / 1e6, stat(out, &sb) == 0 ? sb.st_size / 1e6 : 0.0, (now_ns() - t0) / 1e9);
    bitnet_model_free(m);
    return st == BITNET_OK ? 0 : 1;
}
