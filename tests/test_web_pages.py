"""Editor and approver pages: the bulletin form, revisions, filters, uploads, preview, approval."""

from __future__ import annotations

import asyncio
import hashlib
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from pipeline.errors import BulletinError
from pipeline.intake import parse_bulletin
from pipeline.store import bulletins as bulletin_store
from pipeline.store.recordings import current_recordings
from pipeline.web.forms import BulletinForm, field_of
from tests import audio_fixtures as fx
from tests.web_support import (
    Web,
    add_bulletin,
    csrf_of,
    logged_in_csrf,
)

FORM = {
    "title": "Tiêm phòng vắc-xin cho trẻ em",
    "category": "notice",
    "priority": "urgent",
    "source": "Trạm Y tế xã Y Tý",
    "reference": "Thông báo số 3/TB-TYT",
    "valid_from": "2026-12-01",
    "valid_until": "2026-12-10",
    "targets": "02641",
    "languages": ["vi", "hmn"],
    "body": "Ngày 05/12/2026, trạm y tế tiêm vắc-xin sởi cho trẻ từ 9 tháng tuổi.",
}


def post_form(client: httpx.Client, url: str, fields: dict[str, object]) -> httpx.Response:
    token = logged_in_csrf(client, url)
    return client.post(url, data=fields | {"csrf_token": token})


def test_the_form_stores_a_bulletin_like_the_cli_and_edits_make_revisions(web: Web) -> None:
    client = web.client("bientap")
    page = client.get("/bulletins/new")
    assert page.status_code == 200 and "Viết bản tin mới" in page.text
    r = post_form(client, "/bulletins/new", FORM)
    assert r.status_code == 303
    [b] = bulletin_store.list_bulletins(web.db)
    assert (b.title, b.priority, b.targets, b.languages, b.status) == (
        FORM["title"],
        "priority",  # the old name "urgent" is read as the tier ưu tiên
        ("02641",),
        ("vi", "hmn"),
        "draft",
    )
    # the text the form stands for is a bulletin file `loa bulletin add` reads to the same content
    form = BulletinForm.from_bulletin(b)
    same = parse_bulletin(form.text(), where="x.md", deployment=web.project.deployment).bulletin
    assert (same.title, same.body, same.valid_until, same.targets) == (b.title, b.body, b.valid_until, b.targets)

    detail = client.get(r.headers["location"])
    assert "Tiếng Mông" in detail.text and "Còn thiếu" in detail.text
    edit = post_form(client, f"/bulletins/{b.id}/edit", FORM | {"body": "Đổi lịch: tiêm ngày 06/12/2026."})
    assert edit.status_code == 303 and edit.headers["location"].endswith("ok=revised")
    revised = bulletin_store.get_bulletin(web.db, b.id or 0)
    assert revised.revision == 2 and revised.body.startswith("Đổi lịch")
    page = client.get(f"/bulletins/{b.id}").text
    assert "Các phiên bản" in page and page.count("Tiêm phòng vắc-xin cho trẻ em —") == 2
    # the same title and source again is refused on the "new" form (it would overwrite)
    again = post_form(client, "/bulletins/new", FORM)
    assert again.status_code == 400 and "Đã có bản tin" in again.text


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"valid_until": "2026-11-20"}, "valid_until"),
        ({"valid_from": "ngày mai"}, "valid_from"),
        ({"title": "   "}, "title"),
        ({"body": "  "}, "body"),
        ({"targets": "99999"}, "targets"),
        ({"category": "quảng cáo"}, "category"),
        ({"languages": []}, "languages"),
    ],
)
def test_form_errors_are_shown_beside_their_field_and_nothing_is_stored(
    web: Web, change: dict[str, object], field: str
) -> None:
    client = web.client("quantri")
    r = post_form(client, "/bulletins/new", FORM | change)
    assert r.status_code == 400
    assert f'id="err-{field}"' in r.text, r.text
    assert r.text.count('class="field-error"') == 1
    assert bulletin_store.list_bulletins(web.db) == []
    # what the person typed is kept
    assert "Trạm Y tế xã Y Tý" in r.text


def test_the_web_names_the_same_field_as_the_cli_for_the_same_mistake(web: Web) -> None:
    fields = dict(FORM) | {"valid_until": "2026-11-20"}
    form = BulletinForm.from_form(
        {k: v for k, v in fields.items() if isinstance(v, str)}, {"targets": ["02641"], "languages": ["vi"]}
    )
    with pytest.raises(BulletinError) as cli_error:
        parse_bulletin(form.text(), where="web", deployment=web.project.deployment)
    assert field_of(cli_error.value) == "valid_until"


def test_an_editor_cannot_target_communes_outside_the_center(web: Web) -> None:
    client = web.client("bientap")
    r = post_form(client, "/bulletins/new", FORM | {"targets": "02695"})
    assert r.status_code == 400 and 'id="err-targets"' in r.text
    r = post_form(client, "/bulletins/new", FORM | {"targets": "all"})
    assert r.status_code == 400 and 'id="err-targets"' in r.text
    assert bulletin_store.list_bulletins(web.db) == []


def test_list_filters(web: Web) -> None:
    s, d = web.project.settings, web.project.deployment
    a = add_bulletin(web.db, d, s, title="Tin A thường", targets='["02641"]')
    add_bulletin(web.db, d, s, title="Tin B khẩn", targets='["02695"]', priority="urgent", approve=False)
    client = web.client("duyet")
    page = client.get("/bulletins").text
    assert "Tin A thường" in page and "Tin B khẩn" in page
    draft = client.get("/bulletins", params={"status": "draft"}).text
    assert "Tin B khẩn" in draft and "Tin A thường" not in draft
    urgent = client.get("/bulletins", params={"priority": "urgent"}).text
    assert "Tin B khẩn" in urgent and "Tin A thường" not in urgent
    by_group = client.get("/bulletins", params={"target": "bat-xat"}).text
    assert "Tin A thường" in by_group and "Tin B khẩn" not in by_group
    assert "Tin A thường" not in client.get("/bulletins", params={"date_from": "2099-01-01"}).text
    assert f'href="/bulletins/{a}"' in client.get("/recordings").text  # lacks its Mông recording


def test_approve_withdraw_need_an_approver(web: Web) -> None:
    bid = add_bulletin(web.db, web.project.deployment, web.project.settings, approve=False)
    editor = web.client("bientap")
    token = logged_in_csrf(editor, f"/bulletins/{bid}")
    assert editor.post(f"/bulletins/{bid}/approve", data={"csrf_token": token}).status_code == 403
    approver = web.client("duyet")
    page = approver.get(f"/bulletins/{bid}").text
    assert "Duyệt" in page
    r = approver.post(f"/bulletins/{bid}/approve", data={"csrf_token": csrf_of(page), "confirm_missing": "hmn"})
    assert r.status_code == 303
    b = bulletin_store.get_bulletin(web.db, bid)
    assert b.status == "approved"
    r = approver.post(f"/bulletins/{bid}/withdraw", data={"csrf_token": csrf_of(page)})
    assert r.status_code == 303 and bulletin_store.get_bulletin(web.db, bid).status == "withdrawn"


# --- uploads --------------------------------------------------------------------


def upload(client: httpx.Client, bid: int, name: str, data: bytes, language: str = "hmn") -> httpx.Response:
    token = logged_in_csrf(client, f"/bulletins/{bid}")
    return client.post(
        f"/bulletins/{bid}/recordings",
        data={"csrf_token": token, "language": language},
        files={"file": (name, data, "application/octet-stream")},
    )


@pytest.mark.audio
def test_a_recording_is_probed_stored_under_a_generated_name_and_played_back(web: Web, tmp_path: Path) -> None:
    bid = add_bulletin(web.db, web.project.deployment, web.project.settings, approve=False)
    client = web.client("bientap")
    wav = fx.sine(tmp_path / "ban-tin-hmong.wav", seconds=1.5).read_bytes()
    r = upload(client, bid, "ban-tin-hmong.wav", wav)
    assert r.status_code == 303, r.text
    rec = current_recordings(web.db, [bid])[(bid, "hmn")]
    assert rec.original_name == "ban-tin-hmong.wav"
    assert rec.path.name != "ban-tin-hmong.wav" and rec.path.is_relative_to(web.project.settings.recordings_dir)
    assert rec.duration_ms == pytest.approx(1500, abs=60)
    played = client.get(f"/bulletins/{bid}/recordings/hmn")
    # what is stored and played back is the internal WAV (mono 16-bit), never the upload itself
    assert played.status_code == 200 and hashlib.sha256(played.content).hexdigest() == rec.sha256
    assert played.content != wav and rec.path.suffix == ".wav"
    assert hashlib.sha256(rec.path.read_bytes()).hexdigest() == rec.sha256
    page = client.get(f"/bulletins/{bid}").text
    assert f'src="/bulletins/{bid}/recordings/hmn"' in page and "Đã đủ bản ghi" in page
    assert not list((web.project.settings.data_dir / "tmp" / "uploads").iterdir())  # nothing left behind


@pytest.mark.parametrize(
    ("name", "data", "says"),
    [
        ("thong-bao.mp3", b"Day khong phai am thanh. " * 200, "Không phải tệp âm thanh"),
        ("../../../etc/loa.wav", b"RIFF", "không hợp lệ"),
        ("..\\..\\boot.ini", b"RIFF", "không hợp lệ"),
        ("/etc/passwd", b"RIFF", "không hợp lệ"),
    ],
)
def test_non_audio_and_path_names_are_refused(web: Web, name: str, data: bytes, says: str) -> None:
    bid = add_bulletin(web.db, web.project.deployment, web.project.settings, approve=False)
    client = web.client("bientap")
    r = upload(client, bid, name, data)
    assert r.status_code == 400 and says in r.text and 'id="upload-error"' in r.text
    assert current_recordings(web.db, [bid]) == {}
    assert not (web.project.settings.data_dir / "etc").exists()
    recordings = web.project.settings.recordings_dir
    assert not recordings.exists() or not any(p.is_file() for p in recordings.rglob("*"))


async def _big_upload(web: Web, *, declare_length: bool) -> tuple[int, int]:
    """Send a 200 MB multipart upload in 1 MiB chunks (never held in memory); return (status, chunks sent)."""
    bid = add_bulletin(web.db, web.project.deployment, web.project.settings, approve=False)
    total_mb = 200
    chunk = b"\0" * (1 << 20)
    boundary = "loa-test-boundary"
    sent = 0
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=web.app), base_url="http://127.0.0.1") as client:
        page = await client.get("/login")
        await client.post(
            "/login", data={"name": "bientap", "password": "mật-khẩu-thử-1234", "csrf_token": csrf_of(page.text)}
        )
        token = csrf_of((await client.get(f"/bulletins/{bid}")).text)
        head = (
            f'--{boundary}\r\nContent-Disposition: form-data; name="csrf_token"\r\n\r\n{token}\r\n'
            f'--{boundary}\r\nContent-Disposition: form-data; name="language"\r\n\r\nhmn\r\n'
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="lon.wav"\r\n'
            "Content-Type: audio/wav\r\n\r\n"
        ).encode()
        tail = f"\r\n--{boundary}--\r\n".encode()

        async def body() -> AsyncIterator[bytes]:
            nonlocal sent
            yield head
            for _ in range(total_mb):
                sent += 1
                yield chunk
            yield tail

        headers = {"content-type": f"multipart/form-data; boundary={boundary}"}
        if declare_length:
            headers["content-length"] = str(len(head) + total_mb * len(chunk) + len(tail))
        r = await client.post(f"/bulletins/{bid}/recordings", content=body(), headers=headers)
    return r.status_code, sent


@pytest.mark.parametrize("declare_length", [True, False])
def test_a_200_mb_upload_is_refused_without_reading_it_all(web: Web, declare_length: bool) -> None:
    status, sent = asyncio.run(_big_upload(web, declare_length=declare_length))
    assert status == 413
    limit_mb = web.project.settings.web.max_upload_mb
    assert sent <= limit_mb + 2  # stopped at the limit, not after 200 MB
    assert not any((web.project.settings.data_dir / "tmp" / "uploads").glob("*/*"))


# --- preview --------------------------------------------------------------------


def test_preview_names_a_missing_recording_in_vietnamese_from_its_gap(web: Web) -> None:
    bid = add_bulletin(web.db, web.project.deployment, web.project.settings, approve=False, title="Họp thôn")
    page = web.client("bientap").get("/preview", params={"bulletin": bid, "commune": "02641", "slot": "morning"})
    assert page.status_code == 200
    assert f"Thiếu: bản tin #{bid} (Họp thôn): chưa có bản ghi Tiếng Mông" in page.text
    assert "recording" not in page.text.split("Thiếu:")[1].split("</p>")[0]


@pytest.mark.audio
@pytest.mark.slow
def test_preview_shows_the_cue_sheet_of_a_draft_and_renders_its_audio(web: Web, tmp_path: Path) -> None:
    bid = add_bulletin(
        web.db, web.project.deployment, web.project.settings, approve=False, body="Thôn Tả Phìn họp lúc 7h30."
    )
    client = web.client("bientap")
    page = client.get("/preview", params={"bulletin": bid, "commune": "02641", "slot": "morning"})
    assert page.status_code == 200
    assert "Thôn Tả Phìn họp lúc 7h30." in page.text and "@chime" in page.text
    assert "/preview/audio?" in page.text
    audio_url = (
        page.text.split('id="preview-audio" controls preload="none" src="')[1].split('"')[0].replace("&amp;", "&")
    )
    r = client.get(audio_url)
    assert r.status_code == 200 and r.headers["content-type"] == "audio/mpeg"
    mp3 = tmp_path / "preview.mp3"
    mp3.write_bytes(r.content)
    probe = subprocess.run(
        ["ffprobe", "-v", "error", "-show_entries", "format=duration", "-of", "csv=p=0", str(mp3)],
        capture_output=True,
        text=True,
        check=True,
    )
    assert float(probe.stdout) > 3.0
    # an approver of the whole province may preview Bản Lầu; the Bát Xát editor may not
    assert client.get("/preview", params={"commune": "02695"}).status_code == 404
