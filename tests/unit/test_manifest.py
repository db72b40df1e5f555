from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path

import pytest

from release.build import build_manifest
from release.errors import InputIOError, ManifestFormatError, SchemaVersionError
from release.layout import sort_key
from release.manifest.diff import diff_manifests
from release.manifest.io import ManifestReader, prescan_paths, validate_manifest
from release.progress import Progress
from tests.conftest import Dataset, zstd_content


def lines(path: Path) -> list[str]:
    return zstd_content(path).decode().splitlines()


def test_manifest_covers_every_file_in_order(dataset: Dataset) -> None:
    root = dataset.root(2019)
    reader = ManifestReader(dataset.manifests[2019])
    records = list(reader)
    on_disk = sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())
    assert sorted(r.path for r in records) == on_disk
    assert [r.path for r in records] == sorted(on_disk, key=sort_key)
    assert reader.header.files == len(records)
    assert reader.header.bytes == sum(r.size for r in records)
    assert reader.header.subsets["original"].files == sum(1 for r in records if r.path.startswith("original/"))
    assert reader.header.release == "danbooru2019"


def test_incremental_build_reuses_and_equals_full_rehash(dataset: Dataset, tmp_path: Path) -> None:
    inc = build_manifest(
        dataset.root(2019), tmp_path / "inc.zst", release="danbooru2019", previous=dataset.manifests[2018]
    )
    old = {(r.path, r.size, r.mtime_ns) for r in ManifestReader(dataset.manifests[2018])}
    new = [(r.path, r.size, r.mtime_ns) for r in ManifestReader(dataset.manifests[2019])]
    # exactly the files whose path, size or mtime differ are hashed: uploads, replacements, moved chunks
    assert inc.hashed_files == sum(1 for key in new if key not in old)
    assert inc.reused_files == sum(1 for key in new if key in old) > 0
    assert (tmp_path / "inc.zst").read_bytes() == dataset.manifests[2019].read_bytes()
    forced = build_manifest(
        dataset.root(2019), tmp_path / "re.zst", release="danbooru2019", previous=dataset.manifests[2018], rehash=True
    )
    assert forced.reused_files == 0 and (tmp_path / "re.zst").read_bytes() == dataset.manifests[2019].read_bytes()


def test_changed_mtime_is_rehashed(tree_copy: Callable[[int], Path], dataset: Dataset, tmp_path: Path) -> None:
    root = tree_copy(2017)
    first = next(iter(ManifestReader(dataset.manifests[2017])))
    os.utime(root / first.path, ns=(1, 1))
    report = build_manifest(root, tmp_path / "m.zst", previous=dataset.manifests[2017])
    assert report.hashed_files == 1 and report.hashed_bytes == first.size


def test_diff_between_years(dataset: Dataset) -> None:
    diff = diff_manifests(dataset.manifests[2018], dataset.manifests[2019])
    log = dataset.changelog.years[2]
    assert set(diff.changed) == set(log.replaced)
    assert set(log.takedowns) <= set(diff.removed)
    # the rest of what was removed is 2018's export, archived under metadata/2018/
    assert {p for p in diff.removed if p not in log.takedowns} == {
        p for p in diff.removed if p.startswith("metadata/2018")
    }
    total_new = ManifestReader(dataset.manifests[2019]).header.files
    assert diff.totals["added"].files + diff.totals["changed"].files + diff.totals["unchanged"].files == total_new


def test_interrupted_build_leaves_no_output_only_its_journal(dataset: Dataset, tmp_path: Path) -> None:
    def interrupt(event: Progress) -> None:
        if event.stage == "hash" and event.done > 10:
            raise KeyboardInterrupt

    out = tmp_path / "m.zst"
    with pytest.raises(KeyboardInterrupt):
        build_manifest(dataset.root(2019), out, progress=interrupt)
    left = [p.name for p in tmp_path.iterdir()]
    assert len(left) == 1 and left[0].startswith(".m.zst.") and left[0].endswith(".journal"), left


def write_manifest(path: Path, header: dict[str, object], records: list[str]) -> Path:
    path.write_text(json.dumps(header) + "\n" + "".join(r + "\n" for r in records))
    return path


def base_lines(dataset: Dataset) -> tuple[dict[str, object], list[str]]:
    all_lines = lines(dataset.manifests[2017])
    return json.loads(all_lines[0]), all_lines[1:]


@pytest.mark.parametrize(
    ("mutation", "line", "needle"),
    [
        ("bad_json", 3, "Invalid JSON"),
        ("wrong_type", 3, "field 'size'"),
        ("unsafe", 3, "unsafe path"),
        ("swap", 3, "out of manifest order"),
        ("duplicate", 3, "out of manifest order or repeated"),
        ("count", None, "header announces"),
    ],
)
def test_malformed_manifests_name_file_and_line(
    dataset: Dataset, tmp_path: Path, mutation: str, line: int | None, needle: str
) -> None:
    header, records = base_lines(dataset)
    if mutation == "bad_json":
        records[1] = records[1][:-5]
    elif mutation == "wrong_type":
        records[1] = json.dumps({**json.loads(records[1]), "size": "1"}, separators=(",", ":"))
    elif mutation == "unsafe":
        records[1] = json.dumps({**json.loads(records[1]), "path": "../../etc/passwd"}, separators=(",", ":"))
    elif mutation == "swap":
        records[0], records[1] = records[1], records[0]
    elif mutation == "duplicate":
        records[1] = records[0]
    elif mutation == "count":
        records = records[:-1]
    path = write_manifest(tmp_path / "bad.jsonl", header, records)
    with pytest.raises(ManifestFormatError) as info:
        validate_manifest(path)
    assert needle in info.value.message
    if line is not None:
        assert info.value.line == line and f"bad.jsonl:{line}" in info.value.message


def test_newer_schema_version_is_refused_plainly(dataset: Dataset, tmp_path: Path) -> None:
    header, records = base_lines(dataset)
    path = write_manifest(tmp_path / "future.jsonl", {**header, "version": 2, "new_field": 1}, records)
    with pytest.raises(SchemaVersionError) as info:
        ManifestReader(path)
    assert "version 2 is newer" in info.value.message


def test_not_a_manifest(tmp_path: Path) -> None:
    (tmp_path / "x").write_text("hello\n")
    with pytest.raises(ManifestFormatError):
        ManifestReader(tmp_path / "x")
    with pytest.raises(InputIOError):
        ManifestReader(tmp_path / "missing")


@pytest.mark.parametrize(
    "bad_path",
    ["/etc/passwd", "", "../x", "original/../../x", "original/0000/..", "a//b", "a/", "./a", "a/\\u002e\\u002e/b"],
)
def test_prescan_refuses_unsafe_paths_anywhere(dataset: Dataset, tmp_path: Path, bad_path: str) -> None:
    header, records = base_lines(dataset)
    at = len(records) - 2
    records[at] = records[at].replace(json.loads(records[at])["path"], "@@", 1).replace('"@@"', f'"{bad_path}"')
    path = tmp_path / "evil.jsonl"
    write_manifest(path, header, records)
    with pytest.raises(ManifestFormatError) as info:
        prescan_paths(path)
    assert info.value.line == at + 2 and "path" in info.value.message


def test_prescan_passes_a_safe_manifest_with_dotted_names(dataset: Dataset, tmp_path: Path) -> None:
    header, records = base_lines(dataset)
    records[-1] = records[-1].replace('"path":"', '"path":"zz/.hidden/', 1)  # safe, though it looks odd
    assert prescan_paths(write_manifest(tmp_path / "m.jsonl", header, records)).files == len(records)
    assert prescan_paths(dataset.manifests[2019]).release == "danbooru2019"


@pytest.mark.parametrize("chunk", [64, 997, 1 << 22])
def test_prescan_on_many_blocks_checked_concurrently_names_the_right_line(
    dataset: Dataset, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, chunk: int
) -> None:
    # blocks are checked on worker threads: line numbers, the slow lines' sizes and the first error must
    # come out as a serial scan finds them, whatever the block size
    import release.manifest.io as manifest_io

    monkeypatch.setattr(manifest_io, "CHUNK", chunk)
    header, records = base_lines(dataset)
    noncanonical = {5, len(records) // 2, len(records) - 1}  # parsed in full, in Python, in their own block
    for at in noncanonical:
        records[at] = json.dumps(json.loads(records[at]), separators=(", ", ": "))
    assert prescan_paths(write_manifest(tmp_path / "ok.jsonl", header, records)).files == len(records)
    for at in (len(records) // 3, len(records) - 2):
        bad = list(records)
        bad[at] = bad[at].replace('"path":', '"path": "../up", "x":', 1) if at not in noncanonical else bad[at]
        bad[at + 1] = bad[at + 1][:-3]  # a second, later error: the first one is the one reported
        with pytest.raises(ManifestFormatError) as info:
            prescan_paths(write_manifest(tmp_path / "bad.jsonl", header, bad))
        assert info.value.line == at + 2, (chunk, at, info.value.message)


def test_many_reads_in_flight_build_the_same_manifest(dataset: Dataset, tmp_path: Path) -> None:
    from release.cli.output import IO_DEPTH_DEFAULT
    from release.hashing import IO_DEPTH

    assert IO_DEPTH == IO_DEPTH_DEFAULT  # the CLI's default is the library's (not imported there: fast --help)
    one, many = tmp_path / "one.jsonl", tmp_path / "many.jsonl"
    build_manifest(dataset.root(2019), one, release="danbooru2019", io_depth=1)
    build_manifest(dataset.root(2019), many, release="danbooru2019", io_depth=32)
    assert one.read_bytes() == many.read_bytes()
    with pytest.raises(Exception, match="io-depth"):
        build_manifest(dataset.root(2019), tmp_path / "none.jsonl", io_depth=0)
