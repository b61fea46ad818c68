/* test_session.c - session files (bitnet_state_save_file / load_file): a
 * loaded prefix continues exactly as where it was evaluated, and every file
 * that does not fit the context is refused with one line. */
#include <stdio.h>
#include <string.h>

#include "bitnet.h"
#include "test.h"

static bitnet_context *new_ctx(bitnet_model *m, bitnet_kv_type kv) {
    bitnet_context_params cp = bitnet_context_default_params();
    cp.n_ctx = 64;
    cp.kv_type = kv;
    bitnet_context *ctx = NULL;
    CHECK(bitnet_context_new(m, &cp, &ctx) == BITNET_OK);
    return ctx;
}

static void flip_byte(const char *path, long off) {
    FILE *f = fopen(path, "r+b");
    if (!f) return;
    fseek(f, off, off < 0 ? SEEK_END : SEEK_SET);
    int c = fgetc(f);
    fseek(f, -1, SEEK_CUR);
    fputc(c ^ 0x40, f);
    fclose(f);
}

/* Evaluate a prompt but its last token, save, load into a fresh context, then
 * evaluate the last token in both: the logits are the same bits, for every
 * KV cache type the file stores as it is. */
TEST(session_file_continues_bit_for_bit) {
    bitnet_model *m = NULL;
    REQUIRE(bitnet_model_load_default(NULL, &m) == BITNET_OK);
    const int nv = bitnet_n_vocab(m);
    bitnet_token t[48], back[48];
    const int n = bitnet_tokenize(m, "Lily and Ben went to the park to play with their ball", 1, t, 48);
    REQUIRE(n > 8);
    const char *path = bn_test_tmp(".session");
    const bitnet_kv_type kvs[] = {BITNET_KV_F32, BITNET_KV_F16, BITNET_KV_Q8, BITNET_KV_Q4};
    for (int k = 0; k < 4; k++) {
        bitnet_context *a = new_ctx(m, kvs[k]), *b = new_ctx(m, kvs[k]);
        REQUIRE(a && b);
        REQUIRE(bitnet_eval(a, t, n - 1, 0) == BITNET_OK);
        CHECK(bitnet_state_save_file(a, path, t, n - 1) == BITNET_OK);
        CHECK_EQ_INT(bn_test_temporaries_left(path), 0);
        int got = -1;
        CHECK(bitnet_state_load_file(b, path, back, 48, &got) == BITNET_OK);
        CHECK(got == n - 1 && !memcmp(back, t, (size_t)got * sizeof *t));
        CHECK_EQ_INT(bitnet_seq_n_pos(b, 0), n - 1);
        REQUIRE(bitnet_eval(a, &t[n - 1], 1, n - 1) == BITNET_OK);
        REQUIRE(bitnet_eval(b, &t[n - 1], 1, n - 1) == BITNET_OK);
        CHECK_MSG(!memcmp(bitnet_get_logits(a), bitnet_get_logits(b), (size_t)nv * sizeof(float)),
                  "kv %s: the loaded prefix gives other logits", bitnet_kv_type_name(kvs[k]));
        bitnet_context_free(a);
        bitnet_context_free(b);
    }
    bitnet_model_free(m);
}

/* Files that do not fit: another model, another KV type, a damaged or cut
 * file, too many tokens, not a session file. Each is refused with a line that
 * names the file; a refused header leaves the context as it was. */
TEST(session_file_refuses_what_does_not_fit) {
    bitnet_model *m = NULL, *other = NULL;
    REQUIRE(bitnet_model_load_default(NULL, &m) == BITNET_OK);
    bitnet_token t[32], back[32];
    const int n = bitnet_tokenize(m, "Once upon a time there was a cat", 1, t, 32);
    REQUIRE(n > 4);
    const char *path = bn_test_tmp(".session");
    char cut[600];
    snprintf(cut, sizeof cut, "%s.cut", path);
    bitnet_context *ctx = new_ctx(m, BITNET_KV_F32), *f16 = new_ctx(m, BITNET_KV_F16);
    REQUIRE(ctx && f16);
    REQUIRE(bitnet_eval(ctx, t, n, 0) == BITNET_OK);
    CHECK(bitnet_state_save_file(ctx, path, t, n + 1) == BITNET_ERR_ARG && strstr(bitnet_last_error(), "holds"));
    CHECK(bitnet_state_save_file(ctx, "/nonexistent-dir/x.session", t, n) != BITNET_OK &&
          strstr(bitnet_last_error(), "nonexistent-dir"));
    REQUIRE(bitnet_state_save_file(ctx, path, t, n) == BITNET_OK);
    int got = -1;
    REQUIRE(bitnet_eval(f16, t, 3, 0) == BITNET_OK);
    CHECK(bitnet_state_load_file(f16, path, back, 32, &got) == BITNET_ERR_ARG && strstr(bitnet_last_error(), path) &&
          strstr(bitnet_last_error(), "KV cache is f32, this context's f16"));
    CHECK_EQ_INT(bitnet_seq_n_pos(f16, 0), 3); /* untouched */
    CHECK(bitnet_state_load_file(ctx, path, back, n - 1, &got) == BITNET_ERR_ARG && strstr(bitnet_last_error(), "token buffer"));
    const char *s260 = bn_test_shared("models/stories260K.gguf");
    if (s260 && bitnet_model_load(s260, NULL, &other) == BITNET_OK) {
        bitnet_context *o = new_ctx(other, BITNET_KV_F32);
        CHECK(o && bitnet_state_load_file(o, path, back, 32, &got) == BITNET_ERR_ARG &&
              strstr(bitnet_last_error(), "written for another model"));
        bitnet_context_free(o);
        bitnet_model_free(other);
    }
    /* cut short */
    size_t len = 0;
    char *bytes = bn_test_read_file(path, &len);
    REQUIRE(bytes && len > 100);
    FILE *f = fopen(cut, "wb");
    REQUIRE(f);
    fwrite(bytes, 1, len - 9, f);
    fclose(f);
    CHECK(bitnet_state_load_file(ctx, cut, back, 32, &got) == BITNET_ERR_FORMAT && strstr(bitnet_last_error(), "truncated"));
    CHECK_EQ_INT(bitnet_seq_n_pos(ctx, 0), n);
    /* not a session file */
    f = fopen(cut, "wb");
    REQUIRE(f);
    fwrite("GGUF\3\0\0\0", 1, 8, f);
    fclose(f);
    CHECK(bitnet_state_load_file(ctx, cut, back, 32, &got) == BITNET_ERR_FORMAT &&
          strstr(bitnet_last_error(), "not a session file"));
    CHECK(bitnet_state_load_file(ctx, "/nonexistent-dir/x.session", back, 32, &got) == BITNET_ERR_IO);
    /* a flipped bit in the keys: the checksum catches it and sequence 0 is emptied */
    flip_byte(path, (long)len - 100);
    CHECK(bitnet_state_load_file(ctx, path, back, 32, &got) == BITNET_ERR_FORMAT && strstr(bitnet_last_error(), "checksum"));
    CHECK_EQ_INT(bitnet_seq_n_pos(ctx, 0), 0);
    free(bytes);
    remove(cut);
    remove(path);
    bitnet_context_free(ctx);
    bitnet_context_free(f16);
    bitnet_model_free(m);
}

/* bitnet_state_seq_*: a prefix saved from sequence 1 of a two-sequence
 * context loads into sequence 0 of a one-sequence context (and back into
 * sequence 1) and continues as where it was evaluated; sequence 0 of the
 * first context is untouched by either. */
TEST(session_file_moves_between_sequences) {
    bitnet_model *m = NULL;
    REQUIRE(bitnet_model_load_default(NULL, &m) == BITNET_OK);
    const int nv = bitnet_n_vocab(m);
    bitnet_token t[48], back[48], other[8];
    const int n = bitnet_tokenize(m, "The cat sat on the mat and looked at the bird", 1, t, 48);
    const int no = bitnet_tokenize(m, "Lily ran", 1, other, 8);
    REQUIRE(n > 6 && no > 1);
    const char *path = bn_test_tmp(".session");
    bitnet_context_params cp = bitnet_context_default_params();
    cp.n_ctx = 64;
    cp.kv_type = BITNET_KV_F32;
    cp.n_seq = 2;
    bitnet_context *two = NULL, *one = NULL;
    REQUIRE(bitnet_context_new(m, &cp, &two) == BITNET_OK);
    cp.n_seq = 1;
    REQUIRE(bitnet_context_new(m, &cp, &one) == BITNET_OK);
    int pos[48], seq[48];
    for (int i = 0; i < n - 1; i++) pos[i] = i, seq[i] = 1;
    REQUIRE(bitnet_eval_batch(two, t, pos, seq, n - 1) == BITNET_OK);
    REQUIRE(bitnet_eval(two, other, no, 0) == BITNET_OK); /* sequence 0 */
    CHECK(bitnet_state_seq_save_file(two, 1, path, t, n - 1) == BITNET_OK);
    CHECK(bitnet_state_seq_save_file(two, 2, path, t, n - 1) == BITNET_ERR_ARG);
    int got = -1;
    CHECK(bitnet_state_seq_load_file(one, 0, path, back, 48, &got) == BITNET_OK && got == n - 1);
    CHECK(bitnet_state_seq_load_file(two, 1, path, back, 48, &got) == BITNET_OK && got == n - 1);
    CHECK_EQ_INT(bitnet_seq_n_pos(two, 0), no);
    int p = n - 1, s1 = 1;
    REQUIRE(bitnet_eval_batch(two, &t[n - 1], &p, &s1, 1) == BITNET_OK);
    REQUIRE(bitnet_eval(one, &t[n - 1], 1, n - 1) == BITNET_OK);
    CHECK(!memcmp(bitnet_get_logits_seq(two, 1), bitnet_get_logits(one), (size_t)nv * sizeof(float)));
    bitnet_context_free(two);
    bitnet_context_free(one);
    bitnet_model_free(m);
}
