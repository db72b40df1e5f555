"""Yearly reuse: keep last year's piece hashes for the unchanged prefix of a shard.

Shards list files in ID order and releases are append-only, so last year's file list is normally
a prefix of this year's. Every piece that ends before the first new or changed file is the same
bytes as last year, so its hash is kept; hashing restarts at the piece holding that file's first
byte. "Changed" comes from the manifests: last year's record against this year's (sha256 when this
year's manifest is at hand, else size and mtime_ns, the rule incremental manifests use).

Last year's hashes are not taken on trust: before a shard keeps them, a few of the kept pieces are
read back from this year's tree (`spot_check`); a torrent whose pieces do not match its files (edited,
corrupted, or another release's) is not reused, and the build says so.
"""

from __future__ import annotations

import hashlib
import os
import random
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import numpy as np

from release.hashing import IO_DEPTH, OPEN_FLAGS
from release.torrents.metainfo import load_torrent
from release.torrents.sizes import PIECE_HASH
from release.walk import FileTable

SPOT_CHECKS = 2  # random pieces read besides the first and the last of the kept prefix
SPOT_READERS = IO_DEPTH  # reads in flight
SPOT_RUN = 256  # files a reader takes at a time


@dataclass(frozen=True)
class Reuse:
    """What a shard keeps from last year's torrent."""

    source: str
    piece_length: int
    start: int  # stream offset where hashing restarts (a multiple of piece_length)
    hashes: bytes  # the kept piece hashes: start // piece_length of them
    kept_files: int  # files of the unchanged prefix


def _shard_suffix(name: str) -> str:
    return name.rsplit("-", 1)[-1]


def previous_torrent(previous: Path, shard_name: str) -> Path | None:
    """Last year's .torrent of the same shard (same suffix: `-3`, `-metadata`), if there is exactly one."""
    suffix = _shard_suffix(shard_name)
    matches = sorted(p for p in previous.glob("*.torrent") if _shard_suffix(p.stem) == suffix)
    return matches[0] if len(matches) == 1 else None


def find_reuse(
    root: Path, previous: Path, shard_name: str, table: FileTable, rows: np.ndarray, same: np.ndarray
) -> tuple[Reuse | None, str | None]:
    """How much of last year's torrent for `shard_name` this year's shard (its `rows`, in order) can keep,
    after a spot check of its pieces against the files under `root`; and a warning when it failed that."""
    source = previous_torrent(previous, shard_name)
    if source is None:
        return None, None
    old = load_torrent(source)
    kept = 0
    stream = 0
    for old_path, old_length, row in zip(old.paths, old.lengths, rows.tolist(), strict=False):
        if old_path != table.path(row) or old_length != table.size(row) or not same[row]:
            break
        kept += 1
        stream += old_length
    if kept == len(old.paths) == len(rows):  # the same files: every old piece, the short last one too
        reuse = Reuse(str(source), old.piece_length, stream, old.pieces, kept)
    elif (pieces := stream // old.piece_length) > 0:  # pieces wholly inside the unchanged prefix
        reuse = Reuse(str(source), old.piece_length, pieces * old.piece_length, old.pieces[: pieces * PIECE_HASH], kept)
    else:
        return None, None
    failed = spot_check(root, table, rows, reuse, old.info_hash)
    if failed is not None:
        return None, f"{shard_name}: last year's {source.name} was not reused ({failed}); all its data is hashed"
    return reuse, None


class _Part(NamedTuple):
    """Bytes [offset, offset + length) of one file of a stream."""

    path: str
    offset: int
    length: int


def _span_parts(table: FileTable, rows: np.ndarray, offsets: np.ndarray, begin: int, end: int) -> list[_Part]:
    """The file parts that bytes [begin, end) of the stream of `rows` lie in (`offsets`: each file's first byte)."""
    parts = []
    index = int(np.searchsorted(offsets, begin, side="right")) - 1
    while begin < end:
        row = int(rows[index])
        inside = begin - int(offsets[index])
        want = min(end - begin, table.size(row) - inside)
        parts.append(_Part(table.path(row), inside, want))
        begin += want
        index += 1
    return parts


def _read_parts(folder: int, parts: list[_Part]) -> bytes:
    out = bytearray()
    for part in parts:
        fd = os.open(part.path, OPEN_FLAGS, dir_fd=folder)
        try:
            chunk = os.pread(fd, part.length, part.offset)
        finally:
            os.close(fd)
        if len(chunk) != part.length:
            raise OSError(f"{part.path} is shorter than the manifest says")
        out += chunk
    return bytes(out)


def read_spans(root: Path, table: FileTable, rows: np.ndarray, spans: list[tuple[int, int]]) -> list[bytes]:
    """Bytes [begin, end) of the stream of `rows` (files in order) for each of `spans`. The files are read
    by SPOT_READERS threads, a run of files each: a piece of tiny files is thousands of cold reads, which
    one thread would wait for one at a time."""
    sizes = table.sizes()[rows]
    offsets = np.cumsum(sizes) - sizes
    parts = [_span_parts(table, rows, offsets, begin, end) for begin, end in spans]
    runs = [(n, piece[at : at + SPOT_RUN]) for n, piece in enumerate(parts) for at in range(0, len(piece), SPOT_RUN)]
    folder = os.open(root, os.O_RDONLY | os.O_DIRECTORY)
    try:
        with ThreadPoolExecutor(max(1, min(SPOT_READERS, len(runs)))) as pool:
            read = list(pool.map(lambda run: _read_parts(folder, run[1]), runs))
    finally:
        os.close(folder)
    out = [bytearray() for _ in spans]
    for (n, _), data in zip(runs, read, strict=True):
        out[n] += data
    return [bytes(data) for data in out]


def spot_check(root: Path, table: FileTable, rows: np.ndarray, reuse: Reuse, info_hash: str) -> str | None:
    """Read a few of the pieces `reuse` would keep (the first, the last, and SPOT_CHECKS more chosen by the
    torrent's info-hash) and compare them with last year's hashes; None when all match, else what failed."""
    pieces = len(reuse.hashes) // PIECE_HASH
    if pieces == 0:
        return None
    kept = rows[: reuse.kept_files]
    stream_end = int(table.sizes()[kept].sum())
    chooser = random.Random(info_hash)
    sample = sorted({0, pieces - 1, *(chooser.randrange(pieces) for _ in range(SPOT_CHECKS))})
    spans = [(piece * reuse.piece_length, min((piece + 1) * reuse.piece_length, stream_end)) for piece in sample]
    try:
        read = read_spans(root, table, kept, spans)
    except OSError as exc:
        where = f"{exc.filename}: " if exc.filename else ""
        return f"a kept piece could not be read: {where}{exc.strerror or exc}"
    for piece, data in zip(sample, read, strict=True):
        if hashlib.sha1(data).digest() != reuse.hashes[piece * PIECE_HASH : (piece + 1) * PIECE_HASH]:
            return f"piece {piece} does not match the files"
    return None
