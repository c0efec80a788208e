"""One table of state labels (pipeline/labels.py): no module keeps its own copy, and every door reads it."""

from __future__ import annotations

import ast
from pathlib import Path

from pipeline import labels
from pipeline.lifecycle.table import STATE_VI, STATES
from pipeline.web.pages import make_environment

PIPELINE = Path(__file__).resolve().parents[1] / "pipeline"
TABLES = {
    "BULLETIN": labels.BULLETIN,
    "AGENCY_VIEW": labels.AGENCY_VIEW,
    "DELIVERY": labels.DELIVERY,
    "WEBHOOK": labels.WEBHOOK,
    "DECISION": labels.DECISION,
    "CATEGORY": labels.CATEGORY,
    "TIER": labels.TIER,
}


def _copies(path: Path, root: Path = PIPELINE.parent) -> list[str]:
    """Dict literals in ``path`` that repeat two or more labels of one table (same keys, same words).

    One entry alone may be a coincidence (the field "policy" and the category "policy" are both
    "Chính sách"); two are a copy of the table.
    """
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if not isinstance(node, ast.Dict):
            continue
        pairs = [
            (k.value, v.value, k.lineno)
            for k, v in zip(node.keys, node.values, strict=True)
            if isinstance(k, ast.Constant) and isinstance(v, ast.Constant)
            if isinstance(k.value, str) and isinstance(v.value, str)
        ]
        for name, table in TABLES.items():
            same = [line for key, value, line in pairs if key in table and table[key].casefold() == value.casefold()]
            if len(same) >= 2:
                found.append(f"{path.relative_to(root)}:{same[0]}: labels.{name}")
    return found


def test_no_module_keeps_its_own_copy_of_a_state_label() -> None:
    copies = [c for p in sorted(PIPELINE.rglob("*.py")) if p.name != "labels.py" for c in _copies(p)]
    assert copies == []


def test_the_scan_finds_a_copy(tmp_path: Path) -> None:
    planted = tmp_path / "copy.py"
    planted.write_text('STATUS = {"approved": "đã duyệt", "x": "y", "withdrawn": "Đã thu hồi"}\n', encoding="utf-8")
    assert _copies(planted, tmp_path) == ["copy.py:1: labels.BULLETIN"]
    (tmp_path / "one.py").write_text('FIELD = {"policy": "Chính sách", "stage": "Giai đoạn"}\n', encoding="utf-8")
    assert _copies(tmp_path / "one.py", tmp_path) == []


def test_pages_the_cli_and_the_domain_read_the_one_table() -> None:
    env = make_environment()
    assert env.globals["STATUS_VI"] is labels.BULLETIN
    assert env.globals["DELIVERY_VI"] is labels.DELIVERY
    assert env.globals["DECISION_VI"] is labels.DECISION
    assert env.globals["PRIORITY_VI"] is labels.TIER
    assert {s: STATE_VI[s] for s in STATES} == {s: labels.lower(labels.BULLETIN, s) for s in STATES}
    assert set(labels.BULLETIN) == set(STATES)
