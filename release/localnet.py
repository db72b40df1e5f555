"""Ports for the short-lived local servers (rsync daemon, SeaweedFS) that the demo and the tests start."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
from contextlib import closing
from typing import Any


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nobody listens on at `host` right now."""
    with closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def stop_group(proc: subprocess.Popen[Any], grace: float = 5) -> None:
    """Terminate a child started with start_new_session (and its group), killing it if it lingers more
    than `grace` seconds."""
    if proc.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(grace)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(5)
