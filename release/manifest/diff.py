"""`manifest diff`: what changed between two manifests, by a streaming merge of both."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel

from release.manifest.io import ManifestReader
from release.manifest.merge import merge_join, record_path, unchanged
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


def diff_manifests(old: Path, new: Path, *, list_added: bool = True) -> DiffReport:
    """Compare two manifests record by record (both are in manifest order)."""
    totals = {name: DiffTotals() for name in CATEGORIES}
    paths: dict[str, list[str]] = {"added": [], "removed": [], "changed": []}

    def count(category: str, record: ManifestRecord) -> None:
        totals[category].files += 1
        totals[category].bytes += record.size
        if category in paths and (category != "added" or list_added):
            paths[category].append(record.path)

    for a, b in merge_join(ManifestReader(old), ManifestReader(new), record_path, record_path):
        if b is None:
            assert a is not None
            count("removed", a)
        elif a is None:
            count("added", b)
        else:
            count("unchanged" if unchanged(a, b.size, b.mtime_ns, b.sha256) else "changed", b)
    return DiffReport(old=str(old), new=str(new), totals=totals, **paths)
