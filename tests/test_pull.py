"""``loa pull`` against a running server: only what is missing, checked, resumed, manifest last."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from pipeline import manifest as mf
from pipeline.cli import web_cmds
from pipeline.cli.context import AppContext
from pipeline.errors import UsageError
from pipeline.files import sha256_file
from pipeline.package import manifest_path
from pipeline.pull import pull
from pipeline.signing import PublicKey, init_key, load_key, public_key, sign
from pipeline.store.tokens import add_token
from tests.web_support import Built, Web, serve_project

BUILD_COMMUNE = "02641"
pytestmark = [pytest.mark.audio, pytest.mark.slow]
TOKEN = "pull-test-token-for-y-ty-loa-0123456789"


@pytest.fixture(scope="module")
def built(built: Built) -> Built:
    """The shared built project (``BUILD_COMMUNE`` only), with the endpoints' tokens."""
    db = built.project.db()
    add_token(db, "endpoint", "y-ty-loa", TOKEN)
    db.close()
    return built


@pytest.fixture
def web(built: Built) -> Iterator[Web]:
    with serve_project(built.project) as web:
        yield web


def local_files(root: Path) -> dict[str, str]:
    return {
        p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in root.rglob("*")
        if p.is_file()
    }


def manifest_path_of(built: Built) -> Path:
    return manifest_path(built.project.settings.outbox_dir, "02641", f"programs/{built.day.isoformat()}", "y-ty-loa")


def manifest_of(built: Built) -> mf.Manifest:
    return mf.read(manifest_path_of(built))


def key_of(built: Built) -> PublicKey:
    return public_key(load_key(built.project.settings.signing_key_file).public_key())


def test_loa_pull_fetches_everything_then_nothing(built: Built, web: Web, tmp_path: Path) -> None:
    app = typer.Typer()

    @app.callback()
    def root(ctx: typer.Context) -> None:
        ctx.obj = AppContext(config_path=str(built.project.config))

    web_cmds.register(app)
    to = tmp_path / "loa"
    pem = tmp_path / "loa.pub.pem"
    pem.write_text(key_of(built).pem)
    args = ["pull", "--server", web.url, "--token", TOKEN, "--key", str(pem), "--to", str(to), "--json"]
    first = CliRunner().invoke(app, args)
    assert first.exit_code == 0, first.output
    report = json.loads(first.stdout)
    day = built.day.isoformat()
    assert report["endpoint"] == "y-ty-loa"
    assert f"programs/{day}" in report["folders"] and any(f.startswith("emergency/") for f in report["folders"])
    assert report["not_built"] == [(built.day.fromordinal(built.day.toordinal() - 1)).isoformat()]  # today
    have = local_files(to)
    for entry in manifest_of(built).files:
        assert have[entry.path] == entry.sha256
    assert f"programs/{day}/morning.mp3" not in have  # the single MP3 is for the other endpoint
    assert have[f"programs/{day}/manifest.json"] == sha256_file(manifest_path_of(built))
    assert f"programs/{day}/manifest.json.sig" in have
    assert not any(name.endswith((".part", ".tmp")) for name in have)
    assert report["fetched"] == len(have) - 2 * len(report["folders"])  # all but the manifests and signatures
    second = json.loads(CliRunner().invoke(app, args).stdout)
    assert (
        second["fetched"] == 0 and second["bytes"] == 0 and second["skipped"] == report["fetched"] + report["skipped"]
    )


def test_a_broken_download_is_resumed_and_a_damaged_file_replaced(built: Built, web: Web, tmp_path: Path) -> None:
    to = tmp_path / "loa"
    pull(web.url, TOKEN, to, key=key_of(built), dates=[built.day])
    media = [f for f in manifest_of(built).files if f.path.startswith("media/")]
    big = max(media, key=lambda f: f.bytes)
    dest = to / big.path
    data = dest.read_bytes()
    half = len(data) // 2
    dest.unlink()
    dest.with_name(dest.name + ".part").write_bytes(data[:half])  # as a cut connection leaves it
    damaged = to / media[0].path if media[0] is not big else to / media[1].path
    raw = bytearray(damaged.read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    damaged.write_bytes(bytes(raw))
    report = pull(web.url, TOKEN, to, key=key_of(built), dates=[built.day])
    assert report.resumed == 1 and report.fetched == 2
    assert report.bytes == (len(data) - half) + len(raw)  # only the missing half was sent again
    assert hashlib.sha256(dest.read_bytes()).hexdigest() == big.sha256
    assert not dest.with_name(dest.name + ".part").exists()


def test_a_stale_partial_file_is_detected_and_fetched_again(built: Built, web: Web, tmp_path: Path) -> None:
    to = tmp_path / "loa"
    entry = next(f for f in manifest_of(built).files if f.path.startswith("media/"))
    dest = to / entry.path
    dest.parent.mkdir(parents=True)
    dest.with_name(dest.name + ".part").write_bytes(b"\x00" * 100)  # left over from some other file
    pull(web.url, TOKEN, to, key=key_of(built), dates=[built.day])
    assert hashlib.sha256(dest.read_bytes()).hexdigest() == entry.sha256


def test_a_wrong_token_is_a_clear_error(built: Built, web: Web, tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="token was refused"):
        pull(web.url, "not-a-token", tmp_path / "x", key=key_of(built))
    assert not (tmp_path / "x").exists()


@pytest.mark.parametrize(
    "tamper", ["media", "manifest", "unsigned", "other-key", "expired", "other-endpoint", "other-folder"]
)
def test_pull_refuses_a_bad_program_and_keeps_the_last_good_one(
    built: Built, web: Web, tmp_path: Path, tamper: str
) -> None:
    to = tmp_path / "loa"
    key = key_of(built)
    good = pull(web.url, TOKEN, to, key=key, dates=[built.day])
    assert good.refused == [] and f"programs/{built.day}" in good.folders
    before = local_files(to)
    path = manifest_path_of(built)
    sig = path.with_name(path.name + ".sig")
    saved = {p: p.read_bytes() for p in (path, sig)}
    manifest = mf.parse(saved[path])
    media = to.parent / "media-backup"
    try:
        if tamper == "media":  # a segment changed on the server after signing
            entry = next(f for f in manifest.files if f.path.startswith("media/"))
            target = built.project.settings.outbox_dir / "02641" / entry.path
            media.write_bytes(target.read_bytes())
            data = bytearray(media.read_bytes())
            data[len(data) // 2] ^= 0xFF
            target.unlink()  # a new file, not the segment store's hard link
            target.write_bytes(bytes(data))
            (to / entry.path).unlink()  # the device lacks it, so it must fetch the bad copy
            before.pop(entry.path)
        elif tamper == "manifest":
            path.write_bytes(saved[path].replace(b'"duration_ms"', b'"duration_ms" ', 1))
        elif tamper == "unsigned":
            sig.unlink()
        elif tamper == "other-key":
            other = init_key(tmp_path / "other.pem")
            assert other.fingerprint != key.fingerprint
            sig.write_bytes(sign(load_key(tmp_path / "other.pem"), saved[path]))
        else:  # validly signed by the deployment key, but expired or for another endpoint or folder
            import dataclasses

            if tamper == "expired":  # its day is over
                old = dataclasses.replace(manifest, valid_until=manifest.valid_until.replace(year=2020))
            elif tamper == "other-endpoint":  # a sibling endpoint's program, served under this one's name
                old = dataclasses.replace(manifest, endpoint="y-ty-radio")
            else:  # another day's program, served as this day's
                old = dataclasses.replace(manifest, folder="programs/2026-01-01")
            path.write_bytes(old.to_bytes())
            sig.write_bytes(sign(load_key(built.project.settings.signing_key_file), old.to_bytes()))
        again = pull(web.url, TOKEN, to, key=key, dates=[built.day])
    finally:
        for p, data in saved.items():
            p.write_bytes(data)
        if media.exists():
            target.unlink()
            target.write_bytes(media.read_bytes())
    assert f"programs/{built.day}" not in again.folders
    assert [r for r in again.refused if f"programs/{built.day}" in r], again.refused
    assert {k: v for k, v in local_files(to).items() if k in before} == before  # the last good program stays
