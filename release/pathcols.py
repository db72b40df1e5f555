"""The layout of many paths at once: subset rank, bucket and packed sort key as columns.

A million `layout.parse_path` calls cost ~4 us each. The C tokenisers (`release._records`) cut
`subset/NNNN/ID.ext` into numbers; the rules are checked here on whole columns, and only the
paths those checks do not settle (metadata, odd names, wrong buckets) go through `parse_path`, so
the answer is always the layout's own.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import NamedTuple

import numpy as np

from release import _records
from release.layout import EXTENSIONS, IMAGE_SUBSETS, RANK_SHIFT, SUBSET_RANK, parse_path

EXTENSION_NAMES = tuple(sorted(EXTENSIONS))
SUBSET_NAMES = tuple(s.encode() for s in IMAGE_SUBSETS)
EXTENSION_BYTES = tuple(e.encode() for e in EXTENSION_NAMES)

# (subset index, bucket, ID, extension index) per path, from a C tokeniser; subset -1: not cut
Tokens = tuple[bytes, bytes, bytes, bytes]


@functools.cache
def _conforming() -> np.ndarray:
    """[subset index, extension index] -> True when `subset/NNNN/ID.ext` conforms, asked of the layout."""
    return np.array(
        [
            [parse_path(f"{subset}/0000/1000.{ext}").problem is None for ext in EXTENSION_NAMES]
            for subset in IMAGE_SUBSETS
        ]
    )


class Layout(NamedTuple):
    """What the layout says of many paths, one array entry each."""

    rank: np.ndarray  # int64: layout.SUBSET_RANK of the path's subset
    bucket: np.ndarray  # int64: the bucket folder's number, -1 for none
    ids: np.ndarray  # int64: the post ID, 0 for none
    conforming: np.ndarray  # bool: parse_path finds no problem

    @property
    def keys(self) -> np.ndarray:
        """`layout.pack` of every path: the first part of the manifest order."""
        keys: np.ndarray = (self.rank << RANK_SHIFT) | self.ids
        return keys


def classify(tokens: Tokens, path_of: Callable[[int], str]) -> Layout:
    """The layout of every path: columns first, then `parse_path(path_of(row))` for each row the columns
    do not settle."""
    subset = np.frombuffer(tokens[0], np.int8).astype(np.int64)
    bucket = np.frombuffer(tokens[1], np.int32).astype(np.int64)
    ids = np.frombuffer(tokens[2], np.int64).copy()
    ext = np.frombuffer(tokens[3], np.int8).astype(np.int64)
    settled = (subset >= 0) & (ids % 1000 == bucket)
    settled[settled] = _conforming()[subset[settled], ext[settled]]
    ranks = np.array([SUBSET_RANK[s] for s in IMAGE_SUBSETS], np.int64)
    rank = np.where(settled, ranks[np.maximum(subset, 0)], 0)
    conforming = settled.copy()
    for row in np.flatnonzero(~settled).tolist():
        parsed = parse_path(path_of(row))
        rank[row] = SUBSET_RANK[parsed.subset]
        bucket[row] = -1 if parsed.bucket is None else parsed.bucket
        ids[row] = parsed.id or 0
        conforming[row] = parsed.problem is None
    return Layout(rank, bucket, ids, conforming)


def layout_of(blob: bytes | bytearray, ends: np.ndarray, path_of: Callable[[int], str]) -> Layout:
    """The layout of every path of a blob (UTF-8, `ends`: int64 end offsets)."""
    return classify(_records.path_layout(blob, ends.astype(np.int64).tobytes(), SUBSET_NAMES, EXTENSION_BYTES), path_of)


def gather(
    blob: bytes | bytearray, spans: np.ndarray, prefix: bytes = b"", suffix: bytes = b""
) -> tuple[bytes, np.ndarray]:
    """The byte ranges `spans` ([start, end) rows) of `blob` end to end, each between `prefix` and `suffix`,
    and each piece's end offset: many paths copied at once, without one object per path."""
    lengths = spans[:, 1] - spans[:, 0]
    pieces = lengths + len(prefix) + len(suffix)
    ends = np.cumsum(pieces)
    starts = ends - pieces
    out = np.empty(int(ends[-1]) if len(ends) else 0, np.uint8)
    within = np.arange(int(lengths.sum())) - np.repeat(np.cumsum(lengths) - lengths, lengths)
    source = np.frombuffer(blob, np.uint8)
    out[np.repeat(starts + len(prefix), lengths) + within] = source[np.repeat(spans[:, 0], lengths) + within]
    for i, byte in enumerate(prefix):
        out[starts + i] = byte
    for i, byte in enumerate(suffix):
        out[ends - len(suffix) + i] = byte
    return out.tobytes(), ends
