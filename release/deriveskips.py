"""What an earlier `derive 512px` skipped, so that the next one does not open those originals again.

An original is skipped for what its bytes are (not an image, animated, cannot be decoded, empty): the
same bytes under the same settings and decoders are skipped again. Every run that is given a file writes
the originals it skipped there (path, size, mtime, the reason in full, the flags), under a header naming
its settings and decoder versions. The next run, given that file, carries the outcome of each original
whose path, size and mtime are unchanged (`merge.unchanged_key`) instead of converting it again; with
other settings or decoders nothing is carried. Each year a few percent of Danbooru's originals are videos
and archives: without this, every cut opened each of them again.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, BinaryIO

from release.errors import BadInput
from release.manifest.merge import unchanged_key
from release.textio import earlier_lines

SKIPS_FORMAT = "booru-release-derive-skips"
HINT = "delete it: every skipped original is then tried again"


def _key(path: str, size: int, mtime_ns: int) -> int:
    return unchanged_key(path.encode("utf-8", "surrogateescape"), size, mtime_ns)


class EarlierSkips:
    """The skips an earlier run wrote, for the settings and decoders of this one (none when they differ)."""

    def __init__(self, path: Path, settings: dict[str, Any], versions: dict[str, str]) -> None:
        self.outcomes: dict[int, tuple[str, list[str]]] = {}  # unchanged key -> (reason, flags)
        lines = earlier_lines(path, "the earlier derive's skips")
        first = next(lines, None)
        if first is None or _header(*first) != {"settings": settings, "versions": versions}:
            return
        for where, item in lines:
            if not (
                isinstance(item, dict) and isinstance(item.get("path"), str) and isinstance(item.get("detail"), str)
                and all(type(item.get(k)) is int for k in ("size", "mtime_ns"))
                and isinstance(item.get("flags"), list) and all(isinstance(f, str) for f in item["flags"])
            ):  # fmt: skip
                raise BadInput(where, "not a skipped original of an earlier derive", HINT)
            self.outcomes[_key(item["path"], item["size"], item["mtime_ns"])] = (item["detail"], item["flags"])

    def get(self, path: str, size: int, mtime_ns: int) -> tuple[str, list[str]] | None:
        """The reason and flags of an original skipped earlier with this path, size and mtime, or None."""
        return self.outcomes.get(_key(path, size, mtime_ns))


def _header(where: str, header: Any) -> dict[str, Any]:
    if not isinstance(header, dict) or header.get("format") != SKIPS_FORMAT:
        raise BadInput(where, "not the header of an earlier derive's skips", HINT)
    return {"settings": header.get("settings"), "versions": header.get("versions")}


class SkipsWriter:
    """Writes a run's skips: the header, then one line per skipped original."""

    def __init__(self, out: BinaryIO, settings: dict[str, Any], versions: dict[str, str]) -> None:
        self.out = out
        header = {"format": SKIPS_FORMAT, "version": 1, "settings": settings, "versions": versions}
        out.write(json.dumps(header, sort_keys=True).encode() + b"\n")

    def add(self, path: str, size: int, mtime_ns: int, detail: str, flags: list[str]) -> None:
        """One skipped original."""
        item = {"path": path, "size": size, "mtime_ns": mtime_ns, "detail": detail, "flags": flags}
        self.out.write(json.dumps(item, ensure_ascii=False).encode("utf-8", "surrogateescape") + b"\n")
