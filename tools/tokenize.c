/* tokenize - print the token ids of UTF-8 text read from stdin.
 *
 *   printf 'Hello world' | build/tokenize -m llama3-tiktoken.model --ids
 *   9906 1917
 *
 * Like llama.cpp's tokenizer tests: no BOS unless --bos, special-token text
 * ("<|eot_id|>") stays text unless --parse-special. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tokenizer/tokenizer.h"

static void usage(FILE *out) {
    fprintf(out,
            "usage: tokenize -m MODEL_OR_VOCAB [--ids] [--bos] [--parse-special]\n"
            "Reads UTF-8 text from stdin (all of it, byte for byte: `echo` adds a newline,\n"
            "`printf` does not) and prints its tokens.\n\n"
            "  -m, --model FILE   a GGUF model or vocabulary-only GGUF (tokenizer.ggml.*),\n"
            "                     a tiktoken rank file (Llama-3's tokenizer.model) or a\n"
            "                     llama2.c tokenizer.bin\n"
            "      --ids          print only the ids, space-separated, on one line\n"
            "      --bos          start with the BOS token\n"
            "      --parse-special  turn the text of control tokens (\"<|eot_id|>\") into them\n"
            "  -h, --help         this help\n\n"
            "Without --ids, one line per token: the id, then the bytes it stands for in\n"
            "single quotes, with \\n \\t \\r \\\\ \\' and \\xNN escapes for other control bytes:\n"
            "   9906 'Hello'\n"
            "   1917 ' world'\n");
}

/* Reads all of stdin; NULL on error. */
static char *read_stdin(size_t *len) {
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap);
    for (size_t got; buf && (got = fread(buf + n, 1, cap - n, stdin)) > 0;) {
        n += got;
        if (n == cap) {
            char *nb = cap > ((size_t)1 << 30) ? NULL : realloc(buf, cap *= 2);
            if (!nb) free(buf);
            buf = nb;
        }
    }
    if (buf && ferror(stdin)) {
        free(buf);
        buf = NULL;
    }
    *len = n;
    return buf;
}

static void print_piece(const char *s, int n) {
    putchar('\'');
    for (int i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '\n') fputs("\\n", stdout);
        else if (c == '\t') fputs("\\t", stdout);
        else if (c == '\r') fputs("\\r", stdout);
        else if (c == '\\' || c == '\'') printf("\\%c", c);
        else if (c < 0x20 || c == 0x7f) printf("\\x%02x", c);
        else putchar(c); /* UTF-8 bytes pass through; a split character shows as its bytes */
    }
    putchar('\'');
}

int main(int argc, char **argv) {
    const char *path = NULL;
    int ids_only = 0, bos = 0, parse_special = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            return 0;
        } else if ((!strcmp(a, "-m") || !strcmp(a, "--model")) && i + 1 < argc) {
            path = argv[++i];
        } else if (!strcmp(a, "--ids")) {
            ids_only = 1;
        } else if (!strcmp(a, "--bos")) {
            bos = 1;
        } else if (!strcmp(a, "--parse-special")) {
            parse_special = 1;
        } else {
            fprintf(stderr, "tokenize: unknown option or missing value: '%s' (see --help)\n", a);
            return 2;
        }
    }
    if (!path) {
        fprintf(stderr, "tokenize: -m MODEL_OR_VOCAB is required (see --help)\n");
        return 2;
    }
    bn_tokenizer *t = NULL;
    if (bn_tokenizer_load_file(path, &t) != BITNET_OK) {
        fprintf(stderr, "tokenize: %s\n", bitnet_last_error());
        return 1;
    }
    size_t len = 0;
    char *text = read_stdin(&len);
    int max = len < (size_t)(1 << 29) ? (int)len + 2 : -1;
    int32_t *ids = max > 0 ? malloc((size_t)max * sizeof *ids) : NULL;
    if (!text || !ids) {
        fprintf(stderr, "tokenize: %s\n", !text ? "cannot read stdin" : "input too large");
        free(text);
        bn_tokenizer_free(t);
        return 1;
    }
    int n = bn_tokenizer_encode_ex(t, text, len, bos, parse_special, ids, max);
    if (n < 0) {
        fprintf(stderr, "tokenize: %s\n", bitnet_last_error());
    } else if (ids_only) {
        for (int i = 0; i < n; i++) printf(i ? " %d" : "%d", (int)ids[i]);
        putchar('\n');
    } else {
        for (int i = 0; i < n; i++) {
            int plen = 0;
            const char *p = bn_tokenizer_piece(t, -1, ids[i], &plen); /* the bytes of the token itself */
            printf("%6d ", (int)ids[i]);
            print_piece(p ? p : "", plen);
            putchar('\n');
        }
    }
    free(ids);
    free(text);
    bn_tokenizer_free(t);
    return n < 0 ? 1 : 0;
}
