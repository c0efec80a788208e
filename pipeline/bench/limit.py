"""The limit: what no pipeline can beat on this workload.

``unique_jobs`` lists the day's distinct segments exactly as the pipeline keys them (same
plan, compose and job keys). ``encode_once_limit`` speaks the unique Vietnamese text
once with the configured engine and encodes all unique audio once with ffmpeg.
``bytes_floor`` adds up, per endpoint, the bytes of the day's files that the endpoint does
not already hold — what must cross the network at least once.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipeline import compose as compose_stage
from pipeline import plan as plan_stage
from pipeline.bench.tools import encode_once
from pipeline.config import Settings
from pipeline.models import Deployment
from pipeline.nightly import normalizer
from pipeline.render import Job, script_jobs
from pipeline.store import bulletins as bulletin_store
from pipeline.store import open_database
from pipeline.store.recordings import current_recordings
from pipeline.tts.chain import build_engine_chain
from pipeline.voices import load_catalog


def unique_jobs(day: dt.date, *, settings: Settings, deployment: Deployment) -> list[Job]:
    """The distinct render jobs of every program of ``day`` (first occurrence of each key)."""
    db = open_database(settings.db_url)
    try:
        bulletins = bulletin_store.airable_bulletins(db, day)
        recordings = current_recordings(db, [b.id for b in bulletins if b.id is not None])
    finally:
        db.close()
    templates = compose_stage.TemplateSet.load(settings.templates_dir)
    catalog = load_catalog(settings.voices_dir)
    spoken = normalizer(settings)
    engines = build_engine_chain(settings.tts)
    plans = plan_stage.plan_day(day, deployment.communes, bulletins=bulletins, recordings=recordings, spoken=spoken)
    unique: dict[str, Job] = {}
    for p in plans:
        script = compose_stage.compose_script(
            p, templates=templates, catalog=catalog, recordings=recordings, on_missing="skip"
        )
        jobs, _ = script_jobs(
            script,
            engines=engines,
            settings=settings,
            normalize=spoken,
            clips=catalog.clip_paths(),
            recordings=recordings,
        )
        for job in jobs:
            unique.setdefault(job.key, job)
    return list(unique.values())


@dataclass(frozen=True, slots=True)
class Limit:
    segments: int
    speech_segments: int
    tts_s: float  # wall time to speak the unique text once, on every core
    encode_s: float  # wall time of ffmpeg decoding and encoding the unique audio once
    mp3_bytes: int

    @property
    def total_s(self) -> float:
        return self.tts_s + self.encode_s

    def as_dict(self) -> dict[str, Any]:
        return {
            "segments": self.segments,
            "speech_segments": self.speech_segments,
            "tts_s": round(self.tts_s, 2),
            "encode_s": round(self.encode_s, 2),
            "total_s": round(self.total_s, 2),
            "unique_mp3_bytes": self.mp3_bytes,
        }


def encode_once_limit(jobs: list[Job], *, settings: Settings, work: Path) -> Limit:
    """Speak the unique text once (in parallel, one per core), then encode all unique audio once.

    Pauses are left out (silence costs nothing to encode); clips and recordings are read
    from their source files.
    """
    work.mkdir(parents=True, exist_ok=True)
    engines = build_engine_chain(settings.tts)
    speech = [j for j in jobs if j.kind == "speech"]
    wavs = [work / f"s{i}.wav" for i in range(len(speech))]
    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=settings.render.workers or os.cpu_count() or 1) as pool:
        list(pool.map(lambda pair: engines.synthesize(pair[0].text, pair[1]), zip(speech, wavs, strict=True)))
    tts_s = time.monotonic() - started
    sources = wavs + [j.source for j in jobs if j.source is not None]
    started = time.monotonic()
    size = encode_once(sources, work / "unique.mp3", audio=settings.audio)
    encode_s = time.monotonic() - started
    return Limit(len(jobs), len(speech), tts_s, encode_s, size)


def _wanted(outbox: Path, commune: str, day: dt.date, fmt: str) -> dict[str, int]:
    manifest_path = outbox / commune / "programs" / day.isoformat() / "manifest.json"
    if not manifest_path.is_file():
        return {}
    manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    files = {f["path"]: int(f["bytes"]) for f in manifest["files"] if f.get("format", fmt) == fmt}
    files[f"programs/{day.isoformat()}/manifest.json"] = manifest_path.stat().st_size
    return files


def bytes_floor(settings: Settings, deployment: Deployment, day: dt.date, *, before: dt.date | None = None) -> int:
    """Bytes of ``day``'s files every endpoint must receive, less the media it got for ``before``."""
    total = 0
    for endpoint in deployment.endpoints():
        wanted = _wanted(settings.outbox_dir, endpoint.commune, day, endpoint.format)
        held = _wanted(settings.outbox_dir, endpoint.commune, before, endpoint.format) if before else {}
        total += sum(size for path, size in wanted.items() if not (path.startswith("media/") and path in held))
    return total
