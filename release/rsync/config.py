"""rsyncd.conf for a public, anonymous, read-only module of a release.

Every setting below is there for a reason a public mirror meets: nobody may write or delete, nobody
may make the server read the whole tree (`--checksum`) or compress terabytes of already-compressed
images, idle or runaway clients are cut off, and each transfer is logged.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from release.errors import BadInput

# Options a client could use to write, delete or make the daemon do work proportional to the tree.
REFUSED = ("delete", "remove-source-files", "checksum")
LOG_FORMAT = "%o %a %m %f %l %b"  # operation, client address, module, file, file length, bytes sent
_MODULE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
_ENV_REFERENCE = re.compile(r"%[A-Za-z_][A-Za-z0-9_]*%")


@dataclass(frozen=True)
class DaemonSettings:
    """What an operator chooses; the rest is fixed policy."""

    module: str
    path: str
    comment: str = ""
    max_connections: int = 50
    timeout: int = 600
    uid: str = "nobody"
    gid: str = "nogroup"
    log_file: str = "/var/log/rsyncd.log"
    lock_file: str = "/run/rsyncd.lock"
    hosts_allow: tuple[str, ...] = ()
    unprivileged: bool = False  # run as an ordinary user: no chroot (needs root), no uid/gid switch
    address: str = ""  # listen here (default: every address)
    port: int = 0  # listen here (default: 873)
    motd_file: str = ""  # shown to every client before the listing or transfer


def _check_value(name: str, value: str) -> None:
    """rsyncd.conf's own rules for a value: one line, no trailing backslash (it joins the next line), no
    surrounding spaces (stripped), no %VAR% (expanded from the daemon's environment)."""
    if "\n" in value or "\r" in value:
        raise BadInput(value, f"{name} cannot contain a line break")
    if value.endswith("\\"):
        raise BadInput(value, f"{name} cannot end in a backslash: rsyncd.conf would join the next line to it")
    if value != value.strip():
        raise BadInput(value, f"{name} cannot start or end with spaces: rsyncd.conf strips them")
    if _ENV_REFERENCE.search(value):
        raise BadInput(value, f"{name} cannot contain %NAME%: rsyncd.conf replaces it with an environment variable")


def _check(settings: DaemonSettings) -> None:
    if not _MODULE.fullmatch(settings.module):
        raise BadInput(settings.module, "module names are letters, digits, '.', '_' and '-'")
    if settings.module.lower() == "global":
        raise BadInput(settings.module, "[global] is rsyncd.conf's section of global settings, not a module name")
    if not settings.path.startswith("/"):
        raise BadInput(settings.path, "the module path must be absolute (the daemon chroots into it)")
    values = {"path": settings.path, "comment": settings.comment, "log file": settings.log_file}
    values |= {"lock file": settings.lock_file, "uid": settings.uid, "gid": settings.gid}
    for name, value in values.items():
        _check_value(name, value)
    for host in settings.hosts_allow:
        _check_value("hosts allow", host)
        if not host or any(c.isspace() or c == "," for c in host):
            raise BadInput(host, "each --hosts-allow is one address, network or host name")
    _check_value("address", settings.address)
    _check_value("motd file", settings.motd_file)
    if not 0 <= settings.port <= 65535:
        raise BadInput(str(settings.port), "the port must be between 1 and 65535")
    if settings.max_connections < 1 or settings.timeout < 1:
        raise BadInput(str(settings.max_connections), "max connections and timeout must be at least 1")


def render_config(settings: DaemonSettings) -> str:
    """The rsyncd.conf text (deterministic)."""
    _check(settings)
    lines = [
        f"# Public read-only rsync module for {settings.module}, written by booru-release rsync config.",
        f"# Run:  rsync --daemon --config=rsyncd.conf   Fetch: rsync -r rsync://HOST/{settings.module}/ ./",
        "",
        "# global",
        f"lock file = {settings.lock_file}",
        f"log file = {settings.log_file}",
        *([f"address = {settings.address}"] if settings.address else []),
        *([f"port = {settings.port}"] if settings.port else []),
        *([f"motd file = {settings.motd_file}"] if settings.motd_file else []),
        "",
        f"[{settings.module}]",
        f"path = {settings.path}",
    ]
    if settings.comment:
        lines.append(f"comment = {settings.comment}")
    lines += [
        "# anonymous and read-only: no auth users, uploads refused, listing allowed",
        "read only = yes",
        "write only = no",
        "list = yes",
        *(
            [
                "# run by an ordinary user: it cannot chroot or switch users (symlinks are munged instead)",
                "use chroot = no",
            ]
            if settings.unprivileged
            else [f"uid = {settings.uid}", f"gid = {settings.gid}", "use chroot = yes"]
        ),
        "numeric ids = yes",
        "ignore nonreadable = yes",
        "# no deletes, no removing the server's files, no whole-tree --checksum reads",
        f"refuse options = {' '.join(REFUSED)}",
        "# the images are compressed already; per-suffix lists no longer work in current rsync",
        "dont compress = *",
        f"max connections = {settings.max_connections}",
        f"timeout = {settings.timeout}",
        "max verbosity = 1",
        "reverse lookup = no",
        "forward lookup = no",
        "transfer logging = yes",
        f"log format = {LOG_FORMAT}",
    ]
    if settings.hosts_allow:
        lines += [f"hosts allow = {' '.join(settings.hosts_allow)}", "hosts deny = *"]
    return "\n".join(lines) + "\n"
