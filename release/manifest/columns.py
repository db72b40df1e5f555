"""Manifest records as columns, a decompressed chunk (~20k records) at a time, for verify.

Records are tokenised in C (`release._records`) when they are in the canonical form `record_line`
writes; any other line is validated in full by pydantic (`parse_line`), so a malformed line gets
the same message it always had. Paths are classified against the layout on whole columns: the C
tokeniser cuts `subset/NNNN/ID.ext` into numbers and `layout.parse_path` decides every path the
column checks do not settle. The record order (subset, ID, path) is checked on the columns too.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

import numpy as np

from release import _records
from release.errors import ManifestFormatError
from release.hashing import DIGEST_BYTES, HashEngine, PathSpans, default_workers
from release.layout import sort_key
from release.manifest.io import ORDER_PROBLEM, ManifestReader, SortKey, check_totals, parse_line
from release.models import ManifestHeader
from release.pathcols import EXTENSION_BYTES, SUBSET_NAMES, classify

FIELDS: dict[str | None, int] = {None: 0, "xxh3_128": 1, "sha256": 2, "md5": 3}
INT64_MAX = (1 << 63) - 1


class Columns(NamedTuple):
    """Consecutive records of a manifest, one array entry per record; the paths are spans of one buffer."""

    first_line: int  # line number of the first record
    blob: bytes  # the decompressed block (and the paths of lines parsed by pydantic, after it)
    spans: np.ndarray  # int64 (records, 2): each path's [start, end) in blob
    sizes: np.ndarray  # int64
    digests: np.ndarray  # uint8, (records, digest bytes): the selected digest field, raw
    rank: np.ndarray  # int64: layout.SUBSET_RANK of each path's subset
    bucket: np.ndarray  # int64: the bucket folder's number, -1 for paths without one
    keys: np.ndarray  # int64: layout.pack, the first part of the sort key
    mtimes: np.ndarray  # int64: mtime_ns

    def __len__(self) -> int:  # records, not fields
        return len(self.sizes)

    @property
    def paths(self) -> list[bytes]:
        """Every record's path as bytes (one object each: for callers that need them as keys)."""
        blob = self.blob
        return [blob[start:end] for start, end in self.spans.tolist()]

    def path_bytes(self, row: int) -> bytes:
        """Record `row`'s path as bytes."""
        start, end = self.spans[row]
        return self.blob[start:end]

    def path(self, row: int) -> str:
        """Record `row`'s path as text."""
        return self.path_bytes(row).decode("utf-8", "surrogateescape")

    def path_spans(self, rows: np.ndarray) -> PathSpans:
        """The paths of `rows` in the native read loop's form (nothing copied)."""
        return PathSpans(self.blob, self.spans[rows])

    def sort_key(self, row: int) -> SortKey:
        """Record `row`'s layout.sort_key."""
        return sort_key(self.path(row))


def read_columns(name: str, first_line: int, block: bytes, field: str | None) -> Columns:
    """Validate and tokenise the record lines of a block (lines separated by newlines, none after the last);
    raise ManifestFormatError naming the line."""
    raw = _records.scan_block(block, FIELDS[field], SUBSET_NAMES, EXTENSION_BYTES)
    fast = np.frombuffer(raw[0], np.uint8)
    spans = np.frombuffer(raw[1], np.int64).reshape(-1, 2).copy()
    sizes = np.frombuffer(raw[2], np.int64).copy()
    width = DIGEST_BYTES[field] if field else 0
    digests = np.frombuffer(raw[3], np.uint8).reshape(len(fast), width).copy()
    mtimes = np.frombuffer(raw[8], np.int64).copy()
    extra: list[bytes] = []  # paths of the lines pydantic parses, appended to the block
    offset = len(block)
    for row in np.flatnonzero(fast == 0).tolist():
        start, end = spans[row].tolist()
        record = parse_line(name, first_line + row, block[start:end])
        if record.size > INT64_MAX:
            raise ManifestFormatError(name, first_line + row, f"field 'size': {record.size} is too large")
        if not -INT64_MAX <= record.mtime_ns <= INT64_MAX:
            raise ManifestFormatError(name, first_line + row, f"field 'mtime_ns': {record.mtime_ns} is out of range")
        path = record.path.encode("utf-8", "surrogateescape")
        spans[row] = (offset, offset + len(path))
        offset += len(path)
        extra.append(path)
        sizes[row] = record.size
        mtimes[row] = record.mtime_ns
        if field:
            digests[row] = np.frombuffer(bytes.fromhex(getattr(record, field)), np.uint8)
    blob = block + b"".join(extra) if extra else block
    layout = classify(raw[4:8], lambda row: blob[spans[row, 0] : spans[row, 1]].decode("utf-8", "surrogateescape"))
    columns = Columns(first_line, blob, spans, sizes, digests, layout.rank, layout.bucket, layout.keys, mtimes)
    _check_order(name, columns)
    return columns


def _check_order(name: str, columns: Columns) -> None:
    """Raise at the first record that does not come strictly after the one before it."""
    step = np.diff(columns.keys)
    bad = np.flatnonzero(step < 0).tolist()
    for row in np.flatnonzero(step == 0).tolist():  # same subset and ID: the path decides
        if columns.sort_key(row + 1) <= columns.sort_key(row):
            bad.append(row)
    if bad:
        raise ManifestFormatError(name, columns.first_line + min(bad) + 1, ORDER_PROBLEM)


def column_chunks(path: Path, field: str | None) -> Iterator[Columns]:
    """Every record of a manifest as Columns, in order across chunks too (the count is the caller's)."""
    return (columns for columns, _ in column_blocks(path, field))


def column_blocks(path: Path, field: str | None) -> Iterator[tuple[Columns, bytes]]:
    """`column_chunks`, each with its block of record lines (newline-separated, none after the last): for a
    reader that reuses the lines themselves. A row whose path span lies beyond the block was not in the
    canonical form (`record_line`'s) and was parsed by pydantic."""
    name = str(path)
    last: SortKey | None = None
    for first_line, block in ManifestReader(path).record_blocks():
        columns = read_columns(name, first_line, block, field)
        last = _check_seam(name, last, columns)
        yield columns, block


def _check_seam(name: str, last: SortKey | None, columns: Columns) -> SortKey:
    """Raise when a chunk's first record does not come after the previous chunk's last; return its last."""
    if last is not None and columns.sort_key(0) <= last:
        raise ManifestFormatError(name, columns.first_line, ORDER_PROBLEM)
    return columns.sort_key(len(columns) - 1)


def load_columns(path: Path, field: str | None, workers: int | None = None) -> tuple[ManifestHeader, list[Columns]]:
    """Every record of a manifest validated (each line, the order, the count and bytes the header announces)
    and kept as compact Columns: the manifest is decompressed once, its blocks tokenised on `workers`
    threads while this one decompresses, and only the paths of a block are kept, not its lines (~75 bytes
    a record with one digest). For a reader that must validate everything before it acts and then needs
    the records again (verify): one pass instead of a check and a second decompression."""
    reader = ManifestReader(path)
    name = str(reader.path)
    chunks: list[Columns] = []
    last: SortKey | None = None
    tokenise = functools.partial(_compact_columns, name, field)
    with HashEngine(workers or default_workers(), threads=True) as engine:
        for columns in engine.map_batches(tokenise, reader.record_blocks()):
            last = _check_seam(name, last, columns)
            chunks.append(columns)
    check_totals(name, reader.header, sum(map(len, chunks)), sum(int(c.sizes.sum()) for c in chunks))
    return reader.header, chunks


def _compact_columns(name: str, field: str | None, numbered_block: tuple[int, bytes]) -> Columns:
    """read_columns of (first line number, block), keeping only the block's paths and the narrowest types
    that hold the layout."""
    first_line, block = numbered_block
    columns = read_columns(name, first_line, block, field)
    lengths = columns.spans[:, 1] - columns.spans[:, 0]
    ends = np.cumsum(lengths)
    spans = np.stack((ends - lengths, ends), axis=1).astype(np.int32 if len(ends) and ends[-1] < 2**31 else np.int64)
    blob = _records.concat_spans(columns.blob, columns.spans.tobytes())
    # not _replace: Columns' __len__ counts records, which NamedTuple._make takes for its field count
    rank, bucket = columns.rank.astype(np.int8), columns.bucket.astype(np.int32)
    return Columns(first_line, blob, spans, columns.sizes, columns.digests, rank, bucket, columns.keys, columns.mtimes)
