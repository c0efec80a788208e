"""Runners execute work units; ``execute`` is what every runner calls for one unit.

``Runner`` is the protocol the orchestrator talks to. ``InProcessRunner`` (the default)
runs units on a thread pool in this process (serially with ``workers=1``). A unit's
failure becomes a failed ``UnitResult`` naming its script line, commune or endpoint;
it never stops the other units. ``WorkContext`` is what a unit needs on the machine
that runs it, built from the settings there: speech engines, the segment store, the
signing key.
"""

from __future__ import annotations

import contextlib
import heapq
import itertools
import logging
import os
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Protocol

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from pipeline import signing
from pipeline.config import Settings
from pipeline.deliver import deliver_endpoint, failed_delivery
from pipeline.errors import LoaError, TransientDeliveryError, TransientRenderError
from pipeline.ops.logs import log_context, unit_fields
from pipeline.package import package_commune
from pipeline.render import render_unit
from pipeline.segcache import SegmentCache, SegmentStore
from pipeline.store import Database, open_database
from pipeline.transports import Transport
from pipeline.tts.chain import EngineChain, build_engine_chain
from pipeline.units import DeliverUnit, PackageUnit, RenderUnit, Unit, UnitResult, kind_of

log = logging.getLogger(__name__)

OnResult = Callable[[UnitResult], None]
#: Called with each result of a stream: the units that may start now that it is done.
Then = Callable[[UnitResult], Sequence[Unit]]
#: The order ready units start in a stream: a later stage first (a commune whose segments
#: are made is packaged and delivered before more is rendered), then the order they came.
STAGE_RANK = {"deliver": 0, "package": 1, "render": 2}
Sleep = Callable[[float], None]


@dataclass
class WorkContext:
    """What units need where they run; built lazily from that machine's settings."""

    settings: Settings
    sleep: Sleep = time.sleep
    _engines: EngineChain | None = field(default=None, repr=False)
    _key: Ed25519PrivateKey | None = field(default=None, repr=False)
    _db: Database | None = field(default=None, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def store(self) -> SegmentStore:
        return segment_store(self.settings)

    @property
    def engines(self) -> EngineChain:
        with self._lock:
            if self._engines is None:
                self._engines = build_engine_chain(self.settings.tts, outbound=self.settings.outbound)
            return self._engines

    @property
    def key(self) -> Ed25519PrivateKey:
        with self._lock:
            if self._key is None:
                self._key = signing.load_key(self.settings.signing_key_file, create=True)
            return self._key

    @property
    def db(self) -> Database:
        with self._lock:
            if self._db is None:
                self._db = open_database(self.settings.db_url)
            return self._db

    def collect_receipts(self, transport: Transport) -> None:
        """Store the as-run receipts a device left in ``reports/`` (read on the delivery's connection)."""
        from pipeline.broadcast.collect_receipts import collect_receipts
        from pipeline.broadcast.receipts import load_receipt_secret

        report = collect_receipts(
            transport, db=self.db, secret=load_receipt_secret(self.settings.data_dir), tz=self.settings.tz
        )
        for name, why in report.refused:
            log.warning("%s: receipt %s refused: %s", transport.endpoint.name, name, why)


def segment_store(settings: Settings) -> SegmentStore:
    """The deployment's segment store: a directory, local or shared by every worker."""
    return SegmentCache(settings.segments_dir)


def execute(unit: Unit, ctx: WorkContext) -> UnitResult:
    """Run one unit; its failure is returned, never raised. Its log lines name it (pipeline/ops/logs.py)."""
    with log_context(**unit_fields(unit)):
        return _execute(unit, ctx)


def _execute(unit: Unit, ctx: WorkContext) -> UnitResult:
    kind = kind_of(unit)
    try:
        if isinstance(unit, RenderUnit):
            segment = render_unit(unit, engines=ctx.engines, store=ctx.store, settings=ctx.settings)
            return UnitResult(unit.key, kind, unit.what, True, segment=segment)
        if isinstance(unit, PackageUnit):
            packaged = package_commune(unit, settings=ctx.settings, key=ctx.key)
            return UnitResult(unit.key, kind, unit.what, True, packaged=packaged)
        d = deliver_endpoint(
            unit.endpoint,
            unit.folders,
            label=unit.label,
            settings=ctx.settings,
            today=unit.today,
            sleep=ctx.sleep,
            after_sync=ctx.collect_receipts if unit.collect_receipts else None,
            check_files=unit.check_files,
        )
        delivered = d.status == "delivered"
        return UnitResult(
            unit.key, kind, unit.what, delivered, error=d.error, delivery=d, transient=not delivered and d.transient
        )
    except (LoaError, OSError) as exc:
        message = str(exc) if isinstance(exc, LoaError) else f"{unit.what}: {exc}"
        transient = isinstance(exc, TransientRenderError | TransientDeliveryError)
        return _failed(unit, kind, message, transient=transient)
    except Exception as exc:  # a bug must not stop the other units; it is reported
        log.exception("%s: unexpected failure", unit.what)
        return _failed(unit, kind, f"{unit.what}: unexpected {exc.__class__.__name__}: {exc}")


def _failed(unit: Unit, kind: str, message: str, *, transient: bool = False) -> UnitResult:
    delivery = failed_delivery(unit.endpoint, unit.label, message) if isinstance(unit, DeliverUnit) else None
    return UnitResult(unit.key, kind, unit.what, False, error=message, delivery=delivery, transient=transient)


class Runner(Protocol):
    """Executes units and returns one result per unit, in the units' order.

    ``parallel`` is a hint (how many at once suit this kind of unit here); ``urgent``
    marks emergency work, which a distributed runner queues ahead of a night's backlog.
    ``on_result`` is called as each unit finishes, so the caller can record it at once.
    """

    def run(
        self,
        units: Sequence[Unit],
        *,
        parallel: int | None = None,
        urgent: bool = False,
        on_result: OnResult | None = None,
    ) -> list[UnitResult]: ...

    def stream(
        self,
        units: Sequence[Unit],
        *,
        then: Then,
        limits: Mapping[str, int] | None = None,
        urgent: bool = False,
        on_result: OnResult | None = None,
    ) -> list[UnitResult]:
        """Run ``units`` and, as each finishes, the units ``then`` returns for its result.

        A dependency graph unrolled as it goes: the caller knows what each result makes
        ready (a commune's package once its segments exist, its endpoints' deliveries
        once it is packaged). Ready units start by ``STAGE_RANK``, then in the order
        they came; ``limits`` caps how many of a kind run at once (render, deliver).
        ``on_result`` and ``then`` are called in the calling thread. The results come
        back in the order they finished.
        """
        ...


class InProcessRunner:
    """Threads in this process; ``workers=1`` runs units one by one, in order."""

    def __init__(self, ctx: WorkContext, *, workers: int | None = None) -> None:
        self.ctx = ctx
        self.workers = workers

    def run(
        self,
        units: Sequence[Unit],
        *,
        parallel: int | None = None,
        urgent: bool = False,
        on_result: OnResult | None = None,
    ) -> list[UnitResult]:
        workers = max(1, min(self.workers or parallel or os.cpu_count() or 1, len(units) or 1))

        def one(unit: Unit) -> UnitResult:
            result = execute(unit, self.ctx)
            if on_result:
                on_result(result)
            return result

        if workers == 1:
            return [one(u) for u in units]
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="unit") as pool:
            return list(pool.map(one, units))

    def stream(
        self,
        units: Sequence[Unit],
        *,
        then: Then,
        limits: Mapping[str, int] | None = None,
        urgent: bool = False,
        on_result: OnResult | None = None,
    ) -> list[UnitResult]:
        cpus = os.cpu_count() or 1
        caps = {kind: max(1, n) for kind, n in (limits or {}).items() if n}
        total = max(1, self.workers or max(caps.values(), default=cpus))
        order = itertools.count()
        ready: list[tuple[int, int, Unit]] = []

        def add(more: Sequence[Unit]) -> None:
            for u in more:
                heapq.heappush(ready, (STAGE_RANK[kind_of(u)], next(order), u))

        add(units)
        results: list[UnitResult] = []
        running: dict[Future[UnitResult], tuple[int, str]] = {}
        busy = dict.fromkeys(STAGE_RANK, 0)
        # one pool per kind: a render always runs on one of the few render threads, so the
        # memory its mastering frees is reused by the next render (each thread allocates
        # from its own malloc arena; renders on sixteen delivery threads held 600 MB)
        sizes = {kind: min(total, caps.get(kind, cpus)) for kind in STAGE_RANK}
        with contextlib.ExitStack() as stack:
            pools = {
                kind: stack.enter_context(ThreadPoolExecutor(max_workers=n, thread_name_prefix=kind))
                for kind, n in sizes.items()
            }
            while ready or running:
                held: list[tuple[int, int, Unit]] = []
                while ready and len(running) < total:
                    item = heapq.heappop(ready)
                    kind = kind_of(item[2])
                    if busy[kind] >= sizes[kind]:
                        held.append(item)
                        continue
                    busy[kind] += 1
                    running[pools[kind].submit(execute, item[2], self.ctx)] = (item[1], kind)
                for item in held:
                    heapq.heappush(ready, item)
                finished, _ = wait(running, return_when=FIRST_COMPLETED)
                for future in sorted(finished, key=lambda f: running[f][0]):
                    busy[running.pop(future)[1]] -= 1
                    result = future.result()
                    results.append(result)
                    if on_result:
                        on_result(result)
                    add(then(result))
        return results


def make_runner(settings: Settings, *, sleep: Sleep = time.sleep) -> Runner:
    """The runner the settings name (``[runner] kind``); in-process by default."""
    if settings.runner.kind == "celery":
        from pipeline.runner_celery import CeleryRunner  # Celery loads only when asked for

        return CeleryRunner(settings)
    return InProcessRunner(WorkContext(settings, sleep=sleep))
