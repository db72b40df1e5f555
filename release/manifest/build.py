"""Planning a manifest build: its header, and which records can be reused instead of hashed.

The read itself (hashing, with or without torrents) is `release.build`, which calls these.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Iterator

import numpy as np

from release.hashing import ALL_ALGORITHMS
from release.layout import SUBSET_RANK
from release.manifest.io import record_line
from release.manifest.merge import merge_join, record_path, unchanged
from release.models import ManifestHeader, ManifestRecord, SubsetTotals
from release.readpass import PlanChunk
from release.walk import FileTable


def header_for(table: FileTable, release: str) -> ManifestHeader:
    """The manifest header (counts and byte totals per subset) for a walked tree."""
    names = {rank: name for name, rank in SUBSET_RANK.items()}
    totals = {names[rank]: counts for rank, counts in table.subset_totals().items()}
    return ManifestHeader(
        release=release,
        algorithms=ALL_ALGORITHMS,
        files=len(table),
        bytes=table.total_bytes(),
        subsets={k: SubsetTotals(files=f, bytes=b) for k, (f, b) in sorted(totals.items())},
    )


# rows planned at a time; a chunk of rows that are all read goes in folder order (readpass): 16k rows are ~16
# files a folder on a 1M-file tree, enough for the kernel to serve them as neighbours; 64k cost 50 MB more RSS
CHUNK_ROWS = 1 << 14


def plan_rows(table: FileTable, sources: list[Iterable[ManifestRecord]]) -> Iterator[PlanChunk]:
    """Rows in manifest order, a chunk at a time, each with a reusable record line from the first of
    `sources` (earlier manifests or build journals, each in manifest order) that holds the same file
    unchanged. Without sources the chunks carry no lines: every row is read."""
    order = table.order()
    if not sources:
        for start in range(0, len(order), CHUNK_ROWS):
            yield PlanChunk(order[start : start + CHUNK_ROWS], None)
        return
    rows: Iterator[tuple[int, ManifestRecord | None]] = ((row, None) for row in order.tolist())
    for source in sources:
        rows = _attach(table, rows, source)
    while chunk := list(itertools.islice(rows, CHUNK_ROWS)):
        lines = [record_line(**record.model_dump()) if record is not None else None for _, record in chunk]
        reused = any(line is not None for line in lines)
        yield PlanChunk(np.array([row for row, _ in chunk], np.int64), lines if reused else None)


def _attach(
    table: FileTable, rows: Iterator[tuple[int, ManifestRecord | None]], source: Iterable[ManifestRecord]
) -> Iterator[tuple[int, ManifestRecord | None]]:
    def row_path(item: tuple[int, ManifestRecord | None]) -> str:
        return table.path(item[0])

    for item, record in merge_join(rows, source, row_path, record_path):
        if item is None:
            continue
        row, found = item
        if found is None and record is not None and unchanged(record, table.size(row), table.mtime_ns(row)):
            found = record
        yield row, found
