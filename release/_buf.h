/* A growable byte buffer, shared by the C modules (release/_native.c, release/_listing.c, release/_bencode.c). */
#ifndef RELEASE_BUF_H
#define RELEASE_BUF_H

#include <stdlib.h>
#include <string.h>

typedef struct {
    char *data;
    size_t len, cap;
} Buf;

/* Append n bytes; -1 when memory runs out (the buffer is left as it was). */
static int buf_add(Buf *b, const void *p, size_t n) {
    if (b->len + n > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < b->len + n) cap *= 2;
        char *grown = realloc(b->data, cap);
        if (!grown) return -1;
        b->data = grown;
        b->cap = cap;
    }
    memcpy(b->data + b->len, p, n);
    b->len += n;
    return 0;
}

#endif
