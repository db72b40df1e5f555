"""A real S3 server for the tests: the project's local SeaweedFS (`release.publish.localserver`).

Identities: `tester` (full access, the credentials the tests put in the environment), `reader` (read
and list only) and `anonymous` with Read on the web-seed bucket, so plain HTTP clients (a BitTorrent
web seed) can read it.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from release.publish.localserver import Identity, LocalS3, local_s3

ACCESS_KEY = "AKIABOORURELEASETEST"
READER_KEY, READER_SECRET = "AKIABOORURELEASEREAD", "r3ad3r-s3cr3t-only-lists-and-reads"
SECRET_KEY = "s3cr3t-b00ru-release-test-key-do-not-log"
WEB_BUCKET = "webseed"


@dataclass
class S3Server:
    """A running SeaweedFS: its S3 endpoint and the environment that gives boto3 its credentials."""

    local: LocalS3

    @property
    def endpoint(self) -> str:
        return self.local.endpoint

    @property
    def env(self) -> dict[str, str]:
        return self.local.env

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


IDENTITIES = (
    Identity("tester", ACCESS_KEY, SECRET_KEY, ("Admin", "Read", "Write", "List", "Tagging")),
    Identity("reader", READER_KEY, READER_SECRET, ("Read", "List")),
)


def start_s3(folder: Path) -> Iterator[S3Server]:
    """Start the project's local SeaweedFS in `folder` (web-seed bucket readable anonymously); stop it."""
    with local_s3(folder, IDENTITIES, WEB_BUCKET) as server:
        yield S3Server(server)
