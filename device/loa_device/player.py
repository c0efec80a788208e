"""Running the configured player (mpv, ffplay, aplay) on one file, interruptibly.

The player runs in its own process group; its pid is kept in ``<state>/player.pid`` so
that after a power cut or a SIGKILL of the agent a player left running is stopped at
start-up instead of playing over the next program (systemd's control group does the
same when the agent runs as its service).
"""

from __future__ import annotations

import contextlib
import logging
import os
import shlex
import signal
import subprocess
import time
from collections.abc import Callable, Sequence
from pathlib import Path

log = logging.getLogger(__name__)
POLL_S = 0.1
KNOWN_PLAYERS = frozenset({"mpv", "ffplay", "aplay", "cvlc", "vlc", "mpg123"})  # what a wrapper script may exec


def command(text: str) -> list[str]:
    argv = shlex.split(text)
    if not argv:
        raise ValueError("the player command is empty; give one such as 'mpv --no-video'")
    return argv


def _stop(proc: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=5)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def play(
    argv: Sequence[str],
    path: Path,
    *,
    pid_file: Path,
    timeout_s: float,
    should_stop: Callable[[], str | None],
    tick: Callable[[], None] = lambda: None,
    started: Callable[[], None] = lambda: None,
) -> tuple[bool, str | None]:
    """Play ``path``; (completed, why not). ``should_stop`` is asked every 0.1 s; a reason stops the player.

    ``started`` is called once the player runs (the agent flushes its journal then).
    """
    try:
        proc = subprocess.Popen(
            [*argv, str(path)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
    except FileNotFoundError:
        return False, f"player {argv[0]!r} not found"
    pid_file.write_text(f"{proc.pid}\n")
    begun = time.monotonic()
    started()
    try:
        while True:
            try:
                code = proc.wait(timeout=POLL_S)
                break
            except subprocess.TimeoutExpired:
                pass
            tick()
            reason = should_stop()
            if reason is None and time.monotonic() - begun > timeout_s:
                reason = f"the player did not finish within {timeout_s:.0f} s"
            if reason is not None:
                _stop(proc)
                return False, reason
    finally:
        with contextlib.suppress(FileNotFoundError):
            pid_file.unlink()
    if code != 0:
        return False, f"the player exited with {code}"
    return True, None


def stop_stale(pid_file: Path, argv: Sequence[str]) -> bool:
    """Stop a player a killed agent left running (only if it is that player); whether one was stopped."""
    try:
        pid = int(pid_file.read_text().strip())
    except (OSError, ValueError):
        return False
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        cmdline = []
    stopped = False
    name = os.path.basename(cmdline[0].decode(errors="replace")) if cmdline else ""
    if name and name in {os.path.basename(argv[0]), *KNOWN_PLAYERS}:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, signal.SIGKILL)
            stopped = True
            log.warning("stopped player %d left running by a previous run", pid)
    with contextlib.suppress(FileNotFoundError):
        pid_file.unlink()
    return stopped
