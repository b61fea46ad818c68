/* grammar.h - constrained output: llama.cpp's GBNF grammars, compiled to a
 * flat element array (gbnf.c), recognised code point by code point over a
 * set of pushdown stacks (grammar.c), and turned into a token mask; JSON
 * Schema converted to GBNF (json_schema.c). The public face is bitnet.h's
 * bitnet_grammar_* and bitnet_json_schema_to_grammar; docs/grammar.md.
 *
 * The compiled form is llama.cpp's: each rule is a list of alternatives, each
 * alternative a sequence of elements ended by ALT (another alternative
 * follows) or END (the rule ends). A character class is one CHAR (or
 * CHAR_NOT, negated) element followed by CHAR_ALT elements, any of them
 * followed by RNG_UPPER to make it a range. Groups and repetitions become
 * generated rules while parsing, so the recogniser knows only references and
 * character classes. */
#ifndef BN_GRAMMAR_H
#define BN_GRAMMAR_H

#include <stddef.h>
#include <stdint.h>

#include "bitnet.h"
#include "formats/json.h" /* bn_buf */

enum {
    BN_GE_END,       /* end of a rule                                   */
    BN_GE_ALT,       /* another alternative of the rule starts here     */
    BN_GE_REF,       /* value: the rule referenced                      */
    BN_GE_CHAR,      /* value: a code point (a class's first element)    */
    BN_GE_CHAR_NOT,  /* the same, negated class: [^...]                 */
    BN_GE_RNG_UPPER, /* value: upper end of the range the previous opens */
    BN_GE_CHAR_ALT,  /* value: one more code point of the same class     */
    BN_GE_CHAR_ANY,  /* '.': any code point                              */
};

typedef struct {
    uint32_t type, value;
} bn_gelem;

typedef struct {
    bn_gelem *e;      /* every rule's elements, one after the other         */
    size_t n;
    uint32_t *start;  /* start[r]: where rule r's first alternative begins */
    char **names;     /* names[r]: as written, or "<parent>_<n>" if generated */
    int n_rules, root;
} bn_gbnf;

/* Parses GBNF text (llama.cpp's grammars/README.md: rules `name ::= ...`,
 * literals "..." with \n \t \r \\ \" \xHH \uHHHH \UHHHHHHHH escapes, classes
 * [a-z] and [^...], `.`, groups ( ), repetitions * + ? {m} {m,} {m,n},
 * alternatives |, comments #). Checks that every referenced rule is defined,
 * that `root` exists and that no rule is left-recursive. Returns 0, or -1 with
 * a one-line message "grammar line L: what is wrong" in err. */
int bn_gbnf_parse(const char *text, bn_gbnf *out, char *err, size_t errlen);
void bn_gbnf_free(bn_gbnf *g);

/* Feeds text to g as if tokens had spelled it (tests, and checks of a whole
 * output): 1 if it is still a prefix of the grammar's language (g advanced),
 * 0 if not (g is then as before), -1 out of memory or the work budget spent. */
int bn_grammar_feed_text(bitnet_grammar *g, const char *text, size_t n);

/* A JSON Schema "pattern" (ECMAScript syntax, anchored "^...$") -> the body of
 * a GBNF rule that writes the JSON text (without its quotes) of exactly the
 * strings it matches, narrowed where regex_gbnf.c says; appended to out.
 * 0, or -1 with a one-line reason in err. */
int bn_regex_gbnf(bn_buf *out, const char *pattern, size_t len, char *err, size_t errlen);

/* GBNF alternatives (appended to out, without the rule's name) for the
 * integers from lo to hi, or the decimal numbers (no exponent) from lo to hi,
 * each bound left out when its has_ flag is 0 and excluded when its _ex flag
 * is set; bounds are whole numbers of at most 15 digits, and the range is not
 * empty (number_ranges.c). 0, or -1 out of memory. */
int bn_gbnf_integers(bn_buf *out, int has_lo, long long lo, int has_hi, long long hi);
int bn_gbnf_numbers(bn_buf *out, int has_lo, long long lo, int lo_ex, int has_hi, long long hi, int hi_ex);

/* JSON Schema (a parsed tree) -> GBNF text (malloc'd), as
 * bitnet_json_schema_to_grammar; 0, or -1 with "JSON Schema: ... at PATH" in err. */
struct bn_json;
int bn_json_schema_gbnf(const struct bn_json *schema, char **gbnf, char *err, size_t errlen);

/* Every token's text, once per model (token_to_piece after a non-BOS token),
 * for the masks: pieces[off[t] .. off[t+1]). special[t]: control tokens and
 * end-of-generation tokens, never text. */
typedef struct {
    int n_vocab;
    char *pieces;
    uint32_t *off;
    uint8_t *special;
} bn_vocab_pieces;

int bn_vocab_pieces_init(bn_vocab_pieces *v, const bitnet_model *m); /* 0, or -1 out of memory */
void bn_vocab_pieces_free(bn_vocab_pieces *v);

#endif
