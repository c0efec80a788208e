"""What the vendor adapters (FPT.AI, Viettel AI, Google Cloud) share: the key, the HTTP calls.

How failures are sorted (the engine chain lets the next engine speak on any ``RenderError``):

* no answer within ``timeout_s``, connection refused or reset, HTTP 5xx: retried ``retries``
  times with exponential backoff (``backoff_s``, 2×, 4×…, at most ``backoff_max_s``), then
  ``TransientRenderError``;
* HTTP 429 (quota or rate limit): retried after the ``Retry-After`` the vendor sent (seconds
  or an HTTP date; the backoff when absent), at most ``backoff_max_s``; then
  ``TransientRenderError`` — tomorrow's run may have quota again;
* HTTP 401/403 (bad or revoked key) and other 4xx: ``RenderError`` at once, never retried;
* no key configured: ``RenderError`` naming the variable or file to set;
* ``base_url`` (or a redirect) at a loopback, private or link-local address that ``[outbound]``
  does not allow: ``RenderError`` before anything is sent (pipeline/outbound.py).

The key is read from the environment variable ``key_env`` names, or the file ``key_file``
names; it is sent only in a header and never logged nor put in an error message (answers
that echo it are redacted).
"""

from __future__ import annotations

import email.utils
import logging
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from pipeline import outbound as guarded
from pipeline.config import CloudTtsSettings, OutboundSettings
from pipeline.errors import OutboundRefused, RenderError, TransientRenderError

log = logging.getLogger(__name__)

Sleep = Callable[[float], None]


def read_key(settings: CloudTtsSettings, *, vendor: str, section: str, environ: Mapping[str, str] | None = None) -> str:
    """The API key from ``key_file`` or the variable ``key_env`` names; a clear error if neither has it."""
    env = os.environ if environ is None else environ
    if settings.key_file is not None:
        try:
            key = settings.key_file.read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise RenderError(
                f"{vendor}: cannot read the key file {settings.key_file} ({exc.strerror}); fix [tts.{section}] key_file"
            ) from exc
        if not key:
            raise RenderError(f"{vendor}: the key file {settings.key_file} is empty")
        return key
    if settings.key_env:
        key = env.get(settings.key_env, "").strip()
        if key:
            return key
        raise RenderError(
            f"{vendor}: no API key: set the environment variable {settings.key_env} "
            f"or [tts.{section}] key_file (a file holding the key)"
        )
    raise RenderError(f"{vendor}: no API key configured; set [tts.{section}] key_env or key_file")


def looks_like_audio(head: bytes) -> bool:
    """MP3 (ID3 or a frame sync), WAV (RIFF…WAVE) or Ogg."""
    if head.startswith((b"ID3", b"OggS")) or (head.startswith(b"RIFF") and head[8:12] == b"WAVE"):
        return True
    return len(head) >= 2 and head[0] == 0xFF and head[1] & 0xE0 == 0xE0


def retry_after_s(value: str | None, *, now: float | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header: a number of seconds or an HTTP date."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


class _Retry(Exception):
    def __init__(self, reason: str, delay: float | None = None) -> None:
        super().__init__(reason)
        self.delay = delay


@dataclass(frozen=True, slots=True)
class Answer:
    status: int
    headers: httpx.Headers
    content: bytes

    def json(self) -> Any:
        import json

        return json.loads(self.content)


class VendorClient:
    """One vendor's HTTP calls with timeouts, retries, backoff and Retry-After."""

    def __init__(
        self,
        settings: CloudTtsSettings,
        *,
        vendor: str,
        key: str,
        sleep: Sleep = time.sleep,
        outbound: OutboundSettings | None = None,
    ) -> None:
        self.settings = settings
        self.outbound = outbound or OutboundSettings()
        self.vendor = vendor
        self._key = key
        self._sleep = sleep

    def redact(self, text: str) -> str:
        return text.replace(self._key, "***") if self._key else text

    def request(
        self,
        method: str,
        url: str,
        *,
        what: str,
        headers: Mapping[str, str] | None = None,
        content: bytes | None = None,
        json_body: Any = None,
    ) -> Answer:
        """Send, retrying what is worth retrying; a 2xx answer or an error."""
        s = self.settings
        attempts = s.retries + 1
        for attempt in range(1, attempts + 1):
            try:
                return self._once(method, url, what=what, headers=headers, content=content, json_body=json_body)
            except _Retry as exc:
                if attempt == attempts:
                    raise TransientRenderError(
                        f"{self.vendor}: {what}: {exc} ({attempts} attempts); "
                        "another engine speaks now; check the service, the quota or the network"
                    ) from None
                backoff = min(s.backoff_s * 2 ** (attempt - 1), s.backoff_max_s)
                delay = backoff if exc.delay is None else min(exc.delay, s.backoff_max_s)
                log.warning("%s: %s: %s; retry %d/%d in %.1f s", self.vendor, what, exc, attempt, s.retries, delay)
                self._sleep(delay)
        raise AssertionError("unreachable")  # pragma: no cover

    def _once(
        self,
        method: str,
        url: str,
        *,
        what: str,
        headers: Mapping[str, str] | None,
        content: bytes | None,
        json_body: Any,
    ) -> Answer:
        try:
            with guarded.client(self.outbound, timeout_s=self.settings.timeout_s, follow_redirects=True) as client:
                response = client.request(method, url, headers=headers, content=content, json=json_body)
        except OutboundRefused as exc:  # the address is not one Loa connects to: the next engine speaks
            raise RenderError(f"{self.vendor}: {what}: {exc}") from None
        except httpx.TimeoutException:
            raise _Retry(f"no answer within {self.settings.timeout_s:g} s") from None
        except httpx.TransportError as exc:
            raise _Retry(f"cannot connect ({self.redact(exc.__class__.__name__)})") from None
        status = response.status_code
        if 200 <= status < 300:
            return Answer(status, response.headers, response.content)
        detail = self.redact(_detail(response))
        if status == 429:
            raise _Retry(f"quota or rate limit (HTTP 429{detail})", retry_after_s(response.headers.get("Retry-After")))
        if status >= 500:
            raise _Retry(f"HTTP {status}{detail}")
        if status in (401, 403):
            raise RenderError(
                f"{self.vendor}: {what}: the key was refused (HTTP {status}{detail}); "
                "check the key in the configured variable or file"
            )
        raise RenderError(f"{self.vendor}: {what}: refused (HTTP {status}{detail})")


def _detail(response: httpx.Response) -> str:
    """A short reason from the vendor's answer, if it gave one."""
    text = response.text[:300].strip()
    try:
        data = response.json()
    except ValueError:
        return f": {' '.join(text.split())[:120]}" if text and "<" not in text[:1] else ""
    if isinstance(data, dict):
        inner = data.get("error")
        if isinstance(inner, dict):
            data = inner
        for key in ("message", "msg", "error_message", "detail"):
            if isinstance(data.get(key), str) and data[key]:
                return f": {data[key][:160]}"
    return ""


def write_audio(data: bytes, tmp: Path, *, vendor: str, dst: Path) -> None:
    """Write vendor audio, refusing bytes that are not audio."""
    if not looks_like_audio(data[:12]):
        what = "no audio" if not data else f"non-audio bytes {data[:12]!r}"
        raise TransientRenderError(f"{vendor}: answered with {what} for {dst}; the service may have changed")
    tmp.write_bytes(data)
