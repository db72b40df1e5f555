"""The one place where errors become a message, a hint and an exit code."""

from __future__ import annotations

import functools
import json
import signal
import sys
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from typing import Any, TypeVar

import typer
from pydantic import ValidationError

from release.atomic import clear_protected, protect_inputs
from release.errors import (
    BadInput,
    ConsistencyFailure,
    InputIOError,
    ManifestFormatError,
    MetadataFormatError,
    OutputError,
    ReleaseError,
    RemoteError,
    SchemaVersionError,
    Terminated,
    UnsafePath,
)

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_IO = 3
EXIT_INTERRUPTED = 130
EXIT_TERMINATED = 143  # 128 + SIGTERM, what shells report for a terminated command

INTERRUPTED_HINT = "nothing was left half-written; run the command again (a manifest build resumes where it stopped)"
# Parameters that name what a command writes; every other path parameter is an input it reads, and
# no output may be the same file as an input (atomic.protect_inputs).
OUTPUT_PARAMETERS = frozenset(
    {"output", "refetch_list", "report", "notes", "plots", "torrents", "target", "extras", "into", "findings"}
)

# First match wins: (error class, exit code, default hint).
ERROR_TABLE: tuple[tuple[type[ReleaseError], int, str], ...] = (
    (SchemaVersionError, EXIT_USAGE, "upgrade booru-release"),
    (UnsafePath, EXIT_USAGE, "paths must be relative, without '..', empty components or NUL"),
    (ManifestFormatError, EXIT_USAGE, "rebuild the manifest with `booru-release manifest build`"),
    (MetadataFormatError, EXIT_USAGE, "fix or remove the line; nothing was changed"),
    (BadInput, EXIT_USAGE, "see --help for the expected input"),
    (ConsistencyFailure, EXIT_FAILED, ""),
    (OutputError, EXIT_IO, "check free space and permissions of the output folder; nothing was written"),
    (InputIOError, EXIT_IO, "check that the file exists and is readable"),
    (RemoteError, EXIT_IO, "check the server or peer named above, then run again"),
    (ReleaseError, EXIT_IO, ""),
)

F = TypeVar("F", bound=Callable[..., Any])


def translate(exc: ReleaseError) -> tuple[int, str]:
    """Exit code and hint for an error (its own hint wins over the table's)."""
    for cls, code, hint in ERROR_TABLE:
        if isinstance(exc, cls):
            return code, exc.hint or hint
    return EXIT_IO, exc.hint or ""  # pragma: no cover - ReleaseError row matches everything


def _report(message: str, hint: str, code: int, as_json: bool) -> None:
    from rich.markup import escape

    from release.cli.output import err_console

    if as_json:
        print(json.dumps({"error": {"message": message, "hint": hint, "exit_code": code}}))
    err_console().print(f"[bold red]error:[/] {escape(message)}", highlight=False, markup=True)
    if hint:
        err_console().print(f"[dim]hint:[/] {escape(hint)}", highlight=False)


def _option_error(exc: ValidationError) -> BadInput:
    err = exc.errors()[0]
    where = ".".join(str(p) for p in err["loc"]) or exc.title
    return BadInput(f"--{where.replace('_', '-')}", str(err["msg"]).removeprefix("Value error, "))


def _terminate(_signum: int, _frame: FrameType | None) -> None:
    raise Terminated()


def _inputs(kwargs: dict[str, Any]) -> list[Path]:
    paths: list[Path] = []
    for name, value in kwargs.items():
        if name in OUTPUT_PARAMETERS:
            continue
        values = value if isinstance(value, list) else [value]
        paths.extend(v for v in values if isinstance(v, Path))
    return paths


def command(fn: F) -> F:
    """Wrap a CLI command: its int result is the exit code; errors are translated once, here.

    SIGTERM unwinds like Ctrl-C (temporary outputs removed) and exits 143; the command's input files
    are protected from being overwritten by its own outputs."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> None:
        as_json = bool(kwargs.get("json_out"))
        previous = signal.signal(signal.SIGTERM, _terminate)
        protect_inputs(_inputs(kwargs))
        try:
            code = fn(*args, **kwargs)
        except ReleaseError as exc:
            code, hint = translate(exc)
            _report(exc.message, hint, code, as_json)
        except ValidationError as exc:  # settings built from options; files are validated where they are read
            error = _option_error(exc)
            code, hint = translate(error)
            _report(error.message, hint, code, as_json)
        except KeyboardInterrupt as exc:
            terminated = isinstance(exc, Terminated)
            code = EXIT_TERMINATED if terminated else EXIT_INTERRUPTED
            what = "terminated (SIGTERM)" if terminated else "interrupted"
            _report(what, INTERRUPTED_HINT, code, as_json)
        finally:
            clear_protected()
            signal.signal(signal.SIGTERM, previous)
        sys.stdout.flush()
        raise typer.Exit(code or 0)

    return wrapper  # type: ignore[return-value]
