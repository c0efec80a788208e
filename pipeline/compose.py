"""Compose: a program plan and the deployment's Jinja2 templates → a cue sheet → a Script.

One Jinja2 environment (StrictUndefined, no autoescape) renders ``templates/*.vi.j2``
into cue sheets (see ``pipeline/cuesheet.py``). Bulletin text reaches the templates only
as data: it is never part of a template's source, so ``{{ 7*7 }}`` in a bulletin is read
literally, and lines starting with ``@`` are escaped so they cannot become directives.
Template errors and missing standard clips are ScriptErrors naming template and line;
missing clips are listed all at once.
"""

from __future__ import annotations

import datetime as dt
import re
import traceback
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import jinja2

from pipeline.cuesheet import escape_speech, parse_cue_sheet
from pipeline.errors import ScriptError
from pipeline.models import LANGUAGES, TTS_LANGUAGES, Bulletin, Commune, Cue, Gap, ProgramPlan, Recording, Script
from pipeline.textnorm import normalize, read_int
from pipeline.voices import Catalog, standard_keys

PROGRAM = "program.vi.j2"
BULLETIN = "bulletin.vi.j2"
EMERGENCY = "emergency.vi.j2"
WEEKDAYS_VI = ("thứ hai", "thứ ba", "thứ tư", "thứ năm", "thứ sáu", "thứ bảy", "chủ nhật")
MONTHS_VI = ("một", "hai", "ba", "tư", "năm", "sáu", "bảy", "tám", "chín", "mười", "mười một", "mười hai")
_BLANK_LINE_RE = re.compile(r"\n[ \t]*\n")
SLOT_TITLES = {"morning": "buổi sáng", "noon": "buổi trưa", "evening": "buổi chiều", "night": "buổi tối"}


def vi_date(day: dt.date) -> str:
    """ "ngày mười tháng mười hai năm hai nghìn không trăm hai mươi sáu"."""
    return f"ngày {read_int(day.day)} tháng {MONTHS_VI[day.month - 1]} năm {read_int(day.year)}"


def vi_weekday(day: dt.date) -> str:
    return WEEKDAYS_VI[day.weekday()]


def language_name(lang: str) -> str:
    return LANGUAGES.get(lang, lang).replace("Tiếng", "tiếng")


@dataclass(frozen=True)
class TemplateSet:
    directory: Path
    env: jinja2.Environment

    @classmethod
    def load(cls, directory: Path) -> TemplateSet:
        missing = [n for n in (PROGRAM, BULLETIN, EMERGENCY) if not (directory / n).is_file()]
        if missing:
            raise ScriptError(f"{directory}: missing templates {', '.join(missing)}")
        env = jinja2.Environment(
            loader=jinja2.FileSystemLoader(str(directory)),
            undefined=jinja2.StrictUndefined,
            autoescape=False,
            trim_blocks=True,
            lstrip_blocks=True,
            keep_trailing_newline=True,
        )
        env.filters.update(
            vi_date=vi_date,
            vi_weekday=vi_weekday,
            vi_number=lambda n: read_int(int(n)),
            spoken=lambda text: normalize(str(text)),
            language_name=language_name,
        )
        return cls(directory, env)

    def render(self, name: str, context: Mapping[str, Any]) -> str:
        try:
            return self.env.get_template(name).render(**context)
        except jinja2.TemplateSyntaxError as exc:
            raise ScriptError(f"{self.directory / (exc.name or name)}: line {exc.lineno}: {exc.message}") from exc
        except jinja2.TemplateError as exc:
            where = _template_frame(exc) or str(self.directory / name)
            raise ScriptError(f"{where}: {exc.__class__.__name__}: {exc}") from exc


def _template_frame(exc: BaseException) -> str | None:
    """The template file and line where a render error happened, from the traceback."""
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if f.filename.endswith(".j2")]
    return f"{frames[-1].filename}: line {frames[-1].lineno}" if frames else None


def _one_line(text: str) -> str:
    return escape_speech(" ".join(text.split()))


def paragraphs(body: str) -> list[str]:
    """The body's paragraphs, each on one line, escaped for the cue sheet."""
    blocks = [" ".join(block.split()) for block in _BLANK_LINE_RE.split(body.replace("\r", ""))]
    return [escape_speech(b) for b in blocks if b]


def _item(
    b: Bulletin,
    languages: tuple[str, ...],
    recordings: Mapping[tuple[int, str], Recording],
    missing: list[Gap],
    day: dt.date | None = None,
) -> dict[str, Any]:
    assert b.id is not None
    ethnic = [lang for lang in languages if lang not in TTS_LANGUAGES]
    have = [lang for lang in ethnic if (b.id, lang) in recordings]
    lacking = [lang for lang in ethnic if (b.id, lang) not in recordings]
    missing.extend(Gap("recording", b.id, b.title, lang) for lang in lacking)
    read_vi = "vi" in languages and (b.id, "vi") in recordings  # a person's reading airs instead of TTS
    return {
        "id": b.id,
        "title": _one_line(b.title),
        "source": _one_line(b.source),
        "reference": _one_line(b.reference),
        "priority": b.priority,
        "paragraphs": paragraphs(b.body) if "vi" in languages and not read_vi else [],
        "vi_recording": read_vi,
        "languages": have,
        "missing": lacking,
        "consultation": call_to_action(b, day),
    }


def _finish(
    text: str, *, name: str, catalog: Catalog, items: list[dict[str, Any]], missing: list[Gap], on_missing: str
) -> Script:
    if missing and on_missing == "fail":
        raise ScriptError(
            f'{name}: missing recordings (on_missing_recording = "fail"): ' + "; ".join(map(str, missing)),
            code="script.missing_recordings",
            name=name,
            count=len(missing),
        )
    script = recorded_phrases(_attribute(parse_cue_sheet(text, name=name), items), catalog)
    keys = [c.key if c.kind == "clip" else f"chime/{c.key}" for c in script.cues if c.kind in ("clip", "chime")]
    absent = catalog.missing(keys)
    if absent:
        raise ScriptError(
            f"{name}: missing clips: " + "; ".join(absent), code="script.missing_clips", name=name, count=len(absent)
        )
    return replace(script, missing=tuple(missing))


def _attribute(script: Script, items: list[dict[str, Any]]) -> Script:
    """Mark the speech cues that are a bulletin's own paragraphs with its id.

    Render errors then name the bulletin, and rendered segments carry it (their measured
    length can feed the next plan's ``durations``).
    """
    owners: dict[str, int] = {}
    for item in items:
        for paragraph in item["paragraphs"]:
            owners.setdefault(paragraph[1:] if paragraph.startswith("@@") else paragraph, item["id"])
    cues = tuple(
        replace(c, bulletin_id=owners[c.text]) if c.kind == "speech" and c.text in owners else c for c in script.cues
    )
    return replace(script, cues=cues)


def _phrase_key(text: str) -> str:
    return " ".join(unicodedata.normalize("NFC", text).split()).casefold()


def recorded_phrases(script: Script, catalog: Catalog) -> Script:
    """Template speech that a person has recorded in voices/ (a ``vi`` clip whose transcript is
    the same text, case and spacing aside) airs as that clip instead of TTS.

    Placeholders and clips whose file is missing are not used: TTS speaks then.
    """
    phrases = {
        _phrase_key(c.transcript): c.key
        for c in catalog.clips
        if c.language == "vi" and c.transcript and not c.placeholder and c.file.is_file()
    }
    if not phrases:
        return script
    cues = tuple(
        Cue("clip", c.line, key=phrases[_phrase_key(c.text)], language="vi")
        if c.kind == "speech" and c.bulletin_id is None and _phrase_key(c.text) in phrases
        else c
        for c in script.cues
    )
    return replace(script, cues=cues)


def _commune_context(commune: Commune, catalog: Catalog | None = None) -> dict[str, Any]:
    return {
        "placeholders": sorted(c.key for c in catalog.clips if c.placeholder) if catalog else [],
        "commune": {"name": commune.name, "code": commune.code, "kind": commune.kind, "languages": commune.languages},
        "ethnic": [lang for lang in commune.languages if lang not in TTS_LANGUAGES],
    }


def compose_script(
    plan: ProgramPlan,
    *,
    templates: TemplateSet,
    catalog: Catalog,
    recordings: Mapping[tuple[int, str], Recording],
    on_missing: str = "skip",
) -> Script:
    """The cue sheet of one program, parsed."""
    missing: list[Gap] = []
    items = [_item(i.bulletin, i.languages, recordings, missing, plan.date) for i in plan.items]
    context = _commune_context(plan.commune, catalog) | {
        "date": plan.date,
        "slot": {"name": plan.slot.name, "start": plan.slot.start.strftime("%H:%M")},
        "slot_title": SLOT_TITLES.get(plan.slot.name, plan.slot.name),
        "items": items,
    }
    text = templates.render(PROGRAM, context)
    name = f"{plan.commune.code}/{plan.date.isoformat()}/{plan.slot.name}"
    return _finish(text, name=name, catalog=catalog, items=items, missing=missing, on_missing=on_missing)


def compose_emergency(
    bulletin: Bulletin,
    commune: Commune,
    *,
    templates: TemplateSet,
    catalog: Catalog,
    recordings: Mapping[tuple[int, str], Recording],
    on_missing: str = "skip",
) -> Script:
    """The cue sheet of an emergency bulletin for one commune, said twice."""
    missing: list[Gap] = []
    languages = tuple(lang for lang in commune.languages if lang in bulletin.languages)
    item = _item(bulletin, languages, recordings, missing)
    text = templates.render(EMERGENCY, _commune_context(commune, catalog) | {"item": item})
    name = f"{commune.code}/emergency/{bulletin.id}"
    return _finish(text, name=name, catalog=catalog, items=[item], missing=missing, on_missing=on_missing)


#: Letters of a campaign code as they are said in Vietnamese, so the code is spelled out.
_LETTER_NAMES = "a|bê|xê|đê|e|ép|gờ|hát|i|gi|ca|e lờ|em mờ|en nờ|o|pê|quy|e rờ|ét|tê|u|vê|vê kép|ích|i dài|dét"
LETTERS_VI = dict(zip("ABCDEFGHIJKLMNOPQRSTUVWXYZ", _LETTER_NAMES.split("|"), strict=True))
DIGITS_VI = ("không", "một", "hai", "ba", "bốn", "năm", "sáu", "bảy", "tám", "chín")


def spell_code(code: str) -> str:
    """ "GY27" → "gờ, i dài, hai, bảy": a code said one sign at a time, easy to repeat on the phone."""
    return ", ".join(DIGITS_VI[int(ch)] if ch.isdigit() else LETTERS_VI.get(ch, ch) for ch in code.upper())


def call_to_action(b: Bulletin, day: dt.date | None) -> dict[str, Any] | None:
    """What a consultation's bulletin adds: the code, the closing date, the agency (None after it closes)."""
    spec = b.consultation
    if spec is None or (day is not None and day > spec.closes):
        return None
    return {
        "code": spec.code,
        "code_spoken": spell_code(spec.code),
        "closes": f"{spec.closes.day}/{spec.closes.month}/{spec.closes.year}",
        "agency": _one_line(spec.agency),
        "questions": len(spec.questions),
    }


def required_clips(commune: Commune) -> list[str]:
    return standard_keys(commune.languages)
