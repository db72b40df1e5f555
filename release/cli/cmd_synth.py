"""`booru-release synth`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from release.cli import app
from release.cli.errors import command
from release.cli.output import JsonOpt, ProgressView, emit_json, human_bytes, out_console


@app.command(
    "synth",
    epilog="""[b]Examples[/b]

  booru-release synth data --years 2017-2019 --images 3000 --seed 1

  booru-release synth big --years 2019 --images 1000000 --tiny

  # originals of Danbooru's size in pixels and bytes (1-4 megapixels, ~0.9 MB): derive costs what it would
  booru-release synth sized --years 2018-2019 --images 2000 --mean-size 900000 --drawn

  # metadata as Danbooru2021 on ship it (posts*.json, tag_string; from 2022 the g/s rating split);
  # mixed: the earlier years in the old dialect, the last year new, its old-dialect export in <year>-old/
  booru-release synth new --years 2021-2022 --images 3000 --dialect new
  booru-release synth mixed --years 2019-2021 --images 3000 --dialect mixed
""",
)
@command
def synth_cmd(
    out: Annotated[Path, typer.Argument(help="Folder to write DIR/<year>/ snapshots and changelog.json into.")],
    years: Annotated[str, typer.Option(help="Year range or list: 2017-2019 or 2017,2019.")] = "2017-2019",
    images: Annotated[int, typer.Option(help="Posts over all years (files in the last snapshot, about).")] = 300,
    seed: Annotated[int, typer.Option(help="Same seed, same bytes.")] = 0,
    tiny: Annotated[bool, typer.Option("--tiny", help="Files of a few bytes, for million-file scale runs.")] = False,
    mean_size: Annotated[int, typer.Option(help="Mean original file size in bytes (log-normal).")] = 40_000,
    drawn: Annotated[
        bool, typer.Option("--drawn", help="Images of Danbooru's size in pixels (1-4 megapixels), not thumbnails.")
    ] = False,
    dialect: Annotated[
        str, typer.Option(help="Metadata dialect: old (2017-2020 BigQuery lines), new (Danbooru's export), mixed.")
    ] = "old",
    json_out: JsonOpt = False,
) -> int:
    """Write a deterministic Danbooru-like dataset: one release root per year-end, with treacherous cases."""
    from release.synth import synth  # imported here: keeps `--help` and other commands fast

    with ProgressView(not json_out) as view:
        report = synth(
            out,
            years=years,
            images=images,
            seed=seed,
            tiny=tiny,
            mean_size=mean_size,
            dialect=dialect,
            drawn=drawn,
            progress=view,
        )
    if json_out:
        emit_json(report)
        return 0
    console = out_console()
    for year in report.years:
        console.print(
            f"{year.year}: {year.files:,} files, {human_bytes(year.bytes)}, final ID {year.final_id:,}, "
            f"{year.metadata_records:,} metadata records in {year.metadata_chunks} chunk(s), "
            f"{len(year.takedowns)} taken down, {len(year.replaced)} replaced"
        )
    console.print(f"changelog: {report.changelog}")
    return 0
