"""One read pass for file hashes and BitTorrent piece hashes together.

A shard's byte stream is its files concatenated in shard order (manifest order restricted to the
shard: ID ascending, then path). Work goes to the workers as *groups* of whole consecutive files of
one shard, so every file is read once, by one worker, which feeds its bytes to the file hashers and
to a piece hasher. The worker hashes the pieces that lie wholly inside its group and hands back the
raw bytes before its first and after its last piece boundary; the parent (`Stitcher`) joins those
with the neighbouring groups' into the boundary pieces. Files of no shard (or whose pieces are all
reused from last year's torrent) travel in plain groups that only compute file hashes.

Groups of different shards interleave in manifest order, so results are re-ordered in a bounded
window before the manifest lines are written.
"""

from __future__ import annotations

import hashlib
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import numpy as np

from release import _records
from release.errors import InputIOError
from release.hashing import BATCH_BYTES, BATCH_FILES, Code, HashEngine, describe, read_files, row_batches
from release.progress import Ticker
from release.walk import FileTable

GROUP_BYTES = 64 << 20
GROUP_FILES = 4096
REORDER_WINDOW = 50_000
MAX_LISTED_ERRORS = 20  # manifest positions buffered at most before forcing the oldest group out


@dataclass
class Streams:
    """Which shard stream each table row feeds, and where each shard's hashing starts."""

    piece_length: list[int]
    shard_of: np.ndarray  # int32 per table row; -1: in no shard
    offset: np.ndarray  # int64 per table row: stream offset of the file's first byte
    totals: list[int]  # bytes of each shard's stream
    start: list[int] = field(default_factory=list)  # stream offset where hashing starts (a piece boundary)
    reused: list[bytes] = field(default_factory=list)  # piece hashes kept from last year, start // L of them

    def __post_init__(self) -> None:
        shards = len(self.piece_length)
        self.start = self.start or [0] * shards
        self.reused = self.reused or [b""] * shards

    def piece_from(self, row: int, size: int) -> int:
        """Offset inside the row's file where its bytes start entering the stream (size: not at all)."""
        shard = int(self.shard_of[row])
        if shard < 0:
            return size
        return min(max(self.start[shard] - int(self.offset[row]), 0), size)


def stream_offsets(shard_of: np.ndarray, sizes: np.ndarray, order: np.ndarray) -> tuple[np.ndarray, list[int]]:
    """Per row, the offset of its file in its shard's stream (files taken in `order`); and each shard's total."""
    shards = int(shard_of.max()) + 1 if len(shard_of) else 0
    ordered_shards = shard_of[order]
    by_shard = np.argsort(ordered_shards, kind="stable")  # stable: manifest order inside each shard
    rows = order[by_shard]
    grouped_shards = ordered_shards[by_shard]
    grouped_sizes = sizes[rows]
    exclusive = np.cumsum(grouped_sizes) - grouped_sizes
    firsts = np.flatnonzero(np.r_[True, grouped_shards[1:] != grouped_shards[:-1]]) if len(rows) else np.zeros(0, int)
    counts = np.diff(np.r_[firsts, len(rows)])
    offset = np.zeros(len(shard_of), np.int64)
    offset[rows] = exclusive - np.repeat(exclusive[firsts], counts)
    totals = np.bincount(shard_of[shard_of >= 0], weights=sizes[shard_of >= 0], minlength=shards)
    return offset, [int(t) for t in totals[:shards]]


class PlanChunk(NamedTuple):
    """Consecutive table rows in manifest order; per row the earlier record's line when it can be
    reused (`lines` None: none can, every row is read)."""

    rows: np.ndarray  # int64
    lines: list[bytes | None] | None


class Group(NamedTuple):
    """Consecutive files of one shard's stream covering [start, end) (shard -1: file hashes only)."""

    shard: int
    start: int
    end: int
    piece_length: int
    positions: np.ndarray  # int64: each file's manifest position
    rows: np.ndarray  # int64: its table row
    piece_from: np.ndarray  # int64: where its stream bytes start (shard groups)
    hash_file: np.ndarray  # bool: compute its file hashes (and record line)
    chunk: int = -1  # the plain chunk it is part of (read in folder order), -1: its positions run in order


class GroupResult(NamedTuple):
    """What a worker returns for one group."""

    positions: np.ndarray  # manifest positions of the files hashed, in the group's order
    lines: bytes  # their record lines, in that order (none for a file that failed)
    ends: np.ndarray  # int64 end offset of each one's line in `lines`
    head: bytes  # stream bytes before the group's first piece boundary
    pieces: bytes  # SHA-1 of every piece wholly inside the group
    tail: bytes  # stream bytes after its last piece boundary
    errors: list[str]
    nbytes: int


class Stitcher:
    """Joins one shard's group results, in stream order, into its piece hashes."""

    def __init__(self, piece_length: int, start: int, reused: bytes) -> None:
        self.length = piece_length
        self.pos = start
        self.hashes = bytearray(reused)
        self.carry = bytearray()

    def add(self, group: Group, result: GroupResult) -> None:
        """Take the next group's result."""
        if group.start != self.pos:
            raise RuntimeError(f"stream gap: group starts at {group.start}, stream is at {self.pos}")
        self.carry += result.head
        if len(self.carry) == self.length:
            self.hashes += hashlib.sha1(self.carry).digest()
            self.carry.clear()
        if result.pieces or result.tail:
            if self.carry:
                raise RuntimeError("a piece boundary inside a group does not line up with the stream")
            self.hashes += result.pieces
            self.carry += result.tail
        self.pos = group.end

    def finish(self, total: int) -> bytes:
        """All piece hashes of a stream of `total` bytes."""
        if self.pos != total:
            raise RuntimeError(f"stream ended at {self.pos}, expected {total}")
        if self.carry:
            self.hashes += hashlib.sha1(self.carry).digest()
            self.carry.clear()
        return bytes(self.hashes)


_STATE: dict[str, Any] = {}


def share(root: str, table: FileTable) -> None:
    """Worker setup (inherited through fork, nothing pickled): the tree whose rows groups refer to."""
    _STATE.update(root=root, table=table)


def _problem(code: Code, value: int, size: int) -> str:
    if code is Code.SIZE:
        return f"changed since it was listed ({size} -> {value} bytes)"
    if code is Code.SHORT:
        return f"changed while being read (ended at {value} of {size} bytes)"
    return describe(code, value)


def hash_group(group: Group) -> GroupResult:
    """Worker side: read every file of the group once, natively, GIL released: its record lines (written
    in C, the canonical form of `manifest.io.record_line`) and piece hashes."""
    root, table = _STATE["root"], _STATE["table"]
    rows = group.rows
    sizes = table.sizes()[rows]
    pieces = group.shard >= 0
    got = read_files(
        root,
        table.spans(rows),
        sizes,
        hash_flags=group.hash_file.astype(np.uint8).tobytes(),
        starts=group.piece_from if pieces else None,
        span=(group.start, group.end, group.piece_length) if pieces else (0, 0, 0),
        mtimes=table.mtimes()[rows] if group.hash_file.any() else None,
    )
    # a file that failed has an empty line: the build fails, but the output order keeps moving until then
    errors = [
        f"{table.path(int(rows[n]))}: {_problem(Code(got.codes[n]), got.value(n), int(sizes[n]))}"
        for n in np.flatnonzero(np.frombuffer(got.codes, np.uint8)).tolist()
    ]
    ends = np.frombuffer(got.line_ends, np.int64)
    return GroupResult(
        group.positions[group.hash_file], got.lines, ends, got.head, got.pieces, got.tail, errors, got.nbytes
    )


class _Pending:
    def __init__(self, start: int) -> None:
        self.start = start
        self.end = start  # stream end (shard groups)
        self.nbytes = 0  # bytes to read
        self.positions: list[int] = []
        self.rows: list[int] = []
        self.piece_from: list[int] = []
        self.hash_file: list[bool] = []

    def add(self, position: int, row: int, piece_from: int, hash_file: bool) -> None:
        self.positions.append(position)
        self.rows.append(row)
        self.piece_from.append(piece_from)
        self.hash_file.append(hash_file)


class _ChunkParts:
    """The group results of one plain chunk (positions first .. first + count - 1), read in folder order."""

    def __init__(self, first: int, count: int) -> None:
        self.first, self.count = first, count
        self.results: list[GroupResult] = []
        self.received = 0

    def add(self, result: GroupResult) -> bool:
        """Take one group's result; True when the chunk is complete."""
        self.results.append(result)
        self.received += len(result.positions)
        return self.received == self.count

    def in_order(self) -> bytes:
        """Every line of the chunk, in manifest order (one copy, in C)."""
        bases = np.cumsum([0] + [len(r.lines) for r in self.results[:-1]])
        ends = np.concatenate([r.ends + base for r, base in zip(self.results, bases, strict=True)])
        starts = np.concatenate([np.r_[0, r.ends[:-1]] + base for r, base in zip(self.results, bases, strict=True)])
        order = np.argsort(np.concatenate([r.positions for r in self.results]), kind="stable")
        spans = np.stack((starts[order], ends[order]), axis=1).astype(np.int64)
        return _records.concat_spans(b"".join(r.lines for r in self.results), spans.tobytes())


class SinglePass:
    """Drives the groups through a HashEngine; yields manifest lines in order, stitches piece hashes."""

    def __init__(
        self,
        table: FileTable,
        streams: Streams | None,
        hash_files: bool,
        ticker: Ticker,
        on_hashed: Callable[[bytes], None] | None = None,
    ) -> None:
        """`on_hashed` gets the record lines of every group as soon as it is hashed (in no particular order;
        a failed file's line is empty)."""
        self.on_hashed = on_hashed
        self.table = table
        self.streams = streams
        self.hash_files = hash_files
        self.ticker = ticker
        self.errors: list[str] = []
        self.stitchers: list[Stitcher] = []
        if streams is not None:
            self.stitchers = [
                Stitcher(length, start, reused)
                for length, start, reused in zip(streams.piece_length, streams.start, streams.reused, strict=True)
            ]
        self.hashed_files = 0
        self.hashed_bytes = 0
        self._done: dict[int, tuple[int, bytes]] = {}  # first position -> (lines, their bytes)
        self._next = 0
        self._pending: dict[int, _Pending] = {}
        self._guard = 0  # the position before which no group is forced out for the reorder window
        self._chunks: dict[int, _ChunkParts] = {}
        self._chunk_ids = 0

    def run(self, engine: HashEngine, planned: Iterator[PlanChunk]) -> Iterator[bytes]:
        """Consume `planned` (manifest order); yield runs of record lines in that order (none unless hashing files)."""
        sent: deque[Group] = deque()

        def groups() -> Iterator[Group]:
            for group in self._groups(planned):
                sent.append(group)
                yield group

        for result in engine.map_batches(hash_group, groups()):
            self._take(sent.popleft(), result)
            if lines := self._flush():
                yield lines
        if lines := self._flush():
            yield lines

    def raise_errors(self, root: str, hint: str | None = None) -> None:
        """Raise one InputIOError naming the files that could not be read (the first 20), if any."""
        if not self.errors:
            return
        shown = "; ".join(self.errors[:MAX_LISTED_ERRORS])
        more = f" (and {len(self.errors) - MAX_LISTED_ERRORS} more)" if len(self.errors) > MAX_LISTED_ERRORS else ""
        raise InputIOError(root, f"{len(self.errors)} file(s) could not be read: {shown}{more}", hint)

    def piece_hashes(self) -> list[bytes]:
        """Every shard's piece hashes, once `run` is exhausted without errors."""
        assert self.streams is not None and not self.errors
        return [s.finish(total) for s, total in zip(self.stitchers, self.streams.totals, strict=True)]

    def _take(self, group: Group, result: GroupResult) -> None:
        if group.shard >= 0 and not result.errors and not self.errors:
            self.stitchers[group.shard].add(group, result)
        positions, ends = result.positions, result.ends
        if self.on_hashed is not None and result.lines:
            self.on_hashed(result.lines)
        if group.chunk >= 0:  # part of a chunk read in folder order: its lines wait for the rest of it
            parts = self._chunks[group.chunk]
            if parts.add(result):
                self._done[parts.first] = (parts.count, parts.in_order())
                del self._chunks[group.chunk]
        elif len(positions):  # runs of consecutive positions: one entry each, not one per line
            cuts = np.flatnonzero(np.diff(positions) != 1) + 1
            for first, last in zip(np.r_[0, cuts].tolist(), np.r_[cuts, len(positions)].tolist(), strict=True):
                low = int(ends[first - 1]) if first else 0
                self._done[int(positions[first])] = (last - first, result.lines[low : int(ends[last - 1])])
        self.errors.extend(result.errors)
        self.ticker.add(len(group.rows), result.nbytes)

    def _flush(self) -> bytes:
        lines = []
        while self._next in self._done:
            count, run = self._done.pop(self._next)
            lines.append(run)
            self._next += count
        return b"".join(lines)

    def _groups(self, planned: Iterator[PlanChunk]) -> Iterator[Group]:
        position = 0
        for chunk in planned:
            if chunk.lines is None and self.streams is None and self.hash_files:
                yield from self._pending_groups()
                yield from self._plain_groups(position, chunk.rows)
            else:
                yield from self._chunk_groups(position, chunk)
            position += len(chunk.rows)
        yield from self._pending_groups()

    def _pending_groups(self) -> Iterator[Group]:
        for shard in sorted(self._pending, key=lambda s: self._pending[s].positions[0]):
            yield self._group(shard)

    def _plain_groups(self, position: int, rows: np.ndarray) -> Iterator[Group]:
        """Rows that are all hashed and feed no shard: groups cut on whole columns, and read in folder order
        (the table's rows are listed folder by folder): the kernel serves neighbours in one folder far
        cheaper than manifest order's jump to another folder per file. The chunk's lines are put back in
        manifest order once all its groups are in (`_ChunkParts`)."""
        if not len(rows):
            return
        sizes = self.table.sizes()[rows]
        self.hashed_files += len(rows)
        self.hashed_bytes += int(sizes.sum())
        chunk = self._chunk_ids
        self._chunk_ids += 1
        self._chunks[chunk] = _ChunkParts(position, len(rows))
        walk = np.argsort(rows, kind="stable")
        for part in row_batches(sizes[walk], np.arange(len(rows)), BATCH_FILES):
            picked = walk[part]
            hashed = np.ones(len(picked), bool)
            yield Group(-1, 0, 0, 0, picked + position, rows[picked], sizes[picked], hashed, chunk)

    def _chunk_groups(self, base: int, chunk: PlanChunk) -> Iterator[Group]:
        table, streams = self.table, self.streams
        for offset, row in enumerate(chunk.rows.tolist()):
            position = base + offset
            line = chunk.lines[offset] if chunk.lines is not None else None
            size = table.size(row)
            hash_file = self.hash_files and line is None
            if self.hash_files and line is not None:
                self._done[position] = (1, line)
            shard, piece_from = -1, size
            if streams is not None:
                piece_from = streams.piece_from(row, size)
                if piece_from < size:
                    shard = int(streams.shard_of[row])
            if hash_file or shard >= 0:
                pending = self._pending.get(shard)
                if pending is None:
                    start = int(streams.offset[row]) + piece_from if streams is not None and shard >= 0 else 0
                    pending = self._pending[shard] = _Pending(start)
                pending.add(position, row, piece_from, hash_file)
                if hash_file:
                    self.hashed_files += 1
                    self.hashed_bytes += size
                if shard >= 0:
                    pending.end += size - piece_from
                pending.nbytes += size if hash_file else size - piece_from
                if self._full(shard, pending):
                    yield self._group(shard)
            if self.hash_files and position - self._next > REORDER_WINDOW and position >= self._guard:
                self._guard = position + REORDER_WINDOW // 4
                yield self._oldest()

    def _full(self, shard: int, pending: _Pending) -> bool:
        if shard < 0:
            return len(pending.rows) >= BATCH_FILES or pending.nbytes >= BATCH_BYTES
        assert self.streams is not None
        limit = max(GROUP_BYTES, 8 * self.streams.piece_length[shard])
        return pending.nbytes >= limit or len(pending.rows) >= GROUP_FILES

    def _group(self, shard: int) -> Group:
        pending = self._pending.pop(shard)
        length = self.streams.piece_length[shard] if self.streams is not None and shard >= 0 else 0
        return Group(
            shard,
            pending.start,
            pending.end,
            length,
            np.array(pending.positions, np.int64),
            np.array(pending.rows, np.int64),
            np.array(pending.piece_from, np.int64),
            np.array(pending.hash_file, bool),
        )

    def _oldest(self) -> Group:
        """The pending group holding the oldest position (or an empty one, to let results drain)."""
        if not self._pending:
            empty = np.zeros(0, np.int64)
            return Group(-1, 0, 0, 0, empty, empty, empty, np.zeros(0, bool))
        shard = min(self._pending, key=lambda s: self._pending[s].positions[0])
        return self._group(shard)
