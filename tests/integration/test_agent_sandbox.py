"""The agent process's own kernel sandbox, applied for real in child processes of a stand-in zygote."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys

import pytest

from agents.confine.environment import agent_environment
from agents.confine.probe import probe
from tests.hostile_rig import ROOT, broken, table, targets  # noqa: F401 - targets is a fixture

HARNESS = ROOT / "tests" / "agent_sandbox_harness.py"
# an agent is not in a PID namespace (code it runs is), must reach the bus socket, and no swarm runs here
NOT_FOR_AGENTS = ("fork, setsid, fork: a daemon", "connect to the bus socket", "swarm down",
                  "swarm kill --all", "swarm freeze", "swarm memory add pwned")


@pytest.fixture
def run_dir(tmp_path):
    """A run directory with the files an attacker wants: registry, keys, logs."""
    run = tmp_path / "run"
    (run / "logs").mkdir(parents=True)
    (run / "keys").mkdir()
    (run / "registry.db").write_text("agents")
    (run / "keys" / "server.key_secret").write_text("secret key")
    (run / "logs" / "supervisor.jsonl").write_text("{}\n")
    return run


@pytest.fixture
def stand_in(targets):
    """A stand-in supervisor process that holds the secret in its environment."""
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(900)"],
                            env={**os.environ, "SWARM_TEST_SECRET": targets.secret})
    yield proc
    proc.kill()
    proc.wait()


def test_confined_agent_fails_every_attack_and_keeps_its_duties(tmp_path, targets, run_dir, stand_in):
    """A process confined like an agent fails every attack that applies to agents, yet keeps its duties.

    Its duties: write its workspace, append to its log, connect to the bus port.
    """
    bus = socket.socket()
    bus.bind(("127.0.0.1", 0))
    bus.listen(4)
    workspace = tmp_path / "ws"
    out = workspace / "attacker" / "outcomes.json"
    attack_targets = targets.for_attacks(
        run_dir=str(run_dir), pids={"supervisor": stand_in.pid}, out=str(out), skip=list(NOT_FOR_AGENTS),
        own_files=[str(run_dir / "logs" / "attacker.jsonl")], duties={
            "bus_port": bus.getsockname()[1], "log": str(run_dir / "logs" / "attacker.jsonl")})
    cfg = {"run_dir": str(run_dir), "workspace": str(workspace),
           "endpoint": f"tcp://127.0.0.1:{bus.getsockname()[1]}",
           "attacks": str(ROOT / "tests" / "hostile_attacks.py"), "targets": attack_targets}
    env = agent_environment({**os.environ, "SWARM_TEST_SECRET": targets.secret,
                             "OPENAI_API_KEY": targets.secret}, str(ROOT))
    try:
        p = subprocess.run([sys.executable, str(HARNESS), json.dumps(cfg)], env=env, capture_output=True,
                           text=True, timeout=300, cwd=tmp_path)
    finally:
        bus.close()
    assert p.returncode == 0, p.stderr
    report = json.loads(p.stdout.strip().splitlines()[-1])
    assert report["attacker_exit"] == 0, p.stderr
    outcomes = json.loads(out.read_text())
    print(f"\nagent sandbox applied in {report['confined_us']} µs\n" + table(outcomes))
    assert len(outcomes) >= 20
    assert broken(outcomes) == {}
    assert targets.connections() == [] and targets.escaped_files() == [] and targets.bystander_alive()
    assert stand_in.poll() is None
    duties = json.loads((workspace / "attacker" / "duties.json").read_text())
    assert duties == {"workspace": True, "log": True, "bus_port": True}


def test_probe_finds_what_the_sandbox_needs_on_this_kernel():
    """This kernel (the one CI runs) offers Landlock ABI >= 6 and the namespaces: the probe says so."""
    result = probe()
    assert result.ok, result.reason
    assert result.abi >= 6
