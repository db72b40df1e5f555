"""The two metadata dialects (release.posts): detection, validation and the one post record.

The new-dialect lines here are constructed from the field list of Danbooru's own export (2021 on),
not copied from a real export.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from release.errors import MetadataFormatError
from release.metadata import PostReader, read_chunk
from release.posts import Dialect, check, chunk_dialect, decode, sfw_ratings

# constructed: every field of the 2021+ export's post lines, numbers as strings
NEW_LINE: dict[str, Any] = {
    "id": "4906063",
    "created_at": "2021-11-30T23:59:12.345-05:00",
    "updated_at": "2021-12-01T01:02:03.000-05:00",
    "uploader_id": "508240",
    "approver_id": None,
    "score": "12",
    "up_score": "13",
    "down_score": "-1",
    "fav_count": "20",
    "rating": "g",
    "md5": "0123456789abcdef0123456789abcdef",
    "file_ext": "png",
    "file_size": "1234567",
    "image_width": "1200",
    "image_height": "1600",
    "source": "https://example.org/1",
    "pixiv_id": None,
    "parent_id": None,
    "has_children": False,
    "has_active_children": False,
    "has_visible_children": False,
    "is_banned": False,
    "is_deleted": False,
    "is_flagged": False,
    "is_pending": False,
    "tag_string": "1girl solo highres some_artist",
    "tag_string_general": "1girl solo",
    "tag_string_character": "",
    "tag_string_copyright": "",
    "tag_string_artist": "some_artist",
    "tag_string_meta": "highres",
    "tag_count": "4",
    "tag_count_general": "2",
    "tag_count_character": "0",
    "tag_count_copyright": "0",
    "tag_count_artist": "1",
    "tag_count_meta": "1",
    "bit_flags": "0",
}


def _chunk(folder: Path, name: str, *lines: dict[str, Any] | str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text("".join((line if isinstance(line, str) else json.dumps(line)) + "\n" for line in lines))
    return path


def test_a_new_dialect_line_conforms_and_becomes_a_post() -> None:
    assert check(NEW_LINE, Dialect.NEW) is None
    post = decode(NEW_LINE, Dialect.NEW)
    assert post is not None and post.id == 4906063 and post.rating == "g" and post.file_ext == "png"
    assert post.tags == ("1girl", "solo", "highres", "some_artist") and post.created_at[:4] == "2021"


def test_a_row_without_id_is_skipped_and_counted(tmp_path: Path) -> None:
    hidden = {k: v for k, v in NEW_LINE.items() if k not in ("id", "md5")}
    assert check(hidden, Dialect.NEW) is None and decode(hidden, Dialect.NEW) is None
    chunk = _chunk(tmp_path, "posts000000000000.json", NEW_LINE, hidden, "not json")
    reader = PostReader([chunk])
    assert [post.id for post in reader] == [4906063]
    assert (reader.without_id, reader.malformed, reader.newest_year) == (1, 1, 2021)


@pytest.mark.parametrize(
    ("change", "field", "problem"),
    [
        ({"tags": []}, "tags", "mixes dialects"),
        ({"tag_string": ["1girl"]}, "tag_string", "expected a string"),
        ({"rating": "x"}, "rating", "not one of g, s, q, e"),
        ({"is_deleted": "false"}, "is_deleted", "true or false"),
        ({"score": 12}, "score", "expected a string"),
        ({"created_at": "yesterday"}, "created_at", "not a valid time"),
    ],
)
def test_bad_new_lines_name_the_field(change: dict[str, Any], field: str, problem: str) -> None:
    fault = check(NEW_LINE | change, Dialect.NEW)
    assert fault is not None and fault[0] == field and problem in fault[1]


def test_the_old_dialect_keeps_its_letters_and_refuses_new_keys() -> None:
    line = {"id": "1", "tag_string": "a"}
    fault = check(line, Dialect.OLD)
    assert fault is not None and fault[0] == "tag_string" and "mixes dialects" in fault[1]


def test_the_name_decides_and_the_first_line_must_agree(tmp_path: Path) -> None:
    assert chunk_dialect(_chunk(tmp_path, "posts000000000003.json", "", NEW_LINE)) is Dialect.NEW
    wrong = _chunk(tmp_path, "2021000000000000", "garbage", NEW_LINE)
    with pytest.raises(MetadataFormatError, match="2021000000000000:2"):
        chunk_dialect(wrong)
    lines = list(read_chunk(wrong))
    assert len(lines) == 1 and lines[0].record is None and "chunk named like" in (lines[0].problem or "")


def test_sfw_means_s_before_the_split_and_g_after() -> None:
    assert sfw_ratings(2021) == {"s"}
    assert sfw_ratings(2022) == {"g"}
    assert sfw_ratings(2023, include_sensitive=True) == {"g", "s"}
