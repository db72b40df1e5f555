"""Downloads over loopback (libtorrent): from a peer seeding the release tree, or from a web seed alone.

Used by `demo` to show a torrent we built really transfers. Sessions listen on 127.0.0.1 only, with DHT,
LSD, UPnP and NAT-PMP off; the leecher is pointed at the seeder directly (no tracker), or at a mirror's
URL as its only web seed (BEP 19).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from release.errors import BadInput, RemoteError


@dataclass(frozen=True)
class Transfer:
    """What the leecher downloaded."""

    torrent: str
    pieces: int
    downloaded: int
    seconds: float


def _session(lt: object, **extra: object) -> object:
    return lt.session(  # type: ignore[attr-defined]
        extra
        | {
            "listen_interfaces": "127.0.0.1:0",
            "enable_dht": False,
            "enable_lsd": False,
            "enable_upnp": False,
            "enable_natpmp": False,
            "allow_multiple_connections_per_ip": True,
            "user_agent": "booru-release-demo",
        }
    )


def _libtorrent() -> Any:
    try:
        import libtorrent as lt
    except ImportError as exc:
        raise BadInput("libtorrent", "the libtorrent Python package is not installed", "run scripts/setup.sh") from exc
    return lt


def loopback_transfer(torrent: Path, seed_from: Path, download_to: Path, timeout: float = 120) -> Transfer:
    """Seed `torrent` from `seed_from` (the folder holding its `info.name` folder), download it into
    `download_to`; raise SwarmError if the download does not complete within `timeout` seconds."""
    lt = _libtorrent()
    info = lt.torrent_info(str(torrent))
    seeder, leecher = _session(lt), _session(lt)
    handles = []
    for ses, path in ((seeder, seed_from), (leecher, download_to)):
        params = lt.add_torrent_params()
        params.ti = lt.torrent_info(str(torrent))
        params.save_path = str(path)
        handles.append(ses.add_torrent(params))  # type: ignore[attr-defined]
    seed, leech = handles
    start = time.monotonic()
    connected = False
    while time.monotonic() - start < timeout:
        if not seed.status().is_seeding:
            time.sleep(0.1)
            continue
        if not connected:
            leech.connect_peer(("127.0.0.1", seeder.listen_port()))  # type: ignore[attr-defined]
            connected = True
        status = leech.status()
        if status.is_seeding:
            return Transfer(str(torrent), info.num_pieces(), status.total_payload_download, time.monotonic() - start)
        time.sleep(0.1)
    status = leech.status()
    raise RemoteError(str(torrent), f"loopback download stalled at {status.progress:.0%} after {timeout:.0f} s")


def web_seed_transfer(torrent: Path, web_seed: str, download_to: Path, timeout: float = 120) -> Transfer:
    """Download `torrent` into `download_to` from the mirror at `web_seed` alone (BEP 19: the URL plus
    `info.name/path`): no peer, no tracker, the torrent's own web seeds set aside, as a user does with a
    mirror the torrent does not name. Raise RemoteError if it does not complete within `timeout` seconds."""
    lt = _libtorrent()
    # libtorrent's SSRF mitigation (meant for URLs a swarm hands out) refuses a web seed on loopback
    loopback = web_seed.startswith(("http://127.", "http://localhost"))
    ses = _session(lt, ssrf_mitigation=not loopback)
    params = lt.add_torrent_params()
    params.ti = lt.torrent_info(str(torrent))
    params.save_path = str(download_to)
    params.url_seeds = [web_seed]
    handle = ses.add_torrent(params)  # type: ignore[attr-defined]
    for url in handle.url_seeds():
        if url != web_seed:
            handle.remove_url_seed(url)
    handle.replace_trackers([])
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        status = handle.status()
        if status.is_seeding:
            seconds = time.monotonic() - start
            return Transfer(str(torrent), params.ti.num_pieces(), status.total_payload_download, seconds)
        time.sleep(0.1)
    status = handle.status()
    raise RemoteError(web_seed, f"web-seed download stalled at {status.progress:.0%} after {timeout:.0f} s")
