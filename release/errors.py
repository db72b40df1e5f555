"""One error hierarchy carrying data; the CLI edge turns it into message + hint + exit code."""

from __future__ import annotations

from typing import Any


class ReleaseError(Exception):
    """Base of every error booru-release raises on purpose.

    `path` names the file (or other input) at fault, `problem` says what is wrong with it,
    `hint` optionally says what to do about it.
    """

    def __init__(self, path: str | None, problem: str, hint: str | None = None) -> None:
        self.path = path
        self.problem = problem
        self.hint = hint
        super().__init__(self.message)

    @property
    def message(self) -> str:
        """`"<path>: <problem>"`, or just the problem when no path applies."""
        return f"{self.path}: {self.problem}" if self.path else self.problem

    def __reduce__(self) -> tuple[Any, ...]:
        # Errors cross from worker processes to the parent; rebuild them from their data.
        return (_rebuild, (type(self), dict(self.__dict__)))


def _rebuild(cls: type[ReleaseError], state: dict[str, Any]) -> ReleaseError:
    error = cls.__new__(cls)
    error.__dict__.update(state)
    Exception.__init__(error, error.message)
    return error


class BadInput(ReleaseError):
    """The user gave something we cannot accept (usage or input data)."""


class UnsafePath(BadInput):
    """A path that is absolute, contains `..`, empty components or NUL."""


class ManifestFormatError(BadInput):
    """A manifest line that does not parse or does not match the schema."""

    def __init__(self, path: str, line: int, problem: str, hint: str | None = None) -> None:
        self.line = line
        super().__init__(f"{path}:{line}", problem, hint)


class SchemaVersionError(BadInput):
    """A file written by a newer (or unknown) schema version."""


class MetadataFormatError(BadInput):
    """A metadata export line that does not match the Danbooru format."""

    def __init__(self, path: str, line: int, field: str | None, problem: str) -> None:
        self.line = line
        self.field = field
        where = f"{path}:{line}" + (f": field {field!r}" if field else "")
        super().__init__(where, problem)


class ConsistencyFailure(ReleaseError):
    """A check found what the release must not contain (exit 1, like a failed verification)."""


class OutputError(ReleaseError):
    """Writing an output failed (disk full, permission, read-only file system)."""


class InputIOError(ReleaseError):
    """Reading an input failed at the operating-system level."""


class Terminated(KeyboardInterrupt):
    """SIGTERM arrived (`kill`, `timeout`, a service manager): unwinds like Ctrl-C, exits 143."""


class RemoteError(ReleaseError):
    """A server, peer or remote transfer failed (rsync daemon, BitTorrent swarm, S3)."""
