"""Worker heartbeats in the broker, and the units a dead worker held.

Every ``loa worker`` writes a heartbeat to the broker's Redis every ``[runner] heartbeat_s``
(5 s): one field of the hash ``loa:workers``, its name → ``{"host", "pid", "started", "at"}``
with ``at`` taken from the Redis server's own clock (``TIME``), so machines whose clocks
disagree still agree on who is late. When a worker receives a unit it notes itself as its
owner (``loa:owner:<task id>``, kept two days).

A worker whose heartbeat is older than ``[runner] heartbeat_timeout_s`` (30 s) is gone (its
machine died, or its whole process group was killed). The orchestrator waiting for a night
(``pipeline.runner_celery``) looks every few seconds for units that such a worker had taken
and not acknowledged, and puts them back in their queue at once, without waiting for the
broker's ``visibility_timeout_s`` (an hour). A unit taken but not yet noted (a worker killed
in between) counts as held by a dead worker once it has waited ``heartbeat_timeout_s``.
Units are idempotent by key, so a worker that was only slow to beat costs a unit run twice,
never a wrong result.

:func:`worker_heartbeats` is the small reader for people and metrics (``loa runner status``).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import socket
import threading
from dataclasses import dataclass
from typing import Any

log = logging.getLogger(__name__)

WORKERS_KEY = "loa:workers"
OWNER_PREFIX = "loa:owner:"
OWNER_TTL_S = 2 * 24 * 3600
FORGET_AFTER_S = 24 * 3600  # a worker not heard of for a day leaves the list
UNACKED_KEY = "unacked"  # kombu's Redis transport: taken, not yet acknowledged
UNACKED_INDEX_KEY = "unacked_index"


@dataclass(frozen=True, slots=True)
class WorkerBeat:
    """One worker as its last heartbeat describes it."""

    name: str
    host: str
    pid: int
    started: float  # Redis server time, seconds
    last_seen: float  # Redis server time, seconds
    age_s: float  # how long ago, by the Redis server's clock
    alive: bool  # age_s within heartbeat_timeout_s


def server_time(client: Any) -> float:
    secs, micros = client.time()
    return float(secs) + float(micros) / 1e6


def beat(client: Any, name: str, *, started: float | None = None) -> float:
    """Write ``name``'s heartbeat now; the Redis time it wrote."""
    now = server_time(client)
    entry = {"host": socket.gethostname(), "pid": os.getpid(), "started": started or now, "at": now}
    client.hset(WORKERS_KEY, name, json.dumps(entry))
    return now


def forget(client: Any, name: str) -> None:
    client.hdel(WORKERS_KEY, name)


def _beats(client: Any, timeout_s: float) -> tuple[float, list[WorkerBeat]]:
    now = server_time(client)
    out: list[WorkerBeat] = []
    for raw_name, raw in client.hgetall(WORKERS_KEY).items():
        name = raw_name.decode() if isinstance(raw_name, bytes) else str(raw_name)
        try:
            entry = json.loads(raw)
            at = float(entry["at"])
        except (ValueError, KeyError, TypeError):
            continue
        age = max(0.0, now - at)
        if age > FORGET_AFTER_S:
            client.hdel(WORKERS_KEY, name)
            continue
        out.append(
            WorkerBeat(
                name=name,
                host=str(entry.get("host", "")),
                pid=int(entry.get("pid", 0)),
                started=float(entry.get("started", at)),
                last_seen=at,
                age_s=age,
                alive=age <= timeout_s,
            )
        )
    return now, sorted(out, key=lambda b: b.name)


def worker_heartbeats(broker_url: str, *, timeout_s: float = 30.0, connect_timeout_s: float = 2.0) -> list[WorkerBeat]:
    """Every worker heard of in the last day, alive or not, by name (for status pages and metrics)."""
    import redis

    client = redis.Redis.from_url(
        broker_url, socket_connect_timeout=connect_timeout_s, socket_timeout=connect_timeout_s
    )
    try:
        return _beats(client, timeout_s)[1]
    finally:
        client.close()


def silent_workers(client: Any, *, timeout_s: float) -> set[str]:
    """Names of the workers heard of whose heartbeat is older than ``timeout_s``."""
    return {b.name for b in _beats(client, timeout_s)[1] if not b.alive}


def note_owner(client: Any, task_id: str, worker: str) -> None:
    client.set(f"{OWNER_PREFIX}{task_id}", worker, ex=OWNER_TTL_S)


def orphaned(client: Any, task_ids: set[str], *, timeout_s: float) -> dict[str, tuple[str, str]]:
    """Of ``task_ids``, those taken (unacknowledged) by a worker that is gone: task id →
    (kombu delivery tag, the dead worker's name or "unknown")."""
    if not task_ids:
        return {}
    held: dict[str, tuple[str, float]] = {}  # task id → (tag, taken at, by the taker's clock)
    taken_at = {
        (t.decode() if isinstance(t, bytes) else str(t)): float(score)
        for t, score in client.zrange(UNACKED_INDEX_KEY, 0, -1, withscores=True)
    }
    for raw_tag, raw in client.hgetall(UNACKED_KEY).items():
        tag = raw_tag.decode() if isinstance(raw_tag, bytes) else str(raw_tag)
        task_id = _task_id(raw)
        if task_id in task_ids:
            held[task_id] = (tag, taken_at.get(tag, 0.0))
    if not held:
        return {}
    now, beats = _beats(client, timeout_s)
    alive = {b.name for b in beats if b.alive}
    ids = sorted(held)
    owners = client.mget([f"{OWNER_PREFIX}{t}" for t in ids])
    known = {b.name for b in beats}
    out: dict[str, tuple[str, str]] = {}
    for task_id, raw_owner in zip(ids, owners, strict=True):
        tag, at = held[task_id]
        owner = raw_owner.decode() if isinstance(raw_owner, bytes) else raw_owner
        if owner in alive:
            continue
        # a worker that stopped beating is gone; an owner not noted yet (or a worker never
        # heard of) is given the same time from the moment the unit was taken
        if owner in known or now - at > timeout_s:
            out[task_id] = (tag, owner or "unknown")
    return out


def release(client: Any, tag: str) -> bool:
    """Take the unit ``tag`` out of kombu's "taken" records; whether it was still there
    (then the caller sends it again; otherwise its worker or kombu dealt with it)."""
    with client.pipeline() as pipe:
        pipe.hdel(UNACKED_KEY, tag)
        pipe.zrem(UNACKED_INDEX_KEY, tag)
        removed, _ = pipe.execute()
    return bool(removed)


def _task_id(raw: bytes | str) -> str:
    try:
        message = json.loads(raw)[0]
        return str(message["headers"]["id"])
    except (ValueError, KeyError, IndexError, TypeError):
        return ""


class Heartbeat:
    """The worker's heartbeat thread: beats every ``interval_s`` until ``stop()``."""

    def __init__(self, broker_url: str, name: str, *, interval_s: float) -> None:
        self.broker_url = broker_url
        self.name = name
        self.interval_s = interval_s
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self._thread is not None:
            return
        self._thread = threading.Thread(target=self._loop, name="loa-heartbeat", daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        import redis

        client = redis.Redis.from_url(self.broker_url, socket_connect_timeout=5, socket_timeout=5)
        started: float | None = None
        try:
            while not self._stop.is_set():
                try:
                    at = beat(client, self.name, started=started)
                    started = started or at
                except redis.RedisError as exc:  # the broker is away: beat again when it is back
                    log.warning("heartbeat of %s not written: %s", self.name, exc)
                self._stop.wait(self.interval_s)
            with contextlib.suppress(redis.RedisError):
                forget(client, self.name)  # a clean stop: kombu gave back what this worker held
        finally:
            client.close()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None
