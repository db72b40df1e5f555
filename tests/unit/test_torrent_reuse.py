"""Yearly reuse: the spot check reads kept pieces of many tiny files on several threads, in stream order."""

from __future__ import annotations

import hashlib
import random
from pathlib import Path

import numpy as np
import pytest

from release.torrents import reuse as reuse_module
from release.torrents.reuse import Reuse, read_spans, spot_check
from release.tree import scan_tree
from release.walk import FileTable

PIECE = 4096


def _tiny_tree(root: Path, files: int = 600) -> tuple[FileTable, np.ndarray, bytes]:
    """Files of 0-300 bytes in their buckets; the table, its rows in manifest order, and their stream."""
    chooser = random.Random(7)
    for post in range(1000, 1000 + files):
        path = root / "original" / f"{post % 1000:04d}" / f"{post}.jpg"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(chooser.randbytes(chooser.randrange(0, 300)))
    table, _ = scan_tree(root, workers=0)
    rows = table.order()
    stream = b"".join((root / table.path(int(row))).read_bytes() for row in rows)
    return table, rows, stream


def _reuse(table: FileTable, rows: np.ndarray, stream: bytes) -> Reuse:
    whole = len(stream) // PIECE * PIECE
    hashes = b"".join(hashlib.sha1(stream[at : at + PIECE]).digest() for at in range(0, whole, PIECE))
    return Reuse("old.torrent", PIECE, whole, hashes, len(rows))


@pytest.mark.parametrize("run", [1, 7, 256])
def test_spans_over_many_files_read_on_threads_come_back_in_stream_order(
    run: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(reuse_module, "SPOT_RUN", run)
    table, rows, stream = _tiny_tree(tmp_path)
    spans = [(0, PIECE), (PIECE + 13, 3 * PIECE - 5), (len(stream) - 100, len(stream)), (5, 5)]
    assert read_spans(tmp_path, table, rows, spans) == [stream[begin:end] for begin, end in spans]


def test_spot_check_passes_the_same_files_and_names_a_file_gone_or_shorter(tmp_path: Path) -> None:
    table, rows, stream = _tiny_tree(tmp_path)
    reuse = _reuse(table, rows, stream)
    assert len(reuse.hashes) // 20 > 4  # pieces of many files each
    assert spot_check(tmp_path, table, rows, reuse, "ab" * 20) is None

    first = tmp_path / table.path(int(next(r for r in rows if table.size(int(r)))))  # in the first piece
    first.write_bytes(first.read_bytes()[:-1])
    failed = spot_check(tmp_path, table, rows, reuse, "ab" * 20)
    assert failed is not None and "is shorter than the manifest says" in failed, failed
    first.unlink()
    failed = spot_check(tmp_path, table, rows, reuse, "ab" * 20)
    assert failed is not None and str(first.relative_to(tmp_path)) in failed and "No such file" in failed, failed


def test_spot_check_refuses_pieces_that_do_not_match_the_files(tmp_path: Path) -> None:
    table, rows, stream = _tiny_tree(tmp_path)
    reuse = _reuse(table, rows, stream)
    flipped = Reuse(reuse.source, PIECE, reuse.start, bytes([reuse.hashes[0] ^ 1]) + reuse.hashes[1:], len(rows))
    assert spot_check(tmp_path, table, rows, flipped, "ab" * 20) == "piece 0 does not match the files"
