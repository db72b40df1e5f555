"""`scan`: validate a release root against the layout, the file contents and the metadata."""

from __future__ import annotations

import json
import os
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
from pydantic import BaseModel

from release.errors import BadInput
from release.hashindex import lookup
from release.layout import IMAGE_SUBSETS, SUBSET_RANK, image_path, parse_path
from release.metadata import IdSet, export_chunks, read_chunk
from release.pathcols import layout_of
from release.postindex import MetadataFinding, PostIndex, PostIndexBuilder
from release.progress import ProgressFn, Ticker, no_progress
from release.sniff import is_truncated, read_head_tail, sniff, type_matches
from release.textio import earlier_lines
from release.walk import FILE_KIND, Listing, WalkEntry, span_text, walk_listings

MAX_KEPT = 1000  # findings of one kind kept in the report (the count is always whole)
CONTENT_KINDS = ("type_mismatch", "truncated")  # what reading a file's head and tail finds
KINDS: dict[str, str] = {
    "outside_layout": "file outside the release layout",
    "bad_name": "image name is not ID.ext",
    "bad_extension": "extension not allowed here",
    "wrong_bucket": "file in the wrong bucket (bucket must be ID mod 1000)",
    "type_mismatch": "content type differs from the extension",
    "empty": "zero-byte file",
    "truncated": "image does not end as a complete file does",
    "unreadable": "file or folder cannot be read",
    "symlink": "symlink (never followed)",
    "symlink_escape": "symlink pointing outside the release root",
    "special_file": "not a regular file (device, fifo, socket)",
    "undecodable_name": "file or folder name that is not UTF-8 (shown with \\x escapes; left out of every output)",
    "file_without_metadata": "image whose ID is not in the metadata",
    "metadata_without_file": "metadata ID with no original file",
    "sfw_without_original": "512px image with no original",
    "metadata_malformed": "metadata line that does not match the format",
    "metadata_duplicate_id": "ID listed twice in the metadata",
    "metadata_duplicate_tag": "record listing the same tag twice",
    "no_metadata": "no metadata export chunks in metadata/",
}


class Finding(BaseModel):
    """One problem: its kind (see KINDS), the path (or metadata location) and details."""

    kind: str
    path: str
    detail: str = ""


class ScanReport(BaseModel):
    """Counts and every finding."""

    root: str
    files: int
    bytes: int
    files_by_subset: dict[str, int]
    metadata_records: int
    metadata_rows_without_id: int = 0  # new-dialect rows of banned or gold-only posts (not orphans)
    counts: dict[str, int]
    findings: list[Finding]  # the first MAX_KEPT of each kind; every one goes to `findings_out`
    findings_truncated: bool = False
    allowed: list[str]
    carried: int = 0  # files not read: unchanged since the earlier scan, whose content findings were kept

    @property
    def failed(self) -> bool:
        """True when a finding of a kind not allowed was made."""
        return any(n for kind, n in self.counts.items() if kind not in self.allowed)


class EarlierScan:
    """What an earlier release knew of its files, for a scan that reads only what changed: the keys of its
    manifest's files (`unchanged_key`: path, size, mtime) and the content findings of its scan."""

    def __init__(self, manifest: Path, findings: Path) -> None:
        from release.manifest.columns import column_chunks
        from release.manifest.keyed import key_set, manifest_keys

        self.keys = key_set(manifest_keys(columns) for columns in column_chunks(manifest, None))
        self.findings: dict[bytes, list[tuple[str, str]]] = {}  # by path
        for where, item in earlier_lines(findings, "the earlier scan's findings"):
            self._finding(where, item)

    def _finding(self, where: str, item: Any) -> None:
        if not (isinstance(item, dict) and isinstance(item.get("path"), str) and item.get("kind") in KINDS):
            raise BadInput(where, "not a scan finding", "delete the file to read every file again")
        if item["kind"] in CONTENT_KINDS:
            path = item["path"].encode("utf-8", "surrogateescape")
            self.findings.setdefault(path, []).append((item["kind"], str(item.get("detail", ""))))

    def unchanged(self, paths: list[bytes], sizes: np.ndarray, mtimes: np.ndarray) -> np.ndarray:
        """Which of these files the earlier release had with the same size and mtime."""
        from release.manifest.keyed import path_keys

        return lookup(self.keys, path_keys(paths, sizes, mtimes)) >= 0


class _Scanner:
    def __init__(
        self, root: Path, progress: ProgressFn, findings_out: BinaryIO | None, earlier: EarlierScan | None
    ) -> None:
        self.root = root
        self.earlier = earlier
        self.carried = 0
        self.findings: list[Finding] = []
        self.counts: Counter[str] = Counter()
        self.findings_out = findings_out
        self.meta_ids = IdSet()
        self.file_ids = IdSet()
        self.sfw_ids = IdSet()
        self.records = 0
        self.rows_without_id = 0
        self.files = 0
        self.bytes = 0
        self.by_subset: Counter[str] = Counter()
        self.ticker = Ticker(progress, "scan")

    def note(self, kind: str, path: str, detail: str = "") -> None:
        # a tree of millions of files can hold millions of findings: counted all, kept in part, written all
        self.counts[kind] += 1
        if self.counts[kind] <= MAX_KEPT:
            self.findings.append(Finding(kind=kind, path=path, detail=detail))
        if self.findings_out is not None:
            line = json.dumps({"kind": kind, "path": path, "detail": detail}, ensure_ascii=False)
            self.findings_out.write(line.encode("utf-8", "surrogateescape") + b"\n")

    def read_metadata(self, posts: PostIndex | None) -> bool:
        chunks = export_chunks(self.root / "metadata")
        if not chunks:
            self.note("no_metadata", "metadata", "no file named year + 12 digits or posts + 12 digits + .json")
            return False
        if posts is None:
            builder = PostIndexBuilder(self._metadata_finding)
            for chunk in chunks:
                for item in read_chunk(chunk):
                    builder.add(chunk.name, item)
            posts = builder.build(self.root / "metadata")
        else:  # the same checks, made by the pass that made the index
            for finding in posts.findings:
                self._metadata_finding(finding)
        self.meta_ids.add_many(posts.ids)
        self.records, self.rows_without_id = posts.records, posts.rows_without_id
        return True

    def _metadata_finding(self, finding: MetadataFinding) -> None:
        self.note(finding.kind, f"metadata/{finding.chunk}:{finding.line}", finding.detail)

    def visit(self, listing: Listing, have_metadata: bool) -> None:
        """Every entry of one listing of the walk: the files the layout accepts on whole columns, any other
        entry one by one; the findings in walk order, a file's in the order its checks make them."""
        events: list[tuple[int, str, str, str]] = []  # (row, kind, path, detail): sorted by row (stably) at the end
        root = str(self.root)
        for row in np.flatnonzero(listing.kinds != FILE_KIND).tolist():
            self._other(listing.entry(row, root), _at(events, row))
        rows, blob, ends = listing.files()
        sizes = listing.sizes[rows]
        self.files += len(rows)
        self.bytes += int(sizes.sum())
        layout = layout_of(blob, ends, lambda n: span_text(blob, ends, n))
        odd = [n for n in np.flatnonzero(~layout.conforming).tolist()
               if self._file(listing.entry(int(rows[n]), root), have_metadata, _at(events, int(rows[n])))]  # fmt: skip
        fine = np.flatnonzero(layout.conforming)
        for rank, count in zip(*np.unique(layout.rank[fine], return_counts=True), strict=True):
            self.by_subset[SUBSET_NAMES[int(rank)]] += int(count)
        images = fine[np.isin(layout.rank[fine], IMAGE_RANKS)]
        originals = images[layout.rank[images] == SUBSET_RANK["original"]]
        self.file_ids.add_many(layout.ids[originals])
        self.sfw_ids.add_many(layout.ids[images[layout.rank[images] == SUBSET_RANK["512px"]]])
        if have_metadata:
            for n in originals[~self.meta_ids.contains_many(layout.ids[originals])].tolist():
                events.append((int(rows[n]), "file_without_metadata", span_text(blob, ends, n), f"id {layout.ids[n]}"))
        self._contents(listing, rows[np.concatenate((images, np.array(odd, np.int64)))], events)
        events.sort(key=lambda event: event[0])
        for _, kind, path, detail in events:
            self.note(kind, path, detail)
        self.ticker.add(len(rows), int(sizes.sum()))

    def _other(self, entry: WalkEntry, note: Note) -> None:
        if entry.kind == "error":
            note("unreadable", entry.path, entry.detail or "")
        elif entry.kind == "symlink":
            target = entry.detail or ""
            resolved = os.path.normpath(os.path.join(os.path.dirname(entry.path), target))
            escapes = os.path.isabs(target) or resolved == ".." or resolved.startswith("../")
            note("symlink_escape" if escapes else "symlink", entry.path, f"-> {target}")
        elif entry.kind == "special":
            note("special_file", entry.path, "")
        else:
            note("undecodable_name", entry.path, entry.detail or "")

    def _file(self, entry: WalkEntry, have_metadata: bool, note: Note) -> bool:
        """A file the layout's columns do not settle: parse_path decides. Returns whether its content is to
        be checked (an image named ID.ext with an allowed extension, say in a wrong bucket)."""
        parsed = parse_path(entry.path)
        self.by_subset[parsed.subset] += 1
        if parsed.problem is not None:
            note(parsed.problem, entry.path, _detail(parsed.problem, parsed.bucket, parsed.id))
        if parsed.subset not in IMAGE_SUBSETS or parsed.id is None:
            return False
        if parsed.subset == "original":
            self.file_ids.add(parsed.id)
            if have_metadata and parsed.id not in self.meta_ids:
                note("file_without_metadata", entry.path, f"id {parsed.id}")
        else:
            self.sfw_ids.add(parsed.id)
        return parsed.ext is not None and parsed.problem != "bad_extension"

    def _contents(self, listing: Listing, rows: np.ndarray, events: list[tuple[int, str, str, str]]) -> None:
        """The content checks of image files named ID.ext (listing `rows`): empty, else carried from the
        earlier scan when unchanged, else read. Their findings go after the file's others (the sort by row
        is stable)."""
        sizes, mtimes = listing.sizes[rows], listing.mtimes[rows]
        paths = listing.paths(rows)
        if self.earlier is not None:
            unchanged = self.earlier.unchanged(paths, sizes, mtimes) & (sizes > 0)
            self.carried += int(unchanged.sum())
            for n in np.flatnonzero(unchanged).tolist():
                for found, detail in self.earlier.findings.get(paths[n], ()):
                    events.append((int(rows[n]), found, os.fsdecode(paths[n]), detail))
            left = np.flatnonzero(~unchanged).tolist()
        else:
            left = list(range(len(rows)))
        for n in left:
            ext = paths[n].rsplit(b".", 1)[1].decode()  # the name is ID.ext (layout._NAME)
            self._content(paths[n], int(sizes[n]), ext, _at(events, int(rows[n])))

    def _content(self, raw: bytes, size: int, ext: str, note: Note) -> None:
        path = os.fsdecode(raw)
        if size == 0:
            note("empty", path, "")
            return
        try:
            head, tail = read_head_tail(os.path.join(self.root, path), size)
        except OSError as exc:
            note("unreadable", path, exc.strerror or str(exc))
            return
        kind = sniff(head)
        if not type_matches(ext, kind):
            note("type_mismatch", path, f"extension {ext}, content {kind}")
        if kind is not None and is_truncated(kind, tail):
            note("truncated", path, f"{kind} without its end marker")

    def orphans(self) -> None:
        for post_id in self.meta_ids.difference(self.file_ids):
            self.note("metadata_without_file", f"id {post_id}", "no original/ file with this ID")
        for post_id in self.sfw_ids.difference(self.file_ids):
            self.note("sfw_without_original", image_path("512px", post_id, "jpg"), f"id {post_id}")


Note = Callable[[str, str, str], None]  # kind, path, detail
SUBSET_NAMES = {rank: name for name, rank in SUBSET_RANK.items()}
IMAGE_RANKS = [SUBSET_RANK[subset] for subset in IMAGE_SUBSETS]


def _at(events: list[tuple[int, str, str, str]], row: int) -> Note:
    """A `Note` that files its findings under listing row `row`."""
    return lambda kind, path, detail: events.append((row, kind, path, detail))


def _detail(problem: str, bucket: int | None, post_id: int | None) -> str:
    if problem == "wrong_bucket" and post_id is not None:
        return f"bucket {bucket:04d}, ID {post_id} belongs in {post_id % 1000:04d}"
    return KINDS[problem]


def scan_root(
    root: Path,
    *,
    allow: tuple[str, ...] = (),
    progress: ProgressFn = no_progress,
    findings_out: BinaryIO | None = None,
    earlier: EarlierScan | None = None,
    posts: PostIndex | None = None,
) -> ScanReport:
    """Scan `root`: metadata first (streamed), then every entry of the tree once. Every finding is counted;
    the report keeps the first MAX_KEPT of each kind, and `findings_out` gets them all as JSON lines. With
    `earlier`, a file unchanged since that release (same path, size and mtime) is not read again: its
    content findings are carried over (every other check still runs on it). With `posts`, an index of the
    root's own chunks as they are (`postindex.load_post_index`), the metadata is not parsed again."""
    if not root.is_dir():
        raise BadInput(str(root), "not a directory")
    unknown = [kind for kind in allow if kind not in KINDS]
    if unknown:
        raise BadInput(unknown[0], f"unknown finding kind; known kinds: {', '.join(KINDS)}")
    scanner = _Scanner(root, progress, findings_out, earlier)
    have_metadata = scanner.read_metadata(posts)
    for listing in walk_listings(str(root)):
        scanner.visit(listing, have_metadata)
    if have_metadata:
        scanner.orphans()
    scanner.ticker.finish()
    counts = scanner.counts
    return ScanReport(
        root=str(root),
        files=scanner.files,
        bytes=scanner.bytes,
        files_by_subset=dict(sorted(scanner.by_subset.items())),
        metadata_records=scanner.records,
        metadata_rows_without_id=scanner.rows_without_id,
        counts=dict(sorted(counts.items())),
        findings=scanner.findings,
        findings_truncated=any(n > MAX_KEPT for n in counts.values()),
        allowed=list(allow),
        carried=scanner.carried,
    )
