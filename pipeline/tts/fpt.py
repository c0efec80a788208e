"""FPT.AI text-to-speech (API v5): northern, central and southern Vietnamese voices.

As FPT.AI documents it: ``POST https://api.fpt.ai/hmi/tts/v5`` with the text as the body
and the headers ``api_key``, ``voice``, ``speed`` (-3 slowest … +3 fastest) and ``format``
(mp3 or wav); the answer is JSON ``{"async": URL, "error": 0, "message": …, "request_id": …}``.
The audio appears at the ``async`` link after a few seconds to two minutes; until then the
link answers 404 (or 403, as S3 does for a missing object). Loa polls it every
``poll_interval_s``, at most ``poll_attempts`` times. A body must have 3 to 5,000 characters.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

import httpx

from pipeline import outbound as guarded
from pipeline.config import FptSettings, OutboundSettings
from pipeline.errors import OutboundRefused, RenderError, TransientRenderError
from pipeline.tts.base import atomic_path
from pipeline.tts.cloud import Sleep, VendorClient, read_key, write_audio

log = logging.getLogger(__name__)
MIN_CHARS, MAX_CHARS = 3, 5000
_NOT_READY = {403, 404, 409, 425}


class FptEngine:
    name = "fpt"

    def __init__(
        self,
        settings: FptSettings,
        *,
        sleep: Sleep = time.sleep,
        environ: dict[str, str] | None = None,
        outbound: OutboundSettings | None = None,
    ):
        self.settings = settings
        self._sleep = sleep
        self._environ = environ
        self._outbound = outbound or OutboundSettings()

    def identity(self) -> str:
        s = self.settings
        return f"fpt.ai tts v5 voice={s.voice} speed={s.speed} format={s.format}"

    def synthesize(self, text: str, dst: Path) -> None:
        s = self.settings
        text = text.strip()
        if len(text) < MIN_CHARS:
            raise RenderError(f"FPT.AI: {dst.name}: the text has fewer than {MIN_CHARS} characters")
        if len(text) > MAX_CHARS:
            raise RenderError(f"FPT.AI: {dst.name}: {len(text)} characters, more than {MAX_CHARS} per request")
        key = read_key(s, vendor="FPT.AI", section="fpt", environ=self._environ)
        client = VendorClient(s, vendor="FPT.AI", key=key, sleep=self._sleep, outbound=self._outbound)
        headers = {
            "api_key": key,
            "voice": s.voice,
            "speed": str(s.speed),
            "format": s.format,
            "Content-Type": "text/plain; charset=utf-8",
        }
        answer = client.request(
            "POST", s.base_url, what=f"synthesis of {dst.name}", headers=headers, content=text.encode("utf-8")
        )
        try:
            data = answer.json()
        except ValueError as exc:
            raise TransientRenderError(
                f"FPT.AI: answered without JSON for {dst.name}; the API may have changed"
            ) from exc
        if not isinstance(data, dict):
            raise TransientRenderError(f"FPT.AI: unexpected answer for {dst.name}; the API may have changed")
        if data.get("error") not in (0, "0") or not isinstance(data.get("async"), str):
            message = client.redact(str(data.get("message", "no async link")))[:160]
            raise RenderError(f"FPT.AI: refused {dst.name} (error {data.get('error')}: {message})")
        audio = self._poll(client, data["async"], dst)
        with atomic_path(dst) as tmp:
            write_audio(audio, tmp, vendor="FPT.AI", dst=dst)
        log.debug("FPT.AI spoke %d characters into %s", len(text), dst)

    def _poll(self, client: VendorClient, url: str, dst: Path) -> bytes:
        """The audio at the async link, once it is there."""
        s = self.settings
        for attempt in range(1, s.poll_attempts + 1):
            try:
                with guarded.client(self._outbound, timeout_s=s.timeout_s, follow_redirects=True) as http:
                    response = http.get(url)
            except httpx.TransportError:  # a slow or dropped poll: ask again
                response = None
            except OutboundRefused as exc:
                raise RenderError(f"FPT.AI: the audio link for {dst.name}: {exc}") from None
            if response is not None and response.status_code == 200 and response.content:
                return response.content
            if response is not None and response.status_code not in _NOT_READY and response.status_code < 500:
                raise RenderError(f"FPT.AI: the audio link for {dst.name} answered HTTP {response.status_code}")
            if attempt < s.poll_attempts:
                self._sleep(s.poll_interval_s)
        raise TransientRenderError(
            f"FPT.AI: the audio for {dst.name} was not ready after {s.poll_attempts} polls "
            f"{s.poll_interval_s:g} s apart; raise [tts.fpt] poll_attempts or let another engine speak"
        )
