"""Danbooru metadata exports: streaming reading and validation of post chunks, in either dialect.

The old (BigQuery, 2017-2020) dialect's rules are here: one JSON object per line, 30 keys in a fixed
order, numbers as strings, booleans as JSON booleans, tags as {"id","name","category"} objects, in
chunk files named year + 12 digits. The new dialect (Danbooru's own export, `posts*.json`) and the
one post record both dialects become are `release.posts`.
"""

from __future__ import annotations

import re
import stat
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import orjson

from release.errors import BadInput, InputIOError, MetadataFormatError
from release.manifest.merge import stamps
from release.posts import Dialect, Post, check, chunk_dialect, decode, dialect_of_name
from release.progress import Ticker
from release.textio import MAX_METADATA_LINE, TOO_LONG, bounded_lines, loads

_NUM = re.compile(r"0|[1-9][0-9]*")
_INT = re.compile(r"-?(?:0|[1-9][0-9]*)")
_TIME = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]{1,6})? UTC")
_MD5 = re.compile(r"[0-9a-f]{32}")
TAG_CATEGORIES = frozenset({"0", "1", "3", "4", "5"})
RATINGS = frozenset({"s", "q", "e"})

FIELDS: tuple[tuple[str, str], ...] = (
    ("id", "num"),
    ("created_at", "time"),
    ("uploader_id", "num"),
    ("score", "int"),
    ("source", "str"),
    ("md5", "md5"),
    ("last_commented_at", "time"),
    ("rating", "rating"),
    ("image_width", "num"),
    ("image_height", "num"),
    ("is_note_locked", "bool"),
    ("file_ext", "str"),
    ("last_noted_at", "time"),
    ("is_rating_locked", "bool"),
    ("parent_id", "num"),
    ("has_children", "bool"),
    ("approver_id", "num"),
    ("file_size", "num"),
    ("is_status_locked", "bool"),
    ("up_score", "int"),
    ("down_score", "int"),
    ("is_pending", "bool"),
    ("is_flagged", "bool"),
    ("is_deleted", "bool"),
    ("updated_at", "time"),
    ("is_banned", "bool"),
    ("pixiv_id", "num"),
    ("tags", "tags"),
    ("pools", "numlist"),
    ("favs", "numlist"),
)
FIELD_NAMES: tuple[str, ...] = tuple(name for name, _ in FIELDS)


def _line_pattern() -> re.Pattern[bytes]:
    """One pattern for a whole old-dialect line as the exports write it (the keys in order, no spaces, no
    escapes where a number goes). A line it matches is JSON that passes every rule of `check_record` (the
    tests hold it to that on mutated lines); any other line is checked rule by rule, for its message.
    One regular-expression match costs a third of the checks, and every reader of the export runs them."""
    char = r'(?:[^"\\\x00-\x1f]|\\["\\/bfnrt]|\\u[0-9a-fA-F]{4})'  # one character of a JSON string

    def quoted(pattern: re.Pattern[str]) -> str:
        return f'"(?:{pattern.pattern})"'

    def listed(item: str) -> str:
        return rf"\[(?:{item}(?:,{item})*)?\]"

    tag = rf'\{{"id":{quoted(_NUM)},"name":"{char}+","category":"[{"".join(sorted(TAG_CATEGORIES))}]"\}}'
    kinds = {
        "num": quoted(_NUM), "int": quoted(_INT), "time": quoted(_TIME), "md5": quoted(_MD5),
        "bool": "(?:true|false)", "str": f'"{char}*"', "rating": f'"[{"".join(sorted(RATINGS))}]"',
        "tags": listed(tag), "numlist": listed(quoted(_NUM)),
    }  # fmt: skip
    fields = ",".join(f'"{name}":{kinds[kind]}' for name, kind in FIELDS)
    return re.compile(rf"\{{{fields}\}}\n?".encode())  # lines come with their newline


OLD_LINE = _line_pattern()


def _check_value(kind: str, value: Any) -> str | None:
    """None if `value` fits `kind`, else what is wrong."""
    if kind == "bool":
        return None if isinstance(value, bool) else "expected true or false"
    if kind in ("tags", "numlist"):
        if not isinstance(value, list):
            return "expected a list"
        return _check_tags(value) if kind == "tags" else _check_numlist(value)
    if not isinstance(value, str):
        return "expected a string"
    pattern = {"num": _NUM, "int": _INT, "time": _TIME, "md5": _MD5}.get(kind)
    if pattern is not None and not pattern.fullmatch(value):
        return f"{value!r} is not a valid {kind}"
    if kind == "rating" and value not in RATINGS:
        return f"rating {value!r} is not one of s, q, e"
    return None


def _check_tags(tags: list[Any]) -> str | None:
    for i, tag in enumerate(tags):
        if not isinstance(tag, dict) or list(tag) != ["id", "name", "category"]:
            return f"tag {i} must be an object with keys id, name, category"
        if not isinstance(tag["id"], str) or not _NUM.fullmatch(tag["id"]):
            return f"tag {i} has a bad id"
        if not isinstance(tag["name"], str) or not tag["name"]:
            return f"tag {i} has a bad name"
        if tag["category"] not in TAG_CATEGORIES:
            return f"tag {i} category {tag['category']!r} is not one of 0 1 3 4 5"
    return None


def _check_numlist(values: list[Any]) -> str | None:
    for value in values:
        if not isinstance(value, str) or not _NUM.fullmatch(value):
            return f"{value!r} is not a numeric string"
    return None


def check_record(obj: Any) -> tuple[str | None, str] | None:
    """Validate one decoded record; return (field, problem) or None when it conforms."""
    if not isinstance(obj, dict):
        return None, "line is not a JSON object"
    keys = list(obj)
    if keys != list(FIELD_NAMES):
        missing = [k for k in FIELD_NAMES if k not in obj]
        extra = [k for k in keys if k not in FIELD_NAMES]
        if missing:
            return missing[0], "missing key"
        if extra:
            return extra[0], "unknown key"
        first = next(i for i, (a, b) in enumerate(zip(keys, FIELD_NAMES, strict=False)) if a != b)
        return keys[first], f"key out of order (expected {FIELD_NAMES[first]!r} here)"
    for name, kind in FIELDS:
        problem = _check_value(kind, obj[name])
        if problem is not None:
            return name, problem
    return None


@dataclass(frozen=True, slots=True)
class MetaLine:
    """One metadata line: where it is, the decoded record (None if malformed), its post (None for a row
    without an ID, or a malformed line), and the fault."""

    path: str
    line: int
    record: dict[str, Any] | None
    field: str | None = None
    problem: str | None = None
    post: Post | None = None


class LineReader(Protocol):
    """Work that takes what it needs from each line of a pass that reads them anyway (`validate_export`)."""

    def add(self, chunk: str, item: MetaLine) -> None:
        """One line of the chunk named `chunk`, as `read_chunk` gives it."""


def read_chunk(path: Path) -> Iterator[MetaLine]:
    """Stream the lines of one chunk file, each validated in the chunk's dialect (see release.posts)."""
    try:
        dialect = chunk_dialect(path)
        handle = open(path, "rb")
    except OSError as exc:
        raise InputIOError(str(path), f"cannot open metadata: {exc.strerror}") from exc
    except MetadataFormatError as exc:
        yield MetaLine(str(path), exc.line, None, exc.field, exc.problem)
        return
    with handle:
        for lineno, raw in bounded_lines(handle, MAX_METADATA_LINE, str(path), skip_long=True):
            if raw is TOO_LONG:
                yield MetaLine(str(path), lineno, None, None, f"line longer than {MAX_METADATA_LINE:,} bytes")
                continue
            if not raw.strip():
                continue
            try:
                obj = loads(raw)
            except ValueError as exc:
                yield MetaLine(str(path), lineno, None, None, f"not JSON: {exc}")
                continue
            fault = None if dialect is Dialect.OLD and OLD_LINE.fullmatch(raw) else check(obj, dialect)
            if fault is not None:
                yield MetaLine(str(path), lineno, None, fault[0], fault[1])
            else:
                yield MetaLine(str(path), lineno, obj, post=decode(obj, dialect))


def records_strict(path: Path) -> Iterator[dict[str, Any]]:
    """Stream records, raising MetadataFormatError (file, line, field) on the first bad line."""
    for item in read_chunk(path):
        if item.record is None:
            raise MetadataFormatError(item.path, item.line, item.field, item.problem or "malformed")
        yield item.record


def export_chunks(folder: Path) -> list[Path]:
    """The post chunks (year + 12 digits; posts + 12 digits + .json) directly in `folder`, sorted by name;
    BadInput names an entry with a chunk's name that is not a regular file (a folder, a FIFO that would
    block a reader, a symlink)."""
    try:
        named = sorted(p for p in folder.iterdir() if dialect_of_name(p.name) is not None)
    except FileNotFoundError:
        return []
    except OSError as exc:
        raise InputIOError(str(folder), f"cannot list folder: {exc.strerror}") from exc
    for path in named:
        mode = path.lstat().st_mode
        if not stat.S_ISREG(mode):
            kind = "folder" if stat.S_ISDIR(mode) else "symlink" if stat.S_ISLNK(mode) else "special file"
            raise BadInput(str(path), f"has a metadata chunk's name but is a {kind}, not a regular file")
    return named


def release_chunks(root: Path) -> list[Path]:
    """This release's own chunks (the top of `root/metadata`); BadInput when there are none."""
    chunks = export_chunks(root / "metadata")
    if not chunks:
        raise BadInput(
            str(root / "metadata"), "no metadata chunks (year + 12 digits, or posts*.json) at the top of metadata/"
        )
    return chunks


def chunk_stamps(chunks: Iterable[Path]) -> dict[str, tuple[int, int]]:
    """The stamps (`manifest.merge.stamps`) of metadata chunks, by file name: what was made from a release's
    chunks (its posts counted, indexed) holds while they are equal."""
    return stamps((chunk.name, chunk) for chunk in chunks)


def chunk_lines(chunks: list[Path], ticker: Ticker | None = None) -> Iterator[bytes]:
    """Every non-blank raw line of `chunks`, in order, counted into `ticker`; InputIOError names a chunk
    that cannot be read."""
    for chunk in chunks:
        try:
            with open(chunk, "rb") as handle:
                for _, raw in bounded_lines(handle, MAX_METADATA_LINE, str(chunk), skip_long=True):
                    if ticker is not None:
                        ticker.add(1, len(raw))
                    if raw.strip():
                        yield raw
        except OSError as exc:
            raise InputIOError(str(chunk), f"cannot read: {exc.strerror}") from exc


class PostReader:
    """Every post of some chunks, each chunk read in its own dialect, leniently: lines that are not a usable
    post are counted (`malformed`), rows without an ID too (`without_id`); `newest_year` is the year of
    the newest post read (it decides what --sfw means)."""

    def __init__(self, chunks: list[Path], ticker: Ticker | None = None) -> None:
        self.chunks = chunks
        self.ticker = ticker
        self.malformed = 0
        self.without_id = 0
        self.newest_year = 0
        self.dialects: dict[str, str] = {}

    def __iter__(self) -> Iterator[Post]:
        for chunk in self.chunks:
            dialect = chunk_dialect(chunk)
            self.dialects[chunk.name] = dialect.value
            for raw in chunk_lines([chunk], self.ticker):
                try:
                    post = decode(orjson.loads(raw), dialect)
                except (ValueError, KeyError, TypeError):
                    self.malformed += 1
                    continue
                if post is None:
                    self.without_id += 1
                    continue
                year = int(post.created_at[:4]) if post.created_at[:4].isdigit() else 0
                self.newest_year = max(self.newest_year, year)
                yield post


def duplicate_tags(post: Post) -> list[str]:
    """Tag names listed more than once on one post."""
    seen: set[str] = set()
    dupes: list[str] = []
    for name in post.tags:
        if name in seen and name not in dupes:
            dupes.append(name)
        seen.add(name)
    return dupes


class IdSet:
    """A compact set of non-negative integer IDs (one bit an ID)."""

    def __init__(self) -> None:
        self._bits = bytearray()

    def add(self, value: int) -> bool:
        """Add `value`; return False if it was already present."""
        byte, bit = divmod(value, 8)
        if byte >= len(self._bits):
            self._bits.extend(bytes(max(byte + 1 - len(self._bits), len(self._bits))))
        mask = 1 << bit
        if self._bits[byte] & mask:
            return False
        self._bits[byte] |= mask
        return True

    def add_many(self, values: np.ndarray) -> None:
        """Add every one of `values` (non-negative)."""
        if not len(values):
            return
        need = int(values.max()) // 8 + 1
        if need > len(self._bits):
            self._bits.extend(bytes(max(need - len(self._bits), len(self._bits))))
        bits = np.frombuffer(self._bits, np.uint8)
        np.bitwise_or.at(bits, values // 8, np.left_shift(1, values % 8).astype(np.uint8))
        del bits  # the bytearray can grow again only once no array views it

    def contains_many(self, values: np.ndarray) -> np.ndarray:
        """Which of `values` (non-negative) are in the set."""
        bits = np.frombuffer(bytes(self._bits), np.uint8)
        byte = values // 8
        inside = byte < len(bits)
        found = np.zeros(len(values), bool)
        found[inside] = (bits[byte[inside]] >> (values[inside] % 8).astype(np.uint8)) & 1 == 1
        return found

    def __contains__(self, value: int) -> bool:
        byte, bit = divmod(value, 8)
        return byte < len(self._bits) and bool(self._bits[byte] & (1 << bit))

    def __len__(self) -> int:
        return int(np.unpackbits(np.frombuffer(bytes(self._bits), dtype=np.uint8)).sum())

    def difference(self, other: IdSet) -> Iterator[int]:
        """IDs in self and not in `other`, ascending."""
        mine = np.frombuffer(bytes(self._bits), dtype=np.uint8)
        theirs = np.zeros_like(mine)
        n = min(len(mine), len(other._bits))
        theirs[:n] = np.frombuffer(bytes(other._bits[:n]), dtype=np.uint8)
        bits = np.unpackbits(mine & ~theirs, bitorder="little")
        yield from np.flatnonzero(bits).tolist()
