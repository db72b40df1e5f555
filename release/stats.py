"""Release statistics, the figures the dataset pages publish, in one streaming pass.

Files come from the tree (or its manifest): images and bytes per subset and extension. Posts come
from this release's metadata chunks (`metadata/<year>…`, top level): tag instances (a tag listed twice
on one post counts once), unique tags, mean tags per post, top tags, ratings, first and last upload,
uploads per year. Lines that are not JSON objects are counted, not fatal (scan reports them).
"""

from __future__ import annotations

import heapq
from collections import Counter
from pathlib import Path

import numpy as np
from pydantic import BaseModel, ConfigDict

from release.errors import BadInput
from release.layout import IMAGE_SUBSETS, SUBSET_RANK, ParsedPath, parse_path
from release.metadata import MetaLine, PostReader, chunk_stamps, release_chunks
from release.posts import Dialect, Post, dialect_of_name, rating_letters
from release.progress import ProgressFn, Ticker, no_progress
from release.tree import files_of

TOP_TAGS = 25


class Count(BaseModel):
    """Files and bytes."""

    files: int = 0
    bytes: int = 0


class PostFigures(BaseModel):
    """The figures of a release's posts (its metadata chunks)."""

    posts: int
    deleted_posts: int
    tag_instances: int
    unique_tags: int
    mean_tags_per_post: float
    top_tags: list[tuple[str, int]]
    ratings: dict[str, int]
    earliest_upload: str | None
    latest_upload: str | None
    uploads_per_year: dict[str, int]
    posts_with_duplicate_tags: int
    malformed_lines: int
    rows_without_id: int = 0  # new-dialect rows of banned or gold-only posts: skipped
    dialects: dict[str, Dialect] = {}  # chunk name -> the dialect it was read in


class ReleaseStats(PostFigures):
    """What `metadata stats` reports: the posts' figures, then the files'."""

    root: str
    subsets: dict[str, Count]
    extensions: dict[str, dict[str, Count]]


def count_files(
    root: Path, manifest: Path | None, ticker: Ticker
) -> tuple[dict[str, Count], dict[str, dict[str, Count]]]:
    """Images and bytes per subset and per extension, from the manifest or a walk of the image folders."""
    subsets = {s: Count() for s in IMAGE_SUBSETS}
    exts: dict[str, dict[str, Count]] = {s: {} for s in IMAGE_SUBSETS}
    counted = _manifest_files(manifest, ticker) if manifest is not None else _walked_files(root, ticker)
    for (subset, ext), (files, nbytes) in counted.items():
        for count in (subsets[subset], exts[subset].setdefault(ext, Count())):
            count.files += files
            count.bytes += nbytes
    ticker.finish()
    return subsets, {s: dict(sorted(e.items())) for s, e in exts.items()}


def _extension(path: str, parsed: ParsedPath | None = None) -> str:
    """The extension a file is counted under: the layout's, else what follows the last dot, lower-cased."""
    parsed = parsed or parse_path(path)
    return parsed.ext or path.rsplit(".", 1)[-1].lower()


def _walked_files(root: Path, ticker: Ticker) -> dict[tuple[str, str], list[int]]:
    counted: dict[tuple[str, str], list[int]] = {}
    for path, size, _ in files_of(root, subsets=IMAGE_SUBSETS):
        parsed = parse_path(path)
        if parsed.subset in IMAGE_SUBSETS:
            _tally(counted, (parsed.subset, _extension(path, parsed)), size)
            ticker.add(1, size)
    return counted


def _manifest_files(manifest: Path, ticker: Ticker) -> dict[tuple[str, str], list[int]]:
    """(subset, extension) -> [files, bytes] from the manifest's columns (no record object per file): the
    layout's extension is the path's own suffix, so the layout is asked only when the suffix has capitals."""
    from release.manifest.columns import column_chunks

    names = {SUBSET_RANK[s]: s for s in IMAGE_SUBSETS}
    counted: dict[tuple[str, str], list[int]] = {}
    for columns in column_chunks(manifest, None):
        rows = np.flatnonzero(np.isin(columns.rank, list(names)))
        sizes = columns.sizes[rows].tolist()
        for row, rank, size in zip(rows.tolist(), columns.rank[rows].tolist(), sizes, strict=True):
            suffix = columns.path_bytes(row).rsplit(b".", 1)[-1].decode("utf-8", "surrogateescape")
            if suffix != suffix.lower():
                suffix = _extension(columns.path(row))
            _tally(counted, (names[rank], suffix), size)
        ticker.add(len(rows), sum(sizes))
    return counted


def _tally(counted: dict[tuple[str, str], list[int]], key: tuple[str, str], size: int) -> None:
    count = counted.get(key)
    if count is None:
        counted[key] = [1, size]
    else:
        count[0] += 1
        count[1] += size


class _PostTally:
    def __init__(self) -> None:
        self.posts = self.deleted = self.instances = self.dup_posts = self.malformed = self.without_id = 0
        self.dialects: dict[str, Dialect] = {}
        self.tags: Counter[str] = Counter()
        self.ratings: Counter[str] = Counter()
        self.years: Counter[str] = Counter()
        self.first: str | None = None
        self.last: str | None = None

    def add(self, post: Post) -> None:
        names = set(post.tags)
        created, rating = post.created_at, post.rating
        self.posts += 1
        self.deleted += post.is_deleted
        self.instances += len(names)
        self.dup_posts += len(names) != len(post.tags)
        self.tags.update(names)
        self.ratings[rating] += 1
        self.years[created[:4]] += 1
        self.first = created if self.first is None or created < self.first else self.first
        self.last = created if self.last is None or created > self.last else self.last


def _rating_letters(dialects: dict[str, Dialect]) -> tuple[str, ...]:
    """The letters every report lists (0 when absent): g as well once a chunk is in the new dialect."""
    return rating_letters(Dialect.NEW if Dialect.NEW in dialects.values() else Dialect.OLD)


class PostStats(PostFigures):
    """The posts' half of `ReleaseStats` (no file is needed for it), with the chunks it was counted from."""

    model_config = ConfigDict(frozen=True)
    chunks: dict[str, tuple[int, int]]  # chunk name -> (size, mtime_ns): `is_current` compares them

    def is_current(self, root: Path) -> bool:
        """Whether `root`'s chunks are still the ones counted (names, sizes, mtimes: unchanged files)."""
        return self.chunks == chunk_stamps(release_chunks(root))


def load_post_stats(path: Path, root: Path) -> PostStats | None:
    """The posts' figures saved at `path` when they were counted from `root`'s chunks as they are now, else
    None (none saved, damaged, or the chunks changed since)."""
    try:
        posts = PostStats.model_validate_json(path.read_bytes())
    except (OSError, ValueError):
        return None
    try:
        return posts if posts.is_current(root) else None
    except (OSError, BadInput):  # the chunks are gone
        return None


def collect_stats(
    root: Path, manifest: Path | None = None, progress: ProgressFn = no_progress, posts: PostStats | None = None
) -> ReleaseStats:
    """Compute the release statistics of `root` (files from `manifest` when given; posts from `posts`, counted
    earlier, when its chunks are still the root's)."""
    if not root.is_dir():
        raise BadInput(str(root), "release root does not exist")
    subsets, exts = count_files(root, manifest, Ticker(progress, "files"))
    if posts is None or not posts.is_current(root):
        posts = collect_post_stats(root, progress)
    return ReleaseStats(root=str(root), subsets=subsets, extensions=exts, **posts.model_dump(exclude={"chunks"}))


def collect_post_stats(root: Path, progress: ProgressFn = no_progress) -> PostStats:
    """Count the posts of `root`'s own metadata chunks: tags, ratings, uploads."""
    chunks = release_chunks(root)
    stamped = chunk_stamps(chunks)
    tally = _PostTally()
    ticker = Ticker(progress, "metadata", bytes_total=sum(size for size, _ in stamped.values()))
    posts = PostReader(chunks, ticker)
    for post in posts:
        tally.add(post)
    ticker.finish()
    tally.malformed, tally.without_id = posts.malformed, posts.without_id
    tally.dialects = {name: Dialect(value) for name, value in posts.dialects.items()}
    return _figures(tally, stamped)


class PostCounter:
    """The posts' figures from the lines of a pass that reads them anyway (the metadata step's validation,
    `metaarchive.validate_export`): what `collect_post_stats` counts in the chunks, when no line is malformed."""

    def __init__(self) -> None:
        self._tally = _PostTally()

    def add(self, chunk: str, item: MetaLine) -> None:
        """One line of the chunk named `chunk`."""
        tally = self._tally
        if chunk not in tally.dialects:
            tally.dialects[chunk] = dialect_of_name(chunk) or Dialect.OLD  # validated chunks have a chunk's name
        if item.record is None:
            tally.malformed += 1
        elif item.post is None:
            tally.without_id += 1
        else:
            tally.add(item.post)

    def build(self, folder: Path) -> PostStats:
        """The figures, stamped with the chunks counted as they lie in `folder` now (where they were placed)."""
        return _figures(self._tally, chunk_stamps(folder / name for name in self._tally.dialects))


def _figures(tally: _PostTally, stamped: dict[str, tuple[int, int]]) -> PostStats:
    top = heapq.nsmallest(TOP_TAGS, tally.tags.items(), key=lambda kv: (-kv[1], kv[0]))
    return PostStats(
        chunks=stamped,
        posts=tally.posts,
        deleted_posts=tally.deleted,
        tag_instances=tally.instances,
        unique_tags=len(tally.tags),
        mean_tags_per_post=round(tally.instances / tally.posts, 2) if tally.posts else 0.0,
        top_tags=top,
        ratings={r: tally.ratings.get(r, 0) for r in _rating_letters(tally.dialects)}
        | dict(sorted(tally.ratings.items())),
        earliest_upload=tally.first,
        latest_upload=tally.last,
        uploads_per_year=dict(sorted(tally.years.items())),
        posts_with_duplicate_tags=tally.dup_posts,
        malformed_lines=tally.malformed,
        rows_without_id=tally.without_id,
        dialects=dict(tally.dialects),
    )
