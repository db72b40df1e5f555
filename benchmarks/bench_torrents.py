"""Torrent creation benchmarks: ours against mktorrent, transmission-create, torf, py3createtorrent and
libtorrent's create_torrent on the benchmark trees; and the single read pass (manifest + torrents)
against mktorrent followed by hashdeep (md5 + sha256).

    python3 benchmarks/bench_torrents.py            # the trees of bench_hashing.py (built if absent)
    python3 benchmarks/bench_torrents.py --quick    # small trees, one repeat

Every tool makes one 4 MiB-piece v1 torrent of the whole tree (ours: one shard per subset, which
hashes the same bytes). Results replace the torrents section of benchmarks/RESULTS.md.
"""

from __future__ import annotations

import argparse
import shlex
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_hashing import CLI, HERE, WARM, best, synth_tree, write_section  # noqa: E402

PIECE = 4 << 20
OUT = Path("/tmp/bench-torrents")
START, END = "<!-- torrents:start -->", "<!-- torrents:end -->"
PY = sys.executable
LIMIT = 300  # seconds; a creator still running then is stopped and reported as "> LIMIT s"


def creators() -> list[tuple[str, str]]:
    """(name, command run in the tree root) of every torrent maker."""
    torf = (
        f"{PY} -c \"import torf; t = torf.Torrent(path='.', piece_size={PIECE}, private=False); "
        f"t.generate(threads=2); t.write('{OUT}/torf.torrent', overwrite=True)\""
    )
    libtorrent = (
        f'{PY} -c "import libtorrent as lt, os; fs = lt.file_storage(); lt.add_files(fs, os.getcwd()); '
        f"ct = lt.create_torrent(fs, {PIECE}, flags=lt.create_torrent.v1_only); "
        f"lt.set_piece_hashes(ct, os.path.dirname(os.getcwd())); "
        f"open('{OUT}/lt.torrent', 'wb').write(lt.bencode(ct.generate()))\""
    )
    return [
        ("booru-release torrents build", f"{CLI} torrents build . --release bench -o {OUT}/ours --piece-size 4MiB"),
        ("mktorrent -t2", f"mktorrent -t 2 -l 22 -o {OUT}/mk.torrent -a http://127.0.0.1/a ."),
        ("transmission-create", f"transmission-create -s 4096 -o {OUT}/tc.torrent ."),
        ("torf (threads=2)", torf),
        ("py3createtorrent", f"py3createtorrent -f -p 4096 -o {OUT}/py3.torrent ."),
        ("libtorrent create_torrent", libtorrent),
    ]


def torrent_bytes(name: str) -> int:
    """Bytes of the .torrent(s) a creator wrote."""
    if name.startswith("booru"):
        return sum(p.stat().st_size for p in (OUT / "ours").glob("*.torrent"))
    files = {"mktorrent": "mk", "transmission": "tc", "torf": "torf", "py3": "py3", "libtorrent": "lt"}
    stem = next(v for k, v in files.items() if name.startswith(k))
    return (OUT / f"{stem}.torrent").stat().st_size


def clean() -> None:
    subprocess.run(["rm", "-rf", str(OUT)], check=True)
    OUT.mkdir(parents=True)


def tree(root: Path, repeat: int, label: str, files: int, nbytes: int, limit: int = LIMIT) -> str:
    print(f"{label}: {files:,} files, {nbytes / 1e9:.2f} GB", flush=True)
    rows = []
    for name, command in creators():
        limited = f"timeout {limit} bash -c {shlex.quote(command)} || [ $? -eq 124 ]"
        timing = best(name, limited, root, repeat, before=f"rm -rf {OUT} && mkdir -p {OUT} && {WARM}")
        try:
            rows.append((timing, torrent_bytes(name)))
        except (OSError, StopIteration):
            rows.append((timing, None))  # stopped at the limit: no .torrent
    single = best(
        "single pass: manifest build --torrents",
        f"{CLI} manifest build . -o {OUT}/m.jsonl.zst --torrents {OUT}/ours --piece-size 4MiB --release bench",
        root,
        repeat,
        before=f"rm -rf {OUT} && mkdir -p {OUT} && {WARM}",
    )
    mk = best("mktorrent -t2", creators()[1][1], root, repeat, before=f"rm -rf {OUT} && mkdir -p {OUT} && {WARM}")
    hd = best("hashdeep md5+sha256", f"hashdeep -c md5,sha256 -r . > {OUT}/hd.txt", root, repeat, before=WARM)
    lines = [
        f"### {label}: {files:,} files, {nbytes / 1e9:.2f} GB\n",
        "| tool | wall s | CPU s | peak RSS MB | .torrent bytes | MB/s |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for timing, size in rows:
        if size is None:
            lines.append(f"| {timing.name} | > {limit} (stopped) | {timing.cpu:.2f} | {timing.rss_mb:.0f} | - | "
                         f"< {nbytes / 1e6 / limit:,.0f} |")  # fmt: skip
            continue
        lines.append(
            f"| {timing.name} | {timing.wall:.2f} | {timing.cpu:.2f} | {timing.rss_mb:.0f} | {size:,} "
            f"| {nbytes / 1e6 / timing.wall:,.0f} |"
        )
    ratio = single.wall / (mk.wall + hd.wall)
    lines += [
        "",
        f"Single pass (manifest with xxh3-128 + sha256 + md5, and the torrents): **{single.wall:.2f} s** against "
        f"mktorrent {mk.wall:.2f} s + hashdeep {hd.wall:.2f} s = {mk.wall + hd.wall:.2f} s: "
        f"**{ratio:.2f}×** (target ≤ 0.5×).",
        "",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work", type=Path, default=HERE / "work")
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--limit", type=int, default=LIMIT, help="seconds before a creator is stopped")
    parser.add_argument("--results", type=Path, default=HERE / "RESULTS.md")
    args = parser.parse_args()
    trees = [
        ("small", "--images 100000 --mean-size 40000 --seed 1"),
        ("large", "--images 2000 --mean-size 1000000 --seed 2"),
    ]
    if args.quick:
        trees = [("quick-small", "--images 3000 --mean-size 40000 --seed 1")]
        args.repeat = 1
    sections = []
    for name, synth_args in trees:
        root, files, nbytes = synth_tree(args.work, name, synth_args)
        sections.append(tree(root, args.repeat, f"{name} tree", files, nbytes, args.limit))
    body = (
        f"{START}\n## Torrent creation (`python3 benchmarks/bench_torrents.py{' --quick' if args.quick else ''}`, "
        f"{time.strftime('%Y-%m-%d')}, best of {args.repeat}, warm cache, creators stopped after {args.limit} s)\n\n"
        "Commands run in the tree's root; ours writes one shard per subset (original, 512px, metadata).\n\n"
        + "\n".join(sections)
        + f"\n{END}\n"
    )
    write_section(args.results, START, END, body)
    print(f"wrote {args.results}")


if __name__ == "__main__":
    main()
