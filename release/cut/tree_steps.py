"""The steps of a cut that read the release root; each is a library call that writes its artefacts atomically.

A step names the release-file keys it reads (its fingerprint), says when it is not wanted, runs, and
for `--dry-run` estimates what it would do. Artefacts go to the output folder; the metadata and the
512px subset go into the release root, where they are published. The order is `steps.STEPS`.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
import xxhash

from release.atomic import atomic_output
from release.cut.context import CUT_FOLDER, CutContext, Step, StepResult, Summary, write_json
from release.cut.releasefile import LoadedRelease
from release.errors import BadInput, ConsistencyFailure
from release.hashindex import lookup

# --- metadata -----------------------------------------------------------------------------------------


def _metadata(context: CutContext) -> StepResult:
    from release.atomic import write_text_atomic
    from release.metaarchive import archive_metadata
    from release.postindex import PostIndexBuilder, save_post_index
    from release.stats import PostCounter

    spec = context.release.spec
    assert spec.metadata is not None
    export = context.release.resolve(spec.metadata.export)
    index, counter = PostIndexBuilder(), PostCounter()  # what later steps need of the lines, read once
    # force: a run killed after placing the chunks but before the state was saved places them again, the same
    report = archive_metadata(
        export, spec.year, context.root, force=True, progress=context.progress, readers=(index, counter)
    )
    placed = Path(report.placed_in)
    if placed == context.root / "metadata":  # this year's chunks are the release's own
        save_post_index(index.build(placed), context.reports / POST_INDEX)
        write_text_atomic(context.reports / POSTS_COUNTED, counter.build(placed).model_dump_json() + "\n")
    return StepResult(summary={"chunks": report.chunks, "records": report.records, "placed_in": report.placed_in})


def _metadata_plan(context: CutContext) -> Summary:
    spec = context.release.spec
    assert spec.metadata is not None
    export = context.release.resolve(spec.metadata.export)
    files = [p for p in export.iterdir() if p.is_file()]
    return {"export_files": len(files), "export_bytes": sum(p.stat().st_size for p in files)}


# --- scan ---------------------------------------------------------------------------------------------

# what the metadata step's validation read, for the steps after it: the posts' IDs, ratings and the scan's
# findings (for the scan and derive), and their figures (for the statistics)
POST_INDEX = "post-index.npz"
POSTS_COUNTED = "posts-counted.json"
SCAN_FINDINGS = "scan-findings.jsonl"  # every finding of the scan, in the reports folder
DERIVE_SKIPS = "derive-skipped.jsonl"  # the originals derive skipped, in the reports folder


def _takedowns_present(context: CutContext) -> list[str]:
    from release.filelists import read_list

    spec = context.release.spec
    if spec.takedowns is None:
        return []
    listed = (path for _, path in read_list(context.release.resolve(spec.takedowns)))
    return [path for path in listed if os.path.lexists(context.root / path)]


def _scan(context: CutContext) -> StepResult:
    from release.scan import scan_root

    present = _takedowns_present(context)
    if present:
        raise BadInput(
            f"{context.release.path}: takedowns",
            f"{len(present)} taken-down files are still in the tree, first {present[0]}",
            "delete them (and their 512px copies) from the release root, then cut again",
        )
    spec = context.release.spec
    earlier = _earlier_scan(context)
    every = context.reports / SCAN_FINDINGS
    posts = _post_index(context)
    with atomic_output(every) as out:
        report = scan_root(
            context.root, allow=spec.scan_allow, progress=context.progress, findings_out=out, earlier=earlier,
            posts=posts,
        )  # fmt: skip
    written = write_json(context.reports / "scan.json", report)
    if report.failed:
        kinds = ", ".join(f"{k} {n}" for k, n in report.counts.items() if k not in report.allowed)
        raise ConsistencyFailure(
            str(written), f"the scan found {kinds}", "fix the tree, or list the kinds in scan_allow to accept them"
        )
    summary = {"files": report.files, "bytes": report.bytes, "findings": report.counts, "not_read": report.carried,
               "metadata_indexed": posts is not None}  # fmt: skip
    return StepResult([written, every], summary)


def _post_index(context: CutContext) -> Any:
    """The metadata step's index of the root's chunks, when they are still the ones it read (else None)."""
    from release.postindex import load_post_index

    return load_post_index(context.reports / POST_INDEX, context.root)


def _earlier_scan(context: CutContext) -> Any:
    """Last year's manifest and scan findings, when last year was cut here (its output folder keeps the
    findings beside its state): the scan then reads only the files that changed since."""
    from release.scan import EarlierScan

    manifest = context.previous_manifest
    if manifest is None:
        return None
    findings = manifest.parent / CUT_FOLDER / SCAN_FINDINGS
    return EarlierScan(manifest, findings) if findings.is_file() else None


def _tree_plan(context: CutContext) -> Summary:
    from release.tree import scan_tree

    table, _ = scan_tree(context.root, workers=context.workers)
    return {"files": len(table), "bytes": table.total_bytes()}


# --- derive 512px -------------------------------------------------------------------------------------


def _derive_wanted(context: CutContext) -> str | None:
    spec = context.release.spec
    if not spec.derive_512px.enabled:
        return "derive_512px.enabled is false"
    return None if "512px" in spec.subsets else "512px is not one of the release's subsets"


def _derive_call(context: CutContext, dry_run: bool, skips_out: BinaryIO | None = None, posts: Any = None) -> Any:
    from release.derive import Settings, derive_512px

    options = context.release.spec.derive_512px
    settings = Settings(size=options.size, quality=options.quality, background=options.background)
    ratings = frozenset(options.ratings) if options.ratings is not None else None
    previous = context.previous_manifest
    earlier = previous.parent / CUT_FOLDER / DERIVE_SKIPS if previous is not None else None
    return derive_512px(
        context.root, settings=settings, ratings=ratings, previous=previous,
        workers=options.workers or context.workers, dry_run=dry_run, progress=context.progress,
        earlier_skips=earlier if earlier is not None and earlier.is_file() else None, skips_out=skips_out,
        posts=posts,
    )  # fmt: skip


def _derive(context: CutContext) -> StepResult:
    skips = context.reports / DERIVE_SKIPS  # next year's cut converts none of these again if unchanged
    posts = _post_index(context)
    with atomic_output(skips) as out:
        report = _derive_call(context, dry_run=False, skips_out=out, posts=posts)
    written = write_json(context.reports / "derive-512px.json", report)
    summary = {"written": report.written, "up_to_date": report.up_to_date, "removed": len(report.removed)}
    summary |= {"skipped": report.skipped, "skipped_earlier": report.skipped_earlier, "failed": len(report.failed),
                "metadata_indexed": posts is not None}  # fmt: skip
    return StepResult([written, skips], summary)


def _derive_plan(context: CutContext) -> Summary:
    report = _derive_call(context, dry_run=True)
    return {"to_convert": report.to_convert, "up_to_date": report.up_to_date, "to_remove": len(report.removed),
            "skipped_earlier": report.skipped_earlier}  # fmt: skip


# --- manifest and torrents from one read --------------------------------------------------------------


def _torrent_job(context: CutContext) -> Any:
    from release.torrents.build import TorrentJob

    spec = context.release.spec
    if not spec.torrents.enabled:
        return None
    previous = spec.previous
    return TorrentJob(
        spec.torrents.settings(spec.name), context.output / "torrents", shards=spec.torrents.shards,
        profiles=spec.torrents.profiles,
        previous=context.release.resolve(previous.torrents) if previous and previous.torrents else None,
        previous_manifest=context.previous_manifest,
    )  # fmt: skip


def _read(context: CutContext) -> StepResult:
    from release.build import build_manifest

    spec = context.release.spec
    report = build_manifest(
        context.root, context.manifest, release=spec.name, previous=context.previous_manifest,
        workers=context.workers, progress=context.progress, torrents=_torrent_job(context),
    )  # fmt: skip
    written = [context.manifest, write_json(context.reports / "build.json", report)]
    summary: Summary = {
        "files": report.files, "bytes": report.bytes, "hashed_bytes": report.hashed_bytes,
        "reused_bytes": report.reused_bytes,
    }  # fmt: skip
    if report.torrents is not None:
        written += [Path(s.file) for s in report.torrents.shards] + [Path(report.torrents.tarball)]
        summary |= {"shards": len(report.torrents.shards), "piece_bytes_hashed": report.torrents.hashed_bytes}
    return StepResult(written, summary)


def _read_plan(context: CutContext) -> Summary:
    from release.build import reuse_sources
    from release.manifest.build import plan_rows
    from release.manifest.keyed import Reusable
    from release.tree import scan_tree

    table, _ = scan_tree(context.root, workers=context.workers)
    previous = context.previous_manifest
    to_hash = 0
    sizes = table.sizes()
    order, sources = table.order(), reuse_sources(previous, [], False)
    for chunk in plan_rows(table, order, Reusable(table, order, sources) if sources else None):
        rows = chunk.rows if chunk.lines is None else chunk.rows[[line is None for line in chunk.lines]]
        to_hash += int(sizes[rows].sum())
    return {"files": len(table), "bytes": table.total_bytes(), "bytes_to_hash": to_hash}


def check_previous(loaded: LoadedRelease) -> None:
    """Last year's torrents must describe files of last year's manifest (same path, same size): reusing the
    piece hashes of another release's torrents would publish wrong pieces. When last year's SHA256SUMS
    lists them all unchanged they were cut together, and their millions of entries need not be compared."""
    from release.cut.signing import listed_together
    from release.manifest.columns import column_chunks
    from release.torrents.metainfo import load_torrent

    previous = loaded.spec.previous
    if previous is None or previous.torrents is None:
        return
    folder = loaded.resolve(previous.torrents)
    torrents = sorted(folder.glob("*.torrent"))
    where = f"{loaded.path}: previous.torrents"
    if not torrents:
        raise BadInput(where, f"no .torrent files in {folder}")
    manifest = loaded.resolve(previous.manifest)
    if listed_together([manifest, *torrents]):
        return  # last year's cut wrote them from one read, and none changed since (its SHA256SUMS says so)
    keys: list[int] = []
    for torrent in torrents:
        meta = load_torrent(torrent)
        for path, length in zip(meta.paths, meta.lengths, strict=True):
            keys.append(_key(path.encode("utf-8", "surrogateescape"), length))
    wanted = np.unique(np.array(keys, np.uint64))
    found = np.zeros(len(wanted), bool)
    for columns in column_chunks(manifest, None):
        got = np.fromiter(
            (_key(p, int(s)) for p, s in zip(columns.paths, columns.sizes.tolist(), strict=True)), np.uint64
        )
        index = lookup(wanted, got)
        found[index[index >= 0]] = True
    missing = int((~found).sum())
    if missing:
        raise BadInput(
            where,
            f"{missing:,} files of the .torrent files in {folder} are not in previous.manifest with the same size",
            "name last year's manifest and the torrents built with it",
        )


def _key(path: bytes, size: int) -> int:
    return xxhash.xxh3_64_intdigest(path + b"\0" + str(size).encode())


METADATA = Step(
    "metadata", "metadata archive", ("root", "year", "metadata"), _metadata, _metadata_plan,
    lambda context: None if context.release.spec.metadata else "no metadata.export in the release file",
)  # fmt: skip
SCAN = Step("scan", "scan and validate", ("root", "takedowns", "scan_allow", "final_id", "previous"), _scan, _tree_plan)
DERIVE = Step(
    "derive", "derive 512px (incremental)", ("root", "derive_512px", "previous", "subsets"), _derive, _derive_plan,
    _derive_wanted,
)  # fmt: skip
READ = Step(
    "read", "manifest and torrent pieces in one read", ("root", "name", "previous", "torrents"), _read, _read_plan
)
