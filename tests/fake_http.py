"""A fake HTTP server on loopback for the far ends Loa talks to: a vendor, a portal's webhook,
a province's report or alert feed (a pytest plugin of conftest: the ``fake_http`` fixture).

``FakeHttp`` serves in a thread, records every request (``requests``: method, path, headers,
body) and answers each with ``answer(request) -> (status, headers, body)``; ``status``
and ``files`` make the usual answers. ``tls=(cert, key)`` serves HTTPS; ``port`` binds a
chosen port (to stop a receiver and start it again where it was).
"""

from __future__ import annotations

import http.server
import ssl
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest


@dataclass(frozen=True, slots=True)
class Seen:
    method: str
    path: str
    headers: httpx.Headers  # names case-insensitive
    body: bytes


Answer = Callable[[Seen], tuple[int, dict[str, str], bytes]]


def status(code: int, body: bytes = b"") -> Answer:
    """Answer every request with ``code`` and ``body``."""
    return lambda seen: (code, {}, body)


def files(root: Path) -> Answer:
    """Serve the files under ``root`` to GET (404 for anything else)."""

    def answer(seen: Seen) -> tuple[int, dict[str, str], bytes]:
        path = (root / seen.path.split("?", 1)[0].lstrip("/")).resolve()
        if seen.method != "GET" or not path.is_relative_to(root.resolve()) or not path.is_file():
            return 404, {}, b"not found"
        return 200, {"Content-Type": "application/octet-stream"}, path.read_bytes()

    return answer


class FakeHttp:
    def __init__(
        self,
        answer: Answer | None = None,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        tls: tuple[Path, Path] | None = None,
    ) -> None:
        self.requests: list[Seen] = []
        self.answer = answer or status(200, b"ok")
        me = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def _any(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                seen = Seen(
                    self.command,
                    self.path,
                    httpx.Headers(list(self.headers.items())),
                    self.rfile.read(length) if length else b"",
                )
                me.requests.append(seen)
                code, headers, body = me.answer(seen)
                try:
                    self.send_response(code)
                    for k, v in headers.items():
                        self.send_header(k, v)
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (a slow answer)

            do_GET = do_POST = do_PUT = do_DELETE = _any

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer((host, port), Handler)
        self.server.daemon_threads = True
        if tls is not None:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(*tls)
            self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
        self.host = host
        self.port: int = self.server.server_address[1]
        self.scheme = "https" if tls else "http"
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        """``scheme://host:port``, no trailing slash."""
        return f"{self.scheme}://{self.host}:{self.port}"

    @property
    def paths(self) -> list[str]:
        return [r.path for r in self.requests]

    @property
    def hosts(self) -> list[str]:
        """The Host header of each request."""
        return [r.headers.get("host", "") for r in self.requests]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def __enter__(self) -> FakeHttp:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@pytest.fixture
def fake_http() -> Iterator[FakeHttp]:
    """A ``FakeHttp`` on 127.0.0.1 answering 200 "ok" (set ``.answer`` to change that)."""
    with FakeHttp() as server:
        yield server
