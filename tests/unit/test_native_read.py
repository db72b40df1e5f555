"""The native read loop (release/_native.c) against hashlib/xxhash, file by file and code by code.

Every test runs twice: with small files read through io_uring (release/_ring.c) and with plain system calls.
"""

from __future__ import annotations

import errno
import hashlib
import os
import stat
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import xxhash

from release import _native
from release.hashing import ALL_ALGORITHMS, DIGEST_BYTES, READ_SIZE, RING_BY_DEFAULT, Code, read_files


@pytest.fixture(autouse=True, params=["ring", "plain"])
def path(request: pytest.FixtureRequest) -> Iterator[str]:
    """Which way small files are read; the ring is skipped where the kernel refuses io_uring."""
    _native.use_ring(request.param == "ring")
    try:
        if request.param == "ring" and not _native.has_ring():
            pytest.skip("this kernel (or its sandbox) refuses io_uring")
        yield request.param
    finally:
        _native.use_ring(RING_BY_DEFAULT)


def _reference(data: bytes) -> tuple[str, ...]:
    return (xxhash.xxh3_128(data).hexdigest(), hashlib.sha256(data).hexdigest(), hashlib.md5(data).hexdigest())


def _write(folder: Path, sizes: list[int]) -> tuple[list[bytes], list[bytes]]:
    names, blobs = [], []
    for n, size in enumerate(sizes):
        data = os.urandom(size)
        (folder / f"{n}.bin").write_bytes(data)
        names.append(f"{n}.bin".encode())
        blobs.append(data)
    return names, blobs


def test_a_batch_gives_every_digest_of_every_file(tmp_path: Path) -> None:
    sizes = [0, 1, 63, 64, 65, READ_SIZE - 1, READ_SIZE, READ_SIZE + 1, 3 * READ_SIZE + 5]
    names, blobs = _write(tmp_path, sizes)
    got = read_files(str(tmp_path), names, sizes)
    assert got.codes == bytes(len(sizes))
    assert got.nbytes == sum(sizes)
    for n, data in enumerate(blobs):
        assert got.hex_digests(n) == _reference(data)


@pytest.mark.parametrize("algorithm", ALL_ALGORITHMS)
def test_one_algorithm_alone_packs_only_its_digest(tmp_path: Path, algorithm: str) -> None:
    names, blobs = _write(tmp_path, [10, 100_000])
    got = read_files(str(tmp_path), names, [10, 100_000], algorithms=(algorithm,))
    index = ALL_ALGORITHMS.index(algorithm)
    assert len(got.digests) == 2 * DIGEST_BYTES[algorithm]
    assert [got.hex_digests(n, (algorithm,))[0] for n in range(2)] == [_reference(data)[index] for data in blobs]


def test_every_failure_is_reported_with_its_detail_and_no_digest(tmp_path: Path) -> None:
    (tmp_path / "ok").write_bytes(b"abc")
    (tmp_path / "grown").write_bytes(b"12345")
    (tmp_path / "target").write_bytes(b"x")
    (tmp_path / "link").symlink_to(tmp_path / "target")
    os.mkfifo(tmp_path / "fifo")  # must not block
    (tmp_path / "dir").mkdir()
    names = [b"ok", b"missing", b"link", b"fifo", b"dir", b"grown", b"dir/none"]
    got = read_files(str(tmp_path), names, [3, 1, 1, 0, 0, 4, 1])
    codes = [Code(c) for c in got.codes]
    assert codes == [Code.OK, Code.OPEN, Code.OPEN, Code.NOT_REGULAR, Code.NOT_REGULAR, Code.SIZE, Code.OPEN]
    assert [got.value(n) for n in (1, 2, 5, 6)] == [errno.ENOENT, errno.ELOOP, 5, errno.ENOENT]
    assert stat.S_ISFIFO(got.value(3)) and stat.S_ISDIR(got.value(4))
    assert got.digests[64:] == bytes(64 * 6)
    assert got.nbytes == 3


def test_files_flagged_out_are_not_even_opened(tmp_path: Path) -> None:
    got = read_files(str(tmp_path), [b"missing"], [5], hash_flags=b"\x00")
    assert got.codes == b"\x00" and got.nbytes == 0


def test_a_missing_root_is_an_os_error(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        read_files(str(tmp_path / "nowhere"), [b"a"], [1])


def test_piece_bytes_start_at_each_files_offset(tmp_path: Path) -> None:
    """A file whose first bytes are reused from last year feeds the stream only from its start offset."""
    names, blobs = _write(tmp_path, [5000, 7000, 3000])
    length = 4096
    starts = [4096, 0, 0]  # the stream starts at a piece boundary inside the first file
    stream = blobs[0][4096:] + blobs[1] + blobs[2]
    got = read_files(
        str(tmp_path),
        names,
        [5000, 7000, 3000],
        algorithms=(),
        hash_flags=bytes(3),
        starts=starts,
        span=(4096, 4096 + len(stream), length),
    )
    whole = len(stream) // length * length
    assert got.head == b""
    assert got.pieces == b"".join(hashlib.sha1(stream[i : i + length]).digest() for i in range(0, whole, length))
    assert got.tail == stream[whole:]
    assert got.nbytes == len(stream)


def test_threads_share_the_module_safely(tmp_path: Path) -> None:
    sizes = [n * 997 % 50_000 for n in range(200)]
    names, blobs = _write(tmp_path, sizes)
    expected = [_reference(data) for data in blobs]

    def run(_: int) -> list[tuple[str, ...]]:
        got = read_files(str(tmp_path), names, sizes)
        return [got.hex_digests(n) for n in range(len(names))]

    with ThreadPoolExecutor(4) as pool:
        assert all(result == expected for result in pool.map(run, range(8)))


def test_bad_arguments_are_errors_not_crashes(tmp_path: Path) -> None:
    from release import _native

    with pytest.raises(ValueError):
        _native.read_group(str(tmp_path), [b"a"], b"\x00" * 7, None, b"\x01", 1, 0, 0, 0)
    with pytest.raises(ValueError):
        _native.read_group(str(tmp_path), [b"a"], b"\x00" * 8, None, b"", 1, 0, 0, 0)
    with pytest.raises(TypeError):
        _native.read_group(str(tmp_path), ["a"], b"\x00" * 8, None, b"\x01", 1, 0, 0, 0)
