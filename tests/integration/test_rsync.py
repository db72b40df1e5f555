"""The real rsync daemon (Debian `rsync`) serving our rsyncd.conf and file lists on 127.0.0.1."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import Dataset, run_cli
from tests.integration.swarm import free_port, stop, wait_port

MODULE = "danbooru2019"


@dataclass(frozen=True)
class Daemon:
    url: str
    log: Path
    root: Path


@pytest.fixture
def daemon(dataset: Dataset, tmp_path: Path) -> Iterator[Daemon]:
    """`rsync --daemon --no-detach` on a free 127.0.0.1 port with the config `rsync config` wrote."""
    conf, log = tmp_path / "rsyncd.conf", tmp_path / "rsyncd.log"
    made = run_cli(
        "rsync", "config", "--module", MODULE, "--path", dataset.root(2019), "-o", conf,
        "--log-file", log, "--lock-file", tmp_path / "rsyncd.lock", "--max-connections", "8",
    )  # fmt: skip
    assert made.code == 0, made.stderr
    port = free_port()
    proc = subprocess.Popen(
        ["rsync", "--daemon", "--no-detach", f"--config={conf}", f"--port={port}", "--address=127.0.0.1"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        wait_port("127.0.0.1", port)
        yield Daemon(f"rsync://127.0.0.1:{port}/{MODULE}/", log, dataset.root(2019))
    finally:
        stop(proc)


def _rsync(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["rsync", *map(str, args)], capture_output=True, text=True, timeout=120)


def test_files_from_subset_download_then_verify_passes(daemon: Daemon, dataset: Dataset, tmp_path: Path) -> None:
    lists = tmp_path / "lists"
    lists.mkdir()
    assert run_cli("rsync", "filelist", dataset.manifests[2019], "-o", lists / "all.txt").code == 0
    # a partial download: the 512px subset plus the originals of buckets 0000-0099
    originals = [line for line in (lists / "all-original.txt").read_text().splitlines() if line.split("/")[2] < "0100"]
    subset = tmp_path / "subset.txt"
    subset.write_text((lists / "all-512px.txt").read_text() + "\n".join(originals) + "\n")
    dest = tmp_path / "dl"
    got = _rsync("-r", "-t", f"--files-from={subset}", daemon.url, dest)
    assert got.returncode == 0, got.stderr
    fetched = sorted(str(p.relative_to(dest)) for p in dest.rglob("*") if p.is_file())
    assert fetched == sorted(line[2:] for line in subset.read_text().splitlines())
    check = run_cli("verify", dest, "--manifest", dataset.manifests[2019], "--files-from", subset, "--json")
    assert check.code == 0, check.stdout
    assert check.json()["totals"]["OK"] == len(fetched)
    assert "danbooru2019" in daemon.log.read_text()  # transfer logging names the module


def test_writes_and_delete_are_refused(daemon: Daemon, tmp_path: Path) -> None:
    intruder = tmp_path / "evil.txt"
    intruder.write_text("x")
    push = _rsync(intruder, daemon.url)
    assert push.returncode != 0 and "read only" in push.stderr, push.stderr
    assert not (daemon.root / "evil.txt").exists()
    empty = tmp_path / "empty"
    empty.mkdir()
    before = sorted(p.name for p in (daemon.root / "metadata").iterdir())
    delete = _rsync("-r", "--delete", f"{empty}/", daemon.url + "metadata/")
    assert delete.returncode != 0 and "refuse" in delete.stderr and "delete" in delete.stderr, delete.stderr
    assert sorted(p.name for p in (daemon.root / "metadata").iterdir()) == before
    mirror = tmp_path / "mirror"
    checksum = _rsync("-r", "--checksum", daemon.url + "metadata/", mirror)
    assert checksum.returncode != 0 and "refuse" in checksum.stderr, checksum.stderr


def test_concurrent_clients_all_complete(daemon: Daemon, dataset: Dataset, tmp_path: Path) -> None:
    def fetch(k: int) -> tuple[int, str]:
        got = _rsync("-r", daemon.url, tmp_path / f"c{k}")
        return got.returncode, got.stderr

    with ThreadPoolExecutor(5) as pool:
        results = list(pool.map(fetch, range(5)))
    assert all(code == 0 for code, _ in results), results
    for k in range(5):
        check = run_cli("verify", tmp_path / f"c{k}", "--manifest", dataset.manifests[2019], "--complete", "--json")
        assert check.code == 0, check.stdout
