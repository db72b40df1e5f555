/* The digests of the read loop (release/_native.c): a file's hashes, and the SHA-1 piece stream of a group. */
#ifndef RELEASE_DIGESTS_H
#define RELEASE_DIGESTS_H

#include <stdint.h>
#include <string.h>

#define OPENSSL_SUPPRESS_DEPRECATED /* the one-shot SHA256_/MD5_ contexts live on the stack */
#include <openssl/md5.h>
#include <openssl/sha.h>

#define XXH_INLINE_ALL
#include <xxhash.h>

#include "_buf.h"

#define ALGO_XXH3 1
#define ALGO_SHA256 2
#define ALGO_MD5 4

/* Cuts the span's stream bytes into head, whole pieces (hashed) and tail; readpass.Stitcher joins
 * the heads and tails of neighbouring groups into the boundary pieces. */
typedef struct {
    int64_t pos, first, last, length;
    int bounded, open;
    SHA_CTX piece;
    Buf head, pieces, tail;
} Sink;

static void sink_init(Sink *s, int64_t start, int64_t end, int64_t length) {
    memset(s, 0, sizeof *s);
    s->pos = start;
    s->length = length;
    s->first = (start + length - 1) / length * length;
    s->last = end / length * length;
    s->bounded = s->first <= end;
}

static int sink_feed(Sink *s, const unsigned char *data, size_t len) {
    while (len) {
        size_t n;
        if (!s->bounded || s->pos < s->first) {
            n = s->bounded && (int64_t)len > s->first - s->pos ? (size_t)(s->first - s->pos) : len;
            if (buf_add(&s->head, data, n)) return -1;
        } else if (s->pos < s->last) {
            int64_t left = s->length - (s->pos - s->first) % s->length;
            n = (int64_t)len < left ? len : (size_t)left;
            if (!s->open) {
                SHA1_Init(&s->piece);
                s->open = 1;
            }
            SHA1_Update(&s->piece, data, n);
            if ((s->pos + (int64_t)n - s->first) % s->length == 0) {
                unsigned char digest[SHA_DIGEST_LENGTH];
                SHA1_Final(digest, &s->piece);
                s->open = 0;
                if (buf_add(&s->pieces, digest, sizeof digest)) return -1;
            }
        } else {
            n = len;
            if (buf_add(&s->tail, data, n)) return -1;
        }
        s->pos += (int64_t)n;
        data += n;
        len -= n;
    }
    return 0;
}

static void sink_free(Sink *s) {
    free(s->head.data);
    free(s->pieces.data);
    free(s->tail.data);
}

typedef struct {
    int algos;
    XXH3_state_t *xxh;
    SHA256_CTX sha;
    MD5_CTX md5;
} Hashers;

static size_t digest_width(int algos) {
    return (algos & ALGO_XXH3 ? 16 : 0) + (algos & ALGO_SHA256 ? 32 : 0) + (algos & ALGO_MD5 ? 16 : 0);
}

static void hashers_start(Hashers *h) {
    if (h->algos & ALGO_XXH3) XXH3_128bits_reset(h->xxh);
    if (h->algos & ALGO_SHA256) SHA256_Init(&h->sha);
    if (h->algos & ALGO_MD5) MD5_Init(&h->md5);
}

static void hashers_update(Hashers *h, const unsigned char *p, size_t n) {
    if (h->algos & ALGO_XXH3) XXH3_128bits_update(h->xxh, p, n);
    if (h->algos & ALGO_SHA256) SHA256_Update(&h->sha, p, n);
    if (h->algos & ALGO_MD5) MD5_Update(&h->md5, p, n);
}

static void hashers_finish(Hashers *h, unsigned char *out) {
    if (h->algos & ALGO_XXH3) {
        XXH128_canonical_t canon;
        XXH128_canonicalFromHash(&canon, XXH3_128bits_digest(h->xxh));
        memcpy(out, canon.digest, 16);
        out += 16;
    }
    if (h->algos & ALGO_SHA256) {
        SHA256_Final(out, &h->sha);
        out += 32;
    }
    if (h->algos & ALGO_MD5) MD5_Final(out, &h->md5);
}

#endif
