"""A local HTTP server that answers like Google Translate's TTS endpoint (batchexecute).

gTTS posts ``f.req=[[["jQ1olc","[\\"text\\",\\"vi\\",null,\\"null\\"]",null,"generic"]]]`` to
``/_/TranslateWebserverUi/data/batchexecute`` and looks for a line holding
``jQ1olc","[\\"<base64 mp3>\\"]``. Modes, taken one per request (the last repeats):
``success``, ``slow`` (sleeps ``slow_s``), ``429``, ``500``, ``403``, ``garbage``
(base64 of bytes that are not audio) and ``html`` (a page with no audio at all).
"""

from __future__ import annotations

import base64
import json
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

PATH = "/_/TranslateWebserverUi/data/batchexecute"


def rpc_answer(audio: bytes) -> bytes:
    """The body Google sends back: an anti-JSON prefix, then length-prefixed chunks."""
    inner = json.dumps([base64.b64encode(audio).decode("ascii")], separators=(",", ":"))
    row = json.dumps([["wrb.fr", "jQ1olc", inner, None, None, None, "generic"]], separators=(",", ":"))
    tail = json.dumps([["e", 4, None, None, len(row)]], separators=(",", ":"))
    return f")]}}'\n\n{len(row)}\n{row}\n{len(tail)}\n{tail}\n".encode()


class FakeGtts:
    def __init__(self, audio: bytes, *, slow_s: float = 2.0) -> None:
        self.audio = audio
        self.slow_s = slow_s
        self.modes: list[str] = ["success"]
        self.requests: list[dict[str, Any]] = []  # path and spoken text of each request
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True)

    @property
    def base_url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def next_mode(self) -> str:
        with self._lock:
            return self.modes.pop(0) if len(self.modes) > 1 else self.modes[0]

    def __enter__(self) -> FakeGtts:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()


def _handler(fake: FakeGtts) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:  # quiet
            pass

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", 0))).decode()
            form = urllib.parse.parse_qs(body)
            rpc = json.loads(form["f.req"][0])
            text = json.loads(rpc[0][0][1])[0]
            mode = fake.next_mode()
            fake.requests.append({"path": self.path, "text": text, "mode": mode})
            if self.path != PATH:
                return self._send(404, b"not found", "text/plain")
            if mode == "slow":
                time.sleep(fake.slow_s)
                return self._send(200, rpc_answer(fake.audio))
            if mode in ("429", "500", "403"):
                return self._send(int(mode), b"<html>error</html>", "text/html")
            if mode == "garbage":
                return self._send(200, rpc_answer(b"<html>this is not audio</html>"))
            if mode == "html":
                return self._send(200, b"<html><body>Before you continue to Google</body></html>", "text/html")
            return self._send(200, rpc_answer(fake.audio))

        def _send(self, status: int, payload: bytes, ctype: str = "application/json; charset=utf-8") -> None:
            try:
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client gave up (slow mode)

    return Handler
