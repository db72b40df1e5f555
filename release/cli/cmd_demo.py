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

    Synthesizes three yearly snapshots with the treacherous cases real releases have, writes a release
    file for each year and cuts it with `cut` (scan, manifest and torrents from one read, later years
    incremental and reusing last year's pieces, rsync lists, notes, SHA256SUMS; the same cut again skips
    every finished step), then diffs, verifies the tree and a damaged partial download; seeds and downloads
    a shard over loopback, serves the tree from a real rsync daemon, derives the SFW 512px subset of the
    last year from its originals (line art on transparency kept visible; a second run finds nothing to do),
    and reconstructs the first two years from the last, bit for bit. Exit 0 only if every claim was proved.
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
