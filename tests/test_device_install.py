"""The agent installs alone: a fresh virtualenv, ``pip install device/``, nothing compiled but
cryptography's wheel (and cffi, which that wheel needs), and it runs without the server."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.device_support import DEVICE_SRC

pytestmark = pytest.mark.slow
#: what ``pip install loa-device`` may bring: the agent, httpx and its pure-Python parts, cryptography and cffi
ALLOWED = {
    "loa-device", "httpx", "httpcore", "h11", "anyio", "sniffio", "idna", "certifi", "typing-extensions",
    "exceptiongroup", "cryptography", "cffi", "pycparser", "pip", "setuptools",
}  # fmt: skip


def test_a_fresh_virtualenv_installs_the_agent_alone_and_it_runs_without_the_server(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}  # the venv alone, not this checkout
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
    py = venv / "bin" / "python"
    done = subprocess.run(
        [str(py), "-m", "pip", "install", "-q", str(DEVICE_SRC)], capture_output=True, text=True, timeout=900,
        cwd=tmp_path, check=False, env=env,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    listed = subprocess.run([str(py), "-m", "pip", "list", "--format=json"], capture_output=True, text=True,
                            check=True, timeout=300)  # fmt: skip
    names = {d["name"].lower().replace("_", "-") for d in json.loads(listed.stdout)}
    assert "loa-device" in names
    assert names <= ALLOWED, f"unexpected dependencies: {sorted(names - ALLOWED)}"
    [site] = list((venv / "lib").glob("python3.*/site-packages"))
    compiled = {p.relative_to(site).parts[0].split(".")[0] for p in site.rglob("*.so")}
    assert compiled <= {"cryptography", "_cffi_backend"}, compiled
    version = subprocess.run([str(venv / "bin" / "loa-device"), "--version"], capture_output=True, text=True,
                             timeout=120, cwd=tmp_path, check=False, env=env)  # fmt: skip
    assert version.returncode == 0 and "loa-device 0.1.0" in version.stdout
    alone = subprocess.run(
        [str(py), "-c", "import loa_device.cli, loa_device.sync, loa_protocol.client\n"
         "try:\n import pipeline\nexcept ModuleNotFoundError:\n print('no server')"],
        capture_output=True, text=True, timeout=120, cwd=tmp_path, check=False, env=env,
    )  # fmt: skip
    assert alone.returncode == 0 and alone.stdout.strip() == "no server", alone.stderr
