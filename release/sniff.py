"""True file type by magic bytes, and truncation checks from the file's head and tail."""

from __future__ import annotations

import os

HEAD = 16
TAIL = 16

# (magic prefix, offset, type). Types are extension names; 'jpg' covers jpeg.
_MAGIC: tuple[tuple[bytes, int, str], ...] = (
    (b"\xff\xd8\xff", 0, "jpg"),
    (b"\x89PNG\r\n\x1a\n", 0, "png"),
    (b"GIF87a", 0, "gif"),
    (b"GIF89a", 0, "gif"),
    (b"BM", 0, "bmp"),
    (b"\x1a\x45\xdf\xa3", 0, "webm"),
    (b"ftyp", 4, "mp4"),
    (b"FWS", 0, "swf"),
    (b"CWS", 0, "swf"),
    (b"ZWS", 0, "swf"),
    (b"PK\x03\x04", 0, "zip"),
    (b"PK\x05\x06", 0, "zip"),
    (b"Rar!\x1a\x07", 0, "rar"),
    (b"%PDF-", 0, "pdf"),
    (b"RIFF", 0, "avi"),
    (b"\x00\x00\x01\xba", 0, "mpg"),
    (b"\x00\x00\x01\xb3", 0, "mpg"),
    (b"\x30\x26\xb2\x75\x8e\x66\xcf\x11", 0, "wmv"),
    (b"ID3", 0, "mp3"),
    (b"\xff\xfb", 0, "mp3"),
    (b"\xff\xf3", 0, "mp3"),
)
_SAME = {"jpeg": "jpg"}
_PNG_END = b"IEND\xaeB`\x82"


def sniff(head: bytes) -> str | None:
    """The type the first bytes say (an extension name), or None if unknown."""
    for magic, offset, kind in _MAGIC:
        if head[offset : offset + len(magic)] == magic:
            return kind
    lowered = head.lstrip().lower()
    if lowered.startswith((b"<!doctype html", b"<html")):
        return "html"
    return None


def is_truncated(kind: str, tail: bytes) -> bool:
    """True when a jpg/png/gif does not end the way a complete file does."""
    if kind == "jpg":
        return not tail.rstrip(b"\x00").endswith(b"\xff\xd9")
    if kind == "png":
        return not tail.endswith(_PNG_END)
    if kind == "gif":
        return not tail.endswith(b"\x3b")
    return False


def type_matches(ext: str, kind: str | None) -> bool:
    """Whether the sniffed kind agrees with the extension (unknown kinds are not flagged)."""
    if kind is None:
        return True
    return _SAME.get(ext, ext) == kind


def read_head_tail(path: str, size: int) -> tuple[bytes, bytes]:
    """The first HEAD and last TAIL bytes of a file (no symlink followed)."""
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    try:
        head = os.pread(fd, HEAD, 0)
        tail = os.pread(fd, TAIL, max(0, size - TAIL)) if size > HEAD else head
    finally:
        os.close(fd)
    return head, tail
