"""Work started ahead of a step: the metadata tarball's streams compressed early, in a low-priority child."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from release import tarball
from release.atomic import atomic_output
from release.cut.ahead import AheadWork, bytes_read
from release.metaarchive import AHEAD_INDEX, AHEAD_STREAMS, ahead_streams, compress_ahead, write_metadata_tarball


def make_root(root: Path) -> None:
    files = {
        "metadata/2017/2017000000000000": os.urandom(200_000),
        "metadata/2017/2017000000000001": b'{"id": 1}\n' * 30_000,
        "metadata/2018000000000000": b'{"id": 2, "tags": []}\n' * 20_000,
        "metadata/2018000000000001": b'{"id": 3}\n' * 100,  # small: shares the headers' stream
    }
    for rel, data in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(data)


@pytest.mark.parametrize("new_only", [False, True])
def test_streams_compressed_ahead_give_the_same_tarball_and_are_copied(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, new_only: bool
) -> None:
    monkeypatch.setattr(tarball, "BLOCK", 1 << 16)  # big members span several streams
    root, cache = tmp_path / "r", tmp_path / "cache"
    make_root(root)
    cache.mkdir()
    fresh, fast = tmp_path / "fresh.tar.xz", tmp_path / "fast.tar.xz"
    write_metadata_tarball(root, fresh)
    index = compress_ahead(root, cache, new_only=new_only)
    expected = ["metadata/2018000000000000"] if new_only else ["metadata/2017/2017000000000000",
                                                                "metadata/2017/2017000000000001",
                                                                "metadata/2018000000000000"]  # fmt: skip
    assert sorted(index.files) == expected
    ahead = ahead_streams(cache)
    assert ahead is not None
    write_metadata_tarball(root, fast, reuse=[ahead])
    assert fast.read_bytes() == fresh.read_bytes()
    assert ahead.copied_bytes == sum(s.raw_length for s in index.segments) > 0


@pytest.mark.parametrize("new_only", [False, True])
def test_an_export_still_to_be_placed_is_compressed_from_where_it_is(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, new_only: bool
) -> None:
    monkeypatch.setattr(tarball, "BLOCK", 1 << 16)
    root, cache, export = tmp_path / "r", tmp_path / "cache", tmp_path / "export"
    make_root(root)  # last year's export at the top, 2017's archived
    cache.mkdir()
    export.mkdir()
    lines = [b'{"id": %d, "tags": []}\n' % n for n in range(5, 40_000)]
    (export / "2019000000000000").write_bytes(b"".join(lines[:20_000]))  # not valid posts: never archived
    (export / "2019000000000001").write_bytes(b"".join(lines[20_000:]))
    index = compress_ahead(root, cache, new_only=new_only, export=export)
    ours = ["metadata/2019000000000000", "metadata/2019000000000001"]
    archived = ["metadata/2017/2017000000000000", "metadata/2017/2017000000000001"]  # 2018's will move: left
    assert sorted(index.files) == (ours if new_only else sorted(archived + ours))
    # placed as the metadata step places it: this year's at the top, last year's into metadata/2018/
    (root / "metadata/2018").mkdir()
    for name in ("2018000000000000", "2018000000000001"):
        (root / "metadata" / name).rename(root / "metadata/2018" / name)
    for chunk in export.iterdir():
        (root / "metadata" / chunk.name).write_bytes(chunk.read_bytes())
    fresh, fast = tmp_path / "fresh.tar.xz", tmp_path / "fast.tar.xz"
    write_metadata_tarball(root, fresh)
    ahead = ahead_streams(cache)
    assert ahead is not None
    write_metadata_tarball(root, fast, reuse=[ahead])
    assert fast.read_bytes() == fresh.read_bytes()
    assert ahead.copied_bytes == sum(s.raw_length for s in index.segments) > 0  # every stream made was used


def test_a_finished_run_is_kept_and_a_stale_or_damaged_one_only_costs_time(tmp_path: Path) -> None:
    root, cache = tmp_path / "r", tmp_path / "cache"
    make_root(root)
    cache.mkdir()
    fresh = tmp_path / "fresh.tar.xz"
    compress_ahead(root, cache, new_only=False)
    written = (cache / AHEAD_STREAMS).stat().st_mtime_ns
    compress_ahead(root, cache, new_only=False)  # the same files: nothing is compressed again
    assert (cache / AHEAD_STREAMS).stat().st_mtime_ns == written

    changed = root / "metadata/2018000000000000"
    changed.write_bytes(changed.read_bytes().replace(b'"id": 2', b'"id": 7'))  # same size, other content
    data = bytearray((cache / AHEAD_STREAMS).read_bytes())
    data[len(data) // 4] ^= 0xFF  # and a damaged stream in the cache (the first chunk's)
    (cache / AHEAD_STREAMS).write_bytes(bytes(data))
    write_metadata_tarball(root, fresh)
    ahead = ahead_streams(cache)
    assert ahead is not None
    reused = tmp_path / "reused.tar.xz"
    write_metadata_tarball(root, reused, reuse=[ahead])
    assert reused.read_bytes() == fresh.read_bytes()
    assert ahead.copied_bytes < sum(s.raw_length for s in ahead.by_content.values())


def test_ahead_work_reports_its_error_and_its_reads_count_once_reaped(tmp_path: Path) -> None:
    source = tmp_path / "source"
    source.write_bytes(os.urandom(1 << 20))

    def read_it() -> None:
        (tmp_path / "copy").write_bytes(source.read_bytes())

    def fail() -> None:
        raise ValueError("no export")

    with AheadWork() as ahead:
        ahead.start("copy", read_it)
        ahead.start("fail", fail)
        before = bytes_read()
        done, failed = ahead.finish("copy"), ahead.finish("fail")
        assert bytes_read() - before >= 1 << 20  # reaped: its reads count as the step's that waited for it
        assert ahead.finish("never started") is None
    assert done is not None and done.seconds > 0 and not done.error and done.peak_rss > 1 << 20
    assert (tmp_path / "copy").read_bytes() == source.read_bytes()
    assert failed is not None and failed.error == "ValueError: no export"


def _writer(target: Path) -> None:
    with atomic_output(target) as out:
        out.write(b"partial")
        time.sleep(60)


def test_ahead_seconds_are_the_works_own_not_the_wait_for_its_step() -> None:
    with AheadWork() as ahead:
        ahead.start("quick", lambda: time.sleep(0.1), "metadata")
        time.sleep(3)  # the steps between run on; the work is long done
        done = ahead.finish("quick")
    assert done is not None and 0.1 <= done.seconds < 2.5 and done.began == "metadata"


def test_stopped_ahead_work_leaves_no_temporary(tmp_path: Path) -> None:
    target = tmp_path / "cache.xz"
    with AheadWork() as ahead:
        ahead.start("slow", lambda: _writer(target))
        deadline = time.monotonic() + 10
        while not list(tmp_path.glob(".cache.xz.*.tmp")) and time.monotonic() < deadline:
            time.sleep(0.01)
        assert list(tmp_path.glob(".cache.xz.*.tmp"))
        started = time.monotonic()
    assert time.monotonic() - started < 10  # stopped, not waited for
    assert not list(tmp_path.iterdir())


def test_ahead_work_dies_with_a_killed_cut(tmp_path: Path) -> None:
    script = textwrap.dedent(
        f"""
        import os, time
        from pathlib import Path
        from release.cut.ahead import AheadWork, bytes_read
        from tests.unit.test_cut_ahead import _writer
        with AheadWork() as ahead:
            ahead.start("slow", lambda: _writer(Path({str(tmp_path / "cache.xz")!r})))
            print(os.getpid(), flush=True)
            time.sleep(60)
        """
    )
    cut = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, cwd=Path(__file__).parents[2])
    assert cut.stdout is not None
    cut.stdout.readline()
    deadline = time.monotonic() + 10
    while not list(tmp_path.glob(".cache.xz.*.tmp")) and time.monotonic() < deadline:
        time.sleep(0.01)
    child = int(next(tmp_path.glob(".cache.xz.*.tmp")).name.split(".")[3])
    os.kill(cut.pid, signal.SIGKILL)
    cut.wait()
    deadline = time.monotonic() + 10
    while list(tmp_path.iterdir()) and time.monotonic() < deadline:
        time.sleep(0.01)
    assert not list(tmp_path.iterdir())  # it removed its temporary as it went
    assert gone(child)
    assert not (tmp_path / AHEAD_INDEX).exists()


def gone(pid: int) -> bool:
    """Whether `pid` has ended (a zombie waiting for its new parent to reap it has)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except FileNotFoundError:
        return True
