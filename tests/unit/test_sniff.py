from __future__ import annotations

import pytest

from release.sniff import is_truncated, sniff, type_matches
from release.synth.images import file_bytes


@pytest.mark.parametrize(
    "ext", ["jpg", "png", "gif", "webm", "mp4", "swf", "zip", "rar", "pdf", "html", "avi", "mpg", "wmv", "mp3", "bmp"]
)
def test_synth_bytes_sniff_as_their_type(ext: str) -> None:
    data, _, _ = file_bytes(ext, 5000, b"seed", 0, tiny=False)
    assert sniff(data[:16]) == ext


def test_jpeg_extension_is_jpg_content() -> None:
    data, _, _ = file_bytes("jpeg", 5000, b"seed", 0, tiny=False)
    assert type_matches("jpeg", sniff(data[:16]))
    assert not type_matches("png", sniff(data[:16]))
    assert type_matches("jpg", None)  # unknown content is not flagged


@pytest.mark.parametrize("ext", ["jpg", "png", "gif"])
def test_truncation_is_detected_from_the_tail(ext: str) -> None:
    data, _, _ = file_bytes(ext, 40_000, b"seed", 1, tiny=False)
    assert not is_truncated(ext, data[-16:])
    cut = data[: len(data) * 3 // 5]
    assert is_truncated(ext, cut[-16:])
