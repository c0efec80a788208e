"""The distributed runner: work units as Celery tasks over a Redis broker.

``[runner] kind = "celery"`` makes the orchestrator send each unit as one task
(``loa.execute``) and wait for the results; ``loa worker`` processes on any number of
machines run them. The task body is the same ``execute(unit, WorkContext(settings))``
the in-process runner calls, with the settings of the machine that runs it (its own
``--config`` / ``LOA_CONFIG``).

Two queues: ``loa`` (a night's backlog) and ``loa-urgent`` (emergencies). A worker
asks Redis for the urgent queue first every time it takes a task (the ``priority``
queue order), so an emergency waits at most for the units already running; for a
guarantee, run one worker with ``--queues loa-urgent`` alone.

Delivery guarantees:

* late acknowledgement (``acks_late``), ``reject_on_worker_lost`` and a prefetch of
  one: a task is acknowledged when it is done; if its worker dies, the task runs again
  on another: at once when a pool process dies; when a whole machine goes (or the
  worker's process group is killed), as soon as the orchestrator sees its heartbeat
  stop (``heartbeat_timeout_s``, 30 s; ``pipeline.liveness``), not after the broker's
  ``visibility_timeout_s``. Units are idempotent by key, so running one twice does nothing
  twice: a render finds its key in the segment store, a package rewrites nothing, a
  delivery sends only what the endpoint lacks.
* a transient failure (``UnitResult.transient``) is retried with exponential backoff
  (``retries``, ``retry_backoff_s``); a unit that keeps failing comes back as a failed
  result with its reason, like any other failure. ``run`` never raises.
* one delivery per endpoint at a time across machines: a PostgreSQL advisory lock
  ``endpoint:<name>`` around each deliver unit (``pipeline.store.locks``), dropped by
  the database the moment a worker dies. With SQLite (one machine) the file lock in
  ``pipeline.deliver`` does the job.

The caller records each result as it arrives (``on_result`` is called from the calling
thread). If the broker stays unreachable for ``broker_wait_s``, if it lost its data
(restarted without persistence), or if no unit finishes for ``stall_timeout_s``, the
units still pending fail with that reason, and running the command again finishes the
job (what was done is reused).
"""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from typing import Any

from celery import Celery, Task
from kombu import Queue  # type: ignore[attr-defined]

from pipeline import liveness
from pipeline.config import Settings, load_settings
from pipeline.deliver import failed_delivery
from pipeline.runner import OnResult, Then, WorkContext, execute
from pipeline.store.db import Database
from pipeline.units import UNIT_TYPES, DeliverUnit, Unit, UnitResult, from_wire, kind_of, to_wire

log = logging.getLogger(__name__)

QUEUE = "loa"
URGENT_QUEUE = "loa-urgent"
QUEUES = (URGENT_QUEUE, QUEUE)  # the order a worker asks for work
TASK = "loa.execute"
RESULT_EXPIRES_S = 2 * 24 * 3600
_READY = frozenset({"SUCCESS", "FAILURE", "REVOKED"})
_MGET_CHUNK = 1000
SWEEP_AFTER_S = 60.0  # nothing finished for this long: look for units the broker lost
RESCUE_EVERY_S = 2.0  # how often the orchestrator looks for units held by a worker that is gone

_apps: dict[tuple[str, ...], Celery] = {}
_apps_lock = threading.Lock()


def backend_url(settings: Settings) -> str:
    return settings.runner.result_backend or settings.runner.broker_url


def make_app(settings: Settings) -> Celery:
    """The Celery application for these settings (one per broker, shared)."""
    r = settings.runner
    key = (r.broker_url, backend_url(settings), str(r.visibility_timeout_s))
    with _apps_lock:
        if key in _apps:
            return _apps[key]
        app = Celery("loa", broker=r.broker_url, backend=backend_url(settings), set_as_current=False)
        app.conf.update(
            task_serializer="json",
            result_serializer="json",
            accept_content=["json"],
            task_acks_late=True,
            task_reject_on_worker_lost=True,
            worker_prefetch_multiplier=1,
            task_default_queue=QUEUE,
            task_queues=[Queue(q) for q in QUEUES],  # type: ignore[no-untyped-call]
            task_create_missing_queues=False,
            broker_transport_options={
                "visibility_timeout": r.visibility_timeout_s,
                "queue_order_strategy": "priority",  # loa-urgent before loa, every time
                # look for a lost worker's units every few seconds, not every 100 s
                "unacked_restore_interval": max(1, min(10, r.visibility_timeout_s // 5)),
                "unacked_restore_throttle": 1,
            },
            result_backend_transport_options={"visibility_timeout": r.visibility_timeout_s},
            result_expires=RESULT_EXPIRES_S,
            result_backend_always_retry=True,  # a result survives a broker restart
            result_backend_max_retries=30,
            broker_connection_retry_on_startup=True,
            worker_hijack_root_logger=False,
            worker_cancel_long_running_tasks_on_connection_loss=False,
            task_track_started=False,
        )
        app.task(name=TASK, bind=True, acks_late=True, reject_on_worker_lost=True)(_execute_task)
        _apps[key] = app
        return app


# --- the worker side ----------------------------------------------------------------

_worker_settings: list[Settings] = []
_contexts: dict[int, WorkContext] = {}  # by pid: a pool process builds its own engines and key
_databases: dict[int, Database] = {}  # by pid: an engine must not cross a fork


_received: dict[str, Any] = {}  # the worker's name and a Redis client, for noting owners


def configure_worker(settings: Settings, *, name: str | None = None) -> liveness.Heartbeat | None:
    """The settings this worker's units run with (``loa worker`` calls it before starting).

    With ``name`` (the worker's Celery hostname), the worker's heartbeat starts and every
    unit it receives is noted as its own (``pipeline.liveness``); the heartbeat is returned.
    """
    _worker_settings[:] = [settings]
    _contexts.clear()
    if name is None:
        return None
    from celery import signals

    _received.clear()
    _received.update(name=name, url=settings.runner.broker_url)
    signals.task_received.connect(_note_received, weak=False)
    heartbeat = liveness.Heartbeat(settings.runner.broker_url, name, interval_s=settings.runner.heartbeat_s)
    heartbeat.start()
    signals.worker_shutdown.connect(lambda **_: heartbeat.stop(), weak=False)
    return heartbeat


def _note_received(sender: Any = None, request: Any = None, **_: Any) -> None:
    """``task_received`` (the worker's main process): this worker now holds the unit."""
    import redis

    if request is None or "name" not in _received:
        return
    try:
        client = _received.get("client")
        if client is None:
            client = _received["client"] = redis.Redis.from_url(_received["url"], socket_timeout=5)
        liveness.note_owner(client, str(request.id), str(_received["name"]))
    except redis.RedisError as exc:  # the unit still runs; only a faster failover is lost
        log.warning("could not note %s as held by %s: %s", request.id, _received["name"], exc)


def _worker_context() -> WorkContext:
    pid = os.getpid()
    if pid not in _contexts:
        _contexts[pid] = WorkContext(_worker_settings[0] if _worker_settings else load_settings())
    return _contexts[pid]


@contextmanager
def _endpoint_lock(unit: Unit, settings: Settings) -> Iterator[None]:
    """One delivery per endpoint at a time across machines (see the module text)."""
    if not isinstance(unit, DeliverUnit) or settings.db_url.startswith("sqlite"):
        with nullcontext():
            yield
        return
    from pipeline.store import open_database
    from pipeline.store.locks import advisory_lock

    pid = os.getpid()
    if pid not in _databases:
        _databases[pid] = open_database(settings.db_url)
    with advisory_lock(_databases[pid], f"endpoint:{unit.endpoint.name}"):
        yield


def _execute_task(self: Task, kind: str, data: dict[str, Any]) -> dict[str, Any]:
    """``execute`` one unit on this worker; retry a transient failure with backoff."""
    ctx = _worker_context()
    unit: Unit = from_wire(UNIT_TYPES[kind], data)
    try:
        with _endpoint_lock(unit, ctx.settings):
            result = execute(unit, ctx)
    except Exception as exc:  # the lock's database: report it, let a retry try again
        log.exception("%s: could not take the endpoint lock", unit.what)
        result = failed_result(unit, f"{unit.what}: the endpoint lock in the database failed: {exc}", transient=True)
    r = ctx.settings.runner
    retries = int(self.request.retries or 0)
    if not result.ok and result.transient and retries < r.retries:
        countdown = min(r.retry_backoff_max_s, r.retry_backoff_s * 2**retries)
        log.warning("%s (retry %d of %d in %.0f s)", result.error, retries + 1, r.retries, countdown)
        raise self.retry(countdown=countdown, max_retries=r.retries)
    if not result.ok and result.transient and r.retries:
        result = _with_error(result, f"{result.error} (still failing after {r.retries} retries on the workers)")
    return dict(to_wire(result))


def _with_error(result: UnitResult, error: str) -> UnitResult:
    from dataclasses import replace

    delivery = replace(result.delivery, error=error) if result.delivery is not None else None
    return replace(result, error=error, delivery=delivery)


def failed_result(unit: Unit, message: str, *, transient: bool = False) -> UnitResult:
    """A failed result for ``unit`` (a deliver unit carries a failed delivery record)."""
    delivery = failed_delivery(unit.endpoint, unit.label, message) if isinstance(unit, DeliverUnit) else None
    return UnitResult(unit.key, kind_of(unit), unit.what, False, error=message, delivery=delivery, transient=transient)


# --- the orchestrator side ------------------------------------------------------------

_Done = Callable[[int, UnitResult], list[tuple[int, Unit]]]  # a result in; the units it made ready out


def priority_of(unit: Unit, queue: str) -> int:
    """The message priority a worker takes ``unit`` by: lower first (kombu's Redis transport).

    A worker asks for priority 0 in every queue, then 3 in every queue…, so an emergency's
    units (0 and 3) all come before a night's (6 and 9); within each, a package or a
    delivery before a render, so a commune whose segments exist leaves while others render.
    """
    base = 0 if queue == URGENT_QUEUE else 6
    return base + (3 if kind_of(unit) == "render" else 0)


@dataclass
class _Pending:
    index: int
    unit: Unit
    queue: str


class CeleryRunner:
    """Sends units to the workers as tasks and waits for every result (see the module text)."""

    def __init__(self, settings: Settings, *, app: Celery | None = None, sleep: Callable[[float], None] = time.sleep):
        self.settings = settings
        self.app = app or make_app(settings)
        self.sleep = sleep

    @property
    def where(self) -> str:
        from pipeline.store.db import safe_url

        return safe_url(self.settings.runner.broker_url)

    def run(
        self,
        units: Sequence[Unit],
        *,
        parallel: int | None = None,
        urgent: bool = False,
        on_result: OnResult | None = None,
    ) -> list[UnitResult]:
        results: list[UnitResult | None] = [None] * len(units)

        def done(i: int, result: UnitResult) -> list[tuple[int, Unit]]:
            results[i] = result
            if on_result:
                on_result(result)
            return []

        self._run_all(list(enumerate(units)), urgent=urgent, done=done)
        assert all(r is not None for r in results)
        return [r for r in results if r is not None]

    def stream(
        self,
        units: Sequence[Unit],
        *,
        then: Then,
        limits: Mapping[str, int] | None = None,
        urgent: bool = False,
        on_result: OnResult | None = None,
    ) -> list[UnitResult]:
        """``Runner.stream`` on the workers: each follow-up unit is sent as its cause's result arrives.

        The workers take a later stage first by the message priority (``priority_of``);
        ``limits`` are the workers' concern here (their pools), not the orchestrator's.
        """
        results: list[UnitResult] = []
        count = len(units)

        def done(i: int, result: UnitResult) -> list[tuple[int, Unit]]:
            nonlocal count
            results.append(result)
            if on_result:
                on_result(result)
            more = list(then(result))
            indexed = list(enumerate(more, start=count))
            count += len(more)
            return indexed

        self._run_all(list(enumerate(units)), urgent=urgent, done=done)
        return results

    def _publish(self, unit: Unit, queue: str, producer: Any, *, task_id: str | None = None) -> Any:
        """Send ``unit`` to ``queue`` at its priority; ``task_id`` sends a lost one again under its id."""
        return self.app.send_task(
            TASK,
            args=[kind_of(unit), to_wire(unit)],
            queue=queue,
            priority=priority_of(unit, queue),
            task_id=task_id,
            producer=producer,
            retry=True,
        )

    def _run_all(self, units: list[tuple[int, Unit]], *, urgent: bool, done: _Done) -> None:
        if not units:
            return
        queue = URGENT_QUEUE if urgent else QUEUE
        marker = f"loa:run:{uuid.uuid4().hex}"  # vanishes if the broker loses its data
        try:
            self._client().set(marker, b"1", ex=RESULT_EXPIRES_S)
        except Exception as exc:  # the broker: refused, gone
            self._refused(units, exc, done)
            return
        pending = self._send(units, queue, done)
        if pending:
            self._wait(pending, marker, done, queue=queue)

    def _send(self, units: list[tuple[int, Unit]], queue: str, done: _Done) -> dict[str, _Pending]:
        pending: dict[str, _Pending] = {}
        try:
            with self.app.producer_or_acquire() as producer:
                for i, unit in units:
                    sent = self._publish(unit, queue, producer)
                    pending[sent.id] = _Pending(i, unit, queue)
        except Exception as exc:  # the broker: refused, gone, misconfigured
            sent_ids = {p.index for p in pending.values()}
            self._refused([(i, u) for i, u in units if i not in sent_ids], exc, done)
        return pending

    def _refused(self, units: list[tuple[int, Unit]], exc: Exception, done: _Done) -> None:
        message = (
            f"the broker {self.where} refused the work ({exc.__class__.__name__}: {exc}); "
            "start redis-server (see `loa runner status`) and run the command again"
        )
        log.error("%s", message)
        todo = list(units)
        while todo:  # what a failure makes ready fails the same way
            i, unit = todo.pop(0)
            todo.extend(done(i, failed_result(unit, f"{unit.what}: {message}")))

    def _client(self) -> Any:
        return self.app.backend.client

    def _wait(self, pending: dict[str, _Pending], marker: str, done: _Done, *, queue: str) -> None:
        r = self.settings.runner
        backend = self.app.backend
        last_progress = time.monotonic()
        down_since: float | None = None
        outage = False
        last_sweep = last_rescue = last_progress
        silent: set[str] = set()  # workers found silent during this wait
        delay = 0.01
        while pending:
            now = time.monotonic()
            try:
                finished = self._poll(pending, marker)
                down_since = None
                if now - last_rescue >= RESCUE_EVERY_S:
                    self._rescue(pending, silent)
                    last_rescue = now
                if outage or (now - last_progress > SWEEP_AFTER_S and now - last_sweep > SWEEP_AFTER_S):
                    self._resend_lost(pending)
                    outage, last_sweep = False, time.monotonic()
            except _BrokerLost as exc:
                self._fail_all(pending, done, str(exc))
                return
            except Exception as exc:  # redis down or restarting: wait for it, a while
                down_since = down_since or now
                if now - down_since > r.broker_wait_s:
                    self._fail_all(
                        pending,
                        done,
                        f"the broker {self.where} has been unreachable for {r.broker_wait_s:.0f} s "
                        f"({exc.__class__.__name__}: {exc}); start redis-server and run the command again",
                    )
                    return
                log.warning("the broker %s is unreachable (%s); waiting", self.where, exc)
                outage = True
                self.sleep(1.0)
                continue
            follow: list[tuple[int, Unit]] = []
            for task_id, meta in finished:
                p = pending.pop(task_id)
                follow.extend(done(p.index, self._result(p.unit, meta)))
            if follow:
                pending.update(self._send(follow, queue, done))
            if finished:
                keys = [backend.get_key_for_task(t) for t, _ in finished]
                try:
                    self._client().delete(*keys)
                except Exception:  # they expire anyway
                    log.debug("could not delete %d result keys", len(keys))
                last_progress, delay = time.monotonic(), 0.01
            elif now - last_progress > r.stall_timeout_s:
                log.warning("units still pending: %s", ", ".join(f"{p.unit.what} [{t}]" for t, p in pending.items()))
                self._fail_all(
                    pending,
                    done,
                    f"no worker finished a unit for {r.stall_timeout_s:.0f} s; is a `loa worker` running "
                    f"for the broker {self.where}? (see `loa runner status`); run the command again",
                )
                return
            else:
                self.sleep(delay)
                delay = min(0.25, delay * 1.5)
        try:
            self._client().delete(marker)
        except Exception:
            log.debug("could not delete the run marker %s", marker)

    def _rescue(self, pending: dict[str, _Pending], silent: set[str]) -> None:
        """Put back in their queue the units held by a worker whose heartbeat stopped.

        When a worker is first found silent, also look once for units lost with it: taken
        from the queue (Redis' BRPOP) but killed before kombu noted them as taken.
        """
        import redis

        timeout = self.settings.runner.heartbeat_timeout_s
        broker = redis.Redis.from_url(self.settings.runner.broker_url, socket_timeout=10)
        try:
            newly = liveness.silent_workers(broker, timeout_s=timeout) - silent
            lost = liveness.orphaned(broker, set(pending), timeout_s=timeout)
            if newly:
                silent |= newly
                log.warning("worker %s stopped its heartbeat for more than %.0f s", ", ".join(sorted(newly)), timeout)
            if not lost:
                if newly:
                    self._resend_lost(pending)
                return
            workers = sorted({w for _, w in lost.values()})
            log.warning(
                "worker %s stopped its heartbeat for more than %.0f s: sending its %d units again",
                ", ".join(workers),
                self.settings.runner.heartbeat_timeout_s,
                len(lost),
            )
            with self.app.producer_or_acquire() as producer:
                for task_id, (tag, _worker) in sorted(lost.items()):
                    if not liveness.release(broker, tag):
                        continue  # acknowledged or given back meanwhile: nothing to do
                    self._publish(pending[task_id].unit, pending[task_id].queue, producer, task_id=task_id)
            broker.delete(*[f"{liveness.OWNER_PREFIX}{t}" for t in lost])
            if newly:
                self._resend_lost(pending)
        finally:
            broker.close()

    def _resend_lost(self, pending: dict[str, _Pending]) -> None:
        """Send again the units the broker lost (after a restart, or when nothing moves).

        Redis hands a message to a worker (BRPOP) before the worker notes it as taken; a
        connection cut in between loses it. A unit is lost when two looks, two seconds
        apart, find it neither queued, nor taken, nor answered. Units are idempotent, so
        sending one again is safe.
        """
        lost = self._missing(pending)
        if lost:
            self.sleep(2.0)
            lost &= self._missing(pending)
        if not lost:
            return
        log.warning("the broker %s lost %d units; sending them again", self.where, len(lost))
        with self.app.producer_or_acquire() as producer:
            for task_id in sorted(lost):
                self._publish(pending[task_id].unit, pending[task_id].queue, producer, task_id=task_id)

    def _missing(self, pending: dict[str, _Pending]) -> set[str]:
        """Pending task ids that are not queued, not taken by a worker and have no state."""
        import redis

        seen: set[str] = set()
        broker = redis.Redis.from_url(self.settings.runner.broker_url)
        try:
            for name in QUEUES:
                for key in (name, *(f"{name}\x06\x16{p}" for p in (3, 6, 9))):
                    seen.update(_message_id(raw) for raw in broker.lrange(key, 0, -1))
            seen.update(_message_id(raw, unacked=True) for raw in broker.hvals("unacked"))
        finally:
            broker.close()
        candidates = [t for t in pending if t not in seen]
        if not candidates:
            return set()
        backend = self.app.backend
        values = self._client().mget([backend.get_key_for_task(t) for t in candidates])
        return {t for t, raw in zip(candidates, values, strict=True) if raw is None}

    def _poll(self, pending: dict[str, _Pending], marker: str) -> list[tuple[str, dict[str, Any]]]:
        backend = self.app.backend
        client = self._client()
        ids = list(pending)
        finished: list[tuple[str, dict[str, Any]]] = []
        if not client.exists(marker):
            raise _BrokerLost(
                f"the broker {self.where} lost its queue (restarted without its data?): "
                f"{len(pending)} units were not finished; run the command again to finish the job"
            )
        for start in range(0, len(ids), _MGET_CHUNK):
            chunk = ids[start : start + _MGET_CHUNK]
            values = client.mget([backend.get_key_for_task(t) for t in chunk])
            for task_id, raw in zip(chunk, values, strict=True):
                if raw is None:
                    continue
                meta = backend.decode_result(raw)
                if meta.get("status") in _READY:
                    finished.append((task_id, meta))
        return finished

    def _result(self, unit: Unit, meta: dict[str, Any]) -> UnitResult:
        if meta.get("status") == "SUCCESS" and isinstance(meta.get("result"), dict):
            try:
                return from_wire(UnitResult, meta["result"])
            except (KeyError, TypeError, ValueError) as exc:
                return failed_result(unit, f"{unit.what}: a worker sent a result this version cannot read ({exc})")
        error = meta.get("result")
        if isinstance(error, dict):
            reason = f"{error.get('exc_type', 'error')}: {error.get('exc_message', '')}"
        else:
            reason = str(error)
        return failed_result(unit, f"{unit.what}: the worker failed: {reason}")

    def _fail_all(self, pending: dict[str, _Pending], done: _Done, message: str) -> None:
        log.error("%s", message)
        todo = [(p.index, p.unit) for p in pending.values()]
        pending.clear()
        while todo:  # what a failure makes ready fails the same way
            i, unit = todo.pop(0)
            todo.extend(done(i, failed_result(unit, f"{unit.what}: {message}")))


class _BrokerLost(Exception):
    pass


def _message_id(raw: bytes | str, *, unacked: bool = False) -> str:
    """The task id in a kombu message as Redis holds it (queued, or taken: [message, exchange, key])."""
    try:
        data = json.loads(raw)
        message = data[0] if unacked else data
        return str(message["headers"]["id"])
    except (ValueError, KeyError, IndexError, TypeError):
        return ""


def worker_name() -> str:
    return f"loa-{os.getpid()}@{socket.gethostname()}"


def runner_status(settings: Settings, *, timeout: float = 1.0, ping: bool = True) -> dict[str, Any]:
    """Queues and their depth, units taken but not done, the workers' heartbeats and (with
    ``ping``) the workers that answer Celery's ping with their running units.

    Metrics and alerts pass ``ping=False``: the heartbeats (``pipeline.liveness``) say who is
    alive, as the orchestrator's failover decides, without a broadcast to every worker."""
    import redis

    from pipeline.store.db import safe_url

    info: dict[str, Any] = {"kind": settings.runner.kind, "broker": safe_url(settings.runner.broker_url)}
    client = redis.Redis.from_url(settings.runner.broker_url, socket_connect_timeout=timeout, socket_timeout=timeout)
    try:
        queues: list[dict[str, Any]] = []
        for name in QUEUES:  # kombu keeps priorities 3, 6, 9 in sibling lists
            depth = sum(int(client.llen(k)) for k in (name, *(f"{name}\x06\x16{p}" for p in (3, 6, 9))))
            queues.append({"name": name, "depth": depth})
        running = int(client.hlen("unacked"))
    except redis.RedisError as exc:
        info.update(error=f"{exc.__class__.__name__}: {exc}", queues=[], running=0, pending=0, workers=[])
        return info
    finally:
        client.close()
    alive: dict[str, Any] = {}
    active: dict[str, Any] = {}
    if ping:
        inspect = make_app(settings).control.inspect(timeout=timeout)
        alive = inspect.ping() or {}
        active = (inspect.active() or {}) if alive else {}
    beats = liveness.worker_heartbeats(
        settings.runner.broker_url, timeout_s=settings.runner.heartbeat_timeout_s, connect_timeout_s=timeout
    )
    info.update(
        queues=queues,
        running=running,
        pending=running + sum(int(q["depth"]) for q in queues),
        workers=[{"name": n, "active": len(active.get(n) or [])} for n in sorted(alive)],
        heartbeats=[
            {
                "name": b.name,
                "host": b.host,
                "pid": b.pid,
                "last_seen": b.last_seen,
                "age_s": round(b.age_s, 1),
                "alive": b.alive,
            }
            for b in beats
        ],
    )
    return info
