"""Bulletin intake: Markdown with TOML front matter → ``Bulletin``, and recordings.

Every file is checked before anything is stored; a bad file is a ``BulletinError``
naming the file, the field and (where TOML gives one) the line.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import re
import tomllib
import unicodedata
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipeline.config import Settings
from pipeline.errors import BulletinError, RecordingRefused, RenderError
from pipeline.feedback.intake import parse_policy
from pipeline.files import sha256_file
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

log = logging.getLogger(__name__)

MAX_BODY_CHARS = 20_000
MAX_FILE_BYTES = 1_000_000
REQUIRED = ("title", "category", "priority", "source", "valid_from", "valid_until", "targets")
OPTIONAL = ("reference", "languages", "policy", "stage", "consultation", "replay_every_minutes", "public")
#: Replays at most every 15 minutes, at least once a day.
REPLAY_MINUTES_RANGE = (15, 1440)

_CONTROL_RE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u200b\u200e\u200f\u202a-\u202e\u2066-\u2069\ufeff]")
_TAG_RE = re.compile(r"</?[A-Za-z][A-Za-z0-9-]*(?:\s[^<>]*)?/?>|<!--.*?-->", re.DOTALL)
_TOML_LINE_RE = re.compile(r"\(at line (\d+), column (\d+)\)")


@dataclass(frozen=True, slots=True)
class Parsed:
    bulletin: Bulletin
    warnings: tuple[str, ...]


def clean_text(text: str) -> tuple[str, bool]:
    """NFC, control characters removed, HTML tags stripped; says whether tags were found."""
    text = unicodedata.normalize("NFC", text.replace("\r\n", "\n").replace("\r", "\n"))
    stripped = _TAG_RE.sub("", text)
    had_html = stripped != text
    stripped = _CONTROL_RE.sub("", stripped.replace("\t", " "))
    return stripped, had_html


def _split_front_matter(text: str, where: str) -> tuple[str, str, int]:
    """Return (front matter, body, line number of the body's first line)."""
    lines = text.split("\n")
    if not lines or lines[0].strip() != "+++":
        raise BulletinError(f"{where}: line 1: a bulletin starts with a +++ line, then TOML fields, then +++")
    for i, line in enumerate(lines[1:], start=1):
        if line.strip() == "+++":
            return "\n".join(lines[1:i]), "\n".join(lines[i + 1 :]), i + 2
    raise BulletinError(f"{where}: the front matter opened on line 1 is never closed with a +++ line")


def _line_of(front: str, key: str) -> int | None:
    for i, line in enumerate(front.split("\n"), start=2):
        if re.match(rf"\s*{re.escape(key)}\s*=", line):
            return i
    return None


def parse_bulletin(text: str, *, where: str, deployment: Deployment) -> Parsed:
    """Check one bulletin's text; ``where`` names it in errors (usually its path)."""
    text, had_html = clean_text(text)
    warnings = [f"{where}: HTML tags were removed from the text"] if had_html else []
    front, body, _ = _split_front_matter(text, where)
    try:
        meta: dict[str, Any] = tomllib.loads(front)
    except tomllib.TOMLDecodeError as exc:
        msg = str(exc)
        m = _TOML_LINE_RE.search(msg)
        if m:  # the TOML starts on line 2 of the file
            msg = f"line {int(m.group(1)) + 1}: " + _TOML_LINE_RE.sub("", msg).strip()
        raise BulletinError(f"{where}: {msg}; fix the TOML between the +++ lines") from exc

    def fail(key: str, message: str) -> BulletinError:
        line = _line_of(front, key)
        return BulletinError(f"{where}: {'line ' + str(line) + ': ' if line else ''}{key}: {message}")

    unknown = sorted(set(meta) - set(REQUIRED) - set(OPTIONAL))
    if unknown:
        raise fail(unknown[0], f"unknown field; the fields are {', '.join(REQUIRED + OPTIONAL)}")
    for key in REQUIRED:
        if key not in meta:
            raise BulletinError(f"{where}: {key}: missing; add `{key} = …` to the front matter")
    for key in ("title", "source", "category", "priority"):
        if not isinstance(meta[key], str) or not meta[key].strip():
            raise fail(key, "must be a non-empty text in quotes")
    reference = meta.get("reference", "")
    if not isinstance(reference, str):
        raise fail("reference", "must be a text in quotes")
    if meta["category"] not in CATEGORIES:
        raise fail("category", f"unknown category {meta['category']!r}; use one of {', '.join(CATEGORIES)}")
    tier = tier_of(meta["priority"])
    if tier is None:
        old_names = ", ".join(k for k in TIER_ALIASES if k not in TIERS)
        raise fail(
            "priority",
            f"unknown priority {meta['priority']!r}; use one of {', '.join(TIERS)} "
            f"(old names {old_names} are read too)",
        )
    replay = meta.get("replay_every_minutes")
    if replay is not None:
        low, high = REPLAY_MINUTES_RANGE
        if not isinstance(replay, int) or isinstance(replay, bool) or not low <= replay <= high:
            raise fail("replay_every_minutes", f"must be a whole number of minutes from {low} to {high}, e.g. 120")
        if tier != "emergency":
            raise fail("replay_every_minutes", f"only emergency bulletins replay; this one is {tier}")
    for key in ("valid_from", "valid_until"):
        value = meta[key]
        if not isinstance(value, dt.date) or isinstance(value, dt.datetime):
            raise fail(key, "must be a date without quotes, e.g. 2026-12-01")
    if meta["valid_until"] < meta["valid_from"]:
        raise fail("valid_until", f"{meta['valid_until']} is before valid_from {meta['valid_from']}")
    targets = meta["targets"]
    if not isinstance(targets, list) or not targets or not all(isinstance(t, str) for t in targets):
        raise fail("targets", 'must be a list such as ["all"], ["bat-xat"] or ["02641"]')
    known = {"all"} | {g.id for g in deployment.groups} | {c.code for c in deployment.communes}
    bad = [t for t in targets if t not in known]
    if bad:
        raise fail("targets", f'{bad[0]!r} is not "all", a group id or a commune code; see `loa communes`')
    languages = meta.get("languages", ["vi"])
    if not isinstance(languages, list) or not languages or not all(isinstance(x, str) for x in languages):
        raise fail("languages", 'must be a list such as ["vi", "hmn"]')
    bad = [x for x in languages if x not in LANGUAGES]
    if bad:
        raise fail("languages", f"unknown language {bad[0]!r}; use {', '.join(LANGUAGES)}")
    public = meta.get("public", True)
    if not isinstance(public, bool):
        raise fail("public", "must be true or false without quotes (false: internal, not published)")
    body = body.strip()
    if not body:
        raise BulletinError(f"{where}: the body is empty; write the bulletin's text after the closing +++")
    if len(body) > MAX_BODY_CHARS:
        raise BulletinError(
            f"{where}: the body has {len(body)} characters, more than {MAX_BODY_CHARS}; split the bulletin"
        )
    policy, stage, consultation = parse_policy(meta, front, where=where)
    bulletin = Bulletin(
        policy=policy,
        stage=stage,
        consultation=consultation,
        title=meta["title"].strip(),
        category=meta["category"],
        priority=tier,
        source=meta["source"].strip(),
        reference=reference.strip(),
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
            raise BulletinError(f"{path}: {size} bytes is too large for a bulletin file (limit {MAX_FILE_BYTES})")
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BulletinError(f"{path}: not UTF-8 text (byte {exc.start}); save the file as UTF-8") from exc
    except OSError as exc:
        raise BulletinError(f"{path}: cannot read: {exc.strerror}") from exc
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
                "one bulletin per title and source"
            )
        seen[key] = p.bulletin.source_file or ""
    return parsed


# --- recordings -----------------------------------------------------------------


def prepare_recording(bulletin: Bulletin, language: str, src: Path, *, settings: Settings) -> Recording:
    """Check an uploaded audio file for ``bulletin`` and store it as the internal WAV.

    ``audio.uploads.probe_upload`` accepts audio and nothing else (no playlists, concat lists,
    images, references to other files, wrong extensions; within the duration limit);
    ``audio.uploads.convert_upload`` turns it into a mono 16-bit WAV under a generated name in
    data_dir. Only that WAV is ever rendered. Refusals are ``RecordingRefused``.
    """
    from pipeline.audio.uploads import convert_upload, probe_upload  # the ffmpeg adapter

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
        info = probe_upload(src, settings=settings.audio)
        dest_dir = settings.recordings_dir / str(bulletin.id)
        dest_dir.mkdir(parents=True, exist_ok=True)
        tmp = dest_dir / f".incoming-{uuid.uuid4().hex}.wav"
        try:
            wav = convert_upload(src, tmp, info=info, settings=settings.audio)
            digest = sha256_file(tmp)
            dest = dest_dir / f"{language}-{digest[:16]}.wav"
            os.replace(tmp, dest)
        finally:
            tmp.unlink(missing_ok=True)
    except RecordingRefused as exc:
        raise RecordingRefused(f"bulletin {bulletin.id} ({language}) {exc}", reason=exc.reason, **exc.params) from exc
    except RenderError as exc:
        raise BulletinError(f"{where}: not audio that ffmpeg can read ({exc})") from exc
    assert bulletin.id is not None
    return Recording(
        bulletin_id=bulletin.id,
        language=language,
        path=dest,
        duration_ms=wav.duration_ms,
        sha256=digest,
        original_name=src.name,
        codec=info.codec,
        sample_rate=wav.sample_rate,
        channels=wav.channels,
    )
