/* test_chat.c - chat templates: detection from the published template texts
 * and the exact text of a two-turn conversation in each. */
#include "tokenizer/chat.h"
#include "test.h"

/* meta-llama/Meta-Llama-3-8B-Instruct tokenizer_config.json "chat_template" */
static const char llama3_template[] =
    "{% set loop_messages = messages %}{% for message in loop_messages %}{% set content = '<|start_header_id|>' + "
    "message['role'] + '<|end_header_id|>\n\n'+ message['content'] | trim + '<|eot_id|>' %}{% if loop.index0 == 0 %}"
    "{% set content = bos_token + content %}{% endif %}{{ content }}{% endfor %}{% if add_generation_prompt %}"
    "{{ '<|start_header_id|>assistant<|end_header_id|>\n\n' }}{% endif %}";

static const char chatml_template[] =
    "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + "
    "'\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}";

/* google/gemma-2-2b-it (Gemma 3 the same turns) */
static const char gemma_template[] =
    "{{ bos_token }}{% if messages[0]['role'] == 'system' %}{{ raise_exception('System role not supported') }}{% endif %}"
    "{% for message in messages %}{% if (message['role'] == 'assistant') %}{% set role = 'model' %}{% else %}"
    "{% set role = message['role'] %}{% endif %}{{ '<start_of_turn>' + role + '\n' + message['content'] | trim + "
    "'<end_of_turn>\n' }}{% endfor %}{% if add_generation_prompt %}{{'<start_of_turn>model\n'}}{% endif %}";

/* a Falcon 3 style template, as llama.cpp's detection sees it */
static const char falcon3_template[] =
    "{% for message in messages %}{% if message['role'] == 'user' %}{{ '<|user|>\n' + message['content'] + '\n' }}"
    "{% elif message['role'] == 'assistant' %}{{ '<|assistant|>\n' + message['content'] + '</s>\n' }}{% endif %}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<|assistant|>\n' }}{% endif %}";

static const bitnet_chat_message conv[] = {
    {"system", "You are a helpful assistant."},
    {"user", "Hello!"},
    {"assistant", " Hi, how can I help?\n"}, /* the templates trim content */
    {"user", "What is 1+1?"},
};

static char *render(bn_chat_template t, size_t n, int add) {
    size_t len = bn_chat_render(t, conv, n, add, NULL, 0);
    char *buf = malloc(len + 1);
    CHECK_EQ_INT(bn_chat_render(t, conv, n, add, buf, len + 1), len);
    return buf;
}

TEST(chat_detect_templates) {
    CHECK_EQ_INT(bn_chat_detect(llama3_template), BN_CHAT_LLAMA3);
    CHECK_EQ_INT(bn_chat_detect(bn_chat_template_bitnet_2b4t), BN_CHAT_BITNET);
    CHECK_EQ_INT(bn_chat_detect(chatml_template), BN_CHAT_CHATML);
    CHECK_EQ_INT(bn_chat_detect(gemma_template), BN_CHAT_GEMMA);
    CHECK_EQ_INT(bn_chat_detect(falcon3_template), BN_CHAT_FALCON3);
    CHECK_EQ_INT(bn_chat_detect("<|im_start|>{{ m }}<|im_sep|>"), BN_CHAT_UNKNOWN); /* Phi-4: not ChatML */
    CHECK_EQ_INT(bn_chat_detect("<|user|>{{ m }}<|assistant|>"), BN_CHAT_UNKNOWN); /* GLM-Edge: no </s> */
    CHECK_EQ_INT(bn_chat_detect("{{ '[INST] ' + m + ' [/INST]' }}"), BN_CHAT_UNKNOWN);
    CHECK_EQ_INT(bn_chat_detect("chatml"), BN_CHAT_CHATML);
    CHECK_EQ_INT(bn_chat_detect("gemma"), BN_CHAT_GEMMA);
    CHECK_EQ_INT(bn_chat_detect("falcon3"), BN_CHAT_FALCON3);
    CHECK_EQ_INT(bn_chat_detect(NULL), BN_CHAT_UNKNOWN);
    CHECK_EQ_INT(bn_chat_detect(""), BN_CHAT_UNKNOWN);
    CHECK_EQ_INT(bn_chat_detect("llama3"), BN_CHAT_LLAMA3);
    CHECK_EQ_INT(bn_chat_detect("bitnet"), BN_CHAT_BITNET);
    CHECK_EQ_INT(bn_chat_detect("plain"), BN_CHAT_PLAIN);
    CHECK_STR(bn_chat_template_name(BN_CHAT_BITNET), "bitnet");
}

/* Expected texts: the published Jinja templates evaluated by hand on `conv`
 * (without the leading bos_token, which the tokenizer adds as a token). */
TEST(chat_llama3_two_turns) {
    char *s = render(BN_CHAT_LLAMA3, 4, 1);
    CHECK_STR(s, "<|start_header_id|>system<|end_header_id|>\n\nYou are a helpful assistant.<|eot_id|>"
                 "<|start_header_id|>user<|end_header_id|>\n\nHello!<|eot_id|>"
                 "<|start_header_id|>assistant<|end_header_id|>\n\nHi, how can I help?<|eot_id|>"
                 "<|start_header_id|>user<|end_header_id|>\n\nWhat is 1+1?<|eot_id|>"
                 "<|start_header_id|>assistant<|end_header_id|>\n\n");
    free(s);
}

TEST(chat_bitnet_two_turns) {
    char *s = render(BN_CHAT_BITNET, 4, 1);
    CHECK_STR(s, "System: You are a helpful assistant.<|eot_id|>User: Hello!<|eot_id|>"
                 "Assistant: Hi, how can I help?<|eot_id|>User: What is 1+1?<|eot_id|>Assistant: ");
    free(s);
}

TEST(chat_plain_two_turns) {
    char *s = render(BN_CHAT_PLAIN, 4, 1);
    CHECK_STR(s, "System: You are a helpful assistant.\nUser: Hello!\nAssistant: Hi, how can I help?\n"
                 "User: What is 1+1?\nAssistant:");
    free(s);
}

/* As llama.cpp's llm_chat_apply_template renders them: ChatML and Falcon 3
 * keep the content as it is; Gemma trims it, calls the assistant "model" and
 * opens the first user turn with the system prompt. */
TEST(chat_chatml_gemma_falcon3_two_turns) {
    char *s = render(BN_CHAT_CHATML, 4, 1);
    CHECK_STR(s, "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\nHello!<|im_end|>\n"
                 "<|im_start|>assistant\n Hi, how can I help?\n<|im_end|>\n<|im_start|>user\nWhat is 1+1?<|im_end|>\n"
                 "<|im_start|>assistant\n");
    free(s);
    s = render(BN_CHAT_GEMMA, 4, 1);
    CHECK_STR(s, "<start_of_turn>user\nYou are a helpful assistant.\n\nHello!<end_of_turn>\n"
                 "<start_of_turn>model\nHi, how can I help?<end_of_turn>\n"
                 "<start_of_turn>user\nWhat is 1+1?<end_of_turn>\n<start_of_turn>model\n");
    free(s);
    s = render(BN_CHAT_FALCON3, 4, 1);
    CHECK_STR(s, "<|system|>\nYou are a helpful assistant.\n<|user|>\nHello!\n<|assistant|>\n Hi, how can I help?\n\n"
                 "<|user|>\nWhat is 1+1?\n<|assistant|>\n");
    free(s);
    CHECK_STR(bitnet_chat_turn_end("chatml"), "<|im_end|>");
    CHECK_STR(bitnet_chat_turn_end(gemma_template), "<end_of_turn>");
    CHECK_STR(bitnet_chat_template_name(falcon3_template), "falcon3");
}

/* infer --chat evaluates only the new text of a turn: the rendering of the
 * earlier turns (without the generation prompt) must be a prefix of the next. */
TEST(chat_renderings_are_prefixes) {
    const bn_chat_template ts[] = {BN_CHAT_PLAIN,  BN_CHAT_LLAMA3, BN_CHAT_BITNET,
                                   BN_CHAT_CHATML, BN_CHAT_GEMMA,  BN_CHAT_FALCON3};
    for (int k = 0; k < 6; k++)
        for (size_t n = 1; n <= 4; n++) {
            char *a = render(ts[k], n - 1, 0), *b = render(ts[k], n, 1);
            CHECK_MSG(strncmp(a, b, strlen(a)) == 0, "%s: %zu messages", bn_chat_template_name(ts[k]), n);
            free(a);
            free(b);
        }
}

TEST(chat_apply_template_api) {
    char buf[64];
    /* like snprintf: the full length, the text cut to the buffer */
    int n = bitnet_chat_apply_template("bitnet", conv + 1, 1, 1, buf, sizeof buf);
    CHECK_EQ_INT(n, (int)strlen("User: Hello!<|eot_id|>Assistant: "));
    CHECK_STR(buf, "User: Hello!<|eot_id|>Assistant: ");
    n = bitnet_chat_apply_template(llama3_template, conv, 4, 1, buf, 10);
    CHECK(n > 100 && strlen(buf) == 9 && !strncmp(buf, "<|start_h", 9));
    CHECK_EQ_INT(bitnet_chat_apply_template("<|im_start|>x<|im_sep|>", conv, 4, 1, buf, sizeof buf), BITNET_ERR_UNSUPPORTED);
    CHECK(strstr(bitnet_last_error(), "not recognised") != NULL);
    CHECK_EQ_INT(bitnet_chat_apply_template("bitnet", NULL, 1, 1, buf, sizeof buf), BITNET_ERR_ARG);
    CHECK_EQ_INT(bitnet_chat_apply_template("plain", conv, 0, 1, buf, sizeof buf), 10);
    CHECK_STR(buf, "Assistant:");
    /* whitespace-only content trims to nothing; roles are capitalised by bitnet */
    bitnet_chat_message odd[] = {{"tool", " \t\n"}};
    CHECK_EQ_INT(bitnet_chat_apply_template("bitnet", odd, 1, 0, buf, sizeof buf), 16);
    CHECK_STR(buf, "Tool: <|eot_id|>");
}
