"""What the metadata step's validation reads for later steps (the posts' index for the scan and derive, their
figures for the statistics) stands in for the chunks exactly, and only while they are unchanged."""

from __future__ import annotations

import io
import os
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from release.atomic import write_text_atomic
from release.derive import plan
from release.metaarchive import validate_export
from release.metadata import read_chunk, release_chunks
from release.postindex import PostIndex, PostIndexBuilder, load_post_index, save_post_index
from release.scan import scan_root
from release.stats import PostCounter, collect_post_stats, load_post_stats
from tests.conftest import Dataset


def index_of(root: Path) -> PostIndex:
    builder = PostIndexBuilder()
    chunks = release_chunks(root)
    for chunk in chunks:
        for item in read_chunk(chunk):
            builder.add(chunk.name, item)
    return builder.build(root / "metadata")


@pytest.fixture
def root(tree_copy: Callable[[int], Path]) -> Path:
    """2019's tree with every kind of metadata finding: a duplicate ID, a malformed line (and synth's duplicate
    tags), in a second chunk, so that findings name the right chunk and line."""
    root = tree_copy(2019)
    chunks = release_chunks(root)
    lines = chunks[0].read_bytes().splitlines(keepends=True)
    extra = chunks[-1].with_name(chunks[-1].name[:4] + "9" * 12)  # the last chunk
    extra.write_bytes(b'{"id": "not a post"}\n' + lines[3] + b"\n")
    return root


def scanned(root: Path, posts: PostIndex | None) -> tuple[dict[str, object], bytes]:
    out = io.BytesIO()
    report = scan_root(root, findings_out=out, posts=posts)
    return report.model_dump(), out.getvalue()


def test_scan_and_derive_read_from_the_index_what_they_read_from_the_chunks(root: Path, tmp_path: Path) -> None:
    index = index_of(root)
    kinds = {f.kind for f in index.findings}
    assert {"metadata_duplicate_id", "metadata_malformed", "metadata_duplicate_tag"} <= kinds
    save_post_index(index, tmp_path / "index.npz")
    loaded = load_post_index(tmp_path / "index.npz", root)
    assert loaded is not None and loaded.findings == index.findings and (loaded.ids == index.ids).all()
    assert scanned(root, loaded) == scanned(root, None)
    for ratings in (None, frozenset({"q", "e"})):
        assert plan(root, root, ratings=ratings, posts=loaded) == plan(root, root, ratings=ratings)


def test_an_index_of_other_chunks_is_not_used(root: Path, tmp_path: Path) -> None:
    path = tmp_path / "index.npz"
    assert load_post_index(path, root) is None  # none saved
    save_post_index(index_of(root), path)
    chunk = release_chunks(root)[0]
    stat = chunk.stat()
    os.utime(chunk, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1))
    assert load_post_index(path, root) is None  # a chunk changed since
    os.utime(chunk, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert load_post_index(path, root) is not None
    shutil.copy(chunk, chunk.with_name(chunk.name[:4] + "8" * 12))
    assert load_post_index(path, root) is None  # a chunk was added
    path.write_bytes(path.read_bytes()[:100])
    assert load_post_index(path, tmp_path) is None  # damaged, and of a root without chunks


def test_the_validations_count_of_the_posts_is_the_stats_count(dataset: Dataset, tmp_path: Path) -> None:
    root = dataset.root(2019)
    counter, builder = PostCounter(), PostIndexBuilder()
    validate_export(release_chunks(root), readers=(counter, builder))
    counted = counter.build(root / "metadata")
    assert counted == collect_post_stats(root) and counted.posts > 400
    assert (builder.build(root / "metadata").ids == index_of(root).ids).all()
    write_text_atomic(tmp_path / "posts.json", counted.model_dump_json())
    assert load_post_stats(tmp_path / "posts.json", root) == counted
    assert load_post_stats(tmp_path / "posts.json", dataset.root(2018)) is None  # counted from other chunks
    assert load_post_stats(tmp_path / "none.json", root) is None
