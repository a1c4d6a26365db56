"""Entry of an agent process (forked by the zygote): wire the runtime to the bus."""

from __future__ import annotations

import signal
from pathlib import Path

from agents.ports import BusPorts
from agents.runtime import AgentRuntime
from bus.client import BusClient
from swarm_core import log as swarm_log
from swarm_core.spec import AgentSpec


def run_agent(agent: AgentSpec) -> int:
    """Run one agent to completion; the return value is the process's exit code."""
    log = swarm_log.configure(role="agent", agent_id=agent.agent_id, run_dir=agent.run_dir,
                              name=agent.agent_id)
    import zmq

    ctx = zmq.Context()
    from bus.auth import client_for

    client = BusClient(agent.endpoint, agent.agent_id, context=ctx, log=log,
                       curve=client_for(agent.endpoint, agent.run_dir),
                       heartbeat_interval=agent.heartbeat_interval, liveness=agent.liveness)
    workspace = None
    if agent.workspace:
        from agents.workspace import Workspace

        sub = agent.agent_id if agent.per_agent_workspace else None
        Path(agent.workspace).mkdir(parents=True, exist_ok=True)
        workspace = Workspace(agent.workspace, agent_subdir=sub)
    runtime: AgentRuntime | None = None

    def on_signal(signum: int, frame: object) -> None:
        if runtime is not None:
            runtime.request_stop(signal.Signals(signum).name.lower())

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    client.connect()
    try:
        ports = BusPorts(
            client, agent.agent_id,
            message_timeout=float(agent.settings.get("message_timeout", 60.0)),
            should_stop=lambda: runtime is not None and runtime.stop_reason is not None,
            has_news=lambda: runtime is not None and runtime.has_news(),
            set_status=lambda s: runtime.set_status(s) if runtime is not None else None,
        )
        runtime = AgentRuntime(agent, client, ports, workspace, log)
        return runtime.run()
    finally:
        client.close()
        ctx.term()
