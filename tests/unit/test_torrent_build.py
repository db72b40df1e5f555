"""torrents build: piece hashes, ID order, reproducibility, yearly reuse (checked against libtorrent's parser)."""

from __future__ import annotations

import hashlib
import random
from pathlib import Path
from typing import Any

import libtorrent as lt
import numpy as np
import pytest

from release.bencode import Value, encode
from release.build import build_manifest, build_torrents
from release.hashing import read_files
from release.layout import sort_key
from release.readpass import Group, GroupResult, Stitcher
from release.torrents import build as torrent_build
from release.torrents.build import TorrentJob
from release.torrents.metainfo import encode_torrent, table_files_field
from release.torrents.plan import TorrentSettings
from release.walk import FileTable
from tests.conftest import Dataset

SETTINGS = TorrentSettings(
    release="danbooru2019",
    trackers=[["http://127.0.0.1:6969/announce"]],
    web_seeds=["http://127.0.0.1:8000/mirror"],
    comment="synthetic",
    creation_date=1577836800,
    piece_length=32768,
)


def _reference(data: bytes, length: int) -> bytes:
    return b"".join(hashlib.sha1(data[i : i + length]).digest() for i in range(0, len(data), length))


@pytest.mark.parametrize("length", [16384, 65536])
def test_groups_stitched_at_any_cut_give_the_pieces_of_the_whole_stream(length: int, tmp_path: Path) -> None:
    """The native read loop's piece sink (head, whole pieces, tail) against SHA-1 of the whole stream."""
    rng = random.Random(length)
    sizes = [0, 1, length - 1, length, length + 1, 2 * length] + [rng.randrange(0, 3 * length) for _ in range(60)]
    files = [rng.randbytes(size) for size in sizes]
    names = [f"{n}.bin".encode() for n in range(len(files))]
    for name, data in zip(names, files, strict=True):
        (tmp_path / name.decode()).write_bytes(data)
    stream = b"".join(files)
    for trial in range(20):
        cuts = sorted(rng.sample(range(1, len(files)), k=trial % 10 + 1))
        stitcher = Stitcher(length, 0, b"")
        position = 0
        for low, high in zip([0, *cuts], [*cuts, len(files)], strict=True):
            end = position + sum(sizes[low:high])
            got = read_files(
                str(tmp_path),
                names[low:high],
                sizes[low:high],
                algorithms=(),
                hash_flags=bytes(high - low),
                starts=[0] * (high - low),
                span=(position, end, length),
            )
            assert got.codes == bytes(high - low) and got.nbytes == end - position
            none = np.zeros(0, np.int64)
            result = GroupResult(none, b"", none, got.head, got.pieces, got.tail, [], got.nbytes)
            stitcher.add(Group(0, position, end, length, none, none, none, np.zeros(0, bool)), result)
            position = end
        assert stitcher.finish(len(stream)) == _reference(stream, length)


def _table(files: list[tuple[str, int]]) -> FileTable:
    table = FileTable()
    for path, size in files:
        table.add(path, size)
    return table


def _files_field(files: list[tuple[str, int]]) -> bytes:
    """The bencoded files list of (path, length) pairs, in their order."""
    return table_files_field(_table(files), np.arange(len(files), dtype=np.int64))


def _build(root: Path, out: Path, workers: int = 2, settings: TorrentSettings = SETTINGS, **job: Any) -> Any:
    return build_torrents(root, TorrentJob(settings=settings, output=out, **job), workers=workers).model_dump()


def test_built_torrents_parse_in_libtorrent_with_right_pieces_id_order_and_no_padding(
    dataset: Dataset, tmp_path: Path
) -> None:
    root = dataset.root(2019)
    report = _build(root, tmp_path / "t")
    shards = report["shards"]
    assert isinstance(shards, list) and len(shards) >= 3
    subsets_seen = set()
    for shard in shards:
        info = lt.torrent_info(shard["file"])
        assert info.name() == "danbooru2019"
        assert str(info.info_hash()) == shard["info_hash"]
        storage = info.files()  # deprecated in favour of layout(), which 2.1's bindings do not expose
        paths = [storage.file_path(i).split("/", 1)[1] for i in range(storage.num_files())]
        assert not any(storage.file_flags(i) & lt.file_storage.flag_pad_file for i in range(storage.num_files()))
        assert paths == sorted(paths, key=sort_key), "files must be in ID order across buckets"
        subsets_seen.add(paths[0].split("/")[0])
        data = b"".join((root / p).read_bytes() for p in paths)
        assert info.total_size() == len(data)
        length = info.piece_length()
        hashes = b"".join(bytes(info.hash_for_piece(i)) for i in range(info.num_pieces()))
        assert hashes == _reference(data, length)
        assert [w["url"] for w in info.web_seeds()] == ["http://127.0.0.1:8000/mirror/"]
        assert info.creator() == "booru-release" and info.comment() == "synthetic"
    assert subsets_seen == {"original", "512px", "metadata"}


def test_rebuild_is_byte_identical_and_manifest_pass_gives_the_same_torrents(dataset: Dataset, tmp_path: Path) -> None:
    root = dataset.root(2019)
    first = _build(root, tmp_path / "a", workers=0)
    second = _build(root, tmp_path / "b", workers=2)
    build_manifest(
        root, tmp_path / "m.jsonl.zst", release="danbooru2019", torrents=TorrentJob(SETTINGS, tmp_path / "c")
    )
    names = sorted(p.name for p in (tmp_path / "a").iterdir())
    assert "danbooru2019-torrents.tar.xz" in names
    for name in names:
        data = (tmp_path / "a" / name).read_bytes()
        assert data == (tmp_path / "b" / name).read_bytes() == (tmp_path / "c" / name).read_bytes(), name
    assert first == {**second, "output": first["output"], "tarball": first["tarball"], "shards": first["shards"]}
    assert (tmp_path / "m.jsonl.zst").read_bytes() and dataset.manifests[2019].exists()


def test_previous_year_reuse_keeps_unchanged_pieces_and_equals_a_full_build(dataset: Dataset, tmp_path: Path) -> None:
    old_settings = SETTINGS.model_copy(update={"release": "danbooru2018"})
    _build(dataset.root(2018), tmp_path / "old", settings=old_settings)
    full = _build(dataset.root(2019), tmp_path / "full")
    reused = _build(
        dataset.root(2019),
        tmp_path / "reused",
        previous=tmp_path / "old",
        previous_manifest=dataset.manifests[2018],
        new_manifest=dataset.manifests[2019],
    )
    full_shards = {s["name"]: s for s in full["shards"]}
    for shard in reused["shards"]:
        assert shard["info_hash"] == full_shards[shard["name"]]["info_hash"]
    assert reused["reused_bytes"] > 0
    assert reused["hashed_bytes"] + reused["reused_bytes"] == full["hashed_bytes"]
    assert sum(s["reused_pieces"] for s in reused["shards"]) > 0


def test_a_manifest_build_with_last_years_torrents_reads_last_years_manifest_once(
    dataset: Dataset, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The torrents' unchanged files come from the manifest's own reuse of the same manifest; same torrents."""
    old_settings = SETTINGS.model_copy(update={"release": "danbooru2018"})
    _build(dataset.root(2018), tmp_path / "old", settings=old_settings)
    full = _build(dataset.root(2019), tmp_path / "full")

    def read_again(*args: object) -> None:
        raise AssertionError("last year's manifest read a second time")

    monkeypatch.setattr(torrent_build, "unchanged_rows", read_again)
    job = TorrentJob(SETTINGS, tmp_path / "new", previous=tmp_path / "old", previous_manifest=dataset.manifests[2018])
    report = build_manifest(
        dataset.root(2019),
        tmp_path / "m.jsonl.zst",
        release="danbooru2019",
        previous=dataset.manifests[2018],
        torrents=job,
    )
    assert report.torrents is not None and report.reused_files > 0
    assert sum(s.reused_pieces for s in report.torrents.shards) > 0
    assert {s.name: s.info_hash for s in report.torrents.shards} == {s["name"]: s["info_hash"] for s in full["shards"]}


@pytest.mark.parametrize(
    "settings",
    [
        TorrentSettings(release="r"),
        TorrentSettings(
            release="r",
            trackers=[["http://a/announce"], ["udp://b:1"]],
            web_seeds=["http://m/x"],
            comment="c",
            creation_date=1600000000,
            name="ñame",
        ),  # fmt: skip
    ],
)
def test_streamed_encoding_is_the_canonical_bencode(settings: TorrentSettings) -> None:
    files = [("original/0000/1000.jpg", 0), ("original/0001/10001.png", 123456789), ("512px/0000/ü ß.jpg", 7)]
    data, info_hash = encode_torrent(settings, 16384, b"\x01" * 40, _files_field(files))
    info: dict[bytes, Value] = {
        b"files": [{b"length": n, b"path": [c.encode() for c in p.split("/")]} for p, n in files],
        b"name": settings.torrent_name.encode(),
        b"piece length": 16384,
        b"pieces": b"\x01" * 40,
    }
    assert data == encode({**settings.top_level(), b"info": info})
    assert info_hash == hashlib.sha1(encode(info)).hexdigest()


def test_the_files_list_written_in_c_is_the_canonical_bencode_of_odd_paths_too() -> None:
    files = [
        ("original/0000/1000.jpg", 0), ("a//b", 9), ("trailing/", 10), ("", 99), ("/lead", 100),
        ("ü/ß \udcff.jpg", 123456789), ("x" * 300 + "/y", 10**15), ("no-slash", 1),
    ]  # fmt: skip
    expected = [{b"length": n, b"path": [c.encode("utf-8", "surrogateescape") for c in p.split("/")]} for p, n in files]
    assert _files_field(files) == encode(expected)
    assert _files_field([]) == b"le"
    table = _table(files)
    rows = np.array([5, 0, 2], np.int64)
    assert table_files_field(table, rows) == encode([expected[row] for row in rows.tolist()])
