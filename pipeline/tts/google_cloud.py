"""Google Cloud Text-to-Speech: vi-VN neural voices (Standard, Wavenet, Neural2).

As Google documents it: ``POST https://texttospeech.googleapis.com/v1/text:synthesize``
with JSON ``{"input": {"text"}, "voice": {"languageCode", "name"}, "audioConfig":
{"audioEncoding", "speakingRate"}}``; the answer is ``{"audioContent": base64}`` (MP3, or
WAV with its header for LINEAR16). The API key goes in the ``X-Goog-Api-Key`` header, never
in the URL. Errors come as ``{"error": {"code", "message", "status"}}``: 429
RESOURCE_EXHAUSTED, 400/403 for a key that is not valid. Input is at most 5,000 bytes.
"""

from __future__ import annotations

import base64
import binascii
import logging
import time
from pathlib import Path

from pipeline.config import GoogleTtsSettings, OutboundSettings
from pipeline.errors import RenderError, TransientRenderError
from pipeline.tts.base import atomic_path
from pipeline.tts.cloud import Sleep, VendorClient, read_key, write_audio

log = logging.getLogger(__name__)
MAX_BYTES = 5000


class GoogleCloudEngine:
    name = "google"

    def __init__(
        self,
        settings: GoogleTtsSettings,
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
        return f"google-cloud-tts v1 voice={s.voice} rate={s.speaking_rate:g} encoding={s.audio_encoding}"

    def synthesize(self, text: str, dst: Path) -> None:
        s = self.settings
        if not text.strip():
            raise RenderError(f"Google Cloud TTS: nothing to say for {dst.name} (empty text)")
        if len(text.encode("utf-8")) > MAX_BYTES:
            raise RenderError(f"Google Cloud TTS: {dst.name}: more than {MAX_BYTES} bytes of text per request")
        key = read_key(s, vendor="Google Cloud TTS", section="google", environ=self._environ)
        client = VendorClient(s, vendor="Google Cloud TTS", key=key, sleep=self._sleep, outbound=self._outbound)
        body = {
            "input": {"text": text},
            "voice": {"languageCode": s.language_code, "name": s.voice},
            "audioConfig": {"audioEncoding": s.audio_encoding, "speakingRate": s.speaking_rate},
        }
        answer = client.request(
            "POST", s.base_url, what=f"synthesis of {dst.name}", headers={"X-Goog-Api-Key": key}, json_body=body
        )
        try:
            content = answer.json()["audioContent"]
            audio = base64.b64decode(content, validate=True)
        except (ValueError, KeyError, TypeError, binascii.Error) as exc:
            raise TransientRenderError(
                f"Google Cloud TTS: no audioContent for {dst.name}; the API may have changed"
            ) from exc
        with atomic_path(dst) as tmp:
            write_audio(audio, tmp, vendor="Google Cloud TTS", dst=dst)
        log.debug("Google Cloud TTS spoke %d characters into %s", len(text), dst)
