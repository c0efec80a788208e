"""Render: cues → segments in the segment store, each rendered once.

``script_units`` turns the cues of a script into render units keyed by what changes
the sound (engine, voice and spoken text; a clip's or recording's bytes; the audio
settings). ``render_unit`` makes one unit's segment unless the store has it already.
Which units run, where and in what order is the orchestrator's business
(``pipeline.produce``); a failed key fails only the programs that use it.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import tempfile
from collections.abc import Callable, Collection, Mapping
from pathlib import Path

from pipeline.config import Settings
from pipeline.errors import RenderError
from pipeline.files import sha256_file_cached
from pipeline.master import master_segment
from pipeline.models import LANGUAGES, Cue, Recording, Script, Segment, Source
from pipeline.segcache import CacheEntry, SegmentStore
from pipeline.tts.chain import EngineChain
from pipeline.units import RenderUnit

log = logging.getLogger(__name__)

#: Bump when the way segments are made changes, so old cache entries are not reused.
RENDER_VERSION = "2"

Normalizer = Callable[[str], str]
CHIME_TITLES = {"open": "Nhạc hiệu mở đầu", "close": "Nhạc hiệu kết thúc", "attention": "Âm báo khẩn cấp"}
CLIP_TITLES = {"greeting": "Lời chào", "intro": "Giới thiệu bản tin", "outro": "Kết thúc bản tin"}


def _clip_title(name: str) -> str:
    lang, _, key = name.partition("/")
    return f"{CLIP_TITLES.get(key, key)} — {LANGUAGES.get(lang, lang)}"


def _digest(*parts: object) -> str:
    h = hashlib.sha256()
    for part in parts:
        h.update(str(part).encode("utf-8"))
        h.update(b"\x00")
    return h.hexdigest()


def audio_identity(settings: Settings) -> str:
    a = settings.audio
    return f"v{RENDER_VERSION} {a.sample_rate}Hz {a.bitrate_kbps}k {a.target_lufs}LUFS {a.true_peak_db}dBTP"


def _short(text: str, limit: int = 60) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def cue_job(
    cue: Cue,
    *,
    script: str,
    engines: EngineChain,
    settings: Settings,
    normalize: Normalizer,
    clips: Mapping[str, Path],
    recordings: Mapping[tuple[int, str], Recording],
    placeholders: Collection[str] = (),
) -> RenderUnit | None:
    """The render unit for one cue (None for comments). Raises RenderError on bad input.

    ``placeholders`` names the clips (catalog keys) that are machine-made stand-ins.
    """
    audio = audio_identity(settings)
    where = f"{script} line {cue.line}"
    if cue.kind == "comment":
        return None
    if cue.kind in ("speech", "say"):
        if cue.language != "vi":
            raise RenderError(f"{where}: no speech engine speaks {cue.language}; use a recorded clip")
        spoken = normalize(cue.text).strip()
        if not any(ch.isalnum() for ch in spoken):
            who = f"bulletin {cue.bulletin_id} (vi)" if cue.bulletin_id else "the template text"
            raise RenderError(f"{where}: {who}: the text {cue.text[:40]!r} has nothing to speak once normalized")
        identity = engines.identity()
        return RenderUnit(
            key=_digest("speech", identity, audio, spoken),
            kind="speech",
            language="vi",
            title=_short(cue.text),
            where=f"{where} (bulletin {cue.bulletin_id}, vi)" if cue.bulletin_id else where,
            text=spoken,
            bulletin_id=cue.bulletin_id,
            origin=Source("tts", voice=identity, language="vi"),
        )
    if cue.kind == "pause":
        return RenderUnit(
            key=_digest("pause", audio, cue.ms),
            kind="pause",
            language="zxx",
            title=f"Nghỉ {cue.ms} ms",
            where=where,
            ms=cue.ms,
            origin=Source("silence"),
        )
    if cue.kind in ("clip", "chime"):
        name = cue.key if cue.kind == "clip" else f"chime/{cue.key}"
        path = clips.get(name)
        if path is None or not path.is_file():
            raise RenderError(f"{where}: clip {name}: no file {path or ''}; run `loa voices check`")
        language = name.split("/", 1)[0] if cue.kind == "clip" else "zxx"
        title = f"Nhạc hiệu {cue.key}" if cue.kind == "chime" else f"{LANGUAGES.get(language, language)}: {name}"
        return RenderUnit(
            key=_digest("clip", audio, sha256_file_cached(path)),
            kind=cue.kind,
            language=language,
            title=title,
            where=f"{where} ({path})",
            source=path,
            origin=Source(cue.kind, language=language, clip=name, placeholder=name in placeholders),
        )
    if cue.kind == "recording":
        assert cue.bulletin_id is not None
        rec = recordings.get((cue.bulletin_id, cue.language))
        if rec is None:
            raise RenderError(f"{where}: bulletin {cue.bulletin_id} has no {cue.language} recording")
        return RenderUnit(
            key=_digest("recording", audio, rec.sha256),
            kind="recording",
            language=cue.language,
            title=f"Bản tin {cue.bulletin_id} — {LANGUAGES.get(cue.language, cue.language)}",
            where=f"{where} (bulletin {cue.bulletin_id}, {cue.language}, {rec.path})",
            source=rec.path,
            bulletin_id=cue.bulletin_id,
            origin=Source("recording", recording=rec.id, language=cue.language),
        )
    raise RenderError(f"{where}: cannot render a {cue.kind!r} cue")


def script_units(script: Script, **kwargs: object) -> tuple[list[RenderUnit], list[RenderError]]:
    """Units for every cue of ``script``, in order, and the errors of cues that cannot be rendered."""
    units: list[RenderUnit] = []
    errors: list[RenderError] = []
    for cue in script.cues:
        try:
            unit = cue_job(cue, script=script.name, **kwargs)  # type: ignore[arg-type]
        except RenderError as exc:
            errors.append(exc)
            continue
        if unit is not None:
            units.append(unit)
    return units, errors


def render_unit(unit: RenderUnit, *, engines: EngineChain, store: SegmentStore, settings: Settings) -> Segment:
    """The segment of ``unit``: from the store when it is there, else made and put there.

    Idempotent by key: a second call, here or on another machine sharing the store,
    makes nothing. Raises ``RenderError`` naming the unit's script line and source.
    """
    entry = store.get(unit.key)
    if entry is not None:
        return _segment(unit, store, entry, reused=True)
    tmp_root = settings.data_dir / "tmp"
    tmp_root.mkdir(parents=True, exist_ok=True)
    try:
        entry = _render_one(unit, engines=engines, store=store, settings=settings, tmp_root=tmp_root)
    except OSError as exc:  # e.g. the disk is full: fail clearly, leave no store entry
        raise RenderError(f"{unit.where}: {exc.strerror or exc}; free space in {settings.data_dir}") from exc
    return _segment(unit, store, entry, reused=False)


def _segment(unit: RenderUnit, store: SegmentStore, entry: CacheEntry, *, reused: bool) -> Segment:
    origin = unit.origin
    if origin is not None and origin.type == "tts":
        origin = dataclasses.replace(origin, engine=entry.engine)
    return Segment(
        key=unit.key,
        path=store.path(unit.key),
        duration_ms=entry.duration_ms,
        kind=unit.kind,
        language=unit.language,
        title=unit.title,
        bytes=entry.bytes,
        sha256=entry.sha256,
        bulletin_id=unit.bulletin_id,
        engine=entry.engine,
        loudness_lufs=entry.loudness_lufs,
        reused=reused,
        source=origin,
    )


def _render_one(
    unit: RenderUnit, *, engines: EngineChain, store: SegmentStore, settings: Settings, tmp_root: Path
) -> CacheEntry:
    from pipeline.audio import files, ingest

    with tempfile.TemporaryDirectory(dir=tmp_root, prefix="render-") as tmp:
        wav = Path(tmp) / "in.wav"
        engine: str | None = None
        if unit.kind == "speech":
            raw = Path(tmp) / "tts.audio"
            engine = engines.synthesize(unit.text, raw)
            info = ingest.ingest_audio(raw, wav, settings=settings.audio)
        elif unit.kind == "pause":
            info = files.make_silence(wav, unit.ms, settings=settings.audio)
        else:
            assert unit.source is not None
            try:
                info = ingest.ingest_audio(unit.source, wav, settings=settings.audio)
            except RenderError as exc:
                raise RenderError(f"{unit.where}: {exc}") from exc
        return master_segment(
            wav,
            unit.key,
            title=unit.title,
            language=unit.language,
            bulletin_id=unit.bulletin_id,
            engine=engine,
            cache=store,
            settings=settings,
            source_loudness=info.loudness,
        )


__all__ = ["audio_identity", "cue_job", "render_unit", "script_units"]
