/*
 * chat.h - chat templates: turning a conversation into the text a chat model
 * was trained on. Like llama.cpp's llm_chat_apply_template this is not a
 * Jinja engine: a template text from GGUF (tokenizer.chat_template) is
 * recognised by its distinctive parts and rendered by hand-written code.
 *
 *   llama3  Meta Llama-3 Instruct:
 *           <|start_header_id|>ROLE<|end_header_id|>\n\nCONTENT<|eot_id|>
 *           generation prompt: <|start_header_id|>assistant<|end_header_id|>\n\n
 *   bitnet  microsoft/bitnet-b1.58-2B-4T:  Role: CONTENT<|eot_id|>
 *           (role capitalised: "System", "User", "Assistant")
 *           generation prompt: "Assistant: "
 *   plain   fallback for models without a recognised template:
 *           "System: ..."/"User: ..."/"Assistant: ..." lines, prompt "Assistant:"
 *
 * CONTENT is trimmed of leading and trailing whitespace, as the templates'
 * `| trim` does. The BOS token that both published templates start with is
 * not part of the text: it is added as a token by the tokenizer (add_bos).
 */
#ifndef BN_CHAT_H
#define BN_CHAT_H

#include <stddef.h>
#include <stdint.h>

#include "bitnet.h"

typedef enum {
    BN_CHAT_UNKNOWN = -1,
    BN_CHAT_PLAIN = 0,
    BN_CHAT_LLAMA3 = 1,
    BN_CHAT_BITNET = 2,
    BN_CHAT_CHATML = 3,  /* <|im_start|>role\ncontent<|im_end|>\n: Qwen2/Qwen3, Ternary-Bonsai, SmolLM */
    BN_CHAT_GEMMA = 4,   /* <start_of_turn>user\n...<end_of_turn>\n, the system prompt in the first user turn */
    BN_CHAT_FALCON3 = 5  /* <|user|>\ncontent\n ... <|assistant|>\n */
} bn_chat_template;

/* The chat_template of microsoft/bitnet-b1.58-2B-4T (its tokenizer_config.json),
 * which build/convert --synthetic --vocab writes into Llama-3-vocabulary models. */
extern const char bn_chat_template_bitnet_2b4t[];

/* Recognises a template text or name ("llama3", "bitnet", "chatml", "gemma",
 * "falcon3", "plain") as llama.cpp's llm_chat_detect_template does; NULL,
 * empty or unrecognised gives BN_CHAT_UNKNOWN. */
bn_chat_template bn_chat_detect(const char *tmpl);
const char *bn_chat_template_name(bn_chat_template t);

/* Renders msgs[0..n) (+ the assistant's generation prompt when
 * add_assistant) into buf: at most cap-1 bytes plus NUL when cap > 0.
 * Returns the full length. Other roles than system/user/assistant are
 * printed as given by llama3 (capitalised by bitnet); plain treats them as
 * user turns. */
size_t bn_chat_render(bn_chat_template t, const bitnet_chat_message *msgs, size_t n, int add_assistant, char *buf,
                      size_t cap);
/* The same; plain (cap bytes, or NULL) gets 1 for each byte of buf that comes
 * from a message (content, role), 0 for the template's markup. */
size_t bn_chat_render_ex(bn_chat_template t, const bitnet_chat_message *msgs, size_t n, int add_assistant, char *buf,
                         uint8_t *plain, size_t cap);

#endif
