"""Yearly reuse: keep last year's piece hashes for the unchanged prefix of a shard.

Shards list files in ID order and releases are append-only, so last year's file list is normally
a prefix of this year's. Every piece that ends before the first new or changed file is the same
bytes as last year, so its hash is kept; hashing restarts at the piece holding that file's first
byte. "Changed" comes from the manifests: last year's record against this year's (sha256 when this
year's manifest is at hand, else size and mtime_ns, the rule incremental manifests use).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from release.layout import sort_key
from release.manifest.io import ManifestReader
from release.torrents.metainfo import PIECE_HASH, load_torrent
from release.walk import FileTable


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
    previous: Path, shard_name: str, table: FileTable, rows: np.ndarray, unchanged: np.ndarray
) -> Reuse | None:
    """How much of last year's torrent for `shard_name` this year's shard (its `rows`, in order) can keep."""
    source = previous_torrent(previous, shard_name)
    if source is None:
        return None
    old = load_torrent(source)
    kept = 0
    stream = 0
    for old_path, old_length, row in zip(old.paths, old.lengths, rows.tolist(), strict=False):
        if old_path != table.path(row) or old_length != table.size(row) or not unchanged[row]:
            break
        kept += 1
        stream += old_length
    if kept == len(old.paths) == len(rows):  # the same files: every old piece, the short last one too
        return Reuse(str(source), old.piece_length, stream, old.pieces, kept)
    pieces = stream // old.piece_length  # pieces wholly inside the unchanged prefix
    if pieces == 0:
        return None
    return Reuse(str(source), old.piece_length, pieces * old.piece_length, old.pieces[: pieces * PIECE_HASH], kept)


def _records(reader: ManifestReader) -> Iterator[tuple[tuple[int, list[str]], str, int, int, str]]:
    for record in reader:
        yield sort_key(record.path), record.path, record.size, record.mtime_ns, record.sha256


def unchanged_rows(table: FileTable, order: np.ndarray, old_manifest: Path, new_manifest: Path | None) -> np.ndarray:
    """Per table row: does last year's manifest hold the same file (path, size and sha256 or mtime)?"""
    unchanged = np.zeros(len(table), dtype=bool)
    old = _records(ManifestReader(old_manifest))
    new_hashes = (r.sha256 for r in ManifestReader(new_manifest)) if new_manifest is not None else None
    current = next(old, None)
    for row in order.tolist():
        path = table.path(row)
        new_sha = next(new_hashes) if new_hashes is not None else None
        key = sort_key(path)
        while current is not None and current[0] < key:
            current = next(old, None)
        if current is None or current[1] != path or current[2] != table.size(row):
            continue
        unchanged[row] = current[4] == new_sha if new_sha is not None else current[3] == table.mtime_ns(row)
    return unchanged
