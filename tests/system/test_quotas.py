"""Gateway quotas and freeze seen from the swarm: throttled and frozen agents in ps, budgets stop agents."""

from __future__ import annotations

import pytest

from tests.system.conftest import base_config, cmd, wait_until

pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]


def steps_of(name: str, n: int) -> list[dict]:
    return [cmd("write_to_file", file=f"{name}-{i}.txt", text=f"step {i}") for i in range(n)] + [
        cmd("task_complete", reason=f"{name} done")]


def test_rate_quota_third_call_waits_throttled(swarm):
    """An agent allowed 2 requests per minute has its third call held and shows throttled in ps."""
    cas = {"manager": {"responses": [cmd("start_agent", name="w", task="write", role="worker"),
                                     cmd("do_nothing")], "repeat": True},
           "w": steps_of("w", 5)}
    run = swarm(base_config(quotas={"agent": {"requests_per_minute": 2}, "pause_seconds": 60}), cas)
    run.up()
    agents = run.wait_for(lambda a: a.get("w", {}).get("status") == "throttled", what="w throttled")
    assert agents["w"]["requests"] == 2
    assert agents["manager"]["status"] in ("running", "waiting")  # others are not held
    events = run.cli("inspect", "w", "--json", check=True).stdout
    assert "throttled" in events
    assert run.agents()["w"]["requests"] == 2  # still held: the third call has not gone through


def test_token_budget_stops_agent(swarm):
    """on_exhausted kill: an agent whose max_tokens cannot cover its next call is stopped with reason
    budget_exhausted (its spend within the budget) and its parent told."""
    cas = {"manager": {"responses": [cmd("start_agent", name="w", task="write", role="worker"),
                                     cmd("do_nothing")], "repeat": True},
           "w": steps_of("w", 50)}
    run = swarm(base_config(quotas={"agent": {"max_tokens": 3000}, "on_exhausted": "kill"}), cas)
    run.up()
    agents = run.wait_for(lambda a: a.get("w", {}).get("status") == "killed", what="w stopped")
    assert agents["w"]["reason"] == "budget_exhausted"
    assert 0 < agents["w"]["tokens"] <= 3000 and agents["w"]["steps"] < 50
    wait_until(lambda: [e for e in run.log_events("manager") if e.get("event") == "inbox_received"
                        and "budget_exhausted" in e.get("text", "")], what="manager told")


def test_freeze_holds_calls_and_thaw_releases(swarm):
    """swarm freeze holds an agent's model calls (ps: frozen); swarm thaw lets it finish."""
    cas = {"manager": {"responses": [cmd("start_agent", name="w", task="write", role="worker"),
                                     cmd("do_nothing")], "repeat": True},
           "w": [cmd("do_nothing")] + steps_of("w", 2)}
    run = swarm(base_config(), cas)
    run.up()
    run.wait_for(lambda a: a.get("w", {}).get("status") == "waiting", what="w waiting in do_nothing")
    run.cli("freeze", "w", check=True)
    assert run.agents()["w"]["status"] == "frozen"
    run.cli("send", "w", "wake up", check=True)  # wakes do_nothing: its next model call is held
    wait_until(lambda: [e for e in run.log_events("gateway")
                        if e.get("event") == "call_frozen" and e.get("agent") == "w"],
               what="the gateway holding w's next call")
    agents = run.agents()
    assert agents["w"]["status"] == "frozen" and agents["w"]["requests"] == 1
    assert [e["command"] for e in run.log_events("w") if e.get("event") == "command_done"] == ["do_nothing"]
    run.cli("thaw", "w", check=True)
    agents = run.wait_for(lambda a: a["w"]["status"] == "done", what="w done after thaw")
    assert agents["w"]["steps"] == 4


def test_cost_budget_stops_agent_and_inspect_shows_cost(swarm):
    """With a price table, cost is counted per agent (inspect) and a dollar budget stops the agent."""
    cas = {"manager": {"responses": [cmd("start_agent", name="w", task="write", role="worker"),
                                     cmd("do_nothing")], "repeat": True},
           "w": steps_of("w", 50)}
    run = swarm(base_config(llm={"prices": {"replay": {"prompt": 0.01, "completion": 0.02}}},
                            quotas={"agent": {"max_cost_usd": 0.05}, "on_exhausted": "kill"}), cas)
    run.up()
    agents = run.wait_for(lambda a: a.get("w", {}).get("status") == "killed", what="w stopped")
    assert agents["w"]["reason"] == "budget_exhausted"
    import json

    info = json.loads(run.cli("inspect", "w", "--json", check=True).stdout)
    assert 0.03 <= info["cost_usd"] <= 0.05 and info["steps"] < 50
    manager = json.loads(run.cli("inspect", "manager", "--json", check=True).stdout)
    assert 0 < manager["cost_usd"] < 0.05


def test_max_wall_seconds_stops_agent(swarm):
    """An agent alive longer than max_wall_seconds is stopped with that reason."""
    cas = {"manager": {"responses": [cmd("start_agent", name="w", task="wait", role="worker"),
                                     cmd("do_nothing")], "repeat": True},
           "w": {"responses": [cmd("do_nothing")], "repeat": True}}
    cfg = base_config(limits={"max_wall_seconds": 2})
    run = swarm(cfg, cas)
    run.up()
    agents = run.wait_for(lambda a: a.get("w", {}).get("status") == "killed", what="w stopped")
    assert agents["w"]["reason"] == "max_wall_seconds"
