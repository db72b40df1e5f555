"""Yearly-update waste: what a libtorrent client re-downloads after switching from last year's data to
this year's torrents, for three file orders inside each shard.

    python3 benchmarks/bench_update.py            # synth 2018-2019, 40,000 posts, ~100 kB mean
    python3 benchmarks/bench_update.py --quick    # 4,000 posts

- ours: `booru-release torrents build` (ascending ID across the shard's buckets);
- string-sorted: the same shards, files sorted as path strings (what mktorrent, transmission-create and
  most makers do: `original/0000/1000.jpg` < `original/0000/10000.jpg` < `original/0000/2000.jpg`);
- directory order: the same shards in the order `os.walk` meets them (readdir order, unsorted).

Every variant has the same shards and piece size; the alternatives are made by libtorrent's
create_torrent. The client is libtorrent: it is handed last year's tree as the save path, rechecks it, and
what it lacks afterwards (total_wanted - total_wanted_done) is what it would re-download. "new bytes" are the
bytes of files that are new or changed this year: the floor any order must pay. Results replace the update
section of benchmarks/RESULTS.md.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import libtorrent as lt

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_hashing import CLI, HERE, write_section  # noqa: E402

sys.path.insert(0, str(HERE.parent))
from release.torrents.metainfo import load_torrent  # noqa: E402

START, END = "<!-- update:start -->", "<!-- update:end -->"


def make_dataset(work: Path, images: int) -> Path:
    """synth 2018-2019 once; returns the folder holding 2018/ and 2019/."""
    base = work / f"update-{images}"
    if not (base / "2019").is_dir():
        shutil.rmtree(base, ignore_errors=True)
        cmd = f"{CLI} synth {base} --years 2018-2019 --images {images} --mean-size 100000 --seed 7"
        subprocess.run(cmd, shell=True, check=True)
    return base


def walk_order(root: Path) -> dict[str, int]:
    """Position of every file in os.walk (readdir) order."""
    order: dict[str, int] = {}
    for folder, _dirs, names in os.walk(root):
        for name in names:
            order[os.path.relpath(os.path.join(folder, name), root)] = len(order)
    return order


def lt_torrent(root: Path, name: str, paths: list[str], piece_length: int, out: Path) -> None:
    """A v1 torrent of `paths` (in this order) under root, made by libtorrent."""
    fs = lt.file_storage()
    for path in paths:
        fs.add_file(f"{name}/{path}", (root / path).stat().st_size)
    ct = lt.create_torrent(fs, piece_length, flags=lt.create_torrent.v1_only)
    view = out.parent / f"view-{out.stem}"
    view.mkdir(parents=True, exist_ok=True)
    link = view / name
    if not link.exists():
        link.symlink_to(root.resolve())
    lt.set_piece_hashes(ct, str(view))
    out.write_bytes(lt.bencode(ct.generate()))


def recheck(torrent: Path, save_path: Path) -> tuple[int, int]:
    """(wanted, have) bytes after libtorrent checks save_path against torrent (no peers, no DHT)."""
    ses = lt.session(
        {
            "listen_interfaces": "127.0.0.1:0",
            "enable_dht": False,
            "enable_lsd": False,
            "enable_upnp": False,
            "enable_natpmp": False,
            "alert_mask": lt.alert_category.status,
        }
    )
    params = lt.add_torrent_params()
    params.ti = lt.torrent_info(str(torrent))
    params.save_path = str(save_path)
    params.flags &= ~lt.torrent_flags.auto_managed
    handle = ses.add_torrent(params)
    checked = False
    while not checked:
        ses.wait_for_alert(1000)
        checked = any(isinstance(a, lt.torrent_checked_alert) for a in ses.pop_alerts())
    status = handle.status()
    ses.remove_torrent(handle)
    return status.total_wanted, status.total_wanted_done


def new_bytes(old: Path, new: Path, paths: list[str]) -> int:
    """Bytes of the files in paths that are absent from old or differ from it."""
    total = 0
    for path in paths:
        a, b = old / path, new / path
        size = b.stat().st_size
        if not a.is_file() or a.stat().st_size != size or a.read_bytes() != b.read_bytes():
            total += size
    return total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work", type=Path, default=HERE / "work")
    parser.add_argument("--images", type=int, default=40000)
    parser.add_argument("--piece-size", default="1MiB")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--results", type=Path, default=HERE / "RESULTS.md")
    args = parser.parse_args()
    if args.quick:
        args.images = 4000
    base = make_dataset(args.work, args.images)
    old, new = base / "2018", base / "2019"
    out = Path("/tmp/bench-update")
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    cmd = f"{CLI} torrents build {new} --release bench -o {out}/ours --piece-size {args.piece_size} --name 2018"
    subprocess.run(cmd, shell=True, check=True, stdout=subprocess.DEVNULL)
    walked = walk_order(new)
    totals = {"ID order (ours)": [0, 0], "string-sorted": [0, 0], "directory order": [0, 0]}
    floor = pieces = shards = 0
    rows = []
    for torrent in sorted((out / "ours").glob("*.torrent")):
        meta = load_torrent(torrent)
        if torrent.stem.endswith("metadata"):
            continue
        shards += 1
        paths = list(meta.paths)
        fresh = new_bytes(old, new, paths)
        floor += fresh
        pieces += meta.piece_length
        variants = {
            "ID order (ours)": torrent,
            "string-sorted": out / f"{torrent.stem}-sorted.torrent",
            "directory order": out / f"{torrent.stem}-walk.torrent",
        }
        lt_torrent(new, "2018", sorted(paths), meta.piece_length, variants["string-sorted"])
        lt_torrent(new, "2018", sorted(paths, key=walked.__getitem__), meta.piece_length, variants["directory order"])
        for label, path in variants.items():
            wanted, have = recheck(path, base)
            totals[label][0] += wanted
            totals[label][1] += wanted - have
            print(
                f"{torrent.stem:14} {label:18} re-download {(wanted - have) / 1e6:10.1f} MB (new {fresh / 1e6:.1f} MB)"
            )
        rows.append(torrent.stem)
    lines = [
        START,
        f"## Yearly update waste (`python3 benchmarks/bench_update.py{' --quick' if args.quick else ''}`, "
        f"{time.strftime('%Y-%m-%d')})\n",
        f"synth 2018 → 2019, {args.images:,} posts, ~100 kB mean, {shards} image shards, piece size "
        f"{args.piece_size}. libtorrent rechecks the 2018 tree against each 2019 torrent; re-download = wanted − "
        f"verified bytes. New or changed bytes (the floor): **{floor / 1e6:,.1f} MB**; the DESIGN.md bound "
        f"(new bytes + one piece per shard) is {(floor + pieces) / 1e6:,.1f} MB.\n",
        "| file order | torrent bytes wanted | re-downloaded MB | waste over new bytes MB | within bound |",
        "|---|---:|---:|---:|---|",
    ]
    for label, (wanted, redownload) in totals.items():
        ok = "yes" if redownload <= floor + pieces else "no"
        lines.append(
            f"| {label} | {wanted / 1e6:,.1f} MB | {redownload / 1e6:,.1f} | {(redownload - floor) / 1e6:,.1f} | {ok} |"
        )
    lines += ["", END]
    body = "\n".join(lines) + "\n"
    print(body)
    write_section(args.results, START, END, body)
    print(f"wrote {args.results}")


if __name__ == "__main__":
    main()
