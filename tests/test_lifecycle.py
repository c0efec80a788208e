"""The domain module of a bulletin's life: the state table, exhaustively, and its rules."""

from __future__ import annotations

import dataclasses
import datetime as dt
from pathlib import Path

import pytest

from pipeline import lifecycle
from pipeline.errors import LoaError, UsageError
from pipeline.lifecycle import ACTIONS, ROLES, STATES, TABLE, Actor, refusal_code
from pipeline.lifecycle.table import NEW
from pipeline.messages import vietnamese
from pipeline.models import Bulletin, Deployment, Recording
from pipeline.store import Database, audit
from pipeline.store import approvals as approval_store
from pipeline.store import bulletins as bulletin_store
from pipeline.store import decisions as decision_store
from tests.conftest import Project

TODAY = dt.date.today()


@pytest.fixture
def world(small: Project) -> tuple[Database, Deployment]:
    return small.db(), small.deployment


def bulletin(title: str, *, targets: tuple[str, ...] = ("all",), body: str = "Nội dung bản tin.") -> Bulletin:
    return Bulletin(
        title=title,
        category="notice",
        priority="routine",
        source="UBND xã Y Tý",
        reference="",
        valid_from=TODAY,
        valid_until=TODAY + dt.timedelta(days=7),
        targets=targets,
        languages=("vi", "hmn"),
        body=body,
    )


def recording(bulletin_id: int, sha: str = "a" * 64, language: str = "hmn") -> Recording:
    return Recording(bulletin_id, language, Path(f"/tmp/lc/{sha[:8]}.wav"), 1000, sha, "doc.wav", "pcm_s16le", 48000, 1)


def in_state(db: Database, title: str, state: str) -> Bulletin:
    change = lifecycle.submit(db, lifecycle.cli(), bulletin(title))
    assert change.bulletin.id is not None
    with db.begin() as conn:
        return bulletin_store.set_in(conn, db, change.bulletin.id, status=state)


def act(db: Database, deployment: Deployment, actor: Actor, action: str, b: Bulletin) -> Bulletin:
    """Do ``action`` to ``b`` as ``actor`` through the domain; the bulletin after."""
    assert b.id is not None
    if action == "revise":
        return lifecycle.revise(
            db, actor, b.id, dataclasses.replace(b, body=b.body + " Sửa."), deployment=deployment
        ).bulletin
    if action == "recording":
        return lifecycle.attach_recording(db, actor, recording(b.id), deployment=deployment).bulletin
    if action == "approve":
        return lifecycle.approve(db, actor, b.id, deployment=deployment).bulletin
    if action == "withdraw":
        return lifecycle.withdraw(db, actor, b.id, deployment=deployment).bulletin
    if action in ("cancel", "supersede", "expire"):
        return lifecycle.end(db, actor, b.id, action).bulletin
    assert action == "decide"
    lifecycle.decide(db, actor, b.id, "02641", "accepted", until=None, reason="", today=TODAY, deployment=deployment)
    return bulletin_store.get_bulletin(db, b.id)


def test_every_state_action_and_role_moves_as_the_table_says_or_is_refused_with_its_code(
    world: tuple[Database, Deployment],
) -> None:
    db, deployment = world
    n = 0
    for role in ROLES:
        actor = Actor(role, f"test-{role}")
        code = refusal_code(NEW, "submit", role)
        try:
            change = lifecycle.submit(db, actor, bulletin(f"mới {role}"))
        except UsageError as exc:
            assert exc.code == code, (role, "submit")
        else:
            assert code is None and change.bulletin.status == TABLE[(NEW, "submit")]
        for state in STATES:
            for action in ACTIONS:
                if action == "submit":
                    continue
                n += 1
                b = in_state(db, f"{state} {action} {role}", state)
                expected = refusal_code(state, action, role)
                try:
                    after = act(db, deployment, actor, action, b)
                except UsageError as exc:
                    assert expected is not None, (state, action, role, str(exc))
                    assert exc.code == expected, (state, action, role)
                    assert bulletin_store.get_bulletin(db, b.id or 0).status == state  # nothing changed
                    assert vietnamese(exc) and "{" not in vietnamese(exc)
                else:
                    assert expected is None, (state, action, role)
                    assert after.status == TABLE[(state, action)], (state, action, role)
    assert n == len(STATES) * (len(ACTIONS) - 1) * len(ROLES)


def test_approval_records_the_revision_and_every_recording_and_any_change_returns_to_draft(
    world: tuple[Database, Deployment],
) -> None:
    db, _ = world
    cli = lifecycle.cli()
    b = lifecycle.submit(db, cli, bulletin("Phòng chống rét")).bulletin
    assert b.id is not None
    lifecycle.attach_recording(db, cli, recording(b.id, "1" * 64))
    approved = lifecycle.approve(db, cli, b.id)
    last = approval_store.last_approval(db, b.id)
    assert last is not None and last.revision == approved.bulletin.revision
    assert last.recordings == {"hmn": "1" * 64}
    for change in (
        lambda: lifecycle.attach_recording(db, cli, recording(b.id or 0, "2" * 64)),  # replaced
        lambda: lifecycle.attach_recording(db, cli, recording(b.id or 0, "3" * 64, "ium")),  # added
        lambda: lifecycle.remove_recording(db, cli, b.id or 0, "ium"),  # removed
        lambda: lifecycle.revise(db, cli, b.id or 0, dataclasses.replace(b, body="Nội dung mới.")),
    ):
        lifecycle.approve(db, cli, b.id)
        result = change()
        assert result.back_to_draft and result.bulletin.status == "draft"
    actions = [e.action for e in audit.entries(db)]
    assert actions.count("bulletin.back_to_draft") == 3 and "recording.removed" in actions


def test_scope_a_group_user_and_an_agency(world: tuple[Database, Deployment]) -> None:
    db, deployment = world
    editor = Actor("editor", "bx", frozenset({"02641"}))
    with pytest.raises(UsageError) as err:
        lifecycle.submit(db, editor, bulletin("Ngoài phạm vi", targets=("02695",)), deployment=deployment)
    assert err.value.code == "lifecycle.out_of_scope" and err.value.fields["target"] == "02695"
    other = lifecycle.submit(db, lifecycle.cli(), bulletin("Của Bản Lầu", targets=("02695",))).bulletin
    assert other.id is not None
    with pytest.raises(UsageError) as err:
        lifecycle.approve(db, Actor("approver", "bx", frozenset({"02641"})), other.id, deployment=deployment)
    assert err.value.code == "lifecycle.not_found"
    mine = Actor("agency", "agency:syt", None, agency="syt")
    with pytest.raises(UsageError) as err:  # not its own bulletin
        lifecycle.attach_recording(db, mine, recording(other.id), deployment=deployment)
    assert err.value.code == "lifecycle.not_found"


def test_agency_key_is_remembered_with_the_save(world: tuple[Database, Deployment]) -> None:
    db, _ = world
    syt = Actor("agency", "agency:syt", None, agency="syt")
    first = lifecycle.submit(db, syt, bulletin("Tiêm chủng"), idempotency_key="k1", request_sha256="x")
    again = lifecycle.submit(db, syt, bulletin("Tiêm chủng"), idempotency_key="k1", request_sha256="x")
    assert again.outcome == "replayed" and again.bulletin.id == first.bulletin.id
    with pytest.raises(UsageError) as err:
        lifecycle.submit(db, syt, bulletin("Khác"), idempotency_key="k1", request_sha256="y")
    assert err.value.code == "lifecycle.key_reused"
    [entry] = [e for e in audit.entries(db) if e.action == "bulletin.added"]
    assert entry.actor == "agency:syt"


def test_a_failed_action_writes_nothing(world: tuple[Database, Deployment], monkeypatch: pytest.MonkeyPatch) -> None:
    """Save, owner, key and audit entry are one transaction: a crash in the last write leaves nothing."""
    db, _ = world
    syt = Actor("agency", "agency:syt", None, agency="syt")

    def crash(*args: object, **kwargs: object) -> None:
        raise LoaError("crash")

    monkeypatch.setattr("pipeline.store.agencies.remember_key_in", crash)
    with pytest.raises(LoaError):
        lifecycle.submit(db, syt, bulletin("Sập giữa chừng"), idempotency_key="k", request_sha256="x")
    assert bulletin_store.list_bulletins(db) == [] and audit.entries(db) == []


def test_decisions_go_through_the_domain_with_an_audit_entry(world: tuple[Database, Deployment]) -> None:
    db, deployment = world
    b = in_state(db, "Thông báo họp", "approved")
    assert b.id is not None
    op = Actor("operator", "op-yty", frozenset({"02641"}))
    d = lifecycle.decide(db, op, b.id, "02641", "declined", until=None, reason="Trùng lịch", today=TODAY,
                         deployment=deployment)  # fmt: skip
    assert d.decision == "declined" and decision_store.decisions(db, [b.id])[(b.id, "02641")].by == "user:op-yty"
    with pytest.raises(UsageError) as err:  # not its commune
        lifecycle.decide(db, op, b.id, "02695", "accepted", until=None, reason="", today=TODAY, deployment=deployment)
    assert err.value.code == "lifecycle.not_found"
    assert [e.action for e in audit.entries(db, action="bulletin.decided")] == ["bulletin.decided"]


def test_expire_ends_what_lapsed(world: tuple[Database, Deployment]) -> None:
    db, _ = world
    b = in_state(db, "Hết hạn", "approved")
    changes = lifecycle.expire(db, lifecycle.system(), today=TODAY + dt.timedelta(days=30))
    assert [c.bulletin.id for c in changes] == [b.id] and changes[0].bulletin.status == "expired"


def test_each_action_writes_its_webhook_event_with_it(world: tuple[Database, Deployment]) -> None:
    """Approved → ``bulletin.approved``; no longer airing (back to draft, withdrawn) → ``bulletin.withdrawn``."""
    import sqlalchemy as sa

    db, _ = world
    cli = lifecycle.cli()

    def kinds() -> list[str]:
        t = db.table("webhook_events")
        with db.begin() as conn:
            return [r.kind for r in conn.execute(sa.select(t.c.kind).order_by(t.c.created_at))]

    b = lifecycle.submit(db, cli, bulletin("Sự kiện")).bulletin
    assert b.id is not None and kinds() == []
    lifecycle.approve(db, cli, b.id)
    lifecycle.attach_recording(db, cli, recording(b.id, "4" * 64))  # back to draft: it stops airing
    lifecycle.approve(db, cli, b.id)
    lifecycle.withdraw(db, cli, b.id)
    assert kinds() == ["bulletin.approved", "bulletin.withdrawn", "bulletin.approved", "bulletin.withdrawn"]


def test_the_drawn_table_is_the_table_the_code_uses() -> None:
    """The docstring of ``pipeline.lifecycle`` draws ``TABLE`` and ``WHO``; they must not drift apart."""
    doc = lifecycle.__doc__ or ""
    lines = doc.splitlines()
    header = next(i for i, line in enumerate(lines) if line.strip().startswith("state \\ action"))
    actions = lines[header].split()[3:]
    assert tuple(actions) == ACTIONS
    drawn: dict[tuple[str, str], str] = {}
    for line in lines[header + 1 : header + 2 + len(STATES)]:
        state, *cells = line.split()
        assert len(cells) == len(ACTIONS), line
        drawn |= {(state, a): c for a, c in zip(ACTIONS, cells, strict=True) if c not in ("·", "✗")}
    assert drawn == TABLE
    who_lines = lines[lines.index(next(x for x in lines if x.strip().startswith("who may"))) :]
    names = {w for line in who_lines[:6] for w in line.replace("who may", "").split()}
    assert names == {role for roles in lifecycle.WHO.values() for role in roles}


def test_the_scheduler_minute_job_expires_lapsed_bulletins_audited(small: Project) -> None:
    from pipeline.scheduler.ops_jobs import ops_job

    db = small.db()
    yesterday = dt.datetime.now(small.settings.tz).date() - dt.timedelta(days=1)
    lapsed = in_state(db, "Lịch tiêm đã qua", "approved")
    current = in_state(db, "Lịch họp tuần này", "approved")
    withdrawn = in_state(db, "Đã rút", "withdrawn")
    assert lapsed.id is not None and current.id is not None and withdrawn.id is not None
    with db.begin() as conn:
        for b in (lapsed, withdrawn):
            bulletin_store.set_in(conn, db, b.id, valid_from=yesterday - dt.timedelta(days=3), valid_until=yesterday)
    ops_job(str(small.config))  # the scheduler's every-minute job
    status = {b: bulletin_store.get_bulletin(db, b).status for b in (lapsed.id, current.id, withdrawn.id)}
    assert status == {lapsed.id: "expired", current.id: "approved", withdrawn.id: "withdrawn"}
    [entry] = audit.entries(db, action="bulletin.expired")
    assert (entry.actor, entry.target, entry.detail) == ("scheduler", f"bulletin:{lapsed.id}", f"{yesterday:%Y-%m-%d}")
    ops_job(str(small.config))  # a minute later: nothing more to do, no second entry
    assert len(audit.entries(db, action="bulletin.expired")) == 1
    db.close()
