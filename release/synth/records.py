"""Metadata records for synthetic posts, in the real old-format export layout (30 keys, in order)."""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime
from typing import Any

_GENERAL = (
    "1girl solo long_hair looking_at_viewer blush smile open_mouth short_hair blue_eyes simple_background "
    "shirt skirt brown_hair black_hair hair_ornament red_eyes long_sleeves thighhighs gloves holding "
    "dress ribbon bow jewelry school_uniform twintails white_background blonde_hair green_eyes sitting "
    "closed_eyes weapon purple_eyes standing flower sky cloud day outdoors multiple_girls 2girls 1boy "
    "hat tail animal_ears jacket full_body upper_body yellow_eyes silver_hair pink_hair hairband "
    "braid ahoge wings food water tree night sword armor glasses scarf boots from_side"
).split()
_META = ("highres", "absurdres", "commentary_request", "translated", "artist_request", "copyright_request")
_SYLLABLES = (
    "ka ki ku ke ko sa shi su se so ta chi tsu te to na ni nu ne no "
    "ha hi fu he ho ma mi mu me mo ya yu yo ra ri ru re ro wa"
).split()
NEVER = "1970-01-01 00:00:00 UTC"


def _name(rng: random.Random, parts: int) -> str:
    return "".join(rng.choice(_SYLLABLES) for _ in range(parts))


def _build_vocabulary() -> list[tuple[str, str, str]]:
    rng = random.Random("booru-release-vocabulary")
    vocab: list[tuple[str, str]] = [(name, "0") for name in _GENERAL]
    series = [f"{_name(rng, 3)}_{_name(rng, 2)}" for _ in range(20)]
    vocab += [(s, "3") for s in series]
    vocab += [(f"{_name(rng, 2)}_{_name(rng, 2)}_({series[i % 20]})", "4") for i in range(60)]
    vocab += [(f"{_name(rng, 3)}_(artist)" if i % 3 == 0 else _name(rng, 4), "1") for i in range(120)]
    vocab += [(name, "5") for name in _META]
    seen: set[str] = set()
    out: list[tuple[str, str, str]] = []
    for index, (name, category) in enumerate(vocab):
        if name not in seen:
            seen.add(name)
            out.append((str(1000 + index * 37), name, category))
    return out


VOCABULARY = _build_vocabulary()
_BY_CATEGORY: dict[str, list[tuple[str, str, str]]] = {}
for _tag in VOCABULARY:
    _BY_CATEGORY.setdefault(_tag[2], []).append(_tag)


def format_time(ns: int) -> str:
    """Danbooru export timestamp: '2014-08-16 20:11:29.23325 UTC' (trailing zeros dropped)."""
    seconds, rest = divmod(ns, 1_000_000_000)
    stamp = datetime.fromtimestamp(seconds, tz=UTC).strftime("%Y-%m-%d %H:%M:%S")
    micros = rest // 1000
    frac = f"{micros:06d}".rstrip("0")
    return f"{stamp}.{frac} UTC" if frac else f"{stamp} UTC"


def _pick(rng: random.Random, category: str) -> tuple[str, str, str]:
    pool = _BY_CATEGORY[category]
    return pool[int(len(pool) * rng.random() ** 2)]  # skewed: a few tags are very common


def choose_tags(rng: random.Random, duplicate: bool) -> list[dict[str, str]]:
    """5–30 tags sorted by name: one artist, one copyright, characters, general, meta."""
    chosen = {_pick(rng, "1"), _pick(rng, "3")}
    chosen.update(_pick(rng, "4") for _ in range(int(rng.random() * 3)))
    chosen.update(_pick(rng, "0") for _ in range(3 + int(rng.random() * 25)))
    if rng.random() < 0.5:
        chosen.add(_pick(rng, "5"))
    tags = sorted(chosen, key=lambda t: t[1])
    if duplicate:
        tags.insert(0, tags[0])
    return [{"id": tid, "name": name, "category": cat} for tid, name, cat in tags]


def make_record(
    *,
    post_id: int,
    created_ns: int,
    updated_ns: int,
    rating: str,
    md5: str,
    ext: str,
    size: int,
    width: int,
    height: int,
    deleted: bool,
    banned: bool,
    duplicate_tags: bool,
    seed: str,
    year: int,
) -> dict[str, Any]:
    """One export record; fields that drift over time (score, favs) depend on `year`."""
    base = random.Random(f"{seed}:post:{post_id}")
    drift = random.Random(f"{seed}:post:{post_id}:{year}")
    up = int(base.random() * 10 + drift.random() * 5)
    down = -int(drift.random() * 3) if drift.random() < 0.2 else 0
    tags = choose_tags(base, duplicate_tags)
    parent = str(max(1, post_id - 1 - int(base.random() * 500))) if base.random() < 0.1 else "0"
    pixiv = str(10_000_000 + int(base.random() * 60_000_000)) if base.random() < 0.4 else "0"
    source = (
        f"https://www.pixiv.net/artworks/{pixiv}"
        if pixiv != "0"
        else ("" if base.random() < 0.5 else f"https://example.org/{post_id}.{ext}")
    )
    favs = sorted({str(1 + int(drift.random() * 900_000)) for _ in range(int(drift.random() * 8))})
    commented = format_time(updated_ns - 86_400_000_000_000) if base.random() < 0.15 else NEVER
    return {
        "id": str(post_id),
        "created_at": format_time(created_ns),
        "uploader_id": str(1 + int(base.random() * 700_000)),
        "score": str(up + down),
        "source": source,
        "md5": md5,
        "last_commented_at": commented,
        "rating": rating,
        "image_width": str(width),
        "image_height": str(height),
        "is_note_locked": False,
        "file_ext": ext,
        "last_noted_at": NEVER,
        "is_rating_locked": base.random() < 0.05,
        "parent_id": parent,
        "has_children": False,
        "approver_id": str(int(base.random() * 20_000)) if base.random() < 0.5 else "0",
        "file_size": str(size),
        "is_status_locked": False,
        "up_score": str(up),
        "down_score": str(down),
        "is_pending": False,
        "is_flagged": False,
        "is_deleted": deleted,
        "updated_at": format_time(updated_ns),
        "is_banned": banned,
        "pixiv_id": pixiv,
        "tags": tags,
        "pools": [],
        "favs": favs,
    }


def record_line(record: dict[str, Any]) -> bytes:
    """The record as one export line: compact JSON, keys in order, UTF-8."""
    return json.dumps(record, separators=(",", ":"), ensure_ascii=False).encode("utf-8") + b"\n"


_TAG_PARTS = {"0": "general", "4": "character", "3": "copyright", "1": "artist", "5": "meta"}
GENERAL_SHARE = 0.7  # of the safe posts of a 2022+ export, rated g (general); the rest stay s (sensitive)


def format_time_iso(ns: int) -> str:
    """Danbooru's own timestamp form: '2021-08-16T20:11:29.233+00:00' (milliseconds, an offset)."""
    seconds, rest = divmod(ns, 1_000_000_000)
    stamp = datetime.fromtimestamp(seconds, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S")
    return f"{stamp}.{rest // 1_000_000:03d}+00:00"


def new_dialect(record: dict[str, Any], created_ns: int, updated_ns: int, split: bool) -> dict[str, Any]:
    """An old-dialect record as Danbooru's own export writes the same post (constructed from the field
    list of the 2021+ export, not copied from it); with `split` (2022 on), safe posts become g or s."""
    rating = record["rating"]
    if split and rating == "s" and random.Random(f"split:{record['id']}").random() < GENERAL_SHARE:
        rating = "g"
    names: dict[str, list[str]] = {part: [] for part in _TAG_PARTS.values()}
    for tag in record["tags"]:
        names[_TAG_PARTS[tag["category"]]].append(tag["name"])
    out: dict[str, Any] = {
        "id": record["id"],
        "created_at": format_time_iso(created_ns),
        "updated_at": format_time_iso(updated_ns),
        "uploader_id": record["uploader_id"],
        "approver_id": None if record["approver_id"] == "0" else record["approver_id"],
        "score": record["score"],
        "up_score": record["up_score"],
        "down_score": record["down_score"],
        "fav_count": str(len(record["favs"])),
        "rating": rating,
        "md5": record["md5"],
        "file_ext": record["file_ext"],
        "file_size": record["file_size"],
        "image_width": record["image_width"],
        "image_height": record["image_height"],
        "source": record["source"],
        "pixiv_id": None if record["pixiv_id"] == "0" else record["pixiv_id"],
        "parent_id": None if record["parent_id"] == "0" else record["parent_id"],
        "has_children": record["has_children"],
        "has_active_children": record["has_children"],
        "has_visible_children": record["has_children"],
        "is_banned": record["is_banned"],
        "is_deleted": record["is_deleted"],
        "is_flagged": record["is_flagged"],
        "is_pending": record["is_pending"],
        "tag_string": " ".join(tag["name"] for tag in record["tags"]),
    }
    out |= {f"tag_string_{part}": " ".join(listed) for part, listed in names.items()}
    out["tag_count"] = str(len(record["tags"]))
    out |= {f"tag_count_{part}": str(len(listed)) for part, listed in names.items()}
    out["bit_flags"] = "0"
    return out


def hidden_row(post_id: int, created_ns: int) -> dict[str, Any]:
    """A row of a banned or gold-only post as the new export ships it: no ID, no md5 (readers skip it)."""
    stamp = format_time_iso(created_ns)
    return {
        "created_at": stamp,
        "updated_at": stamp,
        "rating": "q",
        "file_ext": "jpg",
        "tag_string": "",
        "is_banned": True,
    }


def tag_table(stamp: str) -> bytes:
    """The export's tag chunk (`tags000000000000.json`): one line per tag of the vocabulary."""
    lines = [
        {
            "id": tid,
            "name": name,
            "category": cat,
            "post_count": "0",
            "created_at": stamp,
            "updated_at": stamp,
            "is_locked": False,
        }
        for tid, name, cat in VOCABULARY
    ]
    return b"".join(record_line(line) for line in lines)
