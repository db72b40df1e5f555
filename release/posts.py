"""The two metadata dialects and the one post record every command reads.

Danbooru2017–2020 ship the BigQuery mirror's lines (`metadata.FIELDS`: 30 keys in a fixed order,
tags as {"id","name","category"} objects) in chunks named year + 12 digits. Danbooru2021 on ship
Danbooru's own export: `posts000000000000.json` … chunks of post lines with Danbooru's field names
(`tag_string` and its per-category parts, space-separated names), numbers still as strings,
booleans as booleans; some rows (banned and gold-only posts) have no `id` and are skipped with a
count. From 2022 the safe rating is split into `g` (general) and `s` (sensitive).

A chunk's dialect is decided once, from its name and its first valid line, and every line is read
through `decode`, so no command parses a dialect itself. `check` is the strict validation of one
decoded line (scan, metadata archive); `decode` is the lenient reading (select, stats, reconstruct),
which raises ValueError on a line it cannot use.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

from release.errors import BadInput, InputIOError, MetadataFormatError
from release.textio import MAX_METADATA_LINE, TOO_LONG, bounded_lines, loads


class Dialect(StrEnum):
    """How a metadata chunk writes its posts."""

    OLD = "bigquery"  # Danbooru2017-2020: the BigQuery mirror's 30 keys
    NEW = "danbooru"  # Danbooru2021 on: Danbooru's own post fields, tag_string


OLD_CHUNK = re.compile(r"((?:19|20)[0-9]{2})[0-9]{12}")
NEW_CHUNK = re.compile(r"posts[0-9]{12}\.json")
NEW_SIDE_CHUNK = re.compile(r"(tags|artists|notes|pools)[0-9]{12}\.json")  # shipped beside, not posts
OLD_RATINGS = frozenset({"s", "q", "e"})
NEW_RATINGS = frozenset({"g", "s", "q", "e"})
SPLIT_YEAR = 2022  # from this year's export on, "s" no longer means safe: "g" does
# keys only one dialect has: a line holding one of the other dialect's is a mixed line
OLD_ONLY = frozenset({"tags", "pools", "favs", "is_note_locked", "is_rating_locked", "is_status_locked"})
NEW_ONLY = frozenset({"tag_string", "tag_string_general", "has_active_children", "bit_flags", "fav_count"})

_NUM = re.compile(r"0|[1-9][0-9]*")
_INT = re.compile(r"-?(?:0|[1-9][0-9]*)")
_MD5 = re.compile(r"[0-9a-f]{32}")
# "2021-01-02 03:04:05.678 UTC" (BigQuery) or ISO 8601 with an offset, as Danbooru writes it
_TIME = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}(?: [0-9]{2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]{1,6})? UTC"
    r"|T[0-9]{2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]{1,6})?(?:Z|[+-][0-9]{2}:[0-9]{2}))"
)
TAG_FIELDS = ("tag_string_general", "tag_string_character", "tag_string_copyright", "tag_string_artist")
NEW_FIELDS: dict[str, str] = {
    "id": "num",
    "created_at": "time",
    "updated_at": "time",
    "uploader_id": "num",
    "approver_id": "num",
    "score": "int",
    "up_score": "int",
    "down_score": "int",
    "fav_count": "num",
    "rating": "rating",
    "md5": "md5",
    "file_ext": "word",
    "file_size": "num",
    "image_width": "num",
    "image_height": "num",
    "source": "str",
    "pixiv_id": "num",
    "parent_id": "num",
    "has_children": "bool",
    "has_active_children": "bool",
    "has_visible_children": "bool",
    "is_banned": "bool",
    "is_deleted": "bool",
    "is_flagged": "bool",
    "is_pending": "bool",
    "tag_string": "tags",
    **dict.fromkeys((*TAG_FIELDS, "tag_string_meta"), "tags"),
    "tag_count": "num",
    **{f"tag_count_{part}": "num" for part in ("general", "character", "copyright", "artist", "meta")},
    "bit_flags": "num",
}
NEW_REQUIRED = ("created_at", "rating", "file_ext", "tag_string")  # besides `id`, which a row may lack
NULLABLE = frozenset({"approver_id", "pixiv_id", "parent_id", "md5", "source"})


@dataclass(frozen=True, slots=True)
class Post:
    """What the commands read of one post, whichever dialect it came in."""

    id: int
    created_at: str  # as written; [:10] is the day, [:4] the year, in both dialects
    rating: str
    file_ext: str
    md5: str | None
    score: int
    is_deleted: bool
    tags: tuple[str, ...]  # names, as listed (a name listed twice stays twice)


def dialect_of_name(name: str) -> Dialect | None:
    """The dialect a chunk's file name says, or None when it is not a post chunk's name."""
    if OLD_CHUNK.fullmatch(name):
        return Dialect.OLD
    if NEW_CHUNK.fullmatch(name):
        return Dialect.NEW
    return None


def dialect_of_record(obj: dict[str, Any]) -> Dialect | None:
    """The dialect one decoded line is written in; None when it holds keys of both (or of neither)."""
    keys = obj.keys()
    old, new = not OLD_ONLY.isdisjoint(keys), not NEW_ONLY.isdisjoint(keys)
    if old == new:
        return None
    return Dialect.OLD if old else Dialect.NEW


def chunk_dialect(path: Path) -> Dialect:
    """A chunk's dialect: its name decides; its first line that decodes must agree (MetadataFormatError)."""
    named = dialect_of_name(path.name)
    if named is None:
        raise MetadataFormatError(str(path), 0, None, "not a metadata chunk's name (year + 12 digits, posts*.json)")
    try:
        handle = open(path, "rb")
    except OSError as exc:
        raise InputIOError(str(path), f"cannot open metadata: {exc.strerror}") from exc
    with handle:
        for lineno, raw in bounded_lines(handle, MAX_METADATA_LINE, str(path), skip_long=True):
            if raw is TOO_LONG or not raw.strip():
                continue
            try:
                obj = loads(raw)
            except ValueError:
                continue
            if isinstance(obj, dict) and (found := dialect_of_record(obj)) is not None:
                if found is not named:
                    raise MetadataFormatError(
                        str(path), lineno, None, f"a {found.value} line in a chunk named like the {named.value} export"
                    )
                break
    return named


def check(obj: Any, dialect: Dialect) -> tuple[str | None, str] | None:
    """Validate one decoded line of a `dialect` chunk: (field, problem), or None when it conforms."""
    from release.metadata import check_record  # the old dialect's rules live beside its field list

    if not isinstance(obj, dict):
        return None, "line is not a JSON object"
    foreign = sorted((OLD_ONLY if dialect is Dialect.NEW else NEW_ONLY) & obj.keys())
    if foreign:
        other = Dialect.OLD if dialect is Dialect.NEW else Dialect.NEW
        return foreign[0], f"a {other.value} key in a {dialect.value} chunk: the line mixes dialects"
    if dialect is Dialect.OLD:
        return check_record(obj)
    for name in NEW_REQUIRED:
        if name not in obj:
            return name, "missing key"
    for name, value in obj.items():
        kind = NEW_FIELDS.get(name)
        if kind is None or (value is None and name in NULLABLE):
            continue  # Danbooru adds fields over the years: unknown ones are carried, not refused
        if (problem := _check_new(kind, value)) is not None:
            return name, problem
    return None


def _check_new(kind: str, value: Any) -> str | None:
    if kind == "bool":
        return None if isinstance(value, bool) else "expected true or false"
    if not isinstance(value, str):
        return "expected a string"
    if kind == "rating":
        return None if value in NEW_RATINGS else f"rating {value!r} is not one of g, s, q, e"
    if kind == "tags":
        return None if value == value.strip(" ") and "  " not in value else "tags must be single-space separated"
    pattern = {"num": _NUM, "int": _INT, "time": _TIME, "md5": _MD5, "word": _NUM_WORD}.get(kind)
    if pattern is not None and not pattern.fullmatch(value):
        return f"{value!r} is not a valid {kind}"
    return None


_NUM_WORD = re.compile(r"[a-z0-9]{1,10}")


def decode(obj: Any, dialect: Dialect) -> Post | None:
    """The post of one decoded line; None for a row without an ID (banned, gold-only: skipped, counted).

    Raises ValueError (or KeyError, TypeError) when the line lacks what a post needs."""
    if not isinstance(obj, dict):
        raise ValueError("line is not a JSON object")
    if dialect is Dialect.NEW:
        if obj.get("id") is None:
            return None
        tag_string = obj.get("tag_string", "")
        if not isinstance(tag_string, str):
            raise TypeError("tag_string is not a string")
        tags = tuple(tag_string.split())
    else:
        tags = tuple(tag["name"] for tag in obj.get("tags", ()))
    md5 = obj.get("md5")
    # only the ID is required here: a reader that needs more (a rating, a date) finds "" and decides
    return Post(
        int(obj["id"]),
        str(obj.get("created_at", "")),
        str(obj.get("rating", "")),
        str(obj.get("file_ext", "")),
        md5 if isinstance(md5, str) else None,
        int(obj.get("score") or 0),
        obj.get("is_deleted") is True,
        tags,
    )


def sfw_ratings(year: int, include_sensitive: bool = False) -> frozenset[str]:
    """The ratings that make the SFW subset of an export of `year`: "s" before the 2022 split, "g" after
    (with "s" too when the maintainer includes sensitive posts)."""
    if year < SPLIT_YEAR:
        return frozenset({"s"})
    return frozenset({"g", "s"}) if include_sensitive else frozenset({"g"})


def rating_choice(letters: list[str], option: str) -> frozenset[str]:
    """The rating letters asked for on the command line; BadInput names the first that no dialect has."""
    for letter in letters:
        if letter not in NEW_RATINGS:
            raise BadInput(option, f"{letter!r}: choose g, s, q or e")
    return frozenset(letters)


def rating_letters(dialect: Dialect) -> tuple[str, ...]:
    """The rating letters a dialect's lines may carry, safest first."""
    return ("s", "q", "e") if dialect is Dialect.OLD else ("g", "s", "q", "e")
