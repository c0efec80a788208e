"""The order in which the rules run; see docs/textnorm.md for what each one decides.

Order matters: telephone numbers and document references are read before anything can
take their digits apart; dates written with dashes before dashes become "đến"; dates
before times, fractions and plain numbers; capitals (spelled or lowercased) before the
last pass reads every number that is left, so no digit survives.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from types import MappingProxyType
from typing import Final

from pipeline.textnorm import dates, references, spoken, units
from pipeline.textnorm.lexicon import Lexicon, builtin_lexicon
from pipeline.textnorm.numbers import reading_for
from pipeline.textnorm.unicode import clean

_SYMBOLS: Final = MappingProxyType(
    {
        "&": " và ",
        "№": " số ",
        "~": " khoảng ",
        "≈": " khoảng ",
        "±": " cộng trừ ",
        "*": " ",
        "•": " ",
        "·": " ",
    }
)
_SYMBOL_RE: Final = re.compile("[" + "".join(_SYMBOLS) + "]")
_DIGIT_RE: Final = re.compile("[0-9]")
_SPACES_RE: Final = re.compile(r"  +")
_LINE_EDGE_RE: Final = re.compile(r" *\n *")
_PUNCT: Final = ",.;:!?)"


def normalize(text: str, *, variant: str = "north", lexicon: Lexicon | None = None) -> str:
    """The spoken Vietnamese form of ``text``: no digits, no symbols a TTS engine misreads.

    ``variant`` is "north" (linh, nghìn, hai mươi tư) or "south" (lẻ, ngàn, hai mươi bốn).
    ``lexicon`` is a deployment lexicon from :func:`load_lexicon` (which already contains
    the built-in entries); None uses the built-in lexicon. Pure and thread-safe.
    Line breaks are kept; every other run of white space becomes one space.
    """
    reading_for(variant)  # reject an unknown variant before doing any work
    lex = lexicon if lexicon is not None else builtin_lexicon()
    text = clean(text)
    if not text:
        return ""
    if lex.phrase_re is not None:
        forms = lex.phrase_forms
        text = lex.phrase_re.sub(lambda m: forms[m.group(0)], text)
    text = references.addresses(text)
    has_digits = _DIGIT_RE.search(text) is not None
    if has_digits:
        text = references.phones(text)
        text = references.doc_refs(text, lex, variant)
    if lex.abbreviation_re is not None:
        abbr = lex.abbreviations
        text = lex.abbreviation_re.sub(lambda m: abbr[m.group(0)], text)
    if has_digits:
        text = dates.dash_dates(text, variant)
        text = units.ranges(text)
        text = units.negatives(text)
        text = dates.slash_dates(text, variant)
        text = dates.times(text, variant)
        text = units.fractions(text)
    text = spoken.romans(text, variant)
    if _SYMBOL_RE.search(text):
        text = _SYMBOL_RE.sub(lambda m: _SYMBOLS[m.group(0)], text)
    text = units.slashes(text, variant)
    text = spoken.numbers(text, variant)
    text = spoken.capitals(text, lex, variant)
    if "  " in text:
        text = _SPACES_RE.sub(" ", text)
    for mark in _PUNCT:
        if " " + mark in text:
            text = text.replace(" " + mark, mark)
    while ",," in text:
        text = text.replace(",,", ",")
    if "\n" in text:
        text = _LINE_EDGE_RE.sub("\n", text)
    return text.strip()


def normalize_lines(lines: Iterable[str], *, variant: str = "north", lexicon: Lexicon | None = None) -> Iterator[str]:
    """One normalized line per input line, in order (for ``loa text normalize`` on stdin)."""
    for line in lines:
        yield normalize(line.rstrip("\r\n"), variant=variant, lexicon=lexicon).replace("\n", " ")
