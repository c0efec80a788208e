"""``loa scheduler``: run the schedule in the foreground until SIGTERM or SIGINT."""

from __future__ import annotations

import logging
import os
import signal
import threading
from types import FrameType

import typer

from pipeline.cli.context import ctx_of
from pipeline.errors import EXIT_FAILURE


def scheduler(ctx: typer.Context) -> None:
    """Run the schedule: the nightly job, delivery retries, emergency dispatch.

    Logs to stderr. SIGTERM or Ctrl-C stops it cleanly (a running job finishes first;
    a second signal stops at once). See docs/scheduler.md for the systemd unit.

    Example: loa --config /etc/loa/loa.toml scheduler
    """
    from pipeline.scheduler import run_scheduler

    app = ctx_of(ctx)
    settings, deployment = app.settings, app.deployment  # a bad config fails here, exit 2
    if not app.verbose:
        logging.getLogger("pipeline").setLevel(logging.INFO)
    log = logging.getLogger("pipeline.scheduler")
    stop = threading.Event()

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        if stop.is_set():
            log.error("second %s: stopping now without waiting for the running job", signal.Signals(signum).name)
            os._exit(EXIT_FAILURE)
        log.info("%s received: shutting down", signal.Signals(signum).name)
        stop.set()

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        run_scheduler(settings, deployment=deployment, stop=stop)
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)


def register(app: typer.Typer) -> None:
    app.command("scheduler")(scheduler)
