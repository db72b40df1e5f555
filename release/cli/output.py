"""Terminal output: JSON on stdout, messages and progress on stderr (rich on a terminal)."""

from __future__ import annotations

import sys
import time
from functools import lru_cache
from pathlib import Path
from types import TracebackType
from typing import Annotated

import typer
from pydantic import BaseModel
from rich.console import Console
from rich.progress import BarColumn, DownloadColumn, TaskID, TextColumn, TimeRemainingColumn
from rich.progress import Progress as RichProgress

from release.atomic import is_stdout
from release.errors import BadInput
from release.progress import Progress

JsonOpt = Annotated[bool, typer.Option("--json", help="Machine-readable JSON on stdout (messages stay on stderr).")]
WorkersOpt = Annotated[int | None, typer.Option(help="Hashing workers (default: one per core; 0: in-process).")]
IoDepthOpt = Annotated[
    int, typer.Option(help="Files read at a time, on threads (more than the cores: a cold disk serves a deep queue).")
]
IO_DEPTH_DEFAULT = 16  # release.hashing.IO_DEPTH (not imported here: it keeps --help fast)
LINE_INTERVAL = 5.0


@lru_cache(maxsize=1)
def err_console() -> Console:
    """The stderr console for messages and progress."""
    return Console(stderr=True)


def out_console() -> Console:
    """A stdout console for human reports."""
    return Console(highlight=False, soft_wrap=True)


def emit_json(model: BaseModel | dict[str, object]) -> None:
    """Print a model (or dict) as JSON on stdout."""
    if isinstance(model, BaseModel):
        sys.stdout.write(model.model_dump_json(indent=2) + "\n")
    else:
        import json

        sys.stdout.write(json.dumps(model, indent=2) + "\n")


def human_bytes(n: float) -> str:
    """1234567 -> '1.2 MB' (decimal units, like the dataset pages)."""
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if abs(n) < 1000 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} TB"  # pragma: no cover


def one_stdout(json_out: bool, **outputs: Path | None) -> None:
    """Refuse two things on standard output: `--json` and an output given as `-`, or two outputs as `-`."""
    dashes = [f"--{name.replace('_', '-')} -" for name, path in outputs.items() if is_stdout(path)]
    if json_out and dashes:
        raise BadInput(dashes[0], "--json writes to standard output already; write this output to a file")
    if len(dashes) > 1:
        raise BadInput(dashes[1], f"{dashes[0]} writes to standard output already")


def message(text: str) -> None:
    """A human message on stderr."""
    err_console().print(text, highlight=False)


class ProgressView:
    """Renders Progress events: bars on a terminal, a line every few seconds otherwise, nothing with --json."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self.tty = err_console().is_terminal
        self._rich: RichProgress | None = None
        self._tasks: dict[str, TaskID] = {}
        self._last_line = time.monotonic()  # the first line after LINE_INTERVAL, not at once

    def __enter__(self) -> ProgressView:
        if self.enabled and self.tty:
            self._rich = RichProgress(
                TextColumn("{task.description}"),
                BarColumn(),
                DownloadColumn(),
                TimeRemainingColumn(),
                console=err_console(),
                transient=True,
            )
            self._rich.__enter__()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._rich is not None:
            self._rich.__exit__(exc_type, exc, tb)

    def __call__(self, event: Progress) -> None:
        if not self.enabled:
            return
        if self._rich is not None:
            task = self._tasks.get(event.stage)
            if task is None:
                task = self._tasks[event.stage] = self._rich.add_task(event.stage, total=event.bytes_total)
            self._rich.update(
                task,
                completed=event.bytes_done,
                total=event.bytes_total,
                description=f"{event.stage} {event.done:,}"
                + (f"/{event.total:,}" if event.total else "")
                + f" {event.unit}",
            )
            return
        now = time.monotonic()
        if event.final or now - self._last_line >= LINE_INTERVAL:
            self._last_line = now
            total = f"/{event.total:,}" if event.total else ""
            btotal = f"/{human_bytes(event.bytes_total)}" if event.bytes_total else ""
            message(f"{event.stage}: {event.done:,}{total} {event.unit}, {human_bytes(event.bytes_done)}{btotal}")
