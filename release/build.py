"""The one read pass: a release's manifest, its torrents, or both, from one read of every byte.

`build_manifest` (`manifest build`, with or without `--torrents`) and `build_torrents` (`torrents
build`) are two ways into the same run: list the files, plan what to hash (reused records, last
year's pieces), drive `readpass.SinglePass` over the hashing engine, and write every output as one
set (`atomic.OutputSet`): the manifest, the .torrent files and their tarball appear together or not
at all. A manifest build keeps a side journal of finished records (`manifest.journal`), so a killed
build resumes instead of starting over.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

import numpy as np
from pydantic import BaseModel

from release.atomic import OutputSet, is_stdout
from release.errors import BadInput
from release.hashing import ALL_ALGORITHMS, IO_DEPTH, HashEngine, reader_threads
from release.manifest.build import header_for, plan_rows
from release.manifest.io import ManifestReader, ManifestWriter
from release.manifest.journal import JournalWriter, journals_of, read_journal, remove_journals
from release.manifest.keyed import Reusable, Source, manifest_source, records_source
from release.progress import ProgressFn, Ticker, no_progress
from release.readpass import PlanChunk, SinglePass, share
from release.torrents.build import Prepared, TorrentJob, TorrentsReport, prepare_job, write_torrents
from release.tree import scan_tree, table_of
from release.walk import FileTable

UNREADABLE_HINT = (
    "fix the permissions or remove the files, then build again: no manifest was written, "
    "but what was hashed is kept and the next build resumes from it"
)


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
    resumed_from: list[str] = []
    skipped: list[tuple[str, str]]
    torrents: TorrentsReport | None = None


def _journaled(output: Path) -> bool:
    """A journal only makes sense beside a regular output file (not stdout, a pipe or a device)."""
    return not is_stdout(output) and (not output.exists() or output.is_file())


def reuse_sources(previous: Path | None, journals: list[Path], rehash: bool) -> list[Source]:
    """Where reusable records come from: this build's journals first, then last year's manifest."""
    sources = [records_source(str(path), list(read_journal(path, rehash))) for path in journals]
    if previous is not None and not rehash:
        reader = ManifestReader(previous)
        if set(reader.header.algorithms) != set(ALL_ALGORITHMS):
            raise BadInput(str(previous), "previous manifest has other hash algorithms; use --rehash")
        sources.append(manifest_source(previous))
    return sources


def build_manifest(
    root: Path,
    output: Path,
    *,
    release: str | None = None,
    previous: Path | None = None,
    rehash: bool = False,
    workers: int | None = None,
    io_depth: int = IO_DEPTH,
    progress: ProgressFn = no_progress,
    torrents: TorrentJob | None = None,
) -> BuildReport:
    """Build the manifest of `root` into `output`; with `torrents`, the shards' .torrent files from the same
    read of every byte. Everything written appears together; a killed build resumes from its journal.
    `io_depth` folders are listed and files read at a time (threads, GIL released; at least `workers`)."""
    readers = reader_threads(workers, io_depth)
    table, skipped = scan_tree(root, progress, readers)
    header = header_for(table, release or root.resolve().name)
    journaled = _journaled(output)
    journals = journals_of(output) if journaled else []
    sources = reuse_sources(previous, journals, rehash)
    order = table.order()
    reusable = Reusable(table, order, sources) if sources else None
    prepared = None
    if torrents is not None:
        prepared = prepare_job(root, table, torrents, _unchanged(table, order, reusable, torrents))
    ticker = Ticker(progress, "hash", header.files, None)
    with OutputSet() as outputs:
        with contextlib.ExitStack() as stack:
            writer = stack.enter_context(ManifestWriter(output, header, outputs))
            journal = stack.enter_context(JournalWriter(output, header.release, rehash)) if journaled else None
            # the journal takes each group's lines as it is hashed (in any order), the manifest in its order
            single = SinglePass(
                table, prepared.streams if prepared else None, hash_files=True, ticker=ticker,
                on_hashed=journal.write if journal is not None else None,
            )  # fmt: skip
            with HashEngine(readers, share, (str(root), table), threads=True) as engine:
                for lines in single.run(engine, plan_rows(table, order, reusable)):
                    writer.write_line(lines)
            ticker.finish()
            single.raise_errors(str(root), UNREADABLE_HINT)
        report = _torrents(table, prepared, single, torrents, outputs)
    if journaled:
        remove_journals(output)
    return BuildReport(
        output=str(output),
        release=header.release,
        files=header.files,
        bytes=header.bytes,
        hashed_files=single.hashed_files,
        hashed_bytes=single.hashed_bytes,
        reused_files=header.files - single.hashed_files,
        reused_bytes=header.bytes - single.hashed_bytes,
        resumed_from=[str(path) for path in journals],
        skipped=skipped,
        torrents=report,
    )


def _unchanged(table: FileTable, order: np.ndarray, reusable: Reusable | None, job: TorrentJob) -> np.ndarray | None:
    """Per table row, whether the torrents' last-year manifest holds the file unchanged, when the manifest's
    own reuse already read that manifest (the yearly cut: one manifest for both): not read twice."""
    if reusable is None or job.previous_manifest is None or job.new_manifest is not None:
        return None
    holds = reusable.holds(str(job.previous_manifest))
    if holds is None:
        return None
    unchanged = np.zeros(len(table), dtype=bool)
    unchanged[order] = holds
    return unchanged


def _torrents(
    table: FileTable, prepared: Prepared | None, single: SinglePass, job: TorrentJob | None, outputs: OutputSet
) -> TorrentsReport | None:
    if prepared is None or job is None:
        return None
    return write_torrents(table, prepared, single.piece_hashes(), job.output, job.profiles, outputs)


def build_torrents(
    root: Path, job: TorrentJob, *, workers: int | None = None, progress: ProgressFn = no_progress
) -> TorrentsReport:
    """`torrents build`: the file list from `job.new_manifest` (or a walk of `root`), then hash the pieces
    (once, on every core) and write the .torrent files and their tarball together."""
    if not root.is_dir():
        raise BadInput(str(root), "not a directory")
    table, _ = table_of(job.new_manifest or root, progress, workers)
    prepared = prepare_job(root, table, job)
    streams = prepared.streams
    needed = sum(t - s for t, s in zip(streams.totals, streams.start, strict=True))
    ticker = Ticker(progress, "pieces", None, needed)
    single = SinglePass(table, streams, hash_files=False, ticker=ticker)
    with HashEngine(workers, share, (str(root), table), threads=True) as engine:
        for _ in single.run(engine, _shard_order(prepared)):
            pass
    ticker.finish()
    single.raise_errors(str(root))
    return write_torrents(table, prepared, single.piece_hashes(), job.output, job.profiles)


def _shard_order(prepared: Prepared) -> Iterator[PlanChunk]:
    """Every shard's rows, shard by shard: one stream at a time."""
    return (PlanChunk(np.asarray(rows, np.int64), None) for rows in prepared.rows)
