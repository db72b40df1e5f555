"""`booru-release cut`."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from release.cli import app
from release.cli.errors import command
from release.cli.output import JsonOpt, ProgressView, WorkersOpt, emit_json, human_bytes, message

if TYPE_CHECKING:
    from release.cut.run import StepEvent

MARKS = {"done": "[green]done[/]", "would run": "[cyan]to run[/]", "not wanted": "[dim]not wanted[/]"}


@app.command(
    "cut",
    epilog="""[b]Examples[/b]

  # the whole yearly release from one file (see manifests/release.example.toml)
  booru-release cut danbooru2019.toml

  # what would run, with sizes (files, bytes to hash against last year, images to convert)
  booru-release cut danbooru2019.toml --dry-run

  # after the machine died at hour six: the same command; finished steps are skipped, the read resumes
  booru-release cut danbooru2019.toml

  # run the statistics and everything after them again; then publish to the mirrors it names
  booru-release cut danbooru2019.toml --from stats
  booru-release cut danbooru2019.toml --publish

Steps, in order: metadata (place this year's export) · derive (512px, incremental) · scan · read
(manifest and torrent pieces from one read of every byte, incremental against last year) · tarballs ·
rsync (file lists, rsyncd.conf) · stats (numbers, plots, release notes) · checksums (SHA256SUMS, signed
when signing_key is set; `verify --signature` checks it) · publish (only with --publish).
The state is kept in OUTPUT/.cut-state.json; delete it to cut from the start.
""",
)
@command
def cut_cmd(
    release_file: Annotated[Path, typer.Argument(help="The release file (TOML).")],
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Show the steps, what is done and the sizes.")] = False,
    from_step: Annotated[str | None, typer.Option("--from", help="Run this step and every later one again.")] = None,
    publish: Annotated[bool, typer.Option("--publish", help="Also publish to the targets the file names.")] = False,
    workers: WorkersOpt = None,
    json_out: JsonOpt = False,
) -> int:
    """Cut a yearly release: every step in order, resumable after a crash."""
    from release.cut.releasefile import load_release_file
    from release.cut.run import run_cut

    loaded = load_release_file(release_file)

    def on_step(event: StepEvent) -> None:
        if json_out:
            return
        step = event.outcome
        where = f"[{event.index + 1}/{event.total}] {step.title}"
        if step.status == "run":
            message(f"[bold]{where}[/] …")
        elif step.status == "done" and step.reason:
            message(f"{where}: done earlier, skipped")
        elif step.status == "done":
            message(f"{where}: done in {step.seconds:.1f} s {_figures(step.summary)}")
        else:
            message(f"{where}: {MARKS[step.status]} ({step.reason}) {_figures(step.summary)}".rstrip())

    with ProgressView(not json_out) as view:
        report = run_cut(
            loaded, dry_run=dry_run, from_step=from_step, publish=publish, workers=workers, progress=view,
            on_step=on_step,
        )  # fmt: skip
    if json_out:
        emit_json(report)
    elif not dry_run:
        message(f"[green]cut {report.release}[/]: artefacts in {report.output}")
    return 0


def _figures(summary: dict[str, object]) -> str:
    parts = []
    for key, value in summary.items():
        if isinstance(value, int) and not isinstance(value, bool):
            parts.append(f"{key} {human_bytes(value) if 'bytes' in key else f'{value:,}'}")
    return "· " + ", ".join(parts) if parts else ""
