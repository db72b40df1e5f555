"""Bencode (BEP 3): a deterministic encoder and a bounded decoder that counts like libtorrent.

The decoder never trusts its input: it enforces a depth limit, a token limit and an input size
limit before allocating anything, and counts tokens the way libtorrent's `bdecode` does (one for
every value, dictionary key included, and one for every dictionary or list end), so that `lint`
can say how far a .torrent is from each client's limit.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import TypeAlias

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
    """Decode one bencoded value that must span all of `data`; raise BencodeError on any fault."""
    decoder = _Decoder(data, token_limit, depth_limit)
    value = decoder.value(0)
    if decoder.pos != len(data):
        raise BencodeError(decoder.pos, "trailing bytes after the value")
    return Decoded(value, decoder.tokens, decoder.info_span)


class _Decoder:
    def __init__(self, data: bytes, token_limit: int | None, depth_limit: int) -> None:
        self.data = data
        self.pos = 0
        self.tokens = 0
        self.token_limit = token_limit
        self.depth_limit = depth_limit
        self.info_span: tuple[int, int] | None = None

    def _count(self) -> None:
        self.tokens += 1
        if self.token_limit is not None and self.tokens > self.token_limit:
            raise BencodeError(self.pos, f"more than {self.token_limit:,} tokens")

    def value(self, depth: int) -> Value:
        if depth >= self.depth_limit:
            raise BencodeError(self.pos, f"nested deeper than {self.depth_limit}")
        if self.pos >= len(self.data):
            raise BencodeError(self.pos, "unexpected end of data")
        self._count()
        lead = self.data[self.pos]
        if lead == ord("i"):
            return self._int()
        if lead == ord("l"):
            self.pos += 1
            items = []
            while self._peek() != ord("e"):
                items.append(self.value(depth + 1))
            self._end()
            return items
        if lead == ord("d"):
            return self._dict(depth)
        if ord("0") <= lead <= ord("9"):
            return self._bytes()
        raise BencodeError(self.pos, f"unexpected byte {bytes([lead])!r}")

    def _peek(self) -> int:
        if self.pos >= len(self.data):
            raise BencodeError(self.pos, "unexpected end of data (missing 'e')")
        return self.data[self.pos]

    def _end(self) -> None:
        self._count()
        self.pos += 1

    def _dict(self, depth: int) -> dict[bytes, Value]:
        self.pos += 1
        out: dict[bytes, Value] = {}
        last: bytes | None = None
        while self._peek() != ord("e"):
            if not ord("0") <= self._peek() <= ord("9"):
                raise BencodeError(self.pos, "dictionary key is not a string")
            self._count()
            key = self._bytes()
            if last is not None and key <= last:
                raise BencodeError(self.pos, f"dictionary key {key!r} is not sorted or repeated")
            last = key
            start = self.pos
            out[key] = self.value(depth + 1)
            if depth == 0 and key == b"info":
                self.info_span = (start, self.pos)
        self._end()
        return out

    def _int(self) -> int:
        end = self.data.find(b"e", self.pos + 1, self.pos + 32)
        if end < 0:
            raise BencodeError(self.pos, "integer without an end or longer than 30 digits")
        text = self.data[self.pos + 1 : end]
        if not text or text == b"-0" or (text[:1] == b"0" and len(text) > 1) or text[:2] == b"-0":
            raise BencodeError(self.pos, f"malformed integer {text!r}")
        try:
            number = int(text)
        except ValueError:
            raise BencodeError(self.pos, f"malformed integer {text!r}") from None
        self.pos = end + 1
        return number

    def _bytes(self) -> bytes:
        colon = self.data.find(b":", self.pos, self.pos + 12)
        if colon < 0:
            raise BencodeError(self.pos, "string length without ':' or longer than 11 digits")
        digits = self.data[self.pos : colon]
        if not digits.isdigit() or (digits[:1] == b"0" and len(digits) > 1):
            raise BencodeError(self.pos, f"malformed string length {digits!r}")
        length = int(digits)
        start = colon + 1
        if start + length > len(self.data):
            raise BencodeError(self.pos, f"string of {length:,} bytes runs past the end of the data")
        self.pos = start + length
        return self.data[start : self.pos]


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
        yield [p for p in path if isinstance(p, bytes)], length
