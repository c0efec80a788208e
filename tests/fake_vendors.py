"""A local HTTP server (``tests.fake_http``) that answers as FPT.AI, Viettel AI and Google Cloud TTS document.

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
from typing import Any

from tests.fake_http import FakeHttp, Seen

FPT_PATH = "/hmi/tts/v5"
VIETTEL_PATH = "/voice/api/tts/v1/rest/syn"
GOOGLE_PATH = "/v1/text:synthesize"


Answer = tuple[int, dict[str, str], bytes]


class FakeVendors:
    def __init__(self, *, mp3: bytes, wav: bytes, key: str, slow_s: float = 1.0) -> None:
        self.mp3, self.wav, self.key, self.slow_s = mp3, wav, key, slow_s
        self.modes: list[str] = ["success"]
        self.retry_after = "7"
        self.pending_polls = 2
        self.requests: list[dict[str, Any]] = []
        self.polls: dict[str, int] = {}
        self._lock = threading.Lock()
        self._http = FakeHttp(self._answer)

    @property
    def base_url(self) -> str:
        return self._http.url

    def url(self, path: str) -> str:
        return self.base_url + path

    def next_mode(self) -> str:
        with self._lock:
            return self.modes.pop(0) if len(self.modes) > 1 else self.modes[0]

    def __enter__(self) -> FakeVendors:
        return self

    def __exit__(self, *exc: object) -> None:
        self._http.close()

    def _answer(self, seen: Seen) -> Answer:
        return self._get(seen) if seen.method == "GET" else self._post(seen)

    def _get(self, seen: Seen) -> Answer:  # FPT.AI's async audio link
        with self._lock:
            count = self.polls.get(seen.path, 0)
            self.polls[seen.path] = count + 1
        if not seen.path.startswith("/audio/"):
            return _send(404, b"no such object", "text/plain")
        if count < self.pending_polls:
            return _send(404, b"<Error><Code>NoSuchKey</Code></Error>", "application/xml")
        return _send(200, self.mp3, "audio/mpeg")

    def _post(self, seen: Seen) -> Answer:
        path, body = seen.path, seen.body
        mode = self.next_mode()
        sent_key = {FPT_PATH: "api_key", VIETTEL_PATH: "token", GOOGLE_PATH: "X-Goog-Api-Key"}.get(path)
        record = {"path": path, "mode": mode, "headers": seen.headers, "body": body}
        self.requests.append(record)
        if sent_key is None:
            return _send(404, b"not found", "text/plain")
        if mode == "slow":
            time.sleep(self.slow_s)
        if mode == "badkey" or seen.headers.get(sent_key) != self.key:
            return _bad_key(path)
        if mode == "429":
            return self._quota(path)
        if mode == "500":
            return _json(500, {"error": {"code": 500, "message": "internal", "status": "INTERNAL"}})
        if path == FPT_PATH:
            record["text"] = body.decode("utf-8")
            if mode == "notaudio":
                return _json(200, {"error": 1, "message": "Text too short", "async": None})
            link = f"{self.base_url}/audio/{uuid.uuid4().hex}.mp3"
            return _json(
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
        if path == VIETTEL_PATH:
            if mode == "notaudio":
                return _json(200, {"code": 400, "msg": "voice not found"})
            return _send(200, self.wav, "audio/wav")
        if mode == "notaudio":
            return _json(200, {"audioContent": base64.b64encode(b"<html>not audio</html>").decode()})
        return _json(200, {"audioContent": base64.b64encode(self.mp3).decode()})

    def _quota(self, path: str) -> Answer:
        headers = {"Retry-After": self.retry_after}
        if path == GOOGLE_PATH:
            return _json(
                429, {"error": {"code": 429, "message": "Quota exceeded", "status": "RESOURCE_EXHAUSTED"}}, headers
            )
        return _json(429, {"message": "Quota exceeded"}, headers)


def _send(status: int, body: bytes, ctype: str, headers: dict[str, str] | None = None) -> Answer:
    return status, {"Content-Type": ctype, **(headers or {})}, body


def _json(status: int, data: Any, headers: dict[str, str] | None = None) -> Answer:
    return _send(status, json.dumps(data).encode(), "application/json", headers)


def _bad_key(path: str) -> Answer:
    if path == GOOGLE_PATH:
        return _json(
            400,
            {
                "error": {
                    "code": 400,
                    "message": "API key not valid. Please pass a valid API key.",
                    "status": "INVALID_ARGUMENT",
                }
            },
        )
    if path == VIETTEL_PATH:
        return _json(401, {"code": 401, "msg": "token is invalid"})
    return _json(401, {"error": 401, "message": "Invalid API key"})
