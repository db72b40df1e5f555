"""The synthetic dataset's plan: posts in compact arrays, tricky cases and yearly changes.

Only `random.Random.random()` is used (its sequence is guaranteed stable across Python versions),
so the same seed gives the same plan everywhere.
"""

from __future__ import annotations

import math
import random
from array import array
from dataclasses import dataclass, field
from datetime import UTC, datetime

from release.synth.images import SPECIAL_EXTS

EXT_WEIGHTS: tuple[tuple[str, float], ...] = (
    ("jpg", 0.70),
    ("png", 0.21),
    ("gif", 0.03),
    ("jpeg", 0.01),
    ("bmp", 0.004),
    ("webm", 0.01),
    ("mp4", 0.01),
    ("swf", 0.01),
    ("zip", 0.006),
    ("rar", 0.002),
    ("pdf", 0.002),
    ("html", 0.002),
    ("avi", 0.002),
    ("mpg", 0.002),
    ("wmv", 0.002),
    ("mp3", 0.002),
)
EXTS: tuple[str, ...] = tuple(e for e, _ in EXT_WEIGHTS)
RATINGS: tuple[tuple[str, float], ...] = (("s", 0.62), ("q", 0.28), ("e", 0.10))
TRICKS: tuple[str, ...] = (
    "png_as_jpg",
    "truncated",
    "empty",
    "wrong_bucket",
    "file_without_metadata",
    "metadata_without_file",
    "duplicate_tags",
    "deleted",
    "md5_mismatch",
)
# originals that derivers of the 512px subset get wrong, planted among the safe posts (see synth/images.py)
IMAGE_TRICKS: tuple[str, ...] = ("line_art_dark", "line_art_light", "cmyk", "png16", "animated_gif")
SFW_SOURCE_EXTS = frozenset({"jpg", "jpeg", "png", "gif", "bmp"})
FIRST_ID = 1000


def year_start_ns(year: int) -> int:
    """Nanoseconds since the epoch at the start of `year` (UTC)."""
    return int(datetime(year, 1, 1, tzinfo=UTC).timestamp()) * 1_000_000_000


def _weighted(rng: random.Random, table: tuple[tuple[str, float], ...]) -> int:
    r = rng.random() * sum(w for _, w in table)
    for index, (_, weight) in enumerate(table):
        r -= weight
        if r < 0:
            return index
    return len(table) - 1


def _lognormal(rng: random.Random, mean: float, sigma: float) -> float:
    z = math.sqrt(-2.0 * math.log(1.0 - rng.random())) * math.cos(2.0 * math.pi * rng.random())
    return math.exp(math.log(mean) - sigma * sigma / 2 + sigma * z)


def _sample(rng: random.Random, low: int, high: int, count: int, exclude: set[int]) -> list[int]:
    """`count` distinct integers from [low, high) not in `exclude` (fewer if the range is small)."""
    pool = high - low - sum(1 for x in exclude if low <= x < high)
    count = min(count, max(0, pool))
    chosen: set[int] = set()
    while len(chosen) < count:
        pick = low + int(rng.random() * (high - low))
        if pick not in exclude:
            chosen.add(pick)
    return sorted(chosen)


@dataclass
class Plan:
    """Every post of every year, and what happens to which."""

    years: tuple[int, ...]
    seed: int
    tiny: bool
    drawn: bool = False  # images of a few megapixels (images.drawn_image)
    ids: array[int] = field(default_factory=lambda: array("q"))
    created: array[int] = field(default_factory=lambda: array("q"))
    sizes: array[int] = field(default_factory=lambda: array("q"))
    exts: array[int] = field(default_factory=lambda: array("b"))
    ratings: array[int] = field(default_factory=lambda: array("b"))
    year_end: list[int] = field(default_factory=list)  # posts [0, year_end[k]) exist at year k
    tricks: dict[int, str] = field(default_factory=dict)  # post index -> trick
    image_tricks: dict[int, str] = field(default_factory=dict)  # post index -> IMAGE_TRICKS kind
    takedown_year: dict[int, int] = field(default_factory=dict)  # post index -> year index
    replaced: dict[int, list[int]] = field(default_factory=dict)  # post index -> year indices

    def ext(self, index: int) -> str:
        """Extension of post `index`."""
        ext: str = EXTS[self.exts[index]]
        return ext

    def rating(self, index: int) -> str:
        """Rating of post `index`."""
        rating: str = RATINGS[self.ratings[index]][0]
        return rating

    def version(self, index: int, year_index: int) -> int:
        """Which content a post has at `year_index`: 0 for the original, else the replacing year + 1."""
        versions = [k + 1 for k in self.replaced.get(index, []) if k <= year_index]
        return versions[-1] if versions else 0

    def has_file(self, index: int, year_index: int) -> bool:
        """Whether the post's original file is in the snapshot of `year_index`."""
        if self.tricks.get(index) == "metadata_without_file":
            return False
        gone = self.takedown_year.get(index)
        return gone is None or gone > year_index

    def has_sfw(self, index: int) -> bool:
        """Whether the post gets a 512px SFW derivative."""
        return (
            self.rating(index) == "s"
            and self.ext(index) in SFW_SOURCE_EXTS
            and self.tricks.get(index) not in ("empty", "truncated", "png_as_jpg", "metadata_without_file")
            and self.image_tricks.get(index) != "animated_gif"  # the published subset skips animations
        )


def make_plan(years: tuple[int, ...], images: int, seed: int, tiny: bool, mean_size: int, drawn: bool = False) -> Plan:
    """Lay out `images` posts over `years`, IDs growing with upload date."""
    rng = random.Random(f"booru-release-synth:{seed}")
    plan = Plan(years=years, seed=seed, tiny=tiny, drawn=drawn)
    per_year = [images // len(years) + (1 if k < images % len(years) else 0) for k in range(len(years))]
    post_id = FIRST_ID - 1
    for k, (year, count) in enumerate(zip(years, per_year, strict=True)):
        start, span = year_start_ns(year), year_start_ns(year + 1) - year_start_ns(year)
        first = len(plan.ids)
        for j in range(count):
            post_id += 1 + (int(rng.random() * 3) if rng.random() < 0.3 else 0)
            plan.ids.append(post_id)
            plan.created.append(start + int((j + rng.random()) / count * span))
            forced = k == 0 and j < len(EXTS)  # every listed type appears at least once
            plan.exts.append(j if forced else _weighted(rng, EXT_WEIGHTS))
            plan.ratings.append(_weighted(rng, RATINGS))
            size = (
                4 + int(rng.random() * 12)
                if tiny
                else int(min(50 * mean_size, max(1024, _lognormal(rng, mean_size, 0.6))))
            )
            plan.sizes.append(size)
        plan.year_end.append(len(plan.ids))
        _plan_tricks(plan, rng, first, first + (len(EXTS) if k == 0 else 0), len(plan.ids))
        _plan_image_tricks(plan, first, len(plan.ids))
        if k > 0:
            _plan_changes(plan, rng, k, first)
    return plan


def _plan_tricks(plan: Plan, rng: random.Random, first: int, low: int, high: int) -> None:
    per_kind = max(1, (high - first) // 400) if high - low >= 4 * len(TRICKS) else 0
    picks = _sample(rng, low, high, per_kind * len(TRICKS), set())
    for n, index in enumerate(picks):
        trick = TRICKS[n % len(TRICKS)]
        plan.tricks[index] = trick
        if trick in ("png_as_jpg", "truncated"):
            plan.exts[index] = EXTS.index("jpg")
            if not plan.tiny:
                plan.sizes[index] = max(plan.sizes[index], 2048)


def _plan_image_tricks(plan: Plan, first: int, high: int) -> None:
    """A few safe image posts of each year become IMAGE_TRICKS originals (drawn from their own random
    stream: the rest of the plan stays what it was)."""
    if plan.tiny:
        return
    rng = random.Random(f"booru-release-synth:{plan.seed}:images:{first}")
    pool = [
        i for i in range(first, high)
        if i not in plan.tricks and plan.rating(i) == "s" and plan.ext(i) in ("jpg", "png", "gif")
    ]  # fmt: skip
    per_kind = max(1, len(pool) // 500) if len(pool) >= 4 * len(IMAGE_TRICKS) else 0
    for n, index in enumerate(_sample(rng, 0, len(pool), per_kind * len(IMAGE_TRICKS), set())):
        kind = IMAGE_TRICKS[n % len(IMAGE_TRICKS)]
        post = pool[index]
        plan.image_tricks[post] = kind
        plan.exts[post] = EXTS.index(SPECIAL_EXTS[kind])


def _plan_changes(plan: Plan, rng: random.Random, k: int, first: int) -> None:
    count = max(1, first // 500)
    exclude = set(plan.tricks) | set(plan.takedown_year)
    for index in _sample(rng, 0, first, count, exclude):
        plan.takedown_year[index] = k
    exclude |= set(plan.takedown_year)
    for index in _sample(rng, 0, first, count, exclude):
        plan.replaced.setdefault(index, []).append(k)
