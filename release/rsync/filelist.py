"""The public rsync file lists: `./original/0000/1000.jpg` lines, accepted by `rsync --files-from`.

Order (documented, deterministic): subset (original, 512px, metadata, then anything else), then
bucket folder, then ID ascending, ties by path. That is the order a bucket-by-bucket mirror walks,
unlike the manifest, which is ID order across buckets. Besides the main list it writes an `.xz` copy
(reproducible: the tarballs' xz preset, a 1 MiB dictionary, one xz stream per 4 MiB of list, which
`xz -d` and every xz reader take as one file) and one list per subset, `<stem>-<subset><suffix>`.

At Danbooru's size (3.7M files, a 95 MB list) nothing here is one object per file: the paths are a
FileTable's columns, the lines are gathered a chunk at a time, and the xz streams are compressed on
every core.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

import numpy as np

from release.atomic import OutputSet, atomic_output, is_stdout
from release.blocks import OrderedOutput, compress_pool
from release.filelists import list_line
from release.layout import RANK_SHIFT, SUBSET_RANK, SUBSETS
from release.manifest.columns import column_chunks
from release.pathcols import gather
from release.progress import ProgressFn, Ticker, no_progress
from release.tarball import SHARED_DICTIONARY, XZ_PRESET, xz_streams
from release.tree import is_root, scan_tree
from release.walk import FileTable

_BUCKET_SHIFT = 40  # IDs stay below 2**40 (layout.MAX_ID)
_ID_MASK = (1 << _BUCKET_SHIFT) - 1
CHUNK_ROWS = 1 << 15  # lines gathered at a time
XZ_STREAM = 1 << 22  # bytes of list per xz stream
# a list line of a safe path contains none of these; a chunk that does is written line by line through
# list_line, which names the offending path (see _chunk_lines)
_UNSAFE = (b"//", b"/./", b"/../", b"/\n", b"/.\n", b"/..\n", b"\x00", b"\r")


def list_keys(rank: np.ndarray, bucket: np.ndarray, ids: np.ndarray) -> np.ndarray:
    """Sort keys of the rsync list order: subset rank, bucket folder, ID (0 for paths without them)."""
    keys: np.ndarray = (rank << RANK_SHIFT) | (np.maximum(bucket, 0) << _BUCKET_SHIFT) | ids
    return keys


def listed_ids(table: FileTable) -> np.ndarray:
    """The post ID of every row of a `collect` table (0 for paths without one), from its keys."""
    return table.keys() & _ID_MASK


def collect(source: Path, progress: ProgressFn = no_progress) -> FileTable:
    """Every file of a release root (walked, symlinks skipped) or of a manifest, keyed for the list order."""
    if is_root(source):
        table, _ = scan_tree(source, progress)
        layout = table.layout()
        table.rekey(list_keys(layout.rank, layout.bucket, layout.ids))
        return table
    table = FileTable()
    ticker = Ticker(progress, "list")
    for columns in column_chunks(source, None):
        paths, ends = gather(columns.blob, columns.spans)
        table.extend_paths(paths, ends, columns.sizes, list_keys(columns.rank, columns.bucket, columns.keys & _ID_MASK))
        ticker.add(len(columns), int(columns.sizes.sum()))
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


def _chunk_lines(table: FileTable, rows: np.ndarray) -> bytes:
    """The list lines of `rows`, gathered at once; the lines of a chunk with anything unsafe in it come
    from list_line one by one, so the same rule refuses the same path with the same message."""
    lines, _ = gather(*table.spans(rows), prefix=b"./", suffix=b"\n")
    if lines.count(b"\n") != len(rows) or any(bad in lines for bad in _UNSAFE):
        lines = b"".join(list_line(table.path(row)) for row in rows.tolist())
    return lines


def _chunks(table: FileTable, order: np.ndarray) -> Iterator[tuple[str | None, bytes, int, int]]:
    """(subset or None for other paths, lines, how many, bytes of those files) in list order, no chunk
    across subsets."""
    ranks = table.keys()[order] >> RANK_SHIFT
    subsets = {SUBSET_RANK[s]: s for s in SUBSETS}
    sizes = table.sizes()
    bounds = np.flatnonzero(np.diff(ranks)) + 1
    for first, end in zip([0, *bounds.tolist()], [*bounds.tolist(), len(order)], strict=True):
        subset = subsets.get(int(ranks[first])) if end > first else None
        for start in range(first, end, CHUNK_ROWS):
            rows = order[start : min(start + CHUNK_ROWS, end)]
            yield subset, _chunk_lines(table, rows), len(rows), int(sizes[rows].sum())


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
            packed = stack.enter_context(atomic_output(output.with_name(output.name + ".xz"), outputs))
            out = OrderedOutput(packed.write)
            xz = xz_streams(out, stack.enter_context(compress_pool()), XZ_STREAM, SHARED_DICTIONARY, XZ_PRESET)
        for subset, lines, count, nbytes in _chunks(table, table.order()):
            for key in ("all", subset):
                if key in outs:
                    outs[key].write(lines)
                    counts[key] += count
            if xz is not None:
                xz.write(lines)
            report.bytes += nbytes
        if xz is not None:
            xz.close()
            xz.out.finish()
    report.files = counts["all"]
    report.outputs = {str(targets[k]): n for k, n in counts.items()}
    if not to_stdout:
        report.outputs[str(output) + ".xz"] = counts["all"]
    return report
