"""Work a step starts ahead of its turn: in a forked child at the lowest CPU priority, beside the steps
before it, so that it takes only the cores they leave idle (the scan and the statistics are one Python
thread; the read step waits on the disk).

Ahead work only prepares: it writes a cache next to the outputs (`OUTPUT/.cut/`), atomically, which the
step uses when its turn comes and checks as it does (the metadata tarball's streams are copied only when
their checksums match). So a failed, killed or stale ahead run costs time, never a wrong output: the step
does the rest itself. The child dies with the cut (`PR_SET_PDEATHSIG`, also after `kill -9`), and a
SIGTERM or SIGINT lets it remove its half-written cache before it exits.
"""

from __future__ import annotations

import contextlib
import ctypes
import multiprocessing
import os
import signal
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from types import FrameType, TracebackType

from release.hashing import ring_bytes

STOP_GRACE = 30.0  # seconds a stopped child has to remove its temporaries (one xz block at most)
_PR_SET_PDEATHSIG = 1


@dataclass(frozen=True)
class AheadOutcome:
    """What a step's ahead work did: its wall time (its own, not the wait for its step's turn) and its
    error. Its bytes read are the cut's once `finish` has reaped it (the kernel adds a reaped child's I/O
    counters to its parent's, as in `bytes_read`)."""

    seconds: float
    error: str = ""
    peak_rss: int = 0  # bytes: the child's peak resident memory (what it shares with the cut included)
    began: str = ""  # when: "start" (with the cut), or after which step


@dataclass
class _Running:
    process: BaseProcess
    results: Connection
    started: float
    began: str


def bytes_read() -> int:
    """Bytes this process's read calls have returned so far, its reaped children's included (0 where /proc
    does not say), and the small files its read loop took through io_uring, which /proc does not count (the
    cut's children read through Python's file calls, not the loop)."""
    try:
        with open("/proc/self/io", "rb") as handle:
            rchar = int(handle.readline().split()[1])  # the first line is rchar
    except (OSError, IndexError, ValueError):
        rchar = 0
    return rchar + ring_bytes()


def peak_rss() -> int:
    """This process's peak resident memory in bytes (VmHWM; 0 where /proc does not say)."""
    try:
        with open("/proc/self/status", "rb") as handle:
            for line in handle:
                if line.startswith(b"VmHWM:"):
                    return int(line.split()[1]) * 1024
    except (OSError, IndexError, ValueError):
        pass
    return 0


def _exit_on(signum: int, _frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)  # unwinds: atomic outputs remove their temporaries


def _child(work: Callable[[], None], results: Connection, parent: int) -> None:
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    if os.getppid() != parent:  # the cut died before the call above
        return
    signal.signal(signal.SIGTERM, _exit_on)
    signal.signal(signal.SIGINT, _exit_on)
    with contextlib.suppress(OSError):
        os.nice(19)
    error, started = "", time.monotonic()
    try:
        work()
    except Exception as exc:  # noqa: BLE001  # reported to the step, which then does the work itself
        error = f"{type(exc).__name__}: {exc}"
    results.send((error, peak_rss(), time.monotonic() - started))


class AheadWork:
    """The ahead runs of one cut, by step name; every child still running is stopped when this closes."""

    def __init__(self) -> None:
        self._running: dict[str, _Running] = {}

    def __enter__(self) -> AheadWork:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        for name in list(self._running):
            self.stop(name)

    def start(self, name: str, work: Callable[[], None], began: str = "") -> None:
        """Run `work` in a forked child (nothing is pickled) at the lowest priority; `began` says when, for
        the report."""
        receive, send = multiprocessing.Pipe(duplex=False)
        fork = multiprocessing.get_context("fork")
        process = fork.Process(target=_child, args=(work, send, os.getpid()), daemon=True)
        sys.stdout.flush()
        sys.stderr.flush()
        process.start()
        send.close()
        self._running[name] = _Running(process, receive, time.monotonic(), began)

    def running(self, name: str) -> bool:
        """Whether `name`'s ahead work was started and not yet finished or stopped."""
        return name in self._running

    def finish(self, name: str) -> AheadOutcome | None:
        """Wait for `name`'s ahead work; None when none was started."""
        running = self._running.pop(name, None)
        if running is None:
            return None
        try:
            error, peak, seconds = running.results.recv()
        except EOFError:  # it died without a word (killed, out of memory): the time it had, at most
            error, peak, seconds = None, 0, time.monotonic() - running.started
        running.process.join()
        running.results.close()
        if error is None:
            error = f"ended with exit code {running.process.exitcode}"
        return AheadOutcome(round(seconds, 3), error, peak, running.began)

    def stop(self, name: str) -> None:
        """Stop `name`'s ahead work (its step will not run): SIGTERM, then SIGKILL after STOP_GRACE."""
        running = self._running.pop(name, None)
        if running is None:
            return
        if running.process.is_alive():
            running.process.terminate()
            running.process.join(STOP_GRACE)
            if running.process.is_alive():
                running.process.kill()
        running.process.join()
        running.results.close()
