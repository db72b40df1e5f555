"""`publish seedboxes`: run the project's Ansible playbooks (ansible/) with ansible-playbook, and read the
recap of every host from the `booru_recap` callback (JSON), not from the text Ansible prints.

Ansible is a program here, not a library: it runs as a subprocess with the project's ansible.cfg, an
inventory that must parse (`ANSIBLE_INVENTORY_UNPARSED_FAILED`), and its output handed line by line to a
callback (the CLI shows it). No secret passes through this module: passwords live in the inventory or a
vault, and `--extra-vars` values are masked in what is reported.
"""

from __future__ import annotations

import importlib.resources
import json
import os
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from release.errors import BadInput, RemoteError

PLAYBOOKS = ("site", "seedbox", "mirror", "update")
REPO_ANSIBLE = Path(__file__).resolve().parents[2] / "ansible"
MAX_SHOWN_LINES = 30


def default_ansible_dir() -> Path:
    """The playbooks shipped with the package (release/ansible/ in a built package, else the repository's)."""
    packaged = importlib.resources.files("release") / "ansible"
    if packaged.is_dir():
        return Path(str(packaged))
    return REPO_ANSIBLE


@dataclass(frozen=True)
class HostRecap:
    """What one host did: Ansible's counters, the tasks that failed and the stats the roles reported."""

    name: str
    ok: int
    changed: int
    failed: int
    unreachable: int
    skipped: int
    failures: tuple[tuple[str, str], ...] = ()
    stats: dict[str, Any] = field(default_factory=dict)

    @property
    def succeeded(self) -> bool:
        return self.failed == 0 and self.unreachable == 0


@dataclass(frozen=True)
class PlaybookRun:
    """One ansible-playbook run: the command (secrets masked), its exit status, every host's recap."""

    playbook: str
    command: tuple[str, ...]
    returncode: int
    hosts: tuple[HostRecap, ...]
    check: bool

    @property
    def succeeded(self) -> bool:
        return self.returncode == 0 and all(h.succeeded for h in self.hosts)


def playbook_command(
    inventory: Path,
    playbook: str,
    ansible_dir: Path,
    *,
    limit: str | None = None,
    check: bool = False,
    tags: Sequence[str] = (),
    extra_vars: Sequence[str] = (),
    vault_password_file: Path | None = None,
) -> list[str]:
    """The ansible-playbook command line (pure: checks the choices, touches nothing)."""
    if playbook not in PLAYBOOKS:
        raise BadInput("--playbook", f"{playbook!r}: choose one of {', '.join(PLAYBOOKS)}")
    command = ["ansible-playbook", "-i", str(inventory), str(ansible_dir / f"{playbook}.yml")]
    if limit:
        command += ["--limit", limit]
    if check:
        command += ["--check", "--diff"]
    if tags:
        command += ["--tags", ",".join(tags)]
    for value in extra_vars:
        command += ["--extra-vars", value]
    if vault_password_file is not None:
        command += ["--vault-password-file", str(vault_password_file)]
    return command


def masked(command: Sequence[str]) -> tuple[str, ...]:
    """The command as it may be shown: the values of --extra-vars hidden (they may carry secrets)."""
    return tuple("***" if i and command[i - 1] == "--extra-vars" else part for i, part in enumerate(command))


def run_playbook(
    inventory: Path,
    playbook: str = "site",
    *,
    limit: str | None = None,
    check: bool = False,
    tags: Sequence[str] = (),
    extra_vars: Sequence[str] = (),
    vault_password_file: Path | None = None,
    ansible_dir: Path | None = None,
    on_line: Callable[[str], None] = lambda line: None,
) -> PlaybookRun:
    """Run one of the project's playbooks against `inventory`; every host's recap. Raises BadInput when
    Ansible cannot start (no ansible-playbook, an inventory that does not parse, no host to run on)."""
    folder = ansible_dir or default_ansible_dir()
    if not (folder / "ansible.cfg").is_file():
        raise BadInput(str(folder), "not the booru-release ansible folder (no ansible.cfg)")
    if not inventory.exists():
        raise BadInput(str(inventory), "no such inventory", "see ansible/inventory/example/ for one to start from")
    if shutil.which("ansible-playbook") is None:
        raise BadInput("ansible-playbook", "is not installed", "pip install ansible-core (scripts/setup.sh does)")
    command = playbook_command(
        inventory, playbook, folder, limit=limit, check=check, tags=tags, extra_vars=extra_vars,
        vault_password_file=vault_password_file,
    )  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="booru-ansible-") as scratch:
        recap_file = Path(scratch) / "recap.json"
        env = {
            **os.environ, "ANSIBLE_CONFIG": str(folder / "ansible.cfg"), "ANSIBLE_CALLBACKS_ENABLED": "booru_recap",
            "BOORU_RECAP_FILE": str(recap_file), "ANSIBLE_INVENTORY_UNPARSED_FAILED": "true",
            "ANSIBLE_NOCOLOR": "1", "ANSIBLE_FORCE_COLOR": "0", "PYTHONUNBUFFERED": "1",
        }  # fmt: skip
        tail: list[str] = []
        with subprocess.Popen(
            command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, text=True,
            errors="replace",
        ) as process:  # fmt: skip
            assert process.stdout is not None
            for line in process.stdout:
                line = line.rstrip("\n")
                on_line(line)
                tail = [*tail[-(MAX_SHOWN_LINES - 1) :], line]
        returncode = process.returncode
        recap = json.loads(recap_file.read_text()) if recap_file.exists() else None
    said = "\n".join(t for t in tail if t.strip())
    if recap is None:
        problem = "inventory" if "inventory" in said.lower() else "playbook run"
        raise BadInput(str(inventory), f"ansible-playbook could not start the {problem} (exit {returncode}):\n{said}")
    hosts = tuple(_host(name, counts) for name, counts in sorted(recap["hosts"].items()))
    if not hosts:
        raise BadInput(
            str(inventory), f"no host of the inventory is in the groups {playbook}.yml runs on",
            "put hosts in the groups `mirrors` and/or `seedboxes` (see ansible/inventory/example/)",
        )  # fmt: skip
    if returncode not in (0, 2, 4):  # 2: a host failed, 4: a host unreachable; the recap tells which
        raise RemoteError("ansible-playbook", f"exited {returncode}:\n{said}")
    return PlaybookRun(playbook, masked(command), returncode, hosts, check)


def _host(name: str, counts: dict[str, Any]) -> HostRecap:
    failures = tuple((str(f["task"]), str(f["msg"])) for f in counts.get("failures", []))
    return HostRecap(
        name=name, ok=int(counts["ok"]), changed=int(counts["changed"]), failed=int(counts["failed"]),
        unreachable=int(counts["unreachable"]), skipped=int(counts["skipped"]), failures=failures,
        stats=dict(counts.get("stats", {})),
    )  # fmt: skip
