"""The naive way, for comparison: every commune's whole program made and sent from scratch.

For each commune and slot: the same cue sheet as Loa's (same plan and templates), every
speech cue synthesised again, every clip and recording decoded again, the lot joined
with pydub, gain set to the target, encoded to one MP3, and that MP3 uploaded to every
endpoint of the commune with no check of what it already holds. No cache, no sharing.

Run in its own process so that its memory is its own:
``python -m pipeline.bench.naive CONFIG DATE CODE...`` prints one JSON object.
pydub is a dev dependency used only here.
"""

from __future__ import annotations

import datetime as dt
import json
import resource
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from pydub import AudioSegment  # type: ignore[import-untyped]

from pipeline.config import Settings, load_settings
from pipeline.deployment import load_deployment
from pipeline.models import Commune, Cue, Deployment, Recording
from pipeline.produce import Producer, spoken_form
from pipeline.store import bulletins as bulletin_store
from pipeline.store import open_database
from pipeline.store.recordings import current_recordings
from pipeline.transports import open_transport
from pipeline.tts.chain import EngineChain, build_engine_chain
from pipeline.voices import load_catalog


def _cue_audio(
    cue: Cue,
    *,
    engines: EngineChain,
    speak: Any,
    clips: dict[str, Path],
    recordings: dict[tuple[int, str], Recording],
    tmp: Path,
) -> AudioSegment | None:
    if cue.kind in ("speech", "say"):
        wav = tmp / "speech.audio"
        engines.synthesize(speak(cue.text), wav)
        return AudioSegment.from_file(wav)
    if cue.kind == "pause":
        return AudioSegment.silent(duration=cue.ms)
    if cue.kind in ("clip", "chime"):
        path = clips.get(cue.key if cue.kind == "clip" else f"chime/{cue.key}")
        return AudioSegment.from_file(path) if path else None
    if cue.kind == "recording" and cue.bulletin_id is not None:
        rec = recordings.get((cue.bulletin_id, cue.language))
        return AudioSegment.from_file(rec.path) if rec else None
    return None


def naive_commune(commune: Commune, day: dt.date, *, settings: Settings, work: Path) -> dict[str, Any]:
    """Make and send every program of one commune the naive way; return its figures."""
    db = open_database(settings.db_url)
    engines = build_engine_chain(settings.tts, outbound=settings.outbound)
    speak = spoken_form(settings)
    clips = load_catalog(settings.voices_dir).clip_paths()
    bulletins = bulletin_store.airable_bulletins(db, day)
    recordings = current_recordings(db, [b.id for b in bulletins if b.id is not None])
    producer = Producer(settings=settings, deployment=Deployment(settings.timezone, (), (commune,)), db=db)
    make_s = send_s = 0.0
    audio_ms = bytes_sent = 0
    try:
        for slot in commune.slots:
            started = time.monotonic()
            _, script = producer.preview_script(day, commune, slot.name)
            if script is None:
                continue
            program = AudioSegment.empty()
            with tempfile.TemporaryDirectory(dir=work) as tmp:
                for cue in script.cues:
                    part = _cue_audio(
                        cue, engines=engines, speak=speak, clips=clips, recordings=recordings, tmp=Path(tmp)
                    )
                    if part is not None:
                        program += part.set_channels(1).set_frame_rate(settings.audio.sample_rate)
            program = program.apply_gain(settings.audio.target_lufs - program.dBFS)
            mp3 = work / f"{commune.code}-{slot.name}.mp3"
            program.export(mp3, format="mp3", bitrate=f"{settings.audio.bitrate_kbps}k")
            audio_ms += len(program)
            del program
            make_s += time.monotonic() - started
            started = time.monotonic()
            for endpoint in commune.endpoints:
                with open_transport(endpoint, settings=settings.deliver, create_root=True) as t:
                    bytes_sent += t.put_file(mp3, f"naive/{day.isoformat()}/{slot.name}.mp3")
            send_s += time.monotonic() - started
            mp3.unlink()
    finally:
        db.close()
    return {"code": commune.code, "make_s": make_s, "send_s": send_s, "audio_ms": audio_ms, "bytes_sent": bytes_sent}


def measure(config: Path, day: dt.date, codes: list[str]) -> dict[str, Any]:
    settings = load_settings(config, environ={})
    deployment = load_deployment(settings.schedules_dir)
    work = settings.data_dir / "tmp" / "naive"
    work.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    per = []
    for code in codes:
        commune = deployment.commune(code)
        if commune is None:
            raise SystemExit(f"commune {code}: not in {settings.schedules_dir}")
        per.append(naive_commune(commune, day, settings=settings, work=work))
    return {
        "communes": codes,
        "wall_s": round(time.monotonic() - started, 2),
        "make_s": round(sum(p["make_s"] for p in per), 2),
        "send_s": round(sum(p["send_s"] for p in per), 2),
        "audio_ms": sum(p["audio_ms"] for p in per),
        "bytes_sent": sum(p["bytes_sent"] for p in per),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "peak_child_rss_mb": round(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024, 1),
    }


def main(argv: list[str]) -> int:
    if len(argv) < 3:
        print("usage: python -m pipeline.bench.naive CONFIG DATE CODE...", file=sys.stderr)
        return 2
    print(json.dumps(measure(Path(argv[0]), dt.date.fromisoformat(argv[1]), argv[2:])))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
