"""Viettel AI text-to-speech: northern, central and southern Vietnamese voices.

As Viettel documents it: ``POST https://viettelgroup.ai/voice/api/tts/v1/rest/syn`` with the
headers ``Content-Type: application/json`` and ``token: <token>`` and the JSON body
``{"text", "voice", "id", "without_filter", "speed" (0.7–1.3), "tts_return_option"}``
(2: WAV, 3: MP3); the answer is the audio itself. Voices: doanngocle, trinhthiviettrinh,
phamtienquan, hn-quynhanh (north), hue-maingoc, hue-baoquoc (centre), lethiyen,
nguyenthithuyduyen, hcm-minhquan (south).
"""

from __future__ import annotations

import logging
import time
import uuid
from pathlib import Path

from pipeline.config import OutboundSettings, ViettelSettings
from pipeline.errors import RenderError
from pipeline.tts.base import atomic_path
from pipeline.tts.cloud import Sleep, VendorClient, looks_like_audio, read_key, write_audio

log = logging.getLogger(__name__)
RETURN_WAV = 2


class ViettelEngine:
    name = "viettel"

    def __init__(
        self,
        settings: ViettelSettings,
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
        return f"viettel-ai tts voice={s.voice} speed={s.speed:g} filter={not s.without_filter}"

    def synthesize(self, text: str, dst: Path) -> None:
        s = self.settings
        if not text.strip():
            raise RenderError(f"Viettel AI: nothing to say for {dst.name} (empty text)")
        key = read_key(s, vendor="Viettel AI", section="viettel", environ=self._environ)
        client = VendorClient(s, vendor="Viettel AI", key=key, sleep=self._sleep, outbound=self._outbound)
        body = {
            "text": text,
            "voice": s.voice,
            "id": uuid.uuid4().hex,
            "without_filter": s.without_filter,
            "speed": s.speed,
            "tts_return_option": RETURN_WAV,
        }
        answer = client.request(
            "POST", s.base_url, what=f"synthesis of {dst.name}", headers={"token": key}, json_body=body
        )
        if not looks_like_audio(answer.content[:12]):
            try:  # an error told in JSON with status 200
                data = answer.json()
                reason = str(data.get("msg") or data.get("message") or data) if isinstance(data, dict) else str(data)
            except ValueError:
                reason = f"non-audio bytes {answer.content[:12]!r}"
            raise RenderError(f"Viettel AI: no audio for {dst.name}: {client.redact(reason)[:160]}")
        with atomic_path(dst) as tmp:
            write_audio(answer.content, tmp, vendor="Viettel AI", dst=dst)
        log.debug("Viettel AI spoke %d characters into %s", len(text), dst)
