from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest
import xxhash

from release.hashing import ALL_ALGORITHMS, BATCH_FILES, READ_SIZE, HashEngine, batched, hash_path
from release.walk import FileTable, walk, walk_listings

BOUNDARY_SIZES = [0, 1, READ_SIZE - 1, READ_SIZE, READ_SIZE + 1, 2 * READ_SIZE + 7]


def expected(data: bytes) -> tuple[str, ...]:
    return (xxhash.xxh3_128(data).hexdigest(), hashlib.sha256(data).hexdigest(), hashlib.md5(data).hexdigest())


@pytest.mark.parametrize("size", BOUNDARY_SIZES)
def test_one_read_feeds_every_hash(tmp_path: Path, size: int) -> None:
    data = os.urandom(size)
    (tmp_path / "f").write_bytes(data)
    digests, nread, error = hash_path(str(tmp_path / "f"), ALL_ALGORITHMS)
    assert error is None and nread == size
    assert digests == expected(data)


def test_symlinks_are_never_followed(tmp_path: Path) -> None:
    (tmp_path / "target").write_bytes(b"x")
    (tmp_path / "link").symlink_to(tmp_path / "target")
    assert hash_path(str(tmp_path / "link"), ("md5",))[2] is not None
    os.mkfifo(tmp_path / "fifo")  # must not block
    assert hash_path(str(tmp_path / "fifo"), ("md5",)) == ((), 0, "not a regular file")


def _hash_names(names: list[str]) -> list[tuple[str, tuple[str, ...], str | None]]:
    root = _ROOT[0]
    return [(name, *hash_path(os.path.join(root, name), ("xxh3_128",))[::2]) for name in names]


_ROOT: list[str] = []


def _set_root(root: str) -> None:
    _ROOT[:] = [root]


@pytest.mark.parametrize("workers", [0, 2])
def test_engine_keeps_input_order_across_batches(tmp_path: Path, workers: int) -> None:
    count = BATCH_FILES * 2 + 5
    blobs = {f"f{i}": os.urandom(i % 97) for i in range(count)}
    for name, data in blobs.items():
        (tmp_path / name).write_bytes(data)
    names = [*blobs, "missing"]
    with HashEngine(workers, _set_root, (str(tmp_path),)) as engine:
        batches = list(batched(iter(names)))
        assert len(batches) == 3
        results = [r for batch in engine.map_batches(_hash_names, batches) for r in batch]
    assert [name for name, _, _ in results] == names
    for name, digests, error in results[:-1]:
        assert error is None and digests == (xxhash.xxh3_128(blobs[name]).hexdigest(),)
    assert results[-1][2] is not None


def test_walk_is_sorted_and_reports_kinds(tmp_path: Path) -> None:
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "2").write_bytes(b"22")
    (tmp_path / "b" / "1").write_bytes(b"1")
    (tmp_path / "a").write_bytes(b"")
    (tmp_path / "c").symlink_to("/etc")
    os.mkfifo(tmp_path / "d")
    entries = list(walk(str(tmp_path)))
    assert [(e.path, e.kind) for e in entries] == [
        ("a", "file"),
        ("b/1", "file"),
        ("b/2", "file"),
        ("c", "symlink"),
        ("d", "special"),
    ]
    assert entries[2].size == 2 and entries[3].detail == "/etc"


def test_file_table_sorts_into_manifest_order_with_ties_by_path() -> None:
    table = FileTable()
    paths = ["metadata/2019000000000000", "original/0001/1000.jpg", "original/0000/1000.jpg", "512px/0000/1000.jpg"]
    paths += ["original/0000/1000.png", "original/0000/5000.png", "zz", "original/0000/2000.png"]
    for i, path in enumerate(paths):
        table.add(path, i, i * 10)
    rows = list(table.sorted_rows())
    assert [r[0] for r in rows] == [
        "original/0000/1000.jpg",
        "original/0000/1000.png",
        "original/0001/1000.jpg",
        "original/0000/2000.png",
        "original/0000/5000.png",
        "512px/0000/1000.jpg",
        "metadata/2019000000000000",
        "zz",
    ]
    assert rows[0][:3] == ("original/0000/1000.jpg", 2, 20)
    assert table.total_bytes() == sum(range(len(paths)))
    assert table.subset_totals()[0] == (5, 1 + 2 + 4 + 5 + 7)


@pytest.mark.parametrize("batch", [1, 2, 64])
def test_walk_listings_give_the_walks_entries_in_its_order(tmp_path: Path, batch: int) -> None:
    files = ["0", "a/0/x", "a/1/y/z", "a/1/y/zz", "a/2", "a/3/w", "a/4/v", "a/5", "b", "c/d/e/f/g", "e/1/1", "z"]
    for rel in files:
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_bytes(rel.encode())
    (tmp_path / "a" / "empty").mkdir()
    (tmp_path / "a" / "1" / "link").symlink_to("../../b")
    os.mkfifo(tmp_path / "e" / "fifo")
    (tmp_path / "e" / "1").joinpath(os.fsdecode(b"bad\xff")).write_bytes(b"x")
    walked = [(e.path, e.kind, e.size, e.mtime_ns, e.detail) for e in walk(str(tmp_path))]
    listed = [
        (e.path, e.kind, e.size, e.mtime_ns, e.detail)
        for listing in walk_listings(str(tmp_path), batch)
        for e in (listing.entry(row, str(tmp_path)) for row in range(len(listing.kinds)))
    ]
    assert listed == walked
    assert {"file", "symlink", "special", "undecodable"} <= {kind for _, kind, *_ in walked}
