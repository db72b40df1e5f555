"""Real clients on our torrents: a libtorrent seeder, Debian's opentracker, and libtorrent, aria2 and
Transmission 3 as leechers; a web-seed-only download; the yearly update measured by libtorrent."""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from release.bencode import decode, encode
from release.build import build_manifest, build_torrents
from release.torrents.build import TorrentJob
from release.torrents.check import check_torrent
from release.torrents.metainfo import load_torrent
from release.torrents.plan import TorrentSettings
from tests.conftest import Dataset, run_cli
from tests.integration.swarm import free_port, hardlink_tree, lt_leech, lt_seeder, netns_link, opentracker, stop

pytestmark = pytest.mark.skipif(shutil.which("opentracker") is None, reason="needs Debian's opentracker")
NAME = "danbooru2019"
SETTINGS = TorrentSettings(release=NAME, creation_date=1577836800, piece_length=65536)


def _announce(torrent: Path, url: str, target: Path) -> Path:
    """The same torrent (same info-hash) announcing to `url`."""
    top = decode(torrent.read_bytes()).value
    assert isinstance(top, dict)
    top[b"announce"] = url.encode()
    top[b"announce-list"] = [[url.encode()]]
    target.write_bytes(encode(top))
    return target


def _files_from(torrent: Path, target: Path) -> Path:
    target.write_text("".join(f"./{p}\n" for p in load_torrent(torrent).paths))
    return target


def _verify_download(root: Path, torrent: Path, manifest: Path, tmp: Path) -> None:
    listed = _files_from(torrent, tmp / f"{torrent.stem}.list")
    run = run_cli("verify", root, "--manifest", manifest, "--files-from", listed, "--json")
    assert run.code == 0, run.stdout + run.stderr
    result = run.json()
    meta = load_torrent(torrent)
    empty = {p for p, n in zip(meta.paths, meta.lengths, strict=True) if n == 0}
    missing = {p["path"] for p in result["problems"] if p["status"] == "MISSING"}
    assert missing <= empty, missing  # Transmission 3 does not create zero-byte files
    assert result["totals"]["OK"] == len(meta.paths) - len(missing) and result["totals"]["CORRUPT"] == 0


@pytest.fixture(scope="module")
def shard(dataset: Dataset, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """Shard 0 of 2019 and a seedable copy of the tree (<dir>/danbooru2019/...)."""
    base = tmp_path_factory.mktemp("swarm")
    report = build_torrents(dataset.root(2019), TorrentJob(SETTINGS, base / "torrents"))
    seed_dir = base / "seed"
    hardlink_tree(dataset.root(2019), seed_dir / NAME)
    return Path(report.shards[0].file), seed_dir


@contextlib.contextmanager
def _swarm(torrent: Path, seed_dir: Path, tmp: Path, host: str = "127.0.0.1") -> Iterator[Path]:
    with opentracker([load_torrent(torrent).info_hash], host) as url:
        announced = _announce(torrent, url, tmp / torrent.name)
        with lt_seeder(announced, seed_dir):
            yield announced


def test_libtorrent_leecher_downloads_a_shard(shard: tuple[Path, Path], dataset: Dataset, tmp_path: Path) -> None:
    torrent, seed_dir = shard
    with _swarm(torrent, seed_dir, tmp_path) as announced:
        result = lt_leech(announced, tmp_path / "dl")
    assert result["had_pieces"] == 0 and result["downloaded"] >= load_torrent(torrent).total
    _verify_download(tmp_path / "dl" / NAME, torrent, dataset.manifests[2019], tmp_path)


def test_aria2_downloads_a_shard(shard: tuple[Path, Path], dataset: Dataset, tmp_path: Path) -> None:
    torrent, seed_dir = shard
    with _swarm(torrent, seed_dir, tmp_path) as announced:
        proc = subprocess.run(
            ["aria2c", f"--dir={tmp_path / 'dl'}", "--seed-time=0", "--enable-dht=false", "--bt-enable-lpd=false",
             "--enable-peer-exchange=false", f"--listen-port={free_port()}", "--file-allocation=none",
             "--console-log-level=warn", "--summary-interval=0", "--bt-stop-timeout=120", str(announced)],
            capture_output=True, text=True, timeout=300,
        )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    _verify_download(tmp_path / "dl" / NAME, torrent, dataset.manifests[2019], tmp_path)


@pytest.mark.skipif(shutil.which("transmission-cli") is None, reason="needs Debian's transmission-cli")
def test_transmission_downloads_a_shard_over_a_veth_link(
    shard: tuple[Path, Path], dataset: Dataset, tmp_path: Path
) -> None:
    # Transmission 3 never connects to 127.0.0.0/8 peers: the seeder lives in a namespace of its own.
    torrent, seed_dir = shard
    with netns_link() as link, opentracker([load_torrent(torrent).info_hash], link.host) as url:
        announced = _announce(torrent, url, tmp_path / torrent.name)
        with lt_seeder(announced, seed_dir, host=link.peer, netns=link.netns):
            (tmp_path / "tr").mkdir()
            # TCP only: Transmission 3 takes a libtorrent 2.1 peer but stalls over uTP (DESIGN.md section 6)
            (tmp_path / "tr" / "settings.json").write_text(
                '{"utp-enabled": false, "dht-enabled": false, "lpd-enabled": false, "pex-enabled": false}'
            )
            (tmp_path / "dl").mkdir()
            log = (tmp_path / "transmission.log").open("w")
            proc = subprocess.Popen(
                ["transmission-cli", "-w", str(tmp_path / "dl"), "-g", str(tmp_path / "tr"),
                 "-p", str(free_port()), "-M", "-ep", str(announced)],
                stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
            )  # fmt: skip
            try:
                deadline = time.monotonic() + 180
                while time.monotonic() < deadline and not _complete(tmp_path / "dl" / NAME, announced):
                    time.sleep(1)
            finally:
                stop(proc)  # type: ignore[arg-type]
                log.close()
    assert _complete(tmp_path / "dl" / NAME, announced), (tmp_path / "transmission.log").read_text()[-2000:]
    _verify_download(tmp_path / "dl" / NAME, torrent, dataset.manifests[2019], tmp_path)


def _complete(root: Path, torrent: Path) -> bool:
    if not root.is_dir() or any(p.suffix == ".part" for p in root.rglob("*")):
        return False
    result = check_torrent(root, torrent, workers=0)
    return result.pieces_ok == result.pieces


def test_web_seed_alone_completes_a_shard(dataset: Dataset, tmp_path: Path) -> None:
    mirror = tmp_path / "mirror"
    hardlink_tree(dataset.root(2019), mirror / NAME)
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "http.server", "--protocol", "HTTP/1.1",  # keep-alive for the many small files
         "--bind", "127.0.0.1", "--directory", str(mirror), str(port)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )  # fmt: skip
    try:
        settings = SETTINGS.model_copy(update={"web_seeds": [f"http://127.0.0.1:{port}"]})
        report = build_torrents(dataset.root(2019), TorrentJob(settings, tmp_path / "t"))
        torrent = Path(report.shards[0].file)
        result = lt_leech(torrent, tmp_path / "dl")  # no tracker, no peers: only the web seed
    finally:
        stop(server)  # type: ignore[arg-type]
    assert result["downloaded"] >= load_torrent(torrent).total
    _verify_download(tmp_path / "dl" / NAME, torrent, dataset.manifests[2019], tmp_path)


def _append_only_next_year(dataset: Dataset, target: Path) -> Path:
    """Year N+1 as the design assumes it: every file of year N unchanged, plus the new year's files."""
    hardlink_tree(dataset.root(2019), target)
    old = dataset.root(2018)
    for path in old.rglob("*"):
        relative = path.relative_to(old)
        if path.is_file() and relative.parts[0] in ("original", "512px"):
            (target / relative).unlink(missing_ok=True)  # undo this year's replacements and takedowns
            (target / relative).parent.mkdir(parents=True, exist_ok=True)
            (target / relative).hardlink_to(path)
    return target


def test_yearly_update_redownloads_only_new_bytes_plus_a_piece_per_shard(dataset: Dataset, tmp_path: Path) -> None:
    old_root, old_manifest = dataset.root(2018), dataset.manifests[2018]
    old_settings = SETTINGS.model_copy(update={"release": "danbooru2018"})
    build_torrents(old_root, TorrentJob(old_settings, tmp_path / "old"))
    new_root = _append_only_next_year(dataset, tmp_path / "new" / NAME)
    new_manifest = tmp_path / "new.jsonl.zst"
    job = TorrentJob(SETTINGS, tmp_path / "t", previous=tmp_path / "old", previous_manifest=old_manifest)
    report = build_manifest(new_root, new_manifest, release=NAME, torrents=job).torrents
    assert report is not None and report.reused_bytes > 0
    # The user's copy of last year's download, moved to the new torrent's name (it is real data: a copy).
    shutil.copytree(old_root, tmp_path / "dl" / NAME)
    old_files = {str(p.relative_to(old_root)): p.stat().st_size for p in old_root.rglob("*") if p.is_file()}
    for shard in report.shards:
        torrent = Path(shard.file)
        meta = load_torrent(torrent)
        new_bytes = sum(
            n for p, n in zip(meta.paths, meta.lengths, strict=True)
            if old_files.get(p) != n or (old_root / p).read_bytes() != (new_root / p).read_bytes()
        )  # fmt: skip
        with _swarm(torrent, tmp_path / "new", tmp_path) as announced:
            result = lt_leech(announced, tmp_path / "dl")
        assert result["downloaded"] <= new_bytes + meta.piece_length, (shard.name, result, new_bytes)
        assert shard.name.endswith("metadata") or shard.reused_pieces > 0
    check = run_cli("verify", tmp_path / "dl" / NAME, "--manifest", new_manifest, "--json")
    assert check.code == 0, check.stdout
