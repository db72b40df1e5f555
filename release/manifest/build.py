"""Planning a manifest build: its header, and which records can be reused instead of hashed.

The read itself (hashing, with or without torrents) is `release.build`, which calls these.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from release.hashing import ALL_ALGORITHMS
from release.layout import SUBSET_RANK
from release.manifest.io import record_line
from release.manifest.merge import merge_join, record_path, unchanged
from release.models import ManifestHeader, ManifestRecord, SubsetTotals
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


Planned = tuple[int, bytes | None]  # (table row, the earlier record's line when it can be reused)


def plan_rows(table: FileTable, sources: list[Iterable[ManifestRecord]]) -> Iterator[Planned]:
    """Rows in manifest order, each with a reusable record line from the first of `sources` (earlier
    manifests or build journals, each in manifest order) that holds the same file unchanged."""
    rows: Iterator[tuple[int, ManifestRecord | None]] = ((row, None) for row in table.order().tolist())
    for source in sources:
        rows = _attach(table, rows, source)
    for row, record in rows:
        yield row, record_line(**record.model_dump()) if record is not None else None


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
