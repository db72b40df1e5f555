"""`derive 512px` on a synthetic release: incremental, takedowns, kill -9 and resume, same bytes every run."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from PIL import Image

from tests.conftest import REPO, Run, run_cli


@pytest.fixture(scope="module")
def release(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("derive")
    assert run_cli("synth", out, "--years", "2019", "--images", "1500", "--seed", "3").code == 0
    root = out / "2019"
    shutil.rmtree(root / "512px")  # synth writes its own; these tests derive them
    return root


def _copy(release: Path, tmp_path: Path, name: str = "r") -> Path:
    root = tmp_path / name
    shutil.copytree(release, root, copy_function=os.link)  # originals shared, read only
    return root


def _outputs(root: Path) -> dict[str, tuple[bytes, int]]:
    return {
        p.relative_to(root).as_posix(): (p.read_bytes(), p.stat().st_mtime_ns) for p in (root / "512px").rglob("*.jpg")
    }


def test_derive_then_nothing_to_do_then_only_what_changed(
    release: Path, tmp_path: Path, cli: Callable[..., Run]
) -> None:
    root = _copy(release, tmp_path)
    first = cli("derive", "512px", root, "--json")
    assert first.code == 0, first.stderr
    report = first.json()
    assert report["written"] > 500 and report["ratings"] == ["s"] and not report["failed"]
    assert report["flag_counts"]["white_background"] >= 1 and "near_uniform" not in report["flag_counts"]
    assert {"animated", "not an image"} <= set(report["skipped"])
    outputs = _outputs(root)
    assert len(outputs) == report["written"]
    assert all(Image.open(root / path).size == (512, 512) for path in list(outputs)[:50])

    again = cli("derive", "512px", root, "--json").json()
    assert again["written"] == 0 and again["up_to_date"] == report["written"] and _outputs(root) == outputs

    gone, changed = sorted(outputs)[:2]
    original = next((root / "original" / gone.split("/")[1]).glob(Path(gone).stem + ".*"))
    original.unlink()  # a takedown
    source = next((root / "original" / changed.split("/")[1]).glob(Path(changed).stem + ".*"))
    data = source.read_bytes()
    source.unlink()  # replaced, not edited in place: the copy shares its inode with the fixture
    source.write_bytes(data)
    third = cli("derive", "512px", root, "--json").json()
    assert third["written"] == 1 and third["removed"] == [gone]
    now = _outputs(root)
    assert gone not in now and now[changed][1] == source.stat().st_mtime_ns
    assert {k: v for k, v in now.items() if k != changed} == {
        k: v for k, v in outputs.items() if k not in (gone, changed)
    }


def test_two_runs_on_two_copies_write_the_same_bytes(release: Path, tmp_path: Path, cli: Callable[..., Run]) -> None:
    a, b = _copy(release, tmp_path, "a"), _copy(release, tmp_path, "b")
    assert cli("derive", "512px", a, "--workers", "2").code == 0
    assert cli("derive", "512px", b, "--workers", "1").code == 0
    assert _outputs(a) == _outputs(b)


def test_kill_9_then_the_same_command_finishes_the_rest(release: Path, tmp_path: Path, cli: Callable[..., Run]) -> None:
    root = _copy(release, tmp_path)
    proc = subprocess.Popen(
        [sys.executable, "-m", "release", "derive", "512px", str(root), "--workers", "1"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env={**os.environ, "PYTHONPATH": str(REPO)},
        start_new_session=True,
    )  # fmt: skip
    deadline = time.monotonic() + 120
    while len(list((root / "512px").rglob("*.jpg"))) < 100 if (root / "512px").exists() else True:
        assert proc.poll() is None and time.monotonic() < deadline
        time.sleep(0.02)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    done = len(list((root / "512px").rglob("*.jpg")))
    rest = cli("derive", "512px", root, "--json").json()
    assert rest["up_to_date"] >= done - 1 and rest["written"] + rest["up_to_date"] > done
    assert not [p for p in (root / "512px").rglob("*") if p.name.startswith(".")]  # no temporary left
    for path in (root / "512px").rglob("*.jpg"):
        Image.open(path).load()  # every output whole


def test_dry_run_changes_nothing_and_bad_options_are_refused(
    release: Path, tmp_path: Path, cli: Callable[..., Run]
) -> None:
    root = _copy(release, tmp_path)
    dry = cli("derive", "512px", root, "--dry-run", "--json")
    assert dry.code == 0 and dry.json()["to_convert"] > 500 and not (root / "512px").exists()
    for args, text in ((("--background", "grey"), "white, black or auto"), (("--ratings", "x"), "g, s, q or e")):
        bad = cli("derive", "512px", root, *args)
        assert bad.code == 2 and text in bad.stderr


def test_originals_skipped_before_are_not_opened_again_while_unchanged(release: Path, tmp_path: Path) -> None:
    from release.derive import Settings, derive_512px
    from release.errors import BadInput

    root = _copy(release, tmp_path)
    skips, carried = tmp_path / "skips.jsonl", tmp_path / "carried.jsonl"
    with open(skips, "wb") as out:
        first = derive_512px(root, skips_out=out)
    total = sum(first.skipped.values())
    assert total > 10 and first.skipped_earlier == 0
    assert derive_512px(root, dry_run=True).to_convert == total  # no output: a plain run tries them all again
    with open(carried, "wb") as out:
        again = derive_512px(root, earlier_skips=skips, skips_out=out)
    assert (again.to_convert, again.skipped_earlier, again.written) == (0, total, 0)
    assert (again.skipped, again.skipped_files) == (first.skipped, first.skipped_files)  # the same report
    assert carried.read_bytes() == skips.read_bytes()  # and carried on to the year after

    replaced = root / json.loads(skips.read_text().splitlines()[1])["path"]
    data = replaced.read_bytes()
    replaced.unlink()  # not edited in place: the copy shares its inode with the fixture
    replaced.write_bytes(data)  # same bytes, a new mtime: opened again
    assert derive_512px(root, earlier_skips=skips, dry_run=True).to_convert == 1
    assert derive_512px(root, settings=Settings(quality=80), earlier_skips=skips, dry_run=True).skipped_earlier == 0

    damaged = tmp_path / "damaged.jsonl"
    damaged.write_text(skips.read_text().splitlines()[0] + "\n{oops\n")
    with pytest.raises(BadInput, match="not a skipped original"):
        derive_512px(root, earlier_skips=damaged, dry_run=True)
