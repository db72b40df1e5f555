"""`publish s3`: plan against what the bucket has, then apply: upload, replace (old version kept), delete.

The order makes every run safe to repeat:
1. every input is validated (the whole manifest) before the bucket is touched;
2. the plan's source: the manifest published last time (two GETs), or a listing when there is none,
   when `--reconcile` asks, or when a marker says the last run did not finish;
3. the marker `<prefix>/.booru-release/<name>/publishing.json` is written, stale multipart uploads are
   aborted (nothing at all is written when nothing changed);
4. objects go up on a bounded pool of threads sharing one connection pool: new keys with If-None-Match
   (two publishers cannot silently overwrite each other), replaced keys after their old version is kept
   (the bucket's versioning, or a server-side copy under `.booru-release/archive/<old release>/`);
5. only when everything is up: the published manifest, then its state, then the marker is removed.
A crash anywhere leaves the marker, and the next run plans from a listing: only what is missing or
different goes up again. S3 never shows a partial object under its final key.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import tempfile
import threading
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path
from typing import Any, NamedTuple

from pydantic import BaseModel

from release.errors import BadInput, ReleaseError, RemoteError
from release.hashing import HashEngine, batched, default_workers
from release.manifest.columns import column_chunks
from release.manifest.io import prescan_paths
from release.progress import ProgressFn, Ticker, no_progress
from release.publish.plan import (
    MARKER,
    PART_SIZE,
    PUBLISHED_MANIFEST,
    PUBLISHED_STATE,
    STATE_DIR,
    Action,
    Planner,
    Prices,
    PublishedState,
    PublishPlan,
    RemoteIndex,
    estimate,
)
from release.publish.s3 import S3Settings, S3Store, file_multipart_etag, join_key

MAX_LISTED_FAILURES = 20


class PublishReport(BaseModel):
    """What `publish s3` planned and did."""

    bucket: str
    prefix: str
    name: str
    release: str
    dry_run: bool
    versioned: bool
    plan: PublishPlan
    uploaded: int = 0
    replaced: int = 0
    deleted: int = 0
    archived: int = 0
    aborted_uploads: int = 0
    unchanged_conflicts: int = 0
    bytes_sent: int = 0
    requests: dict[str, int] = {}
    retries: int = 0
    published: bool = False


class _Run:
    """The state of one apply: the store, where things go, what happened."""

    def __init__(self, store: S3Store, root: Path, base: str, state_dir: str, archive: str, versioned: bool) -> None:
        self.store, self.root, self.base = store, root, base
        self.state_dir, self.archive, self.versioned = state_dir, archive, versioned
        self.multipart: dict[str, str] = {}
        self.failures: list[str] = []

    def key(self, path: str) -> str:
        return join_key(self.base, path)

    def outcome(self, action: Action, part_size: int) -> str:
        """Worker side: carry out one action; what became of it ("failed: …" for its own error)."""
        try:
            return self._one(action, part_size)
        except BadInput:
            raise  # the bucket, the credentials or the server refuse every object alike: stop the run
        except ReleaseError as exc:
            return f"failed: {exc.message}"

    def _one(self, action: Action, part_size: int) -> str:
        key = self.key(action.path)
        if action.kind == "delete":
            if not self.versioned:
                self.store.copy(key, join_key(self.archive, action.path))
            self.store.delete(key)
            return "deleted"
        if action.kind == "replace" and not self.versioned:
            self.store.copy(key, join_key(self.archive, action.path))
        source = str(self.root / action.path)
        try:
            etag = self.store.upload(
                key, source, action.size, action.md5, part_size, new=action.kind == "upload", replaces=action.old_etag
            )
        except RemoteError as exc:
            if not self.store.precondition_failed(exc):
                raise
            return self._conflict(action, key)
        if "-" in etag:
            self.multipart[action.path] = etag
        return "uploaded" if action.kind == "upload" else "replaced"

    def _conflict(self, action: Action, key: str) -> str:
        """A key that someone else wrote meanwhile (new, or changed since the plan): fine if it holds our bytes,
        else never overwritten."""
        found = next((o for o in self.store.list(key) if o.key == key), None)
        if found is not None and found.size == action.size and found.etag == action.md5:
            return "conflict-same"
        raise RemoteError(
            f"s3://{self.store.settings.bucket}/{key}",
            "written by someone else during this publish, with other bytes; left as it is",
            "check who else publishes to this prefix, then run again with --reconcile",
        )


def published_state(store: S3Store, state_dir: str) -> PublishedState | None:
    """What the last complete publish recorded under `state_dir`; None when there is none or it is unreadable."""
    raw = store.get(join_key(state_dir, PUBLISHED_STATE))
    if raw is None:
        return None
    try:
        return PublishedState.model_validate_json(raw)
    except ValueError:
        return None  # unreadable state: plan from a listing instead


def _published_entries(store: S3Store, state_dir: str, state: PublishedState) -> Iterator[tuple[bytes, int, str]]:
    """(path, size, md5) of the manifest published last time, checked against its state's sha256."""
    data = store.get(join_key(state_dir, PUBLISHED_MANIFEST))
    if data is None or hashlib.sha256(data).hexdigest() != state.manifest_sha256:
        raise LookupError("published manifest missing or not the one its state names")
    with tempfile.NamedTemporaryFile(suffix=".jsonl.zst") as copy:
        copy.write(data)
        copy.flush()
        for columns in column_chunks(Path(copy.name), "md5"):
            for row, path in enumerate(columns.paths):
                yield path, int(columns.sizes[row]), columns.digests[row].tobytes().hex()


def _index(
    store: S3Store, base: str, state_dir: str, state: PublishedState | None, listing: bool, keep_paths: bool
) -> tuple[RemoteIndex, str]:
    if not listing and state is not None:
        try:
            entries = _published_entries(store, state_dir, state)
            return RemoteIndex.from_entries(entries, keep_paths), "published manifest"
        except LookupError:
            pass
    return RemoteIndex.from_entries(store.list_relative(base), keep_paths), "listing"


def publish(
    root: Path,
    manifest: Path,
    store: S3Store,
    *,
    name: str | None = None,
    dry_run: bool = False,
    delete: bool = False,
    reconcile: bool = False,
    keep: set[str] | None = None,
    protect_up_to: int | None = None,
    part_size: int = PART_SIZE,
    prices: dict[str, Prices] | None = None,
    progress: ProgressFn = no_progress,
) -> PublishReport:
    """Publish the release under `root` (described by `manifest`) to the store's bucket; see the module doc."""
    header = prescan_paths(manifest)  # the whole manifest is valid before the bucket is touched
    if not root.is_dir():
        raise BadInput(str(root), "not a directory")
    if part_size < 5 << 20:
        raise BadInput("--part-size", "S3 parts are at least 5 MiB")
    prefix = store.settings.prefix
    name = name or header.release
    base, state_dir = join_key(prefix, name), join_key(prefix, STATE_DIR, name)
    store.check_bucket()
    versioned = store.versioned()
    state = published_state(store, state_dir)
    unfinished = store.get(join_key(state_dir, MARKER)) is not None
    stale = state is None or state.name != name or state.part_size != part_size
    index, source = _index(store, base, state_dir, state, reconcile or unfinished or stale, keep_paths=delete)

    def local_etag(path: str, size: int) -> str:
        return file_multipart_etag(str(root / path), size, part_size)

    planner = Planner(index, dict(state.multipart_etags) if state else {}, part_size, local_etag)
    report = PublishReport(
        bucket=store.settings.bucket, prefix=prefix, name=name, release=header.release, dry_run=dry_run,
        versioned=versioned, plan=estimate(source, len(index), planner.totals, part_size, prices),
    )  # fmt: skip
    actions = _all_actions(planner, manifest, delete, protect_up_to, keep or set())
    first = next(actions, None)
    if first is not None:
        actions = itertools.chain([first], actions)
    if dry_run:
        for _ in actions:
            pass
    elif first is None and not unfinished and _same_manifest(state, manifest):
        report.published = True  # nothing changed, nothing to write: not one PUT
    else:
        archive = join_key(state_dir, "archive", state.release if state else "unknown")
        run = _Run(store, root, base, state_dir, archive, versioned)
        _apply(run, report, actions, part_size, header.files, header.bytes, progress)
        _finish(run, report, manifest, header.release, name, part_size, planner)
    report.plan = estimate(source, len(index), planner.totals, part_size, prices)
    report.requests = dict(store.requests.sent)
    report.retries = store.requests.retries
    return report


def _same_manifest(state: PublishedState | None, manifest: Path) -> bool:
    return state is not None and state.manifest_sha256 == hashlib.sha256(manifest.read_bytes()).hexdigest()


def _all_actions(
    planner: Planner, manifest: Path, delete: bool, protect_up_to: int | None, keep: set[str]
) -> Iterator[Action]:
    yield from planner.actions(manifest)
    if delete:
        yield from planner.deletions(protect_up_to, keep)


def _apply(
    run: _Run,
    report: PublishReport,
    actions: Iterator[Action],
    part_size: int,
    files: int,
    nbytes: int,
    progress: ProgressFn,
) -> None:
    store = run.store
    store.put_bytes(join_key(run.state_dir, MARKER), json.dumps({"release": report.release}).encode())
    report.aborted_uploads = store.abort_stale_uploads(run.base + "/")
    ticker = Ticker(progress, "publish", None, None, unit="objects")
    settings = store.settings
    processes = default_workers() if settings.processes is None else settings.processes
    threads = max(1, -(-settings.workers // max(processes, 1)))
    child = (replace(settings, workers=threads), run.root, run.base, run.state_dir, run.archive, run.versioned)
    # boto3 spends ~2 ms of CPU a request (signing, endpoint rules, parsing) under one GIL: the uploads run
    # in one process per core, each with its own client and threads sharing its connection pool
    with HashEngine(processes, _child_setup, (*child, part_size)) as engine:
        for done in engine.map_batches(_child_batch, batched(actions, limit=threads * 16)):
            run.multipart.update(done.multipart)
            store.requests.merge(done.sent, done.calls, done.resent)
            for action, outcome in done.outcomes:
                _count(run, report, action, outcome)
                ticker.add(1, action.size if outcome in ("uploaded", "replaced") else 0)
    ticker.finish()
    if run.failures:
        shown = "; ".join(run.failures[:MAX_LISTED_FAILURES])
        raise RemoteError(
            f"s3://{store.settings.bucket}/{run.base}",
            f"{len(run.failures)} object(s) could not be published: {shown}",
            "run the same command again: it picks up where this run stopped",
        )


_CHILD: dict[str, Any] = {}


class _Done(NamedTuple):
    """What an uploading process did with a batch, and the requests it sent for it."""

    outcomes: list[tuple[Action, str]]
    multipart: dict[str, str]
    sent: Counter[str]
    calls: Counter[str]
    resent: int


def _child_setup(
    settings: S3Settings, root: Path, base: str, state_dir: str, archive: str, versioned: bool, part_size: int
) -> None:
    """Worker process setup: a client of its own (made after the fork), its threads."""
    run = _Run(S3Store(settings), root, base, state_dir, archive, versioned)
    _CHILD.update(run=run, part_size=part_size, pool=ThreadPoolExecutor(settings.workers, thread_name_prefix="s3"))


def _child_batch(actions: list[Action]) -> _Done:
    """Worker side: carry out a batch on this process's threads; hand back the outcomes and request counts."""
    run: _Run = _CHILD["run"]
    part_size: int = _CHILD["part_size"]
    outcomes: list[tuple[Action, str]] = [(a, "") for a in actions]
    taken = itertools.count()  # each thread takes the next action (count() is atomic under the GIL)
    stop = threading.Event()

    def work() -> None:
        try:
            while not stop.is_set() and (i := next(taken)) < len(actions):
                outcomes[i] = (actions[i], run.outcome(actions[i], part_size))
        except BaseException:
            stop.set()  # a refusal of every object alike (BadInput): the other threads stop too
            raise

    # one task per thread, not one future per object (futures cost more than a small PUT's own Python)
    for future in [_CHILD["pool"].submit(work) for _ in range(run.store.settings.workers)]:
        future.result()
    sent, calls, resent = run.store.requests.take()
    multipart = dict(run.multipart)
    run.multipart.clear()
    return _Done(outcomes, multipart, sent, calls, resent)


def _count(run: _Run, report: PublishReport, action: Action, outcome: str) -> None:
    if outcome.startswith("failed"):
        run.failures.append(f"{action.path}: {outcome.removeprefix('failed: ')}")
    elif outcome == "uploaded":
        report.uploaded += 1
        report.bytes_sent += action.size
    elif outcome == "replaced":
        report.replaced += 1
        report.bytes_sent += action.size
        report.archived += 0 if run.versioned else 1
    elif outcome == "deleted":
        report.deleted += 1
        report.archived += 0 if run.versioned else 1
    elif outcome == "conflict-same":
        report.unchanged_conflicts += 1


def _finish(
    run: _Run, report: PublishReport, manifest: Path, release: str, name: str, part_size: int, planner: Planner
) -> None:
    """Everything is up: the published manifest, then its state, then the marker goes."""
    data = manifest.read_bytes()
    store = run.store
    store.put_bytes(join_key(run.state_dir, PUBLISHED_MANIFEST), data)
    etags = {**planner.multipart_etags, **run.multipart}
    state = PublishedState(
        release=release, name=name, part_size=part_size, manifest_sha256=hashlib.sha256(data).hexdigest(),
        multipart_etags=dict(sorted(etags.items())),
    )  # fmt: skip
    store.put_bytes(join_key(run.state_dir, PUBLISHED_STATE), state.model_dump_json(indent=1).encode())
    store.delete(join_key(run.state_dir, MARKER))
    report.published = True
