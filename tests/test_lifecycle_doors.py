"""Every door × every rule of a bulletin's life gives the same answer.

Doors: the CLI (Typer's CliRunner), the web (a logged-in user with CSRF), the agency API,
CAP import. Rules: a change after approval returns the bulletin to draft; scope; a cancelled
alert stays cancelled; the audit entry is written. Each rule lives once, in
``pipeline.lifecycle``: take it out there and its row fails for every door.
"""

from __future__ import annotations

import datetime as dt
import itertools
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import pytest
from typer.testing import CliRunner

from pipeline import lifecycle
from pipeline.cli import app as cli_app
from pipeline.errors import UsageError
from pipeline.intake import parse_bulletin
from pipeline.models import Bulletin
from pipeline.store import Database, audit
from pipeline.store import bulletins as bulletin_store
from tests.audio_fixtures import sine
from tests.publish_support import bulletin_file, make_agency, publish_project
from tests.test_cap import cap, ref
from tests.web_support import Web, logged_in_csrf, serve_project, shared_segments, standard_users

SOURCE = "UBND xã Y Tý"
_n = itertools.count(1)


@dataclass
class World:
    web: Web
    tokens: dict[str, str]
    wavs: list[bytes]  # distinct readings: a different one is a replacement
    work: Path

    @property
    def wav(self) -> bytes:
        return self.wavs[0]

    @property
    def db(self) -> Database:
        return self.web.db

    def status(self, bulletin_id: int) -> str:
        return bulletin_store.get_bulletin(self.db, bulletin_id).status

    def title_stored(self, title: str) -> bool:
        return any(b.title == title for b in bulletin_store.list_bulletins(self.db))


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory, voices_with_placeholders: Path) -> Iterator[World]:
    root = tmp_path_factory.mktemp("doors")
    project = publish_project(root / "p", voices_with_placeholders, segments=shared_segments(tmp_path_factory))
    db = project.db()
    standard_users(db)  # bientap: editor of Bát Xát (02641); duyet: approver
    tokens = {"so-yte": make_agency(db, "so-yte", ("all",)), "ban-lau": make_agency(db, "ban-lau", ("02695",))}
    db.close()
    wavs = [sine(root / f"doc{i}.wav", seconds=1.0 + i / 5).read_bytes() for i in range(4)]
    with serve_project(project) as web:
        yield World(web, tokens, wavs, root / "work")


def text(title: str, targets: list[str], body: str = "Thôn Tả Phìn họp lúc 7h30 tối thứ bảy.") -> str:
    today = dt.date.today()
    return bulletin_file(
        title=title, source=SOURCE, targets=targets, start=today, end=today + dt.timedelta(days=7),
        languages=["vi", "hmn"], body=body,
    )  # fmt: skip


class Door(Protocol):
    actor: str

    def submit(self, title: str, targets: list[str], body: str = ...) -> int | None: ...
    def record(self, bulletin_id: int, sha_seed: int = 0) -> bool: ...
    def revise(self, bulletin_id: int, body: str) -> bool: ...
    def remove(self, bulletin_id: int) -> bool: ...
    def approve(self, bulletin_id: int) -> bool: ...


# --- the doors ----------------------------------------------------------------------


class Cli:
    actor = "cli"

    def __init__(self, w: World) -> None:
        self.w = w
        self.config = str(w.web.project.config)
        w.work.mkdir(exist_ok=True)

    def run(self, *args: str) -> tuple[bool, str]:
        result = CliRunner().invoke(cli_app, ["--config", self.config, *args])
        if isinstance(result.exception, UsageError):
            return False, result.exception.code
        assert result.exit_code == 0, (args, result.output, result.exception)
        return True, result.stdout

    def submit(
        self, title: str, targets: list[str], body: str = "Thôn Tả Phìn họp lúc 7h30 tối thứ bảy."
    ) -> int | None:
        path = self.w.work / f"b{next(_n)}.md"
        path.write_text(text(title, targets, body), encoding="utf-8")
        ok, out = self.run("bulletin", "add", str(path), "--json")
        return int(json.loads(out)[0]["id"]) if ok else None

    def revise(self, bulletin_id: int, body: str) -> bool:
        b = bulletin_store.get_bulletin(self.w.db, bulletin_id)
        return self.submit(b.title, list(b.targets), body) == bulletin_id

    def record(self, bulletin_id: int, sha_seed: int = 0) -> bool:
        path = self.w.work / f"r{next(_n)}.wav"
        path.write_bytes(self.w.wavs[sha_seed])
        return self.run("recording", "add", str(bulletin_id), "hmn", str(path))[0]

    def remove(self, bulletin_id: int) -> bool:
        return self.run("recording", "remove", str(bulletin_id), "hmn")[0]

    def approve(self, bulletin_id: int) -> bool:
        return self.run("bulletin", "approve", str(bulletin_id))[0]

    def cap(self, xml: str) -> dict[str, object]:
        path = self.w.work / f"c{next(_n)}.xml"
        path.write_text(xml, encoding="utf-8")
        ok, out = self.run("cap", "import", str(path), "--json")
        assert ok
        data = json.loads(out)
        assert isinstance(data, dict)
        return data


class WebForm:
    actor = "bientap"

    def __init__(self, w: World) -> None:
        self.w = w
        self.editor = w.web.client("bientap")
        self.approver = w.web.client("duyet")

    def submit(
        self, title: str, targets: list[str], body: str = "Thôn Tả Phìn họp lúc 7h30 tối thứ bảy."
    ) -> int | None:
        today = dt.date.today()
        form = {
            "title": title, "category": "notice", "priority": "routine", "source": SOURCE, "reference": "",
            "valid_from": today.isoformat(), "valid_until": (today + dt.timedelta(days=7)).isoformat(),
            "body": body, "targets": targets, "languages": ["vi", "hmn"],
            "csrf_token": logged_in_csrf(self.editor),
        }  # fmt: skip
        r = self.editor.post("/bulletins/new", data=form)
        if r.status_code != 303:
            assert r.status_code == 400, r.text
            return None
        return int(r.headers["location"].rsplit("/", 1)[1])

    def revise(self, bulletin_id: int, body: str) -> bool:
        b = bulletin_store.get_bulletin(self.w.db, bulletin_id)
        form = {
            "category": b.category, "priority": b.priority, "reference": b.reference,
            "valid_from": b.valid_from.isoformat(), "valid_until": b.valid_until.isoformat(),
            "body": body, "targets": list(b.targets), "languages": list(b.languages),
            "csrf_token": logged_in_csrf(self.editor),
        }  # fmt: skip
        r = self.editor.post(f"/bulletins/{bulletin_id}/edit", data=form)
        assert r.status_code in (303, 400, 404), r.text
        return r.status_code == 303

    def record(self, bulletin_id: int, sha_seed: int = 0) -> bool:
        r = self.editor.post(
            f"/bulletins/{bulletin_id}/recordings",
            data={"language": "hmn", "csrf_token": logged_in_csrf(self.editor)},
            files={"file": ("doc.wav", self.w.wavs[sha_seed], "audio/wav")},
        )
        assert r.status_code in (303, 400, 404), r.text
        return r.status_code == 303

    def remove(self, bulletin_id: int) -> bool:
        csrf = logged_in_csrf(self.editor)
        r = self.editor.post(f"/bulletins/{bulletin_id}/recordings/hmn/remove", data={"csrf_token": csrf})
        assert r.status_code in (303, 400, 404), r.text
        return r.status_code == 303

    def approve(self, bulletin_id: int) -> bool:
        csrf = logged_in_csrf(self.approver)
        r = self.approver.post(f"/bulletins/{bulletin_id}/approve", data={"csrf_token": csrf})
        assert r.status_code in (303, 400), r.text
        return r.status_code == 303 and "ok=approved" in r.headers["location"]


class Api:
    actor = "agency:so-yte"

    def __init__(self, w: World, agency: str = "so-yte") -> None:
        self.w = w
        self.token = w.tokens[agency]
        self.actor = f"agency:{agency}"
        self.client = w.web.client()

    def headers(self, ctype: str) -> dict[str, str]:
        return {"authorization": f"Bearer {self.token}", "content-type": ctype}

    def submit(
        self, title: str, targets: list[str], body: str = "Thôn Tả Phìn họp lúc 7h30 tối thứ bảy."
    ) -> int | None:
        r = self.client.post(
            "/api/v1/bulletins", content=text(title, targets, body).encode(), headers=self.headers("text/markdown")
        )
        assert r.status_code in (201, 403, 409), r.text
        return int(r.json()["id"]) if r.status_code == 201 else None

    def revise(self, bulletin_id: int, body: str) -> bool:
        b = bulletin_store.get_bulletin(self.w.db, bulletin_id)
        return self.submit(b.title, list(b.targets), body) == bulletin_id

    def record(self, bulletin_id: int, sha_seed: int = 0) -> bool:
        r = self.client.put(
            f"/api/v1/bulletins/{bulletin_id}/recordings/hmn",
            content=self.w.wavs[sha_seed],
            headers=self.headers("audio/wav"),
        )
        assert r.status_code in (200, 201, 404, 409), r.text
        return r.status_code in (200, 201)

    def remove(self, bulletin_id: int) -> bool:
        r = self.client.delete(f"/api/v1/bulletins/{bulletin_id}/recordings/hmn", headers=self.headers("text/plain"))
        assert r.status_code in (200, 404, 409), r.text
        return r.status_code == 200

    def approve(self, bulletin_id: int) -> bool:
        raise AssertionError("an agency does not approve")


class CapImport:
    """``loa cap import`` (the door is the importer; the CLI only reads the file)."""

    actor = "cap:kttv.laocai"

    def __init__(self, w: World) -> None:
        self.cli = Cli(w)

    def submit(self, title: str, targets: list[str], body: str = "") -> int | None:
        made = self.cli.cap(cap(f"S{next(_n)}", headline=title))["bulletin"]
        return made if isinstance(made, int) else None

    def record(self, bulletin_id: int, sha_seed: int = 0) -> bool:
        raise AssertionError("a CAP alert carries no recording")

    def revise(self, bulletin_id: int, body: str) -> bool:
        raise AssertionError("a CAP alert is revised by an Update")

    def remove(self, bulletin_id: int) -> bool:
        raise AssertionError("a CAP alert carries no recording")

    def approve(self, bulletin_id: int) -> bool:
        raise AssertionError("CAP approves by the deployment's rule")


DOORS = {"cli": Cli, "web": WebForm, "api": Api, "cap": CapImport}


# --- the rules, each asked of every door that offers it ---------------------------


def rule_change_after_approval(w: World, door: Door) -> tuple[str, ...]:
    """A recording added, replaced or removed, or a revision, after approval: back to draft."""
    title = f"Sau khi duyệt {next(_n)}"
    bid = door.submit(title, ["02641"])
    assert bid is not None
    after: list[str] = []
    for change in (
        lambda: door.record(bid, sha_seed=1),
        lambda: door.record(bid, sha_seed=3),
        lambda: door.remove(bid),
        lambda: door.revise(bid, "Thôn Tả Phìn họp lúc 8h00 tối thứ bảy."),
    ):
        lifecycle.approve(w.db, lifecycle.cli(), bid)
        assert change()
        after.append(w.status(bid))
    return tuple(after)


def rule_scope(w: World, door: Door) -> tuple[bool, bool]:
    """A target outside the door's scope is refused and nothing stored; another's bulletin is not found."""
    title = f"Ngoài phạm vi {next(_n)}"
    inside, outside = ("02695", "02641") if door.actor == "agency:ban-lau" else ("02641", "02695")
    refused = door.submit(title, [outside]) is None and not w.title_stored(title)
    other = lifecycle.submit(w.db, lifecycle.cli(), _bulletin(w, f"Khác {next(_n)}", (outside,))).bulletin
    assert other.id is not None
    assert door.submit(f"Trong phạm vi {next(_n)}", [inside]) is not None
    return refused, not door.record(other.id) and w.status(other.id) == "draft"


def rule_cancelled_stays_cancelled(w: World, door: Door) -> tuple[str, ...]:
    """An Alert, its Update (the Alert is superseded at once), a Cancel: nothing of it moves again."""
    cli = Cli(w)
    a, u, c = (f"T{next(_n)}" for _ in range(3))
    alert = cli.cap(cap(a, headline=f"Lũ {a}"))["bulletin"]
    update = cli.cap(cap(u, msg_type="Update", sent=1, references=ref(a), headline=f"Lũ {u}"))["bulletin"]
    assert isinstance(alert, int) and isinstance(update, int)
    cli.cap(cap(c, msg_type="Cancel", sent=2, references=ref(a)))
    if isinstance(door, CapImport):  # an Update after the Cancel makes nothing
        late = cli.cap(cap(f"T{next(_n)}", msg_type="Update", sent=3, references=ref(a), headline=f"Lũ {a} lại"))
        return (w.status(alert), w.status(update), str(late["outcome"] == "refused" and late["bulletin"] is None))
    if isinstance(door, Api):  # an agency acts on its own bulletins: one of them, cancelled
        mine = door.submit(f"Của sở {next(_n)}", ["02641"])
        assert mine is not None
        lifecycle.end(w.db, lifecycle.system(), mine, "cancel")
        refused = not door.record(mine) and not door.revise(mine, "Nội dung đã sửa.")
        return (w.status(mine), str(refused))
    approved = door.approve(alert) or door.approve(update) or door.record(update) or door.revise(update, "Sửa.")
    return (w.status(alert), w.status(update), str(not approved))


def rule_audit(w: World, door: Door) -> tuple[str, ...]:
    bid = door.submit(f"Nhật ký {next(_n)}", ["02641"])
    assert bid is not None and (isinstance(door, CapImport) or door.record(bid, sha_seed=2))
    found = {e.action for e in audit.entries(w.db) if e.target == f"bulletin:{bid}" and e.actor == door.actor}
    return tuple(sorted(found))


def _bulletin(w: World, title: str, targets: tuple[str, ...]) -> Bulletin:
    return parse_bulletin(text(title, list(targets)), where="t.md", deployment=w.web.project.deployment).bulletin


#: rule → (what every door must answer, the doors that offer it)
ROWS = {
    "change after approval → draft": (rule_change_after_approval, ("draft",) * 4, ("cli", "web", "api")),
    "scope": (rule_scope, (True, True), ("web", "api-ban-lau")),
    "a cancelled alert stays cancelled": (rule_cancelled_stays_cancelled, None, ("cli", "web", "api", "cap")),
    "audit entry written": (rule_audit, ("bulletin.added", "recording.added"), ("cli", "web", "api", "cap")),
}


@pytest.mark.parametrize(
    ("rule", "door"), [(r, d) for r, (_, _, doors) in ROWS.items() for d in doors], ids=lambda x: str(x)
)
def test_every_door_gives_the_same_answer(world: World, rule: str, door: str) -> None:
    check, expected, _ = ROWS[rule]
    d: Door = Api(world, "ban-lau") if door == "api-ban-lau" else DOORS[door](world)
    answer = check(world, d)  # type: ignore[operator]
    if rule == "audit entry written" and door == "cap":
        expected = ("bulletin.added",)
    if rule == "a cancelled alert stays cancelled":
        expected = ("cancelled", "True") if door == "api" else ("superseded", "cancelled", "True")
    assert answer == expected


# --- the findings of issue 26, each on the door where it was found ----------------


def test_finding_1_a_cancelled_flood_warning_cannot_be_approved(world: World) -> None:
    """Alert, Update, Cancel with manual approval: no version can be approved (it aired before)."""
    cli = Cli(world)
    alert = cli.cap(cap("F1-A", headline="Lũ F1"))["bulletin"]
    update = cli.cap(cap("F1-U", msg_type="Update", sent=1, references=ref("F1-A"), headline="Lũ F1 cập nhật"))
    assert isinstance(alert, int) and world.status(alert) == "superseded"  # at once: it was not approved
    cancel = cli.cap(cap("F1-C", msg_type="Cancel", sent=2, references=ref("F1-A")))
    assert cancel["ended"] == [update["bulletin"]]
    assert cli.run("bulletin", "approve", str(alert)) == (False, "lifecycle.alert_cancelled")
    assert cli.run("bulletin", "approve", str(update["bulletin"])) == (False, "lifecycle.alert_cancelled")
    late = cli.cap(cap("F1-U2", msg_type="Update", sent=3, references=ref("F1-A"), headline="Lũ F1 lần 2"))
    assert late["outcome"] == "refused" and late["bulletin"] is None
    assert not any(b.status in ("draft", "approved") for b in bulletin_store.list_bulletins(world.db)
                   if (b.cap_identifier or "").startswith("F1-"))  # fmt: skip


def test_finding_2_an_agency_recording_sends_an_approved_bulletin_back_to_draft(world: World) -> None:
    api = Api(world)
    bid = api.submit(f"Ghi âm sau duyệt {next(_n)}", ["02641"])
    assert bid is not None
    lifecycle.approve(world.db, lifecycle.cli(), bid)
    r = api.client.put(f"/api/v1/bulletins/{bid}/recordings/hmn", content=world.wav, headers=api.headers("audio/wav"))
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["back_to_draft"] is True and body["status"] == "awaiting" and isinstance(body["warnings"], list)
    assert world.status(bid) == "draft"
    actions = {e.action for e in audit.entries(world.db, actor="agency:so-yte") if e.target == f"bulletin:{bid}"}
    assert {"recording.added", "bulletin.back_to_draft"} <= actions


def test_finding_4_an_agency_submission_is_one_transaction(world: World) -> None:
    """A crash between the save and the owner leaves nothing; the retry with the same key succeeds."""
    api = Api(world)
    title = f"Giữa chừng {next(_n)}"
    headers = api.headers("text/markdown") | {"idempotency-key": f"crash-{next(_n)}"}
    body = text(title, ["02641"]).encode()
    with world.db.engine.begin() as conn:
        conn.exec_driver_sql(
            "CREATE TRIGGER crash_owner BEFORE INSERT ON agency_bulletins BEGIN SELECT RAISE(ABORT, 'crash'); END"
        )
    try:
        crashed = api.client.post("/api/v1/bulletins", content=body, headers=headers)
    finally:
        with world.db.engine.begin() as conn:
            conn.exec_driver_sql("DROP TRIGGER crash_owner")
    assert crashed.status_code >= 500 and not world.title_stored(title)
    retried = api.client.post("/api/v1/bulletins", content=body, headers=headers)
    assert retried.status_code == 201, retried.text
    bid = retried.json()["id"]
    again = api.client.post("/api/v1/bulletins", content=body, headers=headers)
    assert again.status_code == 201 and again.json()["id"] == bid and again.json()["outcome"] == "replayed"
    from pipeline.store.agencies import owner_of

    assert owner_of(world.db, bid) == "so-yte"


def test_finding_7_tokens_reports_and_moderation_are_audited(world: World) -> None:
    from tests.test_consultation_web import add_campaign, answer
    from tests.test_operator_reports import fake_program

    cli = Cli(world)
    ok, out = cli.run("agency", "token", "create", "ban-lau", "--json")
    assert ok
    assert cli.run("agency", "token", "revoke", "ban-lau", "--id", str(json.loads(out)["id"]))[0]
    cli_actions = {e.action for e in audit.entries(world.db, actor="cli")}
    assert {"agency.token.issued", "agency.token.revoked"} <= cli_actions
    # an operator's report of a program that has started
    now = dt.datetime.now(world.web.project.settings.tz)
    program = fake_program(world.web, now.date(), "morning", now - dt.timedelta(minutes=1))
    op = world.web.client("dai-yty")
    r = op.post("/communes/02641/reports", data={"csrf_token": logged_in_csrf(op, "/communes/02641"),
                                                 "kind": "played", "program": program})  # fmt: skip
    assert r.status_code == 303, r.text
    assert [e.target for e in audit.entries(world.db, action="report.played")] == [f"program:{program}"]
    # consultation moderation
    cid = add_campaign(world.web)
    assert answer(world.web.client()).status_code in (200, 303)
    from pipeline.store.consultations import list_answers

    [a] = list_answers(world.db, cid)
    staff = world.web.client("duyet")
    token = logged_in_csrf(staff, f"/consultations/{cid}")
    hidden = staff.post(f"/consultations/{cid}/answers/{a.id}", data={"csrf_token": token, "action": "hide"})
    assert hidden.status_code == 303, hidden.text
    [entry] = audit.entries(world.db, action="consultation.moderated")
    assert entry.actor == "duyet" and entry.target == f"answer:{a.id}"
