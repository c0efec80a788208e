"""Readers: the role, its languages and scope, and what the lifecycle lets a reader do."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from pathlib import Path

import pytest

from pipeline import lifecycle
from pipeline.errors import NotFoundError, UsageError
from pipeline.lifecycle import ACTIONS, WHO
from pipeline.messages import vietnamese
from pipeline.models import Bulletin, Deployment, Recording
from pipeline.store import Database
from pipeline.store import users as user_store
from pipeline.web.auth import scope_communes, scope_is_all
from tests.conftest import CliResult, Project
from tests.web_support import PASSWORD, Web, csrf_of

TODAY = dt.date.today()
Y_TY, BAN_LAU = "02641", "02695"  # Y Tý: vi, hmn (group bat-xat); Bản Lầu: vi only


def bulletin(title: str, targets: tuple[str, ...]) -> Bulletin:
    return Bulletin(
        title=title,
        category="notice",
        priority="routine",
        source="UBND xã",
        reference="",
        valid_from=TODAY,
        valid_until=TODAY + dt.timedelta(days=7),
        targets=targets,
        languages=("vi", "hmn"),
        body="Nội dung bản tin.",
    )


def recording(bulletin_id: int, language: str = "hmn", sha: str = "b" * 64) -> Recording:
    return Recording(bulletin_id, language, Path(f"/tmp/rd/{sha[:8]}.wav"), 1000, sha, "doc.wav", "pcm_s16le", 48000, 1)


@pytest.fixture
def world(small: Project) -> tuple[Database, Deployment]:
    return small.db(), small.deployment


def reader(
    db: Database, deployment: Deployment, *, languages: tuple[str, ...], scope: tuple[str, ...]
) -> lifecycle.Actor:
    user = user_store.add_user(db, "doc", password_hash="x", role="reader", languages=languages, scope=scope)
    return lifecycle.web_user(user, deployment)


def added(db: Database, title: str, targets: tuple[str, ...]) -> int:
    bid = lifecycle.submit(db, lifecycle.cli(), bulletin(title, targets)).bulletin.id
    assert bid is not None
    return bid


def test_the_reader_role_is_in_the_table_for_recordings_only() -> None:
    assert [a for a in ACTIONS if "reader" in WHO[a]] == ["recording"]


def test_a_reader_attaches_in_their_language_and_scope_and_an_approved_bulletin_returns_to_draft(
    world: tuple[Database, Deployment],
) -> None:
    db, deployment = world
    actor = reader(db, deployment, languages=("hmn",), scope=("bat-xat",))
    bid = added(db, "Họp thôn", (Y_TY,))
    lifecycle.approve(db, lifecycle.cli(), bid)
    change = lifecycle.attach_recording(db, actor, recording(bid), deployment=deployment)
    assert change.outcome == "added" and change.back_to_draft


def test_a_reader_never_changes_what_is_outside_their_languages_or_scope(world: tuple[Database, Deployment]) -> None:
    db, deployment = world
    actor = reader(db, deployment, languages=("hmn",), scope=(Y_TY,))
    in_scope = added(db, "Trong phạm vi", (Y_TY,))
    ban_lau = added(db, "Bản Lầu", (BAN_LAU,))  # in no commune of the reader's scope
    # another language of the same bulletin: refused, nothing stored
    with pytest.raises(UsageError) as exc:
        lifecycle.attach_recording(db, actor, recording(in_scope, "vi"), deployment=deployment)
    assert exc.value.code == "lifecycle.language_not_yours"
    assert "«vi»" in vietnamese(exc.value)
    # a bulletin outside the scope does not exist for the reader
    with pytest.raises(NotFoundError) as nf:
        lifecycle.attach_recording(db, actor, recording(ban_lau), deployment=deployment)
    assert nf.value.code == "lifecycle.not_found"
    # a reader's scope that reaches only Bản Lầu (no Mông there): Y Tý's bulletin is not found either
    other = lifecycle.Actor("reader", "x", frozenset({BAN_LAU}), languages=frozenset({"hmn"}))
    with pytest.raises(NotFoundError):
        lifecycle.attach_recording(db, other, recording(in_scope), deployment=deployment)
    # in scope, but no commune of the scope hears a language of theirs in it: not found either
    giay = lifecycle.Actor("reader", "g", frozenset({Y_TY}), languages=frozenset({"pcc"}))
    with pytest.raises(NotFoundError):
        lifecycle.attach_recording(db, giay, recording(in_scope, "pcc"), deployment=deployment)
    # nothing else: approve, withdraw, revise, remove
    for act in (
        lambda: lifecycle.approve(db, actor, in_scope, deployment=deployment),
        lambda: lifecycle.withdraw(db, actor, in_scope, deployment=deployment),
        lambda: lifecycle.submit(db, actor, bulletin("Mới", (Y_TY,)), deployment=deployment),
    ):
        with pytest.raises(UsageError) as refused:
            act()
        assert refused.value.code == "lifecycle.not_allowed"
    lifecycle.attach_recording(db, actor, recording(in_scope), deployment=deployment)
    with pytest.raises(UsageError) as removal:
        lifecycle.remove_recording(db, actor, in_scope, "hmn", deployment=deployment)
    assert removal.value.code == "lifecycle.not_allowed"
    assert "gỡ bản ghi" in vietnamese(removal.value)


def test_a_readers_web_scope_is_their_groups_and_communes(world: tuple[Database, Deployment]) -> None:
    db, deployment = world
    user = user_store.add_user(db, "doc", password_hash="x", role="reader", languages=("hmn",), scope=(BAN_LAU,))
    assert user.languages == ("hmn",) and user.scope == (BAN_LAU,)
    assert scope_communes(user, deployment) == {BAN_LAU} and not scope_is_all(user)
    with pytest.raises(UsageError):
        user_store.add_user(db, "khong-tieng", password_hash="x", role="reader")
    with pytest.raises(UsageError):
        user_store.add_user(db, "bientap", password_hash="x", role="editor", languages=("hmn",))


def test_cli_adds_and_lists_a_reader(small_cli: Callable[..., CliResult], monkeypatch: pytest.MonkeyPatch) -> None:
    import io
    import sys

    monkeypatch.setattr(sys, "stdin", io.StringIO(PASSWORD + "\n"))
    r = small_cli(
        "user", "add", "doc-mong", "--role", "reader", "--languages", "hmn,vi", "--group", "bat-xat",
        "--commune", BAN_LAU, "--password-stdin",
    )  # fmt: skip
    assert r.code == 0, r.err
    assert "reads hmn,vi" in r.out
    listed = json.loads(small_cli("user", "list", "--json").out)
    [doc] = [u for u in listed if u["name"] == "doc-mong"]
    assert doc["role"] == "reader" and doc["languages"] == ["hmn", "vi"] and doc["scope"] == ["bat-xat", BAN_LAU]
    monkeypatch.setattr(sys, "stdin", io.StringIO(PASSWORD + "\n"))
    assert small_cli("user", "add", "x", "--role", "reader", "--password-stdin").code == 2  # no language
    monkeypatch.setattr(sys, "stdin", io.StringIO(PASSWORD + "\n"))
    assert small_cli("user", "add", "y", "--role", "reader", "--languages", "fr", "--password-stdin").code == 2
    monkeypatch.setattr(sys, "stdin", io.StringIO(PASSWORD + "\n"))
    assert small_cli("user", "add", "z", "--role", "editor", "--languages", "hmn", "--password-stdin").code == 2


def test_admin_creates_a_reader_on_the_users_page_and_the_reader_lands_on_the_queue(web: Web) -> None:
    admin = web.client("quantri")
    page = admin.get("/admin/users")
    assert 'value="hmn"' in page.text and "Người đọc" in page.text
    form = {"csrf_token": csrf_of(page.text), "name": "doc-mong", "role": "reader", "scope": "commune:02641",
            "password": PASSWORD, "languages": ["hmn"]}  # fmt: skip
    assert admin.post("/admin/users", data=form).status_code == 303
    user = user_store.user_by_name(web.db, "doc-mong")
    assert (user.role, user.languages, user.scope, user.commune) == ("reader", ("hmn",), (Y_TY,), None)
    no_language = form | {"name": "doc-2", "languages": []}
    assert admin.post("/admin/users", data=no_language).status_code == 400
    doc = web.client("doc-mong")
    assert doc.get("/").headers["location"] == "/readings"
    assert doc.get("/bulletins").status_code == 403  # staff pages are not a reader's
    assert doc.get(f"/communes/{Y_TY}").status_code == 404
