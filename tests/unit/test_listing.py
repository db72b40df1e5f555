"""The C listing (release/_listing.c) and the C record lines against their Python references.

`list_tree` must classify every entry as the Python walk always did (os.lstat per entry, names
sorted, links never followed, names that are not UTF-8 left out), and `read_files(..., mtimes=...)`
must write every line byte for byte as `manifest.io.record_line` does, whatever the path holds.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

import numpy as np
import pytest

from release.hashing import ALL_ALGORITHMS, PathSpans, read_files
from release.layout import packed_key
from release.manifest.io import record_line
from release.tree import scan_tree
from release.walk import FileTable, list_tree


def _reference(root: Path) -> list[tuple[str, str, int]]:
    """(path, kind, size) of every entry under root, depth first in byte order, from os.lstat."""
    out: list[tuple[str, str, int]] = []

    def visit(folder: bytes, prefix: bytes) -> None:
        for name in sorted(os.listdir(folder)):
            path = os.path.join(folder, name)
            rel = prefix + name
            try:
                name.decode("utf-8")
            except UnicodeDecodeError:
                out.append((os.fsdecode(rel), "undecodable", 0))
                continue
            mode = os.lstat(path).st_mode
            if stat.S_ISDIR(mode):
                visit(path, rel + b"/")
            elif stat.S_ISREG(mode):
                out.append((os.fsdecode(rel), "file", os.lstat(path).st_size))
            else:
                out.append((os.fsdecode(rel), "symlink" if stat.S_ISLNK(mode) else "special", 0))

    visit(os.fsencode(root), b"")
    return out


@pytest.fixture
def odd_tree(tmp_path: Path) -> Path:
    root = tmp_path / "root"
    for folder in ("original/0000", "original/0001/deeper", "512px/0000", "metadata", "é"):
        (root / folder).mkdir(parents=True)
    files = ["original/0000/1000.jpg", "original/0000/2000.png", "original/0001/1001.jpg", "original/0001/deeper/x"]
    files += ["512px/0000/1000.jpg", "metadata/posts.json", "é/ü.txt", "Z", "a b", "original/0000/10.jpg"]
    for n, name in enumerate(files):
        (root / name).write_bytes(b"x" * n)
    (root / "original/0000/link.jpg").symlink_to("1000.jpg")
    (root / "original/dirlink").symlink_to("0000")
    os.mkfifo(root / "original/0001/fifo")
    (root / os.fsdecode(b"bad\xff")).write_bytes(b"")  # a name that is not UTF-8
    (root / os.fsdecode(b"surrogate\xed\xa0\x80")).write_bytes(b"")  # UTF-8 of a surrogate: not UTF-8 either
    return root


def test_recursive_listing_matches_lstat_entry_by_entry(odd_tree: Path) -> None:
    listing = list_tree(str(odd_tree), [""])
    got = [
        (listing.path(n), ("file", "symlink", "special", "undecodable", "dir", "error")[k], int(listing.sizes[n]))
        for n, k in enumerate(listing.kinds.tolist())
    ]
    assert got == _reference(odd_tree)
    files = listing.kinds == 0
    assert (
        listing.mtimes[files] == [os.lstat(odd_tree / listing.path(n)).st_mtime_ns for n in np.flatnonzero(files)]
    ).all()


def test_flat_listing_names_sub_folders_and_a_missing_folder_is_an_error_entry(odd_tree: Path) -> None:
    listing = list_tree(str(odd_tree), ["original", "nope"], recursive=False)
    names = [(listing.path(n), int(k)) for n, k in enumerate(listing.kinds.tolist())]
    assert names == [("original/0000", 4), ("original/0001", 4), ("original/dirlink", 1), ("nope", 5)]
    assert os.strerror(int(listing.sizes[-1])) == os.strerror(2)


def test_scan_tree_keys_and_skips_agree_with_the_layout(odd_tree: Path) -> None:
    table, skipped = scan_tree(odd_tree, workers=3)
    paths = [table.path(row) for row in range(len(table))]
    assert sorted(paths) == sorted(p for p, kind, _ in _reference(odd_tree) if kind == "file")
    assert table.keys().tolist() == [packed_key(p) for p in paths]
    assert skipped == sorted(skipped)
    assert {kind for _, kind in skipped} == {"symlink", "special", "undecodable"}


def test_a_file_table_from_a_listing_equals_one_built_row_by_row(odd_tree: Path) -> None:
    listing = list_tree(str(odd_tree), [""])
    columns = FileTable()
    columns.extend_listing(listing)
    rows = FileTable()
    for n in np.flatnonzero(listing.kinds == 0).tolist():
        rows.add(listing.path(n), int(listing.sizes[n]), int(listing.mtimes[n]))
    assert [columns.path(r) for r in columns.order()] == [rows.path(r) for r in rows.order()]
    assert (columns.keys() == rows.keys()).all() and (columns.sizes() == rows.sizes()).all()
    assert (columns.mtimes() == rows.mtimes()).all()


ODD_NAMES = ['q"uote', "back\\slash", "tab\there", "new\nline", "bell\x07", "del\x7f", "ünï €", "slash/in"]


def test_record_lines_written_in_c_equal_record_line(tmp_path: Path) -> None:
    (tmp_path / "slash").mkdir()
    names = [name for name in ODD_NAMES if "/" not in name] + ["slash/in", "plain.jpg"]
    table = FileTable()
    for n, name in enumerate(names):
        (tmp_path / name).write_bytes(os.urandom(n * 37))
        table.add(name, n * 37, -5 if n == 0 else 1_700_000_000_123_456_789 + n)
    rows = np.arange(len(table))
    got = read_files(str(tmp_path), table.spans(rows), table.sizes(), mtimes=table.mtimes())
    expected = b"".join(
        record_line(table.path(r), table.size(r), table.mtime_ns(r), *got.hex_digests(r)) for r in range(len(table))
    )
    assert got.lines == expected
    ends = np.frombuffer(got.line_ends, np.int64)
    assert ends.tolist() == np.cumsum([len(line) for line in expected.splitlines(keepends=True)]).tolist()


def test_a_file_that_fails_has_no_line_but_keeps_its_place(tmp_path: Path) -> None:
    for name in ("a", "c"):
        (tmp_path / name).write_bytes(b"data")
    table = FileTable()
    for name in ("a", "b", "c"):
        table.add(name, 4, 1)
    got = read_files(str(tmp_path), table.spans(np.arange(3)), table.sizes(), mtimes=table.mtimes())
    assert list(got.codes) == [0, 1, 0]
    first, second, third = np.frombuffer(got.line_ends, np.int64).tolist()
    assert (
        first == second
        and got.lines[:first].startswith(b'{"path":"a"')
        and got.lines[second:third].startswith(b'{"path":"c"')
    )


def test_lines_need_every_hash_and_spans_must_lie_in_the_buffer(tmp_path: Path) -> None:
    (tmp_path / "a").write_bytes(b"x")
    with pytest.raises(ValueError, match="all three"):
        read_files(str(tmp_path), [b"a"], [1], algorithms=("xxh3_128",), mtimes=np.zeros(1, np.int64))
    with pytest.raises(ValueError, match="spans"):
        read_files(str(tmp_path), PathSpans(b"a", np.array([[0, 5]])), [1], algorithms=ALL_ALGORITHMS)
