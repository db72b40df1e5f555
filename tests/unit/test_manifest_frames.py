"""A `.zst` manifest is a run of zstd frames of whole lines, cut where the bytes say (never where the writes
happened to end), and readers decompress the frames side by side."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import zstandard

import release.manifest.io as manifest_io
from release.atomic import atomic_output
from release.blocks import CompressedBlocks, OrderedOutput, compress_pool
from release.errors import ManifestFormatError
from release.manifest.columns import load_columns
from release.manifest.io import (
    ManifestReader,
    ManifestWriter,
    prescan_paths,
    record_line,
    validate_manifest,
    zstd_frames,
)
from release.models import ManifestRecord
from tests.conftest import Dataset, zstd_content

FRAME = 300  # small frames: a test manifest of a few hundred records becomes dozens of them


def _records(dataset: Dataset) -> tuple[ManifestReader, list[ManifestRecord]]:
    reader = ManifestReader(dataset.manifests[2019])
    return reader, list(reader)


def _framed(tmp_path: Path, dataset: Dataset, name: str, write: Callable[[ManifestWriter, bytes], None]) -> Path:
    reader, records = _records(dataset)
    lines = b"".join(record_line(**r.model_dump()) for r in records)
    path = tmp_path / name
    with ManifestWriter(path, reader.header) as writer:
        write(writer, lines)
    return path


def _contents(path: Path) -> tuple[list[manifest_io.Frame], list[bytes]]:
    data = path.read_bytes()
    with open(path, "rb") as handle:
        frames, whole, damage = zstd_frames(handle)
    assert frames is not None and (whole, damage) == (len(data), None)
    return frames, [zstandard.ZstdDecompressor().decompress(data[f.start : f.end]) for f in frames]


def _by_line(writer: ManifestWriter, lines: bytes) -> None:
    for line in lines.splitlines(keepends=True):
        writer.write_line(line)


def _in_odd_pieces(writer: ManifestWriter, lines: bytes) -> None:
    for start in range(0, len(lines), 997):  # pieces that end mid-line
        writer.write_line(lines[start : start + 997])


def _at_once(writer: ManifestWriter, lines: bytes) -> None:
    writer.write_line(lines)


def test_frames_hold_whole_lines_and_do_not_depend_on_the_writes(
    dataset: Dataset, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(manifest_io, "FRAME", FRAME)
    paths = [_framed(tmp_path, dataset, f"{w.__name__}.jsonl.zst", w) for w in (_by_line, _in_odd_pieces, _at_once)]
    assert len({p.read_bytes() for p in paths}) == 1
    frames, contents = _contents(paths[0])
    assert len(frames) > 10
    assert [f.content_size for f in frames] == [len(c) for c in contents]
    for content in contents[:-1]:  # a frame is FRAME bytes, then the rest of the line it stopped in
        assert content.endswith(b"\n") and FRAME <= len(content) < FRAME + 1024
        assert b"\n" not in content[FRAME - 1 : -1]
    assert b"".join(contents) == zstd_content(dataset.manifests[2019])


@pytest.fixture
def framed(dataset: Dataset, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The 2019 manifest written again in frames of FRAME bytes."""
    monkeypatch.setattr(manifest_io, "FRAME", FRAME)
    return _framed(tmp_path, dataset, "m.jsonl.zst", _at_once)


def test_every_reader_reads_a_framed_manifest(dataset: Dataset, framed: Path) -> None:
    path = framed
    _, records = _records(dataset)
    assert list(ManifestReader(path)) == records
    assert validate_manifest(path).files == prescan_paths(path).files == len(records)
    header, chunks = load_columns(path, "xxh3_128", workers=2)
    assert [p.decode() for c in chunks for p in c.paths] == [r.path for r in records]
    assert header.files == len(records) and len(chunks) > 10  # a block per frame


def test_frames_are_decompressed_side_by_side_unless_one_is_too_big(
    dataset: Dataset, framed: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path, records = framed, len(_records(dataset)[1])

    def refuse(frame: bytes) -> bytes:
        raise AssertionError("decompressed whole")

    monkeypatch.setattr(manifest_io, "_decompress_frame", refuse)
    with pytest.raises(AssertionError, match="decompressed whole"):
        validate_manifest(path)
    monkeypatch.setattr(manifest_io, "MAX_FRAMES", 3)  # more frames than this: the stream reader
    assert validate_manifest(path).files == records
    monkeypatch.setattr(manifest_io, "MAX_FRAMES", 1 << 16)
    monkeypatch.setattr(manifest_io, "MAX_FRAME", FRAME // 2)  # a frame bigger than this: the stream reader
    assert validate_manifest(path).files == records


def test_a_damaged_frame_is_named_at_its_first_line(framed: Path, tmp_path: Path) -> None:
    path = framed
    frames, contents = _contents(path)
    damaged = bytearray(path.read_bytes())
    for at in (5, len(frames) - 1):
        bad = bytearray(damaged)
        bad[frames[at].end - 1] ^= 0xFF  # the frame's checksum: every byte decodes, the checksum does not match
        broken = tmp_path / f"broken-{at}.jsonl.zst"
        broken.write_bytes(bytes(bad))
        with pytest.raises(ManifestFormatError, match="corrupt zstd stream") as info:
            validate_manifest(broken)
        assert info.value.line == sum(c.count(b"\n") for c in contents[:at]) + 1


def test_blocks_are_cut_where_the_bytes_say() -> None:
    data = b"".join(b"x" * (n % 7) + b"\n" for n in range(500))

    def blocks(pieces: list[bytes], boundary: bytes | None) -> list[bytes]:
        written: list[bytes] = []
        with ThreadPoolExecutor(2) as pool:
            out = OrderedOutput(written.append, limit=1)
            cut = CompressedBlocks(out, pool, 64, bytes, boundary)
            for piece in pieces:
                cut.write(piece)
            cut.close()
            out.finish()
        return written

    splits = [
        [data],
        [data[i : i + 1] for i in range(len(data))],
        [data[i : i + 100] for i in range(0, len(data), 100)],
    ]
    exact = [blocks(pieces, None) for pieces in splits]
    assert exact[0] == exact[1] == exact[2] and b"".join(exact[0]) == data
    assert {len(b) for b in exact[0][:-1]} == {64}
    lines = [blocks(pieces, b"\n") for pieces in splits]
    assert lines[0] == lines[1] == lines[2] and b"".join(lines[0]) == data
    # each ends at the first newline from its 64th byte on
    assert all(b.endswith(b"\n") and len(b) >= 64 and b"\n" not in b[63:-1] for b in lines[0][:-1])
    assert blocks([], b"\n") == [b""]  # at least one block


def test_an_error_does_not_wait_for_the_blocks_being_compressed(tmp_path: Path) -> None:
    # a SIGTERM'd cut child unwinds through here: its temporary must go before a long xz block is done
    release = threading.Event()
    target = tmp_path / "out.xz"

    def slow(data: bytes) -> bytes:
        release.wait(30)
        return data

    started = time.monotonic()
    with pytest.raises(SystemExit), atomic_output(target) as raw, compress_pool(1) as pool:
        out = OrderedOutput(raw.write)
        CompressedBlocks(out, pool, 4, slow).write(b"12345678")
        raise SystemExit(143)
    assert time.monotonic() - started < 10
    assert list(tmp_path.iterdir()) == []  # no temporary left, no output
    release.set()
