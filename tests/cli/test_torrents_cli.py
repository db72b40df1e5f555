"""torrents build and verify --torrent through the real command line: exit codes, --json, exact reports."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest

from release.bencode import decode, encode
from release.torrents.metainfo import load_torrent
from tests.conftest import Dataset, Run

PIECE = 32768


@pytest.fixture(scope="module")
def built(dataset: Dataset, tmp_path_factory: pytest.TempPathFactory) -> Path:
    from tests.conftest import run_cli

    out = tmp_path_factory.mktemp("torrents")
    run = run_cli(
        "torrents", "build", dataset.root(2019), "--release", "danbooru2019", "-o", out,
        "--manifest", dataset.manifests[2019], "--piece-size", "32KiB", "--creation-date", "2020-01-01",
        "--tracker", "http://127.0.0.1:1/announce", "--json",
    )  # fmt: skip
    assert run.code == 0, run.stderr
    report = run.json()
    assert report["hashed_bytes"] > 0 and report["reused_bytes"] == 0
    assert {Path(s["file"]).name for s in report["shards"]} <= {p.name for p in out.iterdir()}
    return out


def _shard0(built: Path) -> Path:
    return built / "danbooru2019-0.torrent"


def test_verify_torrent_on_an_intact_tree_passes(built: Path, dataset: Dataset, cli: Callable[..., Run]) -> None:
    torrents = sorted(built.glob("*.torrent"))
    run = cli("verify", dataset.root(2019), *[a for t in torrents for a in ("--torrent", t)], "--json")
    assert run.code == 0, run.stdout
    result = run.json()
    for torrent in result["torrents"]:
        assert torrent["pieces_failed"] == torrent["pieces_unchecked"] == 0
        assert torrent["counts"]["OK"] == torrent["files"]


def test_flipped_bytes_and_a_deleted_file_are_reported_exactly(
    built: Path, tree_copy: Callable[[int], Path], cli: Callable[..., Run], tmp_path: Path
) -> None:
    root = tree_copy(2019)
    meta = load_torrent(_shard0(built))
    offsets = [sum(meta.lengths[:i]) for i in range(len(meta.lengths))]
    # a file holding a whole piece of its own, and a small file sharing its pieces with others
    big = next(i for i, n in enumerate(meta.lengths) if n > 3 * PIECE)
    small = next(
        i for i, n in enumerate(meta.lengths)
        if 0 < n < PIECE // 4 and abs(i - big) > 3 and offsets[i] // PIECE == (offsets[i] + n - 1) // PIECE
        and offsets[i] % PIECE and (offsets[i] + n) % PIECE
    )  # fmt: skip
    gone = next(i for i, n in enumerate(meta.lengths) if n > 0 and min(abs(i - big), abs(i - small)) > 5)
    for index, where in ((big, PIECE + PIECE // 2 - offsets[big] % PIECE), (small, meta.lengths[small] // 2)):
        path = root / meta.paths[index]
        data = bytearray(path.read_bytes())
        data[where] ^= 0xFF
        path.write_bytes(bytes(data))
    os.remove(root / meta.paths[gone])
    refetch = tmp_path / "refetch.txt"
    run = cli("verify", root, "--torrent", _shard0(built), "--json", "--refetch-list", refetch)
    assert run.code == 1, run.stdout
    (result,) = run.json()["torrents"]
    status = {p["path"]: p["status"] for p in result["problems"]}
    assert status[meta.paths[big]] == "CORRUPT"
    assert status[meta.paths[small]] == "SUSPECT"
    assert status[meta.paths[gone]] == "MISSING"
    piece = offsets[small] // PIECE
    sharing = [
        meta.paths[i] for i, n in enumerate(meta.lengths)
        if n and offsets[i] < (piece + 1) * PIECE and offsets[i] + n > piece * PIECE
    ]  # fmt: skip
    assert len(sharing) > 1 and all(status[p] == "SUSPECT" for p in sharing)
    assert result["pieces_failed"] == 2
    assert result["counts"]["MISSING"] == 1 and result["counts"]["CORRUPT"] == 1
    listed = refetch.read_text().splitlines()
    assert f"./{meta.paths[big]}" in listed and f"./{meta.paths[gone]}" in listed
    assert set(listed) == {f"./{p}" for p in status}


def test_torrent_with_a_traversal_path_is_refused(tmp_path: Path, dataset: Dataset, cli: Callable[..., Run]) -> None:
    info = {b"files": [{b"length": 3, b"path": [b"..", b"etc", b"passwd"]}], b"name": b"x", b"piece length": 16384}
    info[b"pieces"] = b"\0" * 20
    evil = tmp_path / "evil.torrent"
    evil.write_bytes(encode({b"info": info}))  # type: ignore[dict-item]
    run = cli("verify", dataset.root(2019), "--torrent", evil)
    assert run.code == 2
    assert "evil.torrent" in run.stderr and "unsafe" in run.stderr
    lint = cli("torrents", "lint", evil, "--json")
    assert lint.code == 1 and lint.json()["files"][0]["problems"]


@pytest.mark.parametrize(
    ("extra", "needle"),
    [
        (["--shards", "7"], "--shards must divide"),
        (["--previous", "."], "--previous-manifest"),
        (["--creation-date", "yesterday"], "not a date"),
        (["--piece-size", "1000"], "power of two"),
    ],
)
def test_build_usage_errors_exit_2_and_write_nothing(
    extra: list[str], needle: str, dataset: Dataset, cli: Callable[..., Run], tmp_path: Path
) -> None:
    out = tmp_path / "out"
    run = cli("torrents", "build", dataset.root(2019), "--release", "r", "-o", out, *extra)
    assert run.code == 2, run.stderr
    assert needle in run.stderr
    assert not out.exists() or not any(out.iterdir())


def test_built_torrent_top_level_is_exactly_the_settings(built: Path) -> None:
    top = decode(_shard0(built).read_bytes()).value
    assert isinstance(top, dict)
    assert sorted(top) == [b"announce", b"announce-list", b"created by", b"creation date", b"info"]
    assert top[b"creation date"] == 1577836800
