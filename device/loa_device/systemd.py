"""systemd's notify protocol (READY, WATCHDOG, STATUS) over its datagram socket; nothing to install."""

from __future__ import annotations

import os
import socket


def notify(message: str) -> bool:
    """Send ``message`` ("READY=1", "WATCHDOG=1", "STATUS=…") to systemd; False when not under systemd."""
    address = os.environ.get("NOTIFY_SOCKET")
    if not address:
        return False
    if address.startswith("@"):
        address = "\0" + address[1:]
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        try:
            sock.sendto(message.encode("utf-8"), address)
        except OSError:
            return False
    return True


def watchdog_s() -> float | None:
    """The watchdog interval systemd set (``WatchdogSec=``), in seconds, if it watches this process."""
    usec = os.environ.get("WATCHDOG_USEC")
    pid = os.environ.get("WATCHDOG_PID")
    if not usec or (pid and pid != str(os.getpid())):
        return None
    try:
        return int(usec) / 1e6
    except ValueError:
        return None
