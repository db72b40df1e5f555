"""File-format models: strict, frozen, versioned; serialisation is deterministic."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from release.errors import UnsafePath
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
    release: str = Field(min_length=1)
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
