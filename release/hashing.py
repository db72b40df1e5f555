"""The hashing engine: every byte read once, fed to every consumer, on every core.

Files are grouped into batches of consecutive files (by count and bytes) and hashed in a pool of
forked worker processes; results come back in input order, so callers can stream them straight
into an ordered output. A batch is the unit a worker owns: later consumers that need a contiguous
byte stream (BitTorrent piece hashes across file boundaries) plug in per batch, returning only the
partial pieces at the batch edges for the parent to stitch.
"""

from __future__ import annotations

import hashlib
import multiprocessing
import os
import signal
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from multiprocessing.pool import AsyncResult, Pool
from typing import Any, Generic, TypeVar

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

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class FileHash:
    """Result of hashing one file: hex digests in the order asked, bytes read, or an error."""

    digests: tuple[str, ...]
    size_read: int
    error: str | None = None


def hash_one(path: str, algorithms: tuple[str, ...]) -> FileHash:
    """Hash one file with every algorithm from a single read; never follows a symlink."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except OSError as exc:
        return FileHash((), 0, exc.strerror or str(exc))
    hashers = [HASHERS[name]() for name in algorithms]
    total = 0
    try:
        if len(hashers) == 1:
            update = hashers[0].update
            while chunk := os.read(fd, READ_SIZE):
                update(chunk)
                total += len(chunk)
        else:
            while chunk := os.read(fd, READ_SIZE):
                for hasher in hashers:
                    hasher.update(chunk)
                total += len(chunk)
    except OSError as exc:
        return FileHash((), total, exc.strerror or str(exc))
    finally:
        os.close(fd)
    return FileHash(tuple(h.hexdigest() for h in hashers), total)


def _hash_batch(root: str, algorithms: tuple[str, ...], paths: list[str]) -> list[FileHash]:
    join = os.path.join
    return [hash_one(join(root, rel), algorithms) for rel in paths]


def _worker_init() -> None:
    # Ctrl-C goes to the whole process group: the parent handles it and terminates the pool.
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def default_workers() -> int:
    """One worker per usable core."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - non-Linux
        return max(1, os.cpu_count() or 1)


class HashEngine:
    """A pool of hashing processes. Use as a context manager; `workers=0` hashes in-process."""

    def __init__(self, workers: int | None = None) -> None:
        self.workers = default_workers() if workers is None else workers
        self._pool: Pool | None = None

    def __enter__(self) -> HashEngine:
        if self.workers > 0:
            self._pool = multiprocessing.get_context("fork").Pool(self.workers, _worker_init)
        return self

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        if self._pool is not None:
            if exc_type is None:
                self._pool.close()
            else:
                self._pool.terminate()
            self._pool.join()
            self._pool = None

    def hash_files(
        self,
        root: str,
        items: Iterable[tuple[T, str, int]],
        algorithms: tuple[str, ...],
    ) -> Iterator[tuple[T, FileHash]]:
        """Hash `(tag, relpath, size)` items under `root`; yield `(tag, FileHash)` in input order.

        Input is consumed lazily with a bounded number of batches in flight, so memory stays
        flat however many files there are.
        """
        for name in algorithms:
            if name not in HASHERS:
                raise ValueError(f"unknown hash algorithm {name!r}")
        batches = _batched(items)
        if self._pool is None:
            for batch in batches:
                yield from zip(batch.tags, _hash_batch(root, algorithms, batch.paths), strict=True)
            return
        pending: deque[tuple[_Batch[T], AsyncResult[list[FileHash]]]] = deque()
        limit = self.workers * INFLIGHT_PER_WORKER
        for batch in batches:
            pending.append((batch, self._pool.apply_async(_hash_batch, (root, algorithms, batch.paths))))
            if len(pending) >= limit:
                done, result = pending.popleft()
                yield from zip(done.tags, result.get(), strict=True)
        while pending:
            done, result = pending.popleft()
            yield from zip(done.tags, result.get(), strict=True)


@dataclass(slots=True)
class _Batch(Generic[T]):
    tags: list[T]
    paths: list[str]


def _batched(items: Iterable[tuple[T, str, int]]) -> Iterator[_Batch[T]]:
    batch: _Batch[T] = _Batch([], [])
    size = 0
    for tag, path, nbytes in items:
        batch.tags.append(tag)
        batch.paths.append(path)
        size += nbytes
        if len(batch.paths) >= BATCH_FILES or size >= BATCH_BYTES:
            yield batch
            batch, size = _Batch([], []), 0
    if batch.paths:
        yield batch
