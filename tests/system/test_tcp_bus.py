"""A swarm on a tcp:// bus with CurveZMQ: our processes hold keys, a stranger gets nothing."""

from __future__ import annotations

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
    assert (run.run_dir / "keys" / "server.key").exists()
    assert not (run.run_dir / "sock" / "bus.ipc").exists()
    # a stranger's keys are not in allowed/: the handshake never completes, nothing comes back
    public, secret = zmq.curve_keypair()

    class Stranger:
        def apply_client(self, sock):
            server = (run.run_dir / "keys" / "server.key").read_text()
            sock.curve_secretkey, sock.curve_publickey = secret, public
            sock.curve_serverkey = server.split('public-key = "')[1].split('"')[0].encode()

    c = BusClient(endpoint, "cli-stranger", curve=Stranger(), heartbeat_interval=0.2, liveness=2)
    c.connect()
    try:
        with pytest.raises(BusError):
            c.request("supervisor", m.SwarmStatus(), 1.0)
    finally:
        c.close()
    assert run.cli("ps", "--json", check=True).returncode == 0
    assert run.cli("inspect", "w", check=True).returncode == 0
    assert "frozen 0 agent(s)" in run.cli("freeze", check=True).stdout  # a bus request from the CLI over tcp
