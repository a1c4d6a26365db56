"""The memory service inside a running swarm: agents' memory commands, prompts and the CLI."""

from __future__ import annotations

import json

import pytest

from tests.system.conftest import base_config, cmd

pytestmark = [pytest.mark.slow, pytest.mark.timeout(240)]


def test_agents_remember_and_the_cli_finds_it(swarm):
    """memory_add then memory_search through the service; the next prompt carries the memory; CLI search finds it."""
    cfg = base_config(memory=True)
    cfg["agents"]["worker"]["commands"] += ["memory_add", "memory_search"]
    cas = {"manager": {"responses": [cmd("start_agent", name="w", task="remember the launch code",
                                         role="worker"), cmd("do_nothing")], "repeat": True},
           "w": [cmd("memory_add", text="The launch code for the rocket is 7-4-1."),
                 cmd("memory_search", query="what is the rocket launch code?", k=2),
                 cmd("task_complete", reason="remembered")]}
    run = swarm(cfg, cas)
    run.up()
    run.wait_for(lambda a: a.get("w", {}).get("status") == "done", timeout=180, what="w done")
    done = [e for e in run.log_events("w") if e.get("event") == "command_done"]
    assert done[0]["command"] == "memory_add" and done[0]["ok"], done[0]
    assert done[1]["command"] == "memory_search" and "7-4-1" in done[1]["result"], done[1]
    steps = [e for e in run.log_events("w") if e.get("event") == "step_started"]
    assert steps[-1]["memories"] >= 1  # relevant memories are part of the later prompts
    p = run.cli("memory", "search", "rocket launch code", "-k", "3", "--json", check=True)
    hits = json.loads(p.stdout)
    assert hits and "7-4-1" in hits[0]["text"] and {"id", "score", "text"} <= set(hits[0])
    stats = run.cli("memory", "stats", check=True).stdout
    assert "shared" in stats
