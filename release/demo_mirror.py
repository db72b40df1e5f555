"""The demo's S3 mirror: a local SeaweedFS that the last year's `cut --publish` fills, checked by
`verify s3://`, and read by a BitTorrent client through the web seed alone.

The mirror is `s3://danbooru/mirror/` on 127.0.0.1. Its bucket is readable anonymously, as a public
mirror is, so the web seed needs no credentials; the writer's key is made for this run and lives only in
the server's folder and this process's environment while the demo runs.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from release.atomic import atomic_output
from release.filelists import write_list
from release.publish.check import verify_bucket
from release.publish.localserver import Identity, LocalS3, local_s3, writer_environment
from release.publish.s3 import S3Settings, S3Store, join_key
from release.torrents.metainfo import load_torrent
from release.torrents.swarm import web_seed_transfer
from release.verify import verify_tree

BUCKET = "danbooru"
PREFIX = "mirror"


@contextmanager
def demo_mirror(folder: Path) -> Iterator[LocalS3]:
    """Start the mirror with its data in `folder`; boto3 gets its writer's credentials until it stops."""
    writer = Identity("maintainer", "AKIABOORUDEMO" + secrets.token_hex(4).upper(), secrets.token_urlsafe(24),
                      ("Admin", "Read", "Write", "List", "Tagging"))  # fmt: skip
    with local_s3(folder, (writer,), BUCKET) as server, writer_environment(server):
        yield server


def publish_table(server: LocalS3) -> list[str]:
    """The release file's `[[publish.s3]]` table for the mirror."""
    return ["[[publish.s3]]", f'bucket = "{BUCKET}"', f'prefix = "{PREFIX}"', f'endpoint_url = "{server.endpoint}"',
            'addressing_style = "path"']  # fmt: skip


def _store(server: LocalS3) -> S3Store:
    return S3Store(S3Settings(bucket=BUCKET, prefix=PREFIX, endpoint_url=server.endpoint, addressing_style="path"))


def mirror_checks(server: LocalS3, manifest: Path, name: str, uploaded: int) -> tuple[bool, str]:
    """`verify s3://` passes on the published mirror, then names exactly the one object removed from it
    (which is put back afterwards, so the mirror is left whole)."""
    store = _store(server)
    whole = verify_bucket(store, manifest, name=name, complete=True)
    victim = next(o for o in store.list(join_key(PREFIX, name, "original/")))
    data = store.get(victim.key)
    store.delete(victim.key)
    damaged = verify_bucket(store, manifest, name=name, complete=True)
    if data is not None:
        store.put_bytes(victim.key, data)
    missing = [p.path for p in damaged.problems if p.status == "MISSING"]
    expected = victim.key.removeprefix(join_key(PREFIX, name) + "/")
    proved = (
        uploaded > 0 and not whole.failed and whole.totals.MISSING == 0 and damaged.failed and missing == [expected]
    )
    evidence = (
        f"{uploaded:,} objects uploaded by the cut's publish step; verify s3://{BUCKET}/{PREFIX} --complete: "
        f"OK {whole.totals.OK:,}, MISSING {whole.totals.MISSING}; with {expected} deleted: MISSING {missing}"
    )
    return proved, evidence


def web_seed_download(server: LocalS3, torrent: Path, manifest: Path, out: Path) -> tuple[bool, str]:
    """Download the shard of `torrent` from the mirror as its only web seed, then verify what came."""
    url = f"{server.endpoint}/{BUCKET}/{PREFIX}/"
    target = out / "webseed-download"
    transfer = web_seed_transfer(torrent, url, target)
    meta = load_torrent(torrent)
    listed = out / f"{torrent.stem}.txt"
    with atomic_output(listed) as handle:
        write_list(handle, meta.paths)
    result = verify_tree(target / meta.name, manifest, files_from=listed)
    proved = not result.failed and result.totals.OK == len(meta.paths) and transfer.downloaded > 0
    evidence = (
        f"{torrent.name}: {transfer.pieces} pieces, {transfer.downloaded:,} B from {url} in "
        f"{transfer.seconds:.1f} s; verify OK {result.totals.OK}"
    )
    return proved, evidence
