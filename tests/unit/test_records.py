"""The C record tokeniser (release/_records.c) against pydantic and the layout rules, and verify's columns."""

from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np
import pytest

from release import _listing, _records
from release.errors import ManifestFormatError
from release.hashing import STAT_ONLY, Code, read_files
from release.layout import EXTENSIONS, IMAGE_SUBSETS, SUBSET_RANK, pack, parse_path
from release.manifest.columns import FIELDS, column_chunks, load_columns, read_columns
from release.manifest.io import ManifestReader, parse_line, prescan_paths, record_line
from release.pathcols import EXTENSION_NAMES
from tests.conftest import Dataset, zstd_content

SUBSETS_B = tuple(s.encode() for s in IMAGE_SUBSETS)
EXTENSIONS_B = tuple(e.encode() for e in EXTENSION_NAMES)
DIGESTS = {"xxh3_128": "0f" * 16, "sha256": "a1" * 32, "md5": "9c" * 16}


def line(path: str, size: int = 5, mtime_ns: int = 1546301000998295522) -> bytes:
    return record_line(path, size, mtime_ns, **DIGESTS).rstrip(b"\n")


def scan(lines: list[bytes], field: int) -> tuple[bytes, list[bytes | None], bytes, bytes]:
    """_records.scan_block over the lines as one block: (fast, paths, sizes, digests)."""
    block = b"\n".join(lines)
    fast, spans, sizes, digests, *_ = _records.scan_block(block, field, SUBSETS_B, EXTENSIONS_B)
    pairs = np.frombuffer(spans, np.int64).reshape(-1, 2).tolist()
    return fast, [block[a:b] if ok else None for ok, (a, b) in zip(fast, pairs, strict=True)], sizes, digests


def manifest_lines(path: Path) -> list[bytes]:
    return zstd_content(path).splitlines()[1:]


def test_canonical_lines_are_parsed_in_c_exactly_as_pydantic_does(dataset: Dataset) -> None:
    lines = manifest_lines(dataset.manifests[2019])
    mtimes = read_columns("m", 2, b"\n".join(lines), None).mtimes.tolist()
    assert mtimes == [parse_line("m", n + 2, raw).mtime_ns for n, raw in enumerate(lines)]
    for field, number in FIELDS.items():
        fast, paths, sizes, digests = scan(lines, number)
        assert fast == b"\x01" * len(lines)
        width = len(digests) // len(lines)
        for n, raw in enumerate(lines):
            record = parse_line("m", n + 2, raw)
            assert paths[n] == record.path.encode()
            assert int(np.frombuffer(sizes, np.int64)[n]) == record.size
            want = bytes.fromhex(getattr(record, field)) if field else b""
            assert digests[n * width : (n + 1) * width] == want


def test_columns_classify_every_path_as_the_layout_does(dataset: Dataset) -> None:
    lines = manifest_lines(dataset.manifests[2019])
    lines += [line(p) for p in ("other/x.txt", "original/0001/1002.jpg", "512px/0001/1001.png", "original/0001/01.jpg")]
    lines += [line("original/0001/1001.exe"), line("original/0001/1001.JPG"), line("metadata/2019000000000000")]
    columns = read_columns("m", 2, b"\n".join(lines[:-7]), "xxh3_128")  # the manifest itself is in order
    extra = [read_columns("m", 2, raw, "md5") for raw in lines[-7:]]
    for cols in [columns, *extra]:
        for row in range(len(cols)):
            parsed = parse_path(cols.path(row))
            assert cols.rank[row] == SUBSET_RANK[parsed.subset]
            assert cols.bucket[row] == (-1 if parsed.bucket is None else parsed.bucket)
            assert cols.keys[row] == pack(parsed)


VALID_BUT_NOT_CANONICAL = [
    b'{"path": "original/0000/1000.jpg","size":5,"mtime_ns":1,"xxh3_128":"%s","sha256":"%s","md5":"%s"}',
    b'{"size":5,"path":"original/0000/1000.jpg","mtime_ns":1,"xxh3_128":"%s","sha256":"%s","md5":"%s"}',
    b'{"path":"original/0000/caf\\u00e9.jpg","size":5,"mtime_ns":1,"xxh3_128":"%s","sha256":"%s","md5":"%s"}',
    b'{"path":"original/0000/1000.jpg","size":5,"mtime_ns":-0,"xxh3_128":"%s","sha256":"%s","md5":"%s"}',
    b'{"path":"original/0000/1000.jpg","size":5,"mtime_ns":1,"xxh3_128":"%s","sha256":"%s","md5":"%s"} ',
]


@pytest.mark.parametrize("template", VALID_BUT_NOT_CANONICAL)
def test_valid_lines_in_another_form_take_the_full_parse(template: bytes) -> None:
    raw = template % (DIGESTS["xxh3_128"].encode(), DIGESTS["sha256"].encode(), DIGESTS["md5"].encode())
    assert scan([raw], 1)[0] == b"\x00"
    assert _records.check_lines(raw) == (1, [(0, 0, len(raw))], 0)  # its size is summed by the full parse
    columns = read_columns("m", 2, raw, "sha256")
    record = parse_line("m", 2, raw)
    assert columns.paths[0] == record.path.encode() and columns.sizes[0] == 5
    assert columns.digests[0].tobytes() == bytes.fromhex(DIGESTS["sha256"])
    assert columns.mtimes[0] == record.mtime_ns


@pytest.mark.parametrize(
    ("raw", "needle"),
    [
        (line("original/0000/1000.jpg").replace(b"0f0f", b"0F0F", 1), "xxh3_128"),
        (line("original/0000/1000.jpg").replace(b'"size":5', b'"size":05'), "JSON"),
        (line("original/0000/1000.jpg").replace(b'"size":5', b'"size":-5'), "size"),
        (line("original/0000/1000.jpg").replace(b'"size":5', b'"size":99999999999999999999'), "too large"),
        (line("original/0000/1000.jpg", mtime_ns=-(2**70)), "out of range"),
        (line("../etc/passwd"), "unsafe path"),
        (line("original//1000.jpg"), "unsafe path"),
        (line("original/0000/1000.jpg")[:-1], "JSON"),
    ],
)
def test_bad_lines_get_the_full_parse_message_with_their_line(raw: bytes, needle: str) -> None:
    assert scan([raw], 1)[0] == b"\x00"
    with pytest.raises(ManifestFormatError) as info:
        read_columns("m", 7, line("original/0000/1000.jpg") + b"\n" + raw, "xxh3_128")
    assert info.value.line == 8 and needle in info.value.message


def test_whatever_the_c_side_accepts_pydantic_accepts_with_the_same_values() -> None:
    """Random byte edits of canonical lines: a line taken on the fast path must be one pydantic takes alike."""
    rng = random.Random(5)
    base = [line("original/0000/1000.jpg", 0), line("512px/0999/123999.jpg", 42, -7), line("a/b.c", 1)]
    alphabet = b'0123456789abcdefABCDEF./"\\:,{}- \x00\xc3\xa9xjpgorinal'
    accepted = 0
    for _ in range(4000):
        raw = bytearray(rng.choice(base))
        for _ in range(rng.randint(1, 3)):
            pos = rng.randrange(len(raw))
            action = rng.randrange(3)
            if action == 0:
                raw[pos] = rng.choice(alphabet)
            elif action == 1:
                del raw[pos]
            else:
                raw.insert(pos, rng.choice(alphabet))
        fast, paths, sizes, digests = scan([bytes(raw)], 2)
        _, slow, summed = _records.check_lines(bytes(raw))
        assert (fast == b"\x01") == (slow == [])
        if fast == b"\x01":
            accepted += 1
            record = parse_line("m", 2, bytes(raw))  # must not raise
            assert paths[0] == record.path.encode()
            assert int(np.frombuffer(sizes, np.int64)[0]) == record.size == summed
            assert digests == bytes.fromhex(record.sha256)
    assert accepted > 100  # the edits also hit digits and hex that stay valid


def test_layout_tokens_agree_with_parse_path_on_random_paths() -> None:
    rng = random.Random(9)
    parts = ["original", "512px", "metadata", "0000", "0123", "123", "01234", "1123", "0", "00", "1000.jpg"]
    parts += [f"{rng.randrange(10**13)}.{ext}" for ext in ("jpg", "png", "JPG", "exe", "", "jpg.jpg")]
    for _ in range(3000):
        path = "/".join(rng.choice(parts) for _ in range(rng.randint(1, 4)))
        columns = read_columns("m", 2, line(path), None)
        parsed = parse_path(path)
        assert (int(columns.rank[0]), int(columns.bucket[0]), int(columns.keys[0])) == (
            SUBSET_RANK[parsed.subset],
            -1 if parsed.bucket is None else parsed.bucket,
            pack(parsed),
        ), path
    assert set(EXTENSION_NAMES) == EXTENSIONS


def test_order_is_checked_within_and_across_chunks(tmp_path: Path) -> None:
    good = [line("original/0000/1000.jpg"), line("original/0000/1000.png"), line("original/0001/1001.jpg")]
    columns = read_columns("m", 2, b"\n".join(good), "xxh3_128")
    assert columns.sort_key(0) < columns.sort_key(1) < columns.sort_key(2)
    for bad, wrong_line in (([good[1], good[0], good[2]], 3), ([good[0], good[2], good[1]], 4), ([good[0]] * 2, 3)):
        with pytest.raises(ManifestFormatError, match="out of manifest order") as info:
            read_columns("m", 2, b"\n".join(bad), "xxh3_128")
        assert info.value.line == wrong_line
    # a record out of order across the decompressed chunks the reader cuts (4 MiB of lines)
    records = [line(f"original/{i % 1000:04d}/{i}.jpg") for i in range(1000, 30000)]
    head = {"format": "booru-release-manifest", "version": 1, "release": "r", "algorithms": ["xxh3_128"]}
    head |= {"files": len(records), "bytes": 5 * len(records), "subsets": {}}
    path = tmp_path / "m.jsonl"
    path.write_bytes(json.dumps(head).encode() + b"\n" + b"\n".join(records) + b"\n")
    first, chunk = next(ManifestReader(path).record_blocks())
    count = chunk.count(b"\n") + 1
    cut = first + count - 2  # index of the first chunk's last record
    assert cut < len(records) - 1
    records[cut], records[cut + 1] = records[cut + 1], records[cut]
    path.write_bytes(json.dumps(head).encode() + b"\n" + b"\n".join(records) + b"\n")
    assert next(ManifestReader(path).record_blocks())[1].count(b"\n") + 1 == count  # same cut
    assert prescan_paths(path).files == len(records)  # the order is not prescan's job
    with pytest.raises(ManifestFormatError, match="out of manifest order") as info:
        for _ in column_chunks(path, "xxh3_128"):
            pass
    assert info.value.line == cut + 3  # the first line of the second chunk
    with pytest.raises(ManifestFormatError, match="out of manifest order") as info:
        load_columns(path, "xxh3_128", workers=2)
    assert info.value.line == cut + 3


def _many_chunks(tmp_path: Path, records: list[bytes], **header: int) -> Path:
    head = {"format": "booru-release-manifest", "version": 1, "release": "r", "algorithms": ["xxh3_128"]}
    head |= {"files": len(records), "bytes": 5 * len(records), "subsets": {}} | header
    path = tmp_path / "m.jsonl"
    path.write_bytes(json.dumps(head).encode() + b"\n" + b"\n".join(records) + b"\n")
    return path


@pytest.mark.parametrize("workers", [1, 3])
def test_loaded_columns_hold_what_the_chunks_hold_in_compact_form(tmp_path: Path, workers: int) -> None:
    records = [line(f"original/{i % 1000:04d}/{i}.jpg", size=i) for i in range(1000, 60000)]
    records.insert(1, record_line("original/0000/1000.png", 5, 1, **DIGESTS).rstrip(b"\n").replace(b":", b": "))
    path = _many_chunks(tmp_path, records, bytes=sum(range(1000, 60000)) + 5)
    header, loaded = load_columns(path, "xxh3_128", workers)
    chunks = list(column_chunks(path, "xxh3_128"))
    assert header.files == len(records) and len(loaded) == len(chunks) > 2
    for got, want in zip(loaded, chunks, strict=True):
        assert got.first_line == want.first_line and got.paths == want.paths
        assert len(got.blob) == sum(map(len, want.paths)) < len(want.blob)  # only the paths are kept
        for name in ("sizes", "digests", "rank", "bucket", "keys", "mtimes"):
            assert np.array_equal(getattr(got, name), getattr(want, name)), name
        assert [got.path(n) for n in (0, len(got) - 1)] == [want.path(n) for n in (0, len(want) - 1)]


def test_loading_names_the_first_bad_line_and_checks_the_header_totals(tmp_path: Path) -> None:
    records = [line(f"original/{i % 1000:04d}/{i}.jpg") for i in range(1000, 60000)]
    for row in (50000, 30000):  # two bad lines in different chunks: the earlier one is named
        records[row] = line(f"original/../{row}.jpg")
    with pytest.raises(ManifestFormatError) as info:
        load_columns(_many_chunks(tmp_path, records), "xxh3_128", workers=4)
    assert info.value.line == 30000 + 2
    records = [line(f"original/{i % 1000:04d}/{i}.jpg") for i in range(1000, 60000)]
    with pytest.raises(ManifestFormatError, match="header announces 7 records"):
        load_columns(_many_chunks(tmp_path, records, files=7), None)
    with pytest.raises(ManifestFormatError, match="header announces 9 bytes"):
        load_columns(_many_chunks(tmp_path, records, bytes=9), None)


def test_count_entries_counts_every_non_directory_below(tmp_path: Path) -> None:
    (tmp_path / "a" / "b").mkdir(parents=True)
    (tmp_path / "a" / "b" / "f").write_bytes(b"x")
    (tmp_path / "g").write_bytes(b"")
    (tmp_path / "link").symlink_to(tmp_path / "a")  # a link to a folder is an entry, not followed
    (tmp_path / "empty").mkdir()
    assert _listing.count_entries(str(tmp_path)) == 3
    with pytest.raises(OSError) as info:
        _listing.count_entries(str(tmp_path / "missing"))
    assert info.value.filename == str(tmp_path / "missing")


def test_stat_only_checks_type_and_size_without_reading(tmp_path: Path) -> None:
    (tmp_path / "ok").write_bytes(b"12345")
    (tmp_path / "short").write_bytes(b"1")
    (tmp_path / "dir").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "ok")
    names = [b"ok", b"short", b"dir", b"link", b"missing"]
    got = read_files(str(tmp_path), names, [5] * 5, algorithms=(), hash_flags=STAT_ONLY * 5)
    assert [Code(c) for c in got.codes] == [Code.OK, Code.SIZE, Code.NOT_REGULAR, Code.NOT_REGULAR, Code.OPEN]
    assert got.nbytes == 0 and got.value(1) == 1
