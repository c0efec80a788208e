"""``loa keys init|show`` and ``loa verify``: the deployment's manifest key and what it signs."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Annotated

import typer

from pipeline.cli.context import JSON_OPTION, console, ctx_of, print_json

keys_app = typer.Typer(help="The deployment's Ed25519 key that signs every manifest.", no_args_is_help=True)


@keys_app.command("init")
def keys_init(
    ctx: typer.Context,
    force: Annotated[
        bool, typer.Option("--force", help="Replace an existing key (devices must get the new one).")
    ] = False,
    json_out: Annotated[bool, JSON_OPTION] = False,
) -> None:
    """Make the deployment's signing key (mode 0600, at signing.key_file).

    Refuses to replace a key unless --force: every device trusts the public key.

    Example: loa keys init
    """
    from pipeline.signing import init_key

    settings = ctx_of(ctx).settings
    pub = init_key(settings.signing_key_file, force=force)
    if json_out:
        print_json({"key_file": str(settings.signing_key_file), "fingerprint": pub.fingerprint, "pem": pub.pem})
        return
    console.print(f"made {settings.signing_key_file} ({pub.fingerprint})", markup=False)
    console.print("give devices the public key: loa keys show --pem > loa-manifest.pub.pem", markup=False)


@keys_app.command("show")
def keys_show(
    ctx: typer.Context,
    pem: Annotated[
        bool, typer.Option("--pem", help="Print only the PEM public key (what `loa pull --key` reads).")
    ] = False,
    json_out: Annotated[bool, JSON_OPTION] = False,
) -> None:
    """Show the public key devices use to check manifests, and its fingerprint.

    Example: loa keys show --pem > loa-manifest.pub.pem
    """
    from pipeline.signing import load_key, public_key

    settings = ctx_of(ctx).settings
    pub = public_key(load_key(settings.signing_key_file).public_key())
    if json_out:
        print_json({"fingerprint": pub.fingerprint, "pem": pub.pem, "openssh": pub.openssh})
    elif pem:
        console.print(pub.pem.rstrip("\n"), markup=False, highlight=False)
    else:
        console.print(f"fingerprint: {pub.fingerprint}", markup=False)
        console.print(pub.openssh, markup=False, highlight=False)
        console.print(pub.pem.rstrip("\n"), markup=False, highlight=False)


def verify(
    ctx: typer.Context,
    folder: Annotated[
        Path, typer.Argument(metavar="DIR", help="A program folder: <root>/programs/<date> or <root>/emergency/<id>.")
    ],
    key: Annotated[
        Path | None,
        typer.Option("--key", help="Public key PEM to check with (default: this deployment's own key)."),
    ] = None,
    json_out: Annotated[bool, JSON_OPTION] = False,
) -> None:
    """Check a delivered program folder: signature, expiry, every file's size and SHA-256.

    DIR is the folder holding manifest.json and manifest.json.sig, as it landed on an
    endpoint (its media/ two levels up). Exit 2 naming the first thing wrong.

    Example: loa verify /srv/loa/programs/2026-12-01 --key loa-manifest.pub.pem
    """
    from pipeline import manifest as mf
    from pipeline.signing import load_key, load_public, public_key

    folder = folder.resolve()
    if key is not None:
        pub = load_public(key)
    else:
        pub = public_key(load_key(ctx_of(ctx).settings.signing_key_file).public_key())
    root = folder.parent.parent
    rel = folder.relative_to(root).as_posix()
    manifest = mf.verify_folder(root, rel, public_key=pub, now=dt.datetime.now(dt.UTC))
    if json_out:
        print_json(
            {
                "ok": True,
                "endpoint": manifest.endpoint,
                "folder": manifest.folder,
                "files": len(manifest.files),
                "valid_until": manifest.valid_until.isoformat(),
            }
        )
        return
    console.print(
        f"ok: {manifest.folder} for {manifest.endpoint}: signature good, {len(manifest.files)} files match, "
        f"valid until {manifest.valid_until.isoformat()}",
        markup=False,
    )


def register(app: typer.Typer) -> None:
    app.add_typer(keys_app, name="keys")
    app.command("verify")(verify)
