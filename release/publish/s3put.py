"""The bulk of a publish, single-part PUTs, signed by botocore and sent over urllib3 (botocore's own HTTP layer).

Measured on SeaweedFS (benchmarks/RESULTS.md): a boto3 `put_object` costs ~1.9 ms of CPU, most of it the
client's per-request machinery (endpoint rules re-evaluated for every key, the event system, parsing),
which capped a publish at ~550 objects/s on 2 cores; the same PUT signed with botocore's SigV4 signer and
sent straight over a urllib3 pool costs a third of that. Everything else (listings, multipart, copies,
deletes, state files) stays on the boto3 client in `s3.py`, and so do credentials (boto3's chain,
refreshed per request) and the endpoint (resolved once by boto3, from a presigned URL).

Retries follow boto3's standard mode: connection errors, timeouts, 500/502/503/504, SlowDown and
RequestTimeout, with capped exponential backoff and jitter; and a body the server found damaged
(BadDigest) is sent again. Every attempt is counted like boto3's requests.
"""

from __future__ import annotations

import random
import re
import time
from typing import Any
from urllib.parse import quote

import urllib3
from botocore.auth import S3SigV4Auth
from botocore.awsrequest import AWSRequest

RETRY_STATUS = frozenset({500, 502, 503, 504})
RETRY_CODES = frozenset({"SlowDown", "RequestTimeout", "InternalError", "ServiceUnavailable", "BadDigest",
                         "InvalidDigest", "XAmzContentSHA256Mismatch"})  # fmt: skip
DAMAGED_CODES = frozenset({"BadDigest", "InvalidDigest", "XAmzContentSHA256Mismatch"})  # other bytes arrived
MAX_BACKOFF = 20.0
_CODE = re.compile(rb"<Code>([^<]*)</Code>")
_MESSAGE = re.compile(rb"<Message>([^<]*)</Message>")


class PutRefused(Exception):
    """The server answered a PUT with an error (its S3 code and message), or could not be reached (code "")."""

    def __init__(self, code: str, status: int, message: str) -> None:
        self.code, self.status, self.message = code, status, message
        super().__init__(f"{code or status}: {message}")


class LeanPut:
    """Single-part PUTs for one bucket, from any number of threads (one urllib3 pool, `workers` connections)."""

    def __init__(
        self, session: Any, client: Any, bucket: str, workers: int, attempts: int, timeouts: tuple[float, float]
    ) -> None:
        self._credentials = session.get_credentials()
        self._region = client.meta.region_name or "us-east-1"
        placeholder = "booru-release-key"
        url = client.generate_presigned_url("put_object", Params={"Bucket": bucket, "Key": placeholder})
        self._base = url.split(placeholder, 1)[0]  # scheme, host and bucket as boto3 resolved them
        self._attempts = attempts
        connect, read = timeouts
        self._pool = urllib3.PoolManager(
            maxsize=workers, block=True, retries=False, timeout=urllib3.Timeout(connect=connect, read=read)
        )

    def put(self, key: str, body: bytes, headers: dict[str, str], on_send: Any, changed: Any = None) -> str:
        """PUT `body` under `key` with `headers`; return the ETag. Raises PutRefused once retries are spent, or at
        once when the server refuses the body (BadDigest) and `changed()` says it is not the one meant to go."""
        url = self._base + quote(key, safe="/~")
        failure = PutRefused("", 0, "no attempt")
        for attempt in range(self._attempts):
            if attempt:
                time.sleep(random.uniform(0, min(MAX_BACKOFF, 0.05 * 2**attempt)))
            on_send(event_name="before-send.s3.PutObject")
            request = AWSRequest(method="PUT", url=url, data=body, headers=dict(headers))
            S3SigV4Auth(self._credentials.get_frozen_credentials(), "s3", self._region).add_auth(request)
            try:
                response = self._pool.request("PUT", url, body=body, headers=dict(request.headers.items()))
            except urllib3.exceptions.HTTPError as exc:  # refused, reset, timed out: worth another try
                failure = PutRefused("", 0, f"cannot reach the endpoint: {exc}")
                continue
            if 200 <= response.status < 300:
                return str(response.headers.get("ETag", "")).strip('"')
            code = _first(_CODE, response.data) or str(response.status)
            failure = PutRefused(code, response.status, _first(_MESSAGE, response.data) or response.reason or "")
            if response.status not in RETRY_STATUS and code not in RETRY_CODES:
                raise failure
            if code in DAMAGED_CODES and changed is not None and changed():
                raise failure
        raise failure


def _first(pattern: re.Pattern[bytes], data: bytes) -> str:
    match = pattern.search(data or b"")
    return match.group(1).decode("utf-8", "replace") if match else ""
