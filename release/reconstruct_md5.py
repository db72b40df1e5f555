"""The witness left when no manifest of an old release exists: the md5 each metadata record carries."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from pydantic import BaseModel

from release.layout import parse_path
from release.manifest.io import ManifestReader
from release.metadata import PostReader, export_chunks

EXAMPLES = 20


class Md5Check(BaseModel):
    """Originals compared with the md5 of their metadata record."""

    checked: int
    matching: int
    mismatching: int
    mismatching_examples: list[str]
    files_without_post: int
    posts_without_file: int


def _metadata_md5(root: Path) -> tuple[np.ndarray, np.ndarray]:
    """(sorted post IDs, their md5 as 32-byte strings) of the top-level metadata chunks."""
    ids: list[int] = []
    md5s: list[bytes] = []
    for post in PostReader(export_chunks(root / "metadata")):
        if post.md5 is None:  # the new dialect leaves it out for some posts: no witness for those
            continue
        ids.append(post.id)
        md5s.append(post.md5.encode())
    id_array = np.array(ids, dtype=np.int64)
    order = np.argsort(id_array, kind="stable")
    return id_array[order], np.array(md5s, dtype="S32")[order] if md5s else np.zeros(0, "S32")


def check_md5(root: Path, manifest: Path) -> Md5Check:
    """Compare the md5 of every original in `manifest` (a manifest of `root`) with root's metadata."""
    ids, md5s = _metadata_md5(root)
    seen = np.zeros(len(ids), dtype=bool)
    checked = matching = orphans = 0
    examples: list[str] = []
    for record in ManifestReader(manifest):
        parsed = parse_path(record.path)
        if parsed.subset != "original" or parsed.id is None:
            continue
        checked += 1
        pos = int(np.searchsorted(ids, parsed.id))
        if pos >= len(ids) or ids[pos] != parsed.id:
            orphans += 1
            continue
        seen[pos] = True
        if md5s[pos] == record.md5.encode():
            matching += 1
        elif len(examples) < EXAMPLES:
            examples.append(record.path)
    return Md5Check(
        checked=checked,
        matching=matching,
        mismatching=checked - matching - orphans,
        mismatching_examples=examples,
        files_without_post=orphans,
        posts_without_file=int((~seen).sum()),
    )
