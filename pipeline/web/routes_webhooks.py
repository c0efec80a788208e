"""Admins see the webhook outbox: each event, where it went, delivered or failed and why."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from pipeline import labels
from pipeline.store.webhooks import list_deliveries
from pipeline.web.auth import Authed, require_role
from pipeline.web.pages import render
from pipeline.web.state import web_state

router = APIRouter(include_in_schema=False)
KIND_VI = {"bulletin.approved": "Duyệt bản tin", "bulletin.withdrawn": "Thu hồi bản tin", "program.aired": "Đã phát"}
#: admins pass every role check; nobody else has the role "admin-only"
Admin = Annotated[Authed, Depends(require_role("admin-only"))]


@router.get("/admin/webhooks")
def webhooks_page(request: Request, who: Admin, status: str = "") -> Response:
    state = web_state(request)
    rows = list_deliveries(state.db, limit=300)
    if status in labels.WEBHOOK:
        rows = [d for d in rows if d.status == status]
    return render(
        request,
        "webhooks.html",
        rows=rows,
        hooks=[h.url for h in state.settings.webhook],
        filter_status=status,
        STATUS_VI=labels.WEBHOOK,
        KIND_VI=KIND_VI,
        tz=state.settings.tz,
    )
