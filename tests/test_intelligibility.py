"""The intelligibility benchmark's scoring and report (the ASR run itself is `make bench`)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

from pipeline.textnorm import normalize

_PATH = Path(__file__).resolve().parent.parent / "benchmarks" / "intelligibility.py"
_spec = importlib.util.spec_from_file_location("loa_bench_intelligibility", _PATH)
assert _spec and _spec.loader
bench = importlib.util.module_from_spec(_spec)
sys.modules[_spec.name] = bench
_spec.loader.exec_module(bench)


def test_words_are_lowercase_nfc_without_punctuation() -> None:
    assert bench.words("Kính thưa bà con, vắc-xin SỞI!") == ["kính", "thưa", "bà", "con", "vắc", "xin", "sởi"]
    assert bench.words("Hoà") == bench.words("Hoa\u0300")  # NFC either way


def test_wer_counts_substitutions_deletions_and_insertions() -> None:
    ref = ["kính", "thưa", "bà", "con", "xã", "y", "tý"]
    assert bench.score(ref, ref).wer == 0.0
    s = bench.score(ref, ["kính", "thưa", "bà", "con", "xa", "y"])  # one substitution, one deletion
    assert (s.errors, s.ref_words, s.lost) == (2, 7, ("xã", "tý"))
    s = bench.score(["a", "b"], ["a", "x", "b"])  # one insertion, nothing lost
    assert (s.errors, s.lost) == (1, ())
    assert bench.score(ref, []).wer == 1.0
    assert bench.score([], ["a"]).wer == 0.0


def test_combined_wer_weights_by_words() -> None:
    total = bench.combine([bench.score(["a"] * 9 + ["b"], ["a"] * 9 + ["c"]), bench.score(["a", "b"], [])])
    assert (total.errors, total.ref_words) == (3, 12)
    assert total.wer == pytest.approx(0.25)


def test_report_ranks_settings_and_checks_the_pipeline_effect() -> None:
    results = {
        "espeak vi rate 150 gap 0": bench.score(["một", "hai", "ba", "bốn"], ["một", "ha"]),
        "espeak vi rate 130 gap 10": bench.score(["một", "hai", "ba", "bốn"], ["một", "hai", "ba"]),
    }
    floor = bench.score(["anh", "chỉ", "muốn"], ["chỉ", "muốn"])
    mastered = bench.score(["anh", "chỉ", "muốn"], ["chỉ", "muốn"])
    rep = bench.report(results, floor=floor, mastered=mastered, sentences=1, seconds=1.0)
    assert [r["setting"] for r in rep["settings"]] == ["espeak vi rate 130 gap 10", "espeak vi rate 150 gap 0"]
    assert rep["best"] == "espeak vi rate 130 gap 10"
    assert rep["settings"][0] == {"setting": "espeak vi rate 130 gap 10", "wer": 0.25, "errors": 1, "words": 4}
    assert rep["pipeline_effect"] == {"raw_wer": 0.333, "mastered_wer": 0.333, "difference": 0.0,
                                      "within_tolerance": True}  # fmt: skip
    assert rep["best_lost_words"] == [("bốn", 1)]
    assert ("bốn", 2) in rep["lost_words"]
    text = bench.markdown(rep)
    assert "| espeak vi rate 130 gap 10 | 0.250 | 1 / 4 |" in text and "64 kbps MP3" in text


def test_sentence_set_is_large_enough_and_speakable() -> None:
    sentences = bench.load_sentences()
    assert len(sentences) >= 100
    assert len(set(sentences)) == len(sentences)
    spoken = [normalize(s) for s in sentences]
    assert all(not any(ch.isdigit() for ch in s) for s in spoken), "every number is read out"
    assert sum(len(bench.words(s)) for s in spoken) > 1500


def test_settings_cover_the_three_vietnamese_voices() -> None:
    assert {s.voice for s in bench.SETTINGS} == {"vi", "vi-vn-x-central", "vi-vn-x-south"}
    assert len({s.name for s in bench.SETTINGS}) == len(bench.SETTINGS)
