"""What each BitTorrent client accepts with its default settings: one table, each number sourced.

`None` means no limit is known for that client; the real-client tests load our torrents in it.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ClientProfile:
    """Limits a .torrent must stay under for one client (or client family) to load it."""

    name: str
    clients: str
    max_tokens: int | None  # bdecode tokens (libtorrent counting: a value each, an end per list/dict)
    max_bytes: int | None  # .torrent file size when loaded from a file
    max_pieces: int | None
    max_string: int | None  # longest single bencoded string (the `pieces` field)
    v2: bool  # parses v2 / hybrid torrents
    source: str


PROFILES: dict[str, ClientProfile] = {
    p.name: p
    for p in (
        ClientProfile(
            "libtorrent",
            "libtorrent >= 1.2.8 and 2.x defaults: qBittorrent >= 4.1, Deluge 2, most libtorrent clients",
            3_000_000,
            10_000_000,
            2_097_152,
            None,
            True,
            "libtorrent load_torrent_limits defaults: max_buffer_size 10000000, max_pieces 0x200000, "
            "max_decode_tokens 3000000 (DESIGN.md §3)",
        ),
        ClientProfile(
            "libtorrent-1.1",
            "libtorrent 1.0/1.1: qBittorrent <= 4.0 (its issue #8449 on Danbooru2017), Deluge 1.3",
            1_000_000,
            8_000_000,
            None,
            16_777_216,
            False,
            "libtorrent 1.1 bdecode token_limit 1000000; torrent_info(filename) load_file limit 8000000; "
            "1.0.x metadata < 2^24 bytes (arvidn/libtorrent#2014)",
        ),
        ClientProfile(
            "deluge",
            "Deluge (reads .torrent files with lt.bdecode defaults before adding them)",
            1_000_000,
            None,
            None,
            None,
            True,
            "lt.bdecode token limit 1000000; Deluge fails near 200k files (DESIGN.md §3)",
        ),
        ClientProfile(
            "transmission",
            "Transmission 3.00 (Debian 12)",
            None,
            None,
            None,
            128 * 1024 * 1024,
            False,
            "libtransmission variant-benc.cc MaxBencStrLength = 128 MiB; 3.00 cannot parse v2/hybrid (DESIGN.md §3)",
        ),
        ClientProfile(
            "aria2",
            "aria2 1.36 (Debian 12)",
            None,
            None,
            None,
            None,
            False,
            "no documented limit; checked by loading our torrents in the real client",
        ),
        ClientProfile(
            "magnet",
            "metadata fetched over a magnet link (ut_metadata, BEP 9) by libtorrent 2.x",
            3_000_000,
            30 * 1024 * 1024,
            2_097_152,
            None,
            True,
            "libtorrent settings_pack::max_metadata_size 30 MiB applies to the info dictionary (DESIGN.md §3)",
        ),
    )
}
DEFAULT_PROFILES: tuple[str, ...] = ("libtorrent", "deluge", "transmission", "aria2")
