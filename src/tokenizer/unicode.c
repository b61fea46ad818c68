/*
 * unicode.c - UTF-8, code point classes, GPT-2 byte mapping and the two BPE
 * pre-tokenizers, reproducing llama.cpp's src/unicode.cpp (see unicode.h).
 */
#include "tokenizer/unicode.h"

#include "tokenizer/unicode_data.h"

/* ---- classes -------------------------------------------------------------- */

static int is_whitespace(uint32_t cp) {
    size_t lo = 0, hi = sizeof bn_unicode_whitespace / sizeof bn_unicode_whitespace[0];
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (bn_unicode_whitespace[mid] < cp) lo = mid + 1;
        else hi = mid;
    }
    return lo < sizeof bn_unicode_whitespace / sizeof bn_unicode_whitespace[0] && bn_unicode_whitespace[lo] == cp;
}

uint8_t bn_unicode_flags(uint32_t cp) {
    if (cp < 0x80) { /* ASCII: \p{L} is [A-Za-z], \p{N} is [0-9], \s is [\t\n\v\f\r ] */
        uint8_t f = BN_U_VALID;
        if ((cp | 0x20) >= 'a' && (cp | 0x20) <= 'z') f |= BN_U_LETTER;
        else if (cp >= '0' && cp <= '9') f |= BN_U_NUMBER;
        else if (cp == ' ' || (cp >= 0x09 && cp <= 0x0D)) f |= BN_U_SPACE;
        return f;
    }
    /* last range starting at or before cp */
    size_t lo = 0, hi = sizeof bn_unicode_ranges / sizeof bn_unicode_ranges[0];
    while (hi - lo > 1) {
        size_t mid = (lo + hi) / 2;
        if ((bn_unicode_ranges[mid] >> 2) <= cp) lo = mid;
        else hi = mid;
    }
    uint8_t f = BN_U_VALID | (uint8_t)(bn_unicode_ranges[lo] & 3);
    if (is_whitespace(cp)) f |= BN_U_SPACE;
    return f;
}

/* ---- UTF-8 -------------------------------------------------------------- */

size_t bn_utf8_decode(const char *str, size_t len, uint32_t *out) {
    const uint8_t *s = (const uint8_t *)str;
    size_t n = 0, i = 0;
    while (i < len) {
        uint8_t b = s[i];
        uint32_t cp = 0xFFFD;
        size_t k = 1;
        if (b < 0x80) {
            cp = b;
        } else if ((b & 0xE0) == 0xC0) {
            if (i + 1 < len && (s[i + 1] & 0xC0) == 0x80) cp = (uint32_t)(b & 0x1F) << 6 | (s[i + 1] & 0x3F), k = 2;
        } else if ((b & 0xF0) == 0xE0) {
            if (i + 2 < len && (s[i + 1] & 0xC0) == 0x80 && (s[i + 2] & 0xC0) == 0x80)
                cp = (uint32_t)(b & 0x0F) << 12 | (uint32_t)(s[i + 1] & 0x3F) << 6 | (s[i + 2] & 0x3F), k = 3;
        } else if ((b & 0xF8) == 0xF0) {
            if (i + 3 < len && (s[i + 1] & 0xC0) == 0x80 && (s[i + 2] & 0xC0) == 0x80 && (s[i + 3] & 0xC0) == 0x80) {
                uint32_t c = (uint32_t)(b & 0x07) << 18 | (uint32_t)(s[i + 1] & 0x3F) << 12 |
                             (uint32_t)(s[i + 2] & 0x3F) << 6 | (s[i + 3] & 0x3F);
                if (c <= 0x10FFFF) cp = c, k = 4;
            }
        } /* 10xxxxxx and F8..FF: invalid */
        out[n++] = cp;
        i += k;
    }
    return n;
}

int bn_utf8_encode(uint32_t cp, char *out) {
    if (cp < 0x80) {
        out[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (char)(0xC0 | cp >> 6);
        out[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (char)(0xE0 | cp >> 12);
        out[1] = (char)(0x80 | (cp >> 6 & 0x3F));
        out[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    out[0] = (char)(0xF0 | cp >> 18);
    out[1] = (char)(0x80 | (cp >> 12 & 0x3F));
    out[2] = (char)(0x80 | (cp >> 6 & 0x3F));
    out[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

/* ---- GPT-2 byte mapping ---------------------------------------------------- *
 * Printable bytes map to themselves; the 68 others (0x00-0x20, 0x7F-0xA0,
 * 0xAD), in byte order, to U+0100, U+0101, ... */

uint32_t bn_gpt2_byte_to_cp(uint8_t b) {
    if (b <= 0x20) return 0x100u + b;
    if (b >= 0x7F && b <= 0xA0) return 0x100u + 33 + (b - 0x7Fu);
    if (b == 0xAD) return 0x100u + 67;
    return b;
}

int bn_gpt2_cp_to_byte(uint32_t cp) {
    if ((cp >= 0x21 && cp <= 0x7E) || (cp >= 0xA1 && cp <= 0xAC) || (cp >= 0xAE && cp <= 0xFF)) return (int)cp;
    if (cp >= 0x100 && cp <= 0x120) return (int)(cp - 0x100);
    if (cp >= 0x121 && cp <= 0x142) return (int)(cp - 0x121 + 0x7F);
    if (cp == 0x143) return 0xAD;
    return -1;
}

/* ---- pre-tokenizers ------------------------------------------------------ *
 * Straight ports of llama.cpp's splitters, which walk the code points with a
 * one or two code point look-ahead instead of running a regex engine. Reading
 * past the end gives flags 0 and code point OUT, exactly as there. */

#define OUT 0xFFFFFFFFu

typedef struct {
    const uint32_t *cps;
    const uint8_t *flags;
    size_t n, prev, n_words;
    uint32_t *ends;
} splitter;

static uint32_t cp_at(const splitter *s, size_t i) { return i < s->n ? s->cps[i] : OUT; }
static uint8_t fl_at(const splitter *s, size_t i) { return i < s->n ? s->flags[i] : 0; }

/* Ends the current word at `end` (empty words are dropped); returns end. */
static size_t word_end(splitter *s, size_t end) {
    if (end > s->prev) s->ends[s->n_words++] = (uint32_t)end;
    s->prev = end;
    return end;
}

static uint32_t ascii_lower(uint32_t c) { return c >= 'A' && c <= 'Z' ? c + 32 : c; }

/* 's 't 're 've 'm 'll 'd at pos (case-insensitive for Llama-3): the length, or 0. */
static size_t contraction(const splitter *s, size_t pos, int ci) {
    if (s->cps[pos] != '\'' || pos + 1 >= s->n) return 0;
    uint32_t a = s->cps[pos + 1], b = pos + 2 < s->n ? s->cps[pos + 2] : OUT;
    if (ci) a = ascii_lower(a), b = ascii_lower(b); /* unicode_data.h: only A-Z lower onto these */
    if (a == 's' || a == 't' || a == 'm' || a == 'd') return 2;
    if (pos + 2 < s->n && ((a == 'r' && b == 'e') || (a == 'v' && b == 'e') || (a == 'l' && b == 'l'))) return 3;
    return 0;
}

#define LNS (BN_U_LETTER | BN_U_NUMBER | BN_U_SPACE)

static void split_gpt2(splitter *s) {
    for (size_t pos = 0; pos < s->n;) {
        const uint32_t cp = s->cps[pos];
        size_t c = contraction(s, pos, 0);
        if (c) {
            pos = word_end(s, pos + c);
            continue;
        }
        uint8_t f2 = cp == ' ' ? fl_at(s, pos + 1) : s->flags[pos];
        if (f2 & (BN_U_LETTER | BN_U_NUMBER)) { /* ' ?\p{L}+' or ' ?\p{N}+' */
            const uint8_t cls = f2 & BN_U_LETTER ? BN_U_LETTER : BN_U_NUMBER;
            pos += cp == ' ';
            while (f2 & cls) f2 = fl_at(s, ++pos);
            word_end(s, pos);
            continue;
        }
        if (!(f2 & LNS) && f2) { /* ' ?[^\s\p{L}\p{N}]+' */
            pos += cp == ' ';
            while (!(f2 & LNS) && f2) f2 = fl_at(s, ++pos);
            word_end(s, pos);
            continue;
        }
        size_t nws = 0;
        while (fl_at(s, pos + nws) & BN_U_SPACE) nws++;
        if (nws > 1 && cp_at(s, pos + nws) != OUT) { /* '\s+(?!\S)': leave the last space to the next word */
            pos = word_end(s, pos + nws - 1);
            continue;
        }
        pos = word_end(s, pos + (nws > 0 ? nws : 1)); /* '\s+', or one unmatched code point */
    }
}

/* Llama-3's regex; Qwen2's is the same with digits one at a time (max_digits 1). */
static void split_llama3(splitter *s, size_t max_digits) {
    for (size_t pos = 0; pos < s->n;) {
        const uint32_t cp = s->cps[pos];
        const uint8_t f = s->flags[pos];
        size_t c = contraction(s, pos, 1);
        if (c) {
            pos = word_end(s, pos + c);
            continue;
        }
        /* '[^\r\n\p{L}\p{N}]?\p{L}+' */
        if (!(cp == '\r' || cp == '\n' || (f & BN_U_NUMBER)) && ((f & BN_U_LETTER) || (fl_at(s, pos + 1) & BN_U_LETTER))) {
            pos++;
            while (fl_at(s, pos) & BN_U_LETTER) pos++;
            word_end(s, pos);
            continue;
        }
        if (f & BN_U_NUMBER) { /* '\p{N}{1,3}' (Qwen2: '\p{N}') */
            size_t ini = pos;
            while (fl_at(s, pos) & BN_U_NUMBER)
                if (++pos - ini >= max_digits) ini = word_end(s, pos);
            word_end(s, pos);
            continue;
        }
        /* ' ?[^\s\p{L}\p{N}]+[\r\n]*'; llama.cpp tests the current code point's
         * flags here (always set), not those after the space */
        uint8_t f2 = cp == ' ' ? fl_at(s, pos + 1) : f;
        if (!(f2 & LNS) && f) {
            pos += cp == ' ';
            while (!(f2 & LNS) && f2) f2 = fl_at(s, ++pos);
            for (uint32_t c2 = cp_at(s, pos); c2 == '\r' || c2 == '\n';) c2 = cp_at(s, ++pos);
            word_end(s, pos);
            continue;
        }
        size_t nws = 0, last_rn = 0;
        for (; fl_at(s, pos + nws) & BN_U_SPACE; nws++) {
            uint32_t c2 = s->cps[pos + nws];
            if (c2 == '\r' || c2 == '\n') last_rn = pos + nws + 1;
        }
        if (last_rn > 0) { /* '\s*[\r\n]+' */
            pos = word_end(s, last_rn);
            continue;
        }
        if (nws > 1 && cp_at(s, pos + nws) != OUT) { /* '\s+(?!\S)' */
            pos = word_end(s, pos + nws - 1);
            continue;
        }
        pos = word_end(s, pos + (nws > 0 ? nws : 1)); /* '\s+', or one unmatched code point */
    }
}

size_t bn_pretokenize(bn_pretok kind, const uint32_t *cps, const uint8_t *flags, size_t n, uint32_t *ends) {
    splitter s = {cps, flags, n, 0, 0, ends};
    if (kind == BN_PRETOK_LLAMA3) split_llama3(&s, 3);
    else if (kind == BN_PRETOK_QWEN2) split_llama3(&s, 1);
    else split_gpt2(&s);
    return s.n_words;
}
