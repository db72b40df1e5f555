"""The public rsync file lists: `./original/0000/1000.jpg` lines, accepted by `rsync --files-from`.

Order (documented, deterministic): subset (original, 512px, metadata, then anything else), then
bucket folder, then ID ascending, ties by path. That is the order a bucket-by-bucket mirror walks,
unlike the manifest, which is ID order across buckets. Besides the main list it writes an `.xz` copy
(reproducible: the tarballs' xz settings) and one list per subset, `<stem>-<subset><suffix>`.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

import numpy as np

from release.atomic import OutputSet, atomic_output, is_stdout
from release.filelists import list_line
from release.layout import RANK_SHIFT, SUBSET_RANK, SUBSETS, parse_path
from release.progress import ProgressFn, Ticker, no_progress
from release.tarball import xz_writer
from release.tree import files_of
from release.walk import FileTable

_BUCKET_SHIFT = 40  # IDs stay below 2**40 (layout.MAX_ID)


def filelist_key(path: str) -> int:
    """Sort key of the rsync list order: subset rank, bucket folder, ID (paths without them sort by path)."""
    parsed = parse_path(path)
    bucket = parsed.bucket if parsed.bucket is not None else 0
    return (SUBSET_RANK[parsed.subset] << RANK_SHIFT) | (bucket << _BUCKET_SHIFT) | (parsed.id or 0)


def listed_ids(table: FileTable) -> np.ndarray:
    """The post ID of every row of a `collect` table (0 for paths without one), from its keys."""
    return table.keys() & ((1 << _BUCKET_SHIFT) - 1)


def collect(source: Path, progress: ProgressFn = no_progress) -> FileTable:
    """Every file of a release root (walked, symlinks skipped) or of a manifest, keyed for the list order."""
    table = FileTable()
    ticker = Ticker(progress, "list")
    for file in files_of(source):
        table.add(file.path, file.size, key=filelist_key(file.path))
        ticker.add(1, file.size)
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
    """Write the main list, its `.xz` copy and the per-subset lists, all appearing together; with `-` as the
    output, only the main list, to standard output."""
    report = ListReport()
    to_stdout = is_stdout(output)
    targets = {"all": output} | ({} if to_stdout else {s: subset_output(output, s) for s in SUBSETS})
    counts = dict.fromkeys(targets, 0)
    with OutputSet() as outputs, contextlib.ExitStack() as stack:
        outs: dict[str, BinaryIO] = {k: stack.enter_context(atomic_output(p, outputs)) for k, p in targets.items()}
        xz = None
        if not to_stdout:
            raw_xz = stack.enter_context(atomic_output(output.with_name(output.name + ".xz"), outputs))
            xz = stack.enter_context(xz_writer(raw_xz))
        for row in table.order().tolist():
            path = table.path(row)
            line = list_line(path)
            outs["all"].write(line)
            if xz is not None:
                xz.write(line)
            counts["all"] += 1
            subset = parse_path(path).subset
            if subset in outs:
                outs[subset].write(line)
                counts[subset] += 1
            report.bytes += table.size(row)
    report.files = counts["all"]
    report.outputs = {str(targets[k]): n for k, n in counts.items()}
    if not to_stdout:
        report.outputs[str(output) + ".xz"] = counts["all"]
    return report
