"""The options every command that writes .torrent files shares, and their translation to settings."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from release.errors import BadInput
from release.torrents.profiles import DEFAULT_PROFILES, PROFILES

if TYPE_CHECKING:
    from release.torrents.build import TorrentJob

_SIZE = re.compile(r"(\d+)\s*(k|kib|m|mib|g|gib)?", re.IGNORECASE)
_UNITS = {None: 1, "k": 1 << 10, "kib": 1 << 10, "m": 1 << 20, "mib": 1 << 20, "g": 1 << 30, "gib": 1 << 30}

ProfileOpt = Annotated[
    list[str] | None, typer.Option("--profile", help=f"Client profile (repeatable): {', '.join(PROFILES)}.")
]
ShardsOpt = Annotated[str, typer.Option(help="'auto' (fewest that fit every profile) or a divisor of 1000.")]
PieceOpt = Annotated[str, typer.Option(help="'auto' or a power of two, e.g. 4MiB.")]
TrackerOpt = Annotated[list[str] | None, typer.Option(help="Announce URL (repeatable; one tier each).")]
WebSeedOpt = Annotated[
    list[str] | None, typer.Option(help="Web seed base URL (BEP 19; repeatable): serves <base>/<name>/<path>.")
]
CommentOpt = Annotated[str, typer.Option(help="Comment stored in every .torrent.")]
CreatedByOpt = Annotated[str, typer.Option(help="'created by' stored in every .torrent.")]
DateOpt = Annotated[
    str | None, typer.Option(help="Creation date: Unix seconds or YYYY-MM-DD (UTC); default: none stored.")
]
NameOpt = Annotated[str | None, typer.Option(help="info.name, the folder clients save into (default: --release).")]
PreviousOpt = Annotated[
    Path | None, typer.Option(help="Folder of last year's .torrent files: keep their hashes for unchanged data.")
]
PreviousManifestOpt = Annotated[
    Path | None, typer.Option(help="Last year's manifest (needed with --previous: says which files are unchanged).")
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


def parse_date(text: str | None) -> int | None:
    """Unix seconds from '1577836800' or '2020-01-01' (UTC midnight)."""
    if text is None:
        return None
    if text.isdigit():
        return int(text)
    try:
        day = dt.date.fromisoformat(text)
    except ValueError:
        raise BadInput(text, "not a date; write Unix seconds or YYYY-MM-DD") from None
    return int(dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC).timestamp())


def parse_shards(text: str) -> int | None:
    """'auto' -> None, else the number."""
    if text == "auto":
        return None
    try:
        return int(text)
    except ValueError:
        raise BadInput("--shards", f"{text!r} is not 'auto' or a number") from None


def profiles_of(profile: list[str] | None) -> tuple[str, ...]:
    """The selected profiles (the default set when none is given)."""
    return tuple(profile or DEFAULT_PROFILES)


def make_job(
    *,
    release: str,
    output: Path,
    shards: str,
    piece_size: str,
    profile: list[str] | None,
    tracker: list[str] | None,
    web_seed: list[str] | None,
    comment: str,
    created_by: str,
    creation_date: str | None,
    name: str | None,
    previous: Path | None,
    previous_manifest: Path | None,
    manifest: Path | None = None,
) -> TorrentJob:
    """A TorrentJob from the shared command-line options."""
    from release.torrents.build import TorrentJob
    from release.torrents.plan import TorrentSettings

    if previous is not None and not previous.is_dir():
        raise BadInput(str(previous), "--previous must be a folder of .torrent files")
    settings = TorrentSettings(
        release=release,
        trackers=[[t] for t in tracker or []],
        web_seeds=list(web_seed or []),
        comment=comment,
        created_by=created_by,
        creation_date=parse_date(creation_date),
        piece_length=None if piece_size == "auto" else parse_size(piece_size),
        name=name,
    )
    return TorrentJob(
        settings=settings,
        output=output,
        shards=parse_shards(shards),
        profiles=profiles_of(profile),
        previous=previous,
        previous_manifest=previous_manifest,
        new_manifest=manifest,
    )
