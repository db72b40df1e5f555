"""The public rsync file lists: `./original/0000/1000.jpg` lines, accepted by `rsync --files-from`.

Order (documented, deterministic): subset (original, 512px, metadata, then anything else), then
bucket folder, then ID ascending, ties by path. That is the order a bucket-by-bucket mirror walks,
unlike the manifest, which is ID order across buckets. Besides the main list it writes an `.xz` copy
(reproducible: the tarballs' xz settings) and one list per subset, `<stem>-<subset><suffix>`.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from release.atomic import atomic_output
from release.errors import BadInput
from release.layout import RANK_SHIFT, SUBSET_RANK, SUBSETS, check_relpath, parse_path
from release.manifest.io import ManifestReader
from release.progress import ProgressFn, Ticker, no_progress
from release.tarball import xz_writer
from release.walk import FileTable, walk

_BUCKET_SHIFT = 40  # IDs stay below 2**40 (layout.MAX_ID)


def filelist_key(path: str) -> int:
    """Sort key of the rsync list order: subset rank, bucket folder, ID (paths without them sort by path)."""
    parsed = parse_path(path)
    bucket = parsed.bucket if parsed.bucket is not None else 0
    return (SUBSET_RANK[parsed.subset] << RANK_SHIFT) | (bucket << _BUCKET_SHIFT) | (parsed.id or 0)


def list_line(path: str) -> bytes:
    """One list line: `./<path>\\n`; refuses paths a line-based list cannot carry."""
    check_relpath(path)
    if "\n" in path or "\r" in path:
        raise BadInput(repr(path), "path contains a line break: it cannot go in a --files-from list")
    return f"./{path}\n".encode("utf-8", "surrogateescape")


def collect(source: Path, progress: ProgressFn = no_progress) -> FileTable:
    """Every file of a release root (walked, symlinks skipped) or of a manifest, keyed for the list order."""
    table = FileTable()
    ticker = Ticker(progress, "list")
    if source.is_dir():
        entries: Iterator[tuple[str, int]] = ((e.path, e.size) for e in walk(str(source)) if e.kind == "file")
    elif source.is_file():
        entries = ((r.path, r.size) for r in ManifestReader(source))
    else:
        raise BadInput(str(source), "no such release root or manifest")
    for path, size in entries:
        table.add(path, size, key=filelist_key(path))
        ticker.add(1, size)
    ticker.finish()
    return table


@dataclass
class ListReport:
    """What `write_filelists` wrote: {output path: lines}."""

    files: int = 0
    bytes: int = 0
    outputs: dict[str, int] = field(default_factory=dict)


def subset_output(output: Path, subset: str) -> Path:
    """`filelist.txt` -> `filelist-original.txt`."""
    return output.with_name(f"{output.stem}-{subset}{output.suffix}")


def write_filelists(table: FileTable, output: Path) -> ListReport:
    """Write the main list, its `.xz` copy and the per-subset lists, each atomically."""
    report = ListReport()
    targets = {"all": output} | {s: subset_output(output, s) for s in SUBSETS}
    counts = dict.fromkeys(targets, 0)
    with contextlib.ExitStack() as stack:
        outs: dict[str, BinaryIO] = {k: stack.enter_context(atomic_output(p)) for k, p in targets.items()}
        raw_xz = stack.enter_context(atomic_output(output.with_name(output.name + ".xz")))
        xz = stack.enter_context(xz_writer(raw_xz))
        for row in table.order().tolist():
            path = table.path(row)
            line = list_line(path)
            outs["all"].write(line)
            xz.write(line)
            counts["all"] += 1
            subset = parse_path(path).subset
            if subset in outs:
                outs[subset].write(line)
                counts[subset] += 1
            report.bytes += table.size(row)
    report.files = counts["all"]
    report.outputs = {str(targets[k]): n for k, n in counts.items()} | {str(output) + ".xz": counts["all"]}
    return report
