"""Weak links: endpoints in network namespaces behind lossy, slow or dead links.

Every endpoint is a real sshd in its own network namespace (``tests/netns.py``); the
faults are made by the kernel: nftables drops packets at random, ``tc tbf`` limits the
rate, a rule dropping everything plays a dead radio link. The push goes through
``pipeline.deliver.push_folders``, the code the nightly job runs. Skipped, with the
reason, where network namespaces cannot be made (not root, no nft/tc).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
import logging
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from pipeline.config import DeliverSettings, Settings
from pipeline.models import Commune, Delivery, Endpoint, Segment, Slot
from pipeline.produce import push_folders
from pipeline.transports import is_temp_name
from tests.conftest import Project
from tests.netns import Lab, Site, netns_unavailable
from tests.test_deliver import build_outbox, make_segment

pytestmark = [pytest.mark.faults, pytest.mark.slow, pytest.mark.sshd]

log = logging.getLogger(__name__)

DAY = dt.date(2026, 12, 1)
KIB = 1024
LOSS_PERCENT = 5
RATE_KBIT = 256
#: What each of the 20 endpoints suffers. Reachable: "lossy" (5 % loss each way and
#: 256 kbit/s), "slow" (256 kbit/s), "clean". Down: "refused" (no sshd: connection
#: refused), "dead" (every packet dropped: timeouts), "unplugged" (veth down: no route).
KINDS = ["lossy"] * 13 + ["slow"] * 2 + ["clean"] + ["refused"] * 2 + ["dead", "unplugged"]
#: What the delivery report must say for each kind of dead endpoint.
DOWN = {"refused": "connection refused", "dead": "timed out", "unplugged": "no route to host"}


def weak_settings(settings: Settings, **changes: float) -> Settings:
    deliver = DeliverSettings(
        parallel=len(KINDS),
        retries=6,
        backoff_s=0.2,
        backoff_max_s=1.0,
        connect_timeout_s=3.0,
        op_timeout_s=5.0,
        keepalive_s=0,
    ).model_copy(update=changes)
    return settings.model_copy(update={"deliver": deliver})


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[Lab]:
    reason = netns_unavailable()
    if reason:
        pytest.skip(reason)
    with Lab(tmp_path / "lab") as lab:
        yield lab


def commune_for(endpoint: Endpoint) -> Commune:
    return Commune(
        endpoint.commune, f"Xã {endpoint.commune}", None, ("vi",), (Slot("morning", dt.time(5, 30), 30),), (endpoint,)
    )


def endpoint_at(site: Site, kind: str) -> Endpoint:
    ep = site.server().endpoint(site.remote, name=f"xa-{site.index:02d}-{kind}")
    return dataclasses.replace(ep, commune=f"9{site.index:04d}")


def files_under(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file() or p.is_symlink())


def check_complete(remote: Path, outbox: Path) -> int:
    """The endpoint holds the outbox's manifest and every file in it, whole; temp files left."""
    [own] = (outbox / f"programs/{DAY}/manifests").glob("*.json")  # one endpoint per commune here
    manifest_bytes = own.read_bytes()
    assert (remote / f"programs/{DAY}/manifest.json").read_bytes() == manifest_bytes
    assert (remote / f"programs/{DAY}/manifest.json.sig").read_bytes() == own.with_suffix(".json.sig").read_bytes()
    listed = {f"programs/{DAY}/manifest.json", f"programs/{DAY}/manifest.json.sig"}
    for f in json.loads(manifest_bytes)["files"]:
        data = (remote / f["path"]).read_bytes()
        assert (len(data), hashlib.sha256(data).hexdigest()) == (f["bytes"], f["sha256"]), f["path"]
        listed.add(f["path"])
    temps = 0
    for p in files_under(remote):
        rel = p.relative_to(remote).as_posix()
        if is_temp_name(p.name):
            temps += 1  # never under a final name; cleaned up by the next connection
        else:
            assert rel in listed, f"{remote}: unexpected file {rel}"
    return temps


@pytest.mark.timeout(240)
def test_twenty_weak_endpoints_get_whole_programs_and_down_ones_are_named(
    project: Project, tmp_path: Path, lab: Lab
) -> None:
    settings = weak_settings(project.settings)
    sizes = (24 * KIB, 36 * KIB, 48 * KIB)
    segs: list[Segment] = [make_segment(tmp_path, f"w{i}", size) for i, size in enumerate(sizes)]
    sites = lab.add(len(KINDS))
    kinds = {site.index: kind for site, kind in zip(sites, KINDS, strict=True)}
    endpoints = {site.index: endpoint_at(site, kinds[site.index]) for site in sites}
    for site in sites:
        kind = kinds[site.index]
        build_outbox(settings, commune_for(endpoints[site.index]), DAY, segs)
        if kind != "refused":
            site.start_sshd()
        if kind == "lossy":
            site.set_loss(LOSS_PERCENT)
        if kind in ("lossy", "slow"):
            site.shape(RATE_KBIT)
        if kind == "dead":
            site.blackhole()
        if kind == "unplugged":
            site.link_down()

    started = time.monotonic()
    results = push(settings, list(endpoints.values()))
    elapsed = time.monotonic() - started

    for site in sites:
        kind, d = kinds[site.index], results[endpoints[site.index].name]
        if kind in DOWN:
            assert d.status == "failed", d
            assert d.error is not None and d.error.startswith(f"{d.endpoint}: "), d.error
            assert DOWN[kind] in d.error.lower() and "gave up after" in d.error, d.error
            assert d.attempts == settings.deliver.retries + 1  # transient: every retry was used
            assert files_under(site.remote) == []  # nothing at all, so nothing partial
        else:
            assert (d.status, d.error) == ("delivered", None), d
            temps = check_complete(site.remote, settings.outbox_dir / d.commune)
            assert temps == 0, f"{d.endpoint}: {temps} temporary files left"

    def program_bytes_of(commune: str) -> int:  # media, playlist, and that endpoint's own manifest and signature
        return sum(f.stat().st_size for f in files_under(settings.outbox_dir / commune))

    program_bytes = program_bytes_of("90000")
    dropped = {s.index: s.dropped() for s in sites if kinds[s.index] == "lossy"}
    assert sum(dropped.values()) > 0, "the loss rules dropped nothing: the test did not test loss"
    for site in sites:  # tbf really limits the rate: 110 KiB cannot arrive at veth speed
        d = results[endpoints[site.index].name]
        if kinds[site.index] in ("lossy", "slow"):
            assert d.bytes_sent / d.seconds < 1.5 * RATE_KBIT * 1000 / 8, d
    assert elapsed < 90, f"the push took {elapsed:.1f} s"
    report("first push", results, kinds, elapsed, program_bytes, dropped)

    # The links come back (sshd started, link plugged, radio clear); the faults stay on
    # the others. A second push completes the late ones and sends nothing to the rest.
    for site in sites:
        if kinds[site.index] == "refused":
            site.start_sshd()
        elif kinds[site.index] in ("dead", "unplugged"):
            site.clear_faults()
    started = time.monotonic()
    again = push(settings, list(endpoints.values()))
    elapsed = time.monotonic() - started
    for site in sites:
        kind, d = kinds[site.index], again[endpoints[site.index].name]
        assert (d.status, d.error) == ("delivered", None), d
        if kind in DOWN:
            assert d.files_sent == 6 and d.bytes_sent == program_bytes_of(d.commune)  # media, playlist, sig, manifest
            assert check_complete(site.remote, settings.outbox_dir / d.commune) == 0
        else:
            assert (d.files_sent, d.bytes_sent) == (0, 0), d
    report("second push", again, kinds, elapsed, program_bytes, {s: lab.sites[s].dropped() for s in dropped})


@pytest.mark.timeout(120)
def test_a_link_that_fades_mid_file_is_resumed_on_a_new_connection(project: Project, tmp_path: Path, lab: Lab) -> None:
    settings = weak_settings(project.settings, op_timeout_s=3.0)
    [site] = lab.add(1)
    ep = endpoint_at(site, "fading")
    segs = [make_segment(tmp_path, f"f{i}", 96 * KIB) for i in range(4)]
    build_outbox(settings, commune_for(ep), DAY, segs)
    site.start_sshd()
    site.shape(512)  # 64 KB/s: each file takes 1.5 s, so the fade falls inside one
    faded = threading.Event()
    lost: list[int] = []

    def fade_when_a_file_is_half_sent() -> None:
        deadline = time.monotonic() + 30
        media = site.remote / "media"
        while time.monotonic() < deadline:
            part = [p for p in media.glob(".*") if is_temp_name(p.name)] if media.is_dir() else []
            if any(p.stat().st_size > 0 for p in part if p.exists()):
                site.blackhole()  # the radio fades: every packet lost, no error, no reset
                faded.set()
                time.sleep(settings.deliver.op_timeout_s + 2)
                lost.append(site.dropped())
                site.clear_faults()
                return
            time.sleep(0.01)

    with ThreadPoolExecutor(1) as pool:
        fader = pool.submit(fade_when_a_file_is_half_sent)
        started = time.monotonic()
        [d] = push(settings, [ep]).values()
        elapsed = time.monotonic() - started
        fader.result()
    assert faded.is_set(), "no upload was caught in flight; the fade was never applied"
    assert (d.status, d.error) == ("delivered", None), d
    assert d.attempts >= 2, d  # the stalled connection was given up and a new one made
    assert check_complete(site.remote, settings.outbox_dir / ep.commune) == 0  # the cut temp removed
    assert lost[0] > 0  # packets really were lost during the fade
    log.info(
        "fading link: %d attempts, %d files, %d bytes, %.1f s (fade %.0f s, %d packets dropped)",
        d.attempts,
        d.files_sent,
        d.bytes_sent,
        elapsed,
        settings.deliver.op_timeout_s + 2,
        lost[0],
    )


def push(settings: Settings, endpoints: list[Endpoint]) -> dict[str, Delivery]:
    done = push_folders([(e, [f"programs/{DAY}"]) for e in endpoints], label=str(DAY), settings=settings, today=DAY)
    return {d.endpoint: d for d in done}


def report(
    what: str,
    results: dict[str, Delivery],
    kinds: dict[int, str],
    elapsed: float,
    program_bytes: int,
    dropped: dict[int, int],
) -> None:
    """Log the figures docs/reliability.md quotes (run with --log-cli-level=INFO)."""
    log.info("%s: %d endpoints, %.1f s wall, program %d bytes", what, len(results), elapsed, program_bytes)
    for (index, kind), d in zip(kinds.items(), results.values(), strict=True):
        log.info(
            "  %-16s %-9s %-9s attempts %d files %d bytes %6d %5.1f s dropped %s %s",
            d.endpoint,
            kind,
            d.status,
            d.attempts,
            d.files_sent,
            d.bytes_sent,
            d.seconds,
            dropped.get(index, "-"),
            (d.error or "")[:110],
        )
