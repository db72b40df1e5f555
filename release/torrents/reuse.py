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
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from release.hashing import OPEN_FLAGS
from release.torrents.metainfo import load_torrent
from release.torrents.sizes import PIECE_HASH
from release.walk import FileTable

SPOT_CHECKS = 2  # random pieces read besides the first and the last of the kept prefix


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


def _read_span(root: Path, table: FileTable, rows: list[int], offsets: np.ndarray, begin: int, end: int) -> bytes:
    """Bytes [begin, end) of the stream of `rows` (files in order; `offsets`: each file's first byte)."""
    out = bytearray()
    index = int(np.searchsorted(offsets, begin, side="right")) - 1
    while begin < end:
        row = rows[index]
        inside = begin - int(offsets[index])
        want = min(end - begin, table.size(row) - inside)
        fd = os.open(root / table.path(row), OPEN_FLAGS)
        try:
            chunk = os.pread(fd, want, inside)
        finally:
            os.close(fd)
        if len(chunk) != want:
            raise OSError(f"{table.path(row)} is shorter than the manifest says")
        out += chunk
        begin += want
        index += 1
    return bytes(out)


def spot_check(root: Path, table: FileTable, rows: np.ndarray, reuse: Reuse, info_hash: str) -> str | None:
    """Read a few of the pieces `reuse` would keep (the first, the last, and SPOT_CHECKS more chosen by the
    torrent's info-hash) and compare them with last year's hashes; None when all match, else what failed."""
    pieces = len(reuse.hashes) // PIECE_HASH
    if pieces == 0:
        return None
    kept = rows[: reuse.kept_files].tolist()
    sizes = np.array([table.size(row) for row in kept], dtype=np.int64)
    offsets = np.concatenate([[0], np.cumsum(sizes)])[:-1] if len(kept) else np.zeros(0, np.int64)
    stream_end = int(sizes.sum())
    chooser = random.Random(info_hash)
    sample = sorted({0, pieces - 1, *(chooser.randrange(pieces) for _ in range(SPOT_CHECKS))})
    for piece in sample:
        begin = piece * reuse.piece_length
        end = min(begin + reuse.piece_length, stream_end)
        try:
            data = _read_span(root, table, kept, offsets, begin, end)
        except OSError as exc:
            return f"piece {piece} could not be read: {exc.strerror or exc}"
        if hashlib.sha1(data).digest() != reuse.hashes[piece * PIECE_HASH : (piece + 1) * PIECE_HASH]:
            return f"piece {piece} does not match the files"
    return None
