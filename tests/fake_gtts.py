"""A local HTTP server (``tests.fake_http``) that answers like Google Translate's TTS endpoint (batchexecute).

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
from typing import Any

from tests.fake_http import FakeHttp, Seen

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
        self._http = FakeHttp(self._answer)

    @property
    def base_url(self) -> str:
        return self._http.url

    def next_mode(self) -> str:
        with self._lock:
            return self.modes.pop(0) if len(self.modes) > 1 else self.modes[0]

    def __enter__(self) -> FakeGtts:
        return self

    def __exit__(self, *exc: object) -> None:
        self._http.close()

    def _answer(self, seen: Seen) -> tuple[int, dict[str, str], bytes]:
        form = urllib.parse.parse_qs(seen.body.decode())
        rpc = json.loads(form["f.req"][0])
        text = json.loads(rpc[0][0][1])[0]
        mode = self.next_mode()
        self.requests.append({"path": seen.path, "text": text, "mode": mode})
        if seen.path != PATH:
            return _send(404, b"not found", "text/plain")
        if mode == "slow":
            time.sleep(self.slow_s)
            return _send(200, rpc_answer(self.audio))
        if mode in ("429", "500", "403"):
            return _send(int(mode), b"<html>error</html>", "text/html")
        if mode == "garbage":
            return _send(200, rpc_answer(b"<html>this is not audio</html>"))
        if mode == "html":
            return _send(200, b"<html><body>Before you continue to Google</body></html>", "text/html")
        return _send(200, rpc_answer(self.audio))


def _send(
    status: int, payload: bytes, ctype: str = "application/json; charset=utf-8"
) -> tuple[int, dict[str, str], bytes]:
    return status, {"Content-Type": ctype}, payload
