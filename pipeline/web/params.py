"""Dates and numbers from a URL, validated once for every route.

A route never parses a date or an id from its URL itself: it declares a dependency from
here and receives a ``datetime.date`` (or ``None``) that lies between :data:`EARLIEST` and
:data:`LATEST`, so ``date + timedelta(days=1)``, ``datetime.combine(…, tzinfo=…)`` and SQL
parameters never overflow (``?date=9999-12-31`` used to answer 500 and reset the
connection). A value that is not a date, or lies outside those years, raises FastAPI's
``RequestValidationError`` naming the field; the app's one handler answers it in
Vietnamese (a page: 404; the API and forms: 422). Numeric ids in a path (``{bulletin_id}``,
``{user_id}`` …) are checked the same way by :func:`check_url_numbers`, which the app runs
before every route.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, Query, Request
from fastapi.exceptions import RequestValidationError

#: The days a URL may name: wide enough for any broadcast, far from ``date.min``/``date.max``.
EARLIEST = dt.date(2000, 1, 1)
LATEST = dt.date(2199, 12, 31)
#: The longest period a report may cover (one year, leap day included).
MAX_SPAN_DAYS = 366
#: Ids beyond this are no row (and would overflow SQLite's and PostgreSQL's integers).
MAX_ID = 2**62


def invalid(name: str, where: str = "query", *, value: object = None, why: str = "") -> RequestValidationError:
    """The error the app answers in Vietnamese, naming ``name`` (see ``app.FIELD_NAMES_VI``)."""
    return RequestValidationError(
        [{"type": "value_error", "loc": (where, name), "msg": why or "invalid value", "input": value}]
    )


def parse_day(raw: str | None, name: str, where: str = "query") -> dt.date | None:
    """``YYYY-MM-DD`` between :data:`EARLIEST` and :data:`LATEST`; empty or absent is ``None``."""
    if raw is None or raw == "":
        return None
    try:
        day = dt.date.fromisoformat(raw)
    except ValueError:
        raise invalid(name, where, value=raw, why="not a date (YYYY-MM-DD)") from None
    if len(raw) != 10 or not EARLIEST <= day <= LATEST:  # 20261201 and far years are refused alike
        raise invalid(name, where, value=raw, why=f"a day from {EARLIEST} to {LATEST}")
    return day


def query_day(name: str) -> Callable[[Request], dt.date | None]:
    """A dependency: the query parameter ``name`` as a day, or ``None`` when absent or empty."""

    def dependency(request: Request) -> dt.date | None:
        return parse_day(request.query_params.get(name), name)

    return dependency


def path_day(name: str) -> Callable[[Request], dt.date]:
    """A dependency: the path parameter ``name`` as a day (a page that names no real day is 404)."""

    def dependency(request: Request) -> dt.date:
        day = parse_day(str(request.path_params.get(name, "")), name, "path")
        if day is None:
            raise invalid(name, "path")
        return day

    return dependency


#: ``?date=YYYY-MM-DD`` (``None`` when absent or empty).
QueryDate = Annotated[dt.date | None, Depends(query_day("date"))]


@dataclass(frozen=True, slots=True)
class DayRange:
    """``?from=…&to=…`` as given (either may be ``None``); see :meth:`or_default`."""

    start: dt.date | None
    end: dt.date | None

    def or_default(self, start: dt.date, end: dt.date) -> tuple[dt.date, dt.date]:
        """Both ends (defaults for the missing ones), in order."""
        a, b = self.start or start, self.end or end
        return (a, b) if a <= b else (b, a)


def day_range(request: Request) -> DayRange:
    """``from`` and ``to`` as days at most :data:`MAX_SPAN_DAYS` apart."""
    start = parse_day(request.query_params.get("from"), "from")
    end = parse_day(request.query_params.get("to"), "to")
    if start is not None and end is not None and abs((end - start).days) > MAX_SPAN_DAYS:
        raise invalid("to", value=str(end), why=f"at most {MAX_SPAN_DAYS} days after from")
    return DayRange(start, end)


QueryRange = Annotated[DayRange, Depends(day_range)]


def check_url_numbers(request: Request) -> None:
    """Every ``{…_id}`` in the path is a whole number from 1 to :data:`MAX_ID` (the app runs this first)."""
    params: dict[str, Any] = request.path_params
    for name, raw in params.items():
        if not name.endswith("_id"):
            continue
        text = str(raw)
        if not (text.isascii() and text.isdigit() and len(text) <= 19 and 0 < int(text) <= MAX_ID):
            raise invalid(name, "path", value=text, why=f"a whole number from 1 to {MAX_ID}")


#: A day in the query of a JSON API route (typed, so it shows in the OpenAPI document).
ApiDay = Annotated[dt.date, Query(ge=EARLIEST, le=LATEST, description="YYYY-MM-DD")]
