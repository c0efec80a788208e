"""Clean text before it is read: NFC, one tone-mark placement, plain spaces, no markup.

Everything here is a pure function of its input; tables are built once at import.
"""

from __future__ import annotations

import html
import re
import unicodedata
from typing import Final

# ---------------------------------------------------------------- Vietnamese letters

_TONES: Final = ("", "\u0300", "\u0301", "\u0309", "\u0303", "\u0323")  # huyền sắc hỏi ngã nặng
_BASE_VOWELS: Final = "aăâeêioôơuưy"
VOWELS_LOWER: Final = "".join(unicodedata.normalize("NFC", v + t) for v in _BASE_VOWELS for t in _TONES)
LETTERS_LOWER: Final = VOWELS_LOWER + "bcdđfghjklmnpqrstvwxz"
LETTERS_UPPER: Final = LETTERS_LOWER.upper()

# ---------------------------------------------------------------- tone placement
# Both "hoà" and "hòa", "uỷ" and "ủy" are written; Loa reads them the same by moving the
# mark to the first vowel of an open oa/oe/uy syllable ("hòa", "khỏe", "ủy"), the style of
# official documents. "quý" is left alone: there the u belongs to "qu".


def _tone_table() -> dict[str, str]:
    table: dict[str, str] = {}
    for first, second in (("o", "a"), ("o", "e"), ("u", "y")):
        for mark in _TONES[1:]:
            for f, s in ((first, second), (first.upper(), second), (first.upper(), second.upper())):
                new = unicodedata.normalize("NFC", f + s + mark)
                old = unicodedata.normalize("NFC", f + mark) + s
                table[new] = old
    return table


_TONE_TABLE: Final = _tone_table()
_TONE_RE: Final = re.compile("(?<![qQ])(" + "|".join(sorted(_TONE_TABLE, key=len, reverse=True)) + r")(?!\w)")


def canonical_tones(text: str) -> str:
    """ "hoà" → "hòa", "uỷ ban" → "ủy ban", "khoẻ" → "khỏe"; NFC input expected."""
    return _TONE_RE.sub(lambda m: _TONE_TABLE[m.group(1)], text)


# ---------------------------------------------------------------- markup, spaces, symbols

_SCRIPT_RE: Final = re.compile(r"<(script|style)\b.*?</\1\s*>", re.IGNORECASE | re.DOTALL)
_BLOCK_TAG_RE: Final = re.compile(r"<\s*(?:br|/p|/div|/li|/h[1-6]|/tr)\b[^>]*>", re.IGNORECASE)
_TAG_RE: Final = re.compile(r"<!--.*?-->|<\s*/?\s*[A-Za-z][^<>]*>", re.DOTALL)
_INVISIBLE_RE: Final = re.compile("[\u00ad\u200b\u200c\u200d\u2060\ufeff\ufe00-\ufe0f\U0001f3fb-\U0001f3ff]")
_HSPACE_RE: Final = re.compile(r"[^\S\n]+")  # every whitespace but the newline
_NEWLINES_RE: Final = re.compile(r"\s*\n\s*")
_KEEP_SYMBOLS: Final = frozenset("°%‰&№")


def _symbol_and_digit_tables() -> tuple[list[str], dict[int, str]]:
    """Characters removed outright (emoji, pictographs, dingbats, private use) and every
    non-ASCII digit (Arabic-Indic, fullwidth, superscript ², circled ①…) with its value.

    Planes 2–14 hold ideographs and tags only; planes 15–16 (private use) are added as ranges.
    """
    drop: list[str] = []
    digits: dict[int, str] = {}
    for cp in range(0x80, 0x20000):
        ch = chr(cp)
        cat = unicodedata.category(ch)
        if (cat in ("So", "Co", "Cs") or (cat == "Cn" and cp >= 0x1F000)) and ch not in _KEEP_SYMBOLS:
            drop.append(ch)
        elif ch.isdigit():
            digits[cp] = str(unicodedata.digit(ch))
    return drop, digits


def _ranges(chars: list[str]) -> str:
    parts: list[str] = []
    i = 0
    while i < len(chars):
        j = i
        while j + 1 < len(chars) and ord(chars[j + 1]) == ord(chars[j]) + 1:
            j += 1
        lo, hi = re.escape(chars[i]), re.escape(chars[j])
        parts.append(lo if i == j else f"{lo}-{hi}")
        i = j + 1
    return "[" + "".join(parts) + "]"


_DROP, _DIGIT_TABLE = _symbol_and_digit_tables()
_SYMBOL_RE: Final = re.compile(_ranges(_DROP)[:-1] + "\U000e0000-\U000e007f\U000f0000-\U0010ffff]")
_FOREIGN_DIGIT_RE: Final = re.compile(_ranges([chr(cp) for cp in sorted(_DIGIT_TABLE)]))


def strip_markup(text: str) -> str:
    """Remove HTML tags and comments (block ends become line breaks) and decode entities."""
    if "<" in text:
        text = _SCRIPT_RE.sub(" ", text)
        text = _BLOCK_TAG_RE.sub("\n", text)
        text = _TAG_RE.sub(" ", text)
    if "&" in text:
        text = html.unescape(text)
    return text


def clean(text: str) -> str:
    """NFC, markup and emoji removed, ASCII digits, one tone style, single plain spaces.

    Line breaks are kept (one per paragraph); every other space (tab, no-break, narrow,
    ideographic, zero-width) becomes one ordinary space or nothing.
    """
    text = unicodedata.normalize("NFC", strip_markup(text))
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    text = _INVISIBLE_RE.sub("", text)
    text = _SYMBOL_RE.sub(" ", text)
    if _FOREIGN_DIGIT_RE.search(text):
        text = text.translate(_DIGIT_TABLE)
    text = canonical_tones(text)
    text = _HSPACE_RE.sub(" ", text)
    if "\n" in text:
        text = _NEWLINES_RE.sub("\n", text)
    return text.strip()
