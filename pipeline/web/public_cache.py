"""Public answers computed once per change of what is public, not once per request.

What the archive, the feeds and the public API show changes only at a build, an approval
or a withdrawal (``pipeline/store/public.py``: one cheap read per request), and when time
passes a program's start (it has aired) or midnight (expiry, emergencies in force). A
*stamp* is those two together: the public version and the last such moment. Every public
answer is keyed by its URL and the stamp:

- its ``ETag`` is derived from the key and the stamp, so a conditional request
  (``If-None-Match``, ``If-Modified-Since``) is answered 304 after the one read, without
  building anything;
- its body is built once per stamp and kept (a bounded LRU of ``[publish] cache_entries``);
  concurrent misses of one key wait for the one build instead of all building.

``[publish] cache = false`` turns this off (every request builds, and the ETag is then
compared after building, as before): only to measure the difference (``make bench``).
"""

from __future__ import annotations

import bisect
import datetime as dt
import email.utils
import hashlib
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from fastapi import Request
from fastapi.responses import Response

from pipeline import __version__
from pipeline.config import Settings
from pipeline.models import Deployment
from pipeline.publish.aired import aired_items
from pipeline.store import Database
from pipeline.store.public import PublicVersion, public_version

T = TypeVar("T")
#: Headers of a built answer that are kept with it (the others come from the stamp).
KEPT_HEADERS = ("content-type", "x-loa-frame-ancestors", "content-language")
_EPOCH_START = dt.datetime(2000, 1, 1, tzinfo=dt.UTC)


@dataclass(frozen=True, slots=True)
class Stamp:
    version: PublicVersion
    since: dt.datetime  # the last moment ≤ now at which time alone changed what is public

    @property
    def last_modified(self) -> dt.datetime:
        """Whole seconds, UTC (what ``Last-Modified`` can say)."""
        newest = max(self.since, self.version.at or self.since)
        return newest.astimezone(dt.UTC).replace(microsecond=0)

    def tag(self, key: str) -> str:
        raw = f"{key}\n{self.version.key}\n{self.since.isoformat()}\n{__version__}"
        return '"' + hashlib.sha256(raw.encode()).hexdigest()[:32] + '"'


@dataclass(frozen=True, slots=True)
class _Kept:
    tag: str
    body: bytes
    status: int
    headers: tuple[tuple[str, str], ...]


def http_date(moment: dt.datetime) -> str:
    return email.utils.format_datetime(moment.astimezone(dt.UTC).replace(microsecond=0), usegmt=True)


def not_modified(request: Request, etag: str, last_modified: dt.datetime | None) -> bool:
    """RFC 9110 §13.1: ``If-None-Match`` first (weak comparison); else ``If-Modified-Since``."""
    inm = request.headers.get("if-none-match")
    if inm is not None:
        tags = [t.strip().removeprefix("W/") for t in inm.split(",")]
        return inm.strip() == "*" or etag in tags
    ims = request.headers.get("if-modified-since")
    if ims is None or last_modified is None:
        return False
    try:
        since = email.utils.parsedate_to_datetime(ims)
    except (TypeError, ValueError):
        return False
    return since.tzinfo is not None and last_modified.replace(microsecond=0) <= since


class PublicCache:
    def __init__(self, settings: Settings, deployment: Deployment, db: Database) -> None:
        self.settings, self.deployment, self.db = settings, deployment, db
        self.enabled = settings.publish.cache
        self.cache_control = f"public, max-age={settings.publish.max_age_s}, must-revalidate"
        self._lock = threading.Lock()
        self._kept: OrderedDict[str, _Kept] = OrderedDict()
        self._values: dict[str, tuple[str, Any]] = {}
        self._builds = [threading.Lock() for _ in range(64)]  # striped: one build per key at a time
        self._starts: tuple[str, list[dt.datetime]] = ("", [])
        self._scan = threading.Lock()
        self.builds = 0  # answers built (tests and the benchmark read it)

    # --- the stamp ------------------------------------------------------------------

    def stamp(self, now: dt.datetime | None = None) -> Stamp:
        now = now or dt.datetime.now(self.settings.tz)
        version = public_version(self.db)
        starts = self._program_starts(version)
        i = bisect.bisect_right(starts, now)
        midnight = now.astimezone(self.settings.tz).replace(hour=0, minute=0, second=0, microsecond=0)
        since = max(midnight, starts[i - 1] if i else _EPOCH_START)
        return Stamp(version, since)

    def _program_starts(self, version: PublicVersion) -> list[dt.datetime]:
        """When each built program starts (once per version: a build is what changes them)."""
        key, starts = self._starts
        if key == version.key:
            return starts
        with self._scan:  # one scan of the outbox per change, however many requests arrive at once
            key, starts = self._starts
            if key != version.key:
                codes = [c.code for c in self.deployment.communes]
                starts = sorted({i.start for i in aired_items(self.settings, communes=codes)})
                self._starts = (version.key, starts)
        return starts

    # --- answers --------------------------------------------------------------------

    def answer(self, request: Request, build: Callable[[], Response], *, key: str = "") -> Response:
        """The answer to a public GET: 304, the kept answer, or ``build()`` (kept when 200)."""
        key = key or _key_of(request)
        if not self.enabled:
            return self._uncached(request, build)
        stamp = self.stamp()
        tag = stamp.tag(key)
        headers = {
            "etag": tag,
            "last-modified": http_date(stamp.last_modified),
            "cache-control": self.cache_control,
        }
        if not_modified(request, tag, stamp.last_modified):
            return Response(status_code=304, headers=headers)
        kept = self._get(key, tag)
        if kept is None:
            with self._builds[hash(key) % len(self._builds)]:
                kept = self._get(key, tag)
                if kept is None:
                    response = build()
                    self.builds += 1
                    if response.status_code != 200:
                        return response  # errors are not kept: a 404 costs what it costs
                    kept = _Kept(tag, bytes(response.body), 200, _kept_headers(response))
                    self._put(key, kept)
        return Response(kept.body, status_code=kept.status, headers=dict(kept.headers) | headers)

    def value(self, key: str, compute: Callable[[], T]) -> T:
        """``compute()`` once per stamp (e.g. whether an audio file is public)."""
        if not self.enabled:
            return compute()
        tag = self.stamp().tag(key)
        with self._lock:
            found = self._values.get(key)
        if found is not None and found[0] == tag:
            return found[1]  # type: ignore[no-any-return]
        result = compute()
        with self._lock:
            if len(self._values) >= self.settings.publish.cache_entries:
                self._values.clear()
            self._values[key] = (tag, result)
        return result

    def _uncached(self, request: Request, build: Callable[[], Response]) -> Response:
        """The old way, for measuring: build, then compare the ETag of what was built."""
        response = build()
        self.builds += 1
        if response.status_code != 200:
            return response
        etag = response.headers.get("etag") or '"' + hashlib.sha256(bytes(response.body)).hexdigest()[:32] + '"'
        response.headers["etag"] = etag
        if not_modified(request, etag, None):
            return Response(status_code=304, headers={"etag": etag, "cache-control": self.cache_control})
        return response

    def _get(self, key: str, tag: str) -> _Kept | None:
        with self._lock:
            kept = self._kept.get(key)
            if kept is None or kept.tag != tag:
                return None
            self._kept.move_to_end(key)
            return kept

    def _put(self, key: str, kept: _Kept) -> None:
        with self._lock:
            self._kept[key] = kept
            self._kept.move_to_end(key)
            while len(self._kept) > self.settings.publish.cache_entries:
                self._kept.popitem(last=False)


def _key_of(request: Request) -> str:
    """The URL as asked (path and sorted query) and the host it was asked of (absolute links)."""
    query = "&".join(f"{k}={v}" for k, v in sorted(request.query_params.multi_items()))
    return f"{request.base_url}|{request.url.path}?{query}"


def _kept_headers(response: Response) -> tuple[tuple[str, str], ...]:
    return tuple((k, v) for k, v in response.headers.items() if k in KEPT_HEADERS)


def public_cache(request: Request) -> PublicCache:
    cache: Any = request.app.state.public_cache
    assert isinstance(cache, PublicCache)
    return cache
