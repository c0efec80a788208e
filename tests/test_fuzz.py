"""Hostile input: generated bulletins and texts raise only Loa's own errors, never crash."""

from __future__ import annotations

import string

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipeline.errors import LoaError
from pipeline.intake import parse_bulletin
from pipeline.models import Deployment
from pipeline.textnorm import normalize
from tests.conftest import REPO
from tests.test_intake import GOOD

DEPLOYMENT: Deployment | None = None


def deployment() -> Deployment:
    global DEPLOYMENT
    if DEPLOYMENT is None:
        from pipeline.deployment import load_deployment

        DEPLOYMENT = load_deployment(REPO / "schedules")
    return DEPLOYMENT


VI = "àáảãạăằắẳẵặâầấẩẫậèéẻẽẹêềếểễệìíỉĩịòóỏõọôồốổỗộơờớởỡợùúủũụưừứửữựỳýỷỹỵđĐ"
TEXT = st.text(
    alphabet=st.sampled_from(string.printable + VI + "\u00a0\u202f\u3000\u200b\ufeff<>&/-.,:%°²³₫"),
    max_size=300,
)
LINES = GOOD.splitlines(keepends=True)


@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(max_size=400))
def test_any_text_as_a_bulletin(text: str) -> None:
    try:
        parse_bulletin(text, where="fuzz.md", deployment=deployment())
    except LoaError as exc:
        assert str(exc).startswith("fuzz.md")


@settings(max_examples=1500, deadline=None)
@given(st.lists(st.tuples(st.integers(0, len(LINES) - 1), TEXT), max_size=4))
def test_mutated_bulletins(edits: list[tuple[int, str]]) -> None:
    lines = list(LINES)
    for index, text in edits:
        lines[index] = text + "\n"
    try:
        b = parse_bulletin("".join(lines), where="fuzz.md", deployment=deployment()).bulletin
    except LoaError as exc:
        assert str(exc).startswith("fuzz.md")
    else:
        assert b.title and b.body and b.valid_from <= b.valid_until


@settings(max_examples=3000, deadline=None)
@given(TEXT)
def test_text_front_end_never_crashes(text: str) -> None:
    try:
        out = normalize(text)
    except LoaError:
        return
    assert isinstance(out, str)
    assert not any(ch.isdigit() for ch in out)


@pytest.mark.parametrize("text", ["{{ 7*7 }}", "{% for x in range(3) %}x{% endfor %}", "{# c #}", "@pause 99"])
def test_template_syntax_in_a_bulletin_is_kept_literally(text: str) -> None:
    b = parse_bulletin(
        GOOD.replace("Bà con gia hạn", f"{text} Bà con gia hạn"), where="b.md", deployment=deployment()
    ).bulletin
    assert b.body.startswith(text)
