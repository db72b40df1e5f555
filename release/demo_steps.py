"""The demo's later steps: torrents over loopback, an rsync mirror, stats, and reconstruction.

Each step returns a Claim: what it set out to show, whether it did, and the evidence.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from pydantic import BaseModel

from release.atomic import atomic_output
from release.build import BuildReport
from release.derive import derive_512px
from release.filelists import write_list
from release.metaarchive import write_metadata_tarball
from release.reconstruct import reconstruct
from release.releases import ReleaseFacts, TorrentRecipe
from release.rsync.daemon import fetch, local_mirror
from release.synth import Changelog
from release.torrents.metainfo import load_torrent
from release.torrents.swarm import loopback_transfer
from release.verify import verify_tree

RECIPE = TorrentRecipe(
    trackers=[["udp://tracker.example.org:6969/announce"]],
    web_seeds=["https://mirror.example.org/"],
    creation_date=1577836800,
    comment="booru-release demo",
)


class Claim(BaseModel):
    """One thing the demo set out to show, and whether it did."""

    claim: str
    proved: bool
    evidence: str


def reuse_claim(reports: dict[int, BuildReport]) -> Claim:
    """Later years' torrents reuse last year's hashes for the unchanged prefix of each shard."""
    later = [r.torrents for y, r in sorted(reports.items())[1:] if r.torrents is not None]
    ok = bool(later) and all(t.reused_bytes > 0 for t in later)
    return Claim(
        claim="manifest and torrents come from one read; later years reuse last year's piece hashes",
        proved=ok,
        evidence="; ".join(f"{t.release}: hashed {t.hashed_bytes:,} B, reused {t.reused_bytes:,} B" for t in later),
    )


def seed_and_download(out: Path, data: Path, year: int, manifest: Path) -> Claim:
    """Seed shard 0 from the tree over loopback, download it, verify it with the manifest."""
    torrent = manifest.parent / "torrents" / f"danbooru{year}-0.torrent"  # the cut's layout
    view = out / "seed-view"  # the seeder sees the tree under the torrent's name
    view.mkdir(exist_ok=True)
    (view / f"danbooru{year}").symlink_to((data / str(year)).resolve())
    transfer = loopback_transfer(torrent, view, out / "torrent-download")
    meta = load_torrent(torrent)
    listed = out / "shard-0.txt"
    with atomic_output(listed) as handle:
        write_list(handle, meta.paths)
    result = verify_tree(out / "torrent-download" / f"danbooru{year}", manifest, files_from=listed)
    return Claim(
        claim="a shard seeds and downloads over loopback (libtorrent) and verifies against the manifest",
        proved=not result.failed and result.totals.OK == len(meta.paths) and result.totals.MISSING == 0,
        evidence=f"{transfer.pieces} pieces, {transfer.downloaded:,} B in {transfer.seconds:.1f} s; "
        f"verify OK {result.totals.OK}",
    )


def rsync_mirror(out: Path, root: Path, manifest: Path, lists: Path) -> Claim:
    """Serve the tree from a real rsync daemon with our config; fetch the cut's 512px list; verify it."""
    subset = lists / "filelist-512px.txt"
    with local_mirror(root, root.name, out / "rsync-daemon") as url:
        fetch(url, subset, out / "rsync-download")
    result = verify_tree(out / "rsync-download", manifest, files_from=subset)
    wanted = len(subset.read_text().splitlines())
    return Claim(
        claim="the cut's rsync file list drives a --files-from download from a real read-only daemon",
        proved=not result.failed and result.totals.OK == wanted and result.totals.MISSING == 0,
        evidence=f"512px list of {wanted} files: OK {result.totals.OK}",
    )


def reconstruct_claims(out: Path, data: Path, log: Changelog, manifests: dict[int, Path]) -> list[Claim]:
    """Rebuild each older year from the newest tree: damage reported exactly, then proven identical."""
    newest = max(y.year for y in log.years)
    claims = []
    for entry in log.years[:-1]:
        year = entry.year
        facts = ReleaseFacts(name=f"danbooru{year}", year=year, final_id=entry.final_id, torrents=RECIPE)
        target, extras = out / "reconstructed" / str(year), out / "reconstructed" / f"{year}-extras"
        first = reconstruct(facts, data / str(newest), target, manifest=manifests[year], extras=extras)
        original = data / str(year)
        present = {p.relative_to(original).as_posix() for p in original.rglob("*") if p.is_file()}
        later = [y for y in log.years if y.year > year]
        taken = sorted({p for y in later for p in y.takedowns} & present)
        replaced = sorted({p for y in later for p in y.replaced} & present)
        exact = sorted(first.missing) == taken and sorted(first.differ) == replaced
        for path in taken + replaced:  # the mirror that kept them: last year's own snapshot
            (target / path).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(original / path, target / path)
        second = reconstruct(facts, data / str(newest), target, manifest=manifests[year], extras=extras)
        write_metadata_tarball(original, out / f"metadata-{year}.tar.xz")
        published = manifests[year].parent / "torrents"
        same_torrents = bool(second.torrents) and all(
            Path(t.file).read_bytes() == (published / Path(t.file).name).read_bytes() for t in second.torrents
        )
        same_tarball = second.metadata_tarball is not None and (
            Path(second.metadata_tarball).read_bytes() == (out / f"metadata-{year}.tar.xz").read_bytes()
        )
        claims.append(
            Claim(
                claim=f"danbooru{year} is rebuilt from the {newest} tree and proven bit-identical",
                proved=exact and second.identical_release and same_torrents and same_tarball,
                evidence=f"first pass: {first.identical_files} identical, missing {first.missing}, "
                f"differ {first.differ} (as the changelog says: {exact}); after fetching those: "
                f"{second.identical_files} identical, {len(second.torrents)} .torrent files and the "
                f"metadata tarball byte-equal: {same_torrents and same_tarball}",
            )
        )
    return claims


def derive_claim(out: Path, root: Path, log: Changelog) -> Claim:
    """The SFW 512px subset of the newest year, derived from its originals on a root of its own (the other
    claims keep synth's), twice: the second run must find nothing to do, and line art must stay visible."""
    fresh = out / "derived" / root.name
    shutil.copytree(root / "original", fresh / "original", copy_function=os.link)
    shutil.copytree(root / "metadata", fresh / "metadata", copy_function=os.link)
    first = derive_512px(fresh)
    second = derive_512px(fresh)
    dark = {Path(p).stem for p in log.tricks.get("line_art_dark", [])}
    on_white = {Path(p).stem for p in first.flagged.get("white_background", [])}
    uniform = first.flag_counts.get("near_uniform", 0)
    return Claim(
        claim="derive 512px makes the SFW subset from the originals, dark line art on white, and resumes",
        proved=first.written > 0 and not first.failed and dark <= on_white and not uniform and second.written == 0,
        evidence=f"{first.written:,} written, skipped {first.skipped}, {len(on_white)} flattened onto white "
        f"(planted dark line art: {len(dark)}), near-uniform {uniform}; second run: {second.written} written, "
        f"{second.up_to_date:,} up to date",
    )
