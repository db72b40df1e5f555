"""`torrents lint`: check any .torrent against client limits and for unsafe paths, with a bounded decoder."""

from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from pydantic import BaseModel

from release.bencode import BencodeError, Value, decode, iter_files
from release.errors import InputIOError
from release.torrents.plan import ProfileFit, fit
from release.torrents.profiles import DEFAULT_PROFILES, PROFILES
from release.torrents.sizes import PIECE_HASH

MAX_READ = 256 * 1024 * 1024  # far above any client's limit; refuse to read more
_UNSAFE = re.compile(rb"/\.{0,2}/|[\\\x00]")  # in "/" + path + "/": an empty, "." or ".." component; "\\"; NUL


class LintReport(BaseModel):
    """What one .torrent is and what is wrong with it."""

    file: str
    info_hash: str | None
    version: str | None
    files: int
    bytes: int
    pieces: int
    torrent_bytes: int
    tokens: int
    profiles: dict[str, ProfileFit]
    problems: list[str]

    @property
    def failed(self) -> bool:
        """A problem, or a selected profile whose limits are exceeded."""
        return bool(self.problems) or not all(f.fits for f in self.profiles.values())


def unsafe_component(component: bytes) -> str | None:
    """Why a path component (or torrent name) is unsafe to join under a download folder, if it is."""
    if component in (b"", b".", b".."):
        return f"component {component!r}"
    for bad, what in ((b"/", "'/'"), (b"\\", "'\\\\'"), (b"\x00", "NUL")):
        if bad in component:
            return f"component {component!r} contains {what}"
    return None


@dataclass
class InfoCheck:
    """What one validation of an info dictionary found (the same rules for `lint` and every loader)."""

    files: int = 0
    total: int = 0
    pieces: int = 0
    paths: list[list[bytes]] = field(default_factory=list)  # kept only when asked for
    lengths: list[int] = field(default_factory=list)
    unsafe: list[str] = field(default_factory=list)  # names and paths never to be joined under a download folder
    faults: list[str] = field(default_factory=list)  # everything else that is wrong

    @property
    def problems(self) -> list[str]:
        """Everything wrong, unsafe names and paths first."""
        return self.unsafe + self.faults


def check_info(info: dict[bytes, Value], keep_files: bool = False) -> InfoCheck:
    """Validate a v1 (or hybrid) info dictionary: a safe name, a positive piece length, whole 20-byte piece
    hashes and as many as the data needs, safe non-empty paths, no negative length."""
    found = InfoCheck()
    name = info.get(b"name")
    if not isinstance(name, bytes):
        found.faults.append("info.name is missing")
    elif (why := unsafe_component(name)) is not None:
        found.unsafe.append(f"unsafe name: {why}")
    try:
        for components, length in iter_files(info):
            found.files += 1
            found.total += length
            _check_file(found, components, length)
            if keep_files:
                found.paths.append(components)
                found.lengths.append(length)
    except BencodeError as exc:
        found.faults.append(exc.problem)
    _check_pieces(found, info)
    return found


def _check_file(found: InfoCheck, components: list[bytes], length: int) -> None:
    if not components:
        found.unsafe.append("a file with an empty path")
    elif not _plainly_safe(components):
        for component in components:
            if (why := unsafe_component(component)) is not None:
                found.unsafe.append(f"unsafe path {_shown(components)!r}: {why}")
                break
    if length < 0:
        found.faults.append(f"negative length {length} for {_shown(components)!r}")


def _shown(components: list[bytes]) -> str:
    """A path as a message shows it (only a path with a problem is joined and decoded)."""
    return b"/".join(components).decode("utf-8", "replace")


def _plainly_safe(components: list[bytes]) -> bool:
    """No component `unsafe_component` would refuse, in one search of the joined path (millions of files
    a torrent); a path it cannot clear goes through `unsafe_component` for the words."""
    joined = b"/" + b"/".join(components) + b"/"
    return joined.count(b"/") == len(components) + 1 and _UNSAFE.search(joined) is None


def _check_pieces(found: InfoCheck, info: dict[bytes, Value]) -> None:
    length, pieces = info.get(b"piece length"), info.get(b"pieces")
    if not isinstance(length, int) or isinstance(length, bool) or length <= 0:
        found.faults.append(f"piece length {length!r} is not a positive number of bytes")
        return
    if b"pieces" not in info and info.get(b"meta version") == 2:
        return  # v2 only: piece hashes live in the piece layers
    if not isinstance(pieces, bytes) or len(pieces) % PIECE_HASH:
        size = len(pieces) if isinstance(pieces, bytes) else "no"
        found.faults.append(f"pieces has {size} bytes, not a whole number of {PIECE_HASH}-byte SHA-1 hashes")
        return
    found.pieces = len(pieces) // PIECE_HASH
    expected = -(-max(found.total, 0) // length)
    if found.pieces != expected:
        found.faults.append(f"{found.pieces} piece hashes for {expected} pieces of data")


def _version(info: dict[bytes, Value]) -> str:
    v2 = info.get(b"meta version") == 2
    v1 = b"pieces" in info
    return "hybrid" if v1 and v2 else "v2" if v2 else "v1"


def lint_torrent(path: Path, profiles: tuple[str, ...] = DEFAULT_PROFILES) -> LintReport:
    """Decode `path` (bounded) and check it; a malformed file is reported, not raised."""
    try:
        size = os.path.getsize(path)
        with open(path, "rb") as handle:
            data = handle.read(MAX_READ + 1)
    except OSError as exc:
        raise InputIOError(str(path), f"cannot read: {exc.strerror}") from exc
    empty = LintReport(
        file=str(path),
        info_hash=None,
        version=None,
        files=0,
        bytes=0,
        pieces=0,
        torrent_bytes=size,
        tokens=0,
        profiles={},
        problems=[],
    )
    if len(data) > MAX_READ:
        return empty.model_copy(update={"problems": [f"larger than {MAX_READ:,} bytes; not read"]})
    try:
        decoded = decode(data)
    except BencodeError as exc:
        return empty.model_copy(update={"problems": [f"not valid bencode: {exc}"]})
    top = decoded.value
    info = top.get(b"info") if isinstance(top, dict) else None
    if not isinstance(info, dict) or decoded.info_span is None:
        return empty.model_copy(update={"tokens": decoded.tokens, "problems": ["no info dictionary"]})
    version = _version(info)
    checked = check_info(info)
    problems, pieces = checked.problems, checked.pieces
    start, end = decoded.info_span
    chosen = {p: PROFILES[p] for p in profiles}
    fits = {p: fit(profile, size, decoded.tokens, pieces) for p, profile in chosen.items()}
    for p, profile in chosen.items():
        if version != "v1" and not profile.v2:
            fits[p] = ProfileFit(fits=False, headroom=fits[p].headroom | {"v2_unsupported": -1})
    return LintReport(
        file=str(path),
        info_hash=hashlib.sha1(data[start:end]).hexdigest(),
        version=version,
        files=checked.files,
        bytes=checked.total,
        pieces=pieces,
        torrent_bytes=size,
        tokens=decoded.tokens,
        profiles=fits,
        problems=problems,
    )
