"""``/healthz``, ``/readyz`` and ``/metrics``: what systemd, load balancers and Prometheus ask.

``/healthz`` and ``/readyz`` say nothing secret (check names and short findings) and are
open, as probes need; ``/metrics`` answers only a client in ``[metrics] allow`` (loopback
by default) or one that shows ``[metrics]``'s bearer token. A request that came through a
reverse proxy not listed in ``[web] trusted_proxies`` carries X-Forwarded-For from a
loopback peer: it is not taken for a local scraper.
"""

from __future__ import annotations

import datetime as dt
import hmac
import ipaddress
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST
from starlette.concurrency import run_in_threadpool

from pipeline.config import Settings
from pipeline.ops.health import readiness
from pipeline.ops.metrics import make_registry, render
from pipeline.web.state import web_state

router = APIRouter(include_in_schema=False)

NO_STORE = {"Cache-Control": "no-store"}


@router.get("/healthz")
def healthz() -> Response:
    return JSONResponse({"status": "ok"}, headers=NO_STORE)


@router.get("/readyz")
def readyz(request: Request) -> Response:
    state = web_state(request)
    result = readiness(state.settings, state.db, now=dt.datetime.now(dt.UTC))
    return JSONResponse(result.as_json(), status_code=200 if result.ok else 503, headers=NO_STORE)


def metrics_token(settings: Settings) -> str | None:
    m = settings.metrics
    if m.token is not None and m.token.get_secret_value():
        return m.token.get_secret_value()
    if m.token_file is not None:
        try:
            return m.token_file.read_text(encoding="utf-8").strip() or None
        except OSError:
            return None
    return None


def metrics_allowed(settings: Settings, *, client: str | None, headers: Any) -> bool:
    token = metrics_token(settings)
    auth = str(headers.get("authorization") or "")
    if token and auth.lower().startswith("bearer "):
        return hmac.compare_digest(auth[7:].strip().encode(), token.encode())
    if not client or headers.get("x-forwarded-for") or headers.get("forwarded"):
        return False  # proxied by a proxy we were not told to trust: not a local scraper
    try:
        addr = ipaddress.ip_address(client)
    except ValueError:
        return False
    return any(addr in ipaddress.ip_network(n, strict=False) for n in settings.metrics.allow)


@router.get("/metrics")
async def metrics(request: Request) -> Response:
    state = web_state(request)
    client = request.client.host if request.client else None
    if not metrics_allowed(state.settings, client=client, headers=request.headers):
        return JSONResponse(
            {"detail": "Không được đọc số liệu giám sát từ địa chỉ này; xem [metrics] trong cấu hình."},
            status_code=403,
            headers=NO_STORE,
        )
    registry = getattr(request.app.state, "loa_metrics", None)
    if registry is None:
        registry = make_registry(state.settings, state.deployment, state.db)
        request.app.state.loa_metrics = registry
    body = await run_in_threadpool(render, registry)
    return Response(body, media_type=CONTENT_TYPE_LATEST, headers=NO_STORE)
