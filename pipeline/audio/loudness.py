"""Loudness arithmetic for mastering: parse ffmpeg's ebur128 summaries, choose a gain.

No subprocesses here; ``pipeline.audio.ffmpeg`` runs ffmpeg and hands the captured text, or
``pipeline.audio.libav`` the PCM it decoded in-process (``measure_pcm``), in.
The regexes sit at module level so that parsing is tested on captured output.
"""

from __future__ import annotations

import bisect
import functools
import math
import re
from dataclasses import dataclass
from typing import Any

#: ebur128 reports this for digital silence (its absolute gate).
SILENCE_LUFS = -70.0

#: ``[ebur128@g3 @ 0x55…] Summary:`` (named instance) or ``[Parsed_ebur128_0 @ 0x55…] Summary:``
_SUMMARY_RE = re.compile(r"^\[(?P<name>[^\]\s]*ebur128[^\]\s]*) @ [^\]]*\] (?:\[info\] )?Summary:\s*$", re.M)
_INTEGRATED_RE = re.compile(r"^\s*I:\s+(?P<v>-?inf|-?\d+(?:\.\d+)?) LUFS", re.M)
_LRA_RE = re.compile(r"^\s*LRA:\s+(?P<v>-?inf|-?\d+(?:\.\d+)?) LU\b", re.M)
_TRUE_PEAK_RE = re.compile(r"^\s*True peak:\s*\n\s*Peak:\s+(?P<v>-?inf|-?\d+(?:\.\d+)?) dBFS", re.M)
_SAMPLE_PEAK_RE = re.compile(r"^\s*Sample peak:\s*\n\s*Peak:\s+(?P<v>-?inf|-?\d+(?:\.\d+)?) dBFS", re.M)


@dataclass(frozen=True, slots=True)
class Loudness:
    """EBU R 128 measurement: integrated loudness, true peak, loudness range.

    ``true_peak_db`` is nan when only the sample peak was measured (``ebur128=peak=sample``,
    cheaper: ``ingest_audio`` does so); ``sample_peak_db`` is None when it was not measured.
    """

    integrated_lufs: float
    true_peak_db: float
    lra: float
    sample_peak_db: float | None = None

    @property
    def peak_db(self) -> float:
        """The true peak if measured, else the sample peak (nan if neither)."""
        if math.isnan(self.true_peak_db) and self.sample_peak_db is not None:
            return self.sample_peak_db
        return self.true_peak_db

    @property
    def silent(self) -> bool:
        return self.integrated_lufs <= SILENCE_LUFS + 0.05


#: Digital silence, as ``make_silence`` writes it (nothing to measure).
SILENCE = Loudness(SILENCE_LUFS, true_peak_db=float("-inf"), lra=0.0, sample_peak_db=float("-inf"))


def _summaries(stderr: str) -> dict[str, str]:
    """Each ebur128 instance's last summary block (ffmpeg may print an empty one first)."""
    marks = list(_SUMMARY_RE.finditer(stderr))
    blocks: dict[str, str] = {}
    for i, mark in enumerate(marks):
        end = marks[i + 1].start() if i + 1 < len(marks) else len(stderr)
        blocks[mark.group("name")] = stderr[mark.end() : end]
    return blocks


def _parse_block(body: str) -> Loudness | None:
    integrated = _INTEGRATED_RE.search(body)
    lra = _LRA_RE.search(body)
    peak = _TRUE_PEAK_RE.search(body)
    sample = _SAMPLE_PEAK_RE.search(body)
    if integrated is None or lra is None:
        return None
    return Loudness(
        integrated_lufs=max(float(integrated.group("v")), SILENCE_LUFS),
        true_peak_db=float(peak.group("v")) if peak else float("nan"),  # nan: not measured
        lra=float(lra.group("v")),
        sample_peak_db=float(sample.group("v")) if sample else None,
    )


def parse_ebur128(stderr: str) -> Loudness | None:
    """The (last) summary of ``-af ebur128=peak=true``; ``None`` when there is none."""
    blocks = _summaries(stderr)
    return _parse_block(list(blocks.values())[-1]) if blocks else None


def parse_ebur128_named(stderr: str) -> dict[str, Loudness]:
    """Summaries of several named instances (``ebur128@g0``, ``ebur128@g1``…) by name."""
    found = {name.partition("@")[2]: _parse_block(body) for name, body in _summaries(stderr).items()}
    return {name: loud for name, loud in found.items() if name and loud is not None}


def choose_gain(points: list[tuple[float, float]], target_lufs: float) -> float:
    """The gain (dB) that should give ``target_lufs``, from measured ``(gain, LUFS)`` points.

    In front of a limiter loudness grows ever more slowly with gain, so the answer is
    interpolated between the two measured points around the target (or extrapolated
    with slope 1 above the loudest point when even that is too quiet or all are too loud).
    """
    points = sorted(points)
    louds = [lufs for _, lufs in points]
    i = bisect.bisect_left(louds, target_lufs)
    if i == 0:  # all too loud: turn down as a plain gain would
        gain, lufs = points[0]
        return gain + (target_lufs - lufs)
    if i == len(points):
        gain, lufs = points[-1]
        return gain + (target_lufs - lufs)
    (g0, l0), (g1, l1) = points[i - 1], points[i]
    return g0 + (g1 - g0) * (target_lufs - l0) / (l1 - l0)


def slope_at(points: list[tuple[float, float]], gain: float) -> float:
    """LU gained per dB near ``gain`` (between measured points), kept within [0.15, 1]."""
    points = sorted(points)
    gains = [g for g, _ in points]
    i = min(max(bisect.bisect_left(gains, gain), 1), len(points) - 1)
    if len(points) < 2:
        return 1.0
    (g0, l0), (g1, l1) = points[i - 1], points[i]
    if g1 == g0:
        return 1.0
    return min(max((l1 - l0) / (g1 - g0), 0.15), 1.0)


#: Loudness the lookahead limiter takes away, fitted on espeak-ng speech (peaks at full
#: scale) through ``pipeline.audio.mastering``'s alimiter: about ``SLOPE × excess − KNEE`` LU, where
#: excess is how far (dB) the true peak after the gain would pass the ceiling.
LIMITER_LOSS_SLOPE = 0.6
LIMITER_LOSS_KNEE = 1.85


def limiter_loss(excess_db: float) -> float:
    """Predicted LU lost in the limiter when peaks would pass its ceiling by ``excess_db``."""
    return max(0.0, LIMITER_LOSS_SLOPE * excess_db - LIMITER_LOSS_KNEE)


def predict_gain(source: Loudness, target_lufs: float, ceiling_db: float) -> float:
    """The gain (dB) in front of the limiter expected to bring ``source`` to ``target_lufs``.

    Solves ``I + g − limiter_loss(TP + g − ceiling) = target`` (loudness grows 1 LU per dB
    while the limiter idles, ``1 − SLOPE`` once it works).
    """
    plain = target_lufs - source.integrated_lufs
    knee = LIMITER_LOSS_KNEE / LIMITER_LOSS_SLOPE  # excess where the limiter starts to cost
    if source.peak_db + plain - ceiling_db <= knee:
        return plain
    peak_room = source.peak_db - ceiling_db
    return (plain - LIMITER_LOSS_KNEE + LIMITER_LOSS_SLOPE * peak_room) / (1 - LIMITER_LOSS_SLOPE)


def gain_slope(source: Loudness, gain_db: float, ceiling_db: float) -> float:
    """LU gained per dB at ``gain_db`` by the same model."""
    excess = source.peak_db + gain_db - ceiling_db
    return 1.0 if excess <= LIMITER_LOSS_KNEE / LIMITER_LOSS_SLOPE else 1 - LIMITER_LOSS_SLOPE


def db_to_linear(db: float) -> float:
    return float(10 ** (db / 20))


# --- measuring PCM in memory -----------------------------------------------------------

#: BS.1770 gating block (s); a signal shorter than one block has no integrated loudness.
BLOCK_S = 0.4
#: True peak by 4× oversampling (BS.1770-4 annex 2), in chunks of this many samples.
_TP_CHUNK = 1 << 16
_TP_OVERLAP = 64


def measure_pcm(samples: Any, rate: int, *, true_peak: bool, scale: float = 1.0) -> Loudness:
    """EBU R 128 loudness of mono samples held in memory (``samples × scale`` in ±1 full scale).

    Integrated loudness as pyloudnorm measures it (ITU-R BS.1770-4: pyloudnorm's K-weighting
    filters, 400 ms blocks with 75% overlap, absolute and relative gates; the tests hold the
    two equal), but streamed in ten-second chunks with the filters' state carried over, so
    that a three-minute bulletin costs a few megabytes, not a few float64 copies of itself;
    the sample peak; and with ``true_peak`` the peak of the signal oversampled 4× (a
    polyphase FIR, as BS.1770-4 annex 2 suggests); without it ``true_peak_db`` is nan, as
    ``ebur128=peak=sample`` leaves it. The loudness range is not measured (nan): nothing in
    Loa uses it. Digital silence, or a signal shorter than one gating block, measures
    ``SILENCE_LUFS`` as ebur128 reports it. ``samples`` may be int16 (with ``scale`` 1/32768).
    """
    import numpy as np

    x = np.asarray(samples).reshape(-1)
    peak = max(float(x.max()), -float(x.min())) * scale if x.size else 0.0  # no copy of the signal
    sample_peak = 20 * math.log10(peak) if peak > 0 else float("-inf")
    lufs = SILENCE_LUFS
    if peak > 0 and x.size >= BLOCK_S * rate:
        lufs = _integrated(x, rate, scale)
    tp = float("nan")
    if true_peak:
        tp = _true_peak_db(x, scale) if peak > 0 else float("-inf")
    return Loudness(lufs, true_peak_db=tp, lra=float("nan"), sample_peak_db=sample_peak)


def _integrated(x: Any, rate: int, scale: float) -> float:
    """BS.1770-4 gated loudness, pyloudnorm's filters and blocks, one 100 ms step at a time."""
    import numpy as np
    import pyloudnorm
    from scipy.signal import lfilter, lfilter_zi

    stages = [(f.b, f.a, f.passband_gain) for f in pyloudnorm.Meter(rate)._filters.values()]
    state = [lfilter_zi(b, a) * 0.0 for b, a, _ in stages]
    step = round(rate * BLOCK_S / 4)
    chunk = step * 100
    energy = []  # sum of squares of the K-weighted signal per 100 ms step
    for start in range(0, x.size, chunk):
        y = x[start : start + chunk].astype(np.float64) * scale
        for i, (b, a, gain) in enumerate(stages):
            y, state[i] = lfilter(b, a, y, zi=state[i])
            y *= gain
        squares = y * y
        full = squares.size // step * step
        energy.append(squares[:full].reshape(-1, step).sum(axis=1))
        if full < squares.size:
            energy.append(np.array([squares[full:].sum()]))
    steps = np.concatenate(energy)
    blocks = round((x.size / rate - BLOCK_S) / (BLOCK_S / 4)) + 1  # as pyloudnorm counts them
    padded = np.concatenate([steps, np.zeros(4)])
    z = (padded[0:blocks] + padded[1 : blocks + 1] + padded[2 : blocks + 2] + padded[3 : blocks + 3]) / (step * 4)
    with np.errstate(divide="ignore"):
        level = -0.691 + 10 * np.log10(z)
    kept = z[level >= SILENCE_LUFS]
    if kept.size == 0:
        return SILENCE_LUFS
    relative = -0.691 + 10 * math.log10(float(kept.mean())) - 10
    gated = z[(level > relative) & (level > SILENCE_LUFS)]
    if gated.size == 0:
        return SILENCE_LUFS
    return max(-0.691 + 10 * math.log10(float(gated.mean())), SILENCE_LUFS)


def _true_peak_db(x: Any, scale: float) -> float:
    import numpy as np
    from scipy.signal import resample_poly

    best = 0.0
    for start in range(0, x.size, _TP_CHUNK):
        lo = max(start - _TP_OVERLAP, 0)
        # float32: half the work of float64; the peak is read to 0.01 dB
        part = x[lo : start + _TP_CHUNK + _TP_OVERLAP].astype(np.float32) * np.float32(scale)
        up = resample_poly(part, 4, 1, window=_tp_filter())
        # only this chunk's own stretch: the overlap's cut edges ring
        own = up[4 * (start - lo) : 4 * (start - lo + _TP_CHUNK)]
        best = max(best, float(np.max(np.abs(own))), float(np.max(np.abs(part))))
    return 20 * math.log10(best)


@functools.cache
def _tp_filter() -> Any:
    """The 4× interpolation filter: 49 taps (12 per phase, as BS.1770-4 annex 2), Kaiser β 5."""
    import numpy as np
    from scipy.signal import firwin

    return firwin(49, 1 / 4, window=("kaiser", 5.0)).astype(np.float32)
