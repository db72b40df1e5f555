"""Per-file cost at a million files: manifest build and verify beside rhash and xxhsum, warm and cold.

    python3 benchmarks/bench_million.py            # the ~1M-file --tiny tree of bench_hashing.py
    python3 benchmarks/bench_million.py --quick    # 20,000 posts, one round of each

The anchors run as two processes on the two halves of the tree's sorted file list, as a user with two
cores would run them. Rounds alternate the tools (ours, the anchor, ours, ...), so drift on a shared
machine hits both. Warm: the tree is read once first; best and median of the rounds. Cold: the page
cache is dropped before every run (`sync; echo 3 > /proc/sys/vm/drop_caches`, root only; where that is
not permitted the cold rounds are skipped and the section says so); medians. Results replace the
million section of benchmarks/RESULTS.md.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_hashing import CLI, HERE, WARM, Timing, emit_section, run, synth_tree  # noqa: E402

START, END = "<!-- million:start -->", "<!-- million:end -->"
DROP = "sync; echo 3 > /proc/sys/vm/drop_caches"
HALVES = "xargs -a ../list.00 {tool} > {out}.00 & xargs -a ../list.01 {tool} > {out}.01; wait"
JOBS = (
    (
        "manifest build (xxh3-128 + sha256 + md5)",
        f"{CLI} manifest build . -o ../m.jsonl.zst --rehash",
        "rhash --md5 --sha256, 2 processes",
        HALVES.format(tool="rhash --md5 --sha256", out="/tmp/bench-rh"),
    ),
    (
        "verify (xxh3-128)",
        f"{CLI} verify . --manifest ../m.jsonl.zst",
        "xxhsum -c, 2 processes",
        "xxhsum -c ../xxh.00 > /dev/null & xxhsum -c ../xxh.01 > /dev/null; wait",
    ),
)


def can_drop_caches() -> bool:
    """Whether this process may drop the page cache (root on Linux)."""
    return subprocess.run(["bash", "-c", DROP], capture_output=True).returncode == 0


def rounds(ours: str, anchor: str, root: Path, count: int, cold: bool) -> tuple[list[Timing], list[Timing]]:
    """`count` runs of each command, alternating; the page cache dropped before each when `cold`."""
    mine: list[Timing] = []
    theirs: list[Timing] = []
    for _ in range(count):
        for command, into in ((ours, mine), (anchor, theirs)):
            if cold:
                subprocess.run(["bash", "-c", DROP], check=True)
            into.append(run(command, root))
            print(f"  {'cold' if cold else 'warm'} {into[-1].wall:7.2f} s  {command[:70]}", flush=True)
    return mine, theirs


def _cell(timings: list[Timing], best: bool) -> str:
    walls = sorted(t.wall for t in timings)
    median = statistics.median(walls)
    return f"{walls[0]:.2f} / {median:.2f}" if best else f"{median:.2f} ({walls[0]:.2f}–{walls[-1]:.2f})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work", type=Path, default=HERE / "work")
    parser.add_argument("--posts", type=int, default=620_000)
    parser.add_argument("--warm", type=int, default=3, help="warm rounds")
    parser.add_argument("--cold", type=int, default=3, help="cold rounds")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--results", type=Path, default=HERE / "RESULTS.md")
    args = parser.parse_args()
    name = "tiny"
    if args.quick:
        name, args.posts, args.warm, args.cold = "quick-million", 20_000, 1, 1
    root, files, nbytes = synth_tree(args.work, name, f"--images {args.posts} --tiny --seed 3")
    print(f"{files:,} files, {nbytes / 1e6:,.0f} MB")
    subprocess.run(["bash", "-c", WARM], cwd=root, check=True)
    subprocess.run(["bash", "-c", HALVES.format(tool="xxhsum -H2", out="../xxh")], cwd=root, check=True)
    cold = args.cold > 0 and can_drop_caches()
    flag = " --quick" if args.quick else ""
    lines = [
        START,
        f"## Per-file cost at a million files (`python3 benchmarks/bench_million.py{flag}`, "
        f"{time.strftime('%Y-%m-%d')})\n",
        f"Tree: bench_hashing.py's `--tiny` tree, {files:,} files, {nbytes / 1e6:,.0f} MB. Commands run in its root; "
        f"the anchors on the two halves of its sorted file list (`../list.00`, `../list.01`). Warm: best / median "
        f"of {args.warm}; cold: median (range) of {args.cold}, the page cache dropped before every run"
        + ("" if cold else " (**skipped: dropping the page cache is not permitted here**)")
        + ". Rounds alternate ours and the anchor.\n",
        "| job | ours warm | anchor warm | warm ratio | ours cold | anchor cold | cold: ours faster by | peak RSS MB |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    commands = []
    for label, ours, anchor_label, anchor in JOBS:
        mine, theirs = rounds(ours, anchor, root, args.warm, cold=False)
        cold_mine, cold_theirs = rounds(ours, anchor, root, args.cold, cold=True) if cold else ([], [])
        subprocess.run(["bash", "-c", WARM], cwd=root, check=True)
        ratio = min(t.wall for t in mine) / min(t.wall for t in theirs)
        faster = (
            f"{statistics.median(t.wall for t in cold_theirs) / statistics.median(t.wall for t in cold_mine):.2f}×"
            if cold
            else "–"
        )
        rss = max(t.rss_mb for t in mine + cold_mine)
        lines.append(
            f"| {label} vs {anchor_label} | {_cell(mine, True)} | {_cell(theirs, True)} | {ratio:.2f}× | "
            f"{_cell(cold_mine, False) if cold else '–'} | {_cell(cold_theirs, False) if cold else '–'} | {faster} | "
            f"{rss:.0f} |"
        )
        commands += [f"    {ours}", f"    {anchor}"]
    lines += ["", "Commands (in the tree's root):", "", *commands, "", END]
    emit_section(args.results, START, END, lines[1:-1])


if __name__ == "__main__":
    main()
