from __future__ import annotations

import json
import os
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from release.build import build_manifest
from release.select import Query, select
from release.stats import collect_post_stats, collect_stats
from release.statsreport import release_notes, write_plots
from tests.conftest import Dataset


def _posts(root: Path) -> list[dict[str, Any]]:
    chunks = sorted(p for p in (root / "metadata").iterdir() if p.is_file())
    return [json.loads(line) for chunk in chunks for line in chunk.read_text().splitlines() if line.strip()]


def test_stats_match_an_independent_count(dataset: Dataset, tmp_path: Path) -> None:
    root = dataset.root(2019)
    stats = collect_stats(root)
    posts = _posts(root)
    tags = Counter(name for p in posts for name in {t["name"] for t in p["tags"]})
    assert stats.posts == len(posts)
    assert stats.tag_instances == sum(tags.values()) and stats.unique_tags == len(tags)
    assert stats.top_tags[0] == max(tags.items(), key=lambda kv: (kv[1], [-ord(c) for c in kv[0]]))
    assert stats.ratings == {r: sum(p["rating"] == r for p in posts) for r in "sqe"}
    assert stats.earliest_upload == min(p["created_at"] for p in posts)
    assert stats.uploads_per_year == dict(sorted(Counter(p["created_at"][:4] for p in posts).items()))
    assert stats.posts_with_duplicate_tags == sum(len({t["name"] for t in p["tags"]}) != len(p["tags"]) for p in posts)
    originals = [p for p in (root / "original").rglob("*") if p.is_file()]
    assert stats.subsets["original"].files == len(originals)
    assert stats.subsets["original"].bytes == sum(p.stat().st_size for p in originals)
    assert sum(c.files for c in stats.extensions["original"].values()) == len(originals)
    assert collect_stats(root, dataset.manifests[2019]) == stats  # the manifest gives the same figures
    notes = release_notes(stats, "danbooru2019")
    assert f"| original | {len(originals):,} |" in notes and stats.top_tags[0][0] in notes
    pngs = write_plots(stats, tmp_path / "plots")
    assert [p.name for p in pngs] == ["uploads-per-year.png", "top-tags.png", "ratings.png"]
    assert all(p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for p in pngs)


def _reference(root: Path, query: Query) -> list[str]:
    """The same query written plainly over json.loads, for comparison."""
    out = []
    for p in _posts(root):
        names = {t["name"] for t in p["tags"]}
        pid = int(p["id"])
        if (
            query.tags <= names
            and not (query.not_tags & names)
            and (not query.ratings or p["rating"] in query.ratings)
            and (query.since is None or p["created_at"][:10] >= query.since)
            and (query.until is None or p["created_at"][:10] <= query.until)
            and (query.first_id is None or pid >= query.first_id)
            and (query.last_id is None or pid <= query.last_id)
            and (not query.exts or p["file_ext"] in query.exts)
            and (query.min_score is None or int(p["score"]) >= query.min_score)
        ):
            ext = "jpg" if query.subset == "512px" else p["file_ext"]
            path = f"{query.subset}/{pid % 1000:04d}/{pid}.{ext}"
            if os.path.isfile(root / path):
                out.append((pid % 1000, pid, f"./{path}"))
    return [line for *_, line in sorted(out)]


@pytest.mark.parametrize(
    "query",
    [
        Query(),
        Query(tags=frozenset({"1girl"}), ratings=frozenset({"s"})),
        Query(tags=frozenset({"1girl", "solo"}), not_tags=frozenset({"smile"}), subset="512px"),
        Query(since="2018-03-01", until="2018-09-30", exts=frozenset({"png", "gif"})),
        Query(first_id=1100, last_id=1300, min_score=3, ratings=frozenset({"q", "e"})),
    ],
)
def test_select_agrees_with_a_plain_filter(dataset: Dataset, tmp_path: Path, query: Query) -> None:
    root = dataset.root(2019)
    report = select(root, query, tmp_path / "list.txt")
    lines = (tmp_path / "list.txt").read_text().splitlines()
    assert lines and lines == _reference(root, query)
    assert report.listed == len(lines) and report.matched >= report.listed


def test_file_counts_from_the_manifest_equal_those_of_a_walk(tree_copy: Callable[[int], Path], tmp_path: Path) -> None:
    root = tree_copy(2018)
    odd = ["original/0001/1001.JPG", "original/0001/1001.tar.gz", "original/x.TXT", "original/0002/2", "512px/a.Png"]
    for rel in odd:
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(b"x" * len(rel))
    manifest = tmp_path / "m.jsonl.zst"
    build_manifest(root, manifest)
    walked = collect_stats(root)
    listed = collect_stats(root, manifest)
    assert listed.extensions == walked.extensions and listed.subsets == walked.subsets
    assert {"JPG", "gz", "txt", "original/0002/2"} <= set(walked.extensions["original"])
    assert "png" in walked.extensions["512px"]


def test_posts_counted_earlier_are_used_only_while_their_chunks_are_unchanged(tree_copy: Callable[[int], Path]) -> None:
    root = tree_copy(2018)
    earlier = collect_post_stats(root)
    assert earlier.is_current(root)
    assert collect_stats(root, posts=earlier) == collect_stats(root)
    chunk = sorted((root / "metadata").glob("2018*"))[0]
    lines = chunk.read_bytes().splitlines(keepends=True)
    chunk.write_bytes(b"".join(lines[1:]))  # one post fewer
    assert not earlier.is_current(root)
    again = collect_stats(root, posts=earlier)
    assert again.posts == earlier.posts - 1 and again == collect_stats(root)
