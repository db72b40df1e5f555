"""`manifest build`: walk, sort into manifest order, hash (or reuse), stream to disk."""

from __future__ import annotations

from collections.abc import Iterator
from functools import partial
from pathlib import Path

from pydantic import BaseModel

from release.errors import BadInput, InputIOError
from release.hashing import ALL_ALGORITHMS, HashEngine, batched
from release.layout import SUBSET_RANK, sort_key
from release.manifest.io import ManifestReader, ManifestWriter, record_line
from release.models import ManifestHeader, SubsetTotals
from release.progress import ProgressFn, Ticker, no_progress
from release.readpass import SinglePass, share
from release.torrents.build import TorrentJob, TorrentsReport, prepare_job, write_torrents
from release.walk import FileTable, WalkEntry, list_dir, walk


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
    torrents: TorrentsReport | None = None


def _walk_dirs(root: str, folders: list[str]) -> tuple[FileTable, list[tuple[str, str]], list[WalkEntry]]:
    """Worker side: walk whole folders into a table; return it with skipped entries and errors."""
    table = FileTable()
    skipped: list[tuple[str, str]] = []
    errors: list[WalkEntry] = []
    for folder in folders:
        for entry in walk(root, folder):
            if entry.kind == "file":
                table.add(entry.path, entry.size, entry.mtime_ns)
            elif entry.kind == "error":
                errors.append(entry)
            else:
                skipped.append((entry.path, entry.kind))
    return table, skipped, errors


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


def scan_tree(
    root: Path, progress: ProgressFn = no_progress, workers: int | None = None
) -> tuple[FileTable, list[tuple[str, str]]]:
    """Walk `root` into a FileTable of regular files (bucket folders listed on the workers).

    Returns the table with the skipped (path, kind) entries: symlinks and special files. A folder
    that cannot be listed is an error: a manifest must not silently miss files.
    """
    if not root.is_dir():
        raise BadInput(str(root), "not a directory")
    entries, folders = _top_levels(root)
    table = FileTable()
    for entry in entries:
        if entry.kind == "file":
            table.add(entry.path, entry.size, entry.mtime_ns)
    skipped = [(e.path, e.kind) for e in entries if e.kind in ("symlink", "special")]
    errors = [e for e in entries if e.kind == "error"]
    ticker = Ticker(progress, "walk", len(folders), unit="folders")
    groups = list(batched(folders, limit=8))
    with HashEngine(workers) as engine:
        walked = engine.map_batches(partial(_walk_dirs, str(root)), groups)
        for group, (part, part_skipped, part_errors) in zip(groups, walked, strict=True):
            table.extend(part)
            skipped.extend(part_skipped)
            errors.extend(part_errors)
            ticker.add(len(group), part.total_bytes())
    ticker.finish()
    if errors:
        raise InputIOError(str(root / errors[0].path), f"cannot list or stat: {errors[0].detail}")
    return table, sorted(skipped)


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


Planned = tuple[int, bytes | None]  # (table row, the previous manifest's line when it can be reused)


def _plan(table: FileTable, previous: ManifestReader | None) -> Iterator[Planned]:
    """Rows in manifest order, merge-joined with the (identically sorted) previous manifest."""
    rows = table.order().tolist()
    if previous is None:
        for row in rows:
            yield row, None
        return
    old = iter(previous)
    current = next(old, None)
    current_key = sort_key(current.path) if current is not None else None
    for row in rows:
        path = table.path(row)
        key = sort_key(path)
        while current is not None and current_key is not None and current_key < key:
            current = next(old, None)
            current_key = sort_key(current.path) if current is not None else None
        same = (
            current is not None
            and current.path == path
            and current.size == table.size(row)
            and current.mtime_ns == table.mtime_ns(row)
        )
        yield row, record_line(**current.model_dump()) if same and current is not None else None
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
    torrents: TorrentJob | None = None,
) -> BuildReport:
    """Build the manifest of `root` into `output` (atomically); with `torrents`, the shards' .torrent files
    from the same read of every byte."""
    table, skipped = scan_tree(root, progress, workers)
    header = header_for(table, release or root.resolve().name)
    prev_reader = ManifestReader(previous) if previous is not None and not rehash else None
    if prev_reader is not None and set(prev_reader.header.algorithms) != set(ALL_ALGORITHMS):
        raise BadInput(str(previous), "previous manifest has other hash algorithms; use --rehash")
    prepared = prepare_job(table, torrents) if torrents is not None else None
    ticker = Ticker(progress, "hash", header.files, None)
    single = SinglePass(table, prepared.streams if prepared else None, hash_files=True, ticker=ticker)
    engine = HashEngine(workers, share, (str(root), table), threads=True)
    with engine, ManifestWriter(output, header) as writer:
        for lines in single.run(engine, _plan(table, prev_reader)):
            writer.write_line(lines)
        ticker.finish()
        single.raise_errors(
            str(root), "fix the permissions or remove the files, then build again; no manifest was written"
        )
    torrents_report = None
    if prepared is not None and torrents is not None:
        torrents_report = write_torrents(table, prepared, single.piece_hashes(), torrents.output, torrents.profiles)
    hashed = (single.hashed_files, single.hashed_bytes)
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
        torrents=torrents_report,
    )
