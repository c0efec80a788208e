"""Logs: readable lines by default; ``[log] format = "json"`` writes one JSON object per line.

A JSON line carries ``time`` (UTC, ISO 8601), ``level``, ``logger``, ``message``, and where
they apply ``run``, ``job``, ``commune``, ``endpoint``, ``unit`` and ``bulletin``: from the
call's ``extra=`` or from ``log_context`` (the runner sets the unit's; the scheduler sets
its job's), so journald and log shippers can filter by them.
"""

from __future__ import annotations

import contextlib
import contextvars
import datetime as dt
import json
import logging
import sys
from collections.abc import Iterator
from typing import Any

FIELDS = ("run", "job", "commune", "endpoint", "unit", "bulletin")
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
_context: contextvars.ContextVar[dict[str, Any]] = contextvars.ContextVar("loa_log_context", default={})  # noqa: B039


@contextlib.contextmanager
def log_context(**fields: Any) -> Iterator[None]:
    """Add ``fields`` (run, job, commune, endpoint, unit, bulletin) to every log line inside."""
    token = _context.set(_context.get() | {k: v for k, v in fields.items() if v is not None})
    try:
        yield
    finally:
        _context.reset(token)


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        doc: dict[str, Any] = {
            "time": dt.datetime.fromtimestamp(record.created, dt.UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        ctx = _context.get()
        for name in FIELDS:
            value = getattr(record, name, None)
            if value is None:
                value = ctx.get(name)
            if value is not None:
                doc[name] = value if isinstance(value, int | float | bool) else str(value)
        if record.exc_info:
            doc["exception"] = self.formatException(record.exc_info)
        return json.dumps(doc, ensure_ascii=False)


def configure(fmt: str, *, level: int) -> None:
    """Log to stderr in ``fmt`` ("text" or "json") at ``level``.

    Like ``logging.basicConfig``, readable text is set up only when nobody configured logging
    before (a host such as pytest keeps its handlers); a handler of ours from an earlier call
    is replaced, never duplicated.
    """
    root = logging.getLogger()
    for old in [h for h in root.handlers if getattr(h, "loa_handler", False)]:
        root.removeHandler(old)
    if fmt != "json" and root.handlers:
        return
    handler = logging.StreamHandler(sys.stderr)
    handler.loa_handler = True  # type: ignore[attr-defined]
    handler.setFormatter(JsonFormatter() if fmt == "json" else logging.Formatter(TEXT_FORMAT))
    root.addHandler(handler)
    root.setLevel(level)


def configure_from(config_path: str | None, *, verbose: bool) -> None:
    """The CLI's logging: ``[log]`` from the settings when they load (else readable text)."""
    from pipeline.config import load_settings
    from pipeline.errors import LoaError

    fmt = "text"
    with contextlib.suppress(LoaError):  # a broken config is reported by the command that needs it
        fmt = load_settings(config_path).log.format
    configure(fmt, level=logging.DEBUG if verbose else logging.WARNING)


def unit_fields(unit: object) -> dict[str, Any]:
    """The log fields of a work unit: its key, and its commune and endpoint when it has them."""
    endpoint = getattr(unit, "endpoint", None)
    commune = getattr(unit, "commune", None)
    return {
        "unit": getattr(unit, "key", None),
        "endpoint": getattr(endpoint, "name", None),
        "commune": getattr(endpoint, "commune", None) or getattr(commune, "code", None),
    }
