"""Abbreviations, document codes and pronunciations, read from TOML lexicons.

A lexicon file has three optional tables (see voices/lexicon.vi.toml)::

    [abbreviations]   # written exactly so (case matters), anywhere: UBND = "ủy ban nhân dân"
    [codes]           # parts of a document code after its number: 407/QĐ-TTg → QĐ, TTg
    [phrases]         # words or phrases, e.g. names: Fansipan = "Phan Xi Păng"

The built-in lexicon ships with the package (abbreviations.vi.toml); a deployment lexicon
is laid over it by :func:`load_lexicon`, its entries winning.
"""

from __future__ import annotations

import re
import tomllib
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path
from types import MappingProxyType
from typing import Final

from pipeline.errors import ConfigError
from pipeline.textnorm.unicode import canonical_tones

SECTIONS: Final = ("abbreviations", "codes", "phrases")
_VALUE_RE: Final = re.compile(r"[^\W\d_]+(?:[ ,.;:'\-]+[^\W\d_]+)*[.,]?")
_ABBR_KEY_RE: Final = re.compile(r"[^\W_][\w.&/\-]*")
_CODE_KEY_RE: Final = re.compile(r"[^\W\d_][^\W_]*")
_PHRASE_KEY_RE: Final = re.compile(r"[^\W_](?:[\w .,/'\-]*[^\W_])?")
_TOML_LINE_RE: Final = re.compile(r"at line (\d+)")
_HEADER_RE: Final = re.compile(r"\s*\[\s*([\w\"'.\- ]+?)\s*\]")
_KEY_LINE_RE: Final = re.compile(r"""\s*(?:"((?:[^"\\]|\\.)*)"|'([^']*)'|([\w\-]+))\s*=""")


def _nfc(s: str) -> str:
    return canonical_tones(unicodedata.normalize("NFC", s))


def _compile(keys: list[str]) -> re.Pattern[str] | None:
    """One alternation of all keys, longest first, each a whole word.

    Keys are grouped by their first character, which is matched literally before anything
    else (the "not inside a word" look-behind comes right after it): the regex engine then
    scans fast for the few characters that can start a key and tries only that group.
    """
    if not keys:
        return None
    groups: dict[str, list[str]] = {}
    for key in sorted(keys, key=len, reverse=True):
        tail = r"(?!\w)" if key[-1].isalnum() else ""
        groups.setdefault(key[0], []).append(re.escape(key[1:]) + tail)
    parts = [re.escape(first) + r"(?<!\w.)(?:" + "|".join(alts) + ")" for first, alts in groups.items()]
    return re.compile("|".join(parts))


def _case_forms(phrase: str) -> set[str]:
    """The forms a phrase is matched in: as written, lowercase, Capitalized, Each Word, UPPER."""
    lower = phrase.lower()
    return {phrase, lower, lower[:1].upper() + lower[1:], lower.title(), lower.upper()}


@dataclass(frozen=True, slots=True)
class Lexicon:
    """Read-only entries plus the patterns that find them; build with :meth:`build`."""

    abbreviations: Mapping[str, str]
    codes: Mapping[str, str]
    phrases: Mapping[str, str]  # keys lowercased
    phrase_forms: Mapping[str, str]  # every matched case form → spoken
    abbreviation_re: re.Pattern[str] | None
    phrase_re: re.Pattern[str] | None

    @classmethod
    def build(
        cls,
        *,
        abbreviations: Mapping[str, str] | None = None,
        codes: Mapping[str, str] | None = None,
        phrases: Mapping[str, str] | None = None,
    ) -> Lexicon:
        abbr = {_nfc(k): _nfc(v) for k, v in (abbreviations or {}).items()}
        code = {_nfc(k): _nfc(v) for k, v in (codes or {}).items()}
        phr = {_nfc(k).lower(): _nfc(v) for k, v in (phrases or {}).items()}
        forms = {form: v for k, v in phr.items() for form in _case_forms(k)}
        return cls(
            abbreviations=MappingProxyType(abbr),
            codes=MappingProxyType(code),
            phrases=MappingProxyType(phr),
            phrase_forms=MappingProxyType(forms),
            abbreviation_re=_compile(list(abbr)),
            phrase_re=_compile(list(forms)),
        )

    def merged(self, other: Lexicon) -> Lexicon:
        """This lexicon with ``other``'s entries added; ``other`` wins on a clash."""
        return Lexicon.build(
            abbreviations={**self.abbreviations, **other.abbreviations},
            codes={**self.codes, **other.codes},
            phrases={**self.phrases, **other.phrases},
        )

    def __len__(self) -> int:
        return len(self.abbreviations) + len(self.codes) + len(self.phrases)


def _line_of(raw: str, section: str, key: str) -> int:
    """The line where ``key`` is defined in ``[section]`` (1 when it cannot be found)."""
    current = ""
    for number, line in enumerate(raw.splitlines(), start=1):
        header = _HEADER_RE.match(line)
        if header and not line.lstrip().startswith("[["):
            current = header.group(1).strip("\"'")
            if not key and current == section:
                return number
            continue
        m = _KEY_LINE_RE.match(line)
        if m and current == section:
            found = next(g for g in m.groups() if g is not None)
            if found == key:
                return number
    return 1


def _check_entry(section: str, key: str, value: object) -> str | None:
    """The problem with one entry, or None when it is fine."""
    if not isinstance(value, str):
        return f"the value of {key!r} must be a quoted string of spoken words"
    if not _VALUE_RE.fullmatch(value.strip()):
        return (
            f"the value of {key!r} must be words only (letters, spaces, commas, hyphens), "
            f"with numbers written out: got {value!r}"
        )
    key_re = {"abbreviations": _ABBR_KEY_RE, "codes": _CODE_KEY_RE, "phrases": _PHRASE_KEY_RE}[section]
    if not key_re.fullmatch(key):
        kinds = {
            "abbreviations": "start with a letter or digit and contain no spaces",
            "codes": "be letters and digits only, starting with a letter (e.g. QĐ, TTg)",
            "phrases": "start and end with a letter or digit",
        }
        return f"the key {key!r} in [{section}] must {kinds[section]}"
    return None


def parse_lexicon(raw: str, *, source: str) -> Lexicon:
    """Parse lexicon TOML text; ``source`` names the file in error messages."""
    try:
        data = tomllib.loads(raw)
    except tomllib.TOMLDecodeError as exc:
        m = _TOML_LINE_RE.search(str(exc))
        line = m.group(1) if m else "?"
        raise ConfigError(f"{source}, line {line}: not valid TOML ({exc}); fix the line and retry") from exc
    tables: dict[str, dict[str, str]] = {s: {} for s in SECTIONS}
    for section, entries in data.items():
        if section not in SECTIONS:
            line = _line_of(raw, section, "") if isinstance(entries, dict) else _line_of(raw, "", section)
            raise ConfigError(
                f"{source}, line {line}: unknown table or key {section!r}; a lexicon has only [{'], ['.join(SECTIONS)}]"
            )
        if not isinstance(entries, dict):
            raise ConfigError(f"{source}, line {_line_of(raw, '', section)}: {section!r} must be a [table]")
        for raw_key, raw_value in entries.items():
            key = unicodedata.normalize("NFC", raw_key)
            value = unicodedata.normalize("NFC", raw_value) if isinstance(raw_value, str) else raw_value
            problem = _check_entry(section, key, value)
            if problem:
                raise ConfigError(f"{source}, line {_line_of(raw, section, raw_key)}: {problem}")
            assert isinstance(value, str)
            tables[section][key] = value.strip()
    return Lexicon.build(abbreviations=tables["abbreviations"], codes=tables["codes"], phrases=tables["phrases"])


@lru_cache(maxsize=1)
def builtin_lexicon() -> Lexicon:
    """The lexicon shipped with Loa (pipeline/textnorm/abbreviations.vi.toml), loaded once."""
    ref = resources.files("pipeline.textnorm").joinpath("abbreviations.vi.toml")
    return parse_lexicon(ref.read_text(encoding="utf-8"), source="pipeline/textnorm/abbreviations.vi.toml")


def load_lexicon(path: Path, *, base: Lexicon | None = None) -> Lexicon:
    """A deployment lexicon laid over ``base`` (default: the built-in lexicon).

    Raises ConfigError naming the file and line for unreadable files, bad TOML or bad entries.
    """
    try:
        raw = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read the lexicon ({exc}); check the path in loa.toml") from exc
    own = parse_lexicon(raw, source=str(path))
    return (base if base is not None else builtin_lexicon()).merged(own)
