"""Running the real rsync daemon (and client) for a short-lived local mirror, as `demo` does."""

from __future__ import annotations

import contextlib
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

from release.atomic import write_text_atomic
from release.errors import BadInput, RemoteError
from release.localnet import free_port, stop_group
from release.rsync.config import DaemonSettings, render_config


@contextlib.contextmanager
def local_mirror(root: Path, module: str, workdir: Path, timeout: float = 10) -> Iterator[str]:
    """Serve `root` as `module` with our rsyncd.conf on a free 127.0.0.1 port; yields the module URL."""
    workdir.mkdir(parents=True, exist_ok=True)
    conf = workdir / "rsyncd.conf"
    settings = DaemonSettings(
        module=module, path=str(root.resolve()), log_file=str(workdir / "rsyncd.log"), lock_file=str(workdir / "lock")
    )
    write_text_atomic(conf, render_config(settings))
    port = free_port()
    cmd = ["rsync", "--daemon", "--no-detach", f"--config={conf}", f"--port={port}", "--address=127.0.0.1"]
    try:
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
    except FileNotFoundError as exc:
        raise BadInput("rsync", "the rsync program is not installed", "apt-get install rsync") from exc
    try:
        deadline = time.monotonic() + timeout
        while True:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
                break
            if proc.poll() is not None or time.monotonic() > deadline:
                err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
                raise RemoteError("rsync --daemon", f"did not start: {err.strip() or 'timeout'}")
            time.sleep(0.05)
        yield f"rsync://127.0.0.1:{port}/{module}/"
    finally:
        stop_group(proc)


def fetch(url: str, files_from: Path, dest: Path) -> None:
    """`rsync -rt --files-from=LIST URL DEST`; raise RemoteError with rsync's own words on failure."""
    dest.mkdir(parents=True, exist_ok=True)
    proc = subprocess.run(
        ["rsync", "-r", "-t", f"--files-from={files_from}", url, str(dest)], capture_output=True, text=True
    )
    if proc.returncode != 0:
        raise RemoteError(url, f"rsync exited {proc.returncode}: {proc.stderr.strip()[-500:]}")
