"""Where outputs go: devices, FIFOs, links and `-` are written through; inputs are never overwritten;
names never escape their folder; sets of outputs appear whole or not at all (issue 11, items 1-4)."""

from __future__ import annotations

import os
import stat
import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from release.manifest.io import ManifestReader
from tests.conftest import Dataset, Run


def sha256sum_export(cli: Callable[..., Run], manifest: Path, output: Path | str) -> Run:
    return cli("manifest", "export", manifest, "--format", "sha256sum", "-o", output)


def test_a_character_device_output_is_written_through_not_replaced(
    cli: Callable[..., Run], dataset: Dataset, tmp_path: Path
) -> None:
    fake_null = tmp_path / "fakenull"
    os.mknod(fake_null, stat.S_IFCHR | 0o666, os.makedev(1, 3))
    run = sha256sum_export(cli, dataset.manifests[2017], fake_null)
    assert run.code == 0, run.stderr
    assert stat.S_ISCHR(os.lstat(fake_null).st_mode)


def test_a_fifo_output_is_written_through(cli: Callable[..., Run], dataset: Dataset, tmp_path: Path) -> None:
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    received: list[bytes] = []
    reader = threading.Thread(target=lambda: received.append(fifo.read_bytes()))
    reader.start()
    run = sha256sum_export(cli, dataset.manifests[2017], fifo)
    reader.join(timeout=60)
    assert run.code == 0, run.stderr
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)
    assert received[0].count(b"\n") == ManifestReader(dataset.manifests[2017]).header.files


def test_a_symlink_output_keeps_the_link_and_replaces_its_target(
    cli: Callable[..., Run], dataset: Dataset, tmp_path: Path
) -> None:
    target = tmp_path / "real.txt"
    target.write_text("old")
    link = tmp_path / "link.txt"
    link.symlink_to(target)
    run = sha256sum_export(cli, dataset.manifests[2017], link)
    assert run.code == 0, run.stderr
    assert link.is_symlink() and target.read_text().count("\n") > 100


def test_a_symlink_to_stdout_writes_to_stdout(cli: Callable[..., Run], dataset: Dataset) -> None:
    run = sha256sum_export(cli, dataset.manifests[2017], "/proc/self/fd/1")
    assert run.code == 0 and run.stdout.count("\n") == ManifestReader(dataset.manifests[2017]).header.files


@pytest.mark.parametrize(
    "args",
    [
        ("verify", "{root}", "--manifest", "{manifest}", "--refetch-list", "-"),
        ("verify", "{root}", "--manifest", "{manifest}", "--report", "-"),
        ("rsync", "filelist", "{manifest}", "-o", "-"),
        ("select", "--metadata", "{root}", "--rating", "s", "-o", "-"),
        ("metadata", "stats", "{root}", "--notes", "-"),
    ],
)
def test_dash_means_stdout(cli: Callable[..., Run], dataset: Dataset, tmp_path: Path, args: tuple[str, ...]) -> None:
    values = {"root": str(dataset.root(2017)), "manifest": str(dataset.manifests[2017])}
    run = cli(*(a.format(**values) for a in args), cwd=tmp_path)
    assert run.code in (0, 1), run.stderr
    assert run.stdout.strip() and not (tmp_path / "-").exists()
    with_json = cli(*(a.format(**values) for a in args), "--json", cwd=tmp_path)
    assert with_json.code == 2 and "--json writes to standard output already" in with_json.stderr


def test_a_folder_output_is_refused(cli: Callable[..., Run], dataset: Dataset, tmp_path: Path) -> None:
    run = sha256sum_export(cli, dataset.manifests[2017], tmp_path)
    assert run.code == 2 and "is a folder" in run.stderr


@pytest.mark.parametrize(
    "args",
    [
        ("verify", "{root}", "--manifest", "{m}", "--refetch-list", "{m}"),
        ("verify", "{root}", "--manifest", "{m}", "--report", "{m}"),
        ("manifest", "export", "{m}", "--format", "sha256sum", "-o", "{m}"),
        ("rsync", "filelist", "{m}", "-o", "{m}"),
        ("manifest", "diff", "{m}", "{m}"),  # reads only: must still work
    ],
)
def test_an_output_that_is_an_input_is_refused(
    cli: Callable[..., Run], dataset: Dataset, tmp_path: Path, args: tuple[str, ...]
) -> None:
    manifest = tmp_path / "m.jsonl.zst"
    manifest.write_bytes(dataset.manifests[2017].read_bytes())
    before = manifest.read_bytes()
    run = cli(*(a.format(root=dataset.root(2017), m=manifest) for a in args))
    if args[1] == "diff":
        assert run.code == 0, run.stderr
    else:
        assert run.code == 2 and "is also an input of this command" in run.stderr, run.stderr
    assert manifest.read_bytes() == before


def test_an_output_hard_linked_to_an_input_is_refused(
    cli: Callable[..., Run], dataset: Dataset, tmp_path: Path
) -> None:
    manifest = tmp_path / "m.jsonl.zst"
    manifest.write_bytes(dataset.manifests[2017].read_bytes())
    os.link(manifest, tmp_path / "alias.jsonl.zst")
    run = cli("rsync", "filelist", manifest, "-o", tmp_path / "alias.jsonl.zst")
    assert run.code == 2 and manifest.read_bytes() == dataset.manifests[2017].read_bytes()


@pytest.mark.parametrize("release", ["../../escaped", "{tmp}/escaped-abs", "..", ".hidden", "a/b"])
def test_release_names_never_become_paths_outside_the_output(
    cli: Callable[..., Run], dataset: Dataset, tmp_path: Path, release: str
) -> None:
    release = release.format(tmp=tmp_path)
    out = tmp_path / "deep" / "out"
    out.mkdir(parents=True)
    run = cli("torrents", "build", dataset.root(2017), "--release", release, "-o", out)
    assert run.code == 2 and "one safe path component" in run.stderr, run.stderr
    run = cli("manifest", "build", dataset.root(2017), "-o", out / "m.zst", "--release", release, "--torrents", out)
    assert run.code == 2 and "one safe path component" in run.stderr
    assert not list(tmp_path.rglob("*.torrent")) and not list(tmp_path.rglob("*.tar.xz"))


def test_a_release_file_naming_a_path_is_refused(cli: Callable[..., Run], dataset: Dataset, tmp_path: Path) -> None:
    release_file = tmp_path / "evil.toml"
    release_file.write_text('name = "../../evil"\nyear = 2017\nfinal_id = 100000\n')
    source, target = dataset.root(2019), tmp_path / "t"
    run = cli("reconstruct", "../../evil", "--release-file", release_file, "--from", source, "--to", target)
    assert run.code == 2 and "one safe path component" in run.stderr
    assert not (tmp_path / "t").exists() and not (tmp_path.parent.parent / "evil.manifest.jsonl.zst").exists()


def test_manifest_and_torrents_appear_together_or_not_at_all(
    cli: Callable[..., Run], dataset: Dataset, full_disk: Path
) -> None:
    run = cli("manifest", "build", dataset.root(2017), "-o", full_disk / "m.zst", "--torrents", full_disk / "t")
    assert run.code == 3 and "no space left" in run.stderr
    left = [p.name for p in full_disk.rglob("*") if not p.name.endswith(".journal")]
    assert left == [], left


def test_notes_and_plots_appear_together_or_not_at_all(
    cli: Callable[..., Run], dataset: Dataset, full_disk: Path
) -> None:
    run = cli("metadata", "stats", dataset.root(2017), "--notes", full_disk / "NOTES.md", "--plots", full_disk / "p")
    assert run.code == 3 and "no space left" in run.stderr
    assert list(full_disk.iterdir()) == []


def test_a_failed_bag_leaves_no_bag(
    cli: Callable[..., Run], dataset: Dataset, tree_copy: Callable[[int], Path]
) -> None:
    payload = tree_copy(2017)
    victim = next(payload.glob("original/*/*.jpg"))
    victim.unlink()
    bag = payload.parent / "bag"
    run = cli("manifest", "export", dataset.manifests[2017], "--format", "bagit", "-o", bag, "--payload", payload)
    assert run.code == 3 and "in the manifest but not in the payload" in run.stderr
    assert not bag.exists()


def test_reconstruct_checks_the_whole_manifest_before_placing_a_file(
    cli: Callable[..., Run], dataset: Dataset, tmp_path: Path
) -> None:
    reader = ManifestReader(dataset.manifests[2017])
    lines = [reader.header.model_dump_json()] + [r.model_dump_json() for r in reader][:-1]
    short = tmp_path / "short.jsonl"
    short.write_text("\n".join(lines) + "\n")  # one record short: the count error is on the last line
    run = cli("reconstruct", "danbooru2017", "--from", dataset.root(2019), "--to", tmp_path / "t", "--manifest", short)
    assert run.code == 2 and "header announces" in run.stderr
    assert not (tmp_path / "t").exists() or not any((tmp_path / "t").rglob("*"))
