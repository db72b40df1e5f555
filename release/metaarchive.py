"""Placing a year's metadata export in a release root, and the reproducible `metadata.json.tar.xz`.

Published layout: the release's own year directly in `metadata/` (`metadata/2019000000000000`), every
earlier year in `metadata/<year>/`. Archiving year Y therefore first moves last year's top-level chunks
into `metadata/<their year>/`, then places Y's chunks at the top. An export older than what the root
already holds goes straight to `metadata/<Y>/`.

Danbooru's own export (2021 on, `posts*.json` and the `tags…`/`artists…`/`notes…`/`pools…` tables beside
them, see release.posts) is placed the same way, the way Danbooru2021 shipped it: at the top, last
year's top level moved to `metadata/<year>/`; and an old-dialect export of a year whose new-dialect
export is already at the top goes to `metadata/<year>-old/`. File names of the new export carry no
year: the year of top-level `posts*.json` chunks is that of their newest post (one read of them).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict

from release.atomic import OutputSet, atomic_output, write_text_atomic
from release.errors import BadInput, InputIOError, MetadataFormatError
from release.layout import chunk_year
from release.manifest.merge import stamps
from release.metadata import LineReader, MetaLine, PostReader, export_chunks, read_chunk
from release.posts import NEW_SIDE_CHUNK, Dialect, dialect_of_name
from release.progress import ProgressFn, Ticker, no_progress
from release.tarball import OWN_STREAM, Reusable, Segment, write_segmented_tar_xz, write_streams


@dataclass
class ArchiveReport:
    """What `archive_metadata` did."""

    year: int
    chunks: int = 0
    records: int = 0
    bytes: int = 0
    placed_in: str = ""
    moved_to_archive: dict[str, list[str]] = field(default_factory=dict)


def _export_files(export: Path, year: int) -> tuple[list[Path], Dialect]:
    """The export's post chunks (one dialect, checked by name) and its dialect."""
    if not export.is_dir():
        raise BadInput(str(export), "not a folder of metadata export chunks")
    chunks = export_chunks(export)
    if not chunks:
        raise BadInput(str(export), f"no export chunks (files named {year} + 12 digits, or posts*.json)")
    dialects = {dialect_of_name(c.name) for c in chunks}
    if len(dialects) > 1:
        raise BadInput(str(export), "holds chunks of both dialects (year + 12 digits and posts*.json): one export only")
    wrong = [c.name for c in chunks if (found := chunk_year(c.name)) is not None and found != year]
    if wrong:
        raise BadInput(str(export / wrong[0]), f"chunk of year {chunk_year(wrong[0])} in an export for {year}")
    return chunks, Dialect.OLD if Dialect.NEW not in dialects else Dialect.NEW


def _side_chunks(folder: Path) -> list[Path]:
    """The tables Danbooru's export ships beside its posts (tags, artists, notes, pools)."""
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if NEW_SIDE_CHUNK.fullmatch(p.name) and p.is_file())


def validate_export(
    chunks: list[Path], progress: ProgressFn = no_progress, readers: Sequence[LineReader] = ()
) -> tuple[int, int]:
    """Check every line of every chunk; raise MetadataFormatError naming the first bad line (and the count).
    `readers` get every line as it is checked: what later work needs of it, taken from this one pass.

    Returns (records, bytes).
    """
    ticker = Ticker(progress, "validate", bytes_total=sum(c.stat().st_size for c in chunks))
    records = bad = 0
    first: MetaLine | None = None
    for chunk in chunks:
        for item in read_chunk(chunk):
            for reader in readers:
                reader.add(chunk.name, item)
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


def _top_level(metadata: Path) -> dict[int, list[Path]]:
    """The files at the top of metadata/ by the year of the export they belong to."""
    found: dict[int, list[Path]] = {}
    chunks = export_chunks(metadata)
    for chunk in chunks:
        if (year := chunk_year(chunk.name)) is not None:
            found.setdefault(year, []).append(chunk)
    new = [c for c in chunks if dialect_of_name(c.name) is Dialect.NEW]
    if new:
        reader = PostReader(new)
        for _ in reader:
            pass
        found.setdefault(reader.newest_year, []).extend(new + _side_chunks(metadata))
    return found


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
    readers: Sequence[LineReader] = (),
) -> ArchiveReport:
    """Validate the whole export, then place it in `root/metadata` by the published layout.

    Every check runs before anything moves; with `dry_run` the report says what would happen. `readers`
    get every line of the export as the validation reads it (`validate_export`).
    """
    chunks, dialect = _export_files(export, year)
    records, nbytes = validate_export(chunks, progress, readers)
    if not root.is_dir():
        raise BadInput(str(root), "release root does not exist")
    chunks += _side_chunks(export) if dialect is Dialect.NEW else []
    metadata = root / "metadata"
    top = _top_level(metadata)
    current = set(top)
    report = ArchiveReport(year=year, chunks=len(chunks), records=records, bytes=nbytes)
    target = metadata / str(year) if year < max(current, default=year) else metadata
    same_year_new = year in top and any(dialect_of_name(c.name) is Dialect.NEW for c in top[year])
    if dialect is Dialect.OLD and same_year_new:  # this year's new export is at the top already
        target = metadata / f"{year}-old"
    makes_room = dialect is Dialect.NEW and not same_year_new  # an old-dialect export of the year moves aside
    if target == metadata and year in current and not force and not makes_room:
        raise BadInput(str(metadata), f"already holds {year} chunks", "pass --force to replace them")
    if target != metadata and target.exists() and any(target.iterdir()) and not force:
        raise BadInput(str(target), "already exists", "pass --force to replace it")
    moves = {old: metadata / str(old) for old in sorted(current - {year})} if target == metadata else {}
    if target == metadata and makes_room and year in top:
        moves[year] = metadata / f"{year}-old"  # the same year's old-dialect export makes room
    for old, archive in moves.items():
        if archive.exists() and any(archive.iterdir()):  # an empty one is left by a killed earlier run
            raise BadInput(str(archive), f"exists, so last year's top-level {old} chunks cannot move there")
    report.placed_in = str(target)
    # this year's chunks are copied under temporary names first; then last year's move, stale chunks go and
    # the new ones appear in one step (Ctrl-C and SIGTERM held back), so metadata/ is never left without them
    with OutputSet() as outputs:
        for old, archive in moves.items():
            moved = top[old]
            report.moved_to_archive[str(archive)] = [c.name for c in moved]
            if not dry_run:
                outputs.folder(archive)
                for chunk in moved:
                    outputs.move(chunk, archive / chunk.name)
        if dry_run:
            return report
        if target == metadata and force and year not in moves:
            names = {c.name for c in chunks}
            for stale in (c for c in top.get(year, []) if c.name not in names):
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


def write_metadata_tarball(
    root: Path, output: Path, *, reuse: Sequence[Reusable] = (), digests: dict[str, str] | None = None
) -> tuple[int, list[Segment]]:
    """Write `metadata.json.tar.xz` of `root/metadata` reproducibly, each big chunk in an xz stream of its
    own (`reuse`: the chunks last year's tarball, or streams compressed ahead, hold are copied from them,
    not compressed again); returns the member count and the index of those streams."""
    members = metadata_members(root)
    segments = write_segmented_tar_xz(output, members, reuse=reuse, digests=digests)
    return len(members), segments


AHEAD_STREAMS = "metadata-ahead.xz"
AHEAD_INDEX = "metadata-ahead.json"


class AheadIndex(BaseModel):
    """What `compress_ahead` compressed: the files (archive name -> [size, mtime_ns]) and their streams."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    format: Literal["booru-release-metadata-ahead"] = "booru-release-metadata-ahead"
    version: Literal[1] = 1
    files: dict[str, tuple[int, int]]
    segments: list[Segment]


def compress_ahead(root: Path, folder: Path, *, new_only: bool, export: Path | None = None) -> AheadIndex:
    """Compress the big metadata files' streams before the tarball is written, into `folder` (AHEAD_STREAMS,
    with its index AHEAD_INDEX), so that writing it later copies them (`ahead_streams`). `new_only`: only the
    files at the top of metadata/ (this year's export; last year's tarball holds the archived years).
    With `export`, this year's export is still to be placed (`archive_metadata`, running meanwhile): its
    files are compressed from there (streams are copied by content, whatever the file is called), and of
    the root's only the archived years' (in metadata/<year>/), which placing the export leaves where they
    are (the top-level files it moves are left to the tarball step). A finished earlier run over the same
    files (names, sizes, mtimes) is kept as it is."""
    if export is None:
        candidates = [(name, path) for name, path in metadata_members(root) if not new_only or name.count("/") == 1]
    else:
        candidates = [(f"metadata/{p.name}", p) for p in _export_members(export)]
        archived = [] if new_only else [(n, p) for n, p in _root_members(root) if n.count("/") > 1]
        candidates += archived
    found = stamps(candidates)
    members = [(name, path) for name, path in candidates if found[name][0] >= OWN_STREAM]
    files = {name: found[name] for name, _ in members}
    earlier = _ahead_index(folder)
    if earlier is not None and earlier.files == files and (folder / AHEAD_STREAMS).is_file():
        return earlier
    with OutputSet() as outputs:
        segments = write_streams(folder / AHEAD_STREAMS, members, outputs=outputs)
        index = AheadIndex(files=files, segments=segments)
        write_text_atomic(folder / AHEAD_INDEX, index.model_dump_json() + "\n", outputs)
    return index


def _export_members(export: Path) -> list[Path]:
    """The files of an export that `archive_metadata` places (post chunks; the new dialect's side tables)."""
    return export_chunks(export) + _side_chunks(export)


def _root_members(root: Path) -> list[tuple[str, Path]]:
    try:
        return metadata_members(root)
    except BadInput:  # no metadata/ yet: the export being placed is the first
        return []


def _ahead_index(folder: Path) -> AheadIndex | None:
    try:
        return AheadIndex.model_validate_json((folder / AHEAD_INDEX).read_bytes())
    except (OSError, ValueError):
        return None


def ahead_streams(folder: Path) -> Reusable | None:
    """The streams `compress_ahead` left in `folder`, to copy by content (each is checked as it is copied:
    a stale or damaged one is compressed again instead); None when there are none."""
    index = _ahead_index(folder)
    streams = folder / AHEAD_STREAMS
    return Reusable(streams, index.segments) if index is not None and streams.is_file() else None


def remove_ahead(folder: Path) -> None:
    """Delete what `compress_ahead` wrote (once the tarball holds it)."""
    for name in (AHEAD_INDEX, AHEAD_STREAMS):
        (folder / name).unlink(missing_ok=True)
