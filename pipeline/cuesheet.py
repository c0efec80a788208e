"""The cue-sheet language: plain text a person can read and edit, parsed into cues.

Bare paragraphs (lines separated by blank lines) are Vietnamese speech. Lines starting
with ``@`` are directives::

    @chime NAME              open | close | attention (clips chime/NAME in voices/)
    @pause MS                silence, 1–60000 ms
    @clip LANG/KEY           a recorded clip from voices/catalog.toml
    @recording BULLETIN LANG the bulletin's own recording in that language
    @say LANG: TEXT          speech in a language that has a speech engine (vi)
    @note TEXT               a note for the reader and the report; not aired

A speech line that must start with ``@`` is written ``@@…``. Errors are ScriptErrors
naming the sheet (template) and the line.
"""

from __future__ import annotations

import re

from pipeline.errors import ScriptError
from pipeline.models import LANGUAGES, TTS_LANGUAGES, Cue, Script

_CHIME_RE = re.compile(r"^[a-z][a-z0-9_-]{0,31}$")
_CLIP_RE = re.compile(r"^(?P<lang>[a-z]{2,3}|chime)/(?P<key>[a-z0-9][a-z0-9_-]{0,63})$")
_SAY_RE = re.compile(r"^(?P<lang>[a-z]{2,3}):\s*(?P<text>\S.*)$")
MAX_PAUSE_MS = 60_000


def escape_speech(text: str) -> str:
    """Make text safe to place in a sheet as speech: a leading ``@`` cannot start a directive."""
    return "\n".join("@" + line.lstrip() if line.lstrip().startswith("@") else line for line in text.split("\n"))


def parse_cue_sheet(text: str, *, name: str) -> Script:
    cues: list[Cue] = []
    paragraph: list[str] = []
    start = 0

    def flush() -> None:
        if paragraph:
            cues.append(Cue("speech", start, text=" ".join(paragraph)))
            paragraph.clear()

    for number, raw in enumerate(text.split("\n"), start=1):
        line = raw.strip()
        if not line:
            flush()
            continue
        if line.startswith("@") and not line.startswith("@@"):
            flush()
            cues.append(_directive(line, number, name))
            continue
        if not paragraph:
            start = number
        paragraph.append(line[1:] if line.startswith("@@") else line)
    flush()
    return Script(name=name, text=text, cues=tuple(cues))


def _directive(line: str, number: int, name: str) -> Cue:
    word, _, rest = line[1:].partition(" ")
    rest = rest.strip()

    def bad(message: str) -> ScriptError:
        return ScriptError(f"{name}: line {number}: {line!r}: {message}")

    if word == "chime":
        if not _CHIME_RE.match(rest):
            raise bad("write @chime NAME, e.g. @chime open")
        return Cue("chime", number, key=rest, language="zxx")
    if word == "pause":
        if not rest.isdigit() or not 0 < int(rest) <= MAX_PAUSE_MS:
            raise bad(f"write @pause MS with 1 to {MAX_PAUSE_MS} milliseconds, e.g. @pause 600")
        return Cue("pause", number, ms=int(rest), language="zxx")
    if word == "clip":
        m = _CLIP_RE.match(rest)
        if not m:
            raise bad("write @clip LANG/KEY, e.g. @clip hmn/intro")
        return Cue("clip", number, key=rest, language=m["lang"] if m["lang"] != "chime" else "zxx")
    if word == "recording":
        parts = rest.split()
        if len(parts) != 2 or not parts[0].isdigit() or parts[1] not in LANGUAGES:
            raise bad(f"write @recording BULLETIN LANG with LANG one of {', '.join(LANGUAGES)}")
        return Cue("recording", number, bulletin_id=int(parts[0]), language=parts[1])
    if word == "say":
        m = _SAY_RE.match(rest)
        if not m or m["lang"] not in LANGUAGES:
            raise bad("write @say LANG: TEXT, e.g. @say vi: Xin chào")
        if m["lang"] not in TTS_LANGUAGES:
            raise bad(f"no speech engine speaks {m['lang']}; use a recorded clip (@clip {m['lang']}/KEY)")
        return Cue("say", number, text=m["text"], language=m["lang"])
    if word == "note":
        return Cue("comment", number, text=rest)
    raise bad("unknown directive; use @chime, @pause, @clip, @recording, @say or @note")
