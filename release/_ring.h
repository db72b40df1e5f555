/* Reads of small files through io_uring, for the read loop in _native.c.
 *
 * Each reading thread has one ring of its own (created on first use, freed when the thread ends) with
 * RING_SLOTS direct descriptors and a RING_SLOT_SIZE buffer per slot. A file's open, read and close go in
 * as one linked chain, so a batch of files costs a few system calls instead of three per file and never
 * touches the process's fd table, which the reading threads otherwise share. Without liburing at build time,
 * or where the kernel refuses io_uring (seccomp, io_uring_disabled), ring_ready() says 0 and the caller reads
 * with plain system calls.
 */
#ifndef BOORU_RING_H
#define BOORU_RING_H

#include <stdint.h>

#define RING_SLOTS 16
/* Files under this size go through the ring. Above it the copy out of the page cache outweighs the system
 * calls saved, and a slot buffer of 64 KiB cost the small-file tree's build 10-15 MB of peak RSS for nothing. */
#define RING_SLOT_SIZE (16 * 1024)

/* Whether io_uring may be used at all (on by default); the tests turn it off to compare the two paths. */
void ring_enable(int on);

/* 1 when this thread's ring is there (created now if need be), else 0. */
int ring_ready(void);

/* The buffer of a slot, RING_SLOT_SIZE bytes. */
unsigned char *ring_buffer(int slot);

/* Queues the chain for one file: open `name` in folder `dirfd` as the slot's descriptor, read up to `len`
 * bytes from offset 0 into the slot's buffer, close it. The chain goes in at the next ring_wait. */
void ring_queue(int slot, int dirfd, const char *name, unsigned len);

/* Submits what is queued and waits until a chain ends: its slot, the open's result (0, or -errno) and the
 * read's (bytes read, or -errno). Returns 0, or -errno when the ring failed; the ring is then gone for this
 * thread and no chain in flight is to be trusted. */
int ring_wait(int *slot, int *open_res, int *read_res);

#endif
