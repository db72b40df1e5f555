"""`manifest export`: checksum lists that stock tools check (sha256sum, xxhsum, bagit)."""

from __future__ import annotations

import errno
import hashlib
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from release.atomic import OutputSet, atomic_output, describe_os_error
from release.errors import BadInput, InputIOError, OutputError
from release.manifest.io import ManifestReader
from release.models import ManifestHeader

FORMATS = ("sha256sum", "xxh128sum", "bagit")
_FIELD = {"sha256sum": "sha256", "xxh128sum": "xxh3_128"}


def _coreutils_line(digest: str, path: str) -> str:
    # GNU coreutils escaping: a line whose name holds '\\' or '\n' starts with '\\'.
    if "\\" in path or "\n" in path:
        return "\\" + digest + "  " + path.replace("\\", "\\\\").replace("\n", "\\n") + "\n"
    return f"{digest}  {path}\n"


def checksum_lines(manifest: Path, fmt: str, prefix: str = "") -> Iterator[str]:
    """Lines `<hex>  <prefix><path>` for `fmt` in ('sha256sum', 'xxh128sum', 'md5')."""
    field = _FIELD.get(fmt, fmt)
    for record in ManifestReader(manifest):
        yield _coreutils_line(getattr(record, field), prefix + record.path)


def export_checksums(manifest: Path, fmt: str, out: BinaryIO) -> int:
    """Write a sha256sum/xxh128sum list to `out`; return the number of lines."""
    if fmt not in _FIELD:
        raise BadInput(fmt, f"unknown export format; choose one of {', '.join(FORMATS)}")
    count = 0
    for line in checksum_lines(manifest, fmt):
        out.write(line.encode("utf-8", "surrogateescape"))
        count += 1
    return count


def export_bag(manifest: Path, bag_dir: Path, payload: Path | None = None) -> int:
    """Write the tag files of a BagIt 1.0 bag whose payload (`data/`) is the release tree.

    With `payload`, every manifest file is hard-linked from it into `bag_dir/data` (copied when the
    bag is on another file system; bagit refuses a symlinked payload); otherwise the caller moves
    the release root to `bag_dir/data`. Returns the number of payload files.
    """
    reader = ManifestReader(manifest)
    with OutputSet() as outputs:  # the tag files and the payload appear together, or no bag at all
        outputs.folder(bag_dir)
        if payload is not None:
            _link_payload(manifest, payload, bag_dir / "data", outputs)
        _write_tag_files(manifest, reader.header, bag_dir, outputs)
    return reader.header.files


def _write_tag_files(manifest: Path, header: ManifestHeader, bag_dir: Path, outputs: OutputSet) -> None:
    tag_files: list[tuple[str, bytes]] = []
    for algorithm in ("sha256", "md5"):
        body = "".join(checksum_lines(manifest, algorithm, prefix="data/")).encode("utf-8", "surrogateescape")
        tag_files.append((f"manifest-{algorithm}.txt", body))
    tag_files.append(("bagit.txt", b"BagIt-Version: 1.0\nTag-File-Character-Encoding: UTF-8\n"))
    info = (
        f"Source-Organization: booru-release\nExternal-Identifier: {header.release}\n"
        f"Payload-Oxum: {header.bytes}.{header.files}\n"
    )
    tag_files.append(("bag-info.txt", info.encode()))
    for name, body in tag_files:
        with atomic_output(bag_dir / name, outputs) as handle:
            handle.write(body)
    tagmanifest = "".join(f"{hashlib.sha256(body).hexdigest()}  {name}\n" for name, body in sorted(tag_files))
    with atomic_output(bag_dir / "tagmanifest-sha256.txt", outputs) as handle:
        handle.write(tagmanifest.encode())


def _link_payload(manifest: Path, payload: Path, data: Path, outputs: OutputSet) -> None:
    """Link (or copy) the payload into a staged folder that becomes `data` when the bag is complete."""
    if data.is_symlink() or data.exists():
        raise BadInput(str(data), "already exists; remove it or export into an empty folder")
    staged = outputs.stage_folder(data)
    for record in ManifestReader(manifest):
        source, target = payload / record.path, staged / record.path
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            _link_or_copy(source, target)
        except FileNotFoundError as exc:
            raise InputIOError(str(source), "in the manifest but not in the payload") from exc
        except OSError as exc:
            raise OutputError(str(data / record.path), f"cannot place payload: {describe_os_error(exc)}") from exc


def _link_or_copy(source: Path, target: Path) -> None:
    try:
        os.link(source, target)
    except OSError as exc:
        if exc.errno != errno.EXDEV:
            raise
        shutil.copy2(source, target)
