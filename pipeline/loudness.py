"""Loudness arithmetic for mastering: parse ffmpeg's ebur128 summary, pick the next gain.

No subprocesses here; ``pipeline.audio`` runs ffmpeg and hands the captured text in.
The regexes sit at module level so that parsing is tested on captured output.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

#: ebur128 reports this for digital silence (its absolute gate).
SILENCE_LUFS = -70.0

_SUMMARY_RE = re.compile(r"Summary:\s*\n(?P<body>.*)", re.S)
_INTEGRATED_RE = re.compile(r"^\s*I:\s+(?P<v>-?inf|-?\d+(?:\.\d+)?) LUFS", re.M)
_LRA_RE = re.compile(r"^\s*LRA:\s+(?P<v>-?inf|-?\d+(?:\.\d+)?) LU\b", re.M)
_PEAK_RE = re.compile(r"^\s*Peak:\s+(?P<v>-?inf|-?\d+(?:\.\d+)?) dBFS", re.M)


@dataclass(frozen=True, slots=True)
class Loudness:
    """EBU R 128 measurement: integrated loudness, true peak, loudness range."""

    integrated_lufs: float
    true_peak_db: float
    lra: float

    @property
    def silent(self) -> bool:
        return self.integrated_lufs <= SILENCE_LUFS + 0.05


def parse_ebur128(stderr: str) -> Loudness | None:
    """The summary block of ``-af ebur128=peak=true``; ``None`` when it is not there."""
    summary = _SUMMARY_RE.search(stderr)
    if summary is None:
        return None
    body = summary.group("body")
    integrated = _INTEGRATED_RE.search(body)
    lra = _LRA_RE.search(body)
    peak = _PEAK_RE.search(body)
    if integrated is None or lra is None or peak is None:
        return None
    return Loudness(
        integrated_lufs=max(float(integrated.group("v")), SILENCE_LUFS),
        true_peak_db=float(peak.group("v")),
        lra=float(lra.group("v")),
    )


def next_gain(history: list[tuple[float, float]], target_lufs: float) -> float:
    """The gain (dB) to try next, from ``(gain, measured LUFS)`` pairs tried so far.

    A limiter makes loudness grow more slowly than gain, so after the first try the
    step follows the measured slope (a secant step), bounded to stay sane.
    """
    gain, measured = history[-1]
    return gain + (target_lufs - measured) / slope(history)


def slope(history: list[tuple[float, float]]) -> float:
    """LU gained per dB of gain between the last two tries (1 when unknown), in [0.15, 1]."""
    if len(history) < 2:
        return 1.0
    (g0, l0), (g1, l1) = history[-2], history[-1]
    if math.isclose(g0, g1) or math.isclose(l0, l1):
        return 1.0
    return min(max((l1 - l0) / (g1 - g0), 0.15), 1.0)


def db_to_linear(db: float) -> float:
    return float(10 ** (db / 20))
