"""The commune player's footprint (issue 31): idle RSS, CPU while idle, bytes written, one play.

Runs a loopback Loa server with a day's signed program, enrolls an agent with the real
``loa-device enroll``, and runs ``loa-device run`` on the machine's clock with its
default intervals (long-poll 25 s, pull and heartbeat every 5 minutes). After a warm-up
it samples the agent's RSS, its CPU time and what it wrote (``/proc/PID/io``: ``wchar``
is every byte passed to write(), ``write_bytes`` what reached the block device), then
lets one 30-second slot play and measures that too.

    PYTHONPATH=. .venv/bin/python benchmarks/device_footprint.py --idle 600 --python /tmp/devvenv/bin/python

``--python``: the interpreter of a virtualenv with only ``loa-device`` installed (the
agent alone); default: this one, with ``device/`` on its path.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from zoneinfo import ZoneInfo

from pipeline import devices
from pipeline.web.app import create_app
from tests.device_support import DEVICE_SRC, TIMED_PLAYER, Outbox, ServerCtl, Slot, device_project, wait_for
from tests.web_support import free_port

TZ = ZoneInfo("Asia/Ho_Chi_Minh")


def proc_stat(pid: int) -> dict[str, float]:
    status = Path(f"/proc/{pid}/status").read_text()
    rss_kb = next(int(line.split()[1]) for line in status.splitlines() if line.startswith("VmRSS:"))
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    cpu_s = (int(fields[11]) + int(fields[12])) / ticks
    io = dict(line.split(": ") for line in Path(f"/proc/{pid}/io").read_text().splitlines())
    return {"rss_mb": rss_kb / 1024, "cpu_s": cpu_s, "wchar": int(io["wchar"]), "write_bytes": int(io["write_bytes"])}


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--idle", type=float, default=600.0, help="seconds of idle measurement")
    ap.add_argument("--python", default=sys.executable)
    args = ap.parse_args()
    root = Path(tempfile.mkdtemp(prefix="loa-device-footprint-"))
    project = device_project(root / "p")
    audio = subprocess.run(
        ["ffmpeg", "-nostdin", "-v", "error", "-f", "lavfi", "-i", "sine=frequency=440:duration=30",
         "-c:a", "libmp3lame", "-b:a", "64k", "-f", "mp3", "-"],
        capture_output=True, check=True,
    ).stdout  # fmt: skip
    db = project.db()
    app = create_app(project.settings, deployment=project.deployment, db=db)
    server = ServerCtl(app, free_port())
    server.start()
    env = dict(os.environ)
    if args.python == sys.executable:
        env["PYTHONPATH"] = str(DEVICE_SRC)
    else:
        env.pop("PYTHONPATH", None)
    config = root / "device.json"
    code = devices.issue_enrollment_code(db, project.deployment, "y-ty-loa", by="bench")
    subprocess.run(
        [args.python, "-m", "loa_device", "--config", str(config), "enroll", "--server", server.url, "--code", code,
         "--allow-http", "--state-dir", str(root / "state"), "--player", TIMED_PLAYER],
        check=True, env=env, cwd=root,
    )  # fmt: skip
    now = dt.datetime.now(TZ)
    slot = now + dt.timedelta(seconds=args.idle + 90)
    Outbox(project).day(now.date(), [Slot("bench", slot, audio, 30000)], valid_until=now + dt.timedelta(days=1))
    log = (root / "agent.log").open("wb")
    agent = subprocess.Popen([args.python, "-m", "loa_device", "--config", str(config), "run"], env=env, cwd=root,
                             stdout=log, stderr=subprocess.STDOUT)  # fmt: skip
    try:
        wait_for(
            "the day's program", lambda: list((root / "state" / "manifests").glob("programs_*.json")), timeout_s=120
        )
        time.sleep(60)  # warm-up: first sync, heartbeat, imports settled
        start, t0 = proc_stat(agent.pid), time.monotonic()
        peak = start["rss_mb"]
        while time.monotonic() - t0 < args.idle:
            time.sleep(5)
            peak = max(peak, proc_stat(agent.pid)["rss_mb"])
        idle = proc_stat(agent.pid)
        span = time.monotonic() - t0
        wait_for("the slot's receipt", lambda: list((root / "state" / "receipts").rglob("*.json")),
                 timeout_s=args.idle + 300, every_s=1)  # fmt: skip
        time.sleep(40)  # the receipt sent, the state settled
        after = proc_stat(agent.pid)
    finally:
        agent.terminate()
        agent.wait(timeout=30)
        server.stop()
        db.close()
    result = {
        "python": args.python,
        "idle_s": round(span),
        "rss_mb_idle": round(idle["rss_mb"], 1),
        "rss_mb_peak_idle": round(peak, 1),
        "cpu_percent_idle": round(100 * (idle["cpu_s"] - start["cpu_s"]) / span, 3),
        "wchar_per_day_idle": round((idle["wchar"] - start["wchar"]) * 86400 / span),
        "write_bytes_per_day_idle": round((idle["write_bytes"] - start["write_bytes"]) * 86400 / span),
        "play_wchar": after["wchar"] - idle["wchar"],
        "play_write_bytes": after["write_bytes"] - idle["write_bytes"],
        "rss_mb_after_play": round(after["rss_mb"], 1),
    }
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
