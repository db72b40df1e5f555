"""`booru-release derive 512px`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from release.cli import app
from release.cli.errors import command
from release.cli.output import JsonOpt, ProgressView, emit_json, message
from release.errors import BadInput

derive_app = typer.Typer(
    help="Derive the subsets made from the originals (the SFW 512px images).", no_args_is_help=True
)
app.add_typer(derive_app, name="derive")


@derive_app.command(
    "512px",
    epilog="""[b]Examples[/b]

  # the SFW subset of a release: 512px/NNNN/ID.jpg for every post rated s (g from 2022 on)
  booru-release derive 512px danbooru2019

  # what would change (new and changed originals, takedowns), without converting anything
  booru-release derive 512px danbooru2020 --dry-run

  # last year's manifest also catches originals replaced under the same mtime
  booru-release derive 512px danbooru2020 --previous danbooru2019.jsonl.zst --workers 2 --json

Transparent originals are flattened onto white or black, whichever contrasts with what is drawn
(--background auto): line art no longer comes out black. Outputs that are still near-uniform, too dark
or too white are listed in the report. Run it again after a crash or Ctrl-C: it converts only what is
missing or whose original changed (every output carries its original's mtime).
""",
)
@command
def derive_512px_cmd(
    root: Annotated[Path, typer.Argument(help="Release root: originals in original/, outputs to 512px/.")],
    metadata: Annotated[
        Path | None, typer.Option(help="Release root whose metadata/ chunks give the ratings (default: ROOT).")
    ] = None,
    size: Annotated[int, typer.Option(help="Output canvas, size x size pixels.")] = 512,
    quality: Annotated[int, typer.Option(help="JPEG quality, 1-100 (fixed: the same bytes every run).")] = 90,
    background: Annotated[
        str, typer.Option(help="Behind transparency and around the picture: white, black or auto.")
    ] = "auto",
    ratings: Annotated[
        list[str] | None,
        typer.Option("--ratings", help="Ratings to derive (repeatable; default: SFW for the export's year)."),
    ] = None,
    sensitive: Annotated[
        bool, typer.Option("--include-sensitive", help="On a 2022+ export, derive s (sensitive) beside g.")
    ] = False,
    first_frame: Annotated[
        bool, typer.Option("--first-frame", help="Animated GIFs: their first frame (default: skipped).")
    ] = False,
    previous: Annotated[
        Path | None, typer.Option(help="Last year's manifest: originals whose size changed are converted again.")
    ] = None,
    workers: Annotated[int | None, typer.Option(help="Converting processes (default: one per core).")] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Say what would be converted and removed.")] = False,
    json_out: JsonOpt = False,
) -> int:
    """Derive the SFW 512px subset from the originals: fast, reproducible, transparency handled."""
    from release.derive import Settings, derive_512px
    from release.posts import rating_choice

    if background not in ("white", "black", "auto"):
        raise BadInput("--background", f"{background!r}: choose white, black or auto")
    letters = rating_choice(ratings or [], "--ratings")
    settings = Settings(size=size, quality=quality, background=background, first_frame=first_frame)  # type: ignore[arg-type]
    with ProgressView(not json_out) as view:
        report = derive_512px(
            root, metadata, settings=settings, ratings=letters or None, sensitive=sensitive,
            previous=previous, workers=workers, dry_run=dry_run, progress=view,
        )  # fmt: skip
    if json_out:
        emit_json(report)
        return 0
    verb = "would convert" if dry_run else "converted"
    done = report.to_convert if dry_run else report.written
    message(
        f"{report.selected:,} posts rated {'/'.join(report.ratings)}: {verb} {done:,}, "
        f"{report.up_to_date:,} up to date, {len(report.removed):,} {'to remove' if dry_run else 'removed'}, "
        f"{report.without_original:,} without an original"
    )
    for reason, count in report.skipped.items():
        message(f"  skipped {count:,}: {reason}")
    for line in report.failed[:20]:
        message(f"  [red]failed[/] {line}")
    for flag in ("near_uniform", "too_dark", "too_white"):
        if report.flag_counts.get(flag):
            message(f"  [yellow]{flag}[/]: {report.flag_counts[flag]:,} (e.g. {', '.join(report.flagged[flag][:3])})")
    return 1 if report.failed else 0
