"""Subtree budgets seen from the swarm: a tree stops at its manager's budget, pauses, resumes, survives crashes."""

from __future__ import annotations

import json
import os
import signal
import sqlite3

import pytest

from orchestrator.supervisor.registry import Registry
from tests.system.conftest import alive, base_config, cmd, wait_until

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]

BUDGET = 9000


def _tree_config(budget: int = BUDGET, **over):
    """manager (with a subtree budget) → lead → two leaves; loops are allowed (the leaves repeat)."""
    cfg = base_config(limits={"loop_threshold": 1000, "max_steps": 1000, "idle_wait_seconds": 2}, **over)
    cfg["agents"]["manager"]["budget"] = {"max_tokens": budget}
    return cfg


def _burn(name: str, delay: float = 0.0) -> dict:
    """A leaf that writes for ever; each answer takes ``delay`` seconds of (simulated) model time."""
    return {"responses": [{**cmd("write_to_file", file=f"{name}.txt", text="x" * 40), "delay_s": delay}],
            "repeat": True}


def _tree(delay: float = 0.0) -> dict:
    return {
        "manager": {"responses": [cmd("start_agent", name="lead", task="lead", role="worker"),
                                  cmd("do_nothing")], "repeat": True},
        "lead": {"responses": [cmd("start_agent", name="leaf-1", task="burn", role="worker"),
                               cmd("start_agent", name="leaf-2", task="burn", role="worker"), cmd("do_nothing")],
                 "repeat": True},
        "leaf-1": _burn("leaf-1", delay),
        "leaf-2": _burn("leaf-2", delay),
    }


TREE = _tree()
SLOW_TREE = _tree(0.5)  # slow enough that a crash lands halfway, with calls in flight
LEAVES = ("leaf-1", "leaf-2")


def _paused(agents, names=LEAVES) -> bool:
    return all(agents.get(n, {}).get("status") == "frozen" and agents[n]["reason"] == "budget_exhausted"
               for n in names)


def _ledger_total(run) -> int:
    """Every agent's spend in the gateway's ledger (the truth the budget is checked against)."""
    try:
        with sqlite3.connect(f"file:{run.run_dir / 'ledger.db'}?mode=ro", uri=True) as conn:
            return int(conn.execute("SELECT COALESCE(SUM(tokens), 0) FROM spend").fetchone()[0])
    except sqlite3.OperationalError:  # not created yet
        return 0


def _halfway(run) -> int:
    """Wait (polling the ledger) until half the budget is spent; the spend then, well short of the budget."""
    spent = wait_until(lambda: (t := _ledger_total(run)) >= BUDGET // 2 and t, 120, "half the budget spent",
                       step=0.02)
    assert spent < BUDGET - 2000, f"the budget was nearly spent before the crash ({spent})"
    return spent


def _requests(run):
    return json.loads(run.cli("approvals", "--json", check=True).stdout)


def _service_pid(run, name: str) -> int:
    reg = Registry(run.run_dir / "registry.db", readonly=True)
    try:
        return int(reg.meta("service_pids")[name][0])
    finally:
        reg.close()


def _stops_at_the_budget(run) -> None:
    """The leaves end up paused for the manager's budget; spend never passed it."""
    agents = run.wait_for(_paused, timeout=180, what="both leaves paused at the budget")
    assert agents["manager"]["subtree_tokens"] <= BUDGET
    assert _ledger_total(run) <= BUDGET
    waiting = {r["agent"]: r for r in wait_until(lambda: [r for r in _requests(run) if r["kind"] == "budget"]
                                                 and _requests(run), 30, "budget requests")}
    assert {waiting[n]["budget_of"] for n in LEAVES if n in waiting} == {"manager"}


def test_a_three_level_tree_stops_at_the_managers_budget(swarm):
    """Leaves two levels down burn tokens until the manager's subtree budget cannot cover a call: they
    pause (budget_exhausted) and the subtree's total spend is within the budget."""
    run = swarm(_tree_config(), TREE)
    run.up()
    _stops_at_the_budget(run)
    agents = run.agents()
    assert agents["lead"]["subtree_tokens"] == sum(agents[n]["tokens"] for n in ("lead", *LEAVES))
    assert agents["manager"]["subtree_tokens"] == sum(a["tokens"] for a in agents.values())


def test_a_start_agent_budget_larger_than_what_is_left_is_refused(swarm):
    """start_agent with a budget above the caller's remaining one: the model is told, nothing starts; a
    smaller slice starts the agent with that budget (inspect shows it)."""
    cas = {"manager": {"responses": [cmd("start_agent", name="big", task="t", role="worker", budget="50000"),
                                     cmd("start_agent", name="small", task="t", role="worker", budget="2000"),
                                     cmd("do_nothing")], "repeat": True},
           "small": {"responses": [cmd("do_nothing")], "repeat": True}}
    run = swarm(_tree_config(), cas)
    run.up()
    agents = run.wait_for(lambda a: "small" in a, what="small started")
    assert "big" not in agents
    refused = wait_until(lambda: [e for e in run.log_events("manager") if e.get("event") == "command_done"
                                  and e.get("command") == "start_agent" and not e.get("ok")], 30, "the refusal")
    assert "more than what is left of your budget" in refused[0]["result"]
    info = json.loads(run.cli("inspect", "small", "--json", check=True).stdout)
    assert info["budget_tokens"] == 2000 and "subtree_tokens" in info


def test_pause_then_swarm_budget_lets_the_agent_finish(swarm):
    """An agent paused by its own budget is released by swarm budget and finishes its work."""
    cfg = base_config()
    cfg["agents"]["worker"]["budget"] = {"max_tokens": 2500}
    steps = [cmd("write_to_file", file=f"f{i}.txt", text=f"file {i}") for i in range(6)]
    cas = {"manager": {"responses": [cmd("start_agent", name="w", task="write", role="worker"),
                                     cmd("do_nothing")], "repeat": True},
           "w": steps + [cmd("task_complete", reason="all written")]}
    run = swarm(cfg, cas)
    run.up()
    run.wait_for(lambda a: _paused(a, ("w",)), what="w paused")
    (req,) = wait_until(lambda: _requests(run), 30, "the budget request")
    assert (req["kind"], req["agent"], req["budget_of"]) == ("budget", "w", "w")
    assert run.agents()["w"]["tokens"] <= 2500
    bad = run.cli("budget", "w", "--tokens", "-5")
    assert bad.returncode == 2 and len(bad.stderr.strip().splitlines()) == 1 and "--tokens" in bad.stderr
    assert run.cli("budget", "w", "--usd", "lots").returncode == 2
    assert run.agents()["w"]["status"] == "frozen"  # the bad input changed nothing
    p = run.cli("budget", "w", "--tokens", "100000")
    assert p.returncode == 0 and "released: w" in p.stdout, p.stderr
    run.wait_for(lambda a: a["w"]["status"] == "done", what="w done after the raise")
    assert all((run.workspace / f"f{i}.txt").exists() for i in range(6))
    assert _requests(run) == []


def test_deny_of_a_budget_request_stops_the_agent(swarm):
    """swarm deny of a budget request: the waiting agent is killed with reason budget_exhausted."""
    cfg = base_config()
    cfg["agents"]["worker"]["budget"] = {"max_tokens": 1500}
    cas = {"manager": {"responses": [cmd("start_agent", name="w", task="write", role="worker"),
                                     cmd("do_nothing")], "repeat": True},
           "w": _burn("w")}
    run = swarm(cfg, cas)
    run.up()
    run.wait_for(lambda a: _paused(a, ("w",)), what="w paused")
    (req,) = wait_until(lambda: _requests(run), 30, "the budget request")
    p = run.cli("approve", req["id"])
    assert p.returncode == 1 and "swarm budget w" in p.stderr
    run.cli("deny", req["id"], check=True)
    agents = run.wait_for(lambda a: a["w"]["status"] == "killed", what="w killed")
    assert agents["w"]["reason"] == "budget_exhausted"


def test_kill_9_of_the_gateway_halfway_keeps_the_spend(swarm):
    """The gateway killed with SIGKILL halfway through the budget is restarted; spend is not reset, so
    the tree still stops within the budget."""
    run = swarm(_tree_config(), SLOW_TREE)
    run.up()
    gateway = _service_pid(run, "gateway")
    spent = _halfway(run)
    os.kill(gateway, signal.SIGKILL)
    wait_until(lambda: not alive(gateway), 10, "the gateway gone")
    wait_until(lambda: _service_pid(run, "gateway") != gateway, 60, "a new gateway", step=0.1)
    _stops_at_the_budget(run)
    assert _ledger_total(run) > spent  # the run went on after the crash


@pytest.mark.parametrize("heartbeat", ["0.5", "3"])
def test_kill_9_of_the_supervisor_and_resume_keep_the_spend(swarm, heartbeat):
    """The supervisor killed with SIGKILL halfway, then up --resume: the new gateway starts from the
    ledger, the adopted agents go on, and the tree still stops within the budget. With a slow
    heartbeat the resume comes before the agents notice the broker was gone: their lost calls are
    asked again because the new supervisor tells them the gateway is new."""
    run = swarm(_tree_config(), SLOW_TREE)
    run.up("--heartbeat", heartbeat)
    sup = run.supervisor_pid()
    spent = _halfway(run)
    os.kill(sup, signal.SIGKILL)
    wait_until(lambda: not alive(sup), 10, "the supervisor gone")
    p = run.cli("up", str(run.config_path), "--detach", "--resume", "--heartbeat", heartbeat)
    assert p.returncode == 0, p.stderr
    _stops_at_the_budget(run)
    assert _ledger_total(run) > spent  # the run went on after the resume
