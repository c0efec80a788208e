"""``loa pull`` against a running server: only what is missing, checked, resumed, manifest last."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from pipeline.cli import web_cmds
from pipeline.cli.context import AppContext
from pipeline.errors import UsageError
from pipeline.pull import pull
from pipeline.store.users import add_endpoint_token
from tests import audio_fixtures as fx
from tests.web_support import Built, Web, build_small, serve_project, shared_segments

pytestmark = [pytest.mark.audio, pytest.mark.slow]
TOKEN = "pull-test-token-for-y-ty-loa-0123456789"


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory, voices_with_placeholders: Path) -> Built:
    tmp = tmp_path_factory.mktemp("pull")
    wav = fx.sine(tmp / "hmn.wav", seconds=1.0)
    built = build_small(
        tmp / "p", voices_with_placeholders, wav, segments=shared_segments(tmp_path_factory), commune="02641"
    )
    db = built.project.db()
    add_endpoint_token(db, "y-ty-loa", TOKEN)
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


def manifest_of(built: Built) -> dict[str, object]:
    path = built.project.settings.outbox_dir / "02641" / "programs" / built.day.isoformat() / "manifest.json"
    data: dict[str, object] = json.loads(path.read_text())
    return data


def test_loa_pull_fetches_everything_then_nothing(built: Built, web: Web, tmp_path: Path) -> None:
    app = typer.Typer()

    @app.callback()
    def root(ctx: typer.Context) -> None:
        ctx.obj = AppContext(config_path=str(built.project.config))

    web_cmds.register(app)
    to = tmp_path / "loa"
    args = ["pull", "--server", web.url, "--token", TOKEN, "--to", str(to), "--json"]
    first = CliRunner().invoke(app, args)
    assert first.exit_code == 0, first.output
    report = json.loads(first.stdout)
    day = built.day.isoformat()
    assert report["endpoint"] == "y-ty-loa"
    assert f"programs/{day}" in report["folders"] and any(f.startswith("emergency/") for f in report["folders"])
    assert report["not_built"] == [(built.day.fromordinal(built.day.toordinal() - 1)).isoformat()]  # today
    have = local_files(to)
    files = manifest_of(built)["files"]
    assert isinstance(files, list)
    for entry in files:
        if entry["format"] == "playlist":
            assert have[entry["path"]] == entry["sha256"]
        else:
            assert entry["path"] not in have  # the single MP3 is for the other endpoint
    assert f"programs/{day}/manifest.json" in have
    assert not any(name.endswith((".part", ".tmp")) for name in have)
    assert report["fetched"] == len(have) - len(report["folders"])  # all but the manifests
    second = json.loads(CliRunner().invoke(app, args).stdout)
    assert (
        second["fetched"] == 0 and second["bytes"] == 0 and second["skipped"] == report["fetched"] + report["skipped"]
    )


def test_a_broken_download_is_resumed_and_a_damaged_file_replaced(built: Built, web: Web, tmp_path: Path) -> None:
    to = tmp_path / "loa"
    pull(web.url, TOKEN, to, dates=[built.day])
    files = manifest_of(built)["files"]
    assert isinstance(files, list)
    media = [f for f in files if f["path"].startswith("media/")]
    big = max(media, key=lambda f: f["bytes"])
    dest = to / big["path"]
    data = dest.read_bytes()
    half = len(data) // 2
    dest.unlink()
    dest.with_name(dest.name + ".part").write_bytes(data[:half])  # as a cut connection leaves it
    damaged = to / media[0]["path"] if media[0] is not big else to / media[1]["path"]
    raw = bytearray(damaged.read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    damaged.write_bytes(bytes(raw))
    report = pull(web.url, TOKEN, to, dates=[built.day])
    assert report.resumed == 1 and report.fetched == 2
    assert report.bytes == (len(data) - half) + len(raw)  # only the missing half was sent again
    assert hashlib.sha256(dest.read_bytes()).hexdigest() == big["sha256"]
    assert not dest.with_name(dest.name + ".part").exists()


def test_a_stale_partial_file_is_detected_and_fetched_again(built: Built, web: Web, tmp_path: Path) -> None:
    to = tmp_path / "loa"
    files = manifest_of(built)["files"]
    assert isinstance(files, list)
    entry = next(f for f in files if f["path"].startswith("media/"))
    dest = to / entry["path"]
    dest.parent.mkdir(parents=True)
    dest.with_name(dest.name + ".part").write_bytes(b"\x00" * 100)  # left over from some other file
    pull(web.url, TOKEN, to, dates=[built.day])
    assert hashlib.sha256(dest.read_bytes()).hexdigest() == entry["sha256"]


def test_a_wrong_token_is_a_clear_error(web: Web, tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="token was refused"):
        pull(web.url, "not-a-token", tmp_path / "x")
    assert not (tmp_path / "x").exists()
