/* test_grammar.c - GBNF grammars and JSON Schema: the parser's errors, the
 * recogniser on texts, the token mask against a brute-force one, and
 * generations under a corpus of schemas that must all validate. */
#include <ctype.h>
#include <limits.h>
#include <math.h>
#ifndef _WIN32
#include <regex.h>
#endif
#include <unistd.h>

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

/* A UTF-8 sequence cut between tokens: its lead byte is read only if some
 * class can still take a code point it starts; overlong forms, surrogates and
 * code points past U+10FFFF never pass. */
TEST(grammar_reads_utf8_cut_between_tokens) {
    bitnet_model *m = default_model();
    REQUIRE(m != NULL);
    bitnet_grammar *g = NULL;
    REQUIRE(bitnet_grammar_new(m, "root ::= \"{\" [^\"]* \"}\" | [\\u00e0-\\u00ff] \"x\"\n", &g) == BITNET_OK);
    static const struct { const char *text; int want; } cases[] = {
        {"\xe0", 0},             /* E0 starts U+0800.. : neither '{' nor U+00E0-U+00FF */
        {"\xc3", 1},             /* C3 starts U+00C0-U+00FF: U+00E0.. can follow */
        {"\xc2", 0},             /* C2 starts U+0080-U+00BF: below the range */
        {"\xc3\xa9x", 1},       /* é then x */
        {"{\xe0", 1},            /* in the negated class, any lead byte that can start a code point */
        {"{\xe0\x80", 0},       /* overlong */
        {"{\xed\xa0", 0},       /* a surrogate */
        {"{\xf4\x90", 0},       /* past U+10FFFF */
        {"{\xf0\x9f\x98\x80}", 1},
        {"{\xff", 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        bitnet_grammar_reset(g);
        CHECK_MSG(bn_grammar_feed_text(g, cases[i].text, strlen(cases[i].text)) == cases[i].want, "case %zu", i);
    }
    bitnet_grammar_free(g);
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
    bn_vocab_pieces vp; /* which tokens are control tokens (never text) */
    REQUIRE(bn_vocab_pieces_init(&vp, m) == 0);
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
                    else if (pl <= 0 || vp.special[t]) ok = 0;
                    else {
                        bitnet_grammar_reset(ref);
                        ok = bn_grammar_feed_text(ref, hist, n_hist) == 1 && bn_grammar_feed_text(ref, piece, (size_t)pl) == 1;
                    }
                    want_left += ok;
                    if (ok != (l[t] > -INFINITY)) {
                        differ++;
                        fprintf(stderr, "token %d '%.*s' (%d bytes, first %02x): brute force %d, mask %d\n", t, pl, piece, pl,
                                pl > 0 ? (unsigned char)piece[0] : 0, ok, !ok);
                    }
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
    bn_vocab_pieces_free(&vp);
    free(l);
    free(hist);
    bitnet_model_free(m);
}

/* ---- JSON Schema ------------------------------------------------------------ */

/* The keywords the converter supports, checked as a validator does (oneOf: exactly one branch). */
static int json_equal(const bn_json *a, const bn_json *b) {
    if (a->type != b->type) return 0;
    switch (a->type) {
    case BN_JSON_NULL: return 1;
    case BN_JSON_BOOL: return a->boolean == b->boolean;
    case BN_JSON_NUMBER: return a->number == b->number;
    case BN_JSON_STRING: return a->len == b->len && !memcmp(a->str, b->str, a->len);
    case BN_JSON_ARRAY:
    case BN_JSON_OBJECT:
        if (a->n != b->n) return 0;
        for (size_t i = 0; i < a->n; i++) {
            if (a->type == BN_JSON_OBJECT && strcmp(a->keys[i], b->keys[i])) return 0;
            if (!json_equal(&a->items[i], &b->items[i])) return 0;
        }
        return 1;
    }
    return 0;
}

static size_t utf8_chars(const char *s, size_t n) {
    size_t k = 0;
    for (size_t i = 0; i < n; i++) k += ((unsigned char)s[i] & 0xC0) != 0x80;
    return k;
}

static int validate(const bn_json *v, const bn_json *s, const bn_json *root, char *why, size_t wl);

/* The formats the converter supports, checked as RFC 3339 and RFC 4122 spell them. */
static int digits(const char *s, int n) { return (int)strspn(s, "0123456789") >= n; }
static int date_ok(const char *s) {
    const int mo = digits(s, 4) && s[4] == '-' && digits(s + 5, 2) ? atoi(s + 5) : 0;
    const int d = mo && s[7] == '-' && digits(s + 8, 2) ? atoi(s + 8) : 0;
    return mo >= 1 && mo <= 12 && d >= 1 && d <= 31;
}
static int time_ok(const char *s) {
    if (!(digits(s, 2) && s[2] == ':' && digits(s + 3, 2) && s[5] == ':' && digits(s + 6, 2))) return 0;
    if (atoi(s) > 23 || atoi(s + 3) > 59 || atoi(s + 6) > 59) return 0;
    s += 8;
    if (*s == '.') s += 1 + strspn(s + 1, "0123456789");
    if (*s == 'Z' || *s == 'z') return s[1] == 0;
    return (*s == '+' || *s == '-') && digits(s + 1, 2) && s[3] == ':' && digits(s + 4, 2) && atoi(s + 1) <= 23 &&
           atoi(s + 4) <= 59 && s[6] == 0;
}
static int format_ok(const char *s, const char *f) {
    if (!strcmp(f, "date")) return strlen(s) == 10 && date_ok(s);
    if (!strcmp(f, "time")) return time_ok(s);
    if (!strcmp(f, "date-time")) return strlen(s) > 11 && date_ok(s) && s[10] == 'T' && time_ok(s + 11);
    if (!strcmp(f, "uuid")) {
        for (int i = 0; i < 36; i++)
            if (i == 8 || i == 13 || i == 18 || i == 23 ? s[i] != '-' : !isxdigit((unsigned char)s[i])) return 0;
        return s[36] == 0;
    }
    return 0;
}

static int type_ok(const bn_json *v, const char *t) {
    if (!strcmp(t, "integer")) return v->type == BN_JSON_NUMBER && v->number == floor(v->number);
    if (!strcmp(t, "number")) return v->type == BN_JSON_NUMBER;
    return !strcmp(t, bn_json_type_name(v->type));
}

static int validate(const bn_json *v, const bn_json *s, const bn_json *root, char *why, size_t wl) {
    if (s->type == BN_JSON_BOOL) return s->boolean;
    const bn_json *k;
    if ((k = bn_json_get(s, "$ref"))) {
        const char *name = strrchr(k->str, '/') + 1;
        const bn_json *defs = bn_json_get(root, "$defs");
        if (!defs) defs = bn_json_get(root, "definitions");
        return validate(v, bn_json_get(defs, name), root, why, wl);
    }
    if ((k = bn_json_get(s, "type"))) {
        int ok = 0;
        if (k->type == BN_JSON_STRING) ok = type_ok(v, k->str);
        else
            for (size_t i = 0; i < k->n; i++) ok |= type_ok(v, k->items[i].str);
        if (!ok) return snprintf(why, wl, "type is not %s", k->type == BN_JSON_STRING ? k->str : "in the list"), 0;
    }
    if ((k = bn_json_get(s, "const")) && !json_equal(v, k)) return snprintf(why, wl, "const differs"), 0;
    if ((k = bn_json_get(s, "enum"))) {
        int ok = 0;
        for (size_t i = 0; i < k->n; i++) ok |= json_equal(v, &k->items[i]);
        if (!ok) return snprintf(why, wl, "not in the enum"), 0;
    }
    if ((k = bn_json_get(s, "anyOf"))) {
        int ok = 0;
        for (size_t i = 0; i < k->n; i++) ok |= validate(v, &k->items[i], root, why, wl);
        if (!ok) return snprintf(why, wl, "no anyOf branch matches"), 0;
    }
    if ((k = bn_json_get(s, "oneOf"))) {
        int n = 0;
        for (size_t i = 0; i < k->n; i++) n += validate(v, &k->items[i], root, why, wl);
        if (n != 1) return snprintf(why, wl, "%d oneOf branches match", n), 0;
    }
    if (v->type == BN_JSON_NUMBER) {
        const bn_json *ex;
        if ((k = bn_json_get(s, "minimum")) && v->number < k->number) return snprintf(why, wl, "below minimum"), 0;
        if ((k = bn_json_get(s, "maximum")) && v->number > k->number) return snprintf(why, wl, "above maximum"), 0;
        if ((ex = bn_json_get(s, "exclusiveMinimum")) && v->number <= ex->number) return snprintf(why, wl, "not above exclusiveMinimum"), 0;
        if ((ex = bn_json_get(s, "exclusiveMaximum")) && v->number >= ex->number) return snprintf(why, wl, "not below exclusiveMaximum"), 0;
    }
    if (v->type == BN_JSON_STRING && (k = bn_json_get(s, "format")) && !format_ok(v->str, k->str))
        return snprintf(why, wl, "not a %s", k->str), 0;
#ifndef _WIN32 /* POSIX extended regular expressions: the corpus's patterns mean the same there */
    if (v->type == BN_JSON_STRING && (k = bn_json_get(s, "pattern"))) {
        regex_t re;
        if (regcomp(&re, k->str, REG_EXTENDED | REG_NOSUB)) return snprintf(why, wl, "regcomp failed"), 0;
        const int match = regexec(&re, v->str, 0, NULL, 0) == 0;
        regfree(&re);
        if (!match) return snprintf(why, wl, "does not match the pattern"), 0;
    }
#endif
    if (v->type == BN_JSON_ARRAY && (k = bn_json_get(s, "prefixItems"))) {
        if (v->n < k->n) return snprintf(why, wl, "fewer items than prefixItems"), 0;
        for (size_t i = 0; i < k->n; i++)
            if (!validate(&v->items[i], &k->items[i], root, why, wl)) return 0;
    }
    if (v->type == BN_JSON_STRING) {
        const size_t n = utf8_chars(v->str, v->len);
        if ((k = bn_json_get(s, "minLength")) && n < (size_t)k->number) return snprintf(why, wl, "shorter than minLength"), 0;
        if ((k = bn_json_get(s, "maxLength")) && n > (size_t)k->number) return snprintf(why, wl, "longer than maxLength"), 0;
    }
    if (v->type == BN_JSON_ARRAY) {
        if ((k = bn_json_get(s, "minItems")) && v->n < (size_t)k->number) return snprintf(why, wl, "fewer than minItems"), 0;
        if ((k = bn_json_get(s, "maxItems")) && v->n > (size_t)k->number) return snprintf(why, wl, "more than maxItems"), 0;
        const bn_json *pre = bn_json_get(s, "prefixItems"); /* "items" then covers the ones after them */
        if ((k = bn_json_get(s, "items")) && k->type != BN_JSON_ARRAY)
            for (size_t i = pre ? pre->n : 0; i < v->n; i++)
                if (!validate(&v->items[i], k, root, why, wl)) return 0;
        if (k && k->type == BN_JSON_ARRAY) { /* draft 4's tuple */
            const bn_json *more = bn_json_get(s, "additionalItems");
            if (v->n < k->n || (more && more->type == BN_JSON_BOOL && !more->boolean && v->n > k->n))
                return snprintf(why, wl, "not the %zu items of the tuple", k->n), 0;
            for (size_t i = 0; i < k->n; i++)
                if (!validate(&v->items[i], &k->items[i], root, why, wl)) return 0;
        }
    }
    if (v->type == BN_JSON_OBJECT) {
        const bn_json *props = bn_json_get(s, "properties"), *add = bn_json_get(s, "additionalProperties");
        if ((k = bn_json_get(s, "required")))
            for (size_t i = 0; i < k->n; i++)
                if (!bn_json_get(v, k->items[i].str)) return snprintf(why, wl, "required '%s' missing", k->items[i].str), 0;
        for (size_t i = 0; i < v->n; i++) {
            const bn_json *ps = props ? bn_json_get(props, v->keys[i]) : NULL;
            if (ps && !validate(&v->items[i], ps, root, why, wl)) return 0;
            if (!ps && add && add->type == BN_JSON_OBJECT && !validate(&v->items[i], add, root, why, wl)) return 0;
            if (!ps && add && add->type == BN_JSON_BOOL && !add->boolean)
                return snprintf(why, wl, "additional property '%s'", v->keys[i]), 0;
        }
    }
    return 1;
}

/* Twenty schemas of the kinds tools and structured output use. */
static const char *const schemas[] = {
    "{\"type\":\"object\",\"properties\":{\"name\":{\"type\":\"string\",\"maxLength\":12},\"age\":{\"type\":\"integer\"}},"
    "\"required\":[\"name\",\"age\"]}",
    "{\"type\":\"array\",\"items\":{\"type\":\"integer\"},\"minItems\":2,\"maxItems\":4}",
    "{\"type\":\"string\",\"enum\":[\"red\",\"green\",\"blue\"]}",
    "{\"type\":\"object\",\"properties\":{\"ok\":{\"type\":\"boolean\"},\"note\":{\"type\":[\"string\",\"null\"],"
    "\"maxLength\":8}},\"required\":[\"ok\"],\"additionalProperties\":false}",
    "{\"anyOf\":[{\"type\":\"integer\"},{\"type\":\"string\",\"maxLength\":5},{\"type\":\"null\"}]}",
    "{\"type\":\"object\",\"properties\":{\"a\":{\"type\":\"number\"},\"b\":{\"type\":\"number\"},\"c\":{\"type\":\"number\"}}}",
    "{\"type\":\"object\",\"properties\":{\"user\":{\"type\":\"object\",\"properties\":{\"id\":{\"type\":\"integer\"},"
    "\"tags\":{\"type\":\"array\",\"items\":{\"type\":\"string\",\"maxLength\":6},\"maxItems\":3}},"
    "\"required\":[\"id\",\"tags\"]}},\"required\":[\"user\"]}",
    "{\"const\":{\"version\":1,\"kind\":\"fixed\"}}",
    "{\"type\":\"string\",\"minLength\":3,\"maxLength\":10}",
    "{\"type\":\"array\",\"items\":{\"enum\":[1,2,3,\"x\",null,true]},\"maxItems\":5}",
    "{\"$defs\":{\"point\":{\"type\":\"object\",\"properties\":{\"x\":{\"type\":\"integer\"},\"y\":{\"type\":\"integer\"}},"
    "\"required\":[\"x\",\"y\"]}},\"type\":\"array\",\"items\":{\"$ref\":\"#/$defs/point\"},\"minItems\":1,\"maxItems\":3}",
    "{\"definitions\":{\"node\":{\"type\":\"object\",\"properties\":{\"v\":{\"type\":\"integer\"},\"kids\":{\"type\":\"array\","
    "\"items\":{\"$ref\":\"#/definitions/node\"},\"maxItems\":2}},\"required\":[\"v\"]}},\"$ref\":\"#/definitions/node\"}",
    "{\"type\":\"object\",\"properties\":{\"name\":{\"type\":\"string\",\"maxLength\":10},\"arguments\":{\"type\":\"object\","
    "\"properties\":{\"city\":{\"type\":\"string\",\"maxLength\":10},\"unit\":{\"enum\":[\"c\",\"f\"]}},\"required\":[\"city\"]}},"
    "\"required\":[\"name\",\"arguments\"],\"title\":\"tool call\",\"description\":\"a function call\"}",
    "{\"type\":\"boolean\"}",
    "{\"type\":\"number\"}",
    "{\"type\":\"object\",\"properties\":{\"q\":{\"type\":\"string\",\"maxLength\":20},\"n\":{\"type\":\"integer\"}},"
    "\"required\":[\"n\"]}",
    "{\"oneOf\":[{\"type\":\"object\",\"properties\":{\"cat\":{\"const\":\"meow\"}},\"required\":[\"cat\"],"
    "\"additionalProperties\":false},{\"type\":\"object\",\"properties\":{\"dog\":{\"const\":\"woof\"}},\"required\":[\"dog\"],"
    "\"additionalProperties\":false}]}",
    "{\"type\":\"array\",\"items\":{\"type\":\"array\",\"items\":{\"type\":\"boolean\"},\"maxItems\":2},\"maxItems\":3}",
    "{\"type\":\"object\",\"properties\":{\"s\":{\"type\":\"string\",\"maxLength\":16,\"description\":\"escapes allowed\"}},"
    "\"required\":[\"s\"],\"$schema\":\"https://json-schema.org/draft/2020-12/schema\"}",
    "{\"type\":\"object\",\"properties\":{\"id\":{\"type\":\"integer\"},\"score\":{\"type\":[\"number\",\"null\"]},"
    "\"label\":{\"enum\":[\"spam\",\"ham\"]},\"extra\":true},\"required\":[\"id\",\"label\"]}",
    /* integer ranges, formats and tuples */
    "{\"type\":\"object\",\"properties\":{\"age\":{\"type\":\"integer\",\"minimum\":0,\"maximum\":120},"
    "\"t\":{\"type\":[\"integer\",\"null\"],\"exclusiveMinimum\":-5,\"exclusiveMaximum\":5}},\"required\":[\"age\",\"t\"]}",
    "{\"type\":\"object\",\"properties\":{\"when\":{\"type\":\"string\",\"format\":\"date-time\"},"
    "\"day\":{\"format\":\"date\"},\"at\":{\"type\":\"string\",\"format\":\"time\"},\"id\":{\"type\":\"string\",\"format\":\"uuid\"}},"
    "\"required\":[\"when\",\"day\",\"at\",\"id\"]}",
    "{\"type\":\"array\",\"prefixItems\":[{\"type\":\"string\",\"maxLength\":5},{\"type\":\"integer\",\"minimum\":10,"
    "\"maximum\":99},{\"type\":\"boolean\"}],\"items\":false}",
    "{\"type\":\"array\",\"items\":{\"type\":\"integer\",\"minimum\":-1000,\"maximum\":-7},\"minItems\":1,\"maxItems\":4}",
    "{\"type\":\"object\",\"properties\":{\"code\":{\"type\":\"string\",\"pattern\":\"^[A-Z][a-z]{1,5}-[0-9]{2}(x|yz)?$\"}},"
    "\"required\":[\"code\"]}",
    "{\"type\":\"object\",\"properties\":{\"p\":{\"type\":\"number\",\"minimum\":0,\"maximum\":1},\"t\":{\"type\":\"number\","
    "\"exclusiveMinimum\":-40,\"exclusiveMaximum\":60}},\"required\":[\"p\",\"t\"]}",
};

/* One generation under grammar g: returns the malloc'd text, or the text so far
 * after a '!' when it did not complete the grammar within max_tokens. */
static char *generate(bitnet_context *ctx, const bitnet_model *m, bitnet_grammar *g, float temp, uint64_t seed,
                      int max_tokens, int *n_tokens) {
    const int nv = bitnet_n_vocab(m);
    bitnet_sampler_params sp = bitnet_sampler_default_params();
    sp.temp = temp;
    sp.seed = seed;
    sp.top_k = 0;
    sp.top_p = 1.0f;
    sp.min_p = 0.0f;
    bitnet_sampler *smp = NULL;
    bitnet_sampler_new(&sp, nv, &smp);
    bitnet_token toks[64];
    const int np = bitnet_tokenize(m, "Once upon a time", 1, toks, 64);
    char *out = calloc(1, 1 << 14);
    size_t len = 0;
    int pos = np, done = 0;
    bitnet_grammar_reset(g);
    if (smp && out && np > 0 && bitnet_eval(ctx, toks, np, 0) == BITNET_OK) {
        for (*n_tokens = 0; *n_tokens < max_tokens && pos < bitnet_n_ctx(ctx); (*n_tokens)++) {
            float *l = bitnet_get_logits(ctx);
            if (bitnet_grammar_apply(g, l) <= 0) break; /* no token can continue: a bug */
            bitnet_token t = bitnet_sampler_sample(smp, l);
            if (bitnet_token_is_eog(m, t) || t == bitnet_token_eos(m)) {
                done = bitnet_grammar_is_complete(g) != 0;
                break;
            }
            if (bitnet_grammar_accept(g, t) != BITNET_OK) break;
            bitnet_sampler_accept(smp, t);
            char piece[256];
            int pl = bitnet_token_to_piece(m, -1, t, piece, sizeof piece);
            if (pl > 0 && len + (size_t)pl < (1 << 14)) memcpy(out + len, piece, (size_t)pl), len += (size_t)pl;
            if (bitnet_grammar_is_complete(g) == 2) {
                done = 1;
                break;
            }
            if (bitnet_eval(ctx, &t, 1, pos++) != BITNET_OK) break;
        }
    }
    bitnet_sampler_free(smp);
    if (!done && out) { /* the caller reports the text so far */
        memmove(out + 1, out, len + 1);
        out[0] = '!';
    }
    return out;
}

/* 260 generations (26 schemas x 10 temperatures and seeds) all parse as JSON and validate. */
TEST(json_schema_corpus_every_output_validates) {
    bitnet_model *m = default_model();
    REQUIRE(m != NULL);
    bitnet_context_params cp = bitnet_context_default_params();
    cp.n_ctx = 512;
    cp.n_threads = 1;
    bitnet_context *ctx = NULL;
    REQUIRE(bitnet_context_new(m, &cp, &ctx) == BITNET_OK);
    static const float temps[] = {0.0f, 0.3f, 0.7f, 1.0f, 1.0f, 1.3f, 1.6f, 2.0f, 3.0f, 5.0f};
    int n_valid = 0, n_total = 0, max_tok = 0;
    for (size_t i = 0; i < sizeof schemas / sizeof schemas[0]; i++) {
        char *gbnf = NULL;
        REQUIRE_MSG(bitnet_json_schema_to_grammar(schemas[i], strlen(schemas[i]), &gbnf) == BITNET_OK, "schema %zu: %s", i,
                    bitnet_last_error());
        bitnet_grammar *g = NULL;
        REQUIRE_MSG(bitnet_grammar_new(m, gbnf, &g) == BITNET_OK, "schema %zu: %s\n%s", i, bitnet_last_error(), gbnf);
        bn_json *schema = bn_json_parse(schemas[i], strlen(schemas[i]), NULL, 0);
        REQUIRE(schema != NULL);
        for (int k = 0; k < 10; k++) {
            int n_tok = 0;
            char *text = generate(ctx, m, g, temps[k], 1000 + (uint64_t)k * 7919 + i, 400, &n_tok);
            n_total++;
            if (n_tok > max_tok) max_tok = n_tok;
            char err[160] = "", why[160] = "";
            const int cut = text && text[0] == '!'; /* not complete within 400 tokens */
            bn_json *v = text && !cut ? bn_json_parse(text, strlen(text), err, sizeof err) : NULL;
            const int ok = v && validate(v, schema, schema, why, sizeof why);
            n_valid += ok;
            CHECK_MSG(ok, "schema %zu, temp %g: %s %s %s: '%s'", i, (double)temps[k], cut ? "not complete in 400 tokens" : "",
                      err, why, text ? text : "");
            bn_json_free(v);
            free(text);
        }
        bn_json_free(schema);
        bitnet_grammar_free(g);
        free(gbnf);
    }
    CHECK_EQ_INT(n_valid, n_total);
    CHECK_EQ_INT(n_total, 260);
    printf("json schema corpus: %d of %d generations valid (longest %d tokens)\n", n_valid, n_total, max_tok);
    bitnet_context_free(ctx);
    bitnet_model_free(m);
}

/* Integer bounds: the grammar accepts exactly the integers in range, spelled
 * as JSON spells them, for bounds of every sign and length, open or closed,
 * over -2100..2100 and around every power of ten up to the 15-digit limit. */
TEST(json_schema_integer_bounds_accept_exactly_the_range) {
    bitnet_model *m = default_model();
    REQUIRE(m != NULL);
    static const struct { const char *bounds; long long lo, hi; } cases[] = { /* lo/hi: LLONG_MIN/MAX = open */
        {"\"minimum\":0,\"maximum\":120", 0, 120},
        {"\"minimum\":-5,\"maximum\":5", -5, 5},
        {"\"exclusiveMinimum\":-5,\"exclusiveMaximum\":5", -4, 4},
        {"\"minimum\":17", 17, LLONG_MAX},
        {"\"minimum\":-1234", -1234, LLONG_MAX},
        {"\"maximum\":-7", LLONG_MIN, -7},
        {"\"maximum\":999", LLONG_MIN, 999},
        {"\"minimum\":-1000,\"maximum\":-7", -1000, -7},
        {"\"minimum\":1999,\"maximum\":2031", 1999, 2031},
        {"\"minimum\":7,\"maximum\":7", 7, 7},
        {"\"minimum\":0.5,\"maximum\":10.5", 1, 10},
        {"\"minimum\":3,\"exclusiveMinimum\":true,\"maximum\":9,\"exclusiveMaximum\":true", 4, 8}, /* draft 4 */
        {"\"minimum\":100000,\"maximum\":999999999999999", 100000, 999999999999999LL},
        {"\"minimum\":-999999999999999,\"maximum\":-100001", -999999999999999LL, -100001},
        {"\"minimum\":10,\"maximum\":1000000", 10, 1000000},
    };
    long long probes[4300];
    int np = 0;
    for (long long x = -2100; x <= 2100; x++) probes[np++] = x;
    for (long long p = 10; p <= 1000000000000000LL; p *= 10)
        for (int d = -1; d <= 1; d++) probes[np++] = p + d, probes[np++] = -(p + d);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char schema[256], *gbnf = NULL;
        snprintf(schema, sizeof schema, "{\"type\":\"integer\",%s}", cases[i].bounds);
        REQUIRE_MSG(bitnet_json_schema_to_grammar(schema, strlen(schema), &gbnf) == BITNET_OK, "%s: %s", schema, bitnet_last_error());
        bitnet_grammar *g = NULL;
        REQUIRE_MSG(bitnet_grammar_new(m, gbnf, &g) == BITNET_OK, "%s: %s\n%s", schema, bitnet_last_error(), gbnf);
        int wrong = 0;
        for (int k = 0; k < np && wrong < 3; k++) {
            char t[32];
            snprintf(t, sizeof t, "%lld", probes[k]);
            bitnet_grammar_reset(g);
            const int accepted = bn_grammar_feed_text(g, t, strlen(t)) == 1 && bitnet_grammar_is_complete(g);
            const int want = probes[k] >= cases[i].lo && probes[k] <= cases[i].hi;
            if (accepted != want) wrong++;
            CHECK_MSG(accepted == want, "%s: %s %s\n%s", schema, t, want ? "refused" : "accepted", gbnf);
        }
        static const char *const never[] = {"007", "-0", "+5", "1.0", "1e3", "--1", ""};
        for (size_t k = 0; k < sizeof never / sizeof never[0]; k++) {
            bitnet_grammar_reset(g);
            CHECK_MSG(!(bn_grammar_feed_text(g, never[k], strlen(never[k])) == 1 && bitnet_grammar_is_complete(g)), "%s: '%s'",
                      schema, never[k]);
        }
        bitnet_grammar_free(g);
        free(gbnf);
    }
    bitnet_model_free(m);
}

/* Number bounds (whole numbers): every decimal spelling of a probe is
 * accepted exactly when its value is in range, but for the negative zeros
 * ("-0", "-0.0"), which the grammar never writes. */
TEST(json_schema_number_bounds_accept_exactly_the_range) {
    bitnet_model *m = default_model();
    REQUIRE(m != NULL);
    static const struct { const char *bounds; double lo, hi; int lo_ex, hi_ex; } cases[] = {
        {"\"minimum\":0,\"maximum\":1", 0, 1, 0, 0},
        {"\"exclusiveMinimum\":-3,\"maximum\":12", -3, 12, 1, 0},
        {"\"minimum\":0", 0, INFINITY, 0, 0},
        {"\"exclusiveMinimum\":0", 0, INFINITY, 1, 0},
        {"\"maximum\":-2", -INFINITY, -2, 0, 0},
        {"\"exclusiveMaximum\":0", -INFINITY, 0, 0, 1},
        {"\"minimum\":-10,\"exclusiveMaximum\":-3", -10, -3, 0, 1},
        {"\"minimum\":5,\"maximum\":5", 5, 5, 0, 0},
        {"\"minimum\":2,\"exclusiveMinimum\":2,\"maximum\":100", 2, 100, 1, 0}, /* the tighter: exclusive */
        {"\"minimum\":1,\"exclusiveMinimum\":true,\"maximum\":3,\"exclusiveMaximum\":true", 1, 3, 1, 1},
    };
    static const char *const probes[] = {
        "-12", "-10.5", "-10", "-10.0", "-9.99", "-3.5", "-3", "-3.0", "-2.999", "-2", "-2.0", "-1.5", "-0.5", "-0.0", "-0",
        "0", "0.0", "0.000", "0.25", "0.5", "1", "1.0", "1.5", "2", "2.0", "2.5", "3", "3.0", "4", "5", "5.0", "5.1",
        "9.99", "10", "11.5", "12", "12.0", "12.000001", "13", "99.999", "100", "100.00", "100.01", "1234.5", "999999999"};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char schema[256], *gbnf = NULL;
        snprintf(schema, sizeof schema, "{\"type\":\"number\",%s}", cases[i].bounds);
        REQUIRE_MSG(bitnet_json_schema_to_grammar(schema, strlen(schema), &gbnf) == BITNET_OK, "%s: %s", schema, bitnet_last_error());
        bitnet_grammar *g = NULL;
        REQUIRE_MSG(bitnet_grammar_new(m, gbnf, &g) == BITNET_OK, "%s: %s\n%s", schema, bitnet_last_error(), gbnf);
        for (size_t k = 0; k < sizeof probes / sizeof probes[0]; k++) {
            const double x = strtod(probes[k], NULL);
            const int in = (cases[i].lo_ex ? x > cases[i].lo : x >= cases[i].lo) && (cases[i].hi_ex ? x < cases[i].hi : x <= cases[i].hi);
            const int want = in && !(probes[k][0] == '-' && x == 0);
            bitnet_grammar_reset(g);
            const int got = bn_grammar_feed_text(g, probes[k], strlen(probes[k])) == 1 && bitnet_grammar_is_complete(g);
            CHECK_MSG(got == want, "%s: %s %s\n%s", schema, probes[k], want ? "refused" : "accepted", gbnf);
        }
        bitnet_grammar_free(g);
        free(gbnf);
    }
    bitnet_model_free(m);
}

/* Whether the grammar of `schema` takes `text` as a whole output; -1 when the
 * schema or its grammar is refused (bitnet_last_error says why). */
static int schema_accepts(const bitnet_model *m, const char *schema, const char *text) {
    char *gbnf = NULL;
    bitnet_grammar *g = NULL;
    int ok = -1;
    if (bitnet_json_schema_to_grammar(schema, strlen(schema), &gbnf) == BITNET_OK && bitnet_grammar_new(m, gbnf, &g) == BITNET_OK)
        ok = bn_grammar_feed_text(g, text, strlen(text)) == 1 && bitnet_grammar_is_complete(g);
    bitnet_grammar_free(g);
    free(gbnf);
    return ok;
}

/* format (date, time, date-time, uuid), tuples (prefixItems, draft 4's items
 * array), a one-schema allOf and additionalProperties as a schema (an extra
 * key is never a listed one): what the grammar accepts and refuses. */
TEST(json_schema_formats_and_tuples) {
    bitnet_model *m = default_model();
    REQUIRE(m != NULL);
    static const struct { const char *schema, *text; int ok; } cases[] = {
        {"{\"type\":\"string\",\"format\":\"date\"}", "\"2024-02-29\"", 1},
        {"{\"type\":\"string\",\"format\":\"date\"}", "\"2024-13-01\"", 0},
        {"{\"type\":\"string\",\"format\":\"date\"}", "\"2024-1-01\"", 0},
        {"{\"type\":\"string\",\"format\":\"time\"}", "\"23:59:60Z\"", 0},
        {"{\"type\":\"string\",\"format\":\"time\"}", "\"23:59:59.123+05:30\"", 1},
        {"{\"type\":\"string\",\"format\":\"time\"}", "\"24:00:00Z\"", 0},
        {"{\"format\":\"date-time\"}", "\"1999-12-31T23:59:59Z\"", 1},
        {"{\"format\":\"date-time\"}", "\"1999-12-31 23:59:59Z\"", 0},
        {"{\"type\":\"string\",\"format\":\"uuid\"}", "\"123e4567-e89b-12d3-a456-426614174000\"", 1},
        {"{\"type\":\"string\",\"format\":\"uuid\"}", "\"123e4567e89b12d3a456426614174000\"", 0},
        {"{\"prefixItems\":[{\"type\":\"integer\"},{\"const\":\"x\"}]}", "[1, \"x\"]", 1},
        {"{\"prefixItems\":[{\"type\":\"integer\"},{\"const\":\"x\"}]}", "[1]", 0},
        {"{\"prefixItems\":[{\"type\":\"integer\"},{\"const\":\"x\"}]}", "[1, \"x\", 2]", 0},
        {"{\"type\":\"array\",\"items\":[{\"type\":\"boolean\"}],\"additionalItems\":false}", "[true]", 1},
        {"{\"type\":\"array\",\"items\":[{\"type\":\"boolean\"}],\"additionalItems\":false}", "[]", 0},
        {"{\"$defs\":{\"d\":{\"enum\":[\"a\",\"b\"]}},\"allOf\":[{\"$ref\":\"#/$defs/d\"}],\"description\":\"one\"}", "\"b\"", 1},
        {"{\"$defs\":{\"d\":{\"enum\":[\"a\",\"b\"]}},\"allOf\":[{\"$ref\":\"#/$defs/d\"}],\"description\":\"one\"}", "\"c\"", 0},
        {"{\"type\":\"object\",\"properties\":{\"a\":{\"type\":\"integer\"},\"ab\":{\"type\":\"boolean\"}},\"required\":[\"ab\"],\"additionalProperties\":{\"type\":\"string\",\"maxLength\":3}}", "{\"ab\": true}", 1},
        {"{\"type\":\"object\",\"properties\":{\"a\":{\"type\":\"integer\"},\"ab\":{\"type\":\"boolean\"}},\"required\":[\"ab\"],\"additionalProperties\":{\"type\":\"string\",\"maxLength\":3}}", "{\"ab\": true, \"a\": 5, \"x\": \"hi\", \"abc\": \"\"}", 1},
        {"{\"type\":\"object\",\"properties\":{\"a\":{\"type\":\"integer\"},\"ab\":{\"type\":\"boolean\"}},\"required\":[\"ab\"],\"additionalProperties\":{\"type\":\"string\",\"maxLength\":3}}", "{\"ab\": true, \"a\": \"no\"}", 0},
        {"{\"type\":\"object\",\"properties\":{\"a\":{\"type\":\"integer\"},\"ab\":{\"type\":\"boolean\"}},\"required\":[\"ab\"],\"additionalProperties\":{\"type\":\"string\",\"maxLength\":3}}", "{\"ab\": true, \"ab\": \"no\"}", 0},
        {"{\"type\":\"object\",\"properties\":{\"a\":{\"type\":\"integer\"},\"ab\":{\"type\":\"boolean\"}},\"required\":[\"ab\"],\"additionalProperties\":{\"type\":\"string\",\"maxLength\":3}}", "{\"ab\": true, \"x\": 1}", 0},
        {"{\"type\":\"object\",\"properties\":{\"a\":{\"type\":\"integer\"},\"ab\":{\"type\":\"boolean\"}},\"required\":[\"ab\"],\"additionalProperties\":{\"type\":\"string\",\"maxLength\":3}}", "{\"a\": 1}", 0},
        {"{\"type\":\"object\",\"properties\":{\"a\":{\"type\":\"integer\"},\"ab\":{\"type\":\"boolean\"}},\"required\":[\"ab\"],\"additionalProperties\":{\"type\":\"string\",\"maxLength\":3}}", "{\"ab\": false, \"\": \"e\"}", 1},
        {"{\"type\":\"object\",\"properties\":{\"a\":{\"type\":\"integer\"},\"ab\":{\"type\":\"boolean\"}},\"required\":[\"ab\"],\"additionalProperties\":{\"type\":\"string\",\"maxLength\":3}}", "{\"ab\": false, \"a\\u0062\": \"e\"}", 0},
        {"{\"additionalProperties\":{\"type\":\"integer\",\"minimum\":0}}", "{}", 1},
        {"{\"additionalProperties\":{\"type\":\"integer\",\"minimum\":0}}", "{\"k\": 3, \"j\": 0}", 1},
        {"{\"additionalProperties\":{\"type\":\"integer\",\"minimum\":0}}", "{\"k\": -3}", 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const int ok = schema_accepts(m, cases[i].schema, cases[i].text);
        CHECK_MSG(ok == cases[i].ok, "%s: %s %s", cases[i].schema, cases[i].text, ok < 0 ? bitnet_last_error() : ok ? "accepted" : "refused");
    }
    bitnet_model_free(m);
}

/* pattern: the anchored regular expression over the string's value, written
 * as JSON text (a '"' in the value is \" in the output); what is accepted and
 * refused, and the patterns the converter does not take. */
TEST(json_schema_pattern) {
    bitnet_model *m = default_model();
    REQUIRE(m != NULL);
    static const struct { const char *pattern, *text; int ok; } cases[] = {
        {"^[a-z]{2,4}-\\\\d{3}$", "\"ab-123\"", 1},
        {"^[a-z]{2,4}-\\\\d{3}$", "\"abcde-123\"", 0},
        {"^[a-z]{2,4}-\\\\d{3}$", "\"ab-12\"", 0},
        {"^(foo|bar)+$", "\"foobarfoo\"", 1},
        {"^(foo|bar)+$", "\"fo\"", 0},
        {"^\\\\w+@\\\\w+\\\\.com$", "\"a_b@x9.com\"", 1},
        {"^\\\\w+@\\\\w+\\\\.com$", "\"a_b@x9xcom\"", 0},
        {"^[^a-c]$", "\"d\"", 1},
        {"^[^a-c]$", "\"b\"", 0},
        {"^a\\\"b$", "\"a\\\"b\"", 1},       /* a quote in the value: \" in the text */
        {"^\\\\\\\\$", "\"\\\\\"", 1},        /* one backslash */
        {"^\\\\s$", "\"\\t\"", 1},            /* a tab, escaped */
        {"^\\\\s$", "\" \"", 1},
        {"^\\\\s$", "\"x\"", 0},
        {"^.{3}$", "\"abc\"", 1},
        {"^.{3}$", "\"ab\"", 0},
        {"^(?:ab)?c$", "\"c\"", 1},
        {"^(?:ab)?c$", "\"abc\"", 1},
        {"^(?<y>[0-9]{4})-\\\\D$", "\"2024-x\"", 1},
        {"^[\\\\u00e9-\\\\u00ea]$", "\"\xc3\xa9\"", 1},
        {"^\xc3\xa9t\xc3\xa9$", "\"\xc3\xa9t\xc3\xa9\"", 1}, /* UTF-8 in the pattern */
        {"^\xc3\xa9$", "\"\xc3\xa8\"", 0},
        {"^(a|)$", "\"\"", 1},
        {"^(a|)$", "\"a\"", 1},
        {"^(a|){2}b$", "\"ab\"", 1}, /* bounded repetition of a group that can match nothing */
        {"^[ -~]$", "\"\\\"\"", 1}, /* a class over '"' and '\\': written as their escapes */
        {"^[ -~]$", "\"\\\\\"", 1},
        {"^[ -~]$", "\"\xc3\xa9\"", 0},
        {"^[\\u0080-\\uffff]{2}$", "\"\xc3\xa9\xe2\x82\xac\"", 1},
        {"^(a?b)+$", "\"bab\"", 1},
        {"^[-+]?[0-9]+(\\\\.[0-9]+)?$", "\"-12.5\"", 1},
        {"^[-+]?[0-9]+(\\\\.[0-9]+)?$", "\"12.\"", 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char schema[256];
        snprintf(schema, sizeof schema, "{\"type\":\"string\",\"pattern\":\"%s\"}", cases[i].pattern);
        const int ok = schema_accepts(m, schema, cases[i].text);
        CHECK_MSG(ok == cases[i].ok, "%s: %s %s", schema, cases[i].text, ok < 0 ? bitnet_last_error() : ok ? "accepted" : "refused");
    }
    static const struct { const char *pattern, *want; } bad[] = {
        {"a+", "must be anchored"},
        {"^a\\\\$", "must be anchored"},
        {"^a+?$", "lazy and possessive quantifiers"},
        {"^(?=a)b$", "lookaround"},
        {"^(a)\\\\1$", "backreferences"},
        {"^a{2,1}$", "with n < m"},
        {"^[z-a]$", "end comes before its start"},
        {"^(a$", "a group without its ')'"},
        {"^a)$", "a ')' without its '('"},
        {"^*a$", "nothing before it"},
        {"^a^b$", "'^' or '$' inside"},
        {"^[a$", "a class without its ']'"},
        {"^(a|b||c)*$", "a repeated group that can match the empty string"}, /* fuzz/regressions/grammar */
        {"^(a?b*)+$", "a repeated group that can match the empty string"},
        {"^(()){2,}$", "a repeated group that can match the empty string"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char schema[256], *gbnf = NULL;
        snprintf(schema, sizeof schema, "{\"type\":\"string\",\"pattern\":\"%s\"}", bad[i].pattern);
        const bitnet_status st = bitnet_json_schema_to_grammar(schema, strlen(schema), &gbnf);
        CHECK_MSG(st == BITNET_ERR_ARG && strstr(bitnet_last_error(), bad[i].want), "%s: %d %s", schema, st, bitnet_last_error());
        free(gbnf);
    }
    bitnet_model_free(m);
}

/* A keyword the converter cannot enforce is refused, named with its path. */
TEST(json_schema_unsupported_keyword_is_refused_by_name) {
    static const struct { const char *schema, *want; } cases[] = {
        {"{\"type\":\"string\",\"pattern\":\"^a+$\",\"maxLength\":3}", "'pattern' with 'format' or a length bound"},
        {"{\"type\":\"string\",\"multipleOf\":3}", "unsupported JSON Schema keyword 'multipleOf' at $"},
        {"{\"type\":\"object\",\"properties\":{\"n\":{\"type\":\"number\",\"minimum\":0.5}}}",
         "'minimum' of a number: only whole numbers of at most 15 digits are supported at $.properties.n"},
        {"{\"type\":\"number\",\"minimum\":2,\"exclusiveMaximum\":2}", "no number lies between"},
        {"{\"maximum\":3}", "'maximum' without a 'type' of number or integer is not supported at $"},
        {"{\"type\":\"integer\",\"minimum\":1e16}", "'minimum' beyond 15 digits is not supported at $"},
        {"{\"type\":\"integer\",\"minimum\":4,\"exclusiveMaximum\":4}", "no integer lies between"},
        {"{\"type\":\"array\",\"items\":{\"type\":\"string\",\"format\":\"email\"}}",
         "unsupported JSON Schema format 'email' (date, time, date-time and uuid are) at $.items"},
        {"{\"type\":\"string\",\"format\":\"date\",\"maxLength\":4}", "'format' with a length bound"},
        {"{\"prefixItems\":[{\"type\":\"integer\"}],\"items\":{\"type\":\"string\"}}", "'prefixItems' with a schema for further items"},
        {"{\"prefixItems\":[true,true],\"maxItems\":1}", "other than the 2 items of 'prefixItems'"},
        {"{\"allOf\":[{\"type\":\"string\"},{\"maxLength\":3}]}", "'allOf' of other than one schema is not supported at $"},
        {"{\"allOf\":[{\"type\":\"string\"}],\"maxLength\":3}", "'allOf' beside 'maxLength' is not supported at $"},
        {"{\"type\":\"array\",\"uniqueItems\":true}", "keyword 'uniqueItems'"},
        {"{\"$ref\":\"#/$defs/missing\"}", "'$ref' \"#/$defs/missing\" names no definition at $"},
        {"{\"$ref\":\"https://example.com/s.json\"}", "only \"#/$defs/NAME\""},
        {"{\"type\":\"strin\"}", "unknown type 'strin' at $"},
        {"{\"type\":\"array\",\"minItems\":3,\"maxItems\":2}", "'maxItems' is below 'minItems' at $"},
        {"{\"type\":\"string\",\"maxLength\":-1}", "'maxLength' must be a non-negative integer"},
        {"[1,2]", "a schema must be an object or a boolean, not an array at $"},
        {"{\"type\":", "JSON Schema: line 1"},
        {"false", "the schema 'false' matches nothing"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *gbnf = NULL;
        bitnet_status st = bitnet_json_schema_to_grammar(cases[i].schema, strlen(cases[i].schema), &gbnf);
        CHECK_MSG(st == BITNET_ERR_ARG && gbnf == NULL && strstr(bitnet_last_error(), cases[i].want), "%s: %d '%s' (want '%s')",
                  cases[i].schema, st, bitnet_last_error(), cases[i].want);
        free(gbnf);
    }
}

/* infer --grammar / --json-schema (llama-cli's flags): the generated text follows them. */
TEST(infer_grammar_and_json_schema_flags) {
    int st;
    char *out = bn_test_run_tool("infer -p 'Once upon a time' --no-display-prompt --temp 0.9 -s 5 "
                                 "--grammar 'root ::= \" there was a \" (\"cat\" | \"dog\") \".\"' 2>/dev/null",
                                 NULL, &st);
    CHECK_MSG(st == 0 && out && (!strcmp(out, " there was a cat.") || !strcmp(out, " there was a dog.")), "'%s'",
              out ? out : "");
    free(out);
    out = bn_test_run_tool("infer -p 'Once upon a time' --no-display-prompt --temp 1.2 -s 9 -j "
                           "'{\"type\":\"array\",\"items\":{\"type\":\"integer\"},\"minItems\":1,\"maxItems\":3}' 2>/dev/null",
                           NULL, &st);
    bn_json *v = out ? bn_json_parse(out, strlen(out), NULL, 0) : NULL;
    CHECK_MSG(st == 0 && v && v->type == BN_JSON_ARRAY && v->n >= 1 && v->n <= 3 && v->items[0].integer, "'%s'", out ? out : "");
    bn_json_free(v);
    free(out);
    char path[512], cmd[800];
    REQUIRE(bn_test_tmp_text(path, sizeof path, ".gbnf", "# yes or no\nroot ::= (\"yes\" | \"no\")\n"));
    snprintf(cmd, sizeof cmd, "infer -p Once --no-display-prompt --grammar-file %s 2>/dev/null", path);
    out = bn_test_run_tool(cmd, NULL, &st);
    CHECK_MSG(st == 0 && out && (!strcmp(out, "yes") || !strcmp(out, "no")), "'%s'", out ? out : "");
    free(out);
    unlink(path);
    CHECK_TOOL("infer --json-schema '{\"multipleOf\":2}' 2>&1", 2,
               "--json-schema: JSON Schema: unsupported JSON Schema keyword 'multipleOf' at $");
    CHECK_TOOL("infer --grammar 'root ::= x' -n 2 2>&1", 1, "--grammar: grammar line 1: rule 'x' is used but never defined");
    CHECK_TOOL("infer --grammar 'root ::= \"a\"' --lookup 2 2>&1", 2, "plain generation only");
}

/* bitnet_grammar_new_sharing: the same masks as a grammar of its own, and it
 * outlives the grammar whose vocabulary index it shares. */
TEST(grammar_new_sharing_outlives_its_base) {
    bitnet_model *m = default_model();
    REQUIRE(m != NULL);
    const int nv = bitnet_n_vocab(m);
    bitnet_grammar *base = NULL, *shared = NULL, *own = NULL;
    REQUIRE(bitnet_grammar_new(m, "root ::= \"\"", &base) == BITNET_OK);
    REQUIRE(bitnet_grammar_new_sharing(base, recognised[1].gbnf, &shared) == BITNET_OK);
    bitnet_grammar_free(base);
    REQUIRE(bitnet_grammar_new(m, recognised[1].gbnf, &own) == BITNET_OK);
    CHECK(bitnet_grammar_new_sharing(own, "root ::= x", &base) == BITNET_ERR_ARG && base == NULL);
    float *a = malloc((size_t)nv * sizeof *a), *b = malloc((size_t)nv * sizeof *b);
    REQUIRE(a && b);
    const char *text = "{\"a\": [1, \"xy";
    CHECK(bn_grammar_feed_text(shared, text, strlen(text)) == 1 && bn_grammar_feed_text(own, text, strlen(text)) == 1);
    for (int t = 0; t < nv; t++) a[t] = b[t] = 0.0f;
    CHECK_EQ_INT(bitnet_grammar_apply(shared, a), bitnet_grammar_apply(own, b));
    CHECK(memcmp(a, b, (size_t)nv * sizeof *a) == 0);
    free(a);
    free(b);
    bitnet_grammar_free(shared);
    bitnet_grammar_free(own);
    bitnet_model_free(m);
}

/* A grammar whose readings multiply ("(" x ")" twice over, nested) fails with
 * one line once its work budget is spent, instead of taking exponential time. */
TEST(grammar_too_ambiguous_fails_in_bounded_time) {
    bitnet_model *m = default_model();
    REQUIRE(m != NULL);
    bitnet_grammar *g = NULL;
    REQUIRE(bitnet_grammar_new(m, "root ::= x\nx ::= \"(\" y \")\" | \"(\" y \")\" | \"a\"\ny ::= x | x\n", &g) == BITNET_OK);
    const int nv = bitnet_n_vocab(m);
    float *l = calloc((size_t)nv, sizeof *l);
    REQUIRE(l != NULL);
    int failed = 0;
    for (int depth = 0; depth < 40 && !failed; depth++) {
        const int r = bn_grammar_feed_text(g, "(", 1);
        if (r != 1) {
            failed = 1;
            break;
        }
        for (int t = 0; t < nv; t++) l[t] = 0.0f;
        if (bitnet_grammar_apply(g, l) < 0) failed = 2;
    }
    CHECK_MSG(failed, "40 nested '(' of a doubly ambiguous grammar were followed to the end");
    if (failed == 2) CHECK(strstr(bitnet_last_error(), "too ambiguous"));
    free(l);
    bitnet_grammar_free(g);
    bitnet_model_free(m);
}
