"""`synth`: write the yearly snapshots of a deterministic Danbooru-like dataset, and its changelog."""

from __future__ import annotations

import hashlib
import os
import shutil
from array import array
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from pydantic import BaseModel

from release.atomic import write_text_atomic
from release.errors import BadInput, OutputError
from release.layout import chunk_name, image_path
from release.models import Frozen
from release.posts import SPLIT_YEAR
from release.progress import ProgressFn, Ticker, no_progress
from release.synth.images import file_bytes, filler, special_bytes
from release.synth.plan import IMAGE_TRICKS, TRICKS, Plan, make_plan, year_start_ns
from release.synth.records import format_time_iso, hidden_row, make_record, new_dialect, record_line, tag_table

MAX_CHUNKS = 13
HIDDEN_EVERY = 250  # one row without an ID (banned, gold-only) per this many posts, in the new dialect
DIALECTS = ("old", "new", "mixed")
RECORDS_PER_CHUNK_MIN = 100


class YearLog(Frozen):
    """What one yearly snapshot holds and what changed in it."""

    year: int
    final_id: int
    uploads: int
    files: int
    bytes: int
    metadata_records: int
    metadata_chunks: int
    takedowns: list[str]
    replaced: list[str]


class Changelog(Frozen):
    """Machine-readable changelog written beside the snapshots (`changelog.json`)."""

    format: str = "booru-release-synth-changelog"
    version: int = 1
    seed: int
    images: int
    tiny: bool
    mean_size: int
    years: list[YearLog]
    tricks: dict[str, list[str]]
    dialect: str = "old"  # old, new, or mixed (old years old, the last year new; see release.posts)
    drawn: bool = False  # images of Danbooru's size in pixels (synth.images.drawn_image)


class SynthReport(BaseModel):
    """Where the dataset went and how big it is."""

    out: str
    changelog: str
    years: list[YearLog]


@dataclass
class _Content:
    md5: bytearray
    width: array[int]
    height: array[int]


def _parse_years(years: str) -> tuple[int, ...]:
    try:
        if "-" in years:
            low, high = (int(x) for x in years.split("-", 1))
            result = tuple(range(low, high + 1))
        else:
            result = tuple(int(y) for y in years.split(","))
    except ValueError:
        raise BadInput(years, "years must look like 2017-2019 or 2017,2018") from None
    if not result or any(y < 1990 or y > 2099 for y in result) or list(result) != sorted(set(result)):
        raise BadInput(years, "years must be ascending, between 1990 and 2099")
    return result


class _Writer:
    def __init__(self, out: Path, plan: Plan, mean_size: int, progress: ProgressFn, dialect: str = "old") -> None:
        self.out = out
        self.plan = plan
        self.dialect = dialect
        self.mean_size = mean_size
        n = len(plan.ids)
        self.content = _Content(bytearray(16 * n), array("H", bytes(2 * n)), array("H", bytes(2 * n)))
        self.ticker = Ticker(progress, "synth", total=sum(plan.year_end))
        self.tricks: dict[str, list[str]] = {t: [] for t in (*TRICKS, *IMAGE_TRICKS)}

    def path_of(self, index: int) -> str:
        post_id = self.plan.ids[index]
        path = image_path("original", post_id, self.plan.ext(index))
        if self.plan.tricks.get(index) == "wrong_bucket":
            path = f"original/{(post_id + 1) % 1000:04d}/{post_id}.{self.plan.ext(index)}"
        return path

    def _seed(self, index: int, version: int, kind: str) -> bytes:
        return f"{self.plan.seed}:{kind}:{self.plan.ids[index]}:{version}".encode()

    def _original(self, index: int, version: int) -> bytes:
        plan = self.plan
        trick = plan.tricks.get(index)
        ext = "png" if trick == "png_as_jpg" else plan.ext(index)
        size = plan.sizes[index] if version == 0 else max(1024, plan.sizes[index] * (9 + version) // 10)
        if index in plan.image_tricks:
            data, width, height = special_bytes(plan.image_tricks[index], size, self._seed(index, version, "o"))
        else:
            data, width, height = file_bytes(ext, size, self._seed(index, version, "o"), index, plan.tiny, plan.drawn)
        self.content.md5[16 * index : 16 * index + 16] = hashlib.md5(data).digest()
        self.content.width[index], self.content.height[index] = width, height
        if trick == "empty":
            return b""
        if trick == "truncated":
            return data[: len(data) * 3 // 5]
        return data

    def _sfw(self, index: int, version: int) -> bytes:
        size = 6 if self.plan.tiny else min(60_000, max(3_000, self.plan.sizes[index] // 6))
        return file_bytes("jpg", size, self._seed(index, version, "s"), index + 1, self.plan.tiny)[0]

    def write_year(self, k: int) -> YearLog:
        plan, year = self.plan, self.plan.years[k]
        final = self.out / str(year)
        if final.exists():
            raise BadInput(str(final), "already exists; synth writes into a new folder", "choose an empty DIR")
        tmp = self.out / f".{year}.partial"
        shutil.rmtree(tmp, ignore_errors=True)
        prev = self.out / str(plan.years[k - 1]) if k > 0 else None
        mtime_base = year_start_ns(year)
        files = nbytes = 0
        log_takedowns: list[str] = []
        log_replaced: list[str] = []
        for index in range(plan.year_end[k]):
            fresh = k == 0 or index >= plan.year_end[k - 1]
            if fresh and index in plan.tricks:
                self._log_trick(index)
            if fresh and index in plan.image_tricks:
                self.tricks[plan.image_tricks[index]].append(self.path_of(index))
            paths = [(self.path_of(index), "o")]
            if plan.has_sfw(index):
                paths.append((image_path("512px", plan.ids[index], "jpg"), "s"))
            if not plan.has_file(index, k):
                if plan.takedown_year.get(index) == k:
                    log_takedowns.extend(rel for rel, _ in paths)
                continue
            version = plan.version(index, k)
            changed = fresh or version != plan.version(index, k - 1)
            if changed and not fresh:
                log_replaced.extend(rel for rel, _ in paths)
            mtime = plan.created[index] if version == 0 else mtime_base + index * 1_000_000
            for rel, kind in paths:
                target = tmp / rel
                target.parent.mkdir(parents=True, exist_ok=True)
                if not changed and prev is not None:
                    os.link(prev / rel, target)
                    size = target.stat().st_size
                else:
                    data = self._original(index, version) if kind == "o" else self._sfw(index, version)
                    target.write_bytes(data)
                    os.utime(target, ns=(mtime, mtime))
                    size = len(data)
                files += 1
                nbytes += size
            self.ticker.add(1)
        records, chunks = self._metadata(k, tmp, prev)
        os.replace(tmp, final)
        return YearLog(
            year=year,
            final_id=plan.ids[plan.year_end[k] - 1],
            uploads=plan.year_end[k] - (plan.year_end[k - 1] if k else 0),
            files=files,
            bytes=nbytes,
            metadata_records=records,
            metadata_chunks=chunks,
            takedowns=log_takedowns,
            replaced=log_replaced,
        )

    def _log_trick(self, index: int) -> None:
        trick = self.plan.tricks[index]
        by_id = trick in ("metadata_without_file", "duplicate_tags", "deleted")
        self.tricks[trick].append(str(self.plan.ids[index]) if by_id else self.path_of(index))

    def _metadata(self, k: int, tmp: Path, prev: Path | None) -> tuple[int, int]:
        plan, year = self.plan, self.plan.years[k]
        meta = tmp / "metadata"
        meta.mkdir(parents=True, exist_ok=True)
        if prev is not None:
            self._archive_previous(prev / "metadata", meta, plan.years[k - 1])
        indices = [i for i in range(plan.year_end[k]) if plan.tricks.get(i) != "file_without_metadata"]
        chunks = max(1, min(MAX_CHUNKS, len(indices) // RECORDS_PER_CHUNK_MIN))
        new = self.dialect == "new" or (self.dialect == "mixed" and k == len(plan.years) - 1)
        folders = [(meta, new)] + ([(meta / f"{year}-old", False)] if new and self.dialect == "mixed" else [])
        for folder, its_new in folders:
            self._chunks(folder, k, indices, chunks, its_new)
        return len(indices), chunks

    def _chunks(self, folder: Path, k: int, indices: list[int], chunks: int, new: bool) -> None:
        """One export of year k into `folder`: post chunks (and the tag table, new dialect)."""
        year = self.plan.years[k]
        folder.mkdir(exist_ok=True)
        per_chunk = -(-len(indices) // chunks)
        stamp = year_start_ns(year + 1) - 1_000_000_000
        for c in range(chunks):
            path = folder / (f"posts{c:012d}.json" if new else chunk_name(year, c))
            with open(path, "wb") as handle:
                for index in indices[c * per_chunk : (c + 1) * per_chunk]:
                    self._write_record(handle, index, k, new)
            os.utime(path, ns=(stamp, stamp))
        if new:
            path = folder / "tags000000000000.json"
            path.write_bytes(tag_table(format_time_iso(stamp)))
            os.utime(path, ns=(stamp, stamp))

    def _archive_previous(self, prev_meta: Path, meta: Path, prev_year: int) -> None:
        for entry in sorted(prev_meta.iterdir()):
            if entry.is_dir():
                (meta / entry.name).mkdir()
                for chunk in sorted(entry.iterdir()):
                    os.link(chunk, meta / entry.name / chunk.name)
            else:
                (meta / str(prev_year)).mkdir(exist_ok=True)
                os.link(entry, meta / str(prev_year) / entry.name)

    def _write_record(self, handle: BinaryIO, index: int, k: int, new: bool = False) -> None:
        plan = self.plan
        if plan.tricks.get(index) == "metadata_without_file" and self.content.width[index] == 0:
            self._original(index, 0)  # never written to disk, but its metadata is complete
        md5 = self.content.md5[16 * index : 16 * index + 16].hex()
        if plan.tricks.get(index) == "md5_mismatch":
            md5 = filler(f"reoptimised:{index}".encode(), 16).hex()
        year = plan.years[k]
        created = plan.created[index]
        updated = max(created, year_start_ns(year)) + (plan.ids[index] % 997) * 1_000_000_000
        gone = plan.takedown_year.get(index)
        record = make_record(
            post_id=plan.ids[index],
            created_ns=created,
            updated_ns=updated,
            rating=plan.rating(index),
            md5=md5,
            ext=plan.ext(index),
            size=plan.sizes[index],
            width=self.content.width[index],
            height=self.content.height[index],
            deleted=plan.tricks.get(index) == "deleted",
            banned=gone is not None and gone <= k,
            duplicate_tags=plan.tricks.get(index) == "duplicate_tags",
            seed=str(plan.seed),
            year=year,
        )
        if new:
            record = new_dialect(record, created, updated, split=year >= SPLIT_YEAR)
            if index % HIDDEN_EVERY == HIDDEN_EVERY - 1:  # the export's rows without an ID, beside the posts
                handle.write(record_line(hidden_row(plan.ids[index], created)))
        handle.write(record_line(record))


def synth(
    out: Path,
    *,
    years: str = "2017-2019",
    images: int = 300,
    seed: int = 0,
    tiny: bool = False,
    mean_size: int = 40_000,
    dialect: str = "old",
    drawn: bool = False,
    progress: ProgressFn = no_progress,
) -> SynthReport:
    """Write one snapshot per year under `out` plus `out/changelog.json`; see the module docstring."""
    year_list = _parse_years(years)
    if images < 1:
        raise BadInput(str(images), "--images must be at least 1")
    if dialect not in DIALECTS:
        raise BadInput(dialect, "--dialect: choose old, new or mixed")
    if mean_size < 1024:
        raise BadInput(str(mean_size), "--mean-size must be at least 1024 bytes")
    if drawn and tiny:
        raise BadInput("--drawn", "cannot be combined with --tiny: tiny files hold no picture")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(str(out), f"cannot create folder: {exc.strerror}") from exc
    plan = make_plan(year_list, images, seed, tiny, mean_size, drawn)
    writer = _Writer(out, plan, mean_size, progress, dialect)
    logs: list[YearLog] = []
    try:
        for k in range(len(year_list)):
            logs.append(writer.write_year(k))
    except OSError as exc:
        raise OutputError(str(out), f"cannot write the dataset: {exc.strerror or exc}") from exc
    writer.ticker.finish()
    changelog = Changelog(
        seed=seed,
        images=images,
        tiny=tiny,
        mean_size=mean_size,
        years=logs,
        tricks=writer.tricks,
        dialect=dialect,
        drawn=drawn,
    )
    path = out / "changelog.json"
    write_text_atomic(path, changelog.model_dump_json(indent=2) + "\n")
    return SynthReport(out=str(out), changelog=str(path), years=logs)
