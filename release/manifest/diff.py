"""`manifest diff`: what changed between two manifests, by a streaming merge of both."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel

from release.layout import sort_key
from release.manifest.io import ManifestReader
from release.models import ManifestRecord

CATEGORIES = ("added", "removed", "changed", "unchanged")


class DiffTotals(BaseModel):
    """Files and bytes in one diff category (bytes of the newer side, or of the old for removed)."""

    files: int = 0
    bytes: int = 0


class DiffReport(BaseModel):
    """Counts and bytes per category; path lists for all but `unchanged` (added only on request)."""

    old: str
    new: str
    totals: dict[str, DiffTotals]
    added: list[str]
    removed: list[str]
    changed: list[str]


def _same_content(a: ManifestRecord, b: ManifestRecord) -> bool:
    return a.size == b.size and a.xxh3_128 == b.xxh3_128 and a.sha256 == b.sha256


def diff_manifests(old: Path, new: Path, *, list_added: bool = True) -> DiffReport:
    """Compare two manifests record by record (both are in manifest order)."""
    totals = {name: DiffTotals() for name in CATEGORIES}
    paths: dict[str, list[str]] = {"added": [], "removed": [], "changed": []}

    def count(category: str, record: ManifestRecord) -> None:
        totals[category].files += 1
        totals[category].bytes += record.size
        if category in paths and (category != "added" or list_added):
            paths[category].append(record.path)

    old_it, new_it = iter(ManifestReader(old)), iter(ManifestReader(new))
    a, b = next(old_it, None), next(new_it, None)
    while a is not None or b is not None:
        if b is None or (a is not None and sort_key(a.path) < sort_key(b.path)):
            assert a is not None
            count("removed", a)
            a = next(old_it, None)
        elif a is None or sort_key(b.path) < sort_key(a.path):
            count("added", b)
            b = next(new_it, None)
        else:
            count("unchanged" if _same_content(a, b) else "changed", b)
            a, b = next(old_it, None), next(new_it, None)
    return DiffReport(old=str(old), new=str(new), totals=totals, **paths)
