"""`torrents build`: ID-ordered v1 shards, piece hashes from one read pass, yearly reuse, same bytes every time.

`prepare` turns a file table into shards (the plan), each shard's files in ID order and the
stream layout; with last year's torrents it keeps their piece hashes for the unchanged prefix
(after reading a few of them back). The read pass (`release.build`, over `readpass.SinglePass`)
then hashes what is left, alone or together with a manifest build, and `write_torrents` encodes the
.torrent files and the reproducible tarball of them, all appearing together.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from pydantic import BaseModel

from release.atomic import OutputSet, atomic_output
from release.errors import BadInput
from release.layout import BUCKETS, SUBSET_RANK
from release.manifest.keyed import unchanged_rows
from release.readpass import Streams, stream_offsets
from release.tarball import write_tar_xz
from release.torrents.lint import lint_torrent
from release.torrents.metainfo import encode_torrent, table_files_field
from release.torrents.plan import METADATA_GROUP, ShardPlan, Stats, TorrentPlan, TorrentSettings, plan_torrents
from release.torrents.profiles import DEFAULT_PROFILES
from release.torrents.reuse import Reuse, find_reuse
from release.walk import FileTable

TORRENTS_XZ_PRESET = 0  # the piece hashes dominate and do not compress; 9 took 35x longer for 28% less


@dataclass
class Prepared:
    """Shards of a release ready to hash: the plan, each shard's rows in order, the stream layout."""

    settings: TorrentSettings
    plan: TorrentPlan
    rows: list[np.ndarray]
    streams: Streams
    reuse: list[Reuse | None]
    warnings: list[str] = field(default_factory=list)


class ShardReport(BaseModel):
    """One written .torrent."""

    name: str
    file: str
    info_hash: str
    files: int
    bytes: int
    piece_length: int
    pieces: int
    torrent_bytes: int
    tokens: int
    reused_pieces: int
    hashed_bytes: int
    reused_bytes: int
    fits: dict[str, bool]


class TorrentsReport(BaseModel):
    """What `torrents build` wrote."""

    release: str
    output: str
    tarball: str
    shards: list[ShardReport]
    hashed_bytes: int
    reused_bytes: int
    warnings: list[str]


@dataclass(frozen=True)
class TorrentJob:
    """What to build: settings, where, how many shards, for which clients, and last year's torrents."""

    settings: TorrentSettings
    output: Path
    shards: int | None = None
    profiles: tuple[str, ...] = DEFAULT_PROFILES
    previous: Path | None = None
    previous_manifest: Path | None = None
    new_manifest: Path | None = None


def prepare_job(root: Path, table: FileTable, job: TorrentJob, unchanged: np.ndarray | None = None) -> Prepared:
    """`prepare` with a job's options (`unchanged`: `prepare`'s, when the caller has it)."""
    return prepare(
        root,
        table,
        job.settings,
        unchanged=unchanged,
        shards=job.shards,
        profiles=job.profiles,
        previous=job.previous,
        previous_manifest=job.previous_manifest,
        new_manifest=job.new_manifest,
    )


def prepare(
    root: Path,
    table: FileTable,
    settings: TorrentSettings,
    *,
    shards: int | None = None,
    profiles: tuple[str, ...] = DEFAULT_PROFILES,
    previous: Path | None = None,
    previous_manifest: Path | None = None,
    new_manifest: Path | None = None,
    unchanged: np.ndarray | None = None,
) -> Prepared:
    """Plan the shards of `table` (files under `root`) and lay out their streams (reusing last year's pieces
    where they pass a spot check). `unchanged` (per row: does `previous_manifest` hold the file unchanged) is
    worked out from the manifests when not given."""
    stats = Stats()
    groups = stats.add_table(table)
    plan = plan_torrents(stats, settings, shards=shards, profiles=profiles)
    lookup = np.full(METADATA_GROUP + 1, -1, dtype=np.int32)
    for index, shard in enumerate(plan.shards):
        if shard.subset == "metadata":
            lookup[METADATA_GROUP] = index
        else:
            base = SUBSET_RANK[shard.subset] * BUCKETS
            assert shard.first_bucket is not None and shard.last_bucket is not None
            lookup[base + shard.first_bucket : base + shard.last_bucket + 1] = index
    shard_of = np.where(groups >= 0, lookup[np.maximum(groups, 0)], -1).astype(np.int32)
    order = table.order()
    rows = [order[shard_of[order] == index] for index in range(len(plan.shards))]
    offset, totals = stream_offsets(shard_of, table.sizes(), order)
    totals += [0] * (len(plan.shards) - len(totals))
    lengths = [shard.piece_length for shard in plan.shards]
    reuse: list[Reuse | None] = [None] * len(plan.shards)
    warnings: list[str] = []
    if previous is not None:
        if previous_manifest is None:
            raise BadInput(str(previous), "--previous needs --previous-manifest: last year's manifest")
        if unchanged is None:
            unchanged = unchanged_rows(table, order, previous_manifest, new_manifest)
        for index, shard in enumerate(plan.shards):
            reuse[index], warning = find_reuse(root, previous, shard.name, table, rows[index], unchanged)
            warnings += [warning] if warning else []
            if reuse[index] is not None:
                lengths[index] = reuse[index].piece_length  # type: ignore[union-attr]
    streams = Streams(
        piece_length=lengths,
        shard_of=shard_of,
        offset=offset,
        totals=totals,
        start=[r.start if r else 0 for r in reuse],
        reused=[r.hashes if r else b"" for r in reuse],
    )
    return Prepared(settings, plan, rows, streams, reuse, warnings)


def _fits(
    target: Path, data: bytes, shard: ShardPlan, piece_length: int, profiles: tuple[str, ...]
) -> tuple[int, dict[str, bool]]:
    """Tokens and per-profile fit of a written shard: the plan's exact prediction when the bytes agree
    with it (tests hold the formulas to real encodings), else a full bounded decode of the file."""
    if len(data) == shard.torrent_bytes and piece_length == shard.piece_length and set(shard.profiles) == set(profiles):
        return shard.tokens, {name: fit.fits for name, fit in shard.profiles.items()}
    lint = lint_torrent(target, profiles)
    return lint.tokens, {name: fit.fits for name, fit in lint.profiles.items()}


def write_torrents(
    table: FileTable,
    prepared: Prepared,
    hashes: list[bytes],
    output: Path,
    profiles: tuple[str, ...],
    outputs: OutputSet | None = None,
) -> TorrentsReport:
    """Encode every shard's .torrent into `output`, then the tarball of them all: all appear together (with
    `outputs`, when that set commits)."""
    with contextlib.ExitStack() as stack:
        outs = outputs if outputs is not None else stack.enter_context(OutputSet())
        return _write_torrents(table, prepared, hashes, output, profiles, outs)


def _write_torrents(
    table: FileTable,
    prepared: Prepared,
    hashes: list[bytes],
    output: Path,
    profiles: tuple[str, ...],
    outputs: OutputSet,
) -> TorrentsReport:
    settings, plan, streams = prepared.settings, prepared.plan, prepared.streams
    outputs.folder(output)
    reports: list[ShardReport] = []
    members: list[tuple[str, Path]] = []
    for index, shard in enumerate(plan.shards):
        rows = prepared.rows[index]
        length = streams.piece_length[index]
        data, info_hash = encode_torrent(settings, length, hashes[index], table_files_field(table, rows))
        target = output / f"{shard.name}.torrent"
        with atomic_output(target, outputs) as handle:
            handle.write(data)
        members.append((target.name, outputs.staged(target)))
        tokens, fits = _fits(outputs.staged(target), data, plan.shards[index], length, profiles)
        reused = len(prepared.reuse[index].hashes) // 20 if prepared.reuse[index] else 0  # type: ignore[union-attr]
        reports.append(
            ShardReport(
                name=shard.name,
                file=str(target),
                info_hash=info_hash,
                files=len(rows),
                bytes=streams.totals[index],
                piece_length=length,
                pieces=len(hashes[index]) // 20,
                torrent_bytes=len(data),
                tokens=tokens,
                reused_pieces=reused,
                hashed_bytes=streams.totals[index] - streams.start[index],
                reused_bytes=streams.start[index],
                fits=fits,
            )
        )
    tarball = output / f"{settings.release}-torrents.tar.xz"
    write_tar_xz(tarball, members, settings.creation_date or 0, preset=TORRENTS_XZ_PRESET, outputs=outputs)
    return TorrentsReport(
        release=settings.release,
        output=str(output),
        tarball=str(tarball),
        shards=reports,
        hashed_bytes=sum(r.hashed_bytes for r in reports),
        reused_bytes=sum(r.reused_bytes for r in reports),
        warnings=plan.warnings + prepared.warnings,
    )
