from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

import pytest

from release.errors import BadInput, MetadataFormatError
from release.metaarchive import archive_metadata, write_metadata_tarball
from tests.unit.test_metadata import sample_records


def _export(folder: Path, year: int, chunks: int = 2, break_line: int | None = None) -> Path:
    folder.mkdir(parents=True)
    records = sample_records()
    for k in range(chunks):
        lines = [json.dumps(r, separators=(",", ":")) for r in records[k * 10 : k * 10 + 10]]
        if break_line is not None and k == chunks - 1:
            bad = json.loads(lines[break_line - 1])
            bad["rating"] = "x"
            lines[break_line - 1] = json.dumps(bad, separators=(",", ":"))
        (folder / f"{year}{k:012d}").write_text("\n".join(lines) + "\n")
    return folder


def _tree(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_this_year_on_top_last_year_archived(tmp_path: Path) -> None:
    root = tmp_path / "danbooru2019"
    root.mkdir()
    archive_metadata(_export(tmp_path / "e2018", 2018), 2018, root)
    assert sorted(_tree(root)) == ["metadata/2018000000000000", "metadata/2018000000000001"]
    report = archive_metadata(_export(tmp_path / "e2019", 2019), 2019, root)
    assert sorted(_tree(root)) == [
        "metadata/2018/2018000000000000",
        "metadata/2018/2018000000000001",
        "metadata/2019000000000000",
        "metadata/2019000000000001",
    ]
    assert report.records == 20 and report.placed_in == str(root / "metadata")
    assert _tree(root)["metadata/2019000000000001"] == (tmp_path / "e2019" / "2019000000000001").read_bytes()
    # an older export goes under its year; the same year again needs --force
    archive_metadata(_export(tmp_path / "e2017", 2017, chunks=1), 2017, root)
    assert "metadata/2017/2017000000000000" in _tree(root)
    with pytest.raises(BadInput, match="already"):
        archive_metadata(tmp_path / "e2019", 2019, root)


def test_a_malformed_line_names_file_line_field_and_moves_nothing(tmp_path: Path) -> None:
    root = tmp_path / "r"
    root.mkdir()
    archive_metadata(_export(tmp_path / "e2018", 2018), 2018, root)
    before = _tree(root)
    export = _export(tmp_path / "e2019", 2019, chunks=2, break_line=4)
    with pytest.raises(MetadataFormatError) as caught:
        archive_metadata(export, 2019, root)
    assert caught.value.line == 4 and caught.value.field == "rating"
    assert "2019000000000001" in caught.value.path
    assert _tree(root) == before
    assert not [p for p in root.rglob(".*")]  # no temporary leftovers


def test_export_of_another_year_is_refused(tmp_path: Path) -> None:
    export = _export(tmp_path / "e", 2018)
    with pytest.raises(BadInput, match="year 2018"):
        archive_metadata(export, 2019, tmp_path)


def test_tarball_is_reproducible_and_extracts_to_the_source(tmp_path: Path) -> None:
    root = tmp_path / "r"
    root.mkdir()
    archive_metadata(_export(tmp_path / "e2018", 2018), 2018, root)
    archive_metadata(_export(tmp_path / "e2019", 2019), 2019, root)
    write_metadata_tarball(root, tmp_path / "a.tar.xz")
    for path in root.rglob("*"):  # other mtimes, same content: same bytes
        path.touch()
    write_metadata_tarball(root, tmp_path / "b.tar.xz")
    data = (tmp_path / "a.tar.xz").read_bytes()
    assert data == (tmp_path / "b.tar.xz").read_bytes()
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:xz") as tar:
        members = tar.getmembers()
        assert all(m.uid == 0 and m.gid == 0 and m.uname == "" and m.mtime == 0 for m in members)
        extracted = {m.name: tar.extractfile(m).read() for m in members if m.isfile()}  # type: ignore[union-attr]
    assert extracted == _tree(root)
    assert [m.name for m in members] == sorted(m.name for m in members)
