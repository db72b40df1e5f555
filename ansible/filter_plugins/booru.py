"""Jinja filters of the booru-release roles."""

from __future__ import annotations

import base64
import hashlib
import hmac


def qbittorrent_password(password: str, salt_source: str) -> str:
    """qBittorrent's WebUI\\Password_PBKDF2 value: PBKDF2-HMAC-SHA512, 100,000 rounds, 16-byte salt.

    The salt is derived from the password and `salt_source` (host and profile) rather than drawn at random,
    so the same settings render the same file and a second run changes nothing; it still differs per host.
    """
    salt = hmac.new(password.encode(), salt_source.encode(), hashlib.sha256).digest()[:16]
    key = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, 100_000, 64)
    return "@ByteArray(%s:%s)" % (base64.b64encode(salt).decode(), base64.b64encode(key).decode())


class FilterModule:
    """The filters."""

    def filters(self) -> dict[str, object]:
        return {"qbittorrent_password": qbittorrent_password}
