"""`cut`: the yearly release as one resumable run of steps, driven by a release file (`release.cutfile`).

This module owns the run and nothing else: which steps there are and in what order (`cutsteps.STEPS`),
whether a step is done, and the state that survives a crash. Each step is a library function in
`release.cutsteps` that reads the release file and writes its artefacts atomically; a new target joins
by adding a step there, without touching the others.

The state lives next to the outputs (`OUTPUT/.cut/state.json`, replaced atomically after every step;
the steps' full reports are beside it, in `OUTPUT/.cut/`, outside the published artefacts).
A step is skipped when the state says it finished with the same settings (a fingerprint of the release
file's keys it reads, chained through the steps before it) and every artefact it recorded is still there
with its recorded size. A step that did not finish is simply run again: its outputs are atomic and the
long ones resume by themselves (the manifest build from its journal, derive from what it already wrote),
so nothing finished is hashed twice. `from_step` runs that step and every later one again.

A step may also start work ahead of its turn (`Step.ahead`, once the step it needs is over): it runs in a
low-priority child beside the steps between (`release.cut.ahead`), and the step waits for it when its turn
comes. Its time is reported apart (`ahead_seconds`), its bytes read with the step's.
"""

from __future__ import annotations

import contextlib
import ctypes
import fcntl
import functools
import gc
import hashlib
import json
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel

from release.atomic import write_text_atomic
from release.cut.ahead import AheadWork, bytes_read
from release.cut.context import CutContext, Step, StepResult
from release.cut.releasefile import LoadedRelease
from release.cut.steps import STEPS
from release.cut.tree_steps import check_previous
from release.errors import BadInput
from release.progress import ProgressFn, no_progress

STATE_FILE = ".cut/state.json"
LOCK_FILE = ".cut/lock"

Status = Literal["done", "run", "would run", "not wanted"]
FINISHED_EARLIER = "finished earlier"  # the reason of a step skipped because an earlier cut finished it


class StepState(BaseModel):
    """What the state file keeps of a finished step."""

    name: str
    fingerprint: str
    outputs: dict[str, int]  # path relative to the output folder -> size
    summary: dict[str, Any]
    seconds: float


class CutState(BaseModel):
    """The state file: the finished steps, in order."""

    format: Literal["booru-release-cut-state"] = "booru-release-cut-state"
    version: int = 1
    release: str
    steps: list[StepState] = []


class StepOutcome(BaseModel):
    """One step of a cut (or of its plan, with `--dry-run`)."""

    name: str
    title: str
    status: Status
    reason: str = ""
    seconds: float = 0.0
    bytes_read: int = 0  # what the step's read calls returned (page cache or disk: /proc/self/io rchar)
    summary: dict[str, Any] = {}
    # the step's work done ahead of its turn, beside earlier steps (`release.cut.ahead`): its wall time
    # (not in `seconds`), and its error when it failed (the step then did that work itself)
    ahead_seconds: float = 0.0
    ahead_error: str = ""
    ahead_peak_rss: int = 0  # bytes, of the child it ran in
    ahead_began: str = ""  # "start": with the cut (early work); else the step it waited for


class CutReport(BaseModel):
    """What `cut` did (or would do)."""

    release: str
    release_file: str
    output: str
    dry_run: bool
    steps: list[StepOutcome]


@dataclass(frozen=True)
class StepEvent:
    """A step starts (`status` "run") or ends (done / skipped / not wanted); the CLI renders these."""

    index: int
    total: int
    outcome: StepOutcome


def _fingerprints(loaded: LoadedRelease, publish: bool) -> list[str]:
    """Each step's fingerprint: the release file's keys it reads, chained through the steps before it."""
    spec = loaded.spec.model_dump(mode="json")
    prints, before = [], ""
    for step in STEPS:
        picked = {key: spec.get(key) for key in step.keys}
        picked["__publish"] = publish if step.name == "publish" else None
        before = hashlib.sha256(json.dumps([step.name, before, picked], sort_keys=True).encode()).hexdigest()[:32]
        prints.append(before)
    return prints


def load_state(output: Path, release: str) -> CutState:
    """The state file of an earlier cut into `output`, or a fresh one."""
    path = output / STATE_FILE
    try:
        state = CutState.model_validate_json(path.read_bytes())
    except FileNotFoundError:
        return CutState(release=release)
    except ValueError as exc:
        raise BadInput(str(path), f"not a cut state file: {exc}", "delete it to cut from the start") from exc
    if state.release != release:
        raise BadInput(str(path), f"belongs to release {state.release!r}, not {release!r}", "use another output")
    return state


def _still_there(output: Path, recorded: StepState) -> str | None:
    """Why a finished step must run again (an artefact gone or changed in size), or None."""
    for rel, size in recorded.outputs.items():
        try:
            if (output / rel).stat().st_size != size:
                return f"{rel} changed since"
        except FileNotFoundError:
            return f"{rel} is gone"
    return None


@contextlib.contextmanager
def _locked(output: Path) -> Iterator[None]:
    """One cut at a time per output folder (a lock the kernel drops when the process dies)."""
    (output / LOCK_FILE).parent.mkdir(parents=True, exist_ok=True)
    with open(output / LOCK_FILE, "w") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            raise BadInput(str(output), "another cut is running into this folder") from exc
        yield


def run_cut(
    loaded: LoadedRelease,
    *,
    dry_run: bool = False,
    from_step: str | None = None,
    publish: bool = False,
    workers: int | None = None,
    progress: ProgressFn = no_progress,
    on_step: Callable[[StepEvent], None] = lambda event: None,
) -> CutReport:
    """Run (or with `dry_run`, plan) every step of the release; see the module docstring."""
    names = [step.name for step in STEPS]
    if from_step is not None and from_step not in names:
        raise BadInput("--from", f"{from_step!r} is not a step", f"steps: {', '.join(names)}")
    spec, output = loaded.spec, loaded.output
    check_previous(loaded)
    context = CutContext(loaded, progress, workers, publish)
    report = CutReport(release=spec.name, release_file=str(loaded.path), output=str(output), dry_run=dry_run, steps=[])
    with contextlib.ExitStack() as stack:
        if not dry_run:
            stack.enter_context(_locked(output))
        ahead = stack.enter_context(AheadWork())
        state = load_state(output, spec.name)
        finished = {s.name: s for s in state.steps}
        kept: list[StepState] = []
        prints, forced = _fingerprints(loaded, publish), False

        def current(at: int) -> bool:  # a later step `at` is finished with these settings, its outputs there
            recorded = finished.get(STEPS[at].name)
            return bool(recorded and recorded.fingerprint == prints[at] and _still_there(output, recorded) is None)

        def will_run(after: int, at: int) -> bool:  # seen from step `after`: step `at` will run
            start = names.index(from_step) if from_step is not None else len(STEPS)
            steps = range(after + 1, at + 1)
            return forced or any(STEPS[k].unwanted(context) is None and (k >= start or not current(k)) for k in steps)

        if not dry_run:
            _start_early(ahead, functools.partial(will_run, -1), context)
        for index, step in enumerate(STEPS):
            forced = forced or step.name == from_step
            fingerprint = prints[index]
            outcome = StepOutcome(name=step.name, title=step.title, status="run")
            unwanted = step.unwanted(context)
            recorded = finished.get(step.name)
            stale = None if recorded is None else _still_there(output, recorded)
            if unwanted is not None:
                outcome.status, outcome.reason = "not wanted", unwanted
            elif recorded is not None and recorded.fingerprint == fingerprint and stale is None and not forced:
                outcome.status, outcome.reason, outcome.summary = "done", FINISHED_EARLIER, recorded.summary
                kept.append(recorded)
            elif dry_run:
                outcome.status, outcome.summary = "would run", step.plan(context)
                outcome.reason = _why(recorded, fingerprint, forced, stale)
                forced = True  # as in a real run: every later step would see this one's new outputs
            else:
                on_step(StepEvent(index, len(STEPS), outcome.model_copy()))
                forced = True  # every later step sees this one's new outputs
                started, read_before = time.monotonic(), bytes_read()
                done_ahead = ahead.finish(step.name)
                result = step.run(context)
                outcome.status, outcome.summary = "done", result.summary
                outcome.seconds = round(time.monotonic() - started, 3)
                outcome.bytes_read = bytes_read() - read_before  # the ahead work's too: reaped in the step
                if done_ahead is not None:
                    outcome.ahead_seconds, outcome.ahead_error = done_ahead.seconds, done_ahead.error
                    outcome.ahead_peak_rss, outcome.ahead_began = done_ahead.peak_rss, done_ahead.began
                kept.append(_recorded(output, step, fingerprint, result, outcome.seconds))
                _give_back_memory()
                state = CutState(release=spec.name, steps=kept)
                write_text_atomic(output / STATE_FILE, state.model_dump_json(indent=2) + "\n")
            report.steps.append(outcome)
            on_step(StepEvent(index, len(STEPS), outcome))
            if not dry_run:
                _start_ahead(ahead, index, functools.partial(will_run, index), context)
    return report


def _start_ahead(ahead: AheadWork, after: int, will_run: Callable[[int], bool], context: CutContext) -> None:
    """Start the work ahead of every later step that waits for step `after` to be over and will run (unless
    it began with the cut)."""
    for later in range(after + 1, len(STEPS)):
        step = STEPS[later]
        if step.ahead is not None and step.ahead_after == STEPS[after].name and will_run(later):
            if not ahead.running(step.name):
                ahead.start(step.name, functools.partial(step.ahead, context), STEPS[after].name)


def _start_early(ahead: AheadWork, will_run: Callable[[int], bool], context: CutContext) -> None:
    """Start, with the cut, the early work of every step that will run whose `ahead_after` step runs too."""
    names = [step.name for step in STEPS]
    for at, step in enumerate(STEPS):
        if step.early is not None and step.ahead_after in names and will_run(names.index(step.ahead_after)):
            if will_run(at) and step.early_wanted(context):
                ahead.start(step.name, functools.partial(step.early, context), "start")


def _give_back_memory() -> None:
    """Return what a finished step freed to the system: the steps run in one process, and the next one
    (the metadata tarball's xz encoder after the read pass's tables) should not stand on the last's heap."""
    gc.collect()
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6").malloc_trim(0)  # glibc keeps freed small blocks otherwise


def _why(recorded: StepState | None, fingerprint: str, forced: bool, stale: str | None) -> str:
    if recorded is None:
        return "not run yet"
    if forced:
        return "an earlier step runs again (or --from)"
    if stale is not None:
        return stale
    return "the release file changed" if recorded.fingerprint != fingerprint else ""


def _recorded(output: Path, step: Step, fingerprint: str, result: StepResult, seconds: float) -> StepState:
    outputs = {}
    for path in result.outputs:
        rel = os.path.relpath(path, output)
        outputs[rel] = path.stat().st_size
    return StepState(name=step.name, fingerprint=fingerprint, outputs=outputs, summary=result.summary, seconds=seconds)
