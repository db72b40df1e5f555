"""`booru-release scan`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from release.cli import app
from release.cli.errors import EXIT_FAILED, command
from release.cli.output import JsonOpt, ProgressView, emit_json, human_bytes, out_console

EXAMPLES_SHOWN = 5


@app.command(
    "scan",
    epilog="""[b]Examples[/b]

  booru-release scan danbooru2019

  booru-release scan danbooru2019 --json | jq '.findings[] | select(.kind=="truncated")'

  booru-release scan danbooru2019 --allow metadata_without_file
""",
)
@command
def scan_cmd(
    root: Annotated[Path, typer.Argument(help="Release root (original/, 512px/, metadata/).")],
    allow: Annotated[list[str], typer.Option(help="A finding kind that should not fail the scan (repeatable).")] = [],  # noqa: B006
    json_out: JsonOpt = False,
) -> int:
    """Validate a release root: layout, true file types, empty/truncated files, metadata orphans.

    Exit 0 when nothing (but allowed kinds) was found, 1 otherwise.
    """
    from release.scan import KINDS, scan_root  # imported here: keeps `--help` and other commands fast

    with ProgressView(not json_out) as view:
        report = scan_root(root, allow=tuple(allow), progress=view)
    if json_out:
        emit_json(report)
    else:
        console = out_console()
        console.print(
            f"{report.root}: {report.files:,} files, {human_bytes(report.bytes)}; "
            + ", ".join(f"{k} {v:,}" for k, v in report.files_by_subset.items())
            + f"; {report.metadata_records:,} metadata records"
        )
        if report.counts:
            table = Table("problem", "count", "meaning", "examples")
            for kind, count in report.counts.items():
                examples = [f.path for f in report.findings if f.kind == kind][:EXAMPLES_SHOWN]
                label = kind + (" (allowed)" if kind in report.allowed else "")
                table.add_row(label, f"{count:,}", KINDS[kind], "\n".join(examples))
            console.print(table)
        else:
            console.print("no problems found")
    return EXIT_FAILED if report.failed else 0
