"""`booru-release metadata archive|tarball|stats`."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from release.atomic import OutputSet
from release.cli import metadata_app
from release.cli.errors import command
from release.cli.output import JsonOpt, ProgressView, emit_json, human_bytes, message, one_stdout, out_console

if TYPE_CHECKING:
    from release.stats import ReleaseStats


@metadata_app.command(
    "archive",
    epilog="""[b]Examples[/b]

  # this year's export into a new release root (last year's top-level chunks move to metadata/2018/)
  booru-release metadata archive export2019/ --year 2019 --into danbooru2019

  # an old year's export goes to metadata/2017/
  booru-release metadata archive export2017/ --year 2017 --into danbooru2019

  # Danbooru's own export (posts*.json, tags*.json, …) at the top, as Danbooru2021 shipped it; the same
  # year's export in the old dialect then goes to metadata/2021-old/
  booru-release metadata archive export2021/ --year 2021 --into danbooru2021
  booru-release metadata archive export2021-bigquery/ --year 2021 --into danbooru2021
""",
)
@command
def archive_cmd(
    export: Annotated[
        Path,
        typer.Argument(help="The year's export: YEAR + 12 digits chunks, or posts*.json (+ tags…)."),
    ],
    year: Annotated[int, typer.Option(help="The export's year.")],
    into: Annotated[Path, typer.Option(help="Release root to place it in.")],
    force: Annotated[bool, typer.Option("--force", help="Replace chunks of that year already placed.")] = False,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Validate and say where it would go; move nothing.")
    ] = False,
    json_out: JsonOpt = False,
) -> int:
    """Validate every line of a metadata export, then place it in the release root's published layout."""
    from release.metaarchive import archive_metadata

    with ProgressView(not json_out) as view:
        report = archive_metadata(export, year, into, force=force, dry_run=dry_run, progress=view)
    if json_out:
        emit_json(report.__dict__ | {"dry_run": dry_run})
        return 0
    verb = ("would move", "would place") if dry_run else ("moved", "placed")
    for archive, names in report.moved_to_archive.items():
        message(f"{verb[0]} {len(names)} chunks of last year into {archive}")
    message(
        f"{verb[1]} {report.chunks} chunks ({report.records:,} records, {human_bytes(report.bytes)}) "
        f"in {report.placed_in}"
    )
    return 0


@metadata_app.command(
    "tarball",
    epilog="""[b]Examples[/b]

  booru-release metadata tarball danbooru2019 -o metadata.json.tar.xz
""",
)
@command
def tarball_cmd(
    root: Annotated[Path, typer.Argument(help="Release root whose metadata/ folder to pack.")],
    output: Annotated[Path, typer.Option("-o", "--output", help="The .tar.xz to write.")] = Path(
        "metadata.json.tar.xz"
    ),
    json_out: JsonOpt = False,
) -> int:
    """Write metadata.json.tar.xz reproducibly: the same metadata/ gives the same bytes on any machine."""
    from release.metaarchive import write_metadata_tarball

    members, _ = write_metadata_tarball(root, output)
    if json_out:
        emit_json({"output": str(output), "members": members, "bytes": output.stat().st_size})
    else:
        message(f"wrote {output}: {members} files, {human_bytes(output.stat().st_size)}")
    return 0


@metadata_app.command(
    "stats",
    epilog="""[b]Examples[/b]

  booru-release metadata stats danbooru2019

  booru-release metadata stats danbooru2019 --notes NOTES.md --plots plots/ --json > stats.json
""",
)
@command
def stats_cmd(
    root: Annotated[Path, typer.Argument(help="Release root.")],
    manifest: Annotated[Path | None, typer.Option(help="Count files from this manifest instead of walking.")] = None,
    plots: Annotated[
        Path | None, typer.Option(help="Folder for PNG plots (uploads per year, top tags, ratings).")
    ] = None,
    notes: Annotated[Path | None, typer.Option(help="Markdown release notes to write (-: stdout).")] = None,
    name: Annotated[str | None, typer.Option(help="Release name in the notes (default: folder name).")] = None,
    json_out: JsonOpt = False,
) -> int:
    """Images and bytes per subset and extension, tag and rating figures, uploads per year."""
    from release.stats import collect_stats
    from release.statsreport import write_notes, write_plots

    one_stdout(json_out, notes=notes)
    with ProgressView(not json_out) as view:
        stats = collect_stats(root, manifest, view)
    title = name or root.resolve().name
    written = []
    with OutputSet() as outputs:  # notes and plots appear together or not at all
        if notes is not None:
            write_notes(stats, title, notes, outputs)
            written.append(str(notes))
        if plots is not None:
            written += [str(p) for p in write_plots(stats, plots, outputs)]
    if json_out:
        emit_json(stats.model_dump() | {"written": written})
        return 0
    _print(stats)
    if stats.malformed_lines:
        message(f"[yellow]warning:[/] {stats.malformed_lines:,} malformed metadata lines skipped (`scan` names them)")
    for path in written:
        message(f"wrote {path}")
    return 0


def _print(stats: ReleaseStats) -> None:
    console = out_console()
    table = Table("subset", "extension", "images", "bytes")
    for subset, exts in stats.extensions.items():
        for ext, count in exts.items():
            table.add_row(subset, ext, f"{count.files:,}", human_bytes(count.bytes))
        total = stats.subsets[subset]
        table.add_row(f"[b]{subset}[/]", "all", f"[b]{total.files:,}[/]", f"[b]{human_bytes(total.bytes)}[/]")
    console.print(table)
    console.print(
        f"posts {stats.posts:,} ({stats.deleted_posts:,} deleted) · tag instances {stats.tag_instances:,} · "
        f"unique tags {stats.unique_tags:,} · mean tags/post {stats.mean_tags_per_post:.2f}"
    )
    console.print("ratings: " + ", ".join(f"{r} {n:,}" for r, n in stats.ratings.items()))
    console.print(
        f"uploads {stats.earliest_upload} … {stats.latest_upload}: "
        + ", ".join(f"{y} {n:,}" for y, n in stats.uploads_per_year.items())
    )
    console.print("top tags: " + ", ".join(f"{t} {n:,}" for t, n in stats.top_tags[:10]))
