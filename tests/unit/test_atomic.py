"""The output mechanism: sets that commit together, stale temporaries, protected inputs; the one merge-join."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from release.atomic import (
    OutputSet,
    atomic_output,
    clear_protected,
    held_signals,
    process_alive,
    protect_inputs,
    remove_stale_temporaries,
)
from release.errors import BadInput
from release.manifest.merge import merge_join
from release.metaarchive import archive_metadata
from release.metadata import export_chunks
from tests.conftest import Dataset


def test_a_set_appears_together_or_not_at_all(tmp_path: Path) -> None:
    with pytest.raises(KeyboardInterrupt), OutputSet() as outputs:
        with atomic_output(tmp_path / "a", outputs) as handle:
            handle.write(b"a")
        assert not (tmp_path / "a").exists()  # written, not yet in place
        folder = outputs.folder(tmp_path / "new" / "deeper")
        with atomic_output(folder / "b", outputs) as handle:
            handle.write(b"b")
        raise KeyboardInterrupt
    assert list(tmp_path.iterdir()) == []  # no temporaries, and the folders it made are gone again
    with OutputSet() as outputs:
        with atomic_output(tmp_path / "a", outputs) as handle:
            handle.write(b"a")
        staged = outputs.stage_folder(tmp_path / "tree")
        (staged / "x").write_text("x")
    assert (tmp_path / "a").read_bytes() == b"a" and (tmp_path / "tree" / "x").read_text() == "x"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a", "tree"]


def test_signals_are_held_during_a_commit() -> None:
    # Python's own Ctrl-C handler, even when the suite was started in the background (`cmd &` starts it
    # with SIGINT ignored, and a held signal is then rightly dropped)
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        _held_then_delivered()
    finally:
        signal.signal(signal.SIGINT, previous)


def _held_then_delivered() -> None:
    with pytest.raises(KeyboardInterrupt):
        with held_signals():
            os.kill(os.getpid(), signal.SIGINT)
            done = True  # reached: the signal waited
        pytest.fail("the held signal was not delivered")
    assert done


def test_stale_temporaries_of_dead_writers_are_removed(tmp_path: Path) -> None:
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    pid = int(dead.stdout)
    stale = tmp_path / f".m.zst.{pid}.abc123.tmp"
    stale.write_text("half")
    stale_dir = tmp_path / f".bag.{pid}.def456.tmp"
    stale_dir.mkdir()
    alive = tmp_path / f".m.zst.{os.getppid()}.xyz.tmp"  # a writer that still runs: left alone
    alive.write_text("busy")
    other = tmp_path / ".other.1.tmp"
    other.write_text("not ours to judge")
    with atomic_output(tmp_path / "m.zst") as handle:
        handle.write(b"whole")
    assert not stale.exists() and alive.exists() and other.exists()
    assert remove_stale_temporaries(tmp_path, "bag") == [stale_dir]


def test_protected_inputs_cannot_be_outputs(tmp_path: Path) -> None:
    source = tmp_path / "in.txt"
    source.write_text("precious")
    protect_inputs([source])
    try:
        with pytest.raises(BadInput, match="is also an input"), atomic_output(source) as handle:
            handle.write(b"x")
    finally:
        clear_protected()
    assert source.read_text() == "precious"


def test_merge_join_pairs_by_manifest_order() -> None:
    left = ["original/0000/1000.jpg", "original/0001/1001.jpg", "original/0000/3000.png", "metadata/2019000000000000"]
    right = ["original/0001/1001.jpg", "original/0002/2002.jpg", "512px/0000/1000.jpg"]
    pairs = list(merge_join(left, right, str, str))
    assert pairs == [
        ("original/0000/1000.jpg", None),
        ("original/0001/1001.jpg", "original/0001/1001.jpg"),
        (None, "original/0002/2002.jpg"),
        ("original/0000/3000.png", None),
        (None, "512px/0000/1000.jpg"),
        ("metadata/2019000000000000", None),
    ]


def test_an_interrupted_archive_leaves_last_year_in_place(
    dataset: Dataset, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = tmp_path / "root"
    (root / "metadata").mkdir(parents=True)
    for chunk in export_chunks(dataset.root(2018) / "metadata"):
        (root / "metadata" / chunk.name).write_bytes(chunk.read_bytes())
    before = sorted(p.name for p in (root / "metadata").iterdir())
    import release.metaarchive as metaarchive

    real = metaarchive._copy_in

    def copy_then_interrupt(chunks: list[Path], target: Path, outputs: OutputSet) -> None:
        real(chunks, target, outputs)
        raise KeyboardInterrupt  # after this year's chunks are copied, before anything moves

    monkeypatch.setattr(metaarchive, "_copy_in", copy_then_interrupt)
    with pytest.raises(KeyboardInterrupt):
        archive_metadata(dataset.root(2019) / "metadata", 2019, root)
    assert sorted(p.name for p in (root / "metadata").iterdir()) == before  # nothing moved, no temporaries
    monkeypatch.setattr(metaarchive, "_copy_in", real)
    report = archive_metadata(dataset.root(2019) / "metadata", 2019, root)
    assert report.moved_to_archive and all(c.name.startswith("2019") for c in export_chunks(root / "metadata"))


def test_manifest_and_torrents_interrupted_at_the_tarball_leave_nothing(
    dataset: Dataset, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import release.torrents.build as torrents_build
    from release.build import build_manifest
    from release.torrents.build import TorrentJob
    from release.torrents.plan import TorrentSettings

    def interrupted(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt  # the .torrent files are written, the tarball is not

    monkeypatch.setattr(torrents_build, "write_tar_xz", interrupted)
    job = TorrentJob(TorrentSettings(release="d2017"), tmp_path / "torrents")
    with pytest.raises(KeyboardInterrupt):
        build_manifest(dataset.root(2017), tmp_path / "m.zst", torrents=job)
    assert [p.name for p in tmp_path.iterdir() if not p.name.endswith(".journal")] == []


def test_a_killed_writer_not_yet_reaped_is_gone_and_its_temporaries_are_stale(tmp_path: Path) -> None:
    writer = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    temporary = tmp_path / f".out.{writer.pid}.x.tmp"
    temporary.write_bytes(b"half")
    try:
        assert process_alive(writer.pid)
        assert remove_stale_temporaries(tmp_path, "out") == [] and temporary.exists()
        writer.kill()
        os.waitid(os.P_PID, writer.pid, os.WEXITED | os.WNOWAIT)  # dead, but left a zombie: not reaped yet
        assert os.path.exists(f"/proc/{writer.pid}")
        assert not process_alive(writer.pid)
        assert remove_stale_temporaries(tmp_path, "out") == [temporary] and not temporary.exists()
    finally:
        writer.kill()
        writer.wait()
