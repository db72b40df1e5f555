"""`booru-release torrents plan|lint`."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from release.cli import torrents_app
from release.cli.errors import EXIT_FAILED, command
from release.cli.output import JsonOpt, ProgressView, WorkersOpt, emit_json, human_bytes, message, out_console
from release.cli.torrent_opts import (
    CommentOpt,
    CreatedByOpt,
    DateOpt,
    NameOpt,
    PieceOpt,
    PreviousManifestOpt,
    PreviousOpt,
    ProfileOpt,
    ShardsOpt,
    TrackerOpt,
    WebSeedOpt,
    make_job,
    parse_shards,
    parse_size,
    profiles_of,
)

if TYPE_CHECKING:
    from release.torrents.build import TorrentsReport
    from release.torrents.plan import TorrentPlan


@torrents_app.command(
    "plan",
    epilog="""[b]Examples[/b]

  booru-release torrents plan danbooru2019.manifest.jsonl.zst --release danbooru2019

  booru-release torrents plan danbooru2019 --release danbooru2019 --shards 10 --profile libtorrent-1.1

  booru-release torrents plan m.jsonl.zst --release danbooru2019 --piece-size 8MiB --json
""",
)
@command
def plan_cmd(
    source: Annotated[Path, typer.Argument(help="A manifest, or a release root to walk.")],
    release: Annotated[str, typer.Option(help="Release name: the torrents' name and the shards' prefix.")],
    shards: ShardsOpt = "auto",
    piece_size: PieceOpt = "auto",
    profile: ProfileOpt = None,
    tracker: TrackerOpt = None,
    web_seed: WebSeedOpt = None,
    json_out: JsonOpt = False,
) -> int:
    """Plan shards of whole bucket ranges: files, bytes, pieces, predicted .torrent bytes and tokens, headroom."""
    from release.torrents.plan import TorrentSettings, collect_stats, plan_torrents

    count = parse_shards(shards)
    settings = TorrentSettings(
        release=release,
        trackers=[[t] for t in tracker or []],
        web_seeds=list(web_seed or []),
        piece_length=None if piece_size == "auto" else parse_size(piece_size),
    )
    with ProgressView(not json_out) as view:
        stats = collect_stats(source, view)
    plan = plan_torrents(stats, settings, shards=count, profiles=profiles_of(profile))
    if json_out:
        emit_json(plan.model_dump() | {"fits": plan.fits})
    else:
        _print_plan(plan)
    for warning in plan.warnings:
        message(f"[yellow]warning:[/] {warning}")
    return 0


def _print_plan(plan: TorrentPlan) -> None:
    table = Table("shard", "buckets", "files", "bytes", "pieces", ".torrent", "tokens", "tightest limit")
    for shard in plan.shards:
        span = f"{shard.first_bucket:04d}-{shard.last_bucket:04d}" if shard.first_bucket is not None else "-"
        limits = [
            (room, f"{name} {what}") for name, fit in shard.profiles.items() for what, room in fit.headroom.items()
        ]
        room, what = min(limits, default=(0, "none"))
        tight = f"{what} {room:+,}" if limits else "no limits"
        table.add_row(
            f"{shard.name} {shard.subset}",
            span,
            f"{shard.files:,}",
            human_bytes(shard.bytes),
            f"{shard.pieces:,} x {human_bytes(shard.piece_length)}",
            human_bytes(shard.torrent_bytes),
            f"{shard.tokens:,}",
            tight if room >= 0 else f"[red]{tight}[/]",
        )
    out_console().print(table)
    counts = ", ".join(f"{subset} {n}" for subset, n in plan.shard_counts.items())
    message(f"profiles: {', '.join(plan.profiles)}; shards per subset: {counts}")


@torrents_app.command(
    "lint",
    epilog="""[b]Examples[/b]

  booru-release torrents lint danbooru2019-*.torrent

  booru-release torrents lint big.torrent --profile libtorrent-1.1 --json
""",
)
@command
def lint_cmd(
    files: Annotated[list[Path], typer.Argument(help=".torrent files (ours or anyone's).")],
    profile: ProfileOpt = None,
    json_out: JsonOpt = False,
) -> int:
    """Check .torrent files against client limits and for unsafe paths; exit 1 on any violation."""
    from release.torrents.lint import lint_torrent

    reports = [lint_torrent(path, profiles_of(profile)) for path in files]
    if json_out:
        emit_json({"files": [r.model_dump() | {"failed": r.failed} for r in reports]})
    else:
        console = out_console()
        for report in reports:
            verdict = "[red]FAIL[/]" if report.failed else "[green]ok[/]"
            console.print(
                f"{verdict} {report.file}: {report.version or '?'}, {report.files:,} files, "
                f"{report.pieces:,} pieces, {human_bytes(report.torrent_bytes)}, {report.tokens:,} tokens, "
                f"info-hash {report.info_hash}"
            )
            for name, fit in report.profiles.items():
                for what, room in fit.headroom.items():
                    if room < 0:
                        console.print(f"    {name}: {what} over the limit by {-room:,}")
            for problem in report.problems:
                console.print(f"    {problem}")
    return EXIT_FAILED if any(r.failed for r in reports) else 0


@torrents_app.command(
    "build",
    epilog="""[b]Examples[/b]

  booru-release torrents build danbooru2019 --release danbooru2019 -o torrents/ \\
      --manifest danbooru2019.manifest.jsonl.zst --creation-date 2020-01-01 \\
      --tracker udp://tracker.example:6969/announce --web-seed https://mirror.example/

  # next year: keep last year's piece hashes for every unchanged piece
  booru-release torrents build danbooru2020 --release danbooru2020 -o torrents2020/ \\
      --manifest 2020.jsonl.zst --previous torrents/ --previous-manifest danbooru2019.manifest.jsonl.zst
""",
)
@command
def build_cmd(
    root: Annotated[Path, typer.Argument(help="Release root holding the files.")],
    release: Annotated[str, typer.Option(help="Release name: shards are <release>-<k>.torrent.")],
    output: Annotated[Path, typer.Option("-o", "--output", help="Folder to write the .torrent files into.")],
    manifest: Annotated[
        Path | None, typer.Option(help="The release's manifest: file list and sizes (default: walk ROOT).")
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
    previous: PreviousOpt = None,
    previous_manifest: PreviousManifestOpt = None,
    workers: WorkersOpt = None,
    json_out: JsonOpt = False,
) -> int:
    """Write v1 .torrent shards (files in ID order, no padding) and <release>-torrents.tar.xz, reproducibly."""
    from release.build import build_torrents

    job = make_job(
        release=release,
        output=output,
        shards=shards,
        piece_size=piece_size,
        profile=profile,
        tracker=tracker,
        web_seed=web_seed,
        comment=comment,
        created_by=created_by,
        creation_date=creation_date,
        name=name,
        previous=previous,
        previous_manifest=previous_manifest,
        manifest=manifest,
    )
    with ProgressView(not json_out) as view:
        report = build_torrents(root, job, workers=workers, progress=view)
    if json_out:
        emit_json(report)
    else:
        print_build(report)
    for warning in report.warnings:
        message(f"[yellow]warning:[/] {warning}")
    return 0


def print_build(report: TorrentsReport) -> None:
    """The human summary of written torrents."""
    table = Table("shard", "files", "bytes", "pieces", ".torrent", "info-hash", "reused", "refused by")
    for shard in report.shards:
        refused = [name for name, ok in shard.fits.items() if not ok]
        table.add_row(
            shard.name,
            f"{shard.files:,}",
            human_bytes(shard.bytes),
            f"{shard.pieces:,}",
            human_bytes(shard.torrent_bytes),
            shard.info_hash[:12],
            f"{shard.reused_pieces:,}" if shard.reused_pieces else "-",
            f"[red]{', '.join(refused)}[/]" if refused else "-",
        )
    out_console().print(table)
    message(
        f"hashed {human_bytes(report.hashed_bytes)}, reused {human_bytes(report.reused_bytes)}; "
        f"tarball {report.tarball}"
    )
