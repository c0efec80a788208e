"""Bulletin intake: Markdown with TOML front matter → ``Bulletin``, and recordings.

Every file is checked before anything is stored; a bad file is a ``BulletinError``
naming the file, the field and (where TOML gives one) the line.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
import tomllib
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipeline.config import Settings
from pipeline.errors import BulletinError, RecordingRefused, RenderError
from pipeline.feedback.intake import parse_policy
from pipeline.models import (
    CATEGORIES,
    LANGUAGES,
    TIER_ALIASES,
    TIERS,
    Bulletin,
    Deployment,
    Recording,
    tier_of,
)
from pipeline.textrules import LIMITS, check_chars, check_text, shown

log = logging.getLogger(__name__)

MAX_BODY_CHARS = LIMITS["body"]
MAX_FILE_BYTES = 1_000_000
REQUIRED = ("title", "category", "priority", "source", "valid_from", "valid_until", "targets")
OPTIONAL = ("reference", "languages", "policy", "stage", "consultation", "replay_every_minutes", "public")
#: Replays at most every 15 minutes, at least once a day.
REPLAY_MINUTES_RANGE = (15, 1440)

_TAG_RE = re.compile(r"</?[A-Za-z][A-Za-z0-9-]*(?:\s[^<>]*)?/?>|<!--.*?-->", re.DOTALL)
_TOML_LINE_RE = re.compile(r"\(at line (\d+), column (\d+)\)")
_KEY_RE = re.compile(r"^\s*([A-Za-z0-9_-]+)\s*=")
_TABLE_RE = re.compile(r"^\s*\[\[?\s*([A-Za-z0-9_.-]+)\s*\]\]?")


@dataclass(frozen=True, slots=True)
class Parsed:
    bulletin: Bulletin
    warnings: tuple[str, ...]


def clean_text(text: str) -> tuple[str, bool]:
    """NFC, one kind of line break, tabs as spaces, HTML tags stripped; says whether tags were found.

    Refused characters (``pipeline.textrules``) are not removed here: intake names them.
    """
    text = unicodedata.normalize("NFC", text.replace("\r\n", "\n").replace("\r", "\n"))
    stripped = _TAG_RE.sub("", text)
    return stripped.replace("\t", " "), stripped != text


def _split_front_matter(text: str, where: str) -> tuple[str, str, int]:
    """Return (front matter, body, line number of the body's first line)."""
    lines = text.split("\n")
    if not lines or lines[0].strip() != "+++":
        raise BulletinError(
            f"{where}: line 1: a bulletin starts with a +++ line, then TOML fields, then +++",
            code="bulletin.front_matter.missing",
            file=where,
            line=1,
        )
    for i, line in enumerate(lines[1:], start=1):
        if line.strip() == "+++":
            return "\n".join(lines[1:i]), "\n".join(lines[i + 1 :]), i + 2
    raise BulletinError(
        f"{where}: the front matter opened on line 1 is never closed with a +++ line",
        code="bulletin.front_matter.unclosed",
        file=where,
        line=1,
    )


def _line_of(front: str, key: str) -> int | None:
    for i, line in enumerate(front.split("\n"), start=2):
        if re.match(rf"\s*{re.escape(key)}\s*=", line):
            return i
    return None


def _check_front_chars(front: str, where: str) -> None:
    """Refused characters written as such in the front matter, named by the field of their line."""
    field, table = "front_matter", ""
    for i, line in enumerate(front.split("\n"), start=2):
        if m := _TABLE_RE.match(line):
            table, field = m.group(1), m.group(1)
        elif m := _KEY_RE.match(line):
            field = f"{table}.{m.group(1)}" if table else m.group(1)
        check_chars(line, field=field, where=where, line=i, unit="column")


def parse_bulletin(text: str, *, where: str, deployment: Deployment) -> Parsed:
    """Check one bulletin's text; ``where`` names it in errors (usually its path)."""
    text, had_html = clean_text(text.removeprefix("\ufeff"))  # a byte-order mark is no text
    warnings = [f"{where}: HTML tags were removed from the text"] if had_html else []
    front, body, body_line = _split_front_matter(text, where)
    _check_front_chars(front, where)
    try:
        meta: dict[str, Any] = tomllib.loads(front)
    except tomllib.TOMLDecodeError as exc:
        msg = str(exc)
        m = _TOML_LINE_RE.search(msg)
        line = int(m.group(1)) + 1 if m else None  # the TOML starts on line 2 of the file
        if m:
            msg = f"line {line}: " + _TOML_LINE_RE.sub("", msg).strip()
        raise BulletinError(
            f"{where}: {msg}; fix the TOML between the +++ lines", code="bulletin.toml", file=where, line=line
        ) from exc

    def fail(key: str, message: str, *, code: str, **fields: object) -> BulletinError:
        line = _line_of(front, key)
        return BulletinError(
            f"{where}: {'line ' + str(line) + ': ' if line else ''}{key}: {message}",
            code=code,
            file=where,
            field=key,
            line=line,
            **fields,
        )

    def text_field(key: str, value: str) -> str:
        return check_text(value.strip(), field=key, where=where, line=_line_of(front, key))

    unknown = sorted(set(meta) - set(REQUIRED) - set(OPTIONAL))
    if unknown:
        name = shown(unknown[0])
        line = _line_of(front, unknown[0])
        raise BulletinError(
            f"{where}: {'line ' + str(line) + ': ' if line else ''}{name}: unknown field; "
            f"the fields are {', '.join(REQUIRED + OPTIONAL)}",
            code="bulletin.field.unknown",
            file=where,
            field=name,
            line=line,
        )
    for key in REQUIRED:
        if key not in meta:
            raise BulletinError(
                f"{where}: {key}: missing; add `{key} = …` to the front matter",
                code="bulletin.field.missing",
                file=where,
                field=key,
                line=None,
            )
    for key in ("title", "source", "category", "priority"):
        if not isinstance(meta[key], str) or not meta[key].strip():
            raise fail(key, "must be a non-empty text in quotes", code="bulletin.field.empty")
    reference = meta.get("reference", "")
    if not isinstance(reference, str):
        raise fail("reference", "must be a text in quotes", code="bulletin.field.not_text")
    title = text_field("title", meta["title"])
    source = text_field("source", meta["source"])
    reference = text_field("reference", reference)
    if meta["category"] not in CATEGORIES:
        raise fail(
            "category",
            f"unknown category {meta['category']!r}; use one of {', '.join(CATEGORIES)}",
            code="bulletin.category.unknown",
            value=shown(meta["category"]),
            allowed=", ".join(CATEGORIES),
        )
    tier = tier_of(meta["priority"])
    if tier is None:
        old_names = ", ".join(k for k in TIER_ALIASES if k not in TIERS)
        raise fail(
            "priority",
            f"unknown priority {meta['priority']!r}; use one of {', '.join(TIERS)} "
            f"(old names {old_names} are read too)",
            code="bulletin.priority.unknown",
            value=shown(meta["priority"]),
            allowed=", ".join(TIERS),
        )
    replay = meta.get("replay_every_minutes")
    if replay is not None:
        low, high = REPLAY_MINUTES_RANGE
        if not isinstance(replay, int) or isinstance(replay, bool) or not low <= replay <= high:
            raise fail(
                "replay_every_minutes",
                f"must be a whole number of minutes from {low} to {high}, e.g. 120",
                code="bulletin.replay.range",
                low=low,
                high=high,
            )
        if tier != "emergency":
            raise fail(
                "replay_every_minutes",
                f"only emergency bulletins replay; this one is {tier}",
                code="bulletin.replay.not_emergency",
                tier=tier,
            )
    for key in ("valid_from", "valid_until"):
        value = meta[key]
        if not isinstance(value, dt.date) or isinstance(value, dt.datetime):
            raise fail(key, "must be a date without quotes, e.g. 2026-12-01", code="bulletin.field.not_date")
    if meta["valid_until"] < meta["valid_from"]:
        raise fail(
            "valid_until",
            f"{meta['valid_until']} is before valid_from {meta['valid_from']}",
            code="bulletin.dates.order",
            value=str(meta["valid_until"]),
            valid_from=str(meta["valid_from"]),
        )
    targets = meta["targets"]
    if not isinstance(targets, list) or not targets or not all(isinstance(t, str) for t in targets):
        raise fail(
            "targets", 'must be a list such as ["all"], ["bat-xat"] or ["02641"]', code="bulletin.targets.not_list"
        )
    known = {"all"} | {g.id for g in deployment.groups} | {c.code for c in deployment.communes}
    bad = [t for t in targets if t not in known]
    if bad:
        raise fail(
            "targets",
            f'{shown(bad[0])!r} is not "all", a group id or a commune code; see `loa communes`',
            code="bulletin.targets.unknown",
            value=shown(bad[0]),
        )
    languages = meta.get("languages", ["vi"])
    if not isinstance(languages, list) or not languages or not all(isinstance(x, str) for x in languages):
        raise fail("languages", 'must be a list such as ["vi", "hmn"]', code="bulletin.languages.not_list")
    bad = [x for x in languages if x not in LANGUAGES]
    if bad:
        raise fail(
            "languages",
            f"unknown language {shown(bad[0])!r}; use {', '.join(LANGUAGES)}",
            code="bulletin.languages.unknown",
            value=shown(bad[0]),
            allowed=", ".join(LANGUAGES),
        )
    public = meta.get("public", True)
    if not isinstance(public, bool):
        raise fail(
            "public",
            "must be true or false without quotes (false: internal, not published)",
            code="bulletin.field.not_bool",
        )
    stripped = body.lstrip()
    body_line += body[: len(body) - len(stripped)].count("\n")
    body = stripped.rstrip()
    if not body:
        raise BulletinError(
            f"{where}: the body is empty; write the bulletin's text after the closing +++",
            code="bulletin.body.empty",
            file=where,
            field="body",
            line=None,
        )
    check_chars(body, field="body", where=where, line=body_line, unit="column")
    body = check_text(body, field="body", where=where, line=body_line)
    policy, stage, consultation = parse_policy(meta, front, where=where)
    bulletin = Bulletin(
        policy=policy,
        stage=stage,
        consultation=consultation,
        title=title,
        category=meta["category"],
        priority=tier,
        source=source,
        reference=reference,
        valid_from=meta["valid_from"],
        valid_until=meta["valid_until"],
        targets=tuple(dict.fromkeys(targets)),
        languages=tuple(dict.fromkeys(languages)),
        body=body,
        source_file=where,
        replay_every_minutes=replay,
        public=public,
    )
    return Parsed(bulletin, tuple(warnings))


def read_bulletin_file(path: Path, *, deployment: Deployment) -> Parsed:
    try:
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            raise BulletinError(
                f"{path}: {size} bytes is too large for a bulletin file (limit {MAX_FILE_BYTES})",
                code="bulletin.file.too_large",
                file=str(path),
                size=size,
                limit=MAX_FILE_BYTES,
            )
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BulletinError(
            f"{path}: not UTF-8 text (byte {exc.start}); save the file as UTF-8",
            code="bulletin.file.not_utf8",
            file=str(path),
            byte=exc.start,
        ) from exc
    except OSError as exc:
        raise BulletinError(
            f"{path}: cannot read: {exc.strerror}", code="bulletin.file.unreadable", file=str(path)
        ) from exc
    return parse_bulletin(text, where=str(path), deployment=deployment)


def read_bulletin_files(paths: Sequence[Path], *, deployment: Deployment) -> list[Parsed]:
    """Check every file first; the first bad one stops everything (nothing is stored)."""
    parsed = [read_bulletin_file(p, deployment=deployment) for p in paths]
    seen: dict[tuple[str, str], str] = {}
    for p in parsed:
        key = (p.bulletin.title, p.bulletin.source)
        if key in seen:
            raise BulletinError(
                f"{p.bulletin.source_file}: title and source are the same as in {seen[key]}; "
                "one bulletin per title and source",
                code="bulletin.duplicate",
                file=p.bulletin.source_file,
                field="title",
                other=seen[key],
            )
        seen[key] = p.bulletin.source_file or ""
    return parsed


# --- recordings -----------------------------------------------------------------


def prepare_recording(bulletin: Bulletin, language: str, src: Path, *, settings: Settings) -> Recording:
    """Check an uploaded audio file for ``bulletin`` and store it as the internal WAV.

    ``audio.uploads.probe_upload`` accepts audio and nothing else (no playlists, concat lists,
    images, references to other files, wrong extensions; within the duration limit);
    ``audio.uploads.convert_upload`` turns it into a mono 16-bit WAV under a generated name in
    data_dir (``keep_upload``). Only that WAV is ever rendered. Refusals are ``RecordingRefused``.
    """
    from pipeline.audio.uploads import keep_upload  # the ffmpeg adapter

    where = f"bulletin {bulletin.id} ({language}) {src}"
    if language not in LANGUAGES:
        raise RecordingRefused(
            f"{where}: unknown language {language!r}; use {', '.join(LANGUAGES)}", reason="language", language=language
        )
    if language not in bulletin.languages:
        raise RecordingRefused(
            f"{where}: the bulletin does not list {language} in its languages "
            f"({', '.join(bulletin.languages)}); add it there first",
            reason="language",
            language=language,
        )
    try:
        kept = keep_upload(src, settings.recordings_dir / str(bulletin.id), language, settings=settings.audio)
    except RecordingRefused as exc:
        raise RecordingRefused(f"bulletin {bulletin.id} ({language}) {exc}", reason=exc.reason, **exc.params) from exc
    except RenderError as exc:
        raise RecordingRefused(f"{where}: not audio that ffmpeg can read ({exc})", reason="not_audio") from exc
    assert bulletin.id is not None
    return Recording(
        bulletin_id=bulletin.id,
        language=language,
        path=kept.path,
        duration_ms=kept.wav.duration_ms,
        sha256=kept.sha256,
        original_name=src.name,
        codec=kept.source.codec,
        sample_rate=kept.wav.sample_rate,
        channels=kept.wav.channels,
    )
