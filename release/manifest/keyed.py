"""Which files of a tree an earlier manifest (or a build journal) already describes, found by key.

`merge.unchanged` says what "unchanged" means and `merge.unchanged_key` packs it into one 64-bit key.
A tree's table and a manifest both come in manifest order, so the records of unchanged files appear in
the same order on both sides. One pass gathers a source's keys; a second pairs its records with the
tree's rows in that order. No sort key is computed and no record object is built per file (that was two
Python merges of a million-file tree a year); a source's keys are computed once, in the first pass, and
held for the second, 8 bytes a record.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import NamedTuple

import numpy as np

from release.errors import ConsistencyFailure
from release.hashindex import lookup
from release.manifest.columns import Columns, column_blocks
from release.manifest.io import parse_line, record_line
from release.manifest.merge import unchanged_key
from release.models import ManifestRecord
from release.walk import FileTable

NEWLINE = 10


class KeyedRecords(NamedTuple):
    """Consecutive records of a source: how many, their keys, and a way to get any one's canonical line."""

    size: int  # records in the chunk
    keys: Callable[[], np.ndarray]  # uint64, merge.unchanged_key of each record (asked for once a pass 1)
    line: Callable[[int], bytes]  # the record line (with its newline) of record i


class Source(NamedTuple):
    """Reusable records in manifest order: where they are, and a call that streams them from the start."""

    name: str
    chunks: Callable[[], Iterator[KeyedRecords]]


def _keys(paths: Iterable[bytes], sizes: Iterable[int], mtimes: Iterable[int], count: int) -> np.ndarray:
    triples = zip(paths, sizes, mtimes, strict=True)
    return np.fromiter((unchanged_key(p, s, m) for p, s, m in triples), np.uint64, count=count)


def path_keys(paths: Sequence[bytes], sizes: np.ndarray, mtimes: np.ndarray) -> np.ndarray:
    """The unchanged keys (path, size, mtime) of some files."""
    return _keys(paths, sizes.tolist(), mtimes.tolist(), len(paths))


def key_set(chunks: Iterable[np.ndarray]) -> np.ndarray:
    """Keys gathered a chunk at a time, sorted and unique: what `hashindex.lookup` searches."""
    return np.unique(np.concatenate([*chunks, np.zeros(0, np.uint64)]))


def manifest_keys(columns: Columns) -> np.ndarray:
    """The unchanged keys (path, size, mtime) of a chunk of manifest records."""
    return _keys(columns.paths, columns.sizes.tolist(), columns.mtimes.tolist(), len(columns))


def tree_keys(table: FileTable, rows: np.ndarray) -> np.ndarray:
    """The unchanged keys (path, size, mtime) of some rows of a walked tree."""
    spans = table.spans(rows)
    blob = spans.blob
    paths = (bytes(blob[start:end]) for start, end in spans.spans.tolist())
    return _keys(paths, table.sizes()[rows].tolist(), table.mtimes()[rows].tolist(), len(rows))


def manifest_source(path: Path) -> Source:
    """The records of a manifest (validated line by line as they stream, as every reader does)."""

    def chunks() -> Iterator[KeyedRecords]:
        for columns, block in column_blocks(path, None):
            keys = functools.partial(manifest_keys, columns)
            yield KeyedRecords(len(columns), keys, _BlockLines(str(path), columns, block))

    return Source(str(path), chunks)


class _BlockLines:
    """The record lines of a block: as they are where the tokeniser took them (they are then in the
    canonical form), else written again in that form from what pydantic parsed."""

    def __init__(self, name: str, columns: Columns, block: bytes) -> None:
        self.name, self.columns, self.block = name, columns, block

    @functools.cached_property
    def ends(self) -> list[int]:
        """Where each line ends: found when a line of the block is first asked for (most blocks of a pass
        give none)."""
        ends = np.flatnonzero(np.frombuffer(self.block, np.uint8) == NEWLINE)
        return np.append(ends, len(self.block)).tolist()

    def __call__(self, row: int) -> bytes:
        start = self.ends[row - 1] + 1 if row else 0
        raw = self.block[start : self.ends[row]]
        if self.columns.spans[row, 0] < len(self.block):
            return raw + b"\n"
        return record_line(**parse_line(self.name, self.columns.first_line + row, raw).model_dump())


def records_source(name: str, records: Sequence[ManifestRecord]) -> Source:
    """Records at hand (a build journal's, sorted), as a source."""
    keys = _keys((r.path.encode("utf-8", "surrogateescape") for r in records), (r.size for r in records),
                 (r.mtime_ns for r in records), len(records))  # fmt: skip

    def chunks() -> Iterator[KeyedRecords]:
        yield KeyedRecords(len(records), lambda: keys, lambda i: record_line(**records[i].model_dump()))

    return Source(name, chunks)


class Reusable:
    """Which rows of a tree (`order`: its rows in manifest order) each source holds unchanged, from one pass
    over each source's keys; then, in a second pass, the lines themselves (`lines`)."""

    def __init__(self, table: FileTable, order: np.ndarray, sources: Sequence[Source]) -> None:
        self.sources, self.rows = sources, len(order)
        self._want = tree_keys(table, order)
        self._held = [[chunk.keys() for chunk in source.chunks()] for source in sources]  # for the second pass
        self._holds = [lookup(key_set(keys), self._want) >= 0 for keys in self._held]

    def holds(self, name: str) -> np.ndarray | None:
        """Per position in manifest order, whether the source called `name` holds that file unchanged (the
        `unchanged_rows` answer by path, size and mtime); None when no source has that name."""
        return next((held for source, held in zip(self.sources, self._holds, strict=True) if source.name == name), None)

    def lines(self, chunk_rows: int) -> Iterator[list[bytes | None]]:
        """`chunk_rows` positions at a time: each one's record line from the first source that holds the same
        file unchanged, or None. Once only: the keys are let go as the pairing starts."""
        claimed = np.full(self.rows, -1, np.int16)  # the source each row's line comes from
        for index, holds in enumerate(self._holds):
            claimed[(claimed < 0) & holds] = index
        positions = [np.flatnonzero(claimed == index) for index in range(len(self.sources))]
        paired = [
            _paired(source, keys, at, self._want[at])
            for source, keys, at in zip(self.sources, self._held, positions, strict=True)
        ]
        del claimed, positions
        self._held, self._want = [], np.zeros(0, np.uint64)  # the pairs hold what they need: ~24 bytes a row
        heads = [next(pairs, None) for pairs in paired]
        for begin in range(0, self.rows, chunk_rows):
            end = min(begin + chunk_rows, self.rows)
            lines: list[bytes | None] = [None] * (end - begin)
            for index, pairs in enumerate(paired):
                while (head := heads[index]) is not None and head[0] < end:
                    lines[head[0] - begin] = head[1]
                    heads[index] = next(pairs, None)
            yield lines


def reusable_lines(
    table: FileTable, order: np.ndarray, sources: Sequence[Source], chunk_rows: int
) -> Iterator[list[bytes | None]]:
    """For the rows of `table` in `order` (manifest order), `chunk_rows` at a time: each row's record line
    from the first of `sources` that holds the same file unchanged, or None."""
    return Reusable(table, order, sources).lines(chunk_rows)


def _paired(
    source: Source, held: list[np.ndarray], positions: np.ndarray, expected: np.ndarray
) -> Iterator[tuple[int, bytes]]:
    """(position, the source's line for it) for each of `positions` (ascending), whose keys are `expected`:
    the source's records with those keys come in the same order (`held`: its keys from the first pass). A
    record the walk does not expect next (a journal may hold a file twice) is passed over."""
    if not len(positions):
        return
    wanted = np.unique(expected)
    at = 0
    for chunk, keys in zip(source.chunks(), held, strict=False):
        if chunk.size != len(keys):
            break  # not the records of the first pass
        for record in np.flatnonzero(lookup(wanted, keys) >= 0).tolist():
            if keys[record] == expected[at]:
                yield int(positions[at]), chunk.line(record)
                at += 1
                if at == len(positions):
                    return
    raise ConsistencyFailure(source.name, "changed while it was read (records met once were gone)", "run again")


def unchanged_rows(table: FileTable, order: np.ndarray, manifest: Path, new_manifest: Path | None = None) -> np.ndarray:
    """Per table row: does `manifest` hold the same file unchanged? By path, size and mtime; or, when this
    year's manifest of the table (`new_manifest`, rows in `order`) is at hand, by path, size and sha256."""
    field = "sha256" if new_manifest is not None else None
    known = key_set(_digest_keys(c, field) for c, _ in column_blocks(manifest, field))
    if new_manifest is None:
        want = tree_keys(table, order)
    else:
        want = np.concatenate([_digest_keys(c, field) for c, _ in column_blocks(new_manifest, field)]
                              + [np.zeros(0, np.uint64)])  # fmt: skip
        if len(want) != len(order):
            raise ConsistencyFailure(str(new_manifest), f"lists {len(want):,} files, the tree has {len(order):,}")
    same = np.zeros(len(table), dtype=bool)
    same[order] = lookup(known, want) >= 0
    return same


def _digest_keys(columns: Columns, field: str | None) -> np.ndarray:
    if field is None:
        return manifest_keys(columns)
    triples = zip(columns.paths, columns.sizes.tolist(), columns.digests, strict=True)
    return np.fromiter((unchanged_key(p, s, 0, d.tobytes()) for p, s, d in triples), np.uint64, count=len(columns))
