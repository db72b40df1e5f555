"""Two streams in manifest order, walked side by side; and the one rule for "unchanged".

Manifests, sorted trees and file tables all come in manifest order (layout.sort_key), so comparing
two of them is one streaming merge: `merge_join` pairs equal paths and yields the others alone
(verify's EXTRA files and `manifest diff` go through it). Everything decides "unchanged" with
`unchanged`, or over millions of files with its key form `unchanged_key`: the incremental build, the
yearly reuse of piece hashes and the incremental scan look keys up (`manifest.keyed`) instead of
computing a sort key per file.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import TypeVar

import xxhash

from release.layout import sort_key
from release.models import ManifestRecord

A = TypeVar("A")
B = TypeVar("B")


def merge_join(
    left: Iterable[A], right: Iterable[B], left_path: Callable[[A], str], right_path: Callable[[B], str]
) -> Iterator[tuple[A | None, B | None]]:
    """Pair the items of two streams in manifest order by path: (a, b) for the same path, (a, None) and
    (None, b) for a path on one side only. Both streams must be in manifest order."""
    lefts, rights = iter(left), iter(right)
    a, b = next(lefts, None), next(rights, None)
    key_a = sort_key(left_path(a)) if a is not None else None
    key_b = sort_key(right_path(b)) if b is not None else None
    while a is not None or b is not None:
        if b is None or (key_a is not None and key_b is not None and key_a < key_b):
            yield a, None
            a = next(lefts, None)
            key_a = sort_key(left_path(a)) if a is not None else None
        elif a is None or (key_a is not None and key_b is not None and key_b < key_a):
            yield None, b
            b = next(rights, None)
            key_b = sort_key(right_path(b)) if b is not None else None
        else:
            yield a, b
            a, b = next(lefts, None), next(rights, None)
            key_a = sort_key(left_path(a)) if a is not None else None
            key_b = sort_key(right_path(b)) if b is not None else None


def record_path(record: ManifestRecord) -> str:
    """A record's path: the key `merge_join` needs for a stream of manifest records."""
    return record.path


def unchanged(old: ManifestRecord, size: int, mtime_ns: int, sha256: str | None = None) -> bool:
    """Whether a file is the one an earlier record describes (same path assumed): the same size and,
    when its sha256 is known, the same sha256; otherwise the same mtime (what incremental builds trust)."""
    if old.size != size:
        return False
    return old.sha256 == sha256 if sha256 is not None else old.mtime_ns == mtime_ns


def stamps(files: Iterable[tuple[str, Path]]) -> dict[str, tuple[int, int]]:
    """What `unchanged` compares of each file when no digest is at hand, by name: (size, mtime_ns). Work
    done from files earlier (posts counted, streams compressed) still holds while their stamps are equal."""
    return {name: (st.st_size, st.st_mtime_ns) for name, path in files for st in [path.stat()]}


def unchanged_key(path: bytes, size: int, mtime_ns: int, sha256: bytes | None = None) -> int:
    """`unchanged` as one 64-bit key: equal keys mean the same path, size and mtime (or, with the raw
    sha256, the same path, size and sha256). A sorted array of last year's keys answers "unchanged?" for
    millions of files at 8 bytes each."""
    if sha256 is not None:
        return xxhash.xxh3_64_intdigest(b"%s\0%d\0s%s" % (path, size, sha256))
    return xxhash.xxh3_64_intdigest(b"%s\0%d\0%d" % (path, size, mtime_ns))
