"""A swarm on a tcp:// bus with CurveZMQ: each process holds its own key, a stranger gets nothing."""

from __future__ import annotations

import dataclasses

import pytest
import zmq

from bus.client import BusClient
from swarm_core import messages as m
from swarm_core.errors import BusError
from tests.system.conftest import base_config, cmd, speak

pytestmark = [pytest.mark.slow, pytest.mark.timeout(120)]


def test_swarm_on_tcp_with_curve(swarm):
    """Agents, gateway and CLI work over tcp with CurveZMQ; a client with an unknown key gets no answer."""
    cas = {"manager": [cmd("start_agent", name="w", task="answer", role="worker"),
                       cmd("message_agent", key="w", message="ping?"), cmd("task_complete", reason="ok")],
           "w": {"responses": [cmd("do_nothing"), speak("pong over tcp")], "repeat": True}}
    run = swarm(base_config(bus={"transport": "tcp", "host": "127.0.0.1"}), cas)
    run.up()
    run.wait_for(lambda a: a.get("manager", {}).get("status") == "done", what="manager done")
    msgs = [e for e in run.log_events("manager")
            if e.get("event") == "command_done" and e.get("command") == "message_agent"]
    assert msgs[0]["result"] == "w replied: pong over tcp"
    from orchestrator import runctl

    endpoint = runctl.endpoint_of(run.run_dir)
    assert endpoint.startswith("tcp://127.0.0.1:")
    assert not (run.run_dir / "sock" / "bus.ipc").exists()
    operator = runctl.operator_credential(run.run_dir)
    assert operator.mechanism == "curve" and (run.run_dir / "operator.cred").stat().st_mode & 0o077 == 0
    assert not (run.run_dir / "keys").exists()  # no key files: each process got its own credential
    # a stranger's key was never issued: the handshake never completes, nothing comes back
    public, secret = zmq.curve_keypair()
    stranger = dataclasses.replace(operator, secret=secret.decode(), public=public.decode())
    c = BusClient(endpoint, "cli-stranger", credential=stranger, heartbeat_interval=0.2, liveness=2)
    c.connect()
    try:
        with pytest.raises(BusError):
            c.request("supervisor", m.SwarmStatus(), 1.0)
    finally:
        c.close()
    assert run.cli("ps", "--json", check=True).returncode == 0
    assert run.cli("inspect", "w", check=True).returncode == 0
    assert "frozen 0 agent(s)" in run.cli("freeze", check=True).stdout  # a bus request from the CLI over tcp
