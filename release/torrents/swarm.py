"""A two-peer swarm on loopback (libtorrent): seed a shard from the release tree, download it elsewhere.

Used by `demo` to show a torrent we built really transfers. Both sessions listen on 127.0.0.1 only,
with DHT, LSD, UPnP and NAT-PMP off; the leecher is pointed at the seeder directly (no tracker).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from release.errors import BadInput, RemoteError


@dataclass(frozen=True)
class Transfer:
    """What the leecher downloaded."""

    torrent: str
    pieces: int
    downloaded: int
    seconds: float


def _session(lt: object) -> object:
    return lt.session(  # type: ignore[attr-defined]
        {
            "listen_interfaces": "127.0.0.1:0",
            "enable_dht": False,
            "enable_lsd": False,
            "enable_upnp": False,
            "enable_natpmp": False,
            "allow_multiple_connections_per_ip": True,
            "user_agent": "booru-release-demo",
        }
    )


def loopback_transfer(torrent: Path, seed_from: Path, download_to: Path, timeout: float = 120) -> Transfer:
    """Seed `torrent` from `seed_from` (the folder holding its `info.name` folder), download it into
    `download_to`; raise SwarmError if the download does not complete within `timeout` seconds."""
    try:
        import libtorrent as lt
    except ImportError as exc:
        raise BadInput("libtorrent", "the libtorrent Python package is not installed", "run scripts/setup.sh") from exc
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
