"""The swarm recovers its own processes and says so: zygote and services restarted, ps telling the truth.

Real swarms (supervisor, gateway, zygote, agents) on replay cassettes; faults
are kill -9s the test sends when the swarm has reached the state it checks.
"""

from __future__ import annotations

import os
import signal

import psutil
import pytest

from orchestrator.supervisor.registry import Registry
from orchestrator.supervisor.services import MAX_RESTARTS, RESTART_PERIOD
from tests.system.conftest import alive, base_config, cmd, wait_until

pytestmark = [pytest.mark.slow, pytest.mark.timeout(240)]

WAIT = {"responses": [cmd("do_nothing")], "repeat": True}
# starts a, waits for its inbox, then starts b
MANAGER_AB = {"responses": [cmd("start_agent", name="a", task="wait", role="worker"), cmd("do_nothing"),
                            cmd("start_agent", name="b", task="wait", role="worker"), cmd("do_nothing")],
              "repeat": True}


def board(run) -> dict:
    """The service board (gateway, memory, zygote) the supervisor keeps in the registry."""
    reg = Registry(run.run_dir / "registry.db", readonly=True)
    try:
        return reg.meta("services", {}) or {}
    finally:
        reg.close()


def header(run) -> list[str]:
    """The lines of ``swarm ps``'s table view before the column names."""
    out = run.cli("ps", check=True).stdout.splitlines()
    return [ln.strip() for ln in out[:next(i for i, ln in enumerate(out) if "ID" in ln and "ROLE" in ln)]]


def zygote_pid(run) -> int | None:
    """The live zygote: the supervisor's child running the zygote (agents inherit its command line)."""
    for proc in psutil.Process(run.supervisor_pid()).children():
        try:
            if "orchestrator.supervisor.zygote" in proc.cmdline() and alive(proc.pid):
                return proc.pid
        except psutil.NoSuchProcess:
            continue
    return None


def up_again(run, name: str, old_pid: int) -> int:
    """Wait until ``name`` is up on the board with a pid other than ``old_pid``; return the new pid."""
    entry = wait_until(lambda: (e := board(run).get(name, {})).get("state") == "up"
                       and e.get("pid") != old_pid and alive(e.get("pid")) and e,
                       timeout=60, what=f"{name} up again")
    return int(entry["pid"])


def test_zygote_kill_9_is_restarted_and_agents_start_again(swarm):
    """After kill -9 of the zygote, a new one comes up (logged, in ps's header); start_agent and an
    on-crash restart both work again."""
    cfg = base_config()
    cfg["agents"]["worker"]["restart"] = {"policy": "on-crash", "max_restarts": 2, "period_seconds": 600}
    cas = {"manager": MANAGER_AB, "a": WAIT, "b": WAIT}
    run = swarm(cfg, cas)
    run.up()
    agents = run.wait_for(lambda a: a.get("a", {}).get("status") in ("running", "waiting"), what="a up")
    zygote = zygote_pid(run)
    os.kill(zygote, signal.SIGKILL)
    wait_until(lambda: zygote_pid(run) not in (None, zygote), timeout=60, what="a new zygote")
    up_again(run, "zygote", zygote)
    assert any(ln.startswith("zygote up") and "restarted 1x" in ln for ln in header(run)), header(run)
    assert [e for e in run.log_events("supervisor") if e.get("event") == "zygote_crashed"]
    run.cli("send", "manager", "go on", check=True)  # the manager's next answer starts b
    run.wait_for(lambda a: a.get("b", {}).get("status") in ("running", "waiting"), what="b started")
    old = agents["a"]["pid"]
    os.kill(old, signal.SIGKILL)  # forked by the old zygote: its exit is found by polling its pid
    after = run.wait_for(lambda a: a["a"]["status"] in ("running", "waiting") and a["a"]["pid"] != old,
                         what="a restarted by the new zygote")
    assert alive(after["a"]["pid"])


def test_a_service_given_up_shows_in_ps(swarm):
    """A gateway killed once more than its restart intensity is shown given up, with how it ended."""
    run = swarm(base_config(), {"manager": WAIT})
    run.up()
    run.wait_for(lambda a: a.get("manager", {}).get("status") in ("running", "waiting"), what="manager up")
    pid = int(board(run)["gateway"]["pid"])
    assert any(ln.startswith(f"gateway up (pid {pid}") for ln in header(run)), header(run)
    for _ in range(MAX_RESTARTS):  # well within RESTART_PERIOD, even on a loaded machine
        os.kill(pid, signal.SIGKILL)
        pid = up_again(run, "gateway", pid)
    os.kill(pid, signal.SIGKILL)
    wait_until(lambda: board(run)["gateway"]["state"] == "given_up", timeout=30, what="gateway given up")
    line = next(ln for ln in header(run) if ln.startswith("gateway"))
    assert line == ("gateway given up (SIGKILL (killed from outside or by an rlimit); "
                    f"restarted {MAX_RESTARTS} times within {RESTART_PERIOD:g}s already)")
    assert any(ln.startswith("supervisor up") for ln in header(run))


def test_ps_after_kill_9_of_the_supervisor_says_it_is_dead(swarm):
    """After kill -9 of the supervisor, ps's header says it is dead (never running), and so is the zygote."""
    run = swarm(base_config(), {"manager": WAIT})
    run.up()
    run.wait_for(lambda a: a.get("manager", {}).get("status") in ("running", "waiting"), what="manager up")
    sup = run.supervisor_pid()
    assert f"supervisor up (pid {sup})" in header(run)
    os.kill(sup, signal.SIGKILL)
    wait_until(lambda: not alive(sup), what="supervisor gone")
    zygote = int(board(run)["zygote"]["pid"])
    wait_until(lambda: not alive(zygote), what="the zygote exits with its supervisor")
    lines = header(run)
    assert lines[1].startswith(f"supervisor dead (pid {sup} ended without shutting down"), lines
    assert not any("(running)" in ln for ln in lines)
    assert f"zygote dead (pid {zygote} is gone)" in lines


def test_gateway_kill_9_does_not_rewind_the_cassettes(swarm):
    """A gateway killed mid-run and restarted goes on in every cassette: the manager's next answer is
    its next one, so no agent is started twice."""
    cas = {"manager": MANAGER_AB, "a": WAIT, "b": WAIT}
    run = swarm(base_config(), cas)
    run.up()
    run.wait_for(lambda a: a.get("a", {}).get("status") in ("running", "waiting"), what="a up")
    gateway = int(board(run)["gateway"]["pid"])
    os.kill(gateway, signal.SIGKILL)
    up_again(run, "gateway", gateway)
    run.cli("send", "manager", "go on", check=True)  # the manager's next model call reaches the new gateway
    agents = run.wait_for(lambda a: a.get("b", {}).get("status") in ("running", "waiting"), what="b started")
    assert sorted(agents) == ["a", "b", "manager"]
