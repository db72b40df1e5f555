"""A small HTTP proxy on 127.0.0.1 that spoils a share of requests: resets, 500s, 503 SlowDown, stalls, and
request bodies with a flipped byte (which the server must refuse by their Content-MD5).

One request per connection (it answers `Connection: close`), so every request meets its own fate. The
fates are drawn from a seeded random generator; `counts` says what happened.
"""

from __future__ import annotations

import random
import socket
import threading
from collections import Counter
from contextlib import closing

FATES = ("forward", "reset", "error500", "slowdown", "stall", "corrupt")


class FaultProxy:
    """Forwards to `target` (host, port); a share `rate` of requests get a fate other than forward."""

    def __init__(
        self,
        target: tuple[str, int],
        rate: float,
        seed: int = 1,
        stall: float = 3.0,
        conditional: bool = True,
        delay: float = 0.0,
    ) -> None:
        """`conditional=False`: play a server without conditional writes (501 to If-None-Match/If-Match);
        `delay`: seconds every forwarded request waits first (a slow link, so a run can be caught midway)."""
        self.target, self.rate, self.stall, self.conditional = target, rate, stall, conditional
        self.delay = delay
        self.rng = random.Random(seed)
        self.counts: Counter[str] = Counter()
        self.lock = threading.Lock()
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port = self.server.getsockname()[1]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)

    def __enter__(self) -> FaultProxy:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self.server.close()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                client, _ = self.server.accept()
            except OSError:
                return
            threading.Thread(target=self._handle, args=(client,), daemon=True).start()

    def _fate(self) -> str:
        with self.lock:
            fate = "forward" if self.rng.random() >= self.rate else self.rng.choice(FATES[1:])
            self.counts[fate] += 1
            return fate

    def _handle(self, client: socket.socket) -> None:
        with closing(client):
            request = _read_request(client)
            if request is None:
                return
            head = request.partition(b"\r\n\r\n")[0].lower()
            if b"\r\nif-none-match:" in head or b"\r\nif-match:" in head:
                with self.lock:
                    self.counts["conditional"] += 1
                if not self.conditional:
                    body = b"<Error><Code>NotImplemented</Code><Message>A header you provided implies functionality "
                    body += b"that is not implemented</Message></Error>"
                    answer = f"HTTP/1.1 501 Not Implemented\r\nContent-Length: {len(body)}\r\nConnection: close\r\n\r\n"
                    client.sendall(answer.encode() + body)
                    return
            fate = self._fate()
            if fate == "reset":
                client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
                return
            if fate in ("error500", "slowdown"):
                code, text, error = (500, "Internal Server Error", "InternalError") if fate == "error500" else (
                    503, "Slow Down", "SlowDown")  # fmt: skip
                body = f"<Error><Code>{error}</Code><Message>injected</Message></Error>".encode()
                head = f"HTTP/1.1 {code} {text}\r\nContent-Length: {len(body)}\r\nConnection: close\r\n\r\n"
                client.sendall(head.encode() + body)
                return
            if fate == "stall":
                self._stop.wait(self.stall)
                return
            if fate == "corrupt":
                head, _, body = request.partition(b"\r\n\r\n")
                if body:
                    flipped = bytearray(body)
                    flipped[len(flipped) // 2] ^= 0x01
                    request = head + b"\r\n\r\n" + bytes(flipped)
            self._forward(client, request)

    def _forward(self, client: socket.socket, request: bytes) -> None:
        if self.delay:
            self._stop.wait(self.delay)
        head, _, body = request.partition(b"\r\n\r\n")
        lines = [line for line in head.split(b"\r\n") if not line.lower().startswith(b"connection:")]
        request = b"\r\n".join([*lines, b"Connection: close"]) + b"\r\n\r\n" + body
        with closing(socket.create_connection(self.target)) as upstream:
            upstream.sendall(request)
            while chunk := upstream.recv(1 << 16):
                client.sendall(chunk)


def _read_request(sock: socket.socket) -> bytes | None:
    """One whole HTTP request (head and Content-Length body)."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(1 << 16)
        if not chunk:
            return None
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value.strip())
    while len(body) < length:
        chunk = sock.recv(1 << 16)
        if not chunk:
            return None
        body += chunk
    return head + b"\r\n\r\n" + body
