/* test_server.c - build/server: request parsing, stop strings and response JSON
 * (server/server_api.c) as unit tests, then the real server on a loopback port driven
 * by curl: every endpoint, streaming, the error cases, concurrency, a client that
 * disconnects, and SIGTERM with streams in flight. Uses the embedded model. */
#include <errno.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "formats/json.h"
#include "server.h"
#include "test.h"

/* ---- unit tests ------------------------------------------------------------------ */

static int parse_req(const char *body, int chat, bn_gen_request *r, char *err) {
    return bn_server_parse_request(body, strlen(body), chat, r, err, 256);
}

/* Reliability round 2, item 10: a request with a key twice (two readers could
 * disagree about it) or an unknown chat role (it would go verbatim into the
 * prompt) is a 400 with the reason. */
TEST(reliability_10_server_rejects_duplicate_keys_and_unknown_roles) {
    bn_gen_request r;
    char err[256];
    CHECK_EQ_INT(parse_req("{\"prompt\":\"a\",\"max_tokens\":1,\"max_tokens\":900}", 0, &r, err), -1);
    CHECK_MSG(strstr(err, "duplicate key \"max_tokens\""), "%s", err);
    CHECK_EQ_INT(parse_req("{\"messages\":[{\"role\":\"system\\nuser\",\"content\":\"x\"}]}", 1, &r, err), -1);
    CHECK_MSG(strstr(err, "messages[0].role must be one of system, developer, user, assistant, tool"), "%s", err);
    CHECK_EQ_INT(parse_req("{\"messages\":[{\"role\":\"tool\",\"content\":\"x\"}]}", 1, &r, err), 0);
    bn_gen_request_free(&r);
}

TEST(server_parse_request_fields) {
    bn_gen_request r;
    char err[256];
    CHECK_EQ_INT(parse_req("{\"prompt\":\"Hi\",\"max_tokens\":7,\"temperature\":0.5,\"top_p\":0.9,\"top_k\":3,"
                           "\"seed\":11,\"stop\":[\"a\",\"bc\"],\"stream\":true,\"stream_options\":{\"include_usage\":true},"
                           "\"n\":1,\"logit_bias\":{},\"user\":\"x\",\"ignore_eos\":true}", 0, &r, err), 0);
    CHECK_STR(r.prompt, "Hi");
    CHECK_EQ_INT(r.max_tokens, 7);
    CHECK_NEAR(r.sp.temp, 0.5, 1e-6);
    CHECK_NEAR(r.sp.top_p, 0.9, 1e-6);
    CHECK_EQ_INT(r.sp.top_k, 3);
    CHECK_EQ_INT(r.sp.seed, 11);
    CHECK_EQ_INT(r.has_seed, 1);
    CHECK_EQ_INT(r.n_stop, 2);
    CHECK(r.stop_len[1] == 2 && !memcmp(r.stop[1], "bc", 2));
    CHECK(r.stream && r.include_usage && r.ignore_eos);
    bn_gen_request_free(&r);
    /* defaults: OpenAI's max_tokens (16 for completions, unlimited for chat), library sampler */
    CHECK_EQ_INT(parse_req("{\"prompt\":[\"one\"],\"stop\":\"\\n\"}", 0, &r, err), 0);
    CHECK_EQ_INT(r.max_tokens, 16);
    CHECK_EQ_INT(r.has_seed, 0);
    CHECK_EQ_INT(r.n_stop, 1);
    CHECK_NEAR(r.sp.temp, bitnet_sampler_default_params().temp, 1e-6);
    bn_gen_request_free(&r);
    CHECK_EQ_INT(parse_req("{\"messages\":[{\"role\":\"system\",\"content\":\"Be brief.\"},{\"role\":\"user\","
                           "\"content\":[{\"type\":\"text\",\"text\":\"Hel\"},{\"type\":\"text\",\"text\":\"lo\"}]}]}",
                           1, &r, err), 0);
    CHECK_EQ_INT(r.max_tokens, -1);
    /* the embedded model has no chat template: the plain format */
    bitnet_model *m = NULL;
    CHECK(bitnet_model_load_default(NULL, &m) == BITNET_OK);
    unsigned char *plain = NULL;
    char *t = m ? bn_server_chat_prompt(m, r.messages, NULL, &plain) : NULL;
    CHECK_STR(t, "System: Be brief.\nUser: Hello\nAssistant:");
    /* the messages' bytes are marked: "Be brief." and "Hello" */
    CHECK(plain && !plain[0] && plain[8] && plain[16] && !plain[17] && plain[24] && plain[28] && !plain[29]);
    free(t);
    free(plain);
    bitnet_model_free(m);
    bn_gen_request_free(&r);
}

TEST(server_parse_request_errors) {
    static const struct {
        int chat;
        const char *body, *want; /* a word the one-line message must contain */
    } cases[] = {
        {0, "", "not valid JSON"},
        {0, "{\"prompt\":\"x\",", "not valid JSON"},
        {0, "[1]", "must be a JSON object"},
        {0, "{}", "'prompt' is required"},
        {0, "{\"prompt\":5}", "'prompt' must be a string"},
        {0, "{\"prompt\":[1,2]}", "'prompt' must be a string"},
        {0, "{\"prompt\":[\"a\",\"b\"]}", "'prompt' must be a string"},
        {0, "{\"prompt\":\"a\\u0000b\"}", "NUL"},
        {0, "{\"prompt\":\"x\",\"max_tokens\":\"ten\"}", "'max_tokens' must be an integer, got string"},
        {0, "{\"prompt\":\"x\",\"max_tokens\":1.5}", "'max_tokens' must be an integer"},
        {0, "{\"prompt\":\"x\",\"max_tokens\":-1}", "'max_tokens' must be in"},
        {0, "{\"prompt\":\"x\",\"temperature\":\"hot\"}", "'temperature' must be a number"},
        {0, "{\"prompt\":\"x\",\"temperature\":-1}", "'temperature' must be in"},
        {0, "{\"prompt\":\"x\",\"top_p\":1.5}", "'top_p' must be in"},
        {0, "{\"prompt\":\"x\",\"top_k\":true}", "'top_k' must be an integer"},
        {0, "{\"prompt\":\"x\",\"seed\":0.5}", "'seed' must be an integer"},
        {0, "{\"prompt\":\"x\",\"stream\":1}", "'stream' must be a boolean"},
        {0, "{\"prompt\":\"x\",\"stream_options\":1}", "'stream_options' must be an object"},
        {0, "{\"prompt\":\"x\",\"n\":9}", "'n' must be in [1, 8]"},
        {2, "{\"prompt\":\"x\",\"n\":2}", "'n' is for the OpenAI endpoints"},
        {0, "{\"prompt\":\"x\",\"logit_bias\":{\"abc\":1}}", "'logit_bias' entry 0: the key must be a token id"},
        {0, "{\"prompt\":\"x\",\"logit_bias\":{\"5\":101}}", "the bias must be a number in [-100, 100]"},
        {2, "{\"prompt\":\"x\",\"logit_bias\":[[5]]}", "'logit_bias' entry 0"},
        {2, "{\"prompt\":\"x\",\"logit_bias\":5}", "'logit_bias' must be an object"},
        {0, "{\"prompt\":\"x\",\"stop\":5}", "'stop' must be"},
        {0, "{\"prompt\":\"x\",\"stop\":[\"a\",5]}", "'stop' must be"},
        {0, "{\"prompt\":\"x\",\"stop\":[\"a\",\"b\",\"c\",\"d\",\"e\"]}", "at most 4"},
        {1, "{\"prompt\":\"x\"}", "'messages' is required"},
        {1, "{\"messages\":[]}", "non-empty array"},
        {1, "{\"messages\":[5]}", "messages[0] must be an object"},
        {1, "{\"messages\":[{\"content\":\"x\"}]}", "messages[0].role"},
        {1, "{\"messages\":[{\"role\":\"user\",\"content\":5}]}", "messages[0].content"},
        {1, "{\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"image_url\"}]}]}", "content[0]"},
        /* what the server cannot honour yet is refused, never ignored */
        {0, "{\"prompt\":\"x\",\"logprobs\":6}", "'logprobs' must be in [0, 5]"},
        {0, "{\"prompt\":\"x\",\"logprobs\":true}", "'logprobs' must be an integer"},
        {1, "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"logprobs\":1}", "'logprobs' must be a boolean"},
        {1, "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"top_logprobs\":3}", "needs 'logprobs': true"},
        {1, "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"logprobs\":true,\"top_logprobs\":21}",
         "'top_logprobs' must be in"},
        {1, "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"response_format\":{\"type\":\"json_schema\"}}",
         "'response_format' json_schema needs 'json_schema': {\"schema\": {...}}"},
        {1, "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"response_format\":{\"type\":\"json_schema\","
            "\"json_schema\":{\"name\":\"r\",\"schema\":{\"type\":\"object\",\"properties\":{\"a\":{\"type\":\"string\","
            "\"pattern\":\"^x\"}}}}}}",
         "'response_format': JSON Schema: 'pattern': must be anchored: \"^...$\" (as llama.cpp requires) at $.properties.a"},
        {1, "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"response_format\":{\"type\":\"xml\"}}",
         "type \"xml\" is not supported"},
        {1, "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"tools\":[{\"type\":\"function\"}]}",
         "'tools'[0] must be {\"type\": \"function\", \"function\": {...}}"},
        {1, "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"a b\"}}]}",
         "'tools'[0].function.name must be 1 to 64 of"},
        {1, "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"f\"}},"
            "{\"type\":\"function\",\"function\":{\"name\":\"f\"}}]}", "'tools' names 'f' twice"},
        {1, "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"f\"}}],"
            "\"tool_choice\":{\"type\":\"function\",\"function\":{\"name\":\"g\"}}}", "'tool_choice' names 'g', which is not in 'tools'"},
        {1, "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"f\"}}],"
            "\"tool_choice\":\"always\"}", "'tool_choice' must be \"none\", \"auto\", \"required\" or a function"},
        {1, "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"tool_choice\":\"required\"}", "'tool_choice' needs 'tools'"},
        {1, "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"f\","
            "\"parameters\":{\"type\":\"object\",\"properties\":{\"d\":{\"type\":\"string\",\"format\":\"email\"}}}}}]}",
         "unsupported JSON Schema format 'email'"},
        {1, "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"f\"}}],"
            "\"response_format\":{\"type\":\"json_object\"}}", "'tools' cannot be combined with 'response_format'"},
        {0, "{\"prompt\":\"x\",\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"f\"}}]}", "'tools' are for /v1/chat/completions"},
        {2, "{\"prompt\":\"x\",\"grammar\":\"root ::= foo\"}", "'grammar': grammar line 1: rule 'foo' is used but never defined"},
        {2, "{\"prompt\":\"x\",\"grammar\":5}", "'grammar' must be a string (GBNF)"},
        {2, "{\"prompt\":\"x\",\"json_schema\":{\"type\":\"integer\",\"multipleOf\":2}}",
         "'json_schema': JSON Schema: unsupported JSON Schema keyword 'multipleOf' at $"},
        {2, "{\"prompt\":\"x\",\"grammar\":\"root ::= [a]\",\"json_schema\":{}}", "give one of 'grammar', 'json_schema'"},
        {2, "{\"prompt\":\"x\",\"n_probs\":21}", "'n_probs' must be in"},
        /* llama.cpp's /completion */
        {2, "{}", "'prompt' is required"},
        {2, "{\"prompt\":[1,-2]}", "'prompt'[1] must be a token id"},
        {2, "{\"prompt\":[1,2.5]}", "'prompt'[1] must be a token id"},
        {2, "{\"prompt\":{}}", "a string or an array of token ids"},
        {2, "{\"prompt\":\"x\",\"n_predict\":-2}", "'n_predict' must be in"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        bn_gen_request r;
        char err[256] = "";
        int rc = parse_req(cases[i].body, cases[i].chat, &r, err);
        CHECK_MSG(rc == -1 && strstr(err, cases[i].want), "case %zu (%s): rc %d, message '%s'", i, cases[i].body, rc, err);
        CHECK(!strchr(err, '\n'));
        CHECK(r.doc == NULL && r.prompt == NULL && r.prompt_ids == NULL && r.grammar == NULL && r.tools_system == NULL);
    }
    /* accepted: the neutral values of the refused fields; llama.cpp's fields */
    static const struct {
        int api;
        const char *body;
    } ok_cases[] = {
        {0, "{\"prompt\":\"x\",\"logprobs\":null,\"response_format\":{\"type\":\"text\"},\"tools\":[]}"},
        {1, "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"logprobs\":false}"},
        {1, "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"logprobs\":true,\"top_logprobs\":20}"},
        {0, "{\"prompt\":\"x\",\"logprobs\":5}"},
        {2, "{\"prompt\":\"x\",\"grammar\":\"\",\"n_probs\":0}"},
        {2, "{\"prompt\":\"x\",\"grammar\":\"root ::= [a-c]{3}\"}"},
        {2, "{\"prompt\":\"x\",\"json_schema\":{}}"},
        {1, "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"response_format\":{\"type\":\"json_schema\","
            "\"json_schema\":{\"schema\":{\"type\":\"boolean\"}}}}"},
        {1, "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"response_format\":{\"type\":\"json_object\","
            "\"schema\":{\"enum\":[1,2]}}}"},
    };
    for (size_t i = 0; i < sizeof ok_cases / sizeof ok_cases[0]; i++) {
        bn_gen_request r;
        char err[256] = "";
        CHECK_MSG(parse_req(ok_cases[i].body, ok_cases[i].api, &r, err) == 0, "ok case %zu: %s", i, err);
        bn_gen_request_free(&r);
    }
    bn_gen_request n;
    char e[256] = "";
    REQUIRE_MSG(parse_req("{\"prompt\":[1,2,3],\"n_predict\":7,\"cache_prompt\":false}", BN_API_NATIVE, &n, e) == 0, "%s", e);
    CHECK(n.native && n.n_prompt_ids == 3 && n.prompt_ids[2] == 3 && n.max_tokens == 7 && !n.cache_prompt);
    bn_gen_request_free(&n);
    REQUIRE(parse_req("{\"prompt\":\"x\"}", BN_API_NATIVE, &n, e) == 0);
    CHECK(n.max_tokens == -1 && n.cache_prompt && n.prompt_ids == NULL); /* llama.cpp's defaults */
    bn_gen_request_free(&n);
    char long_stop[400] = "{\"prompt\":\"x\",\"stop\":\"";
    memset(long_stop + strlen(long_stop), 'a', 300);
    strcpy(long_stop + strlen(long_stop), "\"}");
    bn_gen_request r;
    char err[256];
    CHECK_EQ_INT(parse_req(long_stop, 0, &r, err), -1);
}

/* Feeds pieces through a stop filter; returns the released text and whether it stopped. */
static int run_filter(const char *stops[], int n_stop, const char *pieces[], int n_pieces, char *out, int *stopped_at) {
    bn_gen_request r;
    memset(&r, 0, sizeof r);
    for (int k = 0; k < n_stop; k++) {
        r.stop_len[k] = strlen(stops[k]);
        memcpy(r.stop[k], stops[k], r.stop_len[k]);
    }
    r.n_stop = n_stop;
    bn_stop_filter f;
    bn_stop_filter_init(&f, &r);
    size_t n = 0;
    *stopped_at = -1;
    for (int i = 0; i < n_pieces; i++) {
        char buf[BN_STOP_MAX_LEN + 2 * BN_PIECE_MAX + 16];
        size_t m = 0;
        int stop = bn_stop_filter_push(&f, pieces[i], strlen(pieces[i]), buf, &m);
        memcpy(out + n, buf, m);
        n += m;
        if (stop) {
            *stopped_at = i;
            out[n] = 0;
            return (int)n;
        }
    }
    bn_stop_filter_flush(&f, out + n, &n);
    out[n] = 0;
    return (int)n;
}

TEST(server_stop_filter) {
    char out[1024];
    int at;
    const char *s1[] = {"END"};
    const char *p1[] = {"Hello E", "N", "D and more"}; /* stop split over three pieces */
    run_filter(s1, 1, p1, 3, out, &at);
    CHECK_STR(out, "Hello ");
    CHECK_EQ_INT(at, 2);
    const char *p2[] = {"Hello E", "nd", "!"}; /* a false start is released later */
    run_filter(s1, 1, p2, 3, out, &at);
    CHECK_STR(out, "Hello End!");
    CHECK_EQ_INT(at, -1);
    const char *s3[] = {"xyz", "b c"};
    const char *p3[] = {"a b", " c xyz"}; /* the earliest of two stops wins */
    run_filter(s3, 2, p3, 2, out, &at);
    CHECK_STR(out, "a ");
    const char *p4[] = {"abc"};
    run_filter(s3, 0, p4, 1, out, &at); /* no stops: everything, at once */
    CHECK_STR(out, "abc");
    /* an incomplete UTF-8 sequence is held back until it is complete */
    bn_gen_request r;
    memset(&r, 0, sizeof r);
    bn_stop_filter f;
    bn_stop_filter_init(&f, &r);
    char buf[1024];
    size_t m = 0;
    bn_stop_filter_push(&f, "a\xE2\x82", 3, buf, &m);
    CHECK_EQ_INT(m, 1);
    bn_stop_filter_push(&f, "\xAC!", 2, buf, &m);
    CHECK(m == 5 && !memcmp(buf, "a\xE2\x82\xAC!", 5));
    /* the text held back is released before each stop check, so held + piece never overflows */
    const char *s5[] = {"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaab"};
    const char *p5[] = {"aaaaaaaaaaaaaaaaaaaa", "aaaaaaaaaaaaaaaaaaaa", "aaaaaaaaaaaaaaaaaaaa", "aaaaaaaaaaaaaaaaaaab"};
    int n = run_filter(s5, 1, p5, 4, out, &at);
    CHECK_EQ_INT(at, 3);
    CHECK_EQ_INT(n, 39); /* 79 a's and a b: the stop (40 a's and b) starts at 39 */
}

TEST(server_response_json) {
    bn_resp_info ri = {.chat = 1, .id = "chatcmpl-1", .model = "m\"odel", .created = 1700000000, .prompt_tokens = 5,
                       .completion_tokens = 3, .cached_tokens = 2, .id_slot = 1, .prompt_ms = 6.0, .predicted_ms = 30.0};
    bn_buf b = {0};
    CHECK_EQ_INT(bn_server_json_result(&b, &ri, "hi \"there\"\n", 11, BN_FINISH_LENGTH), 0);
    bn_json *v = bn_json_parse(b.data, b.len, NULL, 0);
    CHECK(v != NULL);
    if (v) {
        const bn_json *ch = bn_json_get(v, "choices");
        CHECK_STR(bn_json_get(v, "object")->str, "chat.completion");
        CHECK_STR(bn_json_get(v, "model")->str, "m\"odel");
        CHECK_STR(bn_json_get(bn_json_get(&ch->items[0], "message"), "content")->str, "hi \"there\"\n");
        CHECK_STR(bn_json_get(&ch->items[0], "finish_reason")->str, "length");
        CHECK_EQ_INT(bn_json_get(bn_json_get(v, "usage"), "total_tokens")->number, 8);
        CHECK_EQ_INT(bn_json_get(bn_json_get(bn_json_get(v, "usage"), "prompt_tokens_details"), "cached_tokens")->number, 2);
        bn_json_free(v);
    }
    /* SSE chunks: "data: {json}\n\n", JSON that parses, invalid UTF-8 replaced */
    const bn_finish fs[] = {BN_FINISH_NONE, BN_FINISH_NONE, BN_FINISH_STOP};
    for (int chat = 0; chat < 2; chat++)
        for (int k = 0; k < 3; k++) {
            ri.chat = chat;
            b.len = 0;
            CHECK_EQ_INT(bn_server_sse_chunk(&b, &ri, k == 1 ? "x\xff" : "", k == 1 ? 2 : 0, k == 0, fs[k]), 0);
            CHECK(!strncmp(b.data, "data: ", 6) && b.len > 8 && !strcmp(b.data + b.len - 2, "\n\n"));
            v = bn_json_parse(b.data + 6, b.len - 8, NULL, 0);
            CHECK_MSG(v != NULL, "chunk does not parse: %s", b.data);
            bn_json_free(v);
        }
    /* llama.cpp's /completion answer */
    b.len = 0;
    CHECK_EQ_INT(bn_server_native_result(&b, &ri, "once", 4, BN_FINISH_LENGTH), 0);
    v = bn_json_parse(b.data, b.len, NULL, 0);
    CHECK_MSG(v != NULL, "%s", b.data);
    if (v) {
        CHECK_STR(bn_json_get(v, "content")->str, "once");
        CHECK(bn_json_get(v, "stop")->boolean);
        CHECK_STR(bn_json_get(v, "stop_type")->str, "limit");
        CHECK_EQ_INT(bn_json_get(v, "tokens_predicted")->number, 3);
        CHECK_EQ_INT(bn_json_get(v, "tokens_evaluated")->number, 5);
        CHECK_EQ_INT(bn_json_get(v, "tokens_cached")->number, 2);
        CHECK_EQ_INT(bn_json_get(v, "id_slot")->number, 1);
        const bn_json *t = bn_json_get(v, "timings");
        CHECK_EQ_INT(bn_json_get(t, "prompt_n")->number, 3); /* 5 prompt tokens, 2 from the cache */
        CHECK(fabs(bn_json_get(t, "predicted_per_second")->number - 100.0) < 1e-9);
        CHECK(bn_json_get(v, "generation_settings") != NULL);
        bn_json_free(v);
    }
    b.len = 0;
    CHECK_EQ_INT(bn_server_native_chunk(&b, &ri, "a\"b", 3), 0);
    CHECK(!strncmp(b.data, "data: ", 6) && !strcmp(b.data + b.len - 2, "\n\n"));
    v = bn_json_parse(b.data + 6, b.len - 8, NULL, 0);
    CHECK(v && !strcmp(bn_json_get(v, "content")->str, "a\"b") && !bn_json_get(v, "stop")->boolean);
    bn_json_free(v);
    b.len = 0;
    CHECK_EQ_INT(bn_server_json_error(&b, 503, "busy"), 0);
    v = bn_json_parse(b.data, b.len, NULL, 0);
    CHECK(v && !strcmp(bn_json_get(bn_json_get(v, "error"), "message")->str, "busy"));
    CHECK(v && bn_json_get(bn_json_get(v, "error"), "code")->number == 503);
    bn_json_free(v);
    bn_buf_free(&b);
}

/* ---- build/server on a loopback port, driven by curl -------------------------------- */

#ifndef BN_BUILD_DIR
#define BN_BUILD_DIR "build"
#endif
#define KEY "test-key"
#define AUTH "-H 'Authorization: Bearer " KEY "' "

static int g_port;

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static void sleep_ms(int ms) {
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static pid_t spawn_sh(const char *cmd) {
    pid_t pid = fork();
    if (pid == 0) {
        execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
        _exit(127);
    }
    return pid;
}

/* Waits up to timeout_s for pid to exit; returns its exit code, or -1 if it is still running. */
static int wait_exit(pid_t pid, double timeout_s) {
    double end = now_s() + timeout_s;
    int st;
    do {
        if (waitpid(pid, &st, WNOHANG) == pid) return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
        sleep_ms(10);
    } while (now_s() < end);
    return -1;
}

static char *slurp(const char *path) {
    char *s = bn_test_read_file(path, NULL);
    return s ? s : calloc(1, 1);
}

/* Waits until the file contains needle; returns 1 if it did within timeout_s. */
static int wait_for_text(const char *path, const char *needle, double timeout_s) {
    double end = now_s() + timeout_s;
    do {
        char *s = slurp(path);
        int found = strstr(s, needle) != NULL;
        free(s);
        if (found) return 1;
        sleep_ms(10);
    } while (now_s() < end);
    return 0;
}

/* Starts build/server with args (start_server) for the rest of the test, as srv with its log in logf. */
#define SERVER_UP(args)                                  \
    char logf[256];                                      \
    pid_t srv = start_server(args, logf, sizeof logf);       \
    REQUIRE_MSG(srv > 0, "server did not start")

/* Whether v is a JSON string; its text, or `none` when it is not one. */
static int is_str(const bn_json *v) { return v && v->type == BN_JSON_STRING; }
static const char *str_or(const bn_json *v, const char *none) { return is_str(v) ? v->str : none; }

/* curl with opts against path; returns the HTTP status (0: no response) and the body. */
static int curl(const char *opts, const char *path, char **body) {
    char cmd[2048];
    const char *out = bn_test_tmp(".out");
    snprintf(cmd, sizeof cmd, "curl -sS --max-time 60 -o '%s' -w '%%{http_code}' %s 'http://127.0.0.1:%d%s' 2>/dev/null", out,
             opts, g_port, path);
    FILE *p = popen(cmd, "r");
    int code = 0;
    if (p) {
        if (fscanf(p, "%d", &code) != 1) code = 0;
        pclose(p);
    }
    char *b = slurp(out);
    unlink(out);
    if (body) *body = b;
    else free(b);
    return code;
}

/* Writes json to a temporary file and returns curl options that POST it. */
static const char *post_opts(const char *json, const char *extra) {
    static char opts[1024];
    const char *path = bn_test_tmp(".json");
    FILE *f = fopen(path, "wb");
    if (f) {
        fputs(json, f);
        fclose(f);
    }
    snprintf(opts, sizeof opts, "%s-H 'Content-Type: application/json' --data-binary @'%s' %s", AUTH, path, extra ? extra : "");
    return opts;
}

static int post(const char *path, const char *json, char **body) { return curl(post_opts(json, NULL), path, body); }

/* Starts curl in the background, its output going to out; returns its pid. */
static pid_t post_background(const char *path, const char *json, const char *out) {
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "exec curl -sS -N --max-time 120 -o '%s' %s 'http://127.0.0.1:%d%s' 2>/dev/null", out,
             post_opts(json, NULL), g_port, path);
    return spawn_sh(cmd);
}

/* Text of choices[0] of a completion or chat completion response; "" if absent. */
static const char *choice_text(const bn_json *v, int chat, const char **finish) {
    const bn_json *ch = bn_json_get(v, "choices");
    if (!ch || ch->type != BN_JSON_ARRAY || ch->n == 0) return "";
    const bn_json *c0 = &ch->items[0], *fr = bn_json_get(c0, "finish_reason"), *t;
    if (finish && is_str(fr)) *finish = fr->str;
    if (chat) {
        const bn_json *m = bn_json_get(c0, "message");
        t = bn_json_get(m ? m : bn_json_get(c0, "delta"), "content");
    } else {
        t = bn_json_get(c0, "text");
    }
    return str_or(t, "");
}

typedef struct {
    char text[8192], finish[32], error[256];
    int events, done, role_first; /* done: ended with data: [DONE] and nothing after */
    long long completion_tokens;  /* from the usage chunk, or -1 */
} sse_result;

static void parse_sse(const char *body, int chat, sse_result *r) {
    memset(r, 0, sizeof *r);
    r->completion_tokens = -1;
    const char *p = body;
    while (*p) {
        const char *end = strstr(p, "\n\n");
        if (!end || strncmp(p, "data: ", 6) != 0) return; /* malformed: done stays 0 */
        if (r->done) { r->done = 0; return; } /* something after [DONE] */
        size_t n = (size_t)(end - p) - 6;
        if (n == 6 && !strncmp(p + 6, "[DONE]", 6)) {
            r->done = 1;
        } else {
            bn_json *v = bn_json_parse(p + 6, n, NULL, 0);
            if (!v) return;
            const char *fin = NULL;
            strncat(r->text, choice_text(v, chat, &fin), sizeof r->text - strlen(r->text) - 1);
            if (fin) snprintf(r->finish, sizeof r->finish, "%s", fin);
            const bn_json *e = bn_json_get(v, "error"), *u = bn_json_get(v, "usage");
            if (e) snprintf(r->error, sizeof r->error, "%s", bn_json_get(e, "message")->str);
            if (u) r->completion_tokens = (long long)bn_json_get(u, "completion_tokens")->number;
            if (r->events == 0 && chat) {
                const bn_json *ch = bn_json_get(v, "choices");
                const bn_json *d = ch && ch->n ? bn_json_get(&ch->items[0], "delta") : NULL;
                r->role_first = d && bn_json_get(d, "role") != NULL;
            }
            bn_json_free(v);
        }
        r->events++;
        p = end + 2;
    }
}

/* A greedy completion of prompt; returns its text (malloc'd) or NULL. */
static char *greedy(const char *prompt, int max_tokens, const char *extra_json, const char **finish_out) {
    char json[1024], *body;
    snprintf(json, sizeof json, "{\"prompt\":\"%s\",\"max_tokens\":%d,\"temperature\":0%s}", prompt, max_tokens,
             extra_json ? extra_json : "");
    int code = post("/v1/completions", json, &body);
    CHECK_MSG(code == 200, "completion: HTTP %d: %s", code, body);
    bn_json *v = bn_json_parse(body, strlen(body), NULL, 0);
    CHECK_MSG(v != NULL, "completion response is not JSON: %s", body);
    char *text = NULL;
    static char finish[32];
    if (v) {
        const char *fin = "";
        text = strdup(choice_text(v, 0, &fin));
        snprintf(finish, sizeof finish, "%s", fin);
        if (finish_out) *finish_out = finish;
        CHECK_STR(bn_json_get(v, "object")->str, "text_completion");
        const bn_json *u = bn_json_get(v, "usage");
        CHECK(u && bn_json_get(u, "completion_tokens")->number >= 1 && bn_json_get(u, "completion_tokens")->number <= max_tokens);
        bn_json_free(v);
    }
    free(body);
    return text;
}

static long long metric(const char *name) {
    char *body;
    if (curl(AUTH, "/metrics", &body) != 200) {
        free(body);
        return -1;
    }
    const char *p = strstr(body, name);
    long long v = -1;
    while (p && (p > body && p[-1] != '\n')) p = strstr(p + 1, name); /* a line that starts with name */
    if (p) v = atoll(p + strlen(name) + 1);
    free(body);
    return v;
}

/* Connects to the server; returns the socket or -1. */
static int connect_raw(void) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {0};
    a.sin_family = AF_INET;
    a.sin_port = htons((uint16_t)g_port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd >= 0 && connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
        close(fd);
        fd = -1;
    }
    struct timeval tv = {10, 0};
    if (fd >= 0) setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    return fd;
}

/* Reads until the peer closes (or 10 s pass); returns the bytes (malloc'd). */
static char *read_all(int fd) {
    size_t cap = 1 << 16, n = 0;
    char *b = malloc(cap);
    ssize_t r;
    while (n < cap - 1 && (r = recv(fd, b + n, cap - 1 - n, 0)) > 0) n += (size_t)r;
    b[n] = 0;
    return b;
}

static int count_substr(const char *s, const char *needle) {
    int n = 0;
    for (const char *p = s; (p = strstr(p, needle)); p++) n++;
    return n;
}

static const char *PROMPT = "Once upon a time";

/* Greedy text equals build/infer's; streaming gives the same text; chat works. */
static void check_generation(char **greedy_text) {
    const char *finish = NULL;
    char *t = greedy(PROMPT, 40, NULL, &finish);
    *greedy_text = t;
    if (!t) return;
    CHECK(strlen(t) > 10);
    CHECK(!strcmp(finish, "length") || !strcmp(finish, "stop"));
    size_t len;
    int st;
    char *ref = bn_test_run_tool("infer -p 'Once upon a time' --steps 256 --temp 0 2>/dev/null", &len, &st);
    CHECK(ref && st == 0 && !strncmp(ref, PROMPT, strlen(PROMPT)));
    CHECK_MSG(ref && !strncmp(ref + strlen(PROMPT), t, strlen(t)), "server '%s' vs infer '%s'", t, ref ? ref : "");
    free(ref);

    char *body;
    sse_result r;
    char json[512];
    snprintf(json, sizeof json, "{\"prompt\":\"%s\",\"max_tokens\":40,\"temperature\":0,\"stream\":true,"
             "\"stream_options\":{\"include_usage\":true}}", PROMPT);
    CHECK_EQ_INT(post("/v1/completions", json, &body), 200);
    parse_sse(body, 0, &r);
    CHECK_MSG(r.done && r.events >= 3, "stream did not end with data: [DONE]: %s", body);
    CHECK_STR(r.text, t);
    CHECK_STR(r.finish, finish);
    CHECK(r.completion_tokens >= 1 && r.completion_tokens <= 40);
    free(body);

    const char *chat = "{\"messages\":[{\"role\":\"user\",\"content\":\"Tell me a story.\"}],\"max_tokens\":12,\"temperature\":0}";
    CHECK_EQ_INT(post("/v1/chat/completions", chat, &body), 200);
    bn_json *v = bn_json_parse(body, strlen(body), NULL, 0);
    char chat_text[4096] = "";
    CHECK_MSG(v != NULL, "chat response is not JSON: %s", body);
    if (v) {
        CHECK_STR(bn_json_get(v, "object")->str, "chat.completion");
        const bn_json *m = bn_json_get(&bn_json_get(v, "choices")->items[0], "message");
        CHECK_STR(bn_json_get(m, "role")->str, "assistant");
        snprintf(chat_text, sizeof chat_text, "%s", choice_text(v, 1, NULL));
        bn_json_free(v);
    }
    free(body);
    char stream_chat[512];
    snprintf(stream_chat, sizeof stream_chat, "%.*s,\"stream\":true}", (int)strlen(chat) - 1, chat);
    CHECK_EQ_INT(post("/v1/chat/completions", stream_chat, &body), 200);
    parse_sse(body, 1, &r);
    CHECK_MSG(r.done && r.role_first, "chat stream: %s", body);
    CHECK_STR(r.text, chat_text);
    free(body);
}

/* Stop strings (split across tokens, never emitted) and seeded sampling. */
static void check_stop_and_seed(const char *t) {
    if (!t || strlen(t) < 20) return;
    char stop[8];
    snprintf(stop, sizeof stop, "%.3s", t + 12); /* three bytes from the middle of the text */
    const char *at = strstr(t, stop);
    int want = (int)(at - t);
    char extra[128], *body;
    snprintf(extra, sizeof extra, ",\"stop\":[\"@@@\",\"%s\"]", stop);
    const char *finish = NULL;
    char *s = greedy(PROMPT, 40, extra, &finish);
    CHECK_MSG(s && (int)strlen(s) == want && !strncmp(s, t, (size_t)want), "stop '%s': got '%s', want '%.*s'", stop,
              s ? s : "", want, t);
    CHECK_STR(finish, "stop");
    free(s);
    char json[512];
    snprintf(json, sizeof json, "{\"prompt\":\"%s\",\"max_tokens\":40,\"temperature\":0,\"stream\":true%s}", PROMPT, extra);
    CHECK_EQ_INT(post("/v1/completions", json, &body), 200);
    sse_result r;
    parse_sse(body, 0, &r);
    CHECK(r.done && (int)strlen(r.text) == want && !strncmp(r.text, t, (size_t)want));
    CHECK_STR(r.finish, "stop");
    free(body);

    const char *seeded = "{\"prompt\":\"Once\",\"max_tokens\":24,\"temperature\":1.0,\"top_k\":0,\"seed\":1234}";
    char *b1, *b2;
    CHECK_EQ_INT(post("/v1/completions", seeded, &b1), 200);
    CHECK_EQ_INT(post("/v1/completions", seeded, &b2), 200);
    bn_json *v1 = bn_json_parse(b1, strlen(b1), NULL, 0), *v2 = bn_json_parse(b2, strlen(b2), NULL, 0);
    CHECK(v1 && v2 && !strcmp(choice_text(v1, 0, NULL), choice_text(v2, 0, NULL)));
    bn_json_free(v1);
    bn_json_free(v2);
    free(b1);
    free(b2);
}

/* Two streams decoded together give the single-stream greedy text. */
static void check_concurrent(const char *t) {
    char json[512], out[2][256];
    snprintf(json, sizeof json, "{\"prompt\":\"%s\",\"max_tokens\":40,\"temperature\":0,\"stream\":true}", PROMPT);
    pid_t pid[2];
    for (int i = 0; i < 2; i++) {
        snprintf(out[i], sizeof out[i], "%s", bn_test_tmp(".sse"));
        pid[i] = post_background("/v1/completions", json, out[i]);
    }
    for (int i = 0; i < 2; i++) {
        CHECK_EQ_INT(wait_exit(pid[i], 60), 0);
        char *body = slurp(out[i]);
        sse_result r;
        parse_sse(body, 0, &r);
        CHECK_MSG(r.done, "concurrent stream %d did not finish: %s", i, body);
        if (t) CHECK_STR(r.text, t);
        free(body);
        unlink(out[i]);
    }
}

static void check_errors(void) {
    char *body;
    struct { int want; const char *opts, *path, *json; } cases[] = {
        {401, "", "/v1/models", NULL},
        {401, "-H 'Authorization: Bearer wrong'", "/v1/models", NULL},
        {404, AUTH, "/v1/nope", NULL},
        {405, AUTH, "/v1/completions", NULL},
        {405, AUTH "-X POST -d '{}'", "/v1/models", NULL},
        {400, NULL, "/v1/completions", "{\"prompt\": \"x\","},
        {400, NULL, "/v1/completions", "{\"prompt\": \"x\", \"max_tokens\": \"ten\"}"},
        {400, NULL, "/v1/chat/completions", "{\"messages\": \"hi\"}"},
        {411, NULL, "/v1/completions", "{\"prompt\": \"x\"}"}, /* sent chunked, see below */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int code;
        if (!cases[i].json) code = curl(cases[i].opts, cases[i].path, &body);
        else if (cases[i].want == 411) code = curl(post_opts(cases[i].json, "-H 'Transfer-Encoding: chunked'"), cases[i].path, &body);
        else code = post(cases[i].path, cases[i].json, &body);
        CHECK_MSG(code == cases[i].want, "case %zu: HTTP %d, want %d: %s", i, code, cases[i].want, body);
        bn_json *v = bn_json_parse(body, strlen(body), NULL, 0); /* every error is an OpenAI error object */
        const bn_json *e = bn_json_get(v, "error");
        CHECK_MSG(e && bn_json_get(e, "message") && bn_json_get(e, "type"), "case %zu: not an error object: %s", i, body);
        bn_json_free(v);
        free(body);
    }
    CHECK_EQ_INT(curl("", "/health", NULL), 200); /* /health needs no key */
    /* a prompt longer than the context (-c 1024) */
    char *json = malloc(3 * 2000 + 64), *w = json;
    w += sprintf(w, "{\"prompt\":\"");
    for (int i = 0; i < 2000; i++) w += sprintf(w, " ab");
    strcpy(w, "\"}");
    CHECK_EQ_INT(post("/v1/completions", json, &body), 400);
    CHECK_MSG(strstr(body, "context"), "prompt too long: %s", body);
    free(body);
    /* a body over --max-body (65536) */
    char *big = malloc(70000 + 32);
    strcpy(big, "{\"prompt\":\"");
    memset(big + 11, 'a', 70000);
    strcpy(big + 11 + 70000, "\"}");
    CHECK_EQ_INT(post("/v1/completions", big, &body), 413);
    free(body);
    free(big);
    free(json);
}

/* Keep-alive with pipelining, and the header read timeout (--timeout 2). */
static void check_raw_http(void) {
    int fd = connect_raw();
    CHECK(fd >= 0);
    if (fd < 0) return;
    const char *two = "GET /health HTTP/1.1\r\nHost: t\r\n\r\nGET /health HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n";
    CHECK(send(fd, two, strlen(two), 0) == (ssize_t)strlen(two));
    char *got = read_all(fd);
    CHECK_MSG(count_substr(got, "HTTP/1.1 200 OK\r\n") == 2, "pipelined: %s", got);
    CHECK(strstr(got, "Connection: keep-alive") && strstr(got, "Connection: close"));
    free(got);
    close(fd);

    fd = connect_raw();
    double t0 = now_s();
    const char *part = "GET /health HTTP/1.1\r\nHost: t\r\n"; /* never finished */
    CHECK(fd >= 0 && send(fd, part, strlen(part), 0) == (ssize_t)strlen(part));
    got = fd >= 0 ? read_all(fd) : calloc(1, 1);
    double dt = now_s() - t0;
    CHECK_MSG(!strncmp(got, "HTTP/1.1 408 ", 13) && dt > 1.5 && dt < 9, "timeout: after %.2f s: %s", dt, got);
    free(got);
    if (fd >= 0) close(fd);
}

/* Both slots busy (queue 0) -> 503; killing the clients frees the slots at once:
 * a streaming one (seen when a write fails) and a non-streaming one (seen by
 * polling its socket while it waits). */
static void check_busy_and_disconnect(void) {
    const char *long_json[2] = {"{\"prompt\":\"Once\",\"max_tokens\":1000,\"ignore_eos\":true,\"stream\":true}",
                                "{\"prompt\":\"Once\",\"max_tokens\":1000,\"ignore_eos\":true}"};
    char out[2][256];
    pid_t pid[2];
    long long gen0 = metric("bitnet_tokens_generated_total");
    for (int i = 0; i < 2; i++) {
        snprintf(out[i], sizeof out[i], "%s", bn_test_tmp(".sse"));
        pid[i] = post_background("/v1/completions", long_json[i], out[i]);
    }
    CHECK(wait_for_text(out[0], "data: ", 30));
    char *body = NULL;
    double t_busy = now_s();
    do { /* the non-streaming one shows nothing until the end: wait until it holds its slot */
        free(body);
        curl(AUTH, "/health", &body);
    } while (!strstr(body, "\"slots_processing\":2") && now_s() - t_busy < 30);
    CHECK_MSG(strstr(body, "\"slots_processing\":2"), "health while busy: %s", body);
    free(body);
    int code = post("/v1/completions", "{\"prompt\":\"x\",\"max_tokens\":2}", &body);
    CHECK_MSG(code == 503 && strstr(body, "\"error\""), "third request while both slots stream: HTTP %d %s", code, body);
    free(body);
    for (int i = 0; i < 2; i++) {
        kill(pid[i], SIGKILL);
        wait_exit(pid[i], 10);
        unlink(out[i]);
    }
    double t0 = now_s();
    int freed = 0;
    while (!freed && now_s() - t0 < 5) {
        curl(AUTH, "/health", &body);
        freed = strstr(body, "\"slots_processing\":0") != NULL;
        free(body);
        if (!freed) sleep_ms(20);
    }
    double dt = now_s() - t0;
    CHECK_MSG(freed, "slots still busy 5 s after the clients went away");
    long long gen1 = metric("bitnet_tokens_generated_total");
    /* freed early: far fewer than the 2 x 1000 tokens asked for were generated */
    CHECK_MSG(gen1 - gen0 < 1900, "generated %lld tokens: the slots ran to the end (%.2f s)", gen1 - gen0, dt);
    CHECK(metric("bitnet_requests_cancelled_total") >= 2);
    CHECK_EQ_INT(post("/v1/completions", "{\"prompt\":\"x\",\"max_tokens\":2}", NULL), 200);
}

static void check_metrics(void) {
    char *body;
    CHECK_EQ_INT(curl(AUTH, "/metrics", &body), 200);
    CHECK(strstr(body, "# TYPE bitnet_requests_total counter"));
    CHECK(strstr(body, "bitnet_token_latency_seconds_bucket{le=\"+Inf\"}"));
    CHECK(strstr(body, "bitnet_tokens_per_second "));
    free(body);
    CHECK(metric("bitnet_requests_total{status=\"200\"}") >= 8);
    CHECK(metric("bitnet_requests_total{status=\"400\"}") >= 4);
    CHECK(metric("bitnet_requests_total{status=\"503\"}") >= 1);
    long long n = metric("bitnet_token_latency_seconds_count");
    CHECK(n > 0 && n <= metric("bitnet_tokens_generated_total"));
}

/* Starts build/server (environment `env`, extra options) on a free port, its
 * stderr in a new log file; waits for the line `ready` and reads the port
 * after `port_after` in it into g_port. Returns the pid, or 0 (g_port 0). */
static pid_t spawn_server(const char *env, const char *opts, char *log, size_t cap, const char *ready,
                          const char *port_after) {
    char cmd[1024];
    snprintf(log, cap, "%s", bn_test_tmp(".log"));
    const char *prefix = getenv("BITNET_EXEC_PREFIX");
    snprintf(cmd, sizeof cmd, "exec env %s %s %s/server --port 0 %s 2>'%s'", env, prefix ? prefix : "", BN_BUILD_DIR,
             opts, log);
    pid_t srv = spawn_sh(cmd);
    g_port = 0;
    if (wait_for_text(log, ready, 60)) {
        char *l = slurp(log);
        const char *p = strstr(l, port_after);
        g_port = p ? atoi(p + strlen(port_after)) : 0;
        free(l);
    }
    if (g_port <= 0) {
        kill(srv, SIGKILL);
        wait_exit(srv, 10);
        return 0;
    }
    return srv;
}

/* build/server with extra options, once ready (g_port); 0 on failure. */
static pid_t start_server(const char *opts, char *log, size_t cap) {
    return spawn_server("", opts, log, cap, "listening on http://127.0.0.1:", "127.0.0.1:");
}

TEST_E2E(server_end_to_end) {
    if (system("command -v curl >/dev/null 2>&1") != 0)
        SKIP("curl is not installed (CI: add curl to the packages .ci/run installs)");
    char err_path[256];
    pid_t srv = start_server("--slots 2 --queue 0 -c 1024 --api-key " KEY " --max-body 65536 --timeout 2 --shutdown-grace 300",
                             err_path, sizeof err_path);
    REQUIRE_MSG(srv > 0, "server did not start");
    char *body;
    CHECK_EQ_INT(curl("", "/health", &body), 200);
    CHECK(strstr(body, "\"status\":\"ok\""));
    free(body);
    CHECK_EQ_INT(curl(AUTH, "/v1/models", &body), 200);
    bn_json *v = bn_json_parse(body, strlen(body), NULL, 0);
    const bn_json *d = bn_json_get(v, "data");
    CHECK(d && d->type == BN_JSON_ARRAY && d->n == 1 && bn_json_get(&d->items[0], "id")->type == BN_JSON_STRING);
    bn_json_free(v);
    free(body);

    char *t = NULL;
    check_generation(&t);
    check_stop_and_seed(t);
    check_concurrent(t);
    free(t);
    check_errors();
    check_raw_http();
    check_busy_and_disconnect();
    check_metrics();

    /* SIGTERM with a stream in flight: the stream ends cleanly, the server exits 0 */
    const char *out = bn_test_tmp(".sse");
    pid_t c = post_background("/v1/completions", "{\"prompt\":\"Once\",\"max_tokens\":1000,\"ignore_eos\":true,\"stream\":true}", out);
    CHECK(wait_for_text(out, "data: ", 30));
    kill(srv, SIGTERM);
    CHECK_EQ_INT(wait_exit(srv, 30), 0);
    CHECK_EQ_INT(wait_exit(c, 10), 0);
    body = slurp(out);
    sse_result r;
    parse_sse(body, 0, &r);
    CHECK_MSG(r.done && (r.finish[0] || strstr(r.error, "shutting down")), "stream at shutdown: %s",
              body + (strlen(body) > 600 ? strlen(body) - 600 : 0));
    free(body);
    unlink(out);
    CHECK_EQ_INT(curl("", "/health", NULL), 0); /* nobody listens any more */
    char *log = slurp(err_path);
    CHECK_MSG(strstr(log, "server: stopped"), "server log: %s", log);
    free(log);
    unlink(err_path);
}

/* ---- reliability round 2: connection limits (docs/security.md) ------------------------ */

static void stop_server(pid_t srv, const char *log) {
    kill(srv, SIGTERM);
    CHECK_EQ_INT(wait_exit(srv, 30), 0);
    unlink(log);
}

/* Sends a whole request on a new connection (after delay_ms) and reads the answer to EOF. */
static char *exchange_after(const char *request, int delay_ms) {
    int fd = connect_raw();
    if (fd < 0) return calloc(1, 1);
    if (delay_ms) sleep_ms(delay_ms);
    send(fd, request, strlen(request), MSG_NOSIGNAL);
    char *r = read_all(fd);
    close(fd);
    return r;
}

static char *exchange(const char *request) { return exchange_after(request, 0); }

/* As exchange_after, and *reset = 1 when the connection ended with a reset
 * (ECONNRESET) instead of the server's orderly close. */
static char *exchange_reset(const char *request, int delay_ms, int *reset) {
    *reset = 0;
    int fd = connect_raw();
    if (fd < 0) return calloc(1, 1);
    if (delay_ms) sleep_ms(delay_ms);
    send(fd, request, strlen(request), MSG_NOSIGNAL);
    size_t cap = 1 << 16, n = 0;
    char *b = malloc(cap);
    ssize_t r;
    while (n < cap - 1 && (r = recv(fd, b + n, cap - 1 - n, 0)) > 0) n += (size_t)r;
    if (r < 0 && errno == ECONNRESET) *reset = 1;
    b[n] = 0;
    close(fd);
    return b;
}

/* 4. Over --max-connections the 503 was written and the socket closed unread:
 * clients saw a reset. Now the request is read and the 503 arrives. */
TEST_E2E(reliability_4_over_the_limit_clients_read_503) {
    SERVER_UP("--max-connections 2 --timeout 10");
    int held[2] = {connect_raw(), connect_raw()}; /* both slots, idle */
    sleep_ms(100);
    const char *body = "{\"prompt\":\"Once\",\"max_tokens\":2}";
    char req[512];
    snprintf(req, sizeof req,
             "POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: %zu\r\n\r\n%s",
             strlen(body), body);
    int got = 0, resets = 0;
    for (int i = 0; i < 10; i++) { /* the request arrives after the server decided: it must read it first */
        int reset;
        char *r = exchange_reset(req, i % 2 ? 50 : 0, &reset);
        got += strncmp(r, "HTTP/1.1 503", 12) == 0 && strstr(r, "too many open connections") != NULL;
        resets += reset;
        free(r);
    }
    CHECK_MSG(got == 10, "%d of 10 clients over the limit read the 503", got);
    /* an unread request at close() makes the kernel reset the connection, which can
     * destroy the answer in flight: the server reads it and closes in order */
    CHECK_MSG(resets == 0, "%d of 10 connections over the limit ended with a reset", resets);
    /* a client still sending its body when the answer comes must not be reset either */
    static char big[65536 + 256];
    int n = snprintf(big, sizeof big, "POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Length: 65536\r\n\r\n");
    memset(big + n, ' ', 65536);
    got = 0;
    for (int i = 0; i < 10; i++) {
        int fd = connect_raw();
        if (fd < 0) continue;
        send(fd, big, (size_t)n, MSG_NOSIGNAL);
        sleep_ms(50);
        for (size_t off = (size_t)n; off < (size_t)n + 65536;) {
            ssize_t w = send(fd, big + off, (size_t)n + 65536 - off, MSG_NOSIGNAL);
            if (w <= 0) break;
            off += (size_t)w;
        }
        char *r = read_all(fd);
        got += strncmp(r, "HTTP/1.1 503", 12) == 0;
        free(r);
        close(fd);
    }
    CHECK_MSG(got == 10, "%d of 10 clients sending a body over the limit read the 503", got);
    close(held[0]);
    close(held[1]);
    stop_server(srv, logf);
}

/* 5. Slowloris: 64 connections sending a byte now and then held every slot for
 * the whole header timeout, and /health was unreachable. Now one address has at
 * most a quarter of the slots, headers must come within 2 s when nearly full,
 * and /health is answered even without a slot. */
TEST_E2E(reliability_5_health_answers_under_slowloris) {
    SERVER_UP("--max-connections 64 --timeout 10");
    int slow[64];
    for (int i = 0; i < 64; i++) {
        slow[i] = connect_raw();
        if (slow[i] >= 0) send(slow[i], "G", 1, MSG_NOSIGNAL);
    }
    sleep_ms(300);
    double worst = 0;
    for (int k = 0; k < 3; k++) { /* a byte each, as slowloris does */
        for (int i = 0; i < 64; i++)
            if (slow[i] >= 0) send(slow[i], "E", 1, MSG_NOSIGNAL);
        const double t0 = now_s();
        char *r = exchange("GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
        const double dt = now_s() - t0;
        CHECK_MSG(strncmp(r, "HTTP/1.1 200", 12) == 0 && strstr(r, "\"status\":\"ok\"") && dt < 1.0,
                  "/health under 64 slow clients: %.2f s: %.80s", dt, r);
        if (dt > worst) worst = dt;
        free(r);
        sleep_ms(300);
    }
    printf("    /health under 64 slow clients: slowest of 3 answers %.3f s\n", worst);
    for (int i = 0; i < 64; i++)
        if (slow[i] >= 0) close(slow[i]);
    stop_server(srv, logf);
}

/* 6. At exactly --max-connections, clients that reconnect after each stream
 * got spurious 503s: the slot was released only after the lingering close. */
TEST_E2E(reliability_6_reconnecting_clients_get_no_spurious_503) {
    SERVER_UP("--max-connections 2 --slots 2");
    const char *body = "{\"prompt\":\"Once\",\"max_tokens\":2,\"stream\":true}";
    char req[512];
    snprintf(req, sizeof req,
             "POST /v1/completions HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Type: application/json\r\n"
             "Content-Length: %zu\r\n\r\n%s", strlen(body), body);
    pid_t kids[2];
    for (int k = 0; k < 2; k++) {
        if ((kids[k] = fork()) == 0) {
            int bad = 0;
            for (int i = 0; i < 25; i++) {
                char *r = exchange(req);
                bad += strncmp(r, "HTTP/1.1 200", 12) != 0 || !strstr(r, "[DONE]");
                free(r);
            }
            _exit(bad > 100 ? 100 : bad);
        }
    }
    for (int k = 0; k < 2; k++) {
        int bad = wait_exit(kids[k], 120);
        CHECK_MSG(bad == 0, "client %d: %d of 25 streams were not answered 200 ... [DONE]", k, bad);
    }
    stop_server(srv, logf);
}

/* Chaos: the server under a bounded mixed load (completions, streams, clients
 * that disconnect mid-stream, malformed requests) is SIGKILLed and restarted
 * on the same port: the port is free again at once, and requests after the
 * restart succeed; then SIGTERM under load drains and exits 0, leaving no
 * listener. Traffic goes to 127.0.0.1 only, from processes this test owns. */
static void load_client(int kind, double seconds) {
    const double end = now_s() + seconds;
    static const char *bodies[] = {"{\"prompt\":\"Once\",\"max_tokens\":8}",
                                   "{\"prompt\":\"Once\",\"max_tokens\":64,\"stream\":true}",
                                   "{\"messages\":[{\"role\":\"user\",\"content\":\"Hi\"}],\"max_tokens\":8}"};
    for (int i = 0; now_s() < end; i++) {
        char req[1024];
        const char *body = bodies[(i + kind) % 3];
        const char *path = (i + kind) % 3 == 2 ? "/v1/chat/completions" : "/v1/completions";
        snprintf(req, sizeof req, "POST %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: %zu\r\n\r\n%s", path,
                 strlen(body), body);
        int fd = connect_raw();
        if (fd < 0) {
            sleep_ms(20);
            continue;
        }
        if (kind == 3) { /* malformed */
            send(fd, "GET /\x01 HTTP/9\r\n\r\n", 18, MSG_NOSIGNAL);
        } else {
            send(fd, req, strlen(req), MSG_NOSIGNAL);
        }
        if (kind == 2) { /* goes away mid-stream */
            char b[256];
            recv(fd, b, sizeof b, 0);
            close(fd);
            continue;
        }
        free(read_all(fd));
        close(fd);
    }
    _exit(0);
}

static int port_is_free(int port) {
    int fd = socket(AF_INET, SOCK_STREAM, 0), one = 1;
    struct sockaddr_in a = {0};
    a.sin_family = AF_INET;
    a.sin_port = htons((uint16_t)port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    int ok = fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof a) == 0;
    if (fd >= 0) close(fd);
    return ok;
}

TEST_E2E(server_chaos_kill_restart_and_drain) {
    char log[256], opts[256];
    pid_t srv = start_server("--slots 2 --queue 4 --shutdown-grace 500", log, sizeof log);
    REQUIRE_MSG(srv > 0, "server did not start");
    const int port = g_port;
    pid_t kids[4];
    for (int k = 0; k < 4; k++)
        if ((kids[k] = fork()) == 0) load_client(k, 1.5);
    sleep_ms(700);
    kill(srv, SIGKILL); /* mid-load */
    CHECK(wait_exit(srv, 10) == 128 + SIGKILL);
    unlink(log);
    /* the same port at once: SO_REUSEADDR, nothing of the old process left listening */
    snprintf(opts, sizeof opts, "--slots 2 --queue 4 --shutdown-grace 500 --port %d", port);
    srv = start_server(opts, log, sizeof log); /* its --port N comes after --port 0 */
    CHECK_MSG(srv > 0 && g_port == port, "restart on port %d failed", port);
    for (int k = 0; k < 4; k++) CHECK_EQ_INT(wait_exit(kids[k], 30), 0); /* the load ended on its own */
    char *body = NULL;
    CHECK_EQ_INT(curl("", "/health", &body), 200);
    free(body);
    CHECK_EQ_INT(curl(post_opts("{\"prompt\":\"Once\",\"max_tokens\":4}", NULL), "/v1/completions", &body), 200);
    CHECK_MSG(strstr(body, "\"text_completion\""), "%s", body);
    free(body);
    /* SIGTERM under load: drains, exits 0, the port is free */
    for (int k = 0; k < 4; k++)
        if ((kids[k] = fork()) == 0) load_client(k, 1.0);
    sleep_ms(400);
    kill(srv, SIGTERM);
    CHECK_EQ_INT(wait_exit(srv, 30), 0);
    for (int k = 0; k < 4; k++) CHECK_EQ_INT(wait_exit(kids[k], 30), 0);
    CHECK_MSG(port_is_free(port), "port %d is still bound after the server exited", port);
    char *l = slurp(log);
    CHECK_MSG(strstr(l, "server: stopped"), "%s", l);
    free(l);
    unlink(log);
}

/* The contract a load balancer relies on (deploy/): /health is 503 while the
 * model loads, 200 when ready, 503 again while draining after SIGTERM; new
 * requests get a 503 in both phases, and the stream running at SIGTERM ends
 * normally within the grace. The load is slowed down by a test-only variable. */
TEST_E2E(server_health_503_while_loading_and_draining) {
    char log[256];
    pid_t srv = spawn_server("BITNET_SERVER_TEST_LOAD_DELAY_MS=1500", "--slots 1 -c 2048 --shutdown-grace 60000", log,
                             sizeof log, "answers 503 until it is ready", "(port ");
    REQUIRE_MSG(srv > 0, "no loading line in the server's log");
    char *body = NULL;
    int code = curl("", "/health", &body);
    CHECK_MSG(code == 503 && strstr(body, "\"status\":\"loading model\""), "health while loading: %d %s", code, body);
    free(body);
    code = post("/v1/completions", "{\"prompt\":\"x\",\"max_tokens\":2}", &body);
    CHECK_MSG(code == 503 && strstr(body, "loading model"), "completion while loading: %d %s", code, body);
    free(body);
    CHECK(wait_for_text(log, "listening on http://127.0.0.1:", 60));
    CHECK_EQ_INT(curl("", "/health", NULL), 200);

    const char *out = bn_test_tmp(".sse");
    pid_t c = post_background("/v1/completions", "{\"prompt\":\"Once\",\"max_tokens\":1500,\"ignore_eos\":true,\"stream\":true,"
                              "\"stream_options\":{\"include_usage\":true}}", out);
    CHECK(wait_for_text(out, "data: ", 30));
    kill(srv, SIGTERM);
    CHECK(wait_for_text(log, "server: draining", 10));
    code = curl("", "/health", &body);
    CHECK_MSG(code == 503 && strstr(body, "\"status\":\"shutting down\""), "health while draining: %d %s", code, body);
    free(body);
    code = post("/v1/completions", "{\"prompt\":\"x\",\"max_tokens\":2}", &body);
    CHECK_MSG(code == 503 && strstr(body, "shutting down"), "completion while draining: %d %s", code, body);
    free(body);
    CHECK_EQ_INT(wait_exit(srv, 120), 0);
    CHECK_EQ_INT(wait_exit(c, 10), 0);
    body = slurp(out);
    sse_result r;
    parse_sse(body, 0, &r);
    CHECK_MSG(r.done && !strcmp(r.finish, "length") && r.completion_tokens == 1500, "the stream running at SIGTERM: %s",
              body + (strlen(body) > 600 ? strlen(body) - 600 : 0));
    free(body);
    unlink(log);
}

/* Prefix cache (cache_prompt, default on): the same prompt again reuses all but
 * its last token from the slot's cache, a prompt that extends it reuses the
 * shared part, and the text at temperature 0 is the same as without the cache. */
static char *completion_text(const char *prompt_json_fields, int *cached) {
    char body[2048];
    snprintf(body, sizeof body, "{%s, \"max_tokens\": 24, \"temperature\": 0}", prompt_json_fields);
    char *resp = NULL;
    int code = post("/v1/completions", body, &resp);
    CHECK_MSG(code == 200, "HTTP %d: %s", code, resp ? resp : "");
    bn_json *v = resp ? bn_json_parse(resp, strlen(resp), NULL, 0) : NULL;
    const bn_json *ch = bn_json_get(v, "choices");
    const bn_json *t = ch && ch->n ? bn_json_get(&ch->items[0], "text") : NULL;
    const bn_json *c = bn_json_get(bn_json_get(bn_json_get(v, "usage"), "prompt_tokens_details"), "cached_tokens");
    *cached = c ? (int)c->number : -1;
    char *text = t && t->type == BN_JSON_STRING ? strdup(t->str) : NULL;
    CHECK_MSG(text != NULL, "no text in %s", resp ? resp : "");
    bn_json_free(v);
    free(resp);
    return text ? text : strdup("");
}

TEST_E2E(server_prefix_cache_reuses_and_keeps_output) {
    SERVER_UP("--slots 2 -c 512");
    static const char sys[] = "\"prompt\": \"Once upon a time, in a small village by the sea, there lived a girl named "
                              "Lily. She loved to play with her dog Max on the beach every morning, and her mother "
                              "always told her to be careful.";
    char f[5][512];
    snprintf(f[0], sizeof f[0], "%s\"", sys);
    snprintf(f[1], sizeof f[1], "%s\"", sys);
    snprintf(f[2], sizeof f[2], "%s\", \"cache_prompt\": false", sys);
    snprintf(f[3], sizeof f[3], "%s One day\"", sys);
    snprintf(f[4], sizeof f[4], "%s One day\", \"cache_prompt\": false", sys);
    int c0, c1, c2, c3, c4;
    char *a0 = completion_text(f[0], &c0);
    char *a1 = completion_text(f[1], &c1);
    char *a2 = completion_text(f[2], &c2);
    char *b1 = completion_text(f[3], &c3);
    char *b2 = completion_text(f[4], &c4);
    CHECK_EQ_INT(c0, 0);  /* a fresh server: nothing cached */
    CHECK_MSG(c1 > 40, "the same prompt again reused %d tokens", c1);
    CHECK_EQ_INT(c2, 0);
    CHECK_MSG(c3 >= c1 - 2 && c3 > 40, "an extended prompt reused %d tokens (the prompt alone: %d)", c3, c1);
    CHECK_EQ_INT(c4, 0);
    CHECK_STR(a1, a0);
    CHECK_STR(a2, a0);
    CHECK_STR(b1, b2);
    /* another slot's prefix: while a long request holds the slot with the
     * cached prompt, a request with the same prompt starts in the other slot
     * from a copy of those positions (bitnet_seq_cp), with the same text */
    static const char sys2[] = "\"prompt\": \"Tom had a red ball and a small brown dog called Spot. Every day after "
                               "school they ran to the big green park near the river to play until the sun went down.";
    char busy_body[1024], g0[512], g1[512];
    const char *out = bn_test_tmp(".sse");
    snprintf(busy_body, sizeof busy_body, "{%s\", \"max_tokens\": 300, \"ignore_eos\": true, \"stream\": true}", sys2);
    snprintf(g0, sizeof g0, "%s\"", sys2);
    snprintf(g1, sizeof g1, "%s\", \"cache_prompt\": false", sys2);
    pid_t bg = post_background("/v1/completions", busy_body, out);
    CHECK(wait_for_text(out, "data: ", 30));
    int c5, c6;
    char *d1 = completion_text(g0, &c5); /* in the other slot, which never saw this prompt */
    CHECK_MSG(c5 > 40, "a prompt cached only in a busy slot reused %d tokens", c5);
    CHECK_EQ_INT(wait_exit(bg, 60), 0);
    char *d2 = completion_text(g1, &c6);
    CHECK_EQ_INT(c6, 0);
    CHECK_STR(d1, d2);
    unlink(out);
    free(d1);
    free(d2);
    free(a0);
    free(a1);
    free(a2);
    free(b1);
    free(b2);
    stop_server(srv, logf);
}

/* llama-server's own endpoints and field names (issue: a llama.cpp user switches
 * without relearning): /completion with its answer's shape, token-id prompts
 * and its stream; /tokenize and /detokenize round-trip; /props, /slots,
 * /apply-template; the un-prefixed OpenAI aliases. */
static bn_json *post_json(const char *path, const char *json, int want_code) {
    char *body = NULL;
    int code = post(path, json, &body);
    CHECK_MSG(code == want_code, "%s %s: HTTP %d %s", path, json, code, body ? body : "");
    bn_json *v = body ? bn_json_parse(body, strlen(body), NULL, 0) : NULL;
    CHECK_MSG(v != NULL, "%s: not JSON: %s", path, body ? body : "");
    free(body);
    return v;
}

TEST_E2E(server_llama_cpp_endpoints) {
    SERVER_UP("--slots 2 -c 256");
    /* /completion: llama-server's answer */
    bn_json *v = post_json("/completion", "{\"prompt\":\"Once upon a time\",\"n_predict\":8,\"temperature\":0}", 200);
    const bn_json *content = bn_json_get(v, "content"), *timings = bn_json_get(v, "timings");
    CHECK(is_str(content) && content->len > 0);
    CHECK(bn_json_get(v, "stop") && bn_json_get(v, "stop")->boolean);
    CHECK(bn_json_get(v, "tokens_predicted") && bn_json_get(v, "tokens_predicted")->number == 8);
    CHECK(bn_json_get(v, "stop_type") && !strcmp(bn_json_get(v, "stop_type")->str, "limit"));
    CHECK(timings && bn_json_get(timings, "predicted_n") && bn_json_get(timings, "predicted_ms"));
    char *text = content ? strdup(content->str) : strdup("");
    bn_json_free(v);
    /* /tokenize -> /detokenize gives the text back; the ids as a prompt give the same completion */
    v = post_json("/tokenize", "{\"content\":\"Once upon a time\",\"add_special\":true}", 200);
    const bn_json *toks = bn_json_get(v, "tokens");
    REQUIRE(toks && toks->type == BN_JSON_ARRAY && toks->n >= 4);
    char ids[512] = "", req[1024];
    for (size_t i = 0; i < toks->n; i++)
        snprintf(ids + strlen(ids), sizeof ids - strlen(ids), "%s%d", i ? "," : "", (int)toks->items[i].number);
    bn_json_free(v);
    snprintf(req, sizeof req, "{\"tokens\":[%s]}", ids);
    v = post_json("/detokenize", req, 200);
    const bn_json *back = bn_json_get(v, "content");
    CHECK_MSG(back && strstr(back->str, "Once upon a time"), "detokenized: %s", back ? back->str : "(none)");
    bn_json_free(v);
    snprintf(req, sizeof req, "{\"prompt\":[%s],\"n_predict\":8,\"temperature\":0}", ids);
    v = post_json("/completion", req, 200);
    CHECK_STR(bn_json_get(v, "content") ? bn_json_get(v, "content")->str : "", text);
    bn_json_free(v);
    v = post_json("/tokenize", "{\"content\":\"Once\",\"with_pieces\":true}", 200);
    toks = bn_json_get(v, "tokens");
    CHECK(toks && toks->n >= 1 && bn_json_get(&toks->items[0], "id") && bn_json_get(&toks->items[0], "piece"));
    bn_json_free(v);
    bn_json_free(post_json("/detokenize", "{\"tokens\":[1,99999999]}", 400));
    /* streamed: content events, then the whole answer with stop: true, no [DONE] */
    char *s = NULL;
    CHECK_EQ_INT(curl(post_opts("{\"prompt\":\"Once\",\"n_predict\":4,\"stream\":true}", "-N"), "/completion", &s), 200);
    CHECK_MSG(s && strstr(s, "data: {\"index\":0,\"content\":") && strstr(s, "\"stop\":true") && !strstr(s, "[DONE]"),
              "stream: %s", s ? s : "");
    free(s);
    /* /props, /slots, /apply-template, the aliases */
    CHECK_EQ_INT(curl("", "/props", &s), 200);
    CHECK(s && strstr(s, "\"total_slots\":2") && strstr(s, "\"default_generation_settings\""));
    free(s);
    CHECK_EQ_INT(curl("", "/slots", &s), 200);
    v = s ? bn_json_parse(s, strlen(s), NULL, 0) : NULL;
    CHECK(v && v->type == BN_JSON_ARRAY && v->n == 2 && bn_json_get(&v->items[0], "is_processing"));
    bn_json_free(v);
    free(s);
    v = post_json("/apply-template", "{\"messages\":[{\"role\":\"user\",\"content\":\"Hi\"}]}", 200);
    CHECK(bn_json_get(v, "prompt") && strstr(bn_json_get(v, "prompt")->str, "Hi"));
    bn_json_free(v);
    v = post_json("/completions", "{\"prompt\":\"Once\",\"max_tokens\":2}", 200);
    CHECK(bn_json_get(v, "choices") != NULL);
    bn_json_free(v);
    v = post_json("/chat/completions", "{\"messages\":[{\"role\":\"user\",\"content\":\"Hi\"}],\"max_tokens\":2}", 200);
    CHECK(bn_json_get(v, "choices") != NULL);
    bn_json_free(v);
    CHECK_EQ_INT(curl("", "/models", NULL), 200);
    bn_json_free(post_json("/v1/chat/completions",
                           "{\"messages\":[{\"role\":\"user\",\"content\":\"Hi\"}],\"tools\":[{\"type\":\"function\"}]}", 400));
    free(text);
    stop_server(srv, logf);
}

/* logprobs: each generated token's value, and the alternatives', equal the
 * log-softmax of the model's logits at that position, as build/logits computes
 * them teacher-forced over prompt + generated tokens. */
TEST_E2E(server_logprobs_equal_log_softmax) {
    SERVER_UP("--slots 1 -c 128");
    const int prompt[] = {1, 403, 407, 261, 378}; /* BOS "Once upon a time" (the embedded model's vocabulary) */
    const int n_prompt = 5, n_gen = 6, k = 3;
    bn_json *v = post_json("/completion", "{\"prompt\":[1,403,407,261,378],\"n_predict\":6,\"n_probs\":3,\"temperature\":0}",
                           200);
    const bn_json *probs = bn_json_get(v, "completion_probabilities");
    REQUIRE_MSG(probs && probs->type == BN_JSON_ARRAY && (int)probs->n == n_gen, "no completion_probabilities");
    char ids[256] = "", cmd[1024], out[256];
    for (int i = 0; i < n_prompt; i++) snprintf(ids + strlen(ids), sizeof ids - strlen(ids), "%s%d", i ? "," : "", prompt[i]);
    for (int i = 0; i < n_gen; i++)
        snprintf(ids + strlen(ids), sizeof ids - strlen(ids), ",%d", (int)bn_json_get(&probs->items[i], "id")->number);
    snprintf(out, sizeof out, "%s", bn_test_tmp(".bin"));
    snprintf(cmd, sizeof cmd, "logits -m models/default.gguf --tokens %s -o %s 2>&1", ids, out);
    int st = -1;
    free(bn_test_run_tool(cmd, NULL, &st));
    REQUIRE_MSG(st == 0, "build/logits failed (%d)", st);
    size_t bytes = 0;
    float *l = (float *)(void *)bn_test_read_file(out, &bytes);
    const int n_vocab = 512;
    REQUIRE_MSG(l && bytes == (size_t)(n_prompt + n_gen) * n_vocab * sizeof(float), "logits file of %zu bytes", bytes);
    double worst = 0;
    for (int i = 0; i < n_gen; i++) {
        const float *row = l + (size_t)(n_prompt - 1 + i) * n_vocab; /* predicts generated token i */
        double mx = -INFINITY, sum = 0;
        for (int t = 0; t < n_vocab; t++) mx = row[t] > mx ? row[t] : mx;
        for (int t = 0; t < n_vocab; t++) sum += exp(row[t] - mx);
        const double lse = mx + log(sum);
        const bn_json *e = &probs->items[i], *top = bn_json_get(e, "top_logprobs");
        const int id = (int)bn_json_get(e, "id")->number;
        worst = fmax(worst, fabs(bn_json_get(e, "logprob")->number - (row[id] - lse)));
        CHECK_MSG(top && (int)top->n == k, "position %d: %d alternatives", i, top ? (int)top->n : -1);
        for (size_t t = 0; top && t < top->n; t++) {
            const int tid = (int)bn_json_get(&top->items[t], "id")->number;
            worst = fmax(worst, fabs(bn_json_get(&top->items[t], "logprob")->number - (row[tid] - lse)));
            int above = 0; /* the alternatives are the k most likely, in order */
            for (int u = 0; u < n_vocab; u++) above += row[u] > row[tid];
            CHECK_MSG(above == (int)t, "position %d: alternative %zu (id %d) has %d tokens above it", i, t, tid, above);
        }
        /* temperature 0: the generated token is the most likely one */
        CHECK_EQ_INT(id, (int)bn_json_get(&top->items[0], "id")->number);
    }
    CHECK_MSG(worst < 1e-4, "logprobs differ from log-softmax(logits) by %g", worst);
    free(l);
    unlink(out);
    bn_json_free(v);
    /* the OpenAI shapes */
    v = post_json("/v1/chat/completions",
                  "{\"messages\":[{\"role\":\"user\",\"content\":\"Hi\"}],\"max_tokens\":3,\"logprobs\":true,\"top_logprobs\":2}",
                  200);
    const bn_json *c = bn_json_get(bn_json_get(&bn_json_get(v, "choices")->items[0], "logprobs"), "content");
    CHECK(c && c->type == BN_JSON_ARRAY && c->n == 3 && bn_json_get(&c->items[0], "token") &&
          bn_json_get(&c->items[0], "bytes") && bn_json_get(&c->items[0], "top_logprobs")->n == 2);
    bn_json_free(v);
    v = post_json("/v1/completions", "{\"prompt\":\"Once\",\"max_tokens\":3,\"logprobs\":1}", 200);
    const bn_json *lp = bn_json_get(&bn_json_get(v, "choices")->items[0], "logprobs");
    CHECK(lp && bn_json_get(lp, "tokens")->n == 3 && bn_json_get(lp, "token_logprobs")->n == 3 &&
          bn_json_get(lp, "top_logprobs")->n == 3 && bn_json_get(lp, "text_offset")->n == 3);
    bn_json_free(v);
    bn_json_free(post_json("/v1/chat/completions",
                           "{\"messages\":[{\"role\":\"user\",\"content\":\"Hi\"}],\"top_logprobs\":2}", 400));
    stop_server(srv, logf);
}

/* --embeddings: /v1/embeddings (float and base64) and /embedding give the
 * vector build/embed gives, L2-normalised; without the flag, a 501. */
static int b64_value(char c) {
    return c >= 'A' && c <= 'Z' ? c - 'A' : c >= 'a' && c <= 'z' ? c - 'a' + 26 : c >= '0' && c <= '9' ? c - '0' + 52
           : c == '+'           ? 62
           : c == '/'           ? 63
                                : -1;
}

TEST_E2E(server_embeddings) {
    SERVER_UP("--slots 1 --embeddings");
    int st = -1;
    char *ref_text = bn_test_run_tool("embed -m models/default.gguf -p 'Once upon' 2>/dev/null", NULL, &st);
    REQUIRE_MSG(st == 0 && ref_text, "build/embed failed");
    float ref[1024];
    int dim = 0;
    for (char *p = ref_text, *end; dim < 1024; p = end, dim++) {
        ref[dim] = strtof(p, &end);
        if (end == p) break;
    }
    free(ref_text);
    REQUIRE(dim > 8);
    bn_json *v = post_json("/v1/embeddings", "{\"input\":[\"Once upon\",\"a time\"],\"model\":\"x\"}", 200);
    const bn_json *data = bn_json_get(v, "data");
    REQUIRE(data && data->type == BN_JSON_ARRAY && data->n == 2);
    const bn_json *e = bn_json_get(&data->items[0], "embedding");
    REQUIRE(e && (int)e->n == dim);
    double worst = 0, norm = 0;
    for (int i = 0; i < dim; i++) { /* (fmax in this loop crashes aarch64 gcc 12's vectoriser) */
        const double d = fabs(e->items[i].number - ref[i]);
        if (d > worst) worst = d;
        norm += e->items[i].number * e->items[i].number;
    }
    CHECK_MSG(worst < 1e-6 && fabs(norm - 1) < 1e-5, "max diff from build/embed %g, norm^2 %g", worst, norm);
    CHECK(bn_json_get(bn_json_get(v, "usage"), "prompt_tokens")->number > 2);
    bn_json_free(v);
    v = post_json("/v1/embeddings", "{\"input\":\"Once upon\",\"encoding_format\":\"base64\"}", 200);
    const bn_json *s = bn_json_get(&bn_json_get(v, "data")->items[0], "embedding");
    REQUIRE(is_str(s) && s->len == (size_t)(dim * 4 + 2) / 3 * 4);
    unsigned char raw[4096];
    size_t nb = 0;
    for (size_t i = 0; i + 4 <= s->len && nb + 3 <= sizeof raw; i += 4) {
        const uint32_t x = (uint32_t)b64_value(s->str[i]) << 18 | (uint32_t)b64_value(s->str[i + 1]) << 12 |
                           (uint32_t)(s->str[i + 2] == '=' ? 0 : b64_value(s->str[i + 2])) << 6 |
                           (uint32_t)(s->str[i + 3] == '=' ? 0 : b64_value(s->str[i + 3]));
        raw[nb++] = (unsigned char)(x >> 16), raw[nb++] = (unsigned char)(x >> 8), raw[nb++] = (unsigned char)x;
    }
    float dec[1024];
    memcpy(dec, raw, (size_t)dim * 4); /* little-endian float32 (x86, arm: the host's order) */
    worst = 0;
    for (int i = 0; i < dim; i++)
        if (fabs(dec[i] - ref[i]) > worst) worst = fabs(dec[i] - ref[i]);
    CHECK_MSG(worst < 1e-6, "base64 embedding differs by %g", worst);
    bn_json_free(v);
    v = post_json("/embedding", "{\"content\":\"Once upon\"}", 200);
    const bn_json *rows = v && v->type == BN_JSON_ARRAY && v->n == 1 ? bn_json_get(&v->items[0], "embedding") : NULL;
    CHECK(rows && rows->n == 1 && (int)rows->items[0].n == dim);
    bn_json_free(v);
    bn_json_free(post_json("/v1/embeddings", "{\"input\":[]}", 400));
    bn_json_free(post_json("/v1/embeddings", "{\"input\":\"x\",\"encoding_format\":\"int8\"}", 400));
    stop_server(srv, logf);
    srv = start_server("--slots 1", logf, sizeof logf);
    REQUIRE_MSG(srv > 0, "server did not start");
    bn_json_free(post_json("/v1/embeddings", "{\"input\":\"x\"}", 501));
    stop_server(srv, logf);
}

/* 'n' > 1: that many choices of one prompt, indexed 0..n-1; at temperature 0
 * all the same text, and the same as n = 1; the other choices start from a
 * copy of the first one's prompt (more choices than slots queue). */
TEST_E2E(server_n_choices) {
    SERVER_UP("--slots 2 -c 256");
    bn_json *one = post_json("/v1/completions", "{\"prompt\":\"Once upon a time\",\"max_tokens\":12,\"temperature\":0}", 200);
    const char *want = choice_text(one, 0, NULL);
    bn_json *v = post_json("/v1/completions", "{\"prompt\":\"Once upon a time\",\"max_tokens\":12,\"temperature\":0,\"n\":3}", 200);
    const bn_json *ch = bn_json_get(v, "choices");
    REQUIRE(ch && ch->type == BN_JSON_ARRAY && ch->n == 3);
    for (size_t i = 0; i < 3; i++) {
        CHECK_EQ_INT(bn_json_get(&ch->items[i], "index")->number, (int)i);
        CHECK_STR(bn_json_get(&ch->items[i], "text")->str, want);
    }
    CHECK_EQ_INT(bn_json_get(bn_json_get(v, "usage"), "completion_tokens")->number, 36);
    bn_json_free(v);
    v = post_json("/v1/chat/completions",
                  "{\"messages\":[{\"role\":\"user\",\"content\":\"Hi\"}],\"max_tokens\":6,\"n\":2,\"seed\":3}", 200);
    ch = bn_json_get(v, "choices");
    CHECK(ch && ch->n == 2 && bn_json_get(bn_json_get(&ch->items[1], "message"), "content"));
    bn_json_free(v);
    bn_json_free(post_json("/v1/completions", "{\"prompt\":\"x\",\"n\":9}", 400));
    /* streamed: each choice's chunks carry its index, each ends with its finish_reason; at
     * temperature 0 every choice's text is n = 1's */
    char *sse = NULL;
    CHECK_EQ_INT(curl("-N -H 'Content-Type: application/json' -d '{\"prompt\":\"Once upon a time\",\"max_tokens\":12,"
                      "\"temperature\":0,\"n\":3,\"stream\":true,\"stream_options\":{\"include_usage\":true}}'",
                      "/v1/completions", &sse),
                 200);
    bn_buf texts[3] = {{0}};
    int finishes[3] = {0}, usage_tokens = -1;
    for (const char *p = sse; p && (p = strstr(p, "data: {")); p++) {
        const char *e = strstr(p, "\n\n");
        bn_json *ev = e ? bn_json_parse(p + 6, (size_t)(e - p - 6), NULL, 0) : NULL;
        const bn_json *chs = bn_json_get(ev, "choices"), *u = bn_json_get(ev, "usage");
        if (u) usage_tokens = (int)bn_json_get(u, "completion_tokens")->number;
        for (size_t k = 0; chs && k < chs->n; k++) {
            const int idx = (int)bn_json_get(&chs->items[k], "index")->number;
            const bn_json *t = bn_json_get(&chs->items[k], "text"), *f = bn_json_get(&chs->items[k], "finish_reason");
            REQUIRE(idx >= 0 && idx < 3);
            if (t) bn_buf_append(&texts[idx], t->str, t->len);
            if (is_str(f)) finishes[idx]++;
        }
        bn_json_free(ev);
    }
    for (int i = 0; i < 3; i++) {
        CHECK_MSG(texts[i].data && !strcmp(texts[i].data, want) && finishes[i] == 1, "choice %d: '%s' (%d finishes), want '%s'",
                  i, texts[i].data ? texts[i].data : "", finishes[i], want);
        bn_buf_free(&texts[i]);
    }
    CHECK_EQ_INT(usage_tokens, 36);
    CHECK(sse && strstr(sse, "data: [DONE]"));
    free(sse);
    /* logprobs per choice: one entry per generated token of that choice */
    v = post_json("/v1/chat/completions", "{\"messages\":[{\"role\":\"user\",\"content\":\"Hi\"}],\"max_tokens\":5,"
                                          "\"n\":2,\"seed\":5,\"temperature\":1,\"logprobs\":true,\"top_logprobs\":2}", 200);
    ch = bn_json_get(v, "choices");
    for (size_t i = 0; ch && i < ch->n; i++) {
        const bn_json *content = bn_json_get(bn_json_get(&ch->items[i], "logprobs"), "content");
        const bn_json *text = bn_json_get(bn_json_get(&ch->items[i], "message"), "content");
        bn_buf joined = {0};
        for (size_t k = 0; content && k < content->n; k++) {
            const bn_json *tok = bn_json_get(&content->items[k], "token");
            bn_buf_append(&joined, tok->str, tok->len);
        }
        CHECK_MSG(content && content->type == BN_JSON_ARRAY && content->n >= 1 && joined.data && text &&
                      !strcmp(joined.data, text->str), "choice %zu: logprobs' tokens '%s' vs text '%s'", i,
                  joined.data ? joined.data : "", text ? text->str : "");
        bn_buf_free(&joined);
    }
    CHECK(ch && ch->n == 2);
    bn_json_free(v);
    bn_json_free(one);
    stop_server(srv, logf);
}

/* logit_bias (OpenAI's {"id": bias}, llama.cpp's [[id, bias]] with false = never):
 * +100 on a token makes every generated token that one; false removes a token
 * the unbiased answer has; a token outside the vocabulary is a 400. */
TEST_E2E(server_logit_bias) {
    SERVER_UP("--slots 1 -c 256");
    bn_json *t = post_json("/tokenize", "{\"content\":\" the\"}", 200);
    const bn_json *toks = bn_json_get(t, "tokens");
    REQUIRE(toks && toks->n >= 1);
    const int the = (int)toks->items[toks->n - 1].number;
    bn_json_free(t);
    char body[512];
    snprintf(body, sizeof body, "{\"prompt\":\"Once upon a time\",\"max_tokens\":4,\"temperature\":0,\"logit_bias\":{\"%d\":100}}",
             the);
    bn_json *v = post_json("/v1/completions", body, 200);
    const char *text = choice_text(v, 0, NULL);
    CHECK_MSG(text && !strcmp(text, " the the the the"), "'%s'", text ? text : "");
    bn_json_free(v);
    v = post_json("/completion", "{\"prompt\":\"Once upon a time\",\"n_predict\":8,\"temperature\":0}", 200);
    const bn_json *c = bn_json_get(v, "content");
    REQUIRE(is_str(c) && strstr(c->str, " there"));
    bn_json_free(v);
    t = post_json("/tokenize", "{\"content\":\" there\"}", 200);
    toks = bn_json_get(t, "tokens");
    REQUIRE(toks && toks->n >= 1);
    snprintf(body, sizeof body, "{\"prompt\":\"Once upon a time\",\"n_predict\":8,\"temperature\":0,\"logit_bias\":[[%d,false]]}",
             (int)toks->items[toks->n - 1].number);
    bn_json_free(t);
    v = post_json("/completion", body, 200);
    c = bn_json_get(v, "content");
    CHECK_MSG(is_str(c) && !strstr(c->str, " there"), "%s", c ? c->str : "");
    bn_json_free(v);
    v = post_json("/v1/completions", "{\"prompt\":\"x\",\"logit_bias\":{\"999999\":1}}", 400);
    const bn_json *e = bn_json_get(bn_json_get(v, "error"), "message");
    CHECK_MSG(e && strstr(e->str, "'logit_bias': token 999999 is outside the vocabulary"), "%s", e ? e->str : "");
    bn_json_free(v);
    stop_server(srv, logf);
}

/* ---- JSON mode (response_format json_object) ------------------------------- */

static int json_mode_accepts(const char *text, int *done) {
    bn_json_mode s;
    bn_json_mode_init(&s);
    const int ok = bn_json_mode_feed(&s, text, strlen(text));
    *done = ok && bn_json_mode_done(&s);
    return ok;
}

/* The recogniser: complete objects are done, prefixes go on, anything else is
 * refused at the first byte that cannot be completed; and whatever it calls
 * complete, the JSON parser parses as an object (random texts over JSON's
 * alphabet). */
TEST(server_json_mode_recogniser) {
    static const char *const complete[] = {
        "{}", " {\"a\": 1}", "{\"a\":[1,2.5,-3e+7,0.0E1,true,false,null,\"x\\u00e9\\n\"],\"b\":{\"c\":{}}}",
        "{\"k\": \"caf\xc3\xa9 \\\"q\\\"\"}\n", "{\"a\":-0}", "{\"\":[]}", "{\"a\":[[[]]]}"};
    for (size_t i = 0; i < sizeof complete / sizeof complete[0]; i++) {
        int done;
        CHECK_MSG(json_mode_accepts(complete[i], &done) && done, "not complete: %s", complete[i]);
        bn_json *v = bn_json_parse(complete[i], strlen(complete[i]), NULL, 0);
        CHECK_MSG(v && v->type == BN_JSON_OBJECT, "the parser disagrees: %s", complete[i]);
        bn_json_free(v);
    }
    static const char *const prefixes[] = {"", "{", "{\"a", "{\"a\":", "{\"a\": 1", "{\"a\": 1.", "{\"a\": tr",
                                           "{\"a\": [1,", "{\"a\": \"\\u00"};
    for (size_t i = 0; i < sizeof prefixes / sizeof prefixes[0]; i++) {
        int done;
        CHECK_MSG(json_mode_accepts(prefixes[i], &done) && !done, "not a prefix: %s", prefixes[i]);
    }
    static const char *const bad[] = {"[]", "1", "\"x\"", "{a:1}", "{\"a\" 1}", "{\"a\":01}", "{\"a\":1.}",
                                      "{\"a\":-}", "{\"a\":tru}", "{\"a\":[1,]}", "{\"a\":1,}", "{}}", "{} x",
                                      "{\"a\":\"\\x\"}", "{\"a\":\"\x01\"}", "{\"a\":1]", "{   \"a\":1}"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int done;
        CHECK_MSG(!json_mode_accepts(bad[i], &done), "accepted: %s", bad[i]);
    }
    /* random texts: complete => the parser agrees */
    static const char alphabet[] = "{}[]\":,01-.eE+ \\ntrufalsn";
    uint64_t x = 88172645463325252ull;
    int n_complete = 0;
    for (int r = 0; r < 200000; r++) {
        char t[12];
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        const int len = 2 + (int)(x % 9);
        for (int i = 0; i < len; i++) {
            x ^= x << 13, x ^= x >> 7, x ^= x << 17;
            t[i] = alphabet[x % (sizeof alphabet - 1)];
        }
        t[len] = 0;
        int done;
        if (json_mode_accepts(t, &done) && done) {
            n_complete++;
            bn_json *v = bn_json_parse(t, (size_t)len, NULL, 0);
            CHECK_MSG(v && v->type == BN_JSON_OBJECT, "complete but not an object: '%s'", t);
            bn_json_free(v);
        }
    }
    CHECK(n_complete > 10);
}

/* Structured output through the server: OpenAI's response_format json_schema
 * and llama.cpp's json_schema / grammar fields. Every answer that ended by
 * itself follows the schema; the answers are streamed too; a schema keyword
 * the server cannot enforce is a 400 that names it. */
TEST_E2E(server_json_schema_and_grammar_outputs_follow_them) {
    SERVER_UP("--slots 2 -c 512");
    static const char schema[] =
        "{\"type\":\"object\",\"properties\":{\"name\":{\"type\":\"string\",\"maxLength\":12},"
        "\"mood\":{\"enum\":[\"happy\",\"sad\"]},\"age\":{\"type\":\"integer\"}},\"required\":[\"name\",\"mood\"],"
        "\"additionalProperties\":false}";
    int stops = 0;
    for (int i = 0; i < 12; i++) {
        char body[1024];
        snprintf(body, sizeof body,
                 "{\"messages\":[{\"role\":\"user\",\"content\":\"Describe a cat.\"}],\"max_tokens\":200,\"seed\":%d,"
                 "\"temperature\":%.2f,\"response_format\":{\"type\":\"json_schema\",\"json_schema\":{\"name\":\"cat\","
                 "\"strict\":true,\"schema\":%s}}}",
                 i, 0.25 * (i % 8), schema);
        bn_json *v = post_json("/v1/chat/completions", body, 200);
        const char *finish = NULL, *text = choice_text(v, 1, &finish);
        CHECK_MSG(finish && !strcmp(finish, "stop"), "seed %d: finish %s: %s", i, finish ? finish : "?", text);
        bn_json *o = text ? bn_json_parse(text, strlen(text), NULL, 0) : NULL;
        const bn_json *name = bn_json_get(o, "name"), *mood = bn_json_get(o, "mood"), *age = bn_json_get(o, "age");
        int ok = o && o->type == BN_JSON_OBJECT && is_str(name) && mood &&
                 mood->type == BN_JSON_STRING && (!strcmp(mood->str, "happy") || !strcmp(mood->str, "sad")) &&
                 (!age || (age->type == BN_JSON_NUMBER && age->integer)) && o->n == 2u + (age != NULL);
        if (ok) { /* maxLength counts characters */
            size_t chars = 0;
            for (size_t k = 0; k < name->len; k++) chars += ((unsigned char)name->str[k] & 0xC0) != 0x80;
            ok = chars <= 12;
        }
        stops += ok;
        CHECK_MSG(ok, "seed %d: does not follow the schema: %s", i, text ? text : "(none)");
        bn_json_free(o);
        bn_json_free(v);
    }
    printf("    %d of 12 answers follow the schema\n", stops);
    /* llama.cpp's /completion with a GBNF grammar, streamed */
    char *sse = NULL;
    int st = curl("-N -H 'Content-Type: application/json' -d '{\"prompt\":\"Once\",\"n_predict\":20,\"stream\":true,"
                  "\"grammar\":\"root ::= [a-c]{3} \\\" \\\" [0-9]{2,3}\"}'",
                  "/completion", &sse);
    CHECK_EQ_INT(st, 200);
    bn_buf all = {0};
    for (const char *p = sse; p && (p = strstr(p, "\"content\":\"")); p += 11) {
        const char *q = p + 11, *e = strchr(q, '"');
        if (e) bn_buf_append(&all, q, (size_t)(e - q));
    }
    const char *t = all.data ? all.data : "";
    const size_t n = strlen(t);
    int shape = (n == 6 || n == 7) && strspn(t, "abc") == 3 && t[3] == ' ' && strspn(t + 4, "0123456789") == n - 4;
    CHECK_MSG(shape, "grammar [a-c]{3} \" \" [0-9]{2,3}: '%s'", t);
    bn_buf_free(&all);
    free(sse);
    /* llama.cpp's json_schema field */
    bn_json *v = post_json("/completion", "{\"prompt\":\"Once\",\"n_predict\":40,\"json_schema\":{\"type\":\"array\","
                                          "\"items\":{\"type\":\"boolean\"},\"minItems\":2,\"maxItems\":2}}", 200);
    const bn_json *c = bn_json_get(v, "content");
    bn_json *arr = c && c->type == BN_JSON_STRING ? bn_json_parse(c->str, c->len, NULL, 0) : NULL;
    CHECK_MSG(arr && arr->type == BN_JSON_ARRAY && arr->n == 2 && arr->items[0].type == BN_JSON_BOOL &&
                  arr->items[1].type == BN_JSON_BOOL, "%s", str_or(c, "(none)"));
    bn_json_free(arr);
    bn_json_free(v);
    v = post_json("/v1/chat/completions",
                  "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"response_format\":{\"type\":\"json_schema\","
                  "\"json_schema\":{\"schema\":{\"type\":\"string\",\"format\":\"email\"}}}}", 400);
    const bn_json *e = bn_json_get(bn_json_get(v, "error"), "message");
    CHECK_MSG(is_str(e) && strstr(e->str, "unsupported JSON Schema format 'email' (date, time, date-time and uuid are) at $"), "%s",
              str_or(e, "(no message)"));
    bn_json_free(v);
    stop_server(srv, logf);
}

/* OpenAI function calling: with tool_choice "required" (or a named function)
 * every answer is a call whose arguments follow the tool's parameters, as
 * message.tool_calls with finish_reason "tool_calls", streamed too; with
 * "auto" an answer is a call or text that does not start with '{'; an earlier
 * call and its result are rendered into the prompt. */
TEST_E2E(server_tool_calls_follow_the_tools) {
    SERVER_UP("--slots 2 -c 1024");
    static const char tools[] =
        "\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"get_weather\",\"description\":\"weather of a city\","
        "\"parameters\":{\"type\":\"object\",\"properties\":{\"city\":{\"type\":\"string\",\"maxLength\":12},"
        "\"unit\":{\"enum\":[\"c\",\"f\"]}},\"required\":[\"city\"]}}},"
        "{\"type\":\"function\",\"function\":{\"name\":\"set_alarm\",\"parameters\":{\"type\":\"object\","
        "\"properties\":{\"hour\":{\"type\":\"integer\"}},\"required\":[\"hour\"]}}}]";
    int calls = 0, texts = 0;
    for (int i = 0; i < 8; i++) {
        char body[2048];
        snprintf(body, sizeof body,
                 "{\"messages\":[{\"role\":\"user\",\"content\":\"What is the weather in Paris?\"}],%s,"
                 "\"tool_choice\":\"%s\",\"seed\":%d,\"temperature\":%.2f,\"max_tokens\":120}",
                 tools, i < 4 ? "required" : "auto", i, 0.3 * i);
        bn_json *v = post_json("/v1/chat/completions", body, 200);
        const bn_json *ch = bn_json_get(v, "choices");
        const bn_json *c0 = ch && ch->type == BN_JSON_ARRAY && ch->n ? &ch->items[0] : NULL;
        const bn_json *msg = bn_json_get(c0, "message"), *fin = bn_json_get(c0, "finish_reason");
        const bn_json *tc = bn_json_get(msg, "tool_calls");
        if (tc) {
            const bn_json *f = tc->type == BN_JSON_ARRAY && tc->n == 1 ? bn_json_get(&tc->items[0], "function") : NULL;
            const bn_json *name = bn_json_get(f, "name"), *args = bn_json_get(f, "arguments");
            const bn_json *content = bn_json_get(msg, "content"), *id = bn_json_get(&tc->items[0], "id");
            bn_json *a = args && args->type == BN_JSON_STRING ? bn_json_parse(args->str, args->len, NULL, 0) : NULL;
            int ok = is_str(name) && a && a->type == BN_JSON_OBJECT && content &&
                     content->type == BN_JSON_NULL && is_str(id) && is_str(fin) &&
                     !strcmp(fin->str, "tool_calls");
            if (ok && !strcmp(name->str, "get_weather")) {
                const bn_json *city = bn_json_get(a, "city"), *unit = bn_json_get(a, "unit");
                ok = is_str(city) && (!unit || (unit->type == BN_JSON_STRING && strlen(unit->str) == 1)) &&
                     a->n == 1u + (unit != NULL);
            } else if (ok) {
                const bn_json *hour = bn_json_get(a, "hour");
                ok = !strcmp(name->str, "set_alarm") && hour && hour->type == BN_JSON_NUMBER && hour->integer && a->n == 1;
            }
            CHECK_MSG(ok, "request %d: a call that does not follow its tool: %s %s", i, str_or(name, "?"),
                      str_or(args, "?"));
            calls += ok;
            bn_json_free(a);
        } else {
            const bn_json *content = bn_json_get(msg, "content");
            CHECK_MSG(i >= 4 && is_str(content) && content->str[strspn(content->str, " \t\r\n")] != '{',
                      "request %d: no call", i);
            texts++;
        }
        bn_json_free(v);
    }
    printf("    %d calls, %d text answers\n", calls, texts);
    CHECK(calls >= 4);
    /* streamed: the call in one delta, then finish_reason "tool_calls" */
    char *sse = NULL, args[2200];
    snprintf(args, sizeof args,
             "-N -H 'Content-Type: application/json' -d '{\"messages\":[{\"role\":\"user\",\"content\":\"Alarm at 7\"}],%s,"
             "\"tool_choice\":{\"type\":\"function\",\"function\":{\"name\":\"set_alarm\"}},\"stream\":true,\"max_tokens\":200}'",
             tools);
    CHECK_EQ_INT(curl(args, "/v1/chat/completions", &sse), 200);
    CHECK_MSG(sse && strstr(sse, "\"tool_calls\":[{\"index\":0,\"id\":\"call_") && strstr(sse, "\"name\":\"set_alarm\"") &&
                  strstr(sse, "\"finish_reason\":\"tool_calls\"") && strstr(sse, "data: [DONE]"),
              "%s", sse ? sse : "");
    free(sse);
    /* the history: an earlier call and its result reach the prompt */
    char body[2048];
    snprintf(body, sizeof body,
             "{\"messages\":[{\"role\":\"user\",\"content\":\"Weather?\"},{\"role\":\"assistant\",\"content\":null,"
             "\"tool_calls\":[{\"id\":\"c1\",\"type\":\"function\",\"function\":{\"name\":\"get_weather\","
             "\"arguments\":\"{\\\"city\\\":\\\"Paris\\\"}\"}}]},{\"role\":\"tool\",\"tool_call_id\":\"c1\",\"content\":\"sunny, 21 C\"}],%s}",
             tools);
    bn_json *v = post_json("/apply-template", body, 200);
    const bn_json *prompt = bn_json_get(v, "prompt");
    CHECK_MSG(is_str(prompt) && strstr(prompt->str, "get_weather") &&
                  strstr(prompt->str, "{\"name\": \"get_weather\", \"arguments\": {\"city\":\"Paris\"}}") &&
                  strstr(prompt->str, "sunny, 21 C") && strstr(prompt->str, "set_alarm"),
              "%s", str_or(prompt, "(none)"));
    bn_json_free(v);
    stop_server(srv, logf);
}

/* response_format json_object: at any temperature and seed, an answer that
 * ended by itself is one JSON object; one cut by max_tokens is a prefix of one. */
TEST_E2E(server_json_object_outputs_are_json) {
    SERVER_UP("--slots 2 -c 512");
    int stops = 0;
    for (int i = 0; i < 20; i++) {
        char body[512];
        snprintf(body, sizeof body,
                 "{\"messages\":[{\"role\":\"user\",\"content\":\"Reply in JSON.\"}],\"max_tokens\":160,\"seed\":%d,"
                 "\"temperature\":%.2f,\"response_format\":{\"type\":\"json_object\"}}",
                 i, 0.1 * (i % 16));
        bn_json *v = post_json("/v1/chat/completions", body, 200);
        const char *finish = NULL, *text = choice_text(v, 1, &finish);
        int done;
        CHECK_MSG(json_mode_accepts(text, &done), "seed %d: not JSON: %s", i, text);
        if (finish && !strcmp(finish, "stop")) {
            stops++;
            bn_json *o = bn_json_parse(text, strlen(text), NULL, 0);
            CHECK_MSG(done && o && o->type == BN_JSON_OBJECT, "seed %d: ended but does not parse: %s", i, text);
            bn_json_free(o);
        }
        bn_json_free(v);
    }
    printf("    %d of 20 answers ended by themselves (the others reached max_tokens)\n", stops);
    bn_json_free(post_json("/v1/chat/completions",
                           "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"response_format\":{\"type\":\"json_schema\"}}",
                           400));
    stop_server(srv, logf);
}

/* --lookup: speculative decoding in every slot (prompt lookup, verified in
 * the step's batch, rejected drafts removed from the cache) prints the text
 * plain decoding prints, greedy and sampled (same seed), with stop strings
 * and logprobs, one choice or two decoded together; repetitive text keeps
 * draft tokens (/metrics). */
static char *post_choices(const char *body) {
    char *resp = NULL;
    int code = post("/v1/completions", body, &resp);
    CHECK_MSG(code == 200, "HTTP %d: %s", code, resp ? resp : "");
    bn_json *v = resp ? bn_json_parse(resp, strlen(resp), NULL, 0) : NULL;
    const bn_json *ch = bn_json_get(v, "choices");
    bn_buf all = {0};
    for (size_t i = 0; ch && i < ch->n; i++) {
        const bn_json *t = bn_json_get(&ch->items[i], "text");
        bn_buf_printf(&all, "[%s]", str_or(t, "(none)"));
    }
    bn_json_free(v);
    free(resp);
    return all.data ? all.data : strdup("");
}

TEST_E2E(server_lookup_speculative_keeps_the_text) {
    static const char *bodies[] = {
        "{\"prompt\": \"Once upon a time there was a little girl named Lily. Once upon a time\", \"max_tokens\": 80, "
        "\"temperature\": 0}",
        "{\"prompt\": \"Once upon a time there was a little girl named Lily. Once upon a time\", \"max_tokens\": 80, "
        "\"temperature\": 0.8, \"seed\": 11}",
        "{\"prompt\": \"The cat sat on the mat. The cat sat on the\", \"max_tokens\": 60, \"temperature\": 0, "
        "\"stop\": [\"park\"], \"logprobs\": 2}",
        "{\"prompt\": \"Tom and Spot ran to the park. Tom and Spot\", \"max_tokens\": 50, \"temperature\": 0.7, "
        "\"seed\": 3, \"n\": 2}",
    };
    enum { N = sizeof bodies / sizeof bodies[0] };
    char *plain[N], *spec[N], log[256];
    for (int pass = 0; pass < 2; pass++) {
        pid_t srv = start_server(pass ? "--slots 2 -c 512 --lookup 3 --draft-max 8" : "--slots 2 -c 512", log, sizeof log);
        REQUIRE_MSG(srv > 0, "server did not start");
        for (int i = 0; i < N; i++) (pass ? spec : plain)[i] = post_choices(bodies[i]);
        if (pass) {
            char *m = NULL;
            CHECK_EQ_INT(curl(AUTH, "/metrics", &m), 200);
            const char *a = m ? strstr(m, "\nbitnet_draft_accepted_tokens_total ") : NULL;
            const char *d = m ? strstr(m, "\nbitnet_draft_tokens_total ") : NULL;
            const long long acc = a ? atoll(a + 36) : -1, drafted = d ? atoll(d + 27) : -1;
            CHECK_MSG(acc > 0 && drafted >= acc, "drafted %lld, accepted %lld", drafted, acc);
            fprintf(stderr, "    --lookup 3: %lld of %lld drafted tokens kept\n", acc, drafted);
            free(m);
        }
        stop_server(srv, log);
    }
    for (int i = 0; i < N; i++) {
        CHECK_MSG(strlen(plain[i]) > 4 && !strcmp(plain[i], spec[i]), "request %d:\n  plain %s\n  --lookup %s", i, plain[i],
                  spec[i]);
        free(plain[i]);
        free(spec[i]);
    }
}

/* llama-server's slot actions (--slot-save-path): a slot's cached prompt is
 * saved, erased, restored into another slot and, after a restart, into a new
 * server process; a request with the same prompt then reuses those tokens and
 * prints the same text. Bad ids, actions and file names get 4xx. */
static int slot_action(const char *path_query, const char *json, char **resp) {
    return post(path_query, json ? json : "{}", resp);
}

static int cached_in_slot(int want_slot) {
    char *b = NULL;
    CHECK_EQ_INT(curl(AUTH, "/slots", &b), 200);
    bn_json *v = b ? bn_json_parse(b, strlen(b), NULL, 0) : NULL;
    const bn_json *c = v && v->type == BN_JSON_ARRAY && (size_t)want_slot < v->n ? bn_json_get(&v->items[want_slot], "n_cached") : NULL;
    const int n = c ? (int)c->number : -1;
    bn_json_free(v);
    free(b);
    return n;
}

TEST_E2E(server_slot_save_restore_erase) {
    char opts[700], log[256], *r = NULL;
    const char *dir = bn_test_tmp(".slots");
    REQUIRE(bn_test_mkdir(dir) == 0);
    snprintf(opts, sizeof opts, "--slots 2 -c 512 --slot-save-path %s", dir);
    static const char fields[] = "\"prompt\": \"Once upon a time, in a small village by the sea, there lived a girl named "
                                 "Lily. She loved to play with her dog Max on the beach every morning.\"";
    pid_t srv = start_server(opts, log, sizeof log);
    REQUIRE_MSG(srv > 0, "server did not start");
    int c0, c1, c2;
    char *a = completion_text(fields, &c0);
    const int n0 = cached_in_slot(0);
    CHECK_MSG(c0 == 0 && n0 > 30, "cached %d, slot 0 holds %d", c0, n0);
    CHECK_EQ_INT(slot_action("/slots/0?action=save", "{\"filename\": \"lily.bin\"}", &r), 200);
    CHECK_MSG(r && strstr(r, "\"n_saved\":") && strstr(r, "\"filename\":\"lily.bin\""), "%s", r);
    free(r);
    CHECK_EQ_INT(slot_action("/slots/0?action=erase", NULL, &r), 200);
    free(r);
    CHECK_EQ_INT(cached_in_slot(0), 0);
    CHECK_EQ_INT(slot_action("/slots/1?action=restore", "{\"filename\": \"lily.bin\"}", &r), 200);
    CHECK_MSG(r && strstr(r, "\"n_restored\":"), "%s", r);
    free(r);
    CHECK_EQ_INT(cached_in_slot(1), n0);
    char *b = completion_text(fields, &c1);
    CHECK_MSG(c1 > 40, "after restore: reused %d of the %d cached", c1, n0); /* the prompt but its last token */
    CHECK_STR(b, a);
    /* refusals */
    CHECK_EQ_INT(slot_action("/slots/0?action=save", "{\"filename\": \"../x.bin\"}", &r), 400);
    free(r);
    CHECK_EQ_INT(slot_action("/slots/0?action=save", "{\"name\": \"x.bin\"}", &r), 400);
    free(r);
    CHECK_EQ_INT(slot_action("/slots/0?action=fly", NULL, &r), 400);
    free(r);
    CHECK_EQ_INT(slot_action("/slots/7?action=erase", NULL, &r), 400);
    free(r);
    CHECK_EQ_INT(slot_action("/slots/0?action=restore", "{\"filename\": \"missing.bin\"}", &r), 400);
    CHECK_MSG(r && strstr(r, "missing.bin"), "%s", r ? r : "");
    free(r);
    CHECK_EQ_INT(curl(AUTH, "/slots/0?action=save", &r), 405);
    free(r);
    stop_server(srv, log);
    /* a new process: the saved slot continues there */
    srv = start_server(opts, log, sizeof log);
    REQUIRE_MSG(srv > 0, "server did not restart");
    CHECK_EQ_INT(slot_action("/slots/0?action=restore", "{\"filename\": \"lily.bin\"}", &r), 200);
    free(r);
    char *d = completion_text(fields, &c2);
    CHECK_MSG(c2 == c1, "after a restart: reused %d, after a restore in the same process %d", c2, c1);
    CHECK_STR(d, a);
    stop_server(srv, log);
    /* without --slot-save-path: 501 */
    srv = start_server("--slots 1", log, sizeof log);
    REQUIRE_MSG(srv > 0, "server did not start");
    CHECK_EQ_INT(slot_action("/slots/0?action=erase", NULL, &r), 501);
    free(r);
    stop_server(srv, log);
    char p[700];
    snprintf(p, sizeof p, "%s/lily.bin", dir);
    remove(p);
    free(a);
    free(b);
    free(d);
}

/* --context-shift (llama-server's): a generation longer than the slot's
 * context goes on (half of the tokens after n_keep dropped each time the
 * context fills) and ends at max_tokens; without it, at the context. The
 * shifted positions are never reused by the prefix cache: a request with
 * n_keep -1 keeps its prompt, and the same request again reuses that prompt
 * and prints the same text; with n_keep 0 only BOS is kept and reused. */
static bn_json *completion_json(const char *body) {
    char *resp = NULL;
    int code = post("/v1/completions", body, &resp);
    CHECK_MSG(code == 200, "HTTP %d: %s", code, resp ? resp : "");
    bn_json *v = resp ? bn_json_parse(resp, strlen(resp), NULL, 0) : NULL;
    free(resp);
    return v;
}

static double usage_field(const bn_json *v, const char *a, const char *b) {
    const bn_json *x = bn_json_get(bn_json_get(v, "usage"), a);
    if (b) x = bn_json_get(x, b);
    return x && x->type == BN_JSON_NUMBER ? x->number : -1;
}

TEST_E2E(server_context_shift_goes_past_the_context) {
    char log[256];
    static const char keep_all[] = "{\"prompt\": \"Once upon a time there was a girl\", \"max_tokens\": 150, "
                                   "\"temperature\": 0, \"ignore_eos\": true, \"n_keep\": -1}";
    static const char keep_bos[] = "{\"prompt\": \"Once upon a time there was a girl\", \"max_tokens\": 150, "
                                   "\"temperature\": 0, \"ignore_eos\": true}";
    pid_t srv = start_server("--slots 1 -c 64", log, sizeof log);
    REQUIRE_MSG(srv > 0, "server did not start");
    bn_json *v = completion_json(keep_all);
    const double plain_n = usage_field(v, "completion_tokens", NULL);
    CHECK_MSG(plain_n > 0 && plain_n < 64, "without --context-shift: %g tokens", plain_n);
    bn_json_free(v);
    stop_server(srv, log);

    srv = start_server("--slots 1 -c 64 --context-shift", log, sizeof log);
    REQUIRE_MSG(srv > 0, "server did not start");
    v = completion_json(keep_all);
    const char *finish = NULL;
    const char *a = choice_text(v, 0, &finish);
    char *first = strdup(a);
    const double n_prompt = usage_field(v, "prompt_tokens", NULL);
    CHECK_MSG(usage_field(v, "completion_tokens", NULL) == 150 && finish && !strcmp(finish, "length"),
              "--context-shift: %g tokens, finish %s", usage_field(v, "completion_tokens", NULL), finish ? finish : "?");
    bn_json_free(v);
    v = completion_json(keep_all);
    CHECK_MSG(usage_field(v, "prompt_tokens_details", "cached_tokens") == n_prompt - 1,
              "n_keep -1: reused %g of %g", usage_field(v, "prompt_tokens_details", "cached_tokens"), n_prompt);
    CHECK_STR(choice_text(v, 0, &finish), first);
    bn_json_free(v);
    v = completion_json(keep_bos);
    bn_json_free(v);
    v = completion_json(keep_bos);
    CHECK_MSG(usage_field(v, "prompt_tokens_details", "cached_tokens") <= 1, "n_keep 0: reused %g",
              usage_field(v, "prompt_tokens_details", "cached_tokens"));
    bn_json_free(v);
    char *m = NULL;
    CHECK_EQ_INT(curl(AUTH, "/metrics", &m), 200);
    const char *s = m ? strstr(m, "\nbitnet_context_shifts_total ") : NULL;
    CHECK_MSG(s && atoll(s + 30) >= 6, "%s", s ? s : "no bitnet_context_shifts_total");
    free(m);
    free(first);
    stop_server(srv, log);
}
