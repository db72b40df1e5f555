"""Planning a manifest build: its header, and which records can be reused instead of hashed.

The read itself (hashing, with or without torrents) is `release.build`, which calls these.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from release.hashing import ALL_ALGORITHMS
from release.layout import SUBSET_RANK
from release.manifest.keyed import Reusable
from release.models import ManifestHeader, SubsetTotals
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


def plan_rows(table: FileTable, order: np.ndarray, reusable: Reusable | None) -> Iterator[PlanChunk]:
    """Rows in manifest order (`order`), a chunk at a time, each with a reusable record line from the first
    source (build journals, last year's manifest: `keyed.Reusable`) that holds the same file unchanged.
    Without sources the chunks carry no lines: every row is read."""
    if reusable is None or not reusable.sources:
        for start in range(0, len(order), CHUNK_ROWS):
            yield PlanChunk(order[start : start + CHUNK_ROWS], None)
        return
    chunks = zip(range(0, len(order), CHUNK_ROWS), reusable.lines(CHUNK_ROWS), strict=True)
    for start, lines in chunks:
        reused = any(line is not None for line in lines)
        yield PlanChunk(order[start : start + CHUNK_ROWS], lines if reused else None)
