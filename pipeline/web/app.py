"""``create_app(settings)``: the web UI (Vietnamese) and the pull API, one FastAPI app."""

from __future__ import annotations

import logging
from pathlib import Path
from urllib.parse import quote

from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from loa_protocol.errors import ProtocolError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from pipeline import __version__
from pipeline.config import Settings
from pipeline.deployment import load_deployment
from pipeline.errors import LoaError, NotFoundError, UsageError
from pipeline.messages import vietnamese, vietnamese_protocol
from pipeline.models import Deployment
from pipeline.store import Database, open_database
from pipeline.web import (
    api,
    api_agency,
    api_device,
    api_public,
    api_receipts,
    params,
    routes_actions,
    routes_admin,
    routes_agencies,
    routes_auth,
    routes_bulletins,
    routes_calendar,
    routes_communes,
    routes_consultation_meeting,
    routes_consultation_public,
    routes_consultation_staff,
    routes_decisions,
    routes_deliveries,
    routes_devices,
    routes_feeds,
    routes_operator_reports,
    routes_ops,
    routes_phrases,
    routes_preview,
    routes_public,
    routes_readings,
    routes_reports,
    routes_runner,
    routes_webhooks,
)
from pipeline.web.auth import LoginGuard, LoginRequired, SessionCodec, load_secret_key
from pipeline.web.clientaddr import ForwardedMiddleware
from pipeline.web.pages import BodyLimitMiddleware, HeadMiddleware, SecurityHeadersMiddleware, make_environment, render
from pipeline.web.public_cache import PublicCache
from pipeline.web.state import WebState

log = logging.getLogger(__name__)
STATIC_DIR = Path(__file__).parent / "static"
#: Every router of the app, in matching order (tests walk their routes).
ROUTERS = (
    routes_ops.router,
    routes_auth.router,
    routes_bulletins.router,
    routes_actions.router,
    routes_preview.router,
    routes_deliveries.router,
    routes_communes.router,
    routes_admin.router,
    routes_reports.router,
    routes_operator_reports.router,
    routes_calendar.router,
    routes_readings.router,
    routes_phrases.router,
    routes_runner.router,
    api.router,
    routes_consultation_public.router,
    routes_consultation_staff.router,
    routes_consultation_meeting.router,
    routes_consultation_meeting.api_router,
    api_receipts.router,
    api_device.router,
    routes_devices.router,
    routes_decisions.router,
    routes_decisions.api_router,
    api_agency.router,
    routes_public.router,
    routes_feeds.router,
    api_public.router,
    routes_webhooks.router,
    routes_agencies.router,
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
        dependencies=[Depends(params.check_url_numbers)],  # every {…_id} of every route, checked once
    )
    app.state.loa = WebState(
        settings=settings,
        deployment=deployment or load_deployment(settings.schedules_dir, default_timezone=settings.timezone),
        db=db or open_database(settings.db_url),
        templates=make_environment(settings.tz),
        limiter=LoginGuard.for_settings(
            settings.web.login_attempts_per_minute,
            settings.web.login_account_failures,
            settings.web.login_lockout_failures,
        ),
        codec=SessionCodec(load_secret_key(settings.data_dir)),
    )
    app.state.public_cache = PublicCache(settings, app.state.loa.deployment, app.state.loa.db)
    app.add_middleware(api_public.PublicCors, origins=settings.publish.cors_origins)
    app.add_middleware(HeadMiddleware)
    app.add_middleware(SecurityHeadersMiddleware)
    app.add_middleware(BodyLimitMiddleware, limit=settings.web.max_upload_mb * 1024 * 1024)
    app.add_middleware(ForwardedMiddleware, trusted=settings.web.trusted_proxies)
    app.add_middleware(UnexpectedErrorMiddleware)  # outermost: a failure is a 500 page, the connection lives on
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    for router in ROUTERS:
        app.include_router(router)
    _handlers(app)
    return app


def _is_api(request: Request) -> bool:
    return request.url.path.startswith("/api/")


#: Starlette's own English details, in Vietnamese.
STATUS_VI = {
    400: "Yêu cầu không hợp lệ.",
    401: "Cần đăng nhập hoặc mã truy cập.",
    403: "Bạn không có quyền làm việc này.",
    404: "Không tìm thấy trang này.",
    405: "Không thể làm việc này theo cách đó.",
    413: "Tệp quá lớn.",
    422: "Thông tin gửi lên không hợp lệ.",
    429: "Quá nhiều yêu cầu; hãy chờ một lát rồi thử lại.",
    500: "Máy chủ gặp lỗi; việc này chưa làm được. Hãy thử lại sau hoặc báo cho quản trị viên.",
}
FIELD_NAMES_VI = {
    "date": "ngày",
    "day": "ngày",
    "week": "tuần",
    "from": "từ ngày",
    "to": "đến ngày",
    "date_from": "từ ngày",
    "date_to": "đến ngày",
    "bulletin_id": "số bản tin",
    "user_id": "số người dùng",
    "token_id": "số mã",
    "consultation_id": "số cuộc lấy ý kiến",
    "answer_id": "số ý kiến",
}


def _vi_detail(status: int, detail: object) -> str:
    """A Vietnamese message: ours as given; Starlette's English defaults replaced."""
    if isinstance(detail, str) and detail and not detail.isascii():
        return detail
    return STATUS_VI.get(status, "Có lỗi.")


def _validation_vi(exc: RequestValidationError) -> str:
    names = []
    for err in exc.errors():
        loc = [str(x) for x in err.get("loc", ()) if x not in ("query", "path", "body", "form")]
        if loc:
            names.append(FIELD_NAMES_VI.get(loc[-1], loc[-1]))
    where = f" ({', '.join(dict.fromkeys(names))})" if names else ""
    return f"Thông tin gửi lên không hợp lệ{where}; hãy kiểm tra lại địa chỉ hoặc biểu mẫu."


def _answer(
    request: Request, status: int, message: str, headers: dict[str, str] | None = None, *, code: str | None = None
) -> Response:
    if _is_api(request):
        body = {"detail": message} if code is None else {"detail": message, "code": code}
        return JSONResponse(body, status_code=status, headers=headers)
    public = status == 404 and request.url.path.startswith(("/archive", "/feeds"))  # the citizens' own 404 page
    response = render(request, "public/404.html" if public else "error.html", status=status, message=message)
    if headers:
        response.headers.update(headers)
    return response


def _handlers(app: FastAPI) -> None:
    @app.exception_handler(LoginRequired)
    async def login_required(request: Request, exc: LoginRequired) -> Response:
        return RedirectResponse(f"/login?next={quote(exc.next_url, safe='')}", status_code=303)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        return _answer(request, exc.status_code, _vi_detail(exc.status_code, exc.detail), dict(exc.headers or {}))

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> Response:
        # a malformed id, date or query string: the page does not exist (UI) or the request is bad (API)
        status = 422 if _is_api(request) or request.method != "GET" else 404
        return _answer(request, status, _validation_vi(exc))

    @app.exception_handler(LoaError)
    async def loa_error(request: Request, exc: LoaError) -> Response:
        status = 404 if isinstance(exc, NotFoundError) else 400 if isinstance(exc, UsageError) else 500
        if status == 500:
            log.error("%s %s: %s", request.method, request.url.path, exc)
            return _answer(request, 500, STATUS_VI[500])
        return _answer(request, status, vietnamese(exc), code=exc.code)

    @app.exception_handler(ProtocolError)
    async def protocol_error(request: Request, exc: ProtocolError) -> Response:
        log.warning("%s %s: %s", request.method, request.url.path, exc)
        return _answer(request, 400, vietnamese_protocol(exc))


class UnexpectedErrorMiddleware:
    """Any other failure: logged, answered with the Vietnamese 500 page, and not raised further.

    Starlette's own last-resort handler answers and then re-raises, and uvicorn then closes
    the connection: the client's next request on it (a browser's, a CDN's, a load
    balancer's) was reset. Here the answer is complete and the connection is kept.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        except Exception:
            request = Request(scope)
            log.exception("%s %s failed", request.method, request.url.path)
            if started:
                raise  # half an answer is out: only closing the connection tells the client
            await _answer(request, 500, STATUS_VI[500])(scope, receive, send)
