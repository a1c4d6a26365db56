"""The ``swarm`` command group lists every command the contract names, ``memory`` included."""

from __future__ import annotations

from click.testing import CliRunner

from orchestrator.cli import cli


def test_swarm_help_lists_the_memory_group() -> None:
    """``swarm --help`` lists ``memory`` among the commands (it is imported, never skipped)."""
    res = CliRunner().invoke(cli, ["--help"])
    assert res.exit_code == 0, res.output
    commands = res.output.split("Commands:", 1)[1].split()
    assert "memory" in commands


def test_swarm_memory_help_lists_its_subcommands() -> None:
    """``swarm memory --help`` works and lists add, search and stats."""
    res = CliRunner().invoke(cli, ["memory", "--help"])
    assert res.exit_code == 0, res.output
    commands = res.output.split("Commands:", 1)[1].split()
    assert {"add", "search", "stats"} <= set(commands)
