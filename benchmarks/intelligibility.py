"""How much of what Loa says a listener can make out, measured with a speech recogniser.

    .venv/bin/pip install -e '.[bench]'            # viet-asr, benchmark only
    .venv/bin/python benchmarks/intelligibility.py [--limit N] [--settings NAME,…] [--json out.json]

Each offline speech setting (espeak-ng voices, rates, word gaps) speaks every sentence of
``benchmarks/intelligibility_sentences.vi.txt`` in its spoken form (``pipeline.textnorm``),
the result is decoded to 16 kHz mono 16-bit WAV, viet-asr transcribes it, and the word
error rate (WER) against the spoken form is reported per setting, with the words most
often lost. Two more figures frame it:

* the human-speech floor: natural speech with known transcripts, the samples shipped in
  the ``vieneu`` wheel on PyPI (Apache-2.0; fetched with ``pip download --no-deps`` into
  ``data/bench/``), transcribed raw;
* the pipeline's own effect: the same human readings through ingest (trim, mono 44.1 kHz),
  loudness mastering and 64 kbps MP3, then transcribed; the WER must stay within 0.03 of raw.

Not a test and never part of ``make test``: the WER and report functions are unit-tested
(tests/test_intelligibility.py); the run itself takes minutes.
"""

from __future__ import annotations

import argparse
import collections
import json
import re
import subprocess
import sys
import tempfile
import time
import unicodedata
import zipfile
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from pipeline.audio import ffmpeg_write, ingest, mastering
from pipeline.audio.types import Id3Tags
from pipeline.config import AudioSettings, EspeakSettings
from pipeline.textnorm import builtin_lexicon, normalize

ROOT = Path(__file__).resolve().parent.parent
SENTENCES = ROOT / "benchmarks" / "intelligibility_sentences.vi.txt"
VIENEU = "vieneu==3.8.3"
PIPELINE_TOLERANCE = 0.03
_WORD_RE = re.compile(r"[^\W_]+", re.UNICODE)


# --- scoring ----------------------------------------------------------------------------


def words(text: str) -> list[str]:
    """Lower-case NFC words without punctuation; hyphens split (``vắc-xin`` → ``vắc xin``)."""
    return _WORD_RE.findall(unicodedata.normalize("NFC", text).lower())


@dataclass(frozen=True, slots=True)
class Score:
    errors: int  # substitutions + deletions + insertions
    ref_words: int
    lost: tuple[str, ...]  # reference words substituted or deleted

    @property
    def wer(self) -> float:
        return self.errors / self.ref_words if self.ref_words else 0.0


def score(reference: Sequence[str], hypothesis: Sequence[str]) -> Score:
    """Levenshtein alignment of words; the reference words that did not come back."""
    n, m = len(reference), len(hypothesis)
    dist = [[0] * (m + 1) for _ in range(n + 1)]
    for i in range(n + 1):
        dist[i][0] = i
    for j in range(m + 1):
        dist[0][j] = j
    for i in range(1, n + 1):
        for j in range(1, m + 1):
            same = reference[i - 1] == hypothesis[j - 1]
            dist[i][j] = min(dist[i - 1][j - 1] + (0 if same else 1), dist[i - 1][j] + 1, dist[i][j - 1] + 1)
    lost: list[str] = []
    i, j = n, m
    while i > 0 or j > 0:
        if i > 0 and j > 0 and dist[i][j] == dist[i - 1][j - 1] + (reference[i - 1] != hypothesis[j - 1]):
            if reference[i - 1] != hypothesis[j - 1]:
                lost.append(reference[i - 1])
            i, j = i - 1, j - 1
        elif i > 0 and dist[i][j] == dist[i - 1][j] + 1:
            lost.append(reference[i - 1])
            i -= 1
        else:
            j -= 1
    return Score(dist[n][m], n, tuple(reversed(lost)))


def combine(scores: Iterable[Score]) -> Score:
    scores = list(scores)
    return Score(
        sum(s.errors for s in scores), sum(s.ref_words for s in scores), tuple(w for s in scores for w in s.lost)
    )


# --- settings ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Setting:
    name: str
    voice: str
    rate: int
    word_gap: int = 0
    pitch: int = 50

    def espeak(self) -> EspeakSettings:
        return EspeakSettings(voice=self.voice, rate=self.rate, word_gap=self.word_gap, pitch=self.pitch)


def _setting(voice: str, rate: int, gap: int = 0) -> Setting:
    return Setting(f"espeak {voice} rate {rate} gap {gap}", voice, rate, gap)


SETTINGS: tuple[Setting, ...] = (
    _setting("vi", 150, 0),  # the default before this benchmark
    _setting("vi", 130, 10),
    _setting("vi", 120, 10),
    _setting("vi", 110, 10),
    _setting("vi", 140, 10),
    _setting("vi", 130, 20),
    _setting("vi", 130, 5),
    _setting("vi", 135, 10),
    _setting("vi-vn-x-central", 130, 10),
    _setting("vi-vn-x-south", 130, 10),
)


# --- running ----------------------------------------------------------------------------


def load_sentences(path: Path = SENTENCES) -> list[str]:
    lines = [unicodedata.normalize("NFC", line.strip()) for line in path.read_text(encoding="utf-8").splitlines()]
    return [line for line in lines if line and not line.startswith("#")]


Transcribe = Callable[[Path], str]


def viet_asr() -> Transcribe:
    """viet-asr's offline transcriber (weights inside the wheel)."""
    try:
        import vietasr
    except ImportError:
        sys.exit("viet-asr is not installed: .venv/bin/pip install -e '.[bench]'")
    pipeline = vietasr.Pipeline.preset("transcribe")
    return lambda wav: str(pipeline.transcribe(str(wav)).text)


def speak_and_score(
    setting: Setting, sentences: Sequence[str], transcribe: Transcribe, *, work: Path, workers: int = 2
) -> tuple[Score, list[dict[str, object]]]:
    from pipeline.tts.espeak import EspeakEngine

    engine = EspeakEngine(setting.espeak())
    a = AudioSettings()
    lexicon = builtin_lexicon()
    spoken = [normalize(s, lexicon=lexicon) for s in sentences]

    def synth(i: int) -> Path:
        raw, wav = work / f"{i}.raw.wav", work / f"{i}.wav"
        engine.synthesize(spoken[i], raw)
        ffmpeg_write.decode_pcm_wav(raw, wav, settings=a)
        return wav

    scores: list[Score] = []
    rows: list[dict[str, object]] = []
    with ThreadPoolExecutor(max_workers=workers) as pool:  # speak ahead while the recogniser listens
        for i, wav in enumerate(pool.map(synth, range(len(sentences)))):
            heard = transcribe(wav)
            s = score(words(spoken[i]), words(heard))
            scores.append(s)
            rows.append({"sentence": sentences[i], "spoken": spoken[i], "heard": heard, "wer": round(s.wer, 3)})
    return combine(scores), rows


def vieneu_samples(cache: Path) -> list[tuple[Path, str]]:
    """(wav, transcript) pairs from the vieneu wheel, downloaded once with pip (no dependencies)."""
    cache.mkdir(parents=True, exist_ok=True)
    wheels = sorted(cache.glob("vieneu-*.whl"))
    if not wheels:
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "-q", "--no-deps", "-d", str(cache), VIENEU], check=True
        )
        wheels = sorted(cache.glob("vieneu-*.whl"))
    out: list[tuple[Path, str]] = []
    with zipfile.ZipFile(wheels[-1]) as whl:
        for name in sorted(whl.namelist()):
            if name.startswith("vieneu/assets/samples/") and name.endswith(".wav"):
                text = whl.read(name[:-4] + ".txt").decode("utf-8").strip()
                dst = cache / "samples" / Path(name).name
                dst.parent.mkdir(exist_ok=True)
                dst.write_bytes(whl.read(name))
                out.append((dst, unicodedata.normalize("NFC", text)))
    return out


def human_floor(
    samples: Sequence[tuple[Path, str]], transcribe: Transcribe, *, work: Path
) -> tuple[Score, Score, list[dict[str, object]]]:
    """WER of natural speech raw, and after ingest + loudness + 64 kbps MP3 (the pipeline)."""
    a = AudioSettings()
    lexicon = builtin_lexicon()
    raw_scores, mastered_scores, rows = [], [], []
    for i, (src, text) in enumerate(samples):
        ref = words(normalize(text, lexicon=lexicon))
        raw_wav = work / f"h{i}.wav"
        ffmpeg_write.decode_pcm_wav(src, raw_wav, settings=a)
        heard_raw = transcribe(raw_wav)
        ingested = work / f"h{i}.ingest.wav"
        info = ingest.ingest_audio(src, ingested, settings=a)
        mp3 = work / f"h{i}.mp3"
        mastering.master_mp3(ingested, mp3, settings=a, tags=Id3Tags(title="bench"), source_loudness=info.loudness)
        back = work / f"h{i}.mp3.wav"
        ffmpeg_write.decode_pcm_wav(mp3, back, settings=a)
        heard_mastered = transcribe(back)
        raw_scores.append(score(ref, words(heard_raw)))
        mastered_scores.append(score(ref, words(heard_mastered)))
        rows.append({"sample": src.name, "transcript": text, "raw": heard_raw, "mastered": heard_mastered})
    return combine(raw_scores), combine(mastered_scores), rows


# --- report -----------------------------------------------------------------------------


def report(
    results: dict[str, Score], *, floor: Score | None, mastered: Score | None, sentences: int, seconds: float
) -> dict[str, object]:
    """The figures as one JSON-ready dict: WER per setting (best first), floor, pipeline effect, lost words."""
    ranked = sorted(results.items(), key=lambda kv: kv[1].wer)
    lost = collections.Counter(w for s in results.values() for w in s.lost)
    best = ranked[0] if ranked else None
    out: dict[str, object] = {
        "sentences": sentences,
        "seconds": round(seconds, 1),
        "settings": [
            {"setting": name, "wer": round(s.wer, 3), "errors": s.errors, "words": s.ref_words} for name, s in ranked
        ],
        "best": best[0] if best else None,
        "lost_words": lost.most_common(25),
        "best_lost_words": collections.Counter(best[1].lost).most_common(25) if best else [],
    }
    if floor is not None and mastered is not None:
        effect = mastered.wer - floor.wer
        out["human_floor"] = {"raw_wer": round(floor.wer, 3), "words": floor.ref_words}
        out["pipeline_effect"] = {
            "raw_wer": round(floor.wer, 3),
            "mastered_wer": round(mastered.wer, 3),
            "difference": round(effect, 3),
            "within_tolerance": abs(effect) <= PIPELINE_TOLERANCE,
        }
    return out


def markdown(rep: dict[str, object]) -> str:
    lines = ["| setting | WER | errors / words |", "|---|---:|---:|"]
    for row in rep["settings"]:  # type: ignore[attr-defined]
        lines.append(f"| {row['setting']} | {row['wer']:.3f} | {row['errors']} / {row['words']} |")
    if "human_floor" in rep:
        pe = rep["pipeline_effect"]
        lines.append(f"| human speech (vieneu samples), raw | {pe['raw_wer']:.3f} | |")  # type: ignore[index]
        lines.append(f"| same, ingest + loudness + 64 kbps MP3 | {pe['mastered_wer']:.3f} | |")  # type: ignore[index]
    lost = ", ".join(f"{w} ({n})" for w, n in rep["best_lost_words"])  # type: ignore[attr-defined]
    lines += ["", f"Words most often lost by the best setting: {lost}"]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--limit", type=int, default=0, help="only the first N sentences (a quick run)")
    parser.add_argument("--settings", default="", help="comma-separated setting names (default: all)")
    parser.add_argument("--json", type=Path, default=None, help="write the report (and every sentence) here")
    parser.add_argument("--no-human", action="store_true", help="skip the human-speech floor")
    parser.add_argument("--cache", type=Path, default=ROOT / "data" / "bench", help="where vieneu is kept")
    args = parser.parse_args(argv)
    sentences = load_sentences()
    if args.limit:
        sentences = sentences[: args.limit]
    chosen = [s for s in SETTINGS if not args.settings or s.name in args.settings.split(",")]
    transcribe = viet_asr()
    started = time.monotonic()
    results: dict[str, Score] = {}
    details: dict[str, object] = {}
    floor = mastered = None
    with tempfile.TemporaryDirectory(prefix="loa-intelligibility-") as tmp:
        if not args.no_human:
            work = Path(tmp) / "human"
            work.mkdir()
            floor, mastered, rows = human_floor(vieneu_samples(args.cache), transcribe, work=work)
            details["human"] = rows
            print(f"human floor: raw {floor.wer:.3f}, through the pipeline {mastered.wer:.3f}", flush=True)
        for setting in chosen:
            work = Path(tmp) / setting.name.replace(" ", "_")
            work.mkdir()
            t0 = time.monotonic()
            results[setting.name], details[setting.name] = speak_and_score(setting, sentences, transcribe, work=work)
            took = time.monotonic() - t0
            print(f"{setting.name}: WER {results[setting.name].wer:.3f} ({took:.0f} s)", flush=True)
            if args.json:  # what is measured so far survives an interrupted run
                so_far = report(results, floor=floor, mastered=mastered, sentences=len(sentences), seconds=0)
                _write(args.json, so_far | {"details": details, "partial": True})
    rep = report(results, floor=floor, mastered=mastered, sentences=len(sentences), seconds=time.monotonic() - started)
    print(markdown(rep))
    if args.json:
        _write(args.json, rep | {"details": details})
    return 0


def _write(path: Path, data: dict[str, object]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, ensure_ascii=False, indent=1), encoding="utf-8")


if __name__ == "__main__":
    raise SystemExit(main())


__all__ = ["SETTINGS", "Score", "Setting", "combine", "markdown", "report", "score", "words"]
