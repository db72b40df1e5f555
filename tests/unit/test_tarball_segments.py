"""Segmented metadata tarballs: one valid .xz, the same bytes whether segments are copied or compressed."""

from __future__ import annotations

import hashlib
import json
import lzma
import os
import subprocess
import tarfile
from pathlib import Path

import pytest

from release import tarball
from release.metaarchive import write_metadata_tarball
from release.tarball import Reusable


def make_root(root: Path, years: dict[str, bytes]) -> None:
    for rel, data in years.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(data)


def test_segments_extract_as_one_archive_and_unchanged_years_are_copied(tmp_path: Path) -> None:
    old = {f"metadata/2017/20170000000000{i:02d}": json.dumps({"id": i}).encode() * 10_000 for i in range(3)}
    last = {f"metadata/2018/20180000000000{i:02d}": json.dumps({"id": 10 + i}).encode() * 10_000 for i in range(3)}
    make_root(tmp_path / "y2018", old | {f"metadata/{Path(k).name}": v for k, v in last.items()})
    first = tmp_path / "2018.tar.xz"
    _, segments = write_metadata_tarball(tmp_path / "y2018", first)
    assert [s.name for s in segments] == [*old, *(f"metadata/{Path(k).name}" for k in last)]  # each its own

    now = {"metadata/2019000000000000": b'{"id": 99}\n' * 300}
    make_root(tmp_path / "y2019", old | last | now)
    fresh, reused = tmp_path / "fresh.tar.xz", tmp_path / "reused.tar.xz"
    write_metadata_tarball(tmp_path / "y2019", fresh)
    reuse = Reusable(first, segments)
    write_metadata_tarball(tmp_path / "y2019", reused, reuse=[reuse])
    # every chunk of last year is copied: 2017's in place, 2018's though they moved into metadata/2018/
    assert reuse.copied_bytes == sum(s.raw_length for s in segments)
    assert reused.read_bytes() == fresh.read_bytes()
    with tarfile.open(reused) as tar:
        names = tar.getnames()
        member = tar.extractfile("metadata/2017/2017000000000001")
        assert member is not None and member.read() == old["metadata/2017/2017000000000001"]
    assert "metadata/2019000000000000" in names and "metadata/2018/2018000000000002" in names
    assert subprocess.run(["xz", "-t", str(reused)]).returncode == 0


@pytest.mark.parametrize("index", ["with stream digests", "older, without"])
def test_a_damaged_stream_of_last_year_is_compressed_again(tmp_path: Path, index: str) -> None:
    make_root(
        tmp_path / "r", {"metadata/2017/2017000000000000": os.urandom(3 << 20), "metadata/2018000000000000": b"y"}
    )
    first = tmp_path / "a.tar.xz"
    _, segments = write_metadata_tarball(tmp_path / "r", first)
    written = first.read_bytes()
    for seg in segments:  # the digest of each stream is of the bytes where the index says it lies
        assert seg.stream_sha256 == hashlib.sha256(written[seg.offset : seg.offset + seg.length]).hexdigest()
    if index != "with stream digests":  # checked by decompressing the stream instead
        segments = [s.model_copy(update={"stream_sha256": None}) for s in segments]
    data = bytearray(first.read_bytes())
    middle = segments[0].offset + segments[0].length // 2
    data[middle] ^= 0xFF
    first.write_bytes(bytes(data))
    again = tmp_path / "b.tar.xz"
    reuse = Reusable(first, segments)
    write_metadata_tarball(tmp_path / "r", again, reuse=[reuse])
    assert reuse.copied_bytes == 0  # the damaged stream was not copied
    fresh = tmp_path / "c.tar.xz"
    write_metadata_tarball(tmp_path / "r", fresh)
    assert again.read_bytes() == fresh.read_bytes()
    assert lzma.decompress(again.read_bytes())  # whole and valid


def test_a_member_longer_than_a_block_is_several_streams_the_same_on_any_core_count(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(tarball, "BLOCK", 1 << 16)
    body = b"".join(json.dumps({"id": i, "tags": ["a", str(i % 97)]}).encode() + b"\n" for i in range(20_000))
    make_root(tmp_path / "r", {"metadata/2019000000000000": body, "metadata/2018/2018000000000000": body[:70_000]})
    outputs = {}
    for cores in (1, 2, 5):
        monkeypatch.setattr(os, "cpu_count", lambda cores=cores: cores)
        outputs[cores] = tmp_path / f"{cores}.tar.xz"
        _, segments = write_metadata_tarball(tmp_path / "r", outputs[cores])
    data = outputs[1].read_bytes()
    assert outputs[2].read_bytes() == data and outputs[5].read_bytes() == data
    big = next(s for s in segments if s.name == "metadata/2019000000000000")
    assert data[big.offset : big.offset + big.length].count(b"\xfd7zXZ\x00") == -(-big.raw_length // (1 << 16))
    with tarfile.open(outputs[2]) as tar:
        member = tar.extractfile("metadata/2019000000000000")
        assert member is not None and member.read() == body
    again = tmp_path / "again.tar.xz"
    reuse = Reusable(outputs[1], segments)
    write_metadata_tarball(tmp_path / "r", again, reuse=[reuse])
    assert reuse.copied_bytes == sum(s.raw_length for s in segments) and again.read_bytes() == data
    assert subprocess.run(["xz", "-t", str(again)]).returncode == 0
