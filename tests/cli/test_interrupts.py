"""Ctrl-C, SIGTERM, `timeout` and SIGKILL: the right exit code, no temporary left for long, and a killed
manifest build resumes from its journal instead of hashing everything again (issue 11, item 5)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from release.hashing import BATCH_FILES
from tests.conftest import REPO, Run

SMALL_FILES = 300


def slow_tree(root: Path) -> Path:
    """Small files first, then one sparse 8 GiB file (seconds to hash, no disk used)."""
    folder = root / "original" / "0000"
    folder.mkdir(parents=True)
    for n in range(1, SMALL_FILES + 1):
        (folder / f"{n * 1000}.jpg").write_bytes(b"\xff\xd8\xff" + n.to_bytes(4, "big"))
    with open(folder / "9999000.zip", "wb") as big:
        big.truncate(8 << 30)
    return root


def start_build(root: Path, output: Path, *extra: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "release", "manifest", "build", str(root), "-o", str(output), "--workers", "1", *extra],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        # Ctrl-C as a terminal delivers it, even when the suite runs in the background (`cmd &` starts it,
        # and so every child, with SIGINT ignored)
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )


def wait_for_temporary(proc: subprocess.Popen[str], folder: Path) -> None:
    deadline = time.monotonic() + 60
    while not any(p.name.endswith(".tmp") for p in folder.iterdir()):
        assert proc.poll() is None, "finished before it could be interrupted"
        assert time.monotonic() < deadline
        time.sleep(0.002)


@pytest.mark.parametrize(
    ("sig", "group", "code", "said"),
    [
        (signal.SIGINT, True, 130, "interrupted"),  # a terminal's Ctrl-C: the whole process group
        (signal.SIGTERM, True, 143, "terminated"),  # kill -TERM -PGID, a service manager
        (signal.SIGTERM, False, 143, "terminated"),  # `timeout`: the main process only
    ],
)
def test_interrupt_leaves_no_temporary(tmp_path: Path, sig: int, group: bool, code: int, said: str) -> None:
    root = slow_tree(tmp_path / "tree")
    out = tmp_path / "out"
    out.mkdir()
    proc = start_build(root, out / "m.zst")
    wait_for_temporary(proc, out)
    if group:
        os.killpg(proc.pid, sig)
    else:
        os.kill(proc.pid, sig)
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == code, stderr
    assert said in stderr and "Traceback" not in stderr
    assert [p.name for p in out.iterdir() if not p.name.endswith(".journal")] == []


def test_timeout_command_gives_143(tmp_path: Path) -> None:
    root = slow_tree(tmp_path / "tree")
    proc = subprocess.run(
        ["timeout", "2", sys.executable, "-m", "release", "manifest", "build", str(root), "-o", str(tmp_path / "m")],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        timeout=120,
    )
    assert proc.returncode == 124  # timeout's own code when it had to send SIGTERM
    assert "terminated" in proc.stderr and "Traceback" not in proc.stderr
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


def killed_build(tmp_path: Path) -> tuple[Path, Path]:
    """A tree, and the output folder of a build of it killed with SIGKILL while hashing its big file."""
    root = slow_tree(tmp_path / "tree")
    out = tmp_path / "out"
    out.mkdir()
    proc = start_build(root, out / "m.zst")
    wait_for_temporary(proc, out)
    time.sleep(3)  # the journal is flushed every 2 s while the big file is being hashed
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=60)
    return root, out


def test_sigkill_then_rerun_cleans_up_and_resumes(cli: Callable[..., Run], tmp_path: Path) -> None:
    root, out = killed_build(tmp_path)
    assert [p for p in out.iterdir() if p.name.endswith(".tmp")], "SIGKILL leaves the temporary behind"
    assert [p for p in out.iterdir() if p.name.endswith(".journal")]
    big = root / "original" / "0000" / "9999000.zip"
    big.unlink()  # the rest of the tree is unchanged; the big file is gone, so the re-run is quick
    big.write_bytes(b"PK\x03\x04")
    run = cli("manifest", "build", root, "-o", out / "m.zst", "--json")
    assert run.code == 0, run.stderr
    report = run.json()
    assert report["files"] == SMALL_FILES + 1
    # resumed: every file whose batch had finished before the kill is reused (the small files that shared a
    # batch with the big one had not finished, and are hashed again)
    assert report["reused_files"] >= BATCH_FILES and report["hashed_files"] == report["files"] - report["reused_files"]
    assert len(report["resumed_from"]) == 1
    assert sorted(p.name for p in out.iterdir()) == ["m.zst"]  # stale temporary and journal both gone
    again = cli("manifest", "build", root, "-o", tmp_path / "fresh.zst", "--json")
    assert (tmp_path / "fresh.zst").read_bytes() == (out / "m.zst").read_bytes()
    assert again.json()["hashed_files"] == SMALL_FILES + 1


def test_a_rehash_build_does_not_trust_a_plain_journal(cli: Callable[..., Run], tmp_path: Path) -> None:
    root, out = killed_build(tmp_path)
    (root / "original" / "0000" / "9999000.zip").write_bytes(b"PK\x03\x04")
    run = cli("manifest", "build", root, "-o", out / "m.zst", "--rehash", "--json")
    assert run.code == 0 and run.json()["hashed_files"] == SMALL_FILES + 1
