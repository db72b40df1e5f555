"""Ports for the short-lived local servers (rsync daemon, SeaweedFS) that the demo and the tests start."""

from __future__ import annotations

import socket
from contextlib import closing


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nobody listens on at `host` right now."""
    with closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])
