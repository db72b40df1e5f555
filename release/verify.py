"""`verify`: check a full or partial download against a manifest, file by file.

Tiered like bagit. The whole manifest is validated first, before the tree is touched: its records
are read as columns (tokenised in C on every core, lines not in canonical form validated in full,
unsafe paths refused, the order and the header's totals checked) and kept in a compact form, ~75
bytes a record. Then the files they list are checked on worker threads in one native pass each:
presence, type, size, then the hash (xxh3-128 by default, sha256 when strong, none when fast: an
lstat). Files on disk that the manifest does not list (EXTRA) are found by counting the tree's
entries, and only when the count disagrees by a merge of the sorted tree with the manifest.
Memory grows by those ~75 bytes a record (a million records: ~75 MB); every mismatch is collected,
nothing stops at the first.
"""

from __future__ import annotations

import errno
import functools
import json
import os
import stat
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import BinaryIO, Literal, NamedTuple

import numpy as np
from pydantic import BaseModel

from release import _listing
from release.errors import BadInput, InputIOError
from release.filelists import list_line, read_list
from release.hashindex import lookup, path_hashes
from release.hashing import (
    HASH,
    IO_DEPTH,
    STAT_ONLY,
    Code,
    HashEngine,
    batched,
    read_files,
    reader_threads,
    row_batches,
)
from release.layout import (
    RANGE_WIDTH,
    SUBSET_RANK,
    bucket_range_label,
    parse_path,
)
from release.manifest.columns import Columns, column_chunks, load_columns
from release.manifest.merge import merge_join
from release.progress import ProgressFn, Ticker, no_progress
from release.tree import walk_error
from release.walk import UNDECODABLE, FileTable, walk

Mode = Literal["fast", "xxh3_128", "sha256"]
STATUSES = ("OK", "CORRUPT", "MISSING", "EXTRA")
MAX_PROBLEMS = 1000
JOB_FILES = 4096  # files a worker thread checks at a time: fewer results for the main thread to tally


class StatusCounts(BaseModel):
    """Files per status."""

    OK: int = 0
    CORRUPT: int = 0
    MISSING: int = 0
    EXTRA: int = 0


class Problem(BaseModel):
    """One file that is not OK."""

    path: str
    status: str
    reason: str


class VerifyReport(BaseModel):
    """The verification result: counts overall, per subset and per bucket range, and problems."""

    root: str
    manifest: str
    mode: str
    files_from: str | None
    complete: bool
    totals: StatusCounts
    bytes_checked: int
    by_subset: dict[str, StatusCounts]
    by_range: dict[str, dict[str, StatusCounts]]
    listed_not_in_manifest: int
    problems: list[Problem]
    problems_truncated: bool

    @property
    def failed(self) -> bool:
        """True when the result should exit 1."""
        t = self.totals
        return t.CORRUPT > 0 or (self.complete and (t.MISSING > 0 or t.EXTRA > 0))


def _encode(path: str) -> bytes:
    return path.encode("utf-8", "surrogateescape")


class ListedSet:
    """An rsync --files-from list as a sorted array of 64-bit path hashes (8 bytes a path)."""

    def __init__(self, source: Path) -> None:
        self.source = source
        self.hashes = np.unique(path_hashes(_encode(p) for _, p in self.paths()))

    def paths(self) -> Iterator[tuple[int, str]]:
        """(line number, path) of every listed path, validated; re-reads the file each time."""
        return read_list(self.source)

    def lookup(self, paths: list[bytes]) -> np.ndarray:
        """Index of each path (UTF-8) in `hashes`, or -1 when not listed."""
        return lookup(self.hashes, path_hashes(paths))


class _Job(NamedTuple):
    """Files to check: some rows of a chunk of the manifest."""

    columns: Columns
    rows: np.ndarray  # indices into columns


class _Checked(NamedTuple):
    """What `_check` found: a status per row of the job, and why for each that is not OK."""

    job: _Job
    status: np.ndarray  # int8, index into STATUSES
    reasons: dict[int, str]  # position in job.rows -> reason
    present: int
    checked_bytes: int


def _kind(mode: int) -> str:
    if stat.S_ISDIR(mode):
        return "directory"
    return "symlink" if stat.S_ISLNK(mode) else "special file"


def _read_outcome(code: Code, value: int, size: int, verb: str) -> tuple[str, str]:
    """(status, reason) of a file the native read (or lstat, when `verb` is "stat") found wanting."""
    if code is Code.OPEN:
        if value in (errno.ENOENT, errno.ENOTDIR):
            return "MISSING", "not on disk"
        if value == errno.ELOOP:
            return "CORRUPT", "is a symlink, not a regular file"
        return "CORRUPT", f"cannot {verb}: {os.strerror(value)}"
    if code is Code.NOT_REGULAR:
        return "CORRUPT", f"is a {_kind(value)}, not a regular file"
    if code is Code.SIZE:
        return "CORRUPT", f"size {value}, expected {size}"
    if code is Code.SHORT:
        return "CORRUPT", f"shrank to {value} bytes while being read"
    return "CORRUPT", f"cannot {verb}: {os.strerror(value)}"


def _check(root: str, mode: Mode, job: _Job) -> _Checked:
    """Worker side: check the job's files in one native pass (lstat only for --fast)."""
    columns, rows = job
    sizes = columns.sizes[rows]
    field = None if mode == "fast" else mode
    got = read_files(
        root,
        columns.path_spans(rows),
        sizes,
        algorithms=(field,) if field else (),
        hash_flags=(HASH if field else STAT_ONLY) * len(rows),
    )
    codes = np.frombuffer(got.codes, np.uint8)
    status = np.zeros(len(rows), np.int8)
    reasons: dict[int, str] = {}
    if field:
        computed = np.frombuffer(got.digests, np.uint8).reshape(len(rows), -1)
        differs = (codes == 0) & (computed != columns.digests[rows]).any(axis=1)
        status[differs] = STATUSES.index("CORRUPT")
        reasons.update(dict.fromkeys(np.flatnonzero(differs).tolist(), f"{mode} differs"))
    for n in np.flatnonzero(codes).tolist():
        name, reasons[n] = _read_outcome(Code(codes[n]), got.value(n), int(sizes[n]), "read" if field else "stat")
        status[n] = STATUSES.index(name)
    found = status != STATUSES.index("MISSING")
    # `present` is compared with count_entries, which counts every entry but folders: a folder where a
    # file should be must not stand in for an extra file elsewhere
    folders = [n for n in np.flatnonzero(codes == Code.NOT_REGULAR).tolist() if stat.S_ISDIR(got.value(n))]
    return _Checked(job, status, reasons, int(found.sum()) - len(folders), int(sizes[found].sum()))


def _jobs(chunks: list[Columns], listed: ListedSet | None, matched: np.ndarray) -> Iterator[_Job]:
    """The files to check, in batches: a chunk of the manifest at a time, in folder order within it (the
    kernel's caches serve neighbours in one folder far cheaper than a jump to another folder per file, as
    manifest order makes: 979k tiny files, 1.2 s less system time). Each chunk is let go once its jobs are
    out."""
    chunks.reverse()
    while chunks:
        columns = chunks.pop()
        rows = np.lexsort((columns.keys, columns.rank.astype(np.int64) * 10_000 + columns.bucket))
        if listed is not None:
            index = listed.lookup(columns.paths)
            wanted = index >= 0
            matched[index[wanted]] = True
            rows = rows[wanted[rows]]
        for part in row_batches(columns.sizes, rows, JOB_FILES):
            yield _Job(columns, part)


_RANK_NAMES = {rank: name for name, rank in SUBSET_RANK.items()}
_NO_RANGE = 10_000 // RANGE_WIDTH  # the range index of files without a bucket (buckets are 0000-9999 at most)


class Tally:
    """Counts by subset, bucket range and status; keeps the problems; writes the report and refetch lines."""

    def __init__(self, report_out: BinaryIO | None, refetch_out: BinaryIO | None) -> None:
        self.counts: Counter[tuple[str, str, str]] = Counter()
        self.problems: list[Problem] = []
        self.truncated = False
        self.report_out = report_out
        self.refetch_out = refetch_out

    def merge(self, checked: _Checked) -> None:
        """Count a checked job by subset, bucket range and status; keep its problems."""
        columns, rows = checked.job
        bucket = columns.bucket[rows].astype(np.int64)
        # one integer per (subset, bucket range, status), counted by bincount (np.unique over rows cost
        # ~1 ms a job: 0.9 s of the main thread at a million files)
        spot = np.where(bucket >= 0, bucket // RANGE_WIDTH, _NO_RANGE)
        key = (columns.rank[rows].astype(np.int64) * (_NO_RANGE + 1) + spot) * len(STATUSES) + checked.status
        counts = np.bincount(key)
        for value in np.flatnonzero(counts).tolist():
            rest, status = divmod(value, len(STATUSES))
            rank, spot_value = divmod(rest, _NO_RANGE + 1)
            low = None if spot_value == _NO_RANGE else spot_value * RANGE_WIDTH
            self.counts[(_RANK_NAMES[rank], bucket_range_label(low), STATUSES[status])] += int(counts[value])
        for n in sorted(checked.reasons):
            self._problem(columns.path(int(rows[n])), STATUSES[checked.status[n]], checked.reasons[n])
        if self.report_out is not None:
            for n, row in enumerate(rows.tolist()):
                self._report(columns.path(row), STATUSES[checked.status[n]], checked.reasons.get(n, ""))

    def add(self, path: str, status: str, reason: str = "") -> None:
        """Count one file; a status other than OK is a problem."""
        parsed = parse_path(path)
        self.counts[(parsed.subset, bucket_range_label(parsed.bucket), status)] += 1
        if status != "OK":
            self._problem(path, status, reason)
        self._report(path, status, reason)

    def _problem(self, path: str, status: str, reason: str) -> None:
        if len(self.problems) < MAX_PROBLEMS:
            self.problems.append(Problem(path=path, status=status, reason=reason))
        else:
            self.truncated = True
        if self.refetch_out is not None and status in ("CORRUPT", "MISSING"):
            self.refetch_out.write(list_line(path))

    def _report(self, path: str, status: str, reason: str) -> None:
        if self.report_out is not None:
            line = json.dumps({"path": path, "status": status, "reason": reason}, ensure_ascii=False)
            self.report_out.write(line.encode("utf-8", "surrogateescape") + b"\n")

    def summary(self) -> tuple[StatusCounts, dict[str, StatusCounts], dict[str, dict[str, StatusCounts]]]:
        """Totals, per subset, per subset and bucket range."""
        totals = StatusCounts()
        by_subset: dict[str, StatusCounts] = {}
        by_range: dict[str, dict[str, StatusCounts]] = {}
        for (subset, label, status), n in sorted(self.counts.items()):
            for counts in (
                totals,
                by_subset.setdefault(subset, StatusCounts()),
                by_range.setdefault(subset, {}).setdefault(label, StatusCounts()),
            ):
                setattr(counts, status, getattr(counts, status) + n)
        return totals, by_subset, by_range


def count_entries(root: Path) -> int:
    """Non-directory entries under `root` (files, symlinks, specials), from directory listings only (in C)."""
    try:
        return _listing.count_entries(str(root))
    except OSError as exc:
        raise InputIOError(exc.filename, f"cannot list folder: {exc.strerror}") from exc


def _extras(root: Path, manifest: Path) -> Iterator[tuple[str, str]]:
    """Entries on disk that the manifest does not list, by a merge of both in manifest order."""
    table = FileTable()
    kinds: dict[int, str] = {}
    for entry in walk(str(root)):
        if entry.kind == "error":
            raise walk_error(root, entry)
        if entry.kind != "file":
            kinds[len(table)] = entry.kind
        table.add(entry.path)
    expected = (columns.path(row) for columns in column_chunks(manifest, None) for row in range(len(columns)))
    for row, listed in merge_join(table.order().tolist(), expected, table.path, str):
        if row is not None and listed is None:
            yield table.path(row), _extra_reason(kinds.get(row, "file"))


def _extra_reason(kind: str) -> str:
    if kind == "file":
        return "not in the manifest"
    if kind == UNDECODABLE:
        return "name is not UTF-8 (shown escaped); not in the manifest"
    return f"{kind} not in the manifest"


def verify_tree(
    root: Path,
    manifest: Path,
    *,
    mode: Mode = "xxh3_128",
    files_from: Path | None = None,
    complete: bool = False,
    report_out: BinaryIO | None = None,
    refetch_out: BinaryIO | None = None,
    workers: int | None = None,
    io_depth: int = IO_DEPTH,
    progress: ProgressFn = no_progress,
) -> VerifyReport:
    """Verify `root` against `manifest`; see the module docstring for the tiers. `io_depth` files are read
    at a time, each on a thread of its own (more than the cores: a disk serves a deeper queue faster);
    `workers=0` checks in this thread (for debugging)."""
    threads = reader_threads(workers, io_depth)
    listed = ListedSet(files_from) if files_from is not None else None
    tally = Tally(report_out, refetch_out)
    # every line, the order and the count, before the tree is read; kept as columns for the checks
    header, chunks = load_columns(manifest, None if mode == "fast" else mode, workers or None)
    if not root.is_dir():
        raise BadInput(str(root), "not a directory")
    present = checked = unknown = 0
    matched = np.zeros(len(listed.hashes) if listed is not None else 0, dtype=bool)
    # every mode spends its time in the native loop (GIL released): threads, nothing pickled
    with HashEngine(threads, threads=True) as engine, ThreadPoolExecutor(1) as lister:
        counting = lister.submit(count_entries, root)  # the listing of the tree (GIL released) beside the reads
        ticker = Ticker(progress, "verify", header.files, header.bytes)
        jobs = _jobs(chunks, listed, matched)
        for done in engine.map_batches(functools.partial(_check, str(root), mode), jobs):
            tally.merge(done)
            present += done.present
            checked += done.checked_bytes
            ticker.add(len(done.job.rows), int(done.job.columns.sizes[done.job.rows].sum()))
        ticker.finish()
        on_disk = counting.result()
    if on_disk != present:  # something on disk is not a file this check found: extras, or unlisted files
        for path, reason in _extras(root, manifest):
            if listed is not None and listed.lookup([_encode(path)])[0] >= 0:
                reason = "listed, on disk, but not in the manifest"
            tally.add(path, "EXTRA", reason)
    if listed is not None:
        unknown = _listed_absent(root, listed, matched)
    totals, by_subset, by_range = tally.summary()
    return VerifyReport(
        root=str(root),
        manifest=str(manifest),
        mode=mode,
        files_from=str(files_from) if files_from else None,
        complete=complete,
        totals=totals,
        bytes_checked=checked,
        by_subset=by_subset,
        by_range=by_range,
        listed_not_in_manifest=unknown,
        problems=tally.problems,
        problems_truncated=tally.truncated,
    )


def _listed_absent(root: Path, listed: ListedSet, matched: np.ndarray) -> int:
    """Listed paths that are neither in the manifest nor on disk (those on disk were reported as EXTRA)."""
    unknown = 0
    for batch in batched(path for _, path in listed.paths()):
        for path, index in zip(batch, listed.lookup([_encode(path) for path in batch]).tolist(), strict=True):
            if index < 0 or matched[index]:
                continue
            matched[index] = True  # a path listed twice is counted once
            if not os.path.lexists(root / path):
                unknown += 1
    return unknown
