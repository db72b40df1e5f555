"""`booru-release publish seedboxes`: the Ansible playbooks, one recap line per host."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape
from rich.table import Table

from release.cli import publish_app
from release.cli.errors import command
from release.cli.output import JsonOpt, emit_json, err_console, message, out_console

if TYPE_CHECKING:
    from release.publish.seedboxes import PlaybookRun


@publish_app.command(
    "seedboxes",
    epilog="""[b]Examples[/b]

  # mirrors and seedboxes, as the inventory says (ansible/inventory/example/ is one to copy)
  booru-release publish seedboxes --inventory inventory/hosts.yml

  # what would change, on two boxes only
  booru-release publish seedboxes --inventory inventory/hosts.yml --check --limit box1,box2

  # the yearly step: pull the new files, swap the torrents, recheck, seed
  booru-release publish seedboxes --inventory inventory/hosts.yml --playbook update --vault-password-file ~/.vault
""",
)
@command
def seedboxes_cmd(
    inventory: Annotated[Path, typer.Option(help="Ansible inventory: hosts in the groups mirrors and seedboxes.")],
    playbook: Annotated[
        str, typer.Option(help="site (mirrors, then seedboxes), mirror, seedbox or update (the yearly swap).")
    ] = "site",
    limit: Annotated[str | None, typer.Option(help="Only these hosts or groups (Ansible's --limit).")] = None,
    check: Annotated[bool, typer.Option("--check", help="Say what would change; change nothing.")] = False,
    tags: Annotated[list[str] | None, typer.Option(help="Only tasks with these tags (repeatable).")] = None,
    extra_vars: Annotated[
        list[str] | None, typer.Option("--extra-vars", "-e", help="Ansible extra vars (repeatable; never shown).")
    ] = None,
    vault_password_file: Annotated[Path | None, typer.Option(help="Vault password file for the inventory.")] = None,
    ansible_dir: Annotated[
        Path | None, typer.Option(help="Playbooks and roles (default: the ones shipped with booru-release).")
    ] = None,
    json_out: JsonOpt = False,
) -> int:
    """Configure rsync mirrors and seedboxes with the project's Ansible roles (ansible-core), then report
    ok / changed / failed per host. Exit 1 when any host failed or was unreachable.

    Seedboxes run Transmission (default) or qBittorrent-nox as a non-root user, RPC on 127.0.0.1 with a
    password; mirrors run a read-only rsync daemon with the module `rsync config` writes.
    """
    from release.publish.seedboxes import run_playbook

    def show(line: str) -> None:
        if line.strip():
            err_console().print(escape(line), highlight=False)

    run = run_playbook(
        inventory, playbook, limit=limit, check=check, tags=tags or (), extra_vars=extra_vars or (),
        vault_password_file=vault_password_file, ansible_dir=ansible_dir, on_line=lambda line: None if json_out
        else show(line),
    )  # fmt: skip
    if json_out:
        emit_json(_as_json(run))
    else:
        _print(run)
    return 0 if run.succeeded else 1


def _as_json(run: PlaybookRun) -> dict[str, object]:
    return {
        "playbook": run.playbook, "check": run.check, "succeeded": run.succeeded, "returncode": run.returncode,
        "command": list(run.command),
        "hosts": {h.name: {**asdict(h), "failures": [{"task": t, "msg": m} for t, m in h.failures]}
                  for h in run.hosts},
    }  # fmt: skip


def _print(run: PlaybookRun) -> None:
    table = Table("host", "ok", "changed", "failed", "unreachable", "skipped")
    for host in run.hosts:
        style = "green" if host.succeeded else "red"
        table.add_row(f"[{style}]{escape(host.name)}[/]", str(host.ok), str(host.changed), str(host.failed),
                      str(host.unreachable), str(host.skipped))  # fmt: skip
    out_console().print(table)
    for host in run.hosts:
        for task, msg in host.failures:
            message(f"[red]{escape(host.name)}[/]: {escape(task)}: {escape(msg)}")
    failed = [h.name for h in run.hosts if not h.succeeded]
    verb = "checked" if run.check else "ran"
    if failed:
        message(f"[red]{run.playbook}.yml failed on {len(failed)} of {len(run.hosts)} host(s)[/]: {', '.join(failed)}")
    else:
        message(f"[green]{verb} {run.playbook}.yml[/] on {len(run.hosts)} host(s)")
