"""The limit: what no pipeline can beat on this workload.

``unique_jobs`` lists the day's distinct segments exactly as the pipeline keys them (same
plan, compose and job keys). ``encode_once_limit`` speaks the unique Vietnamese text
once with the configured engine and encodes all unique audio once with ffmpeg, on as
many cores as Loa renders on.
``bytes_floor`` adds up, per endpoint, the bytes of the day's files that the endpoint does
not already hold — what must cross the network at least once.
"""

from __future__ import annotations

import datetime as dt
import os
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipeline import manifest as mf
from pipeline.audio.ffmpeg_write import encode_concat
from pipeline.config import Settings
from pipeline.models import Deployment, Endpoint
from pipeline.package import manifest_path
from pipeline.produce import Producer
from pipeline.store import open_database
from pipeline.tts.chain import build_engine_chain
from pipeline.units import RenderUnit


def unique_jobs(day: dt.date, *, settings: Settings, deployment: Deployment) -> list[RenderUnit]:
    """The distinct render units of every program of ``day``, as the orchestrator makes them."""
    db = open_database(settings.db_url)
    try:
        return Producer(settings=settings, deployment=deployment, db=db).compose_day(day).unique_units()
    finally:
        db.close()


@dataclass(frozen=True, slots=True)
class Limit:
    segments: int
    speech_segments: int
    tts_s: float  # wall time to speak the unique text once, on every core
    encode_s: float  # wall time of ffmpeg decoding and encoding the unique audio once, on every core
    mp3_bytes: int
    cores: int
    encode_one_core_s: float | None = None  # the same in one ffmpeg process (round one's limit)

    @property
    def total_s(self) -> float:
        return self.tts_s + self.encode_s

    def as_dict(self) -> dict[str, Any]:
        one = self.encode_one_core_s
        return {
            "segments": self.segments,
            "speech_segments": self.speech_segments,
            "cores": self.cores,
            "tts_s": round(self.tts_s, 2),
            "encode_s": round(self.encode_s, 2),
            "total_s": round(self.total_s, 2),
            "encode_one_core_s": None if one is None else round(one, 2),
            "total_one_core_s": None if one is None else round(self.tts_s + one, 2),
            "unique_mp3_bytes": self.mp3_bytes,
        }


def encode_once_limit(jobs: list[RenderUnit], *, settings: Settings, work: Path, one_core_too: bool = False) -> Limit:
    """Speak the unique text once, then decode and encode all unique audio once, on every core.

    As many ffmpeg processes as Loa has render workers each encode a share of the audio
    (balanced by file size), as the render units share the cores. ``one_core_too`` also
    times one ffmpeg process doing it all (the limit as round one measured it). Pauses are
    left out (silence costs nothing to encode); clips and recordings are read from their
    source files.
    """
    work.mkdir(parents=True, exist_ok=True)
    engines = build_engine_chain(settings.tts, outbound=settings.outbound)
    cores = settings.render.workers or os.cpu_count() or 1
    speech = [j for j in jobs if j.kind == "speech"]
    wavs = [work / f"s{i}.wav" for i in range(len(speech))]
    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=cores) as pool:
        list(pool.map(lambda pair: engines.synthesize(pair[0].text, pair[1]), zip(speech, wavs, strict=True)))
    tts_s = time.monotonic() - started
    sources = wavs + [j.source for j in jobs if j.source is not None]
    shares: list[list[Path]] = [[] for _ in range(cores)]
    loads = [0] * cores
    for src in sorted(sources, key=lambda p: p.stat().st_size, reverse=True):  # the largest first, to the lightest
        i = loads.index(min(loads))
        shares[i].append(src)
        loads[i] += src.stat().st_size
    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=cores) as pool:
        sizes = list(
            pool.map(
                lambda i: (
                    encode_concat(shares[i], work / f"unique-{i}.mp3", settings=settings.audio) if shares[i] else 0
                ),
                range(cores),
            )
        )
    encode_s = time.monotonic() - started
    one_core_s = None
    if one_core_too:
        started = time.monotonic()
        encode_concat(sources, work / "unique.mp3", settings=settings.audio)
        one_core_s = time.monotonic() - started
    return Limit(len(jobs), len(speech), tts_s, encode_s, sum(sizes), cores, one_core_s)


def _day_files(outbox: Path, endpoint: Endpoint, day: dt.date) -> dict[str, tuple[Path, int]]:
    """The files the endpoint receives for ``day``: ``{relative path: (outbox file, bytes)}``,
    manifest and signature included."""
    folder = f"programs/{day.isoformat()}"
    path = manifest_path(outbox, endpoint.commune, folder, endpoint.name)
    if not path.is_file():
        return {}
    root = outbox / endpoint.commune
    files = {f.path: (root / f.path, f.bytes) for f in mf.read(path).files}
    sig = path.with_name(path.name + ".sig")
    files[f"{folder}/{mf.FILE}"] = (path, path.stat().st_size)
    files[f"{folder}/{mf.SIG_FILE}"] = (sig, sig.stat().st_size)
    return files


def files_to_send(
    outbox: Path, endpoint: Endpoint, day: dt.date, *, before: dt.date | None = None
) -> dict[str, tuple[Path, int]]:
    """The files of ``day`` the endpoint must receive, less the media it got for ``before``."""
    wanted = _day_files(outbox, endpoint, day)
    held = _day_files(outbox, endpoint, before) if before else {}
    return {rel: v for rel, v in wanted.items() if not (rel.startswith("media/") and rel in held)}


def bytes_floor(settings: Settings, deployment: Deployment, day: dt.date, *, before: dt.date | None = None) -> int:
    """Bytes of ``day``'s files every endpoint must receive, less the media it got for ``before``."""
    return sum(
        size
        for endpoint in deployment.endpoints()
        for _, size in files_to_send(settings.outbox_dir, endpoint, day, before=before).values()
    )
