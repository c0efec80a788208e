"""Benchmark: ingest + master per segment, against a plain one-pass ffmpeg encode.

Generates ~10 espeak-ng segments of various lengths, a quiet stereo 48 kHz recording, a
loud (clipped) recording and a pause; then, per input and interleaved so that load on the
shared machine hits all alike, times

* ``baseline``: ``ingest_audio`` + ``master_mp3`` of a committed version of
  ``pipeline/audio.py`` (``--baseline-rev``, loaded with ``git show`` into a temporary module);
* ``current``: the working tree's ``ingest_audio`` + ``master_mp3``, the source loudness
  passed from ingest to master as render does;
* ``plain``: ``ffmpeg -i in.wav -c:a libmp3lame -b:a 64k out.mp3`` of the raw input;
* ``plain44``: the same of the ingested 44.1 kHz mono WAV (the signal mastering encodes).

Counts process runs (``subprocess.run`` wrapped) and decodes (ffmpeg runs that read an
input; ffprobe reads headers only). Reports wall and CPU seconds (CPU of the children, the
figure that matters when 2 workers share 2 cores). Run: ``.venv/bin/python -m benchmarks.mastering``.
"""

from __future__ import annotations

import argparse
import importlib.util
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from types import ModuleType
from typing import Any

from pipeline.audio import ffmpeg, ingest, mastering
from pipeline.audio.types import Id3Tags
from pipeline.config import AudioSettings

ROOT = Path(__file__).resolve().parent.parent
S = AudioSettings()
TAGS = Id3Tags(title="Bản tin", album="Loa", language="vi", comment="bulletin 1")

SENTENCES = [
    "Xin chào bà con.",
    "Kính thưa bà con nhân dân xã Tả Van.",
    "Hôm nay có cuộc họp thôn lúc tám giờ sáng tại nhà văn hóa thôn.",
    "Đề nghị các hộ gia đình cử đại diện đến dự đầy đủ và đúng giờ.",
    "Trạm y tế xã thông báo lịch tiêm chủng mở rộng cho trẻ em dưới năm tuổi vào thứ hai tuần sau.",
    "Bà con chú ý phòng chống rét cho trâu bò, không thả rông gia súc trên núi cao khi trời rét đậm.",
]


def _texts() -> list[str]:
    """Ten texts from about 5 to about 20 seconds of speech."""
    out = []
    for i in range(10):
        n = 1 + i * 5 // 9 + (i % 3)
        out.append(" ".join(SENTENCES[(i + k) % len(SENTENCES)] for k in range(n)))
    return out


def _ff(*args: str) -> None:
    subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-y", *args], check=True)


def make_inputs(d: Path) -> dict[str, Path]:
    inputs: dict[str, Path] = {}
    for i, text in enumerate(_texts()):
        dst = d / f"speech{i}.wav"
        subprocess.run(["espeak-ng", "-v", "vi", "-w", str(dst), "--stdin"], input=text.encode(), check=True)
        inputs[dst.stem] = dst
    speech = inputs["speech5"]
    inputs["quiet"] = d / "quiet.wav"
    _ff("-i", str(speech), "-af", "volume=-20dB", "-ac", "2", "-ar", "48000", "-c:a", "pcm_s16le", str(inputs["quiet"]))
    inputs["loud"] = d / "loud.wav"
    _ff("-i", str(speech), "-af", "volume=12dB", "-ac", "2", "-ar", "48000", "-c:a", "pcm_s16le", str(inputs["loud"]))
    return inputs


def load_baseline(rev: str) -> ModuleType:
    source = subprocess.run(
        ["git", "show", f"{rev}:pipeline/audio.py"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout
    path = Path(tempfile.mkdtemp(prefix="loa-bench-")) / "baseline_audio.py"
    path.write_text(source, encoding="utf-8")
    spec = importlib.util.spec_from_file_location("baseline_audio", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


@dataclass
class Counter:
    runs: int = 0
    decodes: int = 0
    argv: list[list[str]] = field(default_factory=list)


@contextmanager
def counting() -> Iterator[Counter]:
    counter = Counter()
    real = subprocess.run

    def run(args: Any, *a: Any, **kw: Any) -> Any:
        argv = [str(x) for x in args]
        counter.runs += 1
        counter.argv.append(argv)
        if Path(argv[0]).name == "ffmpeg" and "-i" in argv:
            counter.decodes += 1
        return real(args, *a, **kw)

    subprocess.run = run
    try:
        yield counter
    finally:
        subprocess.run = real


def _children_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


@dataclass
class Sample:
    wall: list[float] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)
    runs: int = 0
    decodes: int = 0


def timed(sample: Sample, fn: Callable[[], object]) -> object:
    with counting() as c:
        c0, t0 = _children_cpu(), time.perf_counter()
        out = fn()
        sample.wall.append(time.perf_counter() - t0)
        sample.cpu.append(_children_cpu() - c0)
    sample.runs, sample.decodes = c.runs, c.decodes
    return out


def plain_encode(wav: Path, mp3: Path) -> None:
    """The yardstick: one decode and one encode, no loudness work."""
    subprocess.run(
        ["ffmpeg", "-nostdin", "-v", "error", "-y", "-i", str(wav), "-c:a", "libmp3lame", "-b:a", "64k", str(mp3)],
        check=True,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else "")
    parser.add_argument("--baseline-rev", default="df8a59f", help="git revision of the old pipeline/audio.py")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--no-baseline", action="store_true")
    args = parser.parse_args(argv)
    baseline = None if args.no_baseline else load_baseline(args.baseline_rev)
    with tempfile.TemporaryDirectory(prefix="loa-bench-") as tmp:
        d = Path(tmp)
        inputs = make_inputs(d)
        kinds = ["plain", "plain44", "current"] + ([] if baseline is None else ["baseline"])
        samples = {(name, k): Sample() for name in inputs for k in kinds}
        results: dict[str, Any] = {}
        for rep in range(args.repeat):
            for name, src in inputs.items():
                out = d / "out" / name
                out.mkdir(parents=True, exist_ok=True)

                def cur(src: Path = src, out: Path = out) -> object:
                    info = ingest.ingest_audio(src, out / "in.wav", settings=S)
                    return mastering.master_mp3(
                        out / "in.wav", out / "cur.mp3", settings=S, tags=TAGS, source_loudness=info.loudness
                    )

                results[name] = timed(samples[(name, "current")], cur)
                if baseline is not None:

                    def base(src: Path = src, out: Path = out, b: ModuleType = baseline) -> object:
                        b.ingest_audio(src, out / "base.wav", settings=S)
                        return b.master_mp3(out / "base.wav", out / "base.mp3", settings=S, tags=TAGS)

                    timed(samples[(name, "baseline")], base)
                for kind, wav in (("plain", src), ("plain44", out / "in.wav")):
                    timed(samples[(name, kind)], partial(plain_encode, wav, out / f"{kind}.mp3"))
            print(f"pass {rep + 1}/{args.repeat} done", file=sys.stderr)
        med = statistics.median
        head = f"{'input':9s} {'secs':>5s} | {'plain':>11s} {'plain44':>11s} | {'current':>17s} |"
        head += f" {'baseline':>17s} | {'cur/plain':>9s} {'cur/p44':>7s} {'base/plain':>10s} | LUFS   dBTP"
        print(head)
        tot: dict[str, float] = dict.fromkeys(kinds, 0.0)
        for name in inputs:
            row = samples[(name, "current")]
            secs = ffmpeg.probe_audio(d / "out" / name / "in.wav", settings=S).duration_ms / 1000
            cpu = {k: med(samples[(name, k)].cpu) for k in kinds}
            wall = {k: med(samples[(name, k)].wall) for k in kinds}
            for k in kinds:
                tot[k] += cpu[k]
            measured = ffmpeg.compute_loudness(d / "out" / name / "cur.mp3", settings=S)
            line = f"{name:9s} {secs:5.1f} | {cpu['plain']:5.2f}/{wall['plain']:5.2f}"
            line += f" {cpu['plain44']:5.2f}/{wall['plain44']:5.2f}"
            line += f" | {cpu['current']:5.2f}/{wall['current']:5.2f} r{row.runs} d{row.decodes}"
            if baseline is not None:
                b = samples[(name, "baseline")]
                line += f" | {cpu['baseline']:5.2f}/{wall['baseline']:5.2f} r{b.runs:<2d} d{b.decodes}"
                line += f" | {cpu['current'] / cpu['plain']:9.2f} {cpu['current'] / cpu['plain44']:7.2f}"
                line += f" {cpu['baseline'] / cpu['plain']:10.2f}"
            else:
                line += f" | {'':17s} | {cpu['current'] / cpu['plain']:9.2f} {cpu['current'] / cpu['plain44']:7.2f}"
            line += f" | {measured.integrated_lufs:5.1f} {measured.true_peak_db:5.1f}"
            print(line)
        print("(seconds as cpu/wall, median of", args.repeat, "; r = process runs, d = decodes)")
        print("totals cpu s:", {k: round(v, 2) for k, v in tot.items()})
        print(f"current / plain   = {tot['current'] / tot['plain']:.2f}x")
        print(f"current / plain44 = {tot['current'] / tot['plain44']:.2f}x")
        if baseline is not None:
            print(f"baseline / plain  = {tot['baseline'] / tot['plain']:.2f}x")
            print(f"current / baseline = {tot['current'] / tot['baseline']:.2f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
