"""A Mông reader on a 375 px phone with a fake microphone: the queue, recording, sending; the
approver asked again (Giáy is missing elsewhere); the nightly airs the reading in the Mông
commune and nowhere else. Debian's Chromium driven by Playwright."""

from __future__ import annotations

import datetime as dt
import hashlib
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page

from pipeline import lifecycle
from pipeline.models import Bulletin
from pipeline.store import audit
from pipeline.store import bulletins as bulletin_store
from pipeline.store import users as user_store
from pipeline.store.recordings import current_recordings
from tests import audio_fixtures as fx
from tests.chromium import chromium
from tests.web_support import PASSWORD, Web, serve_project, small_project, standard_users

pytestmark = [pytest.mark.audio, pytest.mark.slow]
Y_TY, BAN_LAU, MUONG_HUM = "02641", "02695", "02700"  # Mông; Vietnamese only; Giáy
PHONE = {"width": 375, "height": 740}
GIAY_COMMUNE = """
[[commune]]
code = "02700"
name = "Mường Hum"
group = "bat-xat"
languages = ["vi", "pcc"]

  [[commune.endpoint]]
  name = "muong-hum-loa"
  transport = "local"
  path = "endpoints/muong-hum-loa"
"""


@pytest.fixture(scope="module")
def microphone(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """What the fake microphone hears: 48 kHz mono speech from espeak-ng (a stand-in for a Mông voice)."""
    d = tmp_path_factory.mktemp("mic")
    raw = d / "raw.wav"
    text = "Kính thưa bà con, thôn Tả Phìn họp lúc bảy giờ ba mươi tối nay về thẻ bảo hiểm y tế."
    subprocess.run(["espeak-ng", "-v", "vi", "-w", str(raw), text], check=True, timeout=60)
    mic = d / "mic.wav"
    fx.ffmpeg("-i", str(raw), "-ar", "48000", "-ac", "1", "-c:a", "pcm_s16le", str(mic))
    return mic


@pytest.fixture(scope="module")
def browser(microphone: Path) -> Iterator[Browser]:
    fake_mic = ("--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream")
    with chromium(*fake_mic, f"--use-file-for-fake-audio-capture={microphone}") as b:
        yield b


@pytest.fixture
def web(tmp_path: Path, voices_with_placeholders: Path) -> Iterator[Web]:
    project = small_project(tmp_path / "p", voices_with_placeholders)
    toml = project.root / "schedules" / "small.toml"
    toml.write_text(toml.read_text(encoding="utf-8") + GIAY_COMMUNE, encoding="utf-8")
    (project.root / "endpoints").mkdir()
    db = project.db()
    standard_users(db)
    user_store.add_user(
        db, "doc-mong", password_hash=user_store.user_with_hash(db, "duyet")[1],  # type: ignore[index]
        role="reader", languages=("hmn",), scope=("bat-xat",),
    )  # fmt: skip
    db.close()
    with serve_project(project) as served:
        yield served


def phone(browser: Browser, web: Web, user: str) -> Page:
    context = browser.new_context(base_url=web.url, viewport=PHONE, is_mobile=True, has_touch=True)
    context.grant_permissions(["microphone"], origin=web.url)
    page = context.new_page()
    page.set_default_timeout(60_000)
    page.goto("/login")
    page.fill("#name", user)
    page.fill("#password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_load_state()
    return page


def fits(page: Page) -> bool:
    return bool(page.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1"))


def bulletin(title: str, targets: tuple[str, ...], start: dt.date, end: dt.date) -> Bulletin:
    return Bulletin(
        title=title,
        category="notice",
        priority="routine",
        source="UBND xã",
        reference="",
        valid_from=start,
        valid_until=end,
        targets=targets,
        languages=("vi", "hmn", "pcc"),
        body="Thôn Tả Phìn họp lúc 7 giờ 30 tối nay về gia hạn thẻ bảo hiểm y tế. Đề nghị bà con đến đúng giờ.",
    )


def test_a_mong_reader_records_the_first_due_bulletin_and_it_airs_in_the_mong_commune_only(
    browser: Browser, web: Web
) -> None:
    from pipeline.nightly import build_day, push_day

    settings, deployment = web.project.settings, web.project.deployment
    today = dt.datetime.now(settings.tz).date()
    d2, d4 = today + dt.timedelta(days=2), today + dt.timedelta(days=4)  # tomorrow is built already
    later = lifecycle.submit(web.db, lifecycle.cli(), bulletin("Tiêm phòng cho trâu bò", (Y_TY,), d4, d4)).bulletin
    first = lifecycle.submit(
        web.db, lifecycle.cli(), bulletin("Họp thôn về thẻ bảo hiểm y tế", ("all",), d2, d2)
    ).bulletin
    assert first.id is not None and later.id is not None
    lifecycle.approve(web.db, lifecycle.cli(), first.id)

    # the reader: the bulletin due first is at the top; record, listen, send with the text as read
    reader = phone(browser, web, "doc-mong")
    errors: list[str] = []
    reader.on("pageerror", lambda e: errors.append(str(e)))
    assert reader.url.endswith("/readings")
    top = reader.locator(".reading").first
    assert top.get_attribute("id") == f"reading-{first.id}-hmn"
    assert reader.locator(f"#reading-{later.id}-hmn").count() == 1
    assert fits(reader)
    key = f"{first.id}-hmn"
    box = reader.locator(f"#recorder-{key}")
    box.wait_for(state="visible")
    reader.fill(f"#transcript-{key}", "Tsev Tas Phis sib tham thaum 7 teev 30 hmo no.")
    box.locator(".rec-start").click()
    reader.wait_for_selector(f"#recorder-{key}[data-state=recording]")
    reader.wait_for_timeout(4000)  # the fake microphone speaks
    box.locator(".rec-stop").click()
    reader.wait_for_selector(f"#recorder-{key} .rec-upload:not([disabled])")
    assert (box.locator(".rec-playback").get_attribute("src") or "").startswith("blob:")
    box.locator(".rec-start").click()  # re-record: a second take replaces the first before sending
    reader.wait_for_selector(f"#recorder-{key}[data-state=recording]")
    reader.wait_for_timeout(4000)
    box.locator(".rec-stop").click()
    reader.wait_for_selector(f"#recorder-{key} .rec-upload:not([disabled])")
    box.locator(".rec-upload").click()
    reader.wait_for_url("**/readings?ok=recording_redraft*")
    assert reader.locator(f"#reading-{key}").count() == 0  # off the queue
    assert reader.locator(f"#reading-{later.id}-hmn").count() == 1
    assert not errors, errors
    rec = current_recordings(web.db, [first.id])[(first.id, "hmn")]
    assert rec.transcript == "Tsev Tas Phis sib tham thaum 7 teev 30 hmo no."
    assert bulletin_store.get_bulletin(web.db, first.id).status == "draft"  # back to approval

    # the approver: Giáy is missing in Mường Hum, so approving asks again; the reading can be heard
    approver = phone(browser, web, "duyet")
    approver.goto(f"/bulletins/{first.id}")
    approver.click("a.button:has-text('Duyệt')")
    approver.wait_for_url(f"**/bulletins/{first.id}/approve")
    assert approver.locator("#need-hmn.recorded audio").count() == 1
    assert approver.locator("#need-pcc.missing").count() == 1
    assert approver.locator("#need-vi.tts").count() == 1
    assert fits(approver)
    audio = approver.request.get(f"/bulletins/{first.id}/recordings/hmn")
    assert audio.ok and hashlib.sha256(audio.body()).hexdigest() == rec.sha256
    approver.click("#confirm-button")  # without the second confirmation the form does not go
    assert bulletin_store.get_bulletin(web.db, first.id).status == "draft"
    approver.check("#confirm-missing")
    approver.click("#confirm-button")
    approver.wait_for_url("**ok=approved")
    assert bulletin_store.get_bulletin(web.db, first.id).status == "approved"
    [entry] = audit.entries(web.db, action="bulletin.approved_missing")
    assert (entry.actor, entry.target, entry.detail) == ("duyet", f"bulletin:{first.id}", "pcc")

    # the nightly of that day: the reading airs in Y Tý (Mông), not in Bản Lầu nor Mường Hum
    report = build_day(d2, settings=settings, deployment=deployment, db=web.db)
    assert not report.failures, report.failures
    push_day(d2, settings=settings, deployment=deployment, db=web.db)
    by_commune = {p.commune: p for p in report.programs if p.slot == "morning"}
    read = [s for s in by_commune[Y_TY].items if s.source is not None and s.source.recording == rec.id]
    assert len(read) == 1 and read[0].language == "hmn"
    aired = list((web.project.root / "endpoints" / "y-ty-loa").rglob(f"{read[0].key}.mp3"))
    assert aired, "the reading's segment reached Y Tý's endpoint"
    assert hashlib.sha256(aired[0].read_bytes()).hexdigest() == read[0].sha256
    for other in (BAN_LAU, MUONG_HUM):
        assert not [s for s in by_commune[other].items if s.language == "hmn" or s.sha256 == read[0].sha256]
