"""``create_app(settings)``: the web UI (Vietnamese) and the pull API, one FastAPI app."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import quote

from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles

from pipeline import __version__
from pipeline.config import Settings
from pipeline.deployment import load_deployment
from pipeline.errors import LoaError, NotFoundError, UsageError
from pipeline.models import Deployment
from pipeline.store import Database, open_database
from pipeline.web import (
    api,
    routes_auth,
    routes_bulletins,
    routes_communes,
    routes_consultation_meeting,
    routes_consultation_public,
    routes_consultation_staff,
    routes_deliveries,
    routes_preview,
)
from pipeline.web.auth import LoginRequired, RateLimiter, SessionCodec, load_secret_key
from pipeline.web.pages import BodyLimitMiddleware, SecurityHeadersMiddleware, make_environment, render
from pipeline.web.state import WebState

STATIC_DIR = Path(__file__).parent / "static"
#: Every router of the app, in matching order (tests walk their routes).
ROUTERS = (
    routes_auth.router,
    routes_bulletins.router,
    routes_preview.router,
    routes_deliveries.router,
    routes_communes.router,
    api.router,
    routes_consultation_public.router,
    routes_consultation_staff.router,
    routes_consultation_meeting.router,
    routes_consultation_meeting.api_router,
)


def create_app(settings: Settings, *, deployment: Deployment | None = None, db: Database | None = None) -> FastAPI:
    """The app for ``settings``; the deployment and database are opened here unless given."""
    app = FastAPI(
        title="Loa",
        version=__version__,
        summary="Bản tin chính sách thành chương trình phát thanh cho loa xã — web và API kéo chương trình.",
        docs_url=None,  # Swagger UI loads scripts from a CDN: not offline, not under our CSP
        redoc_url=None,
        openapi_url="/api/openapi.json",
    )
    app.state.loa = WebState(
        settings=settings,
        deployment=deployment or load_deployment(settings.schedules_dir, default_timezone=settings.timezone),
        db=db or open_database(settings.db_url),
        templates=make_environment(),
        limiter=RateLimiter(settings.web.login_attempts_per_minute),
        codec=SessionCodec(load_secret_key(settings.data_dir)),
    )
    app.add_middleware(SecurityHeadersMiddleware)
    app.add_middleware(BodyLimitMiddleware, limit=settings.web.max_upload_mb * 1024 * 1024)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    for router in ROUTERS:
        app.include_router(router)
    _handlers(app)
    return app


def _is_api(request: Request) -> bool:
    return request.url.path.startswith("/api/")


def _handlers(app: FastAPI) -> None:
    @app.exception_handler(LoginRequired)
    async def login_required(request: Request, exc: LoginRequired) -> Response:
        return RedirectResponse(f"/login?next={quote(exc.next_url, safe='')}", status_code=303)

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> Response:
        if _is_api(request):
            return JSONResponse({"detail": exc.detail}, status_code=exc.status_code, headers=exc.headers)
        message = exc.detail if isinstance(exc.detail, str) else "Có lỗi."
        if exc.status_code == 404 and message == "Not Found":
            message = "Không tìm thấy trang này."
        if exc.status_code == 405:
            message = "Không thể làm việc này theo cách đó."
        return render(request, "error.html", status=exc.status_code, message=message)

    @app.exception_handler(LoaError)
    async def loa_error(request: Request, exc: LoaError) -> Response:
        status = 404 if isinstance(exc, NotFoundError) else 400 if isinstance(exc, UsageError) else 500
        if _is_api(request):
            return JSONResponse({"detail": str(exc)}, status_code=status)
        return render(request, "error.html", status=status, message=str(exc))
