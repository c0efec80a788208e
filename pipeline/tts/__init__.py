"""Speech engines (espeak-ng offline, gTTS online) behind one small interface."""

from __future__ import annotations

from pipeline.tts.base import SpeechEngine
from pipeline.tts.chain import EngineChain, build_engine_chain
from pipeline.tts.espeak import EspeakEngine
from pipeline.tts.gtts_engine import GttsEngine

__all__ = ["EngineChain", "EspeakEngine", "GttsEngine", "SpeechEngine", "build_engine_chain"]
