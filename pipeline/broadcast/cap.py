"""Common Alerting Protocol 1.2: the one reader and writer of CAP alerts in Loa.

Import (``parse_alert`` → ``CapAlert`` → ``to_bulletin``): the XML is parsed with defusedxml
(no DTD, so no entity expansion and no external entities), in the namespace
``urn:oasis:names:tc:emergency:cap:1.2``; required elements are checked and a missing or bad
one is named in the error. Only ``status`` Actual and ``scope`` Public alerts of ``msgType``
Alert, Update or Cancel are taken. The ``info`` in ``vi-VN`` (or ``vi``) gives the bulletin:
``headline`` (else ``event``) → title, ``description`` and ``instruction`` → body,
``senderName`` (else ``sender``) → source, ``expires`` → valid_until; its ``area`` elements
map to communes by the ``[[cap_area]]`` table in schedules/ (a ``geocode`` value, or an
``areaDesc``), and otherwise a ``geocode`` whose value is a commune's code or an
``areaDesc`` equal to a commune's name. The bulletin is an emergency (khẩn cấp) with
category storm or flood when the event says so (its replays then default to every 2 hours).

Export (``alert_xml``): any emergency bulletin as a CAP 1.2 alert, valid against
``schemas/cap-1.2.xsd`` (the tests check it): one ``info`` in vi-VN, one ``area`` naming the
communes with a ``geocode`` (valueName ``VN-ADM``) per commune code.

What an import does with the store (duplicates, Update, Cancel, out-of-order alerts) is
``pipeline.broadcast.cap_import``.
"""

from __future__ import annotations

import datetime as dt
import re
import unicodedata
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from dataclasses import dataclass
from xml.etree.ElementTree import Element
from zoneinfo import ZoneInfo

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import fromstring

from pipeline import xmlsafe
from pipeline.errors import CapError
from pipeline.intake import MAX_BODY_CHARS, clean_text
from pipeline.models import Bulletin, Commune, Deployment, tier_of
from pipeline.textrules import check_chars, check_text, shown

CAP_NS = "urn:oasis:names:tc:emergency:cap:1.2"
CAP_VERSION = "1.2"
#: ``<geocode><valueName>`` Loa writes for a commune's official administrative code.
GEOCODE_NAME = "VN-ADM"
LANGUAGES_VI = ("vi-vn", "vi")
MSG_TYPES = ("Alert", "Update", "Cancel")
_Q = "{" + CAP_NS + "}"
_STORM_RE = re.compile(r"\b(bão|áp thấp|storm|typhoon|cyclone|tropical depression)\b", re.IGNORECASE)
_FLOOD_RE = re.compile(r"\b(lũ|lụt|ngập|flood|flash flood|inundation)\b", re.IGNORECASE)
# CAP 1.2 date-times: 2026-12-01T08:00:00+07:00 ("Z" is read too, though the schema does not allow it)
_CAP_TIME_RE = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}([+-]\d{2}:\d{2}|Z)$")


@dataclass(frozen=True, slots=True)
class CapRef:
    """One entry of ``<references>``: "sender,identifier,sent"."""

    sender: str
    identifier: str
    sent: str


@dataclass(frozen=True, slots=True)
class CapArea:
    desc: str
    geocodes: tuple[tuple[str, str], ...]  # (valueName, value)


@dataclass(frozen=True, slots=True)
class CapInfo:
    language: str
    categories: tuple[str, ...]
    event: str
    urgency: str
    severity: str
    certainty: str
    expires: dt.datetime | None
    sender_name: str
    headline: str
    description: str
    instruction: str
    areas: tuple[CapArea, ...]


@dataclass(frozen=True, slots=True)
class CapAlert:
    identifier: str
    sender: str
    sent: dt.datetime
    status: str
    msg_type: str
    scope: str
    references: tuple[CapRef, ...]
    info: CapInfo | None  # the vi-VN info (None for a Cancel without one)
    where: str = ""

    @property
    def key(self) -> tuple[str, str]:
        return (self.sender, self.identifier)


# --- reading ----------------------------------------------------------------------


def _text(parent: Element, name: str) -> str | None:
    el = parent.find(_Q + name)
    if el is None:
        return None
    return unicodedata.normalize("NFC", (el.text or "").strip())


def _required(parent: Element, name: str, where: str, path: str) -> str:
    value = _text(parent, name)
    if value is None or not value:
        raise CapError(
            f"{where}: <{path}{name}> is missing or empty; CAP 1.2 requires it",
            code="cap.element.missing",
            file=where,
            field=f"{path}{name}",
        )
    return value


def parse_time(value: str, where: str, element: str) -> dt.datetime:
    if not _CAP_TIME_RE.match(value):
        raise CapError(
            f"{where}: <{element}> {value!r} is not a CAP time such as 2026-12-01T08:00:00+07:00",
            code="cap.element.time",
            file=where,
            field=element,
            value=shown(value),
        )
    try:
        parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as exc:
        raise CapError(
            f"{where}: <{element}> {value!r} is not a valid date and time",
            code="cap.element.time",
            file=where,
            field=element,
            value=shown(value),
        ) from exc
    return parsed


def _references(value: str | None, where: str) -> tuple[CapRef, ...]:
    refs = []
    for item in (value or "").split():
        parts = item.split(",")
        if len(parts) != 3 or not all(parts):
            raise CapError(
                f"{where}: <references> entry {item!r} is not sender,identifier,sent",
                code="cap.references.format",
                file=where,
                field="alert/references",
                value=shown(item),
            )
        refs.append(CapRef(parts[0], parts[1], parts[2]))
    return tuple(refs)


def _info(el: Element, where: str) -> CapInfo:
    path = "info/"
    categories = tuple(unicodedata.normalize("NFC", (c.text or "").strip()) for c in el.findall(_Q + "category"))
    if not categories or not all(categories):
        raise CapError(
            f"{where}: <info/category> is missing; CAP 1.2 requires at least one",
            code="cap.element.missing",
            file=where,
            field="info/category",
        )
    expires_text = _text(el, "expires")
    areas = []
    for a in el.findall(_Q + "area"):
        desc = _required(a, "areaDesc", where, "info/area/")
        geocodes = []
        for g in a.findall(_Q + "geocode"):
            name = _required(g, "valueName", where, "info/area/geocode/")
            value = _required(g, "value", where, "info/area/geocode/")
            geocodes.append((name, value))
        areas.append(CapArea(desc, tuple(geocodes)))
    return CapInfo(
        language=_text(el, "language") or "en-US",
        categories=categories,
        event=_required(el, "event", where, path),
        urgency=_required(el, "urgency", where, path),
        severity=_required(el, "severity", where, path),
        certainty=_required(el, "certainty", where, path),
        expires=parse_time(expires_text, where, "info/expires") if expires_text else None,
        sender_name=_text(el, "senderName") or "",
        headline=_text(el, "headline") or "",
        description=_text(el, "description") or "",
        instruction=_text(el, "instruction") or "",
        areas=tuple(areas),
    )


def parse_alert(data: bytes, *, where: str) -> CapAlert:
    """Read one CAP 1.2 alert; a ``CapError`` names the element that is wrong."""
    try:
        root = fromstring(data, forbid_dtd=True, forbid_entities=True, forbid_external=True)
    except DefusedXmlException as exc:
        raise CapError(
            f"{where}: refused: the XML declares a DTD or entities ({exc.__class__.__name__}); "
            "CAP alerts need neither, and they could expand or read files",
            code="cap.xml.entities",
            file=where,
        ) from exc
    except ET.ParseError as exc:
        raise CapError(
            f"{where}: not XML ({exc}); a CAP alert is an XML <alert> document", code="cap.xml.invalid", file=where
        ) from exc
    tag = str(root.tag)
    ns, _, local = tag[1:].partition("}") if tag.startswith("{") else ("", "", tag)
    if local != "alert":
        raise CapError(
            f"{where}: the root element is <{local}>, not <alert>; this is not a CAP alert",
            code="cap.xml.not_alert",
            file=where,
        )
    if ns != CAP_NS:
        raise CapError(
            f"{where}: <alert> is in the namespace {ns or '(none)'!r}; Loa reads CAP 1.2 ({CAP_NS})",
            code="cap.xml.namespace",
            file=where,
        )
    identifier = _required(root, "identifier", where, "alert/")
    sender = _required(root, "sender", where, "alert/")
    sent = parse_time(_required(root, "sent", where, "alert/"), where, "alert/sent")
    status = _required(root, "status", where, "alert/")
    msg_type = _required(root, "msgType", where, "alert/")
    scope = _required(root, "scope", where, "alert/")
    for name, value in (("identifier", identifier), ("sender", sender)):
        if re.search(r"[\s,<&]", value):
            raise CapError(
                f"{where}: <alert/{name}> {value!r} has a space, comma, < or &; CAP 1.2 forbids them",
                code="cap.element.chars",
                file=where,
                field=f"alert/{name}",
            )
    references = _references(_text(root, "references"), where)
    infos = root.findall(_Q + "info")
    vi = [i for i in infos if (_text(i, "language") or "").lower() in LANGUAGES_VI]
    info = _info(vi[0], where) if vi else None
    return CapAlert(identifier, sender, sent, status, msg_type, scope, references, info, where)


def check_airable(alert: CapAlert, *, now: dt.datetime) -> CapInfo | None:
    """Refuse what must not air: not Actual or Public, Ack/Error, no vi-VN info, expired.

    Returns the vi-VN info (None only for a Cancel).
    """
    where = alert.where
    if alert.status != "Actual":
        raise CapError(
            f"{where}: <alert/status> is {alert.status}; only Actual alerts are broadcast",
            code="cap.not_actual",
            file=where,
            field="alert/status",
            value=shown(alert.status),
        )
    if alert.scope != "Public":
        raise CapError(
            f"{where}: <alert/scope> is {alert.scope}; only Public alerts are broadcast",
            code="cap.not_public",
            file=where,
            field="alert/scope",
            value=shown(alert.scope),
        )
    if alert.msg_type not in MSG_TYPES:
        raise CapError(
            f"{where}: <alert/msgType> is {alert.msg_type}; Loa takes {', '.join(MSG_TYPES)}",
            code="cap.msg_type",
            file=where,
            field="alert/msgType",
            value=shown(alert.msg_type),
            allowed=", ".join(MSG_TYPES),
        )
    if alert.msg_type in ("Update", "Cancel") and not alert.references:
        raise CapError(
            f"{where}: <alert/references> is missing; an {alert.msg_type} names the alert it replaces",
            code="cap.element.missing",
            file=where,
            field="alert/references",
        )
    if alert.msg_type == "Cancel":
        return alert.info
    if alert.info is None:
        raise CapError(
            f"{where}: <info> with <language>vi-VN</language> is missing; Loa broadcasts Vietnamese",
            code="cap.no_vietnamese",
            file=where,
            field="info/language",
        )
    if alert.info.expires is None:
        raise CapError(
            f"{where}: <info/expires> is missing; Loa needs to know until when the warning airs",
            code="cap.element.missing",
            file=where,
            field="info/expires",
        )
    if alert.info.expires <= now:
        raise CapError(
            f"{where}: <info/expires> {alert.info.expires.isoformat()} is past; the alert has expired",
            code="cap.expired",
            file=where,
            field="info/expires",
        )
    return alert.info


# --- areas → communes ----------------------------------------------------------------


def _norm(text: str) -> str:
    return " ".join(unicodedata.normalize("NFC", text).casefold().split())


def communes_of(info: CapInfo, deployment: Deployment) -> tuple[str, ...]:
    """Commune codes the info's areas reach: the ``[[cap_area]]`` table, then codes and names."""
    by_code = {c.code: c for c in deployment.communes}
    by_name: dict[str, list[Commune]] = {}
    for c in deployment.communes:
        by_name.setdefault(_norm(c.name), []).append(c)
    out: list[str] = []
    for area in info.areas:
        found: list[str] = []
        for rule in deployment.cap_areas:
            if rule.area_desc is not None and _norm(rule.area_desc) == _norm(area.desc):
                found.extend(rule.communes)
            if rule.geocode is not None and any(
                value == rule.geocode and (rule.value_name is None or name == rule.value_name)
                for name, value in area.geocodes
            ):
                found.extend(rule.communes)
        if not found:
            found.extend(value for _, value in area.geocodes if value in by_code)
            found.extend(c.code for c in by_name.get(_norm(area.desc), []))
        out.extend(found)
    return tuple(dict.fromkeys(out))


def category_of(info: CapInfo) -> str:
    """storm | flood | emergency, from the event and headline."""
    text = f"{info.event} {info.headline}"
    if _STORM_RE.search(text):
        return "storm"
    if _FLOOD_RE.search(text):
        return "flood"
    return "emergency"


def to_bulletin(
    alert: CapAlert, info: CapInfo, *, communes: Sequence[str], tz: ZoneInfo, supersedes: int | None = None
) -> Bulletin:
    """The emergency bulletin an Alert or Update stands for (not stored)."""
    where = alert.where

    def text(value: str, element: str, limit_key: str, *, one_line: bool) -> str:
        """The element's text under the text rules of every door (``pipeline.textrules``)."""
        cleaned = clean_text(value)[0].strip()
        check_chars(cleaned, field=element, where=where, error=CapError)  # before whitespace is collapsed
        if one_line:
            cleaned = " ".join(cleaned.split())
        return check_text(cleaned, field=element, where=where, limit_key=limit_key, error=CapError)

    title = text(
        info.headline or info.event, "info/headline" if info.headline else "info/event", "title", one_line=True
    )
    parts = [
        text(info.description, "info/description", "body", one_line=False),
        text(info.instruction, "info/instruction", "body", one_line=False),
    ]
    body = "\n\n".join(p for p in parts if p) or title
    if len(body) > MAX_BODY_CHARS:
        raise CapError(
            f"{where}: <info/description> and <info/instruction> are longer than {MAX_BODY_CHARS} chars",
            code="bulletin.field.too_long",
            file=where,
            field="info/description",
            line=None,
            limit=MAX_BODY_CHARS,
            length=len(body),
        )
    source = text(
        info.sender_name or alert.sender, "info/senderName" if info.sender_name else "sender", "source", one_line=True
    )
    reference = check_text(
        f"CAP {alert.identifier}", field="identifier", where=where, limit_key="reference", error=CapError
    )
    if not communes:
        descs = "; ".join(a.desc for a in info.areas) or "(no <area>)"
        raise CapError(
            f"{where}: <info/area> {descs} maps to no commune; add a [[cap_area]] row in schedules/ "
            "(geocode or area_desc → communes) or use commune codes / names",
            code="cap.area.unmapped",
            file=where,
            field="info/area",
            value=shown(descs),
        )
    assert info.expires is not None
    sent_local = alert.sent.astimezone(tz)
    expires_local = info.expires.astimezone(tz)
    return Bulletin(
        title=title,
        category=category_of(info),
        priority="emergency",
        source=source,
        reference=reference,
        valid_from=min(sent_local.date(), expires_local.date()),
        valid_until=expires_local.date(),
        targets=tuple(communes),
        languages=("vi",),
        body=body,
        source_file=where,
        cap_identifier=alert.identifier,
        cap_sender=alert.sender,
        cap_sent=alert.sent,
        cap_references=tuple(f"{r.sender},{r.identifier},{r.sent}" for r in alert.references),
        supersedes=supersedes,
    )


# --- writing ----------------------------------------------------------------------


def cap_time(value: dt.datetime, tz: ZoneInfo) -> str:
    """2026-12-01T08:00:00+07:00: the only form CAP 1.2 allows (no fractions, no "Z")."""
    return value.astimezone(tz).replace(microsecond=0).isoformat()


_CATEGORY_CAP = {"storm": "Met", "flood": "Met", "emergency": "Safety"}


def alert_identifier(b: Bulletin, sender: str) -> str:
    return f"{sender}.loa.{b.id}.r{b.revision}"


def alert_xml(
    b: Bulletin,
    *,
    deployment: Deployment,
    sender: str,
    tz: ZoneInfo,
    superseded: Bulletin | None = None,
) -> bytes:
    """A CAP 1.2 alert for an emergency bulletin (an Update referencing ``superseded`` when given)."""
    if tier_of(b.priority) != "emergency":
        raise CapError(
            f"bulletin {b.id}: it is {b.priority}; only emergency bulletins are exported as CAP alerts",
            code="cap.export.not_emergency",
            bulletin=b.id,
        )
    ET.register_namespace("", CAP_NS)

    def sub(parent: Element, name: str, text: str) -> Element:
        el = ET.SubElement(parent, _Q + name)
        el.text = text
        return el

    sent = b.approved_at or b.created_at or dt.datetime.now(tz)
    root = ET.Element(_Q + "alert")
    sub(root, "identifier", alert_identifier(b, sender))
    sub(root, "sender", sender)
    sub(root, "sent", cap_time(sent, tz))
    sub(root, "status", "Actual")
    sub(root, "msgType", "Update" if superseded is not None else "Alert")
    sub(root, "scope", "Public")
    if b.cap_identifier:
        sub(root, "note", f"From CAP alert {b.cap_sender},{b.cap_identifier}")
    if superseded is not None:
        old_sent = superseded.approved_at or superseded.created_at or sent
        sub(root, "references", f"{sender},{alert_identifier(superseded, sender)},{cap_time(old_sent, tz)}")
    info = ET.SubElement(root, _Q + "info")
    sub(info, "language", "vi-VN")
    sub(info, "category", _CATEGORY_CAP.get(b.category, "Other"))
    sub(info, "event", b.title)
    sub(info, "urgency", "Immediate")
    sub(info, "severity", "Severe")
    sub(info, "certainty", "Likely")
    sub(info, "effective", cap_time(dt.datetime.combine(b.valid_from, dt.time(0, 0), tzinfo=tz), tz))
    sub(info, "expires", cap_time(dt.datetime.combine(b.valid_until, dt.time(23, 59, 59), tzinfo=tz), tz))
    sub(info, "senderName", b.source)
    sub(info, "headline", b.title)
    sub(info, "description", b.body)
    communes = deployment.targeted(b.targets)
    area = ET.SubElement(info, _Q + "area")
    sub(area, "areaDesc", ", ".join(f"{c.kind} {c.name}" for c in communes) or "(không có xã)")
    for c in communes:
        geocode = ET.SubElement(area, _Q + "geocode")
        sub(geocode, "valueName", GEOCODE_NAME)
        sub(geocode, "value", c.code)
    ET.indent(root)
    return xmlsafe.tostring(root)  # what XML 1.0 does not allow is dropped, whatever the store holds
