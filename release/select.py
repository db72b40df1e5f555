"""`select`: the metadata query users write in jq, as a `--files-from` list of files the release has.

One streaming pass over this release's metadata chunks; each post that passes every filter becomes
`./<subset>/<bucket>/<ID>.<ext>` if that file exists under the root. The list is in the rsync list
order (bucket, then ID ascending), so it can be diffed against `rsync filelist` output.
"""

from __future__ import annotations

import os
from array import array
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from release.atomic import atomic_output
from release.filelists import list_line
from release.layout import BUCKETS, image_path
from release.metadata import PostReader, release_chunks
from release.posts import Post, sfw_ratings
from release.progress import ProgressFn, Ticker, no_progress


@dataclass(frozen=True)
class Query:
    """Every filter is optional; all given filters must hold (tags: all of `tags`, none of `not_tags`)."""

    tags: frozenset[str] = frozenset()
    not_tags: frozenset[str] = frozenset()
    ratings: frozenset[str] = frozenset()
    since: str | None = None  # YYYY-MM-DD, inclusive, on created_at
    until: str | None = None  # YYYY-MM-DD, inclusive
    first_id: int | None = None
    last_id: int | None = None
    exts: frozenset[str] = frozenset()
    min_score: int | None = None
    subset: str = "original"

    sfw: bool = False  # the SFW ratings of the export's year (posts.sfw_ratings), decided after the pass
    sensitive: bool = False  # with sfw: include "s" in a 2022+ export

    def matches(self, post: Post) -> bool:
        """Whether one post passes the query (with `sfw`, its rating is checked after the pass)."""
        if (self.first_id is not None and post.id < self.first_id) or (
            self.last_id is not None and post.id > self.last_id
        ):
            return False
        if self.ratings and post.rating not in self.ratings:
            return False
        if self.sfw and post.rating not in ("g", "s"):
            return False
        if self.exts and post.file_ext not in self.exts:
            return False
        if self.min_score is not None and post.score < self.min_score:
            return False
        day = post.created_at[:10]
        if (self.since and day < self.since) or (self.until and day > self.until):
            return False
        if self.tags or self.not_tags:
            names = set(post.tags)
            return self.tags <= names and not (self.not_tags & names)
        return True


@dataclass
class SelectReport:
    """Posts read, matched, and files listed (matched posts whose file is in the release)."""

    posts: int = 0
    matched: int = 0
    listed: int = 0
    not_in_release: int = 0
    malformed_lines: int = 0
    rows_without_id: int = 0
    sfw_ratings: list[str] = field(default_factory=list)
    dialects: dict[str, str] = field(default_factory=dict)
    examples_missing: list[str] = field(default_factory=list)


def _ext(post: Post, subset: str) -> str:
    return "jpg" if subset == "512px" else post.file_ext


class _Names:
    """A few distinct strings (extensions, ratings) numbered in the order they are first met."""

    def __init__(self) -> None:
        self.names: list[str] = []
        self._index: dict[str, int] = {}

    def index(self, name: str) -> int:
        """The number of `name` (a new one if it was not met before)."""
        found = self._index.get(name)
        if found is None:
            found = self._index[name] = len(self.names)
            self.names.append(name)
        return found


def select(root: Path, query: Query, output: Path, progress: ProgressFn = no_progress) -> SelectReport:
    """Run `query` over root's metadata and write the matching files that exist as a --files-from list."""
    chunks = release_chunks(root)
    report = SelectReport()
    # matches in compact arrays (9 bytes each, not three Python objects): memory stays flat in the file size
    ids = array("q")
    exts, ext_names = array("H"), _Names()
    ratings, rating_names = array("B"), _Names()
    ticker = Ticker(progress, "select", bytes_total=sum(c.stat().st_size for c in chunks))
    posts = PostReader(chunks, ticker)
    for post in posts:
        report.posts += 1
        if query.matches(post):
            ids.append(post.id)
            exts.append(ext_names.index(_ext(post, query.subset)))
            ratings.append(rating_names.index(post.rating))
    ticker.finish()
    report.malformed_lines, report.rows_without_id, report.dialects = posts.malformed, posts.without_id, posts.dialects
    keep = np.ones(len(ids), bool)
    if query.sfw:  # what SFW means depends on the export's year: known once every post was read
        letters = sfw_ratings(posts.newest_year, query.sensitive)
        report.sfw_ratings = sorted(letters)
        wanted = np.array([name in letters for name in rating_names.names] or [False], bool)
        keep = wanted[np.frombuffer(ratings, np.uint8)] if len(ratings) else np.zeros(0, bool)
    report.matched = int(keep.sum())
    id_array = np.array(ids, dtype=np.int64)
    order = np.lexsort((id_array, id_array % BUCKETS))
    order = order[keep[order]]
    with atomic_output(output) as out:
        for row in order.tolist():
            path = image_path(query.subset, ids[row], ext_names.names[exts[row]])
            if os.path.isfile(root / path):
                out.write(list_line(path))
                report.listed += 1
            else:
                report.not_in_release += 1
                if len(report.examples_missing) < 10:
                    report.examples_missing.append(path)
    return report
