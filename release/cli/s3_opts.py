"""The options every command that talks to a bucket shares, and their translation to S3Settings."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from release.errors import BadInput

if TYPE_CHECKING:
    from release.publish.s3 import S3Store

EndpointOpt = Annotated[str | None, typer.Option(help="S3 endpoint (R2, B2, Wasabi, SeaweedFS, Ceph…); default: AWS.")]
ProfileOpt = Annotated[str | None, typer.Option(help="Profile of the AWS shared config/credentials files.")]
RegionOpt = Annotated[str | None, typer.Option(help="Region (default: boto3's chain, e.g. AWS_DEFAULT_REGION).")]
AddressingOpt = Annotated[str, typer.Option(help="auto, path or virtual (path for most self-hosted servers).")]
ChecksumsOpt = Annotated[
    str, typer.Option(help="when_required (default; R2 and B2 reject boto3's default checksums) or when_supported.")
]
S3WorkersOpt = Annotated[int, typer.Option(help="Requests in flight (threads sharing one connection pool).")]
ProcessesOpt = Annotated[
    int | None, typer.Option(help="Uploading processes (default: one per core; 0: this process only).")
]
RetriesOpt = Annotated[int, typer.Option(help="Attempts per request before giving up (standard retry mode).")]
TimeoutOpt = Annotated[float, typer.Option(help="Seconds to wait for a connection or an answer before retrying.")]
ConditionalOpt = Annotated[
    bool,
    typer.Option(
        "--conditional-writes/--no-conditional-writes",
        help="PUT new keys with If-None-Match and replacements with If-Match, so two publishers never overwrite "
        "each other's objects (off only for servers that answer 501 NotImplemented to them).",
    ),
]
NameOpt = Annotated[
    str | None, typer.Option(help="The torrents' info.name: objects are PREFIX/NAME/PATH (default: the release).")
]


def make_store(
    bucket: str,
    prefix: str,
    endpoint_url: str | None,
    profile: str | None,
    region: str | None,
    addressing_style: str,
    checksums: str,
    workers: int,
    retries: int = 10,
    timeout: float = 60.0,
    processes: int | None = None,
    conditional: bool = True,
) -> S3Store:
    """An S3Store from the shared options (credentials: boto3's standard chain only)."""
    from release.publish.s3 import S3Settings, S3Store

    if addressing_style not in ("auto", "path", "virtual"):
        raise BadInput("--addressing-style", f"{addressing_style!r}: choose auto, path or virtual")
    if checksums not in ("when_required", "when_supported"):
        raise BadInput("--checksums", f"{checksums!r}: choose when_required or when_supported")
    if workers < 1 or retries < 1 or timeout <= 0:
        raise BadInput("--workers/--retries/--timeout", "each must be at least 1 (a timeout above 0)")
    if not bucket or "/" in bucket:
        raise BadInput("--bucket", f"{bucket!r} is not a bucket name")
    settings = S3Settings(
        bucket=bucket, prefix=prefix.strip("/"), endpoint_url=endpoint_url, profile=profile, region=region,
        addressing_style=addressing_style, checksums=checksums, workers=workers, max_attempts=retries,
        connect_timeout=min(timeout, 10.0), read_timeout=timeout, processes=processes,
        conditional=conditional,
    )  # fmt: skip
    return S3Store(settings)
