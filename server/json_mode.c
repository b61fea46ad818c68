/* json_mode.c - the JSON recogniser and token mask of json_mode.h. */
#include "json_mode.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* What may come next outside a token (expect). */
enum {
    E_TOP,          /* the top-level value: '{' */
    E_DONE,         /* the object is complete: whitespace only */
    E_KEY_OR_END,   /* after '{': a key or '}' */
    E_KEY,          /* after ',' in an object */
    E_COLON,        /* after a key */
    E_VALUE,        /* after ':', or ',' in an array */
    E_VALUE_OR_END, /* after '[': a value or ']' */
    E_COMMA_OR_END  /* after a value in a container */
};

/* Inside a token (lex). */
enum {
    L_NONE,
    L_KEY, L_STR,      /* a key or a string value; escapes share: */
    L_KEY_ESC, L_STR_ESC,
    L_KEY_U1, L_KEY_U2, L_KEY_U3, L_KEY_U4, L_STR_U1, L_STR_U2, L_STR_U3, L_STR_U4,
    L_NUM_MINUS,       /* '-': a digit must follow */
    L_NUM_ZERO,        /* a leading 0: '.', 'e' or the end */
    L_NUM_INT,         /* 1-9 then digits */
    L_NUM_DOT,         /* '.': a digit must follow */
    L_NUM_FRAC,
    L_NUM_E,           /* 'e': a sign or a digit */
    L_NUM_ESIGN,       /* a digit must follow */
    L_NUM_EXP,
    L_LIT              /* true, false, null */
};

void bn_json_mode_init(bn_json_mode *s) {
    memset(s, 0, sizeof *s);
    s->expect = E_TOP;
}

int bn_json_mode_done(const bn_json_mode *s) { return s->expect == E_DONE && s->lex == L_NONE; }

static int is_ws(unsigned char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }
static int is_digit(unsigned char c) { return c >= '0' && c <= '9'; }
static int is_hex(unsigned char c) { return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'); }

static void after_value(bn_json_mode *s) { s->expect = s->depth == 0 ? E_DONE : E_COMMA_OR_END; }

static int push(bn_json_mode *s, uint8_t kind) {
    if (s->depth == BN_JSON_MODE_DEPTH) return 0;
    s->stack[s->depth++] = kind;
    s->expect = kind == 'o' ? E_KEY_OR_END : E_VALUE_OR_END;
    return 1;
}

static int pop(bn_json_mode *s, uint8_t kind) {
    if (s->depth == 0 || s->stack[s->depth - 1] != kind) return 0;
    s->depth--;
    after_value(s);
    return 1;
}

/* A byte outside any token. */
static int structural(bn_json_mode *s, unsigned char c) {
    if (is_ws(c)) return ++s->ws_run <= BN_JSON_MODE_MAX_WS;
    s->ws_run = 0;
    switch (s->expect) {
    case E_TOP: return c == '{' && push(s, 'o');
    case E_DONE: return 0;
    case E_KEY_OR_END:
        if (c == '}') return pop(s, 'o');
        /* fall through */
    case E_KEY:
        if (c != '"') return 0;
        s->lex = L_KEY;
        return 1;
    case E_COLON:
        if (c != ':') return 0;
        s->expect = E_VALUE;
        return 1;
    case E_VALUE_OR_END:
        if (c == ']') return pop(s, 'a');
        /* fall through */
    case E_VALUE:
        if (c == '{') return push(s, 'o');
        if (c == '[') return push(s, 'a');
        if (c == '"') s->lex = L_STR;
        else if (c == '-') s->lex = L_NUM_MINUS;
        else if (c == '0') s->lex = L_NUM_ZERO;
        else if (is_digit(c)) s->lex = L_NUM_INT;
        else if (c == 't' || c == 'f' || c == 'n') {
            s->lex = L_LIT;
            s->lit = c == 't' ? "true" : c == 'f' ? "false" : "null";
            s->lit_pos = 1;
        } else {
            return 0;
        }
        return 1;
    case E_COMMA_OR_END:
        if (c == ',') {
            s->expect = s->stack[s->depth - 1] == 'o' ? E_KEY : E_VALUE;
            return 1;
        }
        return c == '}' ? pop(s, 'o') : c == ']' ? pop(s, 'a') : 0;
    default: return 0;
    }
}

/* One byte; 1 if the text is still a JSON-object prefix. */
static int step(bn_json_mode *s, unsigned char c) {
    const int key = s->lex == L_KEY || s->lex == L_KEY_ESC || (s->lex >= L_KEY_U1 && s->lex <= L_KEY_U4);
    switch (s->lex) {
    case L_NONE: return structural(s, c);
    case L_KEY:
    case L_STR:
        if (c == '"') {
            s->lex = L_NONE;
            if (key) s->expect = E_COLON;
            else after_value(s);
            return 1;
        }
        if (c == '\\') s->lex = key ? L_KEY_ESC : L_STR_ESC;
        return c >= 0x20;
    case L_KEY_ESC:
    case L_STR_ESC:
        if (c == 'u') s->lex = key ? L_KEY_U1 : L_STR_U1;
        else if (strchr("\"\\/bfnrt", c) && c) s->lex = key ? L_KEY : L_STR;
        else return 0;
        return 1;
    case L_KEY_U1: case L_KEY_U2: case L_KEY_U3: case L_STR_U1: case L_STR_U2: case L_STR_U3:
        if (!is_hex(c)) return 0;
        s->lex++;
        return 1;
    case L_KEY_U4:
    case L_STR_U4:
        if (!is_hex(c)) return 0;
        s->lex = key ? L_KEY : L_STR;
        return 1;
    case L_NUM_MINUS:
        if (!is_digit(c)) return 0;
        s->lex = c == '0' ? L_NUM_ZERO : L_NUM_INT;
        return 1;
    case L_NUM_ZERO:
    case L_NUM_INT:
    case L_NUM_FRAC:
        if (is_digit(c) && s->lex != L_NUM_ZERO) return 1;
        if (c == '.' && s->lex != L_NUM_FRAC) {
            s->lex = L_NUM_DOT;
            return 1;
        }
        if (c == 'e' || c == 'E') {
            s->lex = L_NUM_E;
            return 1;
        }
        break; /* the number ends before c */
    case L_NUM_DOT:
        if (!is_digit(c)) return 0;
        s->lex = L_NUM_FRAC;
        return 1;
    case L_NUM_E:
        if (c == '+' || c == '-') {
            s->lex = L_NUM_ESIGN;
            return 1;
        }
        /* fall through */
    case L_NUM_ESIGN:
        if (!is_digit(c)) return 0;
        s->lex = L_NUM_EXP;
        return 1;
    case L_NUM_EXP:
        if (is_digit(c)) return 1;
        break;
    case L_LIT:
        if ((unsigned char)s->lit[s->lit_pos] != c) return 0;
        if (!s->lit[++s->lit_pos]) {
            s->lex = L_NONE;
            after_value(s);
        }
        return 1;
    default: return 0;
    }
    /* a complete number, ended by c: the value is done, c is read outside it */
    s->lex = L_NONE;
    after_value(s);
    return structural(s, c);
}

int bn_json_mode_feed(bn_json_mode *s, const char *p, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (!step(s, (unsigned char)p[i])) return 0;
    return 1;
}

int bn_json_mode_mask(const bn_json_mode *s, const bn_vocab_pieces *v, bitnet_token eos, float *logits) {
    const int done = bn_json_mode_done(s);
    int left = 0;
    for (int t = 0; t < v->n_vocab; t++) {
        int ok;
        if (done) ok = t == eos;
        else if (v->special[t] || v->off[t + 1] == v->off[t]) ok = 0;
        else {
            bn_json_mode c = *s;
            ok = bn_json_mode_feed(&c, v->pieces + v->off[t], v->off[t + 1] - v->off[t]);
        }
        if (!ok) logits[t] = -INFINITY;
        else left += logits[t] > -INFINITY;
    }
    return left;
}
