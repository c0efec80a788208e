"""A small threaded TCP proxy on 127.0.0.1 for fault injection.

It forwards every accepted connection to ``(host, port)`` and can misbehave the way
a mountain radio link does::

    proxy.cut_after = 300_000   # close each connection after N client→server bytes
    proxy.blackhole = True      # keep connections open but drop everything (timeouts)
    proxy.cut_all()             # close every open connection now
    proxy.rate = 1_000_000      # bytes per second per direction (a slow link)
    proxy.delay = 0.05          # added one-way latency per chunk, seconds

Settings apply to connections opened after the change (``blackhole`` at once).
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from types import TracebackType
from typing import Self

_CHUNK = 64 * 1024


class TcpProxy:
    def __init__(self, host: str, port: int) -> None:
        self.target = (host, port)
        self.cut_after: int | None = None
        self.blackhole = False
        self.rate: float | None = None
        self.delay = 0.0
        self.connections = 0
        self.bytes_up = 0  # client → server, all connections
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.host = "127.0.0.1"
        self.port: int = self._listener.getsockname()[1]
        self._open: set[socket.socket] = set()
        self._lock = threading.Lock()
        self._closed = False
        self._thread = threading.Thread(target=self._accept_loop, name="tcp-proxy", daemon=True)
        self._thread.start()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        self._closed = True
        with contextlib.suppress(OSError):
            self._listener.close()
        self.cut_all()
        self._thread.join(timeout=5)

    def cut_all(self) -> None:
        """Close every connection that is open now, as a lost link would."""
        with self._lock:
            socks, self._open = self._open, set()
        for s in socks:
            _hard_close(s)

    # --- internals --------------------------------------------------------------

    def _accept_loop(self) -> None:
        self._listener.settimeout(0.2)
        while not self._closed:
            try:
                client, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            try:
                upstream = socket.create_connection(self.target, timeout=5)
            except OSError:
                _hard_close(client)  # the target is down: the client sees a reset
                continue
            upstream.settimeout(None)
            client.settimeout(None)
            self.connections += 1
            with self._lock:
                self._open.update((client, upstream))
            budget = [self.cut_after]
            pair = (client, upstream)
            for src, dst, up in ((client, upstream, True), (upstream, client, False)):
                threading.Thread(
                    target=self._pump, args=(src, dst, up, budget, pair), name="tcp-proxy-pump", daemon=True
                ).start()

    def _pump(
        self,
        src: socket.socket,
        dst: socket.socket,
        up: bool,
        budget: list[int | None],
        pair: tuple[socket.socket, socket.socket],
    ) -> None:
        rate, delay = self.rate, self.delay
        try:
            while True:
                data = src.recv(_CHUNK)
                if not data:
                    break
                if self.blackhole:
                    continue
                if up:
                    left = budget[0]
                    if left is not None:
                        if len(data) >= left:
                            dst.sendall(data[:left])
                            self.bytes_up += left
                            break  # the link goes down in the middle of the stream
                        budget[0] = left - len(data)
                    self.bytes_up += len(data)
                if delay:
                    time.sleep(delay)
                if rate:
                    time.sleep(len(data) / rate)
                dst.sendall(data)
        except OSError:
            pass
        for s in pair:
            _hard_close(s)
        with self._lock:
            self._open.difference_update(pair)


def _hard_close(s: socket.socket) -> None:
    with contextlib.suppress(OSError):
        s.shutdown(socket.SHUT_RDWR)
    with contextlib.suppress(OSError):
        s.close()
