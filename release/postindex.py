"""One strict pass over a release's own metadata chunks, kept for the steps after it.

A cut's metadata step must check every line of this year's export before it places the chunks. What
that pass learns is all the scan (the posts' IDs, duplicate IDs and duplicate tags) and derive (the IDs
of each rating, the newest year) read the chunks for, so the step keeps it (`PostIndexBuilder`), and
they take it (`load_post_index`) in place of parsing the export again: at Danbooru's 2.3M posts, each
pass is minutes of CPU. An index holds while the chunks are the ones it was made of (names, sizes,
mtimes: `stamps`, the same rule as every other piece of work done from files earlier); a missing, stale
or damaged one is ignored, and the reader parses the chunks itself.
"""

from __future__ import annotations

import contextlib
import json
import zipfile
from array import array
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from release.atomic import atomic_output
from release.errors import BadInput
from release.metadata import IdSet, MetaLine, chunk_stamps, duplicate_tags, release_chunks
from release.posts import Post

FORMAT = "booru-release-post-index"
VERSION = 1


@dataclass(frozen=True)
class MetadataFinding:
    """What the scan reports of one metadata line: its kind (a scan finding kind), chunk, line and detail."""

    kind: str
    chunk: str
    line: int
    detail: str


@dataclass(frozen=True)
class PostIndex:
    """The posts of a release's own chunks, in line order: IDs, ratings (codes into `letters`), and what
    the scan finds in the metadata; `chunks` are the stamps of the chunks it was made of."""

    chunks: dict[str, tuple[int, int]]
    ids: np.ndarray  # int64, one per line holding a post
    ratings: np.ndarray  # uint8 codes into `letters`
    letters: tuple[str, ...]
    newest_year: int
    records: int
    rows_without_id: int
    findings: tuple[MetadataFinding, ...]

    def ids_rated(self, letters: frozenset[str]) -> np.ndarray:
        """The IDs of the posts rated one of `letters`, ascending and each once."""
        codes = [code for code, letter in enumerate(self.letters) if letter in letters]
        return np.unique(self.ids[np.isin(self.ratings, np.array(codes, np.uint8))])

    def is_current(self, root: Path) -> bool:
        """Whether `root`'s own chunks are still the ones this was made of."""
        return self.chunks == chunk_stamps(release_chunks(root))


class PostIndexBuilder:
    """Collects a `PostIndex` from the items of `read_chunk`, chunk by chunk: the scan's checks of the
    metadata. Findings are kept, or handed to `on_finding` as they are made (then the index has none)."""

    def __init__(self, on_finding: Callable[[MetadataFinding], None] | None = None) -> None:
        self._chunks: dict[str, None] = {}  # the chunks read, in order
        self._ids = array("q")
        self._ratings = array("B")
        self._letters: dict[str, int] = {}
        self._seen = IdSet()
        self.newest_year = 0
        self.records = 0
        self.rows_without_id = 0
        self.findings: list[MetadataFinding] = []
        self._found = on_finding or self.findings.append

    def add(self, chunk: str, item: MetaLine) -> None:
        """One line of `chunk` (its file name)."""
        self._chunks.setdefault(chunk)
        if item.record is None:
            self._found(
                MetadataFinding("metadata_malformed", chunk, item.line, f"{item.field or 'line'}: {item.problem}")
            )
            return
        self.records += 1
        post = item.post
        if post is None:  # a new-dialect row without an ID (banned, gold-only): counted, skipped
            self.rows_without_id += 1
            return
        if not self._seen.add(post.id):
            self._found(MetadataFinding("metadata_duplicate_id", chunk, item.line, f"id {post.id}"))
        dupes = duplicate_tags(post)
        if dupes:
            detail = f"id {post.id}: {', '.join(dupes)}"
            self._found(MetadataFinding("metadata_duplicate_tag", chunk, item.line, detail))
        self._add_post(post)

    def _add_post(self, post: Post) -> None:
        self._ids.append(post.id)
        self._ratings.append(self._letters.setdefault(post.rating, len(self._letters)))
        year = post.created_at[:4]
        self.newest_year = max(self.newest_year, int(year) if year.isdigit() else 0)

    def build(self, folder: Path) -> PostIndex:
        """The index, stamped with the chunks read as they lie in `folder` now (where they were placed)."""
        return PostIndex(
            chunk_stamps(folder / name for name in self._chunks), np.frombuffer(self._ids, np.int64).copy(),
            np.frombuffer(self._ratings, np.uint8).copy(), tuple(self._letters), self.newest_year, self.records,
            self.rows_without_id, tuple(self.findings),
        )  # fmt: skip


def save_post_index(index: PostIndex, path: Path) -> None:
    """Write `index` to `path` (an .npz archive), atomically."""
    header = {
        "format": FORMAT, "version": VERSION, "chunks": index.chunks, "letters": index.letters,
        "newest_year": index.newest_year, "records": index.records, "rows_without_id": index.rows_without_id,
        "findings": [[f.kind, f.chunk, f.line, f.detail] for f in index.findings],
    }  # fmt: skip
    text = np.frombuffer(json.dumps(header, sort_keys=True).encode(), np.uint8)
    with atomic_output(path) as out:
        np.savez(out, header=text, ids=index.ids, ratings=index.ratings)


def load_post_index(path: Path, root: Path) -> PostIndex | None:
    """The index saved at `path` when it was made of `root`'s chunks as they are now, else None (none
    saved, another format, damaged, or the chunks changed since)."""
    with contextlib.suppress(OSError, ValueError, KeyError, TypeError, zipfile.BadZipFile, BadInput):
        with np.load(path, allow_pickle=False) as saved:
            header = json.loads(saved["header"].tobytes())
            if header["format"] != FORMAT or header["version"] != VERSION:
                return None
            ids, ratings = saved["ids"].astype(np.int64), saved["ratings"].astype(np.uint8)
        index = PostIndex(
            {name: (int(size), int(mtime)) for name, (size, mtime) in header["chunks"].items()}, ids, ratings,
            tuple(header["letters"]), int(header["newest_year"]), int(header["records"]),
            int(header["rows_without_id"]),
            tuple(MetadataFinding(kind, chunk, int(line), detail) for kind, chunk, line, detail in header["findings"]),
        )  # fmt: skip
        if len(index.ids) == len(index.ratings) and index.is_current(root):
            return index
    return None
