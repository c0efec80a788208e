"""Child processes the benchmarks and the tests start (redis-server, ``loa serve``, ``loa scheduler``…)."""

from __future__ import annotations

import signal
import subprocess


def stop_child(
    proc: subprocess.Popen[bytes] | subprocess.Popen[str], *, sig: int = signal.SIGTERM, timeout_s: float
) -> None:
    """Ask ``proc`` to end with ``sig``, as a service manager does; SIGKILL once ``timeout_s`` has passed."""
    if proc.poll() is not None:
        return
    proc.send_signal(sig)
    try:
        proc.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
