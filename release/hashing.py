"""The hashing engine: every byte read once, fed to every consumer, on every core.

Work is cut into batches of consecutive items (by count and bytes) and run in a pool of forked
worker processes; results come back in input order with a bounded number of batches in flight,
so callers stream them straight into an ordered output whatever the tree's size. A batch is the
unit a worker owns: each caller passes its own batch function (hash files for a manifest, check
files for verify), and consumers that need a contiguous byte stream (BitTorrent piece hashes
across file boundaries) plug in per batch, returning only the partial pieces at the batch edges
for the parent to stitch.
"""

from __future__ import annotations

import hashlib
import itertools
import multiprocessing
import os
import signal
import stat
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from multiprocessing.pool import AsyncResult, Pool
from typing import Any, TypeVar

import xxhash

HASHERS: dict[str, Callable[[], Any]] = {
    "xxh3_128": xxhash.xxh3_128,
    "sha256": hashlib.sha256,
    "md5": hashlib.md5,
}
ALL_ALGORITHMS: tuple[str, ...] = ("xxh3_128", "sha256", "md5")
READ_SIZE = 1 << 20
BATCH_FILES = 256
BATCH_BYTES = 32 << 20
INFLIGHT_PER_WORKER = 3
OPEN_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK  # never follow a link, never block on a fifo

T = TypeVar("T")
R = TypeVar("R")


def hash_fd(fd: int, algorithms: Sequence[str], size: int) -> tuple[tuple[str, ...], int]:
    """Read the first `size` bytes of `fd` once, feeding every algorithm; return hex digests and bytes read.

    `size` comes from fstat of the open file: reading exactly that much saves the extra read
    that would only find the end of the file (a measurable cost over millions of small files).
    Fewer bytes read than `size` means the file shrank while being read.
    """
    hashers = [HASHERS[name]() for name in algorithms]
    total = 0
    while total < size:
        chunk = os.read(fd, min(READ_SIZE, size - total))
        if not chunk:
            break
        for hasher in hashers:
            hasher.update(chunk)
        total += len(chunk)
    return tuple(h.hexdigest() for h in hashers), total


def hash_path(path: str, algorithms: Sequence[str]) -> tuple[tuple[str, ...], int, str | None]:
    """Hash one regular file from a single read; (digests, bytes read, error or None).

    Symlinks are not followed and special files are refused (never blocking on a fifo).
    """
    try:
        fd = os.open(path, OPEN_FLAGS)
    except OSError as exc:
        return (), 0, exc.strerror or str(exc)
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            return (), 0, "not a regular file"
        digests, total = hash_fd(fd, algorithms, st.st_size)
    except OSError as exc:
        return (), 0, exc.strerror or str(exc)
    finally:
        os.close(fd)
    return digests, total, None


def _worker_init(setup: Callable[..., None] | None, args: tuple[Any, ...]) -> None:
    # Ctrl-C goes to the whole process group: the parent handles it and terminates the pool.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if setup is not None:
        setup(*args)


def default_workers() -> int:
    """One worker per usable core."""
    return max(1, len(os.sched_getaffinity(0)))


class HashEngine:
    """An ordered, bounded pool of worker processes; use as a context manager.

    `workers=0` runs batches in-process. `setup(*setup_args)` runs once in every worker (and
    in-process), before any batch: use it to hand workers large read-only state once.
    """

    def __init__(
        self, workers: int | None = None, setup: Callable[..., None] | None = None, setup_args: tuple[Any, ...] = ()
    ) -> None:
        self.workers = default_workers() if workers is None else workers
        self._setup = setup
        self._setup_args = setup_args
        self._pool: Pool | None = None

    def __enter__(self) -> HashEngine:
        if self.workers > 0:
            ctx = multiprocessing.get_context("fork")
            self._pool = ctx.Pool(self.workers, _worker_init, (self._setup, self._setup_args))
        elif self._setup is not None:
            self._setup(*self._setup_args)
        return self

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        if self._pool is not None:
            if exc_type is None:
                self._pool.close()
            else:
                self._pool.terminate()
            self._pool.join()
            self._pool = None

    def map_batches(self, fn: Callable[[T], R], batches: Iterable[T]) -> Iterator[R]:
        """Run `fn` on every batch, yielding results in input order; input is consumed lazily."""
        if self._pool is None:
            yield from map(fn, batches)
            return
        pending: deque[AsyncResult[R]] = deque()
        limit = self.workers * INFLIGHT_PER_WORKER
        for batch in batches:
            pending.append(self._pool.apply_async(fn, (batch,)))
            if len(pending) >= limit:
                yield pending.popleft().get()
        while pending:
            yield pending.popleft().get()


def batched(
    items: Iterable[T], size_of: Callable[[T], int] | None = None, limit: int = BATCH_FILES
) -> Iterator[list[T]]:
    """Group items into batches of at most `limit` items or about BATCH_BYTES bytes."""
    iterator = iter(items)
    if size_of is None:
        while batch := list(itertools.islice(iterator, limit)):
            yield batch
        return
    batch = []
    size = 0
    for item in iterator:
        batch.append(item)
        size += size_of(item)
        if len(batch) >= limit or size >= BATCH_BYTES:
            yield batch
            batch, size = [], 0
    if batch:
        yield batch
