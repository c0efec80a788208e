"""Engines in order of preference: the first that can speak, speaks."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

from pydantic import ValidationError

from pipeline.config import OutboundSettings, TtsSettings
from pipeline.errors import ConfigError, RenderError, TransientRenderError
from pipeline.tts.base import SpeechEngine
from pipeline.tts.espeak import EspeakEngine
from pipeline.tts.gtts_engine import GttsEngine

log = logging.getLogger(__name__)


class EngineChain:
    """Tries each engine in turn.

    Any ``RenderError`` from one engine (transient or not) lets the next one speak: a
    refused gTTS should not silence a bulletin that espeak-ng can read. When all fail,
    the error lists each engine's reason; it is a ``TransientRenderError`` when every
    failure was transient (a later run may succeed), else a ``RenderError``.
    """

    def __init__(self, engines: Sequence[SpeechEngine]) -> None:
        if not engines:
            raise ValueError("EngineChain needs at least one engine")
        self.engines = tuple(engines)
        self._identity: str | None = None

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(e.name for e in self.engines)

    def identity(self) -> str:
        """What keys the speech: every engine's name, version and voice (asked once per chain)."""
        if self._identity is None:
            self._identity = " > ".join(e.identity() for e in self.engines)
        return self._identity

    def synthesize(self, text: str, dst: Path) -> str:
        """Speak ``text`` into ``dst``; return the name of the engine that spoke."""
        failures: list[tuple[str, RenderError]] = []
        for engine in self.engines:
            try:
                engine.synthesize(text, dst)
            except RenderError as exc:
                failures.append((engine.name, exc))
                log.warning("%s could not speak %s: %s", engine.name, dst.name, exc)
                continue
            if failures:
                log.info("%s spoke %s after %s failed", engine.name, dst.name, ", ".join(n for n, _ in failures))
            return engine.name
        detail = "; ".join(f"{name}: {exc}" for name, exc in failures)
        message = f"no speech engine could speak {dst.name} ({detail})"
        if all(isinstance(exc, TransientRenderError) for _, exc in failures):
            raise TransientRenderError(message)
        raise RenderError(message)


#: The setting that ``--speed`` sets, per engine (gTTS has none).
SPEED_FIELDS = {"espeak": "rate", "fpt": "speed", "viettel": "speed", "google": "speaking_rate", "command": "speed"}


def with_voice(name: str, settings: TtsSettings, *, voice: str | None = None, speed: str | None = None) -> TtsSettings:
    """``settings`` with engine ``name``'s voice and speed replaced (validated like loa.toml)."""
    if name not in ENGINE_NAMES:
        raise ConfigError(f"unknown speech engine {name!r}; use one of {', '.join(ENGINE_NAMES)}")
    if voice is None and speed is None:
        return settings
    section = getattr(settings, name)
    update: dict[str, object] = {}
    if voice is not None:
        if name == "gtts":
            raise ConfigError("gtts has one Vietnamese voice; --voice is for espeak, fpt, viettel, google, command")
        update["voice"] = voice
    if speed is not None:
        if name not in SPEED_FIELDS:
            raise ConfigError(f"{name} has no speed setting; --speed is for {', '.join(SPEED_FIELDS)}")
        update[SPEED_FIELDS[name]] = speed
    try:
        changed = type(section).model_validate(section.model_dump() | update)
    except ValidationError as exc:
        first = exc.errors()[0]
        raise ConfigError(f"[tts.{name}] {'.'.join(map(str, first['loc']))}: {first['msg']}") from exc
    return settings.model_copy(update={name: changed})


def build_engine(name: str, settings: TtsSettings, *, outbound: OutboundSettings | None = None) -> SpeechEngine:
    """One engine by its name in ``[tts] engines``; vendor engines connect as ``outbound`` allows."""
    from pipeline.tts.command import CommandEngine
    from pipeline.tts.fpt import FptEngine
    from pipeline.tts.google_cloud import GoogleCloudEngine
    from pipeline.tts.viettel import ViettelEngine

    if name == "espeak":
        return EspeakEngine(settings.espeak, variant=settings.variant)
    if name == "gtts":
        return GttsEngine(settings.gtts)
    policy = outbound or OutboundSettings()
    if name == "fpt":
        return FptEngine(settings.fpt, outbound=policy)
    if name == "viettel":
        return ViettelEngine(settings.viettel, outbound=policy)
    if name == "google":
        return GoogleCloudEngine(settings.google, outbound=policy)
    if name == "command":
        return CommandEngine(settings.command)
    raise ConfigError(f"unknown speech engine {name!r}; use one of {', '.join(ENGINE_NAMES)}")


ENGINE_NAMES = ("espeak", "gtts", "fpt", "viettel", "google", "command")


def build_engine_chain(settings: TtsSettings, *, outbound: OutboundSettings | None = None) -> EngineChain:
    """The engines named in ``settings.engines``, in that order."""
    return EngineChain([build_engine(name, settings, outbound=outbound) for name in settings.engines])
