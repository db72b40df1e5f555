/* io_uring reads of small files for the read loop: see _ring.h. */
#define _GNU_SOURCE
#include "_ring.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>

static int enabled = 1;

void ring_enable(int on) { enabled = on; }

#ifdef HAVE_LIBURING
#include <linux/openat2.h>
#include <liburing.h>
#include <pthread.h>
#include <unistd.h>

enum { KIND_OPEN, KIND_READ, KIND_CLOSE };

typedef struct {
    struct io_uring ring;
    pid_t pid; /* a forked child must not submit to its parent's ring (one issuer per ring) */
    unsigned char *buffers;
    int open_res[RING_SLOTS], read_res[RING_SLOTS];
} Ring;

static _Thread_local Ring *mine;
static _Thread_local int refused; /* this thread's ring could not be made: plain reads from now on */
static pthread_key_t key;
static pthread_once_t once = PTHREAD_ONCE_INIT;

static void ring_free(void *arg) {
    Ring *r = arg;
    if (!r) return;
    io_uring_queue_exit(&r->ring);
    free(r->buffers);
    free(r);
}

static void make_key(void) { (void)pthread_key_create(&key, ring_free); }

static Ring *ring_new(void) {
    Ring *r = calloc(1, sizeof *r);
    if (!r) return NULL;
    r->buffers = malloc((size_t)RING_SLOTS * RING_SLOT_SIZE);
    struct io_uring_params p = {.flags = IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_COOP_TASKRUN};
    int ok = r->buffers != NULL;
    /* a kernel older than 6.0 refuses the flags: they only save work, so try again without them */
    if (ok && io_uring_queue_init_params(4 * RING_SLOTS, &r->ring, &p) != 0) {
        struct io_uring_params plain = {0};
        ok = io_uring_queue_init_params(4 * RING_SLOTS, &r->ring, &plain) == 0;
    }
    if (ok && io_uring_register_files_sparse(&r->ring, RING_SLOTS) != 0) {
        io_uring_queue_exit(&r->ring);
        ok = 0;
    }
    if (!ok) {
        free(r->buffers);
        free(r);
        return NULL;
    }
    r->pid = getpid();
    return r;
}

int ring_ready(void) {
    if (!enabled || refused) return 0;
    if (mine && mine->pid != getpid()) { /* inherited through fork: the child makes its own */
        ring_free(mine);
        mine = NULL;
    }
    if (!mine) {
        pthread_once(&once, make_key);
        mine = ring_new();
        if (!mine) {
            refused = 1;
            return 0;
        }
        pthread_setspecific(key, mine);
    }
    return 1;
}

unsigned char *ring_buffer(int slot) { return mine->buffers + (size_t)slot * RING_SLOT_SIZE; }

static struct io_uring_sqe *sqe(int slot, int kind) {
    struct io_uring_sqe *s = io_uring_get_sqe(&mine->ring); /* 4 entries a slot: never NULL */
    io_uring_sqe_set_data64(s, ((uint64_t)slot << 2) | (uint64_t)kind);
    return s;
}

void ring_queue(int slot, int dirfd, const char *name, unsigned len) {
    /* hard links: the read and the close run even when the step before failed (a short read, which every
     * read here is, would cut a soft link), so the slot is always empty again when the close ends */
    /* Never wait on the disk: a name or data not in the kernel's caches fails with EAGAIN instead of going
     * to io_uring's worker threads (cold, that cost 50% more time than plain reads on 16 threads), and the
     * caller reads that file with plain system calls. */
    static const struct open_how how = {
        .flags = O_RDONLY | O_NOFOLLOW | O_NONBLOCK,
        .resolve = RESOLVE_CACHED,
    };
    struct io_uring_sqe *s = sqe(slot, KIND_OPEN);
    io_uring_prep_openat2_direct(s, dirfd, name, (struct open_how *)&how, (unsigned)slot);
    s->flags |= IOSQE_IO_HARDLINK;
    s = sqe(slot, KIND_READ);
    io_uring_prep_read(s, slot, ring_buffer(slot), len, 0);
    s->rw_flags = RWF_NOWAIT;
    s->flags |= IOSQE_FIXED_FILE | IOSQE_IO_HARDLINK;
    s = sqe(slot, KIND_CLOSE);
    io_uring_prep_close_direct(s, (unsigned)slot);
}

int ring_wait(int *slot, int *open_res, int *read_res) {
    int err = io_uring_sq_ready(&mine->ring) ? io_uring_submit(&mine->ring) : 0;
    for (;;) {
        struct io_uring_cqe *c = NULL;
        if (err >= 0) err = io_uring_peek_cqe(&mine->ring, &c);
        if (err == -EAGAIN) err = io_uring_submit_and_wait(&mine->ring, 1);
        if (err == -EINTR || (err >= 0 && !c)) {
            err = 0;
            continue;
        }
        if (err < 0) {
            ring_free(mine);
            pthread_setspecific(key, NULL);
            mine = NULL;
            refused = 1;
            return err;
        }
        int s = (int)(c->user_data >> 2), kind = (int)(c->user_data & 3), res = c->res;
        io_uring_cqe_seen(&mine->ring, c);
        if (kind == KIND_OPEN) mine->open_res[s] = res;
        if (kind == KIND_READ) mine->read_res[s] = res;
        if (kind == KIND_CLOSE) {
            *slot = s;
            *open_res = mine->open_res[s];
            *read_res = mine->read_res[s];
            return 0;
        }
    }
}

#else /* built without liburing: plain reads only */

int ring_ready(void) { return 0; }
unsigned char *ring_buffer(int slot) { return NULL; }
void ring_queue(int slot, int dirfd, const char *name, unsigned len) {}
int ring_wait(int *slot, int *open_res, int *read_res) { return -ENOSYS; }

#endif
