"""A local program as a speech engine: text on stdin, WAV out.

``[tts.command] argv`` is the command line, run without a shell. Where ``{out}`` stands in
it, the program writes the WAV to that path (Piper: ``--output_file {out}``); otherwise
Loa reads the WAV from its standard output. ``{voice}`` and ``{speed}`` are replaced by the
settings of the same names, so a deployment can name its voice model there::

    [tts.command]
    argv = ["piper", "--model", "/opt/piper/{voice}.onnx", "--length_scale", "{speed}", "--output_file", "{out}"]
    voice = "vi_VN-vais1000-medium"
    speed = "1.0"
"""

from __future__ import annotations

import hashlib
import logging
import subprocess
from pathlib import Path

from pipeline.config import CommandSettings
from pipeline.errors import ConfigError, RenderError, TransientRenderError
from pipeline.tts.base import atomic_path

log = logging.getLogger(__name__)


class CommandEngine:
    name = "command"

    def __init__(self, settings: CommandSettings) -> None:
        if not settings.argv:
            raise ConfigError('[tts.command] argv is empty; name the program, e.g. argv = ["piper", …]')
        self.settings = settings

    def identity(self) -> str:
        s = self.settings
        argv = hashlib.sha256("\x00".join(s.argv).encode()).hexdigest()[:12]
        return f"command {s.label} argv={argv} voice={s.voice} speed={s.speed}"

    def _argv(self, out: Path) -> list[str]:
        s = self.settings
        return [a.replace("{voice}", s.voice).replace("{speed}", s.speed).replace("{out}", str(out)) for a in s.argv]

    def synthesize(self, text: str, dst: Path) -> None:
        s = self.settings
        if not text.strip():
            raise RenderError(f"{s.label}: nothing to say for {dst.name} (empty text)")
        to_file = any("{out}" in a for a in s.argv)
        with atomic_path(dst) as tmp:
            args = self._argv(tmp)
            try:
                proc = subprocess.run(
                    args, input=text.encode("utf-8"), capture_output=True, timeout=s.timeout_s, check=False
                )
            except FileNotFoundError as exc:
                raise RenderError(f"{s.label}: {args[0]!r} is not installed; fix [tts.command] argv") from exc
            except PermissionError as exc:
                raise RenderError(f"{s.label}: {args[0]!r} cannot be run ({exc.strerror})") from exc
            except subprocess.TimeoutExpired as exc:
                raise TransientRenderError(
                    f"{s.label}: did not finish within {s.timeout_s:g} s for {dst.name}; raise [tts.command] timeout_s"
                ) from exc
            if proc.returncode != 0:
                err = " ".join(proc.stderr.decode(errors="replace").split())[-300:] or f"exit {proc.returncode}"
                raise RenderError(f"{s.label} failed for {dst.name}: {err}")
            if not to_file:
                tmp.write_bytes(proc.stdout)
            if not tmp.is_file():
                raise RenderError(f"{s.label}: wrote no audio for {dst.name}")
            with tmp.open("rb") as f:
                head = f.read(12)
            if not (head.startswith(b"RIFF") and head[8:12] == b"WAVE") or tmp.stat().st_size <= 44:
                raise RenderError(f"{s.label}: the output for {dst.name} is not a WAV file ({head[:12]!r})")
        log.debug("%s spoke %d characters into %s", s.label, len(text), dst)
