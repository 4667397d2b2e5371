"""A small fault proxy for S3: a threaded TCP proxy on 127.0.0.1 in front of the S3 server.

It forwards bytes both ways unchanged, and can break the connection the way a failing S3 endpoint does:

* :meth:`FaultProxy.cut` - reset (RST) the connection of the next ``times`` requests whose request line
  matches a regular expression (e.g. ``partNumber=2`` - mid-multipart), optionally after forwarding
  ``after_bytes`` of the request first, so the server sees half a part;
  or with ``forward=True`` after the whole request reached S3 (S3 acted on it; the answer is lost);
* :meth:`FaultProxy.down` / :meth:`FaultProxy.up` - an outage: every connection (new or open) is reset
  until :meth:`up`.

Only loopback, only for tests. It speaks no HTTP beyond finding request lines (``METHOD /path HTTP/1.1``)
in the client's byte stream, which is enough for botocore's keep-alive connections.
"""

from __future__ import annotations

import contextlib
import re
import socket
import struct
import threading
from dataclasses import dataclass

_REQUEST_LINE = re.compile(rb"(?:GET|PUT|POST|DELETE|HEAD) \S+ HTTP/1\.[01]\r\n")


@dataclass
class CutRule:
    pattern: re.Pattern[bytes]
    times: int
    after_bytes: int = 0
    forward: bool = False
    fired: int = 0


def _reset(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    with contextlib.suppress(OSError):
        sock.close()


class FaultProxy:
    """Forward ``127.0.0.1:<port>`` to ``upstream`` (``host, port``), with injectable faults."""

    def __init__(self, upstream: tuple[str, int]) -> None:
        self.upstream = upstream
        self._server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._server.bind(("127.0.0.1", 0))
        self._server.listen(64)
        self.port = int(self._server.getsockname()[1])
        self._lock = threading.Lock()
        self._rules: list[CutRule] = []
        self._down = False
        self._open: set[socket.socket] = set()
        self._closed = threading.Event()
        self.requests: list[bytes] = []
        self.cuts = 0
        self._thread = threading.Thread(target=self._accept, name="s3-fault-proxy", daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    # --- control ------------------------------------------------------------------------------------
    def cut(self, pattern: str, *, times: int = 1, after_bytes: int = 0, forward: bool = False) -> CutRule:
        """Reset the next ``times`` matching requests' connections. ``forward``: pass the request's bytes
        on first (the server acts on it; the client never sees the answer)."""
        rule = CutRule(re.compile(pattern.encode()), times, after_bytes, forward)
        with self._lock:
            self._rules.append(rule)
        return rule

    def clear(self) -> None:
        with self._lock:
            self._rules.clear()

    def down(self) -> None:
        """Start an outage: reset every open connection and every new one."""
        with self._lock:
            self._down = True
            sockets, self._open = set(self._open), set()
        for sock in sockets:
            _reset(sock)

    def up(self) -> None:
        with self._lock:
            self._down = False

    def close(self) -> None:
        self._closed.set()
        with contextlib.suppress(OSError):
            self._server.close()
        self.down()

    # --- plumbing -----------------------------------------------------------------------------------
    def _accept(self) -> None:
        while not self._closed.is_set():
            try:
                client, _ = self._server.accept()
            except OSError:
                return
            with self._lock:
                down = self._down
            if down:
                _reset(client)
                continue
            try:
                upstream = socket.create_connection(self.upstream, timeout=10)
                upstream.settimeout(None)
            except OSError:
                _reset(client)
                continue
            with self._lock:
                self._open.update({client, upstream})
            threading.Thread(target=self._pump_requests, args=(client, upstream), daemon=True).start()
            threading.Thread(target=self._pump, args=(upstream, client), daemon=True).start()

    def _match(self, data: bytes) -> CutRule | None:
        lines = _REQUEST_LINE.findall(data)
        with self._lock:
            self.requests.extend(lines)
            for line in lines:
                for rule in self._rules:
                    if rule.times > 0 and rule.pattern.search(line):
                        rule.times -= 1
                        rule.fired += 1
                        self.cuts += 1
                        return rule
        return None

    def _drop(self, *socks: socket.socket) -> None:
        with self._lock:
            self._open.difference_update(socks)
        for sock in socks:
            _reset(sock)

    def _pump_requests(self, src: socket.socket, dst: socket.socket) -> None:
        """Client -> S3, watching request lines for cut rules."""
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                rule = self._match(data)
                if rule is not None:
                    if rule.forward or rule.after_bytes:
                        dst.sendall(data if rule.forward else data[: rule.after_bytes])
                    if rule.forward:  # let the server read and act on it before the cut
                        with contextlib.suppress(OSError):
                            dst.settimeout(2)
                            dst.recv(65536)
                    self._drop(src, dst)
                    return
                dst.sendall(data)
        except OSError:
            pass
        self._drop(src, dst)

    def _pump(self, src: socket.socket, dst: socket.socket) -> None:
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                dst.sendall(data)
        except OSError:
            pass
        self._drop(src, dst)
