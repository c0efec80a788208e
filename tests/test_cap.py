"""CAP 1.2: import of alert, update and cancel; duplicates and out-of-order alerts; every bad case;
safe XML; the area table; URLs on the allow-list (a local HTTP server); export validated by the XSD."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import xmlschema

from pipeline.broadcast.cap import CAP_NS, parse_alert
from pipeline.dispatch import pending_emergencies
from pipeline.errors import CapError, ConfigError
from pipeline.store import bulletins as bulletin_store
from pipeline.store import cap as cap_store
from tests.conftest import REPO, CliResult, Project
from tests.fake_http import FakeHttp, files

HCM = ZoneInfo("Asia/Ho_Chi_Minh")
XSD = REPO / "schemas" / "cap-1.2.xsd"
# The alerts were sent in the past (the latest ``sent`` offset below is +4 h): a message sent "later"
# than the clock would start its bulletin tomorrow whenever the suite runs after 20:00 in Hà Nội.
NOW = (dt.datetime.now(HCM) - dt.timedelta(hours=6)).replace(microsecond=0)


def t(hours: float) -> str:
    return (NOW + dt.timedelta(hours=hours)).isoformat()


def cap(
    identifier: str = "KTTV-2026-001",
    *,
    msg_type: str = "Alert",
    sent: float = 0,
    references: str = "",
    headline: str = "Cảnh báo lũ quét tại Y Tý",
    area: str = "<areaDesc>Y Tý</areaDesc>",
    expires: float = 30,
    status: str = "Actual",
    language: str = "vi-VN",
    extra_info: str = "",
) -> str:
    refs = f"<references>{references}</references>" if references else ""
    info = (
        f"""<info>
    <language>{language}</language>
    <category>Met</category>
    <event>Lũ quét</event>
    <urgency>Immediate</urgency>
    <severity>Severe</severity>
    <certainty>Likely</certainty>
    <expires>{t(expires)}</expires>
    <senderName>Đài Khí tượng Thủy văn tỉnh Lào Cai</senderName>
    <headline>{headline}</headline>
    <description>Mưa lớn 150 mm trong 6 giờ; nguy cơ lũ quét trên các suối nhỏ.</description>
    <instruction>Không qua ngầm tràn; di dời người dân vùng trũng.</instruction>
    {extra_info}
    <area>{area}</area>
  </info>"""
        if msg_type != "Cancel"
        else ""
    )
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<alert xmlns="{CAP_NS}">
  <identifier>{identifier}</identifier>
  <sender>kttv.laocai</sender>
  <sent>{t(sent)}</sent>
  <status>{status}</status>
  <msgType>{msg_type}</msgType>
  <scope>Public</scope>
  {refs}
  {info}
</alert>
"""


def ref(identifier: str, sent: float = 0) -> str:
    return f"kttv.laocai,{identifier},{t(sent)}"


@pytest.fixture
def run(small: Project, small_cli: Callable[..., CliResult], tmp_path: Path) -> Callable[..., CliResult]:
    """``loa cap import`` of an XML text written to a file."""
    counter = iter(range(1000))

    def do(xml: str, *args: str) -> CliResult:
        path = tmp_path / f"alert-{next(counter)}.xml"
        path.write_text(xml, encoding="utf-8")
        return small_cli("cap", "import", str(path), *args)

    return do


def nothing_stored(project: Project) -> bool:
    db = project.db()
    return bulletin_store.list_bulletins(db) == [] and cap_store.messages(db) == []


def test_an_alert_becomes_an_emergency_bulletin_draft_by_default(
    small: Project, run: Callable[..., CliResult], small_cli: Callable[..., CliResult]
) -> None:
    r = run(cap(), "--json")
    assert r.code == 0, r.err
    out = r.json()
    assert isinstance(out, dict) and out["outcome"] == "added" and out["status"] == "draft"
    b = bulletin_store.get_bulletin(small.db(), out["bulletin"])
    assert (b.title, b.priority, b.category, b.targets, b.languages) == (
        "Cảnh báo lũ quét tại Y Tý",
        "emergency",
        "flood",
        ("02641",),
        ("vi",),
    )
    assert b.body == (
        "Mưa lớn 150 mm trong 6 giờ; nguy cơ lũ quét trên các suối nhỏ.\n\n"
        "Không qua ngầm tràn; di dời người dân vùng trũng."
    )
    assert b.source == "Đài Khí tượng Thủy văn tỉnh Lào Cai" and b.reference == "CAP KTTV-2026-001"
    assert b.valid_until == (NOW + dt.timedelta(hours=30)).date()
    assert (b.cap_identifier, b.cap_sender, b.cap_sent) == ("KTTV-2026-001", "kttv.laocai", NOW)
    # the normal rule: an approver approves, then the scheduler's emergency poll dispatches it
    assert b.id not in pending_emergencies(small.db(), settings=small.settings)
    assert small_cli("bulletin", "approve", str(b.id)).code == 0
    assert pending_emergencies(small.db(), settings=small.settings) == [b.id]
    # the same alert again does nothing
    again = run(cap())
    assert again.code == 0 and again.out.startswith("duplicate: kttv.laocai,KTTV-2026-001 was imported already")
    assert len(bulletin_store.list_bulletins(small.db())) == 1


def test_update_supersedes_and_cancel_withdraws_and_the_list_shows_it(
    small: Project, run: Callable[..., CliResult], small_cli: Callable[..., CliResult]
) -> None:
    first = run(cap("A1", area="<areaDesc>Bản Lầu</areaDesc>"), "--json").json()
    assert isinstance(first, dict)
    small_cli("bulletin", "approve", str(first["bulletin"]))
    # the update keeps the headline and names Y Tý: it reaches Y Tý and every commune of the old one
    upd = run(cap("A2", msg_type="Update", sent=1, references=ref("A1")), "--json").json()
    assert isinstance(upd, dict) and upd["outcome"] == "updated" and upd["status"] == "draft"
    db = small.db()
    new = bulletin_store.get_bulletin(db, upd["bulletin"])
    assert new.supersedes == first["bulletin"] and set(new.targets) == {"02641", "02695"}
    assert new.title.startswith("Cảnh báo lũ quét tại Y Tý (cập nhật ")
    assert bulletin_store.get_bulletin(db, first["bulletin"]).status == "approved"  # until the update is approved
    small_cli("bulletin", "approve", str(new.id))
    assert bulletin_store.get_bulletin(db, first["bulletin"]).status == "superseded"
    assert pending_emergencies(db, settings=small.settings) == [new.id]
    # a cancel that names the first alert ends the version in force
    cancel = run(cap("A3", msg_type="Cancel", sent=2, references=ref("A1")), "--json").json()
    assert isinstance(cancel, dict) and cancel["outcome"] == "cancelled" and cancel["ended"] == [new.id]
    assert bulletin_store.get_bulletin(db, new.id or 0).status == "cancelled"
    assert pending_emergencies(db, settings=small.settings) == []
    listing = small_cli("bulletin", "list")
    assert "đã được thay thế" in listing.out and "đã hủy" in listing.out
    statuses = {b["id"]: b["status"] for b in small_cli("bulletin", "list", "--json").json()}  # type: ignore[union-attr]
    assert statuses == {first["bulletin"]: "superseded", new.id: "cancelled"}
    assert small_cli("bulletin", "approve", str(new.id)).code == 2  # an ended bulletin stays ended
    listed = small_cli("cap", "list", "--json").json()
    assert [(m["identifier"], m["outcome"]) for m in listed] == [  # type: ignore[index,union-attr]
        ("A1", "added"),
        ("A2", "updated"),
        ("A3", "cancelled"),
    ]


def test_with_auto_approval_an_update_switches_at_once(small: Project, run: Callable[..., CliResult]) -> None:
    small.config.write_text(small.config.read_text() + '\n[cap]\napproval = "auto"\n', encoding="utf-8")
    first = run(cap("B1"), "--json").json()
    assert isinstance(first, dict) and first["status"] == "approved"
    upd = run(cap("B2", msg_type="Update", sent=1, references=ref("B1"), headline="Lũ quét: cập nhật"), "--json")
    data = upd.json()
    assert isinstance(data, dict) and data["status"] == "approved" and data["ended"] == [first["bulletin"]]
    db = small.db()
    assert bulletin_store.get_bulletin(db, first["bulletin"]).status == "superseded"
    with db.engine.connect() as conn:
        by = conn.exec_driver_sql("SELECT approved_by FROM bulletins WHERE id = ?", (data["bulletin"],)).scalar()
    assert by == "cap:kttv.laocai"


def test_out_of_order_alerts_do_nothing_twice(small: Project, run: Callable[..., CliResult]) -> None:
    # an update that comes before its alert is taken as the alert; the alert, when it comes, is stale
    upd = run(cap("C2", msg_type="Update", sent=1, references=ref("C1")), "--json").json()
    assert isinstance(upd, dict) and upd["outcome"] == "added"
    late = run(cap("C1"))
    assert late.code == 0 and "C1: already replaced by C2 (arrived earlier); nothing to do" in late.out
    # an update older than the version in force is stale too
    newer = run(cap("C4", msg_type="Update", sent=4, references=ref("C2", 1), headline="Bản tin 4"), "--json").json()
    assert isinstance(newer, dict) and newer["outcome"] == "updated"
    older = run(cap("C3", msg_type="Update", sent=3, references=ref("C2", 1), headline="Bản tin 3"))
    assert older.code == 0 and "C3: older than C4" in older.out
    # a cancel that comes first is kept; its alert is then refused
    kept = run(cap("D2", msg_type="Cancel", sent=1, references=ref("D1")))
    assert kept.code == 0 and kept.out.startswith("kept: D2: cancels an alert Loa has not seen")
    assert "D1: already cancelled by D2" in run(cap("D1", headline="Tin D1")).out
    db = small.db()
    assert sorted(b.cap_identifier or "" for b in bulletin_store.list_bulletins(db)) == ["C2", "C4"]
    assert [m.identifier for m in cap_store.messages(db)] == ["C2", "C1", "C4", "C3", "D2", "D1"]


BAD = [
    ("not xml", "this is not XML <alert", "not XML"),
    ("wrong namespace", cap().replace(CAP_NS, "urn:oasis:names:tc:emergency:cap:1.1"), "namespace"),
    ("wrong root", f'<?xml version="1.0"?><feed xmlns="{CAP_NS}"/>', "the root element is <feed>, not <alert>"),
    ("no identifier", cap().replace("<identifier>KTTV-2026-001</identifier>", ""), "<alert/identifier> is missing"),
    ("no sent", cap().replace(f"<sent>{t(0)}</sent>", ""), "<alert/sent> is missing"),
    ("bad sent", cap().replace(f"<sent>{t(0)}</sent>", "<sent>hôm nay</sent>"), "<alert/sent> 'hôm nay' is not"),
    ("no event", cap().replace("<event>Lũ quét</event>", ""), "<info/event> is missing"),
    ("no category", cap().replace("<category>Met</category>", ""), "<info/category> is missing"),
    ("no area desc", cap(area="<geocode><valueName>x</valueName><value>1</value></geocode>"), "<info/area/areaDesc>"),
    ("area maps to nothing", cap(area="<areaDesc>Hà Nội</areaDesc>"), "<info/area> Hà Nội maps to no commune"),
    ("no area", cap(area="").replace("<area></area>", ""), "<info/area> (no <area>) maps to no commune"),
    ("expired", cap(expires=-1), "<info/expires>"),
    ("no expiry", cap().replace(f"<expires>{t(30)}</expires>", ""), "<info/expires> is missing"),
    ("test status", cap(status="Test"), "<alert/status> is Test; only Actual alerts"),
    ("no vietnamese", cap(language="en-US"), "<info> with <language>vi-VN</language> is missing"),
    ("update without references", cap(msg_type="Update"), "<alert/references> is missing"),
    ("bad references", cap(msg_type="Update", references="just-one"), "<references> entry 'just-one'"),
    ("ack", cap(msg_type="Ack"), "<alert/msgType> is Ack"),
]


@pytest.mark.parametrize(("what", "xml", "message"), BAD, ids=[b[0] for b in BAD])
def test_bad_cap_exits_2_naming_the_element_and_stores_nothing(
    small: Project, run: Callable[..., CliResult], what: str, xml: str, message: str
) -> None:
    r = run(xml)
    assert r.code == 2, (what, r.out, r.err)
    assert r.err.startswith("error: ") and message in r.err, r.err
    assert nothing_stored(small)


def test_entity_expansion_is_refused(small: Project, run: Callable[..., CliResult]) -> None:
    laughs = "".join(f'<!ENTITY l{i} "{("&l" + str(i - 1) + ";") * 10 if i else "ha"}">' for i in range(10))
    bomb = cap().replace('<?xml version="1.0" encoding="UTF-8"?>', f"<!DOCTYPE alert [{laughs}]>")
    bomb = bomb.replace("<headline>Cảnh báo lũ quét tại Y Tý</headline>", "<headline>&l9;</headline>")
    r = run(bomb)
    assert r.code == 2 and "refused: the XML declares a DTD or entities" in r.err
    assert nothing_stored(small)


def test_external_entities_are_refused(small: Project, run: Callable[..., CliResult], tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("MẬT-KHẨU-BÍ-MẬT", encoding="utf-8")
    xxe = cap().replace(
        '<?xml version="1.0" encoding="UTF-8"?>', f'<!DOCTYPE alert [<!ENTITY x SYSTEM "file://{secret}">]>'
    )
    xxe = xxe.replace("<description>", "<description>&x;")
    r = run(xxe)
    assert r.code == 2 and "refused: the XML declares a DTD or entities" in r.err
    assert "MẬT-KHẨU" not in r.out + r.err
    assert nothing_stored(small)
    with pytest.raises(CapError, match="refused"):  # the module itself, not only the CLI
        parse_alert(xxe.encode(), where="x.xml")


def test_the_area_table_maps_geocodes_and_descriptions(small: Project, run: Callable[..., CliResult]) -> None:
    (small.root / "schedules" / "cap-areas.toml").write_text(
        '[[cap_area]]\nvalue_name = "VN-PROV"\ngeocode = "10"\ncommunes = ["bat-xat", "02695"]\n\n'
        '[[cap_area]]\narea_desc = "Huyện  Bát xát"\ncommunes = ["bat-xat"]\n',
        encoding="utf-8",
    )
    by_geocode = cap("G1", area="<areaDesc>Tỉnh Lào Cai</areaDesc><geocode><valueName>VN-PROV</valueName>"
                     "<value>10</value></geocode>")  # fmt: skip
    out = run(by_geocode, "--json").json()
    assert isinstance(out, dict) and out["outcome"] == "added", out
    db = small.db()
    assert bulletin_store.get_bulletin(db, out["bulletin"]).targets == ("02641", "02695")
    # the same value under another valueName does not match the row
    wrong_name = cap("G2", area="<areaDesc>x</areaDesc><geocode><valueName>SAME</valueName><value>10</value></geocode>")
    assert run(wrong_name).code == 2
    by_desc = run(cap("G3", headline="Tin G3", area="<areaDesc>huyện bát  xát</areaDesc>"), "--json").json()
    assert isinstance(by_desc, dict)
    assert bulletin_store.get_bulletin(db, by_desc["bulletin"]).targets == ("02641",)
    # without a row, a geocode that is a commune's code maps to it
    by_code = cap("G4", headline="Tin G4", area="<areaDesc>?</areaDesc><geocode><valueName>VN-ADM</valueName>"
                  "<value>02695</value></geocode>")  # fmt: skip
    out4 = run(by_code, "--json").json()
    assert isinstance(out4, dict) and bulletin_store.get_bulletin(db, out4["bulletin"]).targets == ("02695",)


def test_a_bad_area_table_names_the_row(small: Project) -> None:
    from pipeline.deployment import load_deployment

    path = small.root / "schedules" / "cap-areas.toml"
    path.write_text('[[cap_area]]\narea_desc = "X"\ncommunes = ["99999"]\n', encoding="utf-8")
    with pytest.raises(ConfigError, match=r"cap_area\[0\] \(X\)\.communes: '99999' is neither"):
        load_deployment(small.root / "schedules")
    path.write_text('[[cap_area]]\narea_desc = "X"\ngeocode = "1"\ncommunes = ["02695"]\n', encoding="utf-8")
    with pytest.raises(ConfigError, match="give exactly one of geocode or area_desc"):
        load_deployment(small.root / "schedules")


@pytest.fixture
def http_server(tmp_path: Path, fake_http: FakeHttp) -> tuple[str, Path]:
    """A local HTTP server (the province's alert feed) serving ``tmp_path/www``."""
    root = tmp_path / "www"
    root.mkdir()
    fake_http.answer = files(root)
    return fake_http.url, root


def test_a_url_is_fetched_only_when_allow_listed(
    small: Project, small_cli: Callable[..., CliResult], http_server: tuple[str, Path]
) -> None:
    base, root = http_server
    (root / "alert.xml").write_text(cap("U1"), encoding="utf-8")
    url = f"{base}/alert.xml"
    refused = small_cli("cap", "import", url)
    assert refused.code == 2 and "not on the CAP allow-list" in refused.err
    assert nothing_stored(small)
    small.config.write_text(
        small.config.read_text() + f'\n[cap]\nallowed_urls = ["{base}/"]\n[outbound]\nallow_loopback = true\n',
        encoding="utf-8",
    )
    ok = small_cli("cap", "import", url, "--json")
    assert ok.code == 0, ok.err
    assert isinstance(ok.json(), dict) and ok.json()["outcome"] == "added"  # type: ignore[index]
    missing = small_cli("cap", "import", f"{base}/none.xml")
    assert missing.code == 1 and "the server answered 404" in missing.err


def test_export_is_valid_cap_and_reads_back(
    small: Project, small_cli: Callable[..., CliResult], run: Callable[..., CliResult], tmp_path: Path
) -> None:
    schema = xmlschema.XMLSchema(str(XSD))
    first = run(cap("E1"), "--json").json()
    upd = run(cap("E2", msg_type="Update", sent=1, references=ref("E1"), headline="Tin E2"), "--json").json()
    assert isinstance(first, dict) and isinstance(upd, dict)
    out = tmp_path / "export.xml"
    r = small_cli("cap", "export", str(upd["bulletin"]), "-o", str(out))
    assert r.code == 0, r.err
    schema.validate(str(out))  # raises when the alert is not valid CAP 1.2
    alert = parse_alert(out.read_bytes(), where="export.xml")
    assert (alert.msg_type, alert.status, alert.scope) == ("Update", "Actual", "Public")
    assert [r.identifier for r in alert.references] == [f"loa@localhost.loa.{first['bulletin']}.r1"]
    assert alert.info is not None and alert.info.headline == "Tin E2"
    assert [g for a in alert.info.areas for g in a.geocodes] == [("VN-ADM", "02641")]
    stdout = small_cli("cap", "export", str(first["bulletin"]))
    assert stdout.code == 0 and schema.is_valid(stdout.out)
    # a normal bulletin is not an alert
    from tests.conftest import add_bulletin

    normal = add_bulletin(small, "Họp thôn.", priority="normal", approve=False)
    bad = small_cli("cap", "export", str(normal))
    assert bad.code == 2 and "only emergency bulletins are exported" in bad.err


def test_export_of_the_example_emergency_validates(project: Project, cli: Callable[..., CliResult]) -> None:
    example = REPO / "examples" / "bulletins" / "05-canh-bao-lu-quet-sat-lo.md"
    assert cli("bulletin", "add", str(example)).code == 0
    [b] = bulletin_store.list_bulletins(project.db())
    r = cli("cap", "export", str(b.id))
    assert r.code == 0, r.err
    xmlschema.XMLSchema(str(XSD)).validate(r.out)
    alert = parse_alert(r.out.encode(), where="-")
    assert alert.info is not None and alert.info.expires is not None
    assert alert.info.expires.date() == b.valid_until and len(alert.info.areas[0].geocodes) > 2


def test_a_small_internal_entity_is_refused_too(small: Project, run: Callable[..., CliResult]) -> None:
    """Not a bomb (Python's expat would stop a bomb on its own): an entity that expands quietly
    into the text people hear. Only Loa's refusal of DTDs and entities stops it."""
    spoof = cap().replace(
        '<?xml version="1.0" encoding="UTF-8"?>', '<!DOCTYPE alert [<!ENTITY t "Sơ tán ngay khỏi thôn">]>'
    )
    spoof = spoof.replace("<headline>Cảnh báo lũ quét tại Y Tý</headline>", "<headline>&t;</headline>")
    r = run(spoof)
    assert r.code == 2 and "refused: the XML declares a DTD or entities" in r.err
    assert nothing_stored(small)
    with pytest.raises(CapError, match="refused"):
        parse_alert(spoof.encode(), where="spoof.xml")
