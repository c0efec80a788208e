"""``loa agency add|list|disable|enable`` and ``loa agency token create|list|revoke``.

Agencies submit bulletins through the API."""

from __future__ import annotations

from typing import Annotated

import typer

from pipeline.cli.context import JSON_OPTION, console, ctx_of, print_json
from pipeline.errors import NotFoundError, UsageError

agency_app = typer.Typer(
    help="Agencies (role agency) that submit bulletins through the API.\n\nExample: loa agency list",
    no_args_is_help=True,
)
agency_token_app = typer.Typer(
    help="API tokens of agencies: create, list, revoke.\n\nExample: loa agency token create so-yte",
    no_args_is_help=True,
)


@agency_app.command("add")
def agency_add(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(metavar="NAME", help="Short name, e.g. so-yte.")],
    title: Annotated[str, typer.Option("--title", help="The agency's name in Vietnamese.")],
    scope: Annotated[
        list[str], typer.Option("--scope", help="What it may target: all, a group id or a commune code (repeat).")
    ],
) -> None:
    """Add an agency with the targets it may address.

    Example: loa agency add so-yte --title "Sở Y tế Lào Cai" --scope all
    """
    from pipeline.store.agencies import add_agency

    app = ctx_of(ctx)
    known = {"all"} | {g.id for g in app.deployment.groups} | {c.code for c in app.deployment.communes}
    for s in scope:
        if s not in known:
            raise NotFoundError(f"--scope {s}: not all, a group id or a commune code; see `loa communes`")
    agency = add_agency(app.db, name, title=title, scope=tuple(dict.fromkeys(scope)))
    console.print(f"added agency {agency.name} ({agency.title}), scope {', '.join(agency.scope)}", markup=False)


@agency_app.command("list")
def agency_list(ctx: typer.Context, json_out: Annotated[bool, JSON_OPTION] = False) -> None:
    """List agencies and their scope.

    Example: loa agency list --json
    """
    from pipeline.store.agencies import list_agencies

    items = list_agencies(ctx_of(ctx).db)
    if json_out:
        print_json([{"name": a.name, "title": a.title, "scope": list(a.scope), "disabled": a.disabled} for a in items])
        return
    for a in items:
        state = "\tdisabled" if a.disabled else ""
        console.print(f"{a.name}\t{a.title}\t{', '.join(a.scope)}{state}", markup=False)


@agency_app.command("disable")
def agency_disable(
    ctx: typer.Context, name: Annotated[str, typer.Argument(metavar="NAME", help="The agency's name.")]
) -> None:
    """Disable an agency: every request with its tokens gets 401 at once, until it is enabled.

    Its tokens are kept (not revoked), so `loa agency enable` restores them.

    Example: loa agency disable so-yte
    """
    from pipeline.store.agencies import set_disabled

    agency = set_disabled(ctx_of(ctx).db, name, True, by="cli")
    console.print(
        f"disabled agency {agency.name}: its tokens are refused until `loa agency enable {name}`", markup=False
    )


@agency_app.command("enable")
def agency_enable(
    ctx: typer.Context, name: Annotated[str, typer.Argument(metavar="NAME", help="The agency's name.")]
) -> None:
    """Enable a disabled agency again: its live (not revoked) tokens work again.

    Example: loa agency enable so-yte
    """
    from pipeline.store.agencies import set_disabled

    agency = set_disabled(ctx_of(ctx).db, name, False, by="cli")
    console.print(f"enabled agency {agency.name}", markup=False)


@agency_token_app.command("create")
def token_create(
    ctx: typer.Context,
    agency: Annotated[str, typer.Argument(metavar="AGENCY", help="The agency's name.")],
    json_out: Annotated[bool, JSON_OPTION] = False,
) -> None:
    """Create an API token for an agency; it is shown once and stored hashed.

    Example: loa agency token create so-yte
    """
    from pipeline.store import tokens
    from pipeline.store.agencies import get_agency

    db = ctx_of(ctx).db
    get_agency(db, agency)
    token_id, token = tokens.create_agency_token(db, agency, by="cli")
    if json_out:
        print_json({"agency": agency, "id": token_id, "token": token})
        return
    console.print(token, markup=False)
    console.print(f"# token {token_id} for agency {agency}; keep it secret (it is not shown again)", markup=False)


@agency_token_app.command("list")
def token_list(
    ctx: typer.Context,
    agency: Annotated[str | None, typer.Argument(metavar="[AGENCY]", help="Only this agency's tokens.")] = None,
    json_out: Annotated[bool, JSON_OPTION] = False,
) -> None:
    """List agency tokens (never the tokens themselves): id, agency, created, last used, revoked.

    Example: loa agency token list so-yte
    """
    from pipeline.store import tokens

    items = tokens.list_tokens(ctx_of(ctx).db, "agency", agency)
    rows = [
        {
            "id": t.id,
            "agency": t.owner,
            "created_at": t.created_at.isoformat(),
            "last_used_at": t.last_used_at.isoformat() if t.last_used_at else None,
            "revoked_at": t.revoked_at.isoformat() if t.revoked_at else None,
        }
        for t in items
    ]
    if json_out:
        print_json(rows)
        return
    for r in rows:
        state = f"revoked {r['revoked_at']}" if r["revoked_at"] else "live"
        console.print(f"{r['id']}\t{r['agency']}\t{r['created_at']}\t{state}", markup=False)


@agency_token_app.command("revoke")
def token_revoke(
    ctx: typer.Context,
    agency: Annotated[str, typer.Argument(metavar="AGENCY", help="The agency's name.")],
    token_id: Annotated[int | None, typer.Option("--id", help="Revoke only this token (default: all).")] = None,
) -> None:
    """Revoke an agency's tokens (all, or one by id); requests with them get 401 at once.

    Example: loa agency token revoke so-yte --id 3
    """
    from pipeline.store import tokens
    from pipeline.store.agencies import get_agency

    app = ctx_of(ctx)
    get_agency(app.db, agency)
    n = tokens.revoke_tokens(app.db, "agency", agency, token_id=token_id, by="cli")
    if token_id is not None and n == 0:
        raise UsageError(f"agency {agency}: no live token {token_id}; see `loa agency token list {agency}`")
    console.print(f"revoked {n} token(s) of {agency}", markup=False)


def register(app: typer.Typer) -> None:
    agency_app.add_typer(agency_token_app, name="token")
    app.add_typer(agency_app, name="agency")
