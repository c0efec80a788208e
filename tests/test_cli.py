"""The command line: help for every command, exit codes, JSON output."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import click
import pytest
import typer

from pipeline.cli import app, main
from tests.conftest import EXAMPLES, CliResult, Project


def all_commands() -> Iterator[tuple[str, ...]]:
    def walk(cmd: click.Command, path: tuple[str, ...]) -> Iterator[tuple[str, ...]]:
        yield path
        if isinstance(cmd, click.Group):
            for name, sub in cmd.commands.items():
                yield from walk(sub, (*path, name))

    yield from walk(typer.main.get_command(app), ())


COMMANDS = list(all_commands())


def test_the_design_command_tree_exists() -> None:
    names = {" ".join(c) for c in COMMANDS}
    for expected in [
        "bulletin add", "bulletin list", "bulletin show", "bulletin approve", "bulletin withdraw",
        "recording add", "text normalize", "script", "build", "push", "nightly", "dispatch",
        "status", "scheduler", "serve", "communes",
    ]:  # fmt: skip
        assert expected in names


@pytest.mark.parametrize("command", COMMANDS, ids=[" ".join(c) or "loa" for c in COMMANDS])
def test_every_command_has_help_with_an_example(command: tuple[str, ...], capsys: pytest.CaptureFixture[str]) -> None:
    assert main([*command, "--help"]) == 0
    out = capsys.readouterr().out
    assert "Usage: loa" in out
    assert "Example: loa" in out or not command or (len(command) == 1 and command[0] in _GROUPS)


_GROUPS = {c[0] for c in COMMANDS if len(c) == 2}


def test_communes_json(cli: Callable[..., CliResult]) -> None:
    result = cli("communes", "--json")
    assert result.code == 0
    data = result.json()
    assert isinstance(data, dict)
    assert data["timezone"] == "Asia/Ho_Chi_Minh"
    assert any(c["name"] == "Y Tý" for c in data["communes"])


def test_bulletin_lifecycle(cli: Callable[..., CliResult]) -> None:
    files = [str(p) for p in sorted(EXAMPLES.glob("*.md"))]
    added = cli("bulletin", "add", "--json", *files)
    assert added.code == 0
    assert [r["outcome"] for r in added.json()] == ["added"] * len(files)  # type: ignore[union-attr]
    assert [r["outcome"] for r in cli("bulletin", "add", "--json", *files).json()] == ["unchanged"] * len(files)  # type: ignore[union-attr]
    assert cli("bulletin", "approve", "1").code == 0
    listed = cli("bulletin", "list", "--json", "--status", "approved").json()
    assert [b["id"] for b in listed] == [1]  # type: ignore[union-attr]
    shown = cli("bulletin", "show", "1")
    assert shown.code == 0 and "đã duyệt" in shown.out and "MISSING" in shown.out
    assert cli("bulletin", "withdraw", "1").code == 0
    assert cli("bulletin", "show", "1", "--json").json()["status"] == "withdrawn"  # type: ignore[index]


def test_unknown_bulletin_is_bad_input(cli: Callable[..., CliResult]) -> None:
    result = cli("bulletin", "show", "99")
    assert result.code == 2
    assert result.err.strip() == "error: bulletin 99: no such bulletin; see `loa bulletin list`"


def test_bad_config_is_reported_with_exit_2(project: Project, cli: Callable[..., CliResult]) -> None:
    project.config.write_text(project.config.read_text() + "[audio]\nbitrate_kbps = 65\n", encoding="utf-8")
    result = cli("communes")
    assert result.code == 2
    assert result.err.startswith(f"error: {project.config}: audio.bitrate_kbps: ")


def test_usage_errors_exit_2(cli: Callable[..., CliResult]) -> None:
    assert cli("bulletin", "show", "not-a-number").code == 2
    assert cli("no-such-command").code == 2
