"""Clean text before it is read: NFC, one tone-mark placement, plain spaces, no markup.

Everything here is a pure function of its input; tables are built once at import.
"""

from __future__ import annotations

import html
import re
import unicodedata
from types import MappingProxyType
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


_TONE_TABLE: Final = MappingProxyType(_tone_table())
# starts with a plain character set so that the regex engine can scan fast
_TONE_RE: Final = re.compile("[oOuU](?<![qQ][oOuU])[" + "".join(sorted({k[1] for k in _TONE_TABLE})) + r"](?![^\W\d_])")


def canonical_tones(text: str) -> str:
    """ "hoà" → "hòa", "uỷ ban" → "ủy ban", "khoẻ" → "khỏe"; NFC input expected."""
    return _TONE_RE.sub(lambda m: _TONE_TABLE.get(m.group(0), m.group(0)), text)


# ---------------------------------------------------------------- markup, spaces, symbols

_SCRIPT_RE: Final = re.compile(r"<(script|style)\b.*?</\1\s*>", re.IGNORECASE | re.DOTALL)
_BLOCK_TAG_RE: Final = re.compile(r"<\s*(?:br|/p|/div|/li|/h[1-6]|/tr)\b[^>]*>", re.IGNORECASE)
_TAG_RE: Final = re.compile(r"<!--.*?-->|<\s*/?\s*[A-Za-z][^<>]*>", re.DOTALL)
_INVISIBLE: Final = "\u00ad\u200b\u200c\u200d\u2060\ufeff" + "".join(map(chr, range(0xFE00, 0xFE10)))
_ODD_SPACES: Final = "\t\x0b\x0c\x1c\x1d\x1e\x1f\x85\xa0\u1680\u2028\u2029\u202f\u205f\u3000" + "".join(
    map(chr, range(0x2000, 0x200B))
)
_NEWLINES_RE: Final = re.compile(r" ?\n[\n ]*")
_SPACES_RE: Final = re.compile(r"  +")
_KEEP_SYMBOLS: Final = frozenset("°%‰&№")


def _symbol_and_digit_tables() -> tuple[tuple[str, ...], MappingProxyType[int, str]]:
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
    return tuple(drop), MappingProxyType(digits)


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
_ODD_TABLE: Final = MappingProxyType(
    {c: " " for c in _DROP if ord(c) <= 0xFFFF}
    | {c: " " for c in _ODD_SPACES}
    | {c: "" for c in _INVISIBLE}
    | {chr(cp): d for cp, d in _DIGIT_TABLE.items() if cp <= 0xFFFF}
)
# One scan over the Basic Multilingual Plane (a set of BMP characters is matched fast);
# characters beyond it (emoji, math digits, tags) get their own scan, only when present.
_ODD_RE: Final = re.compile(_ranges(sorted(_ODD_TABLE)))
_ASTRAL_RE: Final = re.compile("[\U00010000-\U0010ffff]")


def _astral(m: re.Match[str]) -> str:
    ch = m.group(0)
    if ch in _DROP_ASTRAL_SILENT:
        return ""
    digit = _DIGIT_TABLE.get(ord(ch))
    return digit if digit is not None else " "


_DROP_ASTRAL_SILENT: Final = frozenset(map(chr, [*range(0x1F3FB, 0x1F400), *range(0xE0000, 0xE0080)]))


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
    text = unicodedata.normalize("NFC", text)
    if "<" in text or "&" in text:
        text = unicodedata.normalize("NFC", strip_markup(text))
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    if _ODD_RE.search(text):
        text = _ODD_RE.sub(lambda m: _ODD_TABLE[m.group(0)], text)
    if _ASTRAL_RE.search(text):
        text = _ASTRAL_RE.sub(_astral, text)
    text = canonical_tones(text)
    if "  " in text:
        text = _SPACES_RE.sub(" ", text)
    if "\n" in text:
        text = _NEWLINES_RE.sub("\n", text)
    return text.strip()
