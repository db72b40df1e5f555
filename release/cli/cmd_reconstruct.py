"""`booru-release reconstruct`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from release.cli import app
from release.cli.errors import EXIT_FAILED, command
from release.cli.output import JsonOpt, ProgressView, WorkersOpt, emit_json, human_bytes, message
from release.errors import BadInput


@app.command(
    "reconstruct",
    epilog="""[b]Examples[/b]

  # danbooru2017 from a danbooru2019 tree, hard links, proven against its manifest
  booru-release reconstruct danbooru2017 --from danbooru2019 --to danbooru2017 --manifest danbooru2017.jsonl.zst

  # no manifest (as for the real danbooru2017): rebuilt from the metadata, with what it cannot prove
  booru-release reconstruct danbooru2017 --from danbooru2019 --to danbooru2017 --link copy

  # a release file of your own instead of manifests/releases/NAME.toml
  booru-release reconstruct synth2017 --release-file synth2017.toml --from data/2019 --to out/2017
""",
)
@command
def reconstruct_cmd(
    name: Annotated[str, typer.Argument(help="Release to rebuild (manifests/releases/NAME.toml).")],
    source: Annotated[Path, typer.Option("--from", help="A later release root holding it.")],
    target: Annotated[Path, typer.Option("--to", help="Folder to rebuild it in (re-runs keep what is there).")],
    link: Annotated[str, typer.Option(help="hard, reflink, copy or symlink.")] = "hard",
    manifest: Annotated[Path | None, typer.Option(help="The old release's manifest: proves every byte.")] = None,
    release_file: Annotated[Path | None, typer.Option(help="Release file to use instead of the catalogue.")] = None,
    catalogue: Annotated[
        Path | None, typer.Option(help="Folder of release files (default: manifests/releases).")
    ] = None,
    extras: Annotated[
        Path | None,
        typer.Option(help="Folder for the manifest, tarball, torrents and refetch list (default: TO-extras)."),
    ] = None,
    workers: WorkersOpt = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Count what would be placed and what the source lacks; write nothing.")
    ] = False,
    json_out: JsonOpt = False,
) -> int:
    """Rebuild an earlier release from a later tree, bit for bit, and prove it (exit 0 only if identical)."""
    from release.reconstruct import reconstruct
    from release.releases import CATALOGUE, find_release, load_release

    facts = load_release(release_file) if release_file else find_release(name, catalogue or CATALOGUE)
    if facts.name != name:
        raise BadInput(str(release_file), f"describes {facts.name!r}, not {name!r}")
    with ProgressView(not json_out) as view:
        report = reconstruct(
            facts,
            source,
            target,
            link=link,
            manifest=manifest,
            extras=extras,
            workers=workers,
            dry_run=dry_run,
            progress=view,
        )
    if json_out:
        emit_json(report)
        return 0 if report.identical_release or dry_run else EXIT_FAILED
    verb = "would place" if dry_run else "placed"
    message(f"{verb} {report.placed_files:,} files ({human_bytes(report.placed_bytes)}) in {target} by {link}")
    if dry_run:
        message(f"missing from the source tree: {len(report.missing):,}")
        for path in report.missing[:20]:
            message(f"  missing: {path}")
        return 0
    if report.proven:
        message(
            f"identical to {name}'s manifest: {report.identical_files:,} files, {human_bytes(report.identical_bytes)}; "
            f"differ: {len(report.differ)}; missing: {len(report.missing)}; extra: {len(report.extra)}"
        )
        for label, paths in (("differs", report.differ), ("missing", report.missing), ("extra", report.extra)):
            for path in paths[:20]:
                message(f"  {label}: {path}")
    if report.refetch_list:
        message(f"fetch these from a mirror that kept them: {report.refetch_list}")
    if report.metadata_tarball:
        message(f"metadata tarball: {report.metadata_tarball}")
    for torrent in report.torrents:
        message(f"torrent {torrent.name}: info-hash {torrent.info_hash}")
    for note in report.notes:
        message(f"[yellow]note:[/] {note}")
    if report.identical_release:
        message(f"[green]{name} is identical, file for file[/]")
        return 0
    message(f"[red]{name} is {'not identical' if report.proven else 'not proven'}[/]")
    return EXIT_FAILED
