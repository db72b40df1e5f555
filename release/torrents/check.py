"""`verify ROOT --torrent FILE…`: check a download against .torrent files alone, piece by piece.

Tiered like bagit: first presence and size of every file (no reading), then the SHA-1 of every
piece whose files are all there at the right size, on every core. A failed piece inside one file
makes that file CORRUPT; a failed piece spanning several files makes each of them a SUSPECT (one of
them is wrong, the piece cannot say which). Pieces touching a missing or wrongly sized file cannot be
checked, so the other files they cover are UNCHECKED where no checked piece vouches for them.
"""

from __future__ import annotations

import hashlib
import os
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel

from release.hashing import OPEN_FLAGS, READ_SIZE, HashEngine
from release.progress import ProgressFn, Ticker, no_progress
from release.torrents.metainfo import Metainfo, load_torrent
from release.torrents.sizes import PIECE_HASH

Status = Literal["OK", "CORRUPT", "SUSPECT", "MISSING", "UNCHECKED"]
STATUSES: tuple[Status, ...] = ("OK", "CORRUPT", "SUSPECT", "MISSING", "UNCHECKED")
GROUP_BYTES = 64 << 20


class FileProblem(BaseModel):
    """A file that is not OK, and why."""

    path: str
    status: Status
    reason: str


class TorrentCheck(BaseModel):
    """The result of checking one .torrent's data."""

    torrent: str
    info_hash: str
    files: int
    bytes: int
    pieces: int
    pieces_ok: int
    pieces_failed: int
    pieces_unchecked: int
    counts: dict[str, int]
    problems: list[FileProblem]

    def failed(self, complete: bool) -> bool:
        """Any failed piece; with `complete`, also anything missing or unchecked."""
        return self.pieces_failed > 0 or (complete and self.pieces_unchecked > 0)


_STATE: dict[str, Any] = {}


def _share(root: str, paths: list[str], starts: np.ndarray, lengths: np.ndarray, meta: Metainfo) -> None:
    _STATE.update(root=root, paths=paths, starts=starts, lengths=lengths, meta=meta)


def _check_pieces(span: tuple[int, int]) -> tuple[list[int], list[str], int]:
    """Worker side: hash pieces [first, last) from the files; (failed pieces, read errors, bytes read)."""
    first, last = span
    root, paths, starts, lengths, meta = (_STATE[k] for k in ("root", "paths", "starts", "lengths", "meta"))
    size = meta.piece_length
    low, high = first * size, min(last * size, int(starts[-1] + lengths[-1]))
    failed: list[int] = []
    errors: list[str] = []
    piece, piece_index, filled = hashlib.sha1(), first, 0
    index = int(np.searchsorted(starts + lengths, low, side="right"))
    position = low
    while position < high:
        length = int(lengths[index])
        begin = position - int(starts[index])
        end = min(length, high - int(starts[index]))
        for chunk in _read_range(f"{root}/{paths[index]}", begin, end, errors):
            view = memoryview(chunk)
            while len(view):
                take = min(len(view), size - filled)
                piece.update(view[:take])
                filled += take
                view = view[take:]
                if filled == size:
                    if piece.digest() != meta.pieces[piece_index * PIECE_HASH : (piece_index + 1) * PIECE_HASH]:
                        failed.append(piece_index)
                    piece, piece_index, filled = hashlib.sha1(), piece_index + 1, 0
        position += end - begin
        index += 1
    if filled:
        if piece.digest() != meta.pieces[piece_index * PIECE_HASH : (piece_index + 1) * PIECE_HASH]:
            failed.append(piece_index)
    return failed, errors, high - low


def _read_range(path: str, begin: int, end: int, errors: list[str]) -> Iterator[bytes]:
    """Bytes [begin, end) of a file; zeros where it cannot be read (the piece then fails)."""
    try:
        fd = os.open(path, OPEN_FLAGS)
    except OSError as exc:
        errors.append(f"{path}: {exc.strerror}")
        yield from _zeros(end - begin)
        return
    try:
        position = begin
        while position < end:
            try:
                chunk = os.pread(fd, min(READ_SIZE, end - position), position)
            except OSError as exc:
                errors.append(f"{path}: {exc.strerror}")
                chunk = b""
            if not chunk:
                yield from _zeros(end - position)
                return
            position += len(chunk)
            yield chunk
    finally:
        os.close(fd)


def _zeros(count: int) -> Iterator[bytes]:
    while count > 0:
        yield bytes(min(count, READ_SIZE))
        count -= READ_SIZE


def _presence(root: Path, meta: Metainfo) -> tuple[np.ndarray, list[FileProblem]]:
    """Per file: usable (present, regular, right size)? And the problems found without reading."""
    usable = np.zeros(len(meta.paths), dtype=bool)
    problems: list[FileProblem] = []
    for index, (path, length) in enumerate(zip(meta.paths, meta.lengths, strict=True)):
        try:
            st = os.lstat(root / path)
        except FileNotFoundError:
            problems.append(FileProblem(path=path, status="MISSING", reason="not on disk"))
            continue
        except OSError as exc:
            problems.append(FileProblem(path=path, status="CORRUPT", reason=f"cannot stat: {exc.strerror}"))
            continue
        if not stat.S_ISREG(st.st_mode):
            problems.append(FileProblem(path=path, status="CORRUPT", reason="not a regular file"))
        elif st.st_size != length:
            problems.append(FileProblem(path=path, status="CORRUPT", reason=f"size {st.st_size}, expected {length}"))
        else:
            usable[index] = True
    return usable, problems


def _spans(checkable: np.ndarray, per_group: int) -> Iterator[tuple[int, int]]:
    """Runs of consecutive checkable pieces, cut every `per_group` pieces."""
    indexes = np.flatnonzero(checkable)
    if not len(indexes):
        return
    breaks = np.flatnonzero(np.diff(indexes) != 1) + 1
    for run in np.split(indexes, breaks):
        for start in range(int(run[0]), int(run[-1]) + 1, per_group):
            yield start, min(start + per_group, int(run[-1]) + 1)


def check_torrent(
    root: Path, torrent: Path, workers: int | None = None, progress: ProgressFn = no_progress
) -> TorrentCheck:
    """Check the files of one .torrent under `root` (the release root: the torrent's name folder)."""
    meta = load_torrent(torrent)
    lengths = np.array(meta.lengths, dtype=np.int64)
    starts = np.cumsum(lengths) - lengths
    ends = starts + lengths
    usable, problems = _presence(root, meta)
    size, count = meta.piece_length, meta.piece_count
    piece_low = np.arange(count, dtype=np.int64) * size
    piece_high = np.minimum(piece_low + size, int(lengths.sum()))
    nonzero = np.flatnonzero(lengths > 0)
    first = nonzero[np.searchsorted(ends[nonzero], piece_low, side="right")] if count else nonzero[:0]
    last = nonzero[np.searchsorted(starts[nonzero], piece_high, side="left") - 1] if count else nonzero[:0]
    bad = np.r_[0, np.cumsum(~usable & (lengths > 0))]  # a missing empty file blocks no piece
    checkable = bad[last + 1] - bad[first] == 0 if count else np.zeros(0, dtype=bool)
    ticker = Ticker(progress, "pieces", None, int((piece_high - piece_low)[checkable].sum()) if count else 0)
    failed = np.zeros(count, dtype=bool)
    read_errors: list[str] = []
    spans = list(_spans(checkable, max(1, GROUP_BYTES // size)))
    with HashEngine(workers, _share, (str(root), meta.paths, starts, lengths, meta)) as engine:
        for bad_pieces, errors, nbytes in engine.map_batches(_check_pieces, spans):
            failed[bad_pieces] = True
            read_errors.extend(errors)
            ticker.add(0, nbytes)
    ticker.finish()
    problems += _blame(meta, lengths, starts, first, last, failed, checkable, usable)
    problems.sort(key=lambda p: p.path)
    counts = {status: 0 for status in STATUSES}
    for problem in problems:
        counts[problem.status] += 1
    counts["OK"] = len(meta.paths) - len(problems)
    return TorrentCheck(
        torrent=str(torrent),
        info_hash=meta.info_hash,
        files=len(meta.paths),
        bytes=int(lengths.sum()),
        pieces=count,
        pieces_ok=int((checkable & ~failed).sum()),
        pieces_failed=int(failed.sum()),
        pieces_unchecked=int((~checkable).sum()),
        counts=counts,
        problems=problems,
    )


def _blame(
    meta: Metainfo,
    lengths: np.ndarray,
    starts: np.ndarray,
    first: np.ndarray,
    last: np.ndarray,
    failed: np.ndarray,
    checkable: np.ndarray,
    usable: np.ndarray,
) -> list[FileProblem]:
    """Statuses of the present, right-sized files from the piece results."""
    status: dict[int, FileProblem] = {}
    for piece in np.flatnonzero(failed).tolist():
        low, high = int(first[piece]), int(last[piece])
        if low == high:
            status[low] = FileProblem(path=meta.paths[low], status="CORRUPT", reason=f"piece {piece} fails")
            continue
        for index in range(low, high + 1):
            if usable[index] and index not in status:
                reason = f"shares failed piece {piece} with {high - low} other file(s)"
                status[index] = FileProblem(path=meta.paths[index], status="SUSPECT", reason=reason)
    size = meta.piece_length
    for piece in np.flatnonzero(~checkable).tolist():
        for index in range(int(first[piece]), int(last[piece]) + 1):
            if not usable[index] or index in status:
                continue
            own = range(int(starts[index]) // size, (int(starts[index] + lengths[index]) - 1) // size + 1)
            if any(not checkable[p] for p in own):
                reason = "its pieces also hold a missing or wrongly sized file"
                status[index] = FileProblem(path=meta.paths[index], status="UNCHECKED", reason=reason)
    return list(status.values())
