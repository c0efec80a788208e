"""Rendering pages, Vietnamese labels, and the request-size limit."""

from __future__ import annotations

import datetime as dt
import json
import secrets
import unicodedata
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from fastapi import Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from pipeline import labels
from pipeline.audio.levels import LEVEL_WARNINGS_VI
from pipeline.broadcast.replay import replay_every
from pipeline.messages import delivery_error_vi, gap_vi
from pipeline.models import LANGUAGES, Deployment
from pipeline.readings import READING_WARNINGS_VI
from pipeline.web.auth import CSRF_FIELD, Authed
from pipeline.web.state import web_state

TEMPLATES_DIR = Path(__file__).parent / "templates"

ROLE_VI = {
    "admin": "Quản trị",
    "editor": "Biên tập",
    "approver": "Duyệt tin",
    "operator": "Đài xã",
    "reader": "Người đọc",
}
SLOT_VI = {"morning": "Buổi sáng", "noon": "Buổi trưa", "evening": "Buổi chiều", "night": "Buổi tối"}
NOTICES = {
    "added": "Đã lưu bản tin mới (nháp, cần duyệt).",
    "revised": "Đã lưu phiên bản mới; bản tin trở về nháp và cần duyệt lại.",
    "unchanged": "Nội dung không đổi; không có gì để lưu.",
    "approved": "Đã duyệt bản tin.",
    "withdrawn": "Đã thu hồi bản tin.",
    "recording": "Đã nhận bản ghi.",
    "recording_redraft": "Đã nhận bản ghi. Bản tin đã duyệt nay trở về nháp và cần duyệt lại, vì nội dung phát đã đổi.",
    "recording_removed": "Đã gỡ bản ghi.",
    "recording_removed_redraft": (
        "Đã gỡ bản ghi. Bản tin đã duyệt nay trở về nháp và cần duyệt lại, vì nội dung phát đã đổi."
    ),
    "played": "Đã ghi nhận: chương trình đã phát. Cảm ơn!",
    "problem": "Đã ghi nhận sự cố; trung tâm sẽ liên hệ.",
    "accepted": "Đã ghi nhận: xã nhận phát bản tin.",
    "deferred": "Đã ghi nhận: bản tin được hoãn đến ngày đã chọn.",
    "declined": "Đã ghi nhận: xã từ chối bản tin.",
    "revoked": "Đã thu hồi mã truy cập; cơ quan không dùng được mã đó nữa.",
}
WEEKDAY_VI = ("Thứ Hai", "Thứ Ba", "Thứ Tư", "Thứ Năm", "Thứ Sáu", "Thứ Bảy", "Chủ Nhật")


FIELD_VI = {
    "title": "Tiêu đề",
    "category": "Loại tin",
    "priority": "Mức ưu tiên",
    "source": "Nguồn",
    "reference": "Số, ký hiệu văn bản",
    "valid_from": "Ngày bắt đầu",
    "valid_until": "Ngày kết thúc",
    "targets": "Nơi nhận",
    "languages": "Ngôn ngữ",
    "body": "Nội dung",
}


def nfc(text: str) -> str:
    return unicodedata.normalize("NFC", text)


def vi_day(day: dt.date) -> str:
    return f"{WEEKDAY_VI[day.weekday()]}, {day:%d/%m/%Y}"


def vi_date(day: dt.date | None) -> str:
    """``ngày 01/12/2026``."""
    return "" if day is None else f"{day:%d/%m/%Y}"


def make_vi_time(tz: dt.tzinfo) -> Any:
    def vi_time(moment: dt.datetime | None) -> str:
        """``08:30 ngày 01/12/2026`` in the deployment's time zone (naive values are UTC)."""
        if moment is None:
            return ""
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=dt.UTC)
        local = moment.astimezone(tz)
        return f"{local:%H:%M} ngày {local:%d/%m/%Y}"

    return vi_time


def targets_vi(targets: tuple[str, ...] | list[str], deployment: Deployment) -> str:
    """``("all",)`` → ``Toàn tỉnh``; a group id → its name; a commune code → ``xã <name>``."""
    out = []
    for t in targets:
        if t == "all":
            out.append("Toàn tỉnh")
        elif (g := deployment.group(t)) is not None:
            out.append(g.name)
        elif (c := deployment.commune(t)) is not None:
            out.append(f"{c.kind} {c.name}")
        else:
            out.append(t)
    return ", ".join(out)


def program_vi(program: str) -> str:
    """``02641/2026-12-02/morning`` → ``Buổi sáng ngày 02/12/2026`` (as is when not of that form)."""
    parts = program.split("/")
    if len(parts) >= 3:
        try:
            day = dt.date.fromisoformat(parts[1])
        except ValueError:
            return program
        return f"{SLOT_VI.get(parts[2], parts[2])} ngày {day:%d/%m/%Y}"
    return program


def seconds(ms: int | None) -> str:
    if not ms:
        return "0:00"
    total = round(ms / 1000)
    return f"{total // 60}:{total % 60:02d}"


def make_environment(tz: dt.tzinfo | None = None) -> Environment:
    env = Environment(
        loader=FileSystemLoader(TEMPLATES_DIR),
        autoescape=select_autoescape(default=True, default_for_string=True),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.globals.update(
        LANGUAGES=LANGUAGES,
        STATUS_VI=labels.BULLETIN,  # state labels: pipeline/labels.py, the one table
        PRIORITY_VI=labels.TIER,
        CATEGORY_VI=labels.CATEGORY,
        ROLE_VI=ROLE_VI,
        SLOT_VI=SLOT_VI,
        DELIVERY_VI=labels.DELIVERY,
        DECISION_VI=labels.DECISION,
        CSRF_FIELD=CSRF_FIELD,
        NOTICES=NOTICES,
        LEVEL_WARNINGS=LEVEL_WARNINGS_VI | READING_WARNINGS_VI,
        replay_every=replay_every,
        FIELD_VI=FIELD_VI,
        new_token=lambda: secrets.token_urlsafe(24),
    )
    zone = tz or ZoneInfo("Asia/Ho_Chi_Minh")
    env.filters.update(
        program_vi=program_vi,
        delivery_error_vi=delivery_error_vi,
        targets_vi=targets_vi,
        gap_vi=gap_vi,
        vi_day=vi_day,
        seconds=seconds,
        vi_date=vi_date,
        vi_time=make_vi_time(zone),
    )
    return env


def render(request: Request, name: str, *, status: int = 200, **context: Any) -> HTMLResponse:
    """Render ``templates/<name>`` with the user and the CSRF token every form needs."""
    state = web_state(request)
    who: Authed | None = getattr(request.state, "authed", None)
    context.setdefault("error", None)
    context.setdefault("notice", None)
    html = state.templates.get_template(name).render(
        request=request,
        user=who.user if who else None,
        csrf_token=who.csrf_token if who else "",
        **context,
    )
    return HTMLResponse(nfc(html), status_code=status)


class BodyTooLarge(Exception):
    pass


class BodyLimitMiddleware:
    """Refuse request bodies larger than ``limit`` bytes with 413, without reading them whole.

    A declared Content-Length over the limit is refused before any byte is read; a
    chunked body is counted as it streams and cut off at the limit. The API (``/api/``)
    is answered in JSON like its other errors, pages in HTML.
    """

    def __init__(self, app: ASGIApp, *, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for key, value in scope["headers"]:
            if key == b"content-length" and value.isdigit() and int(value) > self.limit:
                await _too_large(send, self.limit, api=scope["path"].startswith("/api/"))
                return
        received = 0
        started = False

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.limit:
                    raise BodyTooLarge
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counting_receive, tracking_send)
        except BodyTooLarge:
            if not started:
                await _too_large(send, self.limit, api=scope["path"].startswith("/api/"))


async def _too_large(send: Send, limit: int, *, api: bool) -> None:
    message = f"Tệp quá lớn: giới hạn là {limit // (1024 * 1024)} MB. Hãy cắt ngắn hoặc nén bản ghi rồi tải lên lại."
    if api:
        body, ctype = json.dumps({"detail": message}, ensure_ascii=False).encode(), b"application/json"
    else:
        body, ctype = f"<!doctype html><meta charset=utf-8><p>{message}</p>".encode(), b"text/html; charset=utf-8"
    await send(
        {
            "type": "http.response.start",
            "status": 413,
            "headers": [(b"content-type", ctype), (b"connection", b"close")],
        }
    )
    await send({"type": "http.response.body", "body": body})


class SecurityHeadersMiddleware:
    """No framing, no sniffing, only this site's own resources (no inline scripts), no caching.

    Every response but ``/static/`` gets ``Cache-Control: no-store`` (unless it set its
    own): pages show what a logged-in user may see, and a shared computer at the commune
    must not keep them.
    """

    HEADERS = (
        (b"x-frame-options", b"DENY"),
        (b"x-content-type-options", b"nosniff"),
        (b"referrer-policy", b"same-origin"),
        (
            b"content-security-policy",
            b"default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
            b"media-src 'self' blob:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        ),
    )

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        static = scope["path"].startswith("/static/")

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                if not static and not any(k.lower() == b"cache-control" for k, _ in headers):
                    headers.append((b"cache-control", b"no-store"))  # no page or answer kept by a browser or proxy
                message["headers"] = _secure(headers, self.HEADERS)
            await send(message)

        await self.app(scope, receive, with_headers)


def _secure(headers: list[tuple[bytes, bytes]], defaults: tuple[tuple[bytes, bytes], ...]) -> list[tuple[bytes, bytes]]:
    """Add the security headers; a page that may be framed (the public player snippet) says by whom."""
    ancestors = next((v for k, v in headers if k == b"x-loa-frame-ancestors"), None)
    if ancestors is None:
        return [*headers, *defaults]
    headers = [(k, v) for k, v in headers if k != b"x-loa-frame-ancestors"]
    out = [(k, v) for k, v in defaults if k != b"x-frame-options"]
    return [
        *headers,
        *[
            (k, v.replace(b"frame-ancestors 'none'", b"frame-ancestors " + ancestors))
            if k == b"content-security-policy"
            else (k, v)
            for k, v in out
        ],
    ]


class HeadMiddleware:
    """``HEAD`` works wherever ``GET`` does: answered as a GET, without the body."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "HEAD":
            await self.app(scope, receive, send)
            return

        async def no_body(message: Message) -> None:
            if message["type"] == "http.response.body":
                if message.get("more_body", False):
                    return
                message = {"type": "http.response.body", "body": b"", "more_body": False}
            await send(message)

        await self.app(dict(scope, method="GET"), receive, no_body)
