"""`booru-release manifest build|diff|export`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from release.atomic import atomic_output, is_stdout
from release.cli import manifest_app
from release.cli.cmd_torrents import print_build
from release.cli.errors import command
from release.cli.output import (
    IO_DEPTH_DEFAULT,
    IoDepthOpt,
    JsonOpt,
    ProgressView,
    WorkersOpt,
    emit_json,
    human_bytes,
    message,
    one_stdout,
    out_console,
)
from release.cli.torrent_opts import (
    CommentOpt,
    CreatedByOpt,
    DateOpt,
    NameOpt,
    PieceOpt,
    PreviousOpt,
    ProfileOpt,
    ShardsOpt,
    TrackerOpt,
    WebSeedOpt,
    make_job,
)
from release.errors import BadInput
from release.manifest.export import FORMATS


@manifest_app.command(
    "build",
    epilog="""[b]Examples[/b]

  booru-release manifest build danbooru2019 -o danbooru2019.manifest.jsonl.zst

  booru-release manifest build danbooru2020 -o 2020.jsonl.zst --previous danbooru2019.manifest.jsonl.zst

  # manifest and torrents from one read of every byte, reusing last year's unchanged pieces
  booru-release manifest build danbooru2020 -o 2020.jsonl.zst --previous 2019.jsonl.zst \\
      --torrents torrents2020/ --previous-torrents torrents2019/ --creation-date 2021-01-01
""",
)
@command
def build_cmd(
    root: Annotated[Path, typer.Argument(help="Release root to hash.")],
    output: Annotated[Path, typer.Option("-o", "--output", help="Manifest to write (.zst: zstd-compressed).")],
    previous: Annotated[
        Path | None, typer.Option(help="Earlier manifest: unchanged size+mtime reuses its hashes.")
    ] = None,
    rehash: Annotated[bool, typer.Option("--rehash", help="Hash every file even when --previous has it.")] = False,
    release: Annotated[str | None, typer.Option(help="Release name for the header (default: folder name).")] = None,
    workers: WorkersOpt = None,
    io_depth: IoDepthOpt = IO_DEPTH_DEFAULT,
    torrents: Annotated[
        Path | None,
        typer.Option(help="Also write the .torrent shards here, from the same read (see `torrents build`)."),
    ] = None,
    shards: ShardsOpt = "auto",
    piece_size: PieceOpt = "auto",
    profile: ProfileOpt = None,
    tracker: TrackerOpt = None,
    web_seed: WebSeedOpt = None,
    comment: CommentOpt = "",
    created_by: CreatedByOpt = "booru-release",
    creation_date: DateOpt = None,
    name: NameOpt = None,
    previous_torrents: PreviousOpt = None,
    json_out: JsonOpt = False,
) -> int:
    """Hash every file once (xxh3-128, sha256, md5; with --torrents also the piece hashes) into a streamed
    manifest; the manifest and the torrents appear together, or nothing does.

    Killed (Ctrl-C, SIGTERM, SIGKILL, a power cut)? Run the same command again: it resumes from the journal
    it keeps beside the output (.OUTPUT.<pid>.journal), hashing only what was not finished.
    """
    from release.build import build_manifest  # imported here: keeps `--help` fast

    job = None
    if torrents is not None:
        job = make_job(
            release=release or root.resolve().name,
            output=torrents,
            shards=shards,
            piece_size=piece_size,
            profile=profile,
            tracker=tracker,
            web_seed=web_seed,
            comment=comment,
            created_by=created_by,
            creation_date=creation_date,
            name=name,
            previous=previous_torrents,
            previous_manifest=previous,
        )
    with ProgressView(not json_out) as view:
        report = build_manifest(
            root,
            output,
            release=release,
            previous=previous,
            rehash=rehash,
            workers=workers,
            io_depth=io_depth,
            progress=view,
            torrents=job,
        )
    if json_out:
        emit_json(report)
        return 0
    if report.torrents is not None:
        print_build(report.torrents)
    out_console().print(
        f"{report.output}: {report.files:,} files, {human_bytes(report.bytes)} "
        f"(hashed {report.hashed_files:,} files / {human_bytes(report.hashed_bytes)}, "
        f"reused {report.reused_files:,} / {human_bytes(report.reused_bytes)})"
    )
    for path, kind in report.skipped[:20]:
        message(f"skipped {kind}: {path}")
    return 0


@manifest_app.command(
    "diff",
    epilog="""[b]Examples[/b]

  booru-release manifest diff 2019.jsonl.zst 2020.jsonl.zst

  booru-release manifest diff 2019.jsonl.zst 2020.jsonl.zst --json | jq .totals
""",
)
@command
def diff_cmd(
    old: Annotated[Path, typer.Argument(help="Older manifest.")],
    new: Annotated[Path, typer.Argument(help="Newer manifest.")],
    show: Annotated[int, typer.Option(help="Paths shown per category in the human report.")] = 10,
    json_out: JsonOpt = False,
) -> int:
    """What was added, removed, changed and left unchanged between two manifests (exit 0 either way)."""
    from release.manifest.diff import CATEGORIES, diff_manifests

    report = diff_manifests(old, new)
    if json_out:
        emit_json(report)
        return 0
    console = out_console()
    table = Table("", "files", "bytes")
    for name in CATEGORIES:
        table.add_row(name, f"{report.totals[name].files:,}", human_bytes(report.totals[name].bytes))
    console.print(table)
    for name in ("removed", "changed", "added"):
        paths: list[str] = getattr(report, name)
        for path in paths[:show]:
            console.print(f"{name}: {path}")
        if len(paths) > show:
            console.print(f"{name}: … {len(paths) - show:,} more (--json lists all)")
    return 0


@manifest_app.command(
    "export",
    epilog="""[b]Examples[/b]

  booru-release manifest export m.jsonl.zst --format sha256sum -o SHA256SUMS  # cd ROOT; sha256sum -c SHA256SUMS

  booru-release manifest export m.jsonl.zst --format xxh128sum -o XXH128SUMS  # cd ROOT; xxhsum -c XXH128SUMS

  booru-release manifest export m.jsonl.zst --format bagit -o bag --payload danbooru2019  # bagit.py --validate bag
""",
)
@command
def export_cmd(
    manifest: Annotated[Path, typer.Argument(help="Manifest to export.")],
    fmt: Annotated[str, typer.Option("--format", help=f"One of: {', '.join(FORMATS)}.")],
    output: Annotated[
        Path | None, typer.Option("-o", "--output", help="Output file (bagit: the bag folder). Default or -: stdout.")
    ] = None,
    payload: Annotated[Path | None, typer.Option(help="bagit: hard-link the tree's files into BAG/data.")] = None,
    json_out: JsonOpt = False,
) -> int:
    """Write checksum lists that stock tools verify: sha256sum -c, xxhsum -c, bagit.py --validate."""
    from release.manifest.export import export_bag, export_checksums

    if fmt not in FORMATS:
        raise BadInput(fmt, f"unknown format; choose one of {', '.join(FORMATS)}")
    if fmt == "bagit":
        if output is None or is_stdout(output):
            raise BadInput("--output", "bagit needs -o BAG_FOLDER")
        count = export_bag(manifest, output, payload)
    else:
        one_stdout(json_out, output=output or Path("-"))
        with atomic_output(output or Path("-")) as handle:
            count = export_checksums(manifest, fmt, handle)
    if json_out:
        emit_json({"format": fmt, "output": str(output) if output else "-", "files": count})
    elif output is not None and not is_stdout(output):
        message(f"{output}: {count:,} files ({fmt})")
    return 0
