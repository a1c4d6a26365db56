"""A hostile agent runs attack code with ``tools.static_scan: false``: the kernel sandbox alone must hold.

One real swarm (supervisor, gateway, memory service, a manager, an idle
sibling and the hostile agent) started with a secret in ``swarm up``'s
environment. When everyone is up, the test writes the attack script (with
the pids it aims at) into the workspace and messages the hostile agent,
whose cassette then executes it, then a program that dies of a refused
connection, then a benign program, then completes.
"""

from __future__ import annotations

import json
import os

import psutil
import pytest

from orchestrator.supervisor.registry import Registry
from tests.hostile_rig import broken, table, targets  # noqa: F401 - targets is a fixture
from tests.support import wait_until

from .conftest import alive, base_config, cmd

WAIT = {"responses": [cmd("do_nothing")], "repeat": True}
BENIGN = ("import json\nwith open('benign.txt', 'w') as f:\n    json.dump(sorted({3, 1, 2}), f)\n"
          "print('benign ok')\n")


def _config() -> dict:
    cfg = base_config(memory=True, tools={"static_scan": False, "exec_wall_seconds": 240},
                      safety={"sandbox": "kernel"},
                      limits={"idle_wait_seconds": 600, "max_wall_seconds": 900, "message_timeout": 60})
    cfg["agents"]["manager"]["can_start"] = ["hostile", "sibling"]
    cfg["agents"]["hostile"] = {"role": "an attacker", "commands": ["execute_python_file", "do_nothing",
                                                                     "task_complete"]}
    cfg["agents"]["sibling"] = {"role": "a bystander", "commands": ["do_nothing", "task_complete"]}
    return cfg


def _cassette() -> dict:
    return {"manager": {"responses": [cmd("start_agent", name="sibling", task="idle", role="sibling"),
                                      cmd("start_agent", name="hostile", task="attack", role="hostile"),
                                      cmd("do_nothing")], "repeat": True},
            "sibling": WAIT,
            "hostile": [cmd("do_nothing"), cmd("execute_python_file", file="attack.py"),
                        cmd("execute_python_file", file="refused.py"),
                        cmd("execute_python_file", file="benign.py"),
                        cmd("task_complete", reason="attacked")]}


def _environ(pid: int) -> bytes:
    with open(f"/proc/{pid}/environ", "rb") as f:
        return f.read()


def _confined(pid: int, supervisor: int) -> bool:
    """Whether ``pid`` runs with no_new_privs in a user namespace other than the supervisor's."""
    with open(f"/proc/{pid}/status") as f:
        nnp = "NoNewPrivs:\t1" in f.read()
    return nnp and os.readlink(f"/proc/{pid}/ns/user") != os.readlink(f"/proc/{supervisor}/ns/user")


def _zygote_pid(run) -> int:
    for proc in psutil.process_iter(["pid", "cmdline"]):
        cmd = proc.info["cmdline"] or []
        if "orchestrator.supervisor.zygote" in cmd and str(run.run_dir) in cmd:
            return proc.info["pid"]
    raise AssertionError("no zygote found")


def _service_pids(run) -> dict[str, int]:
    reg = Registry(run.run_dir / "registry.db", readonly=True)
    try:
        return {name: int(v[0]) for name, v in (reg.meta("service_pids", {}) or {}).items()}
    finally:
        reg.close()


@pytest.mark.slow
def test_hostile_code_fails_every_attack_and_the_swarm_goes_on(swarm, targets):
    """Every attack of the hostile agent's code fails, refusals are logged, the swarm keeps working."""
    run = swarm(_config(), _cassette())
    run.env.update({"SWARM_HOSTILE_SECRET": targets.secret, "OPENAI_API_KEY": targets.secret})
    run.up()
    agents = run.wait_for(lambda a: all(a.get(x, {}).get("status") in ("running", "waiting")
                                        for x in ("hostile", "sibling")), timeout=120, what="agents up")
    services = _service_pids(run)
    pids = {"supervisor": run.supervisor_pid(), "gateway": services["gateway"], "memory": services["memory"],
            "sibling agent": agents["sibling"]["pid"]}
    for name in ("manager", "hostile", "sibling"):  # confined: no_new_privs (Landlock's condition), own user ns
        assert _confined(agents[name]["pid"], run.supervisor_pid()), name
    secret = targets.secret.encode()
    assert secret in _environ(services["gateway"])  # the gateway keeps swarm up's environment (the key)
    for pid in (_zygote_pid(run), services["memory"], agents["hostile"]["pid"], agents["sibling"]["pid"]):
        assert secret not in _environ(pid)  # rebuilt from the allow-list
    ws = run.workspace
    attack = targets.for_attacks(run_dir=str(run.run_dir), pids=pids, out="outcomes.json",
                                 bus_socket=str(run.run_dir / "sock" / "bus.ipc"))
    (ws / "attack.py").write_text(targets.source(attack))
    (ws / "refused.py").write_text(
        f"import socket\nsocket.create_connection(('127.0.0.1', {attack['tcp_port']}))\n")
    (ws / "benign.py").write_text(BENIGN)
    run.cli("send", "hostile", "go", check=True)
    run.wait_for(lambda a: a.get("hostile", {}).get("status") == "done", timeout=400, what="hostile done")

    outcomes = json.loads((ws / "outcomes.json").read_text())
    print("\n" + table(outcomes))
    assert len(outcomes) >= 30
    assert broken(outcomes) == {}
    assert (ws / "daemon-started").exists()  # the daemon did start ...
    assert targets.daemons() == []  # ... and died with its run
    assert targets.connections() == [] and targets.escaped_files() == [] and targets.bystander_alive()

    # the swarm goes on: everyone alive, the benign step after the attacks worked, listings answer
    assert all(alive(p) for p in pids.values())
    assert json.loads((ws / "benign.txt").read_text()) == [1, 2, 3]
    now = run.agents()
    assert {now["sibling"]["status"], now["manager"]["status"]} <= {"running", "waiting"}
    events = run.log_events("hostile")
    runs = [e for e in events if e.get("event") == "python_file_executed"]
    assert [e["reason"] for e in runs] == ["ok", "error", "ok"]
    refusals = [e for e in events if e.get("event") == "sandbox_refused"]
    assert [(e["agent"], e["rule"], e["file"]) for e in refusals] == [("hostile", "landlock", "refused.py")]

    run.cli("down", check=True)
    wait_until(lambda: not any(alive(p) for p in pids.values()), 60, "the swarm down")
    assert targets.daemons() == [] and targets.bystander_alive()


def test_sandbox_none_warns_on_up_and_leaves_agents_unconfined(swarm):
    """safety.sandbox: none prints its warning on `swarm up`; agents then run without the kernel sandbox."""
    cfg = base_config(safety={"sandbox": "none"})
    cfg["agents"]["coder"] = {"role": "a coder", "commands": ["execute_python_file", "write_to_file",
                                                             "task_complete"]}
    cfg["agents"]["manager"]["can_start"] = ["coder"]
    cas = {"manager": {"responses": [cmd("start_agent", name="coder", task="run", role="coder"),
                                     cmd("do_nothing")], "repeat": True},
           "coder": [cmd("write_to_file", file="ok.py", text="open('ran.txt', 'w').write('yes')\n"),
                     cmd("execute_python_file", file="ok.py"), cmd("task_complete", reason="ran")]}
    run = swarm(cfg, cas)
    up = run.up()
    assert "warning: safety.sandbox is none" in up.stderr
    agents = run.wait_for(lambda a: a.get("coder", {}).get("status") == "done", timeout=90, what="coder done")
    assert (run.workspace / "ran.txt").read_text() == "yes"
    assert not _confined(agents["manager"]["pid"], run.supervisor_pid())
