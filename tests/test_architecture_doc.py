"""docs/architecture.md names every module of the repository and points at nothing outside it."""

from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DOC = REPO / "docs" / "architecture.md"
PACKAGES = ("pipeline", "device/loa_protocol", "device/loa_device")


def modules() -> list[str]:
    """Every module file, repository-relative; a package's ``__init__.py`` without a docstring is no module."""
    out = []
    for base in PACKAGES:
        for path in sorted((REPO / base).rglob("*.py")):
            if "__pycache__" in path.parts:
                continue
            if path.name == "__init__.py" and not path.read_text(encoding="utf-8").lstrip().startswith('"""'):
                continue
            out.append(path.relative_to(REPO).as_posix())
    return out


def test_every_module_is_in_the_architecture() -> None:
    text = DOC.read_text(encoding="utf-8")
    missing = [m for m in modules() if f"| `{m}` |" not in text]  # a row of its layer's table
    assert missing == [], "add these to docs/architecture.md, in their layer: " + ", ".join(missing)


def test_the_architecture_names_no_module_that_is_gone() -> None:
    text = DOC.read_text(encoding="utf-8")
    named = set(re.findall(r"`((?:pipeline|device)/[\w/]+\.py)`", text))
    assert sorted(n for n in named if not (REPO / n).is_file()) == []


def test_the_architecture_points_at_nothing_outside_the_repository() -> None:
    text = DOC.read_text(encoding="utf-8")
    assert "DESIGN.md" not in text and "/work/" not in text
    assert re.findall(r"https?://", text) == []
    for link in re.findall(r"\]\(([^)#]+)", text):
        assert (DOC.parent / link).resolve().is_relative_to(REPO), link
        assert (DOC.parent / link).exists(), link
