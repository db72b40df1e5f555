from __future__ import annotations

import hashlib
import io
import json
from pathlib import Path

import pytest
from PIL import Image

from release.errors import BadInput
from release.layout import EXTENSIONS, parse_path
from release.metadata import check_record, export_chunks
from release.synth import Changelog, synth
from tests.conftest import Dataset


def digest_tree(root: Path) -> dict[str, str]:
    return {
        p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def test_same_seed_same_bytes_other_seed_other_bytes(tmp_path: Path) -> None:
    synth(tmp_path / "a", years="2018-2019", images=120, seed=3)
    synth(tmp_path / "b", years="2018-2019", images=120, seed=3)
    synth(tmp_path / "c", years="2018-2019", images=120, seed=4)
    assert digest_tree(tmp_path / "a") == digest_tree(tmp_path / "b")
    assert digest_tree(tmp_path / "a") != digest_tree(tmp_path / "c")
    for p in (tmp_path / "a").rglob("*.jpg"):  # mtimes are part of determinism
        assert p.stat().st_mtime_ns == (tmp_path / "b" / p.relative_to(tmp_path / "a")).stat().st_mtime_ns


def test_every_listed_extension_and_real_images(dataset: Dataset) -> None:
    root = dataset.root(2019)
    exts = {p.suffix[1:] for p in (root / "original").rglob("*")}
    assert EXTENSIONS <= exts
    broken = set(dataset.changelog.tricks["truncated"]) | set(dataset.changelog.tricks["empty"])
    decoded = 0
    for path in (root / "original").rglob("*"):
        rel = path.relative_to(root).as_posix()
        if path.suffix in (".jpg", ".png", ".gif") and rel not in broken:
            Image.open(io.BytesIO(path.read_bytes())).load()
            decoded += 1
    assert decoded > 100


def test_snapshots_are_append_only_but_for_logged_changes(dataset: Dataset) -> None:
    for old, new, log in zip((2017, 2018), (2018, 2019), dataset.changelog.years[1:], strict=True):
        before, after = digest_tree(dataset.root(old)), digest_tree(dataset.root(new))
        images_before = {k: v for k, v in before.items() if not k.startswith("metadata/")}
        gone = {k for k in images_before if k not in after}
        changed = {k for k in images_before if k in after and after[k] != images_before[k]}
        assert gone == set(log.takedowns) and gone
        assert changed == set(log.replaced) and changed
        # metadata of the previous year is archived byte for byte
        for chunk in export_chunks(dataset.root(old) / "metadata"):
            assert after[f"metadata/{old}/{chunk.name}"] == before[f"metadata/{chunk.name}"]


def test_metadata_is_in_the_real_format_with_planted_faults(dataset: Dataset) -> None:
    ids: list[int] = []
    dupes = []
    for chunk in export_chunks(dataset.root(2019) / "metadata"):
        for line in chunk.read_text().splitlines():
            record = json.loads(line)
            assert check_record(record) is None
            ids.append(int(record["id"]))
            names = [t["name"] for t in record["tags"]]
            assert names == sorted(names)
            if len(set(names)) != len(names):
                dupes.append(record["id"])
    assert ids == sorted(ids)  # IDs grow with upload date
    assert sorted(dupes) == sorted(dataset.changelog.tricks["duplicate_tags"])
    files = {parse_path(p.relative_to(dataset.root(2019)).as_posix()).id for p in dataset.root(2019).rglob("*")}
    for post_id in dataset.changelog.tricks["metadata_without_file"]:
        assert int(post_id) in ids and int(post_id) not in files


def test_changelog_final_ids_grow(dataset: Dataset) -> None:
    finals = [y.final_id for y in dataset.changelog.years]
    assert finals == sorted(finals) and len(set(finals)) == 3
    assert Changelog.model_validate_json(dataset.changelog.model_dump_json()) == dataset.changelog


def test_tiny_files_are_a_few_bytes(tmp_path: Path) -> None:
    synth(tmp_path, years="2019", images=200, seed=1, tiny=True)
    sizes = [p.stat().st_size for p in (tmp_path / "2019" / "original").rglob("*") if p.is_file()]
    assert len(sizes) > 150 and max(sizes) <= 20


def test_drawn_images_have_danbooru_pixels_and_metadata_says_so(tmp_path: Path) -> None:
    report = synth(tmp_path, years="2019", images=80, seed=2, mean_size=900_000, drawn=True)
    tricks = Changelog.model_validate_json(Path(report.changelog).read_text()).tricks
    broken = set(tricks["truncated"]) | set(tricks["empty"]) | set(tricks["file_without_metadata"])
    root = tmp_path / "2019"
    posts = {
        int(post["id"]): post
        for chunk in export_chunks(root / "metadata")
        for post in map(json.loads, chunk.read_bytes().splitlines())
    }
    big, digests = 0, set()
    for path in (root / "original").rglob("*"):
        if path.suffix not in (".jpg", ".png", ".gif") or path.relative_to(root).as_posix() in broken:
            continue
        data = path.read_bytes()
        digests.add(hashlib.md5(data).hexdigest())
        with Image.open(io.BytesIO(data)) as image:
            post = posts[int(path.stem)]
            assert (int(post["image_width"]), int(post["image_height"])) == image.size
            big += image.width * image.height >= 1_000_000
    assert big >= 30 and len(digests) >= big  # six drawings a type, each file its own bytes


def test_drawn_refuses_tiny(tmp_path: Path) -> None:
    with pytest.raises(BadInput, match="--drawn"):
        synth(tmp_path, years="2019", images=10, tiny=True, drawn=True)
