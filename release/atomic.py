"""Outputs that are whole or absent: write to a temporary name in the same folder, then rename.

One mechanism for every file booru-release writes:
- `atomic_output(path)`: one file. `-` is standard output; an existing character device or FIFO
  (`/dev/null`, a named pipe, `/proc/self/fd/1`) is written through, never replaced; a symlink to a
  regular file is followed, so the link stays and its target is replaced; a folder, block device or
  socket is refused. An output that is the same file as one of the command's inputs is refused.
- `OutputSet`: several outputs (a manifest and its torrents, notes and plots, a bag) that appear
  together or not at all: each is written under a temporary name, and all are renamed at the end with
  Ctrl-C and SIGTERM held back until the renames are done.
- Temporary names carry the writer's PID (`.NAME.<pid>.<random>.tmp`): the next run removes the
  ones whose process is gone (left by SIGKILL or a power cut).
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import signal
import stat
import sys
import tempfile
import threading
from collections.abc import Iterable, Iterator
from pathlib import Path
from types import FrameType
from typing import BinaryIO

from release.errors import BadInput, OutputError

STDOUT = "-"
_PROTECTED: dict[tuple[int, int], str] = {}  # (st_dev, st_ino) of this command's inputs -> how it was named


def describe_os_error(exc: OSError) -> str:
    """A short human description of an OSError, naming disk-full cases plainly."""
    if exc.errno == errno.ENOSPC:
        return "no space left on device"
    if exc.errno == errno.EDQUOT:
        return "disk quota exceeded"
    return exc.strerror or str(exc)


def is_stdout(path: Path | str | None) -> bool:
    """Whether an output option means standard output (`-`)."""
    return path is not None and str(path) == STDOUT


def protect_inputs(paths: Iterable[Path | str]) -> None:
    """Remember the files a command reads, so no output of the same command can overwrite one."""
    for path in paths:
        if is_stdout(path):
            continue
        with contextlib.suppress(OSError):
            st = os.stat(path)
            if stat.S_ISREG(st.st_mode):
                _PROTECTED[(st.st_dev, st.st_ino)] = str(path)


def clear_protected() -> None:
    """Forget the inputs remembered by `protect_inputs` (the command is over)."""
    _PROTECTED.clear()


def process_alive(pid: int) -> bool:
    """Whether process `pid` still runs (the writer of a temporary that may be stale). A zombie does not:
    it was killed and writes nothing more, though it stays listed until it is reaped (a killed command's
    workers are orphans, and a container's init may reap them late, or never)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            state = handle.read().rsplit(b")", 1)[1].split()[0]  # the name, in brackets, may hold anything
    except (OSError, IndexError):
        return True  # no /proc: alive, as kill said
    return state not in (b"Z", b"X")


def remove_stale_temporaries(folder: Path, name: str) -> list[Path]:
    """Remove `.NAME.<pid>.*.tmp` files and folders in `folder` whose writing process is gone."""
    removed: list[Path] = []
    prefix = f".{name}."
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return removed
    for entry in entries:
        if not (entry.name.startswith(prefix) and entry.name.endswith(".tmp")):
            continue
        pid_text = entry.name[len(prefix) :].split(".", 1)[0]
        if not pid_text.isdigit() or int(pid_text) == os.getpid() or process_alive(int(pid_text)):
            continue
        with contextlib.suppress(OSError):
            if entry.is_dir(follow_symlinks=False):
                shutil.rmtree(entry.path)
            else:
                os.unlink(entry.path)
            removed.append(Path(entry.path))
    return removed


def _resolve(final: Path) -> tuple[Path, bool]:
    """Where to write `final`: (path, True) to replace it atomically, (path, False) to write through it."""
    try:
        st = os.stat(final)
    except FileNotFoundError:
        if os.path.islink(final):
            raise BadInput(str(final), "is a symlink to a missing file; refusing to write through it") from None
        return final, True
    except OSError as exc:
        raise OutputError(str(final), f"cannot use as output: {describe_os_error(exc)}") from exc
    if (st.st_dev, st.st_ino) in _PROTECTED:
        raise BadInput(
            str(final),
            f"is also an input of this command ({_PROTECTED[(st.st_dev, st.st_ino)]}); it would be destroyed",
            "write the output to another file",
        )
    if stat.S_ISREG(st.st_mode):
        return (Path(os.path.realpath(final)) if os.path.islink(final) else final), True
    if stat.S_ISCHR(st.st_mode) or stat.S_ISFIFO(st.st_mode):
        return final, False
    kind = "folder" if stat.S_ISDIR(st.st_mode) else "block device" if stat.S_ISBLK(st.st_mode) else "socket"
    raise BadInput(str(final), f"is a {kind}; refusing to write an output there")


def _temporary(final: Path) -> tuple[int, Path]:
    parent = final.parent if str(final.parent) else Path(".")
    remove_stale_temporaries(parent, final.name)
    try:
        fd, name = tempfile.mkstemp(prefix=f".{final.name}.{os.getpid()}.", suffix=".tmp", dir=parent)
    except OSError as exc:
        raise OutputError(str(final), f"cannot create output: {describe_os_error(exc)}") from exc
    return fd, Path(name)


@contextlib.contextmanager
def _write_through(final: Path) -> Iterator[BinaryIO]:
    if is_stdout(final):
        sys.stdout.flush()
        yield sys.stdout.buffer
        sys.stdout.buffer.flush()
        return
    try:
        handle = open(final, "wb")
    except OSError as exc:
        raise OutputError(str(final), f"cannot open output: {describe_os_error(exc)}") from exc
    try:
        with handle:
            yield handle
    except OSError as exc:
        raise OutputError(str(final), f"cannot write output: {describe_os_error(exc)}") from exc


@contextlib.contextmanager
def atomic_output(path: Path | str, outputs: OutputSet | None = None) -> Iterator[BinaryIO]:
    """Open `path` for writing as a whole: a temporary file beside it, fsync'd and renamed over it at the end
    (with `outputs`, renamed when the set commits). See the module docstring for `-`, devices and links.

    On any exception (KeyboardInterrupt too) the temporary file is removed and nothing appears under the
    final name. OS errors become OutputError naming `path`.
    """
    final, replace = (Path(path), False) if is_stdout(path) else _resolve(Path(path))
    if not replace:
        with _write_through(final) as handle:
            yield handle
        return
    fd, tmp = _temporary(final)
    try:
        with os.fdopen(fd, "wb") as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o644)
        if outputs is not None:
            outputs.stage(tmp, final)
        else:
            os.replace(tmp, final)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise OutputError(str(final), f"cannot write output: {describe_os_error(exc)}") from exc
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_text_atomic(path: Path | str, text: str, outputs: OutputSet | None = None) -> None:
    """Write `text` (UTF-8) to `path` atomically."""
    with atomic_output(path, outputs) as handle:
        handle.write(text.encode("utf-8"))


@contextlib.contextmanager
def held_signals() -> Iterator[None]:
    """Hold Ctrl-C and SIGTERM back for a short critical section; deliver them (once) when it ends."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    caught: list[int] = []

    def hold(signum: int, _frame: FrameType | None) -> None:
        caught.append(signum)

    previous = {sig: signal.signal(sig, hold) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        if caught:
            os.kill(os.getpid(), caught[0])


class OutputSet:
    """Outputs that appear together or not at all; use as a context manager (commit on success).

    Files go through `atomic_output(path, outputs=self)`; whole folders are filled under a temporary
    name from `stage_folder`; renames of existing files (`move`) wait for the commit too.
    """

    def __init__(self) -> None:
        self._staged: list[tuple[Path, Path]] = []  # (temporary, final)
        self._moves: list[tuple[Path, Path]] = []
        self._removals: list[Path] = []
        self._made: list[Path] = []  # folders this set created, removed again on failure when empty

    def __enter__(self) -> OutputSet:
        return self

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        if exc_type is None:
            self.commit()
        else:
            self.rollback()

    def stage(self, tmp: Path, final: Path) -> None:
        """Rename `tmp` to `final` at the commit."""
        self._staged.append((tmp, final))

    def staged(self, final: Path) -> Path:
        """Where the output that will become `final` is being written (to read it back before the commit)."""
        for tmp, target in self._staged:
            if target == final:
                return tmp
        raise KeyError(final)

    def remove(self, path: Path) -> None:
        """Remove an existing file at the commit (before the staged outputs appear)."""
        self._removals.append(path)

    def move(self, source: Path, target: Path) -> None:
        """Rename an existing `source` to `target` at the commit (before the staged outputs appear)."""
        self._moves.append((source, target))

    def folder(self, path: Path) -> Path:
        """Make sure folder `path` exists (and its parents); folders made here go again on failure if empty."""
        missing = [p for p in [path, *path.parents] if not p.exists()]
        try:
            path.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise OutputError(str(path), f"cannot create folder: {describe_os_error(exc)}") from exc
        self._made.extend(missing)  # deepest first
        return path

    def stage_folder(self, final: Path) -> Path:
        """A new empty folder beside `final` to fill; it is renamed to `final` (which must not exist) at commit."""
        parent = self.folder(final.parent)
        remove_stale_temporaries(parent, final.name)
        try:
            tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.{os.getpid()}.", suffix=".tmp", dir=parent))
        except OSError as exc:
            raise OutputError(str(final), f"cannot create folder: {describe_os_error(exc)}") from exc
        self._staged.append((tmp, final))
        return tmp

    def commit(self) -> None:
        """Make every output appear (signals held back while renaming)."""
        with held_signals():
            try:
                for path in self._removals:
                    path.unlink(missing_ok=True)
                for source, target in self._moves:
                    os.replace(source, target)
                for tmp, final in self._staged:
                    os.replace(tmp, final)
            except OSError as exc:
                self.rollback()
                raise OutputError(str(exc.filename or ""), f"cannot rename output: {describe_os_error(exc)}") from exc
        self._clear()

    def rollback(self) -> None:
        """Remove every temporary output; the final names are untouched."""
        for tmp, _ in self._staged:
            with contextlib.suppress(OSError):
                if tmp.is_dir() and not tmp.is_symlink():
                    shutil.rmtree(tmp)
                else:
                    tmp.unlink()
        for folder in self._made:
            with contextlib.suppress(OSError):
                folder.rmdir()
        self._clear()

    def _clear(self) -> None:
        self._staged.clear()
        self._moves.clear()
        self._removals.clear()
        self._made.clear()
