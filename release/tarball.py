"""Reproducible .tar.xz archives: the same inputs give the same bytes, on every run and machine.

Members are sorted by name and carry fixed metadata (mtime, mode 0644/0755, uid/gid 0, no owner
names); the tar format (POSIX ustar, no PAX headers) and the xz settings (a fixed preset per
archive kind, CRC64 check, one stream) are fixed. The only outside factor left is liblzma's
encoder, stable across releases.
"""

from __future__ import annotations

import io
import lzma
import tarfile
from pathlib import Path
from typing import BinaryIO

from release.atomic import OutputSet, atomic_output
from release.errors import BadInput, InputIOError

XZ_PRESET = 9
FILE_MODE = 0o644
DIR_MODE = 0o755


def xz_writer(raw: BinaryIO, preset: int = XZ_PRESET) -> lzma.LZMAFile:
    """An xz stream over `raw` with the fixed settings every reproducible output of ours uses."""
    return lzma.LZMAFile(raw, "wb", format=lzma.FORMAT_XZ, check=lzma.CHECK_CRC64, preset=preset)


def _info(name: str, size: int, mtime: int, is_dir: bool = False) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.size = 0 if is_dir else size
    info.mtime = mtime
    info.mode = DIR_MODE if is_dir else FILE_MODE
    info.type = tarfile.DIRTYPE if is_dir else tarfile.REGTYPE
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    return info


def write_tar_xz(
    output: Path,
    members: list[tuple[str, Path]],
    mtime: int = 0,
    preset: int = XZ_PRESET,
    outputs: OutputSet | None = None,
) -> None:
    """Write `members` ((name in the archive, source file)) to `output` reproducibly and atomically.

    `preset` is part of the format: the same preset gives the same bytes (the default 9 for the
    metadata; the torrents tarball uses 0, since piece hashes do not compress and 9 takes 35x longer).

    Parent folders of the members are written as directory entries, so extracting gives the tree.
    """
    names = [name for name, _ in members]
    if len(set(names)) != len(names):
        raise BadInput(str(output), "two archive members share a name")
    folders = sorted({"/".join(name.split("/")[:i]) for name in names for i in range(1, name.count("/") + 1)})
    entries = sorted([(folder + "/", None) for folder in folders] + [(n, p) for n, p in members])
    with atomic_output(output, outputs) as raw:
        with xz_writer(raw, preset) as xz:
            with tarfile.open(fileobj=xz, mode="w", format=tarfile.USTAR_FORMAT) as tar:
                for name, source in entries:
                    if source is None:
                        tar.addfile(_info(name.rstrip("/"), 0, mtime, is_dir=True))
                        continue
                    try:
                        with open(source, "rb") as handle:
                            size = handle.seek(0, io.SEEK_END)
                            handle.seek(0)
                            tar.addfile(_info(name, size, mtime), handle)
                    except OSError as exc:
                        raise InputIOError(str(source), f"cannot read: {exc.strerror}") from exc
