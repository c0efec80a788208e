"""The outbound guard (pipeline/outbound.py): decided on the resolved address, before connecting.

Every listener here is on loopback; host names are answered by a fake of the system resolver
(``socket.getaddrinfo``). A safety net (``no_outside``) makes any connection to an address
outside 127.0.0.0/8 and ::1 fail in the test process itself, and records it: even with the
guard removed, no packet leaves the machine; the test then fails on the record.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import socket
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr

from pipeline import outbound
from pipeline.broadcast.cap_import import fetch_alert
from pipeline.config import FptSettings, OutboundSettings, Settings, WebhookSettings
from pipeline.errors import OutboundRefused, RenderError, UsageError
from pipeline.publish.webhooks import deliver_webhooks
from pipeline.store import webhooks as webhook_store
from pipeline.store.db import open_database
from pipeline.tts.fpt import FptEngine
from tests.fake_http import FakeHttp

DEFAULT = OutboundSettings()
LOOPBACK = OutboundSettings(allow_loopback=True)


# --- the test harness: a resolver fake and a safety net (listeners: tests/fake_http.py) ---


@pytest.fixture
def no_outside(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """Connections attempted to an address outside loopback (refused here, in the process)."""
    attempts: list[Any] = []
    real_connect = socket.socket.connect

    def connect(self: socket.socket, address: Any) -> None:
        host = address[0] if isinstance(address, tuple) else None
        if host is not None and not ipaddress.ip_address(host.split("%")[0]).is_loopback:
            attempts.append(address)
            raise ConnectionRefusedError(f"test safety net: no packet to {host}")
        real_connect(self, address)

    monkeypatch.setattr(socket.socket, "connect", connect)
    return attempts


@pytest.fixture
def names(monkeypatch: pytest.MonkeyPatch, no_outside: list[Any]) -> dict[str, list[str]]:
    """A resolver fake: ``names["host.example"] = ["addr", …]`` (each lookup takes the next list
    element when it holds several lists, see ``rebinding``); numeric hosts resolve as themselves."""
    table: dict[str, list[str]] = {}
    real = socket.getaddrinfo

    def getaddrinfo(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        if isinstance(host, bytes):
            host = host.decode()
        if host in table:
            answers = table[host]
            addr = answers.pop(0) if len(answers) > 1 else answers[0]
            family = socket.AF_INET6 if ":" in addr else socket.AF_INET
            sockaddr = (addr, int(port), 0, 0) if family == socket.AF_INET6 else (addr, int(port))
            return [(family, socket.SOCK_STREAM, 6, "", sockaddr)]
        try:
            ipaddress.ip_address(str(host))
        except ValueError:
            raise socket.gaierror(socket.EAI_NONAME, f"test resolver: unknown name {host}") from None
        return real(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    return table


# --- the decision ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("address", "kind"),
    [
        ("127.0.0.1", "loopback"),
        ("::1", "loopback"),
        ("169.254.169.254", "link-local"),
        ("fe80::1", "link-local"),
        ("10.20.1.15", "private"),
        ("172.16.0.1", "private"),
        ("192.168.1.1", "private"),
        ("fd00::1", "private"),
        ("100.64.0.1", "not public"),
        ("224.0.0.251", "multicast"),
        ("ff02::1", "multicast"),
        ("240.0.0.1", "reserved"),
        ("0.0.0.0", "unspecified"),
        ("::ffff:127.0.0.1", "loopback (IPv4 inside IPv6)"),
        ("::ffff:169.254.169.254", "link-local (IPv4 inside IPv6)"),
        ("2002:a00:1::", "private (IPv4 inside IPv6)"),
    ],
)
def test_addresses_that_are_refused_by_default(address: str, kind: str) -> None:
    assert outbound.refusal(ipaddress.ip_address(address), DEFAULT) == kind


def test_public_addresses_pass_and_settings_allow_loopback_or_a_network() -> None:
    ip = ipaddress.ip_address
    assert outbound.refusal(ip("8.8.8.8"), DEFAULT) is None  # decided only; nothing is sent
    assert outbound.refusal(ip("2001:4860:4860::8888"), DEFAULT) is None
    assert outbound.refusal(ip("127.0.0.1"), LOOPBACK) is None
    assert outbound.refusal(ip("10.20.1.15"), LOOPBACK) == "private"
    lan = OutboundSettings(allow_networks=(ipaddress.ip_network("10.20.0.0/16"),))
    assert outbound.refusal(ip("10.20.1.15"), lan) is None
    assert outbound.refusal(ip("10.21.0.1"), lan) == "private"
    assert outbound.refusal(ip("127.0.0.1"), lan) == "loopback"


def test_a_loopback_listener_is_refused_by_default_and_reached_when_allowed(fake_http: FakeHttp) -> None:
    url = f"http://127.0.0.1:{fake_http.port}/hook"
    with outbound.client(DEFAULT, timeout_s=5) as http, pytest.raises(OutboundRefused, match="loopback"):
        http.post(url, content=b"{}")
    assert fake_http.paths == []
    with outbound.client(LOOPBACK, timeout_s=5) as http:
        assert http.post(url, content=b"{}").status_code == 200
    assert fake_http.paths == ["/hook"]


def test_a_name_resolving_to_the_metadata_address_is_refused_before_connecting(
    names: dict[str, list[str]], no_outside: list[Any]
) -> None:
    names["hooks.example"] = ["169.254.169.254"]
    with outbound.client(LOOPBACK, timeout_s=5) as http, pytest.raises(OutboundRefused) as info:
        http.post("http://hooks.example/loa", content=b"{}")
    assert "hooks.example (169.254.169.254): a link-local address" in str(info.value)
    assert info.value.code == "outbound.refused" and info.value.fields["kind"] == "link-local"
    assert no_outside == []  # refused before any connection was attempted


def test_a_name_with_one_refused_address_among_others_is_refused(
    names: dict[str, list[str]], fake_http: FakeHttp
) -> None:
    def two(host: Any, port: Any, *a: Any, **k: Any) -> Any:
        return [
            (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", int(port))),
            (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("10.0.0.7", int(port))),
        ]

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(socket, "getaddrinfo", two)
        with outbound.client(LOOPBACK, timeout_s=5) as http, pytest.raises(OutboundRefused, match="private"):
            http.get(f"http://both.example:{fake_http.port}/")
    assert fake_http.paths == []


def test_the_connection_goes_to_the_address_that_was_checked(names: dict[str, list[str]], fake_http: FakeHttp) -> None:
    """DNS rebinding: the first answer is allowed, every later one is not; the checked one is used."""
    other = FakeHttp(host="127.0.0.2", port=fake_http.port)  # where a second lookup would lead
    try:
        names["rebind.example"] = ["127.0.0.1", "127.0.0.2"]  # the first lookup, then every later one
        policy = OutboundSettings(allow_networks=(ipaddress.ip_network("127.0.0.1/32"),))
        with outbound.client(policy, timeout_s=5) as http:
            answer = http.get(f"http://rebind.example:{fake_http.port}/x")
        assert answer.status_code == 200
        assert fake_http.paths == ["/x"] and fake_http.hosts == [f"rebind.example:{fake_http.port}"]
        assert other.paths == []
    finally:
        other.close()


def test_a_redirect_to_a_refused_address_is_not_followed(fake_http: FakeHttp) -> None:
    """The vendor adapters follow redirects; each hop is a connection checked like the first."""
    inner = FakeHttp(host="127.0.0.2")
    try:
        outer = FakeHttp(
            lambda r: (302, {"Location": f"http://127.0.0.2:{inner.port}/secret"}, b""),
        )
        try:
            policy = OutboundSettings(allow_networks=(ipaddress.ip_network("127.0.0.1/32"),))
            engine = FptEngine(
                FptSettings(base_url=f"http://127.0.0.1:{outer.port}/tts", retries=0, timeout_s=5),
                environ={"LOA_FPT_API_KEY": "k"},
                outbound=policy,
            )
            with pytest.raises(RenderError, match=r"127\.0\.0\.2: a loopback address"):
                engine.synthesize("Kính thưa bà con.", Path("/nonexistent/out.mp3"))
            assert outer.paths == ["/tts"]
            assert inner.paths == []
        finally:
            outer.close()
    finally:
        inner.close()


def test_vendor_tts_at_a_private_address_is_refused_without_a_packet(
    names: dict[str, list[str]], no_outside: list[Any]
) -> None:
    names["tts.internal.example"] = ["10.1.2.3"]
    engine = FptEngine(
        FptSettings(base_url="http://tts.internal.example/hmi/tts/v5", retries=0),
        environ={"LOA_FPT_API_KEY": "k"},
    )
    with pytest.raises(RenderError, match="private address"):
        engine.synthesize("Kính thưa bà con.", Path("/nonexistent/out.mp3"))
    assert no_outside == []


# --- webhooks ----------------------------------------------------------------------------


def _hook_settings(tmp_path: Path, url: str, policy: OutboundSettings) -> Settings:
    hook = WebhookSettings(url=url, secret_env="HOOK", backoff_s=0)
    return Settings(data_dir=tmp_path, webhook=(hook,), outbound=policy)


def test_a_webhook_to_the_metadata_address_is_not_posted_and_fails_at_once(
    tmp_path: Path, names: dict[str, list[str]], no_outside: list[Any]
) -> None:
    names["portal.example"] = ["169.254.169.254"]
    settings = _hook_settings(tmp_path, "http://portal.example/loa", LOOPBACK)
    db = open_database(settings.db_url)
    webhook_store.add_event(db, "bulletin.approved", {"bulletin": {"id": 1}}, event_id="e1")
    report = deliver_webhooks(db, settings, environ={"HOOK": "s3cret"})
    assert (report.delivered, report.retrying, report.failed) == (0, 0, 1)
    assert "link-local" in report.errors[0]
    assert no_outside == []
    again = deliver_webhooks(db, settings, environ={"HOOK": "s3cret"})  # refused for good: not retried
    assert (again.delivered, again.retrying, again.failed) == (0, 0, 0)


def test_a_webhook_on_loopback_is_posted_only_with_allow_loopback(tmp_path: Path, fake_http: FakeHttp) -> None:
    url = f"http://127.0.0.1:{fake_http.port}/loa"
    refused = _hook_settings(tmp_path / "default", url, DEFAULT)
    refused.data_dir.mkdir()
    db = open_database(refused.db_url)
    webhook_store.add_event(db, "bulletin.approved", {"bulletin": {"id": 1}}, event_id="e1")
    report = deliver_webhooks(db, refused, environ={"HOOK": "s3cret"})
    assert (report.delivered, report.failed) == (0, 1) and "loopback" in report.errors[0]
    assert fake_http.paths == []

    allowed = _hook_settings(tmp_path / "dev", url, LOOPBACK)
    allowed.data_dir.mkdir()
    db = open_database(allowed.db_url)
    webhook_store.add_event(db, "bulletin.approved", {"bulletin": {"id": 1}}, event_id="e1")
    assert deliver_webhooks(db, allowed, environ={"HOOK": "s3cret"}).delivered == 1
    assert fake_http.paths == ["/loa"]


# --- CAP by URL: normalised before the allow-list ---------------------------------------


@pytest.mark.parametrize(
    ("url", "clean"),
    [
        ("HTTP://Alerts.Example:80/cap/a.xml#x", "http://alerts.example/cap/a.xml"),
        ("http://alerts.example/cap/../secret", "http://alerts.example/secret"),
        ("http://alerts.example/cap/%2e%2e/secret", "http://alerts.example/secret"),
        ("http://alerts.example/cap/./a/../b.xml", "http://alerts.example/cap/b.xml"),
        ("http://alerts.example/../../x", "http://alerts.example/x"),
        ("http://alerts.example", "http://alerts.example/"),
        ("https://alerts.example:443/%7Euser/%41?q=%2f", "https://alerts.example/~user/A?q=%2F"),
        ("http://[::FFFF:7f00:1]:8080/a", "http://[::ffff:7f00:1]:8080/a"),
    ],
)
def test_urls_are_normalised(url: str, clean: str) -> None:
    assert outbound.normalize_url(url) == clean


@pytest.mark.parametrize(
    "url",
    [
        "http://alerts.example/cap/..%2Fsecret",
        "http://alerts.example/cap\\..\\secret",
        "http://user@alerts.example/cap/a.xml",
        "file:///etc/passwd",
        "http://alerts.example/cap/a b.xml",
    ],
)
def test_urls_with_ambiguous_spelling_are_refused(url: str) -> None:
    with pytest.raises(ValueError):
        outbound.normalize_url(url)


def test_a_cap_url_climbing_out_of_the_allowed_prefix_is_refused(tmp_path: Path) -> None:
    served = FakeHttp(lambda r: (200, {}, b"<secret/>"))
    try:
        base = f"http://127.0.0.1:{served.port}"
        settings = Settings(
            data_dir=tmp_path,
            outbound=LOOPBACK,
            cap=Settings().cap.model_copy(update={"allowed_urls": (f"{base}/cap/",)}),
        )
        for sneaky in (f"{base}/cap/../secret", f"{base}/cap/%2e%2e/secret", f"{base}/cap/..%2fsecret"):
            with pytest.raises(UsageError):
                fetch_alert(sneaky, settings=settings)
        assert served.paths == []
        assert fetch_alert(f"{base}/cap/./a.xml", settings=settings) == b"<secret/>"
        assert served.paths == ["/cap/a.xml"]
    finally:
        served.close()


def test_timeouts_hold_on_a_silent_server() -> None:
    silent = socket.create_server(("127.0.0.1", 0))  # accepts (backlog) but never answers
    try:
        port = silent.getsockname()[1]
        start = dt.datetime.now()
        with outbound.client(LOOPBACK, timeout_s=1) as http, pytest.raises(Exception) as info:
            http.get(f"http://127.0.0.1:{port}/")
        assert type(info.value).__name__ in ("ReadTimeout", "ConnectTimeout")
        assert (dt.datetime.now() - start).total_seconds() < 30
    finally:
        silent.close()


# --- loa report --push -------------------------------------------------------------------


def test_the_report_push_reaches_a_loopback_receiver_only_with_allow_loopback(fake_http: FakeHttp) -> None:
    from pipeline.broadcast.statistics import push_report
    from pipeline.config import ReportSettings

    report = ReportSettings(
        push_url=f"http://127.0.0.1:{fake_http.port}/bao-cao", token=SecretStr("t"), allow_http=True
    )
    with pytest.raises(OutboundRefused, match="loopback"):
        push_report(b'{"a": 1}', report, outbound_policy=DEFAULT)
    assert fake_http.paths == []
    assert push_report(b'{"a": 1}', report, outbound_policy=LOOPBACK) == 200
    assert fake_http.paths == ["/bao-cao"]


def test_a_report_push_to_a_private_name_is_refused_before_connecting(
    names: dict[str, list[str]], no_outside: list[Any]
) -> None:
    from pipeline.broadcast.statistics import push_report
    from pipeline.config import ReportSettings

    names["so-tt.example"] = ["192.168.7.9"]
    report = ReportSettings(push_url="https://so-tt.example/bao-cao", token=SecretStr("t"), timeout_s=5)
    with pytest.raises(OutboundRefused) as info:
        push_report(b"{}", report, outbound_policy=LOOPBACK)
    assert info.value.fields["kind"] == "private" and info.value.fields["address"] == "192.168.7.9"
    assert no_outside == []
