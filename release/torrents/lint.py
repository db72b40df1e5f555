"""`torrents lint`: check any .torrent against client limits and for unsafe paths, with a bounded decoder."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from pydantic import BaseModel

from release.bencode import BencodeError, Value, decode, iter_files
from release.errors import InputIOError
from release.torrents.plan import ProfileFit, fit
from release.torrents.profiles import DEFAULT_PROFILES, PROFILES

MAX_READ = 256 * 1024 * 1024  # far above any client's limit; refuse to read more


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
    problems: list[str] = []
    version = _version(info)
    pieces_field = info.get(b"pieces", b"")
    pieces = len(pieces_field) // 20 if isinstance(pieces_field, bytes) else 0
    name = info.get(b"name")
    if not isinstance(name, bytes):
        problems.append("info.name is missing")
    elif (why := unsafe_component(name)) is not None:
        problems.append(f"unsafe name: {why}")
    files = total = 0
    try:
        for components, length in iter_files(info):
            files += 1
            total += length
            for component in components:
                if (why := unsafe_component(component)) is not None:
                    shown = b"/".join(components).decode("utf-8", "replace")
                    problems.append(f"unsafe path {shown!r}: {why}")
                    break
            if not components:
                problems.append("a file with an empty path")
    except BencodeError as exc:
        problems.append(exc.problem)
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
        files=files,
        bytes=total,
        pieces=pieces,
        torrent_bytes=size,
        tokens=decoded.tokens,
        profiles=fits,
        problems=problems,
    )
