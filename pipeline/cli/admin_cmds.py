"""``loa user list|disable|enable|passwd|unlock`` and ``loa token list|revoke`` (registered on web_cmds' groups)."""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Annotated

import typer
from rich.table import Table

from pipeline.cli.context import JSON_OPTION, console, ctx_of, print_json
from pipeline.cli.web_cmds import new_password, token_app, user_app
from pipeline.errors import UsageError
from pipeline.store import audit, tokens
from pipeline.store import users as user_store

_TOKEN_TIMES = ("created_at", "last_used_at", "revoked_at")


def _when(value: dt.datetime | None) -> str:
    return value.isoformat(timespec="minutes") if value is not None else ""


@user_app.command("list")
def user_list(ctx: typer.Context, json_out: Annotated[bool, JSON_OPTION] = False) -> None:
    """List web users: role, scope, disabled, locked after failed logins.

    Example: loa user list --json
    """
    db = ctx_of(ctx).db
    users = user_store.list_users(db)
    locked = user_store.locked_accounts(db)
    if json_out:
        print_json(
            [dataclasses.asdict(u) | {"locked_at": _when(locked[u.name]) if u.name in locked else None} for u in users]
        )
        return
    table = Table("name", "role", "scope", "state")
    for u in users:
        scope = f"group {u.group}" if u.group else f"commune {u.commune}" if u.commune else "all"
        if u.role == "reader":
            scope = f"reads {','.join(u.languages)}; {', '.join(u.scope) or 'all'}"
        state = "disabled" if u.disabled else "active"
        if u.name in locked:
            state += f", locked since {_when(locked[u.name])} (loa user unlock {u.name})"
        table.add_row(u.name, u.role, scope, state)
    console.print(table)


@user_app.command("disable")
def user_disable(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(metavar="NAME", help="Login name.")],
    enable: Annotated[bool, typer.Option("--enable", help="Enable the user again instead.")] = False,
) -> None:
    """Disable a user (their sessions end at once), or enable them again with --enable.

    Example: loa user disable vanhoa-bx
    """
    db = ctx_of(ctx).db
    user = user_store.user_by_name(db, name)
    user_store.set_disabled(db, user.id, not enable)
    audit.record(db, "cli", "user.enabled" if enable else "user.disabled", f"user:{name}")
    console.print(f"{'enabled' if enable else 'disabled'} user {name}", markup=False)


@user_app.command("passwd")
def user_passwd(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(metavar="NAME", help="Login name.")],
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="Read the password from the first line of stdin.")
    ] = False,
) -> None:
    """Set a user's password (their sessions end); it is asked for, or read from stdin.

    Example: loa user passwd vanhoa-bx   (or --password-stdin to read it from a pipe)
    """
    from pipeline.web.auth import hash_password

    db = ctx_of(ctx).db
    user = user_store.user_by_name(db, name)
    password = new_password(name, from_stdin=password_stdin)
    user_store.set_password_hash(db, user.id, hash_password(password))
    user_store.end_sessions(db, user.id)
    audit.record(db, "cli", "user.password", f"user:{name}", "cli")
    console.print(f"password set for {name}; their sessions have ended", markup=False)


@user_app.command("unlock")
def user_unlock(ctx: typer.Context, name: Annotated[str, typer.Argument(metavar="NAME", help="Login name.")]) -> None:
    """Lift the lock put on an account after too many failed logins.

    Example: loa user unlock vanhoa-bx
    """
    db = ctx_of(ctx).db
    user_store.user_by_name(db, name)
    if not user_store.unlock_account(db, name):
        raise UsageError(f"user {name}: is not locked; see `loa user list`")
    audit.record(db, "cli", "user.unlocked", f"user:{name}")
    console.print(f"unlocked {name}", markup=False)


@token_app.command("list")
def token_list(ctx: typer.Context, json_out: Annotated[bool, JSON_OPTION] = False) -> None:
    """List endpoint tokens (never the tokens themselves): id, endpoint, issued, last used, revoked.

    Example: loa token list
    """
    items = tokens.list_tokens(ctx_of(ctx).db, "endpoint")
    if json_out:
        print_json([{"id": t.id, "endpoint": t.owner} | {k: _when(getattr(t, k)) for k in _TOKEN_TIMES} for t in items])
        return
    table = Table("id", "endpoint", "issued", "last used", "revoked")
    for t in items:
        table.add_row(str(t.id), t.owner, _when(t.created_at), _when(t.last_used_at), _when(t.revoked_at))
    console.print(table)


@token_app.command("revoke")
def token_revoke(
    ctx: typer.Context, token_id: Annotated[int, typer.Argument(metavar="ID", help="Token id from `loa token list`.")]
) -> None:
    """Revoke one endpoint token by its id; the endpoint's pulls with it are refused from now on.

    Example: loa token revoke 3
    """
    db = ctx_of(ctx).db
    tok = tokens.revoke_token(db, "endpoint", token_id)
    audit.record(db, "cli", "token.revoked", f"endpoint:{tok.owner}", f"#{tok.id}")
    console.print(f"revoked token #{tok.id} of {tok.owner}", markup=False)


def register(app: typer.Typer) -> None:
    """The commands are on web_cmds' ``user`` and ``token`` groups; importing this module adds them."""
