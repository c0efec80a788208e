"""Split spoken text into pieces a TTS engine reads well.

Sentences end at . ! ? … followed by a space, and at line breaks. A sentence longer than
``max_chars`` is cut at the last strong break that fits (; : then , then a dash), else
before a joining word (và, nhưng, để …), else at the last space; a single word longer
than ``max_chars`` is kept whole rather than cut inside.
"""

from __future__ import annotations

import re
from typing import Final

_SENTENCE_END_RE: Final = re.compile(r"(?<=[.!?…])[\"'”»)]*\s+|\n+")
_SPACE_RE: Final = re.compile(r"\s")
_BREAKS: Final = (
    re.compile(r"[;:]\s"),
    re.compile(r",\s"),
    re.compile(r"\s[-–—]\s"),
    re.compile(r"\s(?=(?:và|nhưng|hoặc|để|nhằm|trong đó|đồng thời|theo|tại)\s)"),
    re.compile(r"\s"),
)


def _cut(sentence: str, max_chars: int) -> list[str]:
    pieces: list[str] = []
    rest = sentence
    while len(rest) > max_chars:
        window = rest[: max_chars + 1]
        cut = -1
        for pattern in _BREAKS:
            ends = [m.end() for m in pattern.finditer(window) if m.end() <= max_chars + 1]
            if ends and ends[-1] > max_chars // 4:
                cut = ends[-1]
                break
        if cut <= 0:  # only an early space, or one very long word: keep the word whole
            spaces = [m.end() for m in _SPACE_RE.finditer(window)]
            if spaces:
                cut = spaces[-1]
            else:
                m = _SPACE_RE.search(rest, max_chars)
                cut = m.end() if m else len(rest)
        head, rest = rest[:cut].strip(), rest[cut:].strip()
        if head:
            pieces.append(head)
    if rest:
        pieces.append(rest)
    return pieces


def split_sentences(text: str, *, max_chars: int = 200) -> list[str]:
    """Sentences of ``text`` (already normalized), none longer than ``max_chars`` if it can
    be helped; empty pieces are dropped and the order is kept."""
    if max_chars < 20:
        raise ValueError(f"max_chars must be at least 20, not {max_chars}")
    pieces: list[str] = []
    for sentence in _SENTENCE_END_RE.split(text):
        sentence = sentence.strip()
        if sentence:
            pieces += _cut(sentence, max_chars) if len(sentence) > max_chars else [sentence]
    return pieces
