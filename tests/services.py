"""Real services for the tests: redis-server, PostgreSQL 15 and `loa worker` processes.

Session-scoped: one redis-server and one PostgreSQL cluster for the whole run, each on
a free loopback port, their files in a temporary directory, stopped at the end.
PostgreSQL refuses to run as root, so as root the cluster belongs to an unprivileged
user (``postgres`` when Debian's package made it, else ``loatest``, created with
``useradd``) and its programs run through ``runuser``. Every test that wants a
database gets a fresh one (``pg_url``); every test that starts workers gets an empty
redis (``redis_url`` flushes it).
"""

from __future__ import annotations

import contextlib
import itertools
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from pipeline.bench.children import stop_child
from pipeline.bench.sshd import free_port


def _pg_bin() -> Path:
    """PostgreSQL 15's programs (Debian 12), else the newest installed."""
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"), key=lambda p: int(p.parts[-3]))
    preferred = [p for p in found if p.parts[-3] == "15"]
    return (preferred or found or [Path("/usr/lib/postgresql/15/bin/initdb")])[-1].parent


PG_BIN = _pg_bin()
REDIS = shutil.which("redis-server") or "/usr/bin/redis-server"
PG_SUPERUSER = "loa"


def _wait_port(port: int, *, timeout: float = 30.0, what: str = "service") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return
        time.sleep(0.05)
    raise RuntimeError(f"{what} did not listen on 127.0.0.1:{port} within {timeout} s")


# --- redis ------------------------------------------------------------------------------


@dataclass
class RedisServer:
    """A redis-server on 127.0.0.1 with its data (an append-only file) in ``dir``."""

    dir: Path
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        self.proc = subprocess.Popen(
            [
                REDIS,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--dir",
                str(self.dir),
                "--appendonly",
                "yes",
                "--appendfsync",
                "always",
                "--save",
                "",
                "--daemonize",
                "no",
                "--logfile",
                str(self.dir / "redis.log"),
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        _wait_port(self.port, what="redis-server")

    def stop(self) -> None:
        if self.proc is not None:
            stop_child(self.proc, timeout_s=20)
        self.proc = None

    def flush(self) -> None:
        import redis

        client = redis.Redis(host="127.0.0.1", port=self.port)
        client.flushall()
        client.close()


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    if not Path(REDIS).is_file():
        pytest.fail("redis-server is missing: `make setup` installs it (Debian package redis-server)")
    base = Path(tempfile.mkdtemp(prefix="loa-redis-"))
    server = RedisServer(base)
    server.start()
    yield server
    server.stop()
    shutil.rmtree(base, ignore_errors=True)


@pytest.fixture
def redis_url(redis_server: RedisServer) -> str:
    """The session's redis, emptied for this test."""
    if redis_server.proc is None or redis_server.proc.poll() is not None:
        redis_server.start()
    redis_server.flush()
    return redis_server.url


# --- PostgreSQL -------------------------------------------------------------------------


def _pg_owner() -> str | None:
    """The unprivileged user that owns the cluster when we are root (None: ourselves)."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "loatest"):
        with contextlib.suppress(KeyError):
            pwd.getpwnam(name)
            return name
    subprocess.run(["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", "loatest"], check=True)
    return "loatest"


@dataclass
class Postgres:
    dir: Path
    owner: str | None
    port: int = field(default_factory=free_port)
    _names: Iterator[int] = field(default_factory=lambda: itertools.count(1))

    def _as_owner(self, *cmd: str) -> list[str]:
        return ["runuser", "-u", self.owner, "--", *cmd] if self.owner else list(cmd)

    @property
    def data(self) -> Path:
        return self.dir / "data"

    def start(self) -> None:
        if self.owner:
            uid, gid = pwd.getpwnam(self.owner).pw_uid, pwd.getpwnam(self.owner).pw_gid
            os.chown(self.dir, uid, gid)
        if not (self.data / "PG_VERSION").is_file():
            subprocess.run(
                self._as_owner(
                    str(PG_BIN / "initdb"),
                    "-D",
                    str(self.data),
                    "-U",
                    PG_SUPERUSER,
                    "--auth=trust",
                    "-E",
                    "UTF8",
                    "--no-locale",
                    "--no-sync",
                ),
                check=True,
                capture_output=True,
            )
        options = (
            f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c fsync=off "
            "-c synchronous_commit=off -c full_page_writes=off -c max_connections=200"
        )
        subprocess.run(
            self._as_owner(
                str(PG_BIN / "pg_ctl"),
                "-D",
                str(self.data),
                "-l",
                str(self.dir / "pg.log"),
                "-o",
                options,
                "-w",
                "start",
            ),
            check=True,
            capture_output=True,
        )

    def stop(self) -> None:
        subprocess.run(
            self._as_owner(str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "stop"),
            capture_output=True,
            check=False,
        )

    def url(self, dbname: str = "postgres") -> str:
        return f"postgresql+psycopg://{PG_SUPERUSER}@127.0.0.1:{self.port}/{dbname}"

    def create_database(self) -> str:
        """A new empty database; its SQLAlchemy URL."""
        import psycopg

        name = f"t{next(self._names)}_{os.getpid()}"
        with psycopg.connect(f"host=127.0.0.1 port={self.port} user={PG_SUPERUSER} dbname=postgres") as conn:
            conn.autocommit = True
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)


@pytest.fixture(scope="session")
def postgres() -> Iterator[Postgres]:
    if not (PG_BIN / "initdb").is_file():
        pytest.fail("PostgreSQL 15 is missing: `make setup` installs it (Debian package postgresql)")
    base = Path(tempfile.mkdtemp(prefix="loa-pg-"))  # not under pytest's 0700 root-owned tmp
    server = Postgres(base, _pg_owner())
    server.start()
    yield server
    server.stop()
    shutil.rmtree(base, ignore_errors=True)


@pytest.fixture
def pg_url(postgres: Postgres) -> Iterator[str]:
    """A fresh, empty PostgreSQL database for this test.

    The connections the test's engines opened are closed at the end (psycopg warns about
    a connection garbage-collected while open, and the suite turns warnings into errors).
    """
    import sqlalchemy as sa

    opened: list[object] = []

    def track(dbapi_conn: object, _record: object) -> None:
        opened.append(dbapi_conn)

    sa.event.listen(sa.pool.Pool, "connect", track)
    try:
        yield postgres.create_database()
    finally:
        sa.event.remove(sa.pool.Pool, "connect", track)
        for conn in opened:
            with contextlib.suppress(Exception):
                conn.close()  # type: ignore[attr-defined]


# --- workers ----------------------------------------------------------------------------


@dataclass
class Worker:
    config: Path
    queues: str
    concurrency: int
    log: Path
    env: dict[str, str]
    proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.log.parent.mkdir(parents=True, exist_ok=True)
        out = self.log.open("ab")
        self.proc = subprocess.Popen(
            [
                str(Path(sys.executable).parent / "loa"),
                "--config",
                str(self.config),
                "worker",
                "--queues",
                self.queues,
                "--concurrency",
                str(self.concurrency),
            ],
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            env=self.env,
            start_new_session=True,  # its own process group: kill() takes the pool with it
        )
        out.close()

    def kill(self) -> None:
        """SIGKILL the worker and its pool processes: a machine lost mid-task."""
        if self.proc is not None and self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.kill()


def wait_workers(broker_url: str, count: int, *, timeout: float = 60.0) -> None:
    """Until ``count`` workers answer a ping on ``broker_url``."""
    from pipeline.config import Settings
    from pipeline.runner_celery import make_app

    app = make_app(Settings.model_validate({"runner": {"broker_url": broker_url}}))
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        answers = app.control.inspect(timeout=0.5).ping() or {}
        if len(answers) >= count:
            return
    raise RuntimeError(f"{count} workers did not answer on {broker_url} within {timeout} s")


@pytest.fixture
def workers(tmp_path: Path) -> Iterator[list[Worker]]:
    """Workers a test starts with ``start_workers``; all stopped (SIGTERM, then SIGKILL) at the end."""
    started: list[Worker] = []
    yield started
    for w in started:  # all at once: each finishes what it runs
        if w.proc is not None and w.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(w.proc.pid, signal.SIGTERM)
    for w in started:
        w.stop()


def start_workers(
    started: list[Worker], config: Path, broker_url: str, *, count: int = 2, concurrency: int = 2, queues: str = ""
) -> list[Worker]:
    """``count`` `loa worker` processes for ``config``; returns when they all answer a ping."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("LOA_")}
    new = []
    for _ in range(count):
        w = Worker(
            config,
            queues or "loa-urgent,loa",
            concurrency,
            config.parent / "logs" / f"worker-{len(started)}.log",
            env,
        )
        w.start()
        started.append(w)
        new.append(w)
    wait_workers(broker_url, len([w for w in started if w.proc and w.proc.poll() is None]))
    return new
