"""Shared fixtures: a temporary project around the repository's sample deployment."""

from __future__ import annotations

import datetime as dt
import json
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from pipeline.cli import main
from pipeline.config import Settings, load_settings
from pipeline.deployment import load_deployment
from pipeline.models import Commune, Deployment, Program
from pipeline.store import Database, open_database

REPO = Path(__file__).resolve().parent.parent
# Fixtures many test files share: `web`; redis, PostgreSQL and workers; sshd (`sshd_server`,
# `sshd_running`, `sshd_read_only`); Chromium (`browser`); a fake HTTP far end (`fake_http`).
pytest_plugins = ["tests.web_support", "tests.services", "tests.sshd", "tests.chromium", "tests.fake_http"]
EXAMPLES = REPO / "examples" / "bulletins"


@dataclass
class Project:
    root: Path
    config: Path

    @property
    def settings(self) -> Settings:
        return load_settings(self.config, environ={})

    @property
    def deployment(self) -> Deployment:
        return load_deployment(self.settings.schedules_dir)

    def db(self) -> Database:
        return open_database(self.settings.db_url)


@dataclass
class CliResult:
    code: int
    out: str
    err: str

    def json(self) -> object:
        return json.loads(self.out)


@pytest.fixture
def project(tmp_path: Path) -> Project:
    """A loa.toml in tmp_path using the repository's schedules, templates and voices."""
    root = tmp_path / "project"
    root.mkdir()
    shutil.copytree(REPO / "schedules", root / "schedules")
    config = root / "loa.toml"
    config.write_text(
        f'data_dir = "data"\n'
        f'templates_dir = "{REPO / "templates"}"\n'
        f'voices_dir = "{REPO / "voices"}"\n'
        f'schedules_dir = "schedules"\n',
        encoding="utf-8",
    )
    return Project(root=root, config=config)


@pytest.fixture
def cli(project: Project, capsys: pytest.CaptureFixture[str]) -> Callable[..., CliResult]:
    """Run ``loa --config <project> ARGS…`` in-process and capture what it prints."""

    def run(*args: str) -> CliResult:
        capsys.readouterr()
        code = main(["--config", str(project.config), *args])
        captured = capsys.readouterr()
        return CliResult(code, captured.out, captured.err)

    return run


SMALL_DEPLOYMENT = """
timezone = "Asia/Ho_Chi_Minh"

[defaults]
slots = [
  { name = "morning", start = "05:30", max_minutes = 10 },
  { name = "evening", start = "17:00", max_minutes = 10, days = ["mon", "tue", "wed", "thu", "fri", "sat"] },
]

[[group]]
id = "bat-xat"
name = "Trung tâm Văn hóa, Thể thao và Truyền thông Bát Xát"

[[commune]]
code = "02641"
name = "Y Tý"
group = "bat-xat"
languages = ["vi", "hmn"]

  [[commune.endpoint]]
  name = "y-ty-loa"
  transport = "local"
  path = "endpoints/y-ty-loa"

  [[commune.endpoint]]
  name = "y-ty-radio"
  transport = "local"
  format = "single"
  path = "endpoints/y-ty-radio"

[[commune]]
code = "02695"
name = "Bản Lầu"
languages = ["vi"]

  [[commune.endpoint]]
  name = "ban-lau-loa"
  transport = "local"
  path = "endpoints/ban-lau-loa"
"""

SHORT_BULLETIN = """+++
title = "Họp thôn về gia hạn thẻ BHYT"
category = "notice"
priority = "{priority}"
source = "UBND xã"
reference = ""
valid_from = 2026-12-01
valid_until = 2026-12-14
targets = {targets}
languages = ["vi", "hmn"]
+++
{body}
"""


@pytest.fixture(scope="session")
def voices_with_placeholders(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of voices/ with its placeholder clips generated once per test session."""
    from pipeline.voices import load_catalog, make_placeholders

    voices = tmp_path_factory.mktemp("voices")
    shutil.copy(REPO / "voices" / "catalog.toml", voices / "catalog.toml")
    shutil.copy(REPO / "voices" / "lexicon.vi.toml", voices / "lexicon.vi.toml")
    settings = load_settings(REPO / "loa.toml", environ={})
    make_placeholders(load_catalog(voices), settings=settings)
    return voices


@pytest.fixture
def small(tmp_path: Path, voices_with_placeholders: Path) -> Project:
    """Two communes (Y Tý with Mông and a single-file radio; Bản Lầu Vietnamese only), local endpoints."""
    return make_small(tmp_path / "small", voices_with_placeholders)


def make_small(root: Path, voices: Path) -> Project:
    """The ``small`` project at ``root`` (for module-scoped fixtures too)."""
    (root / "schedules").mkdir(parents=True)
    (root / "schedules" / "small.toml").write_text(SMALL_DEPLOYMENT, encoding="utf-8")
    shutil.copytree(voices, root / "voices")
    config = root / "loa.toml"
    config.write_text(
        f'data_dir = "data"\ntemplates_dir = "{REPO / "templates"}"\n[deliver]\nbackoff_s = 0.01\n',
        encoding="utf-8",
    )
    return Project(root=root, config=config)


def add_bulletin(
    project: Project,
    body: str,
    *,
    priority: str = "routine",
    targets: str = '["all"]',
    approve: bool = True,
    title: str | None = None,
) -> int:
    """Store (and approve) a short bulletin in ``project``; return its id."""
    from pipeline.intake import parse_bulletin
    from pipeline.store import bulletins as store

    text = SHORT_BULLETIN.format(priority=priority, targets=targets, body=body)
    if title:
        text = text.replace('title = "Họp thôn về gia hạn thẻ BHYT"', f'title = "{title}"')
    db = project.db()
    [(b, _)] = store.save_bulletins(db, [parse_bulletin(text, where="t.md", deployment=project.deployment).bulletin])
    assert b.id is not None
    if approve:
        store.approve(db, b.id)
    return b.id


@pytest.fixture
def small_cli(small: Project, capsys: pytest.CaptureFixture[str]) -> Callable[..., CliResult]:
    """``loa --config <small> ARGS…`` in-process."""

    def run(*args: str) -> CliResult:
        capsys.readouterr()
        code = main(["--config", str(small.config), *args])
        captured = capsys.readouterr()
        return CliResult(code, captured.out, captured.err)

    return run


def package_day(settings: Settings, commune: Commune, programs: list[Program], day: dt.date) -> list[Path]:
    """Package ``programs`` of ``day`` for ``commune`` as the orchestrator's package unit does."""
    from pipeline.package import day_valid_until, package_commune
    from pipeline.runner import WorkContext
    from pipeline.units import PackageUnit

    unit = PackageUnit(
        commune, f"programs/{day}", tuple(programs), settings.timezone, day_valid_until(day, settings.tz), date=day
    )
    return list(package_commune(unit, settings=settings, key=WorkContext(settings).key).manifests)
