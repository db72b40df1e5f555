"""Reading and writing manifest files (zstd-compressed JSON lines, header first).

A name ending in `.zst` is written zstd-compressed; any other name is written as plain JSON lines.
Reading detects the compression from the magic bytes. Readers validate every line, the schema
version and the record order, and name the file and line of any fault.
"""

from __future__ import annotations

import contextlib
import io
import json
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import BinaryIO, cast

import zstandard
from pydantic import ValidationError

from release.atomic import atomic_output
from release.errors import InputIOError, ManifestFormatError, SchemaVersionError
from release.layout import sort_key
from release.models import MANIFEST_FORMAT, MANIFEST_VERSION, ManifestHeader, ManifestRecord

ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
ZSTD_LEVEL = 6


class ManifestWriter:
    """Writes a header then records to `<path>`, atomically; use as a context manager."""

    def __init__(self, path: Path | str, header: ManifestHeader) -> None:
        self.path = Path(path)
        self.header = header
        self.records = 0
        self._stack = contextlib.ExitStack()
        self._out: BinaryIO | None = None

    def __enter__(self) -> ManifestWriter:
        raw = self._stack.enter_context(atomic_output(self.path))
        if self.path.suffix == ".zst":
            cctx = zstandard.ZstdCompressor(level=ZSTD_LEVEL)
            self._out = cast(BinaryIO, self._stack.enter_context(cctx.stream_writer(raw, closefd=False)))
        else:
            self._out = raw
        self._out.write(self.header.model_dump_json().encode() + b"\n")
        return self

    def write(self, record: ManifestRecord) -> None:
        """Append one record (records must come in manifest order)."""
        assert self._out is not None
        self._out.write(record.model_dump_json().encode() + b"\n")
        self.records += 1

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        self._stack.__exit__(exc_type, exc, tb)  # type: ignore[arg-type]  # ExitStack wants exact types


def _open_lines(path: Path) -> Iterator[bytes]:
    try:
        handle = open(path, "rb")
    except OSError as exc:
        raise InputIOError(str(path), f"cannot open manifest: {exc.strerror}") from exc
    with handle:
        if handle.read(4) == ZSTD_MAGIC:
            handle.seek(0)
            reader = zstandard.ZstdDecompressor().stream_reader(handle)
            stream: Iterable[bytes] = io.BufferedReader(cast(io.RawIOBase, reader), buffer_size=1 << 20)
        else:
            handle.seek(0)
            stream = handle
        try:
            yield from stream
        except zstandard.ZstdError as exc:
            raise ManifestFormatError(str(path), 0, f"corrupt zstd stream: {exc}") from exc


class ManifestReader:
    """Reads and validates a manifest: `header` first, then iterate records in order."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self._lines = _open_lines(self.path)
        self.header = self._read_header()

    def _read_header(self) -> ManifestHeader:
        first = next(self._lines, None)
        if first is None:
            raise ManifestFormatError(str(self.path), 1, "empty file: no manifest header")
        try:
            raw = json.loads(first)
        except ValueError as exc:
            raise ManifestFormatError(str(self.path), 1, f"header is not JSON: {exc}") from exc
        if not isinstance(raw, dict) or raw.get("format") != MANIFEST_FORMAT:
            raise ManifestFormatError(str(self.path), 1, "not a booru-release manifest (no format header)")
        version = raw.get("version")
        if not isinstance(version, int) or version > MANIFEST_VERSION:
            raise SchemaVersionError(
                str(self.path),
                f"manifest schema version {version!r} is newer than this booru-release reads ({MANIFEST_VERSION})",
                "upgrade booru-release to read this manifest",
            )
        try:
            return ManifestHeader.model_validate_json(first)
        except ValidationError as exc:
            raise ManifestFormatError(str(self.path), 1, _first_error(exc)) from exc

    def __iter__(self) -> Iterator[ManifestRecord]:
        previous: tuple[int, int, list[str]] | None = None
        count = 0
        for lineno, line in enumerate(self._lines, start=2):
            try:
                record = ManifestRecord.model_validate_json(line)
            except ValidationError as exc:
                raise ManifestFormatError(str(self.path), lineno, _first_error(exc)) from exc
            key = sort_key(record.path)
            if previous is not None and key <= previous:
                raise ManifestFormatError(
                    str(self.path), lineno, f"record {record.path!r} is out of manifest order or repeated"
                )
            previous = key
            count += 1
            yield record
        if count != self.header.files:
            raise ManifestFormatError(
                str(self.path), count + 2, f"header announces {self.header.files} records, file has {count}"
            )


def _first_error(exc: ValidationError) -> str:
    err = exc.errors()[0]
    where = ".".join(str(p) for p in err["loc"])
    msg = err["msg"]
    if msg.startswith("Value error, "):
        msg = msg[len("Value error, ") :]
    return f"field {where!r}: {msg}" if where else msg


def validate_manifest(path: Path | str) -> ManifestHeader:
    """Read a whole manifest once, checking every line; return its header."""
    reader = ManifestReader(path)
    for _ in reader:
        pass
    return reader.header
