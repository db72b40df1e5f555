"""A Danbooru2019-sized cut: 3.7M tiny files cut end to end; seconds and peak RSS of every step.

    python3 benchmarks/bench_cut_scale.py                  # --images 2,340,000 --tiny: ~3.7M files
    python3 benchmarks/bench_cut_scale.py --images 20000   # a quick look

The tree is `synth --years 2019 --tiny` (files of a few bytes: the per-file costs, not the bytes); its
export (the snapshot's top-level metadata chunks) is moved out of it once, into `export/`, and comes
back through the cut's metadata step, as a maintainer's does. The cut runs in this process; before each
step its peak RSS is reset (`echo 5 > /proc/self/clear_refs`) and after it VmHWM is read, so each step's
figure is its own (derive's worker processes are not counted: they hold one image at a time). Results
replace the scale section of benchmarks/RESULTS.md.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_hashing import CLI, HERE, emit_section  # noqa: E402

sys.path.insert(0, str(HERE.parent))
from release.cut.ahead import peak_rss  # noqa: E402
from release.cut.releasefile import load_release_file  # noqa: E402
from release.cut.run import StepEvent, run_cut  # noqa: E402
from release.metadata import export_chunks  # noqa: E402

START, END = "<!-- cut-scale:start -->", "<!-- cut-scale:end -->"
ALLOW = [
    "type_mismatch", "truncated", "empty", "wrong_bucket", "file_without_metadata", "metadata_without_file",
    "metadata_duplicate_tag", "sfw_without_original",
]  # fmt: skip


def peak_mb() -> float:
    return peak_rss() / 2**20


def reset_peak() -> None:
    Path("/proc/self/clear_refs").write_text("5")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work", type=Path, default=HERE / "work")
    parser.add_argument("--images", type=int, default=2_340_000)
    parser.add_argument("--results", type=Path, default=HERE / "RESULTS.md")
    parser.add_argument("--from", dest="from_step", help="keep the earlier steps' outputs; run this step on")
    args = parser.parse_args()
    data = args.work / f"scale-{args.images}"
    if not (data / "2019").is_dir():
        shutil.rmtree(data, ignore_errors=True)
        started = time.perf_counter()
        subprocess.run(f"{CLI} synth {data} --years 2019 --images {args.images} --tiny --seed 9", shell=True,
                       check=True, stdout=subprocess.DEVNULL)  # fmt: skip
        print(f"synth: {time.perf_counter() - started:.0f} s", flush=True)
    export = data / "export"
    if not export.is_dir():
        export.mkdir()
        for chunk in export_chunks(data / "2019" / "metadata"):
            chunk.rename(export / chunk.name)
    if args.from_step is None:  # a whole cut, as the first: the export not yet placed, no output
        for chunk in export_chunks(data / "2019" / "metadata"):
            chunk.unlink()
        shutil.rmtree(data / "out", ignore_errors=True)
    release = data / "danbooru2019.toml"
    release.write_text(
        "\n".join([
            'name = "danbooru2019"', "year = 2019", 'root = "2019"', 'output = "out"',
            f"scan_allow = {json.dumps(ALLOW)}", "[torrents]", "creation_date = 1577836800",
            "[rsync]", 'module = "danbooru2019"', "[metadata]", 'export = "export"',
        ]) + "\n"
    )  # fmt: skip
    rows: list[tuple[str, float, float, dict[str, object]]] = []
    ahead: dict[str, tuple[float, float]] = {}  # step -> its work done ahead: seconds, peak RSS MB

    def on_step(event: StepEvent) -> None:
        step = event.outcome
        if step.status == "run":
            reset_peak()
            print(f"{step.title} …", flush=True)
        elif step.status == "done":
            rows.append((step.name, step.seconds, peak_mb(), step.summary))
            ahead[step.name] = (step.ahead_seconds, step.ahead_peak_rss / 2**20)
            print(f"  {step.seconds:8.1f} s  peak {rows[-1][2]:7.0f} MB  {step.summary}", flush=True)

    def watch() -> None:  # the peak so far, for a step too long to wait for
        while True:
            time.sleep(30)
            print(f"  … peak so far {peak_mb():.0f} MB", flush=True)

    threading.Thread(target=watch, daemon=True).start()
    started = time.perf_counter()
    run_cut(load_release_file(release), on_step=on_step, from_step=args.from_step)
    total = time.perf_counter() - started
    files = next(r[3]["files"] for r in rows if r[0] == "read")
    lines = [
        f"## A Danbooru2019-sized cut (`python3 benchmarks/bench_cut_scale.py --images {args.images}`, "
        f"{time.strftime('%Y-%m-%d')})\n",
        f"`synth --years 2019 --images {args.images} --tiny`: {files:,} files. The whole cut: **{total:.0f} s**; "
        f"peak RSS of the main process per step, and of the child each step's work done ahead ran in "
        f"(beside the steps before it; its own seconds) (target ≤ 1 GiB each):\n",
        "| step | seconds | peak RSS MB | done ahead: seconds | its peak RSS MB |",
        "|---|---:|---:|---:|---:|",
        *(
            f"| {name} | {seconds:.1f} | {peak:.0f} | "
            + (f"{ahead[name][0]:.1f} | {ahead[name][1]:.0f} |" if ahead.get(name, (0, 0))[0] else "– | – |")
            for name, seconds, peak, _ in rows
        ),
        "",
    ]
    emit_section(args.results, START, END, lines)


if __name__ == "__main__":
    main()
