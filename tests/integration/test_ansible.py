"""The Ansible roles, run for real against this host (`-c local`) as `publish seedboxes` runs them.

A 2018 origin (our rsync daemon) feeds an rsync mirror and a Transmission seedbox, each a non-root user
of its own, on free 127.0.0.1 ports, under a temporary prefix. The site is run twice (the second run
changes nothing), checked without Ansible (RPC, an rsync client, `verify`), then moved to 2019 by
update.yml: only the new files travel, the client rechecks and seeds the new torrents. qBittorrent-nox
is the alternative client; bad inventories, a missing data folder and a wrong RPC password end clearly.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from release.build import build_torrents
from release.manifest.diff import diff_manifests
from release.manifest.io import ManifestReader
from release.rsync.daemon import local_mirror
from release.torrents.build import TorrentJob
from release.torrents.metainfo import load_torrent
from release.torrents.plan import TorrentSettings
from tests.conftest import REPO, Dataset, Run, run_cli
from tests.integration.swarm import free_port, lt_leech, netns_link

pytestmark = pytest.mark.skipif(
    shutil.which("ansible-playbook") is None or shutil.which("transmission-daemon") is None,
    reason="needs ansible-core and transmission-daemon (scripts/setup.sh --test)",
)
NAME = "danbooru"  # info.name of every year's torrents: the folder the seedbox's data is in
PLAYBOOKS = ("site", "seedbox", "mirror", "update")
TAG = os.getpid() % 100000


@dataclass
class Box:
    """One host's worth of prefix, users, ports and the variables the inventory gives it."""

    base: Path
    variables: dict[str, Any] = field(default_factory=dict)

    def inventory(self, name: str = "hosts.yml", **overrides: Any) -> Path:
        path = self.base / name
        host = {"ansible_connection": "local", "ansible_python_interpreter": sys.executable}
        groups = {"mirrors": {"hosts": {"box": {}}}, "seedboxes": {"hosts": {"box": {}}}}
        inventory = {"all": {"hosts": {"box": host}, "vars": {**self.variables, **overrides}, "children": groups}}
        path.write_text(json.dumps(inventory, indent=1))  # JSON is YAML
        return path

    @property
    def data(self) -> Path:
        return self.base / "data"


def publish(inventory: Path, *args: str) -> Run:
    return run_cli("publish", "seedboxes", "--inventory", inventory, *args, "--json")


def site_in_place(box: Box) -> None:
    """The site playbook's work (mirrored data, both services), which the first test does and checks: run
    here when a later test runs on its own (each test must pass alone, not only after the first)."""
    if not (box.data / NAME).is_dir():
        run = publish(box.inventory())
        assert run.code == 0, run.stdout[-3000:] + run.stderr[-3000:]


def rpc(box: Box, method: str, **arguments: Any) -> dict[str, Any]:
    """Transmission's RPC, asked directly (no Ansible): the session-id handshake, then the call."""
    url = f"http://127.0.0.1:{box.variables['seedbox_rpc_port']}/transmission/rpc"
    auth = base64.b64encode(f"booru:{box.variables['seedbox_rpc_password']}".encode()).decode()
    headers = {"Authorization": f"Basic {auth}", "Content-Type": "application/json"}
    body = json.dumps({"method": method, "arguments": arguments}).encode()
    for _ in range(2):
        try:
            with urllib.request.urlopen(urllib.request.Request(url, body, headers), timeout=30) as answer:
                return dict(json.loads(answer.read())["arguments"])
        except urllib.error.HTTPError as exc:
            if exc.code != 409:
                raise
            headers["X-Transmission-Session-Id"] = exc.headers["X-Transmission-Session-Id"]
    raise AssertionError("no session id")


def listener(port: int) -> str | None:
    """The local address a TCP port listens on, from /proc/net/tcp (None: nothing listens)."""
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        local, state = line.split()[1], line.split()[3]
        address, hex_port = local.split(":")
        if state == "0A" and int(hex_port, 16) == port:
            return ".".join(str(int(address[i : i + 2], 16)) for i in (6, 4, 2, 0))
    return None


def owners(pidfile: Path) -> int:
    """The real uid of the process a pid file names."""
    pid = pidfile.read_text().strip()
    status = Path(f"/proc/{pid}/status").read_text()
    return int(next(line for line in status.splitlines() if line.startswith("Uid:")).split()[1])


@pytest.fixture(scope="module")
def releases(dataset: Dataset, tmp_path_factory: pytest.TempPathFactory) -> dict[int, dict[str, Path]]:
    """2018 and 2019: manifest, file list, torrents folder and tarball (info.name `danbooru` both years)."""
    base = tmp_path_factory.mktemp("releases")
    made = {}
    for year in (2018, 2019):
        settings = TorrentSettings(release=f"danbooru{year}", name=NAME, creation_date=1577836800, piece_length=65536)
        report = build_torrents(dataset.root(year), TorrentJob(settings, base / f"t{year}"))
        listing = base / f"{year}.list"
        listing.write_text("".join(f"{r.path}\n" for r in ManifestReader(dataset.manifests[year])))
        made[year] = {"manifest": dataset.manifests[year], "list": listing, "torrents": base / f"t{year}",
                      "tarball": Path(report.tarball)}  # fmt: skip
    return made


@pytest.fixture(scope="module")
def box(dataset: Dataset, releases: dict[int, dict[str, Path]]) -> Iterator[Box]:
    """A prefix outside pytest's private tmp (the service users must reach it), the 2018 origin, the
    variables of a mirror and a Transmission seedbox; everything stopped and removed afterwards."""
    base = Path(tempfile.mkdtemp(prefix="booru-ansible-"))
    base.chmod(0o755)
    (base / "data").mkdir(mode=0o755)
    users = [f"brm{TAG}", f"brs{TAG}", f"brq{TAG}"]
    try:
        with local_mirror(dataset.root(2018), "danbooru2018", base / "origin") as origin:
            b = Box(base)
            b.variables = {
                "rsync_mirror_module": NAME, "rsync_mirror_path": str(b.data / NAME), "rsync_mirror_origin": origin,
                "rsync_mirror_files_from": str(releases[2018]["list"]),
                "rsync_mirror_manifest": str(releases[2018]["manifest"]),
                "rsync_mirror_user": users[0], "rsync_mirror_group": users[0],
                "rsync_mirror_state_dir": str(base / "rsync-state"),
                "rsync_mirror_config_dir": str(base / "rsync-conf"),
                "rsync_mirror_address": "127.0.0.1", "rsync_mirror_port": free_port(),
                "rsync_mirror_booru_release": shutil.which("booru-release"), "rsync_mirror_install_packages": False,
                "seedbox_client": "transmission", "seedbox_user": users[1], "seedbox_group": users[1],
                "seedbox_state_dir": str(base / "seed-state"), "seedbox_data_dir": str(b.data),
                "seedbox_torrents_dir": str(releases[2018]["torrents"]), "seedbox_rpc_port": free_port(),
                "seedbox_rpc_password": f"rpc-secret-{TAG}-never-logged", "seedbox_peer_port": free_port(),
                "seedbox_install_packages": False, "seedbox_wait_timeout": 180,
            }  # fmt: skip
            yield b
    finally:
        for pidfile in base.glob("*/*.pid"):
            subprocess.run(["start-stop-daemon", "--stop", "--quiet", "--pidfile", str(pidfile), "--retry",
                            "TERM/10/KILL/5"], capture_output=True)  # fmt: skip
        for user in users:
            subprocess.run(["userdel", user], capture_output=True)
            subprocess.run(["groupdel", user], capture_output=True)
        shutil.rmtree(base, ignore_errors=True)


def test_roles_are_lint_clean_and_every_playbook_parses() -> None:
    folder = REPO / "ansible"
    env = {**os.environ, "ANSIBLE_CONFIG": str(folder / "ansible.cfg"), "NO_COLOR": "1"}
    for playbook in PLAYBOOKS:
        check = subprocess.run(
            ["ansible-playbook", "-i", str(folder / "inventory/example/hosts.yml"), "--syntax-check",
             str(folder / f"{playbook}.yml")], capture_output=True, text=True, env=env,
        )  # fmt: skip
        assert check.returncode == 0, check.stdout + check.stderr
    lint = subprocess.run(["ansible-lint", "--offline", "--profile", "production", "--nocolor"], cwd=folder,
                          capture_output=True, text=True, env=env, timeout=600)  # fmt: skip
    assert lint.returncode == 0 and "Passed" in lint.stdout + lint.stderr, lint.stdout[-3000:] + lint.stderr[-3000:]
    for role in ("rsync_mirror", "seedbox", "release_update", "booru_daemon"):
        defaults = (folder / "roles" / role / "defaults" / "main.yml").read_text()
        names = [line.split(":")[0] for line in defaults.splitlines() if line and line[0].isalpha()]
        assert names and all(n.startswith(role + "_") for n in names), (role, names)
        readme = (folder / "roles" / role / "README.md").read_text()
        assert all(f"`{n}`" in readme for n in names), (role, [n for n in names if f"`{n}`" not in readme])


def test_site_runs_twice_the_second_time_changing_nothing(box: Box, releases: dict[int, dict[str, Path]]) -> None:
    inventory = box.inventory()
    first = publish(inventory)
    assert first.code == 0, first.stdout[-3000:] + first.stderr[-3000:]
    host = first.json()["hosts"]["box"]
    assert host["changed"] > 0 and host["failed"] == 0
    assert int(host["stats"]["rsync_mirror"]["files_transferred"]) == sum(1 for _ in ManifestReader(
        releases[2018]["manifest"]))  # fmt: skip
    second = publish(inventory)
    assert second.code == 0, second.stdout[-3000:] + second.stderr[-3000:]
    assert second.json()["hosts"]["box"]["changed"] == 0, second.json()
    checked = publish(inventory, "--check")  # a dry run of a settled site: nothing would change, nothing fails
    assert checked.code == 0 and checked.json()["check"], checked.stdout[-3000:] + checked.stderr[-3000:]
    assert checked.json()["hosts"]["box"]["changed"] == 0, checked.stdout[-3000:]
    secret = box.variables["seedbox_rpc_password"]
    assert all(secret not in r.stdout + r.stderr for r in (first, second, checked))


def test_the_services_are_private_non_root_and_serve_the_release(
    box: Box, releases: dict[int, dict[str, Path]], tmp_path: Path
) -> None:
    site_in_place(box)
    # the RPC on 127.0.0.1 only, with a password; both daemons as their own non-root users
    assert listener(box.variables["seedbox_rpc_port"]) == "127.0.0.1"
    assert listener(box.variables["rsync_mirror_port"]) == "127.0.0.1"
    seeder = owners(box.base / "seed-state" / "booru-transmission.pid")
    mirror = owners(box.base / "rsync-state" / f"booru-rsync-{NAME}.pid")
    assert seeder != 0 and mirror != 0 and seeder != mirror
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(f"http://127.0.0.1:{box.variables['seedbox_rpc_port']}/transmission/rpc", timeout=10)
    assert refused.value.code == 401
    # every torrent checked against the synced tree, complete and seeding (status 6), asked over RPC
    torrents = rpc(box, "torrent-get", fields=["name", "percentDone", "status", "downloadedEver", "error"])["torrents"]
    assert len(torrents) == len(list(releases[2018]["torrents"].glob("*.torrent")))
    assert all(t["percentDone"] == 1 and t["status"] == 6 and t["error"] == 0 for t in torrents), torrents
    assert sum(t["downloadedEver"] for t in torrents) == 0
    # an rsync client pulls a subset from the mirror, and it verifies
    subset = tmp_path / "subset.list"
    subset.write_text("".join(releases[2018]["list"].read_text().splitlines(keepends=True)[::7]))
    url = f"rsync://127.0.0.1:{box.variables['rsync_mirror_port']}/{NAME}/"
    pull = subprocess.run(["rsync", "-rt", f"--files-from={subset}", url, str(tmp_path / "got")],
                          capture_output=True, text=True)  # fmt: skip
    assert pull.returncode == 0, pull.stderr
    assert f"{NAME} — a booru-release mirror" in pull.stdout  # the role's message of the day
    check = run_cli("verify", tmp_path / "got", "--manifest", releases[2018]["manifest"], "--files-from", subset,
                    "--json")  # fmt: skip
    assert check.code == 0 and check.json()["totals"]["OK"] == len(subset.read_text().splitlines()), check.stdout
    # and it is read-only
    (tmp_path / "intruder").write_text("x")
    push = subprocess.run(["rsync", str(tmp_path / "intruder"), url], capture_output=True, text=True)
    assert push.returncode != 0 and "read only" in push.stderr.lower(), push.stderr


def test_a_leecher_outside_loopback_downloads_a_shard_from_the_seedbox(
    box: Box, releases: dict[int, dict[str, Path]], tmp_path: Path
) -> None:
    site_in_place(box)
    # Transmission ignores 127.0.0.0/8 peers: the leecher lives in a network namespace of its own
    shard = sorted(releases[2018]["torrents"].glob("*.torrent"))[0]
    with netns_link() as link:
        result = lt_leech(shard, tmp_path / "dl", timeout=150, netns=link,
                          peer=f"{link.host}:{box.variables['seedbox_peer_port']}")  # fmt: skip
    assert result["had_pieces"] == 0 and result["downloaded"] >= load_torrent(shard).total
    listed = tmp_path / "shard.list"
    listed.write_text("".join(f"{p}\n" for p in load_torrent(shard).paths))
    check = run_cli("verify", tmp_path / "dl" / NAME, "--manifest", releases[2018]["manifest"], "--files-from",
                    listed, "--json")  # fmt: skip
    assert check.code == 0 and check.json()["totals"]["CORRUPT"] == 0, check.stdout


def test_bad_inventories_and_a_missing_data_folder_end_clearly(box: Box, tmp_path: Path) -> None:
    missing = run_cli("publish", "seedboxes", "--inventory", tmp_path / "nope.yml")
    assert missing.code == 2 and "no such inventory" in missing.stderr
    broken = tmp_path / "broken.yml"
    broken.write_text("all:\n  hosts: [unclosed\n")
    parsed = run_cli("publish", "seedboxes", "--inventory", broken)
    assert parsed.code == 2 and "inventory" in parsed.stderr and "Traceback" not in parsed.stderr, parsed.stderr
    state = tmp_path / "state"
    lost = Box(tmp_path, dict(box.variables, seedbox_data_dir=str(tmp_path / "not-there"),
                              seedbox_state_dir=str(state), seedbox_rpc_port=free_port()))  # fmt: skip
    run = run_cli("publish", "seedboxes", "--inventory", lost.inventory(), "--playbook", "seedbox")
    assert run.code == 1 and "not-there is not a folder" in run.stdout + run.stderr, run.stdout + run.stderr
    assert not state.exists() and listener(lost.variables["seedbox_rpc_port"]) is None  # nothing configured


@pytest.mark.skipif(shutil.which("qbittorrent-nox") is None, reason="needs qbittorrent-nox")
def test_qbittorrent_seedbox_runs_twice_and_seeds(box: Box, releases: dict[int, dict[str, Path]]) -> None:
    site_in_place(box)
    variables = dict(box.variables, seedbox_client="qbittorrent", seedbox_user=f"brq{TAG}", seedbox_group=f"brq{TAG}",
                     seedbox_state_dir=str(box.base / "qbt-state"), seedbox_rpc_port=free_port(),
                     seedbox_peer_port=free_port())  # fmt: skip
    inventory = Box(box.base, variables).inventory("qbt.yml")
    first = publish(inventory, "--playbook", "seedbox")
    assert first.code == 0, first.stdout[-3000:] + first.stderr[-3000:]
    second = publish(inventory, "--playbook", "seedbox")
    assert second.code == 0 and second.json()["hosts"]["box"]["changed"] == 0, second.stdout[-3000:]
    seeding = first.json()["hosts"]["box"]["stats"]["seedbox"]
    shards = len(list(releases[2018]["torrents"].glob("*.torrent")))
    assert int(seeding["seeding"]) == int(seeding["torrents"]) == shards
    assert listener(variables["seedbox_rpc_port"]) == "127.0.0.1"
    assert owners(box.base / "qbt-state" / "booru-qbittorrent.pid") != 0
    subprocess.run(["start-stop-daemon", "--stop", "--quiet", "--pidfile", str(box.base / "qbt-state" /
                    "booru-qbittorrent.pid"), "--retry", "TERM/10/KILL/5"], capture_output=True)  # fmt: skip


def test_a_wrong_rpc_password_changes_nothing(box: Box, releases: dict[int, dict[str, Path]]) -> None:
    site_in_place(box)
    before = rpc(box, "torrent-get", fields=["hashString"])["torrents"]
    wrong = {**_update_vars(box, releases, mirror=False), "release_update_rpc_password": "not-it"}
    inventory = box.inventory("wrong.yml", **wrong)
    run = run_cli("publish", "seedboxes", "--inventory", inventory, "--playbook", "update")
    assert run.code == 1 and "refused the RPC user or password" in run.stdout + run.stderr, run.stdout[-3000:]
    assert "not-it" not in run.stdout + run.stderr
    assert rpc(box, "torrent-get", fields=["hashString"])["torrents"] == before


def test_the_yearly_update_fetches_only_new_files_and_seeds_the_new_torrents(
    box: Box, dataset: Dataset, releases: dict[int, dict[str, Path]]
) -> None:
    with local_mirror(dataset.root(2019), "danbooru2019", box.base / "origin2019") as origin:
        inventory = box.inventory("update.yml", **_update_vars(box, releases), rsync_mirror_origin=origin)
        run = publish(inventory, "--playbook", "update")
    assert run.code == 0, run.stdout[-3000:] + run.stderr[-3000:]
    stats = run.json()["hosts"]["box"]["stats"]
    diff = diff_manifests(releases[2018]["manifest"], releases[2019]["manifest"])
    new = {r.path: r.size for r in ManifestReader(releases[2019]["manifest"])}
    fetched = sum(new[p] for p in [*diff.added, *diff.changed])
    assert int(stats["rsync_mirror"]["bytes_transferred"]) == fetched > 0
    update = stats["release_update"]
    assert len(update["added"]) == len(list(releases[2019]["torrents"].glob("*.torrent")))
    assert int(update["downloaded_bytes"]) == 0  # the client fetched nothing: the recheck found every piece
    torrents = rpc(box, "torrent-get", fields=["name", "percentDone", "status", "hashString"])["torrents"]
    assert len(torrents) == int(update["torrents"])
    assert all(t["percentDone"] == 1 and t["status"] == 6 for t in torrents), torrents
    report = box.base / "seed-state-settings" / "releases" / "danbooru2019" / "UPDATE.txt"
    assert "Release update to danbooru2019" in report.read_text()


def _update_vars(box: Box, releases: dict[int, dict[str, Path]], mirror: bool = True) -> dict[str, Any]:
    """update.yml's variables: the 2019 file list and manifest for the mirror, the 2019 torrents to swap in."""
    sums = releases[2019]["tarball"].parent / "SHA256SUMS"
    digest = hashlib.sha256(releases[2019]["tarball"].read_bytes()).hexdigest()
    sums.write_text(f"{digest}  {releases[2019]['tarball'].name}\n")
    pulled = {"rsync_mirror_files_from": str(releases[2019]["list"]),
              "rsync_mirror_manifest": str(releases[2019]["manifest"])} if mirror else {}  # fmt: skip
    return {
        **pulled,
        "release_update_name": "danbooru2019", "release_update_torrents": str(releases[2019]["tarball"]),
        "release_update_sha256sums": str(sums), "release_update_rpc_password": box.variables["seedbox_rpc_password"],
        "release_update_rpc_port": box.variables["seedbox_rpc_port"],
        "release_update_state_dir": box.variables["seedbox_state_dir"], "release_update_wait_timeout": 180,
    }  # fmt: skip
