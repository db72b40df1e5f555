"""Bencode (BEP 3): a deterministic encoder and a bounded decoder that counts like libtorrent.

The decoder (in C) never trusts its input: it enforces a depth limit, a token limit and an input size
limit before allocating anything, and counts tokens the way libtorrent's `bdecode` does (one for
every value, dictionary key included, and one for every dictionary or list end), so that `lint`
can say how far a .torrent is from each client's limit. Integers are strict: an optional minus and
digits, no leading zero, no "-0".
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import TypeAlias, cast

from release import _bencode

Value: TypeAlias = int | bytes | list["Value"] | dict[bytes, "Value"]

DEFAULT_DEPTH_LIMIT = 100


class BencodeError(ValueError):
    """Input that is not valid bencode, or exceeds a limit; `offset` is where it went wrong."""

    def __init__(self, offset: int, problem: str) -> None:
        self.offset = offset
        self.problem = problem
        super().__init__(f"byte {offset}: {problem}")

    def __reduce__(self) -> tuple[type[BencodeError], tuple[int, str]]:
        return (BencodeError, (self.offset, self.problem))


def encode(value: Value) -> bytes:
    """Bencode `value`; dictionary keys are written sorted (as BEP 3 requires), so output is canonical."""
    out: list[bytes] = []
    _encode(value, out)
    return b"".join(out)


def _encode(value: Value, out: list[bytes]) -> None:
    if isinstance(value, bool):
        raise TypeError("bencode has no booleans")
    if isinstance(value, int):
        out.append(b"i%de" % value)
    elif isinstance(value, bytes):
        out.append(b"%d:" % len(value))
        out.append(value)
    elif isinstance(value, str):
        _encode(value.encode("utf-8"), out)
    elif isinstance(value, list):
        out.append(b"l")
        for item in value:
            _encode(item, out)
        out.append(b"e")
    elif isinstance(value, dict):
        out.append(b"d")
        for key in sorted(value):
            if not isinstance(key, bytes):
                raise TypeError(f"dictionary key {key!r} is not bytes")
            _encode(key, out)
            _encode(value[key], out)
        out.append(b"e")
    else:
        raise TypeError(f"cannot bencode {type(value).__name__}")


def tokens(value: Value) -> int:
    """How many bdecode tokens libtorrent spends on `value` (a value each, an end per list or dict)."""
    if isinstance(value, list):
        return 2 + sum(tokens(item) for item in value)
    if isinstance(value, dict):
        return 2 + sum(1 + tokens(item) for item in value.values())
    return 1


@dataclass
class Decoded:
    """A decoded value with what decoding it cost."""

    value: Value
    tokens: int
    info_span: tuple[int, int] | None  # byte range of the top-level b"info" value, for the info-hash


def decode(data: bytes, *, token_limit: int | None = None, depth_limit: int = DEFAULT_DEPTH_LIMIT) -> Decoded:
    """Decode one bencoded value that must span all of `data`; raise BencodeError on any fault. The work is
    done in C (`release/_bencode.c`: a .torrent of a million files is tens of millions of tokens)."""
    try:
        value, count, start, end = _bencode.decode(data, -1 if token_limit is None else token_limit, depth_limit)
    except ValueError as exc:
        if len(exc.args) != 3:
            raise
        offset, kind, detail = exc.args
        raise BencodeError(offset, _problem(kind, detail, token_limit, depth_limit)) from None
    return Decoded(value, count, (start, end) if start >= 0 else None)


def _problem(kind: str, detail: object, token_limit: int | None, depth_limit: int) -> str:
    """The words for a fault the C decoder reports as (kind, detail)."""
    problems = {
        "depth": f"nested deeper than {depth_limit}",
        "end": "unexpected end of data",
        "tokens": f"more than {token_limit or 0:,} tokens",
        "lead": f"unexpected byte {detail!r}",
        "missing_e": "unexpected end of data (missing 'e')",
        "key_not_string": "dictionary key is not a string",
        "key_order": f"dictionary key {detail!r} is not sorted or repeated",
        "int_end": "integer without an end or longer than 30 digits",
        "int_malformed": f"malformed integer {detail!r}",
        "len_colon": "string length without ':' or longer than 11 digits",
        "len_malformed": f"malformed string length {detail!r}",
        "str_past_end": f"string of {detail:,} bytes runs past the end of the data" if isinstance(detail, int) else "",
        "trailing": "trailing bytes after the value",
    }
    return problems.get(kind, kind)


def iter_files(info: dict[bytes, Value]) -> Iterator[tuple[list[bytes], int]]:
    """(path components, length) of every file of a v1 info dictionary (single- or multi-file)."""
    files = info.get(b"files")
    if files is None:
        name, length = info.get(b"name"), info.get(b"length")
        if isinstance(name, bytes) and isinstance(length, int):
            yield [name], length
        return
    if not isinstance(files, list):
        raise BencodeError(0, "info.files is not a list")
    for entry in files:
        if not isinstance(entry, dict):
            raise BencodeError(0, "a files entry is not a dictionary")
        path, length = entry.get(b"path"), entry.get(b"length")
        if not isinstance(path, list) or not all(isinstance(p, bytes) for p in path) or not isinstance(length, int):
            raise BencodeError(0, "a files entry lacks a valid path or length")
        yield cast(list[bytes], path), length
