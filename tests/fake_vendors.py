"""Local HTTP servers that answer as FPT.AI, Viettel AI and Google Cloud TTS document.

One server serves all three paths (below); each request takes the next mode from
``modes`` (the last repeats): ``success``, ``429`` (with ``Retry-After: retry_after``),
``500``, ``badkey`` (answered as the vendor answers a key it does not know, also when the
key sent is not ``key``), ``slow`` (sleeps ``slow_s`` then succeeds), ``notaudio``.
FPT.AI answers with an ``async`` link that is 404 for ``pending_polls`` GETs, then the audio.
"""

from __future__ import annotations

import base64
import json
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

FPT_PATH = "/hmi/tts/v5"
VIETTEL_PATH = "/voice/api/tts/v1/rest/syn"
GOOGLE_PATH = "/v1/text:synthesize"


class FakeVendors:
    def __init__(self, *, mp3: bytes, wav: bytes, key: str, slow_s: float = 1.0) -> None:
        self.mp3, self.wav, self.key, self.slow_s = mp3, wav, key, slow_s
        self.modes: list[str] = ["success"]
        self.retry_after = "7"
        self.pending_polls = 2
        self.requests: list[dict[str, Any]] = []
        self.polls: dict[str, int] = {}
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True)

    @property
    def base_url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def url(self, path: str) -> str:
        return self.base_url + path

    def next_mode(self) -> str:
        with self._lock:
            return self.modes.pop(0) if len(self.modes) > 1 else self.modes[0]

    def __enter__(self) -> FakeVendors:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()


def _handler(fake: FakeVendors) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass

        def _send(self, status: int, body: bytes, ctype: str, headers: dict[str, str] | None = None) -> None:
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            for k, v in (headers or {}).items():
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(body)

        def _json(self, status: int, data: Any, headers: dict[str, str] | None = None) -> None:
            self._send(status, json.dumps(data).encode(), "application/json", headers)

        def do_GET(self) -> None:  # FPT.AI's async audio link
            with fake._lock:
                seen = fake.polls.get(self.path, 0)
                fake.polls[self.path] = seen + 1
            if not self.path.startswith("/audio/"):
                return self._send(404, b"no such object", "text/plain")
            if seen < fake.pending_polls:
                return self._send(404, b"<Error><Code>NoSuchKey</Code></Error>", "application/xml")
            return self._send(200, fake.mp3, "audio/mpeg")

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            mode = fake.next_mode()
            sent_key = {FPT_PATH: "api_key", VIETTEL_PATH: "token", GOOGLE_PATH: "X-Goog-Api-Key"}.get(self.path)
            record = {"path": self.path, "mode": mode, "headers": dict(self.headers), "body": body}
            fake.requests.append(record)
            if sent_key is None:
                return self._send(404, b"not found", "text/plain")
            if mode == "slow":
                time.sleep(fake.slow_s)
            if mode == "badkey" or self.headers.get(sent_key) != fake.key:
                return self._bad_key()
            if mode == "429":
                return self._quota()
            if mode == "500":
                return self._json(500, {"error": {"code": 500, "message": "internal", "status": "INTERNAL"}})
            if self.path == FPT_PATH:
                record["text"] = body.decode("utf-8")
                if mode == "notaudio":
                    return self._json(200, {"error": 1, "message": "Text too short", "async": None})
                link = f"{fake.base_url}/audio/{uuid.uuid4().hex}.mp3"
                return self._json(
                    200,
                    {
                        "async": link,
                        "error": 0,
                        "message": "The content will be returned after a few seconds under the async link.",
                        "request_id": uuid.uuid4().hex,
                    },
                )
            data = json.loads(body)
            record["json"] = data
            if self.path == VIETTEL_PATH:
                if mode == "notaudio":
                    return self._json(200, {"code": 400, "msg": "voice not found"})
                return self._send(200, fake.wav, "audio/wav")
            if mode == "notaudio":
                return self._json(200, {"audioContent": base64.b64encode(b"<html>not audio</html>").decode()})
            return self._json(200, {"audioContent": base64.b64encode(fake.mp3).decode()})

        def _bad_key(self) -> None:
            if self.path == GOOGLE_PATH:
                return self._json(
                    400,
                    {
                        "error": {
                            "code": 400,
                            "message": "API key not valid. Please pass a valid API key.",
                            "status": "INVALID_ARGUMENT",
                        }
                    },
                )
            if self.path == VIETTEL_PATH:
                return self._json(401, {"code": 401, "msg": "token is invalid"})
            return self._json(401, {"error": 401, "message": "Invalid API key"})

        def _quota(self) -> None:
            headers = {"Retry-After": fake.retry_after}
            if self.path == GOOGLE_PATH:
                return self._json(
                    429, {"error": {"code": 429, "message": "Quota exceeded", "status": "RESOURCE_EXHAUSTED"}}, headers
                )
            return self._json(429, {"message": "Quota exceeded"}, headers)

    return Handler
