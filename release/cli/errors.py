"""The one place where errors become a message, a hint and an exit code."""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Callable
from typing import Any, TypeVar

import typer

from release.errors import (
    BadInput,
    InputIOError,
    ManifestFormatError,
    MetadataFormatError,
    OutputError,
    ReleaseError,
    RemoteError,
    SchemaVersionError,
    UnsafePath,
)

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_IO = 3
EXIT_INTERRUPTED = 130

# First match wins: (error class, exit code, default hint).
ERROR_TABLE: tuple[tuple[type[ReleaseError], int, str], ...] = (
    (SchemaVersionError, EXIT_USAGE, "upgrade booru-release"),
    (UnsafePath, EXIT_USAGE, "paths must be relative, without '..', empty components or NUL"),
    (ManifestFormatError, EXIT_USAGE, "rebuild the manifest with `booru-release manifest build`"),
    (MetadataFormatError, EXIT_USAGE, "fix or remove the line; nothing was changed"),
    (BadInput, EXIT_USAGE, "see --help for the expected input"),
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
    from release.cli.output import err_console

    if as_json:
        print(json.dumps({"error": {"message": message, "hint": hint, "exit_code": code}}))
    err_console().print(f"[bold red]error:[/] {message}", highlight=False, markup=True)
    if hint:
        err_console().print(f"[dim]hint:[/] {hint}", highlight=False)


def command(fn: F) -> F:
    """Wrap a CLI command: its int result is the exit code; errors are translated once, here."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> None:
        as_json = bool(kwargs.get("json_out"))
        try:
            code = fn(*args, **kwargs)
        except ReleaseError as exc:
            code, hint = translate(exc)
            _report(exc.message, hint, code, as_json)
        except KeyboardInterrupt:
            code = EXIT_INTERRUPTED
            _report("interrupted", "nothing was left half-written; run the command again to redo it", code, as_json)
        sys.stdout.flush()
        raise typer.Exit(code or 0)

    return wrapper  # type: ignore[return-value]
