"""The runner page: queues, their depth and the workers alive (for `[runner] kind = "celery"`)."""

from __future__ import annotations

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
    return render(request, "runner.html", kind=state.settings.runner.kind, info=info, QUEUE_VI=QUEUE_VI)
