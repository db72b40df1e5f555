"""Scale: the torrent plan of a Danbooru2021-sized manifest, and a real build + lint of a million tiny files.

    python3 benchmarks/bench_scale.py            # 5,000,000-entry manifest; the ~1M-file --tiny tree
    python3 benchmarks/bench_scale.py --quick    # 500,000 entries; a 50,000-post --tiny tree

1. A synthetic manifest of 5,000,000 originals with log-normal sizes (mean ≈ 0.9 MB, ≈ 4.5 TB, IDs drawn
   from 1…5,020,995 like Danbooru2021), then `torrents plan MANIFEST --json`: every shard must fit the
   default (libtorrent) profile. The hashes in it are placeholders: the plan reads paths and sizes only.
2. `torrents build` and `torrents lint` on the `--tiny` tree of bench_hashing.py (≈ 980k files).

Each command runs under /usr/bin/time -v: wall time, CPU and peak RSS. Results replace the scale section
of benchmarks/RESULTS.md.
"""

from __future__ import annotations

import argparse
import json
import math
import shlex
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_hashing import CLI, HERE, synth_tree, write_section  # noqa: E402

sys.path.insert(0, str(HERE.parent))
from release.manifest.io import ManifestWriter, record_line  # noqa: E402
from release.models import ManifestHeader, SubsetTotals  # noqa: E402

START, END = "<!-- scale:start -->", "<!-- scale:end -->"
FINAL_ID = 5_020_995
MEAN = 0.9e6
EXTS = np.array(["jpg", "png", "gif", "webm", "mp4", "zip"])
EXT_P = [0.86, 0.10, 0.02, 0.01, 0.008, 0.002]


def synthetic_manifest(path: Path, entries: int) -> int:
    """Write an `entries`-record manifest of originals; returns its byte total."""
    rng = np.random.default_rng(2021)
    ids = np.sort(rng.choice(FINAL_ID, entries, replace=False) + 1)
    sigma = 1.0
    sizes = rng.lognormal(math.log(MEAN) - sigma**2 / 2, sigma, entries).astype(np.int64) + 1
    exts = rng.choice(EXTS, entries, p=EXT_P)
    total = int(sizes.sum())
    header = ManifestHeader(
        release="synthetic2021",
        algorithms=("xxh3_128", "sha256", "md5"),
        files=entries,
        bytes=total,
        subsets={"original": SubsetTotals(files=entries, bytes=total)},
    )
    x, s, m = "0" * 32, "0" * 64, "0" * 32
    with ManifestWriter(path, header) as out:
        for start in range(0, entries, 100_000):
            chunk = slice(start, start + 100_000)
            out.write_line(
                b"".join(
                    record_line(f"original/{i % 1000:04d}/{i}.{e}", int(n), 1_600_000_000_000_000_000, x, s, m)
                    for i, n, e in zip(ids[chunk].tolist(), sizes[chunk].tolist(), exts[chunk].tolist(), strict=True)
                )
            )
    return total


def timed(command: str) -> tuple[float, float, float, str]:
    """(wall s, CPU s, peak RSS MB, stdout) of a shell command under /usr/bin/time -v."""
    full = f"/usr/bin/time -v -o /tmp/bench-scale.time {command}"
    start = time.perf_counter()
    proc = subprocess.run(full, shell=True, capture_output=True, text=True)
    wall = time.perf_counter() - start
    if proc.returncode not in (0, 1):
        sys.exit(f"failed ({proc.returncode}): {command}\n{proc.stderr[-2000:]}")
    fields = dict(
        line.strip().split(": ", 1) for line in Path("/tmp/bench-scale.time").read_text().splitlines() if ": " in line
    )
    cpu = float(fields["User time (seconds)"]) + float(fields["System time (seconds)"])
    rss = int(fields["Maximum resident set size (kbytes)"]) / 1024
    print(f"  {wall:8.2f} s  cpu {cpu:8.2f} s  rss {rss:7.1f} MB  {command}", flush=True)
    return wall, cpu, rss, proc.stdout


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work", type=Path, default=HERE / "work")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--results", type=Path, default=HERE / "RESULTS.md")
    args = parser.parse_args()
    entries = 500_000 if args.quick else 5_000_000
    tiny = ("quick-tiny", "--images 50000 --tiny") if args.quick else ("tiny", "--images 620000 --tiny")
    out = Path("/tmp/bench-scale")
    subprocess.run(["rm", "-rf", str(out)], check=True)
    out.mkdir(parents=True)
    manifest = out / "synthetic.jsonl.zst"
    t0 = time.perf_counter()
    total = synthetic_manifest(manifest, entries)
    print(f"manifest: {entries:,} entries, {total / 1e12:.2f} TB, written in {time.perf_counter() - t0:.0f} s")
    plan_cmd = f"{CLI} torrents plan {manifest} --release synthetic2021 --json"
    wall, cpu, rss, stdout = timed(plan_cmd)
    plan = json.loads(stdout)
    shards = [s for s in plan["shards"] if s["subset"] != "metadata"]
    profiles = sorted(plan["shards"][0]["profiles"])  # the default client profiles the plan checks against
    fits = {p: all(s["profiles"][p]["fits"] for s in plan["shards"]) for p in profiles}
    widest = max(shards, key=lambda s: s["tokens"])
    verdicts = ", ".join(f"{p} **{'yes' if ok else 'NO'}**" for p, ok in fits.items())
    rows = [("`torrents plan` (5M-entry manifest)" if not args.quick else "`torrents plan`", plan_cmd, wall, cpu, rss)]

    root, files, nbytes = synth_tree(args.work, *tiny)
    build_cmd = f"{CLI} torrents build {root} --release tiny -o {out}/tiny --json"
    rows.append(("`torrents build` (tiny tree)", build_cmd, *timed(build_cmd)[:3]))
    torrents = sorted(str(p) for p in (out / "tiny").glob("*.torrent"))
    lint_cmd = f"{CLI} torrents lint {' '.join(shlex.quote(t) for t in torrents)} --json"
    lint = timed(lint_cmd)
    rows.append(("`torrents lint` (its shards)", f"{CLI} torrents lint {out}/tiny/*.torrent --json", *lint[:3]))
    linted = json.loads(lint[3])["files"]
    lint_ok = len(linted) == len(torrents) and not any(r["failed"] for r in linted)

    lines = [
        START,
        f"## Scale (`python3 benchmarks/bench_scale.py{' --quick' if args.quick else ''}`, "
        f"{time.strftime('%Y-%m-%d')})\n",
        f"Synthetic manifest: {entries:,} originals, {total / 1e12:.2f} TB (mean {total / entries / 1e6:.2f} MB). "
        f"Plan: {len(shards)} image shards of {plan['shard_counts']}; every shard fits each default client "
        f"profile: {verdicts}. Widest shard: {widest['files']:,} files, {widest['tokens']:,} tokens, "
        f"{widest['torrent_bytes']:,} .torrent bytes, {widest['pieces']:,} pieces of {widest['piece_length']:,} B.\n",
        f"Tiny tree: {files:,} files, {nbytes / 1e6:,.0f} MB; {len(torrents)} shards written, lint clean: "
        f"**{'yes' if lint_ok else 'NO'}**.\n",
        "| step | wall s | CPU s | peak RSS MB |",
        "|---|---:|---:|---:|",
    ]
    lines += [f"| {name} | {w:.1f} | {c:.1f} | {r:.0f} |" for name, _, w, c, r in rows]
    lines += ["", "Commands:", ""] + [f"    {cmd}" for _, cmd, *_ in rows] + ["", END]
    body = "\n".join(lines) + "\n"
    print(body)
    write_section(args.results, START, END, body)
    print(f"wrote {args.results}")


if __name__ == "__main__":
    main()
