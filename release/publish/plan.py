"""Planning a publish: what the bucket already has, and what to upload, replace, keep or delete. Pure.

What the bucket has comes from one of two places, both turned into a `RemoteIndex` (compact arrays
keyed by a 64-bit hash of the path, ~40 bytes an object, so 5 million objects plan in well under
1 GiB): the manifest published last time (read from the bucket: two GETs, whatever the size), or a
listing (one request per 1,000 objects) compared by size and ETag. Every record of the release's
manifest is then looked up once: absent -> upload, same size and md5/ETag -> keep, else -> replace.
Objects the bucket has that the manifest lacks are delete candidates; those an older release may
need for `reconstruct` are protected.
"""

from __future__ import annotations

import json
from array import array
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

import numpy as np
import xxhash
from pydantic import BaseModel

from release.hashindex import lookup, path_hashes
from release.layout import parse_path
from release.manifest.columns import Columns, column_chunks
from release.models import Frozen, ReleaseName

STATE_DIR = ".booru-release"
PUBLISHED_MANIFEST = "published.jsonl.zst"
PUBLISHED_STATE = "published.json"
MARKER = "publishing.json"
PART_SIZE = 64 << 20  # above this an object goes up in parts of this size (S3: 5 MiB to 5 GiB)


class PublishedState(Frozen):
    """`<prefix>/.booru-release/<name>/published.json`: what the last complete publish put in the bucket."""

    format: str = "booru-release-published"
    version: int = 1
    release: ReleaseName
    name: ReleaseName  # the torrents' info.name: objects are <prefix>/<name>/<path>
    part_size: int
    manifest_sha256: str  # of published.jsonl.zst, written just before this file
    multipart_etags: dict[str, str] = {}  # path -> ETag, for objects uploaded in parts


class Prices(Frozen):
    """A provider's prices in USD: per 1,000 requests and per GB-month stored."""

    name: str
    put_per_1000: float
    get_per_1000: float
    list_per_1000: float
    storage_gb_month: float


PRICES = {
    "aws": Prices(name="AWS S3 Standard", put_per_1000=0.005, get_per_1000=0.0004, list_per_1000=0.005,
                  storage_gb_month=0.023),
    "r2": Prices(name="Cloudflare R2", put_per_1000=0.0045, get_per_1000=0.00036, list_per_1000=0.0045,
                 storage_gb_month=0.015),
}  # fmt: skip


def split_etag(etag: str) -> tuple[bytes, int]:
    """(the md5 in an ETag, its part count: 0 for a single PUT); unparsable ETags give 16 zero bytes."""
    digest, _, parts = etag.partition("-")
    try:
        return bytes.fromhex(digest)[:16].ljust(16, b"\0"), int(parts) if parts else 0
    except ValueError:
        return b"\0" * 16, 0


class RemoteIndex:
    """What the bucket holds under the release's folder: path hash -> size, md5 (or multipart digest), parts."""

    def __init__(self, hashes: np.ndarray, sizes: np.ndarray, md5s: np.ndarray, parts: np.ndarray) -> None:
        order = np.argsort(hashes, kind="stable")
        self.hashes, self.sizes, self.md5s, self.parts = hashes[order], sizes[order], md5s[order], parts[order]
        self.matched = np.zeros(len(self.hashes), dtype=bool)
        self.paths: list[bytes] | None = None  # kept for delete candidates (listing order), when asked

    @classmethod
    def from_entries(cls, entries: Iterable[tuple[bytes, int, str]], keep_paths: bool = False) -> RemoteIndex:
        """From (path, size, ETag) triples: a listing, or a published manifest (ETag = its md5)."""
        hashes = array("Q")  # flat machine words: 5 million entries stay ~40 MB a column, not Python ints
        sizes = array("q")
        md5s = bytearray()
        parts = array("i")
        paths: list[bytes] = []
        for path, size, etag in entries:
            hashes.append(xxhash.xxh3_64_intdigest(path))
            sizes.append(size)
            digest, count = split_etag(etag)
            md5s += digest
            parts.append(count)
            if keep_paths:
                paths.append(path)
        hash_column = np.frombuffer(hashes, dtype=np.uint64) if hashes else np.zeros(0, np.uint64)
        index = cls(
            hash_column,
            np.frombuffer(sizes, dtype=np.int64) if sizes else np.zeros(0, np.int64),
            np.frombuffer(md5s, np.uint8).reshape(-1, 16) if md5s else np.zeros((0, 16), np.uint8),
            np.frombuffer(parts, dtype=np.int32) if parts else np.zeros(0, np.int32),
        )
        if keep_paths:
            order = np.argsort(hash_column, kind="stable")
            index.paths = [paths[i] for i in order.tolist()]
        return index

    def __len__(self) -> int:
        return len(self.hashes)

    def lookup(self, hashes: np.ndarray) -> np.ndarray:
        """Row of each hash in the index, or -1."""
        return lookup(self.hashes, hashes)


class Action(NamedTuple):
    """One object to change (a tuple: millions of them cross to the uploading processes)."""

    path: str
    size: int
    md5: str
    kind: str  # upload, replace, delete
    old_etag: str = ""  # replace: the ETag the bucket has now (the PUT is conditional on it)


class KindTotals(BaseModel):
    """Objects and bytes of one kind of action."""

    objects: int = 0
    bytes: int = 0


class PublishPlan(BaseModel):
    """What a publish would do, and what it costs."""

    source: str  # "published manifest" or "listing"
    remote_objects: int
    totals: dict[str, KindTotals]
    requests: dict[str, int]
    cost_usd: dict[str, float]


@dataclass
class Planner:
    """Compares a manifest with a RemoteIndex; yields the actions, keeps the totals."""

    index: RemoteIndex
    multipart_etags: dict[str, str] = field(default_factory=dict)
    part_size: int = PART_SIZE
    etag_of: Callable[[str, int], str] | None = None  # the multipart ETag of a local file (reads it)
    totals: dict[str, KindTotals] = field(
        default_factory=lambda: {k: KindTotals() for k in ("upload", "replace", "keep", "delete", "protected")}
    )

    def actions(self, manifest: Path) -> Iterator[Action]:
        """Uploads and replacements, in manifest order, a chunk of records at a time."""
        for columns in column_chunks(manifest, "md5"):
            rows = self.index.lookup(path_hashes(columns.paths))
            yield from self._chunk(columns, rows)

    def _chunk(self, columns: Columns, rows: np.ndarray) -> Iterator[Action]:
        found = rows >= 0
        self.index.matched[rows[found]] = True
        same_size = np.zeros(len(rows), dtype=bool)
        same_size[found] = self.index.sizes[rows[found]] == columns.sizes[found]
        same_md5 = np.zeros(len(rows), dtype=bool)
        same_md5[found] = (self.index.md5s[rows[found]] == columns.digests[found]).all(axis=1)
        for n in np.flatnonzero(~(same_size & same_md5)).tolist():
            path = columns.path(n)
            md5 = columns.digests[n].tobytes().hex()
            size = int(columns.sizes[n])
            if found[n] and same_size[n] and self._multipart_matches(path, int(rows[n])):
                self._count("keep", size)
                continue
            kind = "replace" if found[n] else "upload"
            self._count(kind, size)
            yield Action(path, size, md5, kind, self.etag(path, int(rows[n])) if found[n] else "")
        kept = same_size & same_md5
        self._count("keep", int(columns.sizes[kept].sum()), int(kept.sum()))

    def etag(self, path: str, row: int) -> str:
        """The ETag the bucket gives an indexed object (a multipart one's as recorded when it was published)."""
        parts = int(self.index.parts[row])
        if parts == 0 and path in self.multipart_etags:  # indexed from the published manifest: md5, not ETag
            return self.multipart_etags[path]
        return str(self.index.md5s[row].tobytes().hex()) + (f"-{parts}" if parts else "")

    def _multipart_matches(self, path: str, row: int) -> bool:
        """A multipart object's ETag is not its md5: compare it with the ETag recorded when it was published,
        or, when none was (a listing of a bucket filled by another tool), with the file's own."""
        if self.index.parts[row] == 0:
            return False
        recorded = self.multipart_etags.get(path)
        if recorded is None and self.etag_of is not None:
            recorded = self.multipart_etags[path] = self.etag_of(path, int(self.index.sizes[row]))
        return recorded is not None and split_etag(recorded) == (self.index.md5s[row].tobytes(), self.index.parts[row])

    def _count(self, kind: str, nbytes: int, objects: int = 1) -> None:
        self.totals[kind].objects += objects
        self.totals[kind].bytes += nbytes

    def deletions(self, protect_up_to: int | None, keep: set[str]) -> Iterator[Action]:
        """Objects the bucket has and the manifest lacks (after `actions` ran), but those an older release may
        still need: images with an ID up to `protect_up_to`, and paths in `keep`."""
        assert self.index.paths is not None, "build the index with keep_paths=True to delete"
        for row in np.flatnonzero(~self.index.matched).tolist():
            path = self.index.paths[row].decode("utf-8", "surrogateescape")
            size = int(self.index.sizes[row])
            parsed = parse_path(path)
            old_image = protect_up_to is not None and parsed.id is not None and parsed.id <= protect_up_to
            needed = path in keep or old_image
            if needed:
                self._count("protected", size)
                continue
            self._count("delete", size)
            yield Action(path, size, self.index.md5s[row].tobytes().hex(), "delete")


def load_prices(path: Path) -> dict[str, Prices]:
    """A price table from a JSON file: {"name": {"name":…, "put_per_1000":…, …}, …}."""
    from release.errors import BadInput, InputIOError

    try:
        raw = json.loads(path.read_text())
        return {key: Prices.model_validate(value, strict=False) for key, value in raw.items()}
    except OSError as exc:
        raise InputIOError(str(path), f"cannot read: {exc.strerror}") from exc
    except (ValueError, AttributeError) as exc:
        raise BadInput(str(path), f"not a price table: {exc}") from exc


def estimate(
    plan_source: str,
    remote: int,
    totals: dict[str, KindTotals],
    part_size: int,
    prices: dict[str, Prices] | None = None,
) -> PublishPlan:
    """Requests and cost of a plan: PUTs (parts counted), LISTs, the state reads and writes."""
    moved = totals["upload"].bytes + totals["replace"].bytes
    objects = totals["upload"].objects + totals["replace"].objects
    parts = max(objects, -(-moved // part_size)) if objects else 0
    lists = -(-remote // 1000) + 1 if plan_source == "listing" else 0
    requests = {"PUT": parts + 3, "LIST": lists, "GET": 3, "COPY": totals["replace"].objects,
                "DELETE": totals["delete"].objects}  # fmt: skip
    stored_gb = (totals["keep"].bytes + moved) / 1e9
    cost = {}
    for key, price in (prices or PRICES).items():
        cost[key] = round(
            (requests["PUT"] + requests["COPY"] + requests["LIST"]) / 1000 * price.put_per_1000
            + requests["GET"] / 1000 * price.get_per_1000
            + stored_gb * price.storage_gb_month,
            4,
        )
    return PublishPlan(source=plan_source, remote_objects=remote, totals=totals, requests=requests, cost_usd=cost)
