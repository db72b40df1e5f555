"""Small files read through io_uring (release/_ring.c) give what the plain reads give, in every case.

The ring reads a window of files in flight and takes them back in file order; any file it did not read whole
and of its size is read again the plain way. These tests put every kind of file, and folder changes, inside
one window, and compare the two paths field by field.
"""

from __future__ import annotations

import hashlib
import os
import random
from pathlib import Path

import numpy as np
import pytest
import xxhash

from release import _native
from release.hashing import ALL_ALGORITHMS, RING_BY_DEFAULT, Code, FilesRead, read_files

SLOT = _native.RING_SLOT_SIZE


@pytest.fixture(autouse=True)
def ring_available() -> None:
    """Skip where the kernel refuses io_uring (asked with the ring allowed: BOORU_RELEASE_IO_URING=0 only
    changes the default, which each test sets for itself)."""
    _native.use_ring(True)
    try:
        available = _native.has_ring()
    finally:
        _native.use_ring(RING_BY_DEFAULT)
    if not available:
        pytest.skip("this kernel (or its sandbox) refuses io_uring")


def _read(ring: bool, root: Path, names: list[bytes], sizes: list[int], **options: object) -> tuple[FilesRead, int]:
    """read_files with the ring on or off, and how many files went through a ring."""
    _native.use_ring(ring)
    try:
        before = _native.ring_files()
        got = read_files(str(root), names, sizes, **options)  # type: ignore[arg-type]
        return got, _native.ring_files() - before
    finally:
        _native.use_ring(RING_BY_DEFAULT)


def _digests(data: bytes) -> tuple[str, ...]:
    return (xxhash.xxh3_128(data).hexdigest(), hashlib.sha256(data).hexdigest(), hashlib.md5(data).hexdigest())


def test_only_small_hashed_files_go_through_the_ring(tmp_path: Path) -> None:
    sizes = [1, SLOT - 1, SLOT, SLOT + 1, 0, 100]
    blobs = [os.urandom(size) for size in sizes]
    for n, data in enumerate(blobs):
        (tmp_path / str(n)).write_bytes(data)
    names = [str(n).encode() for n in range(len(sizes))]
    flags = b"\x01\x01\x01\x01\x01\x02"  # the last is only checked (lstat)
    before = _native.ring_bytes()
    got, through = _read(True, tmp_path, names, sizes, hash_flags=flags)
    assert through == 2  # 1 byte and SLOT - 1 bytes: the read asks one byte more than the size
    assert _native.ring_bytes() - before == SLOT  # the cut counts these beside /proc/self/io's read calls
    assert [got.hex_digests(n) for n in range(5)] == [_digests(data) for data in blobs[:5]]
    assert got.codes == bytes(6)
    plain, none = _read(False, tmp_path, names, sizes, hash_flags=flags)
    assert none == 0 and plain == got


def _mixed_tree(root: Path) -> tuple[list[bytes], list[int], dict[bytes, bytes]]:
    """Files in three folders and the root, listed interleaved (a folder change every few files), with every
    kind of failure among them."""
    rng = random.Random(5)
    names: list[bytes] = []
    sizes: list[int] = []
    content: dict[bytes, bytes] = {}
    for folder in ("a", "b", "c"):
        (root / folder).mkdir()
    for n in range(120):
        folder = ("a", "a", "b", "c", "")[n % 5]
        name = f"{folder}/{n}" if folder else f"{n}"
        size = rng.choice([1, 2, 100, 4095, 4096, SLOT - 1, SLOT, 3 * SLOT, rng.randrange(1, 20_000)])
        data = rng.randbytes(size)
        (root / name).write_bytes(data)
        names.append(name.encode())
        sizes.append(size)
        content[name.encode()] = data
    for k in range(6):  # the same names and sizes in two folders, listed alternately
        for folder in ("a", "b"):
            name = f"{folder}/twin{k}"
            data = rng.randbytes(50 + k)
            (root / name).write_bytes(data)
            names.append(name.encode())
            sizes.append(len(data))
            content[name.encode()] = data
    (root / "a" / "grown").write_bytes(b"123456")
    (root / "a" / "shrunk").write_bytes(b"12")
    (root / "b" / "target").write_bytes(b"x")
    (root / "b" / "link").symlink_to(root / "b" / "target")
    os.mkfifo(root / "b" / "fifo")
    (root / "c" / "dir").mkdir()
    (root / "c" / "empty").write_bytes(b"")
    odd = {
        b"a/grown": 5,
        b"a/shrunk": 3,
        b"b/link": 1,
        b"b/fifo": 1,
        b"c/dir": 1,
        b"c/missing": 7,
        b"nowhere/x": 7,
        b"c/empty": 0,
    }
    for k, (name, size) in enumerate(odd.items()):  # spread through the window
        at = 7 + 13 * k
        names.insert(at, name)
        sizes.insert(at, size)
    return names, sizes, content


def test_ring_and_plain_reads_agree_on_every_kind_of_file(tmp_path: Path) -> None:
    names, sizes, content = _mixed_tree(tmp_path)
    mtimes = np.arange(len(names), dtype=np.int64) * 1_000_000_007
    # in jobs of a window or so: after a file the ring missed, a job reads the rest the plain way
    got: list[FilesRead] = []
    through = 0
    for at in range(0, len(names), 20):
        cut = slice(at, at + 20)
        ring, count = _read(True, tmp_path, names[cut], sizes[cut], mtimes=mtimes[cut])
        plain, _ = _read(False, tmp_path, names[cut], sizes[cut], mtimes=mtimes[cut])
        assert ring == plain  # digests, codes and details, bytes read, record lines
        got.append(ring)
        through += count
    assert through > 60
    codes = dict(zip(names, (Code(c) for job in got for c in job.codes), strict=True))
    assert [codes[name] for name in (b"a/grown", b"a/shrunk", b"b/link", b"b/fifo", b"c/dir")] == [
        Code.SIZE,
        Code.SIZE,  # found smaller before the read (SHORT is for a file that shrinks while being read)
        Code.OPEN,
        Code.NOT_REGULAR,
        Code.NOT_REGULAR,
    ]
    assert codes[b"c/missing"] == codes[b"nowhere/x"] == Code.OPEN and codes[b"c/empty"] == Code.OK
    for n, name in enumerate(names):
        if name in content:
            assert got[n // 20].hex_digests(n % 20) == _digests(content[name]), name


def test_after_a_miss_the_job_reads_the_plain_way(tmp_path: Path) -> None:
    """A file the ring could not read (here: missing; in a cold tree: not cached) ends the ring's part of the
    job: only the chains already in flight come back from it."""
    names = [f"{n}".encode() for n in range(100)]
    for name in names[1:]:
        (tmp_path / name.decode()).write_bytes(name)
    sizes = [len(name) for name in names]
    got, through = _read(True, tmp_path, names, sizes)
    assert got.codes == bytes([Code.OPEN]) + bytes(99)
    assert 0 < through < 16


def test_piece_stream_through_the_ring_starts_at_each_files_offset(tmp_path: Path) -> None:
    sizes = [5000, 7000, 300, 1, 9000]
    blobs = [os.urandom(size) for size in sizes]
    for n, data in enumerate(blobs):
        (tmp_path / f"{n}").write_bytes(data)
    names = [f"{n}".encode() for n in range(len(sizes))]
    starts = [4096, 0, 0, 0, 0]
    stream = blobs[0][4096:] + b"".join(blobs[1:])
    length = 4096
    span = (4096, 4096 + len(stream), length)
    got, through = _read(True, tmp_path, names, sizes, starts=starts, span=span, algorithms=ALL_ALGORITHMS)
    assert through == len(sizes)
    whole = len(stream) // length * length
    assert got.pieces == b"".join(hashlib.sha1(stream[i : i + length]).digest() for i in range(0, whole, length))
    assert got.tail == stream[whole:] and got.head == b""
    assert got == _read(False, tmp_path, names, sizes, starts=starts, span=span, algorithms=ALL_ALGORITHMS)[0]


def test_a_forked_child_reads_through_a_ring_of_its_own(tmp_path: Path) -> None:
    """A ring has one submitting task: a child made by fork (multiprocessing) must not use its parent's."""
    sizes = [10, 20, 30]
    for n, size in enumerate(sizes):
        (tmp_path / f"{n}").write_bytes(bytes([n]) * size)
    names = [f"{n}".encode() for n in range(3)]
    parent, through = _read(True, tmp_path, names, sizes)  # this thread's ring exists now
    assert through == 3
    reader, writer = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        try:
            os.close(reader)
            child, count = _read(True, tmp_path, names, sizes)
            os.write(writer, b"%d %s" % (count, child.digests.hex().encode()))
        finally:
            os._exit(0)
    os.close(writer)
    with os.fdopen(reader, "rb") as answer:
        count, digests = answer.read().split()
    os.waitpid(pid, 0)
    assert int(count) == 3 and digests.decode() == parent.digests.hex()
