"""``loa serve``, ``loa user add``, ``loa token create`` and ``loa pull``."""

from __future__ import annotations

import datetime as dt
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from pipeline.cli.context import JSON_OPTION, console, ctx_of, print_json
from pipeline.errors import NotFoundError, PartialFailure, UsageError

if TYPE_CHECKING:
    from pipeline.pull import PullReport

user_app = typer.Typer(help="Web users: editors, approvers, commune operators.", no_args_is_help=True)
token_app = typer.Typer(help="Bearer tokens for endpoints that pull their programs.", no_args_is_help=True)


def serve(
    ctx: typer.Context,
    host: Annotated[str | None, typer.Option(help="Address to listen on (default from [web] host).")] = None,
    port: Annotated[int | None, typer.Option(help="Port (default from [web] port).")] = None,
) -> None:
    """Serve the web UI (Vietnamese) and the pull API with uvicorn.

    Put it behind an HTTPS reverse proxy for use beyond the office network; cookies get
    the Secure flag when the proxy says the request was https (X-Forwarded-Proto).

    Example: loa serve --host 0.0.0.0 --port 8080
    """
    import uvicorn

    from pipeline.web.app import create_app

    app = ctx_of(ctx)
    settings = app.settings
    web = create_app(settings, deployment=app.deployment, db=app.db)
    console.print(f"Loa: http://{host or settings.web.host}:{port or settings.web.port}/", markup=False)
    uvicorn.run(
        web,
        host=host or settings.web.host,
        port=port or settings.web.port,
        proxy_headers=True,
        log_level="info" if app.verbose else "warning",
    )


@user_app.command("add")
def user_add(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(metavar="NAME", help="Login name.")],
    role: Annotated[str, typer.Option("--role", help="admin, editor, approver or operator.")],
    group: Annotated[
        str | None, typer.Option("--group", help="A culture center's group id (editor, approver).")
    ] = None,
    commune: Annotated[str | None, typer.Option("--commune", help="The operator's commune code.")] = None,
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="Read the password from the first line of stdin.")
    ] = False,
) -> None:
    """Add a web user; the password is asked for (or read from stdin) and stored as an argon2 hash.

    Example: loa user add vanhoa-bx --role editor --group bat-xat
    """
    from pipeline.store.users import ROLES, add_user
    from pipeline.web.auth import hash_password

    app = ctx_of(ctx)
    if role not in ROLES:
        raise UsageError(f"--role {role}: use one of {', '.join(ROLES)}")
    if group and commune:
        raise UsageError("give --group or --commune, not both")
    if role == "operator" and not commune:
        raise UsageError("an operator works for one commune: add --commune CODE (see `loa communes`)")
    if commune and app.deployment.commune(commune) is None:
        raise NotFoundError(f"commune {commune}: not in the deployment; see `loa communes`")
    if group and app.deployment.group(group) is None:
        raise NotFoundError(f"group {group}: not in the deployment; see `loa communes`")
    if password_stdin:
        password = sys.stdin.readline().rstrip("\n")
    else:
        password = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    if len(password) < 10:
        raise UsageError(f"user {name}: the password needs at least 10 characters")
    user = add_user(app.db, name, password_hash=hash_password(password), role=role, group=group, commune=commune)
    scope = f"group {user.group}" if user.group else f"commune {user.commune}" if user.commune else "everything"
    console.print(f"added user {user.name} ({user.role}, {scope})", markup=False)


@token_app.command("create")
def token_create(
    ctx: typer.Context,
    endpoint: Annotated[str, typer.Argument(metavar="ENDPOINT", help="Endpoint name from schedules/.")],
    revoke_old: Annotated[bool, typer.Option("--revoke-old", help="Revoke the endpoint's earlier tokens.")] = False,
    json_out: Annotated[bool, JSON_OPTION] = False,
) -> None:
    """Create a bearer token for an endpoint to pull its programs; it is shown once, stored hashed.

    Example: loa token create y-ty-1
    """
    from pipeline.store.users import add_endpoint_token, revoke_endpoint_tokens
    from pipeline.web.auth import new_token

    app = ctx_of(ctx)
    if app.deployment.endpoint(endpoint) is None:
        raise NotFoundError(f"endpoint {endpoint}: not in the deployment; see `loa communes`")
    revoked = revoke_endpoint_tokens(app.db, endpoint) if revoke_old else 0
    token = new_token()
    add_endpoint_token(app.db, endpoint, token)
    if json_out:
        print_json({"endpoint": endpoint, "token": token, "revoked": revoked})
        return
    console.print(token, markup=False)
    console.print(
        f"# token for {endpoint}; keep it secret (it is not shown again){f', revoked {revoked}' if revoked else ''}",
        markup=False,
    )


def pull_cmd(
    server: Annotated[str, typer.Option("--server", help="The Loa server, e.g. https://loa.example.vn")],
    token: Annotated[str, typer.Option("--token", envvar="LOA_PULL_TOKEN", help="The endpoint's token.")],
    to: Annotated[Path, typer.Option("--to", help="Directory to keep the programs in.")],
    key: Annotated[
        Path,
        typer.Option(
            "--key", envvar="LOA_PULL_KEY", help="The deployment's public key (`loa keys show --pem` on the server)."
        ),
    ],
    date: Annotated[
        list[dt.datetime] | None,
        typer.Option(
            "--date", "-d", help="Date to fetch (repeatable); default today and tomorrow.", formats=["%Y-%m-%d"]
        ),
    ] = None,
    json_out: Annotated[bool, JSON_OPTION] = False,
) -> None:
    """Fetch this commune's programs from a Loa server: only what is missing, checked, resumable.

    Meant for cron on a commune PC; the token may come from LOA_PULL_TOKEN instead of
    the command line. Only programs signed with the deployment's key (``--key``) are
    taken; an unsigned, tampered or expired one is refused and the last good one kept
    (exit 3). Exit 0 when everything is in place (or nothing is built yet).

    Example: loa pull --server https://loa.example.vn --token $T --key loa.pub.pem --to /srv/loa
    """
    from pipeline.pull import pull
    from pipeline.signing import load_public

    report = pull(server, token, to, key=load_public(key), dates=[d.date() for d in date or []])
    if json_out:
        print_json(
            {
                "endpoint": report.endpoint,
                "folders": report.folders,
                "not_built": report.not_built,
                "refused": report.refused,
                "fetched": report.fetched,
                "skipped": report.skipped,
                "resumed": report.resumed,
                "bytes": report.bytes,
            }
        )
    else:
        _print_pull(report)
    if report.refused:
        raise PartialFailure(f"refused (the last good program is kept): {'; '.join(report.refused)}")


def _print_pull(report: PullReport) -> None:
    console.print(
        f"{report.endpoint}: {report.fetched} fetched ({report.bytes} bytes, {report.resumed} resumed), "
        f"{report.skipped} already here; {', '.join(report.folders) or 'nothing built yet'}",
        markup=False,
    )
    for day in report.not_built:
        console.print(f"# {day}: nothing built yet on the server", markup=False)


def register(app: typer.Typer) -> None:
    app.command("serve")(serve)
    app.command("pull")(pull_cmd)
    app.add_typer(user_app, name="user")
    app.add_typer(token_app, name="token")
