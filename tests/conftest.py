"""Shared fixtures: a temporary project around the repository's sample deployment."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from pipeline.cli import main
from pipeline.config import Settings, load_settings
from pipeline.deployment import load_deployment
from pipeline.models import Deployment
from pipeline.store import Database, open_database

REPO = Path(__file__).resolve().parent.parent
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
