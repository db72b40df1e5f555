"""Every metadata command on Danbooru's own export (the new dialect), on a mixed root, and its bad input."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import Run, run_cli


@pytest.fixture(scope="module")
def new_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("new")
    assert run_cli("synth", out, "--years", "2021-2022", "--images", "1200", "--dialect", "new").code == 0
    return out


@pytest.fixture(scope="module")
def mixed_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("mixed")
    assert run_cli("synth", out, "--years", "2019-2021", "--images", "900", "--dialect", "mixed").code == 0
    return out


def _posts(root: Path) -> list[dict[str, object]]:
    return [json.loads(line) for chunk in sorted(root.glob("metadata/posts*.json")) for line in chunk.open()]


def _listed(path: Path) -> set[int]:
    return {int(line.rsplit("/", 1)[1].split(".")[0]) for line in path.read_text().split()}


def test_select_sfw_on_a_2022_export_means_g(new_data: Path, tmp_path: Path, cli: Callable[..., Run]) -> None:
    root = new_data / "2022"
    sfw = cli("select", "--metadata", root, "--sfw", "--tag", "1girl", "-o", tmp_path / "sfw.txt", "--json")
    assert sfw.code == 0 and sfw.json()["sfw_ratings"] == ["g"] and sfw.json()["rows_without_id"] > 0
    general = cli("select", "--metadata", root, "--rating", "g", "--tag", "1girl", "-o", tmp_path / "g.txt")
    assert general.code == 0
    # the jq query a user writes, done by hand on the raw lines
    expected = {
        int(str(p["id"]))
        for p in _posts(root)
        if "id" in p
        and p["rating"] == "g"
        and "1girl" in str(p["tag_string"]).split(" ")
        and (root / "original" / f"{int(str(p['id'])) % 1000:04d}" / f"{p['id']}.{p['file_ext']}").is_file()
    }
    assert expected and _listed(tmp_path / "sfw.txt") == _listed(tmp_path / "g.txt") == expected
    both = cli("select", "--metadata", root, "--sfw", "--include-sensitive", "-o", tmp_path / "gs.txt", "--json")
    assert both.json()["sfw_ratings"] == ["g", "s"] and both.json()["matched"] > sfw.json()["matched"]


def test_sfw_before_the_split_means_s(mixed_data: Path, tmp_path: Path, cli: Callable[..., Run]) -> None:
    got = cli("select", "--metadata", mixed_data / "2021", "--sfw", "-o", tmp_path / "sfw.txt", "--json")
    assert got.code == 0 and got.json()["sfw_ratings"] == ["s"] and got.json()["matched"] > 0


def test_stats_and_scan_read_the_new_dialect(new_data: Path, cli: Callable[..., Run]) -> None:
    stats = cli("metadata", "stats", new_data / "2022", "--json").json()
    assert list(stats["ratings"])[:4] == ["g", "s", "q", "e"] and stats["ratings"]["g"] > 0
    assert stats["malformed_lines"] == 0 and set(stats["dialects"].values()) == {"danbooru"}
    posts = [p for p in _posts(new_data / "2022") if "id" in p]
    assert stats["posts"] == len(posts) and stats["rows_without_id"] > 0
    scan = cli("scan", new_data / "2022", "--json").json()
    assert "metadata_malformed" not in scan["counts"] and scan["metadata_rows_without_id"] == stats["rows_without_id"]


def test_archive_places_a_new_export_as_the_release_did(
    mixed_data: Path, tmp_path: Path, cli: Callable[..., Run]
) -> None:
    """Both orders (new export first, or the old-dialect one first) give the layout synth wrote for 2021."""
    shipped = mixed_data / "2021" / "metadata"
    new, old = tmp_path / "new", tmp_path / "old"
    new.mkdir()
    for path in shipped.glob("*.json"):
        shutil.copy(path, new)
    shutil.copytree(shipped / "2021-old", old)
    for order in ((new, old), (old, new)):
        root = tmp_path / f"root-{order[0].name}"
        shutil.copytree(mixed_data / "2020", root)
        for export in order:
            got = cli("metadata", "archive", export, "--year", "2021", "--into", root)
            assert got.code == 0, got.stderr
        placed = sorted(p.relative_to(root / "metadata") for p in (root / "metadata").rglob("*"))
        assert placed == sorted(p.relative_to(shipped) for p in shipped.rglob("*"))


def test_a_line_mixing_dialects_is_refused_with_file_line_field(
    new_data: Path, tmp_path: Path, cli: Callable[..., Run]
) -> None:
    export = tmp_path / "export"
    export.mkdir()
    chunk = sorted((new_data / "2022" / "metadata").glob("posts*.json"))[0]
    lines = chunk.read_text().splitlines()
    bad = json.loads(lines[2]) | {"tags": []}
    lines[2] = json.dumps(bad)
    (export / chunk.name).write_text("\n".join(lines) + "\n")
    root = tmp_path / "root"
    shutil.copytree(new_data / "2021", root)
    before = sorted(p.name for p in (root / "metadata").rglob("*"))
    got = cli("metadata", "archive", export, "--year", "2022", "--into", root)
    assert got.code == 2 and f"{chunk.name}:3" in got.stderr and "'tags'" in got.stderr
    assert sorted(p.name for p in (root / "metadata").rglob("*")) == before  # nothing placed
