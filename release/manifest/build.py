"""`manifest build`: walk, sort into manifest order, hash (or reuse), stream to disk."""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator
from functools import partial
from pathlib import Path
from typing import NamedTuple

from pydantic import BaseModel

from release.errors import BadInput, InputIOError
from release.hashing import ALL_ALGORITHMS, HashEngine, batched, hash_path
from release.layout import SUBSET_RANK, sort_key
from release.manifest.io import ManifestReader, ManifestWriter, record_line
from release.models import ManifestHeader, SubsetTotals
from release.progress import ProgressFn, Ticker, no_progress
from release.walk import FileTable, walk

MAX_LISTED_ERRORS = 20


class BuildReport(BaseModel):
    """What a manifest build did."""

    output: str
    release: str
    files: int
    bytes: int
    hashed_files: int
    hashed_bytes: int
    reused_files: int
    reused_bytes: int
    skipped: list[tuple[str, str]]


class _Planned(NamedTuple):
    path: str
    size: int
    mtime_ns: int
    reuse: bytes | None  # the record line to keep, when the previous manifest has this file unchanged


def scan_tree(root: Path, progress: ProgressFn = no_progress) -> tuple[FileTable, list[tuple[str, str]]]:
    """Walk `root` into a FileTable of regular files; return it with skipped (path, why) entries.

    A directory that cannot be listed is an error: a manifest must not silently miss files.
    """
    if not root.is_dir():
        raise BadInput(str(root), "not a directory")
    table = FileTable()
    skipped: list[tuple[str, str]] = []
    ticker = Ticker(progress, "walk")
    for entry in walk(str(root)):
        if entry.kind == "file":
            table.add(entry.path, entry.size, entry.mtime_ns)
            ticker.add(1, entry.size)
        elif entry.kind == "error":
            raise InputIOError(str(root / entry.path), f"cannot list or stat: {entry.detail}")
        else:
            skipped.append((entry.path, entry.kind))
    ticker.finish()
    return table, skipped


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


def _hash_cost(planned: _Planned) -> int:
    return planned.size if planned.reuse is None else 0


def _plan(table: FileTable, previous: ManifestReader | None) -> Iterator[_Planned]:
    """Merge-join the sorted tree with the (identically sorted) previous manifest."""
    if previous is None:
        for path, size, mtime_ns, _ in table.sorted_rows():
            yield _Planned(path, size, mtime_ns, None)
        return
    old = iter(previous)
    current = next(old, None)
    current_key = sort_key(current.path) if current is not None else None
    for path, size, mtime_ns, packed in table.sorted_rows():
        key = (packed, path.split("/"))
        while current is not None and current_key is not None and current_key < key:
            current = next(old, None)
            current_key = sort_key(current.path) if current is not None else None
        reuse = None
        if current is not None and current.path == path and current.size == size and current.mtime_ns == mtime_ns:
            reuse = record_line(**current.model_dump())
        yield _Planned(path, size, mtime_ns, reuse)
    for _ in old:  # finish reading: validates the rest of the previous manifest
        pass


def _hash_records(root: str, items: list[tuple[str, int, int]]) -> tuple[list[bytes], list[str]]:
    """Worker side: hash each file once with all three algorithms into its record line (b"" on error)."""
    lines: list[bytes] = []
    errors: list[str] = []
    for path, size, mtime_ns in items:
        digests, nread, error = hash_path(os.path.join(root, path), ALL_ALGORITHMS)
        if error is None and nread != size:
            error = f"changed while being read ({size} -> {nread} bytes)"
        if error is not None:
            errors.append(f"{path}: {error}")
        lines.append(b"" if error is not None else record_line(path, size, mtime_ns, *digests))
    return lines, errors


def build_manifest(
    root: Path,
    output: Path,
    *,
    release: str | None = None,
    previous: Path | None = None,
    rehash: bool = False,
    workers: int | None = None,
    progress: ProgressFn = no_progress,
) -> BuildReport:
    """Build the manifest of `root` into `output` (atomically); see module docstring."""
    table, skipped = scan_tree(root, progress)
    header = header_for(table, release or root.resolve().name)
    prev_reader = ManifestReader(previous) if previous is not None and not rehash else None
    if prev_reader is not None and set(prev_reader.header.algorithms) != set(ALL_ALGORITHMS):
        raise BadInput(str(previous), "previous manifest has other hash algorithms; use --rehash")
    batches_a, batches_b = itertools.tee(batched(_plan(table, prev_reader), _hash_cost))
    work = ([(p.path, p.size, p.mtime_ns) for p in batch if p.reuse is None] for batch in batches_a)
    ticker = Ticker(progress, "hash", header.files, header.bytes)
    hashed = [0, 0]
    errors: list[str] = []
    with HashEngine(workers) as engine, ManifestWriter(output, header) as writer:
        results = engine.map_batches(partial(_hash_records, str(root)), work)
        for batch, (fresh, failed) in zip(batches_b, results, strict=True):
            hashed_lines = iter(fresh)
            writer.write_line(b"".join(p.reuse if p.reuse is not None else next(hashed_lines) for p in batch))
            errors.extend(failed)
            sizes = [p.size for p in batch if p.reuse is None]
            hashed[0] += len(sizes)
            hashed[1] += sum(sizes)
            ticker.add(len(batch), sum(p.size for p in batch))
        ticker.finish()
        if errors:
            more = f" (and {len(errors) - MAX_LISTED_ERRORS} more)" if len(errors) > MAX_LISTED_ERRORS else ""
            raise InputIOError(
                str(root),
                f"{len(errors)} file(s) could not be read: " + "; ".join(errors[:MAX_LISTED_ERRORS]) + more,
                "fix the permissions or remove the files, then build again; no manifest was written",
            )
    return BuildReport(
        output=str(output),
        release=header.release,
        files=header.files,
        bytes=header.bytes,
        hashed_files=hashed[0],
        hashed_bytes=hashed[1],
        reused_files=header.files - hashed[0],
        reused_bytes=header.bytes - hashed[1],
        skipped=skipped,
    )
