/* tools.c - OpenAI function calling on /v1/chat/completions.
 *
 * 'tools' become a system text that lists them and says how to call one, and
 * a grammar: the answer is either one call, {"name": ..., "arguments": {...}}
 * with the arguments following that tool's 'parameters' schema, or (with
 * tool_choice "auto", the default) plain text that does not start with '{'.
 * "required" or a named function leave only the call; "none" leaves the tools
 * out. The answer that is a call comes back as message.tool_calls with
 * finish_reason "tool_calls". One call per answer (parallel_tool_calls is
 * accepted; a small model rarely benefits from more). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"
#include "formats/json.h"
#include "grammar/grammar.h"
#include "server.h"


static int valid_name(const char *s) {
    size_t n = strlen(s);
    if (n == 0 || n > 64) return 0;
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') || (s[i] >= '0' && s[i] <= '9') ||
              s[i] == '_' || s[i] == '-'))
            return 0;
    return 1;
}

int bn_tools_parse(bn_gen_request *r, const bn_json *o, char *err, size_t errlen) {
    const bn_json *tools = bn_json_get(o, "tools"), *choice = bn_json_get(o, "tool_choice");
    if (!tools || tools->type == BN_JSON_NULL || (tools->type == BN_JSON_ARRAY && tools->n == 0)) {
        if (choice && choice->type != BN_JSON_NULL && !(choice->type == BN_JSON_STRING && !strcmp(choice->str, "none")) &&
            !(choice->type == BN_JSON_STRING && !strcmp(choice->str, "auto")))
            return bn_server_bad(err, errlen, "'tool_choice' needs 'tools'");
        return 0;
    }
    if (!r->chat) return bn_server_bad(err, errlen, "'tools' are for /v1/chat/completions");
    if (tools->type != BN_JSON_ARRAY) return bn_server_bad(err, errlen, "'tools' must be an array");
    if (tools->n > 64) return bn_server_bad(err, errlen, "'tools' has more than 64 functions");
    for (size_t i = 0; i < tools->n; i++) {
        const bn_json *t = &tools->items[i], *type = bn_json_get(t, "type"), *f = bn_json_get(t, "function");
        const bn_json *name = bn_json_get(f, "name"), *params = bn_json_get(f, "parameters");
        if (!type || type->type != BN_JSON_STRING || strcmp(type->str, "function") || !f || f->type != BN_JSON_OBJECT)
            return bn_server_bad(err, errlen, "'tools'[%zu] must be {\"type\": \"function\", \"function\": {...}}", i);
        if (!name || name->type != BN_JSON_STRING || !valid_name(name->str))
            return bn_server_bad(err, errlen,
                    "'tools'[%zu].function.name must be 1 to 64 of a-z, A-Z, 0-9, _ and -", i);
        for (size_t k = 0; k < i; k++)
            if (!strcmp(bn_json_get(bn_json_get(&tools->items[k], "function"), "name")->str, name->str))
                return bn_server_bad(err, errlen, "'tools' names '%s' twice (at %zu)", name->str, i);
        if (params && params->type != BN_JSON_OBJECT && params->type != BN_JSON_NULL)
            return bn_server_bad(err, errlen, "'tools'[%zu].function.parameters must be a JSON Schema object", i);
    }
    /* which of them the answer may call */
    const char *only = NULL;
    int required = 0;
    if (choice && choice->type == BN_JSON_STRING) {
        if (!strcmp(choice->str, "none")) return 0;
        if (!strcmp(choice->str, "required")) required = 1;
        else if (strcmp(choice->str, "auto"))
            return bn_server_bad(err, errlen, "'tool_choice' must be \"none\", \"auto\", \"required\" or a function");
    } else if (choice && choice->type != BN_JSON_NULL) {
        const bn_json *name = bn_json_get(bn_json_get(choice, "function"), "name");
        if (!name || name->type != BN_JSON_STRING)
            return bn_server_bad(err, errlen,
                    "'tool_choice' must be {\"type\": \"function\", \"function\": {\"name\": ...}}");
        only = name->str;
        required = 1;
        size_t k = 0;
        while (k < tools->n && strcmp(bn_json_get(bn_json_get(&tools->items[k], "function"), "name")->str, only)) k++;
        if (k == tools->n) return bn_server_bad(err, errlen, "'tool_choice' names '%s', which is not in 'tools'", only);
    }
    if (r->grammar || r->json_object)
        return bn_server_bad(err, errlen,
                "'tools' cannot be combined with 'response_format', 'grammar' or 'json_schema'");
    /* the schema of a call: anyOf one object per tool, its name a constant */
    bn_buf schema = {0}, sys = {0};
    int rc = bn_buf_printf(&schema, "{\"anyOf\":[");
    rc |= bn_buf_printf(&sys, "You can call these functions. To call one, answer with only a JSON object "
                              "{\"name\": <function name>, \"arguments\": <its arguments>}%s\n",
                        required ? "." : "; otherwise answer in plain text.");
    int n_alt = 0;
    for (size_t i = 0; i < tools->n && !rc; i++) {
        const bn_json *f = bn_json_get(&tools->items[i], "function"), *name = bn_json_get(f, "name");
        const bn_json *params = bn_json_get(f, "parameters"), *desc = bn_json_get(f, "description");
        if (only && strcmp(name->str, only)) continue;
        rc |= bn_buf_printf(&schema, "%s{\"type\":\"object\",\"properties\":{\"name\":{\"const\":", n_alt++ ? "," : "");
        rc |= bn_json_append_string(&schema, name->str, strlen(name->str));
        rc |= bn_buf_printf(&schema, "},\"arguments\":");
        if (params && params->type == BN_JSON_OBJECT) rc |= bn_json_write(&schema, params);
        else rc |= bn_buf_printf(&schema, "{\"type\":\"object\",\"properties\":{}}");
        rc |= bn_buf_printf(&schema, "},\"required\":[\"name\",\"arguments\"],\"additionalProperties\":false}");
        rc |= bn_json_write(&sys, f);
        rc |= bn_buf_printf(&sys, "\n");
        (void)desc;
    }
    rc |= bn_buf_printf(&schema, "]}");
    char serr[300];
    bn_json *tree = rc ? NULL : bn_json_parse(schema.data, schema.len, serr, sizeof serr);
    char *call = NULL;
    if (!rc && (!tree || bn_json_schema_gbnf(tree, &call, serr, sizeof serr) != 0)) {
        snprintf(err, errlen, "'tools': a function's parameters: %s", serr);
        rc = -1;
    }
    bn_json_free(tree);
    bn_buf_free(&schema);
    if (!rc && !required) { /* the call, or text that does not start with '{' (nor with space then '{') */
        bn_buf gb = {0};
        char *root = strstr(call, "\nroot ::= ");
        if (!root && !strncmp(call, "root ::= ", 9)) root = call - 1;
        if (root) memcpy(root + 1, "call", 4); /* "root" -> "call": the same length */
        rc = !root || bn_buf_printf(&gb, "%sroot ::= \" \"? call | free\nfree ::= [^{ \\t\\r\\n] .* | [ \\t\\r\\n]+ [^{ \\t\\r\\n] .*\n", call);
        free(call);
        call = gb.data;
    }
    if (rc) {
        free(call);
        bn_buf_free(&sys);
        if (!err[0] || rc != -1) snprintf(err, errlen, "out of memory");
        return -1;
    }
    r->grammar = call;
    r->tools_system = sys.data;
    return 0;
}

int bn_tools_call(const char *text, size_t n, bn_buf *name, bn_buf *args) {
    while (n && (*text == ' ' || *text == '\n' || *text == '\t' || *text == '\r')) text++, n--;
    if (!n || *text != '{') return 0;
    bn_json *v = bn_json_parse(text, n, NULL, 0);
    const bn_json *nm = bn_json_get(v, "name"), *a = bn_json_get(v, "arguments");
    int ok = v && v->type == BN_JSON_OBJECT && nm && nm->type == BN_JSON_STRING && a;
    if (ok) {
        name->len = args->len = 0;
        ok = bn_buf_append(name, nm->str, nm->len) == 0 && bn_json_write(args, a) == 0;
    }
    bn_json_free(v);
    return ok;
}

int bn_tools_render_history(const bn_json *msg, bn_buf *b) {
    const bn_json *calls = bn_json_get(msg, "tool_calls");
    if (!calls || calls->type != BN_JSON_ARRAY) return 0;
    for (size_t i = 0; i < calls->n; i++) {
        const bn_json *f = bn_json_get(&calls->items[i], "function");
        const bn_json *name = bn_json_get(f, "name"), *args = bn_json_get(f, "arguments");
        if (!name || name->type != BN_JSON_STRING) continue;
        if ((b->len && bn_buf_printf(b, "\n")) || bn_buf_printf(b, "{\"name\": ") ||
            bn_json_append_string(b, name->str, name->len) || bn_buf_printf(b, ", \"arguments\": "))
            return -1;
        /* arguments: a string holding JSON (OpenAI), or the JSON itself */
        if (args && args->type == BN_JSON_STRING ? bn_buf_append(b, args->str, args->len)
                                                 : args ? bn_json_write(b, args) : bn_buf_printf(b, "{}"))
            return -1;
        if (bn_buf_printf(b, "}")) return -1;
    }
    return 0;
}
