"""`booru-release select`."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path
from typing import Annotated

import typer

from release.cli import app
from release.cli.errors import command
from release.cli.output import JsonOpt, ProgressView, emit_json, message, one_stdout
from release.errors import BadInput

_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_IDS = re.compile(r"([0-9]*)-([0-9]*)")


def _date(value: str | None, option: str) -> str | None:
    if value is None:
        return None
    try:
        if not _DATE.fullmatch(value):
            raise ValueError
        dt.date.fromisoformat(value)
    except ValueError:
        raise BadInput(option, f"{value!r} is not a date of the calendar like 2019-12-31") from None
    return value


def _ids(value: str | None) -> tuple[int | None, int | None]:
    if value is None:
        return None, None
    match = _IDS.fullmatch(value)
    if match is None or value == "-":
        raise BadInput("--ids", f"{value!r} is not a range like 1000-2000, 1000- or -2000")
    low, high = (int(g) if g else None for g in match.groups())
    if low is not None and high is not None and low > high:
        raise BadInput("--ids", f"{value!r} is empty: the first ID is above the last")
    return low, high


@app.command(
    "select",
    epilog="""[b]Examples[/b]

  # safe 512px images tagged 1girl and solo, for rsync --files-from
  booru-release select --metadata danbooru2019 --tag 1girl --tag solo --rating s --subset 512px -o list.txt
  rsync -r --files-from=list.txt rsync://mirror/danbooru2019/ ./danbooru2019/

  booru-release select --metadata danbooru2019 --since 2019-01-01 --ext png --min-score 10 -o png2019.txt

  # the SFW posts, whatever the year: "s" before Danbooru split the rating in 2022, "g" from then on
  booru-release select --metadata danbooru2022 --sfw --tag 1girl -o sfw.txt
""",
)
@command
def select_cmd(
    metadata: Annotated[Path, typer.Option("--metadata", help="Release root (its metadata/ chunks are read).")],
    output: Annotated[Path, typer.Option("-o", "--output", help="The --files-from list to write (-: stdout).")],
    tag: Annotated[list[str] | None, typer.Option("--tag", help="Post has this tag (repeatable: all of them).")] = None,
    not_tag: Annotated[list[str] | None, typer.Option("--not-tag", help="Post lacks this tag (repeatable).")] = None,
    rating: Annotated[
        list[str] | None,
        typer.Option("--rating", help="g, s, q or e (repeatable: any of them; g exists from 2022 on)."),
    ] = None,
    sfw: Annotated[
        bool,
        typer.Option(
            "--sfw",
            help="The safe posts: rating s in exports before 2022, g from 2022 on (decided by the newest post).",
        ),
    ] = False,
    sensitive: Annotated[
        bool, typer.Option("--include-sensitive", help="With --sfw on a 2022+ export: s (sensitive) too.")
    ] = False,
    since: Annotated[str | None, typer.Option(help="Uploaded on or after YYYY-MM-DD.")] = None,
    until: Annotated[str | None, typer.Option(help="Uploaded on or before YYYY-MM-DD.")] = None,
    ids: Annotated[str | None, typer.Option(help="ID range A-B (inclusive; A- or -B open).")] = None,
    ext: Annotated[list[str] | None, typer.Option("--ext", help="Original file extension (repeatable).")] = None,
    subset: Annotated[str, typer.Option(help="original or 512px.")] = "original",
    min_score: Annotated[int | None, typer.Option(help="Score at least N.")] = None,
    json_out: JsonOpt = False,
) -> int:
    """Write the files matching a metadata query (the jq query, done for you) as a --files-from list."""
    from release.posts import rating_choice
    from release.select import Query, select

    one_stdout(json_out, output=output)
    if subset not in ("original", "512px"):
        raise BadInput("--subset", f"{subset!r}: choose original or 512px")
    letters = rating_choice(rating or [], "--rating")
    if sfw and rating:
        raise BadInput("--sfw", "--sfw already chooses the ratings: drop --rating")
    if sensitive and not sfw:
        raise BadInput("--include-sensitive", "only means something with --sfw")
    first, last = _ids(ids)
    if since and until and since > until:
        raise BadInput("--since/--until", f"{since} is after {until}: nothing can match")
    query = Query(
        tags=frozenset(tag or ()),
        not_tags=frozenset(not_tag or ()),
        ratings=letters,
        since=_date(since, "--since"),
        until=_date(until, "--until"),
        first_id=first,
        last_id=last,
        exts=frozenset(e.lower().lstrip(".") for e in ext or ()),
        min_score=min_score,
        subset=subset,
        sfw=sfw,
        sensitive=sensitive,
    )
    with ProgressView(not json_out) as view:
        report = select(metadata, query, output, view)
    if json_out:
        emit_json(report.__dict__ | {"output": str(output)})
    else:
        message(
            f"{report.matched:,} of {report.posts:,} posts match; wrote {report.listed:,} files to {output}"
            + (
                f" ({report.not_in_release:,} matching posts have no file in the release)"
                if report.not_in_release
                else ""
            )
        )
        if report.malformed_lines:
            message(f"[yellow]warning:[/] {report.malformed_lines:,} malformed metadata lines skipped")
        if report.rows_without_id:
            message(f"{report.rows_without_id:,} rows without an ID (banned or gold-only posts) skipped")
        if report.sfw_ratings:
            message(f"--sfw: rating {' or '.join(report.sfw_ratings)} (the export's newest post decides)")
    return 0
