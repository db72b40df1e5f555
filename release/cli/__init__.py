"""The `booru-release` command line: thin adapters over the library."""

from __future__ import annotations

import typer

app = typer.Typer(
    name="booru-release",
    help="Release manager for very large, ID-bucketed image datasets (Danbooru20xx style).",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    rich_markup_mode="rich",
    context_settings={"help_option_names": ["-h", "--help"]},
)
manifest_app = typer.Typer(help="Build, compare and export file manifests.", no_args_is_help=True)
app.add_typer(manifest_app, name="manifest")
torrents_app = typer.Typer(help="Plan and check BitTorrent shards.", no_args_is_help=True)
app.add_typer(torrents_app, name="torrents")

from release.cli import cmd_demo, cmd_manifest, cmd_scan, cmd_synth, cmd_torrents, cmd_verify  # noqa: E402,F401


def main() -> None:
    """Console-script entry point."""
    app()
