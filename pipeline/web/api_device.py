"""The pull API's device side: the server's time, emergencies at once, heartbeats, enrollment, rotation.

- ``GET /api/v1/time``: the server's clock to the millisecond (a device corrects its own by it);
- ``GET /api/v1/endpoints/{name}/events?since=&wait=``: long-poll; answers as soon as the
  emergencies in force for the endpoint differ from version ``since`` (a new warning, a
  cancel), else after ``wait`` seconds (at most 55) with the same version;
- ``POST /api/v1/endpoints/{name}/heartbeat``: version, free space, clock offset, last
  program played; the answer says whether the web asked for a new token;
- ``POST /api/v1/endpoints/{name}/token`` then ``…/token/confirm`` (with the new token):
  token rotation without a window in which the device has none that works;
- ``POST /api/v1/enroll``: a one-time code for the endpoint's token, the deployment's
  public key and the endpoint's receipt key. Wrong, used or expired codes: 400, 409, 410,
  in Vietnamese; too many of them from one address (or from everyone) within an hour: 429
  with Retry-After (``[web] enroll_failures_per_client_per_hour``, ``enroll_failures_per_hour``).

docs/manifest.md specifies all of it for vendors; ``loa_protocol.client`` is the client.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import json
import logging
import time
from collections.abc import Callable
from math import ceil
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from pipeline import devices
from pipeline.messages import vietnamese
from pipeline.models import Endpoint
from pipeline.package import manifest_path
from pipeline.signing import load_key, public_key
from pipeline.store.devices import EnrollmentError
from pipeline.web.api import EndpointDep
from pipeline.web.auth import RateLimiter
from pipeline.web.outbox import active_emergencies, endpoint_manifest
from pipeline.web.state import WebState, web_state

log = logging.getLogger(__name__)


def client_ip(request: Request) -> str | None:
    return request.client.host if request.client else None


router = APIRouter(prefix="/api/v1", tags=["device"])
MAX_WAIT_S = 55
POLL_S = 1.0


def server_now(request: Request) -> dt.datetime:
    """The server's clock; tests of the simulated week set ``app.state.device_clock``."""
    clock: Callable[[], dt.datetime] | None = getattr(request.app.state, "device_clock", None)
    return clock() if clock is not None else dt.datetime.now(dt.UTC)


@router.get("/time", summary="The server's clock (ISO 8601, milliseconds, UTC)")
def time_now(request: Request) -> dict[str, str]:
    return {"now": server_now(request).astimezone(dt.UTC).isoformat(timespec="milliseconds")}


# --- emergencies at once ----------------------------------------------------------


def _emergencies(state: WebState, endpoint: Endpoint, now: dt.datetime) -> list[dict[str, Any]]:
    found = active_emergencies(state.settings, endpoint.commune, now)
    out = []
    for folder, m in found:
        path = endpoint_manifest(state.settings, endpoint, folder)
        if m.emergency is None or path is None:
            continue
        out.append(
            {
                "folder": folder,
                "bulletin": m.emergency.bulletin,
                "title": m.emergency.title,
                "expires": m.emergency.expires.isoformat(),
                "cancelled": m.emergency.cancelled,
                "sha256": hashlib.sha256(path.read_bytes()).hexdigest(),  # changes with a cancel or a new replay
            }
        )
    return out


def _fingerprint(state: WebState, endpoint: Endpoint) -> tuple[tuple[str, int, int], ...]:
    """What the emergency folders hold for ``endpoint``, by name, time and size only: cheap to poll."""
    base = state.settings.outbox_dir / endpoint.commune / "emergency"
    out = []
    try:
        subs = sorted(base.iterdir())
    except OSError:
        return ()
    for sub in subs:
        try:
            st = manifest_path(
                state.settings.outbox_dir, endpoint.commune, f"emergency/{sub.name}", endpoint.name
            ).stat()
        except OSError:
            continue
        out.append((sub.name, st.st_mtime_ns, st.st_size))
    return tuple(out)


def _version(items: list[dict[str, Any]]) -> str:
    return hashlib.sha256(json.dumps(items, sort_keys=True).encode()).hexdigest()[:32]


@router.get(
    "/endpoints/{name}/events",
    summary="Long-poll: the emergencies in force, as soon as they change",
    responses={200: {"description": '{"version": "…", "emergencies": [...]}'}},
)
async def events(
    request: Request,
    endpoint: EndpointDep,
    since: Annotated[str, Query(max_length=64)] = "",
    wait: Annotated[int, Query(ge=0, le=MAX_WAIT_S)] = 25,
) -> JSONResponse:
    state = web_state(request)
    deadline = time.monotonic() + wait
    while True:
        items = await run_in_threadpool(_emergencies, state, endpoint, dt.datetime.now(state.settings.tz))
        version = _version(items)
        if version != since or time.monotonic() >= deadline or await request.is_disconnected():
            return JSONResponse({"version": version, "emergencies": items}, headers={"cache-control": "no-store"})
        await asyncio.sleep(POLL_S)


# --- heartbeat ----------------------------------------------------------------------


class HeartbeatIn(BaseModel):
    version: str = Field(max_length=64)
    free_bytes: int | None = Field(default=None, ge=0)
    clock_offset_s: float | None = None
    last_program: str | None = Field(default=None, max_length=200)
    last_played_at: dt.datetime | None = None
    pending_receipts: int | None = Field(default=None, ge=0)
    mode: str | None = Field(default=None, max_length=16)  # pull | folder
    player: str | None = Field(default=None, max_length=200)
    refused: list[str] = Field(default_factory=list, max_length=20)  # what it would not play, and why


@router.post("/endpoints/{name}/heartbeat", summary="The device is alive: version, free space, clock, last play")
def heartbeat(request: Request, endpoint: EndpointDep, body: HeartbeatIn) -> dict[str, Any]:
    state = web_state(request)
    if body.clock_offset_s is not None and abs(body.clock_offset_s) > devices.CLOCK_WARN_S:
        log.warning("%s: the device's clock is off by %.0f s", endpoint.name, body.clock_offset_s)
    device = devices.record_heartbeat(
        state.db,
        endpoint.name,
        devices.Heartbeat(
            version=body.version,
            free_bytes=body.free_bytes,
            clock_offset_s=body.clock_offset_s,
            last_program=body.last_program,
            last_played_at=body.last_played_at,
            pending_receipts=body.pending_receipts,
            detail={"mode": body.mode, "player": body.player, "refused": [r[:300] for r in body.refused]},
        ),
    )
    return {
        "ok": True,
        "rotate": device.rotate_requested_at is not None,
        "now": server_now(request).astimezone(dt.UTC).isoformat(timespec="milliseconds"),
    }


# --- token rotation -----------------------------------------------------------------


@router.post("/endpoints/{name}/token", summary="A new token for this endpoint (the old stays until confirmed)")
def rotate(request: Request, endpoint: EndpointDep) -> dict[str, str]:
    token = devices.rotate(web_state(request).db, endpoint.name)
    return {"endpoint": endpoint.name, "token": token}


@router.post("/endpoints/{name}/token/confirm", summary="Called with the new token: the old ones are revoked")
def confirm(request: Request, endpoint: EndpointDep) -> dict[str, int]:
    return {"revoked": devices.confirm_rotation(web_state(request).db, endpoint.name)}


# --- enrollment ---------------------------------------------------------------------


EVERYONE = "*"


class EnrollLimits:
    """Refused enrollment codes per client address and from everyone, within an hour: the
    login's sliding-window :class:`RateLimiter`, as the public consultation form uses it."""

    def __init__(self, per_client_per_hour: int, per_hour: int) -> None:
        self.per_client = RateLimiter(per_client_per_hour, window_s=3600)
        self.overall = RateLimiter(per_hour, window_s=3600)


def enroll_limits(request: Request) -> EnrollLimits:
    found = getattr(request.app.state, "loa_enroll_limits", None)
    if not isinstance(found, EnrollLimits):
        web = web_state(request).settings.web
        found = EnrollLimits(web.enroll_failures_per_client_per_hour, web.enroll_failures_per_hour)
        request.app.state.loa_enroll_limits = found
    return found


class EnrollIn(BaseModel):
    code: str = Field(min_length=1, max_length=40)
    device: dict[str, str] = Field(default_factory=dict, max_length=10)


_ENROLL_STATUS = {"enroll.wrong": 400, "enroll.used": 409, "enroll.expired": 410, "enroll.no_endpoint": 410}


@router.post(
    "/enroll",
    summary="Trade a one-time enrollment code for the endpoint's token and the deployment's keys",
    responses={
        400: {"description": "wrong code"},
        409: {"description": "used"},
        410: {"description": "expired"},
        429: {"description": "too many refused codes from this address or from everyone; see Retry-After"},
    },
)
def enroll(request: Request, body: EnrollIn) -> JSONResponse:
    state = web_state(request)
    limits = enroll_limits(request)
    client = client_ip(request) or "?"
    wait = max(limits.per_client.wait_s(client), limits.overall.wait_s(EVERYONE))
    if wait > 0:
        log.warning("enrollment from %s refused: too many wrong codes", client)
        refused = EnrollmentError("too many wrong enrollment codes", code="enroll.too_many", minutes=ceil(wait / 60))
        return JSONResponse(
            {"detail": vietnamese(refused), "code": refused.code},
            status_code=429,
            headers={"Retry-After": str(ceil(wait))},
        )
    pub = public_key(load_key(state.settings.signing_key_file, create=True).public_key())
    try:
        done = devices.enroll(
            state.db,
            state.deployment,
            body.code,
            public_key=pub,
            data_dir=state.settings.data_dir,
            client=client_ip(request),
        )
    except EnrollmentError as exc:
        limits.per_client.failed(client)  # every refused code counts: guesses hit used codes too
        limits.overall.failed(EVERYONE)
        log.warning("enrollment refused from %s: %s", client_ip(request), exc.code)
        return JSONResponse(
            {"detail": vietnamese(exc), "code": exc.code}, status_code=_ENROLL_STATUS.get(exc.code, 400)
        )
    return JSONResponse(
        {
            "endpoint": done.endpoint,
            "commune": done.commune,
            "token": done.token,
            "public_key": done.public_key.pem,
            "fingerprint": done.public_key.fingerprint,
            "receipt_key": done.receipt_key.hex(),
            "timezone": done.timezone,
            "now": server_now(request).astimezone(dt.UTC).isoformat(timespec="milliseconds"),
        },
        headers={"cache-control": "no-store"},
    )
