"""The hashing engine: every byte read once, fed to every consumer, on every core.

Work is cut into batches of consecutive items (by count and bytes) and run in a pool of workers:
threads when the batch function spends its time in the native read loop (`read_files`, which
releases the GIL: nothing is pickled), forked processes when it is mostly Python (walking, parsing
manifest lines). Results come back in input order with a bounded number of batches in flight,
so callers stream them straight into an ordered output whatever the tree's size. A batch is the
unit a worker owns: each caller passes its own batch function (hash files for a manifest, check
files for verify), and consumers that need a contiguous byte stream (BitTorrent piece hashes
across file boundaries) plug in per batch, returning only the partial pieces at the batch edges
for the parent to stitch.
"""

from __future__ import annotations

import functools
import itertools
import multiprocessing
import os
import signal
from array import array
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from enum import IntEnum
from multiprocessing.pool import AsyncResult, Pool
from typing import Any, NamedTuple, TypeVar

import numpy as np

from release import _native
from release.errors import BadInput

ALL_ALGORITHMS: tuple[str, ...] = ("xxh3_128", "sha256", "md5")
ALGORITHM_BITS = {"xxh3_128": 1, "sha256": 2, "md5": 4}  # the native module's mask; digests come in this order
DIGEST_BYTES = {"xxh3_128": 16, "sha256": 32, "md5": 16}
READ_SIZE = 1 << 20  # the native read loop's buffer (boundary sizes in tests)
BATCH_FILES = 256
BATCH_BYTES = 32 << 20
INFLIGHT_PER_WORKER = 3
# Files read at a time by verify and manifest build (--io-depth). The native loop releases the GIL, so a
# thread per outstanding read costs nothing warm (979k tiny files, verify: 6.0-6.8 s with 2, 16 or 32
# threads) and cold the disk gets a deeper queue: verify 34.7 s with 2 threads, 22.7 with 8, 18.0 with 16,
# 17.0 with 32 (xxhsum -c as 2 processes: 30.1 s); manifest build 42.5 s with 2, 27.8 s with 16.
IO_DEPTH = 16
HASH = b"\x01"  # hash_flags of read_files: read and hash the file
STAT_ONLY = b"\x02"  # only check that it is a regular file of its size (lstat, not opened)
OPEN_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK  # never follow a link, never block on a fifo

# Small files are read through io_uring where the kernel allows it (release/_ring.c: open, read and close
# of a file in one chain, several files a system call). BOORU_RELEASE_IO_URING=0 reads with plain system
# calls, for a kernel or sandbox where io_uring misbehaves; the results are the same either way.
IO_URING_ENV = "BOORU_RELEASE_IO_URING"
RING_BY_DEFAULT = os.environ.get(IO_URING_ENV, "1") != "0"  # what the tests put back after forcing either way
_native.use_ring(RING_BY_DEFAULT)


def ring_bytes() -> int:
    """Bytes this process has read through io_uring so far (read calls' bytes are in /proc/self/io, these
    are not)."""
    return _native.ring_bytes()


T = TypeVar("T")
R = TypeVar("R")


class Code(IntEnum):
    """What happened to one file of a native read (`FilesRead.codes`); `values` holds the detail."""

    OK = 0
    OPEN = 1  # value: errno of open
    NOT_REGULAR = 2  # value: st_mode
    SIZE = 3  # value: the size found
    SHORT = 4  # value: bytes read before the file ended early
    READ = 5  # value: errno of fstat or read


class FilesRead(NamedTuple):
    """The result of `read_files`: per file a code, a detail and the digests; the span's pieces."""

    digests: bytes  # per file, the selected algorithms' raw digests in ALL_ALGORITHMS order
    codes: bytes  # one Code per file
    values: bytes  # one int64 detail per file
    head: bytes  # stream bytes before the span's first piece boundary
    pieces: bytes  # SHA-1 of every piece wholly inside the span
    tail: bytes  # stream bytes after its last piece boundary
    nbytes: int  # bytes read
    lines: bytes  # with mtimes: the record line of each hashed file (none for one that failed)
    line_ends: bytes  # int64 end offset in `lines` of each hashed file's line

    def hex_digests(self, index: int, algorithms: tuple[str, ...] = ALL_ALGORITHMS) -> tuple[str, ...]:
        """File `index`'s digests as hex, for the `algorithms` it was read with (ALL_ALGORITHMS order)."""
        width, parts = _digest_layout(algorithms)
        packed = self.digests[width * index : width * (index + 1)].hex()
        return tuple([packed[part] for part in parts])

    def value(self, index: int) -> int:
        """The detail of file `index` (errno, st_mode or a byte count, by its code)."""
        return int.from_bytes(self.values[8 * index : 8 * index + 8], "little", signed=True)


def _int64s(values: Sequence[int] | np.ndarray) -> bytes:
    return values.astype(np.int64).tobytes() if isinstance(values, np.ndarray) else array("q", values).tobytes()


class PathSpans(NamedTuple):
    """Paths as spans of one buffer (a FileTable's blob): path i is blob[spans[i, 0]:spans[i, 1]]."""

    blob: bytes | bytearray
    spans: np.ndarray  # int64, (files, 2)


def read_files(
    root: str,
    paths: Sequence[bytes] | PathSpans,
    sizes: Sequence[int] | np.ndarray,
    *,
    algorithms: Sequence[str] = ALL_ALGORITHMS,
    hash_flags: bytes | None = None,
    starts: Sequence[int] | np.ndarray | None = None,
    span: tuple[int, int, int] = (0, 0, 0),
    mtimes: np.ndarray | None = None,
) -> FilesRead:
    """Read each file under `root` once, in C with the GIL released: file hashes and piece hashes.

    A file is checked to be regular and of its expected size before it is read; a symlink is never
    followed. `hash_flags` (one byte per file, default all 1) says which files get `algorithms`;
    with `span` = (stream start, stream end, piece length), the bytes of each file from its
    `starts` offset on feed a SHA-1 piece stream covering [start, end) (see readpass). `paths` is a
    list, or spans of one buffer. With `mtimes` (all three algorithms), each hashed file's manifest
    record line is written too, in C.
    """
    flags = hash_flags if hash_flags is not None else HASH * len(sizes)
    mask = sum(ALGORITHM_BITS[name] for name in algorithms)
    starts_raw = _int64s(starts) if starts is not None else None
    mtimes_raw = _int64s(mtimes) if mtimes is not None else None
    start, end, length = span
    names: object = paths
    spans = None
    if isinstance(paths, PathSpans):
        names, spans = paths.blob, paths.spans.astype(np.int64).tobytes()
    sizes_raw = _int64s(sizes)
    raw = _native.read_group(root, names, sizes_raw, starts_raw, flags, mask, start, end, length, mtimes_raw, spans)
    return FilesRead(*raw)


@functools.cache
def _digest_layout(algorithms: tuple[str, ...]) -> tuple[int, tuple[slice, ...]]:
    """A file's packed digest width in bytes, and where each selected digest lies in its hex."""
    parts = []
    pos = 0
    for name in ALL_ALGORITHMS:
        if name in algorithms:
            parts.append(slice(2 * pos, 2 * (pos + DIGEST_BYTES[name])))
            pos += DIGEST_BYTES[name]
    return pos, tuple(parts)


def hash_path(path: str, algorithms: tuple[str, ...]) -> tuple[tuple[str, ...], int, str | None]:
    """Hash one regular file from a single read; (digests in ALL_ALGORITHMS order, bytes read, error or None).

    Symlinks are not followed and special files are refused (never blocking on a fifo).
    """
    try:
        size = os.lstat(path).st_size
    except OSError as exc:
        return (), 0, exc.strerror or str(exc)
    folder, name = os.path.split(path)
    got = read_files(folder or ".", [os.fsencode(name)], [size], algorithms=algorithms)
    code = Code(got.codes[0])
    if code is Code.OK:
        return got.hex_digests(0, algorithms), got.nbytes, None
    return (), got.nbytes, describe(code, got.value(0))


def describe(code: Code, value: int) -> str:
    """A plain description of a failed read (the callers add context: expected sizes, paths)."""
    if code in (Code.OPEN, Code.READ):
        return os.strerror(value)
    if code is Code.NOT_REGULAR:
        return "not a regular file"
    if code is Code.SIZE:
        return f"changed size to {value} bytes"
    return f"ended after {value} bytes"


def _worker_init(setup: Callable[..., None] | None, args: tuple[Any, ...]) -> None:
    # Ctrl-C goes to the whole process group: the parent handles it and terminates the pool.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)  # the parent's handler raises; a worker just ends
    if setup is not None:
        setup(*args)


def default_workers() -> int:
    """One worker per usable core."""
    return max(1, len(os.sched_getaffinity(0)))


def reader_threads(workers: int | None, io_depth: int) -> int:
    """Threads of a read pass (verify, manifest build): `io_depth` reads in flight, at least `workers`;
    0 (this thread) when `workers` is 0. BadInput for fewer than one read in flight."""
    if io_depth < 1:
        raise BadInput("--io-depth", "at least 1 read in flight")
    return 0 if workers == 0 else max(io_depth, workers or 0)


class HashEngine:
    """An ordered, bounded pool of workers; use as a context manager.

    `workers=0` runs batches in-process. `threads=True` runs them on threads of this process (for
    batch functions that spend their time in `read_files`), otherwise on forked processes.
    `setup(*setup_args)` runs once in every worker process (once in-process for threads or
    `workers=0`), before any batch: use it to hand workers large read-only state once.
    """

    def __init__(
        self,
        workers: int | None = None,
        setup: Callable[..., None] | None = None,
        setup_args: tuple[Any, ...] = (),
        *,
        threads: bool = False,
    ) -> None:
        self.workers = default_workers() if workers is None else workers
        self.threads = threads
        self._setup = setup
        self._setup_args = setup_args
        self._pool: Pool | None = None
        self._executor: ThreadPoolExecutor | None = None

    def __enter__(self) -> HashEngine:
        if self.workers > 0 and not self.threads:
            ctx = multiprocessing.get_context("fork")
            self._pool = ctx.Pool(self.workers, _worker_init, (self._setup, self._setup_args))
            return self
        if self._setup is not None:
            self._setup(*self._setup_args)
        if self.workers > 0:
            self._executor = ThreadPoolExecutor(self.workers, thread_name_prefix="hash")
        return self

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        if self._pool is not None:
            if exc_type is None:
                self._pool.close()
            else:
                self._pool.terminate()
            self._pool.join()
            self._pool = None
        if self._executor is not None:
            # a running batch cannot be interrupted; it is bounded (BATCH_BYTES), queued ones are dropped
            self._executor.shutdown(wait=True, cancel_futures=exc_type is not None)
            self._executor = None

    def map_batches(self, fn: Callable[[T], R], batches: Iterable[T], inflight: int | None = None) -> Iterator[R]:
        """Run `fn` on every batch, yielding results in input order; input is consumed lazily, at most
        `inflight` batches ahead (by default INFLIGHT_PER_WORKER per worker)."""
        submit: Callable[[T], AsyncResult[R] | Future[R]]
        if self._pool is not None:
            pool = self._pool
            submit = lambda batch: pool.apply_async(fn, (batch,))  # noqa: E731
        elif self._executor is not None:
            executor = self._executor
            submit = lambda batch: executor.submit(fn, batch)  # noqa: E731
        else:
            yield from map(fn, batches)
            return
        pending: deque[AsyncResult[R] | Future[R]] = deque()
        limit = inflight or self.workers * INFLIGHT_PER_WORKER
        for batch in batches:
            pending.append(submit(batch))
            if len(pending) >= limit:
                yield _result(pending.popleft())
        while pending:
            yield _result(pending.popleft())


def _result(pending: AsyncResult[R] | Future[R]) -> R:
    return pending.get() if isinstance(pending, AsyncResult) else pending.result()


def row_batches(sizes: np.ndarray, rows: np.ndarray, limit: int = BATCH_FILES) -> Iterator[np.ndarray]:
    """`rows` (indices into `sizes`) cut like `batched`: at most `limit` rows or about BATCH_BYTES."""
    total = np.cumsum(sizes[rows])
    start = 0
    while start < len(rows):
        base = int(total[start - 1]) if start else 0
        end = min(start + limit, int(np.searchsorted(total, base + BATCH_BYTES)) + 1, len(rows))
        yield rows[start:end]
        start = end


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
