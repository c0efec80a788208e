"""Load on the public side (issue 30): archive, feeds (with and without If-None-Match), the
public API and the consultation page, under Locust, alone and while a nightly build runs.

Each scenario is measured twice in the same run, against two `loa serve` processes of one
project: **cached** (what Loa does: answers built once per change of what is public) and
**baseline** (`LOA_PUBLISH__CACHE=false`: built on every request, the ETag compared after
building, as before issue 30). Reported per scenario: requests/s, p50/p95/p99 (ms),
errors, and the server's CPU time per request (from /proc: the cost, independent of how
fast the load generator is). The machine is shared: absolute figures are noisy; the ratios
between the two servers, measured minutes apart, are what count.

Run: .venv/bin/python benchmarks/public_load.py [--users 32] [--seconds 20] [--json out.json]
(`make bench-public`; not part of `make test`).
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import dataclasses
import datetime as dt
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx

from pipeline.bench.children import stop_child
from pipeline.bench.sshd import free_port

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
BIN = Path(sys.executable).parent
LOCUSTFILE = Path(__file__).resolve().parent / "locust_public.py"
CONSULTATION = "GY27"
PER_CLIENT = 5  # answers per client per hour in the bench's settings
EXTRA_COMMUNES = 8  # besides the test project's two
HISTORY_DAYS = 30  # days of archive before the built one (its manifests copied under earlier dates)

SCENARIOS = [  # (name, locust user class, paths key)
    ("feeds", "Feeds", "feeds"),
    ("feeds If-None-Match", "FeedsConditional", "feeds"),
    ("archive", "Archive", "archive"),
    ("public API", "PublicApi", "api"),
    ("consultation", "Consultation", ""),
]


def _project(root: Path) -> tuple[Path, dict[str, list[str]]]:
    """Ten communes, five public bulletins (one an emergency) built for yesterday, 30 more days of
    archive (yesterday's manifests copied under earlier dates: the same audio), a consultation."""
    from pipeline.config import load_settings
    from pipeline.intake import parse_bulletin
    from pipeline.nightly import build_day
    from pipeline.store import bulletins as bulletin_store
    from pipeline.voices import load_catalog, make_placeholders
    from tests.conftest import Project
    from tests.publish_support import bulletin_file, publish_project, store_bulletin

    voices = root / "voices-src"
    voices.mkdir()
    shutil.copy(ROOT / "voices" / "catalog.toml", voices / "catalog.toml")
    shutil.copy(ROOT / "voices" / "lexicon.vi.toml", voices / "lexicon.vi.toml")
    make_placeholders(load_catalog(voices), settings=load_settings(ROOT / "loa.toml", environ={}))
    project: Project = publish_project(root / "p", voices)
    with (project.root / "schedules" / "small.toml").open("a", encoding="utf-8") as f:
        for n in range(EXTRA_COMMUNES):
            f.write(
                f'\n[[commune]]\ncode = "0280{n}"\nname = "Xã thử {n}"\nlanguages = ["vi"]\n'
                f'  [[commune.endpoint]]\n  name = "thu-{n}"\n  transport = "local"\n  path = "endpoints/thu-{n}"\n'
            )
    with project.config.open("a", encoding="utf-8") as f:
        f.write(
            '[publish]\nbase_url = ""\n[web]\ntrusted_proxies = ["127.0.0.1/32"]\n'
            f"[consultation]\nanswers_per_client_per_hour = {PER_CLIENT}\nanswers_per_campaign_per_hour = 1000000\n"
        )
    settings, deployment = project.settings, project.deployment
    today = dt.datetime.now(settings.tz).date()
    yesterday, week = today - dt.timedelta(days=1), today + dt.timedelta(days=30)
    db = project.db()
    ids = [
        store_bulletin(
            db, deployment, bulletin_file(title=f"Bản tin số {n}: chính sách hỗ trợ", start=yesterday, end=week)
        )
        for n in range(1, 5)
    ]
    ids.append(
        store_bulletin(
            db,
            deployment,
            bulletin_file(
                title="Cảnh báo lũ quét",
                category="emergency",
                priority="emergency",
                start=yesterday,
                end=week,
                targets=["02641"],
                body="Mưa lớn, nguy cơ lũ quét tại các thôn ven suối. Không qua ngầm tràn.",
            ),
        )
    )
    text = _CAMPAIGN.format(code=CONSULTATION, start=yesterday, end=week, opens=yesterday, closes=week)
    [(saved, _)] = bulletin_store.save_bulletins(
        db, [parse_bulletin(text, where="c.md", deployment=deployment).bulletin]
    )
    assert saved.id is not None
    bulletin_store.approve(db, saved.id, by="bench")
    report = build_day(yesterday, settings=settings, deployment=deployment, db=db)
    assert not report.failures, report.failures
    db.close()
    _history(settings.outbox_dir, yesterday, HISTORY_DAYS)
    day = yesterday.isoformat()
    paths = {
        "feeds": ["/feeds/province.xml", "/feeds/02641.xml", "/feeds/02641/vi.xml", "/feeds/02800.xml"],
        "archive": [
            "/archive",
            "/archive/communes/02641",
            f"/archive/communes/02641/{day}",
            f"/archive/bulletins/{ids[0]}",
            "/archive?q=ho+tro",
        ],
        "api": ["/api/v1/public/aired", "/api/v1/public/emergencies", f"/api/v1/public/bulletins/{ids[0]}"],
    }
    return project.config, paths


def _history(outbox: Path, day: dt.date, days: int) -> None:
    """``day``'s manifests again under each of the ``days`` days before it (unsigned; the archive reads them)."""
    from pipeline import manifest as mf

    for folder in outbox.glob(f"*/programs/{day.isoformat()}"):
        for path in (folder / "manifests").glob("*.json"):
            m = mf.read(path)
            for k in range(1, days + 1):
                other = day - dt.timedelta(days=k)
                programs = tuple(
                    dataclasses.replace(
                        p, id=p.id.replace(day.isoformat(), other.isoformat()), start=p.start - dt.timedelta(days=k)
                    )
                    for p in m.programs
                )
                copy = dataclasses.replace(m, date=other, folder=f"programs/{other.isoformat()}", programs=programs)
                dst = folder.parent / other.isoformat() / "manifests" / path.name
                dst.parent.mkdir(parents=True, exist_ok=True)
                dst.write_bytes(copy.to_bytes())


def warm(url: str, paths: dict[str, list[str]]) -> None:
    """Every path once (the archive's MP3s are joined on first request), and each must answer 200."""
    with httpx.Client(base_url=url, timeout=300) as c:
        for path in [p for ps in paths.values() for p in ps] + [f"/y-kien/{CONSULTATION}"]:
            r = c.get(path)
            if r.status_code != 200:
                raise RuntimeError(f"{path}: HTTP {r.status_code}: {r.text[:300]}")


_CAMPAIGN = """+++
title = "Lấy ý kiến dự thảo {code}"
category = "policy"
priority = "routine"
source = "Sở Nông nghiệp và Môi trường"
valid_from = {start}
valid_until = {end}
targets = ["all"]
languages = ["vi"]
policy = "Hỗ trợ giống 2027"
stage = "draft"

[consultation]
code = "{code}"
opens = {opens}
closes = {closes}
agency = "Sở Nông nghiệp và Môi trường tỉnh Lào Cai"

[[consultation.question]]
text = "Bà con có đồng ý với mức hỗ trợ không?"
kind = "yesno"

[[consultation.question]]
text = "Cần giống nào nhất?"
kind = "choice"
choices = ["Lúa", "Ngô", "Lợn"]

[[consultation.question]]
text = "Ý kiến khác?"
kind = "text"
+++
Dự thảo hỗ trợ giống cây trồng, vật nuôi.
"""


@contextlib.contextmanager
def serving(config: Path, *, cached: bool) -> Iterator[tuple[str, int]]:
    """``loa serve`` in its own process; yields its URL and pid."""
    port = free_port()
    env = os.environ | {"LOA_PUBLISH__CACHE": "true" if cached else "false", "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(
        [str(BIN / "loa"), "--config", str(config), "serve", "--host", "127.0.0.1", "--port", str(port)],
        cwd=config.parent,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(url + "/archive", timeout=30).status_code == 200:
                    break
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"loa serve did not start: {proc.stderr.read() if proc.stderr else ''}")
            time.sleep(0.5)
        yield url, proc.pid
    finally:
        stop_child(proc, sig=signal.SIGINT, timeout_s=30)


@contextlib.contextmanager
def nightly_builds(config: Path) -> Iterator[list[float]]:
    """``loa nightly`` for one future date after another, in the background, until the block ends."""
    durations: list[float] = []
    stop = {"now": False}
    import threading

    def loop() -> None:
        day = dt.date.today() + dt.timedelta(days=2)
        while not stop["now"]:
            started = time.monotonic()
            subprocess.run(
                [str(BIN / "loa"), "--config", str(config), "nightly", "--date", day.isoformat()],
                cwd=config.parent,
                env=os.environ | {"PYTHONPATH": str(ROOT)},
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                check=False,
            )
            durations.append(time.monotonic() - started)
            day += dt.timedelta(days=1)

    thread = threading.Thread(target=loop, daemon=True)
    thread.start()
    time.sleep(5)  # the build is under way (rendering) before the load starts
    try:
        yield durations
    finally:
        stop["now"] = True
        thread.join(timeout=600)


def _cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run_locust(
    url: str, pid: int, user_class: str, paths: dict[str, list[str]], *, users: int, seconds: int, work: Path
) -> dict[str, Any]:
    prefix = work / f"locust-{user_class}-{time.monotonic_ns()}"
    answers = prefix.with_suffix(".answers.json")
    env = os.environ | {
        "LOA_BENCH_PATHS": json.dumps(paths),
        "LOA_BENCH_CONSULTATION": CONSULTATION,
        "LOA_BENCH_OUT": str(answers),
    }
    cpu0 = _cpu_s(pid)
    subprocess.run(
        [
            str(BIN / "locust"),
            "-f",
            str(LOCUSTFILE),
            "--headless",
            "--host",
            url,
            "-u",
            str(users),
            "-r",
            str(users),
            "-t",
            f"{seconds}s",
            "--stop-timeout",
            "30",
            "--csv",
            str(prefix),
            "--only-summary",
            "--loglevel",
            "ERROR",
            "--exit-code-on-error",
            "0",
            user_class,
        ],
        env=env,
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    cpu = _cpu_s(pid) - cpu0
    with open(f"{prefix}_stats.csv", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    by_name = {r["Name"]: r for r in rows}
    out: dict[str, Any] = {}
    total = by_name["Aggregated"]
    for name, r in by_name.items():
        if name in ("Aggregated", "feed (first)"):
            continue
        out[name] = {
            "requests": int(r["Request Count"]),
            "errors": int(r["Failure Count"]),
            "rps": float(r["Requests/s"]),
            "p50_ms": float(r["50%"]),
            "p95_ms": float(r["95%"]),
            "p99_ms": float(r["99%"]),
        }
    requests = int(total["Request Count"])
    out["_server_cpu_ms_per_request"] = round(1000 * cpu / max(requests, 1), 3)
    if answers.exists():
        out["_answers"] = json.loads(answers.read_text(encoding="utf-8"))
    return out


def stored_answers(config: Path) -> int:
    from pipeline.config import load_settings
    from pipeline.store import consultations as store
    from pipeline.store import open_database

    settings = load_settings(config, environ={})
    db = open_database(settings.db_url)
    try:
        return len(store.list_answers(db, store.get_campaign(db, CONSULTATION).id))
    finally:
        db.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--users", type=int, default=32)
    parser.add_argument("--seconds", type=int, default=20)
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--no-build-phase", action="store_true", help="only the idle phase")
    args = parser.parse_args()
    results: dict[str, Any] = {
        "when": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "users": args.users,
        "seconds": args.seconds,
        "cpus": os.cpu_count(),
        "loadavg_before": os.getloadavg(),
        "phases": {},
    }
    with tempfile.TemporaryDirectory(prefix="loa-public-load-") as tmp:
        work = Path(tmp)
        config, paths = _project(work)
        phases = ["idle"] if args.no_build_phase else ["idle", "nightly build running"]
        for phase in phases:
            results["phases"][phase] = {}
            builds = nightly_builds(config) if phase != "idle" else contextlib.nullcontext([])
            with builds as durations:
                for label, user_class, _ in SCENARIOS:
                    row: dict[str, Any] = {}
                    for mode, cached in (("baseline", False), ("cached", True)):
                        with serving(config, cached=cached) as (url, pid):
                            warm(url, paths)
                            before = stored_answers(config)
                            row[mode] = run_locust(
                                url, pid, user_class, paths, users=args.users, seconds=args.seconds, work=work
                            )
                            if user_class == "Consultation":
                                accepted = sum(a["accepted"] for a in row[mode]["_answers"].values())
                                row[mode]["_stored"] = stored_answers(config) - before
                                row[mode]["_accepted"] = accepted
                        print(f"{phase:24} {label:22} {mode:8} {_brief(row[mode])}", flush=True)
                    results["phases"][phase][label] = row
            if durations:
                results["phases"][phase]["_nightly_builds_s"] = [round(d, 1) for d in durations]
    results["loadavg_after"] = os.getloadavg()
    text = json.dumps(results, ensure_ascii=False, indent=1)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(text, encoding="utf-8")
    print(markdown(results))


def _brief(r: dict[str, Any]) -> str:
    parts = [
        f"{n}: {v['rps']:.0f}/s p50 {v['p50_ms']:.0f} p99 {v['p99_ms']:.0f} err {v['errors']}"
        for n, v in r.items()
        if not n.startswith("_")
    ]
    return "; ".join(parts) + f"; cpu {r['_server_cpu_ms_per_request']} ms/req"


def markdown(results: dict[str, Any]) -> str:
    lines = [
        "| phase | scenario | request | server | req/s | p50 ms | p95 ms | p99 ms | errors | server CPU ms/req |",
        "|---|---|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for phase, scenarios in results["phases"].items():
        for label, row in scenarios.items():
            if label.startswith("_"):
                continue
            for mode in ("baseline", "cached"):
                r = row[mode]
                for name, v in r.items():
                    if name.startswith("_"):
                        continue
                    lines.append(
                        f"| {phase} | {label} | {name} | {mode} | {v['rps']:.1f} | {v['p50_ms']:.0f} | "
                        f"{v['p95_ms']:.0f} | {v['p99_ms']:.0f} | {v['errors']} | {r['_server_cpu_ms_per_request']} |"
                    )
    return "\n".join(lines)


if __name__ == "__main__":
    main()
