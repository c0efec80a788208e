"""Every error code raised anywhere in pipeline/ has its Vietnamese line in ``messages.VI``.

The codes are found in the source, not listed by hand, so a code added later is held too:
class defaults (``code = "…"`` in an error class), ``code="…"`` arguments (constants, either
branch of ``a if c else b``), arguments of a module's own helper that takes a ``code``
parameter, constants a ``*_code`` function returns or a ``code`` variable is given, and the
``recording.<reason>`` codes of ``RecordingRefused``. A code built by an f-string must be one
of the families ``_dynamic`` knows how to list.
"""

from __future__ import annotations

import ast
import string
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from pipeline import textrules
from pipeline.errors import BulletinError, CapError, LoaError, RecordingRefused, UsageError
from pipeline.messages import VI, vietnamese
from tests.conftest import REPO

PIPELINE = REPO / "pipeline"
ERROR_SUFFIXES = ("Error", "Refused", "Failure")


@dataclass(frozen=True)
class Found:
    code: str
    where: str  # path:line
    fields: frozenset[str] | None = None  # the fields given with it, when the call names them all


def _files() -> list[Path]:
    return sorted(PIPELINE.rglob("*.py"))


def _name(func: ast.expr) -> str:
    if isinstance(func, ast.Name):
        return func.id
    if isinstance(func, ast.Attribute):
        return func.attr
    return ""


def _constants(node: ast.expr | None) -> Iterator[str]:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        yield node.value
    elif isinstance(node, ast.IfExp):
        yield from _constants(node.body)
        yield from _constants(node.orelse)


def _params(fn: ast.FunctionDef | ast.AsyncFunctionDef) -> list[str]:
    names = [a.arg for a in (*fn.args.posonlyargs, *fn.args.args)]
    return names[1:] if names and names[0] in ("self", "cls") else names


def _helpers(tree: ast.Module, param: str) -> dict[str, int | None]:
    """This module's functions (and ``__call__`` of its classes) taking ``param``: name → its position."""
    out: dict[str, int | None] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.ClassDef):
            for item in node.body:
                if isinstance(item, ast.FunctionDef) and item.name == "__call__":
                    params = _params(item)
                    kwonly = {a.arg for a in item.args.kwonlyargs}
                    if param in params or param in kwonly:
                        # an instance is called by whatever name it is bound to; match by the class too
                        out[f"<instance of {node.name}>"] = params.index(param) if param in params else None
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name != "__init__":
            params = _params(node)
            kwonly = {a.arg for a in node.args.kwonlyargs}
            if param in params:
                out[node.name] = params.index(param)
            elif param in kwonly:
                out[node.name] = None
    return out


def _instances(tree: ast.Module, classes: set[str]) -> set[str]:
    """Names bound to an instance of one of ``classes`` (``fail = _Fail(where)``)."""
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Call) and _name(node.value.func) in classes:
            names.update(t.id for t in node.targets if isinstance(t, ast.Name))
    return names


def _argument(call: ast.Call, param: str, index: int | None) -> ast.expr | None:
    for kw in call.keywords:
        if kw.arg == param:
            return kw.value
    if index is not None and index < len(call.args):
        return call.args[index]
    return None


def _recording_reasons(tree: ast.Module, where: str) -> Iterator[Found]:
    """``RecordingRefused(…, reason="x")`` and a module's helpers that build one with their ``reason``."""
    builders: dict[str, int | None] = {"RecordingRefused": None}
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef) and any(
            isinstance(n, ast.Call) and _name(n.func) == "RecordingRefused" for n in ast.walk(node)
        ):
            params = _params(node)
            if "reason" in params:
                builders[node.name] = params.index("reason")
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and _name(node.func) in builders:
            for reason in _constants(_argument(node, "reason", builders[_name(node.func)])):
                yield Found(f"recording.{reason}", f"{where}:{node.lineno}")


def _dynamic(pattern: str, found: list[Found]) -> set[str]:
    if pattern == "f'recording.{reason}'":
        return {f.code for f in found if f.code.startswith("recording.")}
    if pattern == "f'bulletin.field.{kind}'":
        return {f"bulletin.field.{kind}" for kind in textrules.KINDS}
    raise AssertionError(f"a code built as {pattern}: teach tests/test_error_codes.py to list its family")


def _passes_code_variable(fn: ast.FunctionDef) -> bool:
    """Whether ``fn`` raises with ``code=code`` (so what it assigns to ``code`` is an error code)."""
    return any(
        isinstance(n, ast.Call)
        and any(kw.arg == "code" and isinstance(kw.value, ast.Name) and kw.value.id == "code" for kw in n.keywords)
        for n in ast.walk(fn)
    )


def scan() -> tuple[list[Found], list[tuple[str, str]]]:
    """(codes found, f-string codes with where they are)."""
    found: list[Found] = []
    dynamic: list[tuple[str, str]] = []
    for path in _files():
        rel = str(path.relative_to(REPO))
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=rel)
        helpers = _helpers(tree, "code")
        callable_classes = {k.removeprefix("<instance of ").removesuffix(">") for k in helpers if k.startswith("<")}
        instance_names = _instances(tree, callable_classes)
        instance_index = next((v for k, v in helpers.items() if k.startswith("<")), None)
        found.extend(_recording_reasons(tree, rel))
        for node in ast.walk(tree):
            where = f"{rel}:{getattr(node, 'lineno', 0)}"
            if isinstance(node, ast.ClassDef) and any(_name(b).endswith(ERROR_SUFFIXES) for b in node.bases):
                for item in node.body:
                    if isinstance(item, ast.Assign) and any(
                        isinstance(t, ast.Name) and t.id == "code" for t in item.targets
                    ):
                        found.extend(Found(c, where) for c in _constants(item.value))
            elif isinstance(node, ast.Call):
                name = _name(node.func)
                if name in instance_names:
                    arg = _argument(node, "code", instance_index)
                elif name in helpers:
                    arg = _argument(node, "code", helpers[name])
                else:
                    arg = _argument(node, "code", None)
                if isinstance(arg, ast.JoinedStr):
                    dynamic.append((ast.unparse(arg), where))
                    continue
                direct = name.endswith(ERROR_SUFFIXES) and not any(kw.arg is None for kw in node.keywords)
                given = frozenset(kw.arg for kw in node.keywords if kw.arg and kw.arg != "code") if direct else None
                found.extend(Found(c, where, given) for c in _constants(arg))
            elif isinstance(node, ast.FunctionDef) and node.name.endswith("_code"):
                for ret in ast.walk(node):
                    if isinstance(ret, ast.Return):
                        found.extend(Found(c, f"{rel}:{ret.lineno}") for c in _constants(ret.value))
            elif isinstance(node, ast.FunctionDef) and _passes_code_variable(node):
                for assign in ast.walk(node):
                    if isinstance(assign, ast.Assign) and any(
                        isinstance(t, ast.Name) and t.id == "code" for t in assign.targets
                    ):
                        found.extend(Found(c, f"{rel}:{assign.lineno}") for c in _constants(assign.value))
    return found, dynamic


def all_codes() -> list[Found]:
    found, dynamic = scan()
    for pattern, where in dynamic:
        found.extend(Found(code, where) for code in _dynamic(pattern, found))
    return found


def test_the_scan_finds_codes_of_every_kind() -> None:
    """The scan itself: each way a code is written is found (else the next test would pass on nothing)."""
    codes = {f.code for f in all_codes()}
    assert {"bulletin", "render.transient", "partial"} <= codes  # class defaults
    assert "bulletin.file.not_utf8" in codes  # code="…" in a call
    assert "bulletin.category.unknown" in codes  # intake's fail(…, code=…) helper
    assert "consultation.question.kind" in codes  # feedback intake's _Fail instance
    assert {"bulletin.field.bidi", "bulletin.field.too_long"} <= codes  # f-string family, and a constant
    assert {"recording.playlist", "recording.name_chars", "recording.language"} <= codes  # reasons
    assert "lifecycle.not_allowed" in codes  # returned by refusal_code
    assert len(codes) > 80


def test_every_code_raised_in_pipeline_has_its_vietnamese() -> None:
    missing = sorted({f"{f.code} ({f.where})" for f in all_codes() if f.code not in VI})
    assert not missing, "codes without a line in pipeline/messages.py VI:\n" + "\n".join(missing)


def test_every_direct_error_gives_the_fields_its_template_needs() -> None:
    """``raise XError(…, code="c", a=…)``: the template of "c" uses only fields the call gives."""
    problems = []
    for f in all_codes():
        if f.fields is None or f.code not in VI:
            continue
        needed = {name for _, name, _, _ in string.Formatter().parse(VI[f.code]) if name}
        given = set(f.fields)
        given |= {"field_vi"} if "field" in given else set()
        given |= {"language_vi"} if "language" in given else set()
        if needed - given:
            problems.append(f"{f.where}: {f.code} needs {sorted(needed - given)}")
    assert not problems, "\n".join(problems)


def test_every_template_formats_with_its_own_fields() -> None:
    for code, template in VI.items():
        names = {name for _, name, _, _ in string.Formatter().parse(template) if name}
        text = template.format(**dict.fromkeys(names, "x"))
        assert text and "{" not in text, code


def test_an_unknown_code_falls_back_to_its_own_class_then_its_parents() -> None:
    assert vietnamese(CapError("x", code="cap.something.new")) == VI["cap"]
    assert vietnamese(BulletinError("x", code="bulletin.something.new")) == VI["bulletin"]
    assert vietnamese(UsageError("x", code="nothing.known")) == VI["usage"]
    assert vietnamese(LoaError("x")) == VI["error"]
    # a template whose field is missing falls back too, never to the English text
    assert vietnamese(BulletinError("English words", code="bulletin.field.too_long")) == VI["bulletin"]


@pytest.mark.parametrize(
    ("err", "says"),
    [
        (
            BulletinError("x", code="bulletin.field.bidi", field="title", char="U+202E", position=4),
            "Mục «Tiêu đề» có ký tự đảo chiều văn bản (U+202E) ở vị trí 4",
        ),
        (
            BulletinError(
                "x", code="bulletin.field.too_long", field="consultation.question[2].text", limit=500, length=501
            ),
            "Mục «Câu hỏi 2 (nội dung)» dài 501 ký tự, quá giới hạn 500 ký tự",
        ),
        (RecordingRefused("x", reason="language", language="hmn"), "Tiếng Mông: ngôn ngữ này"),
    ],
)
def test_vietnamese_names_the_field_and_language_in_vietnamese(err: LoaError, says: str) -> None:
    assert vietnamese(err).startswith(says)


@pytest.mark.parametrize(
    ("xml", "code", "field"),
    [
        ("this is not XML <alert", "cap.xml.invalid", None),
        ("CAP", "cap.element.missing", "alert/identifier"),
        ("SENT", "cap.element.time", "alert/sent"),
    ],
)
def test_cap_errors_carry_a_code_and_the_element(xml: str, code: str, field: str | None) -> None:
    from pipeline.broadcast.cap import parse_alert
    from tests.test_cap import cap, t

    text = {
        "CAP": cap().replace("<identifier>KTTV-2026-001</identifier>", ""),
        "SENT": cap().replace(f"<sent>{t(0)}</sent>", "<sent>hôm nay</sent>"),
    }.get(xml, xml)
    with pytest.raises(CapError) as exc:
        parse_alert(text.encode(), where="a.xml")
    assert exc.value.code == code and exc.value.fields.get("field") == field
    assert exc.value.code in VI and vietnamese(exc.value) == VI[code].format(**exc.value.fields)


def test_no_message_is_translated_from_its_english_text() -> None:
    """The web's Vietnamese comes from codes: no module reads English text back with regular expressions."""
    assert not (PIPELINE / "web" / "messages_vi.py").exists()
    source = (PIPELINE / "messages.py").read_text(encoding="utf-8")
    # the one pattern in the table reads a field's name (consultation.question[2].text), not a message
    assert source.count("re.compile(") == 1 and "_QUESTION_RE = re.compile(" in source
    for path in sorted((PIPELINE / "web").rglob("*.py")):
        text = path.read_text(encoding="utf-8")
        assert "delivery_error_vi(d.error" not in text and "missing_vi" not in text, path
