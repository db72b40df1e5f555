"""Streaming walk of a release root, and a compact sorted table of millions of paths.

The walk never follows symlinks and yields one directory's entries at a time, sorted by name,
so the whole walk comes out in component-wise path order. `FileTable` holds paths, sizes and
mtimes in flat arrays (about 60 bytes a file) so a 3.7M-file tree can be sorted into manifest
order without millions of Python objects.
"""

from __future__ import annotations

import os
import stat
from array import array
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from release.layout import RANK_SHIFT, packed_key

UNDECODABLE = "undecodable"  # an entry whose name is not UTF-8: reported (escaped), left out, never descended


def display_name(name: str) -> str:
    """A file name as text that is always valid UTF-8: bytes that are not UTF-8 become `\\xff` escapes."""
    return os.fsencode(name).decode("utf-8", "backslashreplace")


@dataclass(frozen=True, slots=True)
class WalkEntry:
    """One entry met by the walk. kind: 'file', 'symlink', 'special', 'error' or UNDECODABLE.

    An UNDECODABLE entry's path is its display form (escaped): it names the entry, it does not open it.
    """

    path: str
    kind: str
    size: int = 0
    mtime_ns: int = 0
    detail: str | None = None


def list_dir(root: str, folder: str) -> list[WalkEntry]:
    """The entries of one folder (relative to `root`), sorted by name, classified without following links.

    Kinds: 'dir', 'file', 'symlink', 'special', 'error' when an entry cannot be stat'ed, UNDECODABLE
    when its name is not UTF-8 (no manifest, list or torrent can carry it). Raises OSError when the
    folder itself cannot be listed.
    """
    prefix = f"{folder}/" if folder else ""
    with os.scandir(os.path.join(root, folder) if folder else root) as it:
        found = sorted(it, key=lambda e: e.name)
    out = []
    for entry in found:
        rel = prefix + entry.name
        if not entry.name.isascii():
            try:
                entry.name.encode("utf-8")
            except UnicodeEncodeError:
                out.append(WalkEntry(prefix + display_name(entry.name), UNDECODABLE, detail="name is not UTF-8"))
                continue
        try:
            st = entry.stat(follow_symlinks=False)
        except OSError as exc:
            out.append(WalkEntry(rel, "error", detail=exc.strerror or str(exc)))
            continue
        if stat.S_ISDIR(st.st_mode):
            out.append(WalkEntry(rel, "dir"))
        elif stat.S_ISREG(st.st_mode):
            out.append(WalkEntry(rel, "file", st.st_size, st.st_mtime_ns))
        elif stat.S_ISLNK(st.st_mode):
            out.append(WalkEntry(rel, "symlink", detail=os.readlink(entry.path)))
        else:
            out.append(WalkEntry(rel, "special"))
    return out


def walk(root: str, top: str = "") -> Iterator[WalkEntry]:
    """Yield every non-directory entry under `root/top`, sorted, never following symlinks.

    A directory that cannot be listed yields one 'error' entry naming it.
    """
    stack: list[Iterator[WalkEntry]] = []
    try:
        stack.append(iter(list_dir(root, top)))
    except OSError as exc:
        yield WalkEntry(top or ".", "error", detail=exc.strerror or str(exc))
        return
    while stack:
        entry = next(stack[-1], None)
        if entry is None:
            stack.pop()
        elif entry.kind != "dir":
            yield entry
        else:
            try:
                stack.append(iter(list_dir(root, entry.path)))
            except OSError as exc:
                yield WalkEntry(entry.path, "error", detail=exc.strerror or str(exc))


class FileTable:
    """Paths with size and mtime in flat arrays, iterable in manifest order.

    Append with `add`, then iterate `sorted_rows()`; memory is about 40 bytes a row plus the
    UTF-8 path bytes.
    """

    def __init__(self) -> None:
        self._keys = array("q")
        self._sizes = array("q")
        self._mtimes = array("q")
        self._offsets = array("q", [0])
        self._blob = bytearray()

    def __len__(self) -> int:
        return len(self._keys)

    def add(self, path: str, size: int = 0, mtime_ns: int = 0, key: int | None = None) -> None:
        """Append one row; `key` orders it (default: the manifest order's packed key)."""
        self._keys.append(packed_key(path) if key is None else key)
        self._sizes.append(size)
        self._mtimes.append(mtime_ns)
        self._blob += path.encode("utf-8", "surrogateescape")
        self._offsets.append(len(self._blob))

    def extend(self, other: FileTable) -> None:
        """Append every row of `other` (bulk copies, no per-row Python work)."""
        base = len(self._blob)
        self._keys.extend(other._keys)
        self._sizes.extend(other._sizes)
        self._mtimes.extend(other._mtimes)
        self._offsets.extend(o + base for o in other._offsets[1:])
        self._blob += other._blob

    def path(self, row: int) -> str:
        """The path of row `row` (insertion index)."""
        return self._blob[self._offsets[row] : self._offsets[row + 1]].decode("utf-8", "surrogateescape")

    def path_bytes(self, row: int) -> bytes:
        """The path of row `row` as the file system's bytes."""
        return bytes(self._blob[self._offsets[row] : self._offsets[row + 1]])

    def size(self, row: int) -> int:
        """The size of row `row` (insertion index)."""
        return self._sizes[row]

    def mtime_ns(self, row: int) -> int:
        """The mtime of row `row` (insertion index)."""
        return self._mtimes[row]

    def keys(self) -> np.ndarray:
        """The packed (subset rank, ID) keys of every row, as a read-only int64 view."""
        return np.frombuffer(self._keys, dtype=np.int64) if len(self) else np.zeros(0, np.int64)

    def sizes(self) -> np.ndarray:
        """The sizes of every row, as a read-only int64 view."""
        return np.frombuffer(self._sizes, dtype=np.int64) if len(self) else np.zeros(0, np.int64)

    def total_bytes(self) -> int:
        """Sum of the sizes."""
        return int(np.frombuffer(self._sizes, dtype=np.int64).sum()) if len(self) else 0

    def subset_totals(self) -> dict[int, tuple[int, int]]:
        """{subset rank: (files, bytes)} without sorting."""
        if not len(self):
            return {}
        ranks = np.frombuffer(self._keys, dtype=np.int64) >> RANK_SHIFT
        sizes = np.frombuffer(self._sizes, dtype=np.int64)
        files = np.bincount(ranks)
        nbytes = np.bincount(ranks, weights=sizes)
        return {int(r): (int(files[r]), int(nbytes[r])) for r in np.flatnonzero(files)}

    def order(self) -> np.ndarray:
        """Row indices in key order (by default manifest order: subset, ID), ties by path component-wise."""
        keys = np.frombuffer(self._keys, dtype=np.int64) if len(self) else np.zeros(0, np.int64)
        order = np.argsort(keys, kind="stable")
        sorted_keys = keys[order]
        ties = np.flatnonzero(sorted_keys[1:] == sorted_keys[:-1])
        start = 0
        for pos in ties:  # fix up the rare runs of equal (subset, ID) by path
            if pos < start:
                continue
            end = int(pos) + 1
            while end + 1 < len(sorted_keys) and sorted_keys[end + 1] == sorted_keys[pos]:
                end += 1
            run = sorted(order[pos : end + 1].tolist(), key=lambda r: self.path(r).split("/"))
            order[pos : end + 1] = run
            start = end + 1
        return order

    def sorted_rows(self) -> Iterator[tuple[str, int, int, int]]:
        """Yield (path, size, mtime_ns, packed key) in manifest order."""
        for row in self.order().tolist():
            yield self.path(row), self._sizes[row], self._mtimes[row], self._keys[row]
