"""`booru-release torrents plan|lint`."""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from release.cli import torrents_app
from release.cli.errors import EXIT_FAILED, command
from release.cli.output import JsonOpt, ProgressView, emit_json, human_bytes, message, out_console
from release.errors import BadInput
from release.torrents.profiles import DEFAULT_PROFILES, PROFILES

if TYPE_CHECKING:
    from release.torrents.plan import TorrentPlan

_SIZE = re.compile(r"(\d+)\s*(k|kib|m|mib|g|gib)?", re.IGNORECASE)
_UNITS = {None: 1, "k": 1 << 10, "kib": 1 << 10, "m": 1 << 20, "mib": 1 << 20, "g": 1 << 30, "gib": 1 << 30}
ProfileOpt = Annotated[
    list[str] | None, typer.Option("--profile", help=f"Client profile (repeatable): {', '.join(PROFILES)}.")
]


def parse_size(text: str) -> int:
    """'4MiB', '4M', '4194304' -> bytes; a piece size must be a power of two of at least 16 KiB."""
    match = _SIZE.fullmatch(text.strip())
    if match is None:
        raise BadInput(text, "not a size; write e.g. 4MiB or 262144")
    size = int(match.group(1)) * _UNITS[(match.group(2) or "").lower() or None]
    if size < 16384 or size & (size - 1):
        raise BadInput(text, "piece size must be a power of two of at least 16 KiB")
    return size


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
    shards: Annotated[str, typer.Option(help="'auto' (fewest that fit) or a divisor of 1000.")] = "auto",
    piece_size: Annotated[str, typer.Option(help="'auto' or a power of two, e.g. 4MiB.")] = "auto",
    profile: ProfileOpt = None,
    tracker: Annotated[list[str] | None, typer.Option(help="Announce URL (repeatable; one tier each).")] = None,
    web_seed: Annotated[list[str] | None, typer.Option(help="Web seed base URL (BEP 19; repeatable).")] = None,
    json_out: JsonOpt = False,
) -> int:
    """Plan shards of whole bucket ranges: files, bytes, pieces, predicted .torrent bytes and tokens, headroom."""
    from release.torrents.plan import TorrentSettings, collect_stats, plan_torrents

    count = None if shards == "auto" else _int(shards, "--shards")
    settings = TorrentSettings(
        release=release,
        trackers=[[t] for t in tracker or []],
        web_seeds=list(web_seed or []),
        piece_length=None if piece_size == "auto" else parse_size(piece_size),
    )
    with ProgressView(not json_out) as view:
        stats = collect_stats(source, view)
    plan = plan_torrents(stats, settings, shards=count, profiles=tuple(profile or DEFAULT_PROFILES))
    if json_out:
        emit_json(plan.model_dump() | {"fits": plan.fits})
    else:
        _print_plan(plan)
    for warning in plan.warnings:
        message(f"[yellow]warning:[/] {warning}")
    return 0


def _int(text: str, option: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise BadInput(option, f"{text!r} is not 'auto' or a number") from None


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
    message(f"profiles: {', '.join(plan.profiles)}; shards per subset: {plan.shard_counts}")


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

    reports = [lint_torrent(path, tuple(profile or DEFAULT_PROFILES)) for path in files]
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
