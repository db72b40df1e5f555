"""The `booru-release` command line: thin adapters over the library."""

from __future__ import annotations

import typer

app = typer.Typer(
    name="booru-release",
    help="Release manager for very large, ID-bucketed image datasets (Danbooru20xx style).",
    epilog="Exit codes: 0 ok · 1 a verification failed · 2 usage or bad input · 3 I/O error · "
    "130 interrupted (Ctrl-C) · 143 terminated (SIGTERM). Outputs appear whole or not at all; "
    "-o - is standard output for lists and reports; a killed `manifest build` resumes when run again.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    rich_markup_mode="rich",
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        from importlib.metadata import version

        typer.echo(f"booru-release {version('booru-release')}")
        raise typer.Exit()


@app.callback()
def _main(
    show_version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version and exit."
    ),
) -> None:
    """Global options (the help text is the Typer app's)."""


manifest_app = typer.Typer(help="Build, compare and export file manifests.", no_args_is_help=True)
app.add_typer(manifest_app, name="manifest")
torrents_app = typer.Typer(help="Plan and check BitTorrent shards.", no_args_is_help=True)
app.add_typer(torrents_app, name="torrents")
rsync_app = typer.Typer(help="Public rsync file lists and daemon configuration.", no_args_is_help=True)
app.add_typer(rsync_app, name="rsync")
publish_app = typer.Typer(
    help="Publish a release to mirrors: S3-compatible buckets, seedboxes and rsync mirrors (Ansible).",
    no_args_is_help=True,
)
app.add_typer(publish_app, name="publish")
metadata_app = typer.Typer(help="Archive, package and summarise the metadata export.", no_args_is_help=True)
app.add_typer(metadata_app, name="metadata")

from release.cli import (  # noqa: E402,F401
    cmd_cut,
    cmd_demo,
    cmd_derive,
    cmd_manifest,
    cmd_metadata,
    cmd_publish,
    cmd_reconstruct,
    cmd_rsync,
    cmd_scan,
    cmd_seedboxes,
    cmd_select,
    cmd_synth,
    cmd_torrents,
    cmd_verify,
)


def main() -> None:
    """Console-script entry point."""
    app()
