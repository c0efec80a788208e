"""Apprise: the one adapter that sends alerts to e-mail and chat services.

The URLs come from ``[alerts] urls`` or ``urls_file`` (one per line; ``#`` comments); they
often hold passwords, so they are never logged.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING

from pipeline.config import Settings
from pipeline.errors import ConfigError

if TYPE_CHECKING:
    from pipeline.ops.alerts import Notice

log = logging.getLogger(__name__)


def alert_urls(settings: Settings) -> list[str]:
    urls = list(settings.alerts.urls)
    path = settings.alerts.urls_file
    if path is not None:
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigError(f"[alerts] urls_file {path}: {exc.strerror or exc}") from exc
        urls += [line.strip() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    return urls


def send(urls: list[str], *, title: str, body: str) -> bool:
    """Send to every URL; true when all took it. A URL Apprise cannot parse is a ConfigError."""
    import apprise

    logging.getLogger("apprise").setLevel(logging.ERROR)  # its debug lines may quote URLs
    ap = apprise.Apprise()
    for i, url in enumerate(urls, 1):
        if not ap.add(url):
            raise ConfigError(f"[alerts] urls: URL number {i} is not one Apprise understands (see docs/operations.md)")
    return bool(ap.notify(title=title, body=body))


def apprise_notifier(settings: Settings) -> Callable[[Notice], bool] | None:
    """A notifier for ``run_alerts``, or None when no URL is configured."""
    urls = alert_urls(settings)
    if not urls:
        return None

    def notify(notice: Notice) -> bool:
        try:
            ok = send(urls, title=notice.title, body=notice.body)
        except ConfigError:
            raise
        except Exception as exc:  # a service down must not stop the other alerts
            log.warning("alert %s: Apprise failed: %s", notice.key, exc.__class__.__name__)
            return False
        if not ok:
            log.warning("alert %s: Apprise could not send it to every URL", notice.key)
        return ok

    return notify
