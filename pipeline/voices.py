"""The clip library: ``voices/catalog.toml``, its checks and its placeholders."""

from __future__ import annotations

import tempfile
import tomllib
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from pipeline import audio
from pipeline.config import Settings
from pipeline.errors import ConfigError, RenderError
from pipeline.models import LANGUAGES

CATALOG = "catalog.toml"
#: Every ethnic language a commune may list needs these clips; chimes are shared.
STANDARD_KEYS = ("greeting", "intro", "outro")
CHIMES = ("open", "close", "attention")
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


@dataclass(frozen=True, slots=True)
class VoiceProblem:
    key: str
    problem: str  # placeholder | missing | unreadable | not in catalog
    detail: str


def check_voices(catalog: Catalog, *, settings: Settings, languages: Iterable[str] = ()) -> list[VoiceProblem]:
    """Placeholders, missing files, unreadable audio, and standard keys with no entry."""
    problems: list[VoiceProblem] = []
    for key in standard_keys(languages):
        if catalog.get(key) is None:
            problems.append(VoiceProblem(key, "not in catalog", f"add a [[clip]] with key = {key!r}"))
    for clip in catalog.clips:
        if not clip.file.is_file():
            problems.append(VoiceProblem(clip.key, "missing", str(clip.file)))
            continue
        try:
            info = audio.probe_audio(clip.file, settings=settings.audio)
        except RenderError as exc:
            problems.append(VoiceProblem(clip.key, "unreadable", str(exc)))
            continue
        if clip.placeholder:
            problems.append(VoiceProblem(clip.key, "placeholder", f"{clip.file.name}, {info.duration_ms} ms"))
    return problems


CHIME_TONES = {"open": (523, 659, 784), "close": (784, 659, 523), "attention": (880, 660, 880, 660)}


def make_placeholders(catalog: Catalog, *, settings: Settings, force: bool = False) -> list[Path]:
    """Generate the placeholder clips that are missing (all with ``force``); return what was made.

    A chime is a short tone sequence; a language clip is a tone and espeak-ng saying, in
    Vietnamese, what the real recording will say — clearly a stand-in.
    """
    from pipeline.tts.espeak import EspeakEngine

    engine = EspeakEngine(settings.tts.espeak)
    made: list[Path] = []
    for clip in catalog.clips:
        if not clip.placeholder or (clip.file.is_file() and not force):
            continue
        clip.file.parent.mkdir(parents=True, exist_ok=True)
        if clip.key.startswith("chime/"):
            name = clip.key.split("/", 1)[1]
            audio.make_tone(clip.file, settings=settings.audio, freqs=CHIME_TONES.get(name, (660,)), ms=900)
        else:
            with tempfile.TemporaryDirectory() as tmp:
                tone = Path(tmp) / "tone.wav"
                speech = Path(tmp) / "speech.wav"
                audio.make_tone(tone, settings=settings.audio, freqs=(440,), ms=300)
                engine.synthesize(f"Bản ghi mẫu. {clip.translation}.", speech)
                both = Path(tmp) / "both.wav"
                audio.ingest_audio(speech, both, settings=settings.audio)
                _join_wavs([tone, both], clip.file)
        made.append(clip.file)
    return made


def _join_wavs(parts: list[Path], dst: Path) -> None:
    import wave

    tmp = dst.with_name(f".{dst.name}.tmp")
    with wave.open(str(tmp), "wb") as out:
        for i, part in enumerate(parts):
            with wave.open(str(part), "rb") as inp:
                if i == 0:
                    out.setparams(inp.getparams())
                out.writeframes(inp.readframes(inp.getnframes()))
    tmp.replace(dst)
