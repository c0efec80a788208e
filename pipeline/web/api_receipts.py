"""Receipts through the pull API: a device fetches its receipt key and uploads what it played.

``GET /api/v1/endpoints/{name}/receipt-key`` gives the endpoint's HMAC key (hex) to its
own token; ``POST /api/v1/endpoints/{name}/receipts`` takes one ``loa.receipt/1`` document:
201 stored, 400 malformed, 403 forged (MAC, endpoint or commune not this token's),
409 replayed (the id was already received). Messages are Vietnamese; the reason in
English follows for the device's log.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import JSONResponse

from pipeline.broadcast import receipts as rc
from pipeline.store import receipts as receipt_store
from pipeline.web.api import EndpointDep
from pipeline.web.state import web_state

router = APIRouter(prefix="/api/v1", tags=["receipts"])


@router.get("/endpoints/{name}/receipt-key", summary="This endpoint's receipt key (HMAC-SHA256, hex)")
def receipt_key(request: Request, endpoint: EndpointDep) -> dict[str, Any]:
    secret = rc.load_receipt_secret(web_state(request).settings.data_dir)
    return {"endpoint": endpoint.name, "algorithm": "HMAC-SHA256", "key": rc.endpoint_key(secret, endpoint.name).hex()}


@router.post(
    "/endpoints/{name}/receipts",
    summary="Upload one as-run receipt (loa.receipt/1)",
    status_code=201,
    responses={
        400: {"description": "malformed"},
        403: {"description": "forged or not this endpoint's"},
        409: {"description": "replayed"},
    },
)
async def upload(request: Request, endpoint: EndpointDep) -> JSONResponse:
    state = web_state(request)
    data = await request.body()
    secret = rc.load_receipt_secret(state.settings.data_dir)
    try:
        receipt = rc.load_and_verify(data, secret=secret, expect_endpoint=endpoint.name, where="biên nhận")
        if receipt.commune != endpoint.commune or receipt.source != "pull":
            raise rc.ForgedReceiptError(
                f"receipt names commune {receipt.commune} and source {receipt.source}; "
                f"this endpoint is in {endpoint.commune} and uploads source 'pull'"
            )
        receipt_store.save_receipt(state.db, receipt, tz=state.settings.tz)
    except rc.ReplayedReceiptError as exc:
        raise HTTPException(409, f"Biên nhận này đã được nhận trước đó; không nhận lại. ({exc})") from exc
    except rc.ForgedReceiptError as exc:
        raise HTTPException(
            403, f"Biên nhận không hợp lệ (sai chữ ký hoặc không phải của điểm nhận này). ({exc})"
        ) from exc
    except rc.ReceiptError as exc:
        raise HTTPException(400, f"Biên nhận sai định dạng. ({exc})") from exc
    return JSONResponse({"id": receipt.id, "stored": True}, status_code=201)
