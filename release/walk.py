"""Streaming walk of a release root, and a compact sorted table of millions of paths.

The walk never follows symlinks and yields one directory's entries at a time, sorted by name,
so the whole walk comes out in component-wise path order. `FileTable` holds paths, sizes and
mtimes in flat arrays (about 60 bytes a file) so a 3.7M-file tree can be sorted into manifest
order without millions of Python objects.
"""

from __future__ import annotations

import os
from array import array
from collections.abc import Iterator
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from release import _listing, _records
from release.hashing import PathSpans
from release.layout import RANK_SHIFT, packed_key
from release.pathcols import Layout, layout_of

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


KINDS = ("file", "symlink", "special", UNDECODABLE, "dir", "error")  # _listing's kind codes, in order
FILE_KIND, ERROR_KIND, DIR_KIND = KINDS.index("file"), KINDS.index("error"), KINDS.index("dir")


class Listing(NamedTuple):
    """Entries of folders as columns (`_listing.list_tree`): paths in one blob, one array entry each."""

    blob: bytes
    ends: np.ndarray  # int64 end offset of each path in blob
    sizes: np.ndarray  # int64: file size; errno for an 'error' entry
    mtimes: np.ndarray  # int64 ns
    kinds: np.ndarray  # uint8 index into KINDS

    def path(self, row: int) -> str:
        """Entry `row`'s path as text (surrogate escapes where it is not UTF-8)."""
        return span_text(self.blob, self.ends, row)

    def _spans(self, rows: np.ndarray) -> np.ndarray:
        """[start, end) in the blob of each of entries `rows`."""
        starts = np.concatenate(([0], self.ends[:-1]))
        return np.stack((starts[rows], self.ends[rows]), axis=1).astype(np.int64)

    def paths(self, rows: np.ndarray) -> list[bytes]:
        """The paths of entries `rows`, as bytes."""
        blob = self.blob
        return [blob[start:end] for start, end in self._spans(rows).tolist()]

    def take(self, rows: np.ndarray) -> Listing:
        """The listing of entries `rows` only, in that order."""
        spans = self._spans(rows)
        blob = _records.concat_spans(self.blob, spans.tobytes())
        ends = np.cumsum(spans[:, 1] - spans[:, 0]).astype(np.int64)
        return Listing(blob, ends, self.sizes[rows], self.mtimes[rows], self.kinds[rows])

    def files(self) -> tuple[np.ndarray, bytes, np.ndarray]:
        """(rows, paths blob, end offsets) of the regular files: the listing's own blob when all are files."""
        rows = np.flatnonzero(self.kinds == FILE_KIND)
        if len(rows) == len(self.kinds):
            return rows, self.blob, self.ends
        files = self.take(rows)
        return rows, files.blob, files.ends

    def entry(self, row: int, root: str) -> WalkEntry:
        """Entry `row` as a WalkEntry (a symlink's detail is its target, read under `root`)."""
        kind, path = KINDS[self.kinds[row]], self.path(row)
        if kind == UNDECODABLE:
            return WalkEntry(display_name(path), kind, detail="name is not UTF-8")
        if kind == "error":
            return WalkEntry(path or ".", kind, detail=os.strerror(int(self.sizes[row])))
        if kind == "file":
            return WalkEntry(path, kind, int(self.sizes[row]), int(self.mtimes[row]))
        return WalkEntry(path, kind, detail=_link_target(root, path) if kind == "symlink" else None)


def span_text(blob: bytes | bytearray, ends: np.ndarray, row: int) -> str:
    """Path `row` of a blob of paths (`ends`: their end offsets) as text (surrogate escapes where not UTF-8)."""
    return os.fsdecode(bytes(blob[ends[row - 1] if row else 0 : ends[row]]))


def _link_target(root: str, path: str) -> str:
    try:
        return os.readlink(os.path.join(root, path))
    except OSError as exc:
        return f"(unreadable: {exc.strerror})"


def list_tree(root: str, folders: list[str], recursive: bool = True) -> Listing:
    """The entries of `folders` (relative to `root`; "" is the root) as columns, in C with the GIL
    released: sorted by name within each folder, never following links; `recursive` descends into
    sub-folders in that order (the walk's order) instead of listing them. A folder that cannot be
    listed and an entry that cannot be stat'ed are 'error' entries (sizes: the errno)."""
    raw = _listing.list_tree(root, [os.fsencode(folder) for folder in folders], recursive)
    return Listing(
        raw[0],
        np.frombuffer(raw[1], np.int64),
        np.frombuffer(raw[2], np.int64),
        np.frombuffer(raw[3], np.int64),
        np.frombuffer(raw[4], np.uint8),
    )


def list_dir(root: str, folder: str) -> list[WalkEntry]:
    """The entries of one folder (relative to `root`), sorted by name, classified without following links.

    Kinds: 'dir', 'file', 'symlink', 'special', 'error' when an entry cannot be stat'ed, UNDECODABLE
    when its name is not UTF-8 (no manifest, list or torrent can carry it). Raises OSError when the
    folder itself cannot be listed.
    """
    listing = list_tree(root, [folder], recursive=False)
    entries = [listing.entry(row, root) for row in range(len(listing.kinds))]
    if entries and entries[0].kind == "error" and entries[0].path == (folder or "."):
        errno_value = int(listing.sizes[0])
        raise OSError(errno_value, os.strerror(errno_value), os.path.join(root, folder))
    return entries


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


def walk_listings(root: str, batch: int = 64) -> Iterator[Listing]:
    """`walk(root)` as listings, in the same order and with the same entries (no folder rows): many
    entries a call, classified in C. The root and each top-level folder are listed one level at a time;
    below that, runs of sibling folders are listed whole, `batch` folders a call."""
    top = list_tree(root, [""], recursive=False)
    for rows, is_dir in _runs(top):
        if not is_dir:
            yield top.take(rows)
            continue
        for row in rows.tolist():
            level = list_tree(root, [top.path(row)], recursive=False)
            for inner, inner_dirs in _runs(level):
                if not inner_dirs:
                    yield level.take(inner)
                    continue
                folders = [level.path(r) for r in inner.tolist()]
                for start in range(0, len(folders), batch):
                    yield list_tree(root, folders[start : start + batch])


def _runs(listing: Listing) -> Iterator[tuple[np.ndarray, bool]]:
    """The listing's rows as runs of folders and of everything else, in order."""
    is_dir = listing.kinds == DIR_KIND
    cuts = np.flatnonzero(np.diff(is_dir.astype(np.int8))) + 1
    for rows in np.split(np.arange(len(is_dir)), cuts):
        if len(rows):
            yield rows, bool(is_dir[rows[0]])


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

    def extend_listing(self, listing: Listing) -> None:
        """Append the files of a listing (other kinds are left out), keys computed on whole columns."""
        rows, blob, ends = listing.files()
        keys = layout_of(blob, ends, lambda row: span_text(blob, ends, row)).keys
        self.extend_paths(blob, ends, listing.sizes[rows], keys, listing.mtimes[rows])

    def extend_paths(
        self, blob: bytes, ends: np.ndarray, sizes: np.ndarray, keys: np.ndarray, mtimes: np.ndarray | None = None
    ) -> None:
        """Append rows whose paths lie end to end in `blob` (`ends`: each one's end offset), with their
        sizes, keys and mtimes (0 when not given)."""
        base = len(self._blob)
        self._keys.frombytes(keys.astype(np.int64).tobytes())
        self._sizes.frombytes(sizes.astype(np.int64).tobytes())
        self._mtimes.frombytes((np.zeros(len(ends), np.int64) if mtimes is None else mtimes.astype(np.int64)).tobytes())
        self._offsets.frombytes((ends.astype(np.int64) + base).tobytes())
        self._blob += blob

    def layout(self) -> Layout:
        """What the layout says of every row's path, computed on whole columns."""
        ends = np.frombuffer(self._offsets, np.int64)[1:]
        return layout_of(self._blob, ends, self.path)

    def rekey(self, keys: np.ndarray) -> None:
        """Order the rows by `keys` (one per row) from now on."""
        if len(keys) != len(self):
            raise ValueError(f"{len(keys)} keys for {len(self)} rows")
        self._keys = array("q", keys.astype(np.int64).tobytes())

    def spans(self, rows: np.ndarray) -> PathSpans:
        """The paths of `rows` as spans of the table's blob (the native read loop's form, nothing copied)."""
        offsets = np.frombuffer(self._offsets, np.int64)
        return PathSpans(self._blob, np.stack((offsets[rows], offsets[rows + 1]), axis=1))

    def path_lengths(self) -> np.ndarray:
        """The length in bytes (UTF-8) of every row's path."""
        return np.diff(np.frombuffer(self._offsets, np.int64))

    def mtimes(self) -> np.ndarray:
        """The mtimes of every row, as a read-only int64 view."""
        return np.frombuffer(self._mtimes, dtype=np.int64) if len(self) else np.zeros(0, np.int64)

    def path(self, row: int) -> str:
        """The path of row `row` (insertion index)."""
        return self._blob[self._offsets[row] : self._offsets[row + 1]].decode("utf-8", "surrogateescape")

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
