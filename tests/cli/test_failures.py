"""Bad input, unreadable files, a full disk and Ctrl-C: a clear message, the right exit code, no partial output."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from release.manifest.io import ManifestReader
from tests.conftest import Dataset, Run

# Root ignores permission bits; dropping these capabilities makes chmod 000 bite as it would for a user.
NO_DAC = ("setpriv", "--bounding-set=-dac_override,-dac_read_search")


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def test_malformed_manifest_names_file_and_line(cli: Callable[..., Run], dataset: Dataset, tmp_path: Path) -> None:
    lines = [ManifestReader(dataset.manifests[2017]).header.model_dump_json()]
    lines += [r.model_dump_json() for r in ManifestReader(dataset.manifests[2017])]
    lines[4] = lines[4].replace('"sha256":"', '"sha256":"zz', 1)
    bad = tmp_path / "bad.jsonl"
    bad.write_text("\n".join(lines) + "\n")
    run = cli("verify", dataset.root(2017), "--manifest", bad, "--json")
    assert run.code == 2
    assert f"{bad}:5: field 'sha256'" in run.stderr and "hint:" in run.stderr
    assert run.json()["error"]["exit_code"] == 2


def test_manifest_from_a_newer_schema(cli: Callable[..., Run], dataset: Dataset, tmp_path: Path) -> None:
    header = json.loads(ManifestReader(dataset.manifests[2017]).header.model_dump_json())
    future = tmp_path / "future.jsonl"
    future.write_text(json.dumps({**header, "version": 9}) + "\n")
    run = cli("manifest", "diff", future, dataset.manifests[2017])
    assert run.code == 2 and "version 9 is newer" in run.stderr and "upgrade booru-release" in run.stderr


def test_unsafe_manifest_path(cli: Callable[..., Run], dataset: Dataset, tmp_path: Path) -> None:
    header = ManifestReader(dataset.manifests[2017]).header
    record = next(iter(ManifestReader(dataset.manifests[2017]))).model_dump() | {"path": "original/../../../etc/passwd"}
    bad = tmp_path / "evil.jsonl"
    bad.write_text(header.model_dump_json() + "\n" + json.dumps(record) + "\n")
    run = cli("verify", dataset.root(2017), "--manifest", bad)
    assert run.code == 2 and "unsafe path" in run.stderr and f"{bad}:2" in run.stderr


def test_garbage_previous_manifest(cli: Callable[..., Run], dataset: Dataset, tmp_path: Path) -> None:
    junk = tmp_path / "junk.zst"
    junk.write_bytes(b"\x28\xb5\x2f\xfd" + os.urandom(64))
    out = tmp_path / "out.zst"
    run = cli("manifest", "build", dataset.root(2017), "-o", out, "--previous", junk)
    assert run.code == 2 and str(junk) in run.stderr
    assert not out.exists() and leftovers(tmp_path) == ["junk.zst"]


@pytest.fixture
def unreadable_tree(dataset: Dataset, tree_copy: Callable[[int], Path]) -> Iterator[tuple[Path, str]]:
    root = tree_copy(2017)
    victim = next(r.path for r in ManifestReader(dataset.manifests[2017]) if r.path.startswith("original/"))
    (root / victim).chmod(0)
    yield root, victim
    (root / victim).chmod(0o644)


def test_unreadable_file_in_manifest_build(
    cli: Callable[..., Run], unreadable_tree: tuple[Path, str], tmp_path: Path
) -> None:
    root, victim = unreadable_tree
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    run = cli("manifest", "build", root, "-o", out_dir / "m.zst", prefix=NO_DAC)
    assert run.code == 3
    assert f"{victim}: Permission denied" in run.stderr and "no manifest was written" in run.stderr
    assert [name for name in leftovers(out_dir) if not name.endswith(".journal")] == []


def test_unreadable_file_in_verify_and_scan(
    cli: Callable[..., Run], dataset: Dataset, unreadable_tree: tuple[Path, str]
) -> None:
    root, victim = unreadable_tree
    run = cli("verify", root, "--manifest", dataset.manifests[2017], "--json", prefix=NO_DAC)
    assert run.code == 1
    problems = run.json()["problems"]
    assert problems == [{"path": victim, "status": "CORRUPT", "reason": "cannot read: Permission denied"}]
    scan = cli("scan", root, "--json", prefix=NO_DAC)
    assert {"kind": "unreadable", "path": victim, "detail": "Permission denied"} in scan.json()["findings"]


def test_full_disk_manifest(cli: Callable[..., Run], dataset: Dataset, full_disk: Path) -> None:
    assert dataset.manifests[2019].stat().st_size > 16 * 1024
    run = cli("manifest", "build", dataset.root(2019), "-o", full_disk / "m.jsonl.zst")
    assert run.code == 3 and "no space left on device" in run.stderr
    assert [name for name in leftovers(full_disk) if not name.endswith(".journal")] == []  # the journal is kept


def test_full_disk_export_and_report(cli: Callable[..., Run], dataset: Dataset, full_disk: Path) -> None:
    run = cli("manifest", "export", dataset.manifests[2019], "--format", "sha256sum", "-o", full_disk / "SUMS")
    assert run.code == 3 and "no space left on device" in run.stderr
    run = cli("verify", dataset.root(2019), "--manifest", dataset.manifests[2019], "--report", full_disk / "r.jsonl")
    assert run.code == 3
    assert leftovers(full_disk) == []


def test_a_folder_that_cannot_be_listed_stops_the_build(cli: Callable[..., Run], tmp_path: Path) -> None:
    root = tmp_path / "tree"
    for bucket, post in (("0000", 1000), ("0001", 1001)):
        (root / "original" / bucket).mkdir(parents=True)
        (root / "original" / bucket / f"{post}.jpg").write_bytes(b"\xff\xd8\xff")
    (root / "original" / "0001").chmod(0)
    try:
        run = cli("manifest", "build", root, "-o", tmp_path / "m.zst", prefix=NO_DAC)
    finally:
        (root / "original" / "0001").chmod(0o755)
    assert run.code == 3 and "original/0001: cannot list or stat: Permission denied" in run.stderr
    assert not (tmp_path / "m.zst").exists()


def test_a_folder_of_originals_that_cannot_be_listed_stops_derive(cli: Callable[..., Run], tmp_path: Path) -> None:
    root = tmp_path / "tree"
    (root / "metadata").mkdir(parents=True)
    (root / "metadata" / "2019000000000000").write_text(
        "".join(json.dumps({"id": str(post), "rating": "s", "tags": []}) + "\n" for post in (1000, 1001))
    )
    for bucket, post in (("0000", 1000), ("0001", 1001)):
        (root / "original" / bucket).mkdir(parents=True)
        (root / "original" / bucket / f"{post}.jpg").write_bytes(b"\xff\xd8\xff")
    (root / "original" / "0001").chmod(0)
    try:
        run = cli("derive", "512px", root, prefix=NO_DAC)
    finally:
        (root / "original" / "0001").chmod(0o755)
    assert run.code == 3 and "original/0001: cannot list or stat: Permission denied" in run.stderr
    assert not (root / "512px").exists()  # nothing derived from half a tree
