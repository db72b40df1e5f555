"""`cut`: the yearly release from a release file, incremental next year, and resumable after kill -9."""

from __future__ import annotations

import io
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from release.cut.signing import artefacts, listed_together
from release.metaarchive import write_metadata_tarball
from release.metadata import release_chunks
from release.scan import scan_root
from release.stats import PostStats, collect_post_stats, collect_stats
from release.statsreport import PLOTS, write_plots
from tests.conftest import Dataset

ALLOW = [
    "type_mismatch",
    "truncated",
    "empty",
    "wrong_bucket",
    "file_without_metadata",
    "metadata_without_file",
    "metadata_duplicate_tag",
]
CLI = [sys.executable, "-m", "release"]


def release_file(folder: Path, year: int, previous: int | None = None, key: Path | None = None) -> Path:
    lines = [
        f'name = "danbooru{year}"',
        f"year = {year}",
        f'root = "root{year}"',
        f'output = "out/danbooru{year}"',
        f"scan_allow = {json.dumps(ALLOW)}",
    ]
    if key is not None:
        lines.append(f'signing_key = "{key}"')
    if previous is not None:
        lines += [
            "[previous]",
            f'name = "danbooru{previous}"',
            f'manifest = "out/danbooru{previous}/danbooru{previous}.manifest.jsonl.zst"',
            f'torrents = "out/danbooru{previous}/torrents"',
        ]
    lines += [
        "[torrents]",
        "creation_date = 1577836800",
        'web_seeds = ["https://mirror.example.org/"]',
        "[rsync]",
        f'module = "danbooru{year}"',
    ]
    path = folder / f"danbooru{year}.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


def with_export(folder: Path, year: int, *, keep: bool) -> Path:
    """The release file of `year` with `[metadata] export = "export"`: the root's own chunks, moved there (or
    copied, with `keep`)."""
    (folder / "export").mkdir()
    for chunk in release_chunks(folder / f"root{year}"):
        (shutil.copy2 if keep else shutil.move)(chunk, folder / "export" / chunk.name)
    path = release_file(folder, year)
    path.write_text(path.read_text() + '[metadata]\nexport = "export"\n')
    return path


def cut(*args: str | Path, check: bool = True) -> subprocess.CompletedProcess[str]:
    done = subprocess.run([*CLI, "cut", *map(str, args)], capture_output=True, text=True, timeout=600)
    if check:
        assert done.returncode == 0, done.stderr
    return done


def contents(output: Path) -> dict[str, bytes]:
    return {name: (output / name).read_bytes() for name in [*artefacts(output), "SHA256SUMS"]}


@pytest.fixture
def workdir(dataset: Dataset, tmp_path: Path) -> Callable[[tuple[int, ...]], Path]:
    """A folder holding private copies of the yearly roots (cut writes 512px/ and metadata into them)."""

    def make(years: tuple[int, ...]) -> Path:
        for year in years:
            shutil.copytree(dataset.root(year), tmp_path / f"root{year}", copy_function=shutil.copy2)
        return tmp_path

    return make


def test_cut_then_next_year_incremental_then_nothing_to_do(workdir: Callable[[tuple[int, ...]], Path]) -> None:
    folder = workdir((2017, 2018))
    first = json.loads(cut(release_file(folder, 2017), "--json").stdout)
    assert [s["status"] for s in first["steps"]] == ["not wanted", *["done"] * 7, "not wanted"]
    out17 = folder / "out" / "danbooru2017"
    names = artefacts(out17)
    assert "danbooru2017.manifest.jsonl.zst" in names and "metadata.json.tar.xz" in names
    assert any(n.startswith("torrents/") and n.endswith(".torrent") for n in names)
    assert {"rsync/filelist.txt", "rsync/rsyncd.conf", "RELEASE-NOTES.md"} <= set(names)
    listed = (out17 / "SHA256SUMS").read_text().splitlines()
    assert [line.split("  ", 1)[1] for line in listed] == names
    assert subprocess.run(["sha256sum", "-c", "--quiet", "SHA256SUMS"], cwd=out17).returncode == 0

    second = json.loads(cut(release_file(folder, 2018, previous=2017), "--json").stdout)
    read = next(s for s in second["steps"] if s["name"] == "read")["summary"]
    assert 0 < read["hashed_bytes"] < read["bytes"]  # last year's unchanged files were not read again
    first_read, second_read = (next(s for s in run["steps"] if s["name"] == "read") for run in (first, second))
    assert first_read["bytes_read"] >= first_read["summary"]["bytes"]  # every byte of the tree was read
    # one read for both: the files hashed again and the pieces hashed again (after a takedown's shift)
    assert second_read["bytes_read"] >= max(read["hashed_bytes"], read["piece_bytes_hashed"])
    scan = next(s for s in second["steps"] if s["name"] == "scan")["summary"]
    assert scan["not_read"] > 0  # nor scanned again: their findings came from last year's scan
    assert scan["findings"] == scan_root(folder / "root2018").counts  # what a scan of every file finds
    # the metadata tarball's streams were compressed ahead, beside the steps before it: every big chunk on a
    # first cut, this year's export next year (last year's tarball holds the rest); the cache is gone after
    tarballs = [next(s for s in run["steps"] if s["name"] == "tarballs") for run in (first, second)]
    assert all(t["ahead_seconds"] > 0 and not t["ahead_error"] and t["ahead_began"] == "metadata" for t in tarballs)
    assert all(t["summary"]["tar_bytes_compressed_ahead"] > 0 for t in tarballs)
    assert tarballs[1]["summary"]["tar_bytes_copied"] > 0
    assert not list((folder / "out").glob("*/.cut/metadata-ahead*"))
    # the posts' figures and the plots too: the same as counted and drawn now, in one go
    assert all(
        next(s for s in run["steps"] if s["name"] == "stats")["summary"]["counted_ahead"] for run in (first, second)
    )
    out18 = folder / "out" / "danbooru2018"
    now = collect_stats(folder / "root2018", out18 / "danbooru2018.manifest.jsonl.zst")
    assert (out18 / ".cut" / "stats.json").read_text() == now.model_dump_json(indent=2) + "\n"
    write_plots(now, folder / "plots-now")
    assert all((out18 / "plots" / n).read_bytes() == (folder / "plots-now" / n).read_bytes() for n in PLOTS)
    assert not list((folder / "out").glob("*/.cut/stats-ahead"))
    derived = [next(s for s in run["steps"] if s["name"] == "derive")["summary"] for run in (first, second)]
    assert derived[1]["skipped_earlier"] > 0  # last year's unchanged non-images were not opened again
    assert sum(derived[1]["skipped"].values()) >= derived[1]["skipped_earlier"]

    again = json.loads(cut(folder / "danbooru2018.toml", "--json").stdout)
    assert {s["status"] for s in again["steps"]} == {"done", "not wanted"}
    assert all(s["reason"] in ("finished earlier", "") or s["status"] == "not wanted" for s in again["steps"])
    assert "done earlier, skipped" in cut(folder / "danbooru2018.toml").stderr


def test_dry_run_shows_the_plan_with_sizes_and_writes_nothing(workdir: Callable[[tuple[int, ...]], Path]) -> None:
    folder = workdir((2017,))
    plan = json.loads(cut(release_file(folder, 2017), "--dry-run", "--json").stdout)
    steps = {s["name"]: s for s in plan["steps"]}
    assert steps["read"]["status"] == "would run"
    assert steps["read"]["summary"]["bytes_to_hash"] == steps["read"]["summary"]["bytes"] > 0
    assert steps["derive"]["summary"]["to_convert"] > 0
    assert not (folder / "out").exists()


def test_from_step_runs_it_and_every_later_one_again(workdir: Callable[[tuple[int, ...]], Path]) -> None:
    folder = workdir((2017,))
    path = release_file(folder, 2017)
    cut(path)
    report = json.loads(cut(path, "--from", "stats", "--json").stdout)
    ran = [s["name"] for s in report["steps"] if s["status"] == "done" and not s["reason"]]
    assert ran == ["stats", "tarballs", "checksums"]
    bad = cut(path, "--from", "nonsense", check=False)
    assert bad.returncode == 2 and "is not a step" in bad.stderr


def kill_when(command: list[str], ready: Callable[[], bool], timeout: float = 120) -> None:
    """Start `command`, SIGKILL it as soon as `ready()` holds (or when it ends by itself)."""
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + timeout
    while proc.poll() is None and not ready() and time.monotonic() < deadline:
        time.sleep(0.005)
    if proc.poll() is None:
        os.kill(proc.pid, signal.SIGKILL)
    proc.wait()


def state_has(output: Path, step: str) -> Callable[[], bool]:
    def ready() -> bool:
        try:
            return any(s["name"] == step for s in json.loads((output / ".cut" / "state.json").read_text())["steps"])
        except (FileNotFoundError, json.JSONDecodeError, KeyError):
            return False

    return ready


def journal_started(output: Path) -> Callable[[], bool]:
    return lambda: any(p.name.endswith(".journal") or "journal" in p.name for p in output.glob(".*"))


def test_kill_9_at_several_points_then_the_same_command_gives_the_same_bytes(dataset: Dataset, tmp_path: Path) -> None:
    folder = tmp_path / "w"

    def fresh() -> Path:
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir()
        shutil.copytree(dataset.root(2017), folder / "root2017", copy_function=shutil.copy2)
        shutil.rmtree(folder / "root2017" / "512px")  # the cut derives the whole subset
        return release_file(folder, 2017)

    output = folder / "out" / "danbooru2017"
    cut(fresh())
    clean = contents(output)
    points = {
        "derive running": lambda: len(list((folder / "root2017" / "512px").glob("*/*.jpg"))) > 10,
        "read running": journal_started(output),
        "after rsync": state_has(output, "rsync"),
    }
    for label, ready in points.items():
        path = fresh()
        kill_when([*CLI, "cut", str(path)], ready)
        finished_before = (
            json.loads((output / ".cut" / "state.json").read_text())["steps"]
            if (output / ".cut" / "state.json").exists()
            else []
        )
        assert "checksums" not in [s["name"] for s in finished_before], f"{label}: the cut ended before the kill"
        resumed = json.loads(cut(path, "--json").stdout)
        skipped = [s["name"] for s in resumed["steps"] if s["reason"] == "finished earlier"]
        assert skipped == [s["name"] for s in finished_before], label
        assert contents(output) == clean, label
        leftovers = [p for p in output.rglob("*.tmp")] + [p for p in (folder / "root2017").rglob("*.tmp")]
        assert not leftovers, (label, leftovers)


def test_signed_checksums_verify_and_an_edit_is_caught(workdir: Callable[[tuple[int, ...]], Path]) -> None:
    folder = workdir((2017,))
    key = folder / "key"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "maintainer", "-f", str(key)], check=True)
    cut(release_file(folder, 2017, key=key))
    output = folder / "out" / "danbooru2017"
    allowed = folder / "allowed_signers"
    allowed.write_text("maintainer@example.org " + (folder / "key.pub").read_text())
    ok = subprocess.run([*CLI, "verify", str(output), "--signature", str(allowed), "--json"], capture_output=True)
    assert ok.returncode == 0, ok.stderr
    assert json.loads(ok.stdout)["signer"] == "maintainer@example.org"
    with open(output / "RELEASE-NOTES.md", "a") as notes:
        notes.write("edited\n")
    edited = subprocess.run([*CLI, "verify", str(output), "--signature", str(allowed), "--json"], capture_output=True)
    assert edited.returncode == 1 and json.loads(edited.stdout)["bad"] == ["RELEASE-NOTES.md"]
    (output / "SHA256SUMS").write_text((output / "SHA256SUMS").read_text().replace("RELEASE", "RELEASE2"))
    forged = subprocess.run([*CLI, "verify", str(output), "--signature", str(allowed)], capture_output=True, text=True)
    assert forged.returncode == 1 and "signature does not match" in forged.stderr


def test_previous_torrents_of_another_manifest_are_refused(workdir: Callable[[tuple[int, ...]], Path]) -> None:
    folder = workdir((2017, 2018))
    cut(release_file(folder, 2017))
    path = release_file(folder, 2018, previous=2017)
    text = path.read_text().replace("out/danbooru2017/danbooru2017.manifest", "m.manifest")
    path.write_text(text)
    other = folder / "m.manifest.jsonl.zst"
    subprocess.run([*CLI, "manifest", "build", str(folder / "root2018"), "-o", str(other)], check=True)
    done = cut(path, check=False)
    assert done.returncode == 2 and "previous.torrents" in done.stderr and "not in previous.manifest" in done.stderr


def test_last_years_checksums_vouch_for_its_manifest_and_torrents_until_one_changes(
    workdir: Callable[[tuple[int, ...]], Path],
) -> None:
    folder = workdir((2017,))
    cut(release_file(folder, 2017))
    output = folder / "out" / "danbooru2017"
    files = [output / "danbooru2017.manifest.jsonl.zst", *sorted((output / "torrents").glob("*.torrent"))]
    assert len(files) > 2 and listed_together(files)
    elsewhere = folder / "copy.torrent"
    elsewhere.write_bytes(files[1].read_bytes())
    assert not listed_together([*files, elsewhere])  # not beside last year's SHA256SUMS
    data = bytearray(files[1].read_bytes())
    data[-3] ^= 1
    files[1].write_bytes(bytes(data))
    assert not listed_together(files)  # changed since the cut: the full comparison runs


def test_files_above_final_id_stop_the_cut(dataset: Dataset, workdir: Callable[[tuple[int, ...]], Path]) -> None:
    folder = workdir((2017,))
    path = release_file(folder, 2017)
    last = next(y.final_id for y in dataset.changelog.years if y.year == 2017)
    path.write_text(path.read_text().replace("year = 2017\n", f"year = 2017\nfinal_id = {last - 1}\n"))
    done = cut(path, check=False)
    assert done.returncode == 1, done.stderr
    assert "have an ID above final_id" in done.stderr and f"/{last}." in done.stderr
    assert cut(release_file(folder, 2017), check=False).returncode == 0  # without final_id the same tree is cut


def test_the_scan_and_derive_read_the_posts_the_metadata_step_validated(
    workdir: Callable[[tuple[int, ...]], Path],
) -> None:
    folder = workdir((2018,))
    root = folder / "root2018"
    path = with_export(folder, 2018, keep=False)  # this year's export arrives through the metadata step
    run = json.loads(cut(path, "--json").stdout)
    steps = {s["name"]: s for s in run["steps"]}
    assert steps["metadata"]["status"] == "done"
    assert steps["scan"]["summary"]["metadata_indexed"] and steps["derive"]["summary"]["metadata_indexed"]
    findings = io.BytesIO()
    report = scan_root(root, allow=tuple(ALLOW), findings_out=findings)  # parses the chunks placed
    reports = folder / "out" / "danbooru2018" / ".cut"
    assert (reports / "scan-findings.jsonl").read_bytes() == findings.getvalue()
    assert json.loads((reports / "scan.json").read_text()) == json.loads(report.model_dump_json())
    assert steps["derive"]["summary"]["up_to_date"] + steps["derive"]["summary"]["written"] > 0
    # and the posts' figures the statistics give were counted by the same pass
    counted = PostStats.model_validate_json((reports / "posts-counted.json").read_text())
    assert counted == collect_post_stats(root)
    manifest = folder / "out" / "danbooru2018" / "danbooru2018.manifest.jsonl.zst"
    assert (reports / "stats.json").read_text() == collect_stats(root, manifest).model_dump_json(indent=2) + "\n"
    # the tarball's streams were compressed from the export while the metadata step placed it: the same bytes
    tarballs = steps["tarballs"]
    assert tarballs["summary"]["tar_bytes_compressed_ahead"] > 0 and not tarballs["ahead_error"]
    assert tarballs["ahead_began"] == "start" and steps["stats"]["ahead_began"] == "metadata"
    write_metadata_tarball(root, folder / "fresh.tar.xz")
    published = folder / "out" / "danbooru2018" / "metadata.json.tar.xz"
    assert (folder / "fresh.tar.xz").read_bytes() == published.read_bytes()


def test_a_first_cut_over_last_years_top_level_export_compresses_after_the_metadata_step(
    workdir: Callable[[tuple[int, ...]], Path],
) -> None:
    folder = workdir((2018,))
    path = with_export(folder, 2018, keep=True)  # the export is placed over files already at the top
    tarballs = next(s for s in json.loads(cut(path, "--json").stdout)["steps"] if s["name"] == "tarballs")
    assert tarballs["ahead_began"] == "metadata" and not tarballs["ahead_error"]
    assert tarballs["summary"]["tar_bytes_compressed_ahead"] > 0
