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
from typing import Annotated, Literal, get_args, get_origin

from pydantic import Field, ValidationError
from pydantic.fields import FieldInfo

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

    enabled: bool = Field(True, description="build the torrents (one read with the manifest)")
    profiles: tuple[str, ...] = Field(DEFAULT_PROFILES, description="client profiles every shard must fit")


class Metadata(Frozen):
    """This year's metadata export, placed into `ROOT/metadata` (`metadata archive`)."""

    export: str = Field(description="folder of the export: YEAR + 12 digit chunks, or posts*.json")


class Derive(Frozen):
    """The SFW 512px subset (`derive 512px`)."""

    enabled: bool = Field(True, description="derive the subset (when 512px is one of the subsets)")
    size: int = Field(512, ge=16, le=4096, description="the canvas, size x size pixels")
    quality: int = Field(90, ge=1, le=100, description="JPEG quality (fixed: the same bytes every run)")
    background: Literal["auto", "white", "black"] = Field("auto", description="behind transparency")
    ratings: tuple[str, ...] | None = Field(None, description="rating letters (default: the SFW ones)")
    workers: int | None = Field(None, ge=1, description="converting processes (default: one per core)")


class Rsync(Frozen):
    """The public rsync module and its file lists."""

    module: ReleaseName
    path: str | None = Field(None, description="the folder the daemon serves (default: the release root)")
    comment: str = Field("", description="shown in the module listing")
    hosts_allow: tuple[str, ...] = Field((), description="addresses allowed (default: everyone)")


class S3Target(Frozen):
    """One S3-compatible mirror (credentials come from boto3's standard chain, never from this file)."""

    bucket: str = Field(min_length=1, description="the bucket")
    prefix: str = Field("", description="objects go to PREFIX/NAME/PATH")
    endpoint_url: str | None = Field(None, description="R2, B2, Wasabi, SeaweedFS, Ceph… (default: AWS)")
    region: str | None = Field(None, description="default: boto3's chain")
    profile: str | None = Field(None, description="a profile of the AWS shared config files")
    addressing_style: Literal["auto", "path", "virtual"] = Field("auto", description="path suits self-hosted")
    checksums: Literal["when_required", "when_supported"] = Field(
        "when_required", description="R2 and B2 reject boto3's default checksums"
    )


class Publish(Frozen):
    """Where `cut --publish` sends the release."""

    s3: tuple[S3Target, ...] = Field((), description="S3-compatible mirrors, one [[publish.s3]] table each")
    seedbox_inventory: str | None = Field(None, description="Ansible inventory of seedboxes and rsync mirrors")


class ReleaseFile(Frozen):
    """One yearly release, everything `cut` needs."""

    format: Literal["booru-release-cut"] = Field("booru-release-cut", description="what this file is")
    version: int = Field(1, ge=1, le=1, description="of this format")
    name: ReleaseName
    year: int = Field(ge=2000, le=2100, description="year of the metadata export it ships")
    root: str = Field(description="the release root: original/, 512px/, metadata/")
    output: str = Field(description="folder for the artefacts: manifest, torrents, lists, notes, SHA256SUMS")
    final_id: int | None = Field(None, ge=1, description="the highest post ID in the release, checked by the scan")
    subsets: tuple[str, ...] = Field(IMAGE_SUBSETS, description="image subsets the release holds")
    previous: Previous | None = Field(None, description="last year's release: incremental read, piece reuse")
    metadata: Metadata | None = Field(None, description="this year's export to place (none: already in place)")
    takedowns: str | None = Field(None, description="--files-from list of paths taken down: must be gone")
    scan_allow: tuple[str, ...] = Field((), description="scan finding kinds that do not stop the cut")
    derive_512px: Derive = Field(Derive(), description="the SFW 512px subset")
    torrents: Torrents = Field(Torrents(), description="the BitTorrent shards")
    rsync: Rsync | None = Field(None, description="the public rsync module (lists are written either way)")
    publish: Publish = Field(Publish(), description="targets of `cut --publish`")
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


def _type_name(annotation: object) -> str:
    """A short type for the reference: `str`, `int or none`, `list of str`, a table's name."""
    args = [a for a in get_args(annotation) if a is not type(None)]
    origin = get_origin(annotation)
    if origin is Annotated:
        return _type_name(args[0])
    if origin is Literal:
        return " or ".join(json.dumps(a) for a in args)
    if origin in (list, tuple):
        return f"list of {_type_name(args[0])}"
    if type(None) in get_args(annotation):
        return " or ".join(_type_name(a) for a in args) + " or none"
    if _is_model(annotation):
        return "table"
    return getattr(annotation, "__name__", str(annotation))


def _default(field: FieldInfo) -> str:
    if field.is_required():
        return "required"
    value = field.get_default(call_default_factory=True)
    return "" if isinstance(value, Frozen) else json.dumps(value, default=list)


def release_file_reference() -> str:
    """The release file's keys as Markdown tables, one per table of the file (docs/release-file.md)."""
    out = [
        "# The release file (`booru-release cut RELEASE.toml`)",
        "",
        "Generated from `release/cut/releasefile.py` (a test keeps it equal); the commented example is",
        "`manifests/release.example.toml`, the JSON Schema `manifests/schema/release-file.schema.json`.",
        "Relative paths are relative to the release file's folder; `~` is expanded. Unknown keys are refused.",
    ]
    tables: list[tuple[str, type[Frozen]]] = [("", ReleaseFile)]
    while tables:
        name, model = tables.pop(0)
        title = f"`{name}`" if name else "top level"
        out += ["", f"## {title}", "", (model.__doc__ or "").split("\n")[0], ""]
        out += ["| key | type | default | meaning |", "|---|---|---|---|"]
        for key, field in model.model_fields.items():
            inner = [a for a in (field.annotation, *getattr(field.annotation, "__args__", ())) if _is_model(a)]
            if inner:
                many = getattr(field.annotation, "__origin__", None) is tuple
                path = f"{name.strip('[]')}.{key}" if name else key
                tables.append((f"[[{path}]]" if many else f"[{path}]", inner[0]))
            meaning = (field.description or "").replace("|", "\\|")
            out.append(f"| `{key}` | {_type_name(field.annotation)} | {_default(field)} | {meaning} |")
    return "\n".join(out) + "\n"


def _is_model(value: object) -> bool:
    return isinstance(value, type) and issubclass(value, Frozen)
