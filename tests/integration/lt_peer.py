"""A libtorrent peer for the swarm tests, run as its own process (so it can live in a network namespace).

    python lt_peer.py seed  TORRENT SAVE_PATH --listen IP:PORT
    python lt_peer.py leech TORRENT SAVE_PATH --listen IP:PORT [--timeout S] [--peer IP:PORT]

`seed` serves until killed and prints `SEEDING` once its data is checked. `leech` downloads (after
checking whatever is already in SAVE_PATH, as a client does when a new .torrent replaces an old one)
and prints one JSON line when complete: the payload bytes it downloaded and the pieces it already had.
"""

from __future__ import annotations

import argparse
import json
import sys
import time

import libtorrent as lt


def session(listen: str) -> lt.session:
    """A session on one address only: no DHT, LSD, UPnP or NAT-PMP; TCP only (Transmission 3 stalls on uTP)."""
    return lt.session(
        {
            "listen_interfaces": listen,
            "enable_dht": False,
            "enable_lsd": False,
            "enable_upnp": False,
            "enable_natpmp": False,
            "enable_outgoing_utp": False,
            "enable_incoming_utp": False,
            "allow_multiple_connections_per_ip": True,
            "announce_to_all_tiers": True,
            "alert_mask": int(lt.alert_category.error | lt.alert_category.status),
            "user_agent": "booru-release-test",
            # libtorrent refuses web seeds on loopback (SSRF mitigation); the test mirror lives there
            "ssrf_mitigation": False,
            # a web seed that dropped its connection is retried after 30 s by default: on a busy CI machine a
            # few such drops outlast the test's timeout (a run stalled at 90% with no peer connected)
            "urlseed_wait_retry": 2,
        }
    )


def main() -> int:
    """Seed or leech one torrent."""
    parser = argparse.ArgumentParser()
    parser.add_argument("mode", choices=["seed", "leech"])
    parser.add_argument("torrent")
    parser.add_argument("save_path")
    parser.add_argument("--listen", required=True)
    parser.add_argument("--timeout", type=float, default=300)
    parser.add_argument("--peer", help="connect to this peer (no tracker needed)")
    args = parser.parse_args()
    ses = session(args.listen)
    params = lt.add_torrent_params()
    params.ti = lt.torrent_info(args.torrent)
    params.save_path = args.save_path
    handle = ses.add_torrent(params)
    if args.peer:
        address, port = args.peer.rsplit(":", 1)
        handle.connect_peer((address, int(port)))
    deadline = time.monotonic() + args.timeout
    had: int | None = None
    while time.monotonic() < deadline:
        for alert in ses.pop_alerts():
            if alert.category() & lt.alert_category.error:
                print(f"ALERT {alert.message()}", file=sys.stderr, flush=True)
        status = handle.status()
        if had is None and status.state not in (
            lt.torrent_status.checking_files,
            lt.torrent_status.checking_resume_data,
        ):
            had = status.num_pieces
            if args.mode == "seed":
                if not status.is_seeding:
                    print(f"NOT A SEED: {status.num_pieces}/{params.ti.num_pieces()} pieces", flush=True)
                    return 1
                print("SEEDING", flush=True)
        if args.mode == "leech" and status.is_seeding and had is not None:
            print(json.dumps({"downloaded": status.total_payload_download, "had_pieces": had}), flush=True)
            return 0
        time.sleep(0.2)
    status = handle.status()
    print(f"TIMEOUT state={status.state} progress={status.progress:.3f} peers={status.num_peers}", flush=True)
    return 2


if __name__ == "__main__":
    sys.exit(main())
