/* json.h - a strict JSON (RFC 8259) parser, a JSON string writer and a JSON Lines reader.
 *
 * Used for safetensors headers, Hugging Face config.json and calibration files.
 * The parser builds a plain tree; every value, key and string is heap memory
 * owned by the tree and released by one bn_json_free() of the root. */
#ifndef BN_JSON_H
#define BN_JSON_H

#include <stddef.h>

#include "bitnet.h"
#include "common.h"

typedef enum { BN_JSON_NULL, BN_JSON_BOOL, BN_JSON_NUMBER, BN_JSON_STRING, BN_JSON_ARRAY, BN_JSON_OBJECT } bn_json_type;

typedef struct bn_json {
    bn_json_type type;
    int boolean;              /* BOOL */
    double number;            /* NUMBER */
    int integer;              /* NUMBER written without fraction or exponent ("512", not "512.0") */
    char *str; size_t len;    /* STRING: NUL-terminated UTF-8 (may contain \u0000: use len) */
    struct bn_json *items;    /* ARRAY / OBJECT: n children */
    char **keys;              /* OBJECT: n keys (NUL-terminated) */
    size_t n;
} bn_json;

/* Maximum nesting of arrays and objects: "[[1]]" has depth 2. */
#define BN_JSON_MAX_DEPTH 64

/* Parses exactly one JSON value (RFC 8259, whitespace around allowed). On error returns NULL and writes a
 * one-line message "line L, column C: what is wrong" into err (errlen bytes; err may be NULL). Lines and
 * columns count from 1, columns in bytes. Limits: nesting depth 64, input size is the caller's job.
 * Rejects invalid UTF-8 (overlong forms, UTF-8 encoded surrogates, > U+10FFFF), lone surrogates in \u
 * escapes, trailing garbage, leading zeros, NaN/Infinity, control characters in strings, a byte order
 * mark, and numbers whose magnitude overflows a double (1e400; underflow to 0 is accepted).
 *
 * Objects keep their members in file order; a key that occurs twice in one object is an error (RFC 8259
 * leaves duplicates to the implementation: taking either silently would let two readers of one request
 * disagree). Object keys may not contain \u0000, because keys are plain NUL-terminated strings; string
 * values may (use len). */
bn_json *bn_json_parse(const char *text, size_t len, char *err, size_t errlen);
void bn_json_free(bn_json *v);
/* First member named key; NULL if absent or obj not an object (obj may be NULL). */
const bn_json *bn_json_get(const bn_json *obj, const char *key);
/* "null", "boolean", "number", "string", "array", "object": for error messages. */
const char *bn_json_type_name(bn_json_type t);
/* The same with an article ("a number", "an array"; "null"): "is %s" in messages. */
const char *bn_json_type_desc(bn_json_type t);

/* A growable byte buffer. Start from {0}; data stays NUL-terminated after any successful
 * append (the NUL is not counted in len), so it can be used as a C string. */
typedef struct { char *data; size_t len, cap; } bn_buf;
int bn_buf_append(bn_buf *b, const void *p, size_t n);           /* 0, or -1 on OOM */
int bn_buf_printf(bn_buf *b, const char *fmt, ...) BN_PRINTF(2, 3);
/* Appends s (len bytes) as a quoted, escaped JSON string; returns 0 or -1 on OOM. '"', '\\' and
 * control characters are escaped; valid UTF-8 is copied as is; each byte of an invalid UTF-8 sequence
 * becomes \ufffd, so the output always parses. */
int bn_json_append_string(bn_buf *b, const char *s, size_t len);
void bn_buf_free(bn_buf *b);
/* Appends v as compact JSON text (no spaces; numbers that were integers without
 * a fraction as such, others with 17 significant digits). 0, or -1 on OOM. */
int bn_json_write(bn_buf *b, const bn_json *v);
/* 1 if s[0..len) is valid UTF-8 (the same rules as the parser), else 0. */
int bn_utf8_valid(const char *s, size_t len);

/* Reads calibration texts. PATH ending in ".jsonl": one JSON object per line with a string member "text"
 * (other members ignored; blank lines skipped). Any other PATH: a plain text file split into paragraphs
 * on blank (empty or whitespace-only) lines; a paragraph keeps its inner newlines. A UTF-8 byte order mark
 * at the start of the file is skipped. On success *texts is a malloc'd array of *n malloc'd strings (free
 * with bn_jsonl_free_texts). Errors: BITNET_ERR_IO (cannot read), BITNET_ERR_FORMAT with the one-line
 * message "FILE:LINE: what is wrong" (a bad line, a "text" that is missing, not a string or contains
 * \u0000) or "FILE: no texts" when nothing was found, BITNET_ERR_NOMEM. */
bitnet_status bn_jsonl_read_texts(const char *path, char ***texts, int *n);
void bn_jsonl_free_texts(char **texts, int n);

#endif
