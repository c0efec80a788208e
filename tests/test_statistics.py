"""Statistics pieces: periods, tier grouping, the push's settings, the SVG chart."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from pydantic import SecretStr

from pipeline.broadcast.reconcile import NOT_PLAYED, PLAYED, Line, tier_of
from pipeline.broadcast.statistics import group_lines, month_of, push_report, quarter_of, report_token
from pipeline.config import OutboundSettings, ReportSettings, load_settings
from pipeline.errors import ConfigError
from pipeline.web.charts import Bar, bar_chart
from tests.fake_http import FakeHttp, status


def line(day: dt.date, status: str, *, commune: str = "02641", bulletin: int = 1) -> Line:
    return Line(
        commune=commune,
        date=day,
        slot="morning",
        program=f"{commune}/{day}/morning",
        bulletin_id=bulletin,
        title="t",
        tier=tier_of("routine"),
        category="policy",
        languages=("vi",),
        duration_ms=60000,
        language_ms=(("vi", 60000, 60000 if status == PLAYED else 0),),
        delivered="delivered",
        status=status,
        played_ms=60000 if status == PLAYED else 0,
    )


def test_periods_and_quarters() -> None:
    assert month_of(dt.date(2026, 3, 31)) == "2026-03" and quarter_of(dt.date(2026, 3, 31)) == "2026-Q1"
    assert quarter_of(dt.date(2026, 4, 1)) == "2026-Q2" and quarter_of(dt.date(2026, 12, 1)) == "2026-Q4"


def test_a_quarter_adds_its_months() -> None:
    lines = [
        line(dt.date(2026, 10, 5), PLAYED),
        line(dt.date(2026, 11, 5), NOT_PLAYED, bulletin=2),
        line(dt.date(2026, 11, 6), PLAYED, commune="02695"),
    ]
    rows = {(r.period, r.dimension, r.value): r for r in group_lines(lines)}
    q = rows[("2026-Q4", "all", "all")]
    assert (q.bulletins, q.items_scheduled, q.items_played, q.coverage) == (2, 3, 2, round(2 / 3, 4))
    assert rows[("2026-11", "commune", "02695")].items_played == 1
    assert rows[("2026-10", "tier", "normal")].ms_played == 60000
    assert ("2026-10", "commune", "02695") not in rows


def test_tier_of_maps_old_names_and_keeps_new_ones() -> None:
    assert [tier_of(p) for p in ("routine", "urgent", "emergency")] == ["normal", "priority", "emergency"]
    assert [tier_of(p) for p in ("normal", "priority")] == ["normal", "priority"]


def test_push_needs_https_a_url_and_a_token(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="push_url is not set"):
        push_report(b"{}", ReportSettings(), outbound_policy=OutboundSettings())
    with pytest.raises(ConfigError, match="use https"):
        push_report(
            b"{}",
            ReportSettings(push_url="http://127.0.0.1:9/x", token=SecretStr("t")),
            outbound_policy=OutboundSettings(),
        )
    with pytest.raises(ConfigError, match="no token"):
        push_report(b"{}", ReportSettings(push_url="https://127.0.0.1:9/x"), outbound_policy=OutboundSettings())
    (tmp_path / "tok").write_text("  tu-file \n")
    assert report_token(ReportSettings(token_file=tmp_path / "tok")) == "tu-file"
    with pytest.raises(ConfigError, match="token_file"):
        report_token(ReportSettings(token_file=tmp_path / "missing"))


def test_the_token_comes_from_the_environment_and_is_not_shown(tmp_path: Path) -> None:
    settings = load_settings(None, environ={"LOA_REPORT__TOKEN": "bi-mat-x"})
    assert report_token(settings.report) == "bi-mat-x"
    assert "bi-mat-x" not in repr(settings)


def test_chart_escapes_labels_and_draws_parts() -> None:
    svg = str(bar_chart("Tỷ lệ", [Bar("<b>Y Tý</b>", 4, 3, "3/4"), Bar("Bản Lầu", 2, 0, "0/2")]))
    assert svg.startswith("<svg") and "<b>" not in svg and "&lt;b&gt;Y Tý&lt;/b&gt;" in svg
    assert svg.count("<rect") == 4 and "style=" not in svg and "<script" not in svg
    assert "Chưa có số liệu." in str(bar_chart("x", []))


def _tls_files(d: Path) -> tuple[Path, Path, Path]:
    """A throw-away CA and a server certificate for 127.0.0.1, made with openssl."""
    import subprocess

    def run(*args: str) -> None:
        subprocess.run(["openssl", *args], cwd=d, check=True, capture_output=True)

    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"]
    run(
        "req",
        "-x509",
        *ec,
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
        "-days",
        "2",
        "-subj",
        "/CN=Loa test CA",
        "-addext",
        "basicConstraints=critical,CA:TRUE",
        "-addext",
        "keyUsage=critical,keyCertSign,cRLSign",
    )
    run("req", *ec, "-keyout", "srv.key", "-out", "srv.csr", "-subj", "/CN=127.0.0.1")
    (d / "ext.cnf").write_text(
        "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\n"
        "extendedKeyUsage=serverAuth\nauthorityKeyIdentifier=keyid\nsubjectKeyIdentifier=hash\n"
    )
    run(
        "x509",
        "-req",
        "-in",
        "srv.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "srv.pem",
        "-days",
        "2",
        "-extfile",
        "ext.cnf",
    )
    return d / "ca.pem", d / "srv.pem", d / "srv.key"


def test_push_over_real_https_checks_the_certificate(tmp_path: Path) -> None:
    from pipeline.errors import TransientDeliveryError

    ca, cert, key = _tls_files(tmp_path)
    with FakeHttp(status(201), tls=(cert, key)) as server:
        url = f"{server.url}/nhan-bao-cao"
        body = b'{"schema": "loa.report/1"}'
        trusted = ReportSettings(push_url=url, token=SecretStr("the-token"), ca_file=ca, timeout_s=10)
        assert push_report(body, trusted, outbound_policy=OutboundSettings(allow_loopback=True)) == 201
        got = [(r.headers.get("authorization", ""), r.body) for r in server.requests]
        assert got == [("Bearer the-token", body)]
        # the system's CAs do not know this certificate: refused, nothing sent
        untrusted = ReportSettings(push_url=url, token=SecretStr("the-token"), timeout_s=10)
        with pytest.raises(TransientDeliveryError, match=r"CERTIFICATE_VERIFY_FAILED|certificate verify failed"):
            push_report(body, untrusted, outbound_policy=OutboundSettings(allow_loopback=True))
        assert len(server.requests) == 1


def test_report_paths_are_taken_from_the_config_files_directory(tmp_path: Path) -> None:
    config = tmp_path / "loa.toml"
    config.write_text('[report]\ntoken_file = "secrets/report-token"\nca_file = "ca.pem"\n')
    settings = load_settings(config, environ={})
    assert settings.report.token_file == tmp_path / "secrets" / "report-token"
    assert settings.report.ca_file == tmp_path / "ca.pem"
