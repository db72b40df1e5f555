"""The steps of a cut that work from the manifest: tarballs, rsync lists, statistics, checksums, publishing."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np

from release.atomic import write_text_atomic
from release.cut.context import CUT_FOLDER, CutContext, Step, StepResult, Summary, write_json
from release.cut.signing import CHECKSUMS, SIGNATURE, sign, write_checksums
from release.cut.tree_steps import POSTS_COUNTED
from release.errors import ConsistencyFailure
from release.layout import SUBSET_RANK
from release.tarball import Reusable, Segment

METADATA_TARBALL = "metadata.json.tar.xz"
STATS_AHEAD = "stats-ahead"  # in .cut/: the posts' figures and plots, made ahead of the stats step
POST_STATS = "post-stats.json"
SEGMENTS = "metadata-tarball-segments.json"


def _tarballs(context: CutContext) -> StepResult:
    """The metadata tarball; chunks last year's tarball holds (archived years, and last year's export that
    moved into metadata/<year>/) are copied from it (its index is in last year's `.cut/`): only this year's
    export is compressed, and that mostly ahead of this step (`_tarballs_ahead`): its streams are copied."""
    from release.metaarchive import ahead_streams, remove_ahead, write_metadata_tarball

    target = context.output / METADATA_TARBALL
    last_year, ahead = _last_years_tarball(context), ahead_streams(context.reports)
    reuse = [source for source in (last_year, ahead) if source is not None]
    members, segments = write_metadata_tarball(context.root, target, reuse=reuse, digests=_metadata_sha256(context))
    index = context.reports / SEGMENTS
    write_text_atomic(index, json.dumps([s.model_dump() for s in segments], indent=1) + "\n")
    remove_ahead(context.reports)
    return StepResult([target, index], {"metadata_files": members, "bytes": target.stat().st_size,
                                        "segments": len(segments),
                                        "tar_bytes_copied": last_year.copied_bytes if last_year else 0,
                                        "tar_bytes_compressed_ahead": ahead.copied_bytes if ahead else 0})  # fmt: skip


def _tarballs_ahead(context: CutContext, export: Path | None = None) -> None:
    """The metadata tarball's streams that last year's cannot provide, compressed while the steps before it
    run: this year's export (every big file on a first cut); with `export`, from there, still to be placed."""
    from release.metaarchive import compress_ahead

    compress_ahead(context.root, context.reports, new_only=_last_years_tarball(context) is not None, export=export)


def _tarballs_early(context: CutContext) -> None:
    """`_tarballs_ahead` from the cut's start, while the metadata step validates and places this year's
    export: its files are compressed from the export folder (the tarball reuses streams by content)."""
    spec = context.release.spec
    assert spec.metadata is not None
    _tarballs_ahead(context, context.release.resolve(spec.metadata.export))


def _tarballs_early_wanted(context: CutContext) -> bool:
    """Early, unless a first cut's tarball needs top-level files the metadata step is about to move (last
    year's export, with no tarball of last year's to copy them from): those wait for it."""
    from release.metadata import export_chunks

    return _last_years_tarball(context) is not None or not export_chunks(context.root / "metadata")


def _last_years_tarball(context: CutContext) -> Reusable | None:
    previous = context.previous_manifest
    if previous is None:
        return None
    archive, index = previous.parent / METADATA_TARBALL, previous.parent / CUT_FOLDER / SEGMENTS
    try:
        segments = [Segment.model_validate(s) for s in json.loads(index.read_text())]
    except (OSError, ValueError):
        return None  # no index (not cut by us, or an older version): everything is compressed
    return Reusable(archive, segments) if archive.is_file() else None


def _metadata_sha256(context: CutContext) -> dict[str, str]:
    """The sha256 of every metadata file, from this cut's manifest (read already: no file is read again)."""
    from release.manifest.columns import column_chunks

    rank = SUBSET_RANK["metadata"]
    digests: dict[str, str] = {}
    for columns in column_chunks(context.manifest, "sha256"):
        for row in np.flatnonzero(columns.rank == rank).tolist():
            digests[columns.path(row)] = columns.digests[row].tobytes().hex()
    return digests


def _rsync(context: CutContext) -> StepResult:
    from release.rsync.config import DaemonSettings, render_config
    from release.rsync.filelist import collect, listed_ids, write_filelists

    spec = context.release.spec
    table = collect(context.manifest, context.progress)
    if spec.final_id is not None:
        above = np.flatnonzero(listed_ids(table) > spec.final_id)
        if len(above):
            first = table.path(int(above[np.argmin(table.keys()[above])]))  # in list order
            raise ConsistencyFailure(
                str(context.manifest),
                f"{len(above):,} files have an ID above final_id {spec.final_id:,}, first {first}",
                "correct final_id in the release file, or remove those files",
            )
    folder = context.output / "rsync"
    folder.mkdir(exist_ok=True)
    report = write_filelists(table, folder / "filelist.txt")
    written = [Path(p) for p in report.outputs]
    if spec.rsync is not None:
        path = context.release.resolve(spec.rsync.path) if spec.rsync.path else context.root
        settings = DaemonSettings(
            module=spec.rsync.module, path=str(path), comment=spec.rsync.comment, hosts_allow=spec.rsync.hosts_allow
        )
        conf = folder / "rsyncd.conf"
        write_text_atomic(conf, render_config(settings))
        written.append(conf)
    return StepResult(written, {"files": report.files, "bytes": report.bytes})


def _stats(context: CutContext) -> StepResult:
    """Statistics, notes and plots. The posts' figures and the plots (posts only) were made ahead of this
    step (`_stats_ahead`) when its chunks are still the root's; the files are counted from the manifest."""
    from release.stats import collect_stats, load_post_stats
    from release.statsreport import copy_plots, write_notes, write_plots

    ahead = context.reports / STATS_AHEAD
    posts = load_post_stats(ahead / POST_STATS, context.root)
    current = posts is not None
    stats = collect_stats(context.root, context.manifest, context.progress, posts)
    written = [write_json(context.reports / "stats.json", stats)]
    notes = context.output / "RELEASE-NOTES.md"
    write_notes(stats, context.release.spec.name, notes)
    plots = (copy_plots(ahead, context.output / "plots") if current else None) or write_plots(
        stats, context.output / "plots"
    )
    shutil.rmtree(ahead, ignore_errors=True)
    summary = {"posts": stats.posts, "tag_instances": stats.tag_instances, "unique_tags": stats.unique_tags,
               "counted_ahead": current}  # fmt: skip
    return StepResult([*written, notes, *plots], summary)


def _stats_ahead(context: CutContext) -> None:
    """The posts' figures and the plots, made while the steps before `stats` run (they need only the
    metadata in place): the plots first, then the figures, so figures that are there have their plots."""
    from release.stats import collect_post_stats, load_post_stats
    from release.statsreport import write_plots

    folder = context.reports / STATS_AHEAD
    (folder / POST_STATS).unlink(missing_ok=True)  # figures from an earlier run must not outlive its plots
    posts = load_post_stats(context.reports / POSTS_COUNTED, context.root) or collect_post_stats(context.root)
    write_plots(posts, folder)
    write_text_atomic(folder / POST_STATS, posts.model_dump_json() + "\n")


def _checksums(context: CutContext) -> StepResult:
    spec = context.release.spec
    listing, count = write_checksums(context.output, context.progress)
    written = [listing]
    if spec.signing_key is not None:
        written.append(sign(listing, context.release.resolve(spec.signing_key)))
    return StepResult(written, {"artefacts": count, "signed": spec.signing_key is not None})


def _checksums_plan(context: CutContext) -> Summary:
    return {"file": CHECKSUMS, "signature": SIGNATURE if context.release.spec.signing_key else None}


def _publish(context: CutContext) -> StepResult:
    from release.publish.apply import publish
    from release.publish.s3 import S3Settings, S3Store
    from release.publish.seedboxes import run_playbook

    spec = context.release.spec
    name = spec.torrents.name or spec.name
    summary: Summary = {}
    for target in spec.publish.s3:
        settings = S3Settings(
            bucket=target.bucket, prefix=target.prefix.strip("/"), endpoint_url=target.endpoint_url,
            profile=target.profile, region=target.region, addressing_style=target.addressing_style,
            checksums=target.checksums,
        )  # fmt: skip
        report = publish(context.root, context.manifest, S3Store(settings), name=name, progress=context.progress)
        summary[f"s3://{target.bucket}/{target.prefix}"] = {"uploaded": report.uploaded, "requests": report.requests}
    if spec.publish.seedbox_inventory is not None:
        run = run_playbook(context.release.resolve(spec.publish.seedbox_inventory))
        summary["seedboxes"] = {"ok": run.succeeded, "hosts": [h.name for h in run.hosts]}
        if not run.succeeded:
            raise ConsistencyFailure(spec.publish.seedbox_inventory, "the seedbox playbook failed on some host")
    return StepResult([], summary)


def _publish_wanted(context: CutContext) -> str | None:
    targets = context.release.spec.publish
    if not targets.s3 and targets.seedbox_inventory is None:
        return "no publish targets in the release file"
    return None if context.publish else "not asked (--publish)"


def _publish_plan(context: CutContext) -> Summary:
    targets = context.release.spec.publish
    return {"s3": [f"s3://{t.bucket}/{t.prefix}" for t in targets.s3], "seedboxes": targets.seedbox_inventory}


TARBALLS = Step(
    "tarballs", "metadata tarball", ("root", "year", "previous"), _tarballs,
    ahead=_tarballs_ahead, ahead_after="metadata", early=_tarballs_early, early_wanted=_tarballs_early_wanted,
)  # fmt: skip
RSYNC = Step("rsync", "rsync lists and rsyncd.conf", ("rsync", "final_id"), _rsync)
STATS = Step(
    "stats", "statistics, plots and release notes", ("name",), _stats, ahead=_stats_ahead, ahead_after="metadata"
)
CHECKSUMS_STEP = Step("checksums", "SHA256SUMS of every artefact", ("signing_key",), _checksums, _checksums_plan)
PUBLISH = Step("publish", "publish (S3, seedboxes)", ("publish",), _publish, _publish_plan, _publish_wanted)
