"""Shared fixtures: a small synthetic dataset, its manifests, and a CLI runner."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import zstandard

from release.build import build_manifest
from release.synth import Changelog, synth

REPO = Path(__file__).resolve().parents[1]
SAMPLES = REPO.parent / "shared" / "samples" / "danbooru-metadata"
YEARS = (2017, 2018, 2019)


@dataclass(frozen=True)
class Dataset:
    """Three yearly snapshots, their changelog and (full) manifests."""

    base: Path
    changelog: Changelog
    manifests: dict[int, Path]

    def root(self, year: int) -> Path:
        return self.base / str(year)


def zstd_content(path: Path) -> bytes:
    """A zstd file's whole content, across all its frames (a manifest is a run of frames)."""
    with open(path, "rb") as handle:
        return zstandard.ZstdDecompressor().stream_reader(handle, read_across_frames=True).read()


@pytest.fixture(scope="session")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Dataset:
    base = tmp_path_factory.mktemp("synth")
    synth(base / "data", years="2017-2019", images=450, seed=7)
    changelog = Changelog.model_validate_json((base / "data" / "changelog.json").read_text())
    manifests = {}
    for year in YEARS:
        manifests[year] = base / f"m{year}.jsonl.zst"
        build_manifest(base / "data" / str(year), manifests[year], release=f"danbooru{year}")
    return Dataset(base / "data", changelog, manifests)


@pytest.fixture
def tree_copy(dataset: Dataset, tmp_path: Path) -> Callable[[int], Path]:
    """A private, writable copy of a snapshot (snapshots share inodes through hard links)."""

    def make(year: int) -> Path:
        target = tmp_path / f"copy{year}"
        shutil.copytree(dataset.root(year), target, copy_function=shutil.copy2)
        return target

    return make


@dataclass
class Run:
    code: int
    stdout: str
    stderr: str

    def json(self) -> Any:
        return json.loads(self.stdout)


def run_cli(
    *args: str | os.PathLike[str],
    env: dict[str, str] | None = None,
    prefix: tuple[str, ...] = (),
    cwd: Path | None = None,
) -> Run:
    """Run the real command line in a subprocess; fail on any traceback."""
    proc = subprocess.run(
        [*prefix, sys.executable, "-m", "release", *map(str, args)],
        capture_output=True,
        text=True,
        env={**os.environ, "COLUMNS": "200", "PYTHONPATH": str(REPO), **(env or {})},
        timeout=600,
        cwd=cwd,
    )
    assert "Traceback" not in proc.stderr, proc.stderr
    return Run(proc.returncode, proc.stdout, proc.stderr)


@pytest.fixture
def cli() -> Callable[..., Run]:
    return run_cli


@pytest.fixture
def full_disk(tmp_path: Path) -> Iterator[Path]:
    mount = tmp_path / "small"
    mount.mkdir()
    proc = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=16k", "tmpfs", str(mount)], capture_output=True)
    if proc.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here: {proc.stderr.decode().strip()}")
    yield mount
    subprocess.run(["umount", str(mount)], check=True)


@pytest.fixture(scope="session")
def s3(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """A real S3 server (SeaweedFS) on 127.0.0.1 for the whole session."""
    from tests.integration.s3server import start_s3

    yield from start_s3(tmp_path_factory.mktemp("seaweedfs"))
