"""The pure parts behind `publish seedboxes`: the ansible-playbook command, the rsyncd.conf of an
unprivileged daemon, the module's info-hash and the qBittorrent password filter."""

from __future__ import annotations

import base64
import hashlib
import importlib.util
from pathlib import Path
from types import ModuleType

import pytest

from release.build import build_torrents
from release.errors import BadInput
from release.publish.seedboxes import PLAYBOOKS, masked, playbook_command
from release.rsync.config import DaemonSettings, render_config
from release.torrents.build import TorrentJob
from release.torrents.metainfo import load_torrent
from release.torrents.plan import TorrentSettings
from tests.conftest import REPO, Dataset


def load(relative: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(Path(relative).stem, REPO / "ansible" / relative)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_playbook_command_and_its_masked_form() -> None:
    command = playbook_command(Path("inv.yml"), "update", Path("/a"), limit="box1", check=True, tags=["x", "y"],
                               extra_vars=["seedbox_rpc_password=hunter2"])  # fmt: skip
    assert command[:4] == ["ansible-playbook", "-i", "inv.yml", "/a/update.yml"]
    assert command[command.index("--limit") + 1] == "box1" and "--check" in command
    assert command[command.index("--tags") + 1] == "x,y"
    assert "hunter2" not in " ".join(masked(command)) and "***" in masked(command)
    assert set(PLAYBOOKS) == {p.stem for p in (REPO / "ansible").glob("*.yml")}
    with pytest.raises(BadInput, match="choose one of"):
        playbook_command(Path("inv.yml"), "site.yml", Path("/a"))


def test_rsyncd_conf_for_an_unprivileged_daemon() -> None:
    settings = DaemonSettings(module="danbooru", path="/srv/d", unprivileged=True, address="127.0.0.1", port=8873,
                              lock_file="/var/lib/r/lock", motd_file="/etc/r/motd")  # fmt: skip
    text = render_config(settings)
    assert "motd file = /etc/r/motd\n" in text
    assert "use chroot = no" in text and "uid =" not in text and "gid =" not in text
    assert "address = 127.0.0.1\n" in text and "port = 8873\n" in text and "read only = yes" in text
    privileged = render_config(DaemonSettings(module="danbooru", path="/srv/d"))
    assert "use chroot = yes" in privileged and "uid = nobody" in privileged and "port =" not in privileged
    with pytest.raises(BadInput):
        render_config(DaemonSettings(module="danbooru", path="/srv/d", port=70000))
    with pytest.raises(BadInput):
        render_config(DaemonSettings(module="danbooru", path="/srv/d", address="a\nb"))


def test_the_module_finds_the_info_hash_libtorrent_finds(dataset: Dataset, tmp_path: Path) -> None:
    pytest.importorskip("ansible")
    module = load("library/booru_torrents.py")
    report = build_torrents(dataset.root(2017), TorrentJob(TorrentSettings(release="danbooru2017"), tmp_path))
    for shard in report.shards:
        data = Path(shard.file).read_bytes()
        assert module.info_hash(data) == load_torrent(Path(shard.file)).info_hash
    with pytest.raises(ValueError):
        module.info_hash(b"d4:spam4:eggse")
    with pytest.raises(ValueError):
        module.info_hash(b"not bencode")


def test_qbittorrent_password_is_pbkdf2_and_stable_per_host() -> None:
    qbittorrent_password = load("filter_plugins/booru.py").qbittorrent_password
    value = qbittorrent_password("s3cret", "box1/var/lib/seed")
    assert value == qbittorrent_password("s3cret", "box1/var/lib/seed")  # a second run renders the same file
    assert value != qbittorrent_password("s3cret", "box2/var/lib/seed")
    salt, key = (base64.b64decode(part) for part in value.removeprefix("@ByteArray(").removesuffix(")").split(":"))
    assert len(salt) == 16 and key == hashlib.pbkdf2_hmac("sha512", b"s3cret", salt, 100_000, 64)
