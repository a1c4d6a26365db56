"""Approvals seen from the swarm: a held command waits for swarm approve / deny / the timeout (replay)."""

from __future__ import annotations

import json
import os
import signal

import pytest

from tests.system.conftest import alive, base_config, cmd, wait_until

pytestmark = [pytest.mark.slow, pytest.mark.timeout(240)]

WRITE = cmd("write_to_file", file="a.txt", text="hello")


def _config(**over):
    cfg = base_config(**over)
    cfg["agents"]["worker"]["approve"] = ["write_to_file"]
    return cfg


def _cassette(worker):
    return {"manager": {"responses": [cmd("start_agent", name="w", task="write", role="worker"),
                                      cmd("do_nothing")], "repeat": True},
            "w": worker}


def _requests(run):
    return json.loads(run.cli("approvals", "--json", check=True).stdout)


def _one_request(run, what="a request"):
    return wait_until(lambda: _requests(run), 60, what, step=0.1)[0]


def _events(run, agent, name):
    return [e for e in run.log_events(agent) if e.get("event") == name]


def _one_line_error(p, exit_code, text):
    assert p.returncode == exit_code, (p.returncode, p.stderr)
    assert len(p.stderr.strip().splitlines()) == 1 and text in p.stderr, p.stderr


def test_approve_lets_the_held_command_run(swarm):
    """The held write shows in approvals --json (the agent awaiting_approval); approved, it runs."""
    run = swarm(_config(), _cassette([WRITE, cmd("task_complete", reason="written")]))
    run.up()
    req = _one_request(run)
    assert {k: req[k] for k in ("agent", "kind", "command", "args")} == {
        "agent": "w", "kind": "command", "command": "write_to_file", "args": {"file": "a.txt", "text": "hello"}}
    assert req["id"].startswith("req-") and isinstance(req["since"], float) and "budget_of" not in req
    assert run.agents()["w"]["status"] == "awaiting_approval"
    assert not (run.workspace / "a.txt").exists()
    p = run.cli("approve", req["id"], "--note", "fine by me")
    assert p.returncode == 0 and req["id"] in p.stdout, p.stderr
    run.wait_for(lambda a: a["w"]["status"] == "done", what="w done")
    assert (run.workspace / "a.txt").read_text() == "hello"
    assert _requests(run) == []
    _one_line_error(run.cli("approve", req["id"]), 1, "already approved")
    _one_line_error(run.cli("deny", "req-999"), 1, "no approval request 'req-999'")


def test_deny_gives_the_reason_to_the_model_and_the_command_never_runs(swarm):
    """Denied with a reason: nothing is written, the reason is the command's result, the agent goes on."""
    run = swarm(_config(), _cassette([WRITE, cmd("task_complete", reason="gave up")]))
    run.up()
    req = _one_request(run)
    p = run.cli("deny", req["id"], "--reason", "not in this directory")
    assert p.returncode == 0, p.stderr
    run.wait_for(lambda a: a["w"]["status"] == "done", what="w done after the denial")
    assert not (run.workspace / "a.txt").exists()
    (denied,) = _events(run, "w", "approval_denied")
    assert denied["reason"] == "not in this directory" and denied["command"] == "write_to_file"
    assert not [e for e in _events(run, "w", "command_done") if e.get("command") == "write_to_file"]
    _one_line_error(run.cli("approve", req["id"]), 1, "already denied")


def test_a_request_nobody_decides_is_denied_with_reason_timeout(swarm):
    """Past approval_timeout_seconds the request is denied (timeout) and the agent carries on without it."""
    cfg = _config(safety={"approve": [], "approval_timeout_seconds": 2})
    run = swarm(cfg, _cassette([WRITE, cmd("task_complete", reason="no answer")]))
    run.up()
    _one_request(run)
    run.wait_for(lambda a: a["w"]["status"] == "done", what="w done after the timeout")
    (denied,) = _events(run, "w", "approval_denied")
    assert denied["reason"] == "timeout"
    assert not (run.workspace / "a.txt").exists() and _requests(run) == []


def test_freeze_and_kill_still_work_on_a_waiting_agent(swarm):
    """A waiting agent freezes and thaws back to waiting; killed, its request is cancelled and cannot
    be approved."""
    run = swarm(_config(), _cassette([WRITE, cmd("task_complete", reason="x")]))
    run.up()
    req = _one_request(run)
    run.cli("freeze", "w", check=True)
    assert run.agents()["w"]["status"] == "frozen"
    run.cli("thaw", "w", check=True)
    assert run.agents()["w"]["status"] == "awaiting_approval"
    run.cli("kill", "w", check=True)
    assert run.agents()["w"]["status"] == "killed" and _requests(run) == []
    _one_line_error(run.cli("approve", req["id"]), 1, "already cancelled: agent w is killed")
    assert not (run.workspace / "a.txt").exists()


def test_an_approve_list_naming_an_unknown_command_is_a_config_error(swarm):
    """validate and up refuse an approve list with an unknown command: exit 2, one line naming the field."""
    cfg = base_config(safety={"approve": ["format_disk"]})
    run = swarm(cfg, _cassette([WRITE]))
    for args in (("validate", str(run.config_path)), ("up", str(run.config_path), "--detach")):
        p = run.cli(*args)
        _one_line_error(p, 2, "safety.approve")
        assert "format_disk" in p.stderr
    assert not (run.run_dir / "registry.db").exists()


def test_a_held_request_survives_kill_9_of_the_supervisor_and_resume(swarm):
    """The supervisor dies while a command is held; after up --resume the request is still listed and
    its approval lets the adopted agent run the command."""
    run = swarm(_config(), _cassette([WRITE, cmd("task_complete", reason="written")]))
    run.up("--heartbeat", "0.5")
    req = _one_request(run)
    sup = run.supervisor_pid()
    os.kill(sup, signal.SIGKILL)
    wait_until(lambda: not alive(sup), 10, "the supervisor gone")
    assert [r["id"] for r in _requests(run)] == [req["id"]]  # read from the registry, no supervisor needed
    p = run.cli("up", str(run.config_path), "--detach", "--resume", "--heartbeat", "0.5")
    assert p.returncode == 0, p.stderr
    assert run.agents()["w"]["status"] == "awaiting_approval"
    run.cli("approve", req["id"], check=True)
    wait_until(lambda: (run.workspace / "a.txt").exists(), 60, "the approved write after the resume")
    assert (run.workspace / "a.txt").read_text() == "hello"
    # the agent went on to its next step: the resumed gateway goes on in w's cassette where it was
    # (the replay cursors are kept in the run directory), so w finishes instead of asking again
    run.wait_for(lambda a: a["w"]["status"] == "done", what="w done after the approved write")
    assert json.loads(run.cli("inspect", "w", "--json", check=True).stdout)["result"] == "written"
    assert _requests(run) == []  # nothing pending: the approved request was decided once
