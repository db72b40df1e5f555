"""What every step of a cut sees (`CutContext`), what it returns (`StepResult`) and what it is (`Step`)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from release.atomic import write_text_atomic
from release.cut.releasefile import LoadedRelease
from release.progress import ProgressFn

MANIFEST_SUFFIX = ".manifest.jsonl.zst"
CUT_FOLDER = ".cut"  # in the output folder: the state and the steps' reports
Summary = dict[str, Any]


@dataclass
class CutContext:
    """What every step sees: the release file, the progress callback and the run's options."""

    release: LoadedRelease
    progress: ProgressFn
    workers: int | None
    publish: bool

    @property
    def root(self) -> Path:
        """The release root."""
        return self.release.root

    @property
    def output(self) -> Path:
        """The artefacts folder."""
        return self.release.output

    @property
    def manifest(self) -> Path:
        """This release's manifest."""
        return self.output / f"{self.release.spec.name}{MANIFEST_SUFFIX}"

    @property
    def reports(self) -> Path:
        """Where the steps' reports go: beside the state, not among the artefacts (they name local paths
        and say what a resumed run found done, so they differ between a clean and a resumed cut)."""
        folder = self.output / CUT_FOLDER
        folder.mkdir(parents=True, exist_ok=True)
        return folder

    @property
    def previous_manifest(self) -> Path | None:
        """Last year's manifest, when the release file names one."""
        previous = self.release.spec.previous
        return self.release.resolve(previous.manifest) if previous else None


@dataclass
class StepResult:
    """What a step wrote (its artefacts, in the output folder) and its figures."""

    outputs: list[Path] = field(default_factory=list)
    summary: Summary = field(default_factory=dict)


@dataclass(frozen=True)
class Step:
    """One step of the cut."""

    name: str
    title: str
    keys: tuple[str, ...]  # release-file keys whose values decide the step's outputs
    run: Callable[[CutContext], StepResult]
    plan: Callable[[CutContext], Summary] = lambda context: {}
    unwanted: Callable[[CutContext], str | None] = lambda context: None
    # work the step can do before its turn, once the step named `ahead_after` is over (`release.cut.ahead`)
    ahead: Callable[[CutContext], None] | None = None
    ahead_after: str = ""
    # the same work begun with the cut, when the `ahead_after` step runs in it and `early_wanted` says so:
    # it then takes that step's inputs, not its outputs (the export being placed, not the root's metadata)
    early: Callable[[CutContext], None] | None = None
    early_wanted: Callable[[CutContext], bool] = lambda context: True


def write_json(path: Path, model: BaseModel) -> Path:
    """Write a report as indented JSON, atomically; return its path."""
    write_text_atomic(path, model.model_dump_json(indent=2) + "\n")
    return path
