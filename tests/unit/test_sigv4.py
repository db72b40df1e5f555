"""Our SigV4 signature for the bulk PUTs is botocore's, byte for byte, for plain HTTP and for TLS."""

from __future__ import annotations

import datetime
from unittest import mock
from urllib.parse import quote

import pytest
from botocore.auth import S3SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.config import Config
from botocore.credentials import Credentials

from release.publish.s3put import SigV4

NOW = datetime.datetime(2026, 11, 28, 23, 59, 58, tzinfo=datetime.UTC)
KEYS = ["d2019/original/0001/1001.jpg", "d2019/a b/+plus&amp=;~tilde/ünï.png", "d2019/x%2Fy"]


def botocore_headers(credentials: Credentials, url: str, headers: dict[str, str], body: bytes) -> dict[str, str]:
    """What boto3's put_object signs: its body is a streaming input (unsigned over TLS when Content-MD5 is set)."""
    request = AWSRequest(method="PUT", url=url, data=body, headers=dict(headers))
    request.context.update(client_config=Config(s3={}), has_streaming_input=True)
    with mock.patch("botocore.auth.get_current_datetime", return_value=NOW.replace(tzinfo=None)):
        S3SigV4Auth(credentials.get_frozen_credentials(), "s3", "eu-central-1").add_auth(request)
    return dict(request.headers.items())


@pytest.mark.parametrize("scheme", ["http", "https"])
@pytest.mark.parametrize("key", KEYS)
@pytest.mark.parametrize("token", [None, "FwoGZXIvYXdzEJr//session-token"])
def test_signature_matches_botocore(scheme: str, key: str, token: str | None) -> None:
    credentials = Credentials("AKIAEXAMPLEEXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", token)
    url = f"{scheme}://s3.example.org:9000/bucket/" + quote(key, safe="/~")
    body = b"\x00some bytes\xff" * 100
    headers = {"Content-MD5": "q83vEjRWeJCrze8SNFZ4kA==", "Content-Length": str(len(body)), "If-None-Match": "*"}
    expected = botocore_headers(credentials, url, headers, body)
    ours = SigV4("eu-central-1").sign(credentials.get_frozen_credentials(), "PUT", url, headers, body,
                                      now=NOW.timestamp())  # fmt: skip
    assert ours["Authorization"] == expected["Authorization"]
    assert ours["X-Amz-Content-SHA256"] == expected["X-Amz-Content-SHA256"]
    assert ours.get("X-Amz-Security-Token") == expected.get("X-Amz-Security-Token")


def test_changed_header_changes_signature() -> None:
    credentials = Credentials("AKIAEXAMPLEEXAMPLE", "secret").get_frozen_credentials()
    signer = SigV4("us-east-1")
    url = "http://127.0.0.1:1/bucket/key"
    one = signer.sign(credentials, "PUT", url, {"Content-MD5": "a"}, b"x", now=NOW.timestamp())
    two = signer.sign(credentials, "PUT", url, {"Content-MD5": "b"}, b"x", now=NOW.timestamp())
    three = signer.sign(credentials, "PUT", url, {"Content-MD5": "a"}, b"y", now=NOW.timestamp())
    assert len({one["Authorization"], two["Authorization"], three["Authorization"]}) == 3
