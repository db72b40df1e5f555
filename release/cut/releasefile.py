"""The release file `cut` runs from: one TOML file says everything about a yearly release.

A strict, frozen, versioned model: an unknown key, a wrong type or a missing path is refused with the
key's dotted name. Relative paths are relative to the release file's folder, so a release file and its
inputs move together. The JSON Schema is `manifests/schema/release-file.schema.json` (written from this
model by `release_file_schema`); `manifests/release.example.toml` is a commented example.
"""

from __future__ import annotations

import json
import tomllib
from pathlib import Path
from typing import Literal

from pydantic import Field, ValidationError

from release.errors import BadInput, InputIOError
from release.layout import IMAGE_SUBSETS
from release.models import Frozen, ReleaseName
from release.releases import TorrentRecipe
from release.scan import KINDS
from release.torrents.profiles import DEFAULT_PROFILES, PROFILES

SCHEMA_FILE = Path(__file__).resolve().parents[2] / "manifests" / "schema" / "release-file.schema.json"


class Previous(Frozen):
    """Last year's release: its manifest (what "unchanged" is judged against) and its .torrent files."""

    name: ReleaseName
    manifest: str = Field(description="last year's manifest (.jsonl.zst)")
    torrents: str | None = Field(None, description="folder of last year's .torrent files (piece hashes reused)")


class Torrents(TorrentRecipe):
    """How the shards are planned and what goes into every .torrent."""

    enabled: bool = True
    profiles: tuple[str, ...] = Field(DEFAULT_PROFILES, description="client profiles every shard must fit")


class Metadata(Frozen):
    """This year's metadata export, placed into `ROOT/metadata` (`metadata archive`)."""

    export: str = Field(description="folder of the export: YEAR + 12 digit chunks, or posts*.json")


class Derive(Frozen):
    """The SFW 512px subset (`derive 512px`)."""

    enabled: bool = True
    size: int = Field(512, ge=16, le=4096)
    quality: int = Field(90, ge=1, le=100)
    background: Literal["auto", "white", "black"] = "auto"
    ratings: tuple[str, ...] | None = Field(None, description="rating letters (default: the SFW ones)")
    workers: int | None = Field(None, ge=1)


class Rsync(Frozen):
    """The public rsync module and its file lists."""

    module: ReleaseName
    path: str | None = Field(None, description="the folder the daemon serves (default: the release root)")
    comment: str = ""
    hosts_allow: tuple[str, ...] = ()


class S3Target(Frozen):
    """One S3-compatible mirror (credentials come from boto3's standard chain, never from this file)."""

    bucket: str = Field(min_length=1)
    prefix: str = ""
    endpoint_url: str | None = None
    region: str | None = None
    profile: str | None = None
    addressing_style: Literal["auto", "path", "virtual"] = "auto"
    checksums: Literal["when_required", "when_supported"] = "when_required"


class Publish(Frozen):
    """Where `cut --publish` sends the release."""

    s3: tuple[S3Target, ...] = ()
    seedbox_inventory: str | None = Field(None, description="Ansible inventory of seedboxes and rsync mirrors")


class ReleaseFile(Frozen):
    """One yearly release, everything `cut` needs."""

    format: Literal["booru-release-cut"] = "booru-release-cut"
    version: int = Field(1, ge=1, le=1)
    name: ReleaseName
    year: int = Field(ge=2000, le=2100, description="year of the metadata export it ships")
    root: str = Field(description="the release root: original/, 512px/, metadata/")
    output: str = Field(description="folder for the artefacts: manifest, torrents, lists, notes, SHA256SUMS")
    final_id: int | None = Field(None, ge=1, description="the highest post ID in the release, checked by the scan")
    subsets: tuple[str, ...] = IMAGE_SUBSETS
    previous: Previous | None = None
    metadata: Metadata | None = None
    takedowns: str | None = Field(None, description="--files-from list of paths taken down: must be gone")
    scan_allow: tuple[str, ...] = Field((), description="scan finding kinds that do not stop the cut")
    derive_512px: Derive = Derive()
    torrents: Torrents = Torrents()
    rsync: Rsync | None = None
    publish: Publish = Publish()
    signing_key: str | None = Field(None, description="ssh private key: SHA256SUMS is signed with ssh-keygen -Y")


class LoadedRelease:
    """A validated release file with its paths resolved against the file's folder."""

    def __init__(self, path: Path, spec: ReleaseFile) -> None:
        self.path = path
        self.spec = spec
        self.base = path.resolve().parent

    def resolve(self, value: str) -> Path:
        """A path of the release file, absolute (relative ones from the file's folder; `~` expanded)."""
        candidate = Path(value).expanduser()
        return candidate if candidate.is_absolute() else self.base / candidate

    @property
    def root(self) -> Path:
        """The release root."""
        return self.resolve(self.spec.root)

    @property
    def output(self) -> Path:
        """The artefacts folder."""
        return self.resolve(self.spec.output)


def _where(loc: tuple[int | str, ...]) -> str:
    return ".".join(str(p) for p in loc) or "(top level)"


def load_release_file(path: Path) -> LoadedRelease:
    """Parse and validate a release file; every path it names that must exist is checked here."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise BadInput(str(path), "no such release file") from exc
    except OSError as exc:
        raise InputIOError(str(path), f"cannot read: {exc.strerror}") from exc
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise BadInput(str(path), f"not valid TOML: {exc}") from exc
    try:
        spec = ReleaseFile.model_validate(data, strict=False)  # TOML arrays stand for tuples
    except ValidationError as exc:
        err = exc.errors()[0]
        problem = "unknown key" if err["type"] == "extra_forbidden" else err["msg"]
        raise BadInput(f"{path}: {_where(err['loc'])}", problem, "see manifests/release.example.toml") from exc
    loaded = LoadedRelease(path, spec)
    _check_paths(loaded)
    return loaded


def _check_paths(loaded: LoadedRelease) -> None:
    spec, name = loaded.spec, str(loaded.path)
    bad = [s for s in spec.subsets if s not in IMAGE_SUBSETS]
    if bad:
        raise BadInput(f"{name}: subsets", f"unknown subset {bad[0]!r}", f"choose from {', '.join(IMAGE_SUBSETS)}")
    kinds = [k for k in spec.scan_allow if k not in KINDS]
    if kinds:
        raise BadInput(f"{name}: scan_allow", f"unknown finding kind {kinds[0]!r}", f"kinds: {', '.join(KINDS)}")
    unknown = [p for p in spec.torrents.profiles if p not in PROFILES]
    if unknown:
        raise BadInput(f"{name}: torrents.profiles", f"unknown client profile {unknown[0]!r}")
    must_exist: list[tuple[str, str | None, bool]] = [
        ("root", spec.root, True),
        ("previous.manifest", spec.previous.manifest if spec.previous else None, False),
        ("previous.torrents", spec.previous.torrents if spec.previous else None, True),
        ("metadata.export", spec.metadata.export if spec.metadata else None, True),
        ("takedowns", spec.takedowns, False),
        ("publish.seedbox_inventory", spec.publish.seedbox_inventory, False),
        ("signing_key", spec.signing_key, False),
    ]
    for key, value, folder in must_exist:
        if value is None:
            continue
        target = loaded.resolve(value)
        if not (target.is_dir() if folder else target.is_file()):
            kind = "folder" if folder else "file"
            raise BadInput(f"{name}: {key}", f"{value!r}: no such {kind} ({target})")
    if spec.rsync is not None and spec.rsync.path is not None and not loaded.resolve(spec.rsync.path).is_dir():
        raise BadInput(f"{name}: rsync.path", f"{spec.rsync.path!r}: no such folder")


def release_file_schema() -> str:
    """The release file's JSON Schema, as the deterministic text kept in manifests/schema/."""
    return json.dumps(ReleaseFile.model_json_schema(), indent=2, sort_keys=True) + "\n"
