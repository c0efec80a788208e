"""The text front end's interface: properties, lexicons, sentence splitting, lines, threads."""

from __future__ import annotations

import subprocess
import unicodedata
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from pipeline.errors import ConfigError
from pipeline.textnorm import (
    builtin_lexicon,
    load_lexicon,
    normalize,
    normalize_lines,
    read_int,
    split_sentences,
    words_to_int,
)
from pipeline.textnorm.numbers import roman_to_int
from pipeline.textnorm.references import SERVICE_RE

REPO = Path(__file__).resolve().parent.parent
VI_LETTERS = "aàáảãạăằắẳẵặâầấẩẫậbcdđeèéẻẽẹêềếểễệghiìíỉĩịklmnoòóỏõọôồốổỗộơờớởỡợpqrstuùúủũụưừứửữựvxyỳýỷỹỵ"
VI_ALPHABET = VI_LETTERS + VI_LETTERS.upper() + "0123456789 .,:;/-%()\n" + "hđĐ"


# ---------------------------------------------------------------- properties


@settings(max_examples=300, deadline=None)
@given(st.text())
def test_no_digit_survives_any_text(text: str) -> None:
    out = normalize(text)
    assert not any(ch.isdigit() for ch in out), out


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=VI_ALPHABET, max_size=80))
def test_no_digit_survives_bulletin_like_text(text: str) -> None:
    for variant in ("north", "south"):
        out = normalize(text, variant=variant)
        assert not any(ch.isdigit() for ch in out), out


@settings(max_examples=300, deadline=None)
@given(st.integers(min_value=0, max_value=10**12), st.sampled_from(["north", "south"]))
@example(19_000_000, "north")  # found by hypothesis in CI: a 1900 number written without separators
def test_every_integer_reads_back_to_itself(n: int, variant: str) -> None:
    if SERVICE_RE.fullmatch(str(n)):  # 1800/1900 numbers are hotlines, digit by digit (docs/textnorm.md)
        assert normalize(str(n), variant=variant).startswith(("một tám không không,", "một chín không không,"))
    else:
        assert words_to_int(normalize(str(n), variant=variant)) == n
    dotted = f"{n:,}".replace(",", ".")  # written with thousands separators
    assert words_to_int(normalize(dotted, variant=variant)) == n


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet=VI_ALPHABET + "&~!?", max_size=60))
def test_normalizing_twice_changes_nothing(text: str) -> None:
    once = normalize(text)
    assert normalize(once) == once


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet=VI_ALPHABET, max_size=60))
def test_nfd_and_nfc_read_the_same(text: str) -> None:
    assert normalize(unicodedata.normalize("NFD", text)) == normalize(unicodedata.normalize("NFC", text))


@pytest.mark.parametrize(
    "n", [0, 1, 10, 11, 15, 21, 24, 25, 100, 101, 105, 1000, 1005, 10**6, 10**9 + 5, 10**12, 10**15 + 24]
)
def test_read_int_and_words_to_int_are_inverse(n: int) -> None:
    for variant in ("north", "south"):
        assert words_to_int(read_int(n, variant)) == n
    assert words_to_int(read_int(-n)) == -n


def test_words_to_int_rejects_other_words() -> None:
    with pytest.raises(ValueError, match="not a number word"):
        words_to_int("hai con gà")
    with pytest.raises(ValueError, match="no number words"):
        words_to_int("  ")


def test_roman_numerals() -> None:
    assert [roman_to_int(r) for r in ("I", "IV", "IX", "XIII", "XV", "XXI", "MMXXV")] == [
        1,
        4,
        9,
        13,
        15,
        21,
        2025,
    ]
    assert roman_to_int("IIII") is None
    assert roman_to_int("") is None


def test_unknown_variant_is_refused() -> None:
    with pytest.raises(ValueError, match="north"):
        normalize("15", variant="central")


def test_empty_and_blank_text() -> None:
    assert normalize("") == ""
    assert normalize(" \t\u00a0\n ") == ""
    assert normalize("😀") == ""


# ---------------------------------------------------------------- purity, threads, lines


def test_normalize_is_pure_and_thread_safe() -> None:
    texts = [
        f"Ngày {d}/{m}/2025 lúc {h}h30, UBND xã hỗ trợ {d * 1000:,} đồng/hộ".replace(",", ".")
        for d in range(1, 29)
        for m in (1, 4, 12)
        for h in (7, 19)
    ]
    sequential = [normalize(t, variant=v) for t in texts for v in ("north", "south")]
    with ThreadPoolExecutor(max_workers=4) as pool:
        threaded = list(
            pool.map(
                lambda tv: normalize(tv[0], variant=tv[1]),
                [(t, v) for t in texts for v in ("north", "south")],
            )
        )
    assert threaded == sequential
    assert sequential[0] != sequential[1]  # the variants really differ (nghìn / ngàn)


def test_normalize_lines_keeps_one_line_per_line_in_order() -> None:
    lines = ["UBND xã Y Tý\n", "\n", "hỗ trợ 50.000đ/hộ\r\n", "gọi 112"]
    out = list(normalize_lines(lines))
    assert out == ["ủy ban nhân dân xã Y Tý", "", "hỗ trợ năm mươi nghìn đồng mỗi hộ", "gọi một một hai"]
    assert list(normalize_lines(["105"], variant="south")) == ["một trăm lẻ năm"]


def test_normalize_lines_is_lazy() -> None:
    def endless() -> object:
        n = 0
        while True:
            n += 1
            yield str(n)

    it = normalize_lines(endless())  # type: ignore[arg-type]
    assert [next(it) for _ in range(3)] == ["một", "hai", "ba"]


# ---------------------------------------------------------------- lexicons


def test_builtin_lexicon_is_large_and_cached() -> None:
    lex = builtin_lexicon()
    assert len(lex.abbreviations) >= 80
    assert {"UBND", "HĐND", "TP.", "TX.", "BCH", "MTTQ", "THCS", "THPT", "CSGT", "BHYT", "BHXH"} <= set(
        lex.abbreviations
    )
    assert {"CCCD", "KT-XH", "ATGT", "PCCC"} <= set(lex.abbreviations)
    assert {"QĐ", "KH", "CT", "NQ", "NĐ"} <= set(lex.codes)
    assert builtin_lexicon() is lex
    with pytest.raises(TypeError):
        lex.abbreviations["UBND"] = "x"  # type: ignore[index]


def test_builtin_values_have_no_digits_and_read_cleanly() -> None:
    lex = builtin_lexicon()
    for key, value in [*lex.abbreviations.items(), *lex.codes.items()]:
        assert not any(c.isdigit() for c in value), key
        assert normalize(value) == value, key  # spoken forms need no further reading


def test_deployment_lexicon_in_voices_loads_and_applies() -> None:
    lex = load_lexicon(REPO / "voices" / "lexicon.vi.toml")
    assert lex.abbreviations["UBND"] == "ủy ban nhân dân"  # built-in entries are kept
    assert normalize("Công văn 1234/UBND-VX", lexicon=lex) == (
        "Công văn một nghìn hai trăm ba mươi tư ủy ban nhân dân văn xã"
    )
    assert normalize("Sapa, SAPA và Fansipan", lexicon=lex) == "Sa Pa, Sa Pa và Phan Xi Păng"
    assert normalize("BQL KDL Sa Pa", lexicon=lex) == "ban quản lý khu du lịch Sa Pa"
    # without the deployment lexicon the code is spelled
    assert normalize("Công văn 1234/UBND-VX").endswith("ủy ban nhân dân vê ích")


def test_deployment_entry_overrides_builtin(tmp_path: Path) -> None:
    path = tmp_path / "lexicon.vi.toml"
    path.write_text('[abbreviations]\n"CT" = "công ty"\n\n[codes]\n"KH" = "kế hoạch số"\n', encoding="utf-8")
    lex = load_lexicon(path)
    assert normalize("CT may mặc", lexicon=lex) == "công ty may mặc"
    assert normalize("158/KH-UBND", lexicon=lex) == "một trăm năm mươi tám kế hoạch số ủy ban nhân dân"
    assert normalize("CT may mặc") == "chủ tịch may mặc"


def test_lexicon_entries_are_nfc_and_one_tone_style(tmp_path: Path) -> None:
    path = tmp_path / "lexicon.vi.toml"
    nfd_key = unicodedata.normalize("NFD", "Hoà Thuỷ")
    path.write_text(f'[phrases]\n"{nfd_key}" = "{unicodedata.normalize("NFD", "hoà thuỷ")}"\n', encoding="utf-8")
    lex = load_lexicon(path)
    assert normalize("xã Hòa Thủy", lexicon=lex) == "xã hòa thủy"


@pytest.mark.parametrize(
    ("content", "line", "words"),
    [
        ('[abbreviations]\n"UBND" = "ủy ban\n', 2, "not valid TOML"),
        ('[abbreviations]\n"A1" = "a một"\n"TTVH" = 5\n', 3, "quoted string"),
        ('# note\n[codes]\n"VX" = "văn xã"\n"KH" = "kế hoạch 2"\n', 4, "numbers written out"),
        ('[abbreviations]\n"UB ND" = "ủy ban"\n', 2, "no spaces"),
        ('[words]\n"a" = "b"\n', 1, "unknown table"),
        ('[phrases]\n"Sapa" = ""\n', 2, "words only"),
        ('title = "x"\n', 1, "unknown table or key"),
    ],
)
def test_bad_lexicon_names_file_and_line(tmp_path: Path, content: str, line: int, words: str) -> None:
    path = tmp_path / "lexicon.vi.toml"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(ConfigError) as err:
        load_lexicon(path)
    message = str(err.value)
    assert str(path) in message
    assert f"line {line}:" in message
    assert words in message


def test_missing_lexicon_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read the lexicon"):
        load_lexicon(tmp_path / "nope.toml")


# ---------------------------------------------------------------- sentences


def test_split_sentences_at_sentence_ends_and_lines() -> None:
    text = "Kính thưa bà con. Hôm nay trời mưa! Có lũ không?\nXin cảm ơn…"
    assert split_sentences(text) == ["Kính thưa bà con.", "Hôm nay trời mưa!", "Có lũ không?", "Xin cảm ơn…"]


def test_long_sentence_is_cut_at_a_sensible_point() -> None:
    clause = "ủy ban nhân dân xã đề nghị bà con nhân dân chủ động phòng chống rét cho gia súc"
    sentence = ", ".join([clause] * 6) + "."
    pieces = split_sentences(sentence, max_chars=200)
    assert len(pieces) > 1
    assert all(len(p) <= 200 for p in pieces)
    assert all(p.endswith((",", ".")) for p in pieces)  # cut after a comma, not inside a clause
    assert " ".join(pieces).split() == sentence.split()  # nothing lost, order kept


def test_long_sentence_without_commas_is_cut_before_a_joining_word_or_at_a_space() -> None:
    sentence = " ".join(["bà con thực hiện tốt quy định"] * 12) + " và chấp hành nghiêm " + "lệnh cấm " * 10
    pieces = split_sentences(sentence, max_chars=120)
    assert all(len(p) <= 120 for p in pieces)
    assert " ".join(pieces).split() == sentence.split()


def test_a_single_huge_word_is_kept_whole() -> None:
    word = "a" * 300
    assert split_sentences(f"xin chào {word} nhé", max_chars=100) == ["xin chào", word, "nhé"]


def test_split_sentences_refuses_a_tiny_limit() -> None:
    with pytest.raises(ValueError, match="max_chars"):
        split_sentences("x", max_chars=5)


def test_split_after_normalize_keeps_abbreviation_dots_out_of_the_way() -> None:
    spoken = normalize("TP. Lào Cai thông báo. Lúc 7h30 ngày 15/12 có mưa.")
    assert split_sentences(spoken) == [
        "thành phố Lào Cai thông báo.",
        "Lúc bảy giờ ba mươi phút ngày mười lăm tháng mười hai có mưa.",
    ]


# ---------------------------------------------------------------- with the real espeak-ng


def _espeak_phonemes(text: str) -> str:
    done = subprocess.run(
        ["espeak-ng", "-v", "vi", "-q", "-x", text], capture_output=True, text=True, timeout=30, check=True
    )
    return done.stdout


@pytest.mark.audio
def test_espeak_stays_in_vietnamese_on_normalized_text() -> None:
    written = "UBND xã Y Tý thông báo: Chỉ thị số 07/CT-TTg, 7h30 ngày 21/3/2023, HTX nhận 50.000đ/hộ."
    assert "(en)" in _espeak_phonemes(written)  # raw text makes espeak-ng switch to English
    spoken = normalize(written)
    phonemes = _espeak_phonemes(spoken)
    assert phonemes.strip()
    assert "(en)" not in phonemes
    assert "(" not in phonemes  # no switch to any other language
