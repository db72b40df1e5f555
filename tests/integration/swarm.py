"""Real BitTorrent parts for the tests: opentracker, libtorrent peers, a network namespace for Transmission.

Every server listens on a test address only (127.0.0.1, or the test's own veth link) on a free
port, and is stopped by the context manager that started it.
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from release.localnet import stop_group

PEER_SCRIPT = Path(__file__).with_name("lt_peer.py")
REPO = Path(__file__).resolve().parents[2]


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nobody listens on right now (also checked free for UDP)."""
    while True:
        with socket.socket() as tcp, socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
            tcp.bind((host, 0))
            port = int(tcp.getsockname()[1])
            try:
                udp.bind((host, port))
            except OSError:
                continue
            return port


def wait_port(host: str, port: int, timeout: float = 10) -> None:
    """Wait until something accepts TCP connections on host:port."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=0.5):
            return
        time.sleep(0.05)
    raise TimeoutError(f"nothing listens on {host}:{port}")


def stop(proc: subprocess.Popen[str]) -> None:
    """Terminate a child (and its group), killing it if it lingers."""
    stop_group(proc)


@contextlib.contextmanager
def opentracker(info_hashes: list[str], host: str = "127.0.0.1") -> Iterator[str]:
    """Debian's opentracker on host:free port, whitelisting `info_hashes`; yields the announce URL."""
    folder = Path(tempfile.mkdtemp(prefix="booru-tracker-"))
    folder.chmod(0o755)  # opentracker drops to 'nobody' and chroots here; the whitelist must stay readable
    whitelist = folder / "whitelist"
    whitelist.write_text("".join(f"{h}\n" for h in info_hashes))
    whitelist.chmod(0o644)
    port = free_port(host)
    proc = subprocess.Popen(
        # relative whitelist path: opentracker reads it after chrooting into `folder` (when it can)
        ["opentracker", "-i", host, "-p", str(port), "-P", str(port), "-d", str(folder), "-w", whitelist.name],
        cwd=folder,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        wait_port(host, port)
        yield f"http://{host}:{port}/announce"
    finally:
        stop(proc)
        whitelist.unlink()
        folder.rmdir()


@contextlib.contextmanager
def lt_seeder(torrent: Path, save_path: Path, host: str = "127.0.0.1", netns: str | None = None) -> Iterator[str]:
    """A libtorrent seeder process (optionally inside a network namespace); yields its host:port."""
    port = free_port() if netns is None else 40000 + os.getpid() % 20000
    prefix = ["ip", "netns", "exec", netns] if netns else []
    command = [*prefix, sys.executable, str(PEER_SCRIPT), "seed", str(torrent), str(save_path)]
    proc = subprocess.Popen(
        [*command, "--listen", f"{host}:{port}", "--timeout", "900"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline().strip()
        if line != "SEEDING":
            stop(proc)
            raise AssertionError(f"seeder did not start: {line} {proc.stderr.read() if proc.stderr else ''}")
        yield f"{host}:{port}"
    finally:
        stop(proc)


def lt_leech(
    torrent: Path, save_path: Path, timeout: float = 120, netns: Link | None = None, peer: str | None = None
) -> dict[str, int]:
    """Download with a libtorrent leecher process (in `netns`'s namespace, on its address, when given;
    straight from `peer` when given); the JSON it prints when complete."""
    import json

    prefix, listen = (["ip", "netns", "exec", netns.netns], f"{netns.peer}:{40000 + os.getpid() % 20000}") if (
        netns) else ([], f"127.0.0.1:{free_port()}")  # fmt: skip
    proc = subprocess.run(
        [*prefix, sys.executable, str(PEER_SCRIPT), "leech", str(torrent), str(save_path)]
        + ["--listen", listen, "--timeout", str(timeout)]
        + (["--peer", peer] if peer else []),
        capture_output=True,
        text=True,
        timeout=timeout + 30,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    result: dict[str, int] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


@dataclass(frozen=True)
class Link:
    """A veth pair between the test's namespace (`host`) and a namespace of its own (`peer`)."""

    netns: str
    host: str
    peer: str


@contextlib.contextmanager
def netns_link() -> Iterator[Link]:
    """A network namespace joined to this one by a veth pair on a private /24; removed afterwards."""
    tag = f"br{os.getpid() % 100000}"
    subnet = f"10.{200 + os.getpid() % 50}.{os.getpid() % 250}"
    link = Link(netns=tag, host=f"{subnet}.1", peer=f"{subnet}.2")
    commands = [
        ["ip", "netns", "add", tag],
        ["ip", "link", "add", f"{tag}a", "type", "veth", "peer", "name", f"{tag}b"],
        ["ip", "link", "set", f"{tag}b", "netns", tag],
        ["ip", "addr", "add", f"{link.host}/24", "dev", f"{tag}a"],
        ["ip", "link", "set", f"{tag}a", "up"],
        ["ip", "netns", "exec", tag, "ip", "addr", "add", f"{link.peer}/24", "dev", f"{tag}b"],
        ["ip", "netns", "exec", tag, "ip", "link", "set", f"{tag}b", "up"],
        ["ip", "netns", "exec", tag, "ip", "link", "set", "lo", "up"],
    ]
    try:
        for command in commands:
            subprocess.run(command, check=True, capture_output=True)
        yield link
    finally:
        subprocess.run(["ip", "link", "del", f"{tag}a"], capture_output=True)
        subprocess.run(["ip", "netns", "del", tag], capture_output=True)


def hardlink_tree(source: Path, target: Path) -> Path:
    """`cp -al`: a copy of a tree sharing the files' inodes (cheap; never write through it)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run(["cp", "-al", str(source), str(target)], check=True)
    return target
