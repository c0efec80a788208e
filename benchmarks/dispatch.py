"""Emergency dispatch latency: from `loa dispatch` to the manifest in place on a loopback SFTP endpoint.

A two-minute emergency bulletin (about 1,900 characters of spoken Vietnamese), one commune
with a real OpenSSH sshd endpoint on 127.0.0.1, a fresh data directory (nothing cached).
Run: .venv/bin/python benchmarks/dispatch.py [--runs 3]
"""

from __future__ import annotations

import argparse
import datetime as dt
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from zoneinfo import ZoneInfo

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from pipeline.bench.sshd import SshServer  # noqa: E402

BODY = (
    "Do ảnh hưởng của hoàn lưu bão số 3, từ 19h00 ngày 30/11 đến 7h00 ngày 01/12/2026 lượng mưa tại Y Tý "
    "đạt 185 mm, tại Tả Van đạt 142 mm. Nguy cơ rất cao xảy ra lũ quét trên các suối nhỏ và sạt lở đất "
    "tại sườn dốc. Bà con tuyệt đối không đi qua ngầm, tràn, suối đang có nước lũ; không ở lại trong nhà "
    "gần taluy, sườn núi có vết nứt. Khi có sự cố, báo ngay cho trưởng thôn, UBND xã hoặc gọi 112.\n\n"
)


def one_run(work: Path, server: SshServer) -> float:
    remote = work / "device"
    remote.mkdir()
    shutil.copytree(ROOT / "voices", work / "voices")
    (work / "schedules").mkdir()
    (work / "schedules" / "d.toml").write_text(f"""
[defaults]
slots = [{{ name = "morning", start = "05:30", max_minutes = 30 }}]
[[commune]]
code = "02641"
name = "Y Tý"
languages = ["vi"]
  [[commune.endpoint]]
  name = "y-ty-1"
  transport = "sftp"
  host = "{server.host}"
  port = {server.port}
  user = "{server.user}"
  key_file = "{server.client_key}"
  host_key = "{server.host_key}"
  remote_dir = "{remote}"
""")
    (work / "loa.toml").write_text(f'data_dir = "data"\ntemplates_dir = "{ROOT / "templates"}"\n')
    today = dt.datetime.now(ZoneInfo("Asia/Ho_Chi_Minh")).date().isoformat()
    bulletin = work / "b.md"
    bulletin.write_text(
        f'+++\ntitle = "Cảnh báo lũ quét"\ncategory = "emergency"\npriority = "emergency"\n'
        f'source = "Ban Chỉ huy PCTT và TKCN tỉnh"\nvalid_from = {today}\nvalid_until = {today}\n'
        f'targets = ["all"]\n+++\n' + BODY * 3
    )
    loa = [str(ROOT / ".venv" / "bin" / "loa"), "--config", str(work / "loa.toml")]
    subprocess.run([*loa, "bulletin", "add", str(bulletin)], check=True, capture_output=True)
    subprocess.run([*loa, "bulletin", "approve", "1"], check=True, capture_output=True)
    start = time.monotonic()
    done = subprocess.run([*loa, "dispatch", "1"], capture_output=True, text=True)
    elapsed = time.monotonic() - start
    if done.returncode != 0:
        raise SystemExit(f"loa dispatch failed: {done.stderr}")
    assert (remote / "emergency" / "1" / "manifest.json").is_file()
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        server = SshServer(Path(tmp) / "sshd")
        server.start()
        try:
            times = []
            for i in range(args.runs):
                work = Path(tmp) / f"run{i}"
                work.mkdir()
                times.append(one_run(work, server))
        finally:
            server.stop()
    print(f"dispatch of a two-minute emergency bulletin to a loopback SFTP endpoint, {args.runs} cold runs:")
    print(f"  median {statistics.median(times):.1f} s, min {min(times):.1f} s, max {max(times):.1f} s (target < 30 s)")


if __name__ == "__main__":
    main()
