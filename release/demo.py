"""`demo`: the main job on the built-in synthetic dataset, proving each claim it prints.

synth (3 yearly snapshots) -> start a local S3 mirror (SeaweedFS) -> cut each year with `cut` from a
release file (scan, manifest and torrents from one read, later years incremental and reusing last year's
piece hashes, lists, notes, SHA256SUMS; the last year published to the mirror) -> diff -> verify the full
tree and a damaged partial download -> seed and download a shard over loopback -> `verify s3://` the
mirror -> download a shard from the mirror as the only web seed -> an rsync daemon -> derive 512px ->
stats -> rebuild the two older releases from the newest tree and prove them. Each step records a claim;
the servers are stopped at the end, the artefacts stay.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from pydantic import BaseModel

from release.atomic import atomic_output
from release.build import build_manifest
from release.cut.context import CUT_FOLDER
from release.demo_cut import cut_years, output_of, resume_claim, scan_report, torrents_of
from release.demo_mirror import demo_mirror, mirror_checks, publish_table, web_seed_download
from release.demo_steps import (
    Claim,
    derive_claim,
    reconstruct_claims,
    reuse_claim,
    rsync_mirror,
    seed_and_download,
)
from release.errors import BadInput
from release.filelists import write_list
from release.manifest.diff import diff_manifests
from release.progress import ProgressFn, no_progress
from release.publish.localserver import LocalS3, weed_program
from release.stats import ReleaseStats
from release.synth import Changelog, synth
from release.verify import verify_tree

MARKER = ".booru-release-demo"
YEARS = "2017-2019"


class DemoReport(BaseModel):
    """Every claim of the demo run."""

    dir: str
    claims: list[Claim]

    @property
    def ok(self) -> bool:
        """True when every claim was proved."""
        return all(c.proved for c in self.claims)


def _prepare(out: Path) -> None:
    if out.exists() and any(out.iterdir()):
        if not (out / MARKER).exists():
            raise BadInput(str(out), "folder is not empty and was not made by demo", "give an empty or new folder")
        shutil.rmtree(out)
    out.mkdir(parents=True, exist_ok=True)
    (out / MARKER).write_text("made by booru-release demo; safe to delete\n")


def run_demo(out: Path, *, images: int = 600, seed: int = 1, progress: ProgressFn = no_progress) -> DemoReport:
    """Run the demo in `out` (created, or re-created if an earlier demo made it)."""
    weed_program()  # the mirror's server: missing, the demo stops before it writes anything
    _prepare(out)
    data = out / "synth"
    synth(data, years=YEARS, images=images, seed=seed, progress=progress)
    log = Changelog.model_validate_json((data / "changelog.json").read_text())

    with demo_mirror(out / "s3") as mirror:
        claims = _release_years(out, data, log, mirror, progress)
    (out / "demo-report.json").write_text(json.dumps([c.model_dump() for c in claims], indent=2) + "\n")
    return DemoReport(dir=str(out), claims=claims)


def _release_years(out: Path, data: Path, log: Changelog, mirror: LocalS3, progress: ProgressFn) -> list[Claim]:
    """Cut the years (the last one published to the mirror) and prove every claim on what they made."""
    claims: list[Claim] = []

    def claim(text: str, proved: bool, evidence: str) -> None:
        claims.append(Claim(claim=text, proved=proved, evidence=evidence))

    years = [y.year for y in log.years]
    last = data / str(years[-1])
    manifests, reports, cuts = cut_years(out, data, years, publish_table(mirror), progress)
    scan = scan_report(out, years[-1])
    expected = {
        t: set(log.tricks[t]) for t in ("png_as_jpg", "truncated", "empty", "wrong_bucket", "file_without_metadata")
    }
    found = {
        "png_as_jpg": {f.path for f in scan.findings if f.kind == "type_mismatch"},
        "truncated": {f.path for f in scan.findings if f.kind == "truncated"},
        "empty": {f.path for f in scan.findings if f.kind == "empty"},
        "wrong_bucket": {f.path for f in scan.findings if f.kind == "wrong_bucket"},
        "file_without_metadata": {f.path for f in scan.findings if f.kind == "file_without_metadata"},
    }
    claim(
        "scan finds exactly the planted treacherous files",
        found == expected,
        ", ".join(f"{k} {len(v)}" for k, v in found.items()),
    )

    claims.append(resume_claim(out, years[-1], progress))
    rehash = out / "rehash.manifest.jsonl.zst"
    build_manifest(last, rehash, release=f"danbooru{years[-1]}", rehash=True, progress=progress)
    inc = reports[years[-1]]
    claim(
        "an incremental manifest reuses unchanged files' hashes",
        inc.reused_files > 0,
        f"{inc.reused_files:,} reused, {inc.hashed_files:,} hashed",
    )
    claim(
        "the incremental manifest is byte-identical to a full rehash",
        manifests[years[-1]].read_bytes() == rehash.read_bytes(),
        f"{manifests[years[-1]].stat().st_size:,} bytes",
    )

    diff = diff_manifests(manifests[years[-2]], manifests[years[-1]])
    takedowns = set(log.years[-1].takedowns)
    replaced = set(log.years[-1].replaced)
    claim(
        "diff shows the year's takedowns as removed and replacements as changed",
        takedowns <= set(diff.removed) and set(diff.changed) == replaced,
        f"removed {len(diff.removed)}, changed {len(diff.changed)}, added {diff.totals['added'].files}",
    )

    full = verify_tree(last, manifests[years[-1]], progress=progress)
    claim("the full tree verifies", not full.failed and full.totals.OK == inc.files, f"{full.totals.OK:,} OK")

    claims.append(_partial_download(out, last, manifests[years[-1]], progress))
    claims.append(reuse_claim(reports))
    claims.append(seed_and_download(out, data, years[-1], manifests[years[-1]]))
    name = f"danbooru{years[-1]}"
    uploaded = sum(t["uploaded"] for t in next(s for s in cuts[-1].steps if s.name == "publish").summary.values())
    claim(
        "the cut publishes to an S3 mirror (SeaweedFS); `verify s3://` passes it, then names a deleted object",
        *mirror_checks(mirror, manifests[years[-1]], name, uploaded),
    )
    claim(
        "a shard downloads from the S3 mirror as its only web seed (no peer, no tracker) and verifies",
        *web_seed_download(mirror, torrents_of(out, years[-1]) / f"{name}-1.torrent", manifests[years[-1]], out),
    )
    claims.append(rsync_mirror(out, last, manifests[years[-1]], output_of(out, years[-1]) / "rsync"))
    claims.append(derive_claim(out, last, log))
    stats = ReleaseStats.model_validate_json((manifests[years[-1]].parent / CUT_FOLDER / "stats.json").read_bytes())
    claims.append(
        Claim(
            claim="release statistics and notes come from one streaming pass over the metadata",
            proved=stats.posts == log.years[-1].metadata_records and stats.subsets["original"].files > 0,
            evidence=f"{stats.posts:,} posts, {stats.tag_instances:,} tag instances, {stats.unique_tags:,} tags",
        )
    )
    claims += reconstruct_claims(out, data, log, manifests)
    return claims


def _partial_download(out: Path, root: Path, manifest: Path, progress: ProgressFn) -> Claim:
    """Copy buckets 0000-0099 of original/, damage three files, verify with --files-from."""
    partial = out / "partial-download"
    listed = sorted(str(p.relative_to(root)) for p in root.glob("original/00[0-9][0-9]/*") if p.stat().st_size > 0)
    files_from = out / "buckets-0000-0099.txt"
    with atomic_output(files_from) as handle:
        write_list(handle, listed)
    for rel in listed:
        (partial / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(root / rel, partial / rel)
    flipped, truncated, deleted = listed[0], listed[1], listed[2]
    data = bytearray((partial / flipped).read_bytes())
    data[len(data) // 2] ^= 0xFF
    (partial / flipped).write_bytes(data)
    with open(partial / truncated, "r+b") as handle:
        handle.truncate(1)
    (partial / deleted).unlink()
    result = verify_tree(partial, manifest, files_from=files_from, progress=progress)
    bad = {(p.path, p.status) for p in result.problems}
    want = {(flipped, "CORRUPT"), (truncated, "CORRUPT"), (deleted, "MISSING")}
    return Claim(
        claim="a damaged partial download is reported file by file (flip, truncate, delete)",
        proved=bad == want and result.failed and result.totals.OK == len(listed) - 3,
        evidence=f"{len(listed)} listed: OK {result.totals.OK}, "
        f"CORRUPT {result.totals.CORRUPT}, MISSING {result.totals.MISSING}",
    )
