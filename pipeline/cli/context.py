"""What every command shares: settings, deployment and database, opened once on demand."""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field
from typing import Any

import typer
from rich.console import Console

from pipeline.config import Settings, load_settings
from pipeline.deployment import load_deployment
from pipeline.models import Deployment
from pipeline.store import Database, open_database

console = Console(soft_wrap=True)
err_console = Console(stderr=True, soft_wrap=True)


@dataclass
class AppContext:
    config_path: str | None = None
    verbose: bool = False
    _settings: Settings | None = field(default=None, repr=False)
    _deployment: Deployment | None = field(default=None, repr=False)
    _db: Database | None = field(default=None, repr=False)

    @property
    def settings(self) -> Settings:
        if self._settings is None:
            self._settings = load_settings(self.config_path)
        return self._settings

    @property
    def deployment(self) -> Deployment:
        if self._deployment is None:
            s = self.settings
            self._deployment = load_deployment(s.schedules_dir, default_timezone=s.timezone)
        return self._deployment

    @property
    def db(self) -> Database:
        if self._db is None:
            self._db = open_database(self.settings.db_url)
        return self._db


def ctx_of(ctx: typer.Context) -> AppContext:
    obj = ctx.find_root().obj
    if not isinstance(obj, AppContext):  # called without the root callback (tests)
        obj = AppContext()
        ctx.find_root().obj = obj
    return obj


def print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, ensure_ascii=False, indent=2, default=str) + "\n")
    sys.stdout.flush()


JSON_OPTION = typer.Option("--json", help="Print JSON instead of a table.")
