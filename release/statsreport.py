"""Release statistics for people: Markdown release notes and PNG plots (matplotlib, Agg backend)."""

from __future__ import annotations

import contextlib
import io
from pathlib import Path

from release.atomic import OutputSet, atomic_output, write_text_atomic
from release.stats import PostStats, ReleaseStats


def _size(n: float) -> str:
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if abs(n) < 1000 or unit == "TB":
            return f"{n:,.1f} {unit}" if unit != "B" else f"{int(n):,} B"
        n /= 1000
    raise AssertionError  # unreachable


def release_notes(stats: ReleaseStats, name: str) -> str:
    """Markdown release notes with the published figures."""
    total = sum(c.files for c in stats.subsets.values())
    lines = [f"# {name}", "", "## Images", "", "| subset | images | size |", "|---|---:|---:|"]
    lines += [f"| {s} | {c.files:,} | {_size(c.bytes)} |" for s, c in stats.subsets.items()]
    lines += [f"| total | {total:,} | {_size(sum(c.bytes for c in stats.subsets.values()))} |", ""]
    lines += ["| subset | extension | images | size |", "|---|---|---:|---:|"]
    lines += [
        f"| {s} | {ext} | {c.files:,} | {_size(c.bytes)} |"
        for s, exts in stats.extensions.items()
        for ext, c in exts.items()
    ]
    rated = sum(stats.ratings.values()) or 1
    lines += [
        "",
        "## Metadata",
        "",
        f"- posts: {stats.posts:,} ({stats.deleted_posts:,} deleted upstream, files kept)",
        f"- tag instances: {stats.tag_instances:,}; unique tags: {stats.unique_tags:,}; "
        f"mean tags per post: {stats.mean_tags_per_post:.2f}",
        f"- uploads from {stats.earliest_upload} to {stats.latest_upload}",
        "- ratings: " + ", ".join(f"{r} {n:,} ({100 * n / rated:.1f}%)" for r, n in stats.ratings.items()),
        "",
        "| year | uploads |",
        "|---|---:|",
        *(f"| {y} | {n:,} |" for y, n in stats.uploads_per_year.items()),
        "",
        "| top tag | posts |",
        "|---|---:|",
        *(f"| {t} | {n:,} |" for t, n in stats.top_tags),
        "",
    ]
    if stats.posts_with_duplicate_tags or stats.malformed_lines:
        lines += [
            f"Data notes: {stats.posts_with_duplicate_tags:,} posts list a tag twice (counted once); "
            f"{stats.malformed_lines:,} malformed metadata lines skipped.",
            "",
        ]
    return "\n".join(lines)


def write_notes(stats: ReleaseStats, name: str, output: Path, outputs: OutputSet | None = None) -> None:
    """Write the release notes atomically (with `outputs`: when that set commits)."""
    write_text_atomic(output, release_notes(stats, name), outputs)


PLOTS = ("uploads-per-year.png", "top-tags.png", "ratings.png")


def write_plots(stats: ReleaseStats | PostStats, folder: Path, outputs: OutputSet | None = None) -> list[Path]:
    """uploads-per-year.png, top-tags.png and ratings.png in `folder`, appearing together (with `outputs`:
    when that set commits, together with the rest of it). They show posts only."""
    with contextlib.ExitStack() as stack:
        outs = outputs if outputs is not None else stack.enter_context(OutputSet())
        return _write_plots(stats, folder, outs)


def copy_plots(source: Path, folder: Path) -> list[Path] | None:
    """The plots `write_plots` drew earlier into `source`, copied into `folder` together; None (and nothing
    written) when one is missing."""
    try:
        drawn = {name: (source / name).read_bytes() for name in PLOTS}
    except OSError:
        return None
    with OutputSet() as outputs:
        outputs.folder(folder)
        for name, data in drawn.items():
            with atomic_output(folder / name, outputs) as out:
                out.write(data)
    return [folder / name for name in PLOTS]


def _write_plots(stats: ReleaseStats | PostStats, folder: Path, outputs: OutputSet) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    outputs.folder(folder)
    charts = {  # in PLOTS' order
        "uploads-per-year.png": (
            "Uploads per year",
            list(stats.uploads_per_year),
            list(stats.uploads_per_year.values()),
            False,
        ),
        "top-tags.png": (
            "Top tags (posts)",
            [t for t, _ in stats.top_tags][::-1],
            [n for _, n in stats.top_tags][::-1],
            True,
        ),
        "ratings.png": ("Ratings", list(stats.ratings), list(stats.ratings.values()), False),
    }
    written = []
    for name, (title, labels, values, horizontal) in charts.items():
        fig, ax = plt.subplots(figsize=(8, 6 if horizontal else 4), dpi=100)
        (ax.barh if horizontal else ax.bar)(labels, values, color="#4c72b0")
        ax.set_title(title)
        fig.tight_layout()
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png", metadata={"Software": None})
        plt.close(fig)
        with atomic_output(folder / name, outputs) as out:
            out.write(buffer.getvalue())
        written.append(folder / name)
    return written
