"""The bulk of a publish: single-part PUTs, signed here (AWS Signature Version 4) and sent over one kept-alive
HTTP/1.1 connection per thread, the answers parsed by llhttp (httptools).

Measured on SeaweedFS (benchmarks/RESULTS.md): a boto3 `put_object` costs ~1.9 ms of CPU, most of it the
client's per-request machinery (endpoint rules re-evaluated for every key, the event system, parsing); the
same PUT signed by botocore's signer and sent over urllib3 still cost ~1 ms; signed here and written on a
plain connection it costs ~0.35 ms. The signature is botocore's, byte for byte (a unit test compares them):
the payload's SHA-256 is signed over plain HTTP, UNSIGNED-PAYLOAD over TLS where Content-MD5 guards the body.
Everything else (listings, multipart, copies, deletes, state files) stays on the boto3 client in `s3.py`,
and so do credentials (boto3's chain, refreshed per request) and the endpoint (resolved once by boto3, from
a presigned URL).

Retries follow boto3's standard mode: connection errors, timeouts, 500/502/503/504, SlowDown and
RequestTimeout, with capped exponential backoff and jitter; and a body the server found damaged
(BadDigest) is sent again. Every attempt is counted like boto3's requests.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import random
import re
import socket
import ssl
import threading
import time
from typing import Any
from urllib.parse import quote, urlsplit

import httptools
from botocore.httpsession import get_cert_path

from release import __version__

RETRY_STATUS = frozenset({500, 502, 503, 504})
RETRY_CODES = frozenset({"SlowDown", "RequestTimeout", "InternalError", "ServiceUnavailable", "BadDigest",
                         "InvalidDigest", "XAmzContentSHA256Mismatch"})  # fmt: skip
DAMAGED_CODES = frozenset({"BadDigest", "InvalidDigest", "XAmzContentSHA256Mismatch"})  # other bytes arrived
MAX_BACKOFF = 20.0
UNSIGNED_PAYLOAD = "UNSIGNED-PAYLOAD"
USER_AGENT = f"booru-release/{__version__}"
_CODE = re.compile(rb"<Code>([^<]*)</Code>")
_MESSAGE = re.compile(rb"<Message>([^<]*)</Message>")
_UNSIGNED_HEADERS = frozenset({"connection", "expect", "keep-alive", "user-agent", "transfer-encoding"})
_CONNECTION_ERRORS = (OSError, httptools.HttpParserError)  # refused, reset, timed out, a garbled answer
SMALL_BODY = 1 << 20  # sent with its head in one write (one copy); larger bodies in a second write
READ_SIZE = 1 << 16


class PutRefused(Exception):
    """The server answered a PUT with an error (its S3 code and message), or could not be reached (code "")."""

    def __init__(self, code: str, status: int, message: str) -> None:
        self.code, self.status, self.message = code, status, message
        super().__init__(f"{code or status}: {message}")


class SigV4:
    """AWS Signature Version 4 for S3 requests without a query string (the derived key is cached per day)."""

    def __init__(self, region: str, service: str = "s3") -> None:
        self.region, self.service = region, service
        self._cached: tuple[str, str, bytes] = ("", "", b"")

    def _key(self, secret: str, day: str) -> bytes:
        cached_secret, cached_day, key = self._cached
        if cached_secret != secret or cached_day != day:
            key = hmac.new(f"AWS4{secret}".encode(), day.encode(), hashlib.sha256).digest()
            for part in (self.region, self.service, "aws4_request"):
                key = hmac.new(key, part.encode(), hashlib.sha256).digest()
            self._cached = (secret, day, key)
        return key

    def sign(
        self, credentials: Any, method: str, url: str, headers: dict[str, str], body: bytes, now: float | None = None
    ) -> dict[str, str]:
        """`headers` plus Host, X-Amz-Date, X-Amz-Content-SHA256, the session token if any, and Authorization.
        `credentials`: botocore's frozen credentials (access_key, secret_key, token)."""
        parts = urlsplit(url)
        stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(now))
        payload = UNSIGNED_PAYLOAD if parts.scheme == "https" else hashlib.sha256(body).hexdigest()
        signed = {"Host": parts.netloc, **headers, "X-Amz-Date": stamp, "X-Amz-Content-SHA256": payload}
        if credentials.token:
            signed["X-Amz-Security-Token"] = credentials.token
        canonical = sorted((name.lower(), " ".join(value.split())) for name, value in signed.items()
                           if name.lower() not in _UNSIGNED_HEADERS)  # fmt: skip
        names = ";".join(name for name, _ in canonical)
        request = "\n".join((method, parts.path or "/", parts.query, *(f"{n}:{v}" for n, v in canonical), "", names,
                             payload))  # fmt: skip
        scope = f"{stamp[:8]}/{self.region}/{self.service}/aws4_request"
        to_sign = f"AWS4-HMAC-SHA256\n{stamp}\n{scope}\n{hashlib.sha256(request.encode()).hexdigest()}"
        signature = hmac.new(self._key(credentials.secret_key, stamp[:8]), to_sign.encode(), hashlib.sha256)
        signed["Authorization"] = (f"AWS4-HMAC-SHA256 Credential={credentials.access_key}/{scope}, "
                                   f"SignedHeaders={names}, Signature={signature.hexdigest()}")  # fmt: skip
        return signed


class LeanPut:
    """Single-part PUTs for one bucket, from any number of threads (a kept-alive connection each)."""

    def __init__(self, session: Any, client: Any, bucket: str, attempts: int, timeouts: tuple[float, float]) -> None:
        self._credentials = session.get_credentials()
        self._signer = SigV4(client.meta.region_name or "us-east-1")
        placeholder = "booru-release-key"
        url = client.generate_presigned_url("put_object", Params={"Bucket": bucket, "Key": placeholder})
        self._base = url.split(placeholder, 1)[0]  # scheme, host and bucket as boto3 resolved them
        self._attempts = attempts
        self._timeouts = timeouts
        self._local = threading.local()
        parts = urlsplit(self._base)
        self._host = parts.hostname or "localhost"
        self._port = parts.port or (443 if parts.scheme == "https" else 80)
        self._tls: ssl.SSLContext | None = None
        if parts.scheme == "https":
            self._tls = ssl.create_default_context(cafile=os.environ.get("AWS_CA_BUNDLE") or get_cert_path(True))

    def put(self, key: str, body: bytes, headers: dict[str, str], on_send: Any, changed: Any = None) -> str:
        """PUT `body` under `key` with `headers` (and its Content-Length); return the ETag. Raises PutRefused
        once retries are spent, or at once when the server refuses the body (BadDigest) and `changed()` says
        it is not the one meant to go."""
        url = self._base + quote(key, safe="/~")
        path = url[url.index("/", url.index("//") + 2) :]
        headers = {**headers, "Content-Length": str(len(body))}
        failure = PutRefused("", 0, "no attempt")
        for attempt in range(self._attempts):
            if attempt:
                time.sleep(random.uniform(0, min(MAX_BACKOFF, 0.05 * 2**attempt)))
            on_send(event_name="before-send.s3.PutObject")
            signed = self._signer.sign(self._credentials.get_frozen_credentials(), "PUT", url, headers, body)
            signed["User-Agent"] = USER_AGENT
            try:
                status, reason, etag, data = self._send(path, body, signed)
            except _CONNECTION_ERRORS as exc:  # worth another try, on a new connection
                self._drop()
                failure = PutRefused("", 0, f"cannot reach the endpoint: {exc or type(exc).__name__}")
                continue
            if 200 <= status < 300:
                return etag.strip('"')
            code = _first(_CODE, data) or str(status)
            failure = PutRefused(code, status, _first(_MESSAGE, data) or reason)
            if status not in RETRY_STATUS and code not in RETRY_CODES:
                raise failure
            if code in DAMAGED_CODES and changed is not None and changed():
                raise failure
        raise failure

    def _send(self, path: str, body: bytes, headers: dict[str, str]) -> tuple[int, str, str, bytes]:
        connection: _Connection | None = getattr(self._local, "connection", None)
        if connection is None:
            connection = self._local.connection = _Connection(self._host, self._port, self._tls, self._timeouts)
        status, reason, etag, data, keep = connection.exchange(f"PUT {path} HTTP/1.1\r\n", headers, body)
        if not keep:
            self._drop()
        return status, reason, etag, data

    def _drop(self) -> None:
        connection = getattr(self._local, "connection", None)
        if connection is not None:
            connection.close()
        self._local.connection = None


class _Answer:
    """One HTTP response, gathered from the parser's callbacks."""

    __slots__ = ("reason", "etag", "body", "done", "keep", "parser")

    def __init__(self) -> None:
        self.reason, self.etag, self.body, self.done, self.keep = "", "", bytearray(), False, False
        self.parser = httptools.HttpResponseParser(self)

    def on_status(self, reason: bytes) -> None:
        self.reason += reason.decode("latin-1")

    def on_header(self, name: bytes, value: bytes) -> None:
        if name.lower() == b"etag":
            self.etag = value.decode("latin-1")

    def on_body(self, data: bytes) -> None:
        self.body += data

    def on_message_complete(self) -> None:
        self.done = True
        self.keep = self.parser.should_keep_alive()  # only meaningful inside the parser's callbacks


class _Connection:
    """A kept-alive HTTP/1.1 connection: the request written in one go, the answer parsed by llhttp (httptools).
    http.client parses every answer's headers with the email package, which cost as much as the signing,
    the writing and the reading together."""

    def __init__(self, host: str, port: int, tls: ssl.SSLContext | None, timeouts: tuple[float, float]) -> None:
        sock = socket.create_connection((host, port), timeout=timeouts[0])
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if tls is not None:
                sock = tls.wrap_socket(sock, server_hostname=host)
            sock.settimeout(timeouts[1])  # the connect timeout bounded the handshake; now each read
        except BaseException:
            sock.close()
            raise
        self._sock = sock

    def exchange(self, line: str, headers: dict[str, str], body: bytes) -> tuple[int, str, str, bytes, bool]:
        """Send one request; (status, reason, ETag, body, whether the connection stays open)."""
        head = (line + "".join(f"{name}: {value}\r\n" for name, value in headers.items()) + "\r\n").encode()
        try:
            if len(body) <= SMALL_BODY:
                self._sock.sendall(head + body)
            else:
                self._sock.sendall(head)
                self._sock.sendall(body)
        except OSError as unsent:
            # the server may have answered (403, 400…) and closed before taking the whole body: read it
            try:
                return self._read()
            except _CONNECTION_ERRORS:
                raise unsent from None
        return self._read()

    def _read(self) -> tuple[int, str, str, bytes, bool]:
        answer = _Answer()
        while not answer.done:
            data = self._sock.recv(READ_SIZE)
            if not data:
                raise ConnectionResetError("the server closed the connection")
            answer.parser.feed_data(data)
        return answer.parser.get_status_code(), answer.reason, answer.etag, bytes(answer.body), answer.keep

    def close(self) -> None:
        self._sock.close()


def _first(pattern: re.Pattern[bytes], data: bytes) -> str:
    match = pattern.search(data or b"")
    return match.group(1).decode("utf-8", "replace") if match else ""
