"""`select` against the jq pipeline users write, on the same metadata.

    python3 benchmarks/bench_select.py            # the small tree of bench_hashing.py (100,000 posts)
    python3 benchmarks/bench_select.py --quick    # 3,000 posts
    python3 benchmarks/bench_select.py --dialect new --posts 1000000   # Danbooru's own export (2022: g/s split)
    python3 benchmarks/bench_select.py --dialect old --posts 1000000   # the same scale, the old dialect

With --posts the tree is a --tiny one (the metadata is full size, the files a few bytes); the old dialect's
tree is dated 2019, the new one 2022. Each dialect and size has its own section of RESULTS.md.

Two queries: "1girl, rating s" and "png or gif with score >= 5, uploaded in the second half of the year,
without the tag solo". jq prints the would-be paths (it does not check that the files exist; ours does,
and sorts the list by bucket then ID). Both lists are compared after the existence filter: they must hold
the same paths. Results replace the select section of benchmarks/RESULTS.md.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_hashing import CLI, HERE, best, emit_section, synth_tree  # noqa: E402

PATH = '"./original/\\((.id | tonumber) % 1000 | tostring | ("000" + .)[-4:])/\\(.id).\\(.file_ext)"'
QUERIES = [
    (
        "1girl, rating s",
        "--tag 1girl --rating s",
        'select(.rating == "s" and any(.tags[]; .name == "1girl"))',
    ),
    (
        "png/gif, score ≥ 5, Jul–Dec, not solo",
        "--ext png --ext gif --min-score 5 --since 2019-07-01 --until 2019-12-31 --not-tag solo",
        'select((.file_ext == "png" or .file_ext == "gif") and (.score | tonumber) >= 5 '
        'and .created_at[:10] >= "2019-07-01" and .created_at[:10] <= "2019-12-31" '
        'and (any(.tags[]; .name == "solo") | not))',
    ),
]
# the same questions of Danbooru's own export: tags in one string, "g" for safe from 2022, rows without an id
NEW_QUERIES = [
    (
        "1girl, rating g",
        "--tag 1girl --rating g",
        'select(.id != null) | select(.tag_string | split(" ") | index("1girl")) | select(.rating == "g")',
    ),
    (
        "png/gif, score ≥ 5, Jul–Dec, not solo",
        "--ext png --ext gif --min-score 5 --since 2022-07-01 --until 2022-12-31 --not-tag solo",
        'select(.id != null) | select((.file_ext == "png" or .file_ext == "gif") and (.score | tonumber) >= 5 '
        'and .created_at[:10] >= "2022-07-01" and .created_at[:10] <= "2022-12-31" '
        'and (.tag_string | split(" ") | index("solo") | not))',
    ),
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work", type=Path, default=HERE / "work")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--results", type=Path, default=HERE / "RESULTS.md")
    parser.add_argument("--dialect", choices=("old", "new"), default="old")
    parser.add_argument("--posts", type=int, default=0, help="posts of a --tiny tree (default: the small tree)")
    args = parser.parse_args()
    name, synth_args, year = ("small", "--images 100000 --mean-size 40000 --seed 1", 2019)
    if args.posts:
        year = 2022 if args.dialect == "new" else 2019
        name, synth_args = f"select-{args.dialect}-{args.posts}", f"--images {args.posts} --tiny --seed 4"
    elif args.dialect == "new":
        name, synth_args, year = "select-new-small", "--images 100000 --mean-size 40000 --seed 1", 2022
    if args.quick:
        name, synth_args, args.repeat = f"quick-{args.dialect}", "--images 3000 --mean-size 40000 --seed 1", 1
    synth_args += " --dialect new" if args.dialect == "new" else ""
    root, _, _ = synth_tree(args.work, name, synth_args, year)
    chunks = " ".join(sorted(p.name for p in (root / "metadata").iterdir() if p.is_file() and "tags" not in p.name))
    meta_bytes = sum(p.stat().st_size for p in (root / "metadata").iterdir() if p.is_file())
    queries = NEW_QUERIES if args.dialect == "new" else QUERIES
    rows = []
    for label, ours_args, jq_filter in queries:
        ours_cmd = f"{CLI} select --metadata . {ours_args} -o /tmp/bench-select-ours.txt"
        jq_cmd = f"cd metadata && jq -r '{jq_filter} | {PATH}' {chunks} > /tmp/bench-select-jq.txt"
        ours = best(f"select: {label}", ours_cmd, root, args.repeat)
        jq = best(f"jq: {label}", jq_cmd, root, args.repeat)
        listed = Path("/tmp/bench-select-ours.txt").read_text().splitlines()
        wanted = [p for p in Path("/tmp/bench-select-jq.txt").read_text().splitlines() if (root / p[2:]).is_file()]
        same = sorted(listed) == sorted(wanted)
        rows.append((label, ours, jq, len(listed), same))
    stats = best("metadata stats", f"{CLI} metadata stats . --json > /dev/null", root, args.repeat)
    jq_stats = best("jq: ratings", f"cd metadata && jq -r .rating {chunks} | sort | uniq -c > /dev/null", root, 1)
    flags = "".join(
        f
        for f in (
            " --quick" if args.quick else "",
            f" --dialect {args.dialect}" if args.dialect != "old" else "",
            f" --posts {args.posts}" if args.posts else "",
        )
        if f  # fmt: skip
    )
    size = "quick" if args.quick else args.posts or "small"
    key = "select" if args.dialect == "old" and size == "small" else f"select-{args.dialect}-{size}"
    start, end = f"<!-- {key}:start -->", f"<!-- {key}:end -->"
    lines = [
        start,
        f"## select vs jq, {args.dialect} dialect (`python3 benchmarks/bench_select.py{flags}`, "
        f"{time.strftime('%Y-%m-%d')}, best of {args.repeat})\n",
        f"Metadata: the {name} tree's top-level chunks, {meta_bytes / 1e6:,.0f} MB. Commands run in the tree "
        "root; jq only prints paths (no existence check, no ordering), ours checks each file exists and sorts "
        "by bucket, ID.\n",
        "| query | select s | jq s | select peak RSS MB | jq peak RSS MB | files | same list |",
        "|---|---:|---:|---:|---:|---:|---|",
    ]
    for label, ours, jq, n, same in rows:
        lines.append(
            f"| {label} | {ours.wall:.2f} | {jq.wall:.2f} | {ours.rss_mb:.0f} | {jq.rss_mb:.0f} | {n:,} "
            f"| {'yes' if same else 'NO'} |"
        )
    lines += [
        "",
        f"`metadata stats` (files from a walk of the tree, then every post: tags, ratings, uploads): "
        f"{stats.wall:.2f} s, peak RSS {stats.rss_mb:.0f} MB; jq counting the ratings alone "
        f"(`jq -r .rating CHUNKS | sort | uniq -c`): {jq_stats.wall:.2f} s.",
        "",
        "Commands:",
        "",
    ]
    files = "posts*.json" if args.dialect == "new" else "2019*"
    for _label, ours_args, jq_filter in queries:
        lines += [
            f"    python3 -m release select --metadata . {ours_args} -o list.txt",
            f"    cd metadata && jq -r '{jq_filter} | {PATH}' {files} > list.txt",
        ]
    lines += ["", end]
    emit_section(args.results, start, end, lines[1:-1])


if __name__ == "__main__":
    main()
