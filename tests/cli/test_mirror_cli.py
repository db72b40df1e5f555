"""Exit codes, --json and error messages of rsync, metadata, select and reconstruct."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import Dataset, Run


def test_rsync_filelist_and_config(cli: Callable[..., Run], dataset: Dataset, tmp_path: Path) -> None:
    got = cli("rsync", "filelist", dataset.root(2019), "-o", tmp_path / "list.txt", "--json")
    assert got.code == 0 and got.json()["files"] == len((tmp_path / "list.txt").read_text().splitlines())
    assert set(got.json()["outputs"]) >= {str(tmp_path / "list.txt.xz"), str(tmp_path / "list-512px.txt")}
    conf = cli("rsync", "config", "--module", "danbooru2019", "--path", "/srv/d")
    assert conf.code == 0 and "[danbooru2019]" in conf.stdout and "read only = yes" in conf.stdout
    bad = cli("rsync", "config", "--module", "x y", "--path", "/srv/d", "--json")
    assert bad.code == 2 and "module names" in bad.json()["error"]["message"]
    missing = cli("rsync", "filelist", tmp_path / "nope", "-o", tmp_path / "l.txt")
    assert missing.code == 2 and "nope" in missing.stderr and not (tmp_path / "l.txt").exists()


def test_metadata_commands(cli: Callable[..., Run], dataset: Dataset, tmp_path: Path) -> None:
    stats = cli(
        "metadata", "stats", dataset.root(2019), "--json", "--notes", tmp_path / "N.md", "--plots", tmp_path / "p"
    )
    assert stats.code == 0 and stats.json()["posts"] > 0 and (tmp_path / "N.md").is_file()
    assert len(stats.json()["written"]) == 4
    tar = cli("metadata", "tarball", dataset.root(2019), "-o", tmp_path / "m.tar.xz", "--json")
    assert tar.code == 0 and tar.json()["members"] == sum(
        p.is_file() for p in (dataset.root(2019) / "metadata").rglob("*")
    )
    export = tmp_path / "export"
    export.mkdir()
    line = (dataset.root(2019) / "metadata" / "2019000000000000").read_text().splitlines()[0]
    (export / "2020000000000000").write_text(line + "\n" + line.replace('"rating":', '"ratin":') + "\n")
    root = tmp_path / "root"
    root.mkdir()
    bad = cli("metadata", "archive", export, "--year", "2020", "--into", root)
    assert bad.code == 2 and "2020000000000000:2" in bad.stderr and "rating" in bad.stderr
    assert not (root / "metadata").exists()


def test_select_errors(cli: Callable[..., Run], dataset: Dataset, tmp_path: Path) -> None:
    for args, text in (
        (("--rating", "x"), "choose g, s, q or e"),
        (("--sfw", "--rating", "s"), "drop --rating"),
        (("--include-sensitive",), "only means something with --sfw"),
        (("--since", "2019/01/01"), "not a date"),
        (("--ids", "a-b"), "not a range"),
        (("--subset", "thumbs"), "original or 512px"),
    ):
        got = cli("select", "--metadata", dataset.root(2019), "-o", tmp_path / "l.txt", *args)
        assert got.code == 2 and text in got.stderr, (args, got.stderr)
    assert not (tmp_path / "l.txt").exists()
    ok = cli("select", "--metadata", dataset.root(2019), "--ids", "1000-1100", "-o", tmp_path / "l.txt", "--json")
    ids = [int(line.rsplit("/", 1)[1].split(".")[0]) for line in (tmp_path / "l.txt").read_text().splitlines()]
    assert ok.code == 0 and ids and all(1000 <= i <= 1100 for i in ids)


@pytest.mark.parametrize(
    ("args", "code", "text"),
    [
        (("nosuchrelease",), 2, "known releases: danbooru2017"),
        (("danbooru2017", "--link", "telepathy"), 2, "unknown link mode"),
    ],
)
def test_reconstruct_errors(
    cli: Callable[..., Run], dataset: Dataset, tmp_path: Path, args: tuple[str, ...], code: int, text: str
) -> None:
    got = cli("reconstruct", *args, "--from", dataset.root(2019), "--to", tmp_path / "out", "--json")
    assert (
        got.code == code
        and text in json.loads(got.stdout)["error"]["message"] + json.loads(got.stdout)["error"]["hint"]
    )


def test_dry_runs_write_nothing(cli: Callable[..., Run], dataset: Dataset, tmp_path: Path) -> None:
    got = cli("reconstruct", "danbooru2017", "--from", dataset.root(2019), "--to", tmp_path / "out", "--dry-run",
              "--manifest", dataset.manifests[2017], "--json")  # fmt: skip
    report = got.json()
    assert got.code == 0 and report["placed_files"] > 0 and report["missing"], got.stdout
    assert not (tmp_path / "out").exists() and not (tmp_path / "out-extras").exists()
    root = tmp_path / "root"
    (root / "metadata").mkdir(parents=True)
    arch = cli("metadata", "archive", dataset.root(2019) / "metadata" / "2018", "--year", "2018", "--into", root,
               "--dry-run", "--json")  # fmt: skip
    assert arch.code == 0 and arch.json()["placed_in"] == str(root / "metadata") and arch.json()["dry_run"]
    assert list((root / "metadata").iterdir()) == []
