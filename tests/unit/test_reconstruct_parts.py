from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import pytest

from release.errors import BadInput, OutputError
from release.reconstruct import place, source_path
from release.releases import ReleaseFacts, find_release, load_release, write_release


def test_old_top_level_metadata_lives_in_its_year_folder_later() -> None:
    assert source_path("metadata/2017000000000003", 2017) == "metadata/2017/2017000000000003"
    assert source_path("metadata/2016/2016000000000000", 2017) == "metadata/2016/2016000000000000"
    assert source_path("original/0000/1000.jpg", 2017) == "original/0000/1000.jpg"


@pytest.mark.parametrize("link", ["hard", "copy", "symlink", "reflink"])
def test_every_link_mode_gives_the_same_bytes(tmp_path: Path, link: str) -> None:
    src = tmp_path / "src" / "a.jpg"
    src.parent.mkdir()
    src.write_bytes(b"\xff\xd8 image bytes")
    dst = tmp_path / "dst" / "original" / "0000" / "1000.jpg"
    try:
        place(src, dst, link)
    except OutputError as exc:  # reflinks need btrfs/XFS; elsewhere the error says so and leaves nothing
        assert link == "reflink" and "reflink" in exc.problem and not dst.exists()
        return
    assert dst.read_bytes() == src.read_bytes()
    assert (dst.stat().st_ino == src.stat().st_ino) == (link in ("hard", "symlink"))
    assert dst.is_symlink() == (link == "symlink")
    if link == "copy":
        assert dst.stat().st_mtime_ns == src.stat().st_mtime_ns
    dst_before = os.stat(dst, follow_symlinks=False).st_ino
    place(tmp_path / "nonexistent", dst, link)  # an existing target is kept (re-runs resume)
    assert os.stat(dst, follow_symlinks=False).st_ino == dst_before


def test_catalogue_has_the_published_releases() -> None:
    final = {n: find_release(n).final_id for n in ("danbooru2017", "danbooru2018", "danbooru2019", "danbooru2021")}
    assert final == {"danbooru2017": 2973532, "danbooru2018": 3368713, "danbooru2019": 3734659, "danbooru2021": 5020995}
    assert find_release("danbooru2017").subsets == ("original",)


def test_release_files_round_trip_and_bad_ones_are_named(tmp_path: Path) -> None:
    facts = ReleaseFacts(name="x2020", year=2020, final_id=10, published={"images": "1k"})
    (tmp_path / "x2020.toml").write_text(write_release(facts))
    assert load_release(tmp_path / "x2020.toml") == facts
    (tmp_path / "bad.toml").write_text('name = "bad"\nyear = 2020\nfinal_id = -1\n')
    with pytest.raises(BadInput, match="final_id"):
        load_release(tmp_path / "bad.toml")
    (tmp_path / "broken.toml").write_text("name = [")
    with pytest.raises(BadInput, match="not valid TOML"):
        load_release(tmp_path / "broken.toml")


def test_md5_witness_skips_a_record_without_md5_and_keeps_the_rest_aligned(tmp_path: Path) -> None:
    from release.build import build_manifest
    from release.reconstruct_md5 import check_md5

    root = tmp_path / "r"
    (root / "original" / "0001").mkdir(parents=True)
    (root / "metadata").mkdir()
    (root / "original" / "0001" / "2001.jpg").write_bytes(b"second")
    md5 = hashlib.md5(b"second").hexdigest()
    (root / "metadata" / "2017000000000000").write_text(
        '{"id":"1001","rating":"s"}\n' + json.dumps({"id": "2001", "md5": md5}) + "\n"
    )
    build_manifest(root, tmp_path / "m.jsonl", workers=0)
    check = check_md5(root, tmp_path / "m.jsonl")
    assert (check.checked, check.matching, check.mismatching) == (1, 1, 0)
