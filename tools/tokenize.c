/* tokenize - the tokens of a text, as llama.cpp's llama-tokenize prints them.
 *
 *   build/tokenize -m model.gguf -p "Hello world"
 *        1 -> '<s>'
 *    15043 -> ' Hello'
 *     3186 -> ' world'
 *   build/tokenize -m llama3-tiktoken.model -p "Hello world" --ids --no-bos
 *   [9906, 1917]
 *
 * As llama-tokenize: the text from -p, -f or stdin; BOS first when the
 * vocabulary adds one (--no-bos: never); control-token text ("<|eot_id|>")
 * becomes the token (--no-parse-special: stays text). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tokenizer/tokenizer.h"
#define TOOL_NAME "tokenize"
#include "util.h"

static void usage(FILE *out) {
    fprintf(out,
            "usage: tokenize -m MODEL_OR_VOCAB [-p TEXT | -f FILE | --stdin] [options]\n"
            "Prints the tokens of a text as llama-tokenize does. Without -p or -f the text is\n"
            "read from stdin (all of it, byte for byte: `echo` adds a newline, `printf` does not).\n\n"
            "  -m, --model FILE       a GGUF model or vocabulary-only GGUF (tokenizer.ggml.*),\n"
            "                         a Hugging Face tokenizer.json, a tiktoken rank file\n"
            "                         (Llama-3's tokenizer.model) or a llama2.c tokenizer.bin\n"
            "  -p, --prompt TEXT      the text\n"
            "  -f, --file FILE        the text of a file\n"
            "      --stdin            the text from stdin (the default without -p and -f)\n"
            "      --ids              print only the ids, as a list: [1, 15043, 3186]\n"
            "      --no-bos           no BOS token (default: as the vocabulary says)\n"
            "      --bos              a BOS token even if the vocabulary adds none\n"
            "      --no-parse-special keep the text of control tokens (\"<|eot_id|>\") as text\n"
            "      --show-count       print the number of tokens at the end\n"
            "  -h, --help             this help\n\n"
            "Without --ids, one line per token: the id, then the bytes it stands for in\n"
            "single quotes, with \\n \\t \\r \\\\ \\' and \\xNN escapes for other control bytes:\n"
            "    9906 -> 'Hello'\n"
            "    1917 -> ' world'\n");
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
    handle_version(argc, argv);
    const char *path = NULL, *prompt = NULL, *file = NULL;
    int ids_only = 0, bos = -1, parse_special = 1, show_count = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const int has_value = i + 1 < argc;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            return 0;
        } else if ((!strcmp(a, "-m") || !strcmp(a, "--model")) && has_value) {
            path = argv[++i];
        } else if ((!strcmp(a, "-p") || !strcmp(a, "--prompt")) && has_value) {
            prompt = argv[++i];
        } else if ((!strcmp(a, "-f") || !strcmp(a, "--file")) && has_value) {
            file = argv[++i];
        } else if (!strcmp(a, "--stdin")) {
            prompt = file = NULL;
        } else if (!strcmp(a, "--ids")) {
            ids_only = 1;
        } else if (!strcmp(a, "--bos")) {
            bos = 1;
        } else if (!strcmp(a, "--no-bos")) {
            bos = 0;
        } else if (!strcmp(a, "--parse-special")) {
            parse_special = 1;
        } else if (!strcmp(a, "--no-parse-special")) {
            parse_special = 0;
        } else if (!strcmp(a, "--show-count")) {
            show_count = 1;
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
    char *text = prompt ? strdup(prompt) : file ? read_whole_file(file, &len) : read_stdin(&len);
    if (prompt && text) len = strlen(text);
    int max = len < (size_t)(1 << 29) ? (int)len + 2 : -1;
    int32_t *ids = max > 0 ? malloc((size_t)max * sizeof *ids) : NULL;
    if (!text || !ids) {
        if (!text) fprintf(stderr, "tokenize: cannot read %s: %s\n", file ? file : "stdin", strerror(errno));
        else fprintf(stderr, "tokenize: input too large\n");
        free(text);
        free(ids);
        bn_tokenizer_free(t);
        return 1;
    }
    if (bos < 0) bos = bn_tokenizer_add_bos(t) && bn_tokenizer_bos(t) >= 0;
    int n = bn_tokenizer_encode_ex(t, text, len, bos, parse_special, ids, max);
    if (n < 0) {
        fprintf(stderr, "tokenize: %s\n", bitnet_last_error());
    } else if (ids_only) {
        putchar('[');
        for (int i = 0; i < n; i++) printf(i ? ", %d" : "%d", (int)ids[i]);
        puts("]");
    } else {
        for (int i = 0; i < n; i++) {
            int plen = 0;
            const char *p = bn_tokenizer_piece(t, -1, ids[i], &plen); /* the bytes of the token itself */
            printf("%6d -> ", (int)ids[i]);
            print_piece(p ? p : "", plen);
            putchar('\n');
        }
    }
    if (n >= 0 && show_count) printf("Total number of tokens: %d\n", n);
    free(ids);
    free(text);
    bn_tokenizer_free(t);
    return n < 0 ? 1 : 0;
}
