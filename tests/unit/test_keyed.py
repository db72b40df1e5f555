"""Reusing last year's records by key (release.manifest.keyed): every row paired with its own record."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest

from release.build import build_manifest
from release.errors import ConsistencyFailure, ManifestFormatError
from release.manifest.io import ManifestReader, record_line
from release.manifest.keyed import (
    KeyedRecords,
    Reusable,
    Source,
    manifest_source,
    records_source,
    reusable_lines,
    unchanged_rows,
)
from release.tree import scan_tree
from tests.conftest import Dataset, zstd_content


def expected_lines(root: Path, manifest: Path) -> tuple[list[str], list[bytes | None]]:
    """The brute-force answer: per path in manifest order, last year's line when path, size, mtime agree."""
    table, _ = scan_tree(root)
    old = {r.path: r for r in ManifestReader(manifest)}
    paths, want = [], []
    for row in table.order().tolist():
        path, record = table.path(row), old.get(table.path(row))
        same = record is not None and (record.size, record.mtime_ns) == (table.size(row), table.mtime_ns(row))
        paths.append(path)
        want.append(record_line(**record.model_dump()) if same and record is not None else None)
    return paths, want


def flatten(chunks: Iterator[list[bytes | None]]) -> list[bytes | None]:
    return [line for chunk in chunks for line in chunk]


@pytest.mark.parametrize("chunk_rows", [1, 7, 1 << 14])
def test_each_row_gets_its_own_record_across_chunk_seams(dataset: Dataset, chunk_rows: int) -> None:
    root = dataset.root(2019)
    _, want = expected_lines(root, dataset.manifests[2018])
    table, _ = scan_tree(root)
    got = flatten(reusable_lines(table, table.order(), [manifest_source(dataset.manifests[2018])], chunk_rows))
    assert got == want
    assert 0 < sum(line is not None for line in got) < len(got)  # some reused, some not


def test_a_journal_comes_first_and_a_record_it_holds_twice_is_passed_over(dataset: Dataset) -> None:
    root = dataset.root(2019)
    table, _ = scan_tree(root)
    order = table.order()
    mine = [r for r in ManifestReader(dataset.manifests[2019])][::3]
    journal = [r.model_copy(update={"md5": "0" * 32}) for r in mine]  # told apart from the manifest's
    journal = sorted(journal + journal[:4], key=lambda r: [r2.path for r2 in mine].index(r.path))
    sources = [records_source("journal", journal), manifest_source(dataset.manifests[2018])]
    got = flatten(reusable_lines(table, order, sources, 5))
    from_journal = {r.path for r in mine}
    _, from_manifest = expected_lines(root, dataset.manifests[2018])
    for row, line, fallback in zip(order.tolist(), got, from_manifest, strict=True):
        if table.path(row) in from_journal:
            assert line is not None
            assert (json.loads(line)["path"], json.loads(line)["md5"]) == (table.path(row), "0" * 32)
        else:
            assert line == fallback


def test_a_valid_line_in_another_form_is_reused_in_the_canonical_form(dataset: Dataset, tmp_path: Path) -> None:
    raw = zstd_content(dataset.manifests[2018])
    lines = raw.decode().splitlines()
    record = json.loads(lines[5])
    lines[5] = json.dumps(record, indent=None, separators=(", ", ": "))  # spaces: not record_line's form
    manifest = tmp_path / "spaced.jsonl"
    manifest.write_text("\n".join(lines) + "\n")
    table, _ = scan_tree(dataset.root(2019))
    got = flatten(reusable_lines(table, table.order(), [manifest_source(manifest)], 1 << 14))
    _, want = expected_lines(dataset.root(2019), dataset.manifests[2018])
    assert got == want and record_line(**record) in got


def test_a_bad_line_in_last_years_manifest_is_named(dataset: Dataset, tmp_path: Path) -> None:
    raw = zstd_content(dataset.manifests[2018])
    lines = raw.decode().splitlines()
    lines[4] = lines[4].replace('"size":', '"size":"x",', 1)
    manifest = tmp_path / "bad.jsonl"
    manifest.write_text("\n".join(lines) + "\n")
    with pytest.raises(ManifestFormatError) as caught:
        build_manifest(dataset.root(2019), tmp_path / "m.zst", previous=manifest)
    assert caught.value.path == f"{manifest}:5"  # the line, counted from the header (line 1)


def test_a_source_that_changes_between_its_passes_is_an_error(dataset: Dataset) -> None:
    table, _ = scan_tree(dataset.root(2019))
    first = manifest_source(dataset.manifests[2018])
    calls = 0

    def chunks() -> Iterator[KeyedRecords]:
        nonlocal calls
        calls += 1
        for chunk in first.chunks():
            yield chunk if calls == 1 else KeyedRecords(chunk.size // 2, chunk.keys, chunk.line)

    with pytest.raises(ConsistencyFailure, match="changed while it was read"):
        flatten(reusable_lines(table, table.order(), [Source("shrinking", chunks)], 1 << 14))


def test_unchanged_rows_by_mtime_or_by_sha256(
    tree_copy: Callable[[int], Path], dataset: Dataset, tmp_path: Path
) -> None:
    root = tree_copy(2019)
    first = next(iter(ManifestReader(dataset.manifests[2019])))
    os.utime(root / first.path, ns=(1, 1))  # same bytes, another mtime
    table, _ = scan_tree(root)
    order = table.order()
    by_mtime = unchanged_rows(table, order, dataset.manifests[2019])
    changed = [table.path(row) for row in np.flatnonzero(~by_mtime).tolist()]
    assert changed == [first.path]
    build_manifest(root, tmp_path / "now.zst")
    by_sha = unchanged_rows(table, order, dataset.manifests[2019], tmp_path / "now.zst")
    assert by_sha.all()
    old = {r.path: r for r in ManifestReader(dataset.manifests[2018])}
    now = {r.path: r for r in ManifestReader(tmp_path / "now.zst")}
    against_2018 = unchanged_rows(table, order, dataset.manifests[2018], tmp_path / "now.zst")
    for row in order.tolist():
        record, current = old.get(table.path(row)), now[table.path(row)]
        same = record is not None and (record.size, record.sha256) == (current.size, current.sha256)
        assert against_2018[row] == same  # merge.unchanged with a sha256: path, size and sha256
    assert 0 < against_2018.sum() < len(table)


def test_what_the_manifest_reuse_holds_is_what_unchanged_rows_finds(
    tree_copy: Callable[[int], Path], dataset: Dataset
) -> None:
    """The yearly cut takes the torrents' unchanged rows from the manifest's reuse: last year's manifest read once."""
    root = tree_copy(2019)
    first = next(iter(ManifestReader(dataset.manifests[2018])))
    os.utime(root / first.path, ns=(1, 1))
    table, _ = scan_tree(root)
    order = table.order()
    journal = records_source("journal", list(ManifestReader(dataset.manifests[2019]))[:5])
    reusable = Reusable(table, order, [journal, manifest_source(dataset.manifests[2018])])
    holds = reusable.holds(str(dataset.manifests[2018]))
    assert holds is not None and reusable.holds("another.zst") is None
    scattered = np.zeros(len(table), dtype=bool)
    scattered[order] = holds
    expected = unchanged_rows(table, order, dataset.manifests[2018])
    assert scattered.tolist() == expected.tolist()
    assert 0 < expected.sum() < len(table) and not scattered[order[[table.path(r) for r in order].index(first.path)]]
