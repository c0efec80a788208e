"""A transient failure is a type, not a phrase: the Delivery says so, and the runner reads that.

``deliver_endpoint`` records ``transient=True`` when it gave up on a ``TransientDeliveryError``
(refused, timed out, connection lost) and False for a permanent ``DeliveryError``; the runner's
``UnitResult.transient`` (what the Celery runner retries) comes from that field, whatever the
error's text says.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from pipeline import deliver, runner
from pipeline.errors import DeliveryError, TransientDeliveryError
from pipeline.models import Delivery, Endpoint
from pipeline.package import manifest_path
from pipeline.runner import WorkContext, execute
from pipeline.units import DeliverUnit
from tests.conftest import Project

DAY = dt.date(2026, 12, 8)


def _endpoint(tmp_path: Path) -> Endpoint:
    return Endpoint(name="y-ty-test", commune="02641", transport="local", path=tmp_path / "device")


def _built(project: Project, endpoint: Endpoint) -> None:
    """A manifest in the outbox, so that delivery goes as far as connecting."""
    path = manifest_path(project.settings.outbox_dir, endpoint.commune, f"programs/{DAY}", endpoint.name)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("{}", encoding="utf-8")


@pytest.mark.parametrize(
    ("error", "transient", "attempts"),
    [
        (TransientDeliveryError("y-ty-test: connection refused"), True, None),
        (DeliveryError("y-ty-test: permission denied on /srv/loa"), False, 1),
    ],
)
def test_the_delivery_records_whether_its_failure_was_transient(
    project: Project,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    error: DeliveryError,
    transient: bool,
    attempts: int | None,
) -> None:
    endpoint = _endpoint(tmp_path)
    _built(project, endpoint)

    @contextmanager
    def refusing(*args: object, **kwargs: object) -> Iterator[None]:
        raise error
        yield

    monkeypatch.setattr(deliver, "open_transport", refusing)
    d = deliver.deliver_endpoint(
        endpoint, [f"programs/{DAY}"], label=str(DAY), settings=project.settings, today=DAY, sleep=lambda s: None
    )
    assert d.status == "failed" and d.transient is transient
    assert d.attempts == (attempts or project.settings.deliver.retries + 1)


@pytest.mark.parametrize(
    ("delivery", "transient"),
    [
        # the text says nothing of giving up; the record says the failure was transient
        (
            Delivery(
                "y-ty-test", "02641", str(DAY), "failed", attempts=4, error="y-ty-test: timed out", transient=True
            ),
            True,
        ),
        # the text reads like a transient failure; the record says it was not
        (
            Delivery("y-ty-test", "02641", str(DAY), "failed", attempts=1, error="x: gave up after 3 attempts"),
            False,
        ),
        (Delivery("y-ty-test", "02641", str(DAY), "delivered", attempts=1, transient=True), False),
    ],
)
def test_the_runner_reads_transient_from_the_delivery_not_its_text(
    project: Project, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, delivery: Delivery, transient: bool
) -> None:
    monkeypatch.setattr(runner, "deliver_endpoint", lambda *args, **kwargs: delivery)
    unit = DeliverUnit(endpoint=_endpoint(tmp_path), folders=(f"programs/{DAY}",), label=str(DAY), today=DAY)
    result = execute(unit, WorkContext(project.settings))
    assert result.ok is (delivery.status == "delivered")
    assert result.transient is transient
    assert result.delivery is delivery
