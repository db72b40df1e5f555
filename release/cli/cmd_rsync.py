"""`booru-release rsync filelist|config`."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from release.atomic import write_text_atomic
from release.cli import rsync_app
from release.cli.errors import command
from release.cli.output import JsonOpt, ProgressView, emit_json, human_bytes, message, one_stdout


@rsync_app.command(
    "filelist",
    epilog="""[b]Examples[/b]

  booru-release rsync filelist danbooru2019 -o danbooru2019.txt

  # from the manifest, without touching the tree; then a subset download
  booru-release rsync filelist danbooru2019.manifest.jsonl.zst -o list.txt
  rsync -r --files-from=list-512px.txt rsync://mirror/danbooru2019/ ./danbooru2019/
""",
)
@command
def filelist_cmd(
    source: Annotated[Path, typer.Argument(help="Release root or its manifest.")],
    output: Annotated[
        Path, typer.Option("-o", "--output", help="The list to write (also FILE.xz, FILE-<subset>; -: stdout only).")
    ],
    json_out: JsonOpt = False,
) -> int:
    """Write the public rsync file list (./original/0000/1000.jpg lines; subset, bucket, ID order)."""
    from release.rsync.filelist import collect, write_filelists

    one_stdout(json_out, output=output)
    with ProgressView(not json_out) as view:
        table = collect(source, view)
    report = write_filelists(table, output)
    if json_out:
        emit_json({"files": report.files, "bytes": report.bytes, "outputs": report.outputs})
    else:
        for path, lines in report.outputs.items():
            message(f"wrote {path}: {lines:,} lines")
        message(f"{report.files:,} files, {human_bytes(report.bytes)}")
    return 0


@rsync_app.command(
    "config",
    epilog="""[b]Examples[/b]

  booru-release rsync config --module danbooru2019 --path /srv/danbooru2019 -o /etc/rsyncd.conf

  booru-release rsync config --module danbooru2019 --path /srv/danbooru2019 --max-connections 20

  # a daemon run by an ordinary user (what the rsync_mirror Ansible role writes)
  booru-release rsync config --module danbooru2019 --path /srv/danbooru2019 --unprivileged \\
      --lock-file /var/lib/booru-rsync/lock --log-file /var/lib/booru-rsync/rsyncd.log --port 8873
""",
)
@command
def config_cmd(
    module: Annotated[str, typer.Option(help="Module name clients fetch: rsync://HOST/MODULE/.")],
    path: Annotated[Path, typer.Option(help="Release root the module serves (absolute).")],
    output: Annotated[
        Path | None, typer.Option("-o", "--output", help="rsyncd.conf to write (default: stdout).")
    ] = None,
    comment: Annotated[str, typer.Option(help="Module comment shown in listings.")] = "",
    max_connections: Annotated[int, typer.Option(help="Concurrent clients before refusing.")] = 50,
    timeout: Annotated[int, typer.Option(help="Seconds of silence before a client is dropped.")] = 600,
    uid: Annotated[str, typer.Option(help="User the daemon serves files as.")] = "nobody",
    gid: Annotated[str, typer.Option(help="Group the daemon serves files as.")] = "nogroup",
    log_file: Annotated[str, typer.Option(help="Transfer log.")] = "/var/log/rsyncd.log",
    lock_file: Annotated[str, typer.Option(help="Lock file counting connections.")] = "/run/rsyncd.lock",
    hosts_allow: Annotated[
        list[str] | None, typer.Option("--hosts-allow", help="Only these hosts/networks (repeatable).")
    ] = None,
    unprivileged: Annotated[
        bool,
        typer.Option("--unprivileged", help="For a daemon run by an ordinary user: no chroot, no uid/gid switch."),
    ] = False,
    address: Annotated[str, typer.Option(help="Address to listen on (default: every address).")] = "",
    port: Annotated[int, typer.Option(help="Port to listen on (default: 873).")] = 0,
    motd_file: Annotated[str, typer.Option(help="Message shown to every client (a file on the mirror).")] = "",
    json_out: JsonOpt = False,
) -> int:
    """Write rsyncd.conf for a public, anonymous, read-only module done right."""
    from release.rsync.config import DaemonSettings, render_config

    settings = DaemonSettings(
        module=module,
        path=str(path),
        comment=comment,
        max_connections=max_connections,
        timeout=timeout,
        uid=uid,
        gid=gid,
        log_file=log_file,
        lock_file=lock_file,
        hosts_allow=tuple(hosts_allow or ()),
        unprivileged=unprivileged,
        address=address,
        port=port,
        motd_file=motd_file,
    )
    one_stdout(json_out, output=output)
    text = render_config(settings)
    if output is not None:
        write_text_atomic(output, text)
    if json_out:
        emit_json({"module": module, "path": str(path), "output": str(output) if output else None, "config": text})
    elif output is None:
        sys.stdout.write(text)
    else:
        message(f"wrote {output}")
    return 0
