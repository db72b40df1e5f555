"""`verify s3://BUCKET/PREFIX --manifest M`: a mirror checked from listings alone, or by downloading.

The listing (one request per 1,000 objects) gives every object's size and ETag: a single-part object's
ETag is its md5, which the manifest holds; a multipart object's is checked against the ETag recorded
when it was published (the bucket's `published.json`), else by size only, and the report says so.
`--deep` downloads objects (all, or a `--sample` fraction chosen by path) and compares their xxh3-128.
The report is verify's: OK / CORRUPT / MISSING / EXTRA by subset and bucket range, the same exit codes.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO, NamedTuple

import numpy as np
import xxhash

from release.hashindex import path_hashes
from release.hashing import batched
from release.manifest.columns import column_chunks
from release.manifest.io import ManifestReader, prescan_paths
from release.progress import ProgressFn, Ticker, no_progress
from release.publish.apply import published_state
from release.publish.plan import STATE_DIR, RemoteIndex, split_etag
from release.publish.s3 import S3Store, join_key
from release.verify import Tally, VerifyReport


def parse_s3_url(url: str) -> tuple[str, str]:
    """`s3://bucket/some/prefix` -> ('bucket', 'some/prefix')."""
    rest = url.removeprefix("s3://")
    bucket, _, prefix = rest.partition("/")
    return bucket, prefix.strip("/")


def _sampled(path: str, sample: float) -> bool:
    """A deterministic choice of about `sample` of all paths (the same paths on every run)."""
    return sample >= 1 or xxhash.xxh3_64_intdigest(path.encode("utf-8", "surrogateescape")) < sample * 2**64


def verify_bucket(
    store: S3Store,
    manifest: Path,
    *,
    name: str | None = None,
    deep: bool = False,
    sample: float = 1.0,
    complete: bool = False,
    report_out: BinaryIO | None = None,
    refetch_out: BinaryIO | None = None,
    progress: ProgressFn = no_progress,
) -> VerifyReport:
    """Check the mirror at the store's bucket and prefix against `manifest` (see the module docstring)."""
    header = prescan_paths(manifest)
    prefix = store.settings.prefix
    base = join_key(prefix, name or header.release)
    store.check_bucket()
    state = published_state(store, join_key(prefix, STATE_DIR, name or header.release))
    recorded = state.multipart_etags if state is not None else {}
    index = RemoteIndex.from_entries(store.list_relative(base), keep_paths=True)
    tally = Tally(report_out, refetch_out)
    ticker = Ticker(progress, "verify", header.files, header.bytes)
    checked = 0
    for batch in batched(_records(manifest, deep)):
        rows = index.lookup(path_hashes(r.path.encode("utf-8", "surrogateescape") for r in batch))
        index.matched[rows[rows >= 0]] = True
        for record, row in zip(batch, rows.tolist(), strict=True):
            status, reason = _status(index, row, record, recorded)
            if status == "OK" and record.xxh3_128 is not None and _sampled(record.path, sample):
                status, reason = _download_check(store, join_key(base, record.path), record.xxh3_128)
                checked += record.size
            tally.add(record.path, status, reason)
            ticker.add(1, record.size)
    ticker.finish()
    for row in np.flatnonzero(~index.matched).tolist():
        assert index.paths is not None
        tally.add(index.paths[row].decode("utf-8", "surrogateescape"), "EXTRA", "in the bucket, not in the manifest")
    totals, by_subset, by_range = tally.summary()
    return VerifyReport(
        root=f"s3://{store.settings.bucket}/{base}", manifest=str(manifest), mode="deep" if deep else "etag",
        files_from=None, complete=complete, totals=totals, bytes_checked=checked, by_subset=by_subset,
        by_range=by_range, listed_not_in_manifest=0, problems=tally.problems, problems_truncated=tally.truncated,
    )  # fmt: skip


class _Record(NamedTuple):
    path: str
    size: int
    md5: bytes
    xxh3_128: str | None  # only when downloading


def _records(manifest: Path, deep: bool) -> Iterator[_Record]:
    """The manifest's records: as columns (cheap) for listings, in full when objects are downloaded."""
    if deep:
        for record in ManifestReader(manifest):
            yield _Record(record.path, record.size, bytes.fromhex(record.md5), record.xxh3_128)
        return
    for columns in column_chunks(manifest, "md5"):
        for n in range(len(columns)):
            yield _Record(columns.path(n), int(columns.sizes[n]), columns.digests[n].tobytes(), None)


def _status(index: RemoteIndex, row: int, record: _Record, recorded: dict[str, str]) -> tuple[str, str]:
    if row < 0:
        return "MISSING", "not in the bucket"
    if int(index.sizes[row]) != record.size:
        return "CORRUPT", f"size {int(index.sizes[row])}, expected {record.size}"
    parts = int(index.parts[row])
    if parts == 0:
        same = index.md5s[row].tobytes() == record.md5
        return ("OK", "") if same else ("CORRUPT", "ETag is not the manifest's md5")
    etag = recorded.get(record.path)
    if etag is None:
        return "OK", "multipart object: size checked, no published ETag to compare"
    same = split_etag(etag) == (index.md5s[row].tobytes(), parts)
    return ("OK", "") if same else ("CORRUPT", "multipart ETag differs from the one published")


def _download_check(store: S3Store, key: str, xxh3_128: str) -> tuple[str, str]:
    hasher = xxhash.xxh3_128()
    store.download_hash(key, hasher)
    if hasher.hexdigest() != xxh3_128:
        return "CORRUPT", "downloaded bytes differ from the manifest (xxh3-128)"
    return "OK", ""
