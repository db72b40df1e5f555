"""`manifest build`: walk, sort into manifest order, hash (or reuse), stream to disk."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from pydantic import BaseModel

from release.errors import BadInput, InputIOError
from release.hashing import ALL_ALGORITHMS, FileHash, HashEngine
from release.layout import SUBSET_RANK, sort_key
from release.manifest.io import ManifestReader, ManifestWriter
from release.models import ManifestHeader, ManifestRecord, SubsetTotals
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


@dataclass(slots=True)
class _Planned:
    path: str
    size: int
    mtime_ns: int
    reuse: ManifestRecord | None


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


def _plan(table: FileTable, previous: ManifestReader | None, rehash: bool) -> Iterator[_Planned]:
    """Merge-join the sorted tree with the (identically sorted) previous manifest."""
    old = iter(previous) if previous is not None and not rehash else iter(())
    current = next(old, None)
    for path, size, mtime_ns in table.sorted_rows():
        key = sort_key(path)
        while current is not None and sort_key(current.path) < key:
            current = next(old, None)
        reuse = None
        if current is not None and current.path == path and current.size == size and current.mtime_ns == mtime_ns:
            reuse = current
        yield _Planned(path, size, mtime_ns, reuse)
    for _ in old:  # finish reading: validates the rest of the previous manifest
        pass


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
    prev_reader = ManifestReader(previous) if previous is not None else None
    if prev_reader is not None and set(prev_reader.header.algorithms) != set(ALL_ALGORITHMS):
        raise BadInput(str(previous), "previous manifest has other hash algorithms; use --rehash")
    plan_a, plan_b = itertools.tee(_plan(table, prev_reader, rehash))
    to_hash = ((p, p.path, p.size) for p in plan_a if p.reuse is None)
    ticker = Ticker(progress, "hash", header.files, header.bytes)
    hashed = [0, 0]
    errors: list[str] = []
    with HashEngine(workers) as engine, ManifestWriter(output, header) as writer:
        results = engine.hash_files(str(root), to_hash, ALL_ALGORITHMS)
        for planned in plan_b:
            if planned.reuse is not None:
                writer.write(planned.reuse)
            else:
                tag, result = next(results)
                assert tag is planned
                record = _record(planned, result, errors)
                if record is not None:
                    writer.write(record)
                hashed[0] += 1
                hashed[1] += planned.size
            ticker.add(1, planned.size)
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


def _record(planned: _Planned, result: FileHash, errors: list[str]) -> ManifestRecord | None:
    if result.error is not None:
        errors.append(f"{planned.path}: {result.error}")
        return None
    if result.size_read != planned.size:
        errors.append(f"{planned.path}: changed while being read ({planned.size} -> {result.size_read} bytes)")
        return None
    xxh, sha, md5 = result.digests
    return ManifestRecord(
        path=planned.path, size=planned.size, mtime_ns=planned.mtime_ns, xxh3_128=xxh, sha256=sha, md5=md5
    )
