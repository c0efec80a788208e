"""Upload throughput: Loa's SFTP transport against OpenSSH's own ``sftp`` client.

Starts a throw-away sshd on 127.0.0.1 (tests/sshd.py), uploads one file of random bytes
with each client a few times, and prints MB/s and the ratio. Both timings include
connecting and authenticating. Not a test: numbers depend on the machine.

    .venv/bin/python benchmarks/sftp_throughput.py [--mib 64] [--runs 3]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from pipeline.bench.sshd import SshServer  # noqa: E402
from pipeline.config import DeliverSettings  # noqa: E402
from pipeline.transports import open_transport  # noqa: E402


def loa_upload(server: SshServer, remote: Path, local: Path) -> float:
    start = time.perf_counter()
    with open_transport(server.endpoint(remote), settings=DeliverSettings()) as t:
        t.put_file(local, "media/bench.bin")
    return time.perf_counter() - start


def openssh_upload(server: SshServer, remote: Path, local: Path, work: Path, *extra: str) -> float:
    batch = work / "batch"
    (remote / "media").mkdir(exist_ok=True)
    batch.write_text(f"put {local} {remote / 'media' / 'bench.bin'}\n")
    cmd = [
        "sftp",
        "-q",
        "-b",
        str(batch),
        "-i",
        str(server.client_key),
        "-P",
        str(server.port),
        "-o",
        "StrictHostKeyChecking=yes",
        "-o",
        f"UserKnownHostsFile={server.known_hosts()}",
        "-o",
        "BatchMode=yes",
        "-o",
        "IdentitiesOnly=yes",
        *extra,
        f"{server.user}@{server.host}",
    ]
    start = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--mib", type=int, default=64, help="file size in MiB (default 64)")
    parser.add_argument("--runs", type=int, default=3, help="runs per client (default 3)")
    args = parser.parse_args()
    size = args.mib * 1024 * 1024
    with tempfile.TemporaryDirectory(prefix="loa-bench-") as tmp:
        work = Path(tmp)
        local = work / "payload.bin"
        with local.open("wb") as f:
            for _ in range(args.mib):
                f.write(os.urandom(1024 * 1024))
        server = SshServer(work / "sshd")
        server.start()
        try:
            # OpenSSH's default cipher is chacha20-poly1305; Loa prefers AES-GCM: compare both.
            results: dict[str, list[float]] = {
                "loa (paramiko)": [],
                "OpenSSH sftp": [],
                "OpenSSH aes-gcm": [],
            }
            for run in range(args.runs):
                for name in results:
                    remote = work / f"remote-{len(name)}-{run}"
                    remote.mkdir()
                    if name.startswith("loa"):
                        seconds = loa_upload(server, remote, local)
                    elif name.endswith("aes-gcm"):
                        seconds = openssh_upload(server, remote, local, work, "-c", "aes128-gcm@openssh.com")
                    else:
                        seconds = openssh_upload(server, remote, local, work)
                    sent = remote / "media" / "bench.bin"
                    assert sent.stat().st_size == size, f"{name}: incomplete upload"
                    sent.unlink()
                    results[name].append(size / seconds / 1e6)
                    print(f"run {run + 1} {name:15} {results[name][-1]:7.1f} MB/s", flush=True)
        finally:
            server.stop()
    print(f"\n{args.mib} MiB, {args.runs} runs, median (min–max):")
    for name, rates in results.items():
        print(f"  {name:15} {statistics.median(rates):7.1f} MB/s  ({min(rates):.1f}–{max(rates):.1f})")
    loa = statistics.median(results["loa (paramiko)"])
    for other in ("OpenSSH sftp", "OpenSSH aes-gcm"):
        print(f"  ratio loa / {other}: {loa / statistics.median(results[other]):.2f}×")


if __name__ == "__main__":
    main()
