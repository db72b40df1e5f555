from __future__ import annotations

import itertools
import random
from pathlib import Path

import pytest

from release.bencode import BencodeError, Value, decode, encode, tokens
from release.torrents.lint import _plainly_safe, lint_torrent, unsafe_component
from release.torrents.plan import Stats, TorrentSettings, auto_piece_length, plan_torrents
from release.torrents.sizes import PIECE_HASH, entry_bytes, entry_tokens, piece_count
from release.walk import FileTable
from tests.conftest import Dataset


def test_round_trip_is_canonical() -> None:
    value: Value = {b"b": [1, -2, b"x"], b"a": {b"k": b""}, b"c": 0}
    data = encode(value)
    assert data == b"d1:ad1:k0:e1:bli1ei-2e1:xe1:ci0ee"
    decoded = decode(data)
    assert decoded.value == value and decoded.tokens == tokens(value) == 15  # 2 dicts x2, list x2, 4 keys, 5 values


@pytest.mark.parametrize(
    ("data", "offset", "problem"),
    [
        (b"i01e", 0, "malformed integer b'01'"),
        (b"i-0e", 0, "malformed integer b'-0'"),
        (b"i-01e", 0, "malformed integer b'-01'"),
        (b"i+5e", 0, "malformed integer b'+5'"),  # what int() would take is not bencode
        (b"i 5e", 0, "malformed integer b' 5'"),
        (b"i1_0e", 0, "malformed integer b'1_0'"),
        (b"ie", 0, "malformed integer b''"),
        (b"i-e", 0, "malformed integer b'-'"),
        (b"i" + b"1" * 40 + b"e", 0, "integer without an end or longer than 30 digits"),
        (b"li5", 1, "integer without an end or longer than 30 digits"),
        (b"5:abc", 0, "string of 5 bytes runs past the end of the data"),
        (b"05:abcde", 0, "malformed string length b'05'"),
        (b"l1x:e", 1, "malformed string length b'1x'"),
        (b"l1xe", 1, "string length without ':' or longer than 11 digits"),
        (b"d1:bi1e1:ai2ee", 10, "dictionary key b'a' is not sorted or repeated"),
        (b"d1:ai1e1:ai2ee", 10, "dictionary key b'a' is not sorted or repeated"),
        (b"di1ei2ee", 1, "dictionary key is not a string"),
        (b"d1:a", 4, "unexpected end of data"),
        (b"li1e", 4, "unexpected end of data (missing 'e')"),
        (b"i1ei2e", 3, "trailing bytes after the value"),
        (b"x", 0, "unexpected byte b'x'"),
        (b"l\xff", 1, "unexpected byte b'\\xff'"),
        (b"", 0, "unexpected end of data"),
        (b"l" * 200, 100, "nested deeper than 100"),
        (b"99999999999999:x", 0, "string length without ':' or longer than 11 digits"),
    ],
)
def test_decoder_refuses_bad_input_with_an_offset(data: bytes, offset: int, problem: str) -> None:
    with pytest.raises(BencodeError) as info:
        decode(data)
    assert (info.value.offset, info.value.problem) == (offset, problem)


def test_token_limit_is_enforced_like_libtorrent() -> None:
    data = b"l" + b"0:" * 1000 + b"e"  # 1000 strings + list + end = 1002 tokens
    assert decode(data).tokens == 1002
    assert decode(data, token_limit=1002).tokens == 1002
    with pytest.raises(BencodeError) as info:
        decode(data, token_limit=1001)
    assert info.value.problem == "more than 1,001 tokens" and info.value.offset == 2001


def _random_value(rng: random.Random, depth: int) -> Value:
    kind = rng.choice("ibld" if depth < 4 else "ib")
    if kind == "i":
        return rng.choice([0, -1, 7, 2**70, -(2**40), rng.randrange(-(10**12), 10**12)])
    if kind == "b":
        return bytes(rng.randrange(256) for _ in range(rng.choice([0, 1, 5, 300])))
    if kind == "l":
        return [_random_value(rng, depth + 1) for _ in range(rng.randrange(4))]
    return {bytes([rng.randrange(97, 123)]) * rng.randrange(1, 4): _random_value(rng, depth + 1) for _ in range(4)}


def test_random_values_decode_to_themselves_with_libtorrents_token_count() -> None:
    rng = random.Random(5)
    for _ in range(300):
        value = _random_value(rng, 0)
        top = {b"announce": b"x", b"info": value, b"z": 1}
        data = encode(top)
        decoded = decode(data)
        assert decoded.value == top and decoded.tokens == tokens(top)
        assert decoded.info_span is not None and data[slice(*decoded.info_span)] == encode(value)
        assert decode(encode(value)).value == value
    assert decode(encode([{b"info": 1}])).info_span is None  # only the top-level dictionary's


def build_torrent(settings: TorrentSettings, files: list[tuple[str, int]], piece: int) -> bytes:
    entries = [{b"length": size, b"path": [p.encode() for p in path.split("/")]} for path, size in files]
    pieces = piece_count(sum(size for _, size in files), piece)
    info = {
        b"files": entries,
        b"name": settings.release.encode(),
        b"piece length": piece,
        b"pieces": b"\x01" * (PIECE_HASH * pieces),
    }
    return encode(settings.top_level() | {b"info": info})  # type: ignore[arg-type]


@pytest.mark.parametrize("pieces_digits_boundary", [1, 500, 5000])
def test_predicted_size_and_tokens_equal_the_real_encoding(pieces_digits_boundary: int) -> None:
    settings = TorrentSettings(
        release="danbooru2019",
        trackers=[["http://t.example:6969/announce"]],
        web_seeds=["http://mirror.example/"],
        comment="c",
        creation_date=1577836800,
    )
    files = [(f"original/{i % 1000:04d}/{i}.jpg", 1000 * i + 7) for i in range(1000, 1000 + pieces_digits_boundary)]
    stats = Stats()
    for path, size in files:
        stats.add(path, size)
    plan = plan_torrents(stats, settings.model_copy(update={"piece_length": 16384}), shards=1)
    (shard,) = plan.shards
    data = build_torrent(settings, files, 16384)
    assert shard.torrent_bytes == len(data)
    assert shard.tokens == decode(data).tokens
    assert shard.files == len(files) and shard.pieces == piece_count(sum(s for _, s in files), 16384)
    assert entry_bytes(["a", "bc"], 12) == len(encode({b"length": 12, b"path": [b"a", b"bc"]}))
    assert entry_tokens(["a", "bc"]) == tokens({b"length": 12, b"path": [b"a", b"bc"]})


def danbooru_scale_stats(files: int, mean_size: int) -> Stats:
    stats = Stats()
    arrays = {k: __import__("numpy").zeros(1000, dtype="int64") for k in ("files", "bytes", "entry_bytes", "tokens")}
    per_bucket = files // 1000
    arrays["files"][:] = per_bucket
    arrays["bytes"][:] = per_bucket * mean_size
    arrays["entry_bytes"][:] = per_bucket * entry_bytes(["original", "0659", "3734659.jpg"], mean_size)
    arrays["tokens"][:] = per_bucket * 10
    stats.buckets["original"] = arrays
    return stats


def test_auto_picks_the_fewest_shards_that_fit_and_10_shards_warn() -> None:
    stats = danbooru_scale_stats(3_692_000, 800_000)  # Danbooru2019: 3.69M originals, ~2.8 TB
    settings = TorrentSettings(release="danbooru2019")
    auto = plan_torrents(stats, settings)
    assert auto.fits and auto.shard_counts["original"] > 10
    smaller = [n for n in (1, 2, 4, 5, 8, 10, 20, 25, 40, 50) if n < auto.shard_counts["original"]]
    for n in smaller:
        assert not plan_torrents(stats, settings, shards=n).fits
    published = plan_torrents(stats, settings, shards=10)
    assert not published.fits and "libtorrent" in published.warnings[0]
    with pytest.raises(Exception, match="must divide 1000"):
        plan_torrents(stats, settings, shards=7)


def test_auto_piece_length() -> None:
    assert auto_piece_length(10**6) == 256 * 1024
    assert 16 * 1024 * 1024 >= auto_piece_length(370 * 10**9) >= 4 * 1024 * 1024


def test_lint_flags_limits_unsafe_paths_and_garbage(tmp_path: Path) -> None:
    settings = TorrentSettings(release="r")
    good = tmp_path / "good.torrent"
    good.write_bytes(build_torrent(settings, [("original/0000/1000.jpg", 5)], 16384))
    report = lint_torrent(good)
    assert not report.failed and report.files == 1 and report.version == "v1" and len(report.info_hash or "") == 40
    evil = tmp_path / "evil.torrent"
    evil.write_bytes(build_torrent(settings, [("original/../../etc/passwd", 5)], 16384))
    assert any("unsafe path" in p for p in lint_torrent(evil).problems)
    garbage = tmp_path / "garbage.torrent"
    garbage.write_bytes(b"d4:infoi1e")
    assert lint_torrent(garbage).failed
    many = [(f"original/{i % 1000:04d}/{i}.jpg", 1) for i in range(1000, 131_000)]  # > 1M tokens
    big = tmp_path / "big.torrent"
    big.write_bytes(build_torrent(settings, many, 16384))
    over = lint_torrent(big, ("libtorrent", "libtorrent-1.1"))
    assert over.profiles["libtorrent"].fits and not over.profiles["libtorrent-1.1"].fits
    assert over.profiles["libtorrent-1.1"].headroom["tokens"] == 1_000_000 - over.tokens < 0


def test_plan_from_a_real_manifest(dataset: Dataset) -> None:
    from release.torrents.plan import collect_stats

    plan = plan_torrents(collect_stats(dataset.manifests[2019]), TorrentSettings(release="danbooru2019"))
    assert plan.fits and plan.shard_counts == {"original": 1, "512px": 1}
    assert [s.name for s in plan.shards] == ["danbooru2019-0", "danbooru2019-1", "danbooru2019-metadata"]
    from release.manifest.io import ManifestReader

    assert sum(s.files for s in plan.shards) == ManifestReader(dataset.manifests[2019]).header.files


def test_counting_a_whole_table_at_once_equals_counting_each_file() -> None:
    """`Stats.add_table` (columns for conforming images) against `Stats.add` per file, odd paths included."""
    paths = [
        "original/0001/1001.jpg", "original/0001/1001.png", "512px/0001/1001.jpg", "original/0999/999999999999.gif",
        "original/0000/0.jpg", "original/0002/1003.jpg", "original/002/1002.jpg", "original/0004/1004.JPG",
        "512px/0005/1005.png", "original/0006/01006.jpg", "original/0007/1007", "original/0008/ｉｄ.jpg",
        "original/0009/sub/1009.jpg", "metadata/2019000000000000", "metadata/2018/2018000000000000",
        "metadata/posts000000000000.json", "README.md", "rsync/list.txt", "original/0010/1010.jpg",
    ]  # fmt: skip
    sizes = [0, 9, 10, 99, 100, 12_345, 10**12, 1, 7, 3, 5, 8, 2, 560_000_000, 1, 4, 12, 0, 10**15]
    chooser = random.Random(3)
    paths += [f"original/{post % 1000:04d}/{post}.{chooser.choice(['jpg', 'png', 'webm'])}" for post in range(1, 3000)]
    sizes += [chooser.choice([0, 1, 9, 10, 999, 10**6, 10**10]) for _ in range(1, 3000)]
    table = FileTable()
    for path, size in zip(paths, sizes, strict=True):
        table.add(path, size)
    at_once, one_by_one = Stats(), Stats()
    groups = at_once.add_table(table)
    assert groups.tolist() == [one_by_one.add(path, size) for path, size in zip(paths, sizes, strict=True)]
    assert at_once.buckets.keys() == one_by_one.buckets.keys() == {"original", "512px"}
    for subset, arrays in one_by_one.buckets.items():
        for key, values in arrays.items():
            assert at_once.buckets[subset][key].tolist() == values.tolist(), (subset, key)
    assert (at_once.metadata, at_once.skipped) == (one_by_one.metadata, one_by_one.skipped)
    assert one_by_one.skipped > 0 and one_by_one.metadata["files"] >= 2


def test_the_one_search_per_path_clears_exactly_the_paths_every_component_check_clears() -> None:
    alphabet = [b"", b".", b"..", b"...", b".a", b"a.", b"a", b"a/b", b"/", b"a\\b", b"\\", b"\x00", b"a\x00"]
    for count in (1, 2, 3):
        for components in itertools.product(alphabet, repeat=count):
            safe = all(unsafe_component(c) is None for c in components)
            assert _plainly_safe(list(components)) == safe, components
