from __future__ import annotations

import io
import json
import os
from collections.abc import Callable
from pathlib import Path

import pytest

from release.errors import BadInput, ManifestFormatError
from release.manifest.io import ManifestReader
from release.verify import verify_tree
from tests.conftest import Dataset


def originals(dataset: Dataset, year: int) -> list[str]:
    return [r.path for r in ManifestReader(dataset.manifests[year]) if r.path.startswith("original/") and r.size > 8]


def damage(root: Path, flip: str, cut: str, gone: str) -> None:
    data = bytearray((root / flip).read_bytes())
    data[len(data) // 2] ^= 0x01
    (root / flip).write_bytes(data)
    os.truncate(root / cut, (root / cut).stat().st_size - 1)
    (root / gone).unlink()


def test_clean_tree_is_all_ok(dataset: Dataset) -> None:
    report = verify_tree(dataset.root(2019), dataset.manifests[2019])
    header = ManifestReader(dataset.manifests[2019]).header
    assert report.totals.OK == header.files and not report.failed
    assert report.bytes_checked == header.bytes


def test_flip_truncate_delete_give_the_exact_report(dataset: Dataset, tree_copy: Callable[[int], Path]) -> None:
    root = tree_copy(2019)
    flip, cut, gone = originals(dataset, 2019)[5:8]
    damage(root, flip, cut, gone)
    (root / "original" / "0000" / "extra.txt").write_text("x")
    refetch, per_file = io.BytesIO(), io.BytesIO()
    report = verify_tree(root, dataset.manifests[2019], refetch_out=refetch, report_out=per_file)
    problems = {(p.path, p.status) for p in report.problems}
    assert problems == {
        (flip, "CORRUPT"),
        (cut, "CORRUPT"),
        (gone, "MISSING"),
        ("original/0000/extra.txt", "EXTRA"),
    }
    reasons = {p.path: p.reason for p in report.problems}
    assert reasons[flip] == "xxh3_128 differs" and reasons[cut].startswith("size ")
    assert report.failed
    assert sorted(refetch.getvalue().decode().splitlines()) == sorted([f"./{flip}", f"./{cut}", f"./{gone}"])
    statuses = [json.loads(line)["status"] for line in per_file.getvalue().decode().splitlines()]
    assert statuses.count("OK") == report.totals.OK and len(statuses) == report.totals.OK + 4
    assert report.by_subset["original"].CORRUPT == 2


def test_fast_mode_checks_size_only(dataset: Dataset, tree_copy: Callable[[int], Path]) -> None:
    root = tree_copy(2019)
    flip, cut, gone = originals(dataset, 2019)[5:8]
    damage(root, flip, cut, gone)
    report = verify_tree(root, dataset.manifests[2019], mode="fast")
    assert {(p.path, p.status) for p in report.problems} == {(cut, "CORRUPT"), (gone, "MISSING")}
    strong = verify_tree(root, dataset.manifests[2019], mode="sha256")
    assert {p.path: p.reason for p in strong.problems}[flip] == "sha256 differs"


def test_missing_fails_only_when_complete(dataset: Dataset, tree_copy: Callable[[int], Path]) -> None:
    root = tree_copy(2019)
    (root / originals(dataset, 2019)[0]).unlink()
    assert not verify_tree(root, dataset.manifests[2019]).failed
    assert verify_tree(root, dataset.manifests[2019], complete=True).failed


def test_files_from_limits_the_expected_set(dataset: Dataset, tree_copy: Callable[[int], Path], tmp_path: Path) -> None:
    root = tree_copy(2019)
    wanted = [p for p in originals(dataset, 2019) if p.split("/")[1] < "0100"]
    others = [p for p in originals(dataset, 2019) if p not in wanted]
    for path in others[:20]:
        (root / path).unlink()  # not asked for: must not show as missing
    listing = tmp_path / "list.txt"
    listing.write_text("".join(f"./{p}\n" for p in wanted) + "./original/0000/not-in-manifest.jpg\n")
    report = verify_tree(root, dataset.manifests[2019], files_from=listing, complete=True)
    assert report.totals.OK == len(wanted) and report.totals.MISSING == 0 and not report.failed
    assert report.listed_not_in_manifest == 1
    (root / "original/0000/not-in-manifest.jpg").write_bytes(b"x")  # listed, on disk, unknown to the manifest
    extra = verify_tree(root, dataset.manifests[2019], files_from=listing)
    assert [(p.path, p.status) for p in extra.problems] == [("original/0000/not-in-manifest.jpg", "EXTRA")]
    assert extra.listed_not_in_manifest == 0
    (root / "original/0000/not-in-manifest.jpg").unlink()
    (root / wanted[0]).unlink()
    report = verify_tree(root, dataset.manifests[2019], files_from=listing)
    assert [(p.path, p.status) for p in report.problems] == [(wanted[0], "MISSING")]
    assert set(report.by_range["original"]) == {"0000-0099"}


def test_unsafe_list_lines_are_refused(dataset: Dataset, tmp_path: Path) -> None:
    listing = tmp_path / "list.txt"
    listing.write_text("./original/0000/1000.jpg\n../../etc/passwd\n")
    with pytest.raises(BadInput) as info:
        verify_tree(dataset.root(2019), dataset.manifests[2019], files_from=listing)
    assert info.value.message.startswith(f"{listing}:2:")


def test_unsafe_manifest_is_refused_before_the_tree_is_read(dataset: Dataset, tmp_path: Path) -> None:
    text = tmp_path / "m.jsonl"
    header = ManifestReader(dataset.manifests[2017]).header
    records = list(ManifestReader(dataset.manifests[2017]))
    bad = records[0].model_dump() | {"path": "/etc/passwd"}
    text.write_text(
        header.model_dump_json()
        + "\n"
        + json.dumps(bad)
        + "\n"
        + "".join(r.model_dump_json() + "\n" for r in records[1:])
    )
    with pytest.raises(ManifestFormatError) as info:
        verify_tree(tmp_path / "does-not-exist", text)  # the manifest fails first
    assert "unsafe path" in info.value.message and info.value.line == 2


def test_symlink_in_place_of_a_file_is_corrupt(dataset: Dataset, tree_copy: Callable[[int], Path]) -> None:
    root = tree_copy(2017)
    target = originals(dataset, 2017)[0]
    (root / target).unlink()
    (root / target).symlink_to("/etc/passwd")
    report = verify_tree(root, dataset.manifests[2017])
    assert [(p.path, p.status, p.reason) for p in report.problems] == [
        (target, "CORRUPT", "is a symlink, not a regular file")
    ]


@pytest.mark.parametrize("mode", ["xxh3_128", "fast"])
def test_many_reads_in_flight_give_the_report_one_read_gives(
    dataset: Dataset, tree_copy: Callable[[int], Path], mode: str
) -> None:
    # --io-depth threads finish in any order: counts, problems, their order and the report lines must not care
    root = tree_copy(2019)
    records = [r for r in ManifestReader(dataset.manifests[2019]) if r.size > 10]
    missing = set(range(0, len(records) - 3, 37))
    flipped = set(range(5, len(records) - 3, 41)) - missing
    for n in missing:
        (root / records[n].path).unlink()  # spread over every job
    for n in flipped:
        path = root / records[n].path
        data = bytearray(path.read_bytes())
        data[len(data) // 2] ^= 1  # same size: only the hash tells
        path.write_bytes(bytes(data))
    short = next(n for n in range(7, len(records)) if n not in missing | flipped)
    (root / records[short].path).write_bytes(b"short")
    (root / "original" / "0000" / "999000.jpg").write_bytes(b"extra")
    deep = records[-1].path
    (root / deep).unlink()
    (root / deep).mkdir()  # a folder where a file should be, at the end
    reports = []
    for depth in (1, 32):
        out = io.BytesIO()
        report = verify_tree(root, dataset.manifests[2019], mode=mode, io_depth=depth, report_out=out)  # type: ignore[arg-type]
        reports.append((report.model_dump(), out.getvalue()))
    assert reports[0] == reports[1]
    totals = reports[0][0]["totals"]
    assert totals["MISSING"] == len(missing) and totals["EXTRA"] == 1
    assert totals["CORRUPT"] == (2 + len(flipped) if mode == "xxh3_128" else 2)


def test_io_depth_must_be_positive(dataset: Dataset) -> None:
    with pytest.raises(BadInput, match="io-depth"):
        verify_tree(dataset.root(2019), dataset.manifests[2019], io_depth=0)
