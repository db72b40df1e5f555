"""The demo's releases, cut with `cut` from release files it writes (one per synthesized year).

Each year's release file names last year's cut as its previous release, so the read is incremental and
the torrents reuse last year's piece hashes. The 512px step is off here: derive writes into the root,
and the synthesized snapshots must stay as they are for the reconstruction claims (the demo derives a
subset on a root of its own, `demo_steps.derive_claim`).
"""

from __future__ import annotations

import json
from pathlib import Path

from release.build import BuildReport
from release.cut.context import CUT_FOLDER, MANIFEST_SUFFIX
from release.cut.releasefile import load_release_file
from release.cut.run import FINISHED_EARLIER, CutReport, run_cut
from release.demo_steps import RECIPE, Claim
from release.progress import ProgressFn, no_progress
from release.scan import ScanReport

# what synth plants on purpose (the scan claim checks they are found exactly)
PLANTED = (
    "type_mismatch", "truncated", "empty", "wrong_bucket", "file_without_metadata", "metadata_without_file",
    "metadata_duplicate_tag",
)  # fmt: skip


def output_of(out: Path, year: int) -> Path:
    """Where the cut of `year` puts its artefacts."""
    return out / "releases" / f"danbooru{year}"


def manifest_of(out: Path, year: int) -> Path:
    """The manifest the cut of `year` wrote."""
    return output_of(out, year) / f"danbooru{year}{MANIFEST_SUFFIX}"


def torrents_of(out: Path, year: int) -> Path:
    """The .torrent files the cut of `year` wrote."""
    return output_of(out, year) / "torrents"


def release_file(out: Path, data: Path, year: int, previous: int | None, publish: list[str]) -> Path:
    """Write the release file of `year` (absolute paths: the demo folder may be anywhere), with the
    `publish` tables given."""
    lines = [
        f'name = "danbooru{year}"',
        f"year = {year}",
        f"root = {json.dumps(str((data / str(year)).resolve()))}",
        f"output = {json.dumps(str(output_of(out, year).resolve()))}",
        f"scan_allow = {json.dumps(list(PLANTED))}",
    ]
    if previous is not None:
        lines += [
            "[previous]",
            f'name = "danbooru{previous}"',
            f"manifest = {json.dumps(str(manifest_of(out, previous).resolve()))}",
            f"torrents = {json.dumps(str(torrents_of(out, previous).resolve()))}",
        ]
    lines += [
        "[derive_512px]",
        "enabled = false",
        "[torrents]",
        f"trackers = {json.dumps(RECIPE.trackers)}",
        f"web_seeds = {json.dumps(RECIPE.web_seeds)}",
        f"creation_date = {RECIPE.creation_date}",
        f"comment = {json.dumps(RECIPE.comment)}",
        "[rsync]",
        f'module = "danbooru{year}"',
        *publish,
    ]
    path = out / "releases" / f"danbooru{year}.toml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n")
    return path


def cut_years(
    out: Path, data: Path, years: list[int], publish: list[str], progress: ProgressFn = no_progress
) -> tuple[dict[int, Path], dict[int, BuildReport], list[CutReport]]:
    """Cut every year in order, the last with `cut --publish` to the `publish` tables; the manifests,
    the read steps' reports and the cut reports."""
    manifests, builds, reports = {}, {}, []
    previous = None
    for year in years:
        last = year == years[-1]
        loaded = load_release_file(release_file(out, data, year, previous, publish if last else []))
        reports.append(run_cut(loaded, publish=last, progress=progress))
        manifests[year] = manifest_of(out, year)
        builds[year] = BuildReport.model_validate_json((output_of(out, year) / CUT_FOLDER / "build.json").read_bytes())
        previous = year
    return manifests, builds, reports


def scan_report(out: Path, year: int) -> ScanReport:
    """The scan the cut of `year` made."""
    return ScanReport.model_validate_json((output_of(out, year) / CUT_FOLDER / "scan.json").read_bytes())


def resume_claim(out: Path, year: int, progress: ProgressFn = no_progress) -> Claim:
    """The same cut again (publishing too): every finished step is skipped, nothing is read, written or
    sent again."""
    again = run_cut(load_release_file(out / "releases" / f"danbooru{year}.toml"), publish=True, progress=progress)
    skipped = [s.name for s in again.steps if s.reason == FINISHED_EARLIER]
    ran = [s.name for s in again.steps if s.status == "done" and s.reason != FINISHED_EARLIER]
    return Claim(
        claim="each year is cut from a release file; the same cut again skips every finished step",
        proved=not ran and bool(skipped),
        evidence=f"danbooru{year} again: skipped {', '.join(skipped)}; ran {ran or 'nothing'}",
    )
