"""gTTS: Google Translate's voice, online; natural but may be slow, throttled or gone.

How failures are sorted (the render chain falls back to the next engine on
``TransientRenderError``):

* no answer in time, connection refused or reset, HTTP 429, HTTP 5xx: retried
  ``retries`` times with exponential backoff (``backoff_s``, 2×, 4×…), then
  ``TransientRenderError``;
* HTTP 403 and other 4xx: Google refuses this client or request; retrying will not
  help, so ``RenderError`` at once (the chain still lets the next engine speak);
* an answer that is not audio (no audio in a 200 response, or bytes that are not MP3):
  ``TransientRenderError`` without retrying here. It usually means the service changed
  or a captive portal answered; that does not mend in seconds, but another engine can
  speak now and tomorrow's run may find gTTS working again.

``GttsSettings.base_url`` (tests only) sends the requests to another host, keeping
gTTS's own path, body and response parsing: see ``_RedirectedGtts``.
"""

from __future__ import annotations

import binascii
import importlib.metadata
import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import requests
from gtts import gTTS, gTTSError

from pipeline.config import GttsSettings
from pipeline.errors import RenderError, TransientRenderError
from pipeline.tts.base import atomic_path

log = logging.getLogger(__name__)
_GTTS_VERSION = importlib.metadata.version("gTTS")


class _RedirectedGtts(gTTS):  # type: ignore[misc]
    """gTTS whose requests go to ``base_url`` instead of translate.google.<tld>.

    gTTS builds one prepared request per text chunk in ``_prepare_requests``; only the
    scheme and host of each URL are replaced, the path and body stay gTTS's own.
    """

    def __init__(self, *args: Any, base_url: str, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._base_url = base_url.rstrip("/")

    def _prepare_requests(self) -> list[requests.PreparedRequest]:
        prepared: list[requests.PreparedRequest] = super()._prepare_requests()
        for request in prepared:
            request.prepare_url(self._base_url + urlsplit(str(request.url)).path, None)
        return prepared


def _looks_like_mp3(head: bytes) -> bool:
    return head.startswith(b"ID3") or (len(head) >= 2 and head[0] == 0xFF and head[1] & 0xE0 == 0xE0)


class GttsEngine:
    name = "gtts"

    def __init__(self, settings: GttsSettings, *, sleep: Callable[[float], None] = time.sleep) -> None:
        self.settings = settings
        self._sleep = sleep

    def identity(self) -> str:
        return f"gtts {_GTTS_VERSION} lang={self.settings.lang} tld={self.settings.tld}"

    def synthesize(self, text: str, dst: Path) -> None:
        if not text.strip():
            raise RenderError(f"gTTS: nothing to say for {dst} (empty text)")
        s = self.settings
        where = s.base_url or f"translate.google.{s.tld}"
        attempts = s.retries + 1
        for attempt in range(1, attempts + 1):
            try:
                self._once(text, dst)
                log.debug("gTTS spoke %d characters into %s (attempt %d)", len(text), dst, attempt)
                return
            except _Retry as exc:
                if attempt == attempts:
                    raise TransientRenderError(
                        f"gTTS ({where}) failed {attempts} times for {dst}: {exc}; "
                        "check the internet connection, or let espeak speak"
                    ) from exc.__cause__
                delay = s.backoff_s * 2 ** (attempt - 1)
                log.warning("gTTS (%s): %s; retry %d/%d in %.1f s", where, exc, attempt, s.retries, delay)
                self._sleep(delay)

    def _once(self, text: str, dst: Path) -> None:
        s = self.settings
        where = s.base_url or f"translate.google.{s.tld}"
        try:
            if s.base_url:
                tts = _RedirectedGtts(text, lang=s.lang, tld=s.tld, timeout=s.timeout_s, base_url=s.base_url)
            else:
                tts = gTTS(text, lang=s.lang, tld=s.tld, timeout=s.timeout_s)
        except ValueError as exc:  # unsupported language
            raise RenderError(f"gTTS: {exc}; fix [tts.gtts] lang") from exc
        with atomic_path(dst) as tmp:
            try:
                with tmp.open("wb") as f:
                    tts.write_to_fp(f)
            except gTTSError as exc:
                raise self._sorted(exc, where, dst) from exc
            except AssertionError as exc:  # gTTS asserts that some text is left to send
                raise RenderError(f"gTTS: nothing speakable for {dst} ({exc}); the text is only punctuation") from exc
            except (binascii.Error, ValueError) as exc:  # base64 that does not decode
                raise TransientRenderError(f"gTTS ({where}) answered with garbage for {dst}: {exc}") from exc
            with tmp.open("rb") as f:
                head = f.read(4)
            if not _looks_like_mp3(head):
                what = "no audio" if not head else f"non-audio bytes {head!r}"
                raise TransientRenderError(
                    f"gTTS ({where}) answered with {what} for {dst}; the service may have changed"
                )

    @staticmethod
    def _sorted(exc: gTTSError, where: str, dst: Path) -> Exception:
        response = getattr(exc, "rsp", None)
        if response is None:  # no response: timeout or connection failure
            cause = exc.__context__
            reason = "no answer in time" if isinstance(cause, requests.Timeout) else f"cannot connect ({cause})"
            return _Retry(reason)
        status = int(response.status_code)
        if status == 429 or status >= 500:
            return _Retry(f"HTTP {status} {response.reason}")
        if status == 200:
            return TransientRenderError(
                f"gTTS ({where}) answered without audio for {dst}; the service may have changed"
            )
        return RenderError(
            f"gTTS ({where}) refused the request for {dst}: HTTP {status} {response.reason}; "
            "retrying will not help — update gTTS (pip install -U gTTS) or use espeak"
        )


class _Retry(Exception):
    """A failure worth another attempt."""
