"""The import-linter contracts in pyproject.toml hold, and a door or adapter that breaks them fails `make lint`."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
LINT_IMPORTS = Path(sys.executable).parent / "lint-imports"

pytestmark = pytest.mark.skipif(not LINT_IMPORTS.is_file(), reason="import-linter is in the dev extra")


def lint_imports(root: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": f"{root}{os.pathsep}{root / 'device'}"}
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache"], cwd=root, env=env, capture_output=True, text=True, timeout=600
    )


@pytest.fixture(scope="module")
def copy_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The packages and pyproject.toml, copied: plant imports there, never in the repository."""
    root = tmp_path_factory.mktemp("layers")
    skip = shutil.ignore_patterns("__pycache__", "*.egg-info")
    shutil.copytree(REPO / "pipeline", root / "pipeline", ignore=skip)
    for package in ("loa_protocol", "loa_device"):
        shutil.copytree(REPO / "device" / package, root / "device" / package, ignore=skip)
    shutil.copy(REPO / "pyproject.toml", root / "pyproject.toml")
    return root


def test_the_contracts_hold_on_the_repository(copy_root: Path) -> None:
    result = lint_imports(copy_root)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


@pytest.mark.parametrize(
    ("planted", "source", "contract", "line"),
    [
        (
            "pipeline/web/routes_planted.py",
            "from pipeline.store import bulletins\n",
            "doors change bulletins only through pipeline.lifecycle",
            "pipeline.web.routes_planted -> pipeline.store.bulletins",
        ),
        (
            "pipeline/cli/planted_cmds.py",
            "from pipeline.store.recordings import save_recording\n",
            "doors change bulletins only through pipeline.lifecycle",
            "pipeline.cli.planted_cmds -> pipeline.store.recordings",
        ),
        (
            "pipeline/store/planted.py",
            "from pipeline import produce\n",
            "doors → domain → orchestrator → stages → adapters → models",
            "pipeline.store.planted -> pipeline.produce",
        ),
        (
            "device/loa_device/planted.py",
            "import pipeline.models\n",
            "the commune's player and the protocol never import the server",
            "loa_device.planted -> pipeline.models",
        ),
    ],
)
def test_a_forbidden_import_breaks_its_contract(
    copy_root: Path, planted: str, source: str, contract: str, line: str
) -> None:
    path = copy_root / planted
    path.write_text(source, encoding="utf-8")
    try:
        result = lint_imports(copy_root)
    finally:
        path.unlink()
    assert result.returncode == 1, result.stdout + result.stderr
    assert f"{contract} BROKEN" in result.stdout
    assert line in result.stdout
