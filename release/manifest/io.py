"""Reading and writing manifest files (zstd-compressed JSON lines, header first).

A name ending in `.zst` is written zstd-compressed; any other name is written as plain JSON lines.
Reading detects the compression from the magic bytes. Readers validate every line, the schema
version and the record order, and name the file and line of any fault.

Records are serialised by `record_line`, byte-identical to pydantic's `model_dump_json` (a test
holds them together) but cheap enough to run millions of times.
"""

from __future__ import annotations

import contextlib
import io
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO, NamedTuple, cast

import zstandard
from pydantic import ValidationError

from release import _records
from release.atomic import OutputSet, atomic_output
from release.blocks import CompressedBlocks, OrderedOutput, compress_pool
from release.errors import InputIOError, ManifestFormatError, SchemaVersionError
from release.hashing import HashEngine, default_workers
from release.layout import sort_key
from release.models import MANIFEST_FORMAT, MANIFEST_VERSION, ManifestHeader, ManifestRecord
from release.textio import MAX_MANIFEST_LINE, LineTooLong, loads

ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
# level 1, not the default 3: on a million-record manifest it compresses 2.5x faster (0.70 s vs 1.76 s)
# and smaller (81.8 MB vs 89.2 MB): hex digests leave little for the slower match finder to find
ZSTD_LEVEL = 1
ORDER_PROBLEM = "record is out of manifest order or repeated"

Line = tuple[int, bytes]  # (line number, raw JSON line)
SortKey = tuple[int, list[str]]  # layout.sort_key
_PLAIN = re.compile(r"[ !#-\[\]-~]*")  # printable ASCII but '"' and '\\': JSON needs no escapes


def record_line(path: str, size: int, mtime_ns: int, xxh3_128: str, sha256: str, md5: str) -> bytes:
    """One manifest record as its canonical JSON line (with the newline)."""
    quoted = f'"{path}"' if _PLAIN.fullmatch(path) else json.dumps(path, ensure_ascii=False)
    return (
        f'{{"path":{quoted},"size":{size},"mtime_ns":{mtime_ns},'
        f'"xxh3_128":"{xxh3_128}","sha256":"{sha256}","md5":"{md5}"}}\n'
    ).encode("utf-8", "surrogateescape")


class ManifestWriter:
    """Writes a header then records to `<path>`, atomically (with `outputs`: when that set commits); use as a
    context manager. A `.zst` manifest is a run of zstd frames of whole lines, FRAME bytes and the rest of a
    line each, compressed on a thread beside the writer's (one: level 1 keeps up with any read pass, and each
    frame in flight holds megabytes); readers decompress frames beside the parsing of their lines."""

    def __init__(self, path: Path | str, header: ManifestHeader, outputs: OutputSet | None = None) -> None:
        self.path = Path(path)
        self.header = header
        self._outputs = outputs
        self._stack = contextlib.ExitStack()
        self._out: BinaryIO | CompressedBlocks | None = None

    def __enter__(self) -> ManifestWriter:
        raw = self._stack.enter_context(atomic_output(self.path, self._outputs))
        if self.path.suffix == ".zst":
            ordered = OrderedOutput(raw.write, limit=1)
            frames = CompressedBlocks(ordered, self._stack.enter_context(compress_pool(1)), FRAME, _zstd_frame, b"\n")

            def flush(exc_type: object, exc: object, tb: object) -> None:  # the frames still queued
                if exc_type is None:
                    frames.close()
                    ordered.finish()

            self._stack.push(flush)  # first on exit: a failed write (a full disk) meets atomic_output
            self._out = frames
        else:
            self._out = raw
        self._out.write(self.header.model_dump_json().encode() + b"\n")
        return self

    def write_line(self, line: bytes) -> None:
        """Append record line(s) from `record_line` (records must come in manifest order)."""
        assert self._out is not None
        self._out.write(line)

    def write(self, record: ManifestRecord) -> None:
        """Append one record."""
        self.write_line(record_line(**record.model_dump()))

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        self._stack.__exit__(exc_type, exc, tb)  # type: ignore[arg-type]  # ExitStack wants exact types


def _zstd_frame(data: bytes) -> bytes:
    # the content size in the frame header lets a reader decompress it in one call, into a buffer of that size
    return zstandard.ZstdCompressor(level=ZSTD_LEVEL, write_checksum=True).compress(data)  # damage is detected


CHUNK = 1 << 22
FRAME = CHUNK  # a frame of a manifest we write: this many bytes, then the rest of the line
# frames announcing at most this much are decompressed whole, side by side; others (an unknown or a larger
# size: another writer's) are streamed CHUNK bytes at a time
MAX_FRAME = 2 * CHUNK
MAX_FRAMES = 1 << 16  # 256 GiB of lines in our frames; a file of more frames is streamed
TRUNCATED = "truncated zstd stream: the file ends in the middle of a frame (an interrupted copy?)"


class _Limited(io.RawIOBase):
    """The first `size` bytes of a file: the decoder never sees what follows the last whole frame."""

    def __init__(self, handle: BinaryIO, size: int) -> None:
        self._handle, self._left = handle, size

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        data = self._handle.read(min(len(buffer), self._left))
        buffer[: len(data)] = data
        self._left -= len(data)
        return len(data)


def _decompressed(handle: BinaryIO, name: str, lines_so_far: list[int]) -> Iterator[bytes]:
    """The decompressed bytes of a zstd stream, a frame or CHUNK bytes at a time whatever the compression ratio
    (a bomb of one huge line is refused by the line length, never held whole); a corrupt or truncated stream
    is a ManifestFormatError at the line where the damage begins."""
    frames, whole, damage = zstd_frames(handle)  # the frames' structure, from their headers alone
    try:
        if frames:
            yield from _side_by_side(handle, frames)
        else:
            handle.seek(0)
            limited = cast(BinaryIO, _Limited(handle, whole))
            reader = zstandard.ZstdDecompressor().stream_reader(limited, read_size=1 << 16, read_across_frames=True)
            while chunk := reader.read(CHUNK):
                yield chunk
    except zstandard.ZstdError as exc:
        raise ManifestFormatError(name, lines_so_far[0] + 1, f"corrupt zstd stream ({exc})") from exc
    if damage is not None:
        raise ManifestFormatError(name, lines_so_far[0] + 1, damage)


def _side_by_side(handle: BinaryIO, frames: list[Frame]) -> Iterator[bytes]:
    """Each frame's content, in order, decompressed whole on threads of their own (zstd releases the GIL)."""

    def compressed() -> Iterator[bytes]:
        for frame in frames:
            handle.seek(frame.start)
            yield handle.read(frame.end - frame.start)

    # half the cores, a frame ahead each: a frame decompresses in a third of the time its lines take to parse on
    # the other threads, and each frame more in flight (or thread: its own malloc arena) holds megabytes more
    threads = max(1, default_workers() // 2)
    with HashEngine(threads, threads=True) as engine:
        yield from engine.map_batches(_decompress_frame, compressed(), inflight=threads)


def _decompress_frame(frame: bytes) -> bytes:
    # into a buffer of the size the header announces: more content, or a wrong checksum, is a ZstdError
    return zstandard.ZstdDecompressor().decompress(frame)


class Frame(NamedTuple):
    """A whole zstd frame of a file: where it starts and ends, and the content size its header announces."""

    start: int
    end: int
    content_size: int | None


def zstd_frames(handle: BinaryIO) -> tuple[list[Frame] | None, int, str | None]:
    """The whole zstd frames of a file (skippable frames left out), where the last whole frame ends, and what
    follows it: None (the end of the file), or the damage (a frame cut short, or bytes that are no frame).
    Reads frame and block headers only (RFC 8878). The frames are None unless every one can be decompressed
    whole: its header announces at most MAX_FRAME bytes, and there are at most MAX_FRAMES of them."""
    handle.seek(0, io.SEEK_END)
    end = handle.tell()
    pos = 0
    frames: list[Frame] | None = []
    while pos < end:
        handle.seek(pos)
        head = handle.read(8)  # a frame's magic and descriptor, or a skippable frame's magic and size
        magic = int.from_bytes(head[:4], "little")
        if len(head) == 8 and magic & 0xFFFFFFF0 == 0x184D2A50:  # a skippable frame
            pos += 8 + int.from_bytes(head[4:8], "little")
            continue
        if len(head) < 5 or head[:4] != ZSTD_MAGIC:
            return frames, pos, f"corrupt zstd stream: {end - pos} bytes after the last frame are not zstd"
        frame = _frame(handle, pos, head[4])
        if frame is None or frame.end > end:
            return frames, pos, TRUNCATED
        size = frame.content_size
        if frames is not None and size is not None and size <= MAX_FRAME and len(frames) < MAX_FRAMES:
            frames.append(frame)
        else:
            frames = None  # streamed instead; a file of a million tiny frames is not held as a list either
        pos = frame.end
    return frames, pos, None


def _frame(handle: BinaryIO, start: int, descriptor: int) -> Frame | None:
    single = bool(descriptor & 0x20)
    size_bytes = ((1 if single else 0), 2, 4, 8)[descriptor >> 6]
    pos = start + 5 + (0 if single else 1) + (0, 1, 2, 4)[descriptor & 3]
    handle.seek(pos)
    field = handle.read(size_bytes)
    if len(field) < size_bytes:
        return None
    content_size = int.from_bytes(field, "little") + (256 if size_bytes == 2 else 0) if size_bytes else None
    pos += size_bytes
    last = False
    while not last:
        handle.seek(pos)
        block = handle.read(3)
        if len(block) < 3:
            return None
        header = int.from_bytes(block, "little")
        last, kind, size = bool(header & 1), (header >> 1) & 3, header >> 3
        pos += 3 + (1 if kind == 1 else size)
    return Frame(start, pos + (4 if descriptor & 0x04 else 0), content_size)


def _open_chunks(path: Path, lines_so_far: list[int]) -> Iterator[bytes]:
    """The decompressed bytes of a manifest in chunks of about CHUNK bytes (`lines_so_far[0]`: the caller's
    count of complete lines, for naming where a damaged stream breaks)."""
    try:
        handle = open(path, "rb")
    except OSError as exc:
        raise InputIOError(str(path), f"cannot open manifest: {exc.strerror}") from exc
    with handle:
        compressed = handle.read(4) == ZSTD_MAGIC
        handle.seek(0)
        if compressed:
            yield from _decompressed(handle, str(path), lines_so_far)
            return
        while chunk := handle.read(CHUNK):
            yield chunk


def _line_blocks(path: Path) -> Iterator[tuple[int, bytes]]:
    """The decompressed manifest as blocks of whole lines (without the block's last newline), each with its
    number of lines; a line longer than MAX_MANIFEST_LINE is refused before it can fill memory (a
    decompression bomb is one huge line)."""
    rest = b""
    lines = [0]
    for chunk in _open_chunks(path, lines):
        data = rest + chunk
        cut = data.rfind(b"\n")
        if cut < 0:
            rest = data
            if len(rest) > MAX_MANIFEST_LINE:
                raise LineTooLong(str(path), lines[0] + 1, MAX_MANIFEST_LINE)
            continue
        rest = data[cut + 1 :]
        block = data[:cut]
        count = _check_lengths(path, block, lines[0])
        lines[0] += count
        yield count, block
    if rest:
        yield _check_lengths(path, rest, lines[0]), rest


def _check_lengths(path: Path, block: bytes, before: int) -> int:
    """The number of lines of `block`; LineTooLong for the first one over MAX_MANIFEST_LINE (in C: one pass)."""
    count, first = _records.line_stats(block, MAX_MANIFEST_LINE)
    if first >= 0:
        raise LineTooLong(str(path), before + first + 1, MAX_MANIFEST_LINE)
    return count


def _open_line_lists(path: Path) -> Iterator[list[bytes]]:
    """The lines of a manifest (without newlines), a chunk's worth at a time."""
    for _, block in _line_blocks(path):
        yield block.split(b"\n")


def _open_lines(path: Path) -> Iterator[bytes]:
    for lines in _open_line_lists(path):
        yield from lines


def parse_line(path: str, lineno: int, line: bytes) -> ManifestRecord:
    """Validate one record line, naming file and line on failure."""
    try:
        return ManifestRecord.model_validate_json(line)
    except ValidationError as exc:
        raise ManifestFormatError(path, lineno, _first_error(exc)) from exc


class ManifestReader:
    """Reads and validates a manifest: `header` first, then iterate records in order."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self._lines = _open_lines(self.path)
        self.header = self._read_header()

    def _read_header(self) -> ManifestHeader:
        name = str(self.path)
        first = next(self._lines, None)
        if first is None:
            raise ManifestFormatError(name, 1, "empty file: no manifest header")
        try:
            raw = loads(first)
        except ValueError as exc:
            raise ManifestFormatError(name, 1, f"header is not JSON: {exc}") from exc
        if not isinstance(raw, dict) or raw.get("format") != MANIFEST_FORMAT:
            raise ManifestFormatError(name, 1, "not a booru-release manifest (no format header)")
        version = raw.get("version")
        if not isinstance(version, int) or isinstance(version, bool) or version < 1:
            raise ManifestFormatError(name, 1, f"field 'version': {version!r} is not a schema version (1, 2, …)")
        if version > MANIFEST_VERSION:
            raise SchemaVersionError(
                name,
                f"manifest schema version {version} is newer than this booru-release reads ({MANIFEST_VERSION})",
                "upgrade booru-release to read this manifest",
            )
        try:
            header = ManifestHeader.model_validate_json(first)
        except ValidationError as exc:
            raise ManifestFormatError(name, 1, _first_error(exc)) from exc
        check_subsets(name, header)
        return header

    def lines(self) -> Iterator[Line]:
        """Raw record lines with their line numbers, unvalidated (see validate_manifest)."""
        return enumerate(self._lines, start=2)

    def record_blocks(self) -> Iterator[tuple[int, bytes]]:
        """The record lines a decompressed block at a time (newline-separated, none after the last), with the
        first one's line number: the header line is left out, no line becomes an object of its own."""
        lineno = 1
        for count, block in _line_blocks(self.path):
            if lineno == 1:
                cut = block.find(b"\n")
                block = block[cut + 1 :] if cut >= 0 else b""
                lineno, count = 2, count - 1
            if count and block:
                yield lineno, block
            lineno += count

    def __iter__(self) -> Iterator[ManifestRecord]:
        previous: SortKey | None = None
        count = nbytes = 0
        name = str(self.path)
        for lineno, line in self.lines():
            record = parse_line(name, lineno, line)
            key = sort_key(record.path)
            if previous is not None and key <= previous:
                raise ManifestFormatError(name, lineno, f"{ORDER_PROBLEM}: {record.path!r}")
            previous = key
            count += 1
            nbytes += record.size
            yield record
        check_totals(name, self.header, count, nbytes)


def check_subsets(name: str, header: ManifestHeader) -> None:
    """Raise when the header's per-subset figures (when it gives them) do not add up to its totals."""
    if not header.subsets:
        return
    files = sum(s.files for s in header.subsets.values())
    nbytes = sum(s.bytes for s in header.subsets.values())
    if (files, nbytes) != (header.files, header.bytes):
        raise ManifestFormatError(
            name, 1, f"header subsets add up to {files} files and {nbytes} bytes, not {header.files} and {header.bytes}"
        )


def check_totals(name: str, header: ManifestHeader, count: int, nbytes: int) -> None:
    """Raise when a manifest holds another number of records, or bytes, than its header announces."""
    if count != header.files:
        raise ManifestFormatError(name, count + 2, f"header announces {header.files} records, file has {count}")
    if nbytes != header.bytes:
        raise ManifestFormatError(name, 1, f"header announces {header.bytes} bytes, the records add up to {nbytes}")


def _first_error(exc: ValidationError) -> str:
    err = exc.errors()[0]
    where = ".".join(str(p) for p in err["loc"])
    msg = err["msg"]
    if msg.startswith("Value error, "):
        msg = msg[len("Value error, ") :]
    return f"field {where!r}: {msg}" if where else msg


def prescan_paths(path: Path | str) -> ManifestHeader:
    """Validate every record line and the record count, cheaply, before a tree is touched; return the header.

    Canonical lines (as `record_line` writes them) with certainly safe paths are checked in C;
    every other line is parsed in full, so a malformed line or an unsafe path (absolute, `..`)
    is refused with its line number. The record order is left to the reader of the records.
    """
    reader = ManifestReader(path)
    name = str(reader.path)
    lineno = 1  # of the block's first line
    nbytes = 0
    # check_lines releases the GIL: blocks are checked on every core while this thread decompresses
    blocks = (block for _, block in _line_blocks(reader.path))
    with HashEngine(default_workers(), threads=True) as engine:
        for block, (count, slow, fast_bytes) in engine.map_batches(_checked_lines, blocks):
            nbytes += fast_bytes
            for index, start, end in slow:
                if lineno + index > 1:  # the header was read above
                    nbytes += parse_line(name, lineno + index, block[start:end]).size
            lineno += count
    check_totals(name, reader.header, lineno - 2, nbytes)
    return reader.header


def _checked_lines(block: bytes) -> tuple[bytes, tuple[int, list[tuple[int, int, int]], int]]:
    return block, _records.check_lines(block)


def validate_manifest(path: Path | str) -> ManifestHeader:
    """Read a whole manifest once, checking every line, the order and the count; return its header."""
    reader = ManifestReader(path)
    for _ in reader:
        pass
    return reader.header
