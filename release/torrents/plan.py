"""`torrents plan`: split a release into shards of whole bucket ranges that every client can load.

Pure planning over per-bucket statistics (files, bytes, and the exact bencoded size and token
count of their file entries), gathered in one streaming pass over a manifest or a tree.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from pydantic import BaseModel

from release.bencode import Value
from release.errors import BadInput
from release.layout import BUCKETS, SUBSET_RANK, parse_path
from release.models import Frozen, ReleaseName
from release.progress import ProgressFn, Ticker, no_progress
from release.torrents.profiles import DEFAULT_PROFILES, PROFILES, ClientProfile
from release.torrents.sizes import (
    PIECE_HASH,
    entry_bytes,
    entry_bytes_of_columns,
    entry_tokens,
    piece_count,
    skeleton,
    torrent_size,
)
from release.tree import files_of
from release.walk import FileTable

SHARD_COUNTS: tuple[int, ...] = tuple(n for n in range(1, BUCKETS + 1) if BUCKETS % n == 0)
IMAGE_SUBSETS: tuple[str, ...] = ("original", "512px")
MIN_PIECE = 256 * 1024
MAX_PIECE = 16 * 1024 * 1024
TARGET_PIECES = 50_000
METADATA_GROUP = len(SUBSET_RANK) * BUCKETS


class TorrentSettings(Frozen):
    """Everything besides the files that goes into a .torrent; fixed per release for reproducibility."""

    release: ReleaseName
    trackers: list[list[str]] = []
    web_seeds: list[str] = []
    comment: str = ""
    created_by: str = "booru-release"
    creation_date: int | None = None
    piece_length: int | None = None
    name: ReleaseName | None = None

    @property
    def torrent_name(self) -> str:
        """`info.name`: the folder the files land in (the release name unless set)."""
        return self.name or self.release

    def top_level(self) -> dict[bytes, Value]:
        """The top-level fields of every .torrent of the release, bencode-ready (no `info`)."""
        top: dict[bytes, Value] = {b"created by": self.created_by.encode()}
        if self.creation_date is not None:
            top[b"creation date"] = self.creation_date
        if self.comment:
            top[b"comment"] = self.comment.encode()
        tiers = [tier for tier in self.trackers if tier]
        if tiers:
            top[b"announce"] = tiers[0][0].encode()
            top[b"announce-list"] = [[url.encode() for url in tier] for tier in tiers]
        if self.web_seeds:
            # BEP 19: a URL ending in '/' gets `<name>/<path>` appended, the mirror layout we serve.
            top[b"url-list"] = [(url if url.endswith("/") else url + "/").encode() for url in self.web_seeds]
        return top


@dataclass
class Stats:
    """Per-bucket totals of each image subset, and the metadata folder as one group."""

    buckets: dict[str, dict[str, np.ndarray]] = field(default_factory=dict)
    metadata: dict[str, int] = field(default_factory=lambda: {"files": 0, "bytes": 0, "entry_bytes": 0, "tokens": 0})
    skipped: int = 0

    def add(self, path: str, size: int) -> int:
        """Count one file; return its planning group: rank * 1000 + bucket, METADATA_GROUP, or -1 (skipped)."""
        parsed = parse_path(path)
        parts = path.split("/")
        cost = {"files": 1, "bytes": size, "entry_bytes": entry_bytes(parts, size), "tokens": entry_tokens(parts)}
        if parsed.subset == "metadata":
            for key, value in cost.items():
                self.metadata[key] += value
            return METADATA_GROUP
        if parsed.subset in IMAGE_SUBSETS and parsed.id is not None:
            arrays = self._arrays(parsed.subset)
            bucket = parsed.id % BUCKETS  # the ID's bucket: a file in the wrong folder still belongs there
            for key, value in cost.items():
                arrays[key][bucket] += value
            return SUBSET_RANK[parsed.subset] * BUCKETS + bucket
        self.skipped += 1
        return -1

    def add_table(self, table: FileTable) -> np.ndarray:
        """`add` every row of a walked tree; each row's planning group. Conforming image paths are counted
        on whole columns, a subset at a time; the rest (metadata, odd names) go through `add` one by one,
        so the counts are always `add`'s."""
        layout, sizes, lengths = table.layout(), table.sizes(), table.path_lengths()
        groups = np.full(len(table), -1, dtype=np.int32)
        counted = np.zeros(len(table), dtype=bool)
        for subset in IMAGE_SUBSETS:
            rows = np.flatnonzero(layout.conforming & (layout.rank == SUBSET_RANK[subset]))
            if len(rows):
                groups[rows] = self._add_images(subset, layout.ids[rows], sizes[rows], lengths[rows])
                counted[rows] = True
        for row in np.flatnonzero(~counted).tolist():
            groups[row] = self.add(table.path(row), table.size(row))
        return groups

    def _add_images(self, subset: str, ids: np.ndarray, sizes: np.ndarray, path_lengths: np.ndarray) -> np.ndarray:
        """Count conforming `subset/NNNN/ID.ext` files (three components, the bucket's four digits); their groups."""
        bucket = ids % BUCKETS
        components: list[np.ndarray | int] = [len(subset), len("NNNN"), path_lengths - len(f"{subset}/NNNN/")]
        costs: dict[str, np.ndarray | int] = {
            "files": 1,
            "bytes": sizes,
            "entry_bytes": entry_bytes_of_columns(components, sizes),
            "tokens": entry_tokens([subset, "NNNN", "ID.ext"]),
        }
        arrays = self._arrays(subset)
        for key, values in costs.items():
            np.add.at(arrays[key], bucket, values)
        result: np.ndarray = SUBSET_RANK[subset] * BUCKETS + bucket
        return result

    def _arrays(self, subset: str) -> dict[str, np.ndarray]:
        return self.buckets.setdefault(
            subset, {k: np.zeros(BUCKETS, dtype=np.int64) for k in ("files", "bytes", "entry_bytes", "tokens")}
        )


def collect_stats(source: Path, progress: ProgressFn = no_progress) -> Stats:
    """Statistics from a manifest file or a release root, in one streaming pass."""
    stats = Stats()
    ticker = Ticker(progress, "plan")
    for file in files_of(source):
        stats.add(file.path, file.size)
        ticker.add(1, file.size)
    ticker.finish()
    return stats


class ProfileFit(BaseModel):
    """How a shard's .torrent compares with one client's limits (headroom < 0: over the limit)."""

    fits: bool
    headroom: dict[str, int]


class ShardPlan(BaseModel):
    """One planned .torrent."""

    name: str
    subset: str
    first_bucket: int | None
    last_bucket: int | None
    files: int
    bytes: int
    piece_length: int
    pieces: int
    torrent_bytes: int
    tokens: int
    profiles: dict[str, ProfileFit]


class TorrentPlan(BaseModel):
    """The shards of a release and the profiles they were planned for."""

    release: str
    profiles: list[str]
    shard_counts: dict[str, int]
    shards: list[ShardPlan]
    skipped_files: int
    warnings: list[str]

    @property
    def fits(self) -> bool:
        """Whether every shard fits every selected profile."""
        return all(fit.fits for shard in self.shards for fit in shard.profiles.values())


def auto_piece_length(total: int) -> int:
    """A power of two from 256 KiB to 16 MiB keeping the piece count near or under TARGET_PIECES."""
    piece = MIN_PIECE
    while piece < MAX_PIECE and piece_count(total, piece) > TARGET_PIECES:
        piece *= 2
    return piece


def fit(profile: ClientProfile, torrent_bytes: int, tokens: int, pieces: int) -> ProfileFit:
    """Headroom of a .torrent under one profile's limits."""
    headroom: dict[str, int] = {}
    if profile.max_tokens is not None:
        headroom["tokens"] = profile.max_tokens - tokens
    if profile.max_bytes is not None:
        headroom["bytes"] = profile.max_bytes - torrent_bytes
    if profile.max_pieces is not None:
        headroom["pieces"] = profile.max_pieces - pieces
    if profile.max_string is not None:
        headroom["pieces_string_bytes"] = profile.max_string - PIECE_HASH * pieces
    return ProfileFit(fits=all(v >= 0 for v in headroom.values()), headroom=headroom)


def _shard(
    settings: TorrentSettings,
    name: str,
    subset: str,
    span: tuple[int, int] | None,
    totals: dict[str, int],
    profiles: list[ClientProfile],
) -> ShardPlan:
    piece = settings.piece_length or auto_piece_length(totals["bytes"])
    skel_bytes, skel_tokens = skeleton(settings.top_level(), settings.torrent_name, piece)
    pieces = piece_count(totals["bytes"], piece)
    size = torrent_size(skel_bytes, totals["entry_bytes"], pieces)
    tokens = skel_tokens + totals["tokens"]
    return ShardPlan(
        name=name,
        subset=subset,
        first_bucket=span[0] if span else None,
        last_bucket=span[1] if span else None,
        files=totals["files"],
        bytes=totals["bytes"],
        piece_length=piece,
        pieces=pieces,
        torrent_bytes=size,
        tokens=tokens,
        profiles={p.name: fit(p, size, tokens, pieces) for p in profiles},
    )


def _split(
    settings: TorrentSettings,
    subset: str,
    arrays: dict[str, np.ndarray],
    count: int,
    first_index: int,
    profiles: list[ClientProfile],
) -> list[ShardPlan]:
    width = BUCKETS // count
    shards: list[ShardPlan] = []
    for k in range(count):
        low, high = k * width, (k + 1) * width
        totals = {key: int(values[low:high].sum()) for key, values in arrays.items()}
        if totals["files"]:
            name = f"{settings.release}-{first_index + len(shards)}"
            shards.append(_shard(settings, name, subset, (low, high - 1), totals, profiles))
    return shards


def plan_torrents(
    stats: Stats, settings: TorrentSettings, *, shards: int | None = None, profiles: tuple[str, ...] = DEFAULT_PROFILES
) -> TorrentPlan:
    """Shards for every image subset (the fewest that fit, or exactly `shards`) plus the metadata shard."""
    unknown = [p for p in profiles if p not in PROFILES]
    if unknown:
        raise BadInput(unknown[0], f"unknown client profile; known: {', '.join(PROFILES)}")
    if shards is not None and shards not in SHARD_COUNTS:
        raise BadInput(str(shards), f"--shards must divide {BUCKETS}: one of {', '.join(map(str, SHARD_COUNTS))}")
    chosen = [PROFILES[p] for p in profiles]
    planned: list[ShardPlan] = []
    counts: dict[str, int] = {}
    warnings: list[str] = []
    for subset in IMAGE_SUBSETS:
        arrays = stats.buckets.get(subset)
        if arrays is None:
            continue
        options = [shards] if shards is not None else list(SHARD_COUNTS)
        for count in options:
            candidate = _split(settings, subset, arrays, count, len(planned), chosen)
            if all(f.fits for s in candidate for f in s.profiles.values()) or count == options[-1]:
                break
        counts[subset] = count
        planned.extend(candidate)
        refusing = sorted({name for s in candidate for name, f in s.profiles.items() if not f.fits})
        if refusing:
            warnings.append(f"{subset}: with {count} shard(s), {', '.join(refusing)} will refuse some .torrent files")
    if stats.metadata["files"]:
        planned.append(_shard(settings, f"{settings.release}-metadata", "metadata", None, stats.metadata, chosen))
    if stats.skipped:
        warnings.append(f"{stats.skipped} file(s) outside original/, 512px/ and metadata/ are left out of the torrents")
    return TorrentPlan(
        release=settings.release,
        profiles=list(profiles),
        shard_counts=counts,
        shards=planned,
        skipped_files=stats.skipped,
        warnings=warnings,
    )
