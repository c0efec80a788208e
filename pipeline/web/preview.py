"""Preview: the cue sheet one commune would hear in one slot, and its audio made on demand.

A draft can be previewed "as if approved": it is planned with the approved bulletins of
that day. The audio goes through the same render and master stages as the nightly
job (so the segments it makes are reused by the next build) and is joined into one MP3.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from pipeline.config import Settings
from pipeline.errors import RenderError
from pipeline.master import join_program
from pipeline.models import Script
from pipeline.nightly import render_setup
from pipeline.render import render_jobs, script_jobs, segments_for
from pipeline.segcache import SegmentCache
from pipeline.store import Database
from pipeline.store import runs as run_store
from pipeline.store.recordings import current_recordings


def preview_audio(script: Script, *, settings: Settings, db: Database) -> Path:
    """Render the script's cues (reusing the segment cache) and join them into one MP3."""
    ids = sorted({c.bulletin_id for c in script.cues if c.bulletin_id is not None})
    recordings = current_recordings(db, ids)
    engines, job_args = render_setup(settings, recordings)
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
