"""`booru-release demo`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from release.cli import app
from release.cli.errors import EXIT_FAILED, command
from release.cli.output import JsonOpt, ProgressView, emit_json, out_console


@app.command(
    "demo",
    epilog="""[b]Examples[/b]

  booru-release demo

  booru-release demo /tmp/demo --images 3000 --json
""",
)
@command
def demo_cmd(
    out: Annotated[Path, typer.Argument(help="Working folder (made, or remade if an earlier demo made it).")] = Path(
        "booru-demo"
    ),
    images: Annotated[int, typer.Option(help="Posts in the synthetic dataset.")] = 600,
    seed: Annotated[int, typer.Option(help="Seed of the synthetic dataset.")] = 1,
    json_out: JsonOpt = False,
) -> int:
    """The main job on the built-in synthetic dataset, every claim proved with its evidence.

    Synthesizes three yearly snapshots with the treacherous cases real releases have and starts a local
    S3 server (SeaweedFS, 127.0.0.1). Writes a release file for each year and cuts it with `cut`: scan,
    manifest and torrents from one read (later years incremental, reusing last year's pieces), rsync
    lists, notes, SHA256SUMS, and for the last year `--publish` to the S3 mirror; the same cut again
    skips every finished step. Then diffs, verifies the tree and a damaged partial download; seeds and
    downloads a shard over loopback; checks the mirror with `verify s3://` (and that a deleted object is
    named); downloads a shard from the mirror as its only web seed; serves the tree from a real rsync
    daemon and fetches the 512px list; derives the SFW 512px subset from the originals; and reconstructs
    the first two years from the last, bit for bit. The servers are stopped at the end; everything they
    served and every artefact stays in the working folder. Exit 0 only if every claim was proved.
    """
    from release.demo import run_demo  # imported here: keeps `--help` and other commands fast

    with ProgressView(not json_out) as view:
        report = run_demo(out, images=images, seed=seed, progress=view)
    if json_out:
        emit_json(report.model_dump() | {"ok": report.ok})
    else:
        console = out_console()
        for c in report.claims:
            mark = "[green]proved[/]" if c.proved else "[red]NOT proved[/]"
            console.print(f"{mark}  {c.claim}  [dim]({c.evidence})[/]")
        console.print(f"working folder: {report.dir}")
    return 0 if report.ok else EXIT_FAILED
