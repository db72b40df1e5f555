"""Line-oriented input with bounds: no line may grow without limit, no JSON may nest without limit.

Every reader of a line format goes through here, so a decompression bomb (one 2 GB line) or a
`[[[[…` line is refused with its file and line number instead of exhausting memory or the stack.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO

import orjson

from release.errors import BadInput, InputIOError

MAX_MANIFEST_LINE = 64 << 10  # a record is < 4 KiB (PATH_MAX plus digests); the header a few hundred bytes
MAX_METADATA_LINE = 16 << 20  # a post is a few KB; the largest real ones (thousands of tags, favs) a few MB
MAX_LIST_LINE = 64 << 10  # one path
_SKIP = 1 << 20
TOO_LONG = b"\x00line too long\x00"  # what a skipped over-long line reads as: never valid JSON, never blank


class LineTooLong(BadInput):
    """A line longer than its format allows."""

    def __init__(self, where: str, line: int, limit: int) -> None:
        self.line = line
        super().__init__(
            f"{where}:{line}",
            f"line longer than {limit:,} bytes: not a line of this format (a corrupt or malicious file?)",
        )


def bounded_lines(handle: BinaryIO, limit: int, where: str, *, skip_long: bool = False) -> Iterator[tuple[int, bytes]]:
    """(line number, raw line with its newline) of a binary stream; a line over `limit` bytes raises
    LineTooLong, or with `skip_long` is consumed without being kept and yielded as TOO_LONG (a fault to report)."""
    lineno = 0
    while True:
        raw = handle.readline(limit + 1)
        if not raw:
            return
        lineno += 1
        if len(raw) > limit and not raw.endswith(b"\n"):
            if not skip_long:
                raise LineTooLong(where, lineno, limit)
            while (rest := handle.readline(_SKIP)) and not rest.endswith(b"\n"):
                pass
            yield lineno, TOO_LONG
            continue
        yield lineno, raw


def loads(raw: bytes | str) -> Any:
    """Parse one JSON document; nesting is bounded (orjson: 1024 levels), so hostile input is a ValueError,
    never a RecursionError. Key order is kept."""
    return orjson.loads(raw)


def earlier_lines(path: Path, what: str) -> Iterator[tuple[str, Any]]:
    """(where, the decoded line or None when it is not JSON) for each line of a JSON-lines file an earlier
    run wrote (`what` it holds, for the message when it cannot be read); lines are bounded to one path's
    worth. The caller decides what a line must be."""
    try:
        with open(path, "rb") as handle:
            for number, raw in bounded_lines(handle, MAX_LIST_LINE, str(path)):
                try:
                    item = loads(raw)
                except ValueError:
                    item = None
                yield f"{path}:{number}", item
    except OSError as exc:
        raise InputIOError(str(path), f"cannot read {what}: {exc.strerror}") from exc
