"""Benchmark: the ways to cut ffmpeg processes per segment (issue 19), on real segments.

Inputs: the ten espeak-ng segments (5–20 s) and the quiet and loud recordings of
``benchmarks.mastering``, plus eight one-sentence greetings of 1–3 s, the kind of segment
a cold night renders most of. Per way, CPU seconds (this process and its children) for
ingest + loudness + encode of all inputs, the processes started, and the loudness of the
result:

* ``processes``: ``pipeline/audio.py`` at ``--baseline-rev`` (one ffmpeg run to ingest,
  one per encoding; loudness parsed from ebur128's log);
* ``batched``: the same two filter graphs, but one ffmpeg run ingests every input and one
  more encodes every output (named ebur128 instances), gains predicted as Loa does;
* ``in-process``: the working tree's ``pipeline/audio/`` (``ingest``, ``mastering``) (PyAV: decode, resample,
  volume, limiter and libmp3lame in FFmpeg's libraries inside this process; loudness by
  pyloudnorm and a 4× oversampled true peak on the PCM in memory);
* analysis only: ffmpeg's ``ebur128`` (a process per input) against the in-process
  measurement, CPU and largest difference.

Run: ``.venv/bin/python -m benchmarks.mastering_options`` (about a minute).
"""

from __future__ import annotations

import argparse
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from benchmarks.mastering import TAGS, counting, load_baseline, make_inputs
from pipeline.audio import ffmpeg, files, ingest, mastering
from pipeline.audio.loudness import parse_ebur128_named, predict_gain
from pipeline.config import AudioSettings

S = AudioSettings()
GREETINGS = [
    "Xin chào.",
    "Kính thưa bà con.",
    "Chào buổi sáng.",
    "Xin chào bà con xã Tả Van.",
    "Hôm nay là thứ hai.",
    "Bản tin buổi chiều.",
    "Cảm ơn bà con đã lắng nghe.",
    "Hẹn gặp lại bà con.",
]


def _cpu() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def _measure(fn: Callable[[], Any]) -> tuple[float, float, int, Any]:
    with counting() as c:
        c0, t0 = _cpu(), time.perf_counter()
        out = fn()
        return _cpu() - c0, time.perf_counter() - t0, c.runs, out


def batched(inputs: dict[str, Path], out: Path) -> dict[str, float]:
    """Ingest every input in one ffmpeg run, then master every one in one more."""
    out.mkdir(parents=True, exist_ok=True)
    names = list(inputs)
    args = ["ffmpeg", "-nostdin", "-hide_banner", "-nostats", "-y"]
    for name in names:
        args += ["-i", str(inputs[name])]
    graph = []
    for i, _ in enumerate(names):
        graph.append(
            f"[{i}:a]aresample={S.sample_rate},aformat=sample_fmts=s16:channel_layouts=mono,"
            f"silencedetect=n=-50dB:d=0.3,ebur128@g{i}=peak=sample[o{i}]"
        )
    args += ["-filter_complex", ";".join(graph)]
    for i, name in enumerate(names):
        args += ["-map", f"[o{i}]", "-c:a", "pcm_s16le", "-f", "wav", str(out / f"{name}.wav")]
    proc = subprocess.run(args, capture_output=True, text=True, check=True)
    source = parse_ebur128_named(proc.stderr)
    aim, ceiling = S.target_lufs + mastering.ENCODER_LOSS_LU, S.true_peak_db - mastering.PEAK_HEADROOM_DB
    args = ["ffmpeg", "-nostdin", "-hide_banner", "-nostats", "-y"]
    graph = []
    for i, name in enumerate(names):
        args += ["-i", str(out / f"{name}.wav")]
        gain = predict_gain(source[f"g{i}"], aim, ceiling)
        graph.append(
            f"[{i}:a]aresample={S.sample_rate},aformat=channel_layouts=mono,volume={gain:.2f}dB,"
            f"alimiter={mastering.limiter_options(ceiling)},asplit[e{i}][m{i}];[m{i}]ebur128@g{i}=peak=true,anullsink"
        )
    args += ["-filter_complex", ";".join(graph)]
    for i, name in enumerate(names):
        args += ["-map", f"[e{i}]", "-c:a", "libmp3lame", "-b:a", f"{S.bitrate_kbps}k", str(out / f"{name}.mp3")]
    proc = subprocess.run(args, capture_output=True, text=True, check=True)
    return {name: loud.integrated_lufs for name, loud in parse_ebur128_named(proc.stderr).items()}


def analysis(inputs: dict[str, Path]) -> tuple[float, float, float, float]:
    """CPU of ffmpeg's ebur128 (a process per input) and of the in-process measurement
    (pyloudnorm + 4x true peak, decoding included), and their largest differences (LU, dB)."""
    c0 = _cpu()
    theirs = [ffmpeg.compute_loudness(src, settings=S) for src in inputs.values()]
    c1 = _cpu()
    ours = [mastering.pcm_loudness(src, settings=S) for src in inputs.values()]
    c2 = _cpu()
    pairs = [(a, b) for a, b in zip(theirs, ours, strict=True) if not a.silent]
    lufs = max(abs(a.integrated_lufs - b.integrated_lufs) for a, b in pairs)
    peak = max(abs(a.true_peak_db - b.true_peak_db) for a, b in pairs)
    return c1 - c0, c2 - c1, lufs, peak


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else "")
    parser.add_argument("--baseline-rev", default="main", help="git revision of the process-per-pass audio.py")
    args = parser.parse_args(argv)
    base = load_baseline(args.baseline_rev)
    with tempfile.TemporaryDirectory(prefix="loa-options-") as tmp:
        d = Path(tmp)
        inputs = make_inputs(d)
        for i, text in enumerate(GREETINGS):
            dst = d / f"greet{i}.wav"
            subprocess.run(["espeak-ng", "-v", "vi", "-w", str(dst), text], check=True)
            inputs[dst.stem] = dst
        seconds = sum(files.wav_info(p).duration_ms for p in inputs.values()) / 1000

        def per_segment(module: Any, tag: str) -> dict[str, float]:
            out = {}
            for name, src in inputs.items():
                info = module.ingest_audio(src, d / tag / f"{name}.wav", settings=S)
                res = module.master_mp3(
                    d / tag / f"{name}.wav",
                    d / tag / f"{name}.mp3",
                    settings=S,
                    tags=TAGS,
                    source_loudness=info.loudness,
                )
                out[name] = res.loudness.integrated_lufs
            return out

        current = SimpleNamespace(ingest_audio=ingest.ingest_audio, master_mp3=mastering.master_mp3)
        mastering.pcm_loudness(inputs["greet0"], settings=S)  # import numpy, scipy, PyAV once, as a nightly does
        rows = [
            ("processes", *_measure(lambda: per_segment(base, "base"))),
            ("batched", *_measure(lambda: batched(inputs, d / "batch"))),
            ("in-process", *_measure(lambda: per_segment(current, "cur"))),
        ]
        same = sum((d / "base" / f"{n}.mp3").read_bytes() == (d / "cur" / f"{n}.mp3").read_bytes() for n in inputs)
        print(f"{len(inputs)} inputs, {seconds:.1f} s of audio")
        print(f"{'way':12s} {'cpu s':>7s} {'wall s':>7s} {'procs':>6s} {'cpu/input':>10s} {'LUFS range':>14s}")
        first = rows[0][1]
        for name, cpu, wall, runs, louds in rows:
            lo, hi = min(louds.values()), max(louds.values())
            print(
                f"{name:12s} {cpu:7.2f} {wall:7.2f} {runs:6d} {cpu / len(inputs):10.3f}"
                f" {lo:6.1f}…{hi:5.1f}  ({cpu / first:.2f}× processes)"
            )
        print(f"in-process MP3s byte-identical to processes: {same} of {len(inputs)}")
        mono = {k: v for k, v in inputs.items() if k not in ("quiet", "loud")}  # ebur128 sums stereo channels
        ebur, ours, lufs, peak = analysis(mono)
        print(f"analysis only, {len(mono)} mono inputs: ffmpeg ebur128 {ebur:.2f} s CPU, in-process {ours:.2f} s")
        print(f"  largest difference: integrated {lufs:.2f} LU, true peak {peak:.2f} dB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
