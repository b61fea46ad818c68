/* key_heap.h - a binary heap of records ordered by their uint64_t `key`, for
 * the merge loops of the SentencePiece and BPE encoders (the best merge on
 * top; keys are unique, they carry the position).
 *
 *   BN_KEY_HEAP(name, T, BEFORE)
 * defines name_push(T *heap, int32_t *n, T item) and T name_pop(T *heap,
 * int32_t *n) (n > 0), BEFORE(a, b) true when key a belongs above key b. */
#ifndef BN_KEY_HEAP_H
#define BN_KEY_HEAP_H

#include <stdint.h>

#define BN_KEY_HEAP(NAME, T, BEFORE)                                  \
    static void NAME##_push(T *h, int32_t *n, T item) {               \
        int32_t i = (*n)++;                                           \
        while (i > 0 && BEFORE(item.key, h[(i - 1) / 2].key)) {       \
            h[i] = h[(i - 1) / 2];                                    \
            i = (i - 1) / 2;                                          \
        }                                                             \
        h[i] = item;                                                  \
    }                                                                 \
    static T NAME##_pop(T *h, int32_t *n) {                           \
        const T top = h[0], last = h[--*n];                           \
        int32_t i = 0;                                                \
        for (;;) {                                                    \
            int32_t c = 2 * i + 1;                                    \
            if (c >= *n) break;                                       \
            if (c + 1 < *n && BEFORE(h[c + 1].key, h[c].key)) c++;    \
            if (!BEFORE(h[c].key, last.key)) break;                   \
            h[i] = h[c];                                              \
            i = c;                                                    \
        }                                                             \
        if (*n > 0) h[i] = last;                                      \
        return top;                                                   \
    }

#endif
