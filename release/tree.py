"""A release as a stream of files: from a release root (walked) or from its manifest. One rule for all.

Every command that accepts "ROOT or MANIFEST" reads it through `files_of`: regular files only,
symlinks never followed, names that are not UTF-8 and special files left out (and counted in
`skipped`), and a folder that cannot be listed is an error, never a silent hole in a plan or a list.
`scan_tree` is the same walk for millions of files at once (listed in C on threads), into a FileTable.
"""

from __future__ import annotations

from collections.abc import Iterator
from functools import partial
from pathlib import Path
from typing import NamedTuple

import numpy as np

from release.errors import BadInput, InputIOError
from release.hashing import HashEngine, batched
from release.manifest.io import ManifestReader
from release.progress import ProgressFn, Ticker, no_progress
from release.walk import FILE_KIND, FileTable, WalkEntry, list_dir, list_tree, walk

Skipped = list[tuple[str, str]]  # (path, kind) of entries left out: symlink, special, undecodable


class SourceFile(NamedTuple):
    """One regular file of a release."""

    path: str
    size: int
    mtime_ns: int


def walk_error(root: Path, entry: WalkEntry) -> InputIOError:
    """The error for a walk entry that could not be listed or stat'ed."""
    return InputIOError(str(root / entry.path), f"cannot list or stat: {entry.detail}")


def _walked(root: Path, tops: list[str], skipped: Skipped | None) -> Iterator[SourceFile]:
    for top in tops:
        for entry in walk(str(root), top):
            if entry.kind == "file":
                yield SourceFile(entry.path, entry.size, entry.mtime_ns)
            elif entry.kind == "error":
                raise walk_error(root, entry)
            elif skipped is not None:
                skipped.append((entry.path, entry.kind))


def files_of(
    source: Path, *, subsets: tuple[str, ...] | None = None, skipped: Skipped | None = None
) -> Iterator[SourceFile]:
    """Every regular file of a release root (sorted walk) or of a manifest (its order), optionally only
    those under the folders `subsets` (a missing one is empty). Walk errors raise InputIOError."""
    if is_root(source):
        tops = [""] if subsets is None else [s for s in subsets if (source / s).is_dir()]
        return _walked(source, tops, skipped)
    prefixes = None if subsets is None else tuple(f"{s}/" for s in subsets)
    records = iter(ManifestReader(source))
    return (SourceFile(r.path, r.size, r.mtime_ns) for r in records if not prefixes or r.path.startswith(prefixes))


def is_root(source: Path) -> bool:
    """True for a release root (a folder), False for a manifest (a file); BadInput for neither."""
    if source.is_dir():
        return True
    if source.is_file():
        return False
    raise BadInput(str(source), "no such release root or manifest")


def table_of(source: Path, progress: ProgressFn = no_progress, workers: int | None = None) -> tuple[FileTable, Skipped]:
    """A FileTable (path, size, mtime) of a release root (walked on every core) or of a manifest."""
    if is_root(source):
        return scan_tree(source, progress, workers)
    table = FileTable()
    for file in files_of(source):
        table.add(file.path, file.size, file.mtime_ns)
    return table, []


def _top_levels(root: Path, depth: int = 2) -> tuple[list[WalkEntry], list[str]]:
    """Entries of the first `depth` levels, and the folders below them (bucket folders) to walk in parallel."""
    entries: list[WalkEntry] = []
    frontier = [""]
    for _ in range(depth):
        below: list[str] = []
        for folder in frontier:
            try:
                listed = list_dir(str(root), folder)
            except OSError as exc:
                raise InputIOError(str(root / folder), f"cannot list folder: {exc.strerror}") from exc
            below.extend(e.path for e in listed if e.kind == "dir")
            entries.extend(e for e in listed if e.kind != "dir")
        frontier = below
    return entries, frontier


def scan_tree(root: Path, progress: ProgressFn = no_progress, workers: int | None = None) -> tuple[FileTable, Skipped]:
    """Walk `root` into a FileTable of regular files: the bucket folders are listed in C on `workers`
    threads (GIL released; more threads than cores keep a cold disk's queue full), in walk order.

    Returns the table with the skipped (path, kind) entries, sorted: symlinks, special files and names
    that are not UTF-8. A folder that cannot be listed is an error: a manifest must not silently miss files.
    """
    if not root.is_dir():
        raise BadInput(str(root), "not a directory")
    entries, folders = _top_levels(root)
    table = FileTable()
    for entry in entries:
        if entry.kind == "file":
            table.add(entry.path, entry.size, entry.mtime_ns)
    skipped = [(e.path, e.kind) for e in entries if e.kind not in ("file", "error")]
    errors = [e for e in entries if e.kind == "error"]
    if errors:
        raise walk_error(root, errors[0])
    ticker = Ticker(progress, "walk", len(folders), unit="folders")
    groups = list(batched(folders, limit=8))
    with HashEngine(workers, threads=True) as engine:
        for group, listing in zip(groups, engine.map_batches(partial(list_tree, str(root)), groups), strict=True):
            others = np.flatnonzero(listing.kinds != FILE_KIND).tolist()
            found = [listing.entry(row, str(root)) for row in others]
            if failed := [entry for entry in found if entry.kind == "error"]:
                raise walk_error(root, failed[0])
            skipped.extend((entry.path, entry.kind) for entry in found)
            table.extend_listing(listing)
            ticker.add(len(group), int(listing.sizes[listing.kinds == FILE_KIND].sum()))
    ticker.finish()
    return table, sorted(skipped)
