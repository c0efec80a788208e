"""Keeping the local copy and the server in step, in a thread beside the player.

``PullSync`` (mode ``pull``): every ``pull_interval_s`` the server's clock (the agent
plays by the corrected time and says so when it is off by more than a minute), the
programs of today and the next ``days_ahead`` days and the emergencies in force; between
those, a long-poll on ``/events`` so an emergency or its cancel arrives within seconds;
pending receipts are sent, a heartbeat every ``heartbeat_interval_s`` (which may ask for
a new token). No answer from the server: wait (1 s, doubling to ``retry_max_s``) and try
again; the player goes on from the local copy meanwhile.

``FolderSync`` (mode ``folder``): what an SFTP push leaves in ``folder`` is checked every
``scan_interval_s`` and accepted when signed and complete; receipts are left in
``folder/reports/`` for the server's ``loa receipts collect``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import logging
import threading
import time
from pathlib import Path
from zoneinfo import ZoneInfo

from loa_device import __version__
from loa_device import config as cfg
from loa_device.agent import Agent
from loa_protocol import manifest as mf
from loa_protocol.client import PullClient, PullReport, checked
from loa_protocol.errors import LinkError, ManifestError, ServerError, TokenRefused
from loa_protocol.files import write_atomic

log = logging.getLogger(__name__)


class PullSync(threading.Thread):
    def __init__(self, agent: Agent, *, config_path: Path | None = None) -> None:
        super().__init__(name="loa-device-sync", daemon=True)
        self.agent = agent
        self.config = agent.config
        self.config_path = config_path
        self.version = str(agent.state.get("events_version", ""))
        self.last_full = -1e9
        self.last_heartbeat = -1e9
        self.last_prune = -1e9
        self.link_up = True
        self.rejected: dict[str, bytes] = {}  # folder -> the manifest bytes refused last (not checked again)
        self.client = self._client()

    def _client(self) -> PullClient:
        return PullClient(
            self.config.server,
            self.config.token,
            timeout_s=30.0,
            user_agent=f"loa-device/{__version__}",
            verify_tls=self.config.ca_file or True,
        )

    @property
    def retry_max_s(self) -> float:
        return float(self.config.extra.get("retry_max_s", 30.0))

    def run(self) -> None:
        backoff = 1.0
        while not self.agent.stopping.is_set():
            self.agent.sync_alive = time.monotonic()
            try:
                self.cycle()
                if not self.link_up:
                    log.info("the link to %s is back", self.config.server)
                self.link_up, backoff = True, 1.0
                continue
            except LinkError as exc:
                if self.link_up:
                    log.warning("no link to the server (%s); playing from the local copy", exc)
                self.link_up = False
            except TokenRefused as exc:
                log.error("%s", exc)
                backoff = max(backoff, 60.0)
            except (ServerError, ManifestError, OSError, ValueError, KeyError) as exc:
                log.error("sync: %s: %s", exc.__class__.__name__, exc)
            self.agent.stopping.wait(backoff)
            backoff = min(backoff * 2, max(self.retry_max_s, 1.0))
        self.client.close()

    # --- one round ----------------------------------------------------------------

    def cycle(self) -> None:
        a = self.agent
        if not self.link_up or time.monotonic() - self.last_full >= self.config.pull_interval_s:
            self.measure_clock()
            self.full()
            self.last_full = time.monotonic()
        self.send_receipts()
        if time.monotonic() - self.last_heartbeat >= self.config.heartbeat_interval_s:
            self.heartbeat()
            self.last_heartbeat = time.monotonic()
        if time.monotonic() - self.last_prune >= 86400:
            self.prune()
            self.last_prune = time.monotonic()
        a.sync_alive = time.monotonic()
        answer = self.client.events(self.config.endpoint, since=self.version, wait_s=self.config.events_wait_s)
        version = str(answer.get("version", ""))
        if version != self.version:
            for item in answer.get("emergencies", []):
                self.folder(str(item["folder"]))
            self.version = version
            a.state.update(events_version=version)

    def measure_clock(self) -> None:
        t = self.client.server_time(self.agent.clock.local())
        self.agent.set_offset(t.offset_s)

    def full(self) -> None:
        for item in self.client.emergencies(self.config.endpoint):
            self.folder(str(item["folder"]))
        today = self.agent.clock.now().astimezone(ZoneInfo(self.config.timezone)).date()
        for n in range(-1, self.config.days_ahead + 1):
            self.folder(f"programs/{(today + dt.timedelta(days=n)).isoformat()}")

    def folder(self, folder: str) -> None:
        """Bring one folder in if the server has a new signed manifest for it."""
        a = self.agent
        signed = self.client.signed(self.config.endpoint, folder)
        if signed is None or a.library.raw_of(folder) == signed[0] or self.rejected.get(folder) == signed[0]:
            return
        raw, sig = signed
        now = a.clock.now()
        try:
            manifest = checked(raw, sig, endpoint=self.config.endpoint, folder=folder, key=a.library.key, now=now)
            report = PullReport()
            for entry in manifest.files:
                self.client.fetch(self.config.endpoint, entry, a.media_root, report)
            a.library.accept(folder, raw, sig, now=now)
        except ManifestError as exc:
            a.note_refused(str(exc))
            self.rejected[folder] = raw
            return
        except ServerError as exc:
            if isinstance(exc, (LinkError, TokenRefused)):
                raise
            a.note_refused(f"{folder}: {exc}")
            return
        self.rejected.pop(folder, None)
        a.changed()

    def send_receipts(self) -> None:
        a = self.agent
        a.receipt_ready.clear()
        for path in a.outbox.pending():
            stored = self.client.upload_receipt(self.config.endpoint, path.read_bytes())
            a.outbox.mark_sent(path)
            log.info("receipt %s %s", path.stem, "sent" if stored else "was already on the server")

    def heartbeat(self) -> None:
        answer = self.client.heartbeat_answer(self.config.endpoint, self.agent.heartbeat_doc())
        if answer.get("rotate") and self.config_path is not None:
            self.rotate_token()

    def rotate_token(self) -> None:
        """A new token: saved first, then confirmed with it (the server then revokes the old one)."""
        assert self.config_path is not None
        token = self.client.rotate_token(self.config.endpoint)
        self.config = dataclasses.replace(self.config, token=token)
        cfg.save(self.config_path, self.config)
        self.agent.config = self.config
        self.client.close()
        self.client = self._client()
        revoked = self.client.confirm_token(self.config.endpoint)
        log.info("token rotated (%d old revoked)", revoked)

    def prune(self) -> None:
        a = self.agent
        keep = a.library.prune(a.clock.now())
        a.outbox.prune()
        media = a.media_root / "media"
        if self.config.mode == "pull" and media.is_dir():
            for path in media.iterdir():
                rel = f"media/{path.name}"
                if rel not in keep and not path.name.endswith(".part"):
                    with contextlib.suppress(OSError):
                        path.unlink()


class FolderSync(threading.Thread):
    def __init__(self, agent: Agent) -> None:
        super().__init__(name="loa-device-folder", daemon=True)
        self.agent = agent
        self.root = Path(agent.config.folder)
        self.seen: dict[str, tuple[int, int]] = {}
        self.failed: dict[str, tuple[tuple[int, int], float]] = {}

    def run(self) -> None:
        while not self.agent.stopping.is_set():
            self.agent.sync_alive = time.monotonic()
            try:
                self.scan()
                self.leave_receipts()
            except OSError as exc:
                log.error("folder %s: %s", self.root, exc)
            self.agent.stopping.wait(self.agent.config.scan_interval_s)

    def scan(self) -> None:
        a = self.agent
        for path in sorted([*self.root.glob(f"programs/*/{mf.FILE}"), *self.root.glob(f"emergency/*/{mf.FILE}")]):
            folder = path.parent.relative_to(self.root).as_posix()
            st = path.stat()
            stamp = (st.st_mtime_ns, st.st_size)
            if self.seen.get(folder) == stamp:
                continue
            failed = self.failed.get(folder)
            if failed is not None and failed[0] == stamp and time.monotonic() - failed[1] < 60:
                continue
            raw = path.read_bytes()
            if a.library.raw_of(folder) == raw:
                self.seen[folder] = stamp
                continue
            sig_path = path.with_name(mf.SIG_FILE)
            sig = sig_path.read_bytes() if sig_path.is_file() else None
            now = a.clock.now()
            try:
                manifest = checked(raw, sig, endpoint=a.config.endpoint, folder=folder, key=a.library.key, now=now)
                for entry in manifest.files:
                    mf.check_file(self.root, entry)
                a.library.accept(folder, raw, sig, now=now)
            except ManifestError as exc:
                a.note_refused(str(exc))  # tried again in a minute, or when the manifest changes
                self.failed[folder] = (stamp, time.monotonic())
                continue
            self.failed.pop(folder, None)
            self.seen[folder] = stamp
            a.changed()

    def leave_receipts(self) -> None:
        a = self.agent
        for path in a.outbox.pending():
            write_atomic(self.root / "reports" / path.name, path.read_bytes(), mode=0o644)
            a.outbox.mark_sent(path)
