from __future__ import annotations

import lzma
from pathlib import Path

import pytest

from release.errors import BadInput, UnsafePath
from release.rsync import filelist
from release.rsync.config import DaemonSettings, render_config
from release.rsync.filelist import collect, list_line, write_filelists
from release.walk import FileTable
from tests.conftest import Dataset


def test_list_order_is_subset_then_bucket_then_id(tmp_path: Path) -> None:
    root = tmp_path / "r"
    names = ["original/0001/2001.jpg", "original/0000/10000.png", "original/0000/2000.jpg", "512px/0000/1000.jpg",
             "original/0001/1001.jpg", "metadata/2019000000000001", "metadata/2018/2018000000000000",
             "metadata/2019000000000000"]  # fmt: skip
    for name in names:
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(b"x" * len(name))
    report = write_filelists(collect(root), tmp_path / "list.txt")
    assert (tmp_path / "list.txt").read_text().splitlines() == [
        "./original/0000/2000.jpg",
        "./original/0000/10000.png",  # ID order within a bucket, not string order
        "./original/0001/1001.jpg",
        "./original/0001/2001.jpg",
        "./512px/0000/1000.jpg",
        "./metadata/2018/2018000000000000",
        "./metadata/2019000000000000",
        "./metadata/2019000000000001",
    ]
    assert report.files == len(names) and report.bytes == sum(map(len, names))
    assert lzma.decompress((tmp_path / "list.txt.xz").read_bytes()) == (tmp_path / "list.txt").read_bytes()
    assert (tmp_path / "list-512px.txt").read_text() == "./512px/0000/1000.jpg\n"
    assert len((tmp_path / "list-metadata.txt").read_text().splitlines()) == 3
    assert len((tmp_path / "list-original.txt").read_text().splitlines()) == 4


def test_manifest_and_tree_give_the_same_bytes(dataset: Dataset, tmp_path: Path) -> None:
    write_filelists(collect(dataset.root(2019)), tmp_path / "a.txt")
    write_filelists(collect(dataset.manifests[2019]), tmp_path / "b.txt")
    for suffix in (".txt", ".txt.xz", "-original.txt", "-512px.txt", "-metadata.txt"):
        assert (tmp_path / f"a{suffix}").read_bytes() == (tmp_path / f"b{suffix}").read_bytes(), suffix


@pytest.mark.parametrize("path", ["../etc/passwd", "/abs/x.jpg", "original/0000/a\nb.jpg"])
def test_unlistable_paths_are_refused(path: str) -> None:
    with pytest.raises((UnsafePath, BadInput)):
        list_line(path)


def test_a_failed_list_leaves_nothing(tmp_path: Path) -> None:
    root = tmp_path / "r"
    (root / "original" / "0000").mkdir(parents=True)
    (root / "original" / "0000" / "1000.jpg").write_bytes(b"x")
    (root / "weird\nname").write_bytes(b"x")
    (tmp_path / "out").mkdir()
    with pytest.raises(BadInput):
        write_filelists(collect(root), tmp_path / "out" / "list.txt")
    assert list((tmp_path / "out").iterdir()) == []


def test_config_is_read_only_public_and_bounded() -> None:
    text = render_config(DaemonSettings(module="danbooru2019", path="/srv/danbooru2019", max_connections=7))
    lines = {line.split(" = ")[0]: line.split(" = ")[1] for line in text.splitlines() if " = " in line}
    assert lines["read only"] == "yes" and lines["list"] == "yes" and lines["write only"] == "no"
    assert set(lines["refuse options"].split()) >= {"delete", "remove-source-files", "checksum"}
    assert lines["dont compress"] == "*" and lines["reverse lookup"] == "no"
    assert lines["max connections"] == "7" and int(lines["timeout"]) > 0
    assert lines["transfer logging"] == "yes" and "%f" in lines["log format"]
    assert "auth users" not in lines and "[danbooru2019]" in text


@pytest.mark.parametrize(
    "settings",
    [
        DaemonSettings(module="bad name", path="/srv/x"),
        DaemonSettings(module="m", path="relative/path"),
        DaemonSettings(module="m", path="/srv/x\n[evil]"),
        DaemonSettings(module="m", path="/srv/x", max_connections=0),
    ],
)
def test_config_refuses_bad_settings(settings: DaemonSettings) -> None:
    with pytest.raises(BadInput):
        render_config(settings)


UNSAFE = ["../etc/passwd", "/abs/x.jpg", "original/0000/a\nb.jpg", "original//1000.jpg", "original/./1000.jpg",
          "original/0000/..", "original/0000/.", "original/", "", "a\rb", "nul\x00byte", "./original/x"]  # fmt: skip


@pytest.mark.parametrize("path", UNSAFE)
def test_every_unsafe_path_in_a_table_is_refused_as_list_line_refuses_it(path: str, tmp_path: Path) -> None:
    table = FileTable()
    for name in ["original/0000/1000.jpg", path, "metadata/posts.json"]:
        table.add(name, 1, key=0)
    with pytest.raises((UnsafePath, BadInput)) as caught:
        write_filelists(table, tmp_path / "list.txt")
    with pytest.raises((UnsafePath, BadInput)) as direct:
        list_line(path)
    assert str(caught.value) == str(direct.value)
    assert list(tmp_path.iterdir()) == []


def test_lines_gathered_a_chunk_at_a_time_are_list_line_s(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(filelist, "CHUNK_ROWS", 7)  # many chunks, some across subset boundaries
    monkeypatch.setattr(filelist, "XZ_STREAM", 100)  # many xz streams
    names = [f"original/{i % 1000:04d}/{i}.jpg" for i in range(1000, 1100)] + ["other/ü name.png", "README"]
    names += [f"512px/{i % 1000:04d}/{i}.jpg" for i in range(1000, 1050, 3)] + ["metadata/posts.json"]
    table = FileTable()
    for name in names:
        table.add(name, len(name), key=0)
    layout = table.layout()
    table.rekey(filelist.list_keys(layout.rank, layout.bucket, layout.ids))
    report = write_filelists(table, tmp_path / "list.txt")
    expected = b"".join(list_line(table.path(row)) for row in table.order().tolist())
    assert (tmp_path / "list.txt").read_bytes() == expected and report.files == len(names)
    packed = (tmp_path / "list.txt.xz").read_bytes()
    assert packed.count(b"\xfd7zXZ\x00") > 3 and lzma.decompress(packed) == expected  # concatenated streams
    assert report.bytes == sum(len(n) for n in names)
    subsets = b"".join((tmp_path / f"list-{s}.txt").read_bytes() for s in ("original", "512px", "metadata"))
    assert subsets == b"".join(line for line in expected.splitlines(keepends=True) if not line.startswith(b"./other")
                               and line != b"./README\n")  # fmt: skip
    write_filelists(table, tmp_path / "again.txt")
    assert (tmp_path / "again.txt.xz").read_bytes() == packed  # reproducible
