"""Reading and writing v1 metainfo (.torrent) files.

Reading is bounded and refuses what no client should accept from us: malformed bencode, a
missing or non-v1 info dictionary, and unsafe names or paths (absolute, `..`, empty, NUL).
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from release import _bencode
from release.bencode import BencodeError, decode, encode
from release.errors import BadInput, InputIOError, UnsafePath
from release.torrents.lint import MAX_READ, check_info
from release.torrents.plan import TorrentSettings
from release.torrents.sizes import PIECE_HASH
from release.walk import FileTable


@dataclass(frozen=True)
class Metainfo:
    """The parts of a v1 torrent that locate and check its data."""

    source: str
    name: str
    piece_length: int
    pieces: bytes
    paths: list[str]
    lengths: list[int]
    info_hash: str

    @property
    def piece_count(self) -> int:
        """Number of pieces."""
        return len(self.pieces) // PIECE_HASH

    @property
    def total(self) -> int:
        """Bytes of all files."""
        return sum(self.lengths)


def table_files_field(table: FileTable, rows: np.ndarray) -> bytes:
    """The bencoded `files` list of some rows of a walked tree, written in C from the table's path bytes:
    millions of entries without an object each. Canonical: an entry's keys come sorted (`length` <
    `path`), exactly as `bencode.encode` writes them."""
    spans = table.spans(rows)
    return _bencode.files_field(spans.blob, spans.spans.astype(np.int64).tobytes(), table.sizes()[rows].tobytes())


def encode_torrent(settings: TorrentSettings, piece_length: int, pieces: bytes, files: bytes) -> tuple[bytes, str]:
    """The .torrent bytes and hex info-hash of a v1 multi-file torrent (canonical bencode); `files`: the
    bencoded `files` list (`table_files_field`)."""
    name = settings.torrent_name.encode()
    info = b"".join(
        [
            b"d5:files",
            files,
            b"4:name%d:%s" % (len(name), name),
            b"12:piece lengthi%de" % piece_length,
            b"6:pieces%d:%s" % (len(pieces), pieces),
            b"e",
        ]
    )
    fields = {key: encode(value) for key, value in settings.top_level().items()} | {b"info": info}
    top = b"d" + b"".join(b"%d:%s%s" % (len(k), k, fields[k]) for k in sorted(fields)) + b"e"
    return top, hashlib.sha1(info).hexdigest()


def load_torrent(path: Path) -> Metainfo:
    """Decode a v1 .torrent, refusing malformed data and unsafe names; BadInput/UnsafePath on faults."""
    try:
        if os.path.getsize(path) > MAX_READ:
            raise BadInput(str(path), f"larger than {MAX_READ:,} bytes; not a torrent we can load")
        data = path.read_bytes()
    except OSError as exc:
        raise InputIOError(str(path), f"cannot read: {exc.strerror}") from exc
    try:
        decoded = decode(data)
    except BencodeError as exc:
        raise BadInput(str(path), f"not a valid .torrent: {exc}") from exc
    top = decoded.value
    info = top.get(b"info") if isinstance(top, dict) else None
    if not isinstance(info, dict) or decoded.info_span is None:
        raise BadInput(str(path), "no info dictionary")
    if b"pieces" not in info:
        raise BadInput(str(path), "not a v1 torrent (v2 only: no pieces field)")
    checked = check_info(info, keep_files=True)
    if checked.problems:
        error = UnsafePath if checked.unsafe else BadInput
        more = f" (and {len(checked.problems) - 1} more problems)" if len(checked.problems) > 1 else ""
        raise error(str(path), f"not a usable v1 torrent: {checked.problems[0]}{more}", "see `torrents lint` for all")
    name = info[b"name"]
    assert isinstance(name, bytes)
    paths = [b"/".join(components).decode("utf-8", "surrogateescape") for components in checked.paths]
    if b"files" not in info:  # single-file torrent: the name is the file
        paths = [name.decode("utf-8", "surrogateescape")]
    length, pieces = info[b"piece length"], info[b"pieces"]
    assert isinstance(length, int) and isinstance(pieces, bytes)
    start, end = decoded.info_span
    return Metainfo(
        source=str(path),
        name=name.decode("utf-8", "surrogateescape"),
        piece_length=length,
        pieces=pieces,
        paths=paths,
        lengths=checked.lengths,
        info_hash=hashlib.sha1(data[start:end]).hexdigest(),
    )
