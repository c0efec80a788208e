"""The streaming orchestrator: a night and an emergency as a dependency graph.

The streaming night is byte for byte the phased night (the Celery runner's twin of this
test is in tests/test_celery.py); an emergency's shared segments are made first and its
first commune is delivered before the last commune's own segments are made, as the
results arrive (``on_result``), not by the clock.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import shutil
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import pytest

from pipeline.flow import Arrivals, Waiting
from pipeline.produce import Producer
from pipeline.runner import InProcessRunner, OnResult, Then, WorkContext
from pipeline.units import PackageUnit, Unit, UnitResult
from tests.conftest import CliResult, Project, add_bulletin

BODY = "Thôn Tả Phìn họp lúc 7h30 ngày 02/12/2026 về gia hạn thẻ BHYT. Bà con mang theo sổ hộ khẩu."
DAY = dt.date(2026, 12, 1)


def digests(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file() and not p.name.endswith(".lock")
    }


def twin(project: Project, name: str, *, extra: str = "") -> Project:
    root = project.root.parent / f"{name}-{time.monotonic_ns()}"
    shutil.copytree(project.root, root)
    config = root / "loa.toml"
    config.write_text(config.read_text(encoding="utf-8") + extra, encoding="utf-8")
    return Project(root=root, config=config)


class Recorder:
    """A runner that notes every unit it is given and every result, in the order they came."""

    def __init__(self, inner: InProcessRunner) -> None:
        self.inner = inner
        self.units: list[Unit] = []
        self.results: list[UnitResult] = []

    def run(
        self,
        units: Sequence[Unit],
        *,
        parallel: int | None = None,
        urgent: bool = False,
        on_result: OnResult | None = None,
    ) -> list[UnitResult]:
        raise AssertionError("a streaming run does not go phase by phase")

    def stream(
        self,
        units: Sequence[Unit],
        *,
        then: Then,
        limits: Mapping[str, int] | None = None,
        urgent: bool = False,
        on_result: OnResult | None = None,
    ) -> list[UnitResult]:
        def more(result: UnitResult) -> Sequence[Unit]:
            follow = then(result)
            self.units.extend(follow)
            return follow

        self.units.extend(units)
        return self.inner.stream(units, then=more, limits=limits, urgent=urgent, on_result=self.results.append)


def producer(project: Project, runner: Recorder | None = None) -> Producer:
    return Producer(settings=project.settings, deployment=project.deployment, db=project.db(), runner=runner)


def test_waiting_lets_each_commune_go_when_its_own_keys_are_done() -> None:
    waiting = Waiting({"a": ["shared", "a1"], "b": ["shared", "b1", "b2"], "c": []})
    assert waiting.ready() == ["c"]
    assert waiting.order(["a1", "shared", "b1", "b2"]) == ["shared", "a1", "b1", "b2"]
    assert waiting.done("shared") == []
    assert waiting.done("a1") == ["a"]
    assert waiting.done("b2") == []
    assert waiting.done("b1") == ["b"]


def test_waiting_orders_keys_so_the_cheapest_most_urgent_commune_goes_first() -> None:
    # two groups: a and b air bulletins x and y, c and d air z; each has its own greeting
    needs = {"a": ["x", "y", "ga"], "b": ["x", "y", "gb"], "c": ["z", "gc"], "d": ["z", "gd"]}
    cost = {"x": 10, "y": 10, "z": 5}
    keys = ["x", "y", "z", "ga", "gb", "gc", "gd", "nobody"]
    # the cheaper group first, its shared bulletin before its greetings; then the other group
    assert Waiting(needs).order(keys, lambda k: cost.get(k, 1)) == ["z", "gc", "gd", "x", "y", "ga", "gb", "nobody"]
    # a more urgent commune goes first whatever it costs, and its group follows it
    urgent = Waiting(needs, {"a": 0, "b": 1, "c": 1, "d": 1})
    assert urgent.order(keys, lambda k: cost.get(k, 1)) == ["x", "y", "ga", "gb", "z", "gc", "gd", "nobody"]


def test_arrivals_name_the_commune_an_endpoint_failed_in() -> None:
    arrivals = Arrivals()
    arrivals.expect("a", 2)
    arrivals.expect("b", 1)
    arrivals.arrived("a", ok=True, at=1.0)
    arrivals.arrived("b", ok=False, at=1.5)
    arrivals.arrived("a", ok=True, at=2.0)
    assert [(r.commune, r.seconds) for r in arrivals.reached] == [("b", None), ("a", 2.0)]


@pytest.mark.audio
@pytest.mark.slow
def test_the_streaming_night_is_byte_identical_to_the_phased_night(small: Project) -> None:
    add_bulletin(small, BODY)
    WorkContext(small.settings).key  # noqa: B018  one signing key for both twins
    phased = twin(small, "phased", extra="[runner]\nstreaming = false\n")
    streamed = twin(small, "streamed")
    assert not phased.settings.runner.streaming and streamed.settings.runner.streaming

    _, phased_build, phased_sent, status = producer(phased).run_day(DAY, kind="nightly")
    assert status == "done"
    runner = Recorder(InProcessRunner(WorkContext(streamed.settings), workers=2))
    _, build, sent, status = producer(streamed, runner).run_day(DAY, kind="nightly")
    assert status == "done"

    for part in ("data/outbox", "endpoints", "data/cache/segments"):
        mine, theirs = digests(phased.root / part), digests(streamed.root / part)
        assert mine and mine == theirs, part
    assert build is not None and phased_build is not None
    assert sorted(p.id for p in build.programs) == sorted(p.id for p in phased_build.programs)
    assert [d.endpoint for d in sent] == [d.endpoint for d in phased_sent]
    assert {d.status for d in sent} == {"delivered"}
    # the report: when each commune's programs reached all its endpoints
    assert sorted(r.commune for r in build.reached) == ["02641", "02695"]
    assert all(r.seconds is not None and 0 < r.seconds <= build.seconds + 1 for r in build.reached)
    assert build.summary()["communes_reached"] == 2
    kinds = [r.kind for r in runner.results]
    assert kinds.count("deliver") == 3 and kinds.count("package") == 2


def more_communes(project: Project) -> None:
    """Two more Vietnamese-speaking communes, each with a local endpoint: four in all."""
    deployment = project.root / "schedules" / "small.toml"
    extra = "".join(
        f'\n[[commune]]\ncode = "{code}"\nname = "{name}"\nlanguages = ["vi"]\n\n'
        f'  [[commune.endpoint]]\n  name = "{slug}-loa"\n  transport = "local"\n  path = "endpoints/{slug}-loa"\n'
        for code, name, slug in (("02803", "Tả Van", "ta-van"), ("02809", "Mường Hoa", "muong-hoa"))
    )
    deployment.write_text(deployment.read_text(encoding="utf-8") + extra, encoding="utf-8")


@pytest.mark.audio
@pytest.mark.slow
def test_a_dispatch_delivers_its_first_commune_before_the_last_communes_segments_are_made(small: Project) -> None:
    more_communes(small)
    bid = add_bulletin(small, "Mưa lớn, nguy cơ lũ quét. Bà con không qua suối.", priority="emergency")
    today = dt.datetime.now(small.settings.tz).date()
    db = small.db()
    t = db.table("bulletins")
    with db.begin() as conn:
        conn.execute(t.update().where(t.c.id == bid).values(valid_from=today, valid_until=today))

    runner = Recorder(InProcessRunner(WorkContext(small.settings), workers=1))
    report = producer(small, runner).dispatch(bid)
    assert report.ok, report.failures

    packages = {u.commune.code: u for u in runner.units if isinstance(u, PackageUnit)}
    assert len(packages) == 4
    needs = {code: {s.key for p in u.programs for s in p.items} for code, u in packages.items()}
    last = list(packages)[-1]  # the deployment's last commune
    own = needs[last] - set().union(*(keys for code, keys in needs.items() if code != last))
    shared = set.intersection(*needs.values())
    assert own and shared

    order = [(r.kind, r.key) for r in runner.results]
    renders = [key for kind, key in order if kind == "render"]
    first_delivery = next(i for i, (kind, _) in enumerate(order) if kind == "deliver")
    last_own = max(i for i, (kind, key) in enumerate(order) if kind == "render" and key in own)
    assert first_delivery < last_own, "the first commune left before the last commune's own segments were made"
    assert set(renders[: len(shared)]) == shared, "the shared segments are made first, once"
    assert len(renders) == len(set(renders))
    assert sorted(r.commune for r in report.reached) == sorted(packages)
    assert all(r.seconds is not None for r in report.reached)


@pytest.mark.audio
@pytest.mark.slow
def test_the_nightly_report_says_when_each_commune_was_reached(
    small: Project, small_cli: Callable[..., CliResult]
) -> None:
    add_bulletin(small, BODY)
    result = small_cli("nightly", "--date", DAY.isoformat(), "--json")
    assert result.code == 0, result.err
    out = json.loads(result.out)
    assert sorted(out["reached"]) == ["02641", "02695"]
    assert all(isinstance(s, float) and s > 0 for s in out["reached"].values())
    saved = json.loads(Path(out["report"]).read_text(encoding="utf-8"))
    assert saved["reached"] == out["reached"]
    assert out["build"]["last_commune_reached_s"] == max(out["reached"].values())


def test_a_stream_renders_on_its_few_render_threads_whatever_else_runs(
    monkeypatch: pytest.MonkeyPatch, small: Project
) -> None:
    """Renders run on at most ``limits['render']`` threads even while many deliveries are in
    flight: each thread allocates from its own malloc arena, and renders spread over sixteen
    delivery threads held half a gigabyte more (docs/benchmarks.md, "Round three")."""
    import threading

    from pipeline import runner as runner_mod
    from pipeline.models import Endpoint
    from pipeline.units import DeliverUnit, RenderUnit

    threads: dict[str, set[str]] = {"render": set(), "deliver": set()}

    def fake(unit: Unit, ctx: WorkContext) -> UnitResult:
        kind = "render" if isinstance(unit, RenderUnit) else "deliver"
        threads[kind].add(threading.current_thread().name)
        time.sleep(0.02 if kind == "render" else 0.2)  # deliveries outlast renders: they pile up
        return UnitResult(unit.key, kind, unit.what, True)

    monkeypatch.setattr(runner_mod, "execute", fake)
    renders = [
        RenderUnit(key=f"k{i}", kind="pause", language="zxx", title="", where=f"unit {i}", ms=10) for i in range(40)
    ]

    def then(result: UnitResult) -> list[Unit]:
        if result.kind != "render":
            return []
        endpoint = Endpoint(name=f"e-{result.key}", commune="02641", transport="local")
        return [DeliverUnit(endpoint, ("programs/x",), "x", DAY)]

    results = InProcessRunner(WorkContext(small.settings)).stream(
        renders, then=then, limits={"render": 2, "deliver": 16}
    )
    assert len(results) == 80
    assert len(threads["deliver"]) > 2, "deliveries overlapped (the case this guards)"
    assert len(threads["render"]) <= 2, threads["render"]
