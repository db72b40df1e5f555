"""Rebuild an earlier release from a later tree, and prove it.

Releases are append-only, so release N is the later tree's images with ID ≤ N's final ID plus its
archived metadata (`metadata/<year>/` back at the top of `metadata/`). With N's manifest at hand, every
placed file is hashed in one read pass (which also builds N's torrents) and compared by sha256 with
that manifest: identical, differing (replaced later), missing (taken down). Differing files are removed
from the result and, with the missing ones, written as a `--files-from` list to fetch from a mirror
that kept them; a second run over the completed folder proves the whole release. Without a manifest
the metadata's md5 is the only witness, and the report says what that cannot prove.
"""

from __future__ import annotations

import errno
import fcntl
import os
import shutil
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path

from pydantic import BaseModel

from release.atomic import atomic_output
from release.build import build_manifest
from release.errors import BadInput, OutputError
from release.filelists import write_list
from release.layout import IMAGE_SUBSETS, chunk_year, parse_path
from release.manifest.diff import diff_manifests
from release.manifest.io import ManifestReader, prescan_paths
from release.metaarchive import write_metadata_tarball
from release.progress import ProgressFn, Ticker, no_progress
from release.reconstruct_md5 import Md5Check, check_md5
from release.releases import ReleaseFacts
from release.torrents.build import TorrentJob, TorrentsReport
from release.tree import files_of

LINKS = ("hard", "reflink", "copy", "symlink")
FICLONE = 0x40049409


class TorrentOut(BaseModel):
    """One rebuilt .torrent."""

    name: str
    file: str
    info_hash: str


class ReconstructReport(BaseModel):
    """What `reconstruct` placed and what it proved."""

    release: str
    source: str
    target: str
    link: str
    year: int
    final_id: int
    proven: bool
    identical_release: bool
    placed_files: int
    placed_bytes: int
    identical_files: int
    identical_bytes: int
    differ: list[str]
    missing: list[str]
    extra: list[str]
    refetch_list: str | None
    manifest: str | None
    metadata_tarball: str | None
    torrents: list[TorrentOut]
    md5: Md5Check | None
    notes: list[str]


def source_path(path: str, year: int) -> str:
    """Where a file of the old release lives in a later tree: top-level metadata chunks of the old
    release were archived to `metadata/<their year>/`; everything else keeps its path."""
    parts = path.split("/")
    if len(parts) == 2 and parts[0] == "metadata" and (chunk := chunk_year(parts[1])) is not None:
        return f"metadata/{chunk}/{parts[1]}"
    return path


def _from_manifest(manifest: Path, year: int) -> Iterator[tuple[str, str]]:
    for record in ManifestReader(manifest):
        yield record.path, source_path(record.path, year)


def _from_tree(source: Path, facts: ReleaseFacts) -> Iterator[tuple[str, str]]:
    for file in files_of(source, subsets=facts.subsets):
        parsed = parse_path(file.path)
        if parsed.id is not None and parsed.id <= facts.final_id:
            yield file.path, file.path
    metadata = source / "metadata"
    years = [f.name for f in sorted(metadata.iterdir()) if f.is_dir() and f.name.isdigit()] if metadata.is_dir() else []
    for year in (y for y in years if int(y) <= facts.year):
        top = int(year) == facts.year
        for file in files_of(source, subsets=(f"metadata/{year}",)):
            name = file.path.rsplit("/", 1)[1]
            yield (f"metadata/{name}" if top else file.path), file.path


def place(src: Path, dst: Path, link: str) -> None:
    """Put `src` at `dst` by hard link, reflink, copy or symlink (an existing `dst` is kept)."""
    if dst.exists() or dst.is_symlink():
        return
    dst.parent.mkdir(parents=True, exist_ok=True)
    try:
        if link == "hard":
            os.link(src, dst)
        elif link == "symlink":
            os.symlink(src.resolve(), dst)
        elif link == "copy":
            shutil.copy2(src, dst)
        else:
            with open(src, "rb") as a, open(dst, "wb") as b:
                try:
                    fcntl.ioctl(b.fileno(), FICLONE, a.fileno())
                except OSError as exc:
                    dst.unlink()
                    raise OutputError(str(dst), "reflinks are not supported here", "use --link hard or copy") from exc
            shutil.copystat(src, dst)
    except OSError as exc:
        hint = "hard links need the same file system: use --link copy" if exc.errno == errno.EXDEV else ""
        raise OutputError(str(dst), f"cannot place {src}: {exc.strerror}", hint) from exc


def _regular_size(src: Path) -> int | None:
    """The size of `src` if it is a regular file (never through a symlink), else None."""
    try:
        st = src.lstat()
    except OSError:
        return None
    return st.st_size if stat.S_ISREG(st.st_mode) else None


def _place_all(
    pairs: Iterator[tuple[str, str]], source: Path, target: Path, link: str, progress: ProgressFn
) -> tuple[int, int]:
    """Place every (target path, source path) pair whose source exists; missing ones show in the proof."""
    ticker = Ticker(progress, "place")
    files = nbytes = 0
    for path, src_rel in pairs:
        size = _regular_size(source / src_rel)
        if size is None:
            continue
        place(source / src_rel, target / path, link)
        files, nbytes = files + 1, nbytes + size
        ticker.add(1, size)
    ticker.finish()
    return files, nbytes


def reconstruct(
    facts: ReleaseFacts,
    source: Path,
    target: Path,
    *,
    link: str = "hard",
    manifest: Path | None = None,
    extras: Path | None = None,
    workers: int | None = None,
    dry_run: bool = False,
    progress: ProgressFn = no_progress,
) -> ReconstructReport:
    """Rebuild `facts.name` from `source` into `target`; outputs beside it go to `extras`.

    With `dry_run`, nothing is written: the report counts what would be placed and lists as missing
    the files the source tree lacks."""
    if link not in LINKS:
        raise BadInput(link, f"unknown link mode; choose {', '.join(LINKS)}")
    if not source.is_dir():
        raise BadInput(str(source), "source release root does not exist")
    target = target.resolve()  # `--to .` has no name to put the extras beside
    if target == source.resolve() or source.resolve() in target.parents:
        raise BadInput(str(target), "must lie outside the source tree")
    if manifest is not None:
        prescan_paths(manifest)  # every line and the count, before the first file is placed
    extras = extras or target.with_name(target.name + "-extras")
    pairs = _from_manifest(manifest, facts.year) if manifest else _from_tree(source, facts)
    if dry_run:
        return _survey(facts, source, target, link, pairs)
    target.mkdir(parents=True, exist_ok=True)
    extras.mkdir(parents=True, exist_ok=True)
    files, nbytes = _place_all(pairs, source, target, link, progress)
    report = _empty_report(facts, source, target, link, files, nbytes)
    if link == "symlink":
        report.notes.append(
            "symlinks are never followed by the hashing pass: use --link hard, reflink or copy to prove"
        )
        return report
    new_manifest = extras / f"{facts.name}.manifest.jsonl.zst"
    with tempfile.TemporaryDirectory(dir=extras, prefix=".torrents-") as staging:
        job = None
        if manifest is not None and facts.torrents is not None:
            job = TorrentJob(facts.torrents.settings(facts.name), Path(staging), shards=facts.torrents.shards)
        built = build_manifest(
            target, new_manifest, release=facts.name, workers=workers, progress=progress, torrents=job
        )
        report.manifest = str(new_manifest)
        if manifest is None:
            _unproven(report, facts, target, new_manifest)
            return report
        _prove(report, manifest, new_manifest, target, extras)
        _extras(report, facts, target, extras, built.torrents)
    return report


def _empty_report(
    facts: ReleaseFacts, source: Path, target: Path, link: str, files: int, nbytes: int
) -> ReconstructReport:
    return ReconstructReport(
        release=facts.name, source=str(source), target=str(target), link=link, year=facts.year,
        final_id=facts.final_id, proven=False, identical_release=False, placed_files=files, placed_bytes=nbytes,
        identical_files=0, identical_bytes=0, differ=[], missing=[], extra=[], refetch_list=None, manifest=None,
        metadata_tarball=None, torrents=[], md5=None, notes=[],
    )  # fmt: skip


def _survey(
    facts: ReleaseFacts, source: Path, target: Path, link: str, pairs: Iterator[tuple[str, str]]
) -> ReconstructReport:
    files = nbytes = 0
    absent = []
    for path, src_rel in pairs:
        size = _regular_size(source / src_rel)
        if size is None:
            absent.append(path)
        else:
            files, nbytes = files + 1, nbytes + size
    report = _empty_report(facts, source, target, link, files, nbytes)
    report.missing = absent
    report.notes.append("dry run: nothing was placed, hashed or proven")
    return report


def _prove(report: ReconstructReport, old: Path, new: Path, target: Path, extras: Path) -> None:
    diff = diff_manifests(old, new)
    report.proven = True
    report.identical_files = diff.totals["unchanged"].files
    report.identical_bytes = diff.totals["unchanged"].bytes
    report.differ, report.missing, report.extra = diff.changed, diff.removed, diff.added
    for path in diff.changed:  # known-wrong bytes do not stay under the release's name
        (target / path).unlink()
    report.identical_release = not (diff.changed or diff.removed or diff.added)
    refetch = extras / f"{report.release}-refetch.txt"
    refetch.unlink(missing_ok=True)  # a list from an earlier run is stale now
    if diff.changed or diff.removed:
        with atomic_output(refetch) as out:
            write_list(out, sorted(diff.changed + diff.removed))
        report.refetch_list = str(refetch)


def _extras(
    report: ReconstructReport, facts: ReleaseFacts, target: Path, extras: Path, torrents: TorrentsReport | None
) -> None:
    bad_metadata = [p for p in report.differ + report.missing + report.extra if p.startswith("metadata/")]
    if bad_metadata:
        report.notes.append(f"metadata tarball not rebuilt: {len(bad_metadata)} metadata files missing or differing")
    elif (target / "metadata").is_dir():
        write_metadata_tarball(target, extras / "metadata.json.tar.xz")
        report.metadata_tarball = str(extras / "metadata.json.tar.xz")
    if facts.torrents is None:
        report.notes.append("no torrent recipe in the release file: its .torrent files cannot be rebuilt byte for byte")
        return
    if not report.identical_release:
        report.notes.append("torrents not rebuilt: fetch the refetch list into the target and run again")
        return
    assert torrents is not None  # a recipe and a manifest always build them in the proof pass
    folder = extras / "torrents"
    folder.mkdir(exist_ok=True)
    for shard in torrents.shards:
        final = folder / Path(shard.file).name
        os.replace(shard.file, final)
        report.torrents.append(TorrentOut(name=shard.name, file=str(final), info_hash=shard.info_hash))
    os.replace(torrents.tarball, folder / Path(torrents.tarball).name)


def _unproven(report: ReconstructReport, facts: ReleaseFacts, target: Path, manifest: Path) -> None:
    report.md5 = check_md5(target, manifest)
    report.notes += [
        f"no manifest of {facts.name}: bit-identity with the published files cannot be shown",
        f"the metadata's md5 matches {report.md5.matching:,} of {report.md5.checked:,} originals; "
        f"{report.md5.mismatching:,} differ (re-optimised upstream after the export, or replaced since)",
        f"{report.md5.posts_without_file:,} posts up to ID {facts.final_id:,} have no file here "
        "(taken down, or never in the release)",
        f"{report.md5.files_without_post:,} originals have no metadata record to check them against",
        "the metadata tarball and .torrent files cannot be compared with the published ones",
    ]
    if not (target / "metadata").is_dir() or not any((target / "metadata").iterdir()):
        report.notes.append(f"no archived metadata of {facts.year} found in the source tree")
    subsets = [s for s in IMAGE_SUBSETS if s not in facts.subsets]
    if subsets:
        report.notes.append(f"subsets not part of {facts.name}, left out: {', '.join(subsets)}")
