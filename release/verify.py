"""`verify`: check a full or partial download against a manifest, file by file.

Tiered like bagit: the manifest is validated first (before the tree is touched), then presence
and size, then hashes (xxh3-128 by default, sha256 with strong, none with fast). The manifest,
the tree (or the --files-from list) and the results are merged as sorted streams, so memory stays
flat however many files there are. Every mismatch is collected; nothing stops at the first.
"""

from __future__ import annotations

import itertools
import json
import os
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Literal

from pydantic import BaseModel

from release.errors import BadInput, InputIOError, UnsafePath
from release.hashing import FileHash, HashEngine
from release.layout import bucket_range_label, check_relpath, parse_path, sort_key, strip_dot_slash
from release.manifest.io import ManifestReader, validate_manifest
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


@dataclass(slots=True)
class _Check:
    path: str
    expected: ManifestRecord | None
    kind: str | None  # None: absent; 'file', 'symlink', 'special'
    size: int


def read_files_from(list_path: Path) -> FileTable:
    """Read an rsync --files-from list (`./original/0000/1000.jpg` lines) into a table."""
    table = FileTable()
    try:
        handle = open(list_path, encoding="utf-8", errors="surrogateescape")
    except OSError as exc:
        raise InputIOError(str(list_path), f"cannot open list: {exc.strerror}") from exc
    with handle:
        for lineno, line in enumerate(handle, start=1):
            line = line.rstrip("\n")
            if not line.strip() or line.startswith("#"):
                continue
            path = strip_dot_slash(line).rstrip("/")
            try:
                check_relpath(path)
            except UnsafePath as exc:
                raise BadInput(f"{list_path}:{lineno}", exc.problem) from exc
            table.add(path)
    return table


def _disk_from_walk(root: Path) -> Iterator[tuple[str, str, int]]:
    table = FileTable()
    kinds: dict[int, str] = {}
    for entry in walk(str(root)):
        if entry.kind == "error":
            raise InputIOError(str(root / entry.path), f"cannot list or stat: {entry.detail}")
        if entry.kind != "file":
            kinds[len(table)] = entry.kind
        table.add(entry.path, entry.size)
    for row in table.order().tolist():
        yield table.path(row), kinds.get(row, "file"), table.size(row)


def _disk_from_list(root: Path, listed: FileTable) -> Iterator[tuple[str, str | None, int]]:
    last = None
    for path, _, _ in listed.sorted_rows():
        if path == last:
            continue
        last = path
        try:
            st = os.lstat(root / path)
        except FileNotFoundError:
            yield path, None, 0
            continue
        except OSError as exc:
            raise InputIOError(str(root / path), f"cannot stat: {exc.strerror}") from exc
        kind = "file" if stat.S_ISREG(st.st_mode) else "symlink" if stat.S_ISLNK(st.st_mode) else "special"
        yield path, kind, st.st_size


def _merge(
    manifest: Iterator[ManifestRecord], disk: Iterator[tuple[str, str | None, int]], restricted: bool
) -> Iterator[_Check]:
    """Join manifest records with disk entries (both sorted); with a list, the list bounds both."""
    rec, got = next(manifest, None), next(disk, None)
    while rec is not None or got is not None:
        rkey = sort_key(rec.path) if rec is not None else None
        dkey = sort_key(got[0]) if got is not None else None
        if got is None or (rkey is not None and dkey is not None and rkey < dkey):
            assert rec is not None
            if not restricted:
                yield _Check(rec.path, rec, None, 0)
            rec = next(manifest, None)
        elif rec is None or (rkey is not None and dkey is not None and dkey < rkey):
            yield _Check(got[0], None, got[1], got[2])
            got = next(disk, None)
        else:
            yield _Check(rec.path, rec, got[1], got[2])
            rec, got = next(manifest, None), next(disk, None)


class _Tally:
    def __init__(self, report_out: BinaryIO | None, refetch_out: BinaryIO | None) -> None:
        self.totals = StatusCounts()
        self.by_subset: dict[str, StatusCounts] = {}
        self.by_range: dict[str, dict[str, StatusCounts]] = {}
        self.problems: list[Problem] = []
        self.truncated = False
        self.listed_unknown = 0
        self.report_out = report_out
        self.refetch_out = refetch_out

    def add(self, path: str, status: str, reason: str = "") -> None:
        parsed = parse_path(path)
        for counts in (
            self.totals,
            self.by_subset.setdefault(parsed.subset, StatusCounts()),
            self.by_range.setdefault(parsed.subset, {}).setdefault(bucket_range_label(parsed.bucket), StatusCounts()),
        ):
            setattr(counts, status, getattr(counts, status) + 1)
        if status != "OK":
            if len(self.problems) < MAX_PROBLEMS:
                self.problems.append(Problem(path=path, status=status, reason=reason))
            else:
                self.truncated = True
            if self.refetch_out is not None and status in ("CORRUPT", "MISSING"):
                self.refetch_out.write(f"./{path}\n".encode("utf-8", "surrogateescape"))
        if self.report_out is not None:
            line = json.dumps({"path": path, "status": status, "reason": reason}, ensure_ascii=False)
            self.report_out.write(line.encode("utf-8", "surrogateescape") + b"\n")


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
    header = validate_manifest(manifest)  # refuses unsafe paths before the tree is read
    listed = read_files_from(files_from) if files_from is not None else None
    if not root.is_dir():
        raise BadInput(str(root), "not a directory")
    disk = _disk_from_list(root, listed) if listed is not None else _disk_from_walk(root)
    checks_a, checks_b = itertools.tee(_merge(iter(ManifestReader(manifest)), disk, listed is not None))
    to_hash = (
        (c, c.path, c.size)
        for c in checks_a
        if mode != "fast" and c.expected is not None and c.kind == "file" and c.size == c.expected.size
    )
    tally = _Tally(report_out, refetch_out)
    ticker = Ticker(progress, "verify", header.files, header.bytes)
    checked_bytes = 0
    with HashEngine(workers) as engine:
        results = engine.hash_files(str(root), to_hash, () if mode == "fast" else (mode,))
        for check in checks_b:
            status, reason = _classify(check, mode, results, tally)
            if status:
                tally.add(check.path, status, reason)
            if check.expected is not None and check.kind == "file":
                checked_bytes += check.size
            ticker.add(1, check.size)
    ticker.finish()
    return VerifyReport(
        root=str(root),
        manifest=str(manifest),
        mode=mode,
        files_from=str(files_from) if files_from else None,
        complete=complete,
        totals=tally.totals,
        bytes_checked=checked_bytes,
        by_subset=tally.by_subset,
        by_range=tally.by_range,
        listed_not_in_manifest=tally.listed_unknown,
        problems=tally.problems,
        problems_truncated=tally.truncated,
    )


def _classify(check: _Check, mode: Mode, results: Iterator[tuple[_Check, FileHash]], tally: _Tally) -> tuple[str, str]:
    expected = check.expected
    if expected is None:
        if check.kind is None:
            tally.listed_unknown += 1
            return "", ""
        return "EXTRA", "not in the manifest"
    if check.kind is None:
        return "MISSING", "not on disk"
    if check.kind != "file":
        return "CORRUPT", f"is a {check.kind}, not a regular file"
    if check.size != expected.size:
        return "CORRUPT", f"size {check.size}, expected {expected.size}"
    if mode == "fast":
        return "OK", ""
    tag, result = next(results)
    assert tag is check
    if result.error is not None:
        return "CORRUPT", f"cannot read: {result.error}"
    if result.digests[0] != getattr(expected, mode):
        return "CORRUPT", f"{mode} differs"
    return "OK", ""
