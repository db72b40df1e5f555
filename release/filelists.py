"""`--files-from` lists (rsync lists, refetch lists, `select` output): the one reader and the one writer.

A list is one path per line, `./original/0000/1000.jpg`, UTF-8 (file names that are not UTF-8 never
reach a list: the walk leaves them out). Reading accepts the lines rsync accepts from us and users
write by hand: with or without `./`, blank lines and `#` comments skipped; every path is checked to
be relative and free of `..`, naming the line of a bad one.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import BinaryIO

from release.errors import BadInput, InputIOError, UnsafePath
from release.layout import check_relpath, strip_dot_slash
from release.textio import MAX_LIST_LINE, bounded_lines


def list_line(path: str) -> bytes:
    """One list line, `./<path>\\n`; refuses paths a line-based list cannot carry."""
    check_relpath(path)
    if "\n" in path or "\r" in path:
        raise BadInput(repr(path), "path contains a line break: it cannot go in a --files-from list")
    return f"./{path}\n".encode("utf-8", "surrogateescape")


def write_list(out: BinaryIO, paths: Iterable[str]) -> int:
    """Write `paths` (in the order given) as list lines to `out`; return how many."""
    count = 0
    for path in paths:
        out.write(list_line(path))
        count += 1
    return count


def read_list(source: Path) -> Iterator[tuple[int, str]]:
    """(line number, path) of every path in a list, validated; reads the file afresh on every call."""
    try:
        handle = open(source, "rb")
    except OSError as exc:
        raise InputIOError(str(source), f"cannot open list: {exc.strerror}") from exc
    with handle:
        for lineno, raw in bounded_lines(handle, MAX_LIST_LINE, str(source)):
            line = raw.rstrip(b"\r\n").decode("utf-8", "surrogateescape")
            if not line.strip() or line.startswith("#"):
                continue
            path = strip_dot_slash(line).rstrip("/")
            try:
                check_relpath(path)
            except UnsafePath as exc:
                raise BadInput(f"{source}:{lineno}", exc.problem) from exc
            yield lineno, path
