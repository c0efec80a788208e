"""The runner page: queues, their depth, the workers that answer and every worker's heartbeat
(host, pid, last beat in the deployment's time zone, alive or not) for `[runner] kind = "celery"`."""

from __future__ import annotations

import datetime as dt
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from pipeline.web.auth import Approver
from pipeline.web.pages import render
from pipeline.web.state import web_state

router = APIRouter(include_in_schema=False)

QUEUE_VI = {"loa-urgent": "Khẩn cấp (loa-urgent)", "loa": "Chương trình hằng ngày (loa)"}


@router.get("/runner")
def runner_page(request: Request, who: Approver) -> Response:
    state = web_state(request)
    info = None
    if state.settings.runner.kind == "celery":
        from pipeline.runner_celery import runner_status

        info = runner_status(state.settings)
    beats = [heartbeat_row(h, state.settings.tz) for h in (info or {}).get("heartbeats", []) or []]
    return render(request, "runner.html", kind=state.settings.runner.kind, info=info, beats=beats, QUEUE_VI=QUEUE_VI)


def heartbeat_row(h: dict[str, Any], tz: dt.tzinfo) -> dict[str, Any]:
    """One worker's heartbeat for the page: its last beat as ``HH:MM:SS ngày DD/MM/YYYY`` in ``tz``."""
    at = dt.datetime.fromtimestamp(float(h.get("last_seen", 0.0)), tz=dt.UTC).astimezone(tz)
    return {
        "name": h["name"],
        "host": h.get("host", ""),
        "pid": h.get("pid", 0),
        "at": f"{at:%H:%M:%S} ngày {at:%d/%m/%Y}",
        "age_s": round(float(h.get("age_s", 0.0))),
        "alive": bool(h.get("alive")),
    }
