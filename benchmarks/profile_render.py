"""Profile (CPU time, cProfile) of rendering one day's unique segments, in this thread, fresh cache.

Usage: ``.venv/bin/python -m benchmarks.profile_render CONFIG DATE OUT.prof`` on a project made by
``loa bench --quick --keep DIR`` (CONFIG is ``DIR/project/loa.toml``, DATE the bench's day). Renders
every distinct render unit of the day with ``pipeline.render.render_unit`` (TTS, ingest, master,
segment store) one after another, imports warmed first as in a nightly, and prints the top functions by own CPU time
and the CPU of this process and of its children (espeak-ng).
"""

from __future__ import annotations

import cProfile
import datetime as dt
import pstats
import resource
import sys
import tempfile
import time
from pathlib import Path


def _cpu(who: int) -> float:
    r = resource.getrusage(who)
    return r.ru_utime + r.ru_stime


def main(argv: list[str]) -> int:
    config, day, out = Path(argv[0]), dt.date.fromisoformat(argv[1]), argv[2]
    from pipeline import render
    from pipeline.bench import limit as limit_mod
    from pipeline.config import load_settings
    from pipeline.deployment import load_deployment
    from pipeline.segcache import SegmentCache
    from pipeline.tts.chain import build_engine_chain

    work = Path(tempfile.mkdtemp(prefix="loa-profile-"))
    settings = load_settings(config)
    jobs = limit_mod.unique_jobs(day, settings=settings, deployment=load_deployment(settings.schedules_dir))
    store, engines = SegmentCache(work / "segments"), build_engine_chain(settings.tts)
    # import numpy, scipy and PyAV once, as a long-running nightly has them
    import av  # noqa: F401
    import numpy  # noqa: F401
    import scipy.signal  # noqa: F401

    def all_jobs() -> None:
        for job in jobs:
            render.render_unit(job, engines=engines, store=store, settings=settings)

    own, kids, t0 = _cpu(resource.RUSAGE_SELF), _cpu(resource.RUSAGE_CHILDREN), time.monotonic()
    profile = cProfile.Profile(time.process_time)
    profile.runcall(all_jobs)
    print(
        f"{len(jobs)} jobs; wall {time.monotonic() - t0:.2f} s, CPU of this process "
        f"{_cpu(resource.RUSAGE_SELF) - own:.2f} s, of its children {_cpu(resource.RUSAGE_CHILDREN) - kids:.2f} s"
    )
    profile.dump_stats(out)
    pstats.Stats(out).sort_stats("tottime").print_stats(15)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
