"""The clip library: ``voices/catalog.toml``, its checks and its placeholders, and the standard
phrases approved on the web in place of its clips (``effective_catalog``, docs/phrases.md)."""

from __future__ import annotations

import dataclasses
import os
import tempfile
import tomllib
import unicodedata
import wave
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from pipeline.audio import ffmpeg, ffmpeg_write, ingest
from pipeline.config import Settings
from pipeline.errors import ConfigError, RenderError
from pipeline.models import LANGUAGES
from pipeline.store import Database
from pipeline.store import phrases as phrase_store

if TYPE_CHECKING:
    from pipeline.tts.espeak import EspeakEngine

CATALOG = "catalog.toml"
#: Every ethnic language a commune may list needs these clips; chimes are shared.
STANDARD_KEYS = ("greeting", "intro", "outro")
CHIMES = ("open", "close", "attention")
#: ffprobe, ffmpeg and espeak-ng runs at once when checking or making clips.
_WORKERS = min(4, os.cpu_count() or 1)
_FIELDS = {"key", "language", "file", "speaker", "transcript", "translation", "placeholder"}


@dataclass(frozen=True, slots=True)
class Clip:
    key: str
    language: str
    file: Path  # absolute
    speaker: str
    transcript: str
    translation: str
    placeholder: bool


@dataclass(frozen=True, slots=True)
class Catalog:
    root: Path
    clips: tuple[Clip, ...]

    def get(self, key: str) -> Clip | None:
        return next((c for c in self.clips if c.key == key), None)

    def clip_paths(self) -> dict[str, Path]:
        return {c.key: c.file for c in self.clips}

    def missing(self, keys: Iterable[str]) -> list[str]:
        """Keys that have no entry or whose file is not there."""
        out = []
        for key in dict.fromkeys(keys):
            clip = self.get(key)
            if clip is None:
                out.append(f"{key} (not in {self.root / CATALOG})")
            elif not clip.file.is_file():
                out.append(f"{key} (no file {clip.file}; run `make setup` or record it)")
        return out


def standard_keys(languages: Iterable[str]) -> list[str]:
    return [f"chime/{c}" for c in CHIMES] + [
        f"{lang}/{k}" for lang in languages if lang in LANGUAGES and lang != "vi" for k in STANDARD_KEYS
    ]


def load_catalog(voices_dir: Path) -> Catalog:
    path = voices_dir / CATALOG
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the clip catalog ({exc.strerror})") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: {exc}") from exc
    clips: list[Clip] = []
    for i, raw in enumerate(data.get("clip", [])):
        where = f"{path}: clip[{i}]"
        unknown = set(raw) - _FIELDS
        if unknown:
            raise ConfigError(f"{where}: unknown field {sorted(unknown)[0]!r}")
        for key in ("key", "language", "file"):
            if not isinstance(raw.get(key), str) or not raw[key]:
                raise ConfigError(f"{where}: {key}: missing or not a text")
        if raw["language"] not in LANGUAGES and raw["language"] != "zxx":
            raise ConfigError(f"{where}: language: unknown {raw['language']!r}; use hmn, ium, pcc (zxx for chimes)")
        file = (voices_dir / raw["file"]).resolve()
        if voices_dir.resolve() not in file.parents:
            raise ConfigError(f"{where}: file: {raw['file']!r} is outside {voices_dir}")
        if any(c.key == raw["key"] for c in clips):
            raise ConfigError(f"{where}: key {raw['key']!r} is listed twice")
        clips.append(
            Clip(
                key=raw["key"],
                language=raw["language"],
                file=file,
                speaker=unicodedata.normalize("NFC", raw.get("speaker", "")),
                transcript=unicodedata.normalize("NFC", raw.get("transcript", "")),
                translation=unicodedata.normalize("NFC", raw.get("translation", "")),
                placeholder=bool(raw.get("placeholder", False)),
            )
        )
    return Catalog(root=voices_dir, clips=tuple(clips))


def effective_catalog(catalog: Catalog, db: Database) -> Catalog:
    """The catalog with every approved take in place of its clip's file (no longer a placeholder)."""
    approved = phrase_store.approved(db)
    if not approved:
        return catalog
    clips = tuple(
        dataclasses.replace(c, file=approved[c.key].path, placeholder=False, speaker=approved[c.key].recorded_by)
        if c.key in approved and approved[c.key].path.is_file()
        else c
        for c in catalog.clips
    )
    return dataclasses.replace(catalog, clips=clips)


def placeholder_keys(settings: Settings, db: Database) -> frozenset[str]:
    """The clips that are still machine-made stand-ins (none when there is no catalog)."""
    if not (settings.voices_dir / CATALOG).is_file():
        return frozenset()
    return frozenset(c.key for c in effective_catalog(load_catalog(settings.voices_dir), db).clips if c.placeholder)


@dataclass(frozen=True, slots=True)
class VoiceProblem:
    key: str
    problem: str  # placeholder | missing | unreadable | not in catalog
    detail: str


def check_voices(catalog: Catalog, *, settings: Settings, languages: Iterable[str] = ()) -> list[VoiceProblem]:
    """Placeholders, missing files, unreadable audio, and standard keys with no entry.

    Files are probed a few at a time (each probe is an ffprobe run).
    """
    problems: list[VoiceProblem] = []
    for key in standard_keys(languages):
        if catalog.get(key) is None:
            problems.append(VoiceProblem(key, "not in catalog", f"add a [[clip]] with key = {key!r}"))
    with ThreadPoolExecutor(max_workers=_WORKERS) as pool:
        problems += [p for p in pool.map(lambda c: _check_clip(c, settings), catalog.clips) if p is not None]
    return problems


def _check_clip(clip: Clip, settings: Settings) -> VoiceProblem | None:
    if not clip.file.is_file():
        return VoiceProblem(clip.key, "missing", f"{clip.file}: record it, or run `loa voices placeholders`")
    try:
        info = ffmpeg.probe_audio(clip.file, settings=settings.audio)
    except RenderError as exc:
        return VoiceProblem(clip.key, "unreadable", str(exc))
    if info.duration_ms <= 0:
        return VoiceProblem(clip.key, "unreadable", f"{clip.file}: no audio in it")
    if clip.placeholder:
        return VoiceProblem(clip.key, "placeholder", f"{clip.file.name}, {info.duration_ms} ms: «{clip.translation}»")
    return None


CHIME_TONES = {"open": (523, 659, 784), "close": (784, 659, 523), "attention": (880, 660, 880, 660)}


def make_placeholders(catalog: Catalog, *, settings: Settings, force: bool = False) -> list[Path]:
    """Generate the placeholder clips that are missing (all with ``force``); return what was made.

    A chime is a short tone sequence; a language clip is a tone and espeak-ng saying, in
    Vietnamese, "Bản ghi mẫu." and what the real recording will say — clearly a stand-in.
    Clips are made a few at a time; each is written under a temporary name, then renamed.
    """
    from pipeline.tts.espeak import EspeakEngine

    engine = EspeakEngine(settings.tts.espeak)
    todo = [c for c in catalog.clips if c.placeholder and (force or not c.file.is_file())]
    with ThreadPoolExecutor(max_workers=_WORKERS) as pool:
        return list(pool.map(lambda c: _make_placeholder(c, engine, settings), todo))


def _make_placeholder(clip: Clip, engine: EspeakEngine, settings: Settings) -> Path:
    clip.file.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        if clip.key.startswith("chime/"):
            name = clip.key.split("/", 1)[1]
            chime = Path(tmp) / "chime.wav"
            ffmpeg_write.make_tone(chime, settings=settings.audio, freqs=CHIME_TONES.get(name, (660,)), ms=900)
            chime.replace(clip.file)
            return clip.file
        tone = Path(tmp) / "tone.wav"
        speech = Path(tmp) / "speech.wav"
        both = Path(tmp) / "both.wav"
        ffmpeg_write.make_tone(tone, settings=settings.audio, freqs=(440,), ms=300)
        engine.synthesize(f"Bản ghi mẫu. {clip.translation}.", speech)
        ingest.ingest_audio(speech, both, settings=settings.audio)
        _join_wavs([tone, both], clip.file)
    return clip.file


def _join_wavs(parts: list[Path], dst: Path) -> None:
    """Concatenate WAV files of the same format (``audio`` makes them all alike)."""
    tmp = dst.with_name(f".{dst.name}.tmp")
    with wave.open(str(tmp), "wb") as out:
        first: tuple[int, int, int] | None = None
        for part in parts:
            with wave.open(str(part), "rb") as inp:
                shape = (inp.getnchannels(), inp.getsampwidth(), inp.getframerate())
                if first is None:
                    first = shape
                    out.setparams(inp.getparams())
                elif shape != first:
                    raise RenderError(f"{dst}: cannot join {part.name} ({shape}) to a {first} WAV")
                out.writeframes(inp.readframes(inp.getnframes()))
    tmp.replace(dst)
