"""Manifest build and verify beside xxhsum, b3sum, sha256sum, rhash and hashdeep, in one run.

    python3 benchmarks/bench_hashing.py            # trees of ~100k small and ~2k large files, 1M tiny
    python3 benchmarks/bench_hashing.py --quick    # a small smoke run

Builds the trees with `booru-release synth`, warms the page cache, times every command with
GNU time (wall, CPU, peak RSS; best of --repeat runs) and writes benchmarks/RESULTS.md.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import platform
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import xxhash

HERE = Path(__file__).resolve().parent
CLI = f"{sys.executable} -m release"


@dataclass
class Timing:
    name: str
    command: str
    wall: float
    cpu: float
    rss_mb: float


def run(command: str, cwd: Path) -> Timing:
    """Run `command` under GNU time; return wall seconds, CPU seconds and peak RSS."""
    fmt = "%e %U %S %M"
    proc = subprocess.run(
        ["/usr/bin/time", "-f", fmt, "-o", "/tmp/bench-time.txt", "bash", "-c", command],
        cwd=cwd,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    if proc.returncode != 0:
        raise SystemExit(f"failed ({proc.returncode}): {command}\n{proc.stderr[-2000:]}")
    wall, user, system, rss = Path("/tmp/bench-time.txt").read_text().split()[-4:]
    return Timing("", command, float(wall), float(user) + float(system), int(rss) / 1024)


def best(name: str, command: str, cwd: Path, repeat: int, before: str | None = None) -> Timing:
    results = []
    for _ in range(repeat):
        if before:
            subprocess.run(["bash", "-c", before], cwd=cwd, check=True)
        results.append(run(command, cwd))
    top = min(results, key=lambda t: t.wall)
    top.name = name
    print(f"  {name:34} {top.wall:8.2f} s  cpu {top.cpu:8.2f} s  rss {top.rss_mb:7.1f} MB", flush=True)
    return top


def hash_speeds(size: int = 256 << 20) -> dict[str, float]:
    """Single-core MB/s of each manifest hash over an in-memory buffer (the per-byte cost)."""
    data = os.urandom(size)
    speeds = {}
    for name, factory in (("xxh3_128", xxhash.xxh3_128), ("sha256", hashlib.sha256), ("md5", hashlib.md5)):
        start = time.perf_counter()
        factory(data).digest()
        speeds[name] = size / 1e6 / (time.perf_counter() - start)
    return speeds


def synth_tree(work: Path, name: str, args: str, year: int = 2019) -> tuple[Path, int, int]:
    base = work / name
    if not (base / str(year)).is_dir():
        shutil.rmtree(base, ignore_errors=True)
        run(f"{CLI} synth {base} --years {year} {args}", work)
    root = base / str(year)
    files = nbytes = 0
    for folder, _, names in os.walk(root):
        for n in names:
            files += 1
            nbytes += os.lstat(os.path.join(folder, n)).st_size
    subprocess.run(
        "find . -type f | sed 's|^\\./||' | sort > ../list.txt && split -n l/2 -d ../list.txt ../list.",
        shell=True,
        cwd=root,
        check=True,
    )
    return root, files, nbytes


def write_section(results: Path, start: str, end: str, body: str) -> None:
    """Put `body` (which begins with `start` and ends with `end` and a newline) in place of the text
    between those markers in RESULTS.md, or append it; the other sections stay as they are."""
    text = results.read_text() if results.exists() else ""
    if start in text and end in text:
        text = text[: text.index(start)] + body + text[text.index(end) + len(end) + 1 :]
    else:
        text = text.rstrip("\n") + "\n\n" + body
    results.write_text(text)


def emit_section(results: Path, start: str, end: str, lines: list[str]) -> None:
    """Print a section (its lines, between `start` and `end`) and put it in place in RESULTS.md."""
    body = "\n".join([start, *lines, end]) + "\n"
    print(body)
    write_section(results, start, end, body)


WARM = "find . -type f -print0 | xargs -0 cat > /dev/null"


def tree_benchmarks(root: Path, repeat: int) -> list[Timing]:
    subprocess.run(["bash", "-c", WARM], cwd=root, check=True)
    two = "xargs -a ../list.00 {tool} > ../{out}.00 & xargs -a ../list.01 {tool} > ../{out}.01; wait"
    check = "{tool} ../{out}.00 > /dev/null & {tool} ../{out}.01 > /dev/null; wait"
    cmds = [
        ("ours: manifest build (xxh3+sha256+md5)", f"{CLI} manifest build . -o ../m.jsonl.zst --rehash"),
        ("xxhsum -H2, 2 processes", two.format(tool="xxhsum -H2", out="xxh")),
        ("b3sum, 2 processes", two.format(tool="b3sum --num-threads 1", out="b3")),
        ("sha256sum, 2 processes", two.format(tool="sha256sum", out="sha")),
        ("rhash --md5 --sha256, 2 processes", two.format(tool="rhash --md5 --sha256", out="rh")),
        ("hashdeep -c md5,sha256 (2 threads)", "hashdeep -j 2 -c md5,sha256 -l -r . > ../hd.txt"),
        ("ours: verify (xxh3-128)", f"{CLI} verify . --manifest ../m.jsonl.zst"),
        ("ours: verify --strong (sha256)", f"{CLI} verify . --manifest ../m.jsonl.zst --strong"),
        ("xxhsum -c, 2 processes", check.format(tool="xxhsum -c", out="xxh")),
        ("b3sum --check, 2 processes", check.format(tool="b3sum --num-threads 1 --check", out="b3")),
        ("sha256sum -c, 2 processes", check.format(tool="sha256sum -c", out="sha")),
        # rhash -c is left out: RHash 1.4.3 spent over 3.5 CPU minutes on one 79k-line half of the
        # small tree's list (about 0.75 ms a line on short lists, worse on long ones).
        ("hashdeep audit (2 threads)", "hashdeep -j 2 -c md5,sha256 -l -r -a -k ../hd.txt . > /dev/null"),
    ]
    return [best(name, cmd, root, repeat) for name, cmd in cmds]


def read_floor(root: Path, algorithms: tuple[str, ...], repeat: int) -> float:
    """Seconds for the native read loop alone (2 threads, batches of 256 files) over the whole tree:
    what a manifest build or verify costs with no start-up, walk, manifest or output."""
    from concurrent.futures import ThreadPoolExecutor

    from release.hashing import read_files

    paths = (root.parent / "list.txt").read_text().splitlines()
    sizes = [os.lstat(root / p).st_size for p in paths]
    encoded = [p.encode() for p in paths]
    spans = range(0, len(paths), 256)

    def one(i: int) -> int:
        return read_files(str(root), encoded[i : i + 256], sizes[i : i + 256], algorithms=algorithms).nbytes

    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        with ThreadPoolExecutor(2) as pool:
            assert sum(pool.map(one, spans)) == sum(sizes)
        times.append(time.perf_counter() - start)
    return min(times)


def table(timings: list[Timing], files: int, nbytes: int) -> str:
    rows = ["| job | wall s | files/s | MB/s | CPU s | peak RSS MB |", "|---|---:|---:|---:|---:|---:|"]
    for t in timings:
        rows.append(
            f"| {t.name} | {t.wall:.2f} | {files / t.wall:,.0f} | {nbytes / 1e6 / t.wall:,.0f} | "
            f"{t.cpu:.2f} | {t.rss_mb:.0f} |"
        )
    return "\n".join(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work", type=Path, default=HERE / "work")
    parser.add_argument("--small", type=int, default=100_000, help="posts in the small-file tree")
    parser.add_argument("--large", type=int, default=2_000, help="posts in the ~1 MB tree")
    parser.add_argument("--tiny", type=int, default=620_000, help="posts in the --tiny tree (~1M files)")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="small sizes, one repeat")
    parser.add_argument("--results", type=Path, default=HERE / "RESULTS.md")
    args = parser.parse_args()
    if args.quick:
        args.small, args.large, args.tiny, args.repeat = 3000, 60, 20_000, 1
    args.work.mkdir(parents=True, exist_ok=True)
    speeds = hash_speeds()
    limit = 2 / sum(1 / s for s in speeds.values())
    print(f"hash speeds (1 core, MB/s): {speeds}; limit on 2 cores {limit:.0f} MB/s")
    startup = best("start-up: booru-release --help", f"{CLI} --help", HERE, max(3, args.repeat)).wall
    sections = []
    figures = {}
    for label, name, synth_args in (
        ("small files (~40 KB originals)", "small", f"--images {args.small} --mean-size 40000 --seed 1"),
        ("large files (~1 MB originals)", "large", f"--images {args.large} --mean-size 1000000 --seed 2"),
    ):
        root, files, nbytes = synth_tree(args.work, name, synth_args)
        print(f"{label}: {files:,} files, {nbytes / 1e9:.2f} GB")
        timings = tree_benchmarks(root, args.repeat)
        by = {t.name: t for t in timings}
        build = by["ours: manifest build (xxh3+sha256+md5)"]
        verify = by["ours: verify (xxh3-128)"]
        xxh = by["xxhsum -c, 2 processes"]
        figures[name] = (nbytes / 1e6 / max(build.wall, 0.01) / limit, verify.wall / max(xxh.wall, 0.01))
        floor_all = read_floor(root, ("xxh3_128", "sha256", "md5"), args.repeat)
        floor_xxh = read_floor(root, ("xxh3_128",), args.repeat)
        print(f"  native read loop alone: all hashes {floor_all:.2f} s, xxh3 {floor_xxh:.2f} s")
        steady = (nbytes / 1e6 / max(build.wall - startup, 0.01) / limit, (verify.wall - startup) / max(xxh.wall, 0.01))
        sections.append(
            f"### {label}: {files:,} files, {nbytes / 1e9:.2f} GB "
            f"(`booru-release synth DIR --years 2019 {synth_args}`)\n\n{table(timings, files, nbytes)}\n\n"
            f"- manifest build: {nbytes / 1e6 / build.wall:,.0f} MB/s = **{figures[name][0]:.0%} of the hash limit** "
            f"({limit:,.0f} MB/s; target ≥ 85%); {steady[0]:.0%} without the {startup:.2f} s start-up\n"
            f"- verify: **{figures[name][1]:.2f}× the time of `xxhsum -c` as two processes** (target ≤ 1.2×); "
            f"{steady[1]:.2f}× without the start-up\n"
            f"- the native read loop alone (2 threads, timed in-process: no start-up, walk, manifest or output): "
            f"all three hashes {floor_all:.2f} s = {nbytes / 1e6 / floor_all / limit:.0%} of the hash limit; "
            f"xxh3-128 only {floor_xxh:.2f} s = {floor_xxh / max(xxh.wall, 0.01):.2f}× `xxhsum -c`\n"
        )
    tiny_root, tiny_files, tiny_bytes = synth_tree(args.work, "tiny", f"--images {args.tiny} --tiny --seed 3")
    print(f"tiny: {tiny_files:,} files")
    subprocess.run(["bash", "-c", WARM], cwd=tiny_root, check=True)
    tiny = [
        best("ours: manifest build", f"{CLI} manifest build . -o ../m.jsonl.zst --rehash", tiny_root, args.repeat),
        best("ours: verify --fast", f"{CLI} verify . --manifest ../m.jsonl.zst --fast", tiny_root, args.repeat),
        best("ours: verify (xxh3-128)", f"{CLI} verify . --manifest ../m.jsonl.zst", tiny_root, args.repeat),
    ]
    sections.append(
        f"### scale: {tiny_files:,} tiny files (`--images {args.tiny} --tiny`)\n\n"
        f"{table(tiny, tiny_files, tiny_bytes)}\n"
    )
    write_results(args, speeds, limit, sections)


def write_results(args: argparse.Namespace, speeds: dict[str, float], limit: float, sections: list[str]) -> None:
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor(),
    )
    speed_text = ", ".join(f"{k} {v:,.0f} MB/s" for k, v in speeds.items())
    text = f"""<!-- hashing:start -->
Produced by `python3 benchmarks/bench_hashing.py{" --quick" if args.quick else ""}` on {time.strftime("%Y-%m-%d")}
({cpu}, {os.cpu_count()} cores, Python {platform.python_version()}); warm page cache, best of {args.repeat} run(s).
Each anchor command is listed in full below its table (run in the tree's root; the file lists are
`find . -type f | sort` split in two halves). Peak RSS is the largest single process.

Per-byte cost measured in the same run (one core, in memory): {speed_text};
the **hash limit** for sha256 + md5 + xxh3-128 on 2 cores is 2 / Σ(1/speed) = **{limit:,.0f} MB/s**.

{chr(10).join(sections)}
{NOTES}
<details><summary>Exact commands</summary>

```
{chr(10).join(sorted({line for line in COMMANDS_SEEN}))}
```
</details>
<!-- hashing:end -->
"""
    write_section(args.results, "<!-- hashing:start -->", "<!-- hashing:end -->", text)
    print(f"wrote {args.results}")


NOTES = """## Reading these figures

- Run-to-run noise on this shared 2-vCPU machine is large: the anchors move by up to 30 % between runs
  (sha256sum on the small tree: 9.0 s in one run, 11.6 s in another; the one-core xxh3 speed that enters
  the hash limit read 22,096 MB/s in one run and 9,739 MB/s in the next), so compare rows of the same run.
- **The read loop is native** (`release/_native.c`, threads, GIL released). Alone, it reaches the
  targets: with all three hashes it runs at ~86–89 % (small files) and ~92–96 % (large files) of the hash
  limit, and with xxh3-128 only it is *faster* than `xxhsum -c` as two processes (~0.88× on small files).
  Reading through the page cache is part of that time (a copy of every byte; mmap was tried and is slower for
  ~40 KB files: mapping and unmapping cost more than the copy, and much more with two threads).
- **verify reads the manifest as columns** (`release/_records.c` tokenises canonical lines, pydantic
  validates any other line; order, layout and tallies are numpy over whole columns), so its per-record
  Python is gone: on the small tree 2.96× → ~1.8× `xxhsum -c`, on 980k tiny files 12.7 s → 5.0 s
  (`--fast` 10.5 s → 3.5 s). What remains on the small tree, timed in-process: the start-up (~0.3 s:
  interpreter, typer, rich, pydantic, numpy), the first pass over the whole manifest that must end before
  the tree is touched (0.14 s: zstd 0.07 s, C check 0.07 s), counting directory entries (0.06 s, C), and a
  checking phase of ~1.0 s against the loop's 0.78 s alone (the main thread decompresses and tokenises
  again and tallies while both cores read). The floor is the kernel: `xxhsum -c` spends 1.58 CPU s, nearly
  all of it system time copying 4.55 GB out of the page cache and opening 158k files, and our loop spends
  the same. The 1.2× target allows 2 cores × 1.07 s = 2.1 CPU s, which leaves ~0.5 CPU s for everything
  that is not reading — less than the start-up and the manifest's first pass take. On ~1 MB files verify
  takes 0.18 s after its start-up, less than `xxhsum -c` (0.20 s); the 2.65× there is the start-up alone.
- **manifest build** is unchanged by this: on the small tree the loop alone takes 5.05 s of the 5.27 s that
  85 % of this run's limit allows, so start-up (0.35 s) and the walk and sort before the first byte can be
  hashed in manifest order (~0.7 s, Python in forked processes) put it past the target whatever the rest
  costs. On ~1 MB files it reaches 90 % of the limit after its start-up.
- What the one-read design buys: one pass giving xxh3-128 + sha256 + md5 beats `sha256sum` alone and
  `rhash --md5 --sha256` on both trees, and takes under half the time of `hashdeep -c md5,sha256`.
- rhash -c is not listed: RHash 1.4.3 spent over 3.5 CPU minutes on one 79k-line half of the small tree's
  list.
"""

COMMANDS_SEEN: set[str] = set()
_run = run


def run(command: str, cwd: Path) -> Timing:  # type: ignore[no-redef]  # records every command for RESULTS.md
    COMMANDS_SEEN.add(command)
    return _run(command, cwd)


if __name__ == "__main__":
    main()
