"""pipeline/liveness.py against a real redis-server: heartbeats and the units a dead worker held."""

from __future__ import annotations

import json
import time

import pytest
import redis

from pipeline import liveness

pytestmark = pytest.mark.services


def _taken(client: redis.Redis, tag: str, task_id: str, *, at: float) -> None:
    """A unit taken by a worker, as kombu's Redis transport records it."""
    message = {"headers": {"id": task_id}, "body": ""}
    client.hset(liveness.UNACKED_KEY, tag, json.dumps([message, "loa", "loa"]))
    client.zadd(liveness.UNACKED_INDEX_KEY, {tag: at})


def test_units_of_a_silent_worker_are_orphans_and_a_live_workers_are_not(redis_url: str) -> None:
    client = redis.Redis.from_url(redis_url)
    try:
        now = liveness.server_time(client)
        liveness.beat(client, "loa-1@may-a")
        stale = {"host": "may-b", "pid": 7, "started": now - 600, "at": now - 45}
        client.hset(liveness.WORKERS_KEY, "loa-2@may-b", json.dumps(stale))
        _taken(client, "tag-1", "t1", at=time.time() - 5)
        liveness.note_owner(client, "t1", "loa-2@may-b")  # a worker silent for 45 s
        _taken(client, "tag-2", "t2", at=time.time() - 500)
        liveness.note_owner(client, "t2", "loa-1@may-a")  # a long unit on a live worker
        _taken(client, "tag-3", "t3", at=time.time() - 60)  # taken, never noted, long ago
        _taken(client, "tag-4", "t4", at=time.time())  # taken a moment ago, not noted yet
        _taken(client, "tag-5", "other-run", at=time.time() - 500)
        liveness.note_owner(client, "other-run", "loa-2@may-b")  # not ours to restore

        lost = liveness.orphaned(client, {"t1", "t2", "t3", "t4", "t9"}, timeout_s=30)
        assert lost == {"t1": ("tag-1", "loa-2@may-b"), "t3": ("tag-3", "unknown")}

        beats = {b.name: b for b in liveness.worker_heartbeats(redis_url, timeout_s=30)}
        assert beats["loa-1@may-a"].alive and beats["loa-1@may-a"].age_s < 5
        assert not beats["loa-2@may-b"].alive and beats["loa-2@may-b"].age_s > 30
        assert beats["loa-2@may-b"].host == "may-b"
    finally:
        client.close()


def test_the_heartbeat_thread_beats_and_leaves_the_list_on_a_clean_stop(redis_url: str) -> None:
    heartbeat = liveness.Heartbeat(redis_url, "loa-3@may-c", interval_s=0.2)
    heartbeat.start()
    try:
        deadline = time.monotonic() + 30
        seen: list[float] = []
        while len(set(seen)) < 2:  # two beats, one after the other
            assert time.monotonic() < deadline, "no heartbeat"
            seen += [b.last_seen for b in liveness.worker_heartbeats(redis_url) if b.name == "loa-3@may-c"]
            time.sleep(0.1)
    finally:
        heartbeat.stop()
    assert [b.name for b in liveness.worker_heartbeats(redis_url)] == []
