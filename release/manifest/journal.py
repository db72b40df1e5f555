"""The side journal of a manifest build: what was hashed survives a crash, and the next run resumes.

While `manifest build` writes OUTPUT (under a temporary name), every finished record line also goes
to `.OUTPUT.<pid>.journal` beside it: plain lines, written and fsync'd every FLUSH_RECORDS records or
FLUSH_SECONDS seconds (plain since version 2: compressing them took 0.7 s of CPU per million records,
a tenth of a warm million-file build, for a file that lives only until the manifest is in place). If
the build is killed (SIGKILL, power cut, a full disk), the next build of the same OUTPUT reads every
journal it finds and reuses their records for files that are unchanged (the same rule as `--previous`:
path, size and mtime), so only the rest is hashed. A torn end (the last line cut short) is expected and
ignored. Journals are removed once the manifest is in place.
"""

from __future__ import annotations

import contextlib
import json
import os
import threading
from collections.abc import Iterator
from pathlib import Path

import zstandard
from pydantic import ValidationError

from release.atomic import describe_os_error
from release.errors import OutputError
from release.layout import sort_key
from release.manifest.io import ZSTD_MAGIC, parse_line
from release.models import ManifestRecord
from release.textio import MAX_MANIFEST_LINE, loads

JOURNAL_FORMAT = "booru-release-journal"
FLUSH_RECORDS = 20_000
FLUSH_SECONDS = 2.0
_READ = 1 << 16


def journals_of(output: Path) -> list[Path]:
    """The journals left beside `output` by earlier runs (any process), oldest name first."""
    prefix, suffix = f".{output.name}.", ".journal"
    folder = output.parent if str(output.parent) else Path(".")
    try:
        names = sorted(n for n in os.listdir(folder) if n.startswith(prefix) and n.endswith(suffix))
    except OSError:
        return []
    return [folder / n for n in names]


def _contents(path: Path) -> bytes:
    """As much of a journal as reads (plain, or zstd blocks from version 1): a torn or damaged end stops
    the read, it does not fail it."""
    out = bytearray()
    try:
        with open(path, "rb") as handle:
            if handle.read(4) != ZSTD_MAGIC:
                handle.seek(0)
                return handle.read()
            handle.seek(0)
            decompressor = zstandard.ZstdDecompressor().decompressobj()
            while chunk := handle.read(_READ):
                out += decompressor.decompress(chunk)
    except (OSError, zstandard.ZstdError):
        pass
    return bytes(out)


def read_journal(path: Path, rehash: bool) -> Iterator[ManifestRecord]:
    """The valid records of one journal, in its order; nothing from a journal of another kind of build
    (a `--rehash` build trusts only journals of `--rehash` builds)."""
    data = _contents(path)
    lines = data.split(b"\n")[:-1]  # the last piece has no newline: torn, or empty
    if not lines:
        return
    try:
        header = loads(lines[0])
    except ValueError:
        return
    if not isinstance(header, dict) or header.get("format") != JOURNAL_FORMAT or header.get("version") not in (1, 2):
        return
    if rehash and not header.get("rehash"):
        return
    records = []
    for lineno, line in enumerate(lines[1:], start=2):
        if len(line) > MAX_MANIFEST_LINE:
            break
        try:
            records.append(parse_line(str(path), lineno, line))
        except (ValidationError, ValueError):
            break
    # lines are journaled as they are hashed (a build reads a chunk of files folder by folder): sorted here
    records.sort(key=lambda record: sort_key(record.path))
    yield from records


class JournalWriter:
    """Appends record lines to `.OUTPUT.<pid>.journal`; use as a context manager (closes, keeps the file).

    The building thread only queues lines; a background thread writes and fsyncs them every
    FLUSH_SECONDS (sooner past FLUSH_RECORDS), so the journal costs the read pass next to nothing and what
    finished before a file that takes minutes to hash still reaches the disk meanwhile.
    """

    def __init__(self, output: Path, release: str, rehash: bool) -> None:
        folder = output.parent if str(output.parent) else Path(".")
        self.path = folder / f".{output.name}.{os.getpid()}.journal"
        self._header = {"format": JOURNAL_FORMAT, "version": 2, "release": release, "rehash": rehash}
        self._file: int | None = None
        self._queue: list[bytes] = []
        self._pending = 0
        self._error: OutputError | None = None
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._flusher = threading.Thread(target=self._run, name="journal", daemon=True)

    def __enter__(self) -> JournalWriter:
        try:
            self._file = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        except OSError as exc:
            raise OutputError(str(self.path), f"cannot create the build journal: {describe_os_error(exc)}") from exc
        self._queue.append(json.dumps(self._header, sort_keys=True).encode() + b"\n")
        self._drain()
        self._flusher.start()
        return self

    def write(self, lines: bytes) -> None:
        """Queue finished record lines (each ending in a newline) for the background writer."""
        if self._error is not None:
            raise self._error
        with self._lock:
            self._queue.append(lines)
            self._pending += lines.count(b"\n")
            if self._pending >= FLUSH_RECORDS:
                self._wake.set()

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(FLUSH_SECONDS)
            self._wake.clear()
            try:
                self._drain()
            except OutputError as exc:
                self._error = exc
                return

    def _drain(self) -> None:
        """Compress, write and fsync what is queued: everything before it is decodable and durable."""
        with self._lock:
            queued, self._queue, self._pending = self._queue, [], 0
        if not queued or self._file is None:
            return
        data = b"".join(queued)
        view = memoryview(data)
        try:
            while view:
                view = view[os.write(self._file, view) :]
            os.fsync(self._file)
        except OSError as exc:
            raise OutputError(str(self.path), f"cannot write the build journal: {describe_os_error(exc)}") from exc

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        self._stop.set()
        self._wake.set()
        if self._flusher.is_alive():
            self._flusher.join()
        if self._file is None:
            return
        with contextlib.suppress(OutputError):
            self._drain()
        os.close(self._file)
        self._file = None


def remove_journals(output: Path) -> None:
    """Remove every journal of `output` (the manifest is in place: they are of no further use)."""
    for path in journals_of(output):
        path.unlink(missing_ok=True)
