"""Hostile and broken input: a clear message and exit code, never a traceback (issue 11, items 6-17)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
import zstandard

from release.bencode import decode, encode
from release.manifest.io import ManifestReader
from tests.conftest import Dataset, Run


def manifest_lines(manifest: Path) -> list[str]:
    reader = ManifestReader(manifest)
    return [reader.header.model_dump_json()] + [r.model_dump_json() for r in reader]


def test_flipped_pieces_in_last_years_torrents_are_not_reused(
    cli: Callable[..., Run], dataset: Dataset, tmp_path: Path
) -> None:
    old = tmp_path / "old"
    assert cli("torrents", "build", dataset.root(2018), "--release", "d2018", "-o", old, "--shards", "1").code == 0
    torrent = next(old.glob("*-0.torrent"))
    meta = decode(torrent.read_bytes()).value
    assert isinstance(meta, dict) and isinstance(meta[b"info"], dict)
    pieces = bytearray(meta[b"info"][b"pieces"])  # type: ignore[arg-type]
    pieces[0] ^= 0xFF  # the first piece's hash: a spot check always reads it
    meta[b"info"][b"pieces"] = bytes(pieces)
    torrent.write_bytes(encode(meta))
    args = ("torrents", "build", dataset.root(2019), "--release", "d2019", "--shards", "1", "--json")
    run = cli(*args, "-o", tmp_path / "new", "--previous", old, "--previous-manifest", dataset.manifests[2018])
    assert run.code == 0, run.stderr
    report = run.json()
    shard = next(s for s in report["shards"] if s["name"] == "d2019-0")
    assert shard["reused_bytes"] == 0 and any(w.startswith("d2019-0: ") for w in report["warnings"])
    fresh = cli(*args, "-o", tmp_path / "fresh")
    assert (tmp_path / "new" / "d2019-0.torrent").read_bytes() == (tmp_path / "fresh" / "d2019-0.torrent").read_bytes()
    assert fresh.code == 0
    check = cli("verify", dataset.root(2019), "--torrent", tmp_path / "new" / "d2019-0.torrent")
    assert check.code == 0, check.stdout


@pytest.fixture
def undecodable_tree(tree_copy: Callable[[int], Path]) -> Path:
    root = tree_copy(2017)
    (root / "original" / "0002").mkdir(exist_ok=True)
    with open(os.path.join(os.fsencode(root), b"original/0002/\xff\xfe.jpg"), "wb") as handle:
        handle.write(b"z")
    return root


def test_non_utf8_names_are_reported_with_escapes_and_left_out(
    cli: Callable[..., Run], dataset: Dataset, undecodable_tree: Path, tmp_path: Path
) -> None:
    root = undecodable_tree
    built = cli("manifest", "build", root, "-o", tmp_path / "m.zst", "--json")
    assert built.code == 0, built.stderr
    assert ["original/0002/\\xff\\xfe.jpg", "undecodable"] in built.json()["skipped"]
    assert cli("manifest", "diff", dataset.manifests[2017], tmp_path / "m.zst").code == 0  # every reader accepts it
    scan = cli("scan", root, "--json")
    assert any(f["kind"] == "undecodable_name" and "\\xff\\xfe" in f["path"] for f in scan.json()["findings"])
    assert cli("torrents", "plan", root, "--release", "x", "--json").code == 0
    assert cli("torrents", "build", root, "--release", "x", "-o", tmp_path / "t").code == 0
    report = tmp_path / "report.jsonl"
    run = cli("verify", root, "--manifest", dataset.manifests[2017], "--report", report)
    assert run.code == 0, run.stderr
    rows = [json.loads(line) for line in report.read_bytes().decode("utf-8").splitlines()]  # valid UTF-8
    assert {"path": "original/0002/\\xff\\xfe.jpg", "status": "EXTRA"}.items() <= rows[-1].items()


def deep(n: int = 100_000) -> str:
    return "[" * n + "]" * n


def test_deeply_nested_json_is_refused_cleanly(cli: Callable[..., Run], dataset: Dataset, tmp_path: Path) -> None:
    header_bomb = tmp_path / "header.jsonl"
    header_bomb.write_text(deep() + "\n")
    record_bomb = tmp_path / "record.jsonl"
    lines = manifest_lines(dataset.manifests[2017])
    record_bomb.write_text("\n".join([lines[0], '{"path":' + deep(), *lines[2:]]) + "\n")
    for bad in (header_bomb, record_bomb):
        for args in (
            ("verify", dataset.root(2017), "--manifest", bad),
            ("manifest", "diff", bad, dataset.manifests[2017]),
            ("manifest", "build", dataset.root(2017), "-o", tmp_path / "m.zst", "--previous", bad),
        ):
            run = cli(*args)
            assert run.code == 2 and f"{bad}:" in run.stderr, (args, run.stderr)


def test_deeply_nested_metadata_line(cli: Callable[..., Run], tree_copy: Callable[[int], Path], tmp_path: Path) -> None:
    root = tree_copy(2017)
    chunk = sorted((root / "metadata").glob("2017*"))[0]
    with open(chunk, "a") as handle:
        handle.write(deep() + "\n")
    scan = cli("scan", root, "--json")
    assert scan.code == 1 and any(f["kind"] == "metadata_malformed" for f in scan.json()["findings"])
    export = tmp_path / "export"
    export.mkdir()
    shutil.copy(chunk, export / chunk.name)
    run = cli("metadata", "archive", export, "--year", "2017", "--into", tmp_path / "x", "--dry-run")
    assert run.code == 2 and f"{chunk.name}:" in run.stderr


def test_a_decompression_bomb_is_refused_by_line_length(
    cli: Callable[..., Run], dataset: Dataset, tmp_path: Path
) -> None:
    bomb = tmp_path / "bomb.jsonl.zst"
    cctx = zstandard.ZstdCompressor(level=19)
    with open(bomb, "wb") as raw, cctx.stream_writer(raw) as out:
        out.write(manifest_lines(dataset.manifests[2017])[0].encode() + b"\n")
        for _ in range(256):  # 256 MiB of one line, a few KB on disk
            out.write(b"a" * (1 << 20))
    assert bomb.stat().st_size < 200_000
    run = cli("verify", dataset.root(2017), "--manifest", bomb)
    assert run.code == 2 and f"{bomb}:2: line longer than" in run.stderr


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (("--module", "global", "--path", "/srv/x"), "[global]"),
        (("--module", "GLOBAL", "--path", "/srv/x"), "[global]"),
        (("--module", "d2019", "--path", "/srv/x\\"), "backslash"),
        (("--module", "d2019", "--path", "/srv/%HOME%"), "environment variable"),
        (("--module", "d2019", "--path", "/srv/x", "--comment", "x "), "spaces"),
        (("--module", "d2019", "--path", "/srv/x", "--hosts-allow", "a b"), "one address"),
    ],
)
def test_rsync_config_follows_rsyncd_conf_rules(cli: Callable[..., Run], args: tuple[str, ...], needle: str) -> None:
    run = cli("rsync", "config", *args)
    assert run.code == 2 and needle in run.stderr, run.stderr


def test_reconstruct_into_the_current_folder(cli: Callable[..., Run], dataset: Dataset, tmp_path: Path) -> None:
    work = tmp_path / "work"
    work.mkdir()
    run = cli("reconstruct", "danbooru2017", "--from", dataset.root(2019), "--to", ".", "--dry-run", cwd=work)
    assert run.code == 0, run.stderr


@pytest.mark.parametrize(
    "args", [("--since", "2019-13-45"), ("--since", "2019-02-30"), ("--until", "2019-2-3"), ("--ids", "5-3")]
)
def test_select_refuses_impossible_queries(
    cli: Callable[..., Run], dataset: Dataset, tmp_path: Path, args: tuple[str, ...]
) -> None:
    run = cli("select", "--metadata", dataset.root(2017), *args, "-o", tmp_path / "list.txt")
    assert run.code == 2 and args[0] in run.stderr
    assert not (tmp_path / "list.txt").exists()


def torrent_with(tmp_path: Path, name: str, **info: object) -> Path:
    base: dict[bytes, object] = {
        b"name": b"x",
        b"piece length": 16384,
        b"pieces": b"\x00" * 20,
        b"files": [{b"length": 10, b"path": [b"a.jpg"]}],
    }
    base.update({k.replace("_", " ").encode(): v for k, v in info.items()})
    path = tmp_path / f"{name}.torrent"
    path.write_bytes(encode({b"info": base}))  # type: ignore[dict-item]
    return path


@pytest.mark.parametrize(
    ("name", "info", "needle"),
    [
        ("short-pieces", {"pieces": b"\x00" * 19}, "whole number of 20-byte"),
        ("zero-piece", {"piece_length": 0}, "not a positive number"),
        ("negative", {"files": [{b"length": -5, b"path": [b"a.jpg"]}]}, "negative length"),
        ("too-few", {"files": [{b"length": 40000, b"path": [b"a.jpg"]}]}, "1 piece hashes for 3 pieces"),
    ],
)
def test_lint_and_verify_share_one_validation(
    cli: Callable[..., Run], tmp_path: Path, name: str, info: dict[str, object], needle: str
) -> None:
    torrent = torrent_with(tmp_path, name, **info)
    lint = cli("torrents", "lint", torrent)
    assert lint.code == 1 and needle in lint.stdout, lint.stdout
    verify = cli("verify", tmp_path, "--torrent", torrent)
    assert verify.code == 2 and needle in verify.stderr, verify.stderr
    good = cli("torrents", "lint", torrent_with(tmp_path, "good"), "--profile", "aria2")
    assert good.code == 0, good.stdout


def test_manifest_damage_is_named_precisely(cli: Callable[..., Run], dataset: Dataset, tmp_path: Path) -> None:
    data = dataset.manifests[2017].read_bytes()
    truncated = tmp_path / "truncated.zst"
    truncated.write_bytes(data[: len(data) // 2])
    run = cli("verify", dataset.root(2017), "--manifest", truncated)
    assert run.code == 2 and "truncated zstd stream" in run.stderr
    corrupt = tmp_path / "corrupt.zst"
    corrupt.write_bytes(data + b"\x00garbage after the frame")
    run = cli("verify", dataset.root(2017), "--manifest", corrupt)
    records = ManifestReader(dataset.manifests[2017]).header.files
    assert run.code == 2 and f"{corrupt}:{records + 2}: corrupt zstd stream" in run.stderr, run.stderr
    flipped = tmp_path / "flipped.zst"
    damaged = bytearray(data)
    damaged[-2] ^= 0xFF  # inside the frame's checksum: every byte decodes, the checksum does not match
    flipped.write_bytes(bytes(damaged))
    run = cli("verify", dataset.root(2017), "--manifest", flipped)
    assert run.code == 2 and "corrupt zstd stream" in run.stderr and f"{flipped}:0:" not in run.stderr
    lines = manifest_lines(dataset.manifests[2017])
    header = json.loads(lines[0])
    for field, value, needle in (("version", 1.0, "is not a schema version"), ("bytes", 1, "header announces 1 bytes")):
        if field == "bytes":
            header["subsets"] = {}
        wrong = tmp_path / f"{field}.jsonl"
        wrong.write_text("\n".join([json.dumps({**header, field: value}), *lines[1:]]) + "\n")
        run = cli("verify", dataset.root(2017), "--manifest", wrong)
        assert run.code == 2 and needle in run.stderr and "newer" not in run.stderr, run.stderr


def test_a_chunk_that_is_not_a_file_is_refused(cli: Callable[..., Run], tmp_path: Path) -> None:
    export = tmp_path / "export"
    export.mkdir()
    os.mkfifo(export / "2019000000000000")
    (export / "2019000000000001").mkdir()
    run = cli("metadata", "archive", export, "--year", "2019", "--into", tmp_path, "--dry-run")
    assert run.code == 2 and "not a regular file" in run.stderr


def test_stats_says_when_metadata_lines_were_skipped(cli: Callable[..., Run], tree_copy: Callable[[int], Path]) -> None:
    root = tree_copy(2017)
    chunk = sorted((root / "metadata").glob("2017*"))[0]
    with open(chunk, "a") as handle:
        handle.write("{not json\n")
    run = cli("metadata", "stats", root)
    assert run.code == 0 and "1 malformed metadata lines skipped" in run.stderr


def test_verify_with_a_list_still_reports_files_the_manifest_lacks(
    cli: Callable[..., Run], dataset: Dataset, tree_copy: Callable[[int], Path], tmp_path: Path
) -> None:
    root = tree_copy(2017)
    stranger = root / "original" / "0001" / "99999001.jpg"
    stranger.parent.mkdir(exist_ok=True)
    stranger.write_bytes(b"\xff\xd8\xff")
    listed = tmp_path / "list.txt"
    paths = [r.path for r in ManifestReader(dataset.manifests[2017])][:20]
    listed.write_text("".join(f"./{p}\n" for p in paths))
    run = cli("verify", root, "--manifest", dataset.manifests[2017], "--files-from", listed, "--json")
    assert run.code == 0, run.stderr  # EXTRA fails only with --complete
    extras = [p for p in run.json()["problems"] if p["status"] == "EXTRA"]
    assert [p["path"] for p in extras] == ["original/0001/99999001.jpg"]
    strict = cli("verify", root, "--manifest", dataset.manifests[2017], "--files-from", listed, "--complete")
    assert strict.code == 1


def test_verify_of_the_wrong_folder_says_so(cli: Callable[..., Run], dataset: Dataset) -> None:
    parent = dataset.root(2017).parent  # the folder above the release root: every path is one level down
    run = cli("verify", parent, "--manifest", dataset.manifests[2017])
    assert run.code == 0 and "None of the manifest's" in run.stderr and "release's root" in run.stderr, run.stderr
    right = cli("verify", dataset.root(2017), "--manifest", dataset.manifests[2017])
    assert right.code == 0 and "None of the manifest's" not in right.stderr


def test_demo_help_describes_the_whole_demo(cli: Callable[..., Run]) -> None:
    text = cli("demo", "--help").stdout
    for word in ("torrents", "rsync", "reconstruct", "seed", "cut"):
        assert word in text, text


def test_sigterm_name_in_help(cli: Callable[..., Run]) -> None:
    text = cli("manifest", "build", "--help").stdout
    assert "resume" in text.lower()


def test_installed_wheel_knows_the_catalogue(dataset: Dataset, tmp_path: Path) -> None:
    from tests.conftest import REPO

    wheels = tmp_path / "wheels"
    subprocess.run(
        ["python3", "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(wheels), str(REPO)],
        check=True,
        capture_output=True,
    )
    venv = tmp_path / "venv"
    subprocess.run(["python3", "-m", "venv", "--system-site-packages", str(venv)], check=True)
    wheel = next(wheels.glob("booru_release-*.whl"))
    # --force-reinstall: pip may otherwise count the editable install it sees through the system site-packages
    # as this version already installed and put nothing in the venv (seen once in CI)
    install = [venv / "bin" / "pip", "install", "-q", "--no-deps", "--force-reinstall", str(wheel)]
    subprocess.run(install, check=True, capture_output=True)
    proc = subprocess.run(
        [venv / "bin" / "python", "-m", "release", "reconstruct", "danbooru2017", "--from", dataset.root(2019),
         "--to", tmp_path / "out", "--dry-run", "--json"],
        capture_output=True, text=True, cwd=tmp_path, env={k: v for k, v in os.environ.items() if k != "PYTHONPATH"},
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    located = subprocess.run(
        [venv / "bin" / "python", "-c", "import release; print(release.__file__)"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={k: v for k, v in os.environ.items() if k != "PYTHONPATH"},
    )
    assert str(venv) in located.stdout
