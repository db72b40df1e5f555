"""Sorted arrays of 64-bit hashes as compact sets: millions of paths at 8 bytes each, looked up at once."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import xxhash


def path_hashes(paths: Iterable[bytes]) -> np.ndarray:
    """The 64-bit hash (xxh3) of each path (UTF-8 bytes): the key of every path set and index."""
    return np.fromiter(map(xxhash.xxh3_64_intdigest, paths), dtype=np.uint64)


def lookup(sorted_hashes: np.ndarray, wanted: np.ndarray) -> np.ndarray:
    """The index of each of `wanted` in `sorted_hashes` (ascending), or -1 where it is absent."""
    if not len(sorted_hashes):
        return np.full(len(wanted), -1, dtype=np.int64)
    index = np.searchsorted(sorted_hashes, wanted)
    index[index >= len(sorted_hashes)] = 0
    return np.where(sorted_hashes[index] == wanted, index, -1)
