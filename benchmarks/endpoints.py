"""Many small deliveries: endpoints served per second with the default parallelism.

200 endpoints (one loopback OpenSSH sshd, one remote directory each), each receiving a small
program (3 media files of 16–48 KiB, a playlist and the manifest), pushed with
`deliver.parallel` = 16 (the default). Then the same push again, which sends nothing.
Run: .venv/bin/python benchmarks/endpoints.py [--endpoints 200]
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import hashlib
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from pipeline.bench.sshd import SshServer  # noqa: E402
from pipeline.config import load_settings  # noqa: E402
from pipeline.deliver import push_folders  # noqa: E402
from pipeline.models import Commune, Program, Segment, Slot  # noqa: E402
from pipeline.package import package_programs  # noqa: E402

DAY = dt.date(2026, 12, 1)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--endpoints", type=int, default=200)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        (work / "loa.toml").write_text('data_dir = "data"\n')
        settings = load_settings(work / "loa.toml", environ={})
        server = SshServer(work / "sshd")
        server.start()
        try:
            segs = []
            for i, size in enumerate((16, 32, 48)):
                path = work / f"s{i}.mp3"
                path.write_bytes(os.urandom(size * 1024))
                digest = hashlib.sha256(path.read_bytes()).hexdigest()
                segs.append(Segment(digest, path, 1000, "speech", "vi", f"s{i}", size * 1024, digest))
            targets = []
            for n in range(args.endpoints):
                remote = work / "devices" / f"d{n}"
                remote.mkdir(parents=True)
                ep = dataclasses.replace(server.endpoint(remote, name=f"ep{n}"), commune=f"{n:05d}")
                commune = Commune(f"{n:05d}", f"Xã {n}", None, ("vi",), (Slot("morning", dt.time(5, 30), 30),), (ep,))
                start = dt.datetime(2026, 12, 1, 5, 30, tzinfo=settings.tz)
                program = Program(
                    f"{n}/{DAY}/morning", commune.code, DAY, "morning", start, "routine", DAY, tuple(segs)
                )
                package_programs(commune, [program], folder=f"programs/{DAY}", settings=settings)
                targets.append((ep, [f"programs/{DAY}"]))
            results = []
            for label in ("first push", "second push (nothing to send)"):
                started = time.monotonic()
                deliveries = push_folders(targets, label=str(DAY), settings=settings, today=DAY)
                seconds = time.monotonic() - started
                ok = sum(d.status == "delivered" for d in deliveries)
                sent = sum(d.bytes_sent for d in deliveries)
                results.append((label, seconds, ok, sent))
        finally:
            server.stop()
    print(f"{args.endpoints} endpoints on one loopback sshd, parallel {settings.deliver.parallel}:")
    for label, seconds, ok, sent in results:
        print(f"  {label:31} {seconds:6.1f} s  {ok / seconds:6.1f} endpoints/s  {ok} delivered, {sent} bytes")


if __name__ == "__main__":
    main()
