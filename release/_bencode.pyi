"""Types of the compiled bencode decoder (release/_bencode.c)."""

from typing import Any

def decode(data: bytes, token_limit: int, depth_limit: int, /) -> tuple[Any, int, int, int]: ...
