"""The typed, signed manifest: one per endpoint, its JSON Schema, `loa verify`, stock OpenSSL."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import jsonschema
import pytest

from pipeline import manifest as mf
from pipeline.cli import main
from pipeline.models import Source
from pipeline.signing import init_key, load_key, public_key, sign
from tests.conftest import REPO, CliResult, Project, add_bulletin, make_small

pytestmark = [pytest.mark.audio, pytest.mark.slow]
SCHEMA = json.loads((REPO / "schemas" / "manifest-2.schema.json").read_text())


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory, voices_with_placeholders: Path) -> tuple[Project, dt.date]:
    """Tomorrow built and pushed to the small deployment's local endpoints (once for the module)."""
    small = make_small(tmp_path_factory.mktemp("manifest") / "small", voices_with_placeholders)
    day = dt.datetime.now(small.settings.tz).date() + dt.timedelta(days=1)
    bid = add_bulletin(small, "Thôn Tả Phìn họp lúc 7h30 ngày mai về gia hạn thẻ bảo hiểm y tế.")
    db = small.db()
    t = db.table("bulletins")
    with db.begin() as conn:
        conn.execute(t.update().where(t.c.id == bid).values(valid_from=day, valid_until=day))
    assert main(["--config", str(small.config), "keys", "init"]) == 0
    assert main(["--config", str(small.config), "nightly", "--date", day.isoformat()]) == 0
    return small, day


@pytest.fixture
def run(built: tuple[Project, dt.date], capsys: pytest.CaptureFixture[str]) -> Callable[..., CliResult]:
    def call(*args: str) -> CliResult:
        capsys.readouterr()
        code = main(["--config", str(built[0].config), *args])
        out = capsys.readouterr()
        return CliResult(code, out.out, out.err)

    return call


def landed(project: Project, endpoint: str, day: dt.date) -> Path:
    return project.root / "endpoints" / endpoint / "programs" / day.isoformat()


def test_every_manifest_validates_and_names_exactly_what_its_endpoint_gets(built: tuple[Project, dt.date]) -> None:
    project, day = built
    manifests = sorted(project.settings.outbox_dir.glob("*/programs/*/manifests/*.json"))
    assert {p.stem for p in manifests} == {"y-ty-loa", "y-ty-radio", "ban-lau-loa"}
    for path in manifests:
        jsonschema.validate(json.loads(path.read_bytes()), SCHEMA)
    single = mf.read(landed(project, "y-ty-radio", day) / "manifest.json")
    assert single.format == "single" and single.endpoint == "y-ty-radio"
    assert single.files and all(f.path.endswith(".mp3") and f.path.startswith("programs/") for f in single.files)
    assert not any(f.path.endswith(".m3u") or f.path.startswith("media/") for f in single.files)
    assert all(i.file is None and i.offset_ms is not None for p in single.programs for i in p.items)
    playlist = mf.read(landed(project, "y-ty-loa", day) / "manifest.json")
    assert playlist.format == "playlist"
    assert not any(f.path.startswith("programs/") and f.path.endswith(".mp3") for f in playlist.files)
    assert {f.path for f in playlist.files if f.path.endswith(".m3u")} == {
        p.playlist for p in playlist.programs if p.playlist
    }
    items = [i for p in playlist.programs for i in p.items]
    assert {i.file for i in items} == {f.path for f in playlist.files if f.path.startswith("media/")}
    sources = {i.source.type for i in items}
    assert {"tts", "chime", "clip"} <= sources
    placeholder_clips = [i for i in items if i.source.type == "clip" and i.source.placeholder]
    assert placeholder_clips and not any(i.source.human for i in placeholder_clips)  # the test voices are stand-ins
    assert all(i.source.engine == "espeak" for i in items if i.source.type == "tts")
    assert playlist.valid_until == dt.datetime.combine(
        day + dt.timedelta(days=1), dt.time(0), tzinfo=project.settings.tz
    )


def test_the_manifest_round_trips_and_the_reader_names_what_is_wrong() -> None:
    m = mf.Manifest(
        endpoint="x",
        format="playlist",
        commune="02641",
        commune_name="Y Tý",
        folder="emergency/5",
        timezone="Asia/Ho_Chi_Minh",
        valid_until=dt.datetime(2026, 12, 2, tzinfo=dt.UTC),
        programs=(),
        files=(),
        emergency=mf.Emergency(5, "Lũ quét", dt.datetime(2026, 12, 2, tzinfo=dt.UTC), replay=()),
    )
    assert mf.parse(m.to_bytes()) == m
    jsonschema.validate(json.loads(m.to_bytes()), SCHEMA)
    with pytest.raises(mf.ManifestError, match=r"schema is 'loa.manifest/1'"):
        mf.parse(b'{"schema": "loa.manifest/1", "files": []}', where="old.json")
    with pytest.raises(mf.ManifestError, match=r"old\.json: not JSON"):
        mf.parse(b"{", where="old.json")
    broken = json.loads(m.to_bytes())
    del broken["endpoint"]
    with pytest.raises(mf.ManifestError, match="KeyError: 'endpoint'"):
        mf.parse(json.dumps(broken).encode())
    assert mf.files_named(b'{"schema": "loa.manifest/1", "files": [{"path": "media/a.mp3"}]}') == {"media/a.mp3"}
    assert Source("recording").human and not Source("clip", placeholder=True).human and not Source("tts").human


def openssl_verify(folder: Path, pem: Path) -> subprocess.CompletedProcess[str]:
    """The stock-tool check docs/manifest.md gives devices, to the letter."""
    return subprocess.run(
        [
            *("openssl", "pkeyutl", "-verify", "-pubin", "-inkey", str(pem), "-rawin"),
            *("-in", str(folder / "manifest.json"), "-sigfile", str(folder / "manifest.json.sig")),
        ],
        capture_output=True,
        text=True,
    )


TAMPERS = ["media", "manifest", "unsigned", "expired", "other-key"]


@pytest.mark.parametrize("tamper", TAMPERS)
def test_loa_verify_and_openssl_refuse_a_tampered_program(
    built: tuple[Project, dt.date], run: Callable[..., CliResult], tmp_path: Path, tamper: str
) -> None:
    project, day = built
    device = tmp_path / "device"
    shutil.copytree(project.root / "endpoints" / "y-ty-loa", device)
    folder = device / "programs" / day.isoformat()
    pem = tmp_path / "loa.pub.pem"
    shown = run("keys", "show", "--pem")
    assert shown.code == 0
    pem.write_text(shown.out)
    assert run("verify", str(folder), "--key", str(pem)).code == 0
    assert openssl_verify(folder, pem).returncode == 0
    manifest = mf.read(folder / "manifest.json")
    key = load_key(project.settings.signing_key_file)
    if tamper == "media":
        media = device / next(f.path for f in manifest.files if f.path.startswith("media/"))
        data = bytearray(media.read_bytes())
        data[-100] ^= 0x01
        media.write_bytes(bytes(data))
        expect = f"{media}: SHA-256 differs"
    elif tamper == "manifest":
        raw = (folder / "manifest.json").read_bytes()
        tampered = raw.replace(b'"slot":"morning"', b'"slot":"evening"', 1)
        assert tampered != raw
        (folder / "manifest.json").write_bytes(tampered)
        expect = "signature does not match"
    elif tamper == "unsigned":
        (folder / "manifest.json.sig").unlink()
        expect = "no signature"
    elif tamper == "expired":
        old = dataclasses.replace(manifest, valid_until=manifest.valid_until - dt.timedelta(days=30))
        (folder / "manifest.json").write_bytes(old.to_bytes())
        (folder / "manifest.json.sig").write_bytes(sign(key, old.to_bytes()))
        expect = "expired at"
    else:
        init_key(tmp_path / "other.pem")
        (folder / "manifest.json.sig").write_bytes(
            sign(load_key(tmp_path / "other.pem"), (folder / "manifest.json").read_bytes())
        )
        expect = "signature does not match"
    result = run("verify", str(folder), "--key", str(pem))
    assert result.code == 2 and expect in result.err, result.err
    if tamper in ("manifest", "unsigned", "other-key"):
        assert openssl_verify(folder, pem).returncode != 0
    assert public_key(key.public_key()).pem == pem.read_text()


def test_the_signing_key_is_private_and_not_replaced_by_accident(
    small: Project, small_cli: Callable[..., CliResult]
) -> None:
    assert small_cli("keys", "init").code == 0
    path = small.settings.signing_key_file
    assert path.stat().st_mode & 0o777 == 0o600
    assert not path.is_relative_to(small.settings.outbox_dir)
    first = path.read_bytes()
    again = small_cli("keys", "init")
    assert again.code == 2 and "already there" in again.err and path.read_bytes() == first
    path.chmod(0o644)
    loose = small_cli("keys", "show")
    assert loose.code == 2 and "readable by others" in loose.err
    path.chmod(0o600)
    assert small_cli("keys", "init", "--force").code == 0 and path.read_bytes() != first
