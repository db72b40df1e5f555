"""`verify`: check a full or partial download against a manifest, file by file.

Tiered like bagit: the whole manifest is validated first (on the workers, before the tree is
touched), then every file is checked where it should be, on the workers: presence, type, size,
then the hash (xxh3-128 by default, sha256 when strong, none when fast). Files on disk that the
manifest does not list (EXTRA) are found by counting the tree's entries, and only when the count
disagrees by a merge of the sorted tree with the manifest. Memory stays flat however many files
there are; every mismatch is collected, nothing stops at the first.
"""

from __future__ import annotations

import errno
import json
import os
import stat
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO, Literal, NamedTuple

import numpy as np
import xxhash
from pydantic import BaseModel

from release.errors import BadInput, InputIOError, ManifestFormatError, UnsafePath
from release.hashing import Code, HashEngine, batched, read_files
from release.layout import ParsedPath, bucket_range_label, check_relpath, pack, parse_path, sort_key, strip_dot_slash
from release.manifest.io import ORDER_PROBLEM, Line, ManifestReader, SortKey, check_count, parse_line, prescan_paths
from release.models import ManifestRecord
from release.progress import ProgressFn, Ticker, no_progress
from release.walk import FileTable, walk

Mode = Literal["fast", "xxh3_128", "sha256"]
STATUSES = ("OK", "CORRUPT", "MISSING", "EXTRA")
MAX_PROBLEMS = 1000


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


def _path_hash(path: str) -> int:
    return int(xxhash.xxh3_64_intdigest(path.encode("utf-8", "surrogateescape")))


class ListedSet:
    """An rsync --files-from list as a sorted array of 64-bit path hashes (8 bytes a path)."""

    def __init__(self, source: Path) -> None:
        self.source = source
        hashes = np.fromiter((_path_hash(p) for _, p in self.paths()), dtype=np.uint64)
        self.hashes = np.unique(hashes)

    def paths(self) -> Iterator[tuple[int, str]]:
        """(line number, path) of every listed path, validated; re-reads the file each time."""
        try:
            handle = open(self.source, encoding="utf-8", errors="surrogateescape")
        except OSError as exc:
            raise InputIOError(str(self.source), f"cannot open list: {exc.strerror}") from exc
        with handle:
            for lineno, line in enumerate(handle, start=1):
                line = line.rstrip("\n")
                if not line.strip() or line.startswith("#"):
                    continue
                path = strip_dot_slash(line).rstrip("/")
                try:
                    check_relpath(path)
                except UnsafePath as exc:
                    raise BadInput(f"{self.source}:{lineno}", exc.problem) from exc
                yield lineno, path

    def lookup(self, paths: list[str]) -> np.ndarray:
        """Index of each path in `hashes`, or -1 when not listed."""
        wanted = np.fromiter((_path_hash(p) for p in paths), dtype=np.uint64, count=len(paths))
        index = np.searchsorted(self.hashes, wanted)
        index[index >= len(self.hashes)] = 0
        found = self.hashes[index] == wanted if len(self.hashes) else np.zeros(len(paths), bool)
        return np.where(found, index, -1)


class _Outcome(NamedTuple):
    error: ManifestFormatError | None
    first_key: SortKey | None
    last_key: SortKey | None
    counts: Counter[tuple[str, str, str]]
    problems: list[tuple[str, str, str]]
    statuses: list[tuple[str, str, str]] | None
    matched: list[int]
    present: int
    files: int
    bytes: int
    checked_bytes: int


_CTX: dict[str, Any] = {}


def _set_context(root: str, manifest: str, mode: Mode, listed: ListedSet | None, report: bool) -> None:
    _CTX.update(root=root, manifest=manifest, mode=mode, listed=listed, report=report)


def _kind(mode: int) -> str:
    if stat.S_ISDIR(mode):
        return "directory"
    return "symlink" if stat.S_ISLNK(mode) else "special file"


def _stat_file(full: str, size: int) -> tuple[str, str, bool]:
    """(status, reason, present) of one expected file, from its lstat alone (--fast)."""
    try:
        st = os.lstat(full)
    except (FileNotFoundError, NotADirectoryError):
        return "MISSING", "not on disk", False
    except OSError as exc:
        return "CORRUPT", f"cannot stat: {exc.strerror}", True
    if not stat.S_ISREG(st.st_mode):
        return "CORRUPT", f"is a {_kind(st.st_mode)}, not a regular file", True
    return ("OK", "", True) if st.st_size == size else ("CORRUPT", f"size {st.st_size}, expected {size}", True)


def _read_outcome(code: Code, value: int, size: int) -> tuple[str, str, bool]:
    """(status, reason, present) of a file the native read could not hash."""
    if code is Code.OPEN:
        if value in (errno.ENOENT, errno.ENOTDIR):
            return "MISSING", "not on disk", False
        if value == errno.ELOOP:
            return "CORRUPT", "is a symlink, not a regular file", True
        return "CORRUPT", f"cannot read: {os.strerror(value)}", True
    if code is Code.NOT_REGULAR:
        return "CORRUPT", f"is a {_kind(value)}, not a regular file", True
    if code is Code.SIZE:
        return "CORRUPT", f"size {value}, expected {size}", True
    if code is Code.SHORT:
        return "CORRUPT", f"shrank to {value} bytes while being read", True
    return "CORRUPT", f"cannot read: {os.strerror(value)}", True


def _check_files(root: str, records: list[ManifestRecord], mode: Mode) -> list[tuple[str, str, bool]]:
    """(status, reason, present) of each expected file: one native read pass for the hashing modes."""
    if mode == "fast":
        return [_stat_file(f"{root}/{record.path}", record.size) for record in records]
    paths = [record.path.encode("utf-8", "surrogateescape") for record in records]
    got = read_files(root, paths, [record.size for record in records], algorithms=(mode,))
    out = []
    for n, record in enumerate(records):
        if got.codes[n]:
            out.append(_read_outcome(Code(got.codes[n]), got.value(n), record.size))
        elif got.hex_digests(n, (mode,))[0] == getattr(record, mode):
            out.append(("OK", "", True))
        else:
            out.append(("CORRUPT", f"{mode} differs", True))
    return out


def _tally_key(parsed: ParsedPath) -> tuple[str, str]:
    return parsed.subset, bucket_range_label(parsed.bucket)


def _verify_batch(lines: list[Line]) -> _Outcome:
    """Worker side: validate a batch of manifest lines, then check every record it expects."""
    root, mode, listed = _CTX["root"], _CTX["mode"], _CTX["listed"]
    out = _Outcome(None, None, None, Counter(), [], [] if _CTX["report"] else None, [], 0, 0, 0, 0)
    try:
        records = [parse_line(_CTX["manifest"], lineno, line) for lineno, line in lines]
    except ManifestFormatError as exc:
        return out._replace(error=exc)
    index = listed.lookup([r.path for r in records]) if listed is not None else None
    present = files = nbytes = checked = 0
    keys: list[SortKey] = []
    expected: list[tuple[ManifestRecord, ParsedPath]] = []
    for n, record in enumerate(records):
        parsed = parse_path(record.path)
        keys.append((pack(parsed), record.path.split("/")))
        if len(keys) > 1 and keys[-1] <= keys[-2]:
            return out._replace(error=ManifestFormatError(_CTX["manifest"], lines[n][0], ORDER_PROBLEM))
        if index is not None:
            if index[n] < 0:
                continue
            out.matched.append(int(index[n]))
        expected.append((record, parsed))
    checks = _check_files(root, [record for record, _ in expected], mode)
    for (record, parsed), (status, reason, found) in zip(expected, checks, strict=True):
        present += found
        files += 1
        nbytes += record.size
        checked += record.size if found else 0
        out.counts[(*_tally_key(parsed), status)] += 1
        if status != "OK":
            out.problems.append((record.path, status, reason))
        if out.statuses is not None:
            out.statuses.append((record.path, status, reason))
    return out._replace(
        first_key=keys[0], last_key=keys[-1], present=present, files=files, bytes=nbytes, checked_bytes=checked
    )


class _Tally:
    def __init__(self, report_out: BinaryIO | None, refetch_out: BinaryIO | None) -> None:
        self.counts: Counter[tuple[str, str, str]] = Counter()
        self.problems: list[Problem] = []
        self.truncated = False
        self.report_out = report_out
        self.refetch_out = refetch_out

    def merge(self, outcome: _Outcome) -> None:
        self.counts.update(outcome.counts)
        for path, status, reason in outcome.problems:
            self._problem(path, status, reason)
        for entry in outcome.statuses or ():
            self._report(*entry)

    def add(self, path: str, status: str, reason: str) -> None:
        self.counts[(*_tally_key(parse_path(path)), status)] += 1
        self._problem(path, status, reason)
        self._report(path, status, reason)

    def _problem(self, path: str, status: str, reason: str) -> None:
        if len(self.problems) < MAX_PROBLEMS:
            self.problems.append(Problem(path=path, status=status, reason=reason))
        else:
            self.truncated = True
        if self.refetch_out is not None and status in ("CORRUPT", "MISSING"):
            self.refetch_out.write(f"./{path}\n".encode("utf-8", "surrogateescape"))

    def _report(self, path: str, status: str, reason: str) -> None:
        if self.report_out is not None:
            line = json.dumps({"path": path, "status": status, "reason": reason}, ensure_ascii=False)
            self.report_out.write(line.encode("utf-8", "surrogateescape") + b"\n")

    def summary(self) -> tuple[StatusCounts, dict[str, StatusCounts], dict[str, dict[str, StatusCounts]]]:
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
    """Non-directory entries under `root` (files, symlinks, specials), from directory listings only."""
    count = 0
    stack = [str(root)]
    while stack:
        folder = stack.pop()
        try:
            with os.scandir(folder) as it:
                for entry in it:
                    if entry.is_dir(follow_symlinks=False):
                        stack.append(entry.path)
                    else:
                        count += 1
        except OSError as exc:
            raise InputIOError(folder, f"cannot list folder: {exc.strerror}") from exc
    return count


def _extras(root: Path, manifest: Path) -> Iterator[tuple[str, str]]:
    """Entries on disk that the manifest does not list, by a merge of both in manifest order."""
    table = FileTable()
    kinds: dict[int, str] = {}
    for entry in walk(str(root)):
        if entry.kind == "error":
            raise InputIOError(str(root / entry.path), f"cannot list or stat: {entry.detail}")
        if entry.kind != "file":
            kinds[len(table)] = entry.kind
        table.add(entry.path)
    expected = (json.loads(line)["path"] for _, line in ManifestReader(manifest).lines())
    want = next(expected, None)
    want_key = sort_key(want) if want is not None else None
    for row in table.order().tolist():
        path = table.path(row)
        key = sort_key(path)
        while want_key is not None and want_key < key:
            want = next(expected, None)
            want_key = sort_key(want) if want is not None else None
        if want != path:
            kind = kinds.get(row, "file")
            yield path, "not in the manifest" if kind == "file" else f"{kind} not in the manifest"


def _outcomes(engine: HashEngine, manifest: Path) -> Iterator[_Outcome]:
    return engine.map_batches(_verify_batch, ManifestReader(manifest).line_batches())


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
    progress: ProgressFn = no_progress,
) -> VerifyReport:
    """Verify `root` against `manifest`; see the module docstring for the tiers."""
    listed = ListedSet(files_from) if files_from is not None else None
    tally = _Tally(report_out, refetch_out)
    header = prescan_paths(manifest)  # refuses unsafe paths before the tree is read
    if not root.is_dir():
        raise BadInput(str(root), "not a directory")
    setup = (str(root), str(manifest), mode, listed, report_out is not None)
    present = checked = unknown = records = 0
    last_key: SortKey | None = None
    # the hashing modes spend their time in the native loop (threads); --fast is lstat in Python (processes)
    with HashEngine(workers, _set_context, setup, threads=mode != "fast") as engine:
        on_disk = count_entries(root) if listed is None else 0
        matched = np.zeros(len(listed.hashes) if listed is not None else 0, dtype=bool)
        ticker = Ticker(progress, "verify", header.files, header.bytes)
        for batch, outcome in zip(ManifestReader(manifest).line_batches(), _outcomes(engine, manifest), strict=True):
            if outcome.error is not None:
                raise outcome.error
            if last_key is not None and outcome.first_key is not None and outcome.first_key <= last_key:
                raise ManifestFormatError(str(manifest), batch[0][0], ORDER_PROBLEM)
            last_key = outcome.last_key
            records += len(batch)
            tally.merge(outcome)
            present += outcome.present
            checked += outcome.checked_bytes
            matched[outcome.matched] = True
            ticker.add(outcome.files, outcome.bytes)
        ticker.finish()
    check_count(str(manifest), header, records)
    if listed is None and on_disk != present:
        for path, reason in _extras(root, manifest):
            tally.add(path, "EXTRA", reason)
    elif listed is not None:
        unknown = _listed_leftovers(root, listed, matched, tally)
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


def _listed_leftovers(root: Path, listed: ListedSet, matched: np.ndarray, tally: _Tally) -> int:
    """Listed paths the manifest lacks: EXTRA when on disk, else counted as unknown."""
    unknown = 0
    for batch in batched(path for _, path in listed.paths()):
        for path, index in zip(batch, listed.lookup(batch).tolist(), strict=True):
            if index < 0 or matched[index]:
                continue
            matched[index] = True  # a path listed twice is reported once
            if os.path.lexists(root / path):
                tally.add(path, "EXTRA", "listed, on disk, but not in the manifest")
            else:
                unknown += 1
    return unknown
