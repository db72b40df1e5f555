from __future__ import annotations

import io
import json
import os
from collections.abc import Callable
from pathlib import Path

import pytest

from release.build import build_manifest
from release.errors import BadInput, InputIOError
from release.scan import CONTENT_KINDS, EarlierScan, ScanReport, scan_root
from tests.conftest import Dataset

TRICK_TO_KIND = {
    "png_as_jpg": "type_mismatch",
    "truncated": "truncated",
    "empty": "empty",
    "wrong_bucket": "wrong_bucket",
    "file_without_metadata": "file_without_metadata",
}


def test_scan_finds_exactly_the_planted_cases(dataset: Dataset) -> None:
    report = scan_root(dataset.root(2019))
    for trick, kind in TRICK_TO_KIND.items():
        assert {f.path for f in report.findings if f.kind == kind} == set(dataset.changelog.tricks[trick]), kind
    without_file = {f.path for f in report.findings if f.kind == "metadata_without_file"}
    planted = {f"id {i}" for i in dataset.changelog.tricks["metadata_without_file"]}
    taken_down = {
        f"id {p.split('/')[-1].split('.')[0]}"
        for y in dataset.changelog.years
        for p in y.takedowns
        if p.startswith("original/")
    }
    assert without_file == planted | taken_down
    dupes = {f.detail.split(":")[0] for f in report.findings if f.kind == "metadata_duplicate_tag"}
    assert dupes == {f"id {i}" for i in dataset.changelog.tricks["duplicate_tags"]}
    assert report.failed
    assert set(report.counts) == set(TRICK_TO_KIND.values()) | {"metadata_without_file", "metadata_duplicate_tag"}


def test_allowed_kinds_do_not_fail(dataset: Dataset) -> None:
    report = scan_root(dataset.root(2019), allow=tuple(scan_root(dataset.root(2019)).counts))
    assert not report.failed
    with pytest.raises(BadInput):
        scan_root(dataset.root(2019), allow=("no_such_kind",))


def test_symlinks_specials_and_strays(tree_copy: Callable[[int], Path]) -> None:
    root = tree_copy(2017)
    (root / "original" / "0000" / "inside.jpg").symlink_to("../0001")
    (root / "original" / "0000" / "outside.jpg").symlink_to("../../../../etc/passwd")
    (root / "original" / "0000" / "abs.jpg").symlink_to("/etc/passwd")
    os.mkfifo(root / "original" / "0000" / "fifo")
    (root / "notes.txt").write_text("x")
    (root / "metadata" / "broken").write_text("x")
    report = scan_root(root)
    found = {(f.kind, f.path) for f in report.findings}
    assert ("symlink", "original/0000/inside.jpg") in found
    assert ("symlink_escape", "original/0000/outside.jpg") in found
    assert ("symlink_escape", "original/0000/abs.jpg") in found
    assert ("special_file", "original/0000/fifo") in found
    assert ("outside_layout", "notes.txt") in found
    assert ("outside_layout", "metadata/broken") in found


def test_malformed_metadata_lines_are_findings(tree_copy: Callable[[int], Path]) -> None:
    root = tree_copy(2017)
    chunk = sorted((root / "metadata").iterdir())[0]
    text = chunk.read_text().splitlines()
    text[2] = text[2].replace('"rating":"', '"rating":"x', 1)
    chunk.write_text("\n".join(text) + "\n")
    report = scan_root(root)
    bad = [f for f in report.findings if f.kind == "metadata_malformed"]
    assert [(f.path, f.detail.split(":")[0]) for f in bad] == [(f"metadata/{chunk.name}:3", "rating")]


def test_no_metadata(tmp_path: Path) -> None:
    (tmp_path / "original" / "0000").mkdir(parents=True)
    report = scan_root(tmp_path)
    assert report.counts == {"no_metadata": 1}
    with pytest.raises(BadInput):
        scan_root(tmp_path / "nope")


def test_findings_are_all_counted_and_written_but_kept_in_part(
    dataset: Dataset, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    import io
    import json

    import release.scan

    whole = scan_root(dataset.root(2019))
    assert not whole.findings_truncated
    monkeypatch.setattr(release.scan, "MAX_KEPT", 1)
    out = io.BytesIO()
    capped = scan_root(dataset.root(2019), findings_out=out)
    assert capped.counts == whole.counts and capped.findings_truncated
    assert len(capped.findings) == len(whole.counts)  # one of each kind
    written = [json.loads(line) for line in out.getvalue().splitlines()]
    assert [(f["kind"], f["path"]) for f in written] == [(f.kind, f.path) for f in whole.findings]


def _findings(report: ScanReport) -> list[tuple[str, str, str]]:
    return sorted((f.kind, f.path, f.detail) for f in report.findings)


def test_an_earlier_scan_spares_reading_unchanged_files_and_keeps_their_findings(
    tree_copy: Callable[[int], Path], tmp_path: Path
) -> None:
    root = tree_copy(2019)
    findings = tmp_path / "findings.jsonl"
    with open(findings, "wb") as out:
        first = scan_root(root, findings_out=out)
    manifest = tmp_path / "m.jsonl.zst"
    build_manifest(root, manifest)
    earlier = EarlierScan(manifest, findings)
    again = scan_root(root, earlier=earlier)
    assert again.counts == first.counts and _findings(again) == _findings(first)
    assert again.carried > 100 and first.carried == 0
    assert {k for k, _, _ in _findings(first)} & set(CONTENT_KINDS) == set(CONTENT_KINDS)  # something to carry
    flagged = {f.path for f in first.findings}
    good = next(p for p in sorted(root.glob("original/*/*.jpg")) if p.relative_to(root).as_posix() not in flagged)
    name = good.relative_to(root).as_posix()
    # the same size and mtime with other bytes: trusted unchanged, so not read (the rule the manifest uses)
    stamp = good.stat()
    good.write_bytes(good.read_bytes()[:-2] + b"\0\0")
    os.utime(good, ns=(stamp.st_atime_ns, stamp.st_mtime_ns))
    assert name not in {f.path for f in scan_root(root, earlier=earlier).findings}
    os.utime(good, ns=(stamp.st_atime_ns, stamp.st_mtime_ns + 1))  # changed: read again
    changed = scan_root(root, earlier=earlier)
    assert ("truncated", name) in {(f.kind, f.path) for f in changed.findings}
    assert changed.carried == again.carried - 1
    cut_short = next(f.path for f in first.findings if f.kind == "truncated")
    (root / cut_short).write_bytes((root / good.relative_to(root)).read_bytes()[:-2] + b"\xff\xd9")  # mended
    assert cut_short not in {f.path for f in scan_root(root, earlier=earlier).findings if f.kind == "truncated"}


def test_an_earlier_scan_with_a_damaged_findings_file_is_refused(dataset: Dataset, tmp_path: Path) -> None:
    findings = tmp_path / "findings.jsonl"
    findings.write_bytes(b'{"kind": "truncated", "path": "original/0000/1000.jpg", "detail": ""}\n{"kind": 3}\n')
    with pytest.raises(BadInput) as info:
        EarlierScan(dataset.manifests[2019], findings)
    assert info.value.path == f"{findings}:2" and "not a scan finding" in info.value.problem
    with pytest.raises(InputIOError, match="cannot read the earlier scan's findings"):
        EarlierScan(dataset.manifests[2019], tmp_path / "absent.jsonl")


def test_findings_come_in_walk_order_and_a_files_in_the_order_of_its_checks(
    tree_copy: Callable[[int], Path], tmp_path: Path
) -> None:
    from release.walk import walk

    root = tree_copy(2017)
    jpg = next(iter(sorted(root.glob("original/*/*.jpg")))).read_bytes()
    (root / "original" / "0003" / "9999004.png").write_bytes(jpg[:-2])  # wrong bucket, then its content
    (root / "original" / "0005" / "9999005.jpg").write_bytes(jpg[:-2])  # no post, then truncated
    (root / "original" / "0005" / "9999005.txt").write_bytes(b"x")  # bad extension: not read
    (root / "original" / "0007").mkdir(exist_ok=True)
    (root / "original" / "0007" / "link").symlink_to("../0005")
    (root / "0note").write_text("x")  # before every folder
    manifest = tmp_path / "m.jsonl.zst"
    build_manifest(root, manifest)
    for earlier in (None, tmp_path / "findings.jsonl"):
        out = io.BytesIO()
        report = scan_root(root, findings_out=out, earlier=None if earlier is None else EarlierScan(manifest, earlier))
        if earlier is not None:
            assert report.carried > 0
        else:
            (tmp_path / "findings.jsonl").write_bytes(out.getvalue())
        written = [json.loads(line) for line in out.getvalue().splitlines()]
        order = {entry.path: n for n, entry in enumerate(walk(str(root)))}
        tree = [(f["kind"], f["path"]) for f in written if f["path"] in order]
        assert [order[path] for _, path in tree] == sorted(order[path] for _, path in tree)
        by_file = [kind for kind, path in tree if path == "original/0003/9999004.png"]
        assert by_file == ["wrong_bucket", "file_without_metadata", "type_mismatch", "truncated"]
        assert [k for k, p in tree if p == "original/0005/9999005.jpg"] == ["file_without_metadata", "truncated"]
        assert [k for k, p in tree if p == "original/0005/9999005.txt"] == ["bad_extension", "file_without_metadata"]
        assert ("symlink", "original/0007/link") in tree and tree[0] == ("outside_layout", "0note")
