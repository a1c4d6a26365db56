"""The durable inbox with real processes: a message accepted for an agent outlives the agent's crash and
the supervisor's, and reaches the model exactly once (the agents' prompts logs and the registry agree).

Each fault is triggered from the run's own progress: the message has reached the agent's process (its
``inbox_received`` event) while the agent is inside a long model call, so it has not been shown yet.
"""

from __future__ import annotations

import os
import signal

import pytest

from orchestrator.supervisor.inbox import InboxBook
from orchestrator.supervisor.registry import Registry
from tests.system.conftest import alive, base_config, cmd, wait_until

pytestmark = [pytest.mark.slow, pytest.mark.timeout(240)]

WAIT = {"responses": [cmd("do_nothing")], "repeat": True}


def busy(seconds: float) -> dict:
    """An answer the model "takes" ``seconds`` to give (the agent is inside its model call meanwhile)."""
    return {**cmd("do_nothing"), "delay_s": seconds}


def restarting_config() -> dict:
    cfg = base_config()
    cfg["agents"]["worker"]["restart"] = {"policy": "on-crash", "max_restarts": 3, "period_seconds": 60}
    return cfg


def note(run, note_id: str):
    reg = Registry(run.run_dir / "registry.db", readonly=True)
    try:
        return InboxBook(reg.connection, readonly=True).get(note_id)
    finally:
        reg.close()


def shown(run, agent: str, note_id: str) -> list[int]:
    """The pids of ``agent``'s processes whose prompts showed ``note_id`` (one entry per showing)."""
    return [e["pid"] for e in run.log_events(agent)
            if e.get("event") == "inbox_shown" and note_id in e.get("ids", [])]


def received(run, agent: str, text: str) -> bool:
    return any(e.get("event") == "inbox_received" and text in e.get("text", "")
               for e in run.log_events(agent))


def send(run, agent: str, text: str) -> str:
    out = run.cli("send", agent, text, check=True).stdout
    return out.split("(message ")[1].rstrip(")\n")


def test_a_message_outlives_the_crash_of_its_agent(swarm):
    """Kept before the operator's ok; the agent crashes before showing it; its restart shows it, once."""
    cas = {"manager": {"responses": [cmd("start_agent", name="w", task="wait", role="worker"),
                                     cmd("do_nothing")], "repeat": True},
           "w": {"responses": [busy(120), cmd("do_nothing")], "repeat": True}}
    run = swarm(restarting_config(), cas)
    run.up()
    first = run.wait_for(lambda a: a.get("w", {}).get("status") in ("running", "waiting"), what="w up")["w"]
    note_id = send(run, "w", "the password is swordfish")
    assert note(run, note_id) is not None and not note(run, note_id).read
    wait_until(lambda: received(run, "w", "swordfish"), what="the message in w's process")
    os.kill(first["pid"], signal.SIGKILL)
    wait_until(lambda: note(run, note_id).read, 60, "the restarted w to read it")
    second = run.agents()["w"]["pid"]
    assert second != first["pid"] and not alive(first["pid"])
    assert shown(run, "w", note_id) == [second] and note(run, note_id).acked_pid == second


def test_a_result_outlives_the_crash_of_the_parent(swarm):
    """A sub-agent's result kept for a parent that crashes before showing it reaches the restarted parent."""
    cas = {"manager": {"responses": [cmd("start_agent", name="p", task="delegate", role="worker"),
                                     cmd("do_nothing")], "repeat": True},
           "p": {"responses": [cmd("start_agent", name="c", task="finish", role="worker"), busy(120),
                               cmd("do_nothing")], "repeat": True},
           "c": [{**cmd("task_complete", reason="result-7781"), "delay_s": 1.0}]}
    run = swarm(restarting_config(), cas)
    run.up()
    wait_until(lambda: received(run, "p", "result-7781"), 60, "c's result in p's process")
    (result_id,) = {e["message_id"] for e in run.log_events("p") if e.get("event") == "inbox_received"
                    and "result-7781" in e.get("text", "")}
    first = run.agents()["p"]["pid"]
    assert shown(run, "p", result_id) == [] and not note(run, result_id).read
    os.kill(first, signal.SIGKILL)
    wait_until(lambda: note(run, result_id).read, 60, "the restarted p to read it")
    second = run.agents()["p"]["pid"]
    assert second != first and shown(run, "p", result_id) == [second]


def test_a_message_outlives_a_supervisor_crash(swarm):
    """Accepted, then the supervisor is killed: after --resume the agent's acknowledgement reaches the new
    supervisor, and the message was shown exactly once."""
    cas = {"manager": {"responses": [cmd("start_agent", name="w", task="wait", role="worker"),
                                     cmd("do_nothing")], "repeat": True},
           "w": {"responses": [busy(8), cmd("do_nothing")], "repeat": True}}
    run = swarm(base_config(), cas)
    run.up("--heartbeat", "0.5")
    w = run.wait_for(lambda a: a.get("w", {}).get("status") in ("running", "waiting"), what="w up")["w"]
    note_id = send(run, "w", "remember the milk")
    wait_until(lambda: received(run, "w", "remember the milk"), what="the message in w's process")
    sup = run.supervisor_pid()
    os.kill(sup, signal.SIGKILL)
    wait_until(lambda: not alive(sup), what="supervisor dead")
    run.cli("up", str(run.config_path), "--detach", "--resume", "--heartbeat", "0.5", check=True)
    wait_until(lambda: note(run, note_id).read, 90, "the message read after the resume")
    assert shown(run, "w", note_id) == [w["pid"]] and note(run, note_id).acked_pid == w["pid"]
