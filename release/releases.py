"""The release catalogue: `manifests/releases/<name>.toml`, the public facts of each published release.

A release file says what a release *is* (its name, metadata year, final ID, subsets) and, when its
torrents were made by booru-release, the settings that rebuild them byte for byte.
"""

from __future__ import annotations

import importlib.resources
import tomllib
from pathlib import Path
from typing import Literal

from pydantic import Field, ValidationError

from release.errors import BadInput, InputIOError
from release.layout import IMAGE_SUBSETS
from release.models import Frozen, ReleaseName, check_release_name
from release.torrents.plan import TorrentSettings

RELEASE_FORMAT = "booru-release-release"
REPO_CATALOGUE = Path(__file__).resolve().parents[1] / "manifests" / "releases"


def default_catalogue() -> Path:
    """The release files shipped with the package (release/catalogue/ in a built package, else the
    repository's manifests/releases/ in a source checkout or editable install)."""
    packaged = importlib.resources.files("release") / "catalogue"
    if packaged.is_dir():
        return Path(str(packaged))
    return REPO_CATALOGUE


CATALOGUE = default_catalogue()


class TorrentRecipe(Frozen):
    """The settings a release's .torrent files were built with (see `torrents build --help`)."""

    piece_length: int | None = Field(None, ge=16384, description="bytes (default: planned per shard)")
    shards: int | None = Field(None, ge=1, description="default: the fewest every client profile loads")
    trackers: list[list[str]] = Field([], description="announce tiers (BEP 12)")
    web_seeds: list[str] = Field([], description="url-list bases (BEP 19): BASE/NAME/PATH")
    comment: str = Field("", description="the torrents' comment")
    created_by: str = Field("booru-release", description="the torrents' created by")
    creation_date: int | None = Field(None, description="Unix time; fixed, so rebuilds give the same bytes")
    name: ReleaseName | None = Field(None, description="info.name (default: the release name)")

    def settings(self, release: str) -> TorrentSettings:
        """TorrentSettings for `release`."""
        return TorrentSettings(
            release=release,
            trackers=self.trackers,
            web_seeds=self.web_seeds,
            comment=self.comment,
            created_by=self.created_by,
            creation_date=self.creation_date,
            piece_length=self.piece_length,
            name=self.name,
        )


class ReleaseFacts(Frozen):
    """One release file."""

    format: Literal["booru-release-release"] = "booru-release-release"
    version: int = Field(1, ge=1, le=1)
    name: ReleaseName
    year: int = Field(ge=2000, le=2100, description="year of the metadata export it shipped")
    final_id: int = Field(ge=1, description="the highest post ID in the release")
    subsets: tuple[str, ...] = IMAGE_SUBSETS
    published: dict[str, str | int | float] = Field({}, description="public figures, for people")
    torrents: TorrentRecipe | None = Field(None, description="present when booru-release made its torrents")


def load_release(path: Path) -> ReleaseFacts:
    """Parse and validate one release file."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise InputIOError(str(path), f"cannot read: {exc.strerror}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise BadInput(str(path), f"not valid TOML: {exc}") from exc
    try:
        facts = ReleaseFacts.model_validate(data, strict=False)
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err["loc"]) or "(top level)"
        raise BadInput(f"{path}: {where}", err["msg"]) from exc
    bad = [s for s in facts.subsets if s not in IMAGE_SUBSETS]
    if bad:
        raise BadInput(f"{path}: subsets", f"unknown subset {bad[0]!r}")
    return facts


def find_release(name: str, catalogue: Path = CATALOGUE) -> ReleaseFacts:
    """The release called `name` in the catalogue folder."""
    check_release_name(name)
    path = catalogue / f"{name}.toml"
    if not path.is_file():
        known = sorted(p.stem for p in catalogue.glob("*.toml")) if catalogue.is_dir() else []
        raise BadInput(name, f"no release file {path}", f"known releases: {', '.join(known) or 'none'}")
    facts = load_release(path)
    if facts.name != name:
        raise BadInput(str(path), f"names release {facts.name!r}, not {name!r}")
    return facts


def write_release(facts: ReleaseFacts) -> str:
    """A release file as TOML text (deterministic; only what the model holds)."""

    def value(v: object) -> str:
        if isinstance(v, str):
            return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, (list, tuple)):
            return "[" + ", ".join(value(x) for x in v) + "]"
        return str(v)

    data = facts.model_dump(exclude_none=True)
    tables = {k: data.pop(k) for k in ("published", "torrents") if isinstance(data.get(k), dict)}
    lines = [f"{k} = {value(v)}" for k, v in data.items()]
    for key, table in tables.items():
        if table:
            lines += ["", f"[{key}]"] + [f"{k} = {value(v)}" for k, v in table.items()]
    return "\n".join(lines) + "\n"
