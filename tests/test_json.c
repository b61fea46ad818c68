/* test_json.c - strict JSON parser (valid documents, every rejection class with
 * its message and position, depth limit), string writer round trips, and the
 * JSON Lines / paragraph calibration reader. */
#include <math.h>

#include "common.h"
#include "formats/json.h"
#include "formats/mapped_file.h"
#include "test.h"
#include "tokenizer/unicode.h"

/* bn_utf8_next, the one-code-point decoder of the JSON parser and the grammar
 * code: every scalar value round-trips through bn_utf8_encode, from an
 * exact-size buffer; surrogates, overlong forms, values past U+10FFFF, stray
 * or missing continuation bytes and a sequence cut short are refused. */
TEST(utf8_next_every_code_point) {
    int bad = 0;
    for (uint32_t cp = 0; cp <= 0x10FFFF; cp++) {
        if (cp >= 0xD800 && cp <= 0xDFFF) continue;
        char buf[4];
        const int n = bn_utf8_encode(cp, buf);
        uint32_t got = 0xFFFFFFFF;
        if (bn_utf8_next(buf, (size_t)n, &got) != (size_t)n || got != cp || bn_utf8_next(buf, (size_t)n - 1, &got))
            bad++;
    }
    CHECK_EQ_INT(bad, 0);
    static const char *const refused[] = {
        "\x80",         "\xbf",         "\xc0\x80",     "\xc1\xbf",         "\xe0\x9f\xbf", "\xed\xa0\x80",
        "\xed\xbf\xbf", "\xf0\x8f\xbf\xbf", "\xf4\x90\x80\x80", "\xf5\x80\x80\x80", "\xff",  "\xe2\x28\xa1",
        "\xc3",         "\xe2\x82",     "",
    };
    for (size_t i = 0; i < sizeof refused / sizeof *refused; i++) {
        uint32_t cp = 0;
        CHECK_MSG(bn_utf8_next(refused[i], strlen(refused[i]), &cp) == 0, "case %zu decoded as U+%X", i, (unsigned)cp);
    }
}

/* Parses an exact-size heap copy (no NUL after it), so ASan sees any over-read. */
static bn_json *parse_n(const char *s, size_t n, char *err, size_t errlen) {
    char *copy = malloc(n ? n : 1);
    memcpy(copy, s, n);
    bn_json *v = bn_json_parse(copy, n, err, errlen);
    free(copy);
    return v;
}
static bn_json *parse(const char *s, char *err) { return parse_n(s, strlen(s), err, 256); }

/* Checks that s is rejected with exactly the message want. */
static void reject_n(const char *s, size_t n, const char *want, int line) {
    char err[256] = "";
    bn_json *v = parse_n(s, n, err, sizeof err);
    CHECK_MSG(v == NULL, "line %d: accepted invalid JSON", line);
    bn_json_free(v);
    CHECK_MSG(strcmp(err, want) == 0, "line %d: message \"%s\", want \"%s\"", line, err, want);
}
#define REJECT(s, want) reject_n(s, strlen(s), want, __LINE__)

TEST(json_scalars_and_numbers) {
    char err[256];
    static const struct { const char *text; double v; } nums[] = {
        {"0", 0}, {"-0", -0.0}, {"1", 1}, {"-12", -12}, {"3.25", 3.25}, {"1e3", 1000}, {"1E+3", 1000},
        {"25e-2", 0.25}, {"-1.5e2", -150}, {"0.000001", 1e-6}, {" \t\r\n 42 \n", 42}, {"1e-400", 0},
        {"123456789012345678901234567890", 1.2345678901234568e29}, {"1.7976931348623157e308", 1.7976931348623157e308}};
    for (size_t i = 0; i < sizeof nums / sizeof nums[0]; i++) {
        bn_json *v = parse(nums[i].text, err);
        CHECK_MSG(v && v->type == BN_JSON_NUMBER, "%s: %s", nums[i].text, err);
        if (v) CHECK_MSG(v->number == nums[i].v, "%s -> %.17g", nums[i].text, v->number);
        bn_json_free(v);
    }
    bn_json *z = parse("-0", err);
    CHECK(z && signbit(z->number)); /* -0 keeps its sign */
    bn_json_free(z);
    bn_json *t = parse("true", err), *f = parse("false", err), *n = parse(" null ", err);
    CHECK(t && t->type == BN_JSON_BOOL && t->boolean == 1);
    CHECK(f && f->type == BN_JSON_BOOL && f->boolean == 0);
    CHECK(n && n->type == BN_JSON_NULL);
    bn_json_free(t);
    bn_json_free(f);
    bn_json_free(n);
}

TEST(json_strings_escapes_utf8) {
    char err[256];
    bn_json *v = parse("\"a\\\"b\\\\c\\/d\\b\\f\\n\\r\\t\\u0041\\u00e9\\u20AC\\ud83d\\ude00\"", err);
    CHECK_MSG(v && v->type == BN_JSON_STRING, "%s", err);
    const char want[] = "a\"b\\c/d\b\f\n\r\tA\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80";
    if (v) {
        CHECK_EQ_INT(v->len, sizeof want - 1);
        CHECK(memcmp(v->str, want, sizeof want) == 0); /* incl. the terminating NUL */
    }
    bn_json_free(v);
    /* raw UTF-8 of every length passes through; \u0000 is kept, counted by len */
    v = parse("\"\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\xf4\x8f\xbf\xbf x\\u0000y\"", err);
    CHECK_MSG(v && v->type == BN_JSON_STRING, "%s", err);
    if (v) {
        CHECK_EQ_INT(v->len, 17);
        CHECK(memcmp(v->str, "\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\xf4\x8f\xbf\xbf x\0y", 18) == 0);
    }
    bn_json_free(v);
    v = parse("\"\"", err);
    CHECK(v && v->type == BN_JSON_STRING && v->len == 0 && v->str && v->str[0] == 0);
    bn_json_free(v);
}

TEST(json_nesting_objects_duplicates) {
    char err[256];
    const char *doc = "{\"a\": [1, [2, {\"b\": null}], {}], \"c\": {\"d\": \"e\"}, \"a2\": 7, \"\": []}";
    bn_json *v = parse(doc, err);
    CHECK_MSG(v && v->type == BN_JSON_OBJECT, "%s", err);
    if (!v) return;
    CHECK_EQ_INT(v->n, 4);
    const bn_json *a = bn_json_get(v, "a");
    CHECK(a && a->type == BN_JSON_ARRAY && a->n == 3);
    if (a && a->n == 3) {
        CHECK(a->items[0].type == BN_JSON_NUMBER && a->items[0].number == 1);
        CHECK(a->items[1].type == BN_JSON_ARRAY && a->items[1].n == 2);
        CHECK(bn_json_get(&a->items[1].items[1], "b")->type == BN_JSON_NULL);
        CHECK(a->items[2].type == BN_JSON_OBJECT && a->items[2].n == 0);
    }
    CHECK_STR(v->keys[2], "a2"); /* members in file order */
    CHECK(v->items[2].number == 7 && v->items[2].integer);
    CHECK_STR(bn_json_get(bn_json_get(v, "c"), "d")->str, "e");
    CHECK(bn_json_get(v, "")->type == BN_JSON_ARRAY);
    CHECK(bn_json_get(v, "zz") == NULL);
    CHECK(bn_json_get(a, "a") == NULL); /* not an object */
    CHECK(bn_json_get(NULL, "a") == NULL);
    bn_json_free(v);
}

/* Reliability round 2, item 10: a key twice in one object is an error (it was
 * the first value, silently), at any depth and however many keys; "integer"
 * tells "512" from "512.0". */
TEST(reliability_10_json_duplicate_keys_rejected) {
    char err[256];
    const char *dups[] = {"{\"a\": 1, \"a\": 2}", "{\"x\": {\"k\": 1, \"j\": 2, \"k\": 3}}", "[{}, {\"\": 0, \"\": 0}]"};
    for (size_t i = 0; i < sizeof dups / sizeof dups[0]; i++) {
        bn_json *v = parse(dups[i], err);
        CHECK_MSG(!v && strstr(err, "duplicate key"), "%s: %s", dups[i], v ? "accepted" : err);
        bn_json_free(v);
    }
    bn_buf b = {0}; /* 20000 distinct keys then one repeat: found without quadratic work */
    bn_buf_append(&b, "{", 1);
    for (int i = 0; i < 20000; i++) bn_buf_printf(&b, "\"k%d\": %d, ", i, i);
    bn_buf_append(&b, "\"k7\": 0}", 8);
    bn_json *v = bn_json_parse(b.data, b.len, err, sizeof err);
    CHECK_MSG(!v && strstr(err, "duplicate key \"k7\""), "%s", v ? "accepted" : err);
    bn_json_free(v);
    bn_buf_free(&b);
    v = parse("[512, 512.0, 5e2, -0]", err);
    CHECK(v && v->items[0].integer && !v->items[1].integer && !v->items[2].integer && v->items[3].integer);
    bn_json_free(v);
}

TEST(json_depth_limit) {
    char err[256], doc[2 * 70 + 1];
    for (int depth = 63; depth <= 66; depth++) {
        int k = 0;
        for (int i = 0; i < depth; i++) doc[k++] = '[';
        for (int i = 0; i < depth; i++) doc[k++] = ']';
        bn_json *v = parse_n(doc, (size_t)k, err, sizeof err);
        CHECK_MSG((v != NULL) == (depth <= BN_JSON_MAX_DEPTH), "depth %d", depth);
        if (!v) CHECK_STR(err, "line 1, column 65: nesting deeper than 64 levels");
        bn_json_free(v);
    }
    /* objects count too, and the error frees everything parsed so far (ASan) */
    bn_buf b = {0};
    for (int i = 0; i < 65; i++) bn_buf_printf(&b, "{\"k%d\": [1, \"x\", ", i);
    bn_json *v = parse_n(b.data, b.len, err, sizeof err);
    CHECK(v == NULL && strstr(err, "nesting deeper than 64 levels"));
    bn_buf_free(&b);
}

TEST(json_rejections) {
    REJECT("", "line 1, column 1: unexpected end of input (expected a value)");
    REJECT("   ", "line 1, column 4: unexpected end of input (expected a value)");
    REJECT("1 2", "line 1, column 3: unexpected character '2' after the JSON value");
    REJECT("{} x", "line 1, column 4: unexpected character 'x' after the JSON value");
    REJECT("\xef\xbb\xbf{}", "line 1, column 1: unexpected byte 0xef (expected a value)");
    REJECT("01", "line 1, column 1: leading zero in number");
    REJECT("-012", "line 1, column 2: leading zero in number");
    REJECT("+1", "line 1, column 1: unexpected character '+' (expected a value)");
    REJECT(".5", "line 1, column 1: unexpected character '.' (expected a value)");
    REJECT("1.", "line 1, column 3: unexpected end of input (expected a digit after '.')");
    REJECT("1.e5", "line 1, column 3: unexpected character 'e' (expected a digit after '.')");
    REJECT("1e", "line 1, column 3: unexpected end of input (expected a digit in the exponent)");
    REJECT("1e+", "line 1, column 4: unexpected end of input (expected a digit in the exponent)");
    REJECT("-", "line 1, column 2: unexpected end of input (expected a digit after '-')");
    REJECT("-a", "line 1, column 2: unexpected character 'a' (expected a digit after '-')");
    REJECT("NaN", "line 1, column 1: NaN and Infinity are not valid JSON");
    REJECT("[Infinity]", "line 1, column 2: NaN and Infinity are not valid JSON");
    REJECT("-Infinity", "line 1, column 1: NaN and Infinity are not valid JSON");
    REJECT("1e400", "line 1, column 1: number out of range");
    REJECT("-1e400", "line 1, column 1: number out of range");
    REJECT("tru", "line 1, column 1: invalid literal (expected 'true')");
    REJECT("nul", "line 1, column 1: invalid literal (expected 'null')");
    REJECT("False", "line 1, column 1: unexpected character 'F' (expected a value)");
    REJECT("'a'", "line 1, column 1: unexpected character ''' (expected a value)");
    REJECT("\"abc", "line 1, column 1: unterminated string");
    REJECT("\"abc\\\"", "line 1, column 1: unterminated string");
    REJECT("\"a\nb\"", "line 1, column 3: control character 0x0a in string (must be escaped)");
    REJECT("\"\t\"", "line 1, column 2: control character 0x09 in string (must be escaped)");
    REJECT("\"\\x\"", "line 1, column 2: invalid escape '\\x' in string");
    REJECT("\"\\u12\"", "line 1, column 2: invalid \\u escape (expected 4 hex digits)");
    REJECT("\"\\u12G4\"", "line 1, column 2: invalid \\u escape (expected 4 hex digits)");
    REJECT("\"\\ud800\"", "line 1, column 2: lone surrogate \\uD800 in string");
    REJECT("\"\\ud800x\"", "line 1, column 2: lone surrogate \\uD800 in string");
    REJECT("\"\\ud800\\u0041\"", "line 1, column 2: lone surrogate \\uD800 in string");
    REJECT("\"ab\\udc00\"", "line 1, column 4: lone surrogate \\uDC00 in string");
    REJECT("\"\\ud800\\ud800\"", "line 1, column 2: lone surrogate \\uD800 in string");
    /* invalid UTF-8: stray continuation, overlong, encoded surrogate, > U+10FFFF, truncated, 0xff */
    REJECT("\"\x80\"", "line 1, column 2: invalid UTF-8 byte 0x80 in string");
    REJECT("\"a\xc0\xaf\"", "line 1, column 3: invalid UTF-8 byte 0xc0 in string");
    REJECT("\"\xe0\x80\xaf\"", "line 1, column 2: invalid UTF-8 byte 0xe0 in string");
    REJECT("\"\xed\xa0\x80\"", "line 1, column 2: invalid UTF-8 byte 0xed in string");
    REJECT("\"\xf4\x90\x80\x80\"", "line 1, column 2: invalid UTF-8 byte 0xf4 in string");
    REJECT("\"\xe2\x82\"", "line 1, column 2: invalid UTF-8 byte 0xe2 in string");
    REJECT("\"\xff\"", "line 1, column 2: invalid UTF-8 byte 0xff in string");
    REJECT("[1,]", "line 1, column 4: trailing comma before ']'");
    REJECT("[1 2]", "line 1, column 4: unexpected character '2' (expected ',' or ']' after an array element)");
    REJECT("[1", "line 1, column 3: unexpected end of input (expected ',' or ']' after an array element)");
    REJECT("{\"a\":1,}", "line 1, column 8: trailing comma before '}'");
    REJECT("{a:1}", "line 1, column 2: unexpected character 'a' (expected a string key)");
    REJECT("{\"a\" 1}", "line 1, column 6: unexpected character '1' (expected ':' after an object key)");
    REJECT("{\"a\":1 \"b\":2}", "line 1, column 8: unexpected character '\"' (expected ',' or '}' after an object member)");
    REJECT("{\"a\":}", "line 1, column 6: unexpected character '}' (expected a value)");
    REJECT("{\"a\\u0000b\":1}", "line 1, column 2: object key contains \\u0000");
    /* line and column count newlines; NUL bytes outside strings are just bad bytes */
    REJECT("{\n  \"a\": [1,\n    2,, 3]}", "line 3, column 7: unexpected character ',' (expected a value)");
    reject_n("[1,\0]", 5, "line 1, column 4: unexpected byte 0x00 (expected a value)", __LINE__);
    reject_n("\"a\0\"", 4, "line 1, column 3: control character 0x00 in string (must be escaped)", __LINE__);
    /* a small err buffer is truncated, never overrun; NULL err is allowed */
    char small[12];
    CHECK(parse_n("[1,]", 4, small, sizeof small) == NULL);
    CHECK_STR(small, "line 1, col");
    CHECK(parse_n("[1,]", 4, NULL, 0) == NULL);
}

/* Every prefix of a valid document is invalid and must be rejected without over-reads. */
TEST(json_every_truncation) {
    const char *doc = "{\"a\": [1.5e-3, -0, true, false, null, \"x\\u00e9\\ud83d\\ude00\\n\"], \"b\": {}}";
    char err[256];
    size_t n = strlen(doc);
    for (size_t k = 0; k < n; k++) {
        bn_json *v = parse_n(doc, k, err, sizeof err);
        CHECK_MSG(v == NULL, "prefix of %zu bytes accepted", k);
        bn_json_free(v);
    }
    bn_json *v = parse_n(doc, n, err, sizeof err);
    CHECK_MSG(v != NULL, "%s", err);
    bn_json_free(v);
}

static void round_trip(const char *s, size_t n, const char *want, size_t want_n) {
    bn_buf b = {0};
    CHECK(bn_json_append_string(&b, s, n) == 0);
    CHECK(b.data[b.len] == 0);
    char err[256];
    bn_json *v = bn_json_parse(b.data, b.len, err, sizeof err);
    CHECK_MSG(v && v->type == BN_JSON_STRING, "%s: %s", b.data, err);
    if (v) CHECK_MSG(v->len == want_n && memcmp(v->str, want, want_n) == 0, "round trip of %s", b.data);
    bn_json_free(v);
    bn_buf_free(&b);
}

TEST(json_string_writer_round_trip) {
    /* every ASCII byte including NUL and the controls, plus multi-byte UTF-8 */
    char all[128 + 13];
    for (int i = 0; i < 128; i++) all[i] = (char)i;
    memcpy(all + 128, "\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\xf4\x8f\xbf\xbf", 13);
    round_trip(all, sizeof all, all, sizeof all);
    round_trip("", 0, "", 0);
    /* invalid UTF-8 bytes become U+FFFD, each; the valid rest is kept */
    round_trip("a\xff" "b\xc3", 4, "a\xef\xbf\xbd" "b\xef\xbf\xbd", 8);
    round_trip("\xed\xa0\x80", 3, "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd", 9);
    bn_buf b = {0};
    bn_json_append_string(&b, "q\"\\\n\x01", 5);
    CHECK_STR(b.data, "\"q\\\"\\\\\\n\\u0001\"");
    bn_buf_free(&b);
    /* bn_buf_printf appends, growing past the first capacity */
    for (int i = 0; i < 1000; i++) CHECK(bn_buf_printf(&b, "%d,", i) == 0);
    CHECK(b.len > 3000 && strncmp(b.data, "0,1,2,", 6) == 0 && strcmp(b.data + b.len - 4, "999,") == 0);
    bn_buf_free(&b);
}

static const char *write_tmp(const char *suffix, const char *content) {
    const char *path = bn_test_tmp(suffix);
    FILE *f = fopen(path, "wb");
    fputs(content, f);
    fclose(f);
    return path;
}

TEST(jsonl_read_texts_good) {
    char **t;
    int n;
    const char *path = write_tmp(".jsonl", "\xef\xbb\xbf{\"text\": \"one\"}\n\n  \r\n{\"id\": 2, \"text\": \"t\\u00e9\\nwo\"}\r\n"
                                           "{\"text\": \"\"}");
    CHECK(bn_jsonl_read_texts(path, &t, &n) == BITNET_OK);
    CHECK_EQ_INT(n, 3);
    if (n == 3) {
        CHECK_STR(t[0], "one");
        CHECK_STR(t[1], "t\xc3\xa9\nwo");
        CHECK_STR(t[2], "");
    }
    bn_jsonl_free_texts(t, n);
    remove(path);
    /* any other name: paragraphs separated by blank lines, inner newlines kept */
    path = write_tmp(".txt", "\n\nFirst line.\nSecond line.\r\n \n\t\nThird {\"text\": 1}\n\nlast");
    CHECK(bn_jsonl_read_texts(path, &t, &n) == BITNET_OK);
    CHECK_EQ_INT(n, 3);
    if (n == 3) {
        CHECK_STR(t[0], "First line.\nSecond line.");
        CHECK_STR(t[1], "Third {\"text\": 1}");
        CHECK_STR(t[2], "last");
    }
    bn_jsonl_free_texts(t, n);
    remove(path);
}

static void jsonl_bad(const char *content, const char *want_tail) {
    char **t = (char **)1;
    int n = -1;
    const char *path = write_tmp(".jsonl", content);
    char want[4200];
    snprintf(want, sizeof want, "%s%s", path, want_tail);
    CHECK_EQ_INT(bn_jsonl_read_texts(path, &t, &n), BITNET_ERR_FORMAT);
    CHECK(t == NULL && n == 0);
    CHECK_STR(bitnet_last_error(), want);
    remove(path);
}

TEST(jsonl_read_texts_bad) {
    jsonl_bad("{\"text\": \"a\"}\n\n{\"text\": \"b\"\n", ":3: column 13: unexpected end of input (expected ',' or '}' after an object member)");
    jsonl_bad("{\"text\": \"a\"}\n[\"text\"]\n", ":2: expected an object {\"text\": ...}, got an array");
    jsonl_bad("{\"txt\": \"a\"}\n", ":1: object has no \"text\" member");
    jsonl_bad("\n\n\n{\"text\": 5}\n", ":4: \"text\" is a number, expected a string");
    jsonl_bad("{\"text\": \"a\\u0000b\"}\n", ":1: \"text\" contains \\u0000");
    jsonl_bad("{\"text\": \"a\"} {\"text\": \"b\"}\n", ":1: column 15: unexpected character '{' after the JSON value");
    jsonl_bad("{\"text\": \"\xff\"}\n", ":1: column 11: invalid UTF-8 byte 0xff in string");
    jsonl_bad("\n \n", ": no texts");
    char **t;
    int n;
    CHECK_EQ_INT(bn_jsonl_read_texts("/nonexistent/dir/x.jsonl", &t, &n), BITNET_ERR_IO);
    CHECK(strstr(bitnet_last_error(), "/nonexistent/dir/x.jsonl: cannot open") != NULL);
}

TEST(jsonl_shared_calibration_files) {
    static const char *files[] = {"corpora/tinystories-calib.jsonl", "corpora/wiki-calib.jsonl"};
    int found = 0;
    for (int i = 0; i < 2; i++) {
        const char *p = bn_test_shared(files[i]);
        if (!p) continue;
        char path[4096];
        snprintf(path, sizeof path, "%s", p);
        found++;
        size_t len;
        char *raw = bn_test_read_file(path, &len);
        int lines = 0;
        for (size_t k = 0; raw && k < len; k++) lines += raw[k] == '\n' && k > 0 && raw[k - 1] != '\n';
        if (raw && len && raw[len - 1] != '\n') lines++;
        char **t;
        int n;
        CHECK_MSG(bn_jsonl_read_texts(path, &t, &n) == BITNET_OK, "%s", bitnet_last_error());
        CHECK_MSG(n == lines && n > 0, "%s: %d texts, %d non-empty lines", path, n, lines);
        for (int k = 0; k < n; k++) CHECK(strlen(t[k]) > 0);
        bn_jsonl_free_texts(t, n);
        free(raw);
    }
    if (!found) SKIP("../shared/corpora/*-calib.jsonl not present");
}

/* bn_read_file: the small files beside a model (config.json, tokenizer.json,
 * an index) read whole, NUL-terminated, bounded while reading. */
TEST(read_file_whole_bounded_and_missing) {
    const char *path = bn_test_tmp(".json");
    FILE *f = fopen(path, "wb");
    REQUIRE(f != NULL);
    for (int i = 0; i < 100000; i++) fputc('a' + i % 26, f); /* more than one 64 KiB growth step */
    fclose(f);
    char *buf = NULL;
    size_t len = 0;
    int missing = -1;
    CHECK(bn_read_file(path, 100000, &buf, &len, &missing) == BITNET_OK && len == 100000 && missing == 0);
    CHECK(buf && buf[len] == 0 && buf[99999] == 'a' + 99999 % 26);
    free(buf);
    CHECK(bn_read_file(path, 99999, &buf, &len, NULL) == BITNET_ERR_FORMAT && buf == NULL);
    CHECK(strstr(bitnet_last_error(), path) && strstr(bitnet_last_error(), "larger than 99999 bytes"));
    remove(path);
    CHECK(bn_read_file(path, 10, &buf, &len, &missing) == BITNET_ERR_IO && missing == 1 &&
          strstr(bitnet_last_error(), "cannot open"));
    /* a /proc file reports size 0 but has content: read to EOF */
    CHECK(bn_read_file("/proc/self/status", 1 << 20, &buf, &len, NULL) == BITNET_OK && len > 0 && strstr(buf, "Name:"));
    free(buf);
    f = fopen(path, "wb");
    REQUIRE(f != NULL);
    fclose(f);
    CHECK(bn_read_file(path, 10, &buf, &len, NULL) == BITNET_OK && len == 0 && buf && buf[0] == 0);
    free(buf);
}

