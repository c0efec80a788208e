"""Letters read by name, and the test for "is this a Vietnamese syllable?".

An all-capital token that is a syllable ("THÔNG", "BÁO", "TÝ") is a word written in
capitals and is read as the word; anything else ("HTX", "VX") is spelled with the
Vietnamese letter names below.
"""

from __future__ import annotations

import re
from types import MappingProxyType
from typing import Final

from pipeline.textnorm.unicode import LETTERS_UPPER, VOWELS_LOWER

#: Vietnamese names of the letters, as a listener expects them in an acronym.
LETTER_NAMES: Final = MappingProxyType(
    {
        "a": "a",
        "ă": "á",
        "â": "ớ",
        "b": "bê",
        "c": "xê",
        "d": "dê",
        "đ": "đê",
        "e": "e",
        "ê": "ê",
        "f": "ép",
        "g": "giê",
        "h": "hát",
        "i": "i",
        "j": "gi",
        "k": "ca",
        "l": "e lờ",
        "m": "em mờ",
        "n": "en nờ",
        "o": "o",
        "ô": "ô",
        "ơ": "ơ",
        "p": "pê",
        "q": "quy",
        "r": "e rờ",
        "s": "ét",
        "t": "tê",
        "u": "u",
        "ư": "ư",
        "v": "vê",
        "w": "vê kép",
        "x": "ích",
        "y": "i",
        "z": "dét",
    }
)

_V: Final = "[" + VOWELS_LOWER + "]"
_SYLLABLE_RE: Final = re.compile(
    rf"(?:ngh|ng|gh|gi|kh|nh|ph|qu|th|tr|ch|[bcdđghklmnpqrstvx])?{_V}{{1,3}}(?:ch|ng|nh|[cmnpt])?"
)
UPPER_CLASS: Final = "[" + LETTERS_UPPER + "]"


def is_syllable(word: str) -> bool:
    """True for one Vietnamese syllable in any case: "Tý", "THÔNG", "a"; False for "UBND"."""
    return _SYLLABLE_RE.fullmatch(word.lower()) is not None


def spell(letters: str) -> str:
    """Letter names, lowercase, one after another: "VX" → "vê ích".

    A letter with a tone mark (only met in names) is read as the syllable it is.
    """
    names = [LETTER_NAMES.get(c, c) for c in letters.lower() if not c.isspace()]
    return " ".join(names)
