/* fuzz_grammar.c - libFuzzer target for src/grammar: the GBNF parser, JSON
 * Schema to GBNF, and the recogniser and token mask over the default model's
 * vocabulary (tok512).
 *
 * The first input byte picks the mode, the rest is the input:
 *   even  GBNF text: a rejected grammar gives "grammar line L: ..." on one line;
 *         an accepted one is compiled and walked (below)
 *   odd   a JSON Schema: a rejected one gives "JSON Schema: ..." on one line; an
 *         accepted one must give GBNF that parses (the converter never writes
 *         invalid grammar), which is then walked
 * The walk: up to 24 steps, each masking the logits and taking the allowed
 * token the input's bytes pick; every allowed token must be accepted, a token
 * the mask removed must be refused, and end-of-generation is allowed only
 * when the grammar says it is complete. */
#include <math.h>

#include "fuzz.h"
#include "grammar/grammar.h"

static bitnet_model *g_model; /* kept for the whole run (not a leak) */
static bitnet_grammar *g_base; /* the vocabulary index every grammar shares */

static void one_line(const char *e, const char *prefix) {
    if (strchr(e, '\n') || strchr(e, '\r')) fuzz_fail("error message is not one line", e);
    if (strncmp(e, prefix, strlen(prefix)) != 0) fuzz_fail("error message does not say what failed", e);
}

static void walk(const char *gbnf, const uint8_t *pick, size_t n_pick) {
    bitnet_grammar *g = NULL;
    bitnet_status st = bitnet_grammar_new_sharing(g_base, gbnf, &g);
    if (st == BITNET_ERR_NOMEM) return;
    if (st != BITNET_OK) {
        one_line(bitnet_last_error(), "grammar line ");
        return;
    }
    const int nv = bitnet_n_vocab(g_model);
    float *l = malloc((size_t)nv * sizeof *l);
    if (!l) abort();
    for (int step = 0; step < 24; step++) {
        for (int t = 0; t < nv; t++) l[t] = 0.0f;
        const int complete = bitnet_grammar_is_complete(g);
        const int left = bitnet_grammar_apply(g, l);
        if (left < 0) break; /* too ambiguous: an error, not a crash */
        int counted = 0, eog_ok = 0;
        for (int t = 0; t < nv; t++) {
            counted += l[t] > -INFINITY;
            if (l[t] > -INFINITY && bitnet_token_is_eog(g_model, t)) eog_ok = 1;
        }
        if (counted != left) fuzz_fail("apply's count differs from the tokens it left", "");
        if (eog_ok && !complete) fuzz_fail("end of generation allowed before the grammar is complete", "");
        if (left == 0) break;
        int k = n_pick ? pick[step % n_pick] % left : 0, tok = -1, banned = -1;
        for (int t = 0; t < nv; t++) {
            if (l[t] > -INFINITY && k-- == 0 && tok < 0) tok = t;
            if (l[t] == -INFINITY && banned < 0 && !bitnet_token_is_eog(g_model, t)) banned = t;
        }
        if (banned >= 0 && bitnet_grammar_accept(g, banned) == BITNET_OK && banned != bitnet_token_bos(g_model)) {
            char piece[64];
            int pl = bitnet_token_to_piece(g_model, -1, banned, piece, sizeof piece);
            if (pl > 0) fuzz_fail("a token the mask removed was accepted", piece);
        }
        if (bitnet_token_is_eog(g_model, tok)) break;
        if (bitnet_grammar_accept(g, tok) != BITNET_OK) fuzz_fail("an allowed token was refused", bitnet_last_error());
    }
    free(l);
    bitnet_grammar_free(g);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1 || size > 4096) return 0;
    if (!g_model) {
        if (bitnet_model_load_default(NULL, &g_model) != BITNET_OK) fuzz_fail("cannot load the default model", bitnet_last_error());
        if (bitnet_grammar_new(g_model, "root ::= \"\"", &g_base) != BITNET_OK) fuzz_fail("base grammar", bitnet_last_error());
    }
    char *text = malloc(size);
    if (!text) return 0;
    memcpy(text, data + 1, size - 1);
    text[size - 1] = 0;
    const size_t len = strlen(text); /* a NUL ends the text; the bytes after it pick the tokens */
    const uint8_t *pick = data + 1 + len;
    const size_t n_pick = size - 1 - len;
    if (data[0] % 2 == 0) {
        bn_gbnf g;
        char err[256];
        if (bn_gbnf_parse(text, &g, err, sizeof err) != 0) one_line(err, strstr(err, "out of memory") ? "" : "grammar line ");
        else {
            bn_gbnf_free(&g);
            walk(text, pick, n_pick);
        }
    } else {
        char *gbnf = NULL;
        bitnet_status st = bitnet_json_schema_to_grammar(text, len, &gbnf);
        if (st == BITNET_OK) {
            bn_gbnf g;
            char err[256];
            if (bn_gbnf_parse(gbnf, &g, err, sizeof err) != 0) fuzz_fail("the converter wrote a grammar that does not parse", err);
            bn_gbnf_free(&g);
            walk(gbnf, pick, n_pick);
        } else if (st != BITNET_ERR_NOMEM) {
            one_line(bitnet_last_error(), "JSON Schema: ");
        }
        free(gbnf);
    }
    free(text);
    return 0;
}
