"""What every request handler shares: settings, deployment, database, templates, limiter."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from fastapi import Request
from jinja2 import Environment

from pipeline.config import Settings
from pipeline.models import Deployment
from pipeline.store import Database

if TYPE_CHECKING:
    from pipeline.web.auth import LoginGuard, SessionCodec


@dataclass
class WebState:
    settings: Settings
    deployment: Deployment
    db: Database
    templates: Environment
    limiter: LoginGuard
    codec: SessionCodec


def web_state(request: Request) -> WebState:
    state: Any = request.app.state.loa
    assert isinstance(state, WebState)
    return state
