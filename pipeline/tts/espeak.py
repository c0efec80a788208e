"""espeak-ng, offline: always there, robotic but clear."""

from __future__ import annotations

import logging
import re
import subprocess
from pathlib import Path

from pipeline.config import EspeakSettings
from pipeline.errors import RenderError, TransientRenderError
from pipeline.tts.base import atomic_path

log = logging.getLogger(__name__)

#: The espeak-ng voice for each Vietnamese variant when the settings keep the default.
VARIANT_VOICES = {"north": "vi", "south": "vi-vn-x-south"}
_VERSION_RE = re.compile(r"\b\d+\.\d+(?:\.\d+)?\b")


class EspeakEngine:
    """Runs ``espeak-ng -v VOICE -s RATE -p PITCH -w OUT --stdin``; the text goes by stdin."""

    name = "espeak"

    def __init__(self, settings: EspeakSettings, *, variant: str = "north") -> None:
        self.settings = settings
        self.voice = VARIANT_VOICES.get(variant, "vi") if settings.voice == "vi" else settings.voice
        self._version: str | None = None

    def identity(self) -> str:
        s = self.settings
        gap = f" gap={s.word_gap}" if s.word_gap else ""  # absent at 0: existing cache keys stay valid
        return f"espeak-ng {self.version()} voice={self.voice} rate={s.rate} pitch={s.pitch}{gap}"

    def version(self) -> str:
        """``espeak-ng --version``'s number, or ``unknown`` when it cannot be run."""
        if self._version is None:
            try:
                out = subprocess.run(
                    [self.settings.binary, "--version"],
                    capture_output=True,
                    text=True,
                    timeout=10,
                    check=False,
                ).stdout
            except (OSError, subprocess.TimeoutExpired):
                out = ""
            found = _VERSION_RE.search(out)
            self._version = found.group(0) if found else "unknown"
        return self._version

    def check(self) -> None:
        """Raise ``RenderError`` unless the binary runs and knows the voice."""
        proc = self._run([self.settings.binary, f"--voices={self.voice.split('-')[0]}"], b"")
        listed = {
            line.split()[1].lower()
            for line in proc.stdout.decode(errors="replace").splitlines()[1:]
            if line.split()[1:]
        }
        if self.voice.lower() not in listed:
            raise RenderError(
                f"espeak-ng: voice {self.voice!r} is not installed "
                f"(found: {', '.join(sorted(listed)) or 'none'}); "
                "install espeak-ng-data or set [tts.espeak] voice"
            )

    def synthesize(self, text: str, dst: Path) -> None:
        if not text.strip():
            raise RenderError(f"espeak-ng: nothing to say for {dst} (empty text)")
        s = self.settings
        with atomic_path(dst) as tmp:
            args = [s.binary, "-v", self.voice, "-s", str(s.rate), "-p", str(s.pitch), "-b", "1"]
            if s.word_gap:
                args += ["-g", str(s.word_gap)]
            proc = self._run([*args, "-w", str(tmp), "--stdin"], text.encode("utf-8"))
            if proc.returncode != 0:
                err = proc.stderr.decode(errors="replace").strip() or f"exit status {proc.returncode}"
                raise RenderError(f"espeak-ng (voice {self.voice}) failed for {dst}: {err}")
            if not tmp.is_file() or tmp.stat().st_size <= 44:
                raise RenderError(f"espeak-ng (voice {self.voice}) wrote no audio for {dst}")
        log.debug("espeak-ng spoke %d characters into %s", len(text), dst)

    def _run(self, args: list[str], stdin: bytes) -> subprocess.CompletedProcess[bytes]:
        try:
            return subprocess.run(args, input=stdin, capture_output=True, timeout=self.settings.timeout_s, check=False)
        except FileNotFoundError as exc:
            raise RenderError(
                f"espeak-ng: {self.settings.binary!r} is not installed; run `make setup` "
                "(apt-get install espeak-ng) or set [tts.espeak] binary"
            ) from exc
        except subprocess.TimeoutExpired as exc:
            raise TransientRenderError(
                f"espeak-ng did not finish within {self.settings.timeout_s:g} s; "
                "shorten the text or raise [tts.espeak] timeout_s"
            ) from exc
