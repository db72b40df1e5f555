"""Progress is data: core code reports counters through a callback; the CLI renders them."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Progress:
    """Where a long job stands. `total`/`bytes_total` are None when not known in advance."""

    stage: str
    done: int
    total: int | None = None
    bytes_done: int = 0
    bytes_total: int | None = None
    final: bool = False  # the stage's last report
    unit: str = "files"  # what `done`/`total` count


ProgressFn = Callable[[Progress], None]


def no_progress(_: Progress) -> None:
    """A progress callback that ignores everything."""


class Ticker:
    """Counts work and calls the callback at most every `interval` seconds (and at `finish`)."""

    def __init__(
        self,
        callback: ProgressFn,
        stage: str,
        total: int | None = None,
        bytes_total: int | None = None,
        interval: float = 0.2,
        unit: str = "files",
    ) -> None:
        self.callback = callback
        self.stage = stage
        self.total = total
        self.bytes_total = bytes_total
        self.unit = unit
        self.done = 0
        self.bytes_done = 0
        self._interval = interval
        self._next = 0.0

    def add(self, files: int = 1, nbytes: int = 0) -> None:
        """Count `files` more done and `nbytes` more bytes; report if it is time."""
        self.done += files
        self.bytes_done += nbytes
        now = time.monotonic()
        if now >= self._next:
            self._next = now + self._interval
            self._emit()

    def finish(self) -> None:
        """Report the final counts."""
        self._emit(final=True)

    def _emit(self, final: bool = False) -> None:
        self.callback(Progress(self.stage, self.done, self.total, self.bytes_done, self.bytes_total, final, self.unit))
