"""Preview: the cue sheet one commune would hear in one slot, and its audio made on demand.

A draft can be previewed "as if approved": it is planned with the approved bulletins of
that day. The audio goes through the same render and master stages as the nightly
job (so the segments it makes are reused by the next build) and is joined into one MP3.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
from pathlib import Path
from typing import Any

from pipeline import compose as compose_stage
from pipeline import plan as plan_stage
from pipeline.config import Settings
from pipeline.errors import RenderError
from pipeline.master import join_program
from pipeline.models import Bulletin, Commune, ProgramPlan, Script
from pipeline.nightly import normalizer
from pipeline.render import render_jobs, script_jobs, segments_for
from pipeline.segcache import SegmentCache
from pipeline.store import Database
from pipeline.store import bulletins as bulletin_store
from pipeline.store import runs as run_store
from pipeline.store.recordings import current_recordings
from pipeline.tts.chain import build_engine_chain
from pipeline.voices import load_catalog


def preview_script(
    day: dt.date, commune: Commune, slot: str, *, settings: Settings, db: Database, draft: Bulletin | None = None
) -> tuple[ProgramPlan | None, Script | None]:
    """The plan and cue sheet of one slot; ``draft`` is included as if it were approved."""
    bulletins = [b for b in bulletin_store.airable_bulletins(db, day) if draft is None or b.id != draft.id]
    if draft is not None and draft.status != "withdrawn":
        bulletins.append(dataclasses.replace(draft, status="approved"))
    recordings = current_recordings(db, [b.id for b in bulletins if b.id is not None])
    plans = plan_stage.plan_commune_day(
        day, commune, bulletins=bulletins, recordings=recordings, spoken=normalizer(settings)
    )
    plan = next((p for p in plans if p.slot.name == slot), None)
    if plan is None:
        return None, None
    script = compose_stage.compose_script(
        plan,
        templates=compose_stage.TemplateSet.load(settings.templates_dir),
        catalog=load_catalog(settings.voices_dir),
        recordings=recordings,
        on_missing="skip",
    )
    return plan, script


def preview_audio(script: Script, *, settings: Settings, db: Database) -> Path:
    """Render the script's cues (reusing the segment cache) and join them into one MP3."""
    ids = sorted({c.bulletin_id for c in script.cues if c.bulletin_id is not None})
    recordings = current_recordings(db, ids)
    catalog = load_catalog(settings.voices_dir)
    engines = build_engine_chain(settings.tts)
    job_args: dict[str, Any] = {
        "engines": engines,
        "settings": settings,
        "normalize": normalizer(settings),
        "clips": catalog.clip_paths(),
        "recordings": recordings,
    }
    jobs, errors = script_jobs(script, **job_args)
    if errors:
        raise errors[0]
    result = render_jobs(jobs, engines=engines, cache=SegmentCache(settings.cache_dir / "segments"), settings=settings)
    run_store.record_segments(db, result.segments.values())
    segments, errors = segments_for(jobs, result)
    if errors:
        raise errors[0]
    if not segments:
        raise RenderError(f"{script.name}: nothing to play")
    key = hashlib.sha256(" ".join(s.key for s in segments).encode()).hexdigest()[:32]
    dst = settings.data_dir / "tmp" / "preview" / f"{key}.mp3"
    if not dst.is_file():
        dst.parent.mkdir(parents=True, exist_ok=True)
        join_program(
            [s.path for s in segments], dst, title=f"Nghe thử {script.name}", album="Loa — nghe thử", settings=settings
        )
    return dst
