"""Reproducible .tar.xz archives: the same inputs give the same bytes, on every run and machine.

Members are sorted by name and carry fixed metadata (mtime, mode 0644/0755, uid/gid 0, no owner
names); the tar format (POSIX ustar, no PAX headers) and the xz settings (a fixed preset per
archive kind, CRC64 check) are fixed. The only outside factor left is liblzma's encoder, stable
across releases.

An archive may be written as consecutive xz streams (still one valid .xz file: xz and tar read
concatenated streams): every big member's data in a stream of its own, the headers and small members
between them. A big member's stream depends only on its content, so with last year's archive and its
index of those streams (`Reusable`), a member whose content is unchanged, even if it was moved (last
year's top-level chunks move into metadata/<year>/), is copied instead of compressed again, after the
copy is decompressed and checked. The yearly metadata tarball then costs this year's export, not every
year's. A big member's data longer than BLOCK is itself cut into streams of BLOCK bytes, so that
`xz_streams` compresses them on every core; the cut depends only on the bytes, never on the core count.
"""

from __future__ import annotations

import functools
import hashlib
import io
import lzma
import tarfile
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import BinaryIO

from pydantic import BaseModel

from release.atomic import OutputSet, atomic_output
from release.blocks import CompressedBlocks, OrderedOutput, compress_pool
from release.errors import BadInput, InputIOError
from release.hashing import hash_path

XZ_PRESET = 9
SHARED_DICTIONARY = 1 << 20  # of the streams holding headers and small members
# preset 9's own 64 MiB dictionary makes a 674 MiB encoder; 8 MiB makes 94 MiB (xz(1) MEMORY USAGE), so two
# cores compress side by side well under 1 GiB. On 40 MB of metadata 8 MiB compressed 25% faster than
# 32 MiB and 40 bytes smaller: the records repeat within a few MB, not across tens.
MAX_DICTIONARY = 1 << 23
BLOCK = 3 * MAX_DICTIONARY  # big members' data is cut into xz streams of this many bytes (xz -T's default)
OWN_STREAM = 1 << 16  # members this big get an xz stream of their own (reusable next year)
FILE_MODE = 0o644
DIR_MODE = 0o755


def xz_compressor(dictionary: int, preset: int = XZ_PRESET) -> lzma.LZMACompressor:
    """One xz stream's compressor: the fixed preset and check, with a dictionary of `dictionary` bytes."""
    filters = [{"id": lzma.FILTER_LZMA2, "preset": preset, "dict_size": dictionary}]
    return lzma.LZMACompressor(format=lzma.FORMAT_XZ, check=lzma.CHECK_CRC64, filters=filters)


def xz_streams(
    out: OrderedOutput, pool: ThreadPoolExecutor, block: int, dictionary: int, preset: int
) -> CompressedBlocks:
    """Bytes written become consecutive xz streams of `block` bytes each (the last shorter; at least one),
    compressed on `pool` and queued on `out` in order."""
    return CompressedBlocks(out, pool, block, functools.partial(_xz_stream, dictionary=dictionary, preset=preset))


def _xz_stream(data: bytes, dictionary: int, preset: int) -> bytes:
    compressor = xz_compressor(dictionary, preset)
    return compressor.compress(data) + compressor.flush()


def xz_writer(raw: BinaryIO, preset: int = XZ_PRESET) -> lzma.LZMAFile:
    """An xz stream over `raw` with the fixed settings every reproducible output of ours uses."""
    return lzma.LZMAFile(raw, "wb", format=lzma.FORMAT_XZ, check=lzma.CHECK_CRC64, preset=preset)


def _info(name: str, size: int, mtime: int, is_dir: bool = False) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.size = 0 if is_dir else size
    info.mtime = mtime
    info.mode = DIR_MODE if is_dir else FILE_MODE
    info.type = tarfile.DIRTYPE if is_dir else tarfile.REGTYPE
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    return info


class Segment(BaseModel):
    """One big member's data as an xz stream of its own, reusable next year whatever the member is called."""

    name: str  # the member it was written for (for people; reuse goes by content)
    content: str  # "<size>:<sha256 of the content>"
    offset: int  # of the stream in the archive
    length: int
    raw_sha256: str  # of the stream's tar bytes (content and padding)
    raw_length: int
    # of the compressed stream as written: checked when it is copied, so copying needs no decompression
    # (an index without it, from an older version, has each stream decompressed and checked by raw_sha256)
    stream_sha256: str | None = None


class Reusable:
    """Streams to copy instead of compressing again, and their index: last year's archive, or the streams
    `write_streams` compressed ahead of this one."""

    def __init__(self, archive: Path, segments: list[Segment]) -> None:
        self.archive = archive
        self.by_content = {s.content: s for s in segments}
        self.copied_bytes = 0

    def stream(self, content: str) -> tuple[Segment, bytes] | None:
        """The stream of exactly this content, read back and checked (None: compress it)."""
        found = self.by_content.get(content)
        if found is None:
            return None
        try:
            with open(self.archive, "rb") as handle:
                handle.seek(found.offset)
                data = handle.read(found.length)
            if found.stream_sha256 is not None:
                if len(data) != found.length or hashlib.sha256(data).hexdigest() != found.stream_sha256:
                    return None
            else:
                raw = lzma.decompress(data, format=lzma.FORMAT_XZ)
                if len(raw) != found.raw_length or hashlib.sha256(raw).hexdigest() != found.raw_sha256:
                    return None
        except (OSError, lzma.LZMAError):
            return None
        self.copied_bytes += found.raw_length
        return found, data


Entry = tuple[str, Path | None]  # (name in the archive, source file; None for a folder)


class _Streams:
    """The archive as consecutive xz streams: headers and small members share one, each big member's data
    has its own; every stream is recorded with where it is."""

    def __init__(self, raw: BinaryIO, preset: int, pool: ThreadPoolExecutor) -> None:
        self.preset, self.pool, self.tar_bytes = preset, pool, 0
        self.raw = raw
        self.out = OrderedOutput(self._write)  # big members' streams are compressed side by side, written in order
        self._written = hashlib.sha256()  # of what was written since the last member's streams began
        self.segments: list[Segment] = []
        self._shared: lzma.LZMACompressor | None = None

    @staticmethod
    def _dictionary(size: int) -> int:
        # the preset's settings with a dictionary no bigger than the data: the same bytes, and opening a
        # stream no longer sets up preset 9's 64 MiB dictionary (hundreds of streams cost seconds that way)
        return max(1 << 12, min(MAX_DICTIONARY, 1 << max(size - 1, 1).bit_length()))

    def shared(self, data: bytes) -> None:
        """Tar bytes for the shared stream (opened when needed)."""
        if self._shared is None:
            self._shared = xz_compressor(SHARED_DICTIONARY, self.preset)
        self.out.put(self._shared.compress(data))
        self.tar_bytes += len(data)

    def end_shared(self) -> None:
        if self._shared is not None:
            self.out.put(self._shared.flush())
            self._shared = None

    def own(self, name: str, size: int, chunks: Iterator[bytes]) -> str:
        """A big member's data (and padding) as streams of its own; returns the content key of what was
        read (`<bytes>:<sha256>`), which the caller compares with what it expected."""
        self.end_shared()
        start = self._mark()
        streams = xz_streams(self.out, self.pool, BLOCK, self._dictionary(size), self.preset)
        raw, body = hashlib.sha256(), hashlib.sha256()
        length = 0
        for chunk in chunks:
            raw.update(chunk)
            body.update(chunk)
            length += len(chunk)
            streams.write(chunk)
        padding = _padding(length)
        raw.update(padding)
        streams.write(padding)
        streams.close()
        key = f"{length}:{body.hexdigest()}"
        self._record(name, key, start, raw.hexdigest(), length + len(padding))
        return key

    def copy(self, name: str, found: Segment, data: bytes) -> None:
        """A big member's stream, copied from last year's archive."""
        self.end_shared()
        start = self._mark()
        self.out.put(data)
        self._record(name, found.content, start, found.raw_sha256, found.raw_length)

    def finish(self) -> None:
        """Write out every stream still being compressed."""
        self.end_shared()
        self.out.finish()

    def _write(self, data: bytes) -> None:
        self.raw.write(data)
        self._written.update(data)

    def _mark(self) -> list[int]:
        start: list[int] = []

        def begin(offset: int) -> None:  # where the member's streams begin, once written
            start.append(offset)
            self._written = hashlib.sha256()

        self.out.put(begin)
        return start

    def _record(self, name: str, content: str, start: list[int], raw_sha256: str, raw_length: int) -> None:
        self.tar_bytes += raw_length

        def record(end: int) -> None:
            self.segments.append(Segment(name=name, content=content, offset=start[0], length=end - start[0],
                                         raw_sha256=raw_sha256, raw_length=raw_length,
                                         stream_sha256=self._written.hexdigest()))  # fmt: skip

        self.out.put(record)


def _padding(size: int) -> bytes:
    return tarfile.NUL * (-size % tarfile.BLOCKSIZE)


def _file_sha256(source: Path) -> str:
    digests, _, error = hash_path(str(source), ("sha256",))
    if error is not None:
        raise InputIOError(str(source), f"cannot read: {error}")
    return digests[0]


def _chunks(source: Path) -> Iterator[bytes]:
    try:
        with open(source, "rb") as handle:
            while block := handle.read(1 << 20):
                yield block
    except OSError as exc:
        raise InputIOError(str(source), f"cannot read: {exc.strerror}") from exc


def _entries(output: Path, members: list[tuple[str, Path]]) -> list[Entry]:
    names = [name for name, _ in members]
    if len(set(names)) != len(names):
        raise BadInput(str(output), "two archive members share a name")
    folders = sorted({"/".join(name.split("/")[:i]) for name in names for i in range(1, name.count("/") + 1)})
    return sorted([(folder + "/", None) for folder in folders] + [(n, p) for n, p in members])


def _add(tar: tarfile.TarFile, name: str, source: Path | None, mtime: int) -> None:
    if source is None:
        tar.addfile(_info(name.rstrip("/"), 0, mtime, is_dir=True))
        return
    try:
        with open(source, "rb") as handle:
            size = handle.seek(0, io.SEEK_END)
            handle.seek(0)
            tar.addfile(_info(name, size, mtime), handle)
    except OSError as exc:
        raise InputIOError(str(source), f"cannot read: {exc.strerror}") from exc


def _header(name: str, size: int, mtime: int, is_dir: bool) -> bytes:
    info = _info(name.rstrip("/") if is_dir else name, size, mtime, is_dir)
    return info.tobuf(tarfile.USTAR_FORMAT, "utf-8", "surrogateescape")


def write_streams(
    output: Path, members: list[tuple[str, Path]], preset: int = XZ_PRESET, outputs: OutputSet | None = None
) -> list[Segment]:
    """Each member's data (and padding) as exactly the xz streams `write_segmented_tar_xz` would write for
    it, one member after another in `output` (not an archive: streams compressed ahead of one, which
    copies them by content as it copies last year's, through `Reusable`). Returns their index."""
    with atomic_output(output, outputs) as raw, compress_pool() as pool:
        streams = _Streams(raw, preset, pool)
        for name, source in members:
            size = source.stat().st_size
            if not streams.own(name, size, _chunks(source)).startswith(f"{size}:"):
                raise InputIOError(str(source), "changed while being compressed")
        streams.finish()
    return streams.segments


def _reused(reuse: Sequence[Reusable], expected: str) -> tuple[Segment, bytes] | None:
    for source in reuse:
        if (found := source.stream(expected)) is not None:
            return found
    return None


def write_segmented_tar_xz(
    output: Path,
    members: list[tuple[str, Path]],
    *,
    reuse: Sequence[Reusable] = (),
    digests: dict[str, str] | None = None,
    mtime: int = 0,
    preset: int = XZ_PRESET,
    outputs: OutputSet | None = None,
) -> list[Segment]:
    """`write_tar_xz`, but each member of at least OWN_STREAM bytes has its data in an xz stream of its own
    (headers and small members share streams between them). With `reuse`, a big member whose content one of
    those (last year's archive, streams compressed ahead) holds is copied from the first that does, whatever
    its name was; `digests` (name -> sha256, from a
    manifest) spares reading it to find that out. Returns the index of the big members' streams."""
    with atomic_output(output, outputs) as raw, compress_pool() as pool:
        streams = _Streams(raw, preset, pool)
        for name, source in _entries(output, members):
            size = 0 if source is None else source.stat().st_size
            streams.shared(_header(name, size, mtime, source is None))
            if source is None:
                continue
            if size < OWN_STREAM:
                data = b"".join(_chunks(source))
                if len(data) != size:
                    raise InputIOError(str(source), "changed while being archived")
                streams.shared(data + _padding(size))
                continue
            expected = None
            if reuse:
                expected = f"{size}:{(digests or {}).get(name) or _file_sha256(source)}"
                found = _reused(reuse, expected)
                if found is not None:
                    streams.copy(name, *found)
                    continue
            # the index records what was read, so a stale digest can never label another content's stream
            written = streams.own(name, size, _chunks(source))
            if not written.startswith(f"{size}:") or written != (expected or written):
                raise InputIOError(str(source), "changed while being archived (or since the manifest was built)")
        # the end of the archive: two zero blocks, then zeros to a whole record (what tarfile writes)
        end = tarfile.NUL * (2 * tarfile.BLOCKSIZE)
        streams.shared(end + tarfile.NUL * (-(streams.tar_bytes + len(end)) % tarfile.RECORDSIZE))
        streams.finish()
    return streams.segments


def write_tar_xz(
    output: Path,
    members: list[tuple[str, Path]],
    mtime: int = 0,
    preset: int = XZ_PRESET,
    outputs: OutputSet | None = None,
) -> None:
    """Write `members` ((name in the archive, source file)) to `output` reproducibly and atomically.

    `preset` is part of the format: the same preset gives the same bytes (the default 9 for the
    metadata; the torrents tarball uses 0, since piece hashes do not compress and 9 takes 35x longer).

    Parent folders of the members are written as directory entries, so extracting gives the tree.
    """
    entries = _entries(output, members)
    with atomic_output(output, outputs) as raw:
        with xz_writer(raw, preset) as xz:
            with tarfile.open(fileobj=xz, mode="w", format=tarfile.USTAR_FORMAT) as tar:
                for name, source in entries:
                    _add(tar, name, source, mtime)
