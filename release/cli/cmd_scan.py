"""`booru-release scan`."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from release.atomic import atomic_output
from release.cli import app
from release.cli.errors import EXIT_FAILED, command
from release.cli.output import JsonOpt, ProgressView, emit_json, human_bytes, one_stdout, out_console

EXAMPLES_SHOWN = 5


@app.command(
    "scan",
    epilog="""[b]Examples[/b]

  booru-release scan danbooru2019

  booru-release scan danbooru2019 --json | jq '.findings[] | select(.kind=="truncated")'

  booru-release scan danbooru2019 --allow metadata_without_file

  # every finding as a JSON line (the report keeps the first 1,000 of each kind)
  booru-release scan danbooru2019 --findings findings.jsonl
""",
)
@command
def scan_cmd(
    root: Annotated[Path, typer.Argument(help="Release root (original/, 512px/, metadata/).")],
    allow: Annotated[list[str], typer.Option(help="A finding kind that should not fail the scan (repeatable).")] = [],  # noqa: B006
    findings: Annotated[
        Path | None, typer.Option("--findings", help="Write every finding as JSON lines (-: stdout).")
    ] = None,
    json_out: JsonOpt = False,
) -> int:
    """Validate a release root: layout, true file types, empty/truncated files, metadata orphans.

    Exit 0 when nothing (but allowed kinds) was found, 1 otherwise.
    """
    from release.scan import KINDS, scan_root  # imported here: keeps `--help` and other commands fast

    one_stdout(json_out, findings=findings)
    with contextlib.ExitStack() as stack, ProgressView(not json_out) as view:
        out = stack.enter_context(atomic_output(findings)) if findings is not None else None
        report = scan_root(root, allow=tuple(allow), progress=view, findings_out=out)
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
        if report.findings_truncated and findings is None:
            console.print("[dim]the first 1,000 of each kind are kept; --findings FILE writes them all[/]")
    return EXIT_FAILED if report.failed else 0
