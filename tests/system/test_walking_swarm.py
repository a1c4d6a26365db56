"""System tests: real supervisor, zygote, gateway and agent processes on replay cassettes."""

from __future__ import annotations

import os
import signal

import psutil
import pytest

from tests.system.conftest import alive, base_config, cmd, commands_run, speak, wait_until

pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]

WAIT = {"responses": [cmd("do_nothing")], "repeat": True}


def chain_cassette(depth: int) -> dict:
    """manager starts a1, a1 starts a2, ... up to ``depth``; then everybody waits."""
    cas = {"manager": {"responses": [cmd("start_agent", name="a1", task="level 1", role="worker"),
                                     cmd("do_nothing")], "repeat": True}}
    for i in range(1, depth):
        cas[f"a{i}"] = {"responses": [cmd("start_agent", name=f"a{i + 1}", task=f"level {i + 1}",
                                          role="worker"), cmd("do_nothing")], "repeat": True}
    cas[f"a{depth}"] = WAIT
    return cas


def test_tree_of_depth_three(swarm):
    """A depth-3 tree has the right parents, depths and distinct live pids."""
    run = swarm(base_config(), chain_cassette(3))
    run.up()
    agents = run.wait_for(lambda a: a.get("a3", {}).get("status") in ("running", "waiting"),
                          what="a3 running")
    assert [(agents[i]["parent"], agents[i]["depth"]) for i in ("manager", "a1", "a2", "a3")] == [
        (None, 0), ("manager", 1), ("a1", 2), ("a2", 3)]
    pids = [agents[i]["pid"] for i in ("manager", "a1", "a2", "a3")]
    assert len(set(pids)) == 4 and all(alive(p) for p in pids)
    for p in pids:  # every agent leads its own process group
        assert os.getpgid(p) == p
    for key in ("id", "name", "role", "parent", "depth", "pid", "status", "steps", "tokens", "requests"):
        assert key in agents["a3"]


def test_max_depth_refusal_reaches_model_and_spawns_nothing(swarm):
    """With max_depth 1, a depth-1 agent's start_agent is refused, told to its model, nothing spawned."""
    cas = chain_cassette(2)
    run = swarm(base_config(limits={"max_depth": 1}), cas)
    run.up()
    run.wait_for(lambda a: a.get("a1", {}).get("steps", 0) >= 2, what="a1 past its start_agent step")

    def refused():
        return [e for e in run.log_events("a1")
                if e.get("event") == "command_done" and e.get("command") == "start_agent"]

    ev = wait_until(refused, what="a1's start_agent observation")[0]
    assert ev["ok"] is False and "max_depth 1" in ev["result"]
    assert set(run.agents()) == {"manager", "a1"}
    sup_log = run.log_events("supervisor")
    spawned = [e for e in sup_log if e.get("event") == "agent_spawned"]
    assert [e for e in sup_log if e.get("event") == "spawn_denied" and e.get("name") == "a2"]
    assert {e["agent"] for e in spawned} == {"manager", "a1"}


def test_message_agent_round_trip(swarm):
    """message_agent waits for the target's next step and returns its speak text to the caller."""
    cas = {
        "manager": [cmd("start_agent", name="w", task="answer questions", role="worker"),
                    cmd("message_agent", key="w", message="what is the answer?"),
                    cmd("task_complete", reason="asked")],
        "w": {"responses": [cmd("do_nothing"), speak("the answer is 42"), cmd("do_nothing")],
              "repeat": True},
    }
    run = swarm(base_config(), cas)
    run.up()
    run.wait_for(lambda a: a.get("manager", {}).get("status") == "done", what="manager done")
    msgs = [e for e in run.log_events("manager")
            if e.get("event") == "command_done" and e.get("command") == "message_agent"]
    assert msgs and msgs[0]["ok"] is True
    assert msgs[0]["result"] == "w replied: the answer is 42"


def test_finished_subagent_result_reaches_parent(swarm):
    """A sub-agent's task_complete reason arrives in its parent's inbox as a result."""
    cas = {
        "manager": [cmd("start_agent", name="w", task="produce", role="worker"), cmd("do_nothing"),
                    cmd("task_complete", reason="got it")],
        "w": [cmd("task_complete", reason="result-xyz-123")],
    }
    # the manager's wait ends when the result arrives; a long idle wait keeps a slow worker on a
    # loaded machine from turning the wait into a time-out (the wait is not a timer of the test)
    run = swarm(base_config(limits={**base_config()["limits"], "idle_wait_seconds": 150}), cas)
    run.up()
    agents = run.wait_for(lambda a: a.get("manager", {}).get("status") == "done", timeout=150,
                          what="manager done")
    assert agents["w"]["status"] == "done"
    inbox = [e for e in run.log_events("manager") if e.get("event") == "inbox_received"]
    assert any(e["kind"] == "result" and e["sender"] == "w" and "result-xyz-123" in e["text"]
               for e in inbox), inbox
    waited = [e for e in run.log_events("manager")
              if e.get("event") == "command_done" and e.get("command") == "do_nothing"]
    assert "New messages" in waited[0]["result"]


def test_kill_subtree_leaves_no_process(swarm):
    """swarm kill of a subtree stops it and every descendant; the rest keeps running."""
    run = swarm(base_config(), chain_cassette(3))
    run.up()
    agents = run.wait_for(lambda a: a.get("a3", {}).get("status") in ("running", "waiting"),
                          what="a3 running")
    sub = [agents[i]["pid"] for i in ("a1", "a2", "a3")]
    p = run.cli("kill", "a1")
    assert p.returncode == 0, p.stderr
    assert "stopped 3 agent(s)" in p.stdout
    assert not any(alive(pid) for pid in sub)
    after = run.agents()
    assert {after[i]["status"] for i in ("a1", "a2", "a3")} == {"killed"}
    assert after["manager"]["status"] in ("running", "waiting") and alive(after["manager"]["pid"])
    notices = wait_until(lambda: [e for e in run.log_events("manager")
                                  if e.get("event") == "inbox_received" and "a1 was stopped" in e["text"]],
                         what="manager told")
    assert notices


def test_kill_minus_nine_is_crashed(swarm):
    """An agent killed with SIGKILL from outside is reaped, marked crashed, and its parent told."""
    cas = {"manager": {"responses": [cmd("start_agent", name="w", task="wait", role="worker"),
                                     cmd("do_nothing")], "repeat": True}, "w": WAIT}
    run = swarm(base_config(), cas)
    run.up()
    agents = run.wait_for(lambda a: a.get("w", {}).get("status") in ("running", "waiting"), what="w up")
    os.kill(agents["w"]["pid"], signal.SIGKILL)
    agents = run.wait_for(lambda a: a["w"]["status"] == "crashed", what="w crashed")
    assert "SIGKILL" in agents["w"]["reason"]
    assert agents["manager"]["status"] in ("running", "waiting")
    wait_until(lambda: [e for e in run.log_events("manager")
                        if e.get("event") == "inbox_received" and "w crashed" in e["text"]],
               what="manager told of the crash")


def test_max_steps_stops_repeating_agent(swarm):
    """An agent that never finishes is stopped by the supervisor at max_steps, parent told."""
    cas = {"manager": {"responses": [cmd("start_agent", name="w", task="spin", role="worker"),
                                     cmd("do_nothing")], "repeat": True},
           "w": {"responses": [cmd("read_file", file="nothing.txt")], "repeat": True}}
    run = swarm(base_config(limits={"max_steps": 4, "loop_threshold": 100}), cas)
    run.up()
    agents = run.wait_for(lambda a: a.get("w", {}).get("status") == "killed", what="w stopped")
    assert agents["w"]["reason"] == "max_steps"
    assert agents["w"]["steps"] == 4  # the step count never exceeds max_steps
    wait_until(lambda: not alive(agents["w"]["pid"]), what="w's process gone")
    assert commands_run(run, "w", "read_file") == 4  # the 5th step's command never ran
    wait_until(lambda: [e for e in run.log_events("manager")
                        if e.get("event") == "inbox_received" and "max_steps" in e["text"]],
               what="manager told")


def test_down_leaves_no_process(swarm):
    """swarm down stops agents, services, zygote and supervisor: no process of the swarm remains."""
    run = swarm(base_config(), chain_cassette(2))
    run.up()
    run.wait_for(lambda a: a.get("a2", {}).get("status") in ("running", "waiting"), what="a2 up")
    sup = run.supervisor_pid()
    procs = [psutil.Process(sup)] + psutil.Process(sup).children(recursive=True)
    agent_pids = {a["pid"] for a in run.ps()}
    assert agent_pids <= {p.pid for p in procs}
    assert len(procs) >= 5  # supervisor, zygote, gateway, 3 agents
    p = run.cli("down")
    assert p.returncode == 0, p.stderr
    gone, still = psutil.wait_procs(procs, timeout=10)
    assert not [q for q in still if q.status() != psutil.STATUS_ZOMBIE]
    assert run.cli("ps", "--json").returncode == 0  # the registry outlives the run


def test_down_after_supervisor_crash_leaves_no_process(swarm):
    """With the supervisor killed -9, swarm down still ends its orphaned agents and services."""
    run = swarm(base_config(), chain_cassette(2))
    run.up()
    run.wait_for(lambda a: a.get("a2", {}).get("status") in ("running", "waiting"), what="a2 up")
    sup = run.supervisor_pid()
    procs = psutil.Process(sup).children(recursive=True)
    assert len(procs) >= 4  # zygote, gateway, 3 agents
    os.kill(sup, signal.SIGKILL)
    wait_until(lambda: not alive(sup), what="supervisor gone")
    p = run.cli("down")
    assert p.returncode == 0, p.stderr
    _, still = psutil.wait_procs(procs, timeout=10)
    assert not [q for q in still if q.status() != psutil.STATUS_ZOMBIE]


def test_usage_of_a_finished_agent_still_counts(swarm):
    """Tokens and requests of an agent that finished in one step are recorded (usage may arrive late)."""
    cas = {"manager": [cmd("start_agent", name="w", task="quick", role="worker"), cmd("do_nothing"),
                       cmd("task_complete", reason="ok")],
           "w": [cmd("task_complete", reason="one step")]}
    run = swarm(base_config(), cas)
    run.up()
    agents = run.wait_for(lambda a: a.get("w", {}).get("status") == "done" and a["w"]["tokens"] > 0
                          and a["w"]["requests"] == 1, what="w done with its usage")
    assert agents["w"]["steps"] == 1
