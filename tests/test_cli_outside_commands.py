"""`simguard simulate`, `soak` and `bench` live outside the service (tooling/,
bench/): the CLI offers each one its package is installed for, and imports it
only then."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from simguard import cli


def test_help_lists_simulate_soak_and_bench() -> None:
    result = CliRunner().invoke(cli.main, ["--help"])

    assert result.exit_code == 0
    listed = {line.split()[0] for line in result.output.splitlines() if line.startswith("  ")}
    assert {"simulate", "soak", "bench"} <= listed


@pytest.mark.parametrize("name", sorted(cli.OUTSIDE_COMMANDS))
def test_an_outside_command_loads_when_named(name: str) -> None:
    result = CliRunner().invoke(cli.main, [name, "--help"])

    assert result.exit_code == 0, result.output
    assert f"Usage: main {name}" in result.output


def test_a_command_whose_package_is_not_installed_is_not_listed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(cli.OUTSIDE_COMMANDS, "absent", "package_not_installed.command:absent")

    result = CliRunner().invoke(cli.main, ["--help"])

    assert result.exit_code == 0
    assert "absent" not in result.output


def test_running_a_command_whose_package_is_not_installed_is_a_usage_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(cli.OUTSIDE_COMMANDS, "absent", "package_not_installed.command:absent")

    result = CliRunner().invoke(cli.main, ["absent"])

    assert result.exit_code == 2
    assert "No such command 'absent'" in result.output


def test_a_missing_module_inside_an_installed_package_is_not_hidden(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(cli.OUTSIDE_COMMANDS, "broken", "tooling.no_such_module:broken")

    result = CliRunner().invoke(cli.main, ["broken"])

    assert isinstance(result.exception, ModuleNotFoundError)
    assert result.exception.name == "tooling.no_such_module"
