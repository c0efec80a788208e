"""The order in which the rules run; see docs/textnorm.md for what each one decides."""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from typing import Final

from pipeline.textnorm import dates, references, spoken, units
from pipeline.textnorm.lexicon import Lexicon, builtin_lexicon
from pipeline.textnorm.numbers import reading_for
from pipeline.textnorm.unicode import clean

_SYMBOLS: Final = {"&": " và ", "№": " số ", "~": " khoảng ", "≈": " khoảng ", "±": " cộng trừ "}
_SYMBOL_RE: Final = re.compile("[" + "".join(_SYMBOLS) + "]")
_SPACES_RE: Final = re.compile(r"[ \t]{2,}")
_SPACE_BEFORE_PUNCT_RE: Final = re.compile(r" +([,.;:!?)])")
_DOUBLE_COMMA_RE: Final = re.compile(r",\s*,")


def _replace(pattern: re.Pattern[str] | None, table: dict[str, str] | None, text: str, *, lower: bool) -> str:
    if pattern is None or table is None:
        return text
    return pattern.sub(lambda m: table[m.group(0).lower() if lower else m.group(0)], text)


def normalize(text: str, *, variant: str = "north", lexicon: Lexicon | None = None) -> str:
    """The spoken Vietnamese form of ``text``: no digits, no symbols a TTS engine misreads.

    ``variant`` is "north" (linh, nghìn, hai mươi tư) or "south" (lẻ, ngàn, hai mươi bốn).
    ``lexicon`` is a deployment lexicon from :func:`load_lexicon` (which already contains
    the built-in entries); None uses the built-in lexicon. Pure and thread-safe.
    """
    reading_for(variant)  # reject an unknown variant before doing any work
    lex = lexicon if lexicon is not None else builtin_lexicon()
    text = clean(text)
    if not text:
        return ""
    text = _replace(lex.phrase_re, dict(lex.phrases), text, lower=True) if lex.phrase_re else text
    text = references.phones(text)
    text = references.doc_refs(text, lex, variant)
    if lex.abbreviation_re is not None:
        abbr = lex.abbreviations
        text = lex.abbreviation_re.sub(lambda m: abbr[m.group(0)], text)
    text = dates.dash_dates(text, variant)
    text = units.ranges(text)
    text = dates.slash_dates(text, variant)
    text = dates.times(text, variant)
    text = units.fractions(text)
    text = spoken.romans(text, variant)
    text = units.units(text, variant)
    text = units.slashes(text)
    if _SYMBOL_RE.search(text):
        text = _SYMBOL_RE.sub(lambda m: _SYMBOLS[m.group(0)], text)
    text = spoken.capitals(text, lex, variant)
    text = spoken.numbers(text, variant)
    text = _SPACES_RE.sub(" ", text)
    text = _SPACE_BEFORE_PUNCT_RE.sub(r"\1", text)
    return _DOUBLE_COMMA_RE.sub(",", text).strip()


def normalize_lines(
    lines: Iterable[str], *, variant: str = "north", lexicon: Lexicon | None = None
) -> Iterator[str]:
    """One normalized line per input line, in order (for ``loa text normalize`` on stdin)."""
    for line in lines:
        yield normalize(line.rstrip("\r\n"), variant=variant, lexicon=lexicon).replace("\n", " ")
