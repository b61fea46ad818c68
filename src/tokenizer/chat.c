/* chat.c - chat templates (see chat.h). */
#include "tokenizer/chat.h"

#include <string.h>

#include "common.h"

const char bn_chat_template_bitnet_2b4t[] =
    "{% set loop_messages = messages %}{% for message in loop_messages %}{% set content = message['role'] | "
    "capitalize + ': '+ message['content'] | trim + '<|eot_id|>' %}{{ content }}{% endfor %}{% if "
    "add_generation_prompt %}{{ 'Assistant: ' }}{% endif %}";

bn_chat_template bn_chat_detect(const char *tmpl) {
    if (!tmpl || !*tmpl) return BN_CHAT_UNKNOWN;
    if (!strcmp(tmpl, "llama3")) return BN_CHAT_LLAMA3;
    if (!strcmp(tmpl, "bitnet")) return BN_CHAT_BITNET;
    if (!strcmp(tmpl, "plain")) return BN_CHAT_PLAIN;
    if (!strcmp(tmpl, "chatml")) return BN_CHAT_CHATML;
    if (!strcmp(tmpl, "gemma")) return BN_CHAT_GEMMA;
    if (!strcmp(tmpl, "falcon3")) return BN_CHAT_FALCON3;
    /* the distinctive parts, as llama.cpp's llm_chat_detect_template tests them
     * (Phi-4 and SmolVLM also use <|im_start|> with their own separators) */
    if (strstr(tmpl, "<|im_start|>"))
        return strstr(tmpl, "<|im_sep|>") || strstr(tmpl, "<end_of_utterance>") ? BN_CHAT_UNKNOWN : BN_CHAT_CHATML;
    if (strstr(tmpl, "<|start_header_id|>") && strstr(tmpl, "<|end_header_id|>")) return BN_CHAT_LLAMA3;
    if (strstr(tmpl, "<|eot_id|>") && strstr(tmpl, "'Assistant: '")) return BN_CHAT_BITNET;
    if (strstr(tmpl, "<|assistant|>") && strstr(tmpl, "<|user|>") && !strstr(tmpl, "<|end|>"))
        return strstr(tmpl, "</s>") ? BN_CHAT_FALCON3 : BN_CHAT_UNKNOWN; /* else GLM-Edge */
    if (strstr(tmpl, "<start_of_turn>")) return BN_CHAT_GEMMA;
    return BN_CHAT_UNKNOWN;
}

const char *bn_chat_template_name(bn_chat_template t) {
    switch (t) {
    case BN_CHAT_PLAIN: return "plain";
    case BN_CHAT_LLAMA3: return "llama3";
    case BN_CHAT_BITNET: return "bitnet";
    case BN_CHAT_CHATML: return "chatml";
    case BN_CHAT_GEMMA: return "gemma";
    case BN_CHAT_FALCON3: return "falcon3";
    default: return "unknown";
    }
}

/* Output that counts what it could not store, like snprintf. */
typedef struct {
    char *buf;
    uint8_t *plain; /* or NULL: 1 for each byte that comes from a message */
    size_t cap, len;
    int in_message; /* put() is writing a message's content or role */
} out_buf;

static void put(out_buf *o, const char *s, size_t n) {
    if (o->len < o->cap) {
        memcpy(o->buf + o->len, s, BN_MIN(n, o->cap - o->len));
        if (o->plain) memset(o->plain + o->len, o->in_message, BN_MIN(n, o->cap - o->len));
    }
    o->len += n;
}

static void puts_(out_buf *o, const char *s) { put(o, s, strlen(s)); }

/* Content without leading / trailing whitespace (Jinja's trim on ASCII, as
 * llama.cpp's trim()). */
static void put_trimmed(out_buf *o, const char *s) {
    size_t a = 0, b = s ? strlen(s) : 0;
    while (a < b && strchr(" \t\n\v\f\r", s[a])) a++;
    while (b > a && strchr(" \t\n\v\f\r", s[b - 1])) b--;
    o->in_message = 1;
    put(o, s + a, b - a);
    o->in_message = 0;
}

/* A role as the template spells it: from the caller, so text, not markup. */
static void put_role(out_buf *o, const char *role) {
    o->in_message = 1;
    put(o, role, strlen(role));
    o->in_message = 0;
}

/* Content as it is (ChatML and Falcon 3 do not trim). */
static void put_content(out_buf *o, const char *s) {
    o->in_message = 1;
    puts_(o, s ? s : "");
    o->in_message = 0;
}

/* "system" -> "System": Jinja's capitalize (first letter up, the rest down). */
static void put_capitalized(out_buf *o, const char *role) {
    o->in_message = 1;
    for (size_t i = 0; role[i]; i++) {
        char c = role[i];
        if (i == 0 && c >= 'a' && c <= 'z') c = (char)(c - 32);
        else if (i > 0 && c >= 'A' && c <= 'Z') c = (char)(c + 32);
        put(o, &c, 1);
    }
    o->in_message = 0;
}

size_t bn_chat_render(bn_chat_template t, const bitnet_chat_message *msgs, size_t n, int add_assistant, char *buf,
                      size_t cap) {
    return bn_chat_render_ex(t, msgs, n, add_assistant, buf, NULL, cap);
}

size_t bn_chat_render_ex(bn_chat_template t, const bitnet_chat_message *msgs, size_t n, int add_assistant, char *buf,
                         uint8_t *plain, size_t cap) {
    out_buf o = {buf, plain, cap ? cap - 1 : 0, 0, 0};
    const char *gemma_system = NULL; /* Gemma has no system turn: it opens the next user turn */
    for (size_t i = 0; i < n; i++) {
        const char *role = msgs[i].role ? msgs[i].role : "user";
        switch (t) {
        case BN_CHAT_CHATML:
            puts_(&o, "<|im_start|>");
            put_role(&o, role);
            puts_(&o, "\n");
            put_content(&o, msgs[i].content);
            puts_(&o, "<|im_end|>\n");
            break;
        case BN_CHAT_GEMMA: {
            if (!strcmp(role, "system")) {
                gemma_system = msgs[i].content;
                break;
            }
            const int model = !strcmp(role, "assistant");
            puts_(&o, "<start_of_turn>");
            if (model) puts_(&o, "model");
            else put_role(&o, role);
            puts_(&o, "\n");
            if (gemma_system && !model) {
                put_trimmed(&o, gemma_system);
                puts_(&o, "\n\n");
                gemma_system = NULL;
            }
            put_trimmed(&o, msgs[i].content);
            puts_(&o, "<end_of_turn>\n");
            break;
        }
        case BN_CHAT_FALCON3:
            puts_(&o, "<|");
            put_role(&o, role);
            puts_(&o, "|>\n");
            put_content(&o, msgs[i].content);
            puts_(&o, "\n");
            break;
        case BN_CHAT_LLAMA3:
            puts_(&o, "<|start_header_id|>");
            put_role(&o, role);
            puts_(&o, "<|end_header_id|>\n\n");
            put_trimmed(&o, msgs[i].content);
            puts_(&o, "<|eot_id|>");
            break;
        case BN_CHAT_BITNET:
            put_capitalized(&o, role);
            puts_(&o, ": ");
            put_trimmed(&o, msgs[i].content);
            puts_(&o, "<|eot_id|>");
            break;
        default:
            puts_(&o, !strcmp(role, "system") ? "System: " : !strcmp(role, "assistant") ? "Assistant: " : "User: ");
            put_trimmed(&o, msgs[i].content);
            puts_(&o, "\n");
            break;
        }
    }
    static const char *const generation_prompt[] = {
        [BN_CHAT_PLAIN] = "Assistant:", [BN_CHAT_LLAMA3] = "<|start_header_id|>assistant<|end_header_id|>\n\n",
        [BN_CHAT_BITNET] = "Assistant: ", [BN_CHAT_CHATML] = "<|im_start|>assistant\n",
        [BN_CHAT_GEMMA] = "<start_of_turn>model\n", [BN_CHAT_FALCON3] = "<|assistant|>\n"};
    if (add_assistant) puts_(&o, generation_prompt[t >= BN_CHAT_PLAIN && t <= BN_CHAT_FALCON3 ? t : BN_CHAT_PLAIN]);
    if (cap) buf[BN_MIN(o.len, cap - 1)] = 0;
    return o.len;
}

int bitnet_chat_apply_template(const char *tmpl, const bitnet_chat_message *msgs, size_t n_msgs, int add_assistant,
                               char *buf, int len) {
    return bitnet_chat_apply_template_ex(tmpl, msgs, n_msgs, add_assistant, buf, NULL, len);
}

int bitnet_chat_apply_template_ex(const char *tmpl, const bitnet_chat_message *msgs, size_t n_msgs, int add_assistant,
                                  char *buf, unsigned char *plain, int len) {
    if ((!msgs && n_msgs) || (!buf && len > 0) || len < 0) return bn_error(BITNET_ERR_ARG, "chat template: bad argument");
    bn_chat_template t = bn_chat_detect(tmpl);
    if (t == BN_CHAT_UNKNOWN)
        return bn_error(BITNET_ERR_UNSUPPORTED, "chat template not recognised (known: Llama-3, BitNet-b1.58-2B-4T, "
                        "ChatML, Gemma, Falcon 3, or the names llama3, bitnet, chatml, gemma, falcon3, plain)");
    size_t need = bn_chat_render_ex(t, msgs, n_msgs, add_assistant, buf, plain, (size_t)len);
    if (need > INT32_MAX) return bn_error(BITNET_ERR_ARG, "chat template: conversation too long");
    return (int)need;
}

const char *bitnet_chat_template_name(const char *tmpl) {
    const bn_chat_template t = bn_chat_detect(tmpl);
    return t == BN_CHAT_UNKNOWN ? NULL : bn_chat_template_name(t);
}

const char *bitnet_chat_turn_end(const char *tmpl) {
    switch (bn_chat_detect(tmpl)) {
    case BN_CHAT_LLAMA3:
    case BN_CHAT_BITNET: return "<|eot_id|>";
    case BN_CHAT_CHATML: return "<|im_end|>";
    case BN_CHAT_GEMMA: return "<end_of_turn>";
    case BN_CHAT_FALCON3:
    case BN_CHAT_PLAIN: return "\n";
    default: return NULL;
    }
}
