"""Runaway agents are contained from the outside: system tests with real processes and cassettes.

After each scenario the test checks that ``swarm ps`` tells the truth, that the
rest of the swarm still works, and that no process of the runaway is left.
"""

from __future__ import annotations

import json
import os
import signal

import psutil
import pytest

from tests.system.conftest import alive, base_config, cmd, commands_run, speak, wait_until

pytestmark = [pytest.mark.slow, pytest.mark.timeout(240)]

WAIT = {"responses": [cmd("do_nothing")], "repeat": True}


def manager_starts(*children: tuple[str, str]) -> dict:
    """A manager that starts the given (name, role) children and then waits for ever."""
    return {"responses": [cmd("start_agent", name=n, task=f"task of {n}", role=r) for n, r in children]
            + [cmd("do_nothing")], "repeat": True}


def max_live_at_once(run, parent: str | None = None) -> int:
    """The most agents (children of ``parent`` if given) alive at one moment, from the registry."""
    from orchestrator.supervisor.registry import Registry

    reg = Registry(run.run_dir / "registry.db", readonly=True)
    try:
        recs = [r for r in reg.all() if parent is None or r.parent == parent]
    finally:
        reg.close()
    edges = sorted([(r.created_at, 1) for r in recs] + [(r.ended_at, -1) for r in recs if r.ended_at])
    live = peak = 0
    for _, step in edges:
        live += step
        peak = max(peak, live)
    return peak


def assert_manager_still_works(run) -> None:
    """The rest of the swarm works: the manager is live and hears an operator message."""
    agents = run.agents()
    assert agents["manager"]["status"] in ("running", "waiting"), agents["manager"]
    assert alive(agents["manager"]["pid"])
    run.cli("send", "manager", "still there?", check=True)
    wait_until(lambda: [e for e in run.log_events("manager") if e.get("event") == "inbox_received"
                        and e.get("text") == "still there?"], what="manager hears the operator")


def test_loop_is_told_then_stopped(swarm):
    """The same command with the same args 3 times: the model is told once, then the agent is stopped."""
    cas = {"manager": manager_starts(("w", "worker")),
           "w": {"responses": [cmd("read_file", file="same.txt")], "repeat": True}}
    run = swarm(base_config(limits={"loop_threshold": 3, "loop_window": 3}), cas)
    run.up()
    agents = run.wait_for(lambda a: a.get("w", {}).get("status") == "killed", what="w stopped")
    assert agents["w"]["reason"] == "loop"
    assert agents["w"]["steps"] == 3  # warned at the 3rd repeat, stopped at the report of the 4th
    warned = [e for e in run.log_events("w") if e.get("event") == "inbox_received"
              and "same arguments" in e.get("text", "")]
    assert len(warned) == 1
    wait_until(lambda: not alive(agents["w"]["pid"]), what="w's process gone")
    # a hard stop: the 4th identical command never ran
    assert commands_run(run, "w", "read_file") == 3
    assert [e["step"] for e in run.log_events("w") if e.get("event") == "step_stopped"] == [4]
    assert_manager_still_works(run)


def test_spawning_as_fast_as_it_can_holds_limits(swarm):
    """A fork-bomb cassette never gets past max_depth or max_agents; refusals reach the models."""
    bomb = {"responses": [cmd("start_agent", name="w", task="multiply", role="worker")], "repeat": True}
    cas = {"manager": bomb, "w": bomb}  # every copy is named w (ids w, w-2, ...) and replays the same
    run = swarm(base_config(limits={"max_depth": 3, "max_agents": 10, "max_children": 3, "max_steps": 15,
                                    "loop_threshold": 1000}), cas)
    run.up()
    agents = run.wait_for(lambda a: a.get("manager", {}).get("status") == "killed", timeout=120,
                          what="the manager stopped at max_steps")
    assert max_live_at_once(run) <= 10  # agents come and go; never more than max_agents at once
    assert max(a["depth"] for a in agents.values()) <= 3
    assert all(max_live_at_once(run, parent=p) <= 3 for p in agents)
    denied = [e for e in run.log_events("supervisor") if e.get("event") == "spawn_denied"]
    assert denied and any("max_" in e["reason"] for e in denied)
    final = run.wait_for(lambda a: all(x["status"] in ("done", "failed", "killed", "crashed")
                                       for x in a.values()), timeout=90, what="every agent stopped")
    wait_until(lambda: not any(alive(a["pid"]) for a in final.values()), what="no process left")


def test_cpu_spinner_and_memory_hog_in_execute_python_file(swarm):
    """A spinning and a memory-hungry script are killed at their limits; the agent goes on and completes."""
    cas = {"manager": manager_starts(("w", "coder")),
           "w": [cmd("write_to_file", file="spin.py", text="while True:\n    pass\n"),
                 cmd("execute_python_file", file="spin.py"),
                 cmd("write_to_file", file="hog.py", text="x = bytearray(2 * 1024 ** 3)\nprint(len(x))\n"),
                 cmd("execute_python_file", file="hog.py"),
                 cmd("task_complete", reason="survived")]}
    cfg = base_config(tools={"exec_cpu_seconds": 1, "exec_memory_mb": 256, "exec_wall_seconds": 30})
    cfg["agents"]["coder"] = {"role": "a coder", "commands": ["write_to_file", "execute_python_file",
                                                             "task_complete"]}
    cfg["agents"]["manager"]["can_start"] = ["coder"]
    run = swarm(cfg, cas)
    run.up()
    run.wait_for(lambda a: a.get("w", {}).get("status") == "done", timeout=90, what="w done")
    runs = [e for e in run.log_events("w") if e.get("event") == "command_done"
            and e.get("command") == "execute_python_file"]
    assert len(runs) == 2
    assert "cpu" in runs[0]["result"].lower()
    assert "memory" in runs[1]["result"].lower()
    assert_manager_still_works(run)


def test_agent_over_its_cpu_rlimit_is_stopped_by_the_kernel(swarm):
    """An agent process over its RLIMIT_CPU is stopped by the kernel and recorded with the reason."""
    cas = {"manager": manager_starts(("w", "worker")),
           "w": {"responses": [cmd("read_file", file="x.txt")], "repeat": True}}
    run = swarm(base_config(limits={"cpu_seconds": 1, "loop_threshold": 100000, "max_steps": 1000000,
                                    "bus_messages_per_second": 100000}), cas)
    run.up()
    agents = run.wait_for(lambda a: a.get("w", {}).get("status") == "crashed", timeout=120,
                          what="w stopped by its CPU rlimit")
    assert "SIGXCPU" in agents["w"]["reason"] or "SIGKILL" in agents["w"]["reason"]
    assert_manager_still_works(run)


def test_hung_agent_is_detected_and_killed(swarm):
    """An agent that is alive but silent (SIGSTOP) is declared dead in the liveness window and killed."""
    cas = {"manager": manager_starts(("w", "worker")), "w": WAIT}
    run = swarm(base_config(), cas)
    run.up("--heartbeat", "0.5", "--liveness", "4")  # a 2 s window: margin for a loaded machine
    agents = run.wait_for(lambda a: a.get("w", {}).get("status") in ("running", "waiting"), what="w up")
    pid = agents["w"]["pid"]
    os.kill(pid, signal.SIGSTOP)
    agents = run.wait_for(lambda a: a["w"]["status"] == "crashed", timeout=20, what="w declared hung")
    assert agents["w"]["reason"] == "hung"
    wait_until(lambda: not alive(pid), what="the hung process killed")
    assert_manager_still_works(run)


def test_hung_agent_honours_its_restart_policy(swarm):
    """A SIGSTOPped agent of an on-crash role is killed as hung, then restarted under its id."""
    cfg = base_config()
    cfg["agents"]["worker"]["restart"] = {"policy": "on-crash", "max_restarts": 2, "period_seconds": 600}
    run = swarm(cfg, {"manager": manager_starts(("w", "worker")), "w": WAIT})
    run.up("--heartbeat", "0.5", "--liveness", "4")
    agents = run.wait_for(lambda a: a.get("w", {}).get("status") in ("running", "waiting"), what="w up")
    pid = agents["w"]["pid"]
    os.kill(pid, signal.SIGSTOP)
    wait_until(lambda: not alive(pid), timeout=30, what="the hung process killed")
    agents = run.wait_for(lambda a: a["w"]["status"] in ("running", "waiting") and a["w"]["pid"] != pid,
                          timeout=60, what="w restarted with a new pid")
    info = json.loads(run.cli("inspect", "w", "--json", check=True).stdout)
    assert info["restarts"] == 1
    assert [e for e in run.log_events("supervisor")
            if e.get("event") == "agent_hung" and e.get("agent") == "w"]
    assert_manager_still_works(run)


def test_risky_words_freeze_then_thaw(swarm):
    """A risky word in 3 consecutive outputs freezes the agent before the 3rd answer is delivered: the
    file that answer writes appears only after the thaw, and the agent then finishes."""
    cas = {"manager": manager_starts(("w", "worker")),
           "w": [speak("contact the FBI", "write_to_file", file="a.txt", text="1"),
                 # sent verbatim: the word as a JSON escape
                 json.dumps(speak("the FBI again", "write_to_file", file="b.txt", text="2")).replace(
                     "FBI", "\\u0046BI"),
                 speak("ＦＢＩ", "write_to_file", file="c.txt", text="3"),
                 cmd("task_complete", reason="thawed and done")]}
    run = swarm(base_config(safety={"breaker_words": ["FBI", "白宫"], "breaker_threshold": 3}), cas)
    run.up()
    agents = run.wait_for(lambda a: a.get("w", {}).get("status") == "frozen", what="w frozen")
    assert "breaker" in agents["w"]["reason"] and "FBI" in agents["w"]["reason"]
    assert alive(agents["w"]["pid"])
    wait_until(lambda: [e for e in run.log_events("gateway") if e.get("event") == "answer_held"
                        and e.get("agent") == "w"], what="the tripping answer held by the gateway")
    logs = run.cli("logs", check=True).stdout
    assert "breaker_tripped" in logs
    # held, not failed: it stays frozen while nobody thaws it, and the 3rd answer's command has not run
    assert run.agents()["w"]["status"] == "frozen"
    assert (run.workspace / "b.txt").exists() and not (run.workspace / "c.txt").exists()
    assert commands_run(run, "w", "write_to_file") == 2
    run.cli("thaw", "w", check=True)
    agents = run.wait_for(lambda a: a["w"]["status"] == "done", what="w done after thaw")
    assert (run.workspace / "c.txt").read_text() == "3"
    assert agents["w"]["steps"] == 4
    assert_manager_still_works(run)


def test_stop_file_stops_every_agent(swarm):
    """Creating the STOP file in the run directory stops every agent within a second or so."""
    cas = {"manager": manager_starts(("a", "worker"), ("b", "worker")), "a": WAIT, "b": WAIT}
    run = swarm(base_config(), cas)
    run.up()
    agents = run.wait_for(lambda a: len(a) == 3 and all(x["status"] in ("running", "waiting")
                                                        for x in a.values()), what="3 agents up")
    (run.run_dir / "STOP").touch()
    # bench/containment.py measures how fast; the test only allows for a loaded machine
    agents = run.wait_for(lambda a: all(x["status"] == "killed" for x in a.values()), timeout=20,
                          what="everything stopped")
    assert {a["reason"] for a in agents.values()} == {"stop_file"}
    wait_until(lambda: not any(alive(a["pid"]) for a in agents.values()), timeout=20, what="pids gone")
    assert run.supervisor_pid() and alive(run.supervisor_pid())


def test_kill_all(swarm):
    """swarm kill --all stops every agent and leaves the supervisor and services up."""
    cas = {"manager": manager_starts(("a", "worker")), "a": WAIT}
    run = swarm(base_config(), cas)
    run.up()
    agents = run.wait_for(lambda a: len(a) == 2 and all(x["status"] in ("running", "waiting")
                                                        for x in a.values()), what="agents up")
    p = run.cli("kill", "--all", check=True)
    assert "stopped 2 agent(s)" in p.stdout
    after = run.agents()
    assert {a["status"] for a in after.values()} == {"killed"}
    assert not any(alive(a["pid"]) for a in agents.values())
    assert alive(run.supervisor_pid())


def test_flooding_agent_is_throttled_then_stopped(swarm):
    """An agent pushing more messages than its bus rate is throttled, then stopped with reason flood."""
    cas = {"manager": manager_starts(("w", "worker")),
           "w": {"responses": [cmd("read_file", file="x")], "repeat": True}}
    run = swarm(base_config(limits={"bus_messages_per_second": 5, "loop_threshold": 100000,
                                    "max_steps": 1000000}), cas)
    run.up()
    agents = run.wait_for(lambda a: a.get("w", {}).get("status") == "killed", timeout=60, what="w stopped")
    assert agents["w"]["reason"] == "flood"
    wait_until(lambda: not alive(agents["w"]["pid"]), what="w gone")
    assert_manager_still_works(run)


def test_restart_policy_then_gives_up(swarm):
    """A role with on-crash restarts is restarted up to its maximum, then stays crashed; parent told."""
    cfg = base_config()
    cfg["agents"]["worker"]["restart"] = {"policy": "on-crash", "max_restarts": 2, "period_seconds": 60}
    run = swarm(cfg, {"manager": manager_starts(("w", "worker")), "w": WAIT})
    run.up()
    pids = []
    for n in range(3):
        a = run.wait_for(lambda a: a.get("w", {}).get("status") in ("running", "waiting")
                         and a["w"]["pid"] not in pids, what=f"w incarnation {n + 1}")
        pids.append(a["w"]["pid"])
        os.kill(a["w"]["pid"], signal.SIGKILL)
    run.wait_for(lambda a: a["w"]["status"] == "crashed", what="w stays crashed")
    assert len(set(pids)) == 3
    info = run.cli("inspect", "w", "--json", check=True).stdout
    assert '"restarts": 2' in info
    wait_until(lambda: [e for e in run.log_events("manager") if e.get("event") == "inbox_received"
                        and "stays crashed" in e.get("text", "")], what="manager told")
    assert_manager_still_works(run)


def test_supervisor_kill_9_then_resume(swarm):
    """After kill -9 of the supervisor, up --resume adopts the live agents and controls them again."""
    cas = {"manager": manager_starts(("a", "worker")), "a": manager_starts(("b", "worker")), "b": WAIT}
    run = swarm(base_config(), cas)
    run.up("--heartbeat", "0.5")
    agents = run.wait_for(lambda a: a.get("b", {}).get("status") in ("running", "waiting"), what="b up")
    sup = run.supervisor_pid()
    old_services = [p for p in psutil.Process(sup).children() if p.pid not in {a["pid"] for a in agents.values()}]
    os.kill(sup, signal.SIGKILL)
    wait_until(lambda: not alive(sup), what="supervisor dead")
    assert all(alive(a["pid"]) for a in agents.values())  # agents survive in their own sessions
    p = run.cli("up", str(run.config_path), "--detach", "--resume", "--heartbeat", "0.5")
    assert p.returncode == 0, p.stderr
    after = run.agents()
    assert {k: (v["pid"], v["status"] in ("running", "waiting")) for k, v in after.items()} == {
        k: (v["pid"], True) for k, v in agents.items()}
    wait_until(lambda: not any(q.is_running() and q.status() != psutil.STATUS_ZOMBIE for q in old_services),
               what="old services gone")
    run.cli("kill", "a", check=True)  # control over adopted agents: a and b go
    after = run.agents()
    assert after["a"]["status"] == "killed" and after["b"]["status"] == "killed"
    assert not alive(agents["a"]["pid"]) and not alive(agents["b"]["pid"])
    assert_manager_still_works(run)
