/* test_grammar.c - GBNF grammars and JSON Schema: the parser's errors, the
 * recogniser on texts, the token mask against a brute-force one, and
 * generations under a corpus of schemas that must all validate. */
#include <math.h>

#include "bitnet.h"
#include "formats/json.h"
#include "grammar/grammar.h"
#include "test.h"

static bitnet_model *default_model(void) {
    bitnet_model *m = NULL;
    return bitnet_model_load_default(NULL, &m) == BITNET_OK ? m : NULL;
}

TEST(grammar_parse_errors_name_the_line) {
    static const struct { const char *gbnf, *want; } cases[] = {
        {"root ::= foo\n", "grammar line 1: rule 'foo' is used but never defined"},
        {"start ::= \"a\"\n", "there is no rule 'root'"},
        {"root ::= \"a\"\nroot ::= \"b\"\n", "grammar line 2: rule 'root' is defined twice"},
        {"root ::= \"abc\n", "grammar line 1: unterminated string"},
        {"root ::= [a-z\n", "unterminated character class"},
        {"root ::= ( \"a\" \n", "'(' without its ')'"},
        {"\n\nroot := \"a\"\n", "grammar line 3: expected '::=' after 'root'"},
        {"root ::= * \"a\"\n", "'*' has no item before it to repeat"},
        {"root ::= \"a\"{3,2}\n", "the maximum is below the minimum"},
        {"root ::= \"a\"{2000}\n", "a repetition count over 1000"},
        {"root ::= \"\\q\"\n", "unknown escape '\\q'"},
        {"root ::= [z-a]\n", "runs backwards"},
        {"root ::= expr\nexpr ::= expr \"+\" \"1\" | \"1\"\n", "rule 'expr' is left-recursive"},
        {"root ::= a\na ::= b? a \"x\" | \"y\"\nb ::= \"z\"\n", "left-recursive"},
        {"", "the grammar is empty"},
        {"root ::= \"a\" )\n", "unexpected ')"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        bn_gbnf g;
        char err[256] = "";
        int rc = bn_gbnf_parse(cases[i].gbnf, &g, err, sizeof err);
        CHECK_MSG(rc == -1 && strstr(err, cases[i].want), "'%s': rc %d, '%s' (want '%s')", cases[i].gbnf, rc, err,
                  cases[i].want);
        if (rc == 0) bn_gbnf_free(&g);
    }
}

/* Grammars in the style of llama.cpp's grammars/ folder (multi-line rules,
 * nested groups, comments, classes with escapes, bounded repetitions), and
 * texts each must accept whole, accept as a prefix only, or reject. */
static const struct {
    const char *gbnf;
    const char *whole[4], *prefix[3], *bad[4];
} recognised[] = {
    {/* arithmetic */
     "root  ::= (expr \"=\" ws term \"\\n\")+\n"
     "expr  ::= term ([-+*/] term)*\n"
     "term  ::= ident | num | \"(\" ws expr \")\" ws\n"
     "ident ::= [a-z] [a-z0-9_]* ws\n"
     "num   ::= [0-9]+ ws\n"
     "ws    ::= [ \\t\\n]*   # spaces\n",
     {"a=b\n", "1+2*(x_1 -3)=7\nb=c\n"},
     {"1+", "(a", "a=b"},
     {"=1\n", "a=b\nC", "A=b\n", "1+=2\n"}},
    {/* JSON, multi-line with a comment inside a group */
     "root   ::= object\n"
     "value  ::= object | array | string | number | (\"true\" | \"false\" | \"null\") ws\n"
     "object ::=\n"
     "  \"{\" ws (\n"
     "            string \":\" ws value\n"
     "    (\",\" ws string \":\" ws value)*\n"
     "  )? \"}\" ws\n"
     "array  ::= \"[\" ws ( value (\",\" ws value)* )? \"]\" ws\n"
     "string ::= \"\\\"\" ( [^\"\\\\\\x7F\\x00-\\x1F] |\n"
     "    \"\\\\\" ([\"\\\\bfnrt] | \"u\" [0-9a-fA-F]{4}) # escapes\n"
     "  )* \"\\\"\" ws\n"
     "number ::= \"-\"? ([0-9] | [1-9] [0-9]{0,15}) (\".\" [0-9]+)? ws\n"
     "ws ::= | \" \" | \"\\n\" [ \\t]{0,20}\n",
     {"{}", "{\"a\": [1, -2.5, \"x\\u00e9\\n\"], \"b\": {\"c\": null}}", "{\"\xc3\xa9\xe2\x82\xac\": true}"},
     {"{\"a\":", "{\"a\": [1,", "{\"\xe2\x82"},
     {"{a}", "[1]", "{\"a\" 1}", "{\"\x01\"}"}},
    {/* a list, with \u escapes in a negated class */
     "root ::= item+\n"
     "item ::= \"- \" [^\\r\\n\\x0b\\x0c\\x85\\u2028\\u2029]+ \"\\n\"\n",
     {"- one\n", "- one\n- two \xc3\xa9\n"},
     {"- ", "- one\n- t"},
     {"-one\n", "- \n", "- a\xe2\x80\xa8\n", "* a\n"}},
    {/* repetition counts and '.' */
     "root ::= \"a\"{2,4} b{3} .?\nb ::= [0-9]\n",
     {"aa123", "aaaa123", "aaa123z", "aa123\xe2\x82\xac"},
     {"a", "aa", "aaa12"},
     {"aaaaa123", "aa12a", "aa1234z", "b"}},
};

TEST(grammar_recognises_whole_texts_prefixes_and_rejects) {
    bitnet_model *m = default_model();
    REQUIRE(m != NULL);
    for (size_t i = 0; i < sizeof recognised / sizeof recognised[0]; i++) {
        bitnet_grammar *g = NULL;
        REQUIRE_MSG(bitnet_grammar_new(m, recognised[i].gbnf, &g) == BITNET_OK, "grammar %zu: %s", i, bitnet_last_error());
        for (int k = 0; k < 4 && recognised[i].whole[k]; k++) {
            const char *t = recognised[i].whole[k];
            bitnet_grammar_reset(g);
            CHECK_MSG(bn_grammar_feed_text(g, t, strlen(t)) == 1 && bitnet_grammar_is_complete(g), "grammar %zu: '%s'", i, t);
        }
        for (int k = 0; k < 3 && recognised[i].prefix[k]; k++) {
            const char *t = recognised[i].prefix[k];
            bitnet_grammar_reset(g);
            CHECK_MSG(bn_grammar_feed_text(g, t, strlen(t)) == 1 && !bitnet_grammar_is_complete(g), "grammar %zu: prefix '%s'",
                      i, t);
        }
        for (int k = 0; k < 4 && recognised[i].bad[k]; k++) {
            const char *t = recognised[i].bad[k];
            bitnet_grammar_reset(g);
            const int r = bn_grammar_feed_text(g, t, strlen(t));
            CHECK_MSG(r == 0, "grammar %zu: '%s' not rejected", i, t);
        }
        bitnet_grammar_free(g);
    }
    bitnet_model_free(m);
}

/* The mask (a walk of the byte-sorted vocabulary sharing prefixes) equals the
 * brute force (each token's text fed to a fresh copy of the state), at every
 * step of random walks through several grammars. */
TEST(grammar_mask_equals_brute_force) {
    bitnet_model *m = default_model();
    REQUIRE(m != NULL);
    const int nv = bitnet_n_vocab(m);
    float *l = malloc((size_t)nv * sizeof *l);
    char *hist = malloc(1 << 16);
    REQUIRE(l && hist);
    uint64_t rng = 12345;
    for (size_t i = 0; i < sizeof recognised / sizeof recognised[0]; i++) {
        bitnet_grammar *g = NULL, *ref = NULL;
        REQUIRE(bitnet_grammar_new(m, recognised[i].gbnf, &g) == BITNET_OK);
        REQUIRE(bitnet_grammar_new(m, recognised[i].gbnf, &ref) == BITNET_OK);
        for (int walk = 0; walk < 3; walk++) {
            bitnet_grammar_reset(g);
            size_t n_hist = 0;
            for (int step = 0; step < 40; step++) {
                for (int t = 0; t < nv; t++) l[t] = 0.0f;
                const int left = bitnet_grammar_apply(g, l);
                int want_left = 0, differ = 0;
                const int complete = bitnet_grammar_is_complete(g) != 0;
                for (int t = 0; t < nv; t++) {
                    char piece[256];
                    int pl = bitnet_token_to_piece(m, -1, t, piece, sizeof piece);
                    int ok;
                    if (bitnet_token_is_eog(m, t) || t == bitnet_token_eos(m)) ok = complete;
                    else if (pl <= 0 || t == bitnet_token_bos(m)) ok = 0;
                    else {
                        bitnet_grammar_reset(ref);
                        ok = bn_grammar_feed_text(ref, hist, n_hist) == 1 && bn_grammar_feed_text(ref, piece, (size_t)pl) == 1;
                    }
                    want_left += ok;
                    if (ok != (l[t] > -INFINITY)) differ++;
                }
                CHECK_MSG(differ == 0 && left == want_left, "grammar %zu step %d: %d tokens differ (%d vs %d allowed)", i,
                          step, differ, left, want_left);
                if (differ || left == 0) break;
                /* a random allowed token, end-of-generation included */
                rng = rng * 6364136223846793005ULL + 1442695040888963407ULL;
                int pick = (int)((rng >> 33) % (uint64_t)left), tok = -1;
                for (int t = 0; t < nv && tok < 0; t++)
                    if (l[t] > -INFINITY && pick-- == 0) tok = t;
                if (bitnet_token_is_eog(m, tok) || tok == bitnet_token_eos(m)) break;
                REQUIRE(bitnet_grammar_accept(g, tok) == BITNET_OK);
                char piece[256];
                int pl = bitnet_token_to_piece(m, -1, tok, piece, sizeof piece);
                memcpy(hist + n_hist, piece, (size_t)pl);
                n_hist += (size_t)pl;
            }
        }
        /* a token that cannot continue is refused by accept, and the state stays */
        bitnet_grammar_reset(g);
        for (int t = 0; t < nv; t++) l[t] = 0.0f;
        bitnet_grammar_apply(g, l);
        int banned = -1;
        for (int t = 0; t < nv && banned < 0; t++) {
            char piece[64];
            if (l[t] == -INFINITY && bitnet_token_to_piece(m, -1, t, piece, sizeof piece) == 1 && piece[0] == 'Q') banned = t;
        }
        CHECK(banned >= 0);
        if (banned >= 0) CHECK(bitnet_grammar_accept(g, banned) == BITNET_ERR_ARG && strstr(bitnet_last_error(), "cannot continue"));
        bitnet_grammar_free(g);
        bitnet_grammar_free(ref);
    }
    free(l);
    free(hist);
    bitnet_model_free(m);
}
