"""A full cut, then next year's cut with ~5% new files: time and bytes read of each, step by step.

Next year comes in two forms, each cut from the same state after the full cut: synth's next year (new
files, and takedowns and replaced files, as Danbooru's years have), and the same new files alone (no
takedown, no replacement: the contract's "5% new files", where v1 piece hashes stay reusable).

    python3 benchmarks/bench_cut.py             # 20,000 posts over 20 synthesized years (5% a year)
    python3 benchmarks/bench_cut.py --quick     # 2,000 posts
    python3 benchmarks/bench_cut.py --posts 400000 --tiny   # ~600k files of a few bytes: the per-file costs
    python3 benchmarks/bench_cut.py --mean-size 900000 --drawn   # Danbooru's file size and pixel size

`synth --years 2000-2019` spreads the posts evenly over 20 years, so the 2019 snapshot has ~5.3% more
files than 2018's. The maintainer's tree is one folder: it starts as the 2018 snapshot without its 512px
subset (the full cut derives it) and without 2018's export (the cut's metadata step places it), and
before the 2019 cut it is brought to the 2019 snapshot's originals with `rsync -a --delete --exclude
/512px --exclude /metadata` (new originals arrive, unchanged files keep their mtime, takedowns go), as a
maintainer's sync would; the year's export is the release file's `metadata.export` (the snapshot's own
top-level chunks), which the metadata step validates and places, moving last year's into metadata/2018/.
Each cut runs as its own process after the page cache is dropped (skipped where not permitted, and said
so); bytes read are the process tree's `rchar` (bytes returned by read calls, page cache or not) and
`read_bytes` (bytes the disk delivered), both from /proc/PID/io, which includes reaped children. rchar
does not count reads through io_uring, which the read loop uses for files under 16 KiB, so the cuts run
with BOORU_RELEASE_IO_URING=0: every byte is counted, as in the rounds before the ring.
Results replace the cut section of benchmarks/RESULTS.md.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_hashing import CLI, HERE, emit_section  # noqa: E402

START, END = "<!-- cut:start -->", "<!-- cut:end -->"
TINY_START, TINY_END = "<!-- cut-tiny:start -->", "<!-- cut-tiny:end -->"  # --tiny has its own section
SIZED_START, SIZED_END = "<!-- cut-sized:start -->", "<!-- cut-sized:end -->"  # and another --mean-size
DRAWN_START, DRAWN_END = "<!-- cut-drawn:start -->", "<!-- cut-drawn:end -->"  # and another --drawn
DEFAULT_MEAN_SIZE = 200_000
DROP = "sync; echo 3 > /proc/sys/vm/drop_caches"
ALLOW = [
    "type_mismatch", "truncated", "empty", "wrong_bucket", "file_without_metadata", "metadata_without_file",
    "metadata_duplicate_tag",
]  # fmt: skip
# the cut runs in a child of this shell; the shell reaps it, so its own /proc io holds the child's reads
# new files alone: this year's metadata as published, originals only added (no takedown, no replacement)
# the full cut's tree: the snapshot without 512px/ and without this year's export (the archive of earlier
# years, metadata/<year>/, stays); a next year's: its originals (the metadata step places the export)
FIRST = "rsync -a --delete --exclude /512px --include '/metadata/*/' --exclude '/metadata/*' {source}/ {tree}/"
NEXT = "rsync -a --delete --exclude /512px --exclude /metadata {source}/ {tree}/"
NEW_ONLY = "rsync -a --ignore-existing {source}/original/ {tree}/original/"
# `times`: the shell's, then its reaped children's user and system CPU time
MEASURED = (
    "BOORU_RELEASE_IO_URING=0 "
    '{cli} cut {file} --json > {report}; status=$?; grep -E "^(rchar|read_bytes)" /proc/$$/io; '
    "times > {report}.times; exit $status"  # not in a pipe: a subshell's `times` knows none of these children
)


def release_file(work: Path, year: int, snapshot: Path) -> Path:
    lines = [
        f'name = "danbooru{year}"', f"year = {year}", 'root = "tree"', f'output = "out/danbooru{year}"',
        f"scan_allow = {json.dumps(ALLOW)}", "[torrents]", "creation_date = 1577836800",
        'web_seeds = ["https://mirror.example.org/"]', "[rsync]", f'module = "danbooru{year}"',
        "[metadata]", f"export = {json.dumps(str(snapshot / 'metadata'))}",
    ]  # fmt: skip
    if year > 2018:
        lines[5:5] = [
            "[previous]", f'name = "danbooru{year - 1}"',
            f'manifest = "out/danbooru{year - 1}/danbooru{year - 1}.manifest.jsonl.zst"',
            f'torrents = "out/danbooru{year - 1}/torrents"',
        ]  # fmt: skip
    path = work / f"danbooru{year}.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


def measured_cut(work: Path, year: int, snapshot: Path, cold: bool) -> dict[str, Any]:
    """Run the cut of `year` (its export from `snapshot`) in its own process; wall time, rchar, read_bytes
    and the cut's report."""
    if cold:
        subprocess.run(["bash", "-c", DROP], check=True)
    report = work / f"cut-{year}.json"
    command = MEASURED.format(cli=CLI, file=release_file(work, year, snapshot), report=report)
    started = time.perf_counter()
    done = subprocess.run(["bash", "-c", command], cwd=work, capture_output=True, text=True)
    wall = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"cut {year} failed ({done.returncode}):\n{done.stderr[-3000:]}")
    io = dict(line.split(": ") for line in done.stdout.split("\n") if line)
    cpu = sum(_seconds(t) for t in Path(f"{report}.times").read_text().splitlines()[1].split())
    return {"wall": wall, "rchar": int(io["rchar"]), "read_bytes": int(io["read_bytes"]), "cpu": cpu,
            "report": json.loads(report.read_text())}  # fmt: skip


def _seconds(text: str) -> float:
    """bash `times`' "1m2.345s" in seconds."""
    minutes, _, rest = text.partition("m")
    return int(minutes) * 60 + float(rest.rstrip("s"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work", type=Path, default=HERE / "work")
    parser.add_argument("--posts", type=int, default=20_000)
    parser.add_argument("--mean-size", type=int, default=DEFAULT_MEAN_SIZE)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--tiny", action="store_true", help="files of a few bytes (synth --tiny)")
    parser.add_argument("--drawn", action="store_true", help="images of a few megapixels (synth --drawn)")
    parser.add_argument("--results", type=Path, default=HERE / "RESULTS.md")
    args = parser.parse_args()
    if args.quick:
        args.posts = 2_000
    sized = not args.tiny and args.mean_size != DEFAULT_MEAN_SIZE  # its own trees and section
    name = f"{args.posts}-tiny" if args.tiny else f"{args.posts}-{args.mean_size}" if sized else f"{args.posts}"
    name += "-drawn" if args.drawn else ""
    data = args.work / f"cut-synth-{name}"
    if not (data / "2019").is_dir():
        shutil.rmtree(data, ignore_errors=True)
        subprocess.run(
            f"{CLI} synth {data} --years 2000-2019 {_synth_size(args)} --seed 5",
            shell=True, check=True, stdout=subprocess.DEVNULL,
        )  # fmt: skip
    work = args.work / f"cut-{name}"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    tree = work / "tree"
    subprocess.run(FIRST.format(source=data / "2018", tree=tree), shell=True, check=True)
    cold = subprocess.run(["bash", "-c", DROP], capture_output=True).returncode == 0
    first = measured_cut(work, 2018, data / "2018", cold)
    # the same state twice (hard links: rsync and cut replace files by rename, never in place)
    alone = work.with_name(work.name + "-new-only")
    shutil.rmtree(alone, ignore_errors=True)
    subprocess.run(["cp", "-al", str(work), str(alone)], check=True)
    subprocess.run(NEXT.format(source=data / "2019", tree=tree), shell=True, check=True)
    second = measured_cut(work, 2019, data / "2019", cold)
    subprocess.run(NEW_ONLY.format(source=data / "2019", tree=alone / "tree"), shell=True, check=True)
    third = measured_cut(alone, 2019, data / "2019", cold)
    start, end = (TINY_START, TINY_END) if args.tiny else (SIZED_START, SIZED_END) if sized else (START, END)
    start, end = (DRAWN_START, DRAWN_END) if args.drawn else (start, end)
    lines = _lines(args, first, {"synth": second, "new only": third}, cold, _megapixels(data / "2018" / "metadata"))
    emit_section(args.results, start, end, lines)


def _megapixels(metadata: Path) -> float:
    """The mean size in pixels of a snapshot's jpg, png and gif posts, from its export (chunks, not subfolders)."""
    pixels = []
    for chunk in (p for p in metadata.iterdir() if p.is_file()):
        for line in chunk.read_bytes().splitlines():
            post = json.loads(line)
            if post.get("file_ext") in ("jpg", "jpeg", "png", "gif"):
                pixels.append(int(post["image_width"]) * int(post["image_height"]))
    return sum(pixels) / max(1, len(pixels)) / 1e6


def _synth_size(args: argparse.Namespace) -> str:
    size = "--tiny" if args.tiny else f"--mean-size {args.mean_size}"
    return f"--images {args.posts} {size}" + (" --drawn" if args.drawn else "")


def _steps(run: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {s["name"]: s for s in run["report"]["steps"]}


def _step_rows(first: dict[str, Any], nexts: dict[str, dict[str, Any]]) -> list[str]:
    one = _steps(first)
    two = {label: _steps(run) for label, run in nexts.items()}
    head = "| step | full cut (2018) | " + " | ".join(f"next year, {label} | ratio" for label in nexts) + " |"
    rows = [head, "|---|---:|" + "---:|---:|" * len(nexts)]
    for name, step in one.items():
        full = float(step["seconds"])
        if not full:
            rows.append(f"| {name} | – |" + " – | |" * len(nexts))
            continue
        cells = [
            f"{two[label][name]['seconds']:.2f} s, {_mb(two[label][name])} | {two[label][name]['seconds'] / full:.1%}"
            for label in nexts
        ]
        rows.append(f"| {name} | {full:.2f} s, {_mb(step)} | " + " | ".join(cells) + " |")
    return rows


def _mb(step: dict[str, Any]) -> str:
    return f"{step.get('bytes_read', 0) / 1e6:,.0f} MB"


def _run_row(label: str, run: dict[str, Any]) -> str:
    read = _steps(run)["read"]["summary"]
    return (
        f"| {label} | {run['wall']:.1f} | {run['cpu']:.1f} | {run['rchar'] / 1e6:,.0f} MB | "
        f"{run['read_bytes'] / 1e6:,.0f} MB | "
        f"{read['hashed_bytes'] / 1e6:,.0f} MB | {read.get('piece_bytes_hashed', 0) / 1e6:,.0f} MB |"
    )


def _lines(
    args: argparse.Namespace, first: dict[str, Any], nexts: dict[str, dict[str, Any]], cold: bool, megapixels: float
) -> list[str]:
    read = [_steps(first)["read"]["summary"], _steps(nexts["synth"])["read"]["summary"]]
    ratios = [
        f"- next year, {label}: **{run['wall'] / first['wall']:.1%} of the full cut's time**, "
        f"**{run['rchar'] / first['rchar']:.1%} of its bytes read** "
        f"({run['read_bytes'] / first['read_bytes']:.1%} of its bytes from disk, {run['cpu'] / first['cpu']:.1%} of "
        "its CPU time); target ≤ 10% each."
        for label, run in nexts.items()
    ]
    return [
        f"## The yearly cut, full and incremental{', tiny files' if args.tiny else ''} (`python3 "
        f"benchmarks/bench_cut.py{' --quick' if args.quick else ''}"
        f"{f' --posts {args.posts} --tiny' if args.tiny else ''}"
        f"{f' --mean-size {args.mean_size}' if args.mean_size != DEFAULT_MEAN_SIZE and not args.tiny else ''}"
        f"{' --drawn' if args.drawn else ''}`, "
        f"{time.strftime('%Y-%m-%d')})\n",
        f"`synth --years 2000-2019 {_synth_size(args)}`: the 2018 tree has "
        f"{read[0]['files']:,} files ({read[0]['bytes'] / 1e9:.2f} GB), 2019 {read[1]['files']:,} "
        f"({read[1]['bytes'] / 1e9:.2f} GB, {read[1]['files'] / read[0]['files'] - 1:.1%} more files); its jpg, "
        f"png and gif posts average {megapixels:.2f} megapixels. Every step of "
        f"`cut` (derive included); page cache "
        f"{'dropped before each cut' if cold else 'warm (dropping it is not permitted here)'}. Next year twice, "
        "from the same state: synth's 2019 (new files, takedowns, replaced files) and its new files alone.\n",
        "| cut | wall s | CPU s (user + system) | read calls (rchar) | from disk (read_bytes) "
        "| hashed in the read step | pieces hashed |",
        "|---|---:|---:|---:|---:|---:|---:|",
        _run_row("full (2018)", first),
        *(_run_row(f"next year (2019), {label}", run) for label, run in nexts.items()),
        "",
        *ratios,
        "",
        *_step_rows(first, nexts),
        "",
        "Commands (in the work folder; `tree` is the maintainer's release root; the new-only year runs in a",
        "hard-linked copy of the work folder taken after the full cut):",
        "",
        "    " + FIRST.format(source="SYNTH/2018", tree="tree"),
        f"    {DROP}; {CLI} cut danbooru2018.toml --json   # [metadata] export = SYNTH/2018/metadata",
        "    " + NEXT.format(source="SYNTH/2019", tree="tree") + "   # synth's next year",
        "    " + NEW_ONLY.format(source="SYNTH/2019", tree="tree") + "   # or: new files alone",
        f"    {DROP}; {CLI} cut danbooru2019.toml --json",
        "",
    ]


if __name__ == "__main__":
    main()
