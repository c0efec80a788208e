"""The commune operator's page: today's and tomorrow's programs, downloads, played / problem."""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import uuid
import zipfile
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import FileResponse, RedirectResponse, Response

from pipeline.audio.joined import joined_cache
from pipeline.broadcast import operator_reports
from pipeline.errors import LoaError, NotFoundError
from pipeline.manifest import Manifest, ProgramEntry
from pipeline.messages import vietnamese
from pipeline.package import manifest_path, program_tags
from pipeline.store import users as user_store
from pipeline.web.auth import CommuneUser, check_csrf
from pipeline.web.outbox import (
    active_emergencies,
    commune_root,
    commune_view,
    confined,
    day_manifest,
    folder_manifests,
    single_file,
)
from pipeline.web.pages import render
from pipeline.web.params import path_day
from pipeline.web.routes_devices import device_rows
from pipeline.web.state import web_state

router = APIRouter(include_in_schema=False)


PathDate = Annotated[dt.date, Depends(path_day("date"))]


@router.get("/communes/{code}")
def commune_page(request: Request, code: str, who: CommuneUser) -> Response:
    state = web_state(request)
    commune = state.deployment.commune(code)
    assert commune is not None
    now = dt.datetime.now(state.settings.tz)
    days = [(d, day_manifest(state.settings, code, d)) for d in (now.date(), now.date() + dt.timedelta(days=1))]
    return render(
        request,
        "commune.html",
        commune=commune,
        days=days,
        can_report={p.id for _, m in days if m for p in m.programs if operator_reports.reportable(p, now)},
        emergencies=active_emergencies(state.settings, code, now),
        reports=user_store.play_reports(state.db, code, limit=20),
        devices=device_rows(state, {code}),
        notice=request.query_params.get("ok"),
    )


@router.get("/communes/{code}/files/{path:path}")
def commune_file(request: Request, code: str, path: str, who: CommuneUser, download: int = 0) -> Response:
    state = web_state(request)
    found = confined(commune_root(state.settings, code), path)
    if found is None:
        raise HTTPException(404, "Không tìm thấy tệp này.")
    media = "audio/mpeg" if found.suffix == ".mp3" else "audio/x-mpegurl" if found.suffix == ".m3u" else None
    name = f"{code}-{path.replace('/', '-')}" if download else None
    return FileResponse(found, media_type=media, filename=name)


def _program(manifest: Manifest | None, slot: str) -> ProgramEntry:
    for p in manifest.programs if manifest else ():
        if p.slot == slot:
            return p
    raise HTTPException(404, "Chưa có chương trình cho buổi này.")


@router.get("/communes/{code}/programs/{date}/{slot}.mp3")
def program_mp3(request: Request, code: str, day: PathDate, slot: str, who: CommuneUser) -> Response:
    """The whole program as one MP3: the single file when built, else joined now from its items."""
    state = web_state(request)
    root = commune_root(state.settings, code)
    manifests = folder_manifests(state.settings, code, f"programs/{day.isoformat()}")
    program = _program(commune_view(manifests), slot)
    name = f"{code}-{day.isoformat()}-{slot}.mp3"
    single = single_file(manifests, slot)
    if single and (found := confined(root, single)) is not None:
        return FileResponse(found, media_type="audio/mpeg", filename=name)
    parts = [confined(root, i.file) if i.file else None for i in program.items]
    if not parts or any(p is None for p in parts):
        raise HTTPException(404, "Thiếu tệp âm thanh của chương trình; hãy báo cho trung tâm.")
    commune = state.deployment.commune(code)
    if commune is None:
        raise HTTPException(404, "Không có xã này.")
    dst = joined_cache(state.settings).join(
        [p for p in parts if p is not None],
        part_sha256=[i.sha256 for i in program.items],
        tags=program_tags(commune, kind=program.kind, slot=program.slot, date=day),
    )
    return FileResponse(dst, media_type="audio/mpeg", filename=name)


@router.get("/communes/{code}/programs/{date}.zip")
def day_zip(request: Request, code: str, day: PathDate, who: CommuneUser) -> Response:
    """The day's folder and its media as one zip (stored, MP3 does not compress)."""
    state = web_state(request)
    root = commune_root(state.settings, code)
    manifest = day_manifest(state.settings, code, day)
    if manifest is None:
        raise HTTPException(404, "Chưa có chương trình cho ngày này.")
    rels = [f.path for f in manifest.files]
    stamp = hashlib.sha256("|".join(f"{f.path}:{f.sha256}" for f in manifest.files).encode()).hexdigest()[:16]
    dst = state.settings.data_dir / "tmp" / "zips" / f"{code}-{day.isoformat()}-{stamp}.zip"
    if not dst.is_file():
        dst.parent.mkdir(parents=True, exist_ok=True)
        tmp = dst.with_name(f".{uuid.uuid4().hex}.tmp")
        with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_STORED) as zf:
            for rel in rels:
                src = confined(root, rel)
                if src is not None:
                    zf.write(src, rel)
            own = manifest_path(state.settings.outbox_dir, code, f"programs/{day.isoformat()}", manifest.endpoint)
            zf.write(own, f"programs/{day.isoformat()}/manifest.json")
            zf.write(own.with_name(own.name + ".sig"), f"programs/{day.isoformat()}/manifest.json.sig")
        os.replace(tmp, dst)
    return FileResponse(dst, media_type="application/zip", filename=f"loa-{code}-{day.isoformat()}.zip")


@router.post("/communes/{code}/reports", dependencies=[Depends(check_csrf)])
async def report(request: Request, code: str, who: CommuneUser) -> Response:
    state = web_state(request)
    form = await request.form()
    kind = str(form.get("kind", ""))
    program = str(form.get("program", ""))
    note = str(form.get("note", ""))
    commune = state.deployment.commune(code)
    assert commune is not None  # CommuneUser: a commune of the deployment in the user's scope
    try:
        operator_reports.record_report(
            state.db,
            state.settings,
            commune,
            user=who.user,
            program_id=program,
            kind=kind,
            note=note,
            now=dt.datetime.now(state.settings.tz),
        )
    except LoaError as exc:
        raise HTTPException(404 if isinstance(exc, NotFoundError) else 400, vietnamese(exc)) from exc
    return RedirectResponse(f"/communes/{code}?ok={kind}", status_code=303)
