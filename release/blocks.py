"""Output compressed a block at a time on every core and written in order: the xz streams of the tarballs and
file lists, the zstd frames of a manifest.

The cut depends only on the bytes (never on the core count or on how the writes were sized), so the
output is reproducible. A block is compressed on its own, so a reader can decompress blocks side by side.
"""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager


@contextmanager
def compress_pool(threads: int | None = None) -> Iterator[ThreadPoolExecutor]:
    """Threads to compress blocks on, by default one per core (liblzma and zstd release the GIL).

    Leaving on an error (SIGTERM's SystemExit included) does not wait for the blocks being compressed: their
    output is dropped anyway, and the outputs entered before the pool (`atomic_output`) remove their
    temporaries at once instead of after seconds of xz, perhaps at nice 19 under a busy cut."""
    pool = ThreadPoolExecutor(max_workers=threads or os.cpu_count() or 1, thread_name_prefix="compress")
    try:
        yield pool
    except BaseException:
        pool.shutdown(wait=False, cancel_futures=True)
        raise
    pool.shutdown(cancel_futures=True)


Item = bytes | Future[bytes] | Callable[[int], None]


class OrderedOutput:
    """Bytes written to `write` in the order they were queued, though some are still being compressed
    (futures); a callable in the queue is called with the offset reached at its place (to record where a
    stream starts and ends). At most `limit` futures wait at a time."""

    def __init__(self, write: Callable[[bytes], object], limit: int | None = None) -> None:
        self.write, self.offset = write, 0
        self.limit = limit or 2 * (os.cpu_count() or 1)  # blocks in memory: two per thread
        self.queue: deque[Item] = deque()
        self.waiting = 0

    def put(self, item: Item) -> None:
        """Queue `item`, then write out whatever is ready at the head."""
        self.queue.append(item)
        self.waiting += isinstance(item, Future)
        self._drain(wait=False)

    def finish(self) -> None:
        """Write everything queued, waiting for what is still being compressed."""
        self._drain(wait=True)

    def _drain(self, wait: bool) -> None:
        while self.queue:
            head = self.queue[0]
            if isinstance(head, Future):
                if not (wait or head.done() or self.waiting > self.limit):
                    return
                data = head.result()
                self.waiting -= 1
            elif callable(head):
                head(self.offset)
                self.queue.popleft()
                continue
            else:
                data = head
            self.queue.popleft()
            self.write(data)
            self.offset += len(data)


class CompressedBlocks:
    """Bytes written become consecutive blocks, each compressed by `compress` on `pool` and queued on `out` in
    order; at least one block, even for no bytes. A block ends after `block` bytes, or, with `boundary`,
    at the first boundary byte from there on (whole lines in every block)."""

    def __init__(
        self,
        out: OrderedOutput,
        pool: ThreadPoolExecutor,
        block: int,
        compress: Callable[[bytes], bytes],
        boundary: bytes | None = None,
    ) -> None:
        self.out, self.pool, self.block, self.compress, self.boundary = out, pool, block, compress, boundary
        self.pending = bytearray()
        self.blocks = 0

    def write(self, data: bytes) -> None:
        """Queue `data`; every whole block goes to the pool (cut from `data` itself: a big write is not copied
        into the buffer first)."""
        view, start = memoryview(data), 0
        while (end := self._end(data, start)) is not None:
            self._submit(b"".join((self.pending, view[start:end])))  # one copy of the block
            self.pending.clear()
            start = end
        self.pending += view[start:]

    def _end(self, data: bytes, start: int) -> int | None:
        """Where in `data` the block under way ends (it holds `pending`, then `data` from `start`)."""
        end = start + self.block - len(self.pending)
        if end > len(data):
            return None
        if self.boundary is None:
            return end
        found = data.find(self.boundary, max(end - 1, start))
        return None if found < 0 else found + 1

    def close(self) -> None:
        """Send what is left to the pool (the output's `finish` waits for it)."""
        if self.pending or not self.blocks:
            self._submit(bytes(self.pending))
            self.pending.clear()

    def _submit(self, data: bytes) -> None:
        self.out.put(self.pool.submit(self.compress, data))
        self.blocks += 1
