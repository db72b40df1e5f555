from __future__ import annotations

import pytest

from release.errors import UnsafePath
from release.layout import (
    bucket_dir,
    bucket_range_label,
    check_relpath,
    chunk_name,
    chunk_year,
    image_path,
    parse_path,
    sort_key,
    strip_dot_slash,
)


@pytest.mark.parametrize(
    ("post_id", "expected"),
    [(0, "0000"), (1000, "0000"), (999, "0999"), (3734659, "0659"), (5020995, "0995"), (1001, "0001")],
)
def test_bucket_is_id_mod_1000_zero_padded(post_id: int, expected: str) -> None:
    assert bucket_dir(post_id) == expected
    assert image_path("original", post_id, "png") == f"original/{expected}/{post_id}.png"


@pytest.mark.parametrize(
    ("path", "subset", "post_id", "problem"),
    [
        ("original/0000/1000.jpg", "original", 1000, None),
        ("original/0659/3734659.png", "original", 3734659, None),
        ("original/0001/1000.jpg", "original", 1000, "wrong_bucket"),
        ("original/0000/01000.jpg", "original", None, "bad_name"),
        ("original/0000/1000", "original", None, "bad_name"),
        ("original/0000/1000.exe", "original", 1000, "bad_extension"),
        ("original/000/1000.jpg", "original", None, "outside_layout"),
        ("original/0000/sub/1000.jpg", "original", None, "outside_layout"),
        ("512px/0000/1000.jpg", "512px", 1000, None),
        ("512px/0000/1000.png", "512px", 1000, "bad_extension"),
        ("metadata/2019000000000000", "metadata", None, None),
        ("metadata/2017/2017000000000001", "metadata", None, None),
        ("metadata/2021-old/2021000000000016", "metadata", None, None),
        ("metadata/2019000000000000.json", "metadata", None, "outside_layout"),
        ("README.txt", "other", None, "outside_layout"),
    ],
)
def test_parse_path(path: str, subset: str, post_id: int | None, problem: str | None) -> None:
    parsed = parse_path(path)
    assert (parsed.subset, parsed.id, parsed.problem) == (subset, post_id, problem)


@pytest.mark.parametrize("bad", ["", "/etc/passwd", "../x", "original/../../x", "a//b", "a/./b", "a\x00b", "a/"])
def test_unsafe_paths_are_refused(bad: str) -> None:
    with pytest.raises(UnsafePath):
        check_relpath(bad)


def test_safe_path_passes() -> None:
    assert check_relpath("original/0000/1000.jpg") == "original/0000/1000.jpg"
    assert strip_dot_slash("./original/0000/1000.jpg") == "original/0000/1000.jpg"


def test_manifest_order_is_subset_then_id_then_path() -> None:
    paths = [
        "x/other",
        "metadata/2019000000000000",
        "metadata/2017/2017000000000001",
        "512px/0000/1000.jpg",
        "original/0001/1000.jpg",
        "original/0000/5000.png",
        "original/0000/1000.png",
        "original/0000/1000.jpg",
        "original/0999/999.jpg",
    ]
    assert sorted(paths, key=sort_key) == [
        "original/0999/999.jpg",
        "original/0000/1000.jpg",
        "original/0000/1000.png",
        "original/0001/1000.jpg",
        "original/0000/5000.png",
        "512px/0000/1000.jpg",
        "metadata/2017/2017000000000001",
        "metadata/2019000000000000",
        "x/other",
    ]


def test_chunk_names_and_ranges() -> None:
    assert chunk_name(2019, 12) == "2019000000000012"
    assert chunk_year("2019000000000012") == 2019
    assert chunk_year("posts000000000000.json") is None
    assert bucket_range_label(42) == "0000-0099"
    assert bucket_range_label(999) == "0900-0999"
    assert bucket_range_label(None) == "-"
