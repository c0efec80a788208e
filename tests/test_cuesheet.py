"""The cue-sheet parser: directives, paragraphs, escaping and errors with line numbers."""

from __future__ import annotations

import pytest

from pipeline.cuesheet import escape_speech, parse_cue_sheet
from pipeline.errors import ScriptError

SHEET = """@chime open
Kính thưa bà con nhân dân xã Tả Van.
Hôm nay là thứ hai.

@pause 600
@clip hmn/intro
@recording 42 hmn
@say vi: Xin cảm ơn.
@note thiếu bản ghi tiếng Dao
@@pause is a word here
"""


def test_parse_cues_with_line_numbers() -> None:
    script = parse_cue_sheet(SHEET, name="t")
    assert [(c.kind, c.line) for c in script.cues] == [
        ("chime", 1), ("speech", 2), ("pause", 5), ("clip", 6), ("recording", 7), ("say", 8), ("comment", 9),
        ("speech", 10),
    ]  # fmt: skip
    cues = script.cues
    assert cues[1].text == "Kính thưa bà con nhân dân xã Tả Van. Hôm nay là thứ hai."
    assert cues[2].ms == 600
    assert (cues[3].key, cues[3].language) == ("hmn/intro", "hmn")
    assert (cues[4].bulletin_id, cues[4].language) == (42, "hmn")
    assert (cues[5].language, cues[5].text) == ("vi", "Xin cảm ơn.")
    assert cues[7].text == "@pause is a word here"


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("@jingle open", "unknown directive"),
        ("@pause", "write @pause MS"),
        ("@pause 0", "write @pause MS"),
        ("@pause 90000", "write @pause MS"),
        ("@pause ten", "write @pause MS"),
        ("@clip intro", "write @clip LANG/KEY"),
        ("@clip ../etc/passwd", "write @clip LANG/KEY"),
        ("@recording x hmn", "write @recording BULLETIN LANG"),
        ("@recording 4 fr", "write @recording BULLETIN LANG"),
        ("@say hmn Xin chào", "write @say LANG: TEXT"),
        ("@chime", "write @chime NAME"),
        ("@say hmn: Nyob zoo", "no speech engine speaks hmn; use a recorded clip"),
    ],
)
def test_malformed_directive_names_sheet_and_line(line: str, message: str) -> None:
    with pytest.raises(ScriptError) as exc:
        parse_cue_sheet(f"Xin chào.\n\n{line}\n", name="program.vi.j2")
    assert str(exc.value).startswith("program.vi.j2: line 3: ")
    assert message in str(exc.value)


def test_escaped_text_stays_speech() -> None:
    text = escape_speech("@pause 5\n  @recording 1 hmn\nbình thường")
    cues = parse_cue_sheet(text, name="t").cues
    assert [c.kind for c in cues] == ["speech"]
    assert cues[0].text == "@pause 5 @recording 1 hmn bình thường"
