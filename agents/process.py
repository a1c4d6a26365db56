"""Entry of an agent process (forked by the zygote): the agent's runtime in the service host.

The host (``bus/host``) does what every process does: structlog, the bus
client (presenting the credential the spec carries), the signal idiom (SIGTERM/SIGINT ask the runtime
to stop; it finishes its step and says goodbye), the ordered stop and the
exit code; the runtime runs its own think–act loop.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from agents.ports import BusPorts
from agents.runtime import AgentRuntime
from bus.credentials import Credential
from bus.host import Hosted, HostSpec, ServiceHost
from swarm_core.spec import AgentSpec


class AgentHosting(Hosted):
    """An agent's runtime as the host drives it: the runtime's ``run`` is the loop."""

    def __init__(self, agent: AgentSpec, host: ServiceHost) -> None:
        ports = BusPorts(
            host.client, agent.agent_id,
            message_timeout=float(agent.settings.get("message_timeout", 60.0)),
            should_stop=lambda: self.runtime.stop_reason is not None,
            has_news=lambda: self.runtime.has_news(),
            set_status=lambda s: self.runtime.set_status(s),
            reply_ready=lambda q: self.runtime.inbox.reply_ready(q),
            take_reply=lambda q: self.runtime.take_reply(q),
        )
        self.runtime = AgentRuntime(agent, host.client, ports, _workspace(agent), host.log)

    @property
    def stop_reason(self) -> str:  # type: ignore[override]
        """Why the runtime was asked to stop ("" while it runs)."""
        return self.runtime.stop_reason or ""

    def request_stop(self, reason: str) -> None:
        """Signal-safe: the runtime records the intent and stops after its current step."""
        self.runtime.request_stop(reason)

    def serve(self) -> int:
        """Run the agent to completion: 0 done or stopped, 1 failed."""
        return self.runtime.run()


def _workspace(agent: AgentSpec) -> Any:
    """The agent's Workspace (its own subdirectory when configured so), or None without one."""
    if not agent.workspace:
        return None
    from agents.workspace import Workspace

    Path(agent.workspace).mkdir(parents=True, exist_ok=True)
    mb = agent.settings.get("workspace_mb")
    quota = int(mb) << 20 if isinstance(mb, int) and not isinstance(mb, bool) and mb > 0 else None
    return Workspace(agent.workspace, agent_subdir=agent.agent_id if agent.per_agent_workspace else None,
                     quota_bytes=quota)


def run_agent(agent: AgentSpec) -> int:
    """Run one agent to completion; the return value is the process's exit code."""
    credential = Credential.from_dict(agent.credential, "agent spec") if agent.credential else None
    spec = HostSpec(role="agent", run_dir=Path(agent.run_dir), identity=agent.agent_id,
                    endpoint=agent.endpoint, agent_id=agent.agent_id, credential=credential,
                    heartbeat_interval=agent.heartbeat_interval, liveness=agent.liveness)
    return ServiceHost(spec).run(lambda host: AgentHosting(agent, host))
