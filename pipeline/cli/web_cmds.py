"""``loa serve``, ``loa user add``, ``loa token create`` and ``loa pull``."""

from __future__ import annotations

import datetime as dt
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from pipeline.cli.context import JSON_OPTION, console, ctx_of, print_json
from pipeline.errors import NotFoundError, PartialFailure, UsageError
from pipeline.store import audit

if TYPE_CHECKING:
    from pipeline.pull import PullReport
    from pipeline.signing import PublicKey


def new_password(name: str, *, from_stdin: bool) -> str:
    """A new password for user ``name``: asked for twice, or the first line of stdin; 10 characters at least."""
    if from_stdin:
        password = sys.stdin.readline().rstrip("\n")
    else:
        password = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    if len(password) < 10:
        raise UsageError(f"user {name}: the password needs at least 10 characters")
    return password


user_app = typer.Typer(help="Web users: editors, approvers, commune operators, readers.", no_args_is_help=True)
token_app = typer.Typer(help="Bearer tokens for endpoints that pull their programs.", no_args_is_help=True)


def serve(
    ctx: typer.Context,
    host: Annotated[str | None, typer.Option(help="Address to listen on (default from [web] host).")] = None,
    port: Annotated[int | None, typer.Option(help="Port (default from [web] port).")] = None,
) -> None:
    """Serve the web UI (Vietnamese) and the pull API with uvicorn.

    Put it behind an HTTPS reverse proxy for use beyond the office network, and list
    that proxy in [web] trusted_proxies: only from there are X-Forwarded-For (the client
    address the login limits count) and X-Forwarded-Proto (cookies get the Secure flag
    for https) believed.

    Example: loa serve --host 0.0.0.0 --port 8080
    """
    import uvicorn

    from pipeline.web.app import create_app

    app = ctx_of(ctx)
    settings = app.settings
    web = create_app(settings, deployment=app.deployment, db=app.db)
    console.print(f"Loa: http://{host or settings.web.host}:{port or settings.web.port}/", markup=False)
    from uvicorn.config import LOGGING_CONFIG

    uvicorn.run(
        web,
        host=host or settings.web.host,
        port=port or settings.web.port,
        proxy_headers=False,  # the app reads forwarded headers from [web] trusted_proxies only
        log_level="info" if app.verbose else "warning",
        # [log] format = "json": uvicorn's lines go through the root logger's JSON handler too
        log_config=None if settings.log.format == "json" else LOGGING_CONFIG,
    )


@user_app.command("add")
def user_add(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(metavar="NAME", help="Login name.")],
    role: Annotated[str, typer.Option("--role", help="admin, editor, approver, operator or reader.")],
    group: Annotated[
        list[str] | None,
        typer.Option("--group", help="A culture center's group id (editor, approver; a reader: repeatable)."),
    ] = None,
    commune: Annotated[
        list[str] | None, typer.Option("--commune", help="The operator's commune code (a reader: repeatable).")
    ] = None,
    languages: Annotated[
        str, typer.Option("--languages", help="A reader's languages, comma-separated (e.g. hmn,pcc).")
    ] = "",
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="Read the password from the first line of stdin.")
    ] = False,
) -> None:
    """Add a web user; the password is asked for (or read from stdin) and stored as an argon2 hash.

    A reader records bulletins in the languages they read, for the communes of their groups
    and communes (none given: every commune).

    Example: loa user add vanhoa-bx --role editor --group bat-xat

    Example: loa user add doc-mong --role reader --languages hmn,pcc --group bat-xat
    """
    from pipeline.store.users import ROLES, add_user
    from pipeline.web.auth import hash_password

    app = ctx_of(ctx)
    groups, communes = tuple(group or ()), tuple(commune or ())
    langs = tuple(dict.fromkeys(x.strip() for x in languages.split(",") if x.strip()))
    if role not in ROLES:
        raise UsageError(f"--role {role}: use one of {', '.join(ROLES)}")
    for code in communes:
        if app.deployment.commune(code) is None:
            raise NotFoundError(f"commune {code}: not in the deployment; see `loa communes`")
    for gid in groups:
        if app.deployment.group(gid) is None:
            raise NotFoundError(f"group {gid}: not in the deployment; see `loa communes`")
    if role == "reader":
        known = {lang for c in app.deployment.communes for lang in c.languages}
        if not langs:
            raise UsageError("a reader reads at least one language: add --languages hmn,pcc (see `loa communes`)")
        unknown = [x for x in langs if x not in known]
        if unknown:
            raise UsageError(f"--languages: {', '.join(unknown)} is not a language of the deployment's communes")
    else:
        if langs:
            raise UsageError("--languages is for a reader (--role reader)")
        if len(groups) > 1 or len(communes) > 1 or (groups and communes):
            raise UsageError("give one --group or one --commune, not more (only a reader has several)")
        if role == "operator" and not communes:
            raise UsageError("an operator works for one commune: add --commune CODE (see `loa communes`)")
    password = new_password(name, from_stdin=password_stdin)
    reader = role == "reader"
    user = add_user(
        app.db,
        name,
        password_hash=hash_password(password),
        role=role,
        group=None if reader or not groups else groups[0],
        commune=None if reader or not communes else communes[0],
        languages=langs,
        scope=groups + communes if reader else (),
    )
    audit.record(app.db, "cli", "user.added", f"user:{user.name}", role + (f", {','.join(langs)}" if langs else ""))
    if reader:
        scope = f"reads {','.join(user.languages)}; " + (", ".join(user.scope) or "every commune")
    else:
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
    from pipeline.store import tokens

    app = ctx_of(ctx)
    if app.deployment.endpoint(endpoint) is None:
        raise NotFoundError(f"endpoint {endpoint}: not in the deployment; see `loa communes`")
    revoked = tokens.revoke_tokens(app.db, "endpoint", endpoint) if revoke_old else 0
    token = tokens.create_endpoint_token(app.db, endpoint)
    audit.record(app.db, "cli", "token.issued", f"endpoint:{endpoint}", f"revoked {revoked}" if revoked else "")
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
    play: Annotated[
        bool, typer.Option("--play", help="Then play today's program (and new emergencies) and send receipts.")
    ] = False,
    slot: Annotated[
        str | None, typer.Option("--slot", help="With --play: the slot to play (default: the one due now).")
    ] = None,
    player: Annotated[
        str,
        typer.Option("--player", envvar="LOA_PLAYER", help="With --play: the player command; the file is appended."),
    ] = "mpv --ao=null --ao-null-untimed --no-video --really-quiet --no-config",
) -> None:
    """Fetch this commune's programs from a Loa server: only what is missing, checked, resumable.

    Meant for cron on a commune PC; the token may come from LOA_PULL_TOKEN instead of
    the command line. Only programs signed with the deployment's key (``--key``) are
    taken; an unsigned, tampered or expired one is refused and the last good one kept
    (exit 3). Exit 0 when everything is in place (or nothing is built yet).
    With --play it then plays a program with the player, writes signed as-run receipts
    to <to>/reports/ and uploads them (exit 3 if an item did not play or an upload failed).

    Example: loa pull --server https://loa.example.vn --token $T --key loa.pub.pem --to /srv/loa
    Example: loa pull --server https://loa.example.vn --token $T --key loa.pub.pem --to /srv/loa --play
    """
    from pipeline.pull import pull
    from pipeline.signing import load_public

    public = load_public(key)
    report = pull(server, token, to, key=public, dates=[d.date() for d in date or []])
    if play:  # the last good programs are played even if a newer one was refused
        _play_after_pull(server, token, to, public=public, slot=slot, player=player, json_out=json_out)
        if report.refused:
            raise PartialFailure(f"refused (the last good program is kept): {'; '.join(report.refused)}")
        return
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


def _play_after_pull(
    server: str, token: str, to: Path, *, public: PublicKey, slot: str | None, player: str, json_out: bool
) -> None:
    from pipeline.play import play_pulled, player_command

    played = play_pulled(server, token, to, public_key=public, slot=slot, player=player_command(player))
    if json_out:
        print_json(
            {
                "receipts": played.receipts,
                "played": played.played,
                "failed": played.failed,
                "uploaded": played.uploaded,
                "upload_errors": played.upload_errors,
                "refused": played.refused,
            }
        )
    else:
        console.print(
            f"played {played.played} item(s), {played.failed} not played; "
            f"{len(played.receipts)} receipt(s), {played.uploaded} uploaded",
            markup=False,
        )
    if played.failed or played.upload_errors or played.refused:
        raise PartialFailure(
            f"{played.failed} item(s) did not play, {len(played.refused)} folder(s) refused, "
            f"{len(played.upload_errors)} receipt upload(s) failed "
            f"({'; '.join(played.refused + played.upload_errors) or 'see the receipts in reports/'}); "
            "unsent receipts are retried"
        )


def register(app: typer.Typer) -> None:
    app.command("serve")(serve)
    app.command("pull")(pull_cmd)
    app.add_typer(user_app, name="user")
    app.add_typer(token_app, name="token")
