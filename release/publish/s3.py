"""The S3 client: boto3 and botocore are imported here and, for the bulk PUTs, in `s3put` beside it.

Everything a publish or a mirror check needs from a bucket, as plain calls: list a prefix (one
request per 1,000 keys), get and put small objects, upload a file (one PUT with Content-MD5, or a
multipart upload of fixed-size parts each with its Content-MD5), copy, delete, abort stale multipart
uploads, ask for versioning. Every HTTP request boto3 sends is counted by operation (its event hooks),
so tests and `--dry-run` speak of requests, not guesses. Errors become the project's errors with a
plain message; no credential ever appears in one.
"""

from __future__ import annotations

import base64
import hashlib
import threading
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import boto3
import botocore.exceptions
from botocore.config import Config

from release.errors import BadInput, InputIOError, ReleaseError, RemoteError
from release.publish.s3put import DAMAGED_CODES, LeanPut, PutRefused

READ_SIZE = 1 << 20


@dataclass(frozen=True)
class S3Settings:
    """Where and how to talk to the bucket. Credentials come only from boto3's standard chain
    (environment, shared files with `profile`, instance roles), never from here."""

    bucket: str
    prefix: str = ""
    endpoint_url: str | None = None
    profile: str | None = None
    region: str | None = None
    addressing_style: str = "auto"  # auto, path or virtual
    checksums: str = "when_required"  # boto3's when_supported breaks R2 and B2; Content-MD5 is sent anyway
    workers: int = 16  # requests in flight, over all processes
    processes: int | None = None  # uploading processes (None: one per core; 0: this process only)
    max_attempts: int = 10
    conditional: bool = True  # If-None-Match/If-Match on PUTs; off only for servers that answer 501 to them
    connect_timeout: float = 10.0
    read_timeout: float = 60.0


class Listed(NamedTuple):
    """One object of a listing."""

    key: str
    size: int
    etag: str  # without quotes


@dataclass
class Requests:
    """HTTP requests sent, by operation, and calls that were retried (thread-safe counters)."""

    sent: Counter[str] = field(default_factory=Counter)
    calls: Counter[str] = field(default_factory=Counter)
    resent: int = 0  # bodies sent again after the server found them damaged (BadDigest)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def on_send(self, event_name: str = "", **_: Any) -> None:
        with self.lock:
            self.sent[event_name.rsplit(".", 1)[-1]] += 1

    def on_call(self, event_name: str = "", **_: Any) -> None:
        with self.lock:
            self.calls[event_name.rsplit(".", 1)[-1]] += 1

    def take(self) -> tuple[Counter[str], Counter[str], int]:
        """The counts so far, and start again from zero (a worker process hands them to its parent)."""
        with self.lock:
            taken = (self.sent.copy(), self.calls.copy(), self.resent)
            self.sent.clear()
            self.calls.clear()
            self.resent = 0
        return taken

    def merge(self, sent: Counter[str], calls: Counter[str], resent: int) -> None:
        """Add counts taken in another process."""
        with self.lock:
            self.sent.update(sent)
            self.calls.update(calls)
            self.resent += resent

    @property
    def retries(self) -> int:
        """Requests sent beyond one per call: what faults cost."""
        return max(0, sum(self.sent.values()) - sum(self.calls.values())) + self.resent


EXPECT_ABOVE = 8 << 20


def _drop_expect_for_small_bodies(request: Any, **_: Any) -> None:
    """botocore asks for `100-continue` before every PUT body; for a small object that is a wasted round trip,
    and some servers (SeaweedFS seen here) answer it late, desynchronising the connection. Large parts keep it
    (a refused request then costs no upload). The header is not signed, so it can go."""
    body = getattr(request, "body", None)
    size = len(body) if isinstance(body, bytes | bytearray) else getattr(body, "len", None)
    if size is None and body is not None and hasattr(body, "seek") and hasattr(body, "tell"):
        here = body.tell()
        size = body.seek(0, 2) - here
        body.seek(here)
    if size is not None and size <= EXPECT_ABOVE:
        request.headers.pop("Expect", None)


def content_md5(digest_hex: str) -> str:
    """The Content-MD5 header value for an md5 given in hex."""
    return base64.b64encode(bytes.fromhex(digest_hex)).decode()


def multipart_etag(part_md5s: list[bytes]) -> str:
    """The ETag S3 gives a multipart upload: md5 of the parts' md5s, a dash, the number of parts."""
    return f"{hashlib.md5(b''.join(part_md5s)).hexdigest()}-{len(part_md5s)}"


def file_multipart_etag(path: str, size: int, part_size: int) -> str:
    """The multipart ETag a file uploaded in `part_size` parts gets (reads the file once)."""
    digests = []
    with open(path, "rb") as handle:
        for _ in range(0, size, part_size):
            digests.append(hashlib.md5(handle.read(part_size)).digest())
    return multipart_etag(digests)


class S3Store:
    """One bucket through one boto3 client (thread-safe, one connection pool shared by the workers)."""

    def __init__(self, settings: S3Settings) -> None:
        self.settings = settings
        self.requests = Requests()
        try:
            session = boto3.Session(profile_name=settings.profile, region_name=settings.region)
        except botocore.exceptions.ProfileNotFound as exc:
            raise BadInput("--profile", f"no AWS profile named {settings.profile!r}") from exc
        config = Config(
            max_pool_connections=max(settings.workers, 10),
            retries={"mode": "standard", "max_attempts": settings.max_attempts},
            connect_timeout=settings.connect_timeout,
            read_timeout=settings.read_timeout,
            s3={"addressing_style": settings.addressing_style},
            request_checksum_calculation=settings.checksums,
            response_checksum_validation=settings.checksums,
        )
        self._client = session.client("s3", endpoint_url=settings.endpoint_url, config=config)
        self._session = session
        self._lean: LeanPut | None = None
        self._lean_lock = threading.Lock()
        credentials = session.get_credentials()
        frozen = credentials.get_frozen_credentials() if credentials is not None else None
        self._secrets = [s for s in (frozen.secret_key, frozen.token) if s] if frozen else []
        events = self._client.meta.events
        events.register("before-send.s3", _drop_expect_for_small_bodies)
        events.register("before-send.s3", self.requests.on_send)
        events.register("after-call.s3", self.requests.on_call)
        events.register("after-call-error.s3", self.requests.on_call)

    # errors ---------------------------------------------------------------------------------------
    def _scrub(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, "***")
        return text

    def _error(self, what: str, exc: Exception) -> ReleaseError:
        """One translation of boto3's exceptions into the project's errors (no secret in the message)."""
        where = f"s3://{self.settings.bucket}/{what}"
        if isinstance(exc, botocore.exceptions.NoCredentialsError):
            return BadInput(where, "no credentials found", "set AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or --profile")
        if isinstance(exc, botocore.exceptions.EndpointConnectionError | botocore.exceptions.ConnectionError):
            return RemoteError(where, self._scrub(f"cannot reach the endpoint: {exc}"))
        if isinstance(exc, botocore.exceptions.ClientError):
            error = exc.response.get("Error", {})
            code = str(error.get("Code", "?"))
            text = self._scrub(f"{code}: {error.get('Message') or exc}")
            if code in ("NoSuchBucket", "InvalidBucketName"):
                return BadInput(where, text, "check --bucket (and --endpoint-url)")
            if code in ("InvalidAccessKeyId", "SignatureDoesNotMatch", "AccessDenied", "Forbidden", "403"):
                return BadInput(where, text, "check the credentials and the bucket's permissions")
            return RemoteError(where, text)
        if isinstance(exc, botocore.exceptions.BotoCoreError):
            return RemoteError(where, self._scrub(str(exc)))
        raise exc

    def _call(self, what: str, operation: str, **kwargs: Any) -> dict[str, Any]:
        try:
            result: dict[str, Any] = getattr(self._client, operation)(**kwargs)
        except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as exc:
            raise self._error(what, exc) from exc
        return result

    def _send_body(self, what: str, operation: str, **kwargs: Any) -> dict[str, Any]:
        """A call carrying a body with its Content-MD5: a body damaged on the way is refused by the server
        (BadDigest), which boto3 does not retry; send it again, as often as any other failed request."""
        for attempt in range(1, self.settings.max_attempts + 1):
            try:
                return self._call(what, operation, **kwargs)
            except RemoteError as exc:
                if self._code(exc) not in DAMAGED_CODES or attempt == self.settings.max_attempts:
                    raise
                with self.requests.lock:
                    self.requests.resent += 1
        raise AssertionError("unreachable")  # pragma: no cover

    @staticmethod
    def _code(exc: ReleaseError) -> str:
        code = getattr(exc, "code", None)  # set by _refused on the lean PUT path
        if isinstance(code, str):
            return code
        cause = exc.__cause__
        if isinstance(cause, botocore.exceptions.ClientError):
            return str(cause.response.get("Error", {}).get("Code", ""))
        return ""

    # bucket ---------------------------------------------------------------------------------------
    def check_bucket(self) -> None:
        """HEAD the bucket: it exists and these credentials reach it."""
        try:
            self._client.head_bucket(Bucket=self.settings.bucket)
        except botocore.exceptions.ClientError as exc:
            status = str(exc.response.get("Error", {}).get("Code", ""))
            if status in ("404", "NoSuchBucket"):
                raise BadInput(f"s3://{self.settings.bucket}", "no such bucket", "check --bucket") from exc
            raise self._error("", exc) from exc
        except botocore.exceptions.BotoCoreError as exc:
            raise self._error("", exc) from exc

    def create_bucket(self) -> None:
        """Create the bucket; one that these credentials already own is fine."""
        try:
            self._client.create_bucket(Bucket=self.settings.bucket)
        except botocore.exceptions.ClientError as exc:
            if str(exc.response.get("Error", {}).get("Code", "")) != "BucketAlreadyOwnedByYou":
                raise self._error("", exc) from exc
        except botocore.exceptions.BotoCoreError as exc:
            raise self._error("", exc) from exc

    def versioned(self) -> bool:
        """Whether the bucket keeps old versions of overwritten and deleted objects."""
        return self._call("", "get_bucket_versioning", Bucket=self.settings.bucket).get("Status") == "Enabled"

    def list(self, prefix: str) -> Iterator[Listed]:
        """Every object under `prefix`, in key order: one request per 1,000 objects."""
        paginator = self._client.get_paginator("list_objects_v2")
        try:
            for page in paginator.paginate(Bucket=self.settings.bucket, Prefix=prefix):
                for item in page.get("Contents", []):
                    yield Listed(item["Key"], int(item["Size"]), str(item["ETag"]).strip('"'))
        except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as exc:
            raise self._error(prefix, exc) from exc

    def list_relative(self, base: str) -> Iterator[tuple[bytes, int, str]]:
        """(path below `base`, size, ETag) of every object under the folder `base`: what a RemoteIndex holds."""
        cut = len(base) + 1
        for listed in self.list(base + "/"):
            yield listed.key[cut:].encode("utf-8", "surrogateescape"), listed.size, listed.etag

    def get(self, key: str) -> bytes | None:
        """A small object's bytes, or None when there is none."""
        try:
            response = self._client.get_object(Bucket=self.settings.bucket, Key=key)
            return bytes(response["Body"].read())
        except botocore.exceptions.ClientError as exc:
            if str(exc.response.get("Error", {}).get("Code")) in ("NoSuchKey", "404"):
                return None
            raise self._error(key, exc) from exc
        except botocore.exceptions.BotoCoreError as exc:
            raise self._error(key, exc) from exc

    def put_bytes(self, key: str, data: bytes) -> None:
        """Write a small object (state files), with its Content-MD5."""
        digest = hashlib.md5(data).hexdigest()
        self._send_body(
            key, "put_object", Bucket=self.settings.bucket, Key=key, Body=data, ContentMD5=content_md5(digest)
        )

    def delete(self, key: str) -> None:
        """Delete one object (a delete marker where the bucket keeps versions)."""
        self._call(key, "delete_object", Bucket=self.settings.bucket, Key=key)

    def copy(self, source: str, target: str) -> None:
        """Server-side copy (objects up to 5 GB)."""
        self._call(
            target, "copy_object", Bucket=self.settings.bucket, Key=target,
            CopySource={"Bucket": self.settings.bucket, "Key": source},
        )  # fmt: skip

    def abort_stale_uploads(self, prefix: str) -> int:
        """Abort every unfinished multipart upload under `prefix` (ours, from a run that died); how many."""
        aborted = 0
        listing = self._call(prefix, "list_multipart_uploads", Bucket=self.settings.bucket, Prefix=prefix)
        for upload in listing.get("Uploads", []):
            self._call(
                upload["Key"], "abort_multipart_upload", Bucket=self.settings.bucket, Key=upload["Key"],
                UploadId=upload["UploadId"],
            )  # fmt: skip
            aborted += 1
        return aborted

    # uploads --------------------------------------------------------------------------------------
    def upload(self, key: str, path: str, size: int, md5: str, part_size: int, *, new: bool, replaces: str = "") -> str:
        """Upload a file under `key`; return its ETag. One PUT with Content-MD5 up to `part_size` bytes (so a
        corrupted upload is refused by the server), else multipart with one Content-MD5 a part. `new`: refuse
        to overwrite an object that appeared meanwhile (If-None-Match: *); `replaces`: the ETag the key must still
        have (If-Match); either way the answer is PreconditionFailed."""
        if size > part_size:
            return self._multipart(key, path, size, part_size)
        try:
            with open(path, "rb") as handle:
                data = handle.read(size + 1)
        except OSError as exc:
            raise InputIOError(path, f"cannot read: {exc.strerror}") from exc
        if len(data) != size:
            raise InputIOError(path, f"is {len(data)} bytes, the manifest says {size}: verify the tree, publish again")
        headers = {"Content-MD5": content_md5(md5)}
        if self.settings.conditional and new:
            headers["If-None-Match"] = "*"
        elif self.settings.conditional and replaces:
            headers["If-Match"] = f'"{replaces}"'
        self.requests.on_call(event_name="after-call.s3.PutObject")
        # the server checks the bytes against the manifest's md5 (Content-MD5); only when it refuses them is the
        # file hashed here, to tell a file that changed (no retry) from bytes damaged on the way (sent again)

        def changed() -> bool:
            return hashlib.md5(data).hexdigest() != md5

        try:
            self._lean_put().put(key, data, headers, self.requests.on_send, changed)
        except PutRefused as exc:
            if exc.code in DAMAGED_CODES and changed():
                raise InputIOError(path, "differs from the manifest (md5): verify the tree, publish again") from exc
            raise self._refused(key, exc) from exc
        return md5

    def _lean_put(self) -> LeanPut:
        with self._lean_lock:
            if self._lean is None:
                try:
                    self._lean = LeanPut(
                        self._session, self._client, self.settings.bucket, self.settings.max_attempts,
                        (self.settings.connect_timeout, self.settings.read_timeout),
                    )  # fmt: skip
                except botocore.exceptions.NoCredentialsError as exc:
                    raise self._error("", exc) from exc
            return self._lean

    def _refused(self, key: str, exc: PutRefused) -> ReleaseError:
        """The same translation as `_error`, for the lean PUT path."""
        where = f"s3://{self.settings.bucket}/{key}"
        text = self._scrub(f"{exc.code}: {exc.message}" if exc.code else exc.message)
        if not exc.code:
            error: ReleaseError = RemoteError(where, text)
        elif exc.code in ("NoSuchBucket", "InvalidBucketName"):
            error = BadInput(where, text, "check --bucket (and --endpoint-url)")
        elif exc.code == "NotImplemented" and self.settings.conditional:
            error = BadInput(where, text, "the server lacks conditional writes: --no-conditional-writes")
        elif exc.code in ("InvalidAccessKeyId", "SignatureDoesNotMatch", "AccessDenied", "Forbidden", "403"):
            error = BadInput(where, text, "check the credentials and the bucket's permissions")
        else:
            error = RemoteError(where, text)
        setattr(error, "code", exc.code)  # noqa: B010 - read by _code; errors carry data
        return error

    def _multipart(self, key: str, path: str, size: int, part_size: int) -> str:
        bucket = self.settings.bucket
        upload_id = self._call(key, "create_multipart_upload", Bucket=bucket, Key=key)["UploadId"]
        try:
            parts = []
            digests = []
            read = 0
            with open(path, "rb") as handle:
                for number, _ in enumerate(range(0, size, part_size), start=1):
                    data = handle.read(part_size)
                    read += len(data)
                    digest = hashlib.md5(data)
                    digests.append(digest.digest())
                    answer = self._send_body(
                        key, "upload_part", Bucket=bucket, Key=key, UploadId=upload_id, PartNumber=number, Body=data,
                        ContentMD5=base64.b64encode(digest.digest()).decode(),
                    )  # fmt: skip
                    parts.append({"PartNumber": number, "ETag": answer["ETag"]})
            if read != size:
                raise InputIOError(path, "changed size while being uploaded")
            self._call(
                key, "complete_multipart_upload", Bucket=bucket, Key=key, UploadId=upload_id,
                MultipartUpload={"Parts": parts},
            )  # fmt: skip
        except OSError as exc:
            self._abort(key, upload_id)
            raise InputIOError(path, f"cannot read: {exc.strerror}") from exc
        except BaseException:
            self._abort(key, upload_id)
            raise
        return multipart_etag(digests)

    def _abort(self, key: str, upload_id: str) -> None:
        try:
            self._client.abort_multipart_upload(Bucket=self.settings.bucket, Key=key, UploadId=upload_id)
        except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError):
            pass  # the next run aborts it (abort_stale_uploads)

    def download_hash(self, key: str, hasher: Any) -> int:
        """Stream an object into `hasher` (an object with update()); the number of bytes."""
        try:
            body = self._client.get_object(Bucket=self.settings.bucket, Key=key)["Body"]
            total = 0
            while chunk := body.read(READ_SIZE):
                hasher.update(chunk)
                total += len(chunk)
            return total
        except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as exc:
            raise self._error(key, exc) from exc

    def precondition_failed(self, exc: ReleaseError) -> bool:
        """Whether an error is the server refusing a conditional write (someone else wrote the key)."""
        return self._code(exc) in ("PreconditionFailed", "412", "ConditionalRequestConflict")


def join_key(*parts: str) -> str:
    """An object key from a prefix and path parts (no empty components, no leading slash)."""
    return "/".join(p.strip("/") for p in parts if p.strip("/"))
