/* fuzz_json.c - libFuzzer target for src/formats/json.c: the strict JSON parser (used
 * for safetensors headers, config.json and the server's requests), the JSON
 * string writer, and the calibration-text reader (JSON Lines / paragraphs).
 *
 * The first input byte picks the mode, the rest is the input:
 *   0  parse; a rejected text gives "line L, column C: ..." on one line; an
 *      accepted one is written back (strings with bn_json_append_string,
 *      numbers with %.17g) and must parse to the same tree
 *   1  bn_json_append_string of the rest must parse back to a string, equal
 *      to the rest when that is valid UTF-8
 *   2  the rest as a .jsonl file, 3 as a plain text file, through
 *      bn_jsonl_read_texts (it reads a path: the bytes go to a temp file) */
#include <math.h>
#include <unistd.h>

#include "fuzz.h"
#include "formats/json.h"

static void write_tree(bn_buf *b, const bn_json *v) {
    switch (v->type) {
    case BN_JSON_NULL: bn_buf_append(b, "null", 4); break;
    case BN_JSON_BOOL: bn_buf_printf(b, "%s", v->boolean ? "true" : "false"); break;
    case BN_JSON_NUMBER: bn_buf_printf(b, "%.17g", v->number); break;
    case BN_JSON_STRING: bn_json_append_string(b, v->str, v->len); break;
    case BN_JSON_ARRAY:
    case BN_JSON_OBJECT:
        bn_buf_append(b, v->type == BN_JSON_ARRAY ? "[" : "{", 1);
        for (size_t i = 0; i < v->n; i++) {
            if (i) bn_buf_append(b, ",", 1);
            if (v->type == BN_JSON_OBJECT) {
                bn_json_append_string(b, v->keys[i], strlen(v->keys[i]));
                bn_buf_append(b, ":", 1);
            }
            write_tree(b, &v->items[i]);
        }
        bn_buf_append(b, v->type == BN_JSON_ARRAY ? "]" : "}", 1);
        break;
    }
}

static int same_tree(const bn_json *a, const bn_json *b) {
    if (a->type != b->type) return 0;
    switch (a->type) {
    case BN_JSON_NULL: return 1;
    case BN_JSON_BOOL: return a->boolean == b->boolean;
    case BN_JSON_NUMBER: return a->number == b->number && signbit(a->number) == signbit(b->number);
    case BN_JSON_STRING: return a->len == b->len && !memcmp(a->str, b->str, a->len) && a->str[a->len] == 0;
    default:
        if (a->n != b->n) return 0;
        for (size_t i = 0; i < a->n; i++)
            if ((a->type == BN_JSON_OBJECT && strcmp(a->keys[i], b->keys[i])) || !same_tree(&a->items[i], &b->items[i]))
                return 0;
        return 1;
    }
}

static void check_parse_error(const char *err) {
    unsigned line, col;
    int k = 0;
    if (sscanf(err, "line %u, column %u: %n", &line, &col, &k) != 2 || k == 0 || err[k] == 0 || line == 0 || col == 0)
        fuzz_fail("parse error is not \"line L, column C: ...\"", err);
    if (strchr(err, '\n')) fuzz_fail("parse error is not one line", err);
}

static void parse_round_trip(const char *s, size_t n) {
    char err[256];
    bn_json *v = bn_json_parse(s, n, err, sizeof err);
    if (!v) {
        check_parse_error(err);
        return;
    }
    bn_buf b = {0};
    write_tree(&b, v);
    bn_json *w = bn_json_parse(b.data, b.len, err, sizeof err);
    if (!w) fuzz_fail("the written-back tree does not parse", err);
    if (!same_tree(v, w)) fuzz_fail("the written-back tree differs", b.data);
    bn_json_free(w);
    bn_json_free(v);
    bn_buf_free(&b);
}

static void string_round_trip(const char *s, size_t n) {
    bn_buf b = {0};
    if (bn_json_append_string(&b, s, n) != 0) abort();
    char err[256];
    bn_json *v = bn_json_parse(b.data, b.len, err, sizeof err);
    if (!v || v->type != BN_JSON_STRING) fuzz_fail("bn_json_append_string wrote something that is not a JSON string", err);
    if (bn_utf8_valid(s, n) && (v->len != n || memcmp(v->str, s, n)))
        fuzz_fail("a valid UTF-8 string did not round-trip", "");
    bn_json_free(v);
    bn_buf_free(&b);
}

static void read_texts(const char *s, size_t n, int jsonl) {
    static char path[2][256];
    if (!path[jsonl][0]) {
        const char *dir = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
        snprintf(path[jsonl], sizeof path[jsonl], "%s/fuzz-json-%d%s", dir, (int)getpid(), jsonl ? ".jsonl" : ".txt");
    }
    FILE *f = fopen(path[jsonl], "wb");
    if (!f || fwrite(s, 1, n, f) != n || fclose(f) != 0) abort();
    char **texts = NULL;
    int count = 0;
    bitnet_status st = bn_jsonl_read_texts(path[jsonl], &texts, &count);
    if (st == BITNET_OK) {
        if (count <= 0) fuzz_fail("no texts but no error", "");
        for (int i = 0; i < count; i++) fuzz_touch(texts[i], strlen(texts[i]) + 1);
        bn_jsonl_free_texts(texts, count);
    } else {
        const char *e = bitnet_last_error();
        if (st != BITNET_ERR_FORMAT || strncmp(e, path[jsonl], strlen(path[jsonl])) || strchr(e, '\n'))
            fuzz_fail("bad error from bn_jsonl_read_texts", e);
    }
    unlink(path[jsonl]);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    const char *s = (const char *)data + 1;
    size_t n = size - 1;
    switch (data[0] % 4) {
    case 0: parse_round_trip(s, n); break;
    case 1: string_round_trip(s, n); break;
    default: read_texts(s, n, data[0] % 4 == 2); break;
    }
    return 0;
}
