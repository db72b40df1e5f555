"""The release-root layout: pure functions, no I/O.

`original/NNNN/ID.ext` with NNNN = ID mod 1000 zero-padded to 4 digits, `512px/NNNN/ID.jpg`,
`metadata/<year><12 digits>` for this year's export and `metadata/<year>/<chunk>` for archived years.
"""

from __future__ import annotations

import re
from typing import NamedTuple

from release.errors import UnsafePath

SUBSETS: tuple[str, ...] = ("original", "512px", "metadata")
OTHER = "other"
SUBSET_RANK: dict[str, int] = {"original": 0, "512px": 1, "metadata": 2, OTHER: 3}
IMAGE_SUBSETS: tuple[str, ...] = ("original", "512px")
EXTENSIONS: frozenset[str] = frozenset("jpg jpeg png gif bmp webm mp4 swf zip rar pdf html avi mpg wmv mp3".split())
BUCKETS = 1000
MAX_ID = (1 << 40) - 1  # far above any Danbooru ID; keeps sort keys in one int64
RANK_SHIFT = 60  # packed sort keys: (subset rank << RANK_SHIFT) | ID

_NAME = re.compile(r"(0|[1-9][0-9]*)\.([A-Za-z0-9]+)")
# One match for the common case, a conforming image path; everything else takes the slow path.
_FAST = re.compile(r"(original|512px)/([0-9]{4})/(0|[1-9][0-9]{0,11})\.([a-z0-9]+)")
_BUCKET = re.compile(r"[0-9]{4}")
_CHUNK = re.compile(r"((?:19|20)[0-9]{2})[0-9]{12}")
_YEAR_DIR = re.compile(r"(?:19|20)[0-9]{2}(?:-old)?")
# Danbooru's own export (2021 on, see release.posts): post chunks and the tables shipped beside them
_EXPORT_CHUNK = re.compile(r"(?:posts|tags|artists|notes|pools)[0-9]{12}\.json")


class ParsedPath(NamedTuple):
    """What the layout says about one relative path.

    `problem` is None for a conforming path, else a finding kind (see scan).
    """

    subset: str
    bucket: int | None
    id: int | None
    ext: str | None
    problem: str | None


def bucket_of(post_id: int) -> int:
    """The bucket a post ID belongs in."""
    return post_id % BUCKETS


def bucket_dir(post_id: int) -> str:
    """Zero-padded bucket folder name for an ID: 1000 -> '0000'."""
    return f"{bucket_of(post_id):04d}"


def image_path(subset: str, post_id: int, ext: str) -> str:
    """Relative path of an image: image_path('original', 1000, 'jpg') -> 'original/0000/1000.jpg'."""
    return f"{subset}/{bucket_dir(post_id)}/{post_id}.{ext}"


def check_relpath(path: str) -> str:
    """Return `path` if it is a safe relative POSIX path, else raise UnsafePath."""
    if not path:
        raise UnsafePath(repr(path), "empty path")
    if "\x00" in path:
        raise UnsafePath(repr(path), "path contains a NUL byte")
    if path.startswith("/"):
        raise UnsafePath(path, "absolute path")
    for part in path.split("/"):
        if part in ("", ".", ".."):
            what = f"a {part!r} component" if part else "an empty component"
            raise UnsafePath(path, f"path has {what}")
    return path


def strip_dot_slash(line: str) -> str:
    """`./original/0000/1000.jpg` (rsync list form) -> `original/0000/1000.jpg`."""
    return line[2:] if line.startswith("./") else line


def parse_path(path: str) -> ParsedPath:
    """Classify a relative path against the layout rules (no file-system access)."""
    fast = _FAST.fullmatch(path)
    if fast is not None:
        subset, bucket_s, id_s, ext = fast.groups()
        bucket, post_id = int(bucket_s), int(id_s)
        if ext in EXTENSIONS and (ext == "jpg" or subset == "original") and post_id % BUCKETS == bucket:
            return ParsedPath(subset, bucket, post_id, ext, None)
    parts = path.split("/")
    top = parts[0]
    if top in IMAGE_SUBSETS:
        return _parse_image(top, parts)
    if top == "metadata":
        return _parse_metadata(parts)
    return ParsedPath(OTHER, None, None, None, "outside_layout")


def _parse_image(subset: str, parts: list[str]) -> ParsedPath:
    if len(parts) != 3 or not _BUCKET.fullmatch(parts[1]):
        return ParsedPath(subset, None, None, None, "outside_layout")
    bucket = int(parts[1])
    match = _NAME.fullmatch(parts[2])
    if match is None or int(match.group(1)) > MAX_ID:
        return ParsedPath(subset, bucket, None, None, "bad_name")
    post_id, ext = int(match.group(1)), match.group(2)
    if ext not in EXTENSIONS or (subset == "512px" and ext != "jpg"):
        return ParsedPath(subset, bucket, post_id, ext, "bad_extension")
    if bucket >= BUCKETS or bucket != bucket_of(post_id):
        return ParsedPath(subset, bucket, post_id, ext, "wrong_bucket")
    return ParsedPath(subset, bucket, post_id, ext, None)


def _parse_metadata(parts: list[str]) -> ParsedPath:
    if len(parts) == 2 and (_CHUNK.fullmatch(parts[1]) or _EXPORT_CHUNK.fullmatch(parts[1])):
        return ParsedPath("metadata", None, None, None, None)
    if (
        len(parts) == 3
        and _YEAR_DIR.fullmatch(parts[1])
        and (_CHUNK.fullmatch(parts[2]) or _EXPORT_CHUNK.fullmatch(parts[2]))
    ):
        return ParsedPath("metadata", None, None, None, None)
    return ParsedPath("metadata", None, None, None, "outside_layout")


def chunk_year(name: str) -> int | None:
    """Year of a metadata chunk file name (`2019000000000003` -> 2019), None if not a chunk name."""
    match = _CHUNK.fullmatch(name)
    return int(match.group(1)) if match else None


def chunk_name(year: int, index: int) -> str:
    """Metadata chunk file name: chunk_name(2019, 3) -> '2019000000000003'."""
    return f"{year}{index:012d}"


def sort_key(path: str) -> tuple[int, list[str]]:
    """The manifest record order: subset, then ID ascending, then path (component-wise)."""
    return (packed_key(path), path.split("/"))


def pack(parsed: ParsedPath) -> int:
    """(subset rank, ID) packed in one int64 for compact sorting of millions of entries."""
    return (SUBSET_RANK[parsed.subset] << RANK_SHIFT) | (parsed.id or 0)


def packed_key(path: str) -> int:
    """`pack` of a path."""
    return pack(parse_path(path))


RANGE_WIDTH = 100  # buckets per range in reports


def bucket_range_label(bucket: int | None, width: int = RANGE_WIDTH) -> str:
    """The bucket range a bucket falls in, e.g. 42 -> '0000-0099'; '-' for files without bucket."""
    if bucket is None:
        return "-"
    low = bucket - bucket % width
    return f"{low:04d}-{low + width - 1:04d}"
