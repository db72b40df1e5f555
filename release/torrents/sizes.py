"""Exact bencoded sizes and token counts of v1 torrents, without building them.

A v1 file entry `d6:lengthi<n>e4:pathl<c1><c2>…ee` costs 7 + len(path) tokens; the rest of the
torrent is a fixed skeleton plus 20 bytes a piece. `tests/unit/test_torrent_sizes.py` checks
these formulas against real encodings.
"""

from __future__ import annotations

import numpy as np

from release.bencode import Value, encode, tokens

PIECE_HASH = 20
ENTRY_FIXED = len(b"d6:lengthi") + len(b"e4:pathl") + len(b"ee")  # a file entry but its length and components
_POWERS = 10 ** np.arange(1, 19, dtype=np.int64)


def entry_bytes(components: list[str], length: int) -> int:
    """Bencoded size of one v1 `files` entry: each component `<len>:<bytes>`, the length in decimal."""
    parts = sum(len(str(len(c.encode()))) + 1 + len(c.encode()) for c in components)
    return ENTRY_FIXED + len(str(length)) + parts


def decimal_digits(values: np.ndarray | int) -> np.ndarray:
    """`len(str(v))` of each non-negative int64, on a whole column (or of one)."""
    digits: np.ndarray = np.searchsorted(_POWERS, values, side="right") + 1
    return digits


def entry_bytes_of_columns(components: list[np.ndarray | int], lengths: np.ndarray) -> np.ndarray:
    """`entry_bytes` of many files at once, every file with as many components: each component's length in
    bytes (a column, or one length all files share) and each file's length."""
    parts = sum((decimal_digits(c) + 1 + c for c in components), np.zeros(len(lengths), np.int64))
    return ENTRY_FIXED + decimal_digits(lengths) + parts


def entry_tokens(components: list[str]) -> int:
    """bdecode tokens of one v1 `files` entry: dict, 2 keys, int, list, components, 2 ends."""
    return 7 + len(components)


def skeleton(top: dict[bytes, Value], name: str, piece_length: int) -> tuple[int, int]:
    """(bytes, tokens) of a torrent with an empty file list and no pieces, for the given top-level fields."""
    info: dict[bytes, Value] = {b"files": [], b"name": name.encode(), b"piece length": piece_length, b"pieces": b""}
    whole: dict[bytes, Value] = {**top, b"info": info}
    return len(encode(whole)), tokens(whole)


def torrent_size(skeleton_bytes: int, files_bytes: int, pieces: int) -> int:
    """Bytes of the whole .torrent: skeleton + file entries + piece hashes (and the longer length prefix)."""
    hashes = PIECE_HASH * pieces
    return skeleton_bytes + files_bytes + hashes + len(str(hashes)) - 1


def piece_count(total_bytes: int, piece_length: int) -> int:
    """Pieces covering `total_bytes` (no padding)."""
    return -(-total_bytes // piece_length)
