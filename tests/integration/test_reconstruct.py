"""Reconstruct 2017 and 2018 from the 2019 synth tree; prove them against the manifests cut at the time."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from release.build import build_manifest
from release.metaarchive import write_metadata_tarball
from release.releases import ReleaseFacts, TorrentRecipe, write_release
from release.torrents.build import TorrentJob
from tests.conftest import Dataset, run_cli

RECIPE = TorrentRecipe(trackers=[["http://tracker.example/announce"]], creation_date=1514764800, comment="synth")


def _cut(dataset: Dataset, year: int, out: Path) -> tuple[Path, Path, Path]:
    """What year N published: its manifest, .torrent files and metadata tarball (one read pass)."""
    name = f"synth{year}"
    out.mkdir(parents=True)
    manifest = out / f"{name}.jsonl.zst"
    job = TorrentJob(RECIPE.settings(name), out / "torrents")
    build_manifest(dataset.root(year), manifest, release=name, torrents=job)
    write_metadata_tarball(dataset.root(year), out / "metadata.json.tar.xz")
    return manifest, out / "torrents", out / "metadata.json.tar.xz"


def _release_file(dataset: Dataset, year: int, folder: Path) -> Path:
    log = next(y for y in dataset.changelog.years if y.year == year)
    facts = ReleaseFacts(name=f"synth{year}", year=year, final_id=log.final_id, torrents=RECIPE)
    path = folder / f"synth{year}.toml"
    path.write_text(write_release(facts))
    return path


def _expected_damage(dataset: Dataset, year: int) -> tuple[list[str], list[str]]:
    """Files of year N's release that later years took down or replaced (per the changelog)."""
    final = {y.year: y for y in dataset.changelog.years}
    in_release = {p.relative_to(dataset.root(year)).as_posix() for p in dataset.root(year).rglob("*") if p.is_file()}
    taken = sorted({p for y in final.values() if y.year > year for p in y.takedowns} & in_release)
    replaced = sorted({p for y in final.values() if y.year > year for p in y.replaced} & in_release)
    return taken, replaced


@pytest.mark.parametrize("year", [2017, 2018])
def test_reconstruct_from_2019_is_proven_file_for_file(dataset: Dataset, tmp_path: Path, year: int) -> None:
    manifest, torrents, tarball = _cut(dataset, year, tmp_path / "published")
    release_file = _release_file(dataset, year, tmp_path)
    target, extras = tmp_path / f"rebuilt{year}", tmp_path / "extras"
    args = ("reconstruct", f"synth{year}", "--release-file", release_file, "--from", dataset.root(2019),
            "--to", target, "--manifest", manifest, "--extras", extras, "--json")  # fmt: skip
    first = run_cli(*args)
    taken, replaced = _expected_damage(dataset, year)
    assert taken or replaced, "the synth changelog should damage every older release"
    report = first.json()
    assert first.code == 1 and report["proven"] and not report["identical_release"]
    assert sorted(report["missing"]) == taken
    assert sorted(report["differ"]) == replaced
    assert report["extra"] == []
    refetch = Path(report["refetch_list"]).read_text().splitlines()
    assert refetch == sorted(f"./{p}" for p in taken + replaced)
    assert all(not (target / p).exists() for p in replaced)  # known-wrong bytes are not left in place
    assert report["torrents"] == []  # cannot match while files are missing
    # every other file is bit-identical: the same inode (hard link) or the same bytes
    original = dataset.root(year)
    for path in original.rglob("*"):
        rel = path.relative_to(original).as_posix()
        if path.is_file() and rel not in taken + replaced:
            assert (target / rel).read_bytes() == path.read_bytes(), rel

    # a mirror that kept them: fetch the refetch list, run again
    for line in refetch:
        (target / line[2:]).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(original / line[2:], target / line[2:])
    second = run_cli(*args)
    report = second.json()
    assert second.code == 0 and report["identical_release"], second.stdout
    assert report["refetch_list"] is None and not (extras / f"synth{year}-refetch.txt").exists()
    assert Path(report["metadata_tarball"]).read_bytes() == tarball.read_bytes()
    rebuilt = {Path(t["file"]).name: Path(t["file"]).read_bytes() for t in report["torrents"]}
    published = {p.name: p.read_bytes() for p in torrents.glob("*.torrent")}
    assert rebuilt == published and len(published) >= 2
    assert (extras / "torrents" / f"synth{year}-torrents.tar.xz").read_bytes() == (
        torrents / f"synth{year}-torrents.tar.xz"
    ).read_bytes()


def test_without_manifest_it_says_what_it_cannot_prove(dataset: Dataset, tmp_path: Path) -> None:
    release_file = _release_file(dataset, 2017, tmp_path)
    got = run_cli("reconstruct", "synth2017", "--release-file", release_file, "--from", dataset.root(2019),
                  "--to", tmp_path / "out", "--link", "copy", "--json")  # fmt: skip
    report = got.json()
    assert got.code == 1 and not report["proven"] and not report["identical_release"]
    assert any("cannot be shown" in note for note in report["notes"])
    md5 = report["md5"]
    assert md5["checked"] == md5["matching"] + md5["mismatching"] + md5["files_without_post"]
    # the 2017 metadata is back at the top of metadata/, earlier archives none
    names = sorted(p.name for p in (tmp_path / "out" / "metadata").iterdir())
    assert names == sorted(p.name for p in (dataset.root(2017) / "metadata").iterdir())
    # originals placed are exactly the 2019 tree's originals with ID <= 2017's final ID
    final = next(y.final_id for y in dataset.changelog.years if y.year == 2017)
    expected = sorted(
        p.relative_to(dataset.root(2019)).as_posix()
        for p in (dataset.root(2019) / "original").rglob("*")
        if p.is_file() and int(p.name.split(".")[0]) <= final
    )
    placed = sorted(
        p.relative_to(tmp_path / "out").as_posix() for p in (tmp_path / "out" / "original").rglob("*") if p.is_file()
    )
    assert placed == expected
