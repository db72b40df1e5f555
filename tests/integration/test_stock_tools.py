"""Exports checked by the stock tools users already trust: sha256sum -c, xxhsum -c, bagit.py --validate."""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from release.manifest.io import ManifestReader
from tests.conftest import Dataset, Run


def need(tool: str) -> str:
    path = shutil.which(tool)
    if path is None:
        pytest.fail(f"{tool} is not installed; scripts/setup.sh --test installs it")
    return path


@pytest.mark.parametrize(("fmt", "tool", "args"), [("sha256sum", "sha256sum", ["-c"]), ("xxh128sum", "xxhsum", ["-c"])])
def test_checksum_lists_pass_and_catch_damage(
    cli: Callable[..., Run],
    dataset: Dataset,
    tree_copy: Callable[[int], Path],
    tmp_path: Path,
    fmt: str,
    tool: str,
    args: list[str],
) -> None:
    sums = tmp_path / "SUMS"
    assert cli("manifest", "export", dataset.manifests[2018], "--format", fmt, "-o", sums).code == 0
    files = ManifestReader(dataset.manifests[2018]).header.files
    ok = subprocess.run([need(tool), *args, str(sums)], cwd=dataset.root(2018), capture_output=True, text=True)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert ok.stdout.count(": OK") == files
    root = tree_copy(2018)
    victim = sums.read_text().splitlines()[3].split("  ", 1)[1]
    (root / victim).write_bytes(b"tampered")
    bad = subprocess.run([need(tool), *args, str(sums)], cwd=root, capture_output=True, text=True)
    assert bad.returncode != 0 and f"{victim}: FAILED" in bad.stdout


def test_bagit_validates_the_release_as_a_bag(cli: Callable[..., Run], dataset: Dataset, tmp_path: Path) -> None:
    bag = tmp_path / "bag"
    run = cli(
        "manifest", "export", dataset.manifests[2017], "--format", "bagit", "-o", bag, "--payload", dataset.root(2017)
    )
    assert run.code == 0, run.stderr
    proc = subprocess.run([sys.executable, "-m", "bagit", "--validate", str(bag)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert "is valid" in proc.stderr


def test_bagit_catches_a_changed_file(
    cli: Callable[..., Run], dataset: Dataset, tree_copy: Callable[[int], Path], tmp_path: Path
) -> None:
    root = tree_copy(2017)
    victim = next(r.path for r in ManifestReader(dataset.manifests[2017]) if r.size > 100)
    data = bytearray((root / victim).read_bytes())
    data[10] ^= 1
    (root / victim).write_bytes(data)
    bag = tmp_path / "bag"
    run = cli("manifest", "export", dataset.manifests[2017], "--format", "bagit", "-o", bag, "--payload", root)
    assert run.code == 0
    proc = subprocess.run([sys.executable, "-m", "bagit", "--validate", str(bag)], capture_output=True, text=True)
    assert proc.returncode != 0 and victim in proc.stderr


JQ_1GIRL_SAFE = (
    'select(.rating == "s" and any(.tags[]; .name == "1girl")) '
    '| "./original/\\((.id | tonumber) % 1000 | tostring | ("000" + .)[-4:])/\\(.id).\\(.file_ext)"'
)


def test_select_gives_what_the_jq_pipeline_gives(cli: Callable[..., Run], dataset: Dataset, tmp_path: Path) -> None:
    root = dataset.root(2019)
    chunks = sorted(str(p) for p in (root / "metadata").iterdir() if p.is_file())
    jq = subprocess.run([need("jq"), "-r", JQ_1GIRL_SAFE, *chunks], capture_output=True, text=True, check=True)
    wanted = [line for line in jq.stdout.splitlines() if (root / line[2:]).is_file()]
    got = cli("select", "--metadata", root, "--tag", "1girl", "--rating", "s", "-o", tmp_path / "l.txt", "--json")
    assert got.code == 0, got.stderr
    listed = (tmp_path / "l.txt").read_text().splitlines()
    assert sorted(listed) == sorted(wanted) and len(listed) > 10
    assert got.json()["listed"] == len(listed)
