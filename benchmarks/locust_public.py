"""Locust users for benchmarks/public_load.py: the public side as a crowd sees it.

One user class per scenario (the runner picks one per measurement). ``FastHttpUser``
(geventhttpclient) rather than ``HttpUser`` (requests): the load generator shares the two
cores with the server, and requests' own cost per call hid the server's. Paths come from
``LOA_BENCH_PATHS`` (JSON), the consultation's code from ``LOA_BENCH_CONSULTATION``; the
consultation users write what each simulated client was answered to ``LOA_BENCH_OUT``.
"""

from __future__ import annotations

import json
import os
import re
import threading
from typing import Any

from locust import constant, events, task
from locust.contrib.fasthttp import FastHttpUser

PATHS: dict[str, list[str]] = json.loads(os.environ.get("LOA_BENCH_PATHS", "{}"))
TOKEN_RE = re.compile(r'name="form_token" value="([^"]+)"')
_lock = threading.Lock()
_clients = 0
ANSWERS: dict[str, dict[str, int]] = {}


class _Rotating(FastHttpUser):
    abstract = True
    wait_time = constant(0)
    scenario = ""

    def on_start(self) -> None:
        self.paths = PATHS[self.scenario]
        self.i = 0

    def next_path(self) -> str:
        self.i += 1
        return self.paths[self.i % len(self.paths)]


class Feeds(_Rotating):
    scenario = "feeds"

    @task
    def feed(self) -> None:
        self.client.get(self.next_path(), name="feed (200)")


class FeedsConditional(_Rotating):
    """A podcast app polling with the ETag it has: 304 unless the feed changed."""

    scenario = "feeds"

    def on_start(self) -> None:
        super().on_start()
        self.tags = {p: self.client.get(p, name="feed (first)").headers.get("etag", "") for p in self.paths}

    @task
    def feed(self) -> None:
        path = self.next_path()
        with self.client.get(
            path, headers={"If-None-Match": self.tags[path]}, name="feed (If-None-Match)", catch_response=True
        ) as r:
            if r.status_code == 200:  # changed (a build ran): keep the new tag, as an app would
                self.tags[path] = r.headers.get("etag", "")
                r.success()
            elif r.status_code == 304:
                r.success()
            else:
                r.failure(f"HTTP {r.status_code}")


class Archive(_Rotating):
    scenario = "archive"

    @task
    def page(self) -> None:
        self.client.get(self.next_path(), name="archive page")


class PublicApi(_Rotating):
    scenario = "api"

    @task
    def answer(self) -> None:
        self.client.get(self.next_path(), name="public API")


class Consultation(FastHttpUser):
    """A citizen on a distinct address (X-Forwarded-For from the trusted loopback proxy) answering again and again."""

    wait_time = constant(0)

    def on_start(self) -> None:
        global _clients
        with _lock:
            _clients += 1
            n = _clients
        self.address = f"10.77.{n // 250}.{n % 250 + 1}"
        self.code = os.environ["LOA_BENCH_CONSULTATION"]
        ANSWERS.setdefault(self.address, {"accepted": 0, "limited": 0, "other": 0})

    @task
    def answer(self) -> None:
        headers = {"X-Forwarded-For": self.address}
        page = self.client.get(f"/y-kien/{self.code}", headers=headers, name="consultation page")
        m = TOKEN_RE.search(page.text)
        if m is None:
            return
        data = {"form_token": m.group(1), "q1": "yes", "q2": "Lúa", "q3": "", "website": ""}
        with self.client.post(
            f"/y-kien/{self.code}", data=data, headers=headers, name="consultation answer", catch_response=True
        ) as r:
            kind = "accepted" if r.status_code == 200 else "limited" if r.status_code == 429 else "other"
            ANSWERS[self.address][kind] += 1
            if kind == "other":
                r.failure(f"HTTP {r.status_code}")
            else:
                r.success()  # 429 is the rate limit holding: expected


@events.test_stop.add_listener
def _write_answers(**_: Any) -> None:
    out = os.environ.get("LOA_BENCH_OUT")
    if out and ANSWERS:
        with open(out, "w", encoding="utf-8") as f:
            json.dump(ANSWERS, f)
