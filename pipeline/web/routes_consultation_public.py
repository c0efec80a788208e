"""The public answer page of a consultation: no login, Vietnamese, no JavaScript, a few KB.

``GET /y-kien/{code}`` shows the questions; ``POST`` records an answer. A public form has
no session, so CSRF is held by a signed form token (campaign code, random nonce, time)
that must match a same-site cookie carrying the nonce, and is good once. Spam is held
without third-party services: a honeypot field, per-client and per-campaign limits per
hour, and a size limit. ``/y-kien/{code}/qr.svg`` and ``/y-kien/{code}/in`` give the QR
code and a printable poster for the village's notice board.
"""

from __future__ import annotations

import datetime as dt
import io
import logging
import secrets
import threading
from collections import OrderedDict
from typing import Any

import segno
from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import Response
from itsdangerous import BadSignature, SignatureExpired, TimestampSigner

from pipeline.errors import NotFoundError, UsageError
from pipeline.feedback.consultation import (
    CONSENT_TEXT,
    MAX_ANSWER_CHARS,
    MAX_NAME_CHARS,
    check_values,
    clean,
    communes_of,
    normalize_phone,
)
from pipeline.messages import vietnamese
from pipeline.models import Answer, Consultation
from pipeline.store import consultations as store
from pipeline.web.auth import RateLimiter, load_secret_key
from pipeline.web.pages import render
from pipeline.web.state import WebState, web_state

log = logging.getLogger(__name__)
router = APIRouter(include_in_schema=False)
FORM_COOKIE = "loa_yk"
TOKEN_FIELD = "form_token"
HONEYPOT_FIELD = "website"
TOKEN_MAX_AGE_S = 2 * 3600
EXPIRED_VI = "Biểu mẫu đã hết hạn hoặc không hợp lệ; xin bà con tải lại trang rồi trả lời lại."
LIMIT_VI = "Đã nhận quá nhiều ý kiến trong thời gian ngắn; xin bà con thử lại sau ít phút."


class PublicGuards:
    """The form-token signer, the rate limiters and the used nonces of one app."""

    def __init__(self, state: WebState) -> None:
        cfg = state.settings.consultation
        self.signer = TimestampSigner(load_secret_key(state.settings.data_dir), salt="loa-consultation-form")
        self.per_client = RateLimiter(cfg.answers_per_client_per_hour, window_s=3600)
        self.per_campaign = RateLimiter(cfg.answers_per_campaign_per_hour, window_s=3600)
        self._used: OrderedDict[str, None] = OrderedDict()
        self._lock = threading.Lock()

    def use_once(self, nonce: str) -> bool:
        with self._lock:
            if nonce in self._used:
                return False
            self._used[nonce] = None
            while len(self._used) > 50_000:
                self._used.popitem(last=False)
            return True


def guards(request: Request) -> PublicGuards:
    found = getattr(request.app.state, "loa_consultation_guards", None)
    if not isinstance(found, PublicGuards):
        found = PublicGuards(web_state(request))
        request.app.state.loa_consultation_guards = found
    return found


def public_campaign(state: WebState, code: str) -> Consultation:
    """A campaign whose bulletin is approved; anything else does not exist for the public."""
    try:
        c = store.get_campaign(state.db, code) if code.isalnum() and not code.isdigit() else None
    except NotFoundError:
        c = None
    if c is None or c.bulletin_status != "approved":
        raise HTTPException(404, "Không tìm thấy đợt lấy ý kiến này. Xin kiểm tra lại mã số.")
    return c


def _closed_message(c: Consultation, today: dt.date) -> str | None:
    if today < c.spec.opens:
        return f"Đợt lấy ý kiến {c.spec.code} bắt đầu từ ngày {c.spec.opens:%d/%m/%Y}; xin bà con quay lại sau."
    if today > c.spec.closes:
        return (
            f"Đợt lấy ý kiến {c.spec.code} đã kết thúc ngày {c.spec.closes:%d/%m/%Y}; "
            "ý kiến không còn được nhận. Cảm ơn bà con đã quan tâm."
        )
    return None


def _page(
    request: Request,
    c: Consultation,
    *,
    status: int = 200,
    error: str | None = None,
    form: dict[str, Any] | None = None,
) -> Response:
    state = web_state(request)
    now = dt.datetime.now(state.settings.tz)
    closed = _closed_message(c, now.date())
    nonce = secrets.token_urlsafe(16)
    token = guards(request).signer.sign(f"{c.spec.code}:{nonce}").decode()
    communes = [x for x in state.deployment.communes if x.code in set(communes_of(c, state.deployment))]
    response = render(
        request,
        "consultation_public.html",
        status=status,
        c=c,
        closed=closed,
        token=token,
        TOKEN_FIELD=TOKEN_FIELD,
        HONEYPOT_FIELD=HONEYPOT_FIELD,
        communes=communes,
        consent_text=CONSENT_TEXT,
        form=form or {},
        error=error,
        max_chars=MAX_ANSWER_CHARS,
    )
    response.set_cookie(
        FORM_COOKIE,
        nonce,
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
        max_age=TOKEN_MAX_AGE_S,
        path=f"/y-kien/{c.spec.code}",
    )
    return response


@router.get("/y-kien/{code}")
def answer_page(request: Request, code: str) -> Response:
    return _page(request, public_campaign(web_state(request), code))


def _check_token(request: Request, c: Consultation, sent: object) -> None:
    g = guards(request)
    try:
        payload = g.signer.unsign(str(sent or ""), max_age=TOKEN_MAX_AGE_S).decode()
    except (BadSignature, SignatureExpired):
        raise HTTPException(403, EXPIRED_VI) from None
    code, _, nonce = payload.partition(":")
    cookie = request.cookies.get(FORM_COOKIE, "")
    if code != c.spec.code or not nonce or not secrets.compare_digest(nonce, cookie) or not g.use_once(nonce):
        raise HTTPException(403, EXPIRED_VI)


@router.post("/y-kien/{code}")
async def answer_post(request: Request, code: str) -> Response:
    state = web_state(request)
    c = public_campaign(state, code)
    limit = state.settings.consultation.max_answer_kb * 1024
    declared = request.headers.get("content-length", "")
    if (declared.isdigit() and int(declared) > limit) or len(await request.body()) > limit:
        raise HTTPException(413, f"Ý kiến quá dài: tối đa khoảng {limit // 1024} KB. Xin bà con viết ngắn lại.")
    closed = _closed_message(c, dt.datetime.now(state.settings.tz).date())
    if closed:
        raise HTTPException(403, closed)
    form = await request.form(max_files=0, max_fields=40)
    _check_token(request, c, form.get(TOKEN_FIELD))
    g = guards(request)
    client = request.client.host if request.client else "?"
    client_key, campaign_key = f"{c.spec.code}|{client}", c.spec.code
    if g.per_client.wait_s(client_key) > 0 or g.per_campaign.wait_s(campaign_key) > 0:
        raise HTTPException(429, LIMIT_VI, headers={"Retry-After": "600"})
    g.per_client.failed(client_key)  # every try counts against the limits
    g.per_campaign.failed(campaign_key)
    if str(form.get(HONEYPOT_FIELD, "")).strip():
        log.info("consultation %s: honeypot filled by %s; not stored", c.spec.code, client)
        return render(request, "consultation_thanks.html", c=c)
    typed = {k: str(v) for k, v in form.items() if isinstance(v, str)}
    raw = [typed.get(f"q{i}", "") for i in range(1, len(c.spec.questions) + 1)]
    try:
        if any(len(v) > MAX_ANSWER_CHARS for v in raw):
            raise UsageError(f"Mỗi câu trả lời tối đa {MAX_ANSWER_CHARS} ký tự; xin bà con viết ngắn lại.")
        try:
            values = check_values(c, raw)
        except UsageError as exc:
            raise UsageError(f"Câu trả lời chưa hợp lệ. {vietnamese(exc)} Xin chọn lại.") from None
        if not any(values):
            raise UsageError("Xin bà con trả lời ít nhất một câu hỏi.")
        name = clean(typed.get("name", ""), MAX_NAME_CHARS)
        try:
            phone = normalize_phone(typed.get("phone", ""))
        except UsageError as exc:
            raise UsageError(vietnamese(exc)) from None
        commune = typed.get("commune", "")
        if commune and commune not in communes_of(c, state.deployment):
            raise UsageError("Xin chọn xã trong danh sách.")
        consent = typed.get("consent") == "yes"
        if (name or phone) and not consent:
            raise UsageError(
                "Bà con để lại họ tên hoặc số điện thoại thì cần đánh dấu đồng ý xử lý dữ liệu cá nhân; "
                "hoặc để trống các ô đó để gửi ý kiến không kèm thông tin cá nhân."
            )
    except UsageError as exc:
        return _page(request, c, status=400, error=str(exc), form=typed)
    store.add_answer(
        state.db,
        Answer(
            consultation_id=c.id,
            channel="web",
            values=values,
            commune=commune,
            language="vi",
            name=name,
            phone=phone,
            consent=consent,
            source="public",
        ),
    )
    return render(request, "consultation_thanks.html", c=c)


def page_url(request: Request, c: Consultation) -> str:
    base = web_state(request).settings.consultation.public_url.rstrip("/") or str(request.base_url).rstrip("/")
    return f"{base}/y-kien/{c.spec.code}"


@router.get("/y-kien/{code}/qr.svg")
def qr_svg(request: Request, code: str) -> Response:
    c = public_campaign(web_state(request), code)
    qr = segno.make(page_url(request, c), error="m")
    buf = io.BytesIO()
    qr.save(buf, kind="svg", scale=8, border=2, dark="#000", light="#fff", title=f"Góp ý dự thảo {c.spec.code}")
    return Response(
        buf.getvalue(),
        media_type="image/svg+xml",
        headers={"Cache-Control": "public, max-age=3600"},
    )


@router.get("/y-kien/{code}/in")
def poster(request: Request, code: str) -> Response:
    c = public_campaign(web_state(request), code)
    return render(request, "consultation_poster.html", c=c, url=page_url(request, c))
