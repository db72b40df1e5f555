"""Placing a year's metadata export in a release root, and the reproducible `metadata.json.tar.xz`.

Published layout: the release's own year directly in `metadata/` (`metadata/2019000000000000`), every
earlier year in `metadata/<year>/`. Archiving year Y therefore first moves last year's top-level chunks
into `metadata/<their year>/`, then places Y's chunks at the top. An export older than what the root
already holds goes straight to `metadata/<Y>/`.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from release.atomic import OutputSet, atomic_output
from release.errors import BadInput, InputIOError, MetadataFormatError
from release.layout import chunk_year
from release.metadata import MetaLine, export_chunks, read_chunk
from release.progress import ProgressFn, Ticker, no_progress
from release.tarball import write_tar_xz


@dataclass
class ArchiveReport:
    """What `archive_metadata` did."""

    year: int
    chunks: int = 0
    records: int = 0
    bytes: int = 0
    placed_in: str = ""
    moved_to_archive: dict[str, list[str]] = field(default_factory=dict)


def _export_files(export: Path, year: int) -> list[Path]:
    if not export.is_dir():
        raise BadInput(str(export), "not a folder of metadata export chunks")
    chunks = export_chunks(export)
    if not chunks:
        raise BadInput(str(export), f"no export chunks (files named {year} + 12 digits)")
    wrong = [c.name for c in chunks if chunk_year(c.name) != year]
    if wrong:
        raise BadInput(str(export / wrong[0]), f"chunk of year {chunk_year(wrong[0])} in an export for {year}")
    return chunks


def validate_export(chunks: list[Path], progress: ProgressFn = no_progress) -> tuple[int, int]:
    """Check every line of every chunk; raise MetadataFormatError naming the first bad line (and the count).

    Returns (records, bytes).
    """
    ticker = Ticker(progress, "validate", bytes_total=sum(c.stat().st_size for c in chunks))
    records = bad = 0
    first: MetaLine | None = None
    for chunk in chunks:
        for item in read_chunk(chunk):
            if item.record is not None:
                records += 1
                continue
            bad += 1
            first = first or item
        ticker.add(0, chunk.stat().st_size)
    ticker.finish()
    if first is not None:
        more = f" (and {bad - 1} more malformed lines)" if bad > 1 else ""
        raise MetadataFormatError(first.path, first.line, first.field, (first.problem or "malformed") + more)
    return records, ticker.bytes_done


def _top_level_years(metadata: Path) -> set[int]:
    return {y for c in export_chunks(metadata) if (y := chunk_year(c.name)) is not None}


def _copy_in(chunks: list[Path], target: Path, outputs: OutputSet) -> None:
    """Copy chunks into `target` under temporary names; they appear when `outputs` commits."""
    outputs.folder(target)
    for chunk in chunks:
        try:
            with open(chunk, "rb") as source, atomic_output(target / chunk.name, outputs) as out:
                shutil.copyfileobj(source, out, 1 << 20)
        except OSError as exc:
            raise InputIOError(str(chunk), f"cannot read: {exc.strerror}") from exc


def archive_metadata(
    export: Path,
    year: int,
    root: Path,
    *,
    force: bool = False,
    dry_run: bool = False,
    progress: ProgressFn = no_progress,
) -> ArchiveReport:
    """Validate the whole export, then place it in `root/metadata` by the published layout.

    Every check runs before anything moves; with `dry_run` the report says what would happen.
    """
    chunks = _export_files(export, year)
    records, nbytes = validate_export(chunks, progress)
    if not root.is_dir():
        raise BadInput(str(root), "release root does not exist")
    metadata = root / "metadata"
    current = _top_level_years(metadata)
    report = ArchiveReport(year=year, chunks=len(chunks), records=records, bytes=nbytes)
    target = metadata / str(year) if year < max(current, default=year) else metadata
    if target == metadata and year in current and not force:
        raise BadInput(str(metadata), f"already holds {year} chunks", "pass --force to replace them")
    if target != metadata and target.exists() and any(target.iterdir()) and not force:
        raise BadInput(str(target), "already exists", "pass --force to replace it")
    moves = {old: metadata / str(old) for old in sorted(current - {year})} if target == metadata else {}
    for old, archive in moves.items():
        if archive.exists() and any(archive.iterdir()):  # an empty one is left by a killed earlier run
            raise BadInput(str(archive), f"exists, so last year's top-level {old} chunks cannot move there")
    report.placed_in = str(target)
    # this year's chunks are copied under temporary names first; then last year's move, stale chunks go and
    # the new ones appear in one step (Ctrl-C and SIGTERM held back), so metadata/ is never left without them
    with OutputSet() as outputs:
        for old, archive in moves.items():
            moved = [c for c in export_chunks(metadata) if chunk_year(c.name) == old]
            report.moved_to_archive[str(archive)] = [c.name for c in moved]
            if not dry_run:
                outputs.folder(archive)
                for chunk in moved:
                    outputs.move(chunk, archive / chunk.name)
        if dry_run:
            return report
        if target == metadata and force:
            names = {c.name for c in chunks}
            for stale in (c for c in export_chunks(metadata) if chunk_year(c.name) == year and c.name not in names):
                outputs.remove(stale)
        _copy_in(chunks, target, outputs)
    return report


def metadata_members(root: Path) -> list[tuple[str, Path]]:
    """(archive name, file) of everything under `root/metadata`, names like `metadata/2017/2017000000000001`."""
    metadata = root / "metadata"
    if not metadata.is_dir():
        raise BadInput(str(metadata), "no metadata folder in the release root")
    members = []
    for folder, dirs, names in os.walk(metadata):
        dirs.sort()
        for name in sorted(names):
            path = Path(folder) / name
            if path.is_symlink() or not path.is_file():
                raise InputIOError(str(path), "not a regular file: refusing to archive it")
            members.append((path.relative_to(root).as_posix(), path))
    if not members:
        raise BadInput(str(metadata), "is empty")
    return members


def write_metadata_tarball(root: Path, output: Path) -> int:
    """Write `metadata.json.tar.xz` of `root/metadata` reproducibly; returns the member count."""
    members = metadata_members(root)
    write_tar_xz(output, members)
    return len(members)
