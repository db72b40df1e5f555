"""File-format models: strict, frozen, versioned; serialisation is deterministic."""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from release.errors import BadInput, UnsafePath
from release.layout import check_relpath

MANIFEST_FORMAT = "booru-release-manifest"
MANIFEST_VERSION = 1

Hex32 = Annotated[str, Field(pattern=r"^[0-9a-f]{32}$")]
Hex64 = Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]


def _safe_relpath(value: str) -> str:
    try:
        return check_relpath(value)
    except UnsafePath as exc:
        raise ValueError(f"unsafe path {value!r}: {exc.problem}") from exc


_UNSAFE_IN_NAME = re.compile(r"[/\\\x00-\x1f\x7f]")


def check_release_name(value: str) -> str:
    """Return `value` if it can name a release: one safe path component (it becomes file and folder names).

    Refused: empty, `.`/`..`, a `/`, `\\`, NUL or control character, a leading `.` or `-` (hidden files,
    options), surrounding spaces, more than 200 UTF-8 bytes."""
    problem = None
    if not value or value in (".", ".."):
        problem = "is empty or a '.'/'..' component"
    elif _UNSAFE_IN_NAME.search(value):
        problem = "contains '/', '\\', NUL or a control character"
    elif value[0] in ".-" or value != value.strip():
        problem = "starts with '.' or '-', or has surrounding spaces"
    elif len(value.encode("utf-8", "surrogateescape")) > 200:
        problem = "is longer than 200 bytes"
    if problem is not None:
        raise BadInput(repr(value), f"a release name must be one safe path component: it {problem}")
    return value


def _release_name(value: str) -> str:
    try:
        return check_release_name(value)
    except BadInput as exc:
        raise ValueError(f"{exc.path}: {exc.problem}") from exc


ReleaseName = Annotated[
    str,
    Field(description="one safe path component: no '/', '\\', NUL, control characters, leading '.' or '-'"),
    AfterValidator(_release_name),
]

RelPath = Annotated[
    str,
    Field(description="relative POSIX path under the release root; no '..', no leading '/'"),
    AfterValidator(_safe_relpath),
]


class Frozen(BaseModel):
    """Base for every file-format model: strict types, immutable, unknown keys refused."""

    model_config = ConfigDict(strict=True, frozen=True, extra="forbid")


class SubsetTotals(Frozen):
    """Files and bytes of one subset (original, 512px, metadata, other)."""

    files: int = Field(ge=0)
    bytes: int = Field(ge=0)


class ManifestHeader(Frozen):
    """First line of a manifest."""

    format: Literal["booru-release-manifest"] = "booru-release-manifest"
    version: int = Field(MANIFEST_VERSION, ge=1)
    release: ReleaseName
    algorithms: tuple[str, ...]
    files: int = Field(ge=0)
    bytes: int = Field(ge=0)
    subsets: dict[str, SubsetTotals]


class ManifestRecord(Frozen):
    """One file of the release: one line of a manifest after the header."""

    path: RelPath
    size: int = Field(ge=0)
    mtime_ns: int
    xxh3_128: Hex32
    sha256: Hex64
    md5: Hex32


SCHEMAS: dict[str, type[Frozen]] = {
    "manifest-header": ManifestHeader,
    "manifest-record": ManifestRecord,
}
