"""`derive 512px`: the SFW subset, downscaled from the originals, reproducibly and without the black images.

Published releases made it with ImageMagick per file (`convert -resize 512x512\\> -extent 512x512 -gravity
center -background black`): transparent line art was flattened onto black and came out black. Here each
original is decoded by its true type (magic bytes), shrunk on load where the format allows it (JPEG DCT
scaling through Pillow's `draft`; plain 8-bit PNGs are decoded by libspng, twice Pillow's speed),
converted to sRGB (through its ICC profile when it has one), flattened onto white or black (`auto`: the
one that contrasts with the visible pixels, weighted by their alpha), fitted inside size×size without
upscaling, centred on a size×size canvas and written as a baseline JPEG of a fixed quality without
metadata blocks. Every file gets an outcome; none stops the run.

A worker converts one batch of files (forked processes: Pillow work is CPU-bound Python glue and C).
Outputs appear whole (temporary name, then rename) with the original's mtime, so the same command after a
crash or Ctrl-C converts only what is missing or whose original changed, and leaves the rest untouched.
"""

from __future__ import annotations

import io
import itertools
import os
import re
import warnings
from array import array
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field
from functools import partial
from pathlib import Path
from typing import BinaryIO, Literal, NamedTuple

import numpy as np
import pyspng
from PIL import Image, ImageCms, ImageFile, features
from PIL import __version__ as PIL_VERSION
from pydantic import BaseModel

from release.atomic import describe_os_error, process_alive
from release.deriveskips import EarlierSkips, SkipsWriter
from release.errors import BadInput, OutputError
from release.hashing import HashEngine, batched
from release.layout import RANK_SHIFT, SUBSET_RANK, image_path
from release.manifest.columns import column_chunks
from release.metadata import PostReader, release_chunks
from release.pathcols import layout_of
from release.postindex import PostIndex
from release.posts import sfw_ratings
from release.progress import ProgressFn, Ticker, no_progress
from release.sniff import is_truncated, sniff
from release.tree import walk_error
from release.walk import ERROR_KIND, FILE_KIND, Listing, list_tree, span_text

Background = Literal["white", "black", "auto"]
IMAGE_TYPES = ("jpg", "png", "gif", "bmp")  # what the published script converted
# box-reduce by the whole factor the image is above the target, then Lanczos the rest (libvips' shrink, then
# reduce): on 2,000 illustrations 1.35x the rate of Pillow's thumbnail gap of 2.0, whose Lanczos ran over the
# full-size PNGs; 34 dB from an exact Lanczos on PNGs (the JPEGs are DCT-scaled first either way)
REDUCING_GAP = 1.0
PIXEL_LIMIT = 100_000_000  # above this an original is refused as a decompression bomb (Danbooru's largest: ~60M)
UNIFORM_COLOURS = 4  # an output with at most this many colours (on a 64x64 sample) is listed as near-uniform
DARK, LIGHT = 16, 239  # mean luminance of an output below / above which it is listed as too dark / too white
_SRGB = ImageCms.createProfile("sRGB")


@dataclass(frozen=True)
class Settings:
    """How every output is made; recorded in the report with the decoder and encoder versions."""

    size: int = 512
    quality: int = 90
    background: Background = "auto"
    first_frame: bool = False  # animated GIFs: skipped as published, or their first frame
    truncated: Literal["decode", "skip"] = "decode"


@dataclass
class Outcome:
    """What happened to one original."""

    post_id: int
    source: str
    status: str  # written, skipped, failed
    detail: str = ""
    flags: list[str] = field(default_factory=list)  # near_uniform, too_dark, too_white, truncated, cmyk, ...


def versions() -> dict[str, str]:
    """The decoder and encoder versions that decide the output bytes."""
    return {
        "pillow": PIL_VERSION,
        "libjpeg": str(features.version("jpg")),
        "libjpeg_turbo": str(features.version("libjpeg_turbo")),
        "zlib": str(features.version("zlib")),
        "littlecms": str(features.version("littlecms2")),
        "pyspng": pyspng.__version__,  # libspng, built into it: the plain PNGs' decoder
    }


def _background(image: Image.Image, choice: Background) -> tuple[int, int, int]:
    """White or black; `auto` picks the one that contrasts with the visible pixels (alpha-weighted)."""
    if choice != "auto":
        return (255, 255, 255) if choice == "white" else (0, 0, 0)
    rgba = np.asarray(image.reduce(max(1, min(image.size) // 128)), dtype=np.float64)  # RGBA already
    weight = rgba[..., 3] / 255.0
    if weight.sum() < 1e-9:
        return (255, 255, 255)
    luminance = rgba[..., 0] * 0.299 + rgba[..., 1] * 0.587 + rgba[..., 2] * 0.114
    mean = float((luminance * weight).sum() / weight.sum())
    return (0, 0, 0) if mean > 127.5 else (255, 255, 255)


def _to_srgb(image: Image.Image, flags: list[str]) -> Image.Image:
    """RGB or RGBA in sRGB: ICC profiles applied, CMYK, palette, 16-bit and grey images converted."""
    icc = image.info.get("icc_profile")
    if image.mode == "CMYK":
        flags.append("cmyk")
    if icc and image.mode in ("RGB", "CMYK", "L"):
        try:
            source = ImageCms.ImageCmsProfile(io.BytesIO(icc))
            return ImageCms.profileToProfile(image, source, _SRGB, outputMode="RGB")  # type: ignore[return-value]
        except (ImageCms.PyCMSError, OSError):
            flags.append("bad_icc_profile")
    if image.mode in ("I;16", "I;16B", "I;16L", "I"):
        flags.append("16bit")
        values = np.asarray(image, dtype=np.uint32)
        scale = 257 if values.max(initial=0) > 255 else 1
        return Image.fromarray((values // scale).astype(np.uint8), "L").convert("RGB")
    if image.mode in ("RGB", "RGBA"):
        return image  # convert() would copy it
    if image.mode in ("LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        return image.convert("RGBA")
    return image.convert("RGB")


def _fit(width: int, height: int, size: int) -> tuple[int, int]:
    scale = min(size / width, size / height, 1.0)
    return max(1, round(width * scale)), max(1, round(height * scale))


def _flatten(image: Image.Image, background: tuple[int, int, int]) -> Image.Image:
    """An RGBA image over an opaque background, as RGB."""
    base = Image.new("RGBA", image.size, (*background, 255))
    return Image.alpha_composite(base, image).convert("RGB")


def _quality_flags(content: Image.Image, flags: list[str]) -> None:
    """The known-bug class, made visible: outputs whose picture (the padding left out) is near-uniform."""
    sample = content.resize((64, 64), Image.Resampling.BOX)
    colours = sample.getcolors(UNIFORM_COLOURS + 1)
    if colours is not None:
        flags.append("near_uniform")
    mean = float(np.asarray(sample.convert("L"), dtype=np.float64).mean())
    if mean < DARK:
        flags.append("too_dark")
    elif mean > LIGHT:
        flags.append("too_white")


def _plain_png(opened: Image.Image, data: bytes, flags: list[str]) -> bool:
    """An 8-bit RGB or RGBA PNG, whole, without an ICC profile or a transparent colour: the common case."""
    return (
        opened.format == "PNG"
        and opened.mode in ("RGB", "RGBA")
        and data[24:25] == b"\x08"  # IHDR bit depth (Pillow shows 16-bit RGB as "RGB" too)
        and "truncated" not in flags
        and not opened.info.get("icc_profile")
        and "transparency" not in opened.info
    )


def _load(opened: ImageFile.ImageFile, data: bytes, flags: list[str]) -> Image.Image:
    """The decoded picture. A plain PNG is decoded by libspng (pyspng): PNG is lossless, so the pixels are
    Pillow's, in half its time (its row unfiltering is SIMD; Pillow's took 44% of a PNG's instructions).
    Everything else, and anything libspng refuses, is decoded by Pillow."""
    if _plain_png(opened, data, flags):
        try:
            pixels = pyspng.load(data, opened.mode)
        except (RuntimeError, ValueError):
            pass  # Pillow decides: it decodes what it can and raises what Pillow raises
        else:
            return Image.fromarray(pixels)
    opened.load()
    return opened


def _decode(data: bytes, settings: Settings, flags: list[str]) -> Image.Image | str:
    """The picture, in sRGB, fitted inside the canvas (a skip reason instead for animations and bombs)."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        opened = Image.open(io.BytesIO(data))
        if getattr(opened, "n_frames", 1) > 1:
            if not settings.first_frame:
                return "animated"
            flags.append("first_frame")
        if opened.width * opened.height > PIXEL_LIMIT:
            return f"decompression bomb ({opened.width}x{opened.height} pixels)"
        target = _fit(opened.width, opened.height, settings.size)
        if opened.format == "JPEG":
            opened.draft("RGB" if opened.mode != "CMYK" else "CMYK", target)  # DCT scaling: decode smaller
        image = _to_srgb(_load(opened, data, flags), flags)
        if image.mode == "RGBA" and image.getchannel("A").getextrema() == (255, 255):
            # every pixel opaque: nothing to flatten, so resize it as RGB (an RGBA resize premultiplies the
            # whole full-size picture and back, a third of a PNG's time) and pad it black like any RGB image
            image = image.convert("RGB")
        return image.resize(target, Image.Resampling.LANCZOS, reducing_gap=REDUCING_GAP)


def convert(data: bytes, settings: Settings, flags: list[str]) -> bytes | str:
    """The output JPEG of one original's bytes, or why there is none (a skip reason)."""
    if not data:
        return "empty file"
    kind = sniff(data[:16])
    if kind not in IMAGE_TYPES:
        return f"not an image ({kind or 'unknown type'})"
    ImageFile.LOAD_TRUNCATED_IMAGES = settings.truncated == "decode"
    if is_truncated(kind, data[-16:]):
        flags.append("truncated")
    try:
        resized = _decode(data, settings, flags)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        return f"decompression bomb ({exc})"
    except (OSError, SyntaxError, ValueError, EOFError) as exc:  # what Pillow's decoders raise on damaged data
        return f"cannot decode: {exc}"
    if isinstance(resized, str):
        return resized
    background = _background(resized, settings.background) if resized.mode == "RGBA" else None
    if background is not None and background == (255, 255, 255):
        flags.append("white_background")
    canvas = Image.new("RGB", (settings.size, settings.size), background or (0, 0, 0))
    # an odd margin puts the extra pixel before the picture, as ImageMagick's -gravity center -extent does
    # (the published subset's geometry; the other way round shifts every such output by a row: 17 dB)
    offset = ((settings.size - resized.width + 1) // 2, (settings.size - resized.height + 1) // 2)
    content = resized.convert("RGB") if background is None else _flatten(resized, background)
    canvas.paste(content, offset)
    _quality_flags(content, flags)
    out = io.BytesIO()
    canvas.save(out, "JPEG", quality=settings.quality, optimize=False, progressive=False, subsampling="4:2:0")
    return out.getvalue()


@dataclass(frozen=True)
class Task:
    """One original to convert: its ID, where it is, where its output goes, and the mtime to give it."""

    post_id: int
    source: str
    target: str
    mtime_ns: int
    size: int = 0


def convert_batch(root: str, settings: Settings, tasks: list[Task]) -> list[Outcome]:
    """Worker side: convert a batch of originals, each output written whole (temporary name, rename)."""
    outcomes = []
    for task in tasks:
        flags: list[str] = []
        try:
            with open(os.path.join(root, task.source), "rb") as handle:
                data = handle.read()
            result = convert(data, settings, flags)
        except Exception as exc:  # noqa: BLE001  # any decoder failure is this file's outcome, not the run's
            outcomes.append(Outcome(task.post_id, task.source, "failed", f"{type(exc).__name__}: {exc}", flags))
            continue
        if isinstance(result, str):
            outcomes.append(Outcome(task.post_id, task.source, "skipped", result, flags))
            continue
        _write(os.path.join(root, task.target), result, task.mtime_ns)
        outcomes.append(Outcome(task.post_id, task.source, "written", "", flags))
    return outcomes


def _write(path: str, data: bytes, mtime_ns: int) -> None:
    folder, name = os.path.split(path)
    os.makedirs(folder, exist_ok=True)
    temporary = os.path.join(folder, f".{name}.{os.getpid()}.derive.tmp")  # atomic's name: stale ones are removed
    try:
        with open(temporary, "wb") as handle:
            handle.write(data)
        os.utime(temporary, ns=(mtime_ns, mtime_ns))
        os.replace(temporary, path)
    except BaseException:
        if os.path.exists(temporary):
            os.unlink(temporary)
        raise


def run_tasks(
    root: Path, tasks: Iterable[Task], settings: Settings, workers: int | None = None
) -> Iterator[list[Outcome]]:
    """Convert `tasks` on `workers` processes, yielding each batch's outcomes in order."""
    if settings.size < 16 or not 1 <= settings.quality <= 100:
        raise BadInput("--size/--quality", "size at least 16 pixels, quality 1 to 100")
    with HashEngine(workers) as engine:
        yield from engine.map_batches(partial(convert_batch, str(root), settings), batched(tasks, limit=16))


def target_of(post_id: int) -> str:
    """Where an original's 512px image goes."""
    return image_path("512px", post_id, "jpg")


class Plan(NamedTuple):
    """What a derive run does: originals to convert, outputs to remove, and why the rest is left alone."""

    tasks: list[Task]
    remove: list[str]  # outputs of posts no longer selected (takedowns, ratings changed)
    stale: list[str]  # temporaries of a killed run (their process is gone)
    selected: int  # posts of the chosen ratings
    without_original: int  # selected posts whose original is not in the tree
    up_to_date: int  # outputs left untouched
    ratings: list[str]


class _Images(NamedTuple):
    """The images of the layout in one subset folder, ID ascending, as columns."""

    ids: np.ndarray
    mtimes: np.ndarray
    sizes: np.ndarray
    listing: Listing
    rows: np.ndarray  # each image's row in `listing`

    def path(self, n: int) -> str:
        return self.listing.path(int(self.rows[n]))


def _images(root: Path, subset: str) -> _Images:
    """The files of `root/subset` that are images of the layout, classified on whole columns; a folder that
    cannot be listed is an error (InputIOError), never a hole in the plan."""
    listing = list_tree(str(root), [subset]) if (root / subset).is_dir() else list_tree(str(root), [])
    if failed := [listing.entry(row, str(root)) for row in np.flatnonzero(listing.kinds == ERROR_KIND).tolist()]:
        raise walk_error(root, failed[0])
    rows, blob, ends = listing.files()
    layout = layout_of(blob, ends, lambda n: span_text(blob, ends, n))
    keep = np.flatnonzero(layout.conforming & (layout.rank == SUBSET_RANK[subset]))
    order = keep[np.argsort(layout.ids[keep], kind="stable")]
    picked = rows[order]
    return _Images(layout.ids[order], listing.mtimes[picked], listing.sizes[picked], listing, picked)


def plan(
    root: Path,
    metadata: Path,
    *,
    ratings: frozenset[str] | None = None,
    sensitive: bool = False,
    previous: Path | None = None,
    posts: PostIndex | None = None,
) -> Plan:
    """Which originals to convert: the posts of `ratings` (default: the SFW letters of the export's year)
    whose original is in `root`, when their output is missing, older or newer than the original (outputs
    carry their original's mtime), or the original changed since `previous` (last year's manifest). The
    posts come from `metadata`'s chunks, or from `posts`, an index of them as they are."""
    letters, wanted = (
        _wanted(metadata, ratings, sensitive) if posts is None else _wanted_indexed(posts, ratings, sensitive)
    )
    originals = _images(root, "original")
    ids = originals.ids
    if len(np.unique(ids)) != len(ids):
        raise BadInput(str(root / "original"), "holds two originals of one ID: which one to derive is unclear")
    outputs = _images(root, "512px")
    changed = _changed_since(previous, ids, originals.sizes) if previous is not None else np.zeros(len(ids), bool)
    where = np.searchsorted(ids, wanted)
    found = (where < len(ids)) & (ids[np.minimum(where, max(len(ids) - 1, 0))] == wanted) if len(ids) else wanted < 0
    rows = where[found]  # the originals to derive
    at = np.minimum(np.searchsorted(outputs.ids, ids[rows]), max(len(outputs.ids) - 1, 0))
    current = (
        (outputs.ids[at] == ids[rows]) & (outputs.mtimes[at] == originals.mtimes[rows]) & ~changed[rows]
        if len(outputs.ids)
        else np.zeros(len(rows), bool)
    )
    tasks = [
        Task(
            int(ids[row]),
            originals.path(row),
            target_of(int(ids[row])),
            int(originals.mtimes[row]),
            int(originals.sizes[row]),
        )  # fmt: skip
        for row in rows[~current].tolist()
    ]
    gone = np.flatnonzero(~np.isin(outputs.ids, ids[rows])).tolist()
    remove = [outputs.path(n) for n in gone]
    stale = _stale_temporaries(outputs.listing)
    return Plan(tasks, remove, stale, len(wanted), int((~found).sum()), int(current.sum()), sorted(letters))


def _wanted(metadata: Path, ratings: frozenset[str] | None, sensitive: bool) -> tuple[frozenset[str], np.ndarray]:
    """The rating letters chosen and the IDs of the posts rated so (ascending), read from the chunks."""
    posts = PostReader(release_chunks(metadata))
    by_rating: dict[str, array[int]] = {}  # 8 bytes a post, whatever the export's size
    for post in posts:
        by_rating.setdefault(post.rating, array("q")).append(post.id)
    letters = ratings or sfw_ratings(posts.newest_year, sensitive)
    chosen = [np.frombuffer(by_rating[letter], np.int64) for letter in sorted(letters) if letter in by_rating]
    return letters, np.unique(np.concatenate([np.zeros(0, np.int64), *chosen]))


def _wanted_indexed(
    posts: PostIndex, ratings: frozenset[str] | None, sensitive: bool
) -> tuple[frozenset[str], np.ndarray]:
    """`_wanted` from an index of the chunks."""
    letters = ratings or sfw_ratings(posts.newest_year, sensitive)
    return letters, posts.ids_rated(letters)


_TEMPORARY = re.compile(r"\.(.+)\.([0-9]+)\.derive\.tmp")


def _stale_temporaries(listing: Listing) -> list[str]:
    """Half-written outputs of a run that was killed (named by `_write`, their process gone)."""
    stale = []
    for row in np.flatnonzero(listing.kinds == FILE_KIND).tolist():
        path = listing.path(row)
        match = _TEMPORARY.fullmatch(path.rsplit("/", 1)[-1])
        if match and not process_alive(int(match.group(2))):
            stale.append(path)
    return stale

    return True


def _changed_since(previous: Path, ids: np.ndarray, sizes: np.ndarray) -> np.ndarray:
    """Per original (`ids`, ascending), whether last year's manifest lists it with another size: a change
    that kept its mtime."""
    old_ids, old_sizes = [], []
    for columns in column_chunks(previous, None):
        originals = columns.rank == SUBSET_RANK["original"]
        old_ids.append(columns.keys[originals] & ((1 << RANK_SHIFT) - 1))
        old_sizes.append(columns.sizes[originals])
    known, known_sizes = (
        np.concatenate([np.zeros(0, np.int64), *old_ids]),
        np.concatenate([np.zeros(0, np.int64), *old_sizes]),
    )
    at = np.searchsorted(known, ids)
    inside = at < len(known)
    listed = np.zeros(len(ids), bool)
    listed[inside] = known[at[inside]] == ids[inside]
    differs = np.zeros(len(ids), bool)
    differs[listed] = known_sizes[at[listed]] != sizes[listed]
    return differs


MAX_LISTED = 200  # paths listed per flag and failures in the report (the counts are complete)


class DeriveReport(BaseModel):
    """What `derive 512px` did (or, with dry_run, would do)."""

    root: str
    ratings: list[str]
    settings: dict[str, object]
    versions: dict[str, str]
    selected: int
    without_original: int
    up_to_date: int
    to_convert: int
    written: int = 0
    skipped_earlier: int = 0  # of `skipped`: unchanged originals an earlier run skipped, not opened again
    skipped: dict[str, int] = {}  # reason (animated, not an image, cannot decode, ...) -> originals
    skipped_files: list[str] = []  # "path: reason in full"
    failed: list[str] = []  # "path: problem"
    removed: list[str] = []  # outputs of posts no longer selected
    flagged: dict[str, list[str]] = {}  # near_uniform, too_dark, too_white, truncated, cmyk, ... -> outputs
    flag_counts: dict[str, int] = {}
    dry_run: bool = False


def _carried(tasks: list[Task], earlier: EarlierSkips | None) -> tuple[list[Outcome], list[Task]]:
    """The outcomes carried from an earlier run's skips, and the tasks left to convert."""
    if earlier is None or not earlier.outcomes:
        return [], tasks
    carried, left = [], []
    for task in tasks:
        found = earlier.get(task.source, task.size, task.mtime_ns)
        if found is None:
            left.append(task)
        else:
            carried.append(Outcome(task.post_id, task.source, "skipped", found[0], list(found[1])))
    return carried, left


def derive_512px(
    root: Path,
    metadata: Path | None = None,
    *,
    settings: Settings = Settings(),
    ratings: frozenset[str] | None = None,
    sensitive: bool = False,
    previous: Path | None = None,
    workers: int | None = None,
    dry_run: bool = False,
    progress: ProgressFn = no_progress,
    earlier_skips: Path | None = None,
    skips_out: BinaryIO | None = None,
    posts: PostIndex | None = None,
) -> DeriveReport:
    """Derive (or refresh) `root/512px` from `root/original`; see the module docstring. `skips_out` gets the
    originals this run skipped; with `earlier_skips` (what an earlier run wrote there) an unchanged original
    that run skipped is not converted again: its outcome is carried (`release.deriveskips`). `posts`: an index
    of the chunks of `metadata` (or `root`) as they are, read in place of them."""
    if not root.is_dir():
        raise BadInput(str(root), "release root does not exist")
    todo = plan(root, metadata or root, ratings=ratings, sensitive=sensitive, previous=previous, posts=posts)
    earlier = EarlierSkips(earlier_skips, asdict(settings), versions()) if earlier_skips is not None else None
    carried, tasks = _carried(todo.tasks, earlier)
    report = DeriveReport(
        root=str(root),
        ratings=todo.ratings,
        settings=asdict(settings),
        versions=versions(),
        selected=todo.selected,
        without_original=todo.without_original,
        up_to_date=todo.up_to_date,
        to_convert=len(tasks),
        skipped_earlier=len(carried),
        removed=todo.remove,
        dry_run=dry_run,
    )
    if dry_run:
        return report
    for path in (*todo.remove, *todo.stale):
        try:
            os.unlink(root / path)
        except FileNotFoundError:
            pass
        except OSError as exc:
            raise OutputError(str(root / path), f"cannot remove: {describe_os_error(exc)}") from exc
    ticker = Ticker(progress, "derive", len(tasks))
    writer = SkipsWriter(skips_out, asdict(settings), versions()) if skips_out is not None else None
    by_id = {task.post_id: task for task in todo.tasks} if writer is not None else {}
    skipped: Counter[str] = Counter()
    flagged: dict[str, list[str]] = {}
    counts: Counter[str] = Counter()
    for outcomes in itertools.chain([carried], run_tasks(root, tasks, settings, workers)):
        for outcome in outcomes:
            target = target_of(outcome.post_id)
            if outcome.status == "written":
                report.written += 1
            elif outcome.status == "skipped":
                skipped[outcome.detail.split(" (")[0].split(":")[0]] += 1
                if writer is not None:
                    task = by_id[outcome.post_id]
                    writer.add(task.source, task.size, task.mtime_ns, outcome.detail, outcome.flags)
                if len(report.skipped_files) < MAX_LISTED:
                    report.skipped_files.append(f"{outcome.source}: {outcome.detail}")
            elif len(report.failed) < MAX_LISTED:
                report.failed.append(f"{outcome.source}: {outcome.detail}")
            for flag in outcome.flags:
                counts[flag] += 1
                if len(flagged.setdefault(flag, [])) < MAX_LISTED:
                    flagged[flag].append(target if outcome.status == "written" else outcome.source)
        ticker.add(len(outcomes) if outcomes is not carried else 0)
    ticker.finish()
    report.skipped, report.flagged, report.flag_counts = (
        dict(sorted(skipped.items())),
        flagged,
        dict(sorted(counts.items())),
    )
    return report
