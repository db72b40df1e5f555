"""`derive 512px` beside the published way (ImageMagick `convert` under GNU parallel) and vipsthumbnail.

    python3 benchmarks/bench_derive.py            # 2,000 originals of 1-4 megapixels
    python3 benchmarks/bench_derive.py --quick    # 100 originals

The originals are illustrations drawn deterministically (seeded): flat colour regions, hard outlines and
lines, 75% JPEG (quality 92) and 25% PNG, a third of the PNGs with transparency; each has a metadata line
rated s, so `derive 512px` selects them all. Each tool runs on both cores (ours: its worker processes;
the others: `parallel -j2`), on a warm page cache, best of N. The quality figure compares our output with
ImageMagick's over the picture area (PSNR in dB and a mean SSIM on the luminance, 8x8 windows), for the
opaque originals; ImageMagick is run there with the gravity set before -extent, so both centre the picture
(the published command sets it after, which leaves the picture in the top-left corner). Results replace
the derive section of benchmarks/RESULTS.md.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import random
import shutil
import subprocess
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_hashing import CLI, HERE, best, emit_section  # noqa: E402

sys.path.insert(0, str(HERE.parent))
from release.derive import versions  # noqa: E402
from release.layout import image_path  # noqa: E402
from release.synth.images import scribble  # noqa: E402
from release.synth.records import make_record, record_line  # noqa: E402

START, END = "<!-- derive:start -->", "<!-- derive:end -->"
FIRST_ID = 5000
PUBLISHED = "/usr/bin/convert {} -resize 512x512\\> -extent 512x512 -gravity center -background black out-im/{/.}.jpg"
CENTRED = "/usr/bin/convert {} -resize 512x512\\> -gravity center -background black -extent 512x512 out-imc/{/.}.jpg"
VIPS = "vipsthumbnail {} --size 512x512 -o $PWD/out-vips/%s.jpg[Q=90]"


def draw(index: int) -> tuple[str, bytes]:
    """One illustration: (extension, encoded bytes), the same for the same index."""
    rng = random.Random(f"bench-derive:{index}")
    width, height = rng.randint(1000, 2000), rng.randint(1000, 2000)
    transparent = index % 12 == 3
    image = Image.new("RGBA", (width, height), (0, 0, 0, 0) if transparent else (250, 248, 240, 255))
    scribble(image, rng)
    out = io.BytesIO()
    if index % 4 == 3:
        image.save(out, "PNG")
        return "png", out.getvalue()
    image.convert("RGB").save(out, "JPEG", quality=92)
    return "jpg", out.getvalue()


def make_tree(root: Path, count: int) -> list[Path]:
    """`count` originals under root/original and one metadata chunk rating them all s."""
    if (root / "done").exists():
        return sorted((root / "original").rglob("*.*"))
    shutil.rmtree(root, ignore_errors=True)
    (root / "metadata").mkdir(parents=True)
    with ProcessPoolExecutor(os.cpu_count()) as pool:
        drawn = list(pool.map(draw, range(count), chunksize=8))
    lines = []
    for index, (ext, data) in enumerate(drawn):
        post_id = FIRST_ID + index
        path = root / image_path("original", post_id, ext)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        record = make_record(
            post_id=post_id, created_ns=1_600_000_000_000_000_000, updated_ns=1_600_000_000_000_000_000,
            rating="s", md5="0" * 32, ext=ext, size=len(data), width=1, height=1, deleted=False, banned=False,
            duplicate_tags=False, seed="bench", year=2020,
        )  # fmt: skip
        lines.append(record_line(record))
    (root / "metadata" / "2020000000000000").write_bytes(b"".join(lines))
    (root / "done").write_text("")
    return sorted((root / "original").rglob("*.*"))


def _luma(path: Path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("L"), dtype=np.float64)


def _ssim(a: np.ndarray, b: np.ndarray) -> float:
    """Mean SSIM over 8x8 blocks (the constants of Wang et al. 2004, L = 255)."""
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    h, w = (a.shape[0] // 8) * 8, (a.shape[1] // 8) * 8
    blocks = [x[:h, :w].reshape(h // 8, 8, w // 8, 8).swapaxes(1, 2).reshape(-1, 64) for x in (a, b)]
    ma, mb = blocks[0].mean(1), blocks[1].mean(1)
    va, vb = blocks[0].var(1), blocks[1].var(1)
    cov = ((blocks[0] - ma[:, None]) * (blocks[1] - mb[:, None])).mean(1)
    return float(np.mean(((2 * ma * mb + c1) * (2 * cov + c2)) / ((ma**2 + mb**2 + c1) * (va + vb + c2))))


def _opaque(original: Path) -> bool:
    image = Image.open(original)
    return "A" not in image.getbands() or image.getextrema()[-1] == (255, 255)


def quality(root: Path, originals: list[Path], sample: int, suffix: str) -> tuple[float, float, int]:
    """(mean PSNR dB, mean SSIM, images) of ours against ImageMagick's centred output, for up to `sample`
    opaque originals of one type (transparent ones are flattened onto a chosen background by ours)."""
    psnrs, ssims = [], []
    for original in originals:
        if len(psnrs) >= sample or original.suffix != suffix or not _opaque(original):
            continue
        ours = root / image_path("512px", int(original.stem), "jpg")
        theirs = root / "out-imc" / f"{original.stem}.jpg"
        a, b = _luma(ours), _luma(theirs)
        mse = float(np.mean((a - b) ** 2))
        psnrs.append(99.0 if mse == 0 else 10 * np.log10(255**2 / mse))
        ssims.append(_ssim(a, b))
    return float(np.mean(psnrs)), float(np.mean(ssims)), len(psnrs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work", type=Path, default=HERE / "work")
    parser.add_argument("--count", type=int, default=2000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--results", type=Path, default=HERE / "RESULTS.md")
    args = parser.parse_args()
    if args.quick:
        args.count, args.repeat = 100, 1
    root = args.work / f"derive-{args.count}"
    originals = make_tree(root, args.count)
    megapixels = sum(Image.open(p).width * Image.open(p).height for p in originals) / 1e6
    listing = root / "originals.txt"
    listing.write_text("".join(f"{p.relative_to(root)}\n" for p in originals))
    subprocess.run(["bash", "-c", "find original -type f -print0 | xargs -0 cat > /dev/null"], cwd=root, check=True)
    clean = "rm -rf 512px out-im out-imc out-vips && mkdir out-im out-imc out-vips"
    jobs = [
        ("ours: derive 512px (2 worker processes)", f"{CLI} derive 512px . --workers 2 > /dev/null"),
        ("ImageMagick convert, as published, parallel -j2", f"parallel -j2 '{PUBLISHED}' < originals.txt"),
        ("vipsthumbnail, parallel -j2", f"parallel -j2 '{VIPS}' < originals.txt"),
    ]
    timings = [best(name, command, root, args.repeat, before=clean) for name, command in jobs]
    subprocess.run(["bash", "-c", f"{CLI} derive 512px . --workers 2 > /dev/null"], cwd=root, check=True)
    subprocess.run(["bash", "-c", f"parallel -j2 '{CENTRED}' < originals.txt"], cwd=root, check=True)
    figures = {suffix: quality(root, originals, 200, suffix) for suffix in (".jpg", ".png")}
    report = json.loads(subprocess.run(["bash", "-c", f"{CLI} derive 512px . --dry-run --json"], cwd=root,
                                       capture_output=True, text=True, check=True).stdout)  # fmt: skip
    rates = {t.name: len(originals) / t.wall for t in timings}
    ours, im, vips = (rates[name] for name, _ in jobs)
    lines = [
        START,
        f"## The 512px subset (`python3 benchmarks/bench_derive.py{' --quick' if args.quick else ''}`, "
        f"{time.strftime('%Y-%m-%d')}, best of {args.repeat}, warm cache)\n",
        f"{len(originals):,} drawn illustrations, {megapixels / len(originals):.1f} megapixels on average "
        "(75% JPEG q92, 25% PNG, a third of those transparent), all rated s; 2 cores. Outputs 512x512 JPEG.\n",
        "| tool | wall s | images/s | CPU s | peak RSS MB |",
        "|---|---:|---:|---:|---:|",
        *(f"| {t.name} | {t.wall:.2f} | {rates[t.name]:,.1f} | {t.cpu:.2f} | {t.rss_mb:.0f} |" for t in timings),
        "",
        f"- ours: **{ours / im:.1f}× ImageMagick's images/s** (target ≥ 5×) and **{ours / vips:.2f}× vipsthumbnail's** "
        "(target ≥ 1×).",
        *(
            f"- against ImageMagick's output (gravity before -extent), {n} opaque {suffix[1:].upper()} originals: "
            f"mean PSNR **{psnr:.1f} dB**, mean SSIM **{ssim:.3f}** (luminance, picture and padding)."
            for suffix, (psnr, ssim, n) in figures.items()
        ),
        f"- a second run found {report['to_convert']} to convert ({report['up_to_date']:,} up to date).",
        f"- decoder and encoder: {', '.join(f'{k} {v}' for k, v in versions().items())}.",
        "",
        "Commands (in the tree's root; `originals.txt` lists the originals):",
        "",
        *(f"    {command}" for _, command in jobs),
        "",
        END,
    ]
    emit_section(args.results, START, END, lines[1:-1])


if __name__ == "__main__":
    main()
