#!/usr/bin/python
"""Ansible module: the torrents a seeding client (Transmission or qBittorrent-nox) carries, through its RPC."""

from __future__ import annotations

DOCUMENTATION = r"""
module: booru_torrents
short_description: Make a torrent client carry exactly a release's torrents, seeding from a data folder
description:
  - Talks to Transmission's RPC or qBittorrent's WebUI API on the host it runs on.
  - Adds the listed .torrent files that the client lacks (data folder as given), optionally removes the
    torrents not listed (never their data), optionally waits until every listed torrent is checked and
    complete, and reports each torrent's state. Without torrents it only checks the RPC (a handshake).
options:
  client: {description: transmission or qbittorrent, type: str, choices: [transmission, qbittorrent], required: true}
  url: {description: "RPC base URL, e.g. http://127.0.0.1:9091", type: str, required: true}
  username: {description: RPC user, type: str, required: true}
  password: {description: RPC password (never logged), type: str, required: true, no_log: true}
  torrents: {description: .torrent files on the host, type: list, elements: path, default: []}
  download_dir: {description: the data folder the torrents' files are in, type: path}
  exclusive: {description: remove torrents that are not listed (their data stays), type: bool, default: false}
  wait: {description: wait until every listed torrent is checked and complete, type: bool, default: false}
  timeout: {description: seconds to wait for the RPC and for completion, type: int, default: 600}
author: booru-release
"""

EXAMPLES = r"""
- name: Seed the release
  booru_torrents:
    client: transmission
    url: http://127.0.0.1:9091
    username: seeder
    password: "{{ seedbox_rpc_password }}"
    torrents: "{{ found.files | map(attribute='path') | list }}"
    download_dir: /srv/danbooru2019
    wait: true
  no_log: true
"""

RETURN = r"""
added: {description: names of the torrents added, type: list, returned: always}
removed: {description: names of the torrents removed (data kept), type: list, returned: always}
torrents: {description: "every torrent: name, hash, percent, state, downloaded bytes", type: list, returned: always}
incomplete: {description: listed torrents not complete when waiting stopped, type: list, returned: always}
"""

import base64
import hashlib
import http.cookiejar
import json
import os
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid

from ansible.module_utils.basic import AnsibleModule


class RpcError(Exception):
    """The client could not be reached, refused the credentials or answered an error."""


def info_hash(data):
    """SHA-1 of the bencoded info dictionary (v1), found by walking the bencode. (Ansible runs this module on
    the seedbox, where booru-release need not be installed: release.bencode is not importable there.)"""
    if data[:1] != b"d":
        raise ValueError("not a bencoded dictionary")
    pos = 1
    while data[pos : pos + 1] != b"e":
        key, pos = _string(data, pos)
        end = _skip(data, pos)
        if key == b"info":
            return hashlib.sha1(data[pos:end]).hexdigest()
        pos = end
    raise ValueError("no info dictionary")


def _string(data, pos):
    colon = data.index(b":", pos)
    length = int(data[pos:colon])
    return data[colon + 1 : colon + 1 + length], colon + 1 + length


def _skip(data, pos):
    kind = data[pos : pos + 1]
    if kind == b"i":
        return data.index(b"e", pos) + 1
    if kind in (b"l", b"d"):
        pos += 1
        while data[pos : pos + 1] != b"e":
            pos = _skip(data, pos)
        return pos + 1
    if kind.isdigit():
        return _string(data, pos)[1]
    raise ValueError("bad bencode at byte %d" % pos)


class Transmission:
    """Transmission's JSON RPC (basic auth, X-Transmission-Session-Id handshake)."""

    FIELDS = ["hashString", "name", "percentDone", "status", "error", "errorString", "downloadedEver",
              "recheckProgress", "downloadDir"]

    def __init__(self, url, username, password, timeout):
        self.url = url.rstrip("/") + "/transmission/rpc"
        token = base64.b64encode(("%s:%s" % (username, password)).encode()).decode()
        self.headers = {"Authorization": "Basic " + token, "Content-Type": "application/json"}
        self.timeout = timeout

    def call(self, method, **arguments):
        body = json.dumps({"method": method, "arguments": arguments}).encode()
        for _ in range(3):
            request = urllib.request.Request(self.url, data=body, headers=self.headers, method="POST")
            try:
                with urllib.request.urlopen(request, timeout=self.timeout) as answer:
                    reply = json.loads(answer.read())
            except urllib.error.HTTPError as exc:
                if exc.code == 409:  # the handshake: take the session id and ask again
                    self.headers["X-Transmission-Session-Id"] = exc.headers.get("X-Transmission-Session-Id", "")
                    continue
                if exc.code == 401:
                    raise RpcError("Transmission refused the RPC user or password (401)")
                raise RpcError("Transmission answered %d %s" % (exc.code, exc.reason))
            except (urllib.error.URLError, OSError) as exc:
                raise RpcError("cannot reach Transmission's RPC at %s: %s" % (self.url, exc))
            if reply.get("result") != "success":
                raise RpcError("Transmission: %s: %s" % (method, reply.get("result")))
            return reply.get("arguments", {})
        raise RpcError("Transmission kept refusing the session id")

    def list(self):
        out = []
        for t in self.call("torrent-get", fields=self.FIELDS)["torrents"]:
            checking = t["status"] in (1, 2)  # queued to check, checking
            state = "checking" if checking else "error" if t["error"] else {0: "stopped", 5: "queued",
                                                                               6: "seeding"}.get(t["status"], "downloading")
            out.append({"hash": t["hashString"], "name": t["name"], "percent": round(100 * t["percentDone"], 2),
                        "state": state, "downloaded": t["downloadedEver"], "error": t["errorString"],
                        "download_dir": t["downloadDir"]})
        return out

    def add(self, data, download_dir):
        reply = self.call("torrent-add", metainfo=base64.b64encode(data).decode(), paused=False,
                          **({"download-dir": download_dir} if download_dir else {}))
        if "torrent-duplicate" in reply:
            return
        self.call("torrent-start", ids=[reply["torrent-added"]["hashString"]])

    def remove(self, torrent_hash):
        self.call("torrent-remove", ids=[torrent_hash], **{"delete-local-data": False})


class QBittorrent:
    """qBittorrent's WebUI API v2 (cookie session; Referer for its CSRF check)."""

    def __init__(self, url, username, password, timeout):
        self.url = url.rstrip("/")
        self.timeout = timeout
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))
        answer = self.request("/api/v2/auth/login", {"username": username, "password": password})
        if answer.strip() != b"Ok.":
            raise RpcError("qBittorrent refused the WebUI user or password")

    def request(self, path, form=None, files=None):
        headers = {"Referer": self.url}
        body = None
        if files:
            boundary = uuid.uuid4().hex
            parts = []
            for name, value in (form or {}).items():
                parts.append(('--%s\r\nContent-Disposition: form-data; name="%s"\r\n\r\n%s\r\n'
                              % (boundary, name, value)).encode())
            for name, (filename, data) in files.items():
                parts.append(('--%s\r\nContent-Disposition: form-data; name="%s"; filename="%s"\r\n'
                              "Content-Type: application/x-bittorrent\r\n\r\n" % (boundary, name, filename)).encode()
                             + data + b"\r\n")
            body = b"".join(parts) + ("--%s--\r\n" % boundary).encode()
            headers["Content-Type"] = "multipart/form-data; boundary=" + boundary
        elif form is not None:
            body = urllib.parse.urlencode(form).encode()
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        request = urllib.request.Request(self.url + path, data=body, headers=headers)
        try:
            with self.opener.open(request, timeout=self.timeout) as answer:
                return answer.read()
        except urllib.error.HTTPError as exc:
            if exc.code in (401, 403):
                raise RpcError("qBittorrent refused the request (%d): wrong WebUI user or password?" % exc.code)
            raise RpcError("qBittorrent answered %d %s on %s" % (exc.code, exc.reason, path))
        except (urllib.error.URLError, OSError) as exc:
            raise RpcError("cannot reach qBittorrent's WebUI at %s: %s" % (self.url, exc))

    def list(self):
        out = []
        for t in json.loads(self.request("/api/v2/torrents/info")):
            raw = t["state"]
            state = ("checking" if raw.startswith("checking") or raw in ("moving", "allocating", "metaDL")
                     else "error" if raw in ("error", "missingFiles")
                     else "seeding" if raw in ("uploading", "stalledUP", "forcedUP", "queuedUP")
                     else "stopped" if raw.startswith("paused") or raw.startswith("stopped") else "downloading")
            out.append({"hash": t["hash"], "name": t["name"], "percent": round(100 * t["progress"], 2),
                        "state": state, "downloaded": t.get("downloaded", 0), "error": raw if state == "error" else "",
                        "download_dir": t.get("save_path", "")})
        return out

    def add(self, data, download_dir):
        form = {"paused": "false", "skip_checking": "false", "root_folder": "true", "contentLayout": "Original"}
        if download_dir:
            form["savepath"] = download_dir
        answer = self.request("/api/v2/torrents/add", form, {"torrents": ("release.torrent", data)})
        if answer.strip() not in (b"Ok.", b""):
            raise RpcError("qBittorrent did not take the torrent: %s" % answer[:200].decode("utf-8", "replace"))

    def remove(self, torrent_hash):
        self.request("/api/v2/torrents/delete", {"hashes": torrent_hash, "deleteFiles": "false"})


def connect(params):
    kind = Transmission if params["client"] == "transmission" else QBittorrent
    deadline = time.monotonic() + params["timeout"]
    while True:  # a daemon just started may take a moment to open its RPC
        try:
            return kind(params["url"], params["username"], params["password"], params["timeout"])
        except RpcError as exc:
            if "refused the" in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.5)


def run(module):
    params = module.params
    wanted = {}
    for path in params["torrents"]:
        try:
            with open(path, "rb") as handle:
                data = handle.read()
            wanted[info_hash(data)] = (os.path.basename(path), data)
        except (OSError, ValueError) as exc:
            module.fail_json(msg="%s: not a readable .torrent file: %s" % (path, exc))
    client = connect(params)
    if isinstance(client, Transmission):
        client.call("session-get")  # the RPC handshake: auth and session id
    have = {t["hash"]: t for t in client.list()}
    add = [h for h in wanted if h not in have]
    remove = [h for h in have if h not in wanted] if params["exclusive"] else []
    result = {"changed": bool(add or remove), "added": [wanted[h][0] for h in add],
              "removed": [have[h]["name"] for h in remove]}
    if not module.check_mode:
        for h in remove:
            client.remove(h)
        for h in add:
            client.add(wanted[h][1], params["download_dir"])
    torrents = client.list()
    deadline = time.monotonic() + params["timeout"]
    while params["wait"] and not module.check_mode:
        listed = [t for t in torrents if t["hash"] in wanted]
        if len(listed) == len(wanted) and all(t["percent"] >= 100 and t["state"] == "seeding" for t in listed):
            break
        if any(t["state"] == "error" for t in listed) or time.monotonic() > deadline:
            break
        time.sleep(1)
        torrents = client.list()
    result["torrents"] = torrents
    result["incomplete"] = [t for t in torrents if t["hash"] in wanted and (t["percent"] < 100 or t["state"] != "seeding")]
    if params["wait"] and not module.check_mode and result["incomplete"]:
        module.fail_json(msg="%d torrent(s) not complete and seeding: %s" % (len(result["incomplete"]), ", ".join(
            "%s (%s%%, %s%s)" % (t["name"], t["percent"], t["state"], ": " + t["error"] if t["error"] else "")
            for t in result["incomplete"][:5])), **result)
    module.exit_json(**result)


def main():
    module = AnsibleModule(
        argument_spec={
            "client": {"type": "str", "required": True, "choices": ["transmission", "qbittorrent"]},
            "url": {"type": "str", "required": True},
            "username": {"type": "str", "required": True},
            "password": {"type": "str", "required": True, "no_log": True},
            "torrents": {"type": "list", "elements": "path", "default": []},
            "download_dir": {"type": "path"},
            "exclusive": {"type": "bool", "default": False},
            "wait": {"type": "bool", "default": False},
            "timeout": {"type": "int", "default": 600},
        },
        supports_check_mode=True,
    )
    try:
        run(module)
    except RpcError as exc:
        module.fail_json(msg=str(exc))


if __name__ == "__main__":
    main()
