"""Emergency dispatch at province scale, cold: ``loa dispatch`` to N communes' endpoints.

One approved emergency bulletin (a flash-flood warning of about 1,900 characters of Vietnamese,
which the template says twice) targets every commune of a fresh deployment with one SFTP endpoint per commune
on the loopback sshd. Nothing is cached: the data directory, the segment store and the
endpoints' directories are new, so the run renders every segment (the shared ones and one
greeting per commune, since the template names the commune), signs a manifest per endpoint
and pushes. The measured time is the real command, ``loa --config … dispatch <id> --json``,
in a child process from start to exit; the signing key is made beforehand (one-time setup).
Every endpoint's ``emergency/<id>/`` is then checked with the deployment's public key.

Target: under 15 s for 99 communes, the first commune's endpoints complete under 5 s, in
every one of N runs (``measure_dispatches``: each run on a fresh deployment of its own).
Standalone (starts its own sshd)::

    python -m pipeline.bench.emergency --communes 99 --runs 10
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pipeline import lifecycle
from pipeline import manifest as mf
from pipeline.bench.errors import BenchError
from pipeline.bench.sshd import bench_dir
from pipeline.bench.workload import FULL, copy_voices, make_project
from pipeline.deployment import load_deployment
from pipeline.intake import parse_bulletin
from pipeline.models import Deployment
from pipeline.produce import today
from pipeline.signing import PublicKey, init_key, load_key, public_key
from pipeline.store import open_database

REPO = Path(__file__).resolve().parents[2]  # templates, voices and the CLI of this checkout

TARGET_S = 15.0
FIRST_TARGET_S = 5.0  # the first commune's endpoints all hold the warning

TITLE = "Cảnh báo lũ quét, sạt lở đất do mưa lớn"
SOURCE = "Ban Chỉ huy Phòng thủ dân sự tỉnh Lào Cai"
REFERENCE = "Công điện số 12/CĐ-BCH"
BODY = (
    "Theo Đài Khí tượng Thủy văn tỉnh Lào Cai, do ảnh hưởng của hoàn lưu bão số 3 kết hợp với không khí "
    "lạnh, từ 19h00 tối qua đến 6h00 sáng nay trên địa bàn tỉnh đã có mưa to đến rất to. Lượng mưa đo được "
    "tại Y Tý là 212 mm, tại Bản Khoang 186 mm, tại Tả Van 164 mm, tại Nậm Xé 158 mm. Trong 12 đến 24 giờ "
    "tới mưa còn tiếp diễn, lượng mưa phổ biến từ 80 đến 150 mm, có nơi trên 200 mm.\n\n"
    "Mực nước sông Hồng tại trạm Lào Cai đang lên nhanh, lúc 5h00 là 82,6 m, trên báo động 2 là 0,6 m. "
    "Trên suối Ngòi Đường, Ngòi Bo và các suối nhỏ ở vùng núi cao có nguy cơ rất cao xảy ra lũ quét. "
    "Cấp độ rủi ro thiên tai do lũ quét, sạt lở đất là cấp 3. Các hồ thủy điện Bắc Hà, Nậm Phàng đang xả lũ; "
    "bà con ở hạ du không xuống lòng sông, không neo đậu thuyền, bè.\n\n"
    "Ban Chỉ huy đề nghị bà con tuyệt đối không đi qua ngầm, tràn, cầu tạm và các đoạn suối đang có nước "
    "chảy xiết; không vớt củi, bắt cá trên sông suối khi có lũ; không ở lại trong nhà sát taluy, sườn đồi "
    "có vết nứt hoặc nhà ven suối. Các hộ ở vùng có nguy cơ cao phải đưa ngay người già, trẻ em, phụ nữ "
    "có thai đến nhà văn hóa thôn, trường học hoặc nhà người thân ở nơi an toàn trước 16h00 hôm nay.\n\n"
    "Bà con chủ động chuẩn bị đèn pin, lương thực, nước uống và thuốc men cho ít nhất 3 ngày; kê cao tài "
    "sản, giấy tờ quan trọng; đưa trâu, bò, lợn, gà lên nơi cao ráo, không thả rông gia súc ven suối. Học "
    "sinh các điểm trường ở thôn Sín Chải, Lao Chải và Séo Mý Tỷ nghỉ học hôm nay và ngày mai.\n\n"
    "Khi thấy nước suối đột ngột đục, có nhiều cây cỏ trôi, nghe tiếng động lạ từ trên núi hoặc thấy đất "
    "đá lăn xuống, bà con lập tức rời khỏi khu vực, chạy lên chỗ cao theo hướng vuông góc với dòng chảy và "
    "báo ngay cho trưởng thôn. Khi có người bị nạn, gọi số 112 hoặc đường dây nóng của Ban Chỉ huy Phòng "
    "thủ dân sự tỉnh 0214 3840 264. Lực lượng dân quân, công an xã trực 24/24 giờ tại trụ sở UBND xã. "
    "Bà con nghe đài truyền thanh xã để biết tin mới nhất về mưa lũ."
)
#: The dispatch command's entry point, ``loa`` (pyproject's ``pipeline.cli:main``), in a child.
_LOA = "import sys; from pipeline.cli import main; sys.exit(main())"
#: The same under cProfile, every thread profiled (the runner renders and pushes on a pool).
_LOA_PROFILED = """\
import cProfile, pstats, sys, threading
from pipeline.cli import main
profiles = [cProfile.Profile()]
def _thread(*_args):
    p = cProfile.Profile()
    profiles.append(p)
    p.enable()
threading.setprofile(_thread)
profiles[0].enable()
try:
    code = main(sys.argv[2:])
finally:
    profiles[0].disable()
    threading.setprofile(None)
    pstats.Stats(*profiles).dump_stats(sys.argv[1])
sys.exit(code)
"""


def emergency_text(day: dt.date) -> str:
    """The bulletin file: an emergency to every commune, valid ``day`` and the day after."""
    return (
        "+++\n"
        f'title = "{TITLE}"\n'
        'category = "flood"\n'
        'priority = "emergency"\n'
        f'source = "{SOURCE}"\n'
        f'reference = "{REFERENCE}"\n'
        f"valid_from = {day.isoformat()}\n"
        f"valid_until = {(day + dt.timedelta(days=1)).isoformat()}\n"
        'targets = ["all"]\n'
        "+++\n" + BODY + "\n"
    )


def measure_dispatch(
    work: Path,
    *,
    communes: int,
    server_toml: dict[str, str],
    repo: Path,
    voices: Path,
    profile: Path | None = None,
    after_night: bool = False,
) -> dict[str, Any]:
    """Dispatch one emergency to ``communes`` communes of a new deployment in ``work``; the figures.

    ``work`` must be new or empty: the project goes to ``work/project``, its data (database,
    segment store, outbox, key) to ``work/data`` and the endpoints to ``work/remote``.
    With ``profile``, the dispatch runs under cProfile (all threads) into that file, and
    its time is inflated accordingly. With ``after_night``, the day's programs are built
    first (not timed), as in production where the nightly job has filled the segment store:
    the commune greetings are then found made, and only the warning is rendered.
    """
    for sub in ("project", "data", "remote"):
        if (work / sub).exists() and any((work / sub).iterdir()):
            raise BenchError(f"{work / sub}: not empty; the emergency benchmark needs a fresh directory")
    size = dataclasses.replace(FULL, name="emergency", groups=min(FULL.groups, communes), endpoints_per_commune=1)
    project = make_project(work / "project", size, server_toml=server_toml, repo=repo, voices=voices, communes=communes)
    settings = project.settings
    deployment = load_deployment(settings.schedules_dir)
    pub = _signing_key(settings.signing_key_file)
    if settings.segments_dir.exists() and any(settings.segments_dir.iterdir()):
        raise BenchError(f"{settings.segments_dir}: the segment store is not empty; the run would not be cold")
    env = {k: v for k, v in os.environ.items() if not k.startswith("LOA_")}
    if after_night:  # the night's programs (no bulletins yet), before the emergency comes
        night = [sys.executable, "-c", _LOA, "--config", str(project.config), "build", "--date", str(today(settings))]
        built = subprocess.run(night, capture_output=True, text=True, check=False, cwd=project.root, env=env)
        if built.returncode != 0:
            raise BenchError(f"loa build ({project.config}) failed ({built.returncode}):\n{built.stderr[-2000:]}")
    bulletin_id = _store_emergency(settings.db_url, deployment, today(settings))

    args = ["--config", str(project.config), "dispatch", str(bulletin_id), "--json"]
    if profile is None:
        cmd = [sys.executable, "-c", _LOA, *args]
    else:
        cmd = [sys.executable, "-c", _LOA_PROFILED, str(profile), *args]
    started = time.monotonic()
    done = subprocess.run(cmd, capture_output=True, text=True, check=False, cwd=project.root, env=env)
    wall = time.monotonic() - started
    if done.returncode != 0:
        tail = "\n".join(done.stderr.strip().splitlines()[-15:])
        raise BenchError(f"loa dispatch {bulletin_id} ({project.config}) failed ({done.returncode}):\n{tail}")
    report: dict[str, Any] = json.loads(done.stdout)

    endpoints = deployment.endpoints()
    folder = f"emergency/{bulletin_id}"
    now = dt.datetime.now(dt.UTC)
    verified, errors = 0, []
    for e in endpoints:
        try:
            manifest = mf.verify_folder(Path(e.remote_dir or ""), folder, public_key=pub, now=now)
        except mf.ManifestError as exc:
            errors.append(str(exc))
            continue
        if manifest.emergency is None or manifest.emergency.bulletin != bulletin_id:
            errors.append(f"{e.name}: {folder}/manifest.json is not emergency {bulletin_id}")
            continue
        verified += 1
    sent = report["endpoints"]
    return {
        "communes": communes,
        "endpoints": len(endpoints),
        "bulletin": bulletin_id,
        "body_chars": len(BODY),
        "wall_s": round(wall, 2),
        "dispatch_s": report["seconds"],  # inside the command, without interpreter start and imports
        # inside the command: when the first and the last commune had the warning on every endpoint
        "first_commune_s": min((t for t in report.get("reached", {}).values() if t is not None), default=None),
        "last_commune_s": max((t for t in report.get("reached", {}).values() if t is not None), default=None),
        "target_s": TARGET_S,
        "verified": verified,
        "verify_errors": errors[:3],
        "failures": len(report["failures"]) + sum(d["status"] != "delivered" for d in sent),
        "bytes": sum(int(d["bytes_sent"]) for d in sent),
        "files": sum(int(d["files_sent"]) for d in sent),
        "segments_rendered": report["segments_rendered"],
        "profiled": profile is not None,
        "after_night": after_night,
    }


def summarize_runs(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """N dispatch runs (``measure_dispatch``'s figures): each run's times, the ranges, how many met the targets."""
    walls = [float(x["wall_s"]) for x in runs]
    firsts = [float(x["first_commune_s"]) for x in runs if x.get("first_commune_s") is not None]
    return {
        "n": len(runs),
        "target_s": TARGET_S,
        "first_target_s": FIRST_TARGET_S,
        "wall_s": walls,
        "first_commune_s": [x.get("first_commune_s") for x in runs],
        "last_commune_s": [x.get("last_commune_s") for x in runs],
        "wall_min_s": min(walls, default=None),
        "wall_max_s": max(walls, default=None),
        "first_min_s": min(firsts, default=None),
        "first_max_s": max(firsts, default=None),
        # a run with failures or unverified endpoints did not reach every commune: not under the target
        "under_target": sum(
            w < TARGET_S and x["failures"] == 0 and x["verified"] == x["endpoints"]
            for w, x in zip(walls, runs, strict=True)
        ),
        "first_under_target": sum(
            x.get("first_commune_s") is not None and float(x["first_commune_s"]) < FIRST_TARGET_S for x in runs
        ),
        "failures": sum(int(x["failures"]) for x in runs),
    }


def measure_dispatches(
    work: Path,
    runs: int,
    *,
    communes: int,
    server_toml: dict[str, str],
    repo: Path,
    voices: Path,
    say: Callable[[str], None] = lambda _m: None,
) -> dict[str, Any]:
    """``runs`` cold dispatches, each on a fresh deployment in ``work/run-<i>``: ``summarize_runs`` and every run."""
    done = []
    for i in range(runs):
        run = measure_dispatch(
            work / f"run-{i + 1}", communes=communes, server_toml=server_toml, repo=repo, voices=voices
        )
        say(f"  run {i + 1} of {runs}: {run['wall_s']} s, first commune {run['first_commune_s']} s")
        done.append(run)
        shutil.rmtree(work / f"run-{i + 1}" / "remote", ignore_errors=True)  # the pushed copies: space, not figures
    return {**summarize_runs(done), "runs": done}


def _store_emergency(db_url: str, deployment: Deployment, day: dt.date) -> int:
    """Store and approve the emergency bulletin; its id."""
    parsed = parse_bulletin(emergency_text(day), where="bench emergency bulletin", deployment=deployment)
    db = open_database(db_url)
    try:
        bench = lifecycle.system("bench")
        stored = lifecycle.submit(db, bench, parsed.bulletin).bulletin
        assert stored.id is not None
        lifecycle.approve(db, bench, stored.id)
        return stored.id
    finally:
        db.close()


def _signing_key(path: Path) -> PublicKey:
    """The deployment's public key, the key made first if there is none (setup, not dispatch)."""
    if not path.is_file():
        return init_key(path)
    return public_key(load_key(path).public_key())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m pipeline.bench.emergency",
        description=f"Cold emergency dispatch to N communes on a loopback sshd (target < {TARGET_S:g} s for 99).",
    )
    parser.add_argument("--communes", type=int, default=99)
    parser.add_argument("--keep", type=Path, help="build in this (new or empty) directory and keep it")
    parser.add_argument("--profile", type=Path, help="run the dispatch under cProfile into this file")
    parser.add_argument("--after-night", action="store_true", help="build the day's programs first (not timed)")
    parser.add_argument("--runs", type=int, default=1, help="this many cold runs, each on a fresh deployment")
    args = parser.parse_args(argv)
    if args.runs < 1:
        parser.error("--runs: at least 1")
    if args.runs > 1 and (args.profile or args.after_night):
        parser.error("--runs: only for the cold dispatch without --profile or --after-night")
    with bench_dir(args.keep, prefix="loa-bench-emergency-") as (tmp, server):
        if args.runs > 1:
            voices = copy_voices(REPO, tmp / "voices")
            many = measure_dispatches(
                tmp, args.runs, communes=args.communes, server_toml=server.toml(), repo=REPO, voices=voices
            )
            print(json.dumps(many, ensure_ascii=False))
            return 0
        result = measure_dispatch(
            tmp,
            communes=args.communes,
            server_toml=server.toml(),
            repo=REPO,
            voices=copy_voices(REPO, tmp / "voices"),
            profile=args.profile.resolve() if args.profile else None,
            after_night=args.after_night,
        )
    print(json.dumps(result, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
