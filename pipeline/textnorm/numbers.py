"""Numbers read aloud in Vietnamese, and back again.

``read_int`` is the one integer reader; everything else (decimals, digits one by one,
Roman numerals, ordinals, month names) builds on it. ``words_to_int`` is its inverse,
used by the tests to check that every integer reads back to itself.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from types import MappingProxyType
from typing import Final, Literal

Variant = Literal["north", "south"]

DIGITS: Final = ("không", "một", "hai", "ba", "bốn", "năm", "sáu", "bảy", "tám", "chín")

#: Months are "tháng một … tháng mười hai" with "tháng tư" for April, in both variants.
MONTHS: Final = (
    "",
    "một",
    "hai",
    "ba",
    "tư",
    "năm",
    "sáu",
    "bảy",
    "tám",
    "chín",
    "mười",
    "mười một",
    "mười hai",
)

_ROMAN_RE: Final = re.compile(r"M{0,3}(CM|CD|D?C{0,3})(XC|XL|L?X{0,3})(IX|IV|V?I{0,3})")
_ROMAN_VALUES: Final = {"I": 1, "V": 5, "X": 10, "L": 50, "C": 100, "D": 500, "M": 1000}
_BILLION: Final = 1_000_000_000


@dataclass(frozen=True, slots=True)
class Reading:
    """The words that differ between the Northern and the Southern reading."""

    zero_tens: str  # 105: một trăm *linh* năm / *lẻ* năm
    thousand: str  # nghìn / ngàn
    four_after_tens: str  # 24: hai mươi *tư* / *bốn*


NORTH: Final = Reading(zero_tens="linh", thousand="nghìn", four_after_tens="tư")
SOUTH: Final = Reading(zero_tens="lẻ", thousand="ngàn", four_after_tens="bốn")


def reading_for(variant: str) -> Reading:
    """The word set for ``variant`` ("north" or "south")."""
    if variant == "north":
        return NORTH
    if variant == "south":
        return SOUTH
    raise ValueError(f"textnorm variant must be 'north' or 'south', not {variant!r}")


def _read_group(n: int, r: Reading, *, full: bool) -> list[str]:
    """0 < n < 1000. ``full`` reads the hundreds even when zero ("không trăm")."""
    hundreds, rest = divmod(n, 100)
    tens, units = divmod(rest, 10)
    words: list[str] = []
    if hundreds or full:
        words += [DIGITS[hundreds], "trăm"]
    if tens == 0:
        if units:
            if words:
                words.append(r.zero_tens)
            words.append(DIGITS[units])
        return words
    if tens == 1:
        words.append("mười")
    else:
        words += [DIGITS[tens], "mươi"]
    if units == 1 and tens > 1:
        words.append("mốt")
    elif units == 4 and tens > 1:
        words.append(r.four_after_tens)
    elif units == 5:
        words.append("lăm")
    elif units:
        words.append(DIGITS[units])
    return words


def _group_tables(r: Reading) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Every group 0–999 read short ("hai mươi ba") and full ("không trăm hai mươi ba")."""
    short = ("", *(" ".join(_read_group(n, r, full=False)) for n in range(1, 1000)))
    full = ("", *(" ".join(_read_group(n, r, full=True)) for n in range(1, 1000)))
    return short, full


# Immutable lookup tables built once at import: reading a number is a few lookups.
_TABLES: Final = MappingProxyType({"north": _group_tables(NORTH), "south": _group_tables(SOUTH)})


def _read_below_billion(n: int, r: Reading, *, leading: bool) -> list[str]:
    short, full = _TABLES["north" if r is NORTH else "south"]
    words: list[str] = []
    for scale, name in ((1_000_000, "triệu"), (1000, r.thousand), (1, "")):
        group, n = divmod(n, scale)
        if group:
            words.append((short if leading else full)[group])
            if name:
                words.append(name)
            leading = False
    return words


def _read_int_words(n: int, r: Reading) -> list[str]:
    if n >= _BILLION:
        high, low = divmod(n, _BILLION)
        words = [*_read_int_words(high, r), "tỷ"]
        if low:
            words += _read_below_billion(low, r, leading=False)
        return words
    return _read_below_billion(n, r, leading=True)


def read_int(n: int, variant: str = "north") -> str:
    """Read a whole number: 2023 → "hai nghìn không trăm hai mươi ba"; negatives with "âm"."""
    r = reading_for(variant)
    if n < 0:
        return "âm " + read_int(-n, variant)
    if n == 0:
        return DIGITS[0]
    if n < 1000:
        return _TABLES[variant][0][n]
    return " ".join(_read_int_words(n, r))


def read_digits(digits: str) -> str:
    """Each digit on its own: "0214" → "không hai một bốn". Non-digits are skipped."""
    return " ".join(DIGITS[int(c)] for c in digits if "0" <= c <= "9")


def read_integer_string(s: str, variant: str = "north") -> str:
    """A run of digits as written: a number, or digit by digit when it is a code.

    Leading zeros on three or more digits ("0012") and runs longer than 15 digits are
    codes, read digit by digit; "07" is seven.
    """
    if len(s) > 15 or (len(s) >= 3 and s[0] == "0"):
        return read_digits(s)
    return read_int(int(s), variant)


def read_fraction_digits(s: str, variant: str = "north") -> str:
    """The part after the decimal comma: leading zeros are "không"; up to two further
    digits are read as a number ("3,25" → "hai mươi lăm"), longer tails digit by digit."""
    stripped = s.lstrip("0")
    zeros = ["không"] * (len(s) - len(stripped))
    if not stripped:
        return " ".join(zeros)
    tail = read_int(int(stripped), variant) if len(stripped) <= 2 else read_digits(stripped)
    return " ".join([*zeros, tail])


def read_decimal(int_part: str, frac_part: str, variant: str = "north") -> str:
    """3,5 → "ba phẩy năm"; 0,05 → "không phẩy không năm"."""
    return f"{read_integer_string(int_part, variant)} phẩy {read_fraction_digits(frac_part, variant)}"


def read_ordinal(n: int, variant: str = "north") -> str:
    """The number after "thứ": 1 → "nhất", 4 → "tư" (both variants), others as cardinals."""
    if n == 1:
        return "nhất"
    if n == 4:
        return "tư"
    return read_int(n, variant)


def read_month(n: int, variant: str = "north") -> str:
    """1–12 → the month's name after "tháng"; other numbers as cardinals."""
    if 1 <= n <= 12:
        return MONTHS[n]
    return read_int(n, variant)


def roman_to_int(s: str) -> int | None:
    """ "XIII" → 13; None unless ``s`` is a well-formed uppercase Roman numeral."""
    if not s or not _ROMAN_RE.fullmatch(s):
        return None
    total = 0
    for i, c in enumerate(s):
        v = _ROMAN_VALUES[c]
        nxt = _ROMAN_VALUES[s[i + 1]] if i + 1 < len(s) else 0
        total += -v if v < nxt else v
    return total


# ---------------------------------------------------------------- words → number

_WORD_DIGITS: Final = MappingProxyType({w: i for i, w in enumerate(DIGITS)} | {"mốt": 1, "tư": 4, "lăm": 5, "nhăm": 5})


def _group_value(words: list[str]) -> int:
    value = 0
    pending: int | None = None
    for w in words:
        if w in _WORD_DIGITS:
            if pending is not None:
                raise ValueError(f"two digits in a row: {' '.join(words)!r}")
            pending = _WORD_DIGITS[w]
        elif w == "trăm":
            value += 100 * (1 if pending is None else pending)
            pending = None
        elif w == "mươi":
            if pending is None:
                raise ValueError(f"'mươi' without a digit: {' '.join(words)!r}")
            value += 10 * pending
            pending = None
        elif w == "mười":
            value += 10
        elif w in ("linh", "lẻ"):
            continue
        else:
            raise ValueError(f"not a number word: {w!r}")
    return value + (pending or 0)


def _below_billion_value(words: list[str]) -> int:
    for scale, names in ((1_000_000, ("triệu",)), (1000, ("nghìn", "ngàn"))):
        idx = [i for i, w in enumerate(words) if w in names]
        if idx:
            i = idx[-1]
            high = _below_billion_value(words[:i]) if words[:i] else 1
            return high * scale + _below_billion_value(words[i + 1 :])
    return _group_value(words)


def words_to_int(text: str) -> int:
    """Parse spoken Vietnamese back into an integer: the inverse of :func:`read_int`.

    Raises ValueError for anything that is not a number read by :func:`read_int`.
    """
    words = text.replace(",", " ").split()
    if not words:
        raise ValueError("no number words")
    if words[0] == "âm":
        return -words_to_int(" ".join(words[1:]))
    if words == ["không"]:
        return 0
    return _words_value(words)


def _words_value(words: list[str]) -> int:
    idx = [i for i, w in enumerate(words) if w in ("tỷ", "tỉ")]
    if idx:
        i = idx[-1]
        high = _words_value(words[:i]) if words[:i] else 1
        return high * _BILLION + (_below_billion_value(words[i + 1 :]) if words[i + 1 :] else 0)
    return _below_billion_value(words)
