"""Render: cues → segments in the content-addressed cache, each rendered once.

``plan_jobs`` turns the cues of any number of scripts into render jobs keyed by what
changes the sound (engine, voice and spoken text; a clip's or recording's bytes; the
audio settings). ``render_jobs`` renders the keys the cache lacks, in parallel, each
once, and returns a segment or an error per key; a failed key fails only the programs
that use it.
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from pipeline.config import Settings
from pipeline.errors import RenderError
from pipeline.master import master_segment
from pipeline.models import LANGUAGES, Cue, Recording, Script, Segment
from pipeline.segcache import SegmentCache
from pipeline.tts.chain import EngineChain

log = logging.getLogger(__name__)

#: Bump when the way segments are made changes, so old cache entries are not reused.
RENDER_VERSION = "2"

Normalizer = Callable[[str], str]
CHIME_TITLES = {"open": "Nhạc hiệu mở đầu", "close": "Nhạc hiệu kết thúc", "attention": "Âm báo khẩn cấp"}
CLIP_TITLES = {"greeting": "Lời chào", "intro": "Giới thiệu bản tin", "outro": "Kết thúc bản tin"}


def _clip_title(name: str) -> str:
    lang, _, key = name.partition("/")
    return f"{CLIP_TITLES.get(key, key)} — {LANGUAGES.get(lang, lang)}"


@dataclass(frozen=True, slots=True)
class Job:
    key: str
    kind: str  # speech | pause | clip | chime | recording
    language: str
    title: str
    where: str  # what to name in an error: bulletin, language, file
    text: str = ""  # spoken form, for speech
    source: Path | None = None  # clip or recording file
    ms: int = 0  # pause
    bulletin_id: int | None = None


@dataclass(frozen=True, slots=True)
class RenderResult:
    segments: dict[str, Segment]
    errors: dict[str, RenderError]
    rendered: int  # keys synthesized/encoded in this run
    reused: int  # keys found in the cache


def _digest(*parts: object) -> str:
    h = hashlib.sha256()
    for part in parts:
        h.update(str(part).encode("utf-8"))
        h.update(b"\x00")
    return h.hexdigest()


def _file_digest(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
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
) -> Job | None:
    """The render job for one cue (None for comments). Raises RenderError on bad input."""
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
        return Job(
            key=_digest("speech", engines.identity(), audio, spoken),
            kind="speech",
            language="vi",
            title=_short(cue.text),
            where=f"{where} (bulletin {cue.bulletin_id}, vi)" if cue.bulletin_id else where,
            text=spoken,
            bulletin_id=cue.bulletin_id,
        )
    if cue.kind == "pause":
        return Job(
            key=_digest("pause", audio, cue.ms),
            kind="pause",
            language="zxx",
            title=f"Nghỉ {cue.ms} ms",
            where=where,
            ms=cue.ms,
        )
    if cue.kind in ("clip", "chime"):
        name = cue.key if cue.kind == "clip" else f"chime/{cue.key}"
        path = clips.get(name)
        if path is None or not path.is_file():
            raise RenderError(f"{where}: clip {name}: no file {path or ''}; run `loa voices check`")
        language = name.split("/", 1)[0] if cue.kind == "clip" else "zxx"
        title = f"Nhạc hiệu {cue.key}" if cue.kind == "chime" else f"{LANGUAGES.get(language, language)}: {name}"
        return Job(
            key=_digest("clip", audio, _file_digest(path)),
            kind=cue.kind,
            language=language,
            title=title,
            where=f"{where} ({path})",
            source=path,
        )
    if cue.kind == "recording":
        assert cue.bulletin_id is not None
        rec = recordings.get((cue.bulletin_id, cue.language))
        if rec is None:
            raise RenderError(f"{where}: bulletin {cue.bulletin_id} has no {cue.language} recording")
        return Job(
            key=_digest("recording", audio, rec.sha256),
            kind="recording",
            language=cue.language,
            title=f"Bản tin {cue.bulletin_id} — {LANGUAGES.get(cue.language, cue.language)}",
            where=f"{where} (bulletin {cue.bulletin_id}, {cue.language}, {rec.path})",
            source=rec.path,
            bulletin_id=cue.bulletin_id,
        )
    raise RenderError(f"{where}: cannot render a {cue.kind!r} cue")


def script_jobs(script: Script, **kwargs: object) -> tuple[list[Job], list[RenderError]]:
    """Jobs for every cue of ``script``, in order, and the errors of cues that cannot be rendered."""
    jobs: list[Job] = []
    errors: list[RenderError] = []
    for cue in script.cues:
        try:
            job = cue_job(cue, script=script.name, **kwargs)  # type: ignore[arg-type]
        except RenderError as exc:
            errors.append(exc)
            continue
        if job is not None:
            jobs.append(job)
    return jobs, errors


def render_jobs(
    jobs: Iterable[Job],
    *,
    engines: EngineChain,
    cache: SegmentCache,
    settings: Settings,
    on_done: Callable[[Job, bool], None] | None = None,
) -> RenderResult:
    """Render every distinct key the cache lacks, in parallel; each key once."""
    unique: dict[str, Job] = {}
    for job in jobs:
        unique.setdefault(job.key, job)
    segments: dict[str, Segment] = {}
    errors: dict[str, RenderError] = {}
    todo: list[Job] = []
    for key, job in unique.items():
        entry = cache.get(key)
        if entry is None:
            todo.append(job)
            continue
        segments[key] = _segment(
            job,
            cache,
            entry.duration_ms,
            entry.bytes,
            entry.sha256,
            entry.engine,
            entry.loudness_lufs,
            reused=True,
        )
        if on_done:
            on_done(job, True)
    workers = settings.render.workers or os.cpu_count() or 1
    tmp_root = settings.data_dir / "tmp"
    tmp_root.mkdir(parents=True, exist_ok=True)

    def work(job: Job) -> tuple[Job, Segment | RenderError]:
        try:
            return job, _render_one(job, engines=engines, cache=cache, settings=settings, tmp_root=tmp_root)
        except RenderError as exc:
            return job, exc
        except OSError as exc:  # e.g. the disk is full: fail clearly, leave no cache entry
            return job, RenderError(f"{job.where}: {exc.strerror or exc}; free space in {settings.data_dir}")

    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="render") as pool:
        for job, outcome in pool.map(work, todo):
            if isinstance(outcome, RenderError):
                errors[job.key] = outcome
                log.error("%s", outcome)
            else:
                segments[job.key] = outcome
            if on_done:
                on_done(job, False)
    return RenderResult(segments, errors, rendered=len(todo), reused=len(unique) - len(todo))


def _segment(
    job: Job,
    cache: SegmentCache,
    duration_ms: int,
    size: int,
    sha256: str,
    engine: str | None,
    loudness: float | None,
    *,
    reused: bool,
) -> Segment:
    return Segment(
        key=job.key,
        path=cache.mp3_path(job.key),
        duration_ms=duration_ms,
        kind=job.kind,
        language=job.language,
        title=job.title,
        bytes=size,
        sha256=sha256,
        bulletin_id=job.bulletin_id,
        engine=engine,
        loudness_lufs=loudness,
        reused=reused,
    )


def _render_one(job: Job, *, engines: EngineChain, cache: SegmentCache, settings: Settings, tmp_root: Path) -> Segment:
    from pipeline import audio

    with tempfile.TemporaryDirectory(dir=tmp_root, prefix="render-") as tmp:
        wav = Path(tmp) / "in.wav"
        engine: str | None = None
        if job.kind == "speech":
            raw = Path(tmp) / "tts.audio"
            engine = engines.synthesize(job.text, raw)
            info = audio.ingest_audio(raw, wav, settings=settings.audio)
        elif job.kind == "pause":
            info = audio.make_silence(wav, job.ms, settings=settings.audio)
        else:
            assert job.source is not None
            try:
                info = audio.ingest_audio(job.source, wav, settings=settings.audio)
            except RenderError as exc:
                raise RenderError(f"{job.where}: {exc}") from exc
        entry = master_segment(
            wav,
            job.key,
            title=job.title,
            language=job.language,
            bulletin_id=job.bulletin_id,
            engine=engine,
            cache=cache,
            settings=settings,
            source_loudness=info.loudness,
        )
    return _segment(
        job,
        cache,
        entry.duration_ms,
        entry.bytes,
        entry.sha256,
        entry.engine,
        entry.loudness_lufs,
        reused=False,
    )


def segments_for(jobs: list[Job], result: RenderResult) -> tuple[list[Segment], list[RenderError]]:
    """The segments of one script's jobs, in order, and the errors among them."""
    out: list[Segment] = []
    errs: list[RenderError] = []
    for job in jobs:
        if job.key in result.segments:
            out.append(result.segments[job.key])
        elif job.key in result.errors:
            errs.append(result.errors[job.key])
    return out, errs


__all__ = ["Job", "RenderResult", "cue_job", "render_jobs", "script_jobs", "segments_for"]
